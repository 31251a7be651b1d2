"""The two-tunnel lab, for people: vgw as the AWS side, strongSwan as the customer
gateway, an on-premises host and a VPC host, each in its own network namespace.

    sudo ./scripts/lab.sh            # up, show traffic and status, tear down
    sudo ./scripts/lab.sh --keep     # ... and wait (Ctrl-C) so you can look around

Everything lives in namespaces named with a per-run prefix and is removed at the
end, also on Ctrl-C or an error.
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

VGW_IPS = ("198.51.100.1", "198.51.100.2")
PSKS = ("example_psk_tunnel1_abcdef", "example_psk_tunnel2_abcdef")


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the lab up until Ctrl-C")
    parser.add_argument("--seconds", type=float, default=3, help="iperf3 duration (default 3)")
    args = parser.parse_args()
    reason = lab_unavailable_reason()
    if reason:
        print(f"lab: cannot run here: {reason}", file=sys.stderr)
        return 1
    with Lab() as lab:
        topo = topology(lab)
        say(f"namespaces {topo.onprem} -- {topo.cgw} == wan == {topo.vgw} -- {topo.vpc}")
        vgw = Vgw(lab, topo.vgw)
        vgw.write_config(gateway_yaml(
            vgw.control, ["10.0.0.0/16"], "vpn-lab", topo.cgw_wan_ip, ["172.16.0.0/16"],
            [tunnel_yaml(VGW_IPS[0], "169.254.10.0/30", PSKS[0]),
             tunnel_yaml(VGW_IPS[1], "169.254.11.0/30", PSKS[1])]))
        print(open(vgw.config_path).read())
        vgw.env["VGW_LOG_LEVEL"] = "INFO"
        vgw.start()
        say("vgw is running (AWS side); starting strongSwan as the customer gateway")
        cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
        cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, list(VGW_IPS), list(PSKS)))
        for name in ("tun1", "tun2"):
            cgw.initiate("net", ike=name, timeout=20)
        for ip in VGW_IPS:
            vgw.wait_up(ip)
        say("strongSwan: swanctl --list-sas")
        print(cgw.swanctl("--list-sas").stdout)
        say(f"ping on-premises {topo.onprem_ip} -> VPC {topo.vpc_ip}")
        print("ok" if ping(lab, topo.onprem, topo.vpc_ip, count=5) else "FAILED")
        say(f"ping VPC {topo.vpc_ip} -> on-premises {topo.onprem_ip}")
        print("ok" if ping(lab, topo.vpc, topo.onprem_ip, count=5) else "FAILED")
        say(f"iperf3 TCP on-premises -> VPC, {args.seconds:g} s")
        r = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=args.seconds)
        print(f"{r['gbps'] * 1000:.0f} Mbit/s, {r['retransmits']} retransmits")
        say("vgw status")
        print(vgw.cli("status").stdout)
        say(f"vgw tunnel down {VGW_IPS[0]}: traffic moves to the other tunnel")
        vgw.cli("tunnel", "down", VGW_IPS[0])
        time.sleep(0.5)
        print("ping on-premises -> VPC:", "ok" if ping(lab, topo.onprem, topo.vpc_ip, count=5) else "FAILED")
        print(vgw.cli("status").stdout)
        if args.keep:
            say("the lab stays up; try for example:")
            print(f"  ip netns exec {topo.vgw} python3 -m daemon status --control {vgw.control}")
            print(f"  ip netns exec {topo.onprem} ping {topo.vpc_ip}")
            print("Ctrl-C tears it down.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        say("tearing down (vgw deletes its SAs on SIGTERM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
