"""Dynamic routing against real customer gateways (issue 12): strongSwan for IPsec,
FRR or BIRD 2 (Debian packages) as the CGW's BGP speaker, vgw's own speaker on
the AWS side. No static route anywhere: the site's prefix reaches vgw's routes by
BGP, the VPC's CIDR reaches the CGW's RIB by BGP with AS_PATH 64512 and MED 100 on
the primary tunnel, 200 on the other (docs/aws.md §7, §11).
"""

from __future__ import annotations

import os

import pytest

from daemon.bgp.awslog import parse_bgp_record
from daemon.cgwconfig import stable_id

from tests.lab.bgplab import (AMAZON_SIDE_ASN, CGW_ASN, VPC_CIDR, dynamic_pair, kernel_route, tunnel_status,
                              take_primary_down, vgw_routes, wait_dynamic_up, wait_tunnels_up)
from tests.lab.bgpspeaker import many_prefixes
from tests.lab.frr import ROUTE_MAP
from tests.lab.netns import wait_until
from tests.lab.traffic import ping, tcp_probe

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("daemon", ["frr", "bird"])
def test_dynamic_connection_routes_by_bgp_and_fails_over(bgp_lab, daemon):
    lab = bgp_lab
    topo, node, vgw, speaker = dynamic_pair(lab, daemon)
    by_ip, primary, other = wait_dynamic_up(vgw, node)
    inside = {t.outside_ip: t for t in node.tunnels}

    # the CGW's RIB: the VPC CIDR from both tunnels, AS_PATH 64512, MED 100 on vgw's primary
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: len(ps) == 2)
    meds = {p.next_hop: p.med for p in paths}
    assert all(p.as_path == (AMAZON_SIDE_ASN,) for p in paths), paths
    assert meds == {inside[primary].vgw_inside_ip: 100, inside[other].vgw_inside_ip: 200}, paths

    # vgw's route table: the site's prefix propagated via the primary tunnel; the kernel agrees
    site = topo.onprem_cidr
    wait_until(lambda: site in vgw_routes(vgw), 20, 0.2, f"{site} in vgw routes")
    row = vgw_routes(vgw)[site]
    assert (row["origin"], row["target"], row["state"]) == ("propagated", primary, "active"), row
    assert row["as_path"] == [CGW_ASN]
    tun_of = {ip: t["tun"] for ip, t in by_ip.items()}
    assert f"dev {tun_of[primary]}" in kernel_route(lab, topo.vgw, site)
    assert tunnel_status(vgw)[primary]["status_message"] == "1 BGP ROUTES"

    if daemon == "frr":
        # AWS's import policy (docs/aws.md §3.4, §11): a route with vgw's own AS in its
        # AS_PATH and one whose next hop is not the CGW inside address are denied and
        # logged as AWS logs them, and never installed
        speaker.configure("ip prefix-list VGWLOOP seq 5 permit 192.0.2.0/24",
                          f"route-map {ROUTE_MAP} permit 5", "match ip address prefix-list VGWLOOP",
                          f"set as-path prepend {AMAZON_SIDE_ASN}", "exit",
                          "ip prefix-list VGWHOP seq 5 permit 198.18.0.0/24",
                          f"route-map {ROUTE_MAP} permit 6", "match ip address prefix-list VGWHOP",
                          "set ip next-hop 169.254.10.99", "exit",
                          f"router bgp {CGW_ASN}", "address-family ipv4 unicast",
                          "network 192.0.2.0/24", "network 198.18.0.0/24")
        wait_until(lambda: "Route 192.0.2.0/24 from neighbor" in vgw.log_text()
                   and "Route 198.18.0.0/24 from neighbor" in vgw.log_text(), 30, 0.2, "the denials")
        text = vgw.log_text()
        assert any("192.0.2.0/24" in line and "DENIED due to: as-path contains our own AS" in line
                   for line in text.splitlines()), text[-3000:]
        assert any("198.18.0.0/24" in line and "DENIED due to: non-connected next-hop" in line
                   for line in text.splitlines()), text[-3000:]
        routes = vgw_routes(vgw)
        assert "192.0.2.0/24" not in routes and "198.18.0.0/24" not in routes
        assert kernel_route(lab, topo.vgw, "192.0.2.0/24") == kernel_route(lab, topo.vgw, "198.18.0.0/24") == ""
        assert tunnel_status(vgw)[primary]["status_message"] == "1 BGP ROUTES"   # denied ones not counted

    # traffic crosses both ways, ping and TCP
    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    probe = tcp_probe(lab, topo.vpc, topo.vpc_ip, 5201, topo.onprem, topo.onprem_ip)
    assert probe["client_got"] == "ack:probe", probe

    # the primary goes down: route and MED move to the other tunnel, traffic follows
    take_primary_down(lab, topo, vgw, node, speaker, primary, other)
    assert tunnel_status(vgw)[primary]["status"] == "DOWN"

    # and back: the tunnel returns, the primary stays where it is (AWS keeps it), MED 200 on the returner
    vgw.cli("tunnel", "up", primary)
    node.charon.initiate("net", ike=f"tun{[t.outside_ip for t in node.tunnels].index(primary) + 1}", timeout=20)
    wait_tunnels_up(vgw, [primary], timeout=45)
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: sorted(p.med for p in ps) == [100, 200], timeout=30)
    assert {p.next_hop: p.med for p in paths} == {inside[other].vgw_inside_ip: 100,
                                                  inside[primary].vgw_inside_ip: 200}, paths
    assert ping(lab, topo.vpc, topo.onprem_ip)


