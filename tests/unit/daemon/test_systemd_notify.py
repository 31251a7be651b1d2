"""sd_notify written by hand (daemon/systemd.py): datagrams to a path or an
abstract-namespace socket, watchdog interval from the environment."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from daemon.systemd import Notifier, tunnels_summary, watchdog_interval


def _receiver(address):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_notify_to_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    with _receiver(path) as rx:
        n = Notifier({"NOTIFY_SOCKET": path})
        assert n.enabled
        assert n.ready("2/2 tunnels up")
        assert rx.recv(4096) == b"READY=1\nSTATUS=2/2 tunnels up"
        assert n.reloading()
        lines = rx.recv(4096).decode().split("\n")
        assert lines[0] == "RELOADING=1"
        key, _, value = lines[1].partition("=")
        assert key == "MONOTONIC_USEC" and value.isdigit()
        # CLOCK_MONOTONIC in microseconds, now-ish
        assert abs(int(value) / 1e6 - __import__("time").monotonic()) < 5
        assert n.stopping()
        assert rx.recv(4096) == b"STOPPING=1"
        n.close()


def test_notify_to_an_abstract_socket():
    name = f"vgw-test-{os.getpid()}-{id(object())}"
    with _receiver(b"\0" + name.encode()) as rx:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.status("0/2 tunnels up")
        assert rx.recv(4096) == b"STATUS=0/2 tunnels up"
        n.close()


def test_without_notify_socket_nothing_is_sent():
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False
    n.start_watchdog(None)  # no loop needed: nothing starts
    n.close()


def test_a_vanished_systemd_never_raises(tmp_path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.ready() is False
    assert n.stopping() is False


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "junk"}, None),
    ({"WATCHDOG_USEC": "20000000"}, 10.0),
    ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
])
def test_watchdog_interval_is_half_of_watchdog_usec(env, expected):
    assert watchdog_interval(env) == expected


def test_watchdog_interval_for_this_pid():
    assert watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}) == 0.5


def test_watchdog_pings_from_the_event_loop(tmp_path):
    """WATCHDOG=1 again and again from the event loop, never faster than every
    half WATCHDOG_USEC. No speed is asserted (the machine may be busy): the
    loop runs until 4 pings were sent, at most 10 s (a hang guard only), and
    those 4 took at least 3 intervals by the loop's own clock, taken when each
    ping was sent (the receiver may read late, several at once, on a busy
    machine)."""
    path = str(tmp_path / "notify")
    with _receiver(path) as rx:
        rx.setblocking(False)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # ping every 50 ms
        sent: list[float] = []
        send = n.notify

        async def main():
            loop = asyncio.get_running_loop()

            def notify(*lines):
                if lines == ("WATCHDOG=1",):
                    sent.append(loop.time())
                return send(*lines)
            n.notify = notify
            n.start_watchdog(loop)
            deadline = loop.time() + 10
            while len(sent) < 4 and loop.time() < deadline:
                await asyncio.sleep(0.005)
            n.close()

        asyncio.run(main())
        pings = []
        while True:
            try:
                pings.append(rx.recv(4096))
            except BlockingIOError:
                break
        assert pings[:4] == [b"WATCHDOG=1"] * 4 and len(sent) >= 4
        # the first goes at once; 3 more need 3 intervals of 50 ms (less the
        # loop's clock resolution: asyncio may run a timer up to it early)
        assert sent[3] - sent[0] >= 3 * 0.05 - 0.01, sent


def test_status_summary_counts_tunnels_up():
    class T:
        def __init__(self, up):
            self.up = up
    assert tunnels_summary([T(True), T(False)]) == "1/2 tunnels up"
    assert tunnels_summary([]) == "0/0 tunnels up"


def test_a_full_queue_never_blocks_the_caller(tmp_path):
    """The receiver reads nothing: sends fail fast instead of blocking the event loop."""
    import time
    path = str(tmp_path / "notify")
    with _receiver(path):
        n = Notifier({"NOTIFY_SOCKET": path})
        start = time.monotonic()
        results = [n.notify("WATCHDOG=1") for _ in range(500)]
        # a blocking send would hang here for good (nobody reads); 500 failing
        # non-blocking sends take milliseconds: 10 s tells the two apart on any
        # machine, however busy (a bound, not a speed goal)
        assert time.monotonic() - start < 10
        assert results[0] is True and results[-1] is False and n.dropped > 0
        n.close()
