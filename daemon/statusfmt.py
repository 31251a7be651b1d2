"""`vgw status` for people: a one-line-per-tunnel table to read at a glance, then one
block per tunnel in the spirit of `swanctl --list-sas` (SAs, algorithms, SPIs,
how long they have been up, rekeys, counters, the last error).

Input is the control socket's status answer (the same data `vgw status --json`
prints); times in it are wall-clock (daemon/history.py converts the core's).
"""

from __future__ import annotations

import time


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _bit_rate(bps: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps:g} bit/s"


def _age(since: float | None, now: float) -> str:
    """Time since `since`, the way swanctl writes durations: 45s, 12m03s, 5h02m, 3d04h."""
    if not since:
        return "-"
    return _duration(now - since)


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _times(n: int) -> str:
    return f"{n} time{'' if n == 1 else 's'}"


def _schedule(sa: dict) -> str:
    """"; rekeying in 47m10s, expires in 59m30s" when the core reports them."""
    parts = []
    if sa.get("rekey_in") is not None:
        parts.append(f"rekeying in {_duration(sa['rekey_in'])}")
    if sa.get("expires_in") is not None:
        parts.append(f"expires in {_duration(sa['expires_in'])}")
    return "; " + ", ".join(parts) if parts else ""


def _columns(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def table(status: dict, now: float) -> list[str]:
    """One row per tunnel, grouped by connection: what an operator checks first."""
    header = ("CONNECTION", "TUNNEL", "STATUS", "PHASE 1", "PHASE 2", "BGP", "EGRESS", "IN", "OUT", "SINCE")
    rows = [header]
    for t in _by_connection(status):
        k = t.get("counters", {})
        bgp = (t.get("bgp") or {}).get("state", "-")
        rows.append((t["connection"], t["outside_ip"], t["status"] + (" (admin)" if t.get("admin_down") else ""),
                     t.get("ike_phase1_state", "-"), t.get("ike_phase2_state", "-"), bgp,
                     "primary" if t.get("primary") else "-", _bytes(k.get("bytes_in", 0)),
                     _bytes(k.get("bytes_out", 0)), _age(t.get("last_status_change"), now)))
    return _columns(rows)


def _by_connection(status: dict) -> list[dict]:
    """The tunnels in the order of the connections they belong to."""
    order = {c["name"]: i for i, c in enumerate(status.get("connections", []))}
    return sorted(status.get("tunnels", []), key=lambda t: order.get(t["connection"], len(order)))


def connection_line(c: dict) -> str:
    """A connection's header: its routing and its customer gateway (docs/aws.md §7)."""
    cgw = c.get("customer_gateway") or {}
    where = cgw.get("ip") or "any address"
    asn = f" AS {cgw['bgp_asn']}" if cgw.get("bgp_asn") is not None else ""
    routes = ""
    if c.get("routing") == "static":
        routes = f"; static routes {', '.join(c.get('static_routes') or []) or '(none)'}"
    if c.get("source") == "api":   # made by the EC2 API: its ids, not a YAML entry
        origin = f"EC2 API, {c.get('vpn_gateway_id', '-')}, {c.get('customer_gateway_id', '-')}"
    else:
        origin = c.get("vpn_connection_id", "-")
    return (f"{c['name']} ({origin}): {c.get('routing', '-')} routing, customer gateway"
            f" {where}{asn}; primary tunnel {c.get('primary') or 'none'}{routes}")


def maintenance_table(rows: list[dict], now: float | None = None) -> str:
    """`vgw maintenance status`: each tunnel's pending and last maintenance."""
    now = time.time() if now is None else now
    table_rows = [("CONNECTION", "TUNNEL", "SOURCE", "LIFECYCLE CONTROL", "PENDING", "APPLIED AFTER", "LAST APPLIED")]
    for r in rows:
        after = r.get("apply_after")
        table_rows.append((r["connection"], r["outside_ip"], r.get("source", "-"),
                           "on" if r.get("lifecycle_control") else "off",
                           (r.get("pending") or "-") + (" (replacing)" if r.get("replacing") else ""),
                           f"{_clock(after)} (in {_duration(after - now)})" if after else "-",
                           _clock(r.get("last_applied"))))
    return "\n".join(_columns(table_rows))


def bgp_lines(b: dict, now: float) -> list[str]:
    """The BGP session of a dynamic connection's tunnel."""
    up = f" {_duration(b['uptime_seconds'])}" if b.get("uptime_seconds") is not None else ""
    p = b.get("prefixes") or {}
    lines = [f"  BGP {b['state']}{up} with {b['peer_address']} AS {b['peer_asn']}"
             + (f" (router-id {b['peer_router_id']})" if b.get("peer_router_id") else "")
             + (f", hold {b['hold_time']}s" if b.get("hold_time") else "")
             + f"; prefixes received {p.get('received', 0)}, accepted {p.get('accepted', 0)}"
             f" (limit {p.get('limit')}), advertised {p.get('advertised', 0)}"]
    n = b.get("last_notification")
    if n:
        lines.append(f"    last NOTIFICATION {n['direction']} {_age(n.get('at'), now)} ago: {n['code']}/{n['subcode']}"
                     f" ({n['name']})" + (f" data {n['data']}" if n.get("data") else ""))
    if b.get("listen_error"):
        lines.append(f"    {b['listen_error']}")
    return lines


def block(t: dict, now: float) -> list[str]:
    """The details of one tunnel, swanctl --list-sas style."""
    h = t.get("history") or {}
    flags = []
    if t.get("primary"):
        flags.append("primary")
    if t.get("admin_down"):
        flags.append("admin down")
    lines = [f"{t['connection']} {t['outside_ip']}: {t['status']} ({t['status_message']})"
             + (f" [{', '.join(flags)}]" if flags else "")
             + f", last status change {_clock(t.get('last_status_change'))} ({_age(t.get('last_status_change'), now)} ago)"]
    lines.append(f"  inside {t['inside_cidr']}: VGW {t['vgw_inside_ip']}, CGW {t['cgw_inside_ip']}"
                 f" on {t.get('tun') or '-'}; startup {t['startup_action']}")
    ike = t.get("ike")
    if ike:
        algs = "/".join(str(x) for x in (ike["encryption"], ike["integrity"], ike["prf"] and f"PRF_{ike['prf']}",
                                         ike["dh_group"] and f"DH{ike['dh_group']}") if x)
        lines.append(f"  IKE {ike['state']} ({ike['role']}) {ike['local']} <-> {ike['remote']}"
                     f" id {ike['remote_id'] or '-'}; {algs}" + ("; NAT-T" if ike.get("nat_t") else ""))
        rekeys = h.get("ike_rekeys", 0)
        lines.append(f"    up {_age(h.get('ike_sa_up_since'), now)}; SPIs {ike['spi_i']}_i {ike['spi_r']}_r"
                     + _schedule(ike)
                     + (f"; rekeyed {_times(rekeys)}, last {_age(h.get('last_ike_rekey'), now)} ago" if rekeys else ""))
    else:
        lines.append(f"  IKE {t['ike_phase1_state']}")
    for c in t.get("children", []):
        algs = c["encryption"] + (f"/{c['integrity']}" if c.get("integrity") else "")
        lines.append(f"  CHILD {c['state']} SPI in {c['spi_in']} out {c['spi_out']}; {algs}"
                     + (f"/DH{c['dh_group']}" if c.get("dh_group") else "") + _schedule(c))
        lines.append(f"    {', '.join(c['local_ts'])} <=> {', '.join(c['remote_ts'])}")
    if t.get("children"):
        rekeys = h.get("child_rekeys", 0)
        lines.append(f"    up {_age(h.get('child_sa_up_since'), now)}"
                     + (f"; rekeyed {_times(rekeys)}, last {_age(h.get('last_child_rekey'), now)} ago" if rekeys
                        else "; not rekeyed yet"))
    if t.get("bgp"):
        lines += bgp_lines(t["bgp"], now)
    k = t.get("counters", {})
    drops = {r: n for r, n in (t.get("drops") or {}).items() if n}
    lines.append(f"  in {_bytes(k.get('bytes_in', 0))} / {k.get('packets_in', 0)} pkts,"
                 f" out {_bytes(k.get('bytes_out', 0))} / {k.get('packets_out', 0)} pkts"
                 + (f"; drops {', '.join(f'{r} {n}' for r, n in drops.items())}" if drops else ""))
    limits = t.get("limits")
    if limits:
        lines.append(f"  limits emulated: {_bit_rate(limits['bits_per_second'])} and"
                     f" {limits['packets_per_second']} packets/s each way; rate_limit dropped"
                     f" in {limits['dropped_in']}, out {limits['dropped_out']}")
    downs = {r: n for r, n in (h.get("ike_sa_down") or {}).items() if n}
    if downs:
        lines.append("  IKE SAs ended: " + ", ".join(f"{r} {n}" for r, n in sorted(downs.items())))
    if t.get("last_error"):
        lines.append(f"  last error: {t['last_error']}")
    return lines


def render(status: dict, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = table(status, now)
    tunnels = _by_connection(status)
    for c in status.get("connections", []):
        lines += ["", connection_line(c)]
        for t in tunnels:
            if t["connection"] == c["name"]:
                lines += block(t, now)
    listed = {c["name"] for c in status.get("connections", [])}
    for t in tunnels:
        if t["connection"] not in listed:
            lines += [""] + block(t, now)
    return "\n".join(lines)


def render_routes(routes: list[dict]) -> str:
    """`vgw routes`: the VPC route table, then why each route won and where it is
    re-advertised (VPN CloudHub)."""
    rows = [("DESTINATION", "TARGET", "CONNECTION", "ORIGIN", "STATE", "AS_PATH", "MED", "WHY")]
    for r in routes:
        rows.append((r["destination"], r.get("target") or "-", r.get("connection") or "-", r["origin"], r["state"],
                     " ".join(map(str, r.get("as_path") or [])) or "-",
                     "-" if r.get("med") is None else r["med"], r.get("reason") or "-"))
    lines = _columns(rows)
    for r in routes:
        notes = []
        if r.get("alternatives"):
            notes.append("over " + "; ".join(
                f"{a['connection']} {a.get('tunnel') or ''} {a['origin']} as-path {' '.join(map(str, a['as_path'])) or '-'}"
                f" med {'-' if a.get('med') is None else a['med']}".replace("  ", " ") for a in r["alternatives"]))
        if r.get("advertised_to"):
            notes.append("re-advertised to " + ", ".join(r["advertised_to"]))
        if notes:
            lines.append(f"  {r['destination']}: " + "; ".join(notes))
    return "\n".join(lines)
