"""One vgw at AWS's connection quota: 10 connections x 2 tunnels with BGP on all 20
sessions, next to 10 static connections (20 tunnels) measured in the same run.

    sudo python -m bench.bgp_scale [--connections 10] [--rounds 3] [--timeout 120]

Two namespaces joined by a veth. vgw (the AWS side) has ``--connections``
connections, all from one customer gateway address (AWS allows several
connections from one customer gateway IP), each with two tunnels and
``startup_action: start``, so that vgw itself brings everything up and the clock
starts with vgw. The customer side is the lightest that is still real: one
strongSwan charon (kernel-libipsec) carrying every tunnel, each tunnel's inside
/30 in its selectors and the CGW inside addresses on ipsec0 (tests/lab/bgplab.py
says why), and for the dynamic scenario one FRR (AS 65000) with a neighbor per
tunnel; connection k announces its own 172.(16+k).0.0/24 on both of its
sessions. With CloudHub vgw re-advertises each to the other connections; FRR
drops those (its own AS is in their AS_PATH), as a customer gateway does.

Scenarios, each on a fresh lab, alternating which goes first from round to round:

- static (reference): the same connections with ``static_routes``; done when
  every tunnel is UP (IPsec);
- bgp: ``static_routes_only: false``; done when every tunnel is UP, which for a
  dynamic connection means its BGP session is Established (docs/aws.md §5.2).

Printed per scenario (median of rounds, and each round): from vgw's start to the
first and to the last tunnel UP (from vgw's own ``last_status_change``; for bgp
also to the last session Established, from its uptime), vgw's RSS then, the CPU
seconds vgw used from its start until then, and the customer side's CPU. Polling
uses the control socket in-process every 0.5 s (a `vgw status` process per poll
would cost more CPU than what is measured).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from daemon.control import request
from tests.lab.bgplab import AMAZON_SIDE_ASN, CGW_ASN, CGW_SETTINGS, CgwNode, add_inside_addresses, connection_plan, \
    vgw_config
from tests.lab.bgpspeaker import Neighbor
from tests.lab.frr import ROUTE_MAP, Frr, frr_unavailable_reason
from tests.lab.netns import Lab, cpu_seconds, lab_unavailable_reason
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.vgwproc import Vgw

from bench.setup import rss_mib

CGW_IP = "198.51.100.101"
POLL = 0.5
LATE = 2.0          # s from a tunnel's IPsec SA to its session Established: more is a retry
SCENARIOS = ("static", "bgp")


class PerConnectionFrr(Frr):
    """FRR whose neighbors each announce only their connection's prefixes
    (``exports``: neighbor address -> prefixes), one route map per connection."""

    def __init__(self, *args: Any, exports: dict[str, list[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exports = exports

    def config_text(self) -> str:
        text = super().config_text()
        head, router, tail = text.partition("router bgp ")
        names: dict[tuple[str, ...], str] = {}
        maps = []
        for prefixes in self.exports.values():
            key = tuple(prefixes)
            if key in names:
                continue
            name = names[key] = f"CONN{len(names) + 1}"
            maps += [f"ip prefix-list {name} seq {5 * (i + 1)} permit {p}" for i, p in enumerate(prefixes)]
            maps += [f"route-map {name} permit 10", f" match ip address prefix-list {name}", "exit"]
        # route maps before `router bgp` (tests/lab/frr.py)
        tail = re.sub(rf"neighbor (\S+) route-map {ROUTE_MAP} out",
                      lambda m: f"neighbor {m[1]} route-map {names[tuple(self.exports[m[1]])]} out", tail)
        return head + "\n".join(maps) + "\n!\n" + router + tail


def plan(connections: int) -> list[CgwNode]:
    """The connections, all from one customer gateway (CGW_IP)."""
    nodes = []
    for k in range(connections):
        _, tunnels = connection_plan(k)
        nodes.append(CgwNode(f"conn{k + 1}", "", CGW_IP, "", [f"172.{16 + k}.0.0/24"], tunnels, CGW_ASN))
    return nodes


def start_customer_side(lab: Lab, ns: str, nodes: list[CgwNode], bgp: bool) -> list:
    """One charon with every tunnel loaded (vgw initiates), and with ``bgp`` one
    FRR with a neighbor per tunnel; returns the processes' Popen objects."""
    # libipsec installs a CHILD SA only with a local address in each local selector
    # (tests/lab/bgplab.py): each site's first address, on lo (no LAN is needed here)
    for node in nodes:
        for prefix in node.site_prefixes:
            lab.addr(ns, "lo", f"{ipaddress.ip_network(prefix).network_address + 1}/32")
    charon = Charon(lab, ns, name="cgw", settings=CGW_SETTINGS).start()
    for node in nodes:
        add_inside_addresses(lab, replace(node, ns=ns))
    tunnels = [(node, t) for node in nodes for t in node.tunnels]
    charon.load(swanctl_conf_psk(
        CGW_IP, [t.outside_ip for _, t in tunnels], [t.psk for _, t in tunnels],
        names=[f"{node.name}t{i % 2 + 1}" for i, (node, _) in enumerate(tunnels)],
        local_ts=[[*node.site_prefixes, t.inside_cidr] for node, t in tunnels],
        remote_ts=[["0.0.0.0/0", t.inside_cidr] for _, t in tunnels]))
    procs = [charon.proc]
    if bgp:
        frr = PerConnectionFrr(
            lab, ns, CGW_ASN, CGW_IP, [Neighbor(t.vgw_inside_ip, AMAZON_SIDE_ASN, t.cgw_inside_ip) for _, t in tunnels],
            [p for node in nodes for p in node.site_prefixes], name="frr-cgw",
            exports={t.vgw_inside_ip: node.site_prefixes for node, t in tunnels}).start()
        procs += [frr.zebra, frr.bgpd]
    return procs


