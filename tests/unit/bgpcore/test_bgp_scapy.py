"""Known answers against an independent implementation: scapy's BGP layer
(scapy.contrib.bgp) builds messages the core parses, and dissects messages the
core builds; the fields must match both ways."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from bgpcore.aspath import AsPath
from bgpcore.attributes import PathAttributes
from bgpcore.constants import Origin
from bgpcore.messages import (
    KEEPALIVE, Notification, Open, RouteRefresh, decode_notification, decode_open,
    decode_route_refresh, max_prefixes_data,
)
from bgpcore.rib_out import AdjRibOut, pack_announcements, pack_withdrawals
from bgpcore.update import decide_update

scapy_all = pytest.importorskip("scapy.all")
scapy_all.load_contrib("bgp")
from scapy.contrib import bgp as sbgp  # noqa: E402

VGW, CGW = IPv4Address("169.254.10.1"), IPv4Address("169.254.10.2")


def _as_size(two_bytes: bool):
    old = sbgp.bgp_module_conf.use_2_bytes_asn
    sbgp.bgp_module_conf.use_2_bytes_asn = two_bytes
    yield
    sbgp.bgp_module_conf.use_2_bytes_asn = old


four_byte_as = pytest.fixture(lambda: (yield from _as_size(False)), name="four_byte_as")
two_byte_as = pytest.fixture(lambda: (yield from _as_size(True)), name="two_byte_as")


def capabilities(param) -> list:
    """Every capability in a scapy optional parameter (scapy reads the first
    and leaves the rest as Raw; vgw, like FRR, puts all in one parameter)."""
    caps, cap = [], param.param_value
    while cap is not None and not isinstance(cap, scapy_all.NoPayload):
        if isinstance(cap, scapy_all.Raw):
            cap = sbgp.BGPCapability(cap.load)
            continue
        caps.append(cap)
        cap = cap.payload
    return caps


# --- OPEN ---------------------------------------------------------------------------


def test_scapy_open_parsed_by_the_core():
    pkt = sbgp.BGPHeader(type=1) / sbgp.BGPOpen(
        my_as=23456, hold_time=90, bgp_id=str(CGW), opt_params=[
            sbgp.BGPOptParam(param_type=2, param_value=sbgp.BGPCapMultiprotocol(afi=1, safi=1)),
            sbgp.BGPOptParam(param_type=2, param_value=sbgp.BGPCapGeneric(code=128, length=0)),
            sbgp.BGPOptParam(param_type=2, param_value=sbgp.BGPCapFourBytesASN(asn=4200000000)),
        ])
    o = decode_open(bytes(pkt)[19:])
    assert (o.version, o.my_as, o.asn, o.hold_time, o.router_id) == (
        4, 23456, 4200000000, 90, CGW)
    assert o.capabilities.multiprotocol == frozenset({(1, 1)})
    assert o.capabilities.route_refresh_cisco and not o.capabilities.route_refresh


def test_core_open_dissected_by_scapy():
    raw = Open.for_speaker(4200000001, 30, VGW).encode()
    pkt = sbgp.BGP(raw)
    o = pkt[sbgp.BGPOpen]
    assert (pkt.type, pkt.len, o.version, o.my_as, o.hold_time, o.bgp_id) == (
        1, len(raw), 4, 23456, 30, str(VGW))
    [param] = o.opt_params
    caps = {c.code: c for c in capabilities(param)}
    assert set(caps) == {1, 2, 65}
    assert (caps[1].afi, caps[1].safi) == (1, 1)
    assert caps[65].asn == 4200000001 and caps[2].length == 0
    assert o.opt_param_len == param.param_length + 2


# --- UPDATE -------------------------------------------------------------------------


def scapy_attr(flags, code, attribute):
    return sbgp.BGPPathAttr(type_flags=flags, type_code=code, attribute=attribute)


def test_scapy_update_parsed_by_the_core(four_byte_as):
    seg = sbgp.BGPPAAS4BytesPath.ASPathSegment(segment_type=2,
                                               segment_value=[65000, 4200000000])
    pkt = sbgp.BGPHeader(type=2) / sbgp.BGPUpdate(
        withdrawn_routes=[sbgp.BGPNLRI_IPv4(prefix="192.0.2.0/24")],
        path_attr=[scapy_attr(0x40, 1, sbgp.BGPPAOrigin(origin=2)),
                   scapy_attr(0x40, 2, sbgp.BGPPAAS4BytesPath(segments=[seg])),
                   scapy_attr(0x40, 3, sbgp.BGPPANextHop(next_hop=str(CGW))),
                   scapy_attr(0x80, 4, sbgp.BGPPAMultiExitDisc(med=150)),
                   scapy_attr(0x40, 6, sbgp.BGPPAAtomicAggregate()),
                   scapy_attr(0xC0, 8, sbgp.BGPPACommunity(community=0xFDE80064))],
        nlri=[sbgp.BGPNLRI_IPv4(prefix="172.16.0.0/16"),
              sbgp.BGPNLRI_IPv4(prefix="10.9.8.0/23"),
              sbgp.BGPNLRI_IPv4(prefix="0.0.0.0/0")])
    out = decide_update(bytes(pkt)[19:], four_octet=True, peer_asn=65000)
    assert out.problems == [] and out.withdrawn == [IPv4Network("192.0.2.0/24")]
    nets = [p for p, _ in out.announced]
    assert nets == [IPv4Network("172.16.0.0/16"), IPv4Network("10.9.8.0/23"),
                    IPv4Network("0.0.0.0/0")]
    a = out.announced[0][1]
    assert a == PathAttributes(Origin.INCOMPLETE, AsPath.of(65000, 4200000000), CGW, 150,
                               atomic_aggregate=True, communities=(0xFDE80064,))


def test_scapy_two_octet_update_with_as4_path(two_byte_as):
    seg = sbgp.BGPPAASPath.ASPathSegment(segment_type=2, segment_value=[65000, 23456])
    pkt = sbgp.BGPHeader(type=2) / sbgp.BGPUpdate(
        path_attr=[scapy_attr(0x40, 1, sbgp.BGPPAOrigin(origin=0)),
                   scapy_attr(0x40, 2, sbgp.BGPPAASPath(segments=[seg])),
                   scapy_attr(0x40, 3, sbgp.BGPPANextHop(next_hop=str(CGW))),
                   scapy_attr(0xC0, 17, sbgp.BGPPAAS4Path(segment_type=2,
                                                          segment_value=[4200000000]))],
        nlri=[sbgp.BGPNLRI_IPv4(prefix="172.16.0.0/16")])
    out = decide_update(bytes(pkt)[19:], four_octet=False, peer_asn=65000)
    assert out.problems == []
    assert out.announced[0][1].as_path == AsPath.of(65000, 4200000000)


def exported_update(four_octet: bool) -> bytes:
    rib = AdjRibOut(4200000000, VGW)
    routes = {IPv4Network("10.0.0.0/16"): rib.export(PathAttributes(med=100, local_pref=500)),
              IPv4Network("10.1.0.0/24"): rib.export(PathAttributes(med=100, local_pref=500))}
    [raw], _ = pack_announcements(routes, four_octet)
    return raw


def test_core_update_dissected_by_scapy(four_byte_as):
    pkt = sbgp.BGP(exported_update(True))
    u = pkt[sbgp.BGPUpdate]
    attrs = {a.type_code: a.attribute for a in u.path_attr}
    assert set(attrs) == {1, 2, 3, 4}                       # no LOCAL_PREF to an eBGP peer
    assert attrs[1].origin == 0 and attrs[3].next_hop == str(VGW) and attrs[4].med == 100
    [seg] = attrs[2].segments
    assert (seg.segment_type, seg.segment_value) == (2, [4200000000])
    assert [n.prefix for n in u.nlri] == ["10.0.0.0/16", "10.1.0.0/24"]
    assert u.withdrawn_routes_len == 0 and pkt.len == len(exported_update(True))


def test_core_two_octet_update_dissected_by_scapy(two_byte_as):
    u = sbgp.BGP(exported_update(False))[sbgp.BGPUpdate]
    attrs = {a.type_code: a for a in u.path_attr}
    assert attrs[2].attribute.segments[0].segment_value == [23456]
    assert attrs[17].type_flags & 0xC0 == 0xC0           # optional transitive
    assert attrs[17].attribute.segment_value == [4200000000]


def test_core_withdrawal_dissected_by_scapy():
    [raw] = pack_withdrawals([IPv4Network("10.0.0.0/16"), IPv4Network("192.0.2.128/25")])
    u = sbgp.BGP(raw)[sbgp.BGPUpdate]
    assert [w.prefix for w in u.withdrawn_routes] == ["10.0.0.0/16", "192.0.2.128/25"]
    assert u.path_attr_len == 0 and not u.nlri


# --- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH ------------------------------------------


def test_core_cease_1_dissected_by_scapy():
    raw = Notification(6, 1, max_prefixes_data(100)).encode()
    n = sbgp.BGP(raw)[sbgp.BGPNotification]
    assert (n.error_code, n.error_subcode, n.data) == (6, 1, bytes.fromhex("00010100000064"))


def test_scapy_notification_parsed_by_the_core():
    raw = bytes(sbgp.BGPHeader(type=3) / sbgp.BGPNotification(error_code=6, error_subcode=2,
                                                               data=b"\x03bye"))
    n = decode_notification(raw[19:])
    assert (n.code, n.subcode, n.communication, n.name) == (
        6, 2, "bye", "Cease / Administrative Shutdown")


def test_keepalive_and_route_refresh_both_ways():
    assert bytes(sbgp.BGPKeepAlive()) == KEEPALIVE
    assert sbgp.BGP(KEEPALIVE).type == 4
    rr = RouteRefresh().encode()
    s = sbgp.BGP(rr)[sbgp.BGPRouteRefresh]
    assert (s.afi, s.safi, s.subtype) == (1, 1, 0)
    theirs = bytes(sbgp.BGPHeader(type=5) / sbgp.BGPRouteRefresh(afi=1, safi=1))
    assert decode_route_refresh(theirs[19:]) == RouteRefresh(1, 1)
