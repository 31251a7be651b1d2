"""Property tests: bad input from the network never escapes `receive`, never
changes an established SA, and leaves no state behind that would never expire.

Inputs are arbitrary bytes, bytes behind a plausible header carrying the live
SA's SPIs, and mutations (bit flips, truncation, extension, length-field lies,
payload type changes) of real messages: the handshake, and fresh requests and
responses made with the live keys (a liveness check, a DELETE of the CHILD SA,
a DELETE of the IKE SA) that would act if they arrived intact. After each
example the two sides must still exchange a liveness check both ways.
"""

import struct

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ikecore.constants import ProtocolId
from ikecore.events import ChildSaDown, ChildSaUp, Datagram, IkeSaDown, IkeSaUp
from ikecore.message import decode_message
from ikecore.payloads import DeletePayload
from .ikepair import IkePair, settings_a, settings_b, seal_payloads, seeded_random, snapshot

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


# --- mutations ---------------------------------------------------------------------------------


def payload_headers(data: bytes) -> list[int]:
    """Offsets of the generic payload headers, walked leniently."""
    out, pos = [], 28
    nxt = data[16] if len(data) > 16 else 0
    while nxt and pos + 4 <= len(data) and len(out) < 64:
        out.append(pos)
        length = struct.unpack_from("!H", data, pos + 2)[0]
        if nxt == 46 or length < 4:
            break
        nxt = data[pos]
        pos += length
    return out


@st.composite
def mutation(draw, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["bitflip", "bitflips", "truncate", "extend", "header_length",
                                 "payload_length", "payload_type", "next_type", "splice",
                                 "byte"]))
    b = bytearray(data)
    n = len(b)
    if kind == "bitflip":
        i = draw(st.integers(0, n - 1))
        b[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "bitflips":
        for _ in range(draw(st.integers(2, 8))):
            i = draw(st.integers(0, n - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        b = b[:draw(st.integers(0, n - 1))]
        if draw(st.booleans()) and len(b) >= 28:
            b[24:28] = struct.pack("!I", len(b))  # keep the header consistent
    elif kind == "extend":
        b += draw(st.binary(min_size=1, max_size=64))
        if draw(st.booleans()):
            b[24:28] = struct.pack("!I", len(b))
    elif kind == "header_length":
        b[24:28] = struct.pack("!I", draw(st.integers(0, 2**32 - 1)))
    elif kind == "payload_length":
        heads = payload_headers(data)
        assume(heads)
        pos = draw(st.sampled_from(heads))
        b[pos + 2:pos + 4] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    elif kind == "payload_type":
        heads = payload_headers(data)
        assume(heads)
        pos = draw(st.sampled_from(heads))
        b[pos] = draw(st.integers(0, 255))
        if draw(st.booleans()):
            b[pos + 1] ^= 0x80  # and the critical bit
    elif kind == "next_type":
        b[16] = draw(st.integers(0, 255))
    elif kind == "splice":
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 64)))
        b[i:j] = draw(st.binary(max_size=64))
    else:
        i = draw(st.integers(0, n - 1))
        b[i] = draw(st.integers(0, 255))
    out = bytes(b)
    assume(out != data)
    return out


# --- an established pair that every example reuses ------------------------------------------------


