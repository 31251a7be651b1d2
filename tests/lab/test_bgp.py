"""Dynamic routing against real customer gateways (issue 12): strongSwan for IPsec,
FRR or BIRD 2 (Debian packages) as the CGW's BGP speaker, vgw's own speaker on
the AWS side. No static route anywhere: the site's prefix reaches vgw's routes by
BGP, the VPC's CIDR reaches the CGW's RIB by BGP with AS_PATH 64512 and MED 100 on
the primary tunnel, 200 on the other (docs/aws.md §7, §11).
"""

from __future__ import annotations

import json

import pytest

from tests.lab.bgplab import (AMAZON_SIDE_ASN, CGW_ASN, VPC_CIDR, bring_up_cgw, cgw_of_topo, cgw_speaker,
                              start_cgw, vgw_config, wait_tunnels_up)
from tests.lab.bgpspeaker import many_prefixes
from tests.lab.netns import topology, wait_until
from tests.lab.traffic import ping, tcp_probe
from tests.lab.vgwproc import Vgw

pytestmark = pytest.mark.lab


def dynamic_pair(lab, daemon: str, cgw_asn: int = CGW_ASN, speaker_asn: int | None = None, **speaker_options):
    """vgw with one dynamic connection and a dual-tunnel CGW running `daemon` over
    both tunnels; IPsec up (BGP may still be coming)."""
    topo = topology(lab)
    node = cgw_of_topo(topo, asn=cgw_asn)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(vgw_config(vgw.control, [node], dynamic=True, bgp_keys=True))
    vgw.start()
    start_cgw(lab, node)
    if speaker_asn is not None:
        node.asn = speaker_asn      # the CGW speaks another AS than vgw expects
    speaker = cgw_speaker(lab, node, daemon, **speaker_options).start()
    bring_up_cgw(node)
    return topo, node, vgw, speaker


def tunnel_status(vgw: Vgw) -> dict[str, dict]:
    return {t["outside_ip"]: t for t in vgw.status()}


def vgw_routes(vgw: Vgw) -> dict[str, dict]:
    out = vgw.cli("routes", "--json").stdout
    return {r["destination"]: r for r in json.loads(out)["routes"]}


def kernel_route(lab, ns: str, prefix: str) -> str:
    """vgw's route to `prefix` (protocol 190; FRR's rt_protos names 190 "ripng",
    so the number is matched, not the name)."""
    return lab.run(ns, "ip", "route", "show", prefix, "proto", "190").stdout.strip()


@pytest.mark.parametrize("daemon", ["frr", "bird"])
def test_dynamic_connection_routes_by_bgp_and_fails_over(bgp_lab, daemon):
    lab = bgp_lab
    topo, node, vgw, speaker = dynamic_pair(lab, daemon)
    t1, t2 = node.tunnels
    status = wait_tunnels_up(vgw, [t1.outside_ip, t2.outside_ip], timeout=45)
    by_ip = {t["outside_ip"]: t for t in status}
    for t in (t1, t2):
        bgp = by_ip[t.outside_ip]["bgp"]
        assert bgp["state"] == "Established" and bgp["peer_asn"] == CGW_ASN and bgp["hold_time"] == 30, bgp
    primary = next(ip for ip, t in by_ip.items() if t["primary"])
    other = t2.outside_ip if primary == t1.outside_ip else t1.outside_ip
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

    # traffic crosses both ways, ping and TCP
    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    probe = tcp_probe(lab, topo.vpc, topo.vpc_ip, 5201, topo.onprem, topo.onprem_ip)
    assert probe["client_got"] == "ack:probe", probe

    # the primary goes down: route and MED move to the other tunnel, traffic follows
    vgw.cli("tunnel", "down", primary)
    wait_until(lambda: f"dev {tun_of[other]}" in kernel_route(lab, topo.vgw, site), 20, 0.2,
               "the site's route on the other tunnel")
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: [p.med for p in ps] == [100], timeout=45)
    assert paths[0].next_hop == inside[other].vgw_inside_ip, paths
    assert ping(lab, topo.vpc, topo.onprem_ip)
    assert tunnel_status(vgw)[primary]["status"] == "DOWN"

    # and back: the tunnel returns, the primary stays where it is (AWS keeps it), MED 200 on the returner
    vgw.cli("tunnel", "up", primary)
    node.charon.initiate("net", ike=f"tun{[t.outside_ip for t in node.tunnels].index(primary) + 1}", timeout=20)
    wait_tunnels_up(vgw, [primary], timeout=45)
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: sorted(p.med for p in ps) == [100, 200], timeout=30)
    assert {p.next_hop: p.med for p in paths} == {inside[other].vgw_inside_ip: 100,
                                                  inside[primary].vgw_inside_ip: 200}, paths
    assert ping(lab, topo.vpc, topo.onprem_ip)
