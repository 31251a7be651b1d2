"""The VPC route table's decision time for a full VPN CloudHub, in-process (no lab).

    python -m bench.route_table [--connections 10] [--prefixes 100] [--repeat 2000] [--rounds 3]

A gateway of ``--connections`` dynamic connections (2 tunnels each, both
sessions Established) whose sessions each accepted ``--prefixes`` prefixes
(AWS's quota per session: 100), every site its own: 10 x 2 x 100 = 2,000 paths
to 1,000 prefixes, each re-advertised by CloudHub to the other 9 connections'
18 sessions. Timed is ``VpcRouteTable.decide()`` alone, after the inputs it
decides were recorded, in CPU time of this process (``time.process_time``: the
machine is shared, and wall time would count the other processes' turns):

- the first full decision (every prefix, every session's whole announcement),
  the reference measured in the same round;
- everything decided again (`decide_all()`, the check that the incremental
  decisions agree with a full one);
- a reload that adds an eleventh connection (`configure()`: only it is decided);
- after one UPDATE that changes one prefix: its MED changes on the tunnel that is
  not selected (nothing moves); it is withdrawn on the selected tunnel (the route
  moves to the other tunnel of its connection; what CloudHub re-advertises does
  not change) and announced again (it moves back: the primary tunnel wins the
  tie); a new prefix is announced (a route, and 18 sessions re-advertise it) and
  withdrawn.

Printed: medians (and the 90th percentile of the single-UPDATE cases) over
``--repeat`` decisions, per round and the median of rounds; the single-UPDATE
decisions as a fraction of the full one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from ipaddress import IPv4Address, IPv4Network

from daemon.routing import ConnectionPlan, Learned, VpcRouteTable

VPC = IPv4Network("10.0.0.0/16")
SITE_ASN = 65001


def tunnels_of(k: int) -> tuple[str, str]:
    return f"198.51.100.{2 * k + 1}", f"198.51.100.{2 * k + 2}"


def site_prefixes(k: int, count: int) -> list[IPv4Network]:
    """Site k's prefixes: /24s of 172.(16+k).0.0/16 (count <= 256)."""
    return [IPv4Network(f"172.{16 + k}.{i}.0/24") for i in range(count)]


def learned(k: int, tunnel: int, med: int = 0) -> Learned:
    return Learned(as_path=(SITE_ASN + k,), as_path_length=1, med=med,
                   next_hop=IPv4Address(f"169.254.{10 + 2 * k + tunnel}.2"))


def build(connections: int, prefixes: int) -> tuple[VpcRouteTable, list[ConnectionPlan]]:
    """The table with every input of a full CloudHub recorded, not yet decided."""
    plans = [ConnectionPlan(name=f"site{k + 1}", tunnels=tunnels_of(k), dynamic=True,
                            customer_gateway_ip=IPv4Address(f"198.51.100.{101 + k}")) for k in range(connections)]
    table = VpcRouteTable()
    table.configure([VPC], plans)
    for k, plan in enumerate(plans):
        for t, tunnel in enumerate(plan.tunnels):
            table.set_up(tunnel, True)
            table.learn(tunnel, {p: learned(k, t) for p in site_prefixes(k, prefixes)})
    return table, plans


def timed_decide(table: VpcRouteTable) -> tuple[float, object]:
    t0 = time.process_time()
    changes = table.decide()
    return time.process_time() - t0, changes


