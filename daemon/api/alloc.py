"""What AWS hands out: resource ids, tunnel outside addresses, inside /30s, PSKs.

`rng` is a random.Random (secrets.SystemRandom in the daemon; a seeded one in
tests), so nothing here reads the system's randomness behind the caller's back.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from daemon.config import INSIDE_CIDR_POOL, RESERVED_INSIDE_CIDRS

from .errors import ApiError

ID_HEX_DIGITS = 17  # current AWS ids: vpn-006dfdf3f4989c4df (docs/aws.md §6.2)
PSK_LENGTH = 32     # docs/aws.md §1.3: the generated PSK is 32 characters
_PSK_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PSK_REST = _PSK_FIRST + "0123456789._"


def new_id(prefix: str, rng: random.Random) -> str:
    """cgw-/vgw-/vpn-... plus 17 random hex digits."""
    return f"{prefix}-{rng.getrandbits(4 * ID_HEX_DIGITS):0{ID_HEX_DIGITS}x}"


def new_psk(rng: random.Random) -> str:
    """A PSK as AWS generates one: 32 of [A-Za-z0-9._], never starting with 0 (§1.3)
    (AWS's look like Z54kLbANio5A1.XmkjwYvWuSfVx3_xuG: vgw starts with a letter)."""
    return rng.choice(_PSK_FIRST) + "".join(rng.choice(_PSK_REST) for _ in range(PSK_LENGTH - 1))


def new_inside_cidr(used: Iterable[IPv4Network], rng: random.Random) -> IPv4Network:
    """A random free /30 of 169.254.0.0/16 outside AWS's reserved blocks (§1.2)."""
    blocked = set(RESERVED_INSIDE_CIDRS) | set(used)
    count = INSIDE_CIDR_POOL.num_addresses // 4
    base = int(INSIDE_CIDR_POOL.network_address)
    for _ in range(64):  # almost always the first draw: 16384 blocks, at most ~60 taken
        candidate = IPv4Network((base + rng.randrange(count) * 4, 30))
        if candidate not in blocked:
            return candidate
    free = [n for n in (IPv4Network((base + i * 4, 30)) for i in range(count)) if n not in blocked]
    if not free:
        raise ApiError("InsufficientFreeAddressesInSubnet", "No /30 is free in 169.254.0.0/16")
    return rng.choice(free)


def pool_addresses(pool: IPv4Network) -> list[IPv4Address]:
    """The addresses of outside_ip_pool a tunnel may use (not network or broadcast of a
    subnet larger than a /31)."""
    if pool.prefixlen >= 31:
        return list(pool)
    return list(pool.hosts())


def new_outside_ips(pool: IPv4Network | None, used: set[IPv4Address], count: int = 2) -> list[IPv4Address]:
    """The lowest `count` free addresses of the pool (two per connection, §1.1)."""
    if pool is None:
        raise ApiError("VpnConnectionLimitExceeded",
                       "vgw has no api.outside_ip_pool configured, so it cannot give tunnels outside addresses;"
                       " add api.outside_ip_pool (a CIDR of addresses for this host) to the config")
    free = [address for address in pool_addresses(pool) if address not in used]
    if len(free) < count:
        raise ApiError("VpnConnectionLimitExceeded",
                       f"api.outside_ip_pool {pool} has {len(free)} free address(es) and a VPN connection needs"
                       f" {count}; delete a connection or widen the pool")
    return free[:count]
