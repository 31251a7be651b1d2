"""One AWS tunnel (one outside IP) as the daemon sees the IKE core.

The daemon hands every IKE datagram that reaches the tunnel's outside IP to
`receive(data, local, remote, now)`; the tunnel finds the SA by our SPI (or, for
an IKE_SA_INIT request, by the initiator's SPI and address), creates responder
SAs for new peers, and keeps one established IKE SA at a time: AWS allows one SA
pair per tunnel (aws-facts.md §1.8).

Same sans-I/O surface as IkeSa: datagrams_to_send(), next_event(),
next_deadline(), handle_timer(now).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .constants import ExchangeType
from .errors import ParseError
from .events import Datagram, Event, IkeSaDown, IkeSaUp, LogLine
from .exchanges.ike_init import IkeInit, new_ike_spi
from .exchanges.informational import DeleteIke
from .message import Header
from .policy import TunnelPolicy
from .sa import IkeSa, State
from .transforms import integ_name

MAX_HALF_OPEN = 64  # per tunnel; the hardening work refines this with cookies


@dataclass
class TunnelCounters:
    dropped_malformed: int = 0
    dropped_unknown_spi: int = 0
    dropped_unknown_peer: int = 0
    dropped_half_open_limit: int = 0
    dropped_admin_down: int = 0


class IkeTunnel:
    def __init__(self, policy: TunnelPolicy):
        self.policy = policy
        self.sas: dict[bytes, IkeSa] = {}                 # by our SPI
        self._init_index: dict[tuple, IkeSa] = {}        # (SPIi, remote) of responder SAs
        self._events: deque[Event] = deque()
        self._out: list[Datagram] = []
        self.counters = TunnelCounters()
        self.current: IkeSa | None = None               # the established IKE SA
        self.accept_new = True   # False while the operator holds the tunnel down

    # --- inputs -------------------------------------------------------------------

    def receive(self, data: bytes, local: tuple, remote: tuple, now: float) -> None:
        try:
            header = Header.decode(data)
        except ParseError:
            self.counters.dropped_malformed += 1
            return
        sa = self._find(header, remote)
        if sa is None:
            sa = self._maybe_new_responder(header, local, remote, now)
            if sa is None:
                return
        sa.receive(data, header, local, remote, now)
        self._collect(now)

    def _find(self, header: Header, remote) -> IkeSa | None:
        if header.from_initiator and not header.is_response:
            if header.spi_r == bytes(8):
                return self._init_index.get((header.spi_i, remote))
        our = header.spi_r if header.from_initiator else header.spi_i
        sa = self.sas.get(our)
        if sa is not None and (sa.spi_i != header.spi_i and sa.spi_i != bytes(8)):
            return None
        return sa

    def _maybe_new_responder(self, header: Header, local, remote, now) -> IkeSa | None:
        if not (header.exchange == ExchangeType.IKE_SA_INIT and header.from_initiator
                and not header.is_response and header.spi_r == bytes(8)
                and header.message_id == 0):
            self.counters.dropped_unknown_spi += 1
            return None
        if not self.accept_new:
            self.counters.dropped_admin_down += 1
            return None
        if self.policy.remote_ip and remote[0] != self.policy.remote_ip:
            # AWS checks the customer gateway address when one is configured
            # (aws-facts.md §2: the CGW IP must be static and registered)
            self.counters.dropped_unknown_peer += 1
            return None
        if sum(1 for s in self.sas.values() if s.state == State.HALF_OPEN) >= MAX_HALF_OPEN:
            self.counters.dropped_half_open_limit += 1
            return None
        # INIT_SENT doubles as "IKE_SA_INIT not answered yet" for a responder
        sa = IkeSa(self.policy, initiator=False, local=local, remote=remote, created=now,
                   spi_i=header.spi_i, state=State.INIT_SENT)
        self._init_index[(header.spi_i, remote)] = sa
        return sa

    def initiate(self, now: float) -> IkeSa:
        """AWS-side initiation (startup_action start, aws-facts.md §1.7)."""
        if not self.policy.remote_ip:
            raise ValueError("initiating needs the customer gateway IP")
        sa = IkeSa(self.policy, initiator=True, local=(self.policy.local_ip, 500),
                   remote=(self.policy.remote_ip, 500), created=now,
                   spi_i=new_ike_spi(self.policy.random_bytes))
        self.sas[sa.our_spi] = sa
        sa.start(IkeInit(), now)
        self._collect(now)
        return sa

    def delete(self, now: float) -> None:
        """Send DELETE for every live IKE SA (vgw tunnel down, SIGTERM)."""
        for sa in list(self.sas.values()):
            if sa.state == State.ESTABLISHED:
                sa.start(DeleteIke(), now)
            elif sa.state != State.DELETING:
                sa.fail("tunnel taken down", "deleted")
        self._collect(now)

    def handle_timer(self, now: float) -> None:
        for sa in self._all():
            deadline = sa.next_deadline()
            if deadline is not None and deadline <= now:
                sa.handle_timer(now)
        self._collect(now)

    # --- outputs ----------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        times = [d for d in (sa.next_deadline() for sa in self._all()) if d is not None]
        return min(times) if times else None

    def _all(self) -> list[IkeSa]:
        seen = {id(s): s for s in self.sas.values()}
        for s in self._init_index.values():
            seen.setdefault(id(s), s)
        return list(seen.values())

    def _collect(self, now: float) -> None:
        """Gather output of all SAs, index new SPIs, keep one established SA."""
        for sa in self._all():
            if sa.spi_r != bytes(8) or sa.initiator:
                self.sas.setdefault(sa.our_spi, sa)
            self._out.extend(sa.datagrams_to_send())
            while (ev := sa.next_event()) is not None:
                self._events.append(ev)
                if isinstance(ev, IkeSaUp):
                    self._on_up(sa, now)
        for key, sa in list(self.sas.items()):
            if sa.dead:
                del self.sas[key]
                if self.current is sa:
                    self.current = None
        # A responder SA stays findable by (SPIi, peer) for its whole life, so that
        # a late copy of its IKE_SA_INIT reaches it (and is dropped as an old
        # message ID) instead of opening a second, half-open SA (strongSwan keeps
        # its IKE_SA_INIT hashes until the IKE SA is destroyed, too).
        # A responder SA still in INIT_SENT here had its IKE_SA_INIT dropped
        # (malformed): forget it, or junk with fresh SPIs would pile up forever.
        for key, sa in list(self._init_index.items()):
            if sa.dead or (not sa.initiator and sa.state == State.INIT_SENT):
                del self._init_index[key]

    def _on_up(self, sa: IkeSa, now: float) -> None:
        old = self.current
        self.current = sa
        if old is None or old is sa or old.dead:
            return
        if sa.initial_contact:
            # RFC 7296 §2.4: INITIAL_CONTACT: the peer lost its state; drop ours silently
            self._events.append(LogLine(f"AWS tunnel replaces the IKE_SA with cgw: "
                                        f"{old.remote[0]} (INITIAL_CONTACT)"))
            old.fail("replaced by a new IKE_SA (INITIAL_CONTACT)", "replaced")
        else:
            old.start(DeleteIke("replaced"), now)
        self._out.extend(old.datagrams_to_send())
        while (e := old.next_event()) is not None:
            self._events.append(e)

    # --- status --------------------------------------------------------------------------

    @property
    def phase1_state(self) -> str:
        """AWS's TunnelIKEPhase1State vocabulary (aws-facts.md §3.2)."""
        if self.current is not None and self.current.established:
            return "established"
        if any(s.state in (State.INIT_SENT, State.AUTH_SENT, State.HALF_OPEN) for s in self._all()):
            return "negotiating"
        return "down"

    @property
    def phase2_state(self) -> str:
        if self.current is not None and self.current.children:
            return "established"
        if self.current is not None and self.current.established:
            return "negotiating"
        return "down"

    def status(self) -> dict:
        cur = self.current
        return {
            "phase1_state": self.phase1_state,
            "phase2_state": self.phase2_state,
            "ike": cur.status() if cur else None,
            "children": [
                {"spi_in": f"{c.spi_in:08x}", "spi_out": f"{c.spi_out:08x}",
                 "encryption": c.suite.encr.aws_name,
                 "integrity": integ_name(c.suite.integ),
                 "dh_group": c.suite.dh or None,
                 "local_ts": [str(t) for t in c.local_ts],
                 "remote_ts": [str(t) for t in c.remote_ts],
                 "state": c.state, "created": c.created}
                for c in (cur.children.values() if cur else [])
            ],
            "half_open": sum(1 for s in self._all() if s.state == State.HALF_OPEN),
            "counters": vars(self.counters).copy(),
        }


__all__ = ["IkeTunnel", "IkeSaDown"]
