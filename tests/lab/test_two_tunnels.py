"""Two tunnels against a real strongSwan customer gateway (issue: two working tunnels).

Topology (tests/lab/netns.py): onprem -- cgw == wan == vgw -- vpc. strongSwan
(kernel-libipsec) in cgw initiates both tunnels, AWS-style (0.0.0.0/0 selectors,
route-based); vgw in the vgw namespace is the AWS side.
"""

from __future__ import annotations

import time

import pytest

from tests.lab.awspair import VGW_IPS, bring_up, start_pair
from tests.lab.strongswan import installed_children
from tests.lab.traffic import BackgroundPing, ping, run_iperf

pytestmark = pytest.mark.lab


def test_two_tunnels_ping_and_tcp(lab, topo):
    vgw, cgw = start_pair(lab, topo)
    bring_up(vgw, cgw)

    sas = cgw.list_sas()
    assert sorted(sa["name"] for sa in sas if sa["state"] == "ESTABLISHED") == ["tun1", "tun2"]
    assert len(installed_children(sas)) == 2
    status = vgw.status()
    assert [t["status"] for t in status] == ["UP", "UP"]
    # vgw's SPIs are strongSwan's, crossed (strongSwan's view is the independent one)
    for sa in sas:
        child = sa["child-sas"][0]
        mine = next(t for t in status if t["outside_ip"] == sa["remote-host"])
        assert mine["children"][0]["spi_in"] == child["spi-out"]
        assert mine["children"][0]["spi_out"] == child["spi-in"]
        # kernel-libipsec fakes NAT detection: the CGW forces UDP encapsulation
        assert child.get("encap") == "yes"
        assert mine["ike"]["nat_t"] is True

    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    # the VGW inside addresses answer (the AWS heartbeat target)
    assert ping(lab, topo.cgw, "169.254.10.1")
    assert ping(lab, topo.cgw, "169.254.11.1")
    result = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=2)
    assert result["gbps"] > 0.01
    result = run_iperf(lab, topo.vpc, topo.onprem, topo.onprem_ip, seconds=2)
    assert result["gbps"] > 0.01
    after = {t["outside_ip"]: t for t in vgw.status()}
    # egress on the primary only, ingress on both may happen (AWS §7): the
    # primary carried vgw's outbound traffic
    primary = [ip for ip, t in after.items() if t["primary"]]
    assert len(primary) == 1
    assert after[primary[0]]["counters"]["bytes_out"] > 1_000_000


def test_failover_between_tunnels(lab, topo):
    vgw, cgw = start_pair(lab, topo)
    bring_up(vgw, cgw)
    primary = next(t["outside_ip"] for t in vgw.status() if t["primary"])
    other = next(ip for ip in VGW_IPS if ip != primary)

    bg = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=6)
    time.sleep(1.5)
    vgw.cli("tunnel", "down", primary)
    time.sleep(1.5)
    sent, received = bg.finish()
    assert sent > 50
    # the VPC keeps reaching on-premises: routes moved to the other tunnel
    assert received >= sent - 3, f"lost {sent - received} of {sent} pings over the failover"
    status = {t["outside_ip"]: t for t in vgw.status()}
    assert status[primary]["status"] == "DOWN" and status[primary]["admin_down"]
    assert status[other]["primary"] and status[other]["status"] == "UP"
    names = {sa["name"] for sa in cgw.list_sas()}
    assert names == {"tun1" if other == VGW_IPS[0] else "tun2"}, "vgw sent DELETE for the downed tunnel"
    assert ping(lab, topo.onprem, topo.vpc_ip)

    # bring it back; the CGW re-initiates (startup_action add: AWS waits)
    vgw.cli("tunnel", "up", primary)
    cgw.initiate("net", ike="tun1" if primary == VGW_IPS[0] else "tun2", timeout=15)
    vgw.wait_up(primary)
    # now strongSwan kills the tunnel that carries vgw's egress: DELETE reaches vgw
    bg = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=5)
    time.sleep(1.0)
    cgw.terminate(ike="tun1" if other == VGW_IPS[0] else "tun2")
    sent, received = bg.finish()
    assert received >= sent - 3, f"lost {sent - received} of {sent} pings when the CGW deleted a tunnel"
    status = {t["outside_ip"]: t for t in vgw.status()}
    assert status[other]["status"] == "DOWN"
    assert status[primary]["primary"]
    assert "AWS tunnel received DELETE for IKE_SA from CGW" in vgw.log_text()


def test_operator_down_is_a_status_change(lab, topo):
    vgw, cgw = start_pair(lab, topo, tunnels=1)
    bring_up(vgw, cgw, tunnels=1)
    before = vgw.tunnel(VGW_IPS[0])["last_status_change"]
    time.sleep(1.2)
    vgw.cli("tunnel", "down", VGW_IPS[0])
    after = vgw.tunnel(VGW_IPS[0])
    assert after["status"] == "DOWN" and after["last_status_change"] >= before + 1