class Live:
    """An established pair and real messages to mutate."""

    def __init__(self, **kw):
        self.pair = IkePair(settings_a(**kw), settings_b(random_bytes=seeded_random(7), **kw))
        self.pair.handshake()
        self.handshake = list(self.pair.wire)
        self.a_sa, self.b_sa = self.pair.a.sa, self.pair.b.sa
        # a Delete from A names A's inbound SPI (RFC 7296 §3.11)
        self.child_a_in = self.pair.a.child_ups[0].spi_in

    def corpus(self) -> list[tuple[str, Datagram]]:
        """(receiver, datagram) pairs of real messages, none delivered yet:
        the handshake (stale by now), a live response to a request that is still
        pending, and requests made with the live keys and the message IDs the
        receivers expect next (each would act if it arrived intact)."""
        pair, a, b = self.pair, self.a_sa, self.b_sa
        out = [("b" if who == "a" else "a", d) for who, d in self.handshake]
        # a real liveness request from A, and B's answer, held in the network
        pair.liveness(pair.a)
        [req] = pair.outgoing(pair.a)
        self.held_request = req
        pair.deliver(pair.b, req)
        [resp] = pair.outgoing(pair.b)
        self.held_response = resp
        out += [("b", req), ("a", resp)]
        hop_a, hop_b = self.handshake[2][1], self.handshake[3][1]
        mid = b.expected_request_id
        for payloads in ([DeletePayload(ProtocolId.ESP, [struct.pack("!I", self.child_a_in)])],
                         [DeletePayload(ProtocolId.IKE)]):
            out.append(("b", Datagram(seal_payloads(a, 37, mid, payloads), hop_a.local, hop_a.remote)))
        # and a request from B (its own message IDs) for A
        out.append(("a", Datagram(seal_payloads(b, 37, a.expected_request_id, [DeletePayload(ProtocolId.IKE)]),
                                  hop_b.local, hop_b.remote)))
        return out

    def finish(self) -> None:
        """Deliver the held answer, then check liveness both ways."""
        pair = self.pair
        pair.deliver(pair.a, self.held_response)
        assert self.a_sa.pending is None
        for side in (pair.a, pair.b):
            sa = side.endpoint.current
            before = sa.next_request_id
            pair.liveness(side)
            pair.run()
            assert sa.pending is None and sa.next_request_id == before + 1


def live(name: str, **kw) -> Live:
    """A fresh established pair for each example (a handshake costs ~1 ms), so
    that examples are independent and replay the same way."""
    return Live(**kw)


def deliver_checked(lv: Live, receiver: str, data: bytes, template: Datagram) -> None:
    pair = lv.pair
    before = (snapshot(lv.a_sa), snapshot(lv.b_sa))
    n_events = (len(pair.a.events), len(pair.b.events))
    side = pair.a if receiver == "a" else pair.b
    sa = lv.a_sa if receiver == "a" else lv.b_sa
    pair.deliver(side, Datagram(data, template.local, template.remote))  # must not raise
    # The only answer junk may get is a copy of the cached response, when it looks
    # like a retransmission of the last request (RFC 7296 §2.1: that check is by
    # message ID, before any integrity check). Such copies are not passed on: the
    # pending request they answer gets its real answer in finish().
    # A mutation that changed SPIi is a new IKE_SA_INIT: it may open a new
    # half-open SA (which has a deadline, checked below) and get an answer.
    cached = sa.cached_response[1] if sa.cached_response else []
    for d in pair.outgoing(side):
        new_init = d.data[18] == 34 and d.data[:8] != sa.spi_i
        assert d.data in cached or new_init, "an answer to junk that is not the cached response"
    assert pair.outgoing(pair.other(side)) == []
    assert (snapshot(lv.a_sa), snapshot(lv.b_sa)) == before
    assert pair.a.endpoint.current is lv.a_sa and pair.b.endpoint.current is lv.b_sa
    spis = (lv.a_sa.spi_i, lv.a_sa.spi_r)
    for s, n in ((pair.a, n_events[0]), (pair.b, n_events[1])):
        for ev in s.events[n:]:
            assert not isinstance(ev, (ChildSaUp, ChildSaDown, IkeSaUp)), ev
            assert not (isinstance(ev, IkeSaDown) and (ev.spi_i, ev.spi_r) == spis), ev
        # nothing lingers that no timer would ever remove
        for sa in s.sas:
            assert sa.established or sa.next_deadline() is not None, sa.state


# --- established SA -------------------------------------------------------------------------------


