"""Events a BgpPeer hands to its caller (the daemon), one at a time through
`next_event()`, in the order they happened.

Two ask the shell to act on sockets (ConnectRequested, CloseConnection); the
rest say what happened, for the route table, the log records AWS writes
(docs/aws.md §3.4: state changes, OPEN sent/received, NOTIFICATIONs,
End-of-RIB, route denials, the prefix limit) and the counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Hashable, Mapping

from .attributes import PathAttributes
from .constants import notification_name
from .fsm import State
from .messages import Notification


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class ConnectRequested(Event):
    """Open a TCP connection from local_address to peer_address port 179 and
    report it with connection_made(conn, now, outbound=True), or connect_failed(now).
    An attempt still in progress is abandoned: only the newest one counts."""


@dataclass(frozen=True)
class CloseConnection(Event):
    """Write what transmit() still holds for `conn`, then close it. No
    connection_lost is needed for it afterwards (one is ignored)."""

    conn: Hashable


@dataclass(frozen=True)
class StateChanged(Event):
    """The peer's state (its most advanced connection's) changed. `reason` is
    the RFC 4271 §8.1 event name, with detail after a colon."""

    old: State
    new: State
    reason: str


@dataclass(frozen=True)
class Established(Event):
    peer_router_id: IPv4Address
    hold_time: int                 # negotiated; 0 = no keepalives, no hold timer
    keepalive: int
    peer_asn: int
    four_octet_as: bool            # both sides announced RFC 6793's capability
    route_refresh: bool            # the peer announced RFC 2918's (code 2 or 128)
    outbound: bool                 # the connection vgw opened survived (§6.8)


@dataclass(frozen=True)
class SessionDown(Event):
    """An Established session ended; every route it accepted is withdrawn
    (no RoutesChanged follows for them). `notification` is the NOTIFICATION
    that ended it, if any, `sent` whether vgw sent it."""

    reason: str
    notification: Notification | None
    sent: bool


@dataclass(frozen=True)
class RoutesChanged(Event):
    """Accepted routes that appeared or changed, and those that went (withdrawn,
    treat-as-withdraw, or replaced by a denied path)."""

    announced: Mapping[IPv4Network, PathAttributes]
    withdrawn: frozenset


@dataclass(frozen=True)
class RoutesAdvertised(Event):
    """What vgw just sent the peer: routes with the attributes as sent (AS_PATH
    with vgw's AS in front, NEXT_HOP vgw's address), and withdrawals."""

    announced: Mapping[IPv4Network, PathAttributes]
    withdrawn: frozenset


@dataclass(frozen=True)
class RouteDenied(Event):
    """A received route refused by AWS's import policy (bgpcore.rib_in):
    reason is "as-path contains our own AS" or "non-connected next-hop"."""

    prefix: IPv4Network
    attributes: PathAttributes
    reason: str


@dataclass(frozen=True)
class OpenSent(Event):
    version: int
    asn: int
    hold_time: int
    router_id: IPv4Address


@dataclass(frozen=True)
class OpenReceived(Event):
    version: int
    asn: int                       # the 4-octet capability's AS when present
    hold_time: int
    router_id: IPv4Address


@dataclass(frozen=True)
class _NotificationEvent(Event):
    code: int
    subcode: int
    data: bytes

    @property
    def name(self) -> str:
        """"Cease / Maximum Number of Prefixes Reached"."""
        return notification_name(self.code, self.subcode)

    @property
    def notification(self) -> Notification:
        return Notification(self.code, self.subcode, self.data)


@dataclass(frozen=True)
class NotificationSent(_NotificationEvent):
    """`reason` says why in words: "remote AS is 65001, expected 65000",
    "more than 100 prefixes received", "no message for 30 s"..."""

    reason: str = ""


@dataclass(frozen=True)
class NotificationReceived(_NotificationEvent):
    pass


@dataclass(frozen=True)
class EndOfRib(Event):
    """The peer finished its initial UPDATEs (RFC 4724 §2: IPv4 unicast End-of-RIB)."""


@dataclass(frozen=True)
class PrefixLimitWarning(Event):
    """The received prefixes reached the warning share of the limit (once per session)."""

    count: int
    limit: int


@dataclass(frozen=True)
class PrefixLimitExceeded(Event):
    """The peer sent more than `limit` prefixes: Cease/1 follows (RFC 4486)."""

    limit: int


@dataclass(frozen=True)
class MalformedUpdate(Event):
    """An UPDATE with errors. action: "treat-as-withdraw", "attribute-discard"
    or "session-reset" (RFC 7606 §2), the strongest its errors called for."""

    reason: str
    action: str


@dataclass(frozen=True)
class RouteRefreshReceived(Event):
    """The peer asked for the Adj-RIB-Out again (RFC 2918); it is being re-sent."""
