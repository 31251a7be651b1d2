"""What one BGP session of vgw is configured with (one per tunnel)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from .timers import MIN_HOLD

MAX_ASN = 0xFFFFFFFF


@dataclass(frozen=True)
class PeerSettings:
    """One eBGP neighbor between a tunnel's inside addresses.

    Defaults are AWS's where AWS has one (docs/aws.md §7, §6.1: hold time 30 s,
    keepalive 10 s; at most 100 prefixes from a CGW per VGW session, §4.1) and
    vgw's choices otherwise (docs/bgp.md): connect_retry, the IdleHold back-off
    (idle_hold doubling to idle_hold_max) and the prefix warning share."""

    local_asn: int
    peer_asn: int
    local_address: IPv4Address
    peer_address: IPv4Address
    router_id: IPv4Address | None = None     # None: local_address
    hold_time: int = 30
    connect_retry: float = 30.0
    max_prefixes: int | None = 100           # None: no limit
    passive: bool = False                    # RFC 4271 event 4: listen first
    idle_hold: float = 5.0
    idle_hold_max: float = 120.0
    prefix_warning: float = 0.75             # share of max_prefixes; 0: no warning

    def __post_init__(self) -> None:
        for name in ("local_address", "peer_address", "router_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, IPv4Address):
                object.__setattr__(self, name, IPv4Address(value))
        if self.router_id is None:
            object.__setattr__(self, "router_id", self.local_address)
        for name in ("local_asn", "peer_asn"):
            if not 1 <= getattr(self, name) <= MAX_ASN:
                raise ValueError(f"{name} must be 1..{MAX_ASN}")
        if self.local_asn == self.peer_asn:
            raise ValueError("local_asn equals peer_asn: vgw speaks external BGP only")
        if self.hold_time != 0 and not MIN_HOLD <= self.hold_time <= 0xFFFF:
            raise ValueError("hold_time must be 0 or 3..65535 seconds (RFC 4271 §4.2)")
        if int(self.router_id) == 0:
            raise ValueError("router_id must not be 0.0.0.0 (RFC 6286 §2.1)")
        if self.connect_retry <= 0 or self.idle_hold <= 0 or self.idle_hold_max < self.idle_hold:
            raise ValueError("connect_retry and idle_hold must be > 0, idle_hold_max >= idle_hold")
        if self.max_prefixes is not None and self.max_prefixes < 1:
            raise ValueError("max_prefixes must be at least 1 (or None for no limit)")
        if not 0 <= self.prefix_warning <= 1:
            raise ValueError("prefix_warning is a share: 0..1")
