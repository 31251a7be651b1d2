"""The dynamic-routing lab demos (`scripts/lab.sh --bgp`, `--cloudhub`), for people.

`--bgp`: one dynamic connection; the customer gateway is strongSwan (both
tunnels) plus FRR peering with vgw over each tunnel; no static route anywhere.
Shown: both BGP sessions Established (`vgw status`), the site's prefix
propagated into the VPC route table (`vgw routes`), the VPC CIDR in FRR's RIB
from both tunnels with AS_PATH 64512 and MED 100 on vgw's primary tunnel, 200
on the other; ping and iperf3 across; then the primary tunnel goes down and the
route and the MEDs move, and it comes back.

`--cloudhub`: VPN CloudHub: three sites (FRR, BIRD 2, FRR) and a VPC on one vgw.
Shown: every site's prefix in `vgw routes` and the tunnels it is re-advertised
to; each site's RIB with the other sites' prefixes, AS_PATH [64512, site ASN];
pings site to site (through vgw only) and between each site and the VPC.

The lab harness of the tests (tests/lab/bgplab.py) builds and runs everything.
"""

from __future__ import annotations

import argparse
import json

from tests.lab.bgplab import (AMAZON_SIDE_ASN, VPC_CIDR, CgwNode, SiteSpec, bring_up_cgw, cgw_of_topo,
                              cgw_speaker, hub_topology, start_cgw, start_hub, vgw_config, wait_tunnels_up)
from tests.lab.bgpspeaker import BgpSpeaker, Path
from tests.lab.frr import Frr
from tests.lab.netns import Lab, topology, wait_until
from tests.lab.traffic import ping, run_iperf
from tests.lab.vgwproc import Vgw
from lab_show import Show

# BGP needs IPsec first, then OPEN/KEEPALIVE and FRR's ~1 s before its first UPDATE
BGP_TIMEOUT = 45


def route_rows(vgw: Vgw) -> dict[str, dict]:
    """`vgw routes --json` by destination."""
    return {r["destination"]: r for r in json.loads(vgw.cli("routes", "--json").stdout)["routes"]}


def show_vgw(show: Show, vgw: Vgw, *command: str, table_only: bool = False) -> str:
    """Print a vgw command's output; ``table_only``: up to its first blank line
    (`vgw status`'s one line per tunnel, without the blocks per tunnel)."""
    out = vgw.cli(*command).stdout
    shown = out.split("\n\n", 1)[0] + "\n(one block per tunnel follows; left out here)" if table_only else out
    show.output(f"vgw {' '.join(command)}", shown)
    return out


def rib_command(speaker: BgpSpeaker) -> tuple[str, str]:
    """The command that prints ``speaker``'s BGP table, and its output."""
    if isinstance(speaker, Frr):
        return "vtysh -c 'show bgp ipv4 unicast'", speaker.vtysh("show bgp ipv4 unicast")
    return "birdc show route", speaker.birdc("show route")


def show_rib(show: Show, who: str, speaker: BgpSpeaker) -> None:
    command, text = rib_command(speaker)
    show.output(f"{command}    # in {who}", text)


def describe(path: Path, tunnel_of_hop: dict[str, str]) -> str:
    where = tunnel_of_hop.get(path.next_hop or "", "?")
    return (f"{path.prefix} from {path.next_hop} (tunnel {where}): AS_PATH {' '.join(map(str, path.as_path))},"
            f" MED {path.med}")


def hops_of(node: CgwNode) -> dict[str, str]:
    """VGW inside address -> the tunnel's outside IP (how vgw names it)."""
    return {t.vgw_inside_ip: t.outside_ip for t in node.tunnels}


