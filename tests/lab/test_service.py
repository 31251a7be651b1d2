"""vgw run as a service would run it, against a real strongSwan customer gateway:
sd_notify to a NOTIFY_SOCKET the test owns (READY, STATUS, WATCHDOG, RELOADING,
STOPPING), SIGHUP reloads (an unchanged tunnel keeps its SPIs and traffic, a
changed one is re-established, an invalid file is refused), AWS tunnel log
records in json and text on stdout and in files (documented keys only, no PSK),
and the Prometheus endpoint: TunnelDataIn/TunnelDataOut against iperf3's own
byte count, with the header overhead computed, not guessed.

One vgw life per test function keeps the lab cost (namespaces, two charons'
worth of IKE) to one setup: the steps build on each other as a real service's
life does.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.awslog import parse_record
from tests.lab.netns import wait_until
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import BackgroundPing, ping, run_iperf
from tests.lab.vgwproc import Vgw, as_the_unit_runs_it, gateway_yaml, tunnel_yaml, unit_capabilities

pytestmark = pytest.mark.lab

VGW_IPS = ("198.51.100.1", "198.51.100.2")
INSIDE = ("169.254.10.0/30", "169.254.11.0/30")
PSKS = ("example_psk_service1_abcdef", "example_psk_service2_abcdef")
METRICS = "127.0.0.1:9700"
UDP_PAYLOAD = 1200
IPV4_UDP_HEADERS = 20 + 8   # what an inner datagram adds to iperf3's payload (no IP options)
MAX_PACKET = 1500           # bound for one packet of iperf3's TCP control connection


class NotifySocket:
    """The systemd side of sd_notify: a Unix datagram socket (a path: abstract
    names are per network namespace, and vgw runs in another one), read all the
    time by a thread, as systemd does."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def _drain(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.1))

    def wait_for(self, predicate, timeout: float, what: str, start: int = 0) -> int:
        """Index of the first message from `start` on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.messages)):
                if predicate(self.messages[i][1]):  # list.append is atomic: safe to read
                    return i
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no sd_notify message {what} within {timeout} s; got {self.texts()}")
            self._drain(min(left, 0.5))

    def texts(self) -> list[str]:
        return [m for _, m in self.messages]

    def close(self) -> None:
        self._closed.set()
        self._reader.join(timeout=2)
        self.sock.close()


def config(vgw: Vgw, topo, log_dir: str, tunnel2_options: dict | None = None,
           routes: tuple = ("172.16.0.0/16",)) -> str:
    opts = [
        {"log_options": {"cloudwatch_log_options": {"log_enabled": True, "log_output_format": "json",
                                                    "log_file": os.path.join(log_dir, "tunnel1.log")}}},
        {"log_options": {"cloudwatch_log_options": {"log_enabled": True, "log_output_format": "text",
                                                    "log_file": os.path.join(log_dir, "tunnel2.log")}},
         **(tunnel2_options or {})},
    ]
    text = gateway_yaml(control=vgw.control, vpc_cidrs=["10.0.0.0/16"], name="vpn-lab", cgw_ip=topo.cgw_wan_ip,
                        static_routes=list(routes),
                        tunnels=[tunnel_yaml(ip, cidr, psk, **o) for ip, cidr, psk, o in zip(VGW_IPS, INSIDE, PSKS, opts)])
    return f"metrics: {{listen: \"{METRICS}\"}}\n" + text


def scrape(lab, ns: str) -> dict:
    """Every sample of one scrape, as {(name, VpnId/TunnelIpAddress/... labels): value}."""
    code = ("import urllib.request, sys; sys.stdout.write(urllib.request.urlopen("
            f"'http://{METRICS}/metrics', timeout=5).read().decode())")
    text = lab.run(ns, sys.executable, "-c", code).stdout
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def spis(vgw: Vgw) -> dict[str, tuple]:
    return {t["outside_ip"]: tuple((c["spi_in"], c["spi_out"]) for c in t["children"]) for t in vgw.status()}


def test_service_notify_metrics_reload_and_aws_logs(lab, topo):
    log_dir = lab.tmpdir("logs")
    notify = NotifySocket(os.path.join(lab.tmpdir("systemd"), "notify"))
    try:
        # with only the capabilities and no_new_privs of systemd/vgw.service: a
        # capability the unit leaves out that vgw needs fails this whole test
        vgw = Vgw(lab, topo.vgw, wrapper=as_the_unit_runs_it())
        vgw.write_config(config(vgw, topo, log_dir))
        vgw.env.update(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")  # WATCHDOG=1 every 0.5 s
        vgw.start()
        assert _capabilities(vgw.proc.pid) == (_mask(unit_capabilities()), 1)
        ready = notify.wait_for(lambda m: "READY=1" in m, 10, "READY=1")
        assert "STATUS=0/2 tunnels up" in notify.texts()[ready]

        cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
        cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, list(VGW_IPS), list(PSKS)))
        for name, ip in zip(("tun1", "tun2"), VGW_IPS):
            cgw.initiate("net", ike=name, timeout=15)
            vgw.wait_up(ip)
        notify.wait_for(lambda m: m == "STATUS=2/2 tunnels up", 5, "STATUS=2/2 tunnels up")
        assert ping(lab, topo.onprem, topo.vpc_ip)
        watchdog = [t for t, m in notify.messages if m == "WATCHDOG=1"]
        assert len(watchdog) >= 2, notify.texts()
        # vgw pings every half WATCHDOG_USEC (0.5 s); the bound is systemd's own
        # deadline, WATCHDOG_USEC (1 s): a longer gap gets the service killed, so
        # it cannot be looser; it leaves 0.5 s for a busy machine's scheduling
        assert max(b - a for a, b in zip(watchdog, watchdog[1:])) < 1.0

        _check_metrics_against_iperf(lab, topo)
        _check_reload(lab, topo, vgw, notify, log_dir)

        mark = len(notify.messages)
        assert vgw.stop() == 0
        notify.wait_for(lambda m: m == "STOPPING=1", 5, "STOPPING=1", start=mark)
    finally:
        notify.close()
    _check_logs(vgw, log_dir)


def _capabilities(pid: int) -> tuple[int, int]:
    """(CapEff, NoNewPrivs) of a process, from /proc/PID/status."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    return int(fields["CapEff"], 16), int(fields["NoNewPrivs"])


