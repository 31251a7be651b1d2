"""Events the core hands to its caller (the daemon), aioquic-style.

They carry everything the daemon needs to act (install ESP SAs, move routes,
log, update status) and nothing it must send back. Key material is kept out of
repr() so that an event printed by mistake leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .payloads import TrafficSelector

Addr = tuple[str, int]


@dataclass(frozen=True)
class Datagram:
    """An IKE message to send. `local` names the socket (outside IP and port 500
    or 4500); on 4500 the shell prepends the non-ESP marker (RFC 3948 §2.2)."""

    data: bytes
    local: Addr
    remote: Addr


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class LogLine(Event):
    """A tunnel log line; AWS's wording where AWS has one (docs/aws.md §3.3).
    level: "info", "warning", "error" or "debug"."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class IkeSaUp(Event):
    spi_i: bytes
    spi_r: bytes
    initiator: bool
    local: Addr
    remote: Addr
    encryption: str
    integrity: str | None
    prf: str
    dh_group: int
    peer_behind_nat: bool
    local_behind_nat: bool
    remote_id: str
    rekeyed: bool = False


@dataclass(frozen=True)
class IkeSaDown(Event):
    """The IKE SA is gone (with its CHILD SAs, which get ChildSaDown first).
    reason: "deleted", "deleted-by-peer", "auth-failed", "no-proposal",
    "invalid-ke" (and other refusals by the peer's NOTIFY, ikecore.sa), "timeout",
    "dpd", "half-open", "expired" (its lifetime ran out unrekeyed), "peer-lost",
    "replaced", "rekeyed", "redundant" (lost a rekey collision), "error"."""

    spi_i: bytes
    spi_r: bytes
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class DpdTimeout(Event):
    """The peer was silent for dpd_timeout_seconds (docs/aws.md §1.5), once per
    outage; `action` is what vgw does about it: "clear", "restart" (the IKE SA goes
    down with reason "dpd" next) or "none" (the SA stays). Counted by the daemon,
    so that an outage shows in the metrics whatever the action."""

    action: str


@dataclass(frozen=True)
class ChildSaUp(Event):
    """A CHILD SA to install: inbound (spi_in, keys_in) and outbound.

    Algorithm ids are IANA numbers; the daemon maps them to the data path.
    `replaces` is the inbound SPI of the SA this one rekeys (None if new):
    make-before-break, the old one stays until its ChildSaDown.
    """

    spi_in: int
    spi_out: int
    encr_id: int
    encr_key_bits: int
    integ_id: int
    encr_key_in: bytes = field(repr=False)
    integ_key_in: bytes = field(repr=False)
    encr_key_out: bytes = field(repr=False)
    integ_key_out: bytes = field(repr=False)
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    local: Addr
    remote: Addr
    udp_encap: bool
    encryption: str
    integrity: str | None
    dh_group: int
    replay_window: int
    lifetime: float
    replaces: int | None = None
    # False for the responder of a rekey: keep sending on the old SA until the
    # initiator deletes it (it cannot decrypt the new one before our answer).
    outbound_ready: bool = True


@dataclass(frozen=True)
class ChildSaDown(Event):
    spi_in: int
    spi_out: int
    reason: str


@dataclass(frozen=True)
class PeerMoved(Event):
    """The peer's address or port changed (a NAT mapping changed, RFC 7296 §2.23):
    outbound ESP of this IKE SA's CHILD SAs must follow."""

    local: Addr
    remote: Addr


@dataclass(frozen=True)
class NatKeepalive(Event):
    """Send one NAT-keepalive (RFC 3948 §2.3: a 0xFF octet in UDP 4500) to the
    peer now: vgw is behind a NAT (ikecore.nat)."""

    local: Addr
    remote: Addr
