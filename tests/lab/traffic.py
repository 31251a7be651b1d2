"""Traffic generators for lab tests and benchmarks: ping and iperf3 between namespaces."""

from __future__ import annotations

import json
import subprocess

from tests.lab.netns import Lab, LabError, wait_until

IPERF_PORT = 5201


def ping(lab: Lab, ns: str, dst: str, count: int = 3, interval: float = 0.2, wait: float = 1.0) -> bool:
    """True if all ``count`` echo requests from ``ns`` to ``dst`` were answered."""
    res = lab.run(
        ns, "ping", "-n", "-q", "-c", count, "-i", interval, "-W", wait, dst,
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

