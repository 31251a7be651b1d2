"""Throughput, packet rate, latency and IKE responsiveness through one tunnel, side by side.

    python -m bench.tunnel [--seconds 5] [--rounds 1] [--only SCENARIO ...] [--json]

Scenarios, each on a fresh lab (tests/lab/netns.py: onprem -- cgw == wan == vgw -- vpc),
measured in the same run and round-robin over ``--rounds`` (the table shows medians):

* ``plain``        no tunnel, cgw and vgw just route: this machine's ceiling and the
                   latency baseline
* ``reference``    strongSwan CGW <-> strongSwan as AWS (kernel-libipsec both sides)
* ``vgw``          strongSwan CGW <-> vgw as AWS (libipsec forces ESP in UDP)
* ``vgw-vgw-udp``  vgw <-> vgw, the site side behind the lab's NAT (a masquerading
                   router between cgw and the WAN): ESP in UDP
* ``vgw-vgw``      vgw <-> vgw without NAT: raw ESP (IP protocol 50)

All with AES128-GCM-16.  For each: ping RTT through the idle tunnel (median of 40 pings,
and its excess over ``plain``), also with every core kept awake by a nice-19 busy loop
(this VM's cost of waking an idle vCPU taken out); iperf3 onprem -> vpc TCP, UDP 64 B and UDP 1400 B at
full send rate (receiver's rate, UDP loss, packets/s received and sent), and UDP 64 B
offered at 160,000 packets/s (above AWS's 140,000 per tunnel: iperf3 falls a little
short of its target rate here); CPU of each tunnel
endpoint process (% of one core, /proc/PID/stat) and of the whole machine (% of all
cores); and, under that load, how long IKE INFORMATIONAL requests (DPD probes: vgw
probes a peer behind a NAT every 10 s whatever the traffic) waited for their answer,
from a tcpdump of UDP 4500 IKE packets (non-ESP marker) on the AWS side's WAN.

Everything (iperf3 client and server, both endpoints, the kernel's forwarding) shares
this machine's cores, so figures compare implementations, not links.  The machine may
be shared: the load average at start and end is printed; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

from bench.lab_tunnel import (
    IKE_PROPOSALS,
    ESP_PROPOSALS,
    NAT_SCENARIOS,
    SCENARIOS,
    machine_busy,
)
from tests.lab.netns import Lab, cpu_seconds, lab_unavailable_reason, topology
from tests.lab.traffic import run_iperf

ORDER = ["plain", "reference", "vgw", "vgw-vgw-udp", "vgw-vgw"]
# (name, UDP payload size or None for TCP, iperf3 -b rate: "0" = as fast as possible)
TESTS = [("tcp", None, "0"), ("udp64", 64, "0"), ("udp64@160k", 64, f"{160_000 * 64 * 8}"),
         ("udp1400", 1400, "0")]
# UDP: 4 MB socket buffers at both iperf3 ends (-w), or the receiving iperf3 itself
# drops bursts (RcvbufErrors in the vpc namespace), which says nothing of the tunnel.
UDP_EXTRA = ("-w", "4M")
IKE_INFORMATIONAL = 37  # RFC 7296 §3.1 exchange type


def ping_rtt(lab: Lab, ns: str, dst: str, count: int = 40) -> float | None:
    """Median RTT in ms of ``count`` pings 50 ms apart (the median: this VM's scheduler
    adds rare wake-up delays of several 100 us that would dominate an average); two
    pings before, not counted, warm ARP and routes."""
    lab.run(ns, "ping", "-n", "-q", "-c", 2, "-i", 0.2, "-W", 2, dst, check=False, timeout=10)
    res = lab.run(ns, "ping", "-n", "-c", count, "-i", 0.05, "-W", 2, dst, check=False,
                  timeout=count * 0.05 + 15)
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", res.stdout)]
    return statistics.median(times) if times else None


def ping_rtt_cpus_awake(lab: Lab, ns: str, dst: str) -> float | None:
    """ping_rtt with every core kept out of its idle state by a nice-19 busy loop (ours,
    stopped by PID, 60 s at most).  On this VM waking an idle vCPU costs 50 us and more
    (the host must schedule it again); a nice-19 loop gives way to any woken task at
    once.  The difference to ping_rtt is that wake-up cost, not the tunnel's work."""
    # nice execs python, so the PID is the loop's own; the loop ends by itself after 60 s
    burn = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"
    burners = [subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", burn],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        return ping_rtt(lab, ns, dst)
    finally:
        for b in burners:
            b.kill()
            b.wait(timeout=10)


class IkeCapture:
    """tcpdump of IKE on UDP 4500 (non-ESP marker, RFC 3948 §2.2) on one interface."""

    def __init__(self, lab: Lab, ns: str, ifname: str, aws_ips=()) -> None:
        self.aws_ips = set(aws_ips)
        self.path = os.path.join(lab.tmpdir("ikecap"), "ike.pcap")
        self.lab = lab
        self.proc = lab.popen(ns, "tcpdump", "-i", ifname, "-n", "-s", "128", "-U", "-w", self.path,
                              "udp port 4500 and udp[8:4] = 0",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def answer_times(self, start: float, end: float) -> dict[str, list[float]]:
        """Seconds from each INFORMATIONAL request sent in [start, end] (wall clock) to
        its answer, by the side that answered ("aws" or "cgw"); an unanswered request
        counts as infinity.  A retransmitted request counts from its first copy."""
        self.lab.stop(self.proc)
        try:
            from scapy.layers.inet import IP, UDP
            from scapy.utils import rdpcap
            pkts = rdpcap(self.path)
        except Exception:  # noqa: BLE001 - no capture, no figure
            return {}
        requests, answers = {}, {}
        for p in pkts:
            if UDP not in p:
                continue
            d = bytes(p[UDP].payload)[4:]
            if len(d) < 28 or d[18] != IKE_INFORMATIONAL:
                continue
            key = (d[:8], d[20:24])
            if d[19] & 0x20:
                answers.setdefault(key, float(p.time))
            else:
                requests.setdefault(key, (float(p.time), p[IP].dst))
        out: dict[str, list[float]] = {}
        for k, (t, dst) in requests.items():
            if start <= t <= end:
                side = "aws" if dst in self.aws_ips else "cgw"
                out.setdefault(side, []).append(answers.get(k, float("inf")) - t)
        return out


def run_scenario(name: str, args: argparse.Namespace) -> dict:
    title, setup = SCENARIOS[name]
    out: dict = {"scenario": name, "title": title, "tests": {}}
    with Lab() as lab:
        topo = topology(lab, nat=name in NAT_SCENARIOS)
        endpoints = setup(lab, topo, args)
        out["ping_ms"] = ping_rtt(lab, topo.onprem, topo.vpc_ip)
        out["ping_awake_ms"] = ping_rtt_cpus_awake(lab, topo.onprem, topo.vpc_ip)
        cap = None
        if name != "plain":
            if shutil.which("tcpdump"):
                cap = IkeCapture(lab, topo.vgw, topo.vgw_wan_if, topo.vgw_outside_ips)
            else:
                out["ike_note"] = "not measured: no tcpdump (scripts/install-deps.sh installs it)"
        load_start = time.time()
        for mode, size, rate in TESTS:
            before = {n: cpu_seconds(pid) for n, pid in endpoints.items()}
            busy0, total0 = machine_busy()
            t0 = time.monotonic()
            r = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, args.seconds, udp_size=size, udp_rate=rate,
                          extra=UDP_EXTRA if size else ())
            wall = time.monotonic() - t0
            busy1, total1 = machine_busy()
            row = {
                "gbps": r["gbps"],
                "cpu": {n: 100.0 * (cpu_seconds(pid) - before[n]) / wall for n, pid in endpoints.items()},
                "machine": 100.0 * (busy1 - busy0) / max(1, total1 - total0),
            }
            if size:
                rec = r["json"]["end"]["sum_received"]
                row["pps"] = rec["bytes"] / size / rec["seconds"]
                sent = r["json"]["end"]["sum"]
                row["offered"] = sent["packets"] / sent["seconds"]
                row["loss"] = r["lost_percent"]
            else:
                row["retr"] = r["retransmits"]
            out["tests"][mode] = row
        load_end = time.time()
        if cap is not None:
            out["ike_answer_s"] = cap.answer_times(load_start, load_end)
    return out


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(results: list[dict]) -> dict[str, dict]:
    """Medians per scenario over rounds."""
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["scenario"], []).append(r)
    table = {}
    for name, rs in by.items():
        s = {"title": rs[0]["title"], "rounds": len(rs), "ping_ms": _median([r["ping_ms"] for r in rs]),
             "ping_awake_ms": _median([r.get("ping_awake_ms") for r in rs]), "tests": {}}
        s["ike"] = {}
        s["ike_note"] = rs[0].get("ike_note")
        for side in ("aws", "cgw"):
            ts = [t for r in rs for t in r.get("ike_answer_s", {}).get(side, [])]
            if ts:
                s["ike"][side] = (len(ts), max(ts))
        for mode, _, _ in TESTS:
            rows = [r["tests"][mode] for r in rs]
            m = {"gbps": _median([x["gbps"] for x in rows]),
                 "machine": _median([x["machine"] for x in rows]),
                 "cpu": {k: _median([x["cpu"][k] for x in rows]) for k in rows[0]["cpu"]},
                 "all_gbps": [round(x["gbps"], 3) for x in rows]}
            if "pps" in rows[0]:
                m["pps"] = _median([x["pps"] for x in rows])
                m["offered"] = _median([x["offered"] for x in rows])
                m["loss"] = _median([x["loss"] for x in rows])
            else:
                m["retr"] = _median([x["retr"] for x in rows])
            s["tests"][mode] = m
        table[name] = s
    return table


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def print_table(table: dict[str, dict], args, load_before: str, load_after: str) -> None:
    cpu_model = ""
    try:
        cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"bench.tunnel {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores "
          f"({cpu_model}), Linux {platform.release()}, Python {platform.python_version()}; "
          f"iperf3 {args.seconds:g} s per test, median of {args.rounds} round(s); AES128-GCM-16; "
          f"load average {load_before} before, {load_after} after")
    plain = table.get("plain", {}).get("ping_ms")
    hdr = (f"{'scenario':40s} {'test':10s} {'Gbit/s':>7s} {'pps recv':>9s} {'pps sent':>9s} {'loss/retr':>9s} "
           f"{'machine':>7s}  CPU per process (% of one core)")
    print(hdr)
    print("-" * len(hdr))
    for name in [n for n in ORDER if n in table] + [n for n in table if n not in ORDER]:
        s = table[name]
        for mode, _, _ in TESTS:
            m = s["tests"][mode]
            pps = f"{m['pps']:9,.0f} {m['offered']:9,.0f}" if "pps" in m else f"{'':9s} {'':9s}"
            lr = f"{m['loss']:8.1f}%" if "loss" in m else f"{m['retr']:9.0f}"
            cpu = "  ".join(f"{k} {v:3.0f}%" for k, v in m["cpu"].items()) or "-"
            print(f"{s['title']:40s} {mode:10s} {m['gbps']:7.3f} {pps} {lr} {m['machine']:6.0f}%  {cpu}")
    print()
    plain_awake = table.get("plain", {}).get("ping_awake_ms")
    print(f"{'scenario':40s} {'ping RTT idle':>14s} {'over plain':>11s} {'CPUs awake':>11s} "
          f"{'over plain':>11s}   IKE INFORMATIONAL (DPD) under load")
    for name in [n for n in ORDER if n in table]:
        s = table[name]

        def cells(p, base):
            over = (f"{(p - base) * 1000:+8.0f} us" if p is not None and base is not None and name != "plain"
                    else "")
            return f"{(f'{p:.3f} ms' if p is not None else '-'):>11s} {over:>11s}"
        who = {"aws": "AWS side", "cgw": "CGW side"}
        ike = "; ".join(
            f"{who[side]} answered {n}, slowest " + ("never" if mx == float("inf") else f"{mx * 1000:.0f} ms")
            for side, (n, mx) in s.get("ike", {}).items()
        ) or ("" if name == "plain" else s.get("ike_note") or "no probe seen")
        print(f"{s['title']:40s}    {cells(s['ping_ms'], plain)} {cells(s.get('ping_awake_ms'), plain_awake)}   {ike}")
    ref = table.get("reference")
    if ref:
        print()
        for name in [n for n in ORDER if n in table and n not in ("plain", "reference")]:
            ratios = ", ".join(
                f"{mode} {table[name]['tests'][mode]['gbps'] / ref['tests'][mode]['gbps']:.2f}x"
                for mode, _, _ in TESTS if ref["tests"][mode]["gbps"])
            print(f"{table[name]['title']} / reference: {ratios}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.tunnel", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each iperf3 test")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over all scenarios; medians are shown")
    ap.add_argument("--only", action="append", choices=ORDER, help="scenarios to run (repeatable)")
    ap.add_argument("--json", action="store_true", help="also print every raw result as JSON lines")
    args = ap.parse_args(argv)
    args.ike, args.esp = IKE_PROPOSALS, ESP_PROPOSALS
    reason = lab_unavailable_reason()
    if reason:
        print(f"cannot run the lab: {reason}", file=sys.stderr)
        return 2
    scenarios = args.only or ORDER
    load_before = _load()
    results = []
    for rnd in range(args.rounds):
        for name in scenarios:
            r = run_scenario(name, args)
            r["round"] = rnd
            results.append(r)
            if args.json:
                print(json.dumps(r), flush=True)
            else:
                t = r["tests"]
                print(f"# round {rnd + 1}: {name}: " + ", ".join(f"{k} {v['gbps']:.3f}" for k, v in t.items()),
                      file=sys.stderr, flush=True)
    print_table(summarize(results), args, load_before, _load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
