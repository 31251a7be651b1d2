"""Tunnel throughput in the lab: iperf3 from onprem to vpc through one tunnel.

    python -m bench.lab_tunnel --reference [--seconds 5] [--udp-size 1400]

Each scenario builds a fresh standard topology, brings up one tunnel
(198.51.100.10 <-> 198.51.100.1), runs an iperf3 TCP test and a UDP test
(datagrams of --udp-size bytes, sent as fast as possible) and prints the
receiver's rate (UDP: with the loss; an unlimited sender mostly measures
how much it floods, so try --udp-rate too) with the CPU each tunnel endpoint used, from /proc/PID/stat,
as a percentage of one core.  The reference scenario is strongSwan <->
strongSwan (kernel-libipsec on both sides); vgw scenarios are added to
SCENARIOS and printed beside it, measured in the same run.

kernel-libipsec's TUN has a fixed MTU of 1400 (raising it with ip link
breaks it: libipsec keeps reading with a 1400-byte buffer), so UDP payloads
above 1372 bytes are fragmented before encryption; compare --udp-size 1372.

Everything runs on this one machine: iperf3 client and server and both
endpoints share its cores, so figures compare implementations, not links.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

from tests.lab.netns import Lab, Topo, cpu_seconds, lab_unavailable_reason, topology
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import run_iperf
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

__all__ = ["run_iperf", "measure", "setup_plain", "setup_reference", "SCENARIOS", "main"]

PSK = "bench_psk_tunnel1_abcdef"
IKE_PROPOSALS = "aes128-sha256-modp2048"
# AES-128-GCM: in AWS's phase-2 list, AEAD, and accelerated by AES-NI.
ESP_PROPOSALS = "aes128gcm16-modp2048"
# The same for vgw's side of each scenario (vgw <-> vgw would otherwise pick the
# first of AWS's default list, AES128-CBC).
VGW_ESP = {"phase2_encryption_algorithms": ["AES128-GCM-16"]}


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat (busy = not idle/iowait)."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    total = sum(vals[:8])
    return total - vals[3] - vals[4], total


def measure(
    lab: Lab,
    topo: Topo,
    endpoints: dict[str, int],
    seconds: float,
    udp_size: int | None = None,
    udp_rate: str = "0",
) -> dict:
    """One iperf3 run onprem -> vpc; adds each endpoint's CPU use (% of one core)."""
    before = {name: cpu_seconds(pid) for name, pid in endpoints.items()}
    busy0, total0 = machine_busy()
    start = time.monotonic()
    result = run_iperf(
        lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds, udp_size=udp_size, udp_rate=udp_rate
    )
    wall = time.monotonic() - start
    busy1, total1 = machine_busy()
    # the whole machine (all cores, all processes, softirq), in % of all cores
    result["machine_busy_percent"] = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
    result["cpu_percent"] = {
        name: 100.0 * (cpu_seconds(pid) - before[name]) / wall for name, pid in endpoints.items()
    }
    return result


def setup_reference(lab: Lab, topo: Topo, args: argparse.Namespace) -> dict[str, int]:
    """strongSwan as AWS in vgw, strongSwan as the CGW; one tunnel. Returns label -> PID."""
    aws = Charon(lab, topo.vgw, name="aws").start()
    cgw = Charon(lab, topo.cgw, name="cgw").start()
    common = dict(names=["tun1"], ike_proposals=args.ike, esp_proposals=args.esp, dpd_delay=None)
    aws.load(swanctl_conf_psk(topo.vgw_outside_ips[0], topo.cgw_wan_ip, PSK, **common))
    cgw.load(
        swanctl_conf_psk(
            topo.cgw_wan_ip, topo.vgw_outside_ips[0], PSK,
            local_ts="172.16.0.0/16", remote_ts="10.0.0.0/16", **common,
        )
    )
    cgw.initiate("net", ike="tun1")
    aws.wait_sa("tun1", "net", timeout=10)
    return {"cgw charon": cgw.pid, "aws charon": aws.pid}


