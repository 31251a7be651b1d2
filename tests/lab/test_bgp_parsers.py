"""Self-tests of the BGP harness's parsers and config rendering (no root): the
texts are what BIRD 2.0.12, FRR 8.4.4, GoBGP 3.10 and ExaBGP 4.2.21 printed in
this lab."""

from __future__ import annotations

import json

import pytest

from tests.lab.bgpspeaker import as_numbers, many_prefixes
from tests.lab.bird import Bird, parse_protocol, parse_routes
from tests.lab.exabgp import _as_path, replay_messages
from tests.lab.frr import Frr, _path, _session
from tests.lab.gobgp import parse_peer, parse_rib

# two paths of one prefix: the second header line has no prefix, only the best has "*"
BIRD_ROUTES = (
    "Table master4:\n"
    "172.16.1.0/24        unicast [peer1 03:59:50.288] * (100) [AS65001i]\n\tvia 192.0.2.1 on br0\n"
    "\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 65001\n\tBGP.next_hop: 192.0.2.1\n"
    "\tBGP.med: 7\n\tBGP.local_pref: 100\n"
    "                     unicast [peer2 03:59:50.651] (100) [AS65002i]\n\tvia 192.0.2.3 on br0\n"
    "\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 65002 65002\n\tBGP.next_hop: 192.0.2.3\n"
    "\tBGP.local_pref: 100\n"
    "10.0.0.0/16          blackhole [announced 03:59:49.101] * (200)\n\tType: static univ\n"
)
BIRD_PROTOCOL_UP = """\
Name       Proto      Table      State  Since         Info
peer2      BGP        ---        up     03:59:38.547  Established
  BGP state:          Established
    Neighbor address: 169.254.11.2
    Neighbor AS:      65000
    Hold timer:       22.971/30
    Keepalive timer:  5.380/10
  Channel ipv4
    State:          UP
    Routes:         1 imported, 1 exported, 0 preferred
"""
BIRD_PROTOCOL_DOWN = """\
Name       Proto      Table      State  Since         Info
peer1      BGP        ---        start  03:54:54.354  Idle          Received: Bad peer AS
  BGP state:          Idle
    Neighbor address: 192.0.2.1
    Neighbor AS:      65000
    Error wait:       7.345/8
    Last error:       Received: Bad peer AS
  Channel ipv4
    State:          DOWN
"""
FRR_TABLE = json.loads(
    '{"routes": {"172.16.1.0/24": [{"valid":true,"peerId":"192.0.2.2","path":"64512 65001",'
    '"origin":"IGP","nexthops":[{"ip":"192.0.2.1","afi":"ipv4","used":true}]},'
    '{"valid":true,"bestpath":true,"metric":0,"peerId":"(unspec)","path":"","origin":"IGP",'
    '"nexthops":[{"ip":"0.0.0.0","afi":"ipv4","used":true}]}]}}')


def test_bird_routes():
    paths = parse_routes(BIRD_ROUTES, {"peer1": "192.0.2.1", "peer2": "192.0.2.3"})
    assert [(p.prefix, p.peer, p.best, p.as_path, p.med, p.next_hop) for p in paths] == [
        ("172.16.1.0/24", "192.0.2.1", True, (65001,), 7, "192.0.2.1"),
        ("172.16.1.0/24", "192.0.2.3", False, (65002, 65002), None, "192.0.2.3"),
        ("10.0.0.0/16", None, True, (), None, None),
    ]


def test_bird_protocol():
    up = parse_protocol("169.254.11.2", BIRD_PROTOCOL_UP)
    assert up.established and (up.peer_as, up.hold_time, up.keepalive, up.prefixes_accepted) == (65000, 30, 10, 1)
    down = parse_protocol("192.0.2.1", BIRD_PROTOCOL_DOWN)
    assert not down.established and down.state == "Idle" and down.hold_time is None
    assert down.last_error == "Received: Bad peer AS"


def test_frr_json():
    learned, local = [_path("172.16.1.0/24", e) for e in FRR_TABLE["routes"]["172.16.1.0/24"]]
    assert (learned.as_path, learned.med, learned.next_hop, learned.peer, learned.best) == (
        (64512, 65001), None, "192.0.2.1", "192.0.2.2", False)
    assert local.peer is None and local.best and local.med == 0
    s = _session("192.0.2.2", {"bgpState": "Idle", "remoteAs": 64512, "bgpTimerHoldTimeMsecs": 30000,
                               "lastNotificationReason": "OPEN Message Error/Bad Peer AS",
                               "lastResetDueTo": "BGP Notification send"})
    assert s.hold_time is None and s.last_error == "OPEN Message Error/Bad Peer AS"
    # after a retry FRR shows only the reset's reason: the logged NOTIFICATION stays the error
    s = _session("192.0.2.2", {"bgpState": "Active", "lastResetDueTo": "Waiting for peer OPEN"},
                 "Cease/Maximum Number of Prefixes Reached")
    assert s.last_error == "Cease/Maximum Number of Prefixes Reached"
    fresh = _session("192.0.2.2", {"bgpState": "Established", "lastResetDueTo": "Waiting for peer OPEN"})
    assert fresh.last_error == ""