@settings(max_examples=400, **SETTINGS)
@given(st.data())
def test_mutated_messages_never_change_an_established_sa(data):
    lv = live("cbc")
    corpus = lv.corpus()
    receiver, d = data.draw(st.sampled_from(corpus))
    mutated = data.draw(mutation(d.data))
    deliver_checked(lv, receiver, mutated, d)
    lv.finish()


@settings(max_examples=200, **SETTINGS)
@given(st.data())
def test_mutated_messages_gcm(data):
    lv = live("gcm", phase1_encryption=("AES256-GCM-16",), phase2_encryption=("AES128-GCM-16",))
    corpus = lv.corpus()
    receiver, d = data.draw(st.sampled_from(corpus))
    deliver_checked(lv, receiver, data.draw(mutation(d.data)), d)
    lv.finish()


@settings(max_examples=300, **SETTINGS)
@given(st.data())
def test_junk_with_live_spis(data):
    """A plausible header (the live SPIs, a message ID near the current ones, any
    exchange and flags) in front of arbitrary bytes."""
    lv = live("cbc")
    corpus = lv.corpus()
    a = lv.a_sa
    flags = data.draw(st.sampled_from([0x00, 0x08, 0x20, 0x28]))
    mid = data.draw(st.integers(0, a.next_request_id + 2) | st.integers(0, 2**32 - 1))
    exchange = data.draw(st.sampled_from([34, 35, 36, 37]) | st.integers(0, 255))
    body = data.draw(st.binary(max_size=200))
    first = data.draw(st.sampled_from([46, 0, 33, 41, 42]) | st.integers(0, 255))
    msg = (a.spi_i + a.spi_r + bytes([first, 0x20, exchange, flags])
           + struct.pack("!II", mid, 28 + len(body)) + body)
    receiver = data.draw(st.sampled_from(["a", "b"]))
    template = corpus[2][1] if receiver == "b" else corpus[3][1]
    deliver_checked(lv, receiver, msg, template)
    lv.finish()


@settings(max_examples=300, **SETTINGS)
@given(st.binary(max_size=300), st.sampled_from(["a", "b"]))
def test_arbitrary_bytes_to_established_pair(blob, receiver):
    lv = live("cbc")
    corpus = lv.corpus()
    template = corpus[2][1] if receiver == "b" else corpus[3][1]
    deliver_checked(lv, receiver, blob, template)
    lv.finish()


def test_mutation_corpus_would_act_if_intact():
    """The forged requests are real: delivered intact, they do what they say
    (so the properties above are not vacuous)."""
    lv = Live()
    corpus = lv.corpus()
    receiver, delete_child = corpus[6]
    assert receiver == "b"
    lv.pair.deliver(lv.pair.b, delete_child)
    assert len(lv.pair.b.child_downs) == 1
    assert lv.pair.b.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {lv.child_a_in:08x}")
    lv = Live()
    receiver, delete_ike = lv.corpus()[7]
    lv.pair.deliver(lv.pair.b, delete_ike)
    assert [d.reason for d in lv.pair.b.downs] == ["deleted-by-peer"]
    lv = Live()
    receiver, delete_ike_from_b = lv.corpus()[8]
    assert receiver == "a"
    lv.pair.deliver(lv.pair.a, delete_ike_from_b)
    assert [d.reason for d in lv.pair.a.downs] == ["deleted-by-peer"]


# --- a responder with no SA yet --------------------------------------------------------------------


def _init_requests() -> list[bytes]:
    """IKE_SA_INIT requests as vgw sends them, for several offers."""
    out = []
    for kw in ({}, {"phase1_dh_groups": (14, 19)},
               {"phase1_encryption": ("AES256-GCM-16", "AES128")}):
        pair = IkePair(settings_a(**kw))
        pair.initiate()
        out.append(pair.outgoing(pair.a)[0].data)
    return out


INIT_REQUESTS = _init_requests()


def fresh_responder() -> IkePair:
    return IkePair(settings_a(random_bytes=seeded_random(11)), settings_b(phase1_dh_groups=(19, 14)))


