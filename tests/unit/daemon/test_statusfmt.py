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
    assert lines[0].split() == ["CONNECTION", "TUNNEL", "STATUS", "PHASE", "1", "PHASE", "2", "EGRESS", "IN", "OUT",
                                "SINCE"]
    assert lines[1].split() == ["vpn-lab", "198.51.100.1", "UP", "established", "established", "primary", "3.0",
                                "MiB", "512", "B", "1h02m"]
    assert lines[2].split()[:6] == ["vpn-lab", "198.51.100.2", "DOWN", "down", "down", "-"]
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
                                                        "EGRESS", "IN", "OUT", "SINCE"]
