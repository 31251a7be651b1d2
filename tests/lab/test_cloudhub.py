"""One virtual private gateway, many connections (issue 13), with real customer
gateways: strongSwan for IPsec, FRR and BIRD 2 for BGP, each site in its own
namespaces on a shared WAN (tests/lab/bgplab.py's hub topology).

- VPN CloudHub: three dynamic sites and a VPC; every site reaches the others and
  the VPC, the VPC every site, with no static route anywhere; each site's RIB holds
  the others' prefixes with AS_PATH [64512, that site's ASN] (docs/aws.md §7, §11).
- Redundant customer gateways of one site: the one whose path AWS's selection
  prefers carries the traffic; when it dies the other takes over within the hold
  time; when it returns the traffic moves back.
- A static and a dynamic connection side by side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.lab.bgplab import (AMAZON_SIDE_ASN, SiteSpec, bring_up_cgw, cgw_speaker, hub_topology, kernel_route,
                              restart_cgw, start_cgw, start_hub, vgw_config, vgw_routes, wait_tunnels_up)
from tests.lab.netns import wait_until
from tests.lab.traffic import ping, tcp_probe
from tests.lab.vgwproc import Vgw

pytestmark = pytest.mark.lab

HOLD_TIME = 30


def tun_of(vgw) -> dict[str, str]:
    return {t["outside_ip"]: t["tun"] for t in vgw.status()}


def test_cloudhub_three_sites_and_a_vpc(bgp_lab):
    lab = bgp_lab
    specs = [SiteSpec("172.16.1.0/24", asn=65001, bgp="frr"), SiteSpec("172.16.2.0/24", asn=65002, bgp="bird"),
             SiteSpec("172.16.3.0/24", asn=65003, bgp="frr")]
    hub = hub_topology(lab, specs)
    vgw = start_hub(lab, hub, bgp_keys=True)
    sites = hub.sites
    # each site's RIB: the VPC and the two other sites, over both of its tunnels,
    # the sites' with AS_PATH [64512, ASN] (vgw prepends its AS to the site's path)
    for site in sites:
        node = site.cgws[0]
        paths = node.speaker.wait_routes(hub.vpc_cidr, lambda ps: len(ps) == 2, timeout=45)
        assert all(p.as_path == (AMAZON_SIDE_ASN,) for p in paths), paths
        for other in sites:
            if other is site:
                continue
            paths = node.speaker.wait_routes(other.spec.prefix, lambda ps: len(ps) == 2, timeout=45)
            assert all(p.as_path == (AMAZON_SIDE_ASN, other.spec.asn) for p in paths), (site.name, paths)
            assert sorted(p.med for p in paths) == [100, 200], paths
    routes = vgw_routes(vgw)
    for site in sites:
        row = routes[site.spec.prefix]
        assert (row["origin"], row["connection"]) == ("propagated", site.cgws[0].name), row
        others = {t.outside_ip for s in sites if s is not site for t in s.cgws[0].tunnels}
        assert set(row["advertised_to"]) == others, row
    # traffic: site <-> site (through vgw only: no VPC on the way), site <-> VPC
    for site in sites:
        assert ping(lab, site.onprem, hub.vpc_ip), site.name
        assert ping(lab, hub.vpc, site.onprem_ip), site.name
        for other in sites:
            if other is not site:
                assert ping(lab, site.onprem, other.onprem_ip), (site.name, other.name)
    for i, site in enumerate(sites):
        other = sites[(i + 1) % len(sites)]
        probe = tcp_probe(lab, other.onprem, other.onprem_ip, 5201, site.onprem, site.onprem_ip)
        assert probe["client_got"] == "ack:probe" and probe["server_saw"][0] == site.onprem_ip, probe
        probe = tcp_probe(lab, site.onprem, site.onprem_ip, 5202, hub.vpc, hub.vpc_ip)
        assert probe["client_got"] == "ack:probe", probe

    # bad input: site 2 announces site 1's prefix (more specific) and the VPC's
    # CIDR; neither is installed over the original, both are logged
    site1_route = kernel_route(lab, hub.vgw, sites[0].spec.prefix)
    sites[1].cgws[0].speaker.announce(["172.16.1.128/25", hub.vpc_cidr])
    wait_until(lambda: "172.16.1.128/25 not installed" in vgw.log_text()
               and f"{hub.vpc_cidr} not installed" in vgw.log_text(), 20, 0.2, "the refusals in vgw's log")
    assert kernel_route(lab, hub.vgw, "172.16.1.128/25") == ""
    assert kernel_route(lab, hub.vgw, sites[0].spec.prefix) == site1_route
    assert ping(lab, hub.vpc, sites[0].onprem_ip)

    # a flapping site moves nothing of the others: site 3's speaker goes and comes
    # back twice; sites 1 and 2 keep their routes and their sessions
    before = {s.spec.prefix: kernel_route(lab, hub.vgw, s.spec.prefix) for s in sites[:2]}
    established = {t["outside_ip"]: t["bgp"]["uptime_seconds"] for t in vgw.status() if t["bgp"]}
    for _ in range(2):
        sites[2].cgws[0].speaker.stop()
        wait_until(lambda: kernel_route(lab, hub.vgw, sites[2].spec.prefix) == "", 20, 0.2, "site 3 withdrawn")
        sites[2].cgws[0].speaker.start()
        wait_until(lambda: kernel_route(lab, hub.vgw, sites[2].spec.prefix) != "", 45, 0.2, "site 3 back")
    assert {s.spec.prefix: kernel_route(lab, hub.vgw, s.spec.prefix) for s in sites[:2]} == before
    for t in vgw.status():
        if t["connection"] in (sites[0].cgws[0].name, sites[1].cgws[0].name) and t["outside_ip"] in established:
            # the sessions of sites 1 and 2 stayed up all along
            assert t["bgp"]["uptime_seconds"] >= established[t["outside_ip"]], t["bgp"]
    assert ping(lab, sites[0].onprem, sites[2].onprem_ip)


def test_redundant_customer_gateways_fail_over_within_the_hold_time(bgp_lab):
    lab = bgp_lab
    hub = hub_topology(lab, [SiteSpec("172.16.1.0/24", cgws=2, asn=65001)], vpc=True)
    site = hub.sites[0]
    first, second = site.cgws
    # both CGWs of the site run FRR; the second prepends its AS twice: it loses
    # AWS's path selection (shorter AS_PATH, docs/aws.md §7) while the first lives
    vgw = Vgw(lab, hub.vgw)
    vgw.write_config(vgw_config(vgw.control, hub.nodes, True, (hub.vpc_cidr,), bgp_keys=True))
    vgw.start()
    for node, prepend in ((first, 0), (second, 2)):
        start_cgw(lab, node)
        cgw_speaker(lab, node, "frr", prepend=prepend).start()
        bring_up_cgw(node)
    wait_tunnels_up(vgw, [t.outside_ip for n in hub.nodes for t in n.tunnels], timeout=45)
    prefix = site.spec.prefix
    tuns = tun_of(vgw)
    on_first = {tuns[t.outside_ip] for t in first.tunnels}
    on_second = {tuns[t.outside_ip] for t in second.tunnels}

    def via(tuns_: set[str]) -> bool:
        return any(f"dev {name}" in kernel_route(lab, hub.vgw, prefix) for name in tuns_)

    def both_learned() -> bool:
        # "UP" means Established; the second CGW's UPDATE may come a moment later
        row = vgw_routes(vgw).get(prefix)
        return row is not None and second.name in {a["connection"] for a in row.get("alternatives", [])}

    wait_until(lambda: via(on_first) and both_learned(), 30, 0.2,
               "the site's route via the first CGW, the second's path beside it")
    row = vgw_routes(vgw)[prefix]
    assert row["connection"] == first.name and row["reason"].startswith("shorter AS_PATH"), row
    assert ping(lab, hub.vpc, site.onprem_ip)

    # the first CGW dies (no NOTIFICATION, no IKE DELETE, not even a TCP FIN: its
    # IPsec goes first): within the hold time the route moves to the second, with
    # no manual step on vgw
    killed = time.monotonic()
    os.kill(first.charon.pid, signal.SIGKILL)
    first.charon.stop()             # reaps it; nothing more goes out
    first.speaker.kill()
    site.use_cgw(lab, 1)            # the site's own failover (its LAN's gateway)
    # bounded by the hold time plus the lab's slack (2-core machine, shared with other tests)
    wait_until(lambda: via(on_second), HOLD_TIME + 15, 0.2, "the site's route via the second CGW")
    moved_after = time.monotonic() - killed
    assert moved_after <= HOLD_TIME + 15, moved_after
    assert ping(lab, hub.vpc, site.onprem_ip)
    assert ping(lab, site.onprem, hub.vpc_ip)

    # the first comes back: its shorter path wins again
    restart_cgw(lab, first)
    first.speaker.start()
    bring_up_cgw(first)
    site.use_cgw(lab, 0)
    wait_until(lambda: via(on_first), 45, 0.2, "the site's route back via the first CGW")
    # the way back: FRR on the restarted CGW installs the VPC's route (zebra, a moment
    # after the session that just carried the site's route to vgw)
    wait_until(lambda: lab.run(first.ns, "ip", "route", "show", hub.vpc_cidr).stdout.strip(), 15, 0.2,
               "the VPC's route in the first CGW's kernel")
    assert ping(lab, hub.vpc, site.onprem_ip)


def test_a_static_and_a_dynamic_connection_side_by_side(bgp_lab):
    lab = bgp_lab
    hub = hub_topology(lab, [SiteSpec("172.16.1.0/24"), SiteSpec("172.16.2.0/24", asn=65002, bgp="bird")])
    vgw = start_hub(lab, hub, bgp_keys=True)
    static, dynamic = hub.sites
    routes = vgw_routes(vgw)
    wait_until(lambda: dynamic.spec.prefix in vgw_routes(vgw), 30, 0.2, "the dynamic site's prefix")
    routes = vgw_routes(vgw)
    assert routes[static.spec.prefix]["origin"] == "static"
    assert routes[dynamic.spec.prefix]["origin"] == "propagated"
    # static connections take no part in CloudHub: their prefixes are not re-advertised
    assert routes[static.spec.prefix]["advertised_to"] == []
    node = dynamic.cgws[0]
    node.speaker.wait_routes(hub.vpc_cidr, lambda ps: len(ps) == 2, timeout=30)
    assert node.speaker.routes(static.spec.prefix) == []
    status = {t["outside_ip"]: t for t in vgw.status()}
    for t in static.cgws[0].tunnels:
        assert status[t.outside_ip]["status_message"] == "IPSEC IS UP" and status[t.outside_ip]["bgp"] is None
    for t in node.tunnels:
        assert status[t.outside_ip]["status_message"] == "1 BGP ROUTES"
    for site in hub.sites:
        assert ping(lab, site.onprem, hub.vpc_ip), site.name
        assert ping(lab, hub.vpc, site.onprem_ip), site.name


@pytest.mark.alone
def test_a_reload_that_adds_a_connection_loses_no_ping_between_the_others(bgp_lab):
    """Issue 13: a fourth connection added by SIGHUP while two sites talk through the
    hub: not one ping lost, and the running connections keep their SAs and their
    BGP sessions (a reload leaves unchanged tunnels alone)."""
    lab = bgp_lab
    hub = hub_topology(lab, [SiteSpec(f"172.16.{i}.0/24", asn=65000 + i, bgp="frr") for i in (1, 2, 3, 4)])
    first, fourth = hub.nodes[:3], hub.nodes[3]
    vgw = Vgw(lab, hub.vgw)
    vgw.write_config(vgw_config(vgw.control, first, True, (hub.vpc_cidr,), bgp_keys=True))
    vgw.start()
    for node in first:
        start_cgw(lab, node)
        cgw_speaker(lab, node, "frr").start()
        bring_up_cgw(node)
    wait_tunnels_up(vgw, [t.outside_ip for n in first for t in n.tunnels], timeout=45)
    a, b = hub.sites[0], hub.sites[1]
    wait_until(lambda: ping(lab, a.onprem, b.onprem_ip, count=1), 30, 0.5, "site 1 reaching site 2")
    before = {t["outside_ip"]: t for t in vgw.status()}
    # 20 s of pings every 50 ms, site 1 -> site 2, across the reload
    pinger = lab.popen(a.onprem, "ping", "-n", "-q", "-i", "0.05", "-c", "400", "-W", "1", b.onprem_ip,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    vgw.write_config(vgw_config(vgw.control, hub.nodes, True, (hub.vpc_cidr,), bgp_keys=True))
    vgw.reload()
    start_cgw(lab, fourth)
    cgw_speaker(lab, fourth, "frr").start()
    bring_up_cgw(fourth)
    wait_tunnels_up(vgw, [t.outside_ip for t in fourth.tunnels], timeout=45)
    out, _ = pinger.communicate(timeout=60)
    assert " 0% packet loss" in out, out
    after = {t["outside_ip"]: t for t in vgw.status()}
    for ip, old in before.items():
        new = after[ip]
        # the same IKE SA and CHILD SA, the same BGP session (not re-established)
        assert new["ike"]["spi_i"] == old["ike"]["spi_i"], (ip, old["ike"], new["ike"])
        assert [c["spi_in"] for c in new["children"]] == [c["spi_in"] for c in old["children"]]
        assert new["bgp"]["uptime_seconds"] >= old["bgp"]["uptime_seconds"], (ip, old["bgp"], new["bgp"])
    # the new site is in the hub: its prefix reaches the others, theirs reach it
    fourth.speaker.wait_routes(a.spec.prefix, lambda ps: len(ps) == 2, timeout=30)
    assert ping(lab, hub.sites[3].onprem, a.onprem_ip)
