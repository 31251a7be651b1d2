"""Traffic generators for lab tests and benchmarks: ping and iperf3 between namespaces."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.lab.netns import Lab, LabError, wait_until

IPERF_PORT = 5201


def ping(lab: Lab, ns: str, dst: str, count: int = 3, interval: float = 0.2, wait: float = 1.0,
         source: str | None = None) -> bool:
    """True if all ``count`` echo requests from ``ns`` to ``dst`` were answered
    (sent from address ``source`` if given)."""
    src = ("-I", source) if source else ()
    res = lab.run(
        ns, "ping", "-n", "-q", "-c", count, "-i", interval, "-W", wait, *src, dst,
        check=False, timeout=count * (interval + wait) + 5,
    )
    return res.returncode == 0


def run_iperf(
    lab: Lab,
    client_ns: str,
    server_ns: str,
    server_ip: str,
    seconds: float,
    udp_size: int | None = None,
    udp_rate: str = "0",
    port: int = IPERF_PORT,
    extra: tuple[str, ...] = (),
) -> dict:
    """One iperf3 run from ``client_ns`` to a one-shot server in ``server_ns``.

    TCP by default; with ``udp_size`` a UDP test with datagrams of that many
    payload bytes at ``udp_rate`` ("0" = as fast as possible).  Returns
    ``{"mode", "seconds", "bits_per_second", "gbps", "retransmits" | "lost_percent",
    "json"}``, where the rate is what the *receiver* got.
    """
    server = lab.popen(
        server_ns, "iperf3", "-s", "-1", "-B", server_ip, "-p", port,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: f"{server_ip}:{port} " in lab.run(server_ns, "ss", "-Hltn").stdout,
            10, 0.05, f"iperf3 server listening on {server_ip}:{port} in {server_ns}",
        )
        cmd = ["iperf3", "-c", server_ip, "-p", port, "-t", seconds, "-J", *extra]
        if udp_size:
            cmd += ["-u", "-l", udp_size, "-b", udp_rate]
        res = lab.run(client_ns, *cmd, check=False, timeout=seconds + 30)
        try:
            data = json.loads(res.stdout)
        except json.JSONDecodeError as exc:
            raise LabError(f"iperf3 gave no JSON (exit {res.returncode}): {res.stderr.strip()}") from exc
        if "error" in data:
            raise LabError(f"iperf3 failed: {data['error']}")
    finally:
        lab.stop(server)
    end = data["end"]
    if udp_size:
        summary = end["sum_received"]
        bps = summary["bits_per_second"]
        result = {"mode": f"udp{udp_size}", "lost_percent": summary.get("lost_percent", 0.0)}
    else:
        bps = end["sum_received"]["bits_per_second"]
        result = {"mode": "tcp", "retransmits": end["sum_sent"].get("retransmits", 0)}
    result.update(seconds=seconds, bits_per_second=bps, gbps=bps / 1e9, json=data)
    return result


class BackgroundPing:
    """A ping running while a test does something else (rekey, failover).

    ``finish()`` waits for it (bounded: ping's own -w deadline) and returns
    (sent, received) from ping's summary line.
    """

    def __init__(self, lab: Lab, ns: str, dst: str, interval: float = 0.05, duration: float = 10.0):
        self.lab = lab
        self.duration = duration
        # an exact count, not a -w deadline: with -w the reply to the last request
        # can be cut off by the deadline and counted lost
        count = max(1, int(duration / interval))
        self.proc = lab.popen(ns, "ping", "-n", "-q", "-i", interval, "-c", count, "-W", 2, dst,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self) -> tuple[int, int]:
        try:
            out, _ = self.proc.communicate(timeout=2 * self.duration + 15)
        except subprocess.TimeoutExpired:
            self.lab.stop(self.proc)
            raise LabError("background ping did not finish in time")
        import re
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
        if not m:
            raise LabError(f"cannot read ping's summary: {out!r}")
        return int(m.group(1)), int(m.group(2))


def assert_few_lost(sent: int, received: int, allowed: int, what: str) -> None:
    """Fail when more than `allowed` of `sent` pings went unanswered.

    Why a budget and not zero: the lab shares a 2-core VM with the other lab
    tests, and a TCP flow (iperf3) that fills the path drops a packet now and
    then by design (congestion control probes until a queue overflows); a
    ping that shares that queue is lost with it. A tunnel that goes down, or a
    loop that stalls for a second, loses far more than the budget.
    """
    assert sent > 0, f"no pings were sent {what}"
    assert sent - received <= allowed, f"lost {sent - received} of {sent} pings {what} (allowed {allowed})"



# A one-shot TCP server: accept one connection, answer "ack:" + what came, print
# the client's address and what it sent.
_TCP_SERVER = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(float(sys.argv[3]))\n"
    "c, addr = s.accept(); c.settimeout(float(sys.argv[3])); data = c.recv(64)\n"
    "c.sendall(b'ack:' + data); c.close()\n"
    "print(addr[0], addr[1], data.decode(), flush=True)\n"
)
_TCP_CLIENT = (
    "import socket, sys\n"
    "src = (sys.argv[3], 0) if sys.argv[3] != '-' else None\n"
    "c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4]),"
    " source_address=src)\n"
    "c.sendall(b'probe'); print(c.recv(64).decode(), c.getsockname()[0], flush=True)\n"
)


def tcp_probe(lab: Lab, server_ns: str, server_ip: str, port: int, client_ns: str,
              client_ip: str | None = None, timeout: float = 10.0) -> dict:
    """Open one TCP connection from ``client_ns`` (from ``client_ip`` if given) to a
    one-shot listener this starts in ``server_ns`` on ``server_ip:port``; an
    exchange of a few bytes each way proves the path both ways.

    Returns ``{"server_saw": (ip, port), "client_got": "ack:probe", "client_ip": ...}``
    (what the server saw as the client's address, what the client read back).
    """
    server = lab.popen(server_ns, sys.executable, "-c", _TCP_SERVER, server_ip, port, timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(
            lambda: f"{server_ip}:{port} " in lab.run(server_ns, "ss", "-Hltn").stdout,
            10, 0.05, f"TCP listener on {server_ip}:{port} in {server_ns}",
        )
        res = lab.run(client_ns, sys.executable, "-c", _TCP_CLIENT, server_ip, port, client_ip or "-",
                      timeout, check=False, timeout=timeout + 5)
        if res.returncode != 0:
            raise LabError(f"TCP connect {client_ip or client_ns} -> {server_ip}:{port} failed: "
                           f"{res.stderr.strip()}")
        out, _ = server.communicate(timeout=timeout + 5)
    finally:
        lab.stop(server)
    got, local = res.stdout.split()
    ip, cport, _ = out.split()
    return {"server_saw": (ip, int(cport)), "client_got": got, "client_ip": local}