def test_as_numbers_and_prefixes():
    assert as_numbers("64512 {65001,65002}") == (64512, 65001, 65002)
    assert as_numbers("") == ()
    prefixes = many_prefixes(101)
    assert len(set(prefixes)) == 101 and prefixes[100] == "10.200.100.0/24"
    with pytest.raises(ValueError):
        many_prefixes(3, "10.0.0.0/23", 24)


class _FakeLab:
    def tmpdir(self, name):
        return f"/tmp/x/{name}"


def test_frr_config_defines_route_map_before_router_bgp():
    frr = Frr(_FakeLab(), "v1-cgw", 65000, "198.51.100.10", [("169.254.10.1", 64512, "169.254.10.2")],
              ["172.16.1.0/24"], med=50, prepend=2, max_prefixes=100)
    text = frr.config_text()
    assert text.index("route-map ANNOUNCE permit 10") < text.index("router bgp 65000")
    for line in (" no bgp ebgp-requires-policy", " neighbor 169.254.10.1 timers 10 30",
                 " set metric 50", " set as-path prepend 65000 65000",
                 "  neighbor 169.254.10.1 maximum-prefix 100",
                 " neighbor 169.254.10.1 update-source 169.254.10.2"):
        assert line in text.splitlines(), line


def test_bird_config():
    bird = Bird(_FakeLab(), "v1-cgw", 65000, "198.51.100.10", [("169.254.10.1", 64512, "169.254.10.2")],
                ["172.16.1.0/24", "172.16.2.0/24"], med=50, prepend=1, max_prefixes=100, kernel=False)
    text = bird.config_text()
    assert "local 169.254.10.2 as 65000;" in text and "neighbor 169.254.10.1 as 64512;" in text
    assert "if net ~ [ 172.16.1.0/24, 172.16.2.0/24 ] then { bgp_med = 50; bgp_path.prepend(65000); accept; }" in text
    assert "receive limit 100 action restart;" in text and "protocol kernel" not in text


def test_vgw_config_writes_dynamic_keys_only_when_asked():
    import yaml

    from tests.lab.bgplab import CgwNode, connection_plan, vgw_config

    nodes = []
    for k, asn in ((0, 65001), (1, 65002)):
        wan_ip, tunnels = connection_plan(k)
        nodes.append(CgwNode(f"s{k + 1}c1", "ns", wan_ip, "172.16.1.1", [f"172.16.{k + 1}.0/24"], tunnels, asn))
    today = yaml.safe_load(vgw_config("/s", nodes, [False, True]))
    static, dynamic = today["connections"]
    assert static["static_routes"] == ["172.16.1.0/24"] and "static_routes" not in dynamic
    assert "amazon_side_asn" not in today and "bgp_asn" not in dynamic["customer_gateway"]
    assert [t["inside_cidr"] for t in dynamic["tunnels"]] == ["169.254.12.0/30", "169.254.13.0/30"]
    later = yaml.safe_load(vgw_config("/s", nodes, True, vpc_cidrs=None, bgp_keys=True))
    assert later["amazon_side_asn"] == 64512 and "vpc" not in later
    assert [(c["static_routes_only"], c["customer_gateway"]) for c in later["connections"]] == [
        (False, {"ip": "198.51.100.101", "bgp_asn": 65001}), (False, {"ip": "198.51.100.102", "bgp_asn": 65002})]