def _vgw_aws_side(lab: Lab, topo: Topo, args: argparse.Namespace, cgw_ip: str, name: str,
                  **tunnel_options) -> Vgw:
    vgw = Vgw(lab, topo.vgw, name=name)
    vgw.env["VGW_LOG_LEVEL"] = "WARNING"   # no per-message logging in a benchmark
    vgw.env.update(getattr(args, "vgw_env", {}))
    vgw.write_config(gateway_yaml(
        vgw.control, ["10.0.0.0/16"], "bench", cgw_ip, ["172.16.0.0/16"],
        [tunnel_yaml(topo.vgw_outside_ips[0], "169.254.40.0/30", PSK, **{**VGW_ESP, **tunnel_options})]))
    return vgw.start()


def setup_vgw_strongswan(lab: Lab, topo: Topo, args: argparse.Namespace) -> dict[str, int]:
    """vgw as AWS in vgw, strongSwan as the CGW (UDP-encapsulated: libipsec forces it)."""
    vgw = _vgw_aws_side(lab, topo, args, topo.cgw_wan_ip, "vgw-aws")
    cgw = Charon(lab, topo.cgw, name="cgw-v").start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, topo.vgw_outside_ips[0], PSK, names=["tun1"],
                              ike_proposals=args.ike, esp_proposals=args.esp, dpd_delay=None,
                              local_ts="172.16.0.0/16", remote_ts="10.0.0.0/16"))
    cgw.initiate("net", ike="tun1")
    vgw.wait_up(topo.vgw_outside_ips[0])
    return {"cgw charon": cgw.pid, "aws vgw": vgw.proc.pid}


def _vgw_site(lab: Lab, topo: Topo, args: argparse.Namespace, name: str, inside: str) -> Vgw:
    """The customer side as a vgw in cgw, initiating (startup_action start)."""
    site = Vgw(lab, topo.cgw, name=name)
    site.env["VGW_LOG_LEVEL"] = "WARNING"
    site.env.update(getattr(args, "vgw_env", {}))
    site.write_config(gateway_yaml(
        site.control, ["172.16.0.0/16"], "bench-site", topo.vgw_outside_ips[0], ["10.0.0.0/16"],
        [tunnel_yaml(topo.cgw_wan_ip, inside, PSK, startup_action="start", **VGW_ESP)]))
    return site.start()


def setup_vgw_vgw(lab: Lab, topo: Topo, args: argparse.Namespace) -> dict[str, int]:
    """vgw on both sides, the site side initiating; raw ESP (no NAT on the path)."""
    aws = _vgw_aws_side(lab, topo, args, topo.cgw_wan_ip, "vgw-aws2")
    site = _vgw_site(lab, topo, args, "vgw-site", "169.254.41.0/30")
    aws.wait_up(topo.vgw_outside_ips[0])
    return {"site vgw": site.proc.pid, "aws vgw": aws.proc.pid}


def setup_vgw_vgw_nat(lab: Lab, topo: Topo, args: argparse.Namespace) -> dict[str, int]:
    """vgw on both sides, the site side behind the lab's NAT (topology(nat=True): a
    masquerading router between cgw and the WAN). Both ends detect the NAT honestly
    (RFC 7296 §2.23) and move to ESP in UDP 4500 (RFC 3948)."""
    if not topo.nat:
        raise ValueError("vgw-vgw-udp needs topology(lab, nat=True)")
    aws = _vgw_aws_side(lab, topo, args, topo.cgw_public_ip, "vgw-aws3")
    site = _vgw_site(lab, topo, args, "vgw-site3", "169.254.42.0/30")
    up = aws.wait_up(topo.vgw_outside_ips[0])
    if not up["ike"].get("nat_t"):
        raise RuntimeError("vgw <-> vgw behind the NAT did not negotiate UDP encapsulation")
    return {"site vgw": site.proc.pid, "aws vgw": aws.proc.pid}