def run_round(connections: int, prefixes: int, repeat: int) -> dict:
    table, plans = build(connections, prefixes)
    full, changes = timed_decide(table)
    advertised = sum(len(table.advertisements(t)) for p in plans for t in p.tunnels)
    result = {"full_s": full, "routes": len(changes.kernel), "advertised": advertised}
    t0 = time.process_time()
    table.decide_all()
    result["again_s"] = time.process_time() - t0
    extra = ConnectionPlan(name="site-new", tunnels=("198.51.100.250", "198.51.100.251"), dynamic=True,
                           customer_gateway_ip=IPv4Address("198.51.100.99"))
    table.configure([VPC], [*plans, extra])
    result["reload_s"], _ = timed_decide(table)
    table.configure([VPC], plans)
    table.decide()

    site = 0
    prefix = site_prefixes(site, prefixes)[0]
    selected = table.routes[prefix].tunnel
    other = next(t for t in plans[site].tunnels if t != selected)
    ti = {t: i for i, t in enumerate(plans[site].tunnels)}
    new_prefix = IPv4Network("192.168.77.0/24")
    cases: dict[str, list[float]] = {"med": [], "withdraw": [], "new": []}
    told = []
    for i in range(repeat):
        table.learn(other, {prefix: learned(site, ti[other], med=1 + i % 2)})
        cases["med"].append(timed_decide(table)[0])
        # the route moves to the other tunnel and back: one decision each way
        table.learn(selected, {}, withdrawn=[prefix])
        dt, _ = timed_decide(table)
        table.learn(selected, {prefix: learned(site, ti[selected])})
        cases["withdraw"].append(dt + timed_decide(table)[0])
        table.learn(selected, {new_prefix: learned(site, ti[selected])})
        dt, ch = timed_decide(table)
        told.append(len(ch.advertisements))
        table.learn(selected, {}, withdrawn=[new_prefix])
        cases["new"].append(dt + timed_decide(table)[0])
    for name, xs in cases.items():
        # withdraw and new are two decisions (there and back): per decision
        per = [x / (1 if name == "med" else 2) for x in xs]
        result[f"{name}_s"] = statistics.median(per)
        result[f"{name}_p90_s"] = statistics.quantiles(per, n=10)[-1]
    result["sessions_told_new"] = statistics.median(told)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.route_table", description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=10, help="dynamic connections (2 tunnels each; default 10)")
    ap.add_argument("--prefixes", type=int, default=100, help="prefixes per session (default 100, AWS's quota)")
    ap.add_argument("--repeat", type=int, default=2000, help="single-UPDATE decisions timed per case and round")
    ap.add_argument("--rounds", type=int, default=3, help="fresh tables; medians of the rounds are shown")
    args = ap.parse_args(argv)
    if not 2 <= args.connections <= 100 or not 1 <= args.prefixes <= 256 or args.repeat < 10 or args.rounds < 1:
        ap.error("--connections 2..100, --prefixes 1..256, --repeat >= 10, --rounds >= 1")
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    rounds = [run_round(args.connections, args.prefixes, args.repeat) for _ in range(args.rounds)]
    first = rounds[0]
    print(f"bench.route_table {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores;"
          f" {args.connections} connections x 2 sessions x {args.prefixes} prefixes = {first['routes']} routes,"
          f" {first['advertised']} advertisements (CloudHub and the VPC CIDR); median of {len(rounds)} round(s)"
          f" (rounds in brackets); load average {load} at start")

    def fig(key: str, unit: float, fmt: str) -> str:
        xs = [r[key] for r in rounds]
        return f"{statistics.median(xs) * unit:{fmt}} [" + ", ".join(f"{x * unit:{fmt}}" for x in xs) + "]"

    full = statistics.median(r["full_s"] for r in rounds)
    rows = [("first full decision (reference)", f"{fig('full_s', 1e3, '.1f')} ms"),
            ("everything decided again (decide_all)", f"{fig('again_s', 1e3, '.1f')} ms"),
            ("a reload that adds a connection", f"{fig('reload_s', 1e3, '.1f')} ms")]
    for key, what in (("med", "one prefix's MED changes on the unselected tunnel"),
                      ("withdraw", "one prefix withdrawn on the selected tunnel / back"),
                      ("new", "a new prefix announced / withdrawn")):
        med = statistics.median(r[f"{key}_s"] for r in rounds)
        p90 = statistics.median(r[f"{key}_p90_s"] for r in rounds)
        rows.append((f"after one UPDATE: {what}",
                     f"{fig(key + '_s', 1e6, '.0f')} us, p90 {p90 * 1e6:.0f} us; {med / full:.2%} of the full one"))
    rows.append(("sessions told of the new prefix (CloudHub)",
                 f"{statistics.median(r['sessions_told_new'] for r in rounds):.0f}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:{width}s}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
