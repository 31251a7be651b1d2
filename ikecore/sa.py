"""One IKE SA: its keys, its message windows and its timers (RFC 7296 §2.1-§2.3).

Sans-I/O in the aioquic manner: `receive(data, header, local, remote, now)`,
`handle_timer(now)`, then drain `datagrams_to_send()` and `next_event()`, and ask
`next_deadline()` when to call `handle_timer` again. Nothing here reads a clock,
opens a socket or sleeps.

The SA is the message layer: message IDs, the window of one outstanding request
each way, the response cache (a retransmitted request gets the same bytes back,
§2.1), request retransmission with backoff and give-up. What each exchange says
lives in ikecore/exchanges/, one module per exchange, as strongSwan keeps one
task per exchange; the SA reaches them only through the SaHandlers the endpoint
passes in (it imports no exchange). Its state moves by ikecore.state.transition.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .child import ChildSa
from .constants import ExchangeType, HeaderFlag, IdType, NotifyType, PayloadType
from .crypto import IntegrityError
from .errors import CookieRequired, ExchangeError, ParseError
from .events import Addr, ChildSaDown, Datagram, Event, IkeSaDown, LogLine, PeerMoved
from .fragment import Reassembler, fragment_number, message_budget
from .fragment import encode as encode_fragments
from .message import Header, Message, SaKeys, decode_chain, decode_message, encode_message, open_sk
from .payloads import IdPayload, NotifyPayload, Payload, SkfPayload, SkPayload
from .settings import IkeSettings
from .state import ESTABLISHED_STATES, IKE_INITIAL, IkeState, transition
from .timers import ChildTimer, IkeTimer
from .transforms import integ_name, prf_name


# The cached response goes again at most this often per request, this far apart
# (vgw's figures: above any real peer's retransmissions, see _resend_allowed).
RESEND_MAX = 8
RESEND_INTERVAL = 1.0


@dataclass(frozen=True)
class SaHandlers:
    """What the layers above the SA do for it. The endpoint passes these in
    (ikecore.endpoint.SA_HANDLERS), so the SA imports no exchange: the answer
    to each request type, and the action of each timer kind when it fires."""

    requests: Mapping[int, Callable] = field(default_factory=dict)         # (sa, msg, now, local, remote) -> payloads
    timers: Mapping[IkeTimer, Callable] = field(default_factory=dict)       # (sa, now)
    child_timers: Mapping[ChildTimer, Callable] = field(default_factory=dict)  # (sa, child, now)


@dataclass
class Pending:
    """Our outstanding request (window size 1, §2.3)."""

    exchange: object
    message_id: int
    packets: list[bytes]
    local: Addr
    remote: Addr
    deadline: float
    attempt: int = 0


@dataclass
class Counters:
    dropped_unauthenticated: int = 0   # bad integrity / syntax before authentication
    dropped_bad_message_id: int = 0
    dropped_unexpected: int = 0
    retransmitted_requests: int = 0
    retransmitted_responses: int = 0
    resends_refused: int = 0           # a retransmission not answered again (RESEND_*)
    moves_refused: int = 0             # authenticated, from an address vgw must not follow
    invalid_syntax: int = 0
    unsupported_critical: int = 0      # requests refused for an unknown critical payload


@dataclass
class IkeSa:
    settings: IkeSettings
    initiator: bool                     # original initiator of this IKE SA?
    local: Addr
    remote: Addr
    created: float
    spi_i: bytes = bytes(8)
    spi_r: bytes = bytes(8)
    state: IkeState = IKE_INITIAL["initiator"]   # changed by ikecore.state.transition only
    handlers: SaHandlers = field(default_factory=SaHandlers, repr=False)

    # negotiated / derived
    suite: object = None
    prf: object = None
    keys: SaKeys | None = field(default=None, repr=False)
    sk_d: bytes = field(default=b"", repr=False)
    sk_pi: bytes = field(default=b"", repr=False)
    sk_pr: bytes = field(default=b"", repr=False)
    nonce_i: bytes = field(default=b"", repr=False)
    nonce_r: bytes = field(default=b"", repr=False)
    dh_key: object = field(default=None, repr=False)
    init_request: bytes = field(default=b"", repr=False)   # RealMessage1 (§2.15)
    init_response: bytes = field(default=b"", repr=False)  # RealMessage2
    peer_behind_nat: bool = False
    local_behind_nat: bool = False
    peer_fragmentation: bool = False
    peer_sig_hashes: tuple = ()         # the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)
    remote_identity: str = ""
    initial_contact: bool = False
    established_at: float | None = None
    last_error: str = ""
    close_after_response: tuple[str, str] | None = None  # set by a DELETE of the IKE SA
    last_inbound: float = 0.0           # last authenticated IKE message or ESP packet (DPD)
    # rekeying (RFC 7296 §2.8): the IKE SA that replaced this one, every IKE SA
    # object this one created (for the endpoint to index), the peer's new IKE SA
    # while our own rekey is in flight (a collision, §2.8.1)
    successor: "IkeSa | None" = field(default=None, repr=False)
    spawned: list = field(default_factory=list, repr=False)
    ike_collision: "IkeSa | None" = field(default=None, repr=False)
    collisions: dict = field(default_factory=dict, repr=False)   # old spi_in -> peer's new child
    redundant: bool = False             # lost a rekey collision: goes down as "redundant"
    proven: bool = True                 # responder: the peer returned a valid cookie (or none was needed)
    cookie_required: bool = False       # responder: answer with a COOKIE instead (§2.6)

    children: dict[int, ChildSa] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)

    # message layer
    next_request_id: int = 0
    expected_request_id: int = 0
    pending: Pending | None = None
    queue: deque = field(default_factory=deque)
    cached_response: tuple[int, list[bytes]] | None = field(default=None, repr=False)
    resends: int = 0                    # times the cached response went again
    last_resend: float = float("-inf")
    fragments: object = field(default=None, repr=False)   # fragment.Reassembler, once needed
    frag_budget: object = field(default=None, repr=False)  # the gateway's DosGuard (shared bytes)
    timers: dict[IkeTimer, float] = field(default_factory=dict)   # deadlines (ikecore.timers)
    _out: list[Datagram] = field(default_factory=list, repr=False)
    _events: deque = field(default_factory=deque, repr=False)

    # --- the sans-I/O surface ------------------------------------------------

    @property
    def our_spi(self) -> bytes:
        return self.spi_i if self.initiator else self.spi_r

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        times = list(self.timers.values())
        if self.pending:
            times.append(self.pending.deadline)
        times += [t for t in (c.deadline() for c in self.children.values()) if t is not None]
        return min(times) if times else None

    def uniform(self) -> float:
        """A random float in [0, 1) from the settings' random source (testable)."""
        return int.from_bytes(self.settings.random_bytes(7), "big") / float(1 << 56)

    def note_inbound(self, when: float | None) -> None:
        """ESP from the peer counts as life for DPD (the data path tells)."""
        if when is not None and when > self.last_inbound:
            self.last_inbound = when

    @property
    def dead(self) -> bool:
        return self.state is IkeState.DEAD

    @property
    def established(self) -> bool:
        """Authenticated and not being deleted (ikecore.state.ESTABLISHED_STATES)."""
        return self.state in ESTABLISHED_STATES

    @property
    def udp_encap(self) -> bool:
        """ESP goes in UDP when a NAT sits on the path (RFC 3948, RFC 7296 §2.23)."""
        return self.peer_behind_nat or self.local_behind_nat

    def receive(self, data: bytes, header: Header, local: Addr, remote: Addr, now: float) -> None:
        if self.dead:
            return
        if header.is_response:
            self._receive_response(data, header, local, remote, now)
        else:
            self._receive_request(data, header, local, remote, now)
        self._send_next(now)

    def handle_timer(self, now: float) -> None:
        if self.dead:
            return
        p = self.pending
        if p is not None and now >= p.deadline:
            delays = p.exchange.delays(self.settings)
            if p.attempt < len(delays) - 1:
                p.attempt += 1
                p.deadline = now + delays[p.attempt]
                self.counters.retransmitted_requests += 1
                for pkt in p.packets:
                    self._out.append(Datagram(pkt, p.local, p.remote))
                self.log(f"AWS tunnel is retransmitting request (id={p.message_id}) "
                         f"for {ExchangeType(p.exchange.TYPE).name} ({p.attempt})", "debug")
            else:
                self.pending = None
                p.exchange.timed_out(self, now)
        for kind, when in list(self.timers.items()):
            if now >= when and kind in self.timers and not self.dead:
                del self.timers[kind]
                self._fire(kind, now)
        for child in list(self.children.values()):
            deadline = child.deadline()
            if deadline is not None and now >= deadline and not self.dead:
                self._fire_child(child, now)
        self._send_next(now)

    def _fire(self, kind: IkeTimer, now: float) -> None:
        self.handlers.timers[kind](self, now)

    def _fire_child(self, child: ChildSa, now: float) -> None:
        for kind in ChildTimer:   # in the enum's order (delete, expire, rekey)
            when = child.timers.get(kind)
            if when is not None and now >= when:
                del child.timers[kind]
                self.handlers.child_timers[kind](self, child, now)

    # --- requests we start -----------------------------------------------------

    def start(self, exchange, now: float, front: bool = False) -> None:
        """Queue an exchange that vgw initiates; it goes out when the window is free."""
        if front:
            self.queue.appendleft(exchange)
        else:
            self.queue.append(exchange)
        self._send_next(now)

    def _send_next(self, now: float) -> None:
        while self.pending is None and self.queue and not self.dead:
            exchange = self.queue.popleft()
            try:
                payloads = exchange.build(self, now)
            except ExchangeError as exc:
                self.log(f"AWS tunnel could not start {ExchangeType(exchange.TYPE).name}: "
                         f"{exc.reason}", "warning")
                continue
            if payloads is None:
                continue  # nothing to do any more (e.g. the child is gone)
            self._send_request(exchange, payloads, now)

    def _send_request(self, exchange, payloads: list[Payload], now: float,
                      message_id: int | None = None) -> None:
        mid = self.next_request_id if message_id is None else message_id
        header = Header(self.spi_i, self.spi_r, 0, exchange.TYPE, self._flags(response=False), mid, 0)
        packets = self._encode_packets(header, payloads, exchange.TYPE)
        data = packets[0]
        self.pending = Pending(exchange, mid, packets, self.local, self.remote,
                               now + exchange.delays(self.settings)[0])
        for pkt in packets:
            self._out.append(Datagram(pkt, self.local, self.remote))
        level = "debug" if exchange.TYPE == ExchangeType.INFORMATIONAL and not payloads else "info"
        self.log(f"AWS tunnel is sending request (id={mid}) for {ExchangeType(exchange.TYPE).name}", level)
        exchange.sent(self, data)

    def _flags(self, response: bool) -> int:
        flags = HeaderFlag.INITIATOR if self.initiator else 0
        return flags | (HeaderFlag.RESPONSE if response else 0)

    def _encode(self, header: Header, payloads: list[Payload], exchange: int) -> bytes:
        if exchange == ExchangeType.IKE_SA_INIT:
            return encode_message(header, payloads)
        return encode_message(header, payloads, self.keys, initiator_sent=self.initiator)

    def _encode_packets(self, header: Header, payloads: list[Payload], exchange: int) -> list[bytes]:
        """The datagrams of one message: SKF fragments (RFC 7383) when both peers
        support them and the message does not fit the path; never IKE_SA_INIT."""
        if exchange == ExchangeType.IKE_SA_INIT or not self.peer_fragmentation:
            return [self._encode(header, payloads, exchange)]
        budget = message_budget(self.settings.fragment_size, self.local[1])
        packets = encode_fragments(header, payloads, self.keys, self.initiator, budget)
        if len(packets) > 1:
            self._reassembler().counters.sent += len(packets)
            self.log(f"AWS tunnel is sending {ExchangeType(exchange).name} in {len(packets)} "
                     f"IKE fragments (RFC 7383)", "debug")
        return packets

    def _reassembler(self):
        if self.fragments is None:
            self.fragments = Reassembler(self.frag_budget)
        return self.fragments

    # --- responses to our requests -------------------------------------------

    def _receive_response(self, data, header, local, remote, now) -> None:
        p = self.pending
        if p is None or header.message_id != p.message_id or header.exchange != p.exchange.TYPE:
            self.counters.dropped_bad_message_id += 1  # §2.3: not for an outstanding request
            return
        msg = self._decode(data, header, protected=header.exchange != ExchangeType.IKE_SA_INIT)
        if msg is None:
            return
        self.pending = None
        self.next_request_id = p.message_id + 1
        if msg.encrypted:
            self.last_inbound = max(self.last_inbound, now)
        self.note_peer_address(local, remote, authenticated=msg.encrypted)
        self.log(f"AWS tunnel processed response (id={p.message_id}) for "
                 f"{ExchangeType(header.exchange).name}",
                 "debug" if header.exchange == ExchangeType.INFORMATIONAL and not msg.payloads else "info")
        if msg.encrypted and msg.notify(NotifyType.INVALID_SYNTAX) is not None:
            # §2.21.3: the peer found our request malformed; fatal in both peers
            self.log(f"AWS tunnel received INVALID_SYNTAX from cgw: {self.remote[0]}", "error")
            self.fail("cgw answered INVALID_SYNTAX", "error")
            return
        try:
            retry = p.exchange.process(self, msg, now)
        except ExchangeError as exc:
            # the reason says what the peer refused (NO_PROPOSAL_CHOSEN -> "no-proposal")
            self.fail(exc.reason, _REASONS.get(exc.notify, "error"))
            return
        if retry:
            # INVALID_KE / COOKIE: IKE_SA_INIT again with the same message ID (§1.2, §2.6)
            self.next_request_id = p.message_id
            self._send_request(p.exchange, p.exchange.build(self, now), now, p.message_id)

    # --- requests from the peer ------------------------------------------------

    def _receive_request(self, data, header, local, remote, now) -> None:
        mid = header.message_id
        if self.cached_response is not None and mid == self.cached_response[0]:
            if header.next_payload == PayloadType.SKF:
                if fragment_number(data) != 1:
                    return   # RFC 7383 §2.6.1: only fragment 1 makes us answer again
            if not self._retransmission(data, header):
                # §2.1: a retransmission is bitwise identical to the request; junk
                # with its SPIs and message ID must not buy the cached answer (a
                # reflection, larger than the junk, to any address)
                self.counters.dropped_unauthenticated += 1
                return
            if not self._resend_allowed(remote, now):
                self.counters.resends_refused += 1
                return
            # §2.1: a retransmitted request gets the cached response, byte for byte
            self.counters.retransmitted_responses += 1
            self.resends += 1
            self.last_resend = now
            for pkt in self.cached_response[1]:
                self._out.append(Datagram(pkt, local, remote))
            return
        if mid != self.expected_request_id:
            self.counters.dropped_bad_message_id += 1  # §2.3: outside the window
            return
        if not self._request_allowed(header.exchange):
            self.counters.dropped_unexpected += 1
            return
        protected = header.exchange != ExchangeType.IKE_SA_INIT
        try:
            msg = self._decode(data, header, protected, raise_authenticated=True)
        except ParseError as exc:
            if exc.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD:
                # §2.5: a critical payload vgw does not know: the request is
                # rejected, the answer names its type; nothing else happens
                self.counters.unsupported_critical += 1
                self.expected_request_id = mid + 1
                self.last_inbound = max(self.last_inbound, now)
                self.log(f"AWS tunnel rejected {ExchangeType(header.exchange).name} request "
                         f"(id={mid}): {exc.reason}", "warning")
                self._respond(header, [NotifyPayload(exc.notify, exc.notify_data)], local, remote)
                return
            # Authenticated but malformed: answer INVALID_SYNTAX, protected (§3.10.1)
            self.counters.invalid_syntax += 1
            self.log(f"AWS tunnel received a malformed {ExchangeType(header.exchange).name} "
                     f"request (id={mid}): {exc.reason}", "warning")
            self._respond(header, [NotifyPayload(NotifyType.INVALID_SYNTAX)], local, remote)
            # §2.21.3: after authentication, INVALID_SYNTAX is fatal in both peers
            self.fail(f"malformed request from cgw: {exc.reason}", "error")
            return
        if msg is None:
            return
        self.expected_request_id = mid + 1
        if msg.encrypted:
            self.last_inbound = max(self.last_inbound, now)
            self.note_peer_address(local, remote, authenticated=True)
        handler = self.handlers.requests.get(header.exchange)
        if handler is None:
            self.counters.dropped_unexpected += 1   # nobody answers it (no handlers passed in)
            return
        quiet = header.exchange == ExchangeType.INFORMATIONAL and not msg.payloads
        self.log(f"AWS tunnel processed request (id={mid}) for "
                 f"{ExchangeType(header.exchange).name}", "debug" if quiet else "info")
        fatal = None
        try:
            payloads = handler(self, msg, now, local, remote)
        except CookieRequired:
            self.cookie_required = True   # the endpoint challenges; this SA never existed
            transition(self, IkeState.DEAD)
            self._events.clear()
            return
        except ExchangeError as exc:
            payloads = [NotifyPayload(exc.notify, exc.notify_data)]
            if exc.fatal:
                fatal = exc
        if payloads is not None:
            self._respond(header, payloads, local, remote, quiet=quiet)
        if fatal is not None:
            self.fail(fatal.reason, _REASONS.get(fatal.notify, "error"))
        elif self.close_after_response:
            detail, reason = self.close_after_response
            self.fail(detail, reason)

    def _retransmission(self, data: bytes, header: Header) -> bool:
        """Can `data` be a retransmission of the request we answered last? For
        IKE_SA_INIT: the very bytes; later: its SK/SKF integrity check passes
        (cheap: the ICV, no parsing of what is inside)."""
        if header.exchange == ExchangeType.IKE_SA_INIT:
            return data == self.init_request
        if self.keys is None:
            return False
        try:
            payloads = decode_chain(header.next_payload, data[28:], 28)
            if len(payloads) != 1 or not isinstance(payloads[0], (SkPayload, SkfPayload)):
                return False
            open_sk(data, payloads[0], header, self.keys)
        except (ParseError, IntegrityError):
            return False
        return True

    def _resend_allowed(self, remote: Addr, now: float) -> bool:
        """A true retransmission can still be a captured request replayed, by
        anyone, from any source address, to reflect the (larger, maybe
        fragmented) cached answer at a victim. So the answer goes again only to
        where the peer is (a peer whose NAT mapping changed moves the SA with its
        next authenticated ESP or new request first), at most RESEND_MAX times
        per request and RESEND_INTERVAL apart; a real peer retransmits a handful
        of times, seconds apart (RFC 7296 §2.1; strongSwan: 5 times, from 4 s on)."""
        if tuple(remote) != tuple(self.remote):
            return False
        return self.resends < RESEND_MAX and now >= self.last_resend + RESEND_INTERVAL

    def _request_allowed(self, exchange: int) -> bool:
        if self.state is IkeState.HALF_OPEN:
            return exchange == ExchangeType.IKE_AUTH
        if self.established or self.state is IkeState.DELETING:
            return exchange in (ExchangeType.INFORMATIONAL, ExchangeType.CREATE_CHILD_SA)
        # responder before anything: only IKE_SA_INIT; initiator: nothing until established
        return self.state is IkeState.INIT_RECEIVED and exchange == ExchangeType.IKE_SA_INIT

    def _respond(self, req: Header, payloads: list[Payload], local: Addr, remote: Addr,
                 quiet: bool = False) -> None:
        spi_r = self.spi_r
        if req.exchange == ExchangeType.IKE_SA_INIT and self.keys is None:
            spi_r = bytes(8)  # an error answer to IKE_SA_INIT keeps no state (§1.2, §2.6)
        header = Header(self.spi_i, spi_r, 0, req.exchange, self._flags(response=True),
                        req.message_id, 0)
        packets = self._encode_packets(header, payloads, req.exchange)
        data = packets[0]
        self.cached_response = (req.message_id, packets)
        self.resends, self.last_resend = 0, float("-inf")
        for pkt in packets:
            self._out.append(Datagram(pkt, local, remote))
        self.log(f"AWS tunnel is sending response (id={req.message_id}) for "
                 f"{ExchangeType(req.exchange).name}", "debug" if quiet else "info")
        if req.exchange == ExchangeType.IKE_SA_INIT and self.keys is not None:
            self.init_response = data

    def _decode(self, data, header, protected: bool, raise_authenticated: bool = False):
        if protected and header.next_payload == PayloadType.SKF and self.keys is not None:
            return self._reassemble(data, header, raise_authenticated)
        try:
            msg = decode_message(data, header, self.keys if protected else None)
        except IntegrityError:
            self.counters.dropped_unauthenticated += 1  # §2.21.2: drop silently
        except ParseError as exc:
            if exc.authenticated and raise_authenticated:
                raise
            self.counters.dropped_unauthenticated += 1
        else:
            if protected and not msg.encrypted:
                # §3.14, §1.4: every message after IKE_SA_INIT travels inside SK;
                # one without SK is unauthenticated and must never act.
                self.counters.dropped_unauthenticated += 1
                return None
            return msg
        return None

    def _reassemble(self, data, header, raise_authenticated: bool):
        """One SKF fragment (RFC 7383 §2.6): the whole Message once every fragment
        is in, else None."""
        frags = self._reassembler()
        try:
            done = frags.add(data, header, self.keys)
        except IntegrityError:
            frags.counters.bad_integrity += 1
            self.counters.dropped_unauthenticated += 1
            return None
        if done is None:
            return None
        first, inner = done
        try:
            payloads = decode_chain(first, inner)
        except ParseError as exc:
            exc.authenticated = True
            if raise_authenticated:
                raise
            self.counters.dropped_unauthenticated += 1
            return None
        return Message(header, payloads, encrypted=True, raw=data)

    def may_move_to(self, remote: Addr) -> bool:
        """May an authenticated message from `remote` move this SA there (RFC 7296
        §2.23)? Not when vgw itself is behind a NAT (it SHOULD NOT: a DoS risk),
        nor to another address than a configured customer gateway IP (AWS checks
        the registered address, docs/aws.md §2). The same rule for IKE and ESP."""
        if self.local_behind_nat:
            return False
        return not self.settings.remote_ip or remote[0] == self.settings.remote_ip

    def note_peer_address(self, local: Addr, remote: Addr, authenticated: bool) -> None:
        """Follow the peer to port 4500 and across NAT mapping changes, but only
        on authenticated messages and where may_move_to allows (RFC 7296 §2.23)."""
        if authenticated and (local, remote) != (self.local, self.remote):
            moved = remote[0] != self.remote[0] or (self.remote[1] != 500 and remote[1] != self.remote[1])
            if moved and not self.may_move_to(remote):
                self.counters.moves_refused += 1
                self.log(f"AWS tunnel does not follow cgw from {self.remote[0]}:{self.remote[1]} "
                         f"to {remote[0]}:{remote[1]}", "debug")
                return
            if moved and self.established:
                self.log(f"AWS tunnel follows cgw from {self.remote[0]}:{self.remote[1]} to "
                         f"{remote[0]}:{remote[1]} (NAT mapping changed)")
            self.local, self.remote = local, remote
            if self.pending is not None:
                # retransmissions go where the peer is now
                self.pending.local, self.pending.remote = local, remote
            if moved and self.children:
                self.emit(PeerMoved(self.local, self.remote))

    # --- helpers for exchanges ----------------------------------------------------

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def log(self, text: str, level: str = "info") -> None:
        self._events.append(LogLine(text, level))

    def fail(self, detail: str, reason: str) -> None:
        """Tear the IKE SA down locally (no DELETE sent): children first."""
        if self.dead:
            return
        if self.redundant:
            reason = "redundant"
        if self.fragments is not None:
            self.fragments.discard_all()
        for child in list(self.children.values()):
            self.emit(ChildSaDown(child.spi_in, child.spi_out, reason))
        self.children.clear()
        self.last_error = detail
        transition(self, IkeState.DEAD)
        self.pending = None
        self.queue.clear()
        self.timers.clear()
        self.emit(IkeSaDown(self.spi_i, self.spi_r, reason, detail))

    def id_payload_body(self) -> tuple[int, bytes]:
        """vgw's identity: its outside IPv4 address as ID_IPV4_ADDR (docs/aws.md §9.3),
        or with a certificate its subject DN (or a dNSName of it, ikecore.certs)."""
        if self.settings.credentials is not None:
            return self.settings.credentials.id_body()
        return IdType.IPV4_ADDR, ipaddress.IPv4Address(self.settings.local_ip).packed

    def our_id(self, cls) -> IdPayload:
        id_type, data = self.id_payload_body()
        return cls(id_type, data)

    def child_by_out(self, spi_out: int) -> ChildSa | None:
        for c in self.children.values():
            if c.spi_out == spi_out:
                return c
        return None

    def status(self) -> dict:
        s = self.suite
        return {
            "state": self.state.value,
            "role": "initiator" if self.initiator else "responder",
            "spi_i": self.spi_i.hex(), "spi_r": self.spi_r.hex(),
            "local": f"{self.local[0]}[{self.local[1]}]",
            "remote": f"{self.remote[0]}[{self.remote[1]}]",
            "remote_id": self.remote_identity,
            "encryption": s.encr.aws_name if s else None,
            "integrity": integ_name(s.integ) if s else None,
            "prf": prf_name(s.prf) if s else None,
            "dh_group": s.dh if s else None,
            "nat_t": self.udp_encap,
            "peer_behind_nat": self.peer_behind_nat,
            "local_behind_nat": self.local_behind_nat,
            "fragmentation": self.peer_fragmentation,   # both sides support RFC 7383
            "fragments": vars(self.fragments.counters).copy() if self.fragments else None,
            "auth": "certificate" if self.settings.credentials is not None else "psk",
            "established_at": self.established_at,
            "rekey_at": self.timers.get(IkeTimer.REKEY),
            "expire_at": self.timers.get(IkeTimer.EXPIRE),
            "last_error": self.last_error,
        }


_REASONS = {
    NotifyType.AUTHENTICATION_FAILED: "auth-failed",
    NotifyType.NO_PROPOSAL_CHOSEN: "no-proposal",
    NotifyType.INVALID_KE_PAYLOAD: "invalid-ke",
}

__all__ = ["IkeSa", "SaHandlers"]