def setup_plain(lab: Lab, topo: Topo, args: argparse.Namespace) -> dict[str, int]:
    """No tunnel: cgw and vgw route the LANs over the WAN. The ceiling of this machine."""
    lab.route(topo.cgw, topo.vpc_cidr, via=topo.vgw_outside_ips[0])
    lab.route(topo.vgw, topo.onprem_cidr, via=topo.cgw_wan_ip)
    return {}


# name -> (title, setup)
SCENARIOS: dict[str, tuple[str, Callable[[Lab, Topo, argparse.Namespace], dict[str, int]]]] = {
    "plain": ("plain routing, no tunnel", setup_plain),
    "reference": ("strongSwan CGW <-> strongSwan AWS side", setup_reference),
    "vgw": ("strongSwan CGW <-> vgw AWS side", setup_vgw_strongswan),
    "vgw-vgw": ("vgw <-> vgw (raw ESP)", setup_vgw_vgw),
    "vgw-vgw-udp": ("vgw <-> vgw (ESP in UDP, NAT)", setup_vgw_vgw_nat),
}
# Scenarios built on topology(lab, nat=True).
NAT_SCENARIOS = {"vgw-vgw-udp"}


def run_scenario(name: str, args: argparse.Namespace) -> list[dict]:
    title, setup = SCENARIOS[name]
    rows = []
    with Lab() as lab:
        topo = topology(lab, nat=name in NAT_SCENARIOS)
        endpoints = setup(lab, topo, args)
        for udp_size in (None, *args.udp_size):
            result = measure(lab, topo, endpoints, args.seconds, udp_size, args.udp_rate)
            result.pop("json")
            result.update(scenario=name, title=title)
            rows.append(result)
    return rows


def format_row(row: dict) -> str:
    extra = (
        f"loss {row['lost_percent']:5.1f}%" if "lost_percent" in row else f"retr {row['retransmits']:6d}"
    )
    cpu = "  ".join(f"{name} {pct:5.1f}%" for name, pct in row["cpu_percent"].items()) or "n/a"
    return f"{row['title']:<44} {row['mode']:<8} {row['gbps']:7.3f} Gbit/s  {extra}  CPU: {cpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab_tunnel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", action="store_true",
                        help="only the strongSwan <-> strongSwan reference (no vgw scenarios)")
    parser.add_argument("--no-vgw-vgw", action="store_true", help="skip the vgw <-> vgw scenario")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each iperf3 run")
    parser.add_argument(
        "--udp-size", type=int, action="append",
        help="UDP payload bytes per datagram; repeat for several runs (default 1400)",
    )
    parser.add_argument(
        "--udp-rate", default="0",
        help="UDP send rate for iperf3 -b, e.g. 200M (default 0: as fast as possible)",
    )
    parser.add_argument("--plain", action="store_true", help="also measure plain routing, no tunnel")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS),
                        help="run only these scenarios (repeatable; no reference unless named)")
    parser.add_argument("--ike", default=IKE_PROPOSALS, help="IKE proposal")
    parser.add_argument("--esp", default=ESP_PROPOSALS, help="ESP proposal")
    parser.add_argument("--json", action="store_true", help="print one JSON object per result")
    args = parser.parse_args(argv)
    args.udp_size = args.udp_size or [1400]
    reason = lab_unavailable_reason()
    if reason:
        print(f"cannot run the lab: {reason}", file=sys.stderr)
        return 2
    scenarios = ["reference"]  # always measured, in the same run, as the baseline
    if not args.reference:
        scenarios.append("vgw")
        if not args.no_vgw_vgw:
            scenarios.append("vgw-vgw")
    if args.plain:
        scenarios.insert(0, "plain")
    if args.only:
        scenarios = args.only
    results: dict[tuple[str, str], float] = {}
    for name in scenarios:
        for row in run_scenario(name, args):
            results[(name, row["mode"])] = row["gbps"]
            print(json.dumps(row) if args.json else format_row(row), flush=True)
    if not args.json:
        for (name, mode), gbps in results.items():
            ref = results.get(("reference", mode))
            if name not in ("reference", "plain") and ref:
                print(f"ratio {SCENARIOS[name][0]} / reference, {mode}: {gbps / ref:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
