"""Rekeying against real strongSwan with no packet lost (issue: tunnel lifecycle).

20 forced rekeys, alternating sides (`vgw rekey` and `swanctl --rekey`), CHILD
and IKE SAs, while a 20-per-second ping and an iperf3 TCP transfer (100 Mbit/s)
run through the tunnel. strongSwan proposes PFS with MODP2048 (group 14) while vgw's first
phase 2 group is 2: every vgw-initiated CHILD rekey goes through INVALID_KE.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.lab.awspair import VGW_IPS, bring_up, start_pair
from tests.lab.strongswan import installed_children
from tests.lab.traffic import BackgroundPing, assert_few_lost, run_iperf

# timing-sensitive: never beside another heavy lab test (scripts/test.sh: --dist loadgroup)
pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("heavy")]

REKEYS = 20
DURATION = 40.0   # the ping and iperf3 span all rekeys (bounded)
# TCP at a bounded rate: a flow that saturates the tunnel fills queues and loses
# packets of anything sharing them - ping included - whether or not a rekey
# happens (on this shared 2-core machine the tunnel's limit moves with the load).
# Below the limit, any lost ping is the rekeys' fault.
IPERF_RATE = "100M"


def _ids(vgw, cgw):
    t = vgw.tunnel(VGW_IPS[0])
    return (t["ike"]["spi_i"] if t["ike"] else None,
            tuple(sorted(c["spi_in"] for c in t["children"])))


# zero lost pings asserted: run with nothing beside it (marker alone; a CI
# rehearsal with two CPU hogs and the parallel pass lost 3 of 800 pings with no
# drop counted by vgw, and none in 3 runs with the hogs alone)
@pytest.mark.alone
def test_twenty_rekeys_lose_no_packet(lab, topo):
    vgw, cgw = start_pair(lab, topo, tunnels=1)
    bring_up(vgw, cgw, tunnels=1)
    iperf: dict = {}
    worker = threading.Thread(target=lambda: iperf.update(
        run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=DURATION - 6,
                  extra=("-i", "1", "-b", IPERF_RATE))))
    ping = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=DURATION)
    worker.start()
    time.sleep(2)
    deadline = time.monotonic() + DURATION - 8
    done = []
    for i in range(REKEYS):
        kind = "ike" if i % 5 == 4 else "child"
        side = "vgw" if i % 2 == 0 else "strongswan"
        before = _ids(vgw, cgw)
        if side == "vgw":
            vgw.cli("rekey", VGW_IPS[0], f"--{kind}")
        elif kind == "child":
            cgw.rekey(child="net")
        else:
            cgw.rekey(ike="tun1")

        def rekeyed() -> bool:
            ike, children = _ids(vgw, cgw)
            changed = ike != before[0] if kind == "ike" else children != before[1]
            return changed and len(children) == 1   # the old SA is deleted too
        lab.wait_until(rekeyed, max(1.0, deadline - time.monotonic()),
                       what=f"rekey {i + 1} ({kind} by {side})")
        done.append((kind, side))
        time.sleep(0.3)
    sent, received = ping.finish()
    worker.join(timeout=DURATION + 30)
    assert len(done) == REKEYS
    assert sent > 0.8 * DURATION / 0.05
    drops = {k: v for k, v in vgw.tunnel(VGW_IPS[0])["drops"].items() if v}
    # make-before-break, as the issue asks: not one ping lost (iperf3 is capped
    # below what fills the path, so no queue overflows by design)
    assert_few_lost(sent, received, 0, f"during {REKEYS} rekeys; vgw drops {drops}")
    # TCP kept going: every one-second interval moved data
    intervals = iperf["json"]["intervals"]
    assert intervals and min(iv["sum"]["bytes"] for iv in intervals) > 0
    # both sides agree at the end, and vgw counted the rekeys it went through
    # strongSwan keeps a rekeyed CHILD SA around for a few seconds: compare the installed one
    [child] = [c for c in installed_children(cgw.list_sas()) if c.get("state") == "INSTALLED"]
    t = vgw.tunnel(VGW_IPS[0])
    assert t["children"][0]["spi_in"] == child["spi-out"]
    assert t["children"][0]["dh_group"] == 14          # PFS group of the rekeys
    log = vgw.log_text()
    assert log.count("AWS tunnel is sending request") > 0
    assert "INVALID_KE_PAYLOAD for CREATE_CHILD_SA" in log
