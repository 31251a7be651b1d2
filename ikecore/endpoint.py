"""The IKE side of one AWS tunnel (one outside IP): AWS calls it the tunnel
endpoint. The daemon sees the IKE core through it.

The daemon hands every IKE datagram that reaches the tunnel's outside IP to
`receive(data, local, remote, now)`; the endpoint finds the SA by our SPI (or,
for an IKE_SA_INIT request, by the initiator's SPI and address), creates
responder SAs for new peers, and keeps one established IKE SA at a time: AWS
allows one SA pair per tunnel (docs/aws.md §1.8). It is the top of ikecore: the
SAs it creates get SA_HANDLERS, the exchange that answers each request and the
action of each timer, so that no lower module imports an exchange.

Same sans-I/O surface as IkeSa: datagrams_to_send(), next_event(),
next_deadline(), handle_timer(now).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from . import nat
from .constants import ExchangeType, HeaderFlag, NotifyType
from .dos import DosGuard
from .errors import ParseError
from .events import Datagram, Event, IkeSaDown, IkeSaUp, LogLine
from .exchanges import create_child_sa, ike_auth, ike_init, ike_rekey, informational
from .exchanges.create_child_sa import ChildRekey
from .exchanges.ike_init import IkeInit
from .exchanges.ike_rekey import IkeRekey
from .exchanges.informational import DeleteIke
from .message import Header, decode_message, encode_message
from .payloads import KePayload, NoncePayload, NotifyPayload
from .sa import IkeSa, SaHandlers
from .sa_operations import new_ike_spi
from .settings import IkeSettings
from .state import IKE_INITIAL, ChildState, IkeState
from .timers import ChildTimer, IkeTimer
from .transforms import integ_name

# Re-initiation backoff for startup_action start (AWS keeps trying; the figures are vgw's)
RESTART_BASE = 5.0
RESTART_MAX = 120.0
QUIET_DOWN = ("rekeyed", "replaced", "redundant", "deleted")

# What the SAs' upper half does (the SA imports no exchange; ikecore.sa.SaHandlers):
# who answers each request, what each timer does when it fires.
SA_HANDLERS = SaHandlers(
    requests={
        ExchangeType.IKE_SA_INIT: ike_init.respond,
        ExchangeType.IKE_AUTH: ike_auth.respond,
        ExchangeType.CREATE_CHILD_SA: create_child_sa.respond,
        ExchangeType.INFORMATIONAL: informational.respond,
    },
    timers={
        IkeTimer.HALF_OPEN: ike_auth.half_open_expired,
        IkeTimer.REKEY: ike_rekey.rekey_due,
        IkeTimer.EXPIRE: informational.ike_expired,
        IkeTimer.DPD: informational.dpd_check,
        IkeTimer.DELETE_REKEYED: informational.delete_rekeyed,
        IkeTimer.DELETE_REDUNDANT: informational.delete_redundant,
        IkeTimer.NAT_KEEPALIVE: nat.fire_keepalive,
    },
    child_timers={
        ChildTimer.DELETE: informational.delete_replaced_child,
        ChildTimer.EXPIRE: informational.child_expired,
        ChildTimer.REKEY: create_child_sa.rekey_due,
    },
)


# IKE SAs that keep the endpoint from initiating again: one is on its way up, or up
# and not replaced (a REKEYED one has a successor; a redundant one lost a collision)
_NEGOTIATING = (IkeState.INIT_SENT, IkeState.INIT_RECEIVED, IkeState.AUTH_SENT, IkeState.HALF_OPEN)
_LIVE = _NEGOTIATING + (IkeState.ESTABLISHED, IkeState.REKEYING)


@dataclass
class EndpointCounters:
    dropped_malformed: int = 0
    dropped_unknown_spi: int = 0
    dropped_unknown_peer: int = 0
    dropped_half_open_limit: int = 0   # DosGuard said drop (caps)
    cookies_sent: int = 0
    dropped_amplification: int = 0
    dropped_admin_down: int = 0
    dropped_version: int = 0           # not IKEv2 (RFC 7296 §2.5)
    internal_errors: int = 0           # exceptions caught at this edge (bugs)


class IkeEndpoint:
    """The IKE SAs of one tunnel: the established one, those on the way up or
    down, half-open responders; re-initiation (startup_action, DPD restart)."""

    def __init__(self, settings: IkeSettings, guard: DosGuard | None = None):
        self.settings = settings
        self.guard = guard or DosGuard(random_bytes=settings.random_bytes)
        # responder SAs the guard counts, in creation order (= deadline order: each
        # expires half_open_timeout after its IKE_SA_INIT, and time only moves on)
        self._half_open: dict[int, tuple[IkeSa, str, bool]] = {}   # (SA, source, proven)
        # every other live SA (established, initiating, rekeying, deleting): few.
        # Per message and per timer only these and the SA concerned are walked,
        # never the up to max_half_open half-open ones (O(1) per message, not
        # O(half-open): found by tests/lab/test_hardening.py::test_ike_sa_init_flood)
        self._active: dict[int, IkeSa] = {}
        self._init_keys: dict[int, tuple] = {}          # id(responder SA) -> its _init_index key
        self._unproven: set[int] = set()   # responder SAs whose peer returned no cookie
        self.sas: dict[bytes, IkeSa] = {}                 # by our SPI
        self._init_index: dict[tuple, IkeSa] = {}        # (SPIi, remote) of responder SAs
        self._events: deque[Event] = deque()
        self._out: list[Datagram] = []
        self.counters = EndpointCounters()
        self.current: IkeSa | None = None               # the established IKE SA
        self.accept_new = True   # False while the operator holds the tunnel down
        self.restart_at: float | None = None
        self._restart_failures = 0
        self._restarting = False   # DPD restart: keep trying until the tunnel is up again

    # --- inputs -------------------------------------------------------------------

    def receive(self, data: bytes, local: tuple, remote: tuple, now: float) -> None:
        try:
            header = Header.decode(data)
        except ParseError as exc:
            if exc.notify == NotifyType.INVALID_MAJOR_VERSION:
                # §2.5 asks for an unauthenticated INVALID_MAJOR_VERSION answer; vgw
                # answers no junk from anywhere, but says what the CGW got wrong
                # (AWS also speaks IKEv1, docs/aws.md §0: a CGW left on IKEv1 is a common mistake)
                self.counters.dropped_version += 1
                self._events.append(LogLine(
                    f"AWS tunnel dropped an IKE message of {exc.reason} from {remote[0]}: "
                    f"vgw speaks IKEv2 only (set the customer gateway to IKEv2)", "warning"))
            else:
                self.counters.dropped_malformed += 1
            return
        if self.settings.remote_ip and remote[0] != self.settings.remote_ip:
            # AWS checks the customer gateway address when one is configured
            # (docs/aws.md §2: the CGW IP must be static and registered); an
            # authentic message replayed from elsewhere is no exception
            self.counters.dropped_unknown_peer += 1
            return
        sa = self._find(header, remote)
        fresh = sa is None
        if fresh:
            sa = self._maybe_new_responder(header, data, local, remote, now)
            if sa is None:
                return
        try:
            sa.receive(data, header, local, remote, now)
        except Exception as exc:   # noqa: BLE001 - the last guard: a bug here never spreads
            self._internal_error(sa, fresh, "a message", exc)
            if fresh:
                return
        if sa.cookie_required:
            self._forget(sa)
            nonce = self._nonce_of(data, header)
            if nonce is not None:
                self._send_cookie(header, self.guard.make(remote[0], header.spi_i, nonce, now),
                                  local, remote)
                self.guard.counters.cookies_sent += 1
            return
        if id(sa) in self._unproven:
            self._unproven.discard(id(sa))
            if sum(len(d.data) for d in sa._out) > len(data):
                # never answer an unproven address with more than it sent (no
                # amplification); the estimate in DosGuard should have asked for a
                # cookie - this is the guarantee behind it
                self.counters.dropped_amplification += 1
                self._forget(sa)
                return
        self._collect(now, [sa])

    def esp_from(self, remote: tuple, now: float) -> bool:
        """Authenticated UDP-encapsulated ESP of this tunnel arrived from `remote`,
        not from where vgw sends: the customer gateway's NAT mapping changed.
        RFC 7296 §2.23: a host not behind a NAT SHOULD follow a packet whose
        integrity protection validates (ESP as well as IKE), which spares the
        CGW a DPD timeout when its NAT rebinds between IKE messages. Not followed
        when vgw is itself behind a NAT (§2.23: it SHOULD NOT, a DoS risk), nor
        to another address than a configured customer gateway IP. Returns True
        when the IKE SA (and with it the ESP, through PeerMoved) now goes there."""
        sa = self.current
        if sa is None or not sa.established or not sa.may_move_to(remote):
            return False
        if tuple(remote) == tuple(sa.remote):
            return False
        sa.note_peer_address(sa.local, tuple(remote), authenticated=True)
        self._collect(now, [sa])
        return True

    def _find(self, header: Header, remote) -> IkeSa | None:
        if header.from_initiator and not header.is_response:
            if header.spi_r == bytes(8):
                return self._init_index.get((header.spi_i, remote))
        our = header.spi_r if header.from_initiator else header.spi_i
        sa = self.sas.get(our)
        if sa is not None and (sa.spi_i != header.spi_i and sa.spi_i != bytes(8)):
            return None
        return sa

    def _maybe_new_responder(self, header: Header, data: bytes, local, remote, now) -> IkeSa | None:
        if not (header.exchange == ExchangeType.IKE_SA_INIT and header.from_initiator
                and not header.is_response and header.spi_r == bytes(8)
                and header.message_id == 0):
            self.counters.dropped_unknown_spi += 1
            return None
        if not self.accept_new:
            self.counters.dropped_admin_down += 1
            return None
        try:
            msg = decode_message(data, header)
        except ParseError:
            self.counters.dropped_malformed += 1
            return None
        nonce, ke = msg.get(NoncePayload), msg.get(KePayload)
        proven = False
        if nonce is not None and ke is not None:
            first = msg.payloads[0] if msg.payloads else None
            cookie = (first.data if isinstance(first, NotifyPayload)
                      and first.notify_type == NotifyType.COOKIE else None)   # §2.6: first
            verdict, proven = self.guard.admit(remote[0], header.spi_i, nonce.data, cookie, now)
            if verdict == "drop":
                self.counters.dropped_half_open_limit += 1
                return None
            if verdict == "cookie":
                self._send_cookie(header, self.guard.make(remote[0], header.spi_i, nonce.data, now),
                                  local, remote)
                return None
        sa = IkeSa(self.settings, initiator=False, local=local, remote=remote, created=now,
                   spi_i=header.spi_i, state=IKE_INITIAL["responder"], handlers=SA_HANDLERS,
                   proven=proven, frag_budget=self.guard)
        self._init_index[(header.spi_i, remote)] = sa
        self._init_keys[id(sa)] = (header.spi_i, remote)
        self.guard.opened(remote[0], proven)
        self._half_open[id(sa)] = (sa, remote[0], proven)
        if not proven:
            self._unproven.add(id(sa))
        return sa

    def _internal_error(self, sa: IkeSa, fresh: bool, what: str, exc: Exception) -> None:
        """An exception escaped an SA: a bug in vgw, never a reason to lose the
        tunnel's other SAs or the guard's slots. A new responder SA is forgotten
        (else it would hold a half-open slot with no timer to free it); any other
        SA is torn down, so that a timer that raises cannot fire again at once."""
        self.counters.internal_errors += 1
        self._events.append(LogLine(f"vgw internal error in {what} of IKE_SA "
                                    f"{sa.spi_i.hex()}_i: {exc!r}", "error"))
        if fresh:
            self._unproven.discard(id(sa))
            self._forget(sa)
        else:
            sa.fail(f"internal error: {exc!r}", "error")

    def _send_cookie(self, req: Header, cookie: bytes, local, remote) -> None:
        """A stateless COOKIE answer (§2.6): HDR(SPIi, 0), N(COOKIE)."""
        header = Header(req.spi_i, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE, 0, 0)
        self._out.append(Datagram(encode_message(header, [NotifyPayload(NotifyType.COOKIE, cookie)]),
                                  local, remote))
        self.counters.cookies_sent += 1

    @staticmethod
    def _nonce_of(data: bytes, header: Header) -> bytes | None:
        try:
            nonce = decode_message(data, header).get(NoncePayload)
        except ParseError:
            return None
        return nonce.data if nonce else None

    def _forget(self, sa: IkeSa) -> None:
        """Drop a responder SA with no trace (its answer was not sent)."""
        self._unindex_init(sa)
        if self.sas.get(sa.our_spi) is sa:
            del self.sas[sa.our_spi]
        self._active.pop(id(sa), None)
        self._release_half_open(sa)

    def _unindex_init(self, sa: IkeSa) -> None:
        """Stop finding `sa` by (SPIi, peer address)."""
        key = self._init_keys.pop(id(sa), None)
        if key is not None and self._init_index.get(key) is sa:
            del self._init_index[key]

    def _release_half_open(self, sa: IkeSa) -> None:
        """Give `sa`'s slot in the guard's half-open caps back."""
        entry = self._half_open.pop(id(sa), None)
        if entry is not None:
            self.guard.closed(entry[1], entry[2])

    def initiate(self, now: float) -> IkeSa:
        """AWS-side initiation (startup_action start, docs/aws.md §1.7)."""
        if not self.settings.remote_ip:
            raise ValueError("initiating needs the customer gateway IP")
        sa = IkeSa(self.settings, initiator=True, local=(self.settings.local_ip, 500),
                   remote=(self.settings.remote_ip, 500), created=now,
                   spi_i=new_ike_spi(self.settings.random_bytes), state=IKE_INITIAL["initiator"],
                   handlers=SA_HANDLERS, frag_budget=self.guard)
        self.sas[sa.our_spi] = sa
        self._active[id(sa)] = sa
        sa.start(IkeInit(), now)
        self._collect(now)
        return sa

    def hold(self) -> None:
        """The operator took the tunnel down: refuse new IKE SAs, never re-initiate."""
        self.accept_new = False
        self.restart_at = None
        self._restarting = False

    def release(self, now: float) -> None:
        self.accept_new = True
        self._restart_failures = 0
        if self.settings.startup_action == "start" and self.settings.remote_ip and not self._live():
            self.initiate(now)

    def rekey(self, kind: str, now: float) -> str | None:
        """Start a rekey now (`vgw rekey`); returns an error text or None."""
        sa = self.current
        if sa is None or not sa.established:
            return "the tunnel has no established IKE SA"
        if kind == "ike":
            if sa.state is not IkeState.ESTABLISHED:
                return "an IKE SA rekey is already in progress"
            sa.start(IkeRekey(), now)
        else:
            children = [c for c in sa.children.values() if c.state is ChildState.INSTALLED]
            if not children:
                return "the tunnel has no installed CHILD SA to rekey"
            for c in children:
                sa.start(ChildRekey(c.spi_in), now)
        self._collect(now)
        return None

    def note_inbound(self, when: float | None) -> None:
        """The data path saw authenticated ESP at `when` (monotonic): the peer lives."""
        if self.current is not None:
            self.current.note_inbound(when)

    def _live(self) -> bool:
        return any(s.state in _LIVE and not s.redundant for s in self.sas.values())

    def delete(self, now: float) -> None:
        """Send DELETE for every live IKE SA (vgw tunnel down, SIGTERM)."""
        for sa in list(self.sas.values()):
            if sa.established:
                sa.start(DeleteIke(), now)
            elif sa.state is not IkeState.DELETING:
                sa.fail("tunnel taken down", "deleted")
        self._collect(now)

    def handle_timer(self, now: float) -> None:
        due = [sa for sa in self._active.values()
               if (d := sa.next_deadline()) is not None and d <= now]
        for sa, _, _ in self._half_open.values():   # oldest first: stop at the first not due
            d = sa.next_deadline()
            if d is None:
                continue
            if d > now:
                break
            due.append(sa)
        for sa in due:
            try:
                sa.handle_timer(now)
            except Exception as exc:   # noqa: BLE001 - one SA's bug stops no other timer
                self._internal_error(sa, id(sa) in self._half_open, "a timer", exc)
        if self.restart_at is not None and now >= self.restart_at:
            self.restart_at = None
            if self.accept_new and not self._live():
                self.initiate(now)
        self._collect(now, due)

    # --- outputs ----------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        times = [d for d in (sa.next_deadline() for sa in self._active.values()) if d is not None]
        for sa, _, _ in self._half_open.values():   # the oldest one with a deadline is the earliest
            d = sa.next_deadline()
            if d is not None:
                times.append(d)
                break
        if self.restart_at is not None:
            times.append(self.restart_at)
        return min(times) if times else None

    def _all(self) -> list[IkeSa]:
        seen = {id(s): s for s in self.sas.values()}
        for s in self._init_index.values():
            seen.setdefault(id(s), s)
        return list(seen.values())

    def _collect(self, now: float, touched: list[IkeSa] | None = None) -> None:
        """Gather output of the SAs, index new SPIs (also of IKE SAs born in a
        rekey), keep one established SA, decide on re-initiation.

        `touched`: the SAs a message or a timer reached; then the walk covers
        them and the other live SAs, but not the untouched half-open responders
        (nothing reached them, and they hold no link to any other SA). None:
        every SA (operator actions)."""
        work = self._all() if touched is None else [*touched, *self._active.values()]
        seen: dict[int, IkeSa] = {}
        i = 0
        while i < len(work):
            sa = work[i]
            i += 1
            if id(sa) in seen:
                continue
            seen[id(sa)] = sa
            work.extend(sa.spawned)
            sa.spawned = []
            if sa.spi_r != bytes(8) or sa.initiator:
                self.sas.setdefault(sa.our_spi, sa)
            self._out.extend(sa.datagrams_to_send())
            while (ev := sa.next_event()) is not None:
                self._events.append(ev)
                if isinstance(ev, IkeSaUp):
                    self._on_up(sa, now)
                elif isinstance(ev, IkeSaDown):
                    self._on_down(sa, ev, now)
        for sa in seen.values():
            if sa.dead:
                if self.sas.get(sa.our_spi) is sa:
                    del self.sas[sa.our_spi]
                if self.current is sa:
                    self.current = None
            # A responder SA stays findable by (SPIi, peer) for its whole life, so
            # that a late copy of its IKE_SA_INIT reaches it (and is dropped as an
            # old message ID) instead of opening a second, half-open SA (strongSwan
            # keeps its IKE_SA_INIT hashes until the IKE SA is destroyed, too).
            # A responder SA still in INIT_RECEIVED here had its IKE_SA_INIT dropped
            # (malformed): forget it, or junk with fresh SPIs would pile up forever.
            unanswered = sa.state is IkeState.INIT_RECEIVED
            if sa.dead or unanswered:
                self._unindex_init(sa)
            # no longer half-open: established, gone, or never answered (then it
            # must not hold a slot of the guard's caps, having no timer to expire)
            if sa.dead or unanswered or sa.state is not IkeState.HALF_OPEN:
                self._release_half_open(sa)
            if sa.dead:
                self._active.pop(id(sa), None)
            elif id(sa) not in self._half_open and (sa.initiator or self.sas.get(sa.our_spi) is sa):
                self._active[id(sa)] = sa

    def _on_up(self, sa: IkeSa, now: float) -> None:
        old = self.current
        self.current = sa
        self.restart_at = None
        self._restart_failures = 0
        self._restarting = False
        if old is None or old is sa or old.dead or old.successor is sa:
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

    def _on_down(self, sa: IkeSa, ev: IkeSaDown, now: float) -> None:
        """DPD restart and startup_action start bring the tunnel back (docs/aws.md
        §1.5, §1.7); a tunnel that clears or waits for the CGW stays down."""
        if ev.reason in QUIET_DOWN or not self.accept_new:
            return
        if not (sa is self.current or (sa.initiator and sa.established_at is None)):
            return   # a half-open responder SA failing is no reason to initiate
        p = self.settings
        if not p.remote_ip:
            return
        if ev.reason == "dpd" and p.dpd_action == "restart":
            self.restart_at = now
            self._restarting = True
            self._events.append(LogLine("AWS tunnel is restarting the IKE_SA "
                                        "(dpd_timeout_action restart)"))
        elif p.startup_action == "start" or self._restarting:
            # start: AWS keeps the tunnel up; restart: until the first try succeeds
            delay = min(RESTART_MAX, RESTART_BASE * 2 ** self._restart_failures)
            self._restart_failures += 1
            self.restart_at = now + delay
            self._events.append(LogLine(f"AWS tunnel will initiate again in {delay:g} s "
                                        "(startup_action start)", "debug"))

    # --- status --------------------------------------------------------------------------

    @property
    def phase1_state(self) -> str:
        """AWS's TunnelIKEPhase1State vocabulary (docs/aws.md §3.2)."""
        cur = self.current
        if cur is not None and cur.established:
            return "rekeying" if cur.state is IkeState.REKEYING else "established"
        if any(s.state in _NEGOTIATING for s in self._all()):
            return "negotiating"
        return "down"

    @property
    def phase2_state(self) -> str:
        if self.current is not None and self.current.children:
            if any(c.state is ChildState.REKEYING for c in self.current.children.values()):
                return "rekeying"
            return "established"
        if self.current is not None and self.current.established:
            return "negotiating"
        return "down"

    def status(self, now: float | None = None) -> dict:
        cur = self.current

        def left(t):
            return None if t is None or now is None else round(max(0.0, t - now), 1)
        ike = cur.status() if cur else None
        if ike is not None:
            ike["rekey_in"] = left(ike.pop("rekey_at"))
            ike["expires_in"] = left(ike.pop("expire_at"))
            # what the established SA dropped: forged (bad ICV), old or future
            # message IDs, exchanges not allowed now (RFC 7296 §2.3, §2.21)
            ike["counters"] = vars(cur.counters).copy()
        return {
            "phase1_state": self.phase1_state,
            "phase2_state": self.phase2_state,
            "ike": ike,
            "children": [
                {"spi_in": f"{c.spi_in:08x}", "spi_out": f"{c.spi_out:08x}",
                 "encryption": c.suite.encr.aws_name,
                 "integrity": integ_name(c.suite.integ),
                 "dh_group": c.suite.dh or None,
                 "local_ts": [str(t) for t in c.local_ts],
                 "remote_ts": [str(t) for t in c.remote_ts],
                 "state": c.state.value, "rekey_in": left(c.timers.get(ChildTimer.REKEY)),
                 "expires_in": left(c.timers.get(ChildTimer.EXPIRE))}
                for c in (cur.children.values() if cur else [])
            ],
            "half_open": sum(1 for s in self._all() if s.state is IkeState.HALF_OPEN),
            "counters": vars(self.counters).copy(),
        }


__all__ = ["IkeEndpoint", "IkeSaDown"]
