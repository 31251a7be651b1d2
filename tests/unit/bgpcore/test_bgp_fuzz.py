"""Hypothesis: mutated OPEN / UPDATE / NOTIFICATION / ROUTE-REFRESH / KEEPALIVE
messages fed to a core in every state. It never raises; whatever it sends is a
well-formed message (a NOTIFICATION with a code vgw knows); every route it
accepts passed the checks; the Adj-RIB-In never holds more than max_prefixes
and nothing else grows."""

import struct
from ipaddress import IPv4Address, IPv4Network

from hypothesis import HealthCheck, given, settings, strategies as st

from bgpcore.aspath import AsPath
from bgpcore.attributes import PathAttributes, encode_attributes, parse_attributes
from bgpcore.constants import SUBCODE_NAMES
from bgpcore.errors import BgpError
from bgpcore.events import MalformedUpdate, RoutesChanged
from bgpcore.messages import (
    KEEPALIVE, Capabilities, Notification, Open, RouteRefresh, Update, decode_notification,
    decode_open, decode_route_refresh,
)
from bgpcore.peer import MAX_CONNECTIONS, BgpPeer
from bgpcore.update import decide_update
from bgpcore.wire import MAX_MESSAGE_LEN, Framer

from .bgppair import CGW, settings_a
from .rawpeer import cgw_open

LIMIT = 20
FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)

prefix = st.builds(lambda a, n: IPv4Network((a, n), strict=False),
                   st.integers(0, 2**32 - 1), st.integers(0, 32))


@st.composite
def raw_attribute(draw) -> bytes:
    code = draw(st.one_of(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18,
                                           32]), st.integers(0, 255)))
    flags = draw(st.one_of(st.sampled_from([0x40, 0x80, 0xC0, 0xE0]), st.integers(0, 255)))
    value = draw(st.binary(max_size=40))
    if flags & 0x10:
        return struct.pack("!BBH", flags, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


@st.composite
def update(draw) -> bytes:
    nlri = draw(st.lists(prefix, max_size=60))
    withdrawn = draw(st.lists(prefix, max_size=10))
    if draw(st.booleans()):
        attrs = PathAttributes(
            as_path=AsPath.of(*draw(st.lists(st.integers(1, 2**32 - 1), max_size=4))),
            next_hop=draw(st.sampled_from([CGW, IPv4Address("10.0.0.1")])),
            med=draw(st.none() | st.integers(0, 2**32 - 1)),
            communities=tuple(draw(st.lists(st.integers(0, 2**32 - 1), max_size=3))))
        if draw(st.booleans()):
            attrs = PathAttributes(as_path=attrs.as_path.prepend(65000), next_hop=attrs.next_hop,
                                   med=attrs.med, communities=attrs.communities)
        raw = encode_attributes(attrs, draw(st.booleans()))
    else:
        raw = b""
    raw += b"".join(draw(st.lists(raw_attribute(), max_size=4)))
    msg = Update(tuple(withdrawn), raw, tuple(nlri))
    try:
        return msg.encode()
    except ValueError:                 # over 4096: send a shorter one
        return Update((), raw, tuple(nlri[:10])).encode()


@st.composite
def an_open(draw) -> bytes:
    caps = Capabilities(
        multiprotocol=frozenset(draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                              max_size=2))),
        route_refresh=draw(st.booleans()), route_refresh_cisco=draw(st.booleans()),
        four_octet_as=draw(st.none() | st.sampled_from([65000, 4200000000])),
        others=tuple(draw(st.lists(st.tuples(st.integers(3, 255), st.binary(max_size=6)),
                                   max_size=2))))
    return Open(draw(st.sampled_from([65000, 65001, 23456])),
                draw(st.sampled_from([0, 1, 3, 9, 30, 65535])),
                draw(st.sampled_from([CGW, IPv4Address("0.0.0.0"), IPv4Address("169.254.10.1")])),
                caps, draw(st.sampled_from([4, 4, 4, 3]))).encode()


