"""`vgw status` for people (daemon/statusfmt.py): the summary table and the
per-tunnel blocks, from a status answer shaped as the control socket sends it."""

from __future__ import annotations

from daemon.statusfmt import render

NOW = 1_800_000_000.0


def tunnel(ip, up=True, **extra):
    t = {
        "connection": "vpn-lab", "outside_ip": ip, "status": "UP" if up else "DOWN",
        "status_message": "IPSEC IS UP" if up else "IPSEC IS DOWN", "last_status_change": NOW - 3725,
        "inside_cidr": "169.254.10.0/30", "vgw_inside_ip": "169.254.10.1", "cgw_inside_ip": "169.254.10.2",
        "tun": "vgwc6336401", "primary": up, "admin_down": False, "startup_action": "add",
        "ike_phase1_state": "established" if up else "down", "ike_phase2_state": "established" if up else "down",
        "ike": None, "children": [], "counters": {"bytes_in": 3 * 1024 * 1024, "bytes_out": 512, "packets_in": 10,
                                                  "packets_out": 2},
        "drops": {"replay": 0, "bad_icv": 2}, "last_error": "", "history": {},
    }
    if up:
        t["ike"] = {"state": "ESTABLISHED", "role": "responder", "spi_i": "aa" * 8, "spi_r": "bb" * 8,
                    "local": f"{ip}[4500]", "remote": "198.51.100.10[4500]", "remote_id": "198.51.100.10",
                    "encryption": "AES128", "integrity": "SHA2-256", "prf": "SHA2-256", "dh_group": 14,
                    "nat_t": True, "rekey_in": 28000.4, "expires_in": 28700}
        t["children"] = [{"spi_in": "c1c1c1c1", "spi_out": "c2c2c2c2", "encryption": "AES128-GCM-16",
                          "integrity": None, "dh_group": None, "local_ts": ["0.0.0.0/0"], "remote_ts": ["0.0.0.0/0"],
                          "state": "INSTALLED", "rekey_in": 2890, "expires_in": 3500}]
        t["history"] = {"ike_sa_up_since": NOW - 3725, "child_sa_up_since": NOW - 600, "ike_rekeys": 0,
                        "child_rekeys": 2, "last_child_rekey": NOW - 600, "ike_sa_down": {"dpd": 1}}
    t.update(extra)
    return t


