"""DPD and startup actions against real strongSwan (issue: tunnel lifecycle).

AWS: after 10 s without traffic from the peer a DPD probe; no answer for
dpd_timeout_seconds (30) from the last traffic -> "AWS tunnel DPD timed out
after 3 retransmits" and dpd_timeout_action: clear / none / restart
(docs/aws.md §1.5, §3.3, §6.4). strongSwan is SIGKILLed, so it cannot say
goodbye; three tunnels with the three actions are watched at once.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import time

import pytest

from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import ping
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

pytestmark = pytest.mark.lab

IPS = ("198.51.100.1", "198.51.100.2", "198.51.100.3")
PSKS = ("example_psk_dpd_clear_abc", "example_psk_dpd_restart_ab", "example_psk_dpd_none_abcd")


def _config(vgw: Vgw, cgw_ip: str) -> str:
    return f"""control_socket: {vgw.control}
vpc: {{cidrs: [10.0.0.0/16]}}
connections:
  - name: dpd-lab
    customer_gateway: {{ip: {cgw_ip}}}
    static_routes: [172.16.0.0/16]
    tunnels:
      - outside_ip: {IPS[0]}
        inside_cidr: 169.254.50.0/30
        pre_shared_key: {PSKS[0]}
        dpd_timeout_action: clear
      - outside_ip: {IPS[1]}
        inside_cidr: 169.254.51.0/30
        pre_shared_key: {PSKS[1]}
        dpd_timeout_action: restart
  - name: dpd-none
    customer_gateway: {{ip: {cgw_ip}}}
    static_routes: [172.17.0.0/16]
    tunnels:
      - outside_ip: {IPS[2]}
        inside_cidr: 169.254.52.0/30
        pre_shared_key: {PSKS[2]}
        dpd_timeout_action: none
"""


def test_dpd_actions_when_the_customer_gateway_dies(lab, topo):
    lab.addr(topo.vgw, topo.vgw_wan_if, f"{IPS[2]}/24")
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(_config(vgw, topo.cgw_wan_ip))
    vgw.start()
    # the CGW's own DPD every second: vgw's last traffic from it is then at most ~1 s
    # before the kill, so vgw's timeout is due 29-30 s after the kill
    conf = swanctl_conf_psk(topo.cgw_wan_ip, list(IPS), list(PSKS), names=["t1", "t2", "t3"],
                            dpd_delay="1s")
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(conf)
    for name in ("t1", "t2", "t3"):
        cgw.initiate("net", ike=name, timeout=15)
    for ip in IPS:
        vgw.wait_up(ip)
    assert ping(lab, topo.onprem, topo.vpc_ip)

    time.sleep(3)                        # a few of the CGW's DPD exchanges on every tunnel
    killed = time.time()
    os.kill(cgw.pid, signal.SIGKILL)     # dead without a DELETE
    lab.wait_until(lambda: vgw.tunnel(IPS[0])["status"] == "DOWN", 40,
                   what="DPD to clear the tunnel with action clear")
    # none: the SA is kept (its probes run on their own schedule: wait for its timeout)
    lab.wait_until(lambda: "dpd_timeout_action none" in vgw.log_text(), 5,
                   what="the DPD timeout of the tunnel with action none")
    # vgw promises: dead at its last traffic from the peer + dpd_timeout_seconds (30).
    # That traffic (the CGW's DPD, every second) came at most ~1 s before the kill;
    # the time is read from vgw's own log line, so no polling delay counts. 0.5 s
    # more either way for the scheduling of two processes on a busy 2-core machine.
    timeouts = _timeout_lines(vgw.log_text())
    assert sorted(ip for ip, _, _ in timeouts) == sorted(IPS), timeouts   # each once
    for ip, when, retransmits in timeouts:
        took = when - killed
        assert 28.5 <= took <= 30.5, f"{ip}: declared dead {took:.2f} s after the kill"
        # AWS: "DPD timed out after 3 retransmits" with the default 30 s; the
        # count is the resends vgw really sent (probe + 3, ikecore/timers.py)
        assert retransmits == 3, f"{ip}: {retransmits} retransmits"
    kept = vgw.tunnel(IPS[2])
    assert kept["status"] == "UP" and kept["ike"]["state"] == "ESTABLISHED"
    # clear: down and stays down (startup_action add: AWS waits for the CGW);
    # restart: vgw initiates again at once
    lab.wait_until(lambda: "restarting the IKE_SA" in vgw.log_text(), 15,
                   what="the restart action")
    routes = lab.run(topo.vgw, "ip", "route").stdout
    assert "unreachable 172.16.0.0/16" in routes   # both tunnels of dpd-lab down: nothing leaks

    # a new customer gateway that never initiates: the restart action brings tunnel 2 back
    cgw2 = Charon(lab, topo.cgw, name="cgw2", settings={"routing_table_prio": 32767}).start()
    cgw2.load(conf)
    vgw.wait_up(IPS[1], timeout=40)
    assert vgw.tunnel(IPS[1])["ike"]["role"] == "initiator"
    assert vgw.tunnel(IPS[0])["status"] == "DOWN"     # clear: nobody brought it back
    assert "172.16.0.0/16 dev vgw" in lab.run(topo.vgw, "ip", "route").stdout
    assert ping(lab, topo.vpc, topo.onprem_ip)


_TIMEOUT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \[[^\]]* ([\d.]+)\] "
                           r"AWS tunnel DPD timed out after (\d+) retransmits$", re.M)


def _timeout_lines(log: str) -> list[tuple[str, float, int]]:
    """(outside IP, POSIX time, retransmits) of each DPD timeout line in vgw's log
    (logging's asctime: local time, milliseconds)."""
    found = []
    for stamp, ip, count in _TIMEOUT_LINE.findall(log):
        when = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        found.append((ip, when, int(count)))
    return found


def test_startup_action_start_with_a_passive_customer_gateway(lab, topo):
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(gateway_yaml(
        vgw.control, ["10.0.0.0/16"], "start-lab", topo.cgw_wan_ip, ["172.16.0.0/16"],
        [tunnel_yaml(IPS[0], "169.254.60.0/30", PSKS[0], startup_action="start")]))
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, IPS[0], PSKS[0], start_action="none"))
    vgw.start()
    status = vgw.wait_up(IPS[0], timeout=20)
    assert status["ike"]["role"] == "initiator"
    sa = cgw.list_sas()[0]
    assert sa.get("initiator") != "yes"       # strongSwan is the responder
    assert sa["child-sas"][0]["state"] == "INSTALLED"
    assert ping(lab, topo.onprem, topo.vpc_ip)
    # the CGW deletes the tunnel: AWS (start) brings it back by itself
    cgw.terminate(ike="tun1")
    lab.wait_until(lambda: vgw.tunnel(IPS[0])["status"] == "DOWN", 10, what="tunnel down")
    vgw.wait_up(IPS[0], timeout=30)
    assert ping(lab, topo.onprem, topo.vpc_ip)
