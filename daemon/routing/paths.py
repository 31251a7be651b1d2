"""The values the VPC route table decides with: paths in, routes and advertisements out.

A *path* is one way to reach a prefix: a static route of a connection, or a
prefix that one tunnel's BGP session accepted. A *route* is what the VPC route
table holds for a prefix after AWS's path selection (docs/aws.md §7): the one
path it picked, or a blackhole. An *advertisement* is what one tunnel's BGP
session sends to the customer gateway (docs/aws.md §11). Plain frozen values, so
that the table can compare old and new decisions with ==.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

# MED on the tunnel that carries the connection's egress and on the other one
# (docs/aws.md §11: "MED 100 on the preferred tunnel, 200 on the other").
MED_PRIMARY = 100
MED_OTHER = 200

# BGP ORIGIN codes (RFC 4271 §4.3); the VPC's CIDRs go out as IGP (docs/aws.md §11).
ORIGIN_IGP, ORIGIN_EGP, ORIGIN_INCOMPLETE = 0, 1, 2


class Source(enum.Enum):
    """Where a path came from; also the `origin` column of `vgw routes`."""

    STATIC = "static"          # a connection's static_routes (CreateVpnConnectionRoute)
    PROPAGATED = "propagated"  # learned by BGP and propagated into the VPC route table


@dataclass(frozen=True)
class Path:
    """One candidate way to `prefix`.

    Static paths belong to a connection and leave by its primary tunnel
    (`tunnel` is None); BGP paths belong to the tunnel whose session learned
    them. `as_path` is the AS_PATH as received (neighbour AS first) and
    `as_path_length` its length by RFC 4271 §9.1.2.2 (an AS_SET counts one).
    `learned` orders paths by arrival: AWS's selection keeps the older of two
    otherwise equal paths, so a second site advertising a prefix never takes
    it over from the first (docs/aws.md §7)."""

    prefix: IPv4Network
    connection: str
    source: Source
    tunnel: str | None = None
    as_path: tuple[int, ...] = ()
    as_path_length: int = 0
    med: int | None = None
    next_hop: IPv4Address | None = None
    origin: int = ORIGIN_IGP
    learned: int = 0

    @property
    def neighbor_as(self) -> int | None:
        """The AS the path was learned from (first AS of AS_PATH), for MED comparison."""
        return self.as_path[0] if self.as_path else None


@dataclass(frozen=True)
class Learned:
    """A prefix as one BGP session accepted it (the session's import policy
    already ran: own AS and next hop checked, docs/aws.md §11)."""

    as_path: tuple[int, ...]
    as_path_length: int
    med: int | None = None
    next_hop: IPv4Address | None = None
    origin: int = ORIGIN_IGP


@dataclass(frozen=True)
class Route:
    """The VPC route table's entry for one prefix.

    `tunnel` None with a path: a static route whose connection has no tunnel up
    (state blackhole, installed as `unreachable` so that nothing leaks in clear
    text). `reason` says why this path won (shown by `vgw routes`); `others`
    are the paths that lost."""

    prefix: IPv4Network
    path: Path
    tunnel: str | None
    reason: str
    others: tuple[Path, ...] = ()

    @property
    def state(self) -> str:
        """AWS's RouteState: active or blackhole."""
        return "active" if self.tunnel is not None else "blackhole"


@dataclass(frozen=True)
class Advertisement:
    """What one BGP session announces for one prefix. The session prepends the
    local ASN and sets NEXT_HOP to the VGW inside address (RFC 4271 §5.1.2-3), so
    `as_path` is the path before that: () for the VPC's CIDRs, the site's path
    for a CloudHub re-advertisement (docs/aws.md §7, §11)."""

    as_path: tuple[int, ...] = ()
    med: int = MED_PRIMARY
    origin: int = ORIGIN_IGP
    learned_from: str | None = None   # the connection a re-advertised prefix came from


@dataclass(frozen=True)
class ConnectionPlan:
    """What the route table needs to know of one connection."""

    name: str
    tunnels: tuple[str, ...]               # outside IPs, config order
    dynamic: bool                           # BGP (StaticRoutesOnly false)
    static_routes: tuple[IPv4Network, ...] = ()
    customer_gateway_ip: IPv4Address | None = None


@dataclass
class Changes:
    """The result of one decision: what to program and what to tell the sessions.

    `kernel`: prefix -> tunnel id (a route via its TUN) or None (unreachable);
    `removed`: prefixes whose route is gone; `advertisements`: per tunnel, the
    prefixes whose announcement changed (None: withdraw it); `primaries`: the
    connections whose primary tunnel changed; `lines`: log lines that explain
    the decision."""

    kernel: dict[IPv4Network, str | None] = field(default_factory=dict)
    removed: set[IPv4Network] = field(default_factory=set)
    advertisements: dict[str, dict[IPv4Network, Advertisement | None]] = field(default_factory=dict)
    primaries: dict[str, str | None] = field(default_factory=dict)   # connections whose primary changed
    lines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.kernel or self.removed or self.advertisements or self.primaries or self.lines)