def test_more_than_100_prefixes_end_the_session_with_cease_and_the_limit(bgp_lab):
    """docs/aws.md §11.2: the 101st prefix draws Cease / Maximum Number of Prefixes
    Reached with data AFI 1, SAFI 1, limit 100; vgw comes back after its back-off
    and does the same while the customer gateway stays over the limit."""
    lab = bgp_lab
    topo, node, vgw, speaker = dynamic_pair(lab, "frr")
    t1 = node.tunnels[0]
    wait_tunnels_up(vgw, [t.outside_ip for t in node.tunnels], timeout=45)
    # 100 prefixes: at the limit, still fine (AWS's quota is 100 per connection)
    speaker.announce(many_prefixes(99))
    wait_until(lambda: tunnel_status(vgw)[t1.outside_ip]["status_message"] == "100 BGP ROUTES", 30, 0.2,
               "100 routes accepted")
    speaker.announce(many_prefixes(100))           # one more: 101
    limit = bytes.fromhex("00010100000064")
    speaker.wait_notification(lambda n: n.direction == "received" and (n.code, n.subcode) == (6, 1)
                                      and n.data == limit and n.peer == t1.vgw_inside_ip, timeout=30,
                                      what="Cease/1 with AFI 1, SAFI 1, limit 100 from vgw")
    status = tunnel_status(vgw)[t1.outside_ip]
    assert status["status"] == "DOWN" and status["status_message"] == "IPSEC IS UP", status
    assert status["bgp"]["last_notification"]["name"].startswith("Cease"), status["bgp"]
    assert status["bgp"]["last_notification"]["data"] == limit.hex()
    # none of the 101 stays in vgw's routes: the session that carried them ended
    assert not [r for r in vgw_routes(vgw) if r.startswith("10.200.")]
    # vgw reconnects after its back-off and ends the session again while the CGW stays over
    count = len([n for n in speaker.notifications() if (n.code, n.subcode) == (6, 1) and n.peer == t1.vgw_inside_ip])
    wait_until(lambda: len([n for n in speaker.notifications() if (n.code, n.subcode) == (6, 1)
                            and n.peer == t1.vgw_inside_ip and n.direction == "received"]) > count,
               45, 0.5, "a second Cease/1 after vgw's back-off")
    assert "max-prefix violation" in vgw.log_text()
    # back under the limit: the session stays up
    speaker.withdraw(many_prefixes(100))
    wait_until(lambda: tunnel_status(vgw)[t1.outside_ip]["status"] == "UP", 90, 0.5, "the session back up")


def test_a_wrong_peer_as_is_refused_and_the_tunnel_stays_down_with_ipsec_up(bgp_lab, tmp_path):
    """The CGW speaks AS 65001 where vgw expects 65000: OPEN Message Error / Bad Peer
    AS; IPsec is up, the tunnel is DOWN ("IPsec up, tunnel down", docs/aws.md §11.3);
    AWS's BGP log records say why (docs/aws.md §3.4)."""
    lab = bgp_lab
    log_dir = lab.tmpdir("bgplogs")
    options = {"log_options": {"cloudwatch_log_options": {"bgp_log_enabled": True, "bgp_log_output_format": "json",
                                                          "bgp_log_file": os.path.join(log_dir, "bgp.log")}}}
    topo, node, vgw, speaker = dynamic_pair(lab, "bird", speaker_asn=65001, tunnel_options=options)
    t1 = node.tunnels[0]
    speaker.wait_notification(lambda n: n.direction == "received" and (n.code, n.subcode) == (2, 2), timeout=30,
                              what="OPEN Message Error / Bad Peer AS from vgw")
    status = tunnel_status(vgw)[t1.outside_ip]
    assert (status["status"], status["status_message"], status["ipsec"]) == ("DOWN", "IPSEC IS UP", "UP"), status
    assert status["bgp"]["state"] != "Established"
    records = [parse_bgp_record(line, "json") for line in open(os.path.join(log_dir, "bgp.log"))]
    # resource_id: the connection's id (the one `vgw cgw-config` prints) and the tunnel's outside IP
    ids = {f"{stable_id('vpn', 'vpn-lab')}_{t.outside_ip}" for t in node.tunnels}
    assert records and {r["resource_id"] for r in records} == ids, records[:3]
    details = [r["message"]["details"] for r in records]
    assert any("remote AS is 65001, expected 65000" in d for d in details), details
    assert any(r["type"] == "BGPStatus" and r["status"] == "DOWN" for r in records)