def bgp_demo(lab: Lab, args: argparse.Namespace, show: Show) -> None:
    topo = topology(lab)
    node = cgw_of_topo(topo)
    site = topo.onprem_cidr
    show.step(f"namespaces {topo.onprem} -- {topo.cgw} == wan == {topo.vgw} -- {topo.vpc}; "
              f"one dynamic connection: no static route anywhere")
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(vgw_config(vgw.control, [node], dynamic=True, bgp_keys=True))
    print(open(vgw.config_path).read())
    vgw.env["VGW_LOG_LEVEL"] = "INFO"
    vgw.start()
    show.step(f"vgw runs (AWS side, AS {AMAZON_SIDE_ASN}); the customer gateway: strongSwan for both tunnels,"
              f" FRR (AS {node.asn}) announcing {site} to each tunnel's VGW inside address")
    start_cgw(lab, node)
    speaker = cgw_speaker(lab, node, "frr").start()
    bring_up_cgw(node)
    ips = [t.outside_ip for t in node.tunnels]
    status = wait_tunnels_up(vgw, ips, timeout=BGP_TIMEOUT)

    show.step("vgw status: both tunnels UP, each with its BGP session Established")
    show_vgw(show, vgw, "status")
    for t in status:
        show.check(t["bgp"] is not None and t["bgp"]["state"] == "Established",
                   f"BGP on {t['outside_ip']} Established")
    primary = next(t["outside_ip"] for t in status if t["primary"])
    other = next(ip for ip in ips if ip != primary)
    hops = hops_of(node)
    inside = {t.outside_ip: t.vgw_inside_ip for t in node.tunnels}

    show.step(f"vgw routes: {site} propagated from BGP into the VPC route table, via the primary {primary}")
    wait_until(lambda: site in route_rows(vgw), 20, 0.2, f"{site} in vgw routes")
    show_vgw(show, vgw, "routes")
    row = route_rows(vgw)[site]
    show.check((row["origin"], row["target"]) == ("propagated", primary), f"{site} propagated via {primary}")

    show.step(f"the customer gateway's RIB: {VPC_CIDR} from both tunnels, AS_PATH {AMAZON_SIDE_ASN},"
              f" MED 100 on vgw's primary tunnel and 200 on the other")
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: len(ps) == 2, timeout=BGP_TIMEOUT)
    show_rib(show, node.ns, speaker)
    for p in paths:
        print(describe(p, hops))
    show.check(all(p.as_path == (AMAZON_SIDE_ASN,) for p in paths)
               and {p.next_hop: p.med for p in paths} == {inside[primary]: 100, inside[other]: 200},
               f"AS_PATH {AMAZON_SIDE_ASN}, MED 100 via {primary} and 200 via {other}")

    show.step(f"traffic: on-premises {topo.onprem_ip} <-> VPC {topo.vpc_ip}")
    show.check(ping(lab, topo.onprem, topo.vpc_ip, count=5), f"ping {topo.onprem_ip} -> {topo.vpc_ip}")
    show.check(ping(lab, topo.vpc, topo.onprem_ip, count=5), f"ping {topo.vpc_ip} -> {topo.onprem_ip}")
    r = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=args.seconds)
    print(f"iperf3 TCP on-premises -> VPC, {args.seconds:g} s: {r['gbps'] * 1000:.0f} Mbit/s,"
          f" {r['retransmits']} retransmits")

    show.step(f"vgw tunnel down {primary}: its BGP session ends; the route and MED 100 move to {other}")
    vgw.cli("tunnel", "down", primary)
    wait_until(lambda: route_rows(vgw).get(site, {}).get("target") == other, 20, 0.2, f"{site} via {other}")
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: [p.med for p in ps] == [100], timeout=BGP_TIMEOUT)
    show_vgw(show, vgw, "routes")
    show_rib(show, node.ns, speaker)
    for p in paths:
        print(describe(p, hops))
    show.check(paths[0].next_hop == inside[other], f"{VPC_CIDR} only via {other}, MED 100")
    show.check(ping(lab, topo.vpc, topo.onprem_ip, count=5), f"ping {topo.vpc_ip} -> {topo.onprem_ip}")

    show.step(f"vgw tunnel up {primary}; the customer gateway initiates it again: {primary} comes back with"
              f" MED 200 (the primary stays on {other} while it is up, as AWS keeps it)")
    vgw.cli("tunnel", "up", primary)
    node.charon.initiate("net", ike=f"tun{ips.index(primary) + 1}", timeout=20)
    wait_tunnels_up(vgw, [primary], timeout=BGP_TIMEOUT)
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: sorted(p.med for p in ps) == [100, 200], timeout=30)
    show_vgw(show, vgw, "routes")
    show_rib(show, node.ns, speaker)
    for p in paths:
        print(describe(p, hops))
    show.check({p.next_hop: p.med for p in paths} == {inside[other]: 100, inside[primary]: 200},
               f"MED 100 via {other}, 200 via {primary}")
    show.check(ping(lab, topo.vpc, topo.onprem_ip, count=5), f"ping {topo.vpc_ip} -> {topo.onprem_ip}")
    if args.keep:
        show.keep([f"ip netns exec {topo.vgw} python3 -m daemon routes --control {vgw.control}",
                   f"vtysh --vty_socket {speaker.dir} -c 'show bgp ipv4 unicast'    # in {topo.cgw}",
                   f"ip netns exec {topo.onprem} ping {topo.vpc_ip}"])