def run_scenario(scenario: str, connections: int, timeout: float) -> dict:
    bgp = scenario == "bgp"
    nodes = plan(connections)
    with Lab() as lab:
        aws, cgw = lab.add_ns("aws"), lab.add_ns("cgw")
        lab.veth(aws, cgw, [f"{t.outside_ip}/24" for n in nodes for t in n.tunnels], f"{CGW_IP}/24", "eth0", "eth0")
        customer = start_customer_side(lab, cgw, nodes, bgp)
        vgw = Vgw(lab, aws, name="vgw")
        vgw.env["VGW_LOG_LEVEL"] = "INFO"
        vgw.write_config(vgw_config(vgw.control, nodes, dynamic=bgp, bgp_keys=bgp,
                                    tunnel_options={"startup_action": "start"}))
        cgw_cpu0 = sum(cpu_seconds(p.pid) for p in customer)
        t0 = time.time()
        # started by hand: Vgw.start() polls with `vgw status` processes, which would
        # compete with vgw's start-up for the 2 cores
        log = open(vgw.log_path, "w")
        vgw.proc = lab.popen(aws, sys.executable, "-m", "daemon", "run", "--config", vgw.config_path,
                             stdout=log, stderr=log, env=vgw.env)
        log.close()
        deadline = time.monotonic() + timeout
        tunnels: list[dict] = []
        while time.monotonic() < deadline:
            if vgw.proc.poll() is not None:
                raise RuntimeError(f"vgw exited with {vgw.proc.returncode}:\n{vgw.log_text()[-3000:]}")
            time.sleep(POLL)
            try:
                answer = request(vgw.control, {"cmd": "status"}, timeout=5)
            except (ConnectionError, OSError):
                continue
            tunnels = answer.get("tunnels", [])
            if tunnels and all(t["status"] == "UP" for t in tunnels):
                break
        now = time.time()
        res: dict[str, Any] = {"scenario": scenario, "tunnels": len(tunnels),
                               "up": sum(t["status"] == "UP" for t in tunnels),
                               "rss_mib": rss_mib(vgw.proc.pid), "cpu_s": cpu_seconds(vgw.proc.pid),
                               "cgw_cpu_s": sum(cpu_seconds(p.pid) for p in customer) - cgw_cpu0}
        res["running_s"] = running_at(vgw.log_text()) - t0
        up = sorted(t["last_status_change"] - t0 for t in tunnels if t["status"] == "UP")
        ipsec = [t["history"]["child_sa_up_since"] - t0 for t in tunnels if t["history"].get("child_sa_up_since")]
        if res["up"] == 2 * connections:
            res["first_up_s"], res["all_up_s"] = up[0], up[-1]
            res["all_ipsec_s"] = max(ipsec)
        if bgp:
            up_tunnels = [t for t in tunnels if t.get("bgp") and t["bgp"].get("state") == "Established"]
            established = [now - t["bgp"]["uptime_seconds"] - t0 for t in up_tunnels]
            res["established"] = len(established)
            # a session that was Established, lost its connection and came back
            res["again"] = sum(t["bgp"]["counters"]["sessions_established"] - 1 for t in up_tunnels)
            # a session that needed more than one try (e.g. both connections of a
            # collision closed: then vgw's IdleHold back-off, 5 s)
            res["late"] = sum(now - t["bgp"]["uptime_seconds"] - t["history"]["child_sa_up_since"] > LATE
                              for t in up_tunnels)
            res["established_s"] = sorted(round(x, 2) for x in established)
            if len(established) == 2 * connections:
                res["all_established_s"] = max(established)
                res["median_established_s"] = statistics.median(established)
        res["log_errors"] = [line for line in vgw.log_text().splitlines()
                             if " ERROR " in line or "Traceback" in line][:5]
        return res