def test_table_then_blocks():
    text = render({"tunnels": [tunnel("198.51.100.1"), tunnel("198.51.100.2", up=False,
                                                              last_error="auth-failed: PSK mismatch")]}, now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["CONNECTION", "TUNNEL", "STATUS", "PHASE", "1", "PHASE", "2", "BGP", "EGRESS", "IN",
                                "OUT", "SINCE"]
    assert lines[1].split() == ["vpn-lab", "198.51.100.1", "UP", "established", "established", "-", "primary",
                                "3.0", "MiB", "512", "B", "1h02m"]
    assert lines[2].split()[:7] == ["vpn-lab", "198.51.100.2", "DOWN", "down", "down", "-", "-"]
    # columns line up
    assert lines[0].index("STATUS") == lines[1].index("UP") == lines[2].index("DOWN")
    assert "vpn-lab 198.51.100.1: UP (IPSEC IS UP) [primary], last status change" in text
    assert "(1h02m ago)" in text
    assert "up 1h02m; SPIs aaaaaaaaaaaaaaaa_i bbbbbbbbbbbbbbbb_r; rekeying in 7h46m, expires in 7h58m" in text
    assert "CHILD INSTALLED SPI in c1c1c1c1 out c2c2c2c2; AES128-GCM-16; rekeying in 48m10s, expires in 58m20s" in text
    assert "up 10m00s; rekeyed 2 times, last 10m00s ago" in text
    assert "drops bad_icv 2" in text and "replay" not in text
    assert "IKE SAs ended: dpd 1" in text
    assert "last error: auth-failed: PSK mismatch" in text
    assert "  IKE down" in text


def test_missing_optional_keys_do_not_break_the_output():
    t = tunnel("198.51.100.1")
    del t["history"]
    for key in ("rekey_in", "expires_in"):
        t["ike"].pop(key)
        t["children"][0].pop(key)
    text = render({"tunnels": [t]}, now=NOW)
    assert "up -; SPIs" in text and "rekeying" not in text
    assert render({"tunnels": []}, now=NOW).split() == ["CONNECTION", "TUNNEL", "STATUS", "PHASE", "1", "PHASE", "2",
                                                        "BGP", "EGRESS", "IN", "OUT", "SINCE"]


def test_tunnels_are_grouped_by_connection_with_its_customer_gateway_and_bgp():
    a, b = tunnel("198.51.100.1"), tunnel("198.51.100.3")
    b["connection"] = "site-b"
    b["bgp"] = {"state": "Established", "uptime_seconds": 125, "peer_address": "169.254.12.2", "peer_asn": 65002,
                "peer_router_id": "192.0.2.2", "hold_time": 30,
                "prefixes": {"received": 3, "accepted": 2, "advertised": 4, "limit": 100},
                "last_notification": {"direction": "sent", "code": 6, "subcode": 1, "at": NOW - 60,
                                      "name": "Cease / Maximum Number of Prefixes Reached", "data": "00010100000064"}}
    connections = [{"name": "site-b", "vpn_connection_id": "vpn-0b", "routing": "dynamic",
                    "customer_gateway": {"ip": "198.51.100.12", "bgp_asn": 65002}, "primary": "198.51.100.3"},
                   {"name": "vpn-lab", "vpn_connection_id": "vpn-0a", "routing": "static",
                    "customer_gateway": {"ip": None}, "primary": None, "static_routes": ["172.16.0.0/16"]}]
    text = render({"tunnels": [a, b], "connections": connections}, now=NOW)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["site-b", "198.51.100.3"] and "Established" in lines[1].split()
    head_b = lines.index("site-b (vpn-0b): dynamic routing, customer gateway 198.51.100.12 AS 65002;"
                         " primary tunnel 198.51.100.3")
    head_a = lines.index("vpn-lab (vpn-0a): static routing, customer gateway any address; primary tunnel none;"
                         " static routes 172.16.0.0/16")
    assert head_b < text.splitlines().index(next(x for x in lines if x.startswith("site-b 198.51.100.3:"))) < head_a
    assert ("  BGP Established 2m05s with 169.254.12.2 AS 65002 (router-id 192.0.2.2), hold 30s; prefixes received 3,"
            " accepted 2 (limit 100), advertised 4") in lines
    assert ("    last NOTIFICATION sent 1m00s ago: 6/1 (Cease / Maximum Number of Prefixes Reached)"
            " data 00010100000064") in lines


def test_routes_table_says_why_and_where_re_advertised():
    from daemon.statusfmt import render_routes
    text = render_routes([
        {"destination": "10.0.0.0/16", "target": "local", "connection": None, "origin": "local", "state": "active",
         "reason": "the VPC's own CIDR"},
        {"destination": "172.16.1.0/24", "target": "198.51.100.1", "connection": "site-a", "origin": "propagated",
         "state": "active", "reason": "shorter AS_PATH", "as_path": [65001], "med": None,
         "alternatives": [{"connection": "site-a2", "tunnel": "198.51.100.5", "origin": "propagated",
                           "as_path": [65003, 65003], "med": 0}],
         "advertised_to": ["198.51.100.3", "198.51.100.4"]}])
    lines = text.splitlines()
    assert lines[0].split() == ["DESTINATION", "TARGET", "CONNECTION", "ORIGIN", "STATE", "AS_PATH", "MED", "WHY"]
    assert lines[2].split()[:7] == ["172.16.1.0/24", "198.51.100.1", "site-a", "propagated", "active", "65001", "-"]
    assert ("  172.16.1.0/24: over site-a2 198.51.100.5 propagated as-path 65003 65003 med 0;"
            " re-advertised to 198.51.100.3, 198.51.100.4") in lines