def _mask(names: list[str]) -> int:
    """capability(7) numbers of the unit's names."""
    numbers = {"CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}
    return sum(1 << numbers[n] for n in names)


def _check_metrics_against_iperf(lab, topo) -> None:
    before = scrape(lab, topo.vgw)
    for (name, labels), value in before.items():
        if name == "TunnelState":
            assert value == 1, labels
    # onprem -> vpc: the customer gateway encrypts, vgw decrypts: TunnelDataIn;
    # vpc -> onprem (-R: the server in vpc sends): vgw encrypts: TunnelDataOut
    for direction, extra in (("In", ()), ("Out", ("-R",))):
        # a datagram lost anywhere on this shared VM (iperf3 says so) makes the
        # counts inexact: measure again, up to 3 times
        for _ in range(3):
            a = scrape(lab, topo.vgw)
            run = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=1, udp_size=UDP_PAYLOAD,
                            udp_rate="20M", extra=extra)
            b = scrape(lab, topo.vgw)
            received = run["json"]["end"]["sum_received"]
            if received.get("lost_packets", 0) == 0:
                break
        assert received.get("lost_packets", 0) == 0, f"iperf3 lost datagrams in 3 runs: {received}"
        sent = run["json"]["end"]["sum_sent"]
        datagrams = sent["bytes"] // UDP_PAYLOAD
        assert sent["bytes"] == datagrams * UDP_PAYLOAD and datagrams > 500
        d_bytes = total(b, f"TunnelData{direction}_total") - total(a, f"TunnelData{direction}_total")
        d_packets = (total(b, f"vgw_tunnel_packets_{direction.lower()}_total")
                     - total(a, f"vgw_tunnel_packets_{direction.lower()}_total"))
        # every iperf3 datagram crossed the tunnel as one inner IPv4/UDP packet ...
        data_bytes = datagrams * (UDP_PAYLOAD + IPV4_UDP_HEADERS)
        # ... and the rest is iperf3's TCP control connection (and its UDP hello): a
        # few dozen packets, none larger than the path's MTU
        control_packets = d_packets - datagrams
        assert 0 < control_packets < 100, (direction, d_packets, datagrams)
        assert data_bytes < d_bytes <= data_bytes + control_packets * MAX_PACKET, (
            f"TunnelData{direction} grew by {d_bytes} B; iperf3 moved {sent['bytes']} B in {datagrams}"
            f" datagrams = {data_bytes} B with IPv4+UDP headers, plus {control_packets} control packets")


