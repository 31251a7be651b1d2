"""IKE SA setup rate against one daemon, and its memory with many tunnels.

    python -m bench.setup [--tunnels 200] [--rounds 1]

Two namespaces joined by a veth.  The daemon under test (the AWS side, responder, as
AWS is by default) runs in one with ``--tunnels`` tunnels, each on its own outside IP
(198.18.1.x/16, RFC 2544's benchmarking range, added to its interface), one connection
per tunnel.  A second vgw in the other namespace plays every customer gateway
(198.18.2.x, ``startup_action: start``) and initiates all tunnels at once.

Printed: how long from the first to the last tunnel UP, as the responder itself saw it
(``last_status_change`` of each tunnel), and so IKE SAs (each with its first CHILD SA)
established per second; the wall time from starting the initiator to all UP; the CPU
each daemon used meanwhile; the responder's resident memory (VmRSS) with no tunnel up,
and with all up, and the initiator's; and from the responder's `vgw status` (round 1)
the IKE SAs it made and ended, and its anti-DoS counters (cookies, requests dropped):
a burst this large is above the cookie threshold, and a request dropped unserved
costs its tunnel the initiator's retransmission time.  The responder keeps vgw's default
``dos_protection`` (cookies above 16 half-open SAs, 200 new SAs a second): the figure is
what a peer gets, not a raw crypto rate.  Both daemons share this machine's cores and
use AWS's default proposal lists; the algorithms negotiated are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from collections import Counter
import sys
import time

from tests.lab.netns import Lab, cpu_seconds, lab_unavailable_reason
from tests.lab.vgwproc import Vgw

PSK = "bench_setup_psk_abcdef0123"


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ip_of(side: int, i: int) -> str:
    """Outside IP of tunnel i (0-based) on side 1 (AWS) or 2 (customer)."""
    return f"198.18.{side * 4 + i // 250}.{i % 250 + 1}"


def config(control: str, n: int, side: int, vpc: str, dh: int | None = None) -> str:
    other = 3 - side
    # AWS's quota is 10 connections per VGW (adjustable): the bench raises it
    lines = [f"control_socket: {control}", f"max_connections: {max(n, 10)}", f"vpc: {{cidrs: [{vpc}]}}",
             "connections:"]
    for i in range(n):
        inside = f"169.254.{100 + i // 64}.{(i % 64) * 4}/30"
        lines += [
            f"  - name: bench-{i}",
            f"    customer_gateway: {{ip: {ip_of(other, i)}}}",
            "    static_routes_only: true",
            "    tunnels:",
            f"      - outside_ip: {ip_of(side, i)}",
            f"        inside_cidr: {inside}",
            f"        pre_shared_key: {PSK}",
        ]
        if side == 2:
            lines.append("        startup_action: start")
        if dh is not None:
            lines.append(f"        phase1_dh_group_numbers: [{dh}]")
    return "\n".join(lines) + "\n"


def run_round(n: int, timeout: float, dh: int | None = None) -> dict:
    with Lab() as lab:
        a = lab.add_ns("aws")
        c = lab.add_ns("cgws")
        lab.veth(a, c, None, None, "eth0", "eth0")
        for ns, side in ((a, 1), (c, 2)):
            batch = "\n".join(f"addr add {ip_of(side, i)}/16 dev eth0" for i in range(n))
            lab.run(ns, "ip", "-batch", "-", input=batch + "\n", timeout=60)
        aws = Vgw(lab, a, name="aws")
        aws.env["VGW_LOG_LEVEL"] = "WARNING"
        aws.write_config(config(aws.control, n, 1, "10.0.0.0/16", dh))
        aws.start(timeout=timeout)
        rss_idle = rss_mib(aws.proc.pid)
        site = Vgw(lab, c, name="cgws")
        site.env["VGW_LOG_LEVEL"] = "WARNING"
        site.write_config(config(site.control, n, 2, "172.16.0.0/16", dh))
        cpu_a0 = cpu_seconds(aws.proc.pid)
        t0 = time.time()
        site.start(timeout=timeout)
        deadline = time.monotonic() + timeout
        status: list[dict] = []
        while time.monotonic() < deadline:
            status = aws.status()
            if sum(t["status"] == "UP" for t in status) == n:
                break
            time.sleep(0.2)
        t_all = time.time()
        dos = json.loads(aws.cli("status", "--json").stdout)["gateway"]["ike_dos"]
        up = [t for t in status if t["status"] == "UP"]
        ike = up[0]["ike"] if up else {}
        algs = f"{ike.get('encryption')}/{ike.get('integrity')}/DH {ike.get('dh_group')}"
        changes = sorted(t["last_status_change"] for t in up)
        res = {
            "tunnels": n,
            "up": len(up),
            "first_to_last_s": (changes[-1] - changes[0]) if len(changes) > 1 else None,
            "start_to_all_s": (t_all - t0) if len(up) == n else None,
            "aws_cpu_s": cpu_seconds(aws.proc.pid) - cpu_a0,
            "site_cpu_s": cpu_seconds(site.proc.pid),
            "aws_rss_idle_mib": rss_idle,
            "aws_rss_up_mib": rss_mib(aws.proc.pid),
            "site_rss_up_mib": rss_mib(site.proc.pid),
            "ike_algorithms": algs,
            "aws_dos": dos,
            "up_after_s": [round(c - changes[0], 2) for c in changes],
            "late": [t["outside_ip"] for t in up if changes and t["last_status_change"] - changes[0] > 8],
            "aws_ike_sas_made": sum(t.get("history", {}).get("ike_sa_up", 0) for t in status),
            "aws_ike_sas_ended": dict(sum((Counter(t.get("history", {}).get("ike_sa_down", {}))
                                           for t in status), Counter())),
        }
        if len(changes) > 1 and res["first_to_last_s"]:
            res["sas_per_s"] = (len(changes) - 1) / res["first_to_last_s"]
        return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.setup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tunnels", type=int, default=200, help="tunnels (and outside IPs) per daemon")
    ap.add_argument("--rounds", type=int, default=1, help="repeat on fresh labs; medians are shown")
    ap.add_argument("--timeout", type=float, default=180.0, help="give up waiting for all tunnels after this")
    ap.add_argument("--dh-group", type=int, help="phase 1 DH group on both sides (default: AWS's list, "
                    "whose first entry, group 2, is chosen)")
    ap.add_argument("--json", action="store_true", help="print each round as JSON")
    args = ap.parse_args(argv)
    if not 1 <= args.tunnels <= 1000:
        ap.error("--tunnels must be 1..1000")
    reason = lab_unavailable_reason()
    if reason:
        print(f"cannot run the lab: {reason}", file=sys.stderr)
        return 2
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    rounds = []
    for _ in range(args.rounds):
        r = run_round(args.tunnels, args.timeout, args.dh_group)
        rounds.append(r)
        if args.json:
            print(json.dumps(r), flush=True)

    def med(key):
        xs = [r[key] for r in rounds if r.get(key) is not None]
        return statistics.median(xs) if xs else None

    print(f"bench.setup {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores, "
          f"Linux {platform.release()}, Python {platform.python_version()}; {args.tunnels} tunnels, "
          f"median of {len(rounds)} round(s); load average {load} at start")
    rows = [
        ("tunnels UP at the responder", f"{min(r['up'] for r in rounds)}/{args.tunnels}"),
        ("IKE algorithms negotiated", rounds[0]["ike_algorithms"]),
        ("IKE SAs established per second (first to last UP)",
         f"{med('sas_per_s'):.1f}" if med("sas_per_s") else "-"),
        ("initiator start -> all UP (incl. its start-up)",
         f"{med('start_to_all_s'):.1f} s ({args.tunnels / med('start_to_all_s'):.0f} SAs/s)"
         if med("start_to_all_s") else "-"),
        ("responder CPU meanwhile", f"{med('aws_cpu_s'):.1f} s"),
        ("initiator CPU (incl. creating its TUNs)", f"{med('site_cpu_s'):.1f} s"),
        ("responder IKE SAs made / ended (round 1)",
         f"{rounds[0]['aws_ike_sas_made']} / {rounds[0]['aws_ike_sas_ended'] or 0}"),
        ("responder anti-DoS (round 1)", ", ".join(
            f"{k} {v}" for k, v in rounds[0]["aws_dos"].items()
            if k.startswith(("cookies", "dropped")) and v)),
        (f"responder RSS, {args.tunnels} tunnels configured, none up", f"{med('aws_rss_idle_mib'):.1f} MiB"),
        (f"responder RSS, {args.tunnels} tunnels up", f"{med('aws_rss_up_mib'):.1f} MiB"),
        (f"initiator RSS, {args.tunnels} tunnels up", f"{med('site_rss_up_mib'):.1f} MiB"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:{w}s}  {v}")
    return 0 if all(r["up"] == args.tunnels for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