message = st.one_of(
    update(), an_open(), st.just(cgw_open()), st.just(KEEPALIVE),
    st.builds(lambda c, s, d: Notification(c, s, d).encode(),
              st.integers(0, 255), st.integers(0, 255), st.binary(max_size=20)),
    st.builds(lambda a, r, s: RouteRefresh(a, s, r).encode(),
              st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
)


@st.composite
def mutated(draw) -> bytes:
    msg = bytearray(draw(message))
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["flip", "truncate", "length", "inner", "garbage", "byte"]))
        if how == "flip" and msg:
            i = draw(st.integers(0, len(msg) - 1))
            msg[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del msg[draw(st.integers(0, len(msg))):]
        elif how == "length" and len(msg) >= 18:
            msg[16:18] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        elif how == "inner" and len(msg) > 21:
            i = draw(st.integers(19, len(msg) - 2))
            msg[i:i + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        elif how == "garbage":
            msg += draw(st.binary(max_size=30))
        elif how == "byte" and msg:
            msg[draw(st.integers(0, len(msg) - 1))] = draw(st.integers(0, 255))
    return bytes(msg)


def peer_in(state: str) -> tuple[BgpPeer, str]:
    """A vgw core (limit LIMIT) in `state`, with its connection "c" where it has one."""
    peer = BgpPeer(settings_a(max_prefixes=LIMIT, passive=state != "Connect"))
    if state != "Idle":
        peer.start(0)
    if state in ("OpenSent", "OpenConfirm", "Established", "Established-2octet", "Idle"):
        peer.connection_made("c", 0, outbound=False)       # refused while Idle
    if state == "OpenConfirm":
        peer.data_received("c", cgw_open(), 0)
    if state == "Established":
        peer.data_received("c", cgw_open() + KEEPALIVE, 0)
    if state == "Established-2octet":
        old = Open(65000, 30, CGW, Capabilities(frozenset({(1, 1)}), route_refresh=True))
        peer.data_received("c", old.encode() + KEEPALIVE, 0)
    peer.transmit()
    while peer.next_event():
        pass
    return peer, state.split("-")[0]


STATES = ["Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established",
          "Established-2octet"]


def check_output(peer: BgpPeer) -> None:
    """Everything vgw sends parses; NOTIFICATIONs carry codes it knows."""
    for _conn, data in peer.transmit():
        f = Framer()
        f.feed(data)
        while (m := f.next_message()) is not None:
            kind, body = m
            if kind == 3:
                n = decode_notification(body)
                assert n.code in (1, 2, 3, 4, 5, 6), n
                assert n.subcode in SUBCODE_NAMES.get(n.code, {0: ""}), n
        assert f.pending() == 0


def check_invariants(peer: BgpPeer) -> None:
    assert len(peer.rib_in.received) <= LIMIT
    assert set(peer.rib_in.accepted) <= set(peer.rib_in.received)
    for attrs in peer.accepted.values():
        assert attrs.next_hop == CGW                      # policy
        assert not attrs.as_path.contains(64512)
        assert attrs.as_path.first_as == 65000            # RFC 4271 §6.3 / RFC 7606 §7.2
        assert attrs.local_pref is None                   # discarded from eBGP
    assert len(peer.connections) <= MAX_CONNECTIONS
    for c in peer._fsms:
        assert c.framer.pending() < MAX_MESSAGE_LEN


@FUZZ
@given(st.sampled_from(STATES), st.lists(mutated(), min_size=1, max_size=6),
       st.integers(1, 64), st.data())
def test_mutated_messages_in_every_state(state, msgs, chunk, data):
    peer, _ = peer_in(state)
    stream = b"".join(msgs)
    now = 1.0
    for i in range(0, len(stream), chunk):
        peer.data_received("c", stream[i:i + chunk], now)
        check_invariants(peer)
        check_output(peer)
        now += 0.5
    while (e := peer.next_event()) is not None:
        if isinstance(e, MalformedUpdate):
            assert e.action in ("treat-as-withdraw", "attribute-discard", "session-reset")
        if isinstance(e, RoutesChanged):
            assert all(p in peer.accepted or p in e.withdrawn for p in e.announced) or \
                peer.state.value != "Established"
    # time passing on top of it never raises either
    peer.handle_timer(now + 500)
    check_output(peer)
    check_invariants(peer)


small_prefix = st.builds(lambda a: IPv4Network((a << 8, 24)), st.integers(0, 40))


@st.composite
def good_update(draw) -> tuple[list, list, bytes]:
    """A well-formed UPDATE from the CGW: (withdrawn, nlri, bytes). Some of its
    routes are denied by policy (vgw's AS in the path, another next hop)."""
    nlri = draw(st.lists(small_prefix, max_size=15))
    withdrawn = draw(st.lists(small_prefix, max_size=5))
    attrs = PathAttributes(as_path=AsPath.of(65000, *draw(st.sampled_from([(), (64512,), (7,)]))),
                           next_hop=draw(st.sampled_from([CGW, CGW, IPv4Address("10.0.0.1")])))
    raw = encode_attributes(attrs, True) if nlri else b""
    return withdrawn, nlri, Update(tuple(withdrawn), raw, tuple(nlri)).encode()


@settings(FUZZ, max_examples=200)
@given(st.lists(good_update(), min_size=1, max_size=10))
def test_well_formed_updates_respect_the_limit(updates):
    """Accepted and denied prefixes both count; the first UPDATE that takes the
    Adj-RIB-In past LIMIT ends the session with Cease/1 and the limit in its
    data, and until then nothing is refused (a model set is the oracle)."""
    peer, _ = peer_in("Established")
    model: set = set()
    for withdrawn, nlri, raw in updates:
        model -= set(withdrawn)
        model |= set(nlri)
        peer.data_received("c", raw, 1)
        check_invariants(peer)
        sent = []
        for _conn, data in peer.transmit():
            f = Framer()
            f.feed(data)
            while (m := f.next_message()) is not None:
                sent.append(m)
        notes = [decode_notification(body) for kind, body in sent if kind == 3]
        if len(model) > LIMIT:
            assert notes == [Notification(6, 1, struct.pack("!HBI", 1, 1, LIMIT))]
            assert peer.state.value == "Idle" and peer.received_prefixes == 0
            return
        assert notes == [] and peer.received_prefixes == len(model)
        assert peer.state.value == "Established"


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_decoders_raise_only_bgp_error(body, four_octet):
    """Any body the header check lets through (OPEN >= 10 octets, UPDATE >= 4,
    NOTIFICATION >= 2, ROUTE-REFRESH = 4) decodes or raises BgpError."""
    decoders = [(lambda b: parse_attributes(b, four_octet), 0)]
    decoders += [(decode_open, 10), (lambda b: decide_update(b, four_octet, 65000), 4)]
    for decode, minimum in decoders:
        if len(body) < minimum:
            continue
        try:
            decode(body)
        except BgpError as exc:
            assert 1 <= exc.code <= 6
    if len(body) >= 2:
        decode_notification(body)
    if len(body) == 4:
        decode_route_refresh(body)
