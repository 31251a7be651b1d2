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


def table(status: dict, now: float) -> list[str]:
    """One row per tunnel: what an operator checks first."""
    header = ("CONNECTION", "TUNNEL", "STATUS", "PHASE 1", "PHASE 2", "EGRESS", "IN", "OUT", "SINCE")
    rows = [header]
    for t in status.get("tunnels", []):
        k = t.get("counters", {})
        rows.append((t["connection"], t["outside_ip"], t["status"] + (" (admin)" if t.get("admin_down") else ""),
                     t.get("ike_phase1_state", "-"), t.get("ike_phase2_state", "-"),
                     "primary" if t.get("primary") else "-", _bytes(k.get("bytes_in", 0)),
                     _bytes(k.get("bytes_out", 0)), _age(t.get("last_status_change"), now)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


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
    k = t.get("counters", {})
    drops = {r: n for r, n in (t.get("drops") or {}).items() if n}
    lines.append(f"  in {_bytes(k.get('bytes_in', 0))} / {k.get('packets_in', 0)} pkts,"
                 f" out {_bytes(k.get('bytes_out', 0))} / {k.get('packets_out', 0)} pkts"
                 + (f"; drops {', '.join(f'{r} {n}' for r, n in drops.items())}" if drops else ""))
    downs = {r: n for r, n in (h.get("ike_sa_down") or {}).items() if n}
    if downs:
        lines.append("  IKE SAs ended: " + ", ".join(f"{r} {n}" for r, n in sorted(downs.items())))
    if t.get("last_error"):
        lines.append(f"  last error: {t['last_error']}")
    return lines


def render(status: dict, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = table(status, now)
    for t in status.get("tunnels", []):
        lines.append("")
        lines += block(t, now)
    return "\n".join(lines)
