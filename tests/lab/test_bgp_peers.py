"""vgw's BGP speaker against two more implementations than FRR and BIRD: GoBGP
(Go) and ExaBGP (Python), Debian packages, as the customer gateway's speaker over
both tunnels of a dynamic connection (strongSwan for IPsec). Each has its own FSM,
its own collision handling and its own capabilities (GoBGP offers FQDN and
extended next hop, ExaBGP no route refresh and connects without listening), so
vgw meets choices its tests of FRR and BIRD do not make.

Neither daemon writes kernel routes: the CGW's route back to the VPC is static,
into the tunnels' TUN (tests/lab/bgplab.py), and what BGP decides is read from
the daemon's RIB and from vgw's route table and kernel routes.
"""

from __future__ import annotations

import pytest

from tests.lab.bgplab import (AMAZON_SIDE_ASN, CGW_ASN, VPC_CIDR, dynamic_pair, kernel_route, tunnel_status,
                              take_primary_down, vgw_routes, wait_dynamic_up)
from tests.lab.netns import wait_until
from tests.lab.traffic import ping, tcp_probe

pytestmark = pytest.mark.lab

RUNTIME_PREFIX = "192.168.50.0/24"


@pytest.mark.parametrize("daemon", ["gobgp", "exabgp"])
def test_dynamic_connection_with_gobgp_and_exabgp(bgp_lab, daemon):
    lab = bgp_lab
    topo, node, vgw, speaker = dynamic_pair(lab, daemon, kernel=False)
    by_ip, primary, other = wait_dynamic_up(vgw, node)
    for t in node.tunnels:
        seen = speaker.wait_established(t.vgw_inside_ip)
        assert (seen.peer_as, seen.hold_time) == (AMAZON_SIDE_ASN, 30), seen
    inside = {t.outside_ip: t for t in node.tunnels}

    # the CGW's RIB: the VPC CIDR from both tunnels, AS_PATH 64512, origin IGP, MED 100 on the primary
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: sorted(p.med for p in ps) == [100, 200])
    assert all(p.as_path == (AMAZON_SIDE_ASN,) and p.origin == "IGP" for p in paths), paths
    assert {p.next_hop: p.med for p in paths} == {inside[primary].vgw_inside_ip: 100,
                                                  inside[other].vgw_inside_ip: 200}, paths

    # vgw's route table and the kernel: the site's prefix via the primary tunnel
    site = topo.onprem_cidr
    wait_until(lambda: site in vgw_routes(vgw), 20, 0.2, f"{site} in vgw routes")
    row = vgw_routes(vgw)[site]
    assert (row["origin"], row["target"], row["as_path"]) == ("propagated", primary, [CGW_ASN]), row
    tun_of = {ip: t["tun"] for ip, t in by_ip.items()}
    assert f"dev {tun_of[primary]}" in kernel_route(lab, topo.vgw, site)

    # traffic both ways (the CGW's way back to the VPC is static: see the module docstring)
    lab.route(topo.cgw, VPC_CIDR, dev="ipsec0")
    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    probe = tcp_probe(lab, topo.vpc, topo.vpc_ip, 5201, topo.onprem, topo.onprem_ip)
    assert probe["client_got"] == "ack:probe", probe

    # a prefix announced at run time is installed; its withdrawal removes it
    speaker.announce([RUNTIME_PREFIX])
    wait_until(lambda: f"dev {tun_of[primary]}" in kernel_route(lab, topo.vgw, RUNTIME_PREFIX), 20, 0.2,
               f"{RUNTIME_PREFIX} installed")
    assert tunnel_status(vgw)[primary]["status_message"] == "2 BGP ROUTES"
    speaker.withdraw([RUNTIME_PREFIX])
    wait_until(lambda: RUNTIME_PREFIX not in vgw_routes(vgw) and not kernel_route(lab, topo.vgw, RUNTIME_PREFIX),
               20, 0.2, f"{RUNTIME_PREFIX} withdrawn")

    if daemon == "exabgp":
        # the other tunnel never offered MED 100 while the primary was up: not even
        # in its first UPDATE when both sessions came up in one moment
        meds = [p.med for p in speaker.announcements(VPC_CIDR) if p.peer == inside[other].vgw_inside_ip]
        assert meds and set(meds) == {200}, meds

    # the primary goes down: the route and MED 100 move to the other tunnel
    take_primary_down(lab, topo, vgw, node, speaker, primary, other)

    # the CGW's speaker stops (SIGTERM: it sends Cease): the session ends and the route goes
    speaker.stop()
    wait_until(lambda: site not in vgw_routes(vgw) and not kernel_route(lab, topo.vgw, site), 20, 0.2,
               "the site's route gone with the session")
    assert tunnel_status(vgw)[other]["bgp"]["state"] != "Established"
