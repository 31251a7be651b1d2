"""`vgw status` for people: one block per tunnel, in the spirit of swanctl --list-sas."""

from __future__ import annotations


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render(status: dict) -> str:
    lines = []
    for t in status.get("tunnels", []):
        flags = []
        if t.get("primary"):
            flags.append("primary")
        if t.get("admin_down"):
            flags.append("admin down")
        head = (f"{t['connection']} {t['outside_ip']}: {t['status']} ({t['status_message']})"
                + (f" [{', '.join(flags)}]" if flags else ""))
        lines.append(head)
        lines.append(f"  inside {t['inside_cidr']}: VGW {t['vgw_inside_ip']}, CGW {t['cgw_inside_ip']}"
                     f" on {t.get('tun') or '-'}; startup {t['startup_action']}")
        ike = t.get("ike")
        if ike:
            algs = "/".join(str(x) for x in (ike["encryption"], ike["integrity"], ike["prf"] and
                                             f"PRF_{ike['prf']}", ike["dh_group"] and
                                             f"DH{ike['dh_group']}") if x)
            lines.append(f"  IKE {ike['state']} ({ike['role']}) {ike['local']} <-> {ike['remote']}"
                         f" id {ike['remote_id'] or '-'}; {algs}"
                         + ("; NAT-T" if ike.get("nat_t") else ""))
            lines.append(f"    SPIs {ike['spi_i']}_i {ike['spi_r']}_r")
        else:
            lines.append(f"  IKE {t['ike_phase1_state']}")
        for c in t.get("children", []):
            algs = c["encryption"] + (f"/{c['integrity']}" if c.get("integrity") else "")
            lines.append(f"  CHILD {c['state']} SPI in {c['spi_in']} out {c['spi_out']}; {algs}"
                         + (f"/DH{c['dh_group']}" if c.get("dh_group") else ""))
            lines.append(f"    {', '.join(c['local_ts'])} <=> {', '.join(c['remote_ts'])}")
        k = t.get("counters", {})
        drops = {r: n for r, n in (t.get("drops") or {}).items() if n}
        lines.append(f"  in {_bytes(k.get('bytes_in', 0))} / {k.get('packets_in', 0)} pkts,"
                     f" out {_bytes(k.get('bytes_out', 0))} / {k.get('packets_out', 0)} pkts"
                     + (f"; drops {', '.join(f'{r} {n}' for r, n in drops.items())}" if drops else ""))
        if t.get("last_error"):
            lines.append(f"  last error: {t['last_error']}")
    return "\n".join(lines)
