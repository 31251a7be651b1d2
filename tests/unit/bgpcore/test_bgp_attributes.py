"""Path attributes and RFC 7606's revised error handling, attribute by attribute."""

import struct
from ipaddress import IPv4Address, IPv4Network

import pytest

from bgpcore.aspath import AsPath, Segment, decode_path, encode_path, merge_as4
from bgpcore.attributes import Aggregator, PathAttributes, encode_attributes, parse_attributes
from bgpcore.constants import SegmentType
from bgpcore.events import MalformedUpdate, RoutesChanged
from bgpcore.messages import KEEPALIVE, Capabilities, Open, Update

from .bgppair import CGW
from .rawpeer import cgw_update, established_peer, events, notifications, out, raw_peer

P = IPv4Network("172.16.0.0/16")
P2 = IPv4Network("172.17.0.0/16")


def attr(flags, code, value: bytes) -> bytes:
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def seq(*asns, size=4):
    return bytes([2, len(asns)]) + b"".join(a.to_bytes(size, "big") for a in asns)


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = attr(0x40, 2, seq(65000))
NEXT_HOP = attr(0x40, 3, CGW.packed)
BASE = ORIGIN + AS_PATH + NEXT_HOP


def mp_reach(afi=1, safi=1, nh=CGW.packed, nlri=b"\x10\xac\x11") -> bytes:
    return attr(0x80, 14, struct.pack("!HBB", afi, safi, len(nh)) + nh + b"\x00" + nlri)


def feed(raw_attrs: bytes, nlri=(P,), peer=None):
    peer = peer or established_peer()
    peer.data_received("c", cgw_update(nlri, raw_attrs=raw_attrs), 1)
    evs = events(peer)
    bad = [e for e in evs if isinstance(e, MalformedUpdate)]
    return peer, (bad[0].action if bad else None), notifications(out(peer))


TAW, DISCARD = "treat-as-withdraw", "attribute-discard"

CASES = [
    # (what, attributes, RFC 7606 action, route accepted?)
    ("ORIGIN length 2", attr(0x40, 1, b"\x00\x00") + AS_PATH + NEXT_HOP, TAW, False),
    ("ORIGIN value 3", attr(0x40, 1, b"\x03") + AS_PATH + NEXT_HOP, TAW, False),
    ("ORIGIN flagged optional", attr(0xC0, 1, b"\x00") + AS_PATH + NEXT_HOP, TAW, False),
    ("ORIGIN with Partial", attr(0x60, 1, b"\x00") + AS_PATH + NEXT_HOP, TAW, False),
    ("AS_PATH segment type 5", ORIGIN + attr(0x40, 2, b"\x05\x01" + bytes(4)) + NEXT_HOP,
     TAW, False),
    ("AS_PATH zero-length segment", ORIGIN + attr(0x40, 2, seq(65000) + b"\x02\x00")
     + NEXT_HOP, TAW, False),
    ("AS_PATH segment overrun", ORIGIN + attr(0x40, 2, b"\x02\x02" + seq(65000)[2:])
     + NEXT_HOP, TAW, False),
    ("AS_PATH lone octet", ORIGIN + attr(0x40, 2, seq(65000) + b"\x02") + NEXT_HOP, TAW, False),
    ("AS_PATH confederation segment", ORIGIN + attr(0x40, 2, seq(65000) + b"\x03\x01"
                                                    + (1).to_bytes(4, "big")) + NEXT_HOP,
     TAW, False),
    ("AS_PATH with AS 0", ORIGIN + attr(0x40, 2, seq(65000, 0)) + NEXT_HOP, TAW, False),
    ("AS_PATH not from the peer's AS", ORIGIN + attr(0x40, 2, seq(65001)) + NEXT_HOP,
     TAW, False),
    ("AS_PATH empty", ORIGIN + attr(0x40, 2, b"") + NEXT_HOP, TAW, False),
    ("NEXT_HOP length 5", ORIGIN + AS_PATH + attr(0x40, 3, CGW.packed + b"\x00"), TAW, False),
    ("MED length 3", BASE + attr(0x80, 4, b"\x00\x00\x01"), TAW, False),
    ("MED flagged well-known", BASE + attr(0x40, 4, b"\x00\x00\x00\x01"), TAW, False),
    ("COMMUNITIES length 3", BASE + attr(0xC0, 8, b"\x00\x00\x01"), TAW, False),
    ("COMMUNITIES empty", BASE + attr(0xC0, 8, b""), TAW, False),
    ("EXTENDED_COMMUNITIES length 7", BASE + attr(0xC0, 16, bytes(7)), TAW, False),
    ("LARGE_COMMUNITY length 11", BASE + attr(0xC0, 32, bytes(11)), TAW, False),
    ("missing ORIGIN", AS_PATH + NEXT_HOP, TAW, False),
    ("missing AS_PATH", ORIGIN + NEXT_HOP, TAW, False),
    ("missing NEXT_HOP", ORIGIN + AS_PATH, TAW, False),
    ("attribute runs past the field", BASE + b"\xc0\x08\x08\x00\x00", TAW, False),
    ("attribute header truncated", BASE + b"\xc0\x08", TAW, False),
    ("LOCAL_PREF from an external peer", BASE + attr(0x40, 5, bytes(4)), DISCARD, True),
    ("ATOMIC_AGGREGATE length 1", BASE + attr(0x40, 6, b"\x00"), DISCARD, True),
    ("AGGREGATOR length 6 in a 4-octet session", BASE + attr(0xC0, 7, bytes(6)), DISCARD, True),
    ("AGGREGATOR flagged well-known", BASE + attr(0x40, 7, bytes(8)), DISCARD, True),
    ("ORIGINATOR_ID from an external peer", BASE + attr(0x80, 9, bytes(4)), DISCARD, True),
    ("CLUSTER_LIST from an external peer", BASE + attr(0x80, 10, bytes(4)), DISCARD, True),
    ("AS4_PATH between 4-octet speakers", BASE + attr(0xC0, 17, seq(65000)), DISCARD, True),
    ("AS4_AGGREGATOR between 4-octet speakers", BASE + attr(0xC0, 18, bytes(8)), DISCARD, True),
    ("MED repeated", BASE + attr(0x80, 4, bytes(4)) + attr(0x80, 4, b"\x00\x00\x00\x07"),
     DISCARD, True),
    ("MP_REACH_NLRI for IPv6", BASE + mp_reach(2, 1, bytes(16), b""), DISCARD, True),
    ("unknown optional transitive", BASE + attr(0xC0, 99, b"x"), None, True),
    ("unknown optional non-transitive", BASE + attr(0x80, 98, b"y"), None, True),
]


