"""The lab, for people: vgw as the AWS side, strongSwan as the customer gateway,
an on-premises host and a VPC host, each in its own network namespace.

    sudo ./scripts/lab.sh              # two tunnels, static routes: up, traffic, status, failover
    sudo ./scripts/lab.sh --bgp        # one dynamic connection: BGP (FRR) over both tunnels
    sudo ./scripts/lab.sh --cloudhub   # VPN CloudHub: three BGP sites (FRR, BIRD, FRR) and a VPC
    sudo ./scripts/lab.sh --keep ...   # ... and wait (Ctrl-C) so you can look around

Everything lives in namespaces named with a per-run prefix and is removed at the
end, also on Ctrl-C or an error. Exit 0 when everything shown worked, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.lab.netns import Lab, lab_unavailable_reason, topology  # noqa: E402
from tests.lab.strongswan import Charon, swanctl_conf_psk  # noqa: E402
from tests.lab.traffic import ping, run_iperf  # noqa: E402
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml  # noqa: E402
from lab_show import Show  # noqa: E402

VGW_IPS = ("198.51.100.1", "198.51.100.2")
PSKS = ("example_psk_tunnel1_abcdef", "example_psk_tunnel2_abcdef")


def static_demo(lab: Lab, args: argparse.Namespace, show: Show) -> None:
    topo = topology(lab)
    show.step(f"namespaces {topo.onprem} -- {topo.cgw} == wan == {topo.vgw} -- {topo.vpc}")
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(gateway_yaml(
        vgw.control, ["10.0.0.0/16"], "vpn-lab", topo.cgw_wan_ip, ["172.16.0.0/16"],
        [tunnel_yaml(VGW_IPS[0], "169.254.10.0/30", PSKS[0]),
         tunnel_yaml(VGW_IPS[1], "169.254.11.0/30", PSKS[1])]))
    print(open(vgw.config_path).read())
    vgw.env["VGW_LOG_LEVEL"] = "INFO"
    vgw.start()
    show.step("vgw is running (AWS side); starting strongSwan as the customer gateway")
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, list(VGW_IPS), list(PSKS)))
    for name in ("tun1", "tun2"):
        cgw.initiate("net", ike=name, timeout=20)
    for ip in VGW_IPS:
        vgw.wait_up(ip)
    show.step("strongSwan: swanctl --list-sas")
    print(cgw.swanctl("--list-sas").stdout)
    show.step(f"ping on-premises {topo.onprem_ip} <-> VPC {topo.vpc_ip}")
    show.check(ping(lab, topo.onprem, topo.vpc_ip, count=5), f"ping {topo.onprem_ip} -> {topo.vpc_ip}")
    show.check(ping(lab, topo.vpc, topo.onprem_ip, count=5), f"ping {topo.vpc_ip} -> {topo.onprem_ip}")
    show.step(f"iperf3 TCP on-premises -> VPC, {args.seconds:g} s")
    r = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=args.seconds)
    print(f"{r['gbps'] * 1000:.0f} Mbit/s, {r['retransmits']} retransmits")
    show.step("vgw status")
    print(vgw.cli("status").stdout)
    show.step(f"vgw tunnel down {VGW_IPS[0]}: traffic moves to the other tunnel")
    vgw.cli("tunnel", "down", VGW_IPS[0])
    time.sleep(0.5)
    show.check(ping(lab, topo.onprem, topo.vpc_ip, count=5), "ping on-premises -> VPC")
    print(vgw.cli("status").stdout)
    if args.keep:
        show.keep([f"ip netns exec {topo.vgw} python3 -m daemon status --control {vgw.control}",
                   f"ip netns exec {topo.onprem} ping {topo.vpc_ip}"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--bgp", action="store_true",
                         help="one dynamic connection: a strongSwan + FRR customer gateway, BGP over both tunnels")
    variant.add_argument("--cloudhub", action="store_true",
                         help="VPN CloudHub: three sites (FRR, BIRD, FRR) and a VPC on one vgw")
    parser.add_argument("--keep", action="store_true", help="keep the lab up until Ctrl-C")
    parser.add_argument("--seconds", type=float, default=3, help="iperf3 duration (default 3)")
    args = parser.parse_args()
    reason = lab_unavailable_reason()
    if reason is None and (args.bgp or args.cloudhub):
        from tests.lab.bgplab import bgp_unavailable_reason

        reason = bgp_unavailable_reason()
    if reason:
        print(f"lab: cannot run here: {reason}", file=sys.stderr)
        return 1
    if args.bgp or args.cloudhub:
        from lab_demo_dynamic import bgp_demo, cloudhub_demo

        demo = bgp_demo if args.bgp else cloudhub_demo
    else:
        demo = static_demo
    show = Show()
    try:
        with Lab() as lab:
            try:
                demo(lab, args, show)
            finally:
                show.step("tearing down (vgw deletes its SAs on SIGTERM)")
    except KeyboardInterrupt:
        print("\nlab: interrupted; torn down", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - any failure: the lab is gone, say why
        print(f"\nlab: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return show.result()


if __name__ == "__main__":
    sys.exit(main())