# what gobgp 3.10 printed in this lab (`gobgp global rib -a ipv4 -j`, one neighbor of
# `gobgp neighbor -j`, cut to the fields read)
GOBGP_RIB = {
    "10.0.0.0/16": [
        {"nlri": {"prefix": "10.0.0.0/16"}, "best": True, "neighbor-ip": "169.254.10.1",
         "attrs": [{"type": 1, "value": 0}, {"type": 2, "as_paths": [{"segment_type": 2, "num": 1, "asns": [64512]}]},
                   {"type": 3, "nexthop": "169.254.10.1"}, {"type": 4, "metric": 100}]},
        {"nlri": {"prefix": "10.0.0.0/16"}, "best": False, "neighbor-ip": "169.254.11.1",
         "attrs": [{"type": 1, "value": 0}, {"type": 2, "as_paths": [{"segment_type": 2, "num": 1, "asns": [64512]}]},
                   {"type": 3, "nexthop": "169.254.11.1"}, {"type": 4, "metric": 200}]}],
    "172.16.1.0/24": [{"nlri": {"prefix": "172.16.1.0/24"}, "best": True,
                       "attrs": [{"type": 1, "value": 0}, {"type": 3, "nexthop": "0.0.0.0"}]}],
}
GOBGP_PEER = {"conf": {"local_asn": 65000, "neighbor_address": "169.254.11.1", "peer_asn": 64512},
              "state": {"neighbor_address": "169.254.11.1", "peer_asn": 64512, "session_state": 6},
              "timers": {"config": {"hold_time": 30, "keepalive_interval": 10},
                         "state": {"keepalive_interval": 10, "negotiated_hold_time": 30}},
              "afi_safis": [{"state": {"family": {"afi": 1, "safi": 1}, "received": 1, "accepted": 1}}]}


def test_gobgp_rib_and_peer():
    paths = parse_rib(GOBGP_RIB)
    vpc = [p for p in paths if p.prefix == "10.0.0.0/16"]
    assert [(p.as_path, p.med, p.next_hop, p.best, p.origin, p.peer) for p in vpc] == [
        ((64512,), 100, "169.254.10.1", True, "IGP", "169.254.10.1"),
        ((64512,), 200, "169.254.11.1", False, "IGP", "169.254.11.1")]
    own = next(p for p in paths if p.prefix == "172.16.1.0/24")
    assert (own.as_path, own.med, own.peer) == ((), None, None)
    session = parse_peer("169.254.11.1", GOBGP_PEER)
    assert (session.state, session.peer_as, session.hold_time, session.keepalive, session.prefixes_accepted) == (
        "Established", 64512, 30, 10, 1)
    idle = parse_peer("169.254.11.1", {**GOBGP_PEER, "state": {**GOBGP_PEER["state"], "session_state": 3}})
    assert (idle.state, idle.hold_time) == ("Active", None)


def _exabgp(kind: str, peer: str, **content) -> dict:
    """An ExaBGP 4.2 API message as its JSON encoder writes it (fields read)."""
    return {"exabgp": "4.0.1", "type": kind,
            "neighbor": {"address": {"local": "169.254.10.2", "peer": peer}, "asn": {"local": 65000, "peer": 64512},
                         **content}}


def test_exabgp_replay():
    peer = "169.254.10.1"
    update = {"update": {"attribute": {"origin": "igp", "as-path": [64512], "confederation-path": [], "med": 100},
                         "announce": {"ipv4 unicast": {peer: [{"nlri": "10.0.0.0/16"}, {"nlri": "10.1.0.0/16"}]}}}}
    messages = [_exabgp("state", peer, state="connected"),
                _exabgp("negotiated", peer, negotiated={"hold_time": 30}),
                _exabgp("state", peer, state="up"),
                _exabgp("update", peer, direction="receive", message=update),
                _exabgp("update", peer, direction="receive",
                        message={"update": {"withdraw": {"ipv4 unicast": [{"nlri": "10.1.0.0/16"}]}}}),
                _exabgp("update", peer, direction="receive", message={"eor": {"afi": "ipv4", "safi": "unicast"}})]
    replay = replay_messages(messages)
    session = replay.session(peer)
    assert (session.state, session.peer_as, session.hold_time, session.keepalive, session.prefixes_accepted) == (
        "Established", 64512, 30, 10, 1)
    [path] = replay.rib[peer].values()
    assert (path.prefix, path.as_path, path.med, path.next_hop, path.origin) == (
        "10.0.0.0/16", (64512,), 100, peer, "IGP")
    assert [p.prefix for p in replay.announced] == ["10.0.0.0/16", "10.1.0.0/16"]   # withdrawn one kept
    # segments keyed by position (newer encoders), and a NOTIFICATION's "0x" data
    assert _as_path({"0": {"element": "as-sequence", "value": [64512, 65001]}}) == (64512, 65001)
    down = replay_messages(messages + [
        _exabgp("notification", peer, direction="receive", notification={"code": 6, "subcode": 2, "data": "0x"}),
        _exabgp("state", peer, state="down", reason="peer reset")])
    assert down.session(peer).state == "down" and peer not in down.rib
    assert [(n.code, n.subcode, n.data) for n in down.notifications] == [(6, 2, b"")]