CLOUDHUB_SITES = [SiteSpec("172.16.1.0/24", asn=65001, bgp="frr"), SiteSpec("172.16.2.0/24", asn=65002, bgp="bird"),
                  SiteSpec("172.16.3.0/24", asn=65003, bgp="frr")]


def cloudhub_demo(lab: Lab, args: argparse.Namespace, show: Show) -> None:
    hub = hub_topology(lab, CLOUDHUB_SITES)
    sites = hub.sites
    show.step(f"VPN CloudHub: vgw ({hub.vgw}) with a VPC ({hub.vpc}, {hub.vpc_cidr}) and three sites on one WAN;"
              " no static route anywhere")
    for s in sites:
        node = s.cgws[0]
        print(f"  {s.name}: {s.spec.prefix} behind {node.ns} ({node.wan_ip}), {s.spec.bgp.upper()} AS {s.spec.asn},"
              f" tunnels {', '.join(t.outside_ip for t in node.tunnels)}")
    vgw = start_hub(lab, hub, bgp_keys=True)
    print(open(vgw.config_path).read())

    show.step("vgw status: three connections, six tunnels UP, six BGP sessions Established")
    status = wait_tunnels_up(vgw, [t.outside_ip for n in hub.nodes for t in n.tunnels], timeout=BGP_TIMEOUT)
    show_vgw(show, vgw, "status", table_only=True)
    show.check(all(t["bgp"] and t["bgp"]["state"] == "Established" for t in status),
               "six BGP sessions Established")

    show.step("each site's RIB: the VPC and the two other sites, from both of its tunnels;"
              f" the sites' prefixes with AS_PATH [{AMAZON_SIDE_ASN}, that site's ASN]")
    for s in sites:
        speaker = s.cgws[0].speaker
        speaker.wait_routes(hub.vpc_cidr, lambda ps: len(ps) == 2, timeout=BGP_TIMEOUT)
        for o in sites:
            if o is not s:
                speaker.wait_routes(o.spec.prefix, lambda ps: len(ps) == 2, timeout=BGP_TIMEOUT)
        print(f"\n--- {s.name} ({s.spec.bgp.upper()}, AS {s.spec.asn})")
        show_rib(show, s.cgws[0].ns, speaker)
        hops = hops_of(s.cgws[0])
        for o in sites:
            if o is s:
                continue
            paths = speaker.routes(o.spec.prefix)
            for p in paths:
                print(describe(p, hops))
            show.check(len(paths) == 2 and all(p.as_path == (AMAZON_SIDE_ASN, o.spec.asn) for p in paths),
                       f"{s.name} has {o.name}'s {o.spec.prefix} with AS_PATH {AMAZON_SIDE_ASN} {o.spec.asn}")

    show.step("vgw routes: each site's prefix propagated from its connection and re-advertised"
              " to the other sites' tunnels")
    show_vgw(show, vgw, "routes")
    rows = route_rows(vgw)
    for s in sites:
        row = rows.get(s.spec.prefix, {})
        others = {t.outside_ip for o in sites if o is not s for t in o.cgws[0].tunnels}
        show.check(row.get("origin") == "propagated" and set(row.get("advertised_to", ())) == others,
                   f"{s.spec.prefix} from {s.cgws[0].name}, re-advertised to {', '.join(sorted(others))}")

    show.step("traffic: site to site (through vgw only: no VPC on the way), each site to and from the VPC")
    for s in sites:
        for o in sites:
            if o is not s:
                show.check(ping(lab, s.onprem, o.onprem_ip), f"ping {s.name} {s.onprem_ip} -> {o.name} {o.onprem_ip}")
        show.check(ping(lab, s.onprem, hub.vpc_ip), f"ping {s.name} {s.onprem_ip} -> VPC {hub.vpc_ip}")
        show.check(ping(lab, hub.vpc, s.onprem_ip), f"ping VPC {hub.vpc_ip} -> {s.name} {s.onprem_ip}")
    if args.keep:
        first = sites[0]
        show.keep([f"ip netns exec {hub.vgw} python3 -m daemon routes --control {vgw.control}",
                   f"vtysh --vty_socket {first.cgws[0].speaker.dir} -c 'show bgp ipv4 unicast'"
                   f"    # in {first.cgws[0].ns}",
                   f"ip netns exec {first.onprem} ping {sites[1].onprem_ip}"])