def running_at(log: str) -> float:
    """When vgw logged "vgw is running" (its sockets, TUN devices and routes in
    place), as a Unix time; NaN if it did not."""
    m = re.search(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO vgw is running", log, re.M)
    if not m:
        return float("nan")
    return datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(m[2]) / 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bgp_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=10, help="connections, 2 tunnels each (default 10, "
                    "AWS's quota)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both scenarios; medians are shown")
    ap.add_argument("--timeout", type=float, default=120.0, help="give up waiting for all tunnels UP after this")
    ap.add_argument("--json", action="store_true", help="also print each scenario's round as JSON")
    args = ap.parse_args(argv)
    if not 1 <= args.connections <= 10:
        ap.error("--connections must be 1..10 (AWS's quota; the bench's address plan)")
    reason = lab_unavailable_reason() or frr_unavailable_reason()
    if reason:
        print(f"cannot run the lab: {reason}", file=sys.stderr)
        return 2
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    results: dict[str, list[dict]] = {s: [] for s in SCENARIOS}
    for r in range(args.rounds):
        for scenario in SCENARIOS if r % 2 == 0 else reversed(SCENARIOS):
            results[scenario].append(run_scenario(scenario, args.connections, args.timeout))
            if args.json:
                print(json.dumps(results[scenario][-1]), flush=True)
    load_end = " ".join(open("/proc/loadavg").read().split()[:3])
    n = 2 * args.connections
    cpu = _cpu_model()
    print(f"bench.bgp_scale {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores ({cpu}),"
          f" Linux {platform.release()}, Python {platform.python_version()}; {args.connections} connections x 2"
          f" tunnels, one customer gateway (strongSwan; FRR for bgp); median of {args.rounds} round(s), each"
          f" round's figure in brackets; load average {load} at start, {load_end} at the end")

    def fig(scenario: str, key: str, fmt: str, unit: str) -> str:
        xs = [r.get(key) for r in results[scenario]]
        if any(x is None for x in xs):
            return "-"
        each = ", ".join(f"{x:{fmt}}" for x in xs)
        return f"{statistics.median(xs):{fmt}}{' ' + unit if unit else ''} [{each}]"

    rows = [("", "static (reference)", "bgp")]
    rows.append((f"tunnels UP (of {n})", *(f"{min(r['up'] for r in results[s])}" for s in SCENARIOS)))
    rows.append((f"BGP sessions Established (of {n})", "-",
                 f"{min(r.get('established', 0) for r in results['bgp'])}"))
    rows.append(("vgw start -> running (sockets, TUNs)", *(fig(s, "running_s", ".1f", "s") for s in SCENARIOS)))
    rows.append(("vgw start -> first tunnel UP", *(fig(s, "first_up_s", ".1f", "s") for s in SCENARIOS)))
    rows.append(("vgw start -> all IPsec SAs up", *(fig(s, "all_ipsec_s", ".1f", "s") for s in SCENARIOS)))
    rows.append(("vgw start -> half the sessions Established", "-", fig("bgp", "median_established_s", ".1f", "s")))
    rows.append(("vgw start -> all sessions Established", "-", fig("bgp", "all_established_s", ".1f", "s")))
    rows.append(("vgw start -> all tunnels UP", *(fig(s, "all_up_s", ".1f", "s") for s in SCENARIOS)))
    rows.append((f"sessions Established > {LATE:g} s after their IPsec SA", "-", fig("bgp", "late", "g", "")))
    rows.append(("sessions Established again after a lost connection", "-", fig("bgp", "again", "g", "")))
    rows.append(("vgw RSS then", *(fig(s, "rss_mib", ".1f", "MiB") for s in SCENARIOS)))
    rows.append(("vgw CPU from its start", *(fig(s, "cpu_s", ".2f", "s") for s in SCENARIOS)))
    rows.append(("customer side CPU meanwhile", *(fig(s, "cgw_cpu_s", ".2f", "s") for s in SCENARIOS)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for s in SCENARIOS:
        errors = {e for r in results[s] for e in r["log_errors"]}
        for e in sorted(errors):
            print(f"{s}: vgw logged: {e}")
    ok = all(r["up"] == n for s in SCENARIOS for r in results[s])
    return 0 if ok else 1


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    sys.exit(main())
