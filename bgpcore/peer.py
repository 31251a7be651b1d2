"""BgpPeer: one BGP neighbor (one tunnel), sans-I/O.

The daemon drives it aioquic-style: it passes in every TCP event and the
current time, then drains `transmit()` (bytes per connection) and
`next_event()`, and calls `handle_timer(now)` at `next_deadline()`. Nothing
here opens a socket, reads a clock, sleeps or starts a thread.

The FSM is the table of bgpcore.fsm; this module carries out its actions,
resolves connection collisions (§6.8, bgpcore.collision), applies received
UPDATEs to the Adj-RIB-In (policy and prefix limit, bgpcore.rib_in) and sends
the Adj-RIB-Out (bgpcore.rib_out).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Hashable, Mapping

from . import events as ev
from .attributes import Action as ErrorAction
from .collision import keep_new
from .connection import Connection
from .constants import (
    AFI_IPV4, BGP_VERSION, MESSAGE_NAMES, SAFI_UNICAST, Cease, ErrorCode, FsmError,
    MessageType, OpenError,
)
from .errors import BgpError
from .fsm import PROGRESS, Action, Event, State, transition
from .messages import (
    KEEPALIVE, Notification, Open, RouteRefresh, Update, decode_notification, decode_open,
    decode_route_refresh, max_prefixes_data, shutdown_data,
)
from .rib_in import AdjRibIn
from .rib_out import AdjRibOut, pack_announcements, pack_withdrawals
from .settings import PeerSettings
from .timers import LARGE_HOLD, MIN_HOLD, Deadline, IdleHold, Timer, TimerKind
from .timers import keepalive_interval, negotiate_hold
from .update import UpdateOutcome, decide_update

# A peer tracks its own connection, the peer's, and one more (a peer that
# reconnected before the old one was cleared); a fourth is refused.
MAX_CONNECTIONS = 3
# after a collision both sides resolved at once, each keeping another connection
COLLISION_RESTART = 1.0

_FSM_SUBCODE = {State.OPENSENT: FsmError.UNEXPECTED_IN_OPENSENT,
                State.OPENCONFIRM: FsmError.UNEXPECTED_IN_OPENCONFIRM,
                State.ESTABLISHED: FsmError.UNEXPECTED_IN_ESTABLISHED}
_CONNECTIONLESS = (State.IDLE, State.CONNECT, State.ACTIVE)


@dataclass
class Counters:
    messages_in: Counter = field(default_factory=Counter)       # "UPDATE" -> n
    messages_out: Counter = field(default_factory=Counter)
    notifications_sent: Counter = field(default_factory=Counter)      # code -> n
    notifications_received: Counter = field(default_factory=Counter)
    malformed_updates: Counter = field(default_factory=Counter)  # RFC 7606 action -> n
    routes_denied: int = 0
    connect_attempts: int = 0
    connect_failures: int = 0
    connections_refused: int = 0
    sessions_established: int = 0
    prefix_limit_exceeded: int = 0
    unsendable_routes: int = 0           # attributes too long for one UPDATE


class BgpPeer:
    def __init__(self, settings: PeerSettings):
        self.settings = settings
        self.counters = Counters()
        self.rib_in = AdjRibIn(settings.local_asn, settings.peer_address, settings.max_prefixes)
        self.rib_out = AdjRibOut(settings.local_asn, settings.local_address)
        self.connect_retry_counter = 0
        self.established_since: float | None = None
        self.last_notification_sent: Notification | None = None
        self.last_notification_received: Notification | None = None
        self._fsms: list[Connection] = [Connection()]
        self._session: Connection | None = None
        self._idle_hold = IdleHold(settings.idle_hold, settings.idle_hold_max)
        self._idle_hold_timer = Timer(TimerKind.IDLE_HOLD)
        self._stopped = True                # ManualStop (or never started): no automatic restart
        self._shown = State.IDLE
        self._warned = False
        self._out: list[tuple[Hashable, bytes]] = []
        self._events: deque = deque()
        self._queue: deque = deque()
        self._firing = False

    # --- the daemon's surface ----------------------------------------------------------

    def start(self, now: float) -> None:
        """ManualStart (or ManualStart_with_PassiveTcpEstablishment)."""
        self._stopped = False
        self._idle_hold = IdleHold(self.settings.idle_hold, self.settings.idle_hold_max)
        self._idle_hold_timer.stop()
        event = (Event.ManualStart_with_PassiveTcpEstablishment if self.settings.passive
                 else Event.ManualStart)
        for c in list(self._fsms):
            self._fire(c, event, now)

    def stop(self, now: float, subcode: int = Cease.ADMINISTRATIVE_SHUTDOWN,
             message: str = "") -> None:
        """ManualStop: Cease(subcode) on every open connection, Idle, no restart.
        `message` is a Shutdown Communication (RFC 9003) for subcodes 2 and 4."""
        self._stopped = True
        self._idle_hold_timer.stop()
        cease = self._cease(subcode, message)
        for c in list(self._fsms):
            self._fire(c, Event.ManualStop, now, notification=cease)

    def reset(self, now: float, subcode: int = Cease.ADMINISTRATIVE_RESET,
              message: str = "") -> None:
        """AutomaticStop: Cease(subcode) on every open connection, Idle, then
        restart after the IdleHold back-off."""
        cease = self._cease(subcode, message)
        for c in list(self._fsms):
            self._fire(c, Event.AutomaticStop, now, notification=cease)

    def connection_made(self, conn: Hashable, now: float, outbound: bool) -> None:
        """A TCP connection is up: vgw's own (outbound) or the peer's, accepted."""
        if self._find(conn) is not None:
            return
        event = Event.Tcp_CR_Acked if outbound else Event.TcpConnectionConfirmed
        free = [c for c in self._fsms if c.conn is None]
        if free:
            c = free[0]
            if c.state == State.IDLE:       # Idle "refuses all incoming BGP connections"
                self._refuse(conn)
                return
        else:
            if len(self._fsms) >= MAX_CONNECTIONS:
                self._refuse(conn)
                return
            for other in list(self._fsms):
                self._fire(other, event, now)      # TRACK_SECOND
            c = Connection(State.CONNECT if outbound else State.ACTIVE)
            self._fsms.append(c)
        c.attach(conn, outbound)
        self._fire(c, event, now, detail="outbound" if outbound else "inbound")

    def connect_failed(self, now: float) -> None:
        """The connection ConnectRequested asked for could not be made."""
        self.counters.connect_failures += 1
        for c in list(self._fsms):
            if c.conn is None and c.state == State.CONNECT:
                self._fire(c, Event.TcpConnectionFails, now, detail="connect failed")

    def data_received(self, conn: Hashable, data: bytes, now: float) -> None:
        c = self._find(conn)
        if c is None:
            return
        c.framer.feed(data)
        while c.conn == conn and c in self._fsms:
            try:
                msg = c.framer.next_message()
            except BgpError as exc:
                self._fire(c, Event.BGPHeaderErr, now, detail=exc.reason,
                           notification=_notification(exc))
                return
            if msg is None:
                return
            kind, body = msg
            self.counters.messages_in[MESSAGE_NAMES[kind]] += 1
            self._message(c, kind, body, now)

    def connection_lost(self, conn: Hashable, now: float) -> None:
        c = self._find(conn)
        if c is not None:
            c.lost = True                   # nothing to close or write any more
            self._fire(c, Event.TcpConnectionFails, now, detail="connection closed")

    def transmit(self) -> list[tuple[Hashable, bytes]]:
        """Bytes to write, per connection, in order (consecutive writes joined)."""
        out: list[tuple[Hashable, bytes]] = []
        for conn, data in self._out:
            if out and out[-1][0] == conn:
                out[-1] = (conn, out[-1][1] + data)
            else:
                out.append((conn, data))
        self._out = []
        return out

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def deadlines(self) -> list[Deadline]:
        out = [Deadline(t.at, t.kind, c.conn) for c in self._fsms for t in c.timers() if t.running]
        if self._idle_hold_timer.running:
            out.append(Deadline(self._idle_hold_timer.at, TimerKind.IDLE_HOLD))
        return sorted(out, key=lambda d: d.at)

    def next_deadline(self) -> float | None:
        d = self.deadlines()
        return d[0].at if d else None

    def handle_timer(self, now: float) -> None:
        for c in list(self._fsms):
            for timer, event in ((c.connect_retry, Event.ConnectRetryTimer_Expires),
                                 (c.hold, Event.HoldTimer_Expires),
                                 (c.keepalive_timer, Event.KeepaliveTimer_Expires)):
                if c in self._fsms and timer.expired(now):
                    timer.stop()
                    self._fire(c, event, now)
        if self._idle_hold_timer.expired(now):
            self._idle_hold_timer.stop()
            for c in list(self._fsms):
                self._fire(c, Event.IdleHoldTimer_Expires, now)

    def set_advertised(self, routes: Mapping, now: float) -> None:
        """The whole Adj-RIB-Out wanted (prefix -> PathAttributes, before
        export). Established: the difference goes out now; otherwise it all
        goes when the session is up."""
        self.rib_out.set_wanted(routes)
        if self._session is not None:
            announce, withdraw = self.rib_out.changes()
            self._send_routes(self._session, announce, withdraw, now)

    def request_refresh(self, now: float) -> bool:
        """Send ROUTE-REFRESH for IPv4 unicast if the peer can answer it (RFC 2918 §4)."""
        c = self._session
        if c is None or not c.peer_open.capabilities.refresh:
            return False
        self._send(c, RouteRefresh(AFI_IPV4, SAFI_UNICAST).encode(), MessageType.ROUTE_REFRESH, now)
        return True

    # --- state for status and tests ----------------------------------------------------

    @property
    def state(self) -> State:
        """The most advanced connection's state (the peer's, for the daemon)."""
        return max((c.state for c in self._fsms), key=PROGRESS.__getitem__)

    @property
    def accepted(self) -> dict:
        return dict(self.rib_in.accepted)

    @property
    def received_prefixes(self) -> int:
        return len(self.rib_in.received)

    @property
    def advertised(self) -> dict:
        return dict(self.rib_out.sent)

    @property
    def negotiated_hold_time(self) -> int | None:
        return self._session.hold_time if self._session else None

    @property
    def peer_router_id(self) -> IPv4Address | None:
        return self._session.peer_open.router_id if self._session else None

    @property
    def peer_open(self) -> Open | None:
        return self._session.peer_open if self._session else None

    @property
    def connections(self) -> list[tuple[Hashable, bool, State]]:
        """(conn, outbound, state) of every TCP connection being tracked."""
        return [(c.conn, c.outbound, c.state) for c in self._fsms if c.conn is not None]

    @property
    def idle_hold_delay(self) -> float:
        return self._idle_hold.delay

    # --- messages ------------------------------------------------------------------------

    def _message(self, c: Connection, kind: MessageType, body: bytes, now: float) -> None:
        if kind == MessageType.OPEN:
            self._open(c, body, now)
        elif kind == MessageType.UPDATE:
            if c.state != State.ESTABLISHED:
                self._fire(c, Event.UpdateMsg, now, detail="UPDATE")   # FSM Error
                return
            try:
                outcome = decide_update(body, c.four_octet, self.settings.peer_asn)
            except BgpError as exc:
                self._malformed(exc.reason, ErrorAction.SESSION_RESET)
                self._fire(c, Event.UpdateMsgErr, now, detail=exc.reason,
                           notification=_notification(exc))
                return
            self._fire(c, Event.UpdateMsg, now, payload=outcome)
        elif kind == MessageType.NOTIFICATION:
            n = decode_notification(body)
            if not _collision(n):
                self.last_notification_received = n
            self.counters.notifications_received[n.code] += 1
            c.ended_by = (n, False)
            self._emit(ev.NotificationReceived(n.code, n.subcode, n.data))
            version_error = (n.code, n.subcode) == (ErrorCode.OPEN_MESSAGE,
                                                    OpenError.UNSUPPORTED_VERSION)
            self._fire(c, Event.NotifMsgVerErr if version_error else Event.NotifMsg, now,
                       detail=f"received {n.code}/{n.subcode} {n.name}")
        elif kind == MessageType.KEEPALIVE:
            self._fire(c, Event.KeepAliveMsg, now)
        else:
            self._fire(c, Event.UpdateMsg, now, detail="ROUTE-REFRESH",
                       payload=decode_route_refresh(body))

    def _open(self, c: Connection, body: bytes, now: float) -> None:
        try:
            peer = decode_open(body)
            self._emit(ev.OpenReceived(peer.version, peer.asn, peer.hold_time, peer.router_id))
            self._check_open(peer)
        except BgpError as exc:
            self._fire(c, Event.BGPOpenMsgErr, now, detail=exc.reason,
                       notification=_notification(exc))
            return
        losers: list[Connection] = []
        if c.state == State.OPENSENT:
            c.peer_open = peer
            losers = self._collision_losers(c, peer)
            if c in losers:
                losers = [c]
        dump = Notification(ErrorCode.CEASE, Cease.CONNECTION_COLLISION_RESOLUTION)
        if c not in losers:
            self._fire(c, Event.BGPOpen, now)
        for loser in losers:        # after the survivor moved on: the peer's state never dips
            self._fire(loser, Event.OpenCollisionDump, now, notification=dump,
                       detail="connection collision")

    def _check_open(self, peer: Open) -> None:
        """RFC 4271 §6.2, in its order."""
        s = self.settings
        if peer.version != BGP_VERSION:
            raise BgpError(ErrorCode.OPEN_MESSAGE, OpenError.UNSUPPORTED_VERSION,
                           BGP_VERSION.to_bytes(2, "big"), f"version {peer.version}")
        if peer.asn != s.peer_asn:
            # AWS's wording (docs/aws.md §3.4)
            raise BgpError(ErrorCode.OPEN_MESSAGE, OpenError.BAD_PEER_AS,
                           reason=f"remote AS is {peer.asn}, expected {s.peer_asn}")
        if 0 < peer.hold_time < MIN_HOLD:
            raise BgpError(ErrorCode.OPEN_MESSAGE, OpenError.UNACCEPTABLE_HOLD_TIME,
                           reason=f"hold time {peer.hold_time}")
        if int(peer.router_id) == 0 or peer.router_id == s.router_id:
            raise BgpError(ErrorCode.OPEN_MESSAGE, OpenError.BAD_BGP_IDENTIFIER,
                           reason=f"BGP identifier {peer.router_id}")

    def _collision_losers(self, c: Connection, peer: Open) -> list[Connection]:
        """§6.8: the connections an OPEN on `c` makes redundant (`c` itself
        when it collides with an Established one or loses the comparison)."""
        losers = []
        for other in self._fsms:
            if other is c or other.conn is None:
                continue
            if other.state == State.ESTABLISHED:
                return [c]
            if other.state == State.OPENCONFIRM:
                if not keep_new(self.settings.router_id, peer.router_id,
                                c.outbound, other.outbound):
                    return [c]
                losers.append(other)
        return losers

    # --- the FSM ---------------------------------------------------------------------------

    def _fire(self, c: Connection, event: Event, now: float, detail: str = "",
              notification: Notification | None = None, payload=None) -> None:
        """Feed one event to one connection's FSM. Events an action raises
        (an AutomaticStop from the prefix limit, say) wait for the current one."""
        self._queue.append((c, event, detail, notification, payload))
        if self._firing:
            return
        self._firing = True
        try:
            while self._queue:
                self._step(now, *self._queue.popleft())
        finally:
            self._firing = False

    def _step(self, now: float, c: Connection, event: Event, detail: str,
              notification: Notification | None, payload) -> None:
        if c not in self._fsms:
            return
        old = c.state
        t = transition(old, event)
        if t.next is not None:
            c.state = t.next
        for action in t.actions:
            if action is not Action.SEND_ROUTES:
                self._do(action, c, old, now, notification, payload, detail)
        reason = event.name + (f": {detail}" if detail else "")
        self._show(reason)
        if old == State.ESTABLISHED and c.state != State.ESTABLISHED:
            self._session_down(c, reason, now)
        self._tidy(c, old, now)
        if Action.SEND_ROUTES in t.actions:            # on entering Established
            self._session_up(c, now)

    def _do(self, action: Action, c: Connection, old: State, now: float,
            notification: Notification | None, payload, detail: str) -> None:
        s = self.settings
        if action is Action.INITIALIZE:
            self.connect_retry_counter = 0
        elif action is Action.START_CONNECT_RETRY:
            c.connect_retry.start(now, s.connect_retry)
        elif action is Action.STOP_CONNECT_RETRY:
            c.connect_retry.stop()
        elif action is Action.INITIATE_TCP:
            self.counters.connect_attempts += 1
            self._emit(ev.ConnectRequested())
        elif action is Action.DROP_TCP:
            if c.conn is not None:
                if not c.lost:
                    self._emit(ev.CloseConnection(c.conn))
                c.detach()
        elif action in (Action.RELEASE, Action.DELETE_ROUTES):
            c.hold.stop()
            c.keepalive_timer.stop()
        elif action is Action.ZERO_COUNTER:
            self.connect_retry_counter = 0
        elif action is Action.INCR_COUNTER:
            self.connect_retry_counter += 1
        elif action is Action.DAMP:
            c.damp = True
        elif action is Action.START_IDLE_HOLD:
            self._idle_hold_timer.start(now, self._restart_delay(c))
        elif action is Action.AUTOMATIC_START:
            self._fire(c, Event.AutomaticStart_with_PassiveTcpEstablishment if s.passive
                       else Event.AutomaticStart, now, detail="IdleHoldTimer expired")
        elif action is Action.SEND_OPEN:
            mine = Open.for_speaker(s.local_asn, s.hold_time, s.router_id)
            self._send(c, mine.encode(), MessageType.OPEN, now)
            self._emit(ev.OpenSent(mine.version, s.local_asn, s.hold_time, s.router_id))
        elif action is Action.SEND_KEEPALIVE:
            self._send(c, KEEPALIVE, MessageType.KEEPALIVE, now)
        elif action in (Action.SEND_CEASE, Action.SEND_ERROR):
            self._notify(c, notification or Notification(ErrorCode.CEASE, 0), now, detail)
        elif action is Action.SEND_HOLD_EXPIRED:
            self._notify(c, Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0), now,
                         f"no message for {(c.hold_time or LARGE_HOLD):g} s")
        elif action is Action.SEND_FSM_ERROR:
            self._notify(c, Notification(ErrorCode.FSM, _FSM_SUBCODE.get(old, 0)), now,
                         f"unexpected {detail or 'event'} in {old}")
        elif action is Action.SET_HOLD_LARGE:
            c.hold.start(now, LARGE_HOLD)
        elif action is Action.SET_HOLD_NEGOTIATED:
            c.hold_time = negotiate_hold(s.hold_time, c.peer_open.hold_time)
            c.keepalive = keepalive_interval(c.hold_time)
            if c.hold_time:
                c.hold.start(now, c.hold_time)
            else:
                c.hold.stop()
        elif action in (Action.START_KEEPALIVE, Action.RESTART_KEEPALIVE):
            if c.keepalive:
                c.keepalive_timer.start(now, c.keepalive)
        elif action is Action.RESTART_HOLD:
            if c.hold_time:
                c.hold.start(now, c.hold_time)
        elif action is Action.PROCESS_MESSAGE:
            self._process(c, payload, now)
        # TRACK_SECOND: the second connection got its own Connection in connection_made

    def _restart_delay(self, c: Connection) -> float:
        """The IdleHold back-off; but a peer whose last connection was lost to a
        collision both sides resolved at once (each kept a different one, RFC
        4271 §6.8 leaves that race open) comes back after COLLISION_RESTART:
        nothing failed, and the full back-off only delayed the session."""
        if c.ended_by is not None and _collision(c.ended_by[0]):
            return min(COLLISION_RESTART, self._idle_hold.delay)
        return self._idle_hold.delay

    def _show(self, reason: str) -> None:
        new = self.state
        if new != self._shown:
            old, self._shown = self._shown, new
            self._emit(ev.StateChanged(old, new, reason))

    def _tidy(self, c: Connection, old: State, now: float) -> None:
        """Dispose of the FSM of a closed connection while another remains
        (§8); when none remains, a peer that went Idle by itself restarts
        after the IdleHold back-off (AutomaticStart_with_DampPeerOscillations)."""
        if c.conn is not None or c.state not in _CONNECTIONLESS:
            return
        if len(self._fsms) > 1:
            self._fsms.remove(c)
            return
        if c.state == State.IDLE and old != State.IDLE and not self._stopped:
            if c.damp:
                self._idle_hold.failed()
                c.damp = False
            self._fire(c, Event.AutomaticStart_with_DampPeerOscillations_and_PassiveTcpEstablishment
                       if self.settings.passive else Event.AutomaticStart_with_DampPeerOscillations,
                       now, detail=f"restart in {self._idle_hold.delay:g} s")

    # --- sessions and routes ----------------------------------------------------------------

    def _session_up(self, c: Connection, now: float) -> None:
        self._session = c
        self.established_since = now
        self._warned = False
        self.counters.sessions_established += 1
        caps = c.peer_open.capabilities
        self._emit(ev.Established(c.peer_open.router_id, c.hold_time, c.keepalive,
                                  c.peer_open.asn, c.four_octet, caps.refresh, c.outbound))
        announce, withdraw = self.rib_out.changes(everything=True)
        self._send_routes(c, announce, withdraw, now)
        self._send(c, Update().encode(), MessageType.UPDATE, now)  # End-of-RIB (RFC 4724 §2)

    def _session_down(self, c: Connection, reason: str, now: float) -> None:
        if self._session is c:
            self._session = None
        if self.established_since is not None:
            self._idle_hold.stable(now - self.established_since)
        self.established_since = None
        self.rib_in.clear()
        self.rib_out.reset()
        notification, sent = c.ended_by if c.ended_by else (None, False)
        self._emit(ev.SessionDown(reason, notification, sent))

    def _process(self, c: Connection, payload, now: float) -> None:
        if isinstance(payload, RouteRefresh):
            if (payload.afi, payload.safi) == (AFI_IPV4, SAFI_UNICAST):   # else ignored, §4
                self._emit(ev.RouteRefreshReceived())
                announce, withdraw = self.rib_out.changes(everything=True)
                self._send_routes(c, announce, withdraw, now)
            return
        outcome: UpdateOutcome = payload
        if outcome.problems:
            self._malformed(outcome.reason, outcome.action)
        change = self.rib_in.apply(outcome.withdrawn, outcome.announced)
        for prefix, attrs, why in change.denied:
            self.counters.routes_denied += 1
            self._emit(ev.RouteDenied(prefix, attrs, why))
        limit = self.settings.max_prefixes
        count = len(self.rib_in.received) + change.limit_exceeded
        share = self.settings.prefix_warning
        if limit and share and not self._warned and count >= math.ceil(limit * share):
            self._warned = True
            self._emit(ev.PrefixLimitWarning(count, limit))
        if change.limit_exceeded:
            self.counters.prefix_limit_exceeded += 1
            self._emit(ev.PrefixLimitExceeded(limit))
            cease = Notification(ErrorCode.CEASE, Cease.MAX_PREFIXES, max_prefixes_data(limit))
            self._fire(c, Event.AutomaticStop, now, notification=cease,
                       detail=f"more than {limit} prefixes received")
            return
        if change.announced or change.withdrawn:
            self._emit(ev.RoutesChanged(change.announced, frozenset(change.withdrawn)))
        if outcome.end_of_rib:
            self._emit(ev.EndOfRib())

    def _send_routes(self, c: Connection, announce: dict, withdraw, now: float) -> None:
        msgs, unsendable = pack_announcements(announce, c.four_octet)
        for p in unsendable:
            announce.pop(p)
        self.counters.unsendable_routes += len(unsendable)
        for m in pack_withdrawals(withdraw) + msgs:
            self._send(c, m, MessageType.UPDATE, now)
        self.rib_out.commit(announce, withdraw)
        if announce or withdraw:
            self._emit(ev.RoutesAdvertised(dict(announce), frozenset(withdraw)))

    # --- output --------------------------------------------------------------------------

    def _send(self, c: Connection, data: bytes, kind: MessageType, now: float) -> None:
        self._out.append((c.conn, data))
        self.counters.messages_out[MESSAGE_NAMES[kind]] += 1
        # §8.2.2 Established: sending a KEEPALIVE or UPDATE restarts the KeepaliveTimer
        if kind in (MessageType.KEEPALIVE, MessageType.UPDATE) and c.keepalive_timer.running:
            c.keepalive_timer.start(now, c.keepalive)

    def _notify(self, c: Connection, n: Notification, now: float, reason: str) -> None:
        if c.conn is None or c.lost:
            return
        self._send(c, n.encode(), MessageType.NOTIFICATION, now)
        if not _collision(n):
            self.last_notification_sent = n
        self.counters.notifications_sent[n.code] += 1
        c.ended_by = (n, True)
        self._emit(ev.NotificationSent(n.code, n.subcode, n.data, reason))

    def _malformed(self, reason: str, action: ErrorAction) -> None:
        self.counters.malformed_updates[action.label] += 1
        self._emit(ev.MalformedUpdate(reason, action.label))

    def _refuse(self, conn: Hashable) -> None:
        self.counters.connections_refused += 1
        self._emit(ev.CloseConnection(conn))

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def _find(self, conn: Hashable) -> Connection | None:
        for c in self._fsms:
            if c.conn is not None and c.conn == conn:
                return c
        return None

    @staticmethod
    def _cease(subcode: int, message: str) -> Notification:
        data = shutdown_data(message) if message and subcode in (2, 4) else b""
        return Notification(ErrorCode.CEASE, subcode, data)


def _collision(n: Notification) -> bool:
    """Cease/7 closes one of two connections, not the session: it is counted
    and reported, but not kept as the last NOTIFICATION (status shows why a
    session went down, which a resolved collision never is)."""
    return (n.code, n.subcode) == (ErrorCode.CEASE, Cease.CONNECTION_COLLISION_RESOLUTION)


def _notification(exc: BgpError) -> Notification:
    return Notification(exc.code, exc.subcode, exc.data)