@pytest.mark.parametrize("what, raw, action, accepted", CASES, ids=[c[0] for c in CASES])
def test_rfc7606_per_attribute(what, raw, action, accepted):
    peer = established_peer()
    peer.data_received("c", cgw_update([P2], raw_attrs=BASE), 1)   # an earlier good route
    peer.data_received("c", cgw_update([P]), 1)                     # P accepted first
    events(peer)
    peer, got, sent = feed(raw, peer=peer)
    assert got == action and sent == []
    assert (P in peer.accepted) is accepted
    assert P2 in peer.accepted                      # other routes of the session stay
    assert peer.state.value == "Established"


def test_attribute_discard_keeps_the_route_without_the_attribute():
    peer, _, _ = feed(BASE + attr(0x40, 5, bytes(4)) + attr(0xC0, 7, bytes(6)))
    a = peer.accepted[P]
    assert a.local_pref is None and a.aggregator is None and a.next_hop == CGW


def test_repeated_attribute_keeps_the_first():
    peer, _, _ = feed(BASE + attr(0x80, 4, b"\x00\x00\x00\x05") + attr(0x80, 4, bytes(4)))
    assert peer.accepted[P].med == 5


def test_unknown_transitive_attribute_is_kept_with_partial_bit():
    peer, _, _ = feed(BASE + attr(0xC0, 99, b"xyz") + attr(0x80, 98, b"gone"))
    [o] = peer.accepted[P].others
    assert (o.type, o.value, o.flags & 0x20) == (99, b"xyz", 0x20)


def test_treat_as_withdraw_withdraws_an_accepted_route():
    peer = established_peer()
    peer.data_received("c", cgw_update([P]), 1)
    events(peer)
    peer.data_received("c", cgw_update([P], raw_attrs=attr(0x40, 1, b"\x09") + AS_PATH
                                       + NEXT_HOP), 2)
    evs = events(peer)
    [ch] = [e for e in evs if isinstance(e, RoutesChanged)]
    assert ch.withdrawn == frozenset({P}) and peer.received_prefixes == 0
    [m] = [e for e in evs if isinstance(e, MalformedUpdate)]
    assert "ORIGIN" in m.reason and m.action == TAW
    assert peer.counters.malformed_updates[TAW] == 1


