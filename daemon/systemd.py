"""systemd's notify protocol (sd_notify(3)), written by hand: no libsystemd binding.

With `Type=notify` systemd passes $NOTIFY_SOCKET, a Unix datagram socket (a path,
or an abstract-namespace name written with a leading '@'), and waits for
`READY=1` before it calls the service started. Each message is one datagram of
newline-separated `KEY=VALUE` lines. vgw sends:

* `READY=1` once every tunnel's sockets, TUN devices and routes are in place;
* `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC in microseconds, which
  systemd >= 253 requires with RELOADING=1 for `Type=notify-reload`) when SIGHUP
  arrives, then `READY=1` when the new config is applied or refused;
* `STOPPING=1` on SIGTERM;
* `WATCHDOG=1` every half of $WATCHDOG_USEC (sd_watchdog_enabled(3) advises
  pinging at half the interval), from the asyncio loop itself: a loop that hangs
  stops the pings and systemd restarts vgw;
* `STATUS=` a one-line summary, e.g. "2/2 tunnels up", shown by systemctl status.

Without $NOTIFY_SOCKET every call does nothing, so `vgw run` behaves the same
outside systemd. $WATCHDOG_PID, when set, must name this process (sd_watchdog_enabled).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

__all__ = ["Notifier", "watchdog_interval"]

log = logging.getLogger("vgw.systemd")


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # abstract namespace: '@' stands for the NUL
    if value.startswith("/"):
        return value
    return None  # sd_notify accepts nothing else (vsock:... is not for us)


def watchdog_interval(env: dict | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC), or None if the
    watchdog is off or meant for another process."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2


class Notifier:
    """sd_notify for one process. `enabled` is False outside systemd."""

    def __init__(self, env: dict | None = None):
        self._status: str | None = None
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog = watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._task: asyncio.Task | None = None
        self._warned = False
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram; never raises (systemd gone is not vgw's problem)."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                # Non-blocking: a datagram socket's sender blocks when the receiver's
                # queue is full (net.unix.max_dgram_qlen, 10 by default), and the
                # event loop must never wait for systemd.
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                                           | socket.SOCK_NONBLOCK)
            self._sock.sendto("\n".join(lines).encode(), self.address)
            return True
        except BlockingIOError:
            self.dropped += 1  # systemd is behind; the next message says the same or newer
            return False
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        if status:
            self._status = status
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """STATUS=text, unless it is what systemd already shows (the gateway calls
        this after every IPsec or BGP change)."""
        if text == self._status:
            return True
        self._status = text
        return self.notify(f"STATUS={text}")

    def start_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ping WATCHDOG=1 from the event loop every half interval."""
        if self.address is None or self.watchdog is None or self._task is not None:
            return
        self._task = loop.create_task(self._pings(self.watchdog))

    async def _pings(self, interval: float) -> None:
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def tunnels_summary(tunnels) -> str:
    """STATUS= text: how many tunnels are up, e.g. "2/2 tunnels up"."""
    tunnels = list(tunnels)
    up = sum(1 for rt in tunnels if rt.up)
    return f"{up}/{len(tunnels)} tunnels up"