def _check_reload(lab, topo, vgw, notify, log_dir) -> None:
    before = spis(vgw)
    primary = next(t["outside_ip"] for t in vgw.status() if t["primary"])
    assert primary == VGW_IPS[0]
    bg = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=6)
    time.sleep(1.0)
    # the connection gets another static route (no tunnel setting: tunnel 1 stays up);
    # tunnel 2 gets startup_action start, so vgw re-establishes it itself
    text = config(vgw, topo, log_dir, tunnel2_options={"startup_action": "start"},
                  routes=("172.16.0.0/16", "172.17.0.0/16"))
    vgw.write_config(text)
    mark = len(notify.messages)
    vgw.reload()
    i = notify.wait_for(lambda m: m.startswith("RELOADING=1\nMONOTONIC_USEC="), 5, "RELOADING=1", start=mark)
    notify.wait_for(lambda m: m.startswith("READY=1"), 5, "READY=1 after the reload", start=i + 1)

    def tunnel2_back() -> bool:
        now = spis(vgw)
        return now[VGW_IPS[1]] and now[VGW_IPS[1]] != before[VGW_IPS[1]] and all(
            t["status"] == "UP" for t in vgw.status())
    wait_until(tunnel2_back, 20, 0.2, "tunnel 2 re-established by vgw after the reload")
    sent, received = bg.finish()
    after = spis(vgw)
    assert after[VGW_IPS[0]] == before[VGW_IPS[0]], "the unchanged tunnel kept its SPIs"
    assert sent > 50 and received >= sent - 3, f"lost {sent - received} of {sent} pings across the reload"
    assert f"'replaced': ['{VGW_IPS[1]}']" in vgw.log_text()

    # an invalid file: refused, the running configuration and its SAs stay
    vgw.write_config(text.replace("pre_shared_key: " + PSKS[0], "pre_shared_key: 0bad"))
    mark = len(notify.messages)
    vgw.reload()
    i = notify.wait_for(lambda m: m.startswith("RELOADING=1"), 5, "RELOADING=1", start=mark)
    notify.wait_for(lambda m: m.startswith("READY=1"), 5, "READY=1 after a refused reload", start=i + 1)
    wait_until(lambda: "reload refused, the running configuration stays" in vgw.log_text(), 5, 0.1,
               "the refusal in the log")
    assert "must not start with 0" in vgw.log_text()  # the message names what to change
    assert spis(vgw) == after
    assert ping(lab, topo.onprem, topo.vpc_ip)

    # a hostile file (issue 16: a "billion laughs" of 1.4 KB took vgw's memory and
    # its event loop): read off the loop and refused within the loader's limits;
    # the tunnels carry traffic meanwhile, the daemon lives on
    from tests.unit.daemon.test_config_hostile import billion_laughs
    vgw.write_config(billion_laughs())
    bg = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=4)
    time.sleep(0.5)
    mark = len(notify.messages)
    vgw.reload()
    i = notify.wait_for(lambda m: m.startswith("RELOADING=1"), 5, "RELOADING=1", start=mark)
    notify.wait_for(lambda m: m.startswith("READY=1"), 10, "READY=1 after a refused reload", start=i + 1)
    wait_until(lambda: "billion laughs" in vgw.log_text(), 5, 0.1, "the alias bomb refused, by name")
    sent, received = bg.finish()
    assert vgw.proc.poll() is None, "vgw died of the hostile file"
    assert sent > 50 and received >= sent - 3, f"lost {sent - received} of {sent} pings across the reload"
    assert spis(vgw) == after

    # a valid file whose new tunnel address is not on this host (TEST-NET-1): refused
    # before anything changes, tunnel 2 is not torn down for it
    assert text.count(VGW_IPS[1]) == 1
    vgw.write_config(text.replace(VGW_IPS[1], "192.0.2.77"))
    mark = len(notify.messages)
    vgw.reload()
    i = notify.wait_for(lambda m: m.startswith("RELOADING=1"), 5, "RELOADING=1", start=mark)
    notify.wait_for(lambda m: m.startswith("READY=1"), 5, "READY=1 after a refused reload", start=i + 1)
    wait_until(lambda: "cannot bind 192.0.2.77:500: 192.0.2.77 is not an address of this host" in vgw.log_text(),
               5, 0.1, "the unbindable address refused, by name")
    assert spis(vgw) == after
    assert all(t["status"] == "UP" for t in vgw.status())
    assert ping(lab, topo.onprem, topo.vpc_ip)


def _check_logs(vgw: Vgw, log_dir: str) -> None:
    """Every tunnel record parses and has only AWS's keys; no PSK anywhere."""
    formats = {VGW_IPS[0]: "json", VGW_IPS[1]: "text"}
    file_records = {}
    for ip, name in zip(VGW_IPS, ("tunnel1.log", "tunnel2.log")):
        lines = open(os.path.join(log_dir, name)).read().splitlines()
        file_records[ip] = [parse_record(line, formats[ip]) for line in lines]
        details = [r["details"] for r in file_records[ip]]
        assert any("phase 2 is established" in d for d in details), details
    assert any(r["ike_phase1_state"] == "established" and r["ike_phase2_state"] == "established"
               for r in file_records[VGW_IPS[0]])
    # the reload re-established tunnel 2 as initiator: its DELETE and new SA are logged
    assert any("is deleting IKE_SA" in r["details"] for r in file_records[VGW_IPS[1]])
    assert all(r["nat_t_detected"] for r in file_records[VGW_IPS[0]] if r["ike_phase2_state"] == "established"), \
        "kernel-libipsec fakes NAT: vgw sees a NAT (tests/lab/strongswan.py)"
    stdout_records = {ip: [] for ip in VGW_IPS}
    for line in vgw.log_text().splitlines():
        for ip in VGW_IPS:
            tag = f"[vpn-lab {ip}] "
            if tag in line:
                body = line.split(tag, 1)[1]
                if body.startswith(("{", "event_timestamp=")):
                    stdout_records[ip].append(parse_record(body, formats[ip]))
                else:
                    # the gateway's own lines about a tunnel are not core LogLines
                    assert not body.startswith(("AWS", "No Proposal")), line
    for ip in VGW_IPS:
        assert stdout_records[ip] == file_records[ip]
    everything = vgw.log_text() + "".join(open(os.path.join(log_dir, f)).read() for f in os.listdir(log_dir))
    for psk in PSKS:
        assert psk not in everything and psk.encode().hex() not in everything
    json.dumps(file_records)  # plain data all the way