SESSION_RESET = [
    ("unknown well-known attribute", BASE + attr(0x40, 99, b"z"), (3, 2)),
    ("MP_REACH_NLRI repeated", BASE + mp_reach() + mp_reach(), (3, 1)),
    ("MP_REACH_NLRI shorter than 5", BASE + attr(0x80, 14, b"\x00\x01\x01"), (3, 9)),
    ("MP_REACH_NLRI prefix of length 33", BASE + mp_reach(nlri=b"\x21" + bytes(5)), (3, 9)),
    ("MP_UNREACH_NLRI prefix overrun", BASE + attr(0x80, 15, b"\x00\x01\x01\x18\x0a"), (3, 9)),
    ("MP_REACH_NLRI next hop of 16 octets", BASE + mp_reach(nh=bytes(16)), (3, 9)),     # §7.11
    ("MP_REACH_NLRI flagged transitive", BASE + attr(0xC0, 14, mp_reach()[3:]), (3, 4)),  # §5.3
    ("MP_UNREACH_NLRI shorter than 3", BASE + attr(0x80, 15, b"\x00\x01"), (3, 9)),
]


@pytest.mark.parametrize("what, raw, expected", SESSION_RESET, ids=[c[0] for c in SESSION_RESET])
def test_errors_that_still_reset_the_session(what, raw, expected):
    peer, action, sent = feed(raw)
    assert action == "session-reset"
    assert [n[:2] for n in sent] == [expected]
    assert peer.state.value == "Idle"


def test_unrecognized_well_known_attribute_data_is_the_attribute():
    _, _, sent = feed(BASE + attr(0x40, 99, b"z"))
    assert sent == [(3, 2, attr(0x40, 99, b"z"))]


@pytest.mark.parametrize("body, expected", [
    (b"\x00\x09\x00\x00", (3, 1)),                              # withdrawn length overruns
    (b"\x00\x00\x00\x09", (3, 1)),                              # attribute length overruns
    (b"\x00\x00\x00\x00\x21\x0a\x00\x00\x00\x00", (3, 10)),     # NLRI /33
    (b"\x00\x00\x00\x00\x18\x0a\x00", (3, 10)),                 # NLRI runs past the message
    (b"\x00\x02\x28\x0a\x00\x00", (3, 10)),                     # withdrawn /40
])
def test_malformed_update_fields_reset_the_session(body, expected):
    peer = established_peer()
    raw = b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 2) + body
    peer.data_received("c", raw, 1)
    assert [n[:2] for n in notifications(out(peer))] == [expected]


def test_mp_reach_ipv4_unicast_routes_and_mp_unreach_withdrawals():
    peer, action, _ = feed(ORIGIN + AS_PATH + mp_reach(nlri=b"\x10\xac\x11"), nlri=())
    assert action is None and peer.accepted[P2].next_hop == CGW
    peer.data_received("c", cgw_update((), raw_attrs=attr(0x80, 15, b"\x00\x01\x01\x10\xac\x11")),
                       2)
    assert P2 not in peer.accepted


@pytest.mark.parametrize("raw, expected", [
    (attr(0x40, 1, b"\x00\x00") + AS_PATH, (3, 5)),      # ORIGIN length
    (attr(0x40, 1, b"\x07") + AS_PATH, (3, 6)),           # ORIGIN value
    (ORIGIN + attr(0x40, 2, b"\x02\x00"), (3, 11)),       # AS_PATH zero-length segment
    (BASE + attr(0xC0, 8, b"\x01"), (3, 9)),               # COMMUNITIES
    (attr(0x80, 1, b"\x00"), (3, 4)),                      # ORIGIN flags
])
def test_errors_in_an_update_without_nlri_reset_the_session(raw, expected):
    """RFC 7606 §5.2: with attributes but no NLRI nothing shows the message was
    parsed right, so an error stronger than attribute discard resets."""
    peer, action, sent = feed(raw, nlri=())
    assert action == "session-reset" and [n[:2] for n in sent] == [expected]


def test_attribute_discard_in_an_update_without_nlri_is_fine():
    peer, action, sent = feed(BASE + attr(0x40, 6, b"\x01"), nlri=())
    assert action == DISCARD and sent == [] and peer.state.value == "Established"


def test_end_of_rib_and_empty_update():
    from bgpcore.events import EndOfRib
    peer = established_peer()
    peer.data_received("c", Update().encode(), 1)
    assert any(isinstance(e, EndOfRib) for e in events(peer))


# --- AS_PATH ------------------------------------------------------------------------