def check_responder(pair: IkePair, request: bytes) -> None:
    """What a fresh responder does with one datagram: nothing escapes; any answer
    is a well-formed IKE_SA_INIT response to that request's SPI; any SA it keeps
    has a deadline; and it still completes a real handshake afterwards."""
    from ikecore.errors import ParseError
    template = Datagram(b"", ("198.51.100.1", 500), ("198.51.100.10", 500))
    pair.deliver(pair.b, Datagram(request, template.local, template.remote))
    for d in pair.outgoing(pair.b):
        msg = decode_message(d.data)
        assert msg.is_response and msg.exchange == 34 and msg.message_id == 0
        assert msg.header.spi_i == request[:8]
    for sa in pair.b.sas:
        assert sa.next_deadline() is not None, f"{sa.state} SA without a deadline"
    try:
        decode_message(request)
    except ParseError:
        pass
    else:
        return
    # an undecodable request leaves nothing behind
    assert pair.b.sas == [], "state kept for a request that was dropped"


@settings(max_examples=300, **SETTINGS)
@given(st.data())
def test_mutated_init_to_a_fresh_responder(data):
    pair = fresh_responder()
    base = data.draw(st.sampled_from(INIT_REQUESTS))
    check_responder(pair, data.draw(mutation(base)))
    pair.handshake()
    assert len(pair.a.child_ups) == 1 and len(pair.b.ups) >= 1


@settings(max_examples=300, **SETTINGS)
@given(st.binary(max_size=300) | st.builds(
    lambda spi, body, first: spi + bytes(8) + bytes([first, 0x20, 34, 0x08]) + struct.pack("!II", 0, 28 + len(body)) + body,
    st.binary(min_size=8, max_size=8), st.binary(max_size=300), st.integers(0, 255)))
def test_arbitrary_bytes_to_a_fresh_responder(blob):
    pair = fresh_responder()
    check_responder(pair, blob)
    pair.handshake()
    assert len(pair.a.child_ups) == 1


# --- messages without SK after IKE_SA_INIT (found by the properties above) -------------------------


def _plain(sa, exchange, flags, message_id, payloads):
    from ikecore.message import Header, encode_message
    return encode_message(Header(sa.spi_i, sa.spi_r, 0, exchange, flags, message_id, 0), payloads)


def test_plaintext_request_with_live_spis_does_not_act():
    """RFC 7296 §1.4, §3.14: INFORMATIONAL (like everything after IKE_SA_INIT) is
    protected; a Delete in the clear, with the right SPIs and message ID, is junk."""
    pair = IkePair()
    pair.handshake()
    a, b = pair.a.sa, pair.b.sa
    hop = pair.wire[2][1]
    before = snapshot(b)
    for payloads in ([DeletePayload(ProtocolId.IKE)],
                     [DeletePayload(ProtocolId.ESP, [struct.pack("!I", pair.b.child_ups[0].spi_out)])]):
        pair.deliver(pair.b, Datagram(_plain(a, 37, 0x08, a.next_request_id, payloads),
                                      hop.local, hop.remote))
        assert pair.outgoing(pair.b) == []
    assert snapshot(b) == before and pair.b.downs == [] and pair.b.child_downs == []
    assert b.counters.dropped_unauthenticated == 2


def test_plaintext_response_does_not_answer_a_pending_request():
    pair = IkePair()
    pair.handshake()
    a, b = pair.a.sa, pair.b.sa
    pair.liveness(pair.a)
    [req] = pair.outgoing(pair.a)
    forged = _plain(b, 37, 0x20, int.from_bytes(req.data[20:24], "big"), [])
    pair.deliver(pair.a, Datagram(forged, req.remote, req.local))
    assert a.pending is not None and a.pending.message_id == 2  # still waiting
    pair.deliver(pair.b, req)
    pair.run()
    assert a.pending is None and a.next_request_id == 3