def test_as_path_length_counts_a_set_as_one():
    path = AsPath((Segment(SegmentType.AS_SEQUENCE, (65000, 65001, 65002)),
                   Segment(SegmentType.AS_SET, (1, 2, 3))))
    assert path.length == 4 and str(path) == "65000 65001 65002 {1 2 3}"
    assert path.prepend(64512).length == 5 and path.prepend(64512).first_as == 64512
    assert AsPath((Segment(SegmentType.AS_SET, (1,)),)).prepend(7).segments[0].asns == (7,)


def test_long_path_splits_into_segments_of_255():
    path = AsPath.of(*range(1, 600))
    raw = encode_path(path, True)
    back = decode_path(raw, True)
    assert back.asns() == tuple(range(1, 600)) and [len(s.asns) for s in back.segments] == [
        255, 255, 89]


def test_as4_path_merge_rfc6793():
    as_path = AsPath.of(65000, 23456, 23456, 100)
    as4 = AsPath.of(4200000001, 4200000002, 100)
    assert merge_as4(as_path, as4) == AsPath.of(65000, 4200000001, 4200000002, 100)
    assert merge_as4(AsPath.of(65000), as4) == AsPath.of(65000)      # AS4_PATH longer: ignored


def two_octet_peer():
    """A CGW without the 4-octet AS capability (an OLD speaker)."""
    peer = raw_peer()
    old = Open(65000, 30, CGW, Capabilities(frozenset({(1, 1)}), route_refresh=True))
    peer.data_received("c", old.encode() + KEEPALIVE, 0)
    assert peer.state.value == "Established"
    out(peer)
    events(peer)
    return peer


def test_two_octet_peer_as4_path_and_as4_aggregator():
    peer = two_octet_peer()
    raw = (ORIGIN + attr(0x40, 2, seq(65000, 23456, 300, size=2)) + NEXT_HOP
           + attr(0xC0, 7, (23456).to_bytes(2, "big") + bytes([10, 0, 0, 1]))
           + attr(0xC0, 17, seq(4200000001, 300))
           + attr(0xC0, 18, (4200000009).to_bytes(4, "big") + bytes([10, 0, 0, 1])))
    peer.data_received("c", cgw_update([P], raw_attrs=raw), 1)
    a = peer.accepted[P]
    assert a.as_path == AsPath.of(65000, 4200000001, 300)
    assert a.aggregator == Aggregator(4200000009, IPv4Address("10.0.0.1"))


def test_two_octet_peer_aggregator_not_as_trans_ignores_as4():
    peer = two_octet_peer()
    raw = (ORIGIN + attr(0x40, 2, seq(65000, 23456, size=2)) + NEXT_HOP
           + attr(0xC0, 7, (65010).to_bytes(2, "big") + bytes(4))
           + attr(0xC0, 17, seq(4200000001)))
    peer.data_received("c", cgw_update([P], raw_attrs=raw), 1)
    assert peer.accepted[P].as_path == AsPath.of(65000, 23456)


def test_two_octet_peer_malformed_as4_path_is_discarded():
    peer = two_octet_peer()
    raw = (ORIGIN + attr(0x40, 2, seq(65000, 23456, size=2)) + NEXT_HOP
           + attr(0xC0, 17, b"\x02\x01\x00\x00\x00"))
    peer.data_received("c", cgw_update([P], raw_attrs=raw), 1)
    assert peer.accepted[P].as_path == AsPath.of(65000, 23456)
    assert any(isinstance(e, MalformedUpdate) and e.action == DISCARD for e in events(peer))


def test_encoding_for_a_two_octet_peer_uses_as_trans_and_as4_path():
    a = PathAttributes(as_path=AsPath.of(4200000000, 65001), next_hop=CGW,
                       aggregator=Aggregator(4200000000, IPv4Address("10.0.0.1")))
    raw = encode_attributes(a, four_octet=False)
    parsed = parse_attributes(raw, four_octet=False)
    assert parsed.problems == []
    assert parsed.values["as_path"] == AsPath.of(4200000000, 65001)       # merged back
    assert parsed.values["aggregator"] == a.aggregator
    assert seq(23456, 65001, size=2) in raw
    # with a 4-octet peer there is neither AS_TRANS nor AS4_PATH
    raw4 = encode_attributes(a, four_octet=True)
    assert b"\xc0\x11" not in raw4 and parse_attributes(raw4, True).values["as_path"] == a.as_path


def test_path_attributes_are_hashable_values():
    a = PathAttributes(as_path=AsPath.of(65000), med=100, next_hop=CGW, communities=(1, 2))
    b = PathAttributes(as_path=AsPath.of(65000), med=100, next_hop=CGW, communities=(1, 2))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
