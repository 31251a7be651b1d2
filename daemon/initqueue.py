"""The queue of IKE_SA_INIT requests: unauthenticated work, bounded and droppable.

Every IKE_SA_INIT request (no responder SPI yet) may cost a DH computation (up to
~30 ms for group 18, measured in README's bench.dh figures), and anyone can send them from any address. They wait here
and are handed to the IKE cores only within a share of the event loop's time, so
that a flood never starves ESP or the established IKE SAs (RFC 7296 §2.6 leaves
the defence to the implementation; found by tests/lab/test_hardening.py's
IKE_SA_INIT flood: batches of 32 DH computations held the loop ~0.4 s).

The share is for a loop with other work to do. When nothing else ran between two
drains (the loop's thread used less than half of that time on the CPU: it slept
in epoll), the queue may use `idle_share` of the time instead: a burst of genuine
customer gateways (a daemon restart that brings 200 tunnels up at once) is
served at nearly full speed, instead of at a quarter of it while the loop idles
and the requests go stale; the first ESP or IKE work that shows up between two
drains brings the share back down.

Newest first, and stale requests dropped: a request that has waited
`max_age` would be answered after its sender's first retransmission timer (1-4 s
in strongSwan) anyway, so serving the newest is what keeps a real customer
gateway's request - or its retransmission - from waiting behind a flood; and
when a flood stops, the daemon is back to full speed within `max_age` instead of
working off a full queue at a quarter of its time for seconds.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable


@dataclass
class InitQueueSettings:
    max_items: int = 1024
    max_bytes: int = 4 << 20      # a datagram can be 64 KB
    max_age: float = 2.0          # seconds a request may wait
    share: float = 0.25           # of the loop's time, at most, while it has other work
    idle_share: float = 0.9       # ... and while it has none (see the module docstring)
    busy: float = 0.5             # CPU / wall time between drains above which the loop has other work
    slice: float = 0.002          # seconds of work before yielding to the loop
    burst: float = 0.05           # seconds of work that may be saved up
    batch: int = 32               # requests per slice, at most


class InitQueue:
    """Items with their size in; `drain(work)` calls `work(item)` on the newest
    items while the time budget lasts and says when to drain again."""

    def __init__(self, settings: InitQueueSettings | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 cpu_clock: Callable[[], float] | None = None):
        """`cpu_clock`: the CPU time of the thread that runs the loop (the gateway
        passes time.thread_time); without one, all time between drains counts as
        the loop's other work, and the queue keeps to `share`."""
        self.settings = settings or InitQueueSettings()
        self.clock = clock
        self.cpu_clock = cpu_clock or clock
        self._cpu_at = self.cpu_clock()
        self._items: deque = deque()        # (enqueued at, size, item), oldest left
        self.bytes = 0
        self._budget = self.settings.burst  # seconds of work allowed now (token bucket)
        self._budget_at = clock()
        self.dropped_full = 0               # pushed out by newer requests
        self.dropped_stale = 0              # waited longer than max_age
        self.work_seconds = 0.0
        self._last_idle = False

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item, size: int) -> None:
        """Queue `item`; when full, the oldest requests make room (newest first)."""
        s = self.settings
        if size > s.max_bytes:
            self.dropped_full += 1
            return
        while self._items and (len(self._items) >= s.max_items or self.bytes + size > s.max_bytes):
            self._pop_oldest()
            self.dropped_full += 1
        self._items.append((self.clock(), size, item))
        self.bytes += size

    def _pop_oldest(self) -> None:
        _, size, _ = self._items.popleft()
        self.bytes -= size

    def drain(self, work: Callable[[object], None]) -> float | None:
        """Serve the newest requests within the budget. Returns None when the
        queue is empty, else the delay before the next drain (0: as soon as the
        loop has served its other readers)."""
        s = self.settings
        start = self.clock()
        rate = self._refill_rate(start - self._budget_at, self.cpu_clock() - self._cpu_at)
        self._budget = min(s.burst, self._budget + (start - self._budget_at) * rate)
        now = start
        for _ in range(s.batch):
            while self._items and self._items[0][0] < now - s.max_age:
                self._pop_oldest()
                self.dropped_stale += 1
            if not self._items or self._budget <= 0 or now - start >= s.slice:
                break
            _, size, item = self._items.pop()
            self.bytes -= size
            try:
                work(item)
            finally:
                done = self.clock()
                self._budget -= done - now
                self.work_seconds += done - now
                now = done
        self._budget_at = now
        self._cpu_at = self.cpu_clock()
        if not self._items:
            return None
        if self._budget > 0:
            return 0.0
        # with the budget spent, wait until the time has refilled it: at the rate
        # the loop's last state gives (the next drain measures the wait itself)
        return -self._budget / self._rate() + 0.0002

    def _refill_rate(self, wall: float, cpu: float) -> float:
        """Note whether the loop's thread spent less than `busy` of the `wall`
        seconds since the last drain on the CPU (idle), and return the rate."""
        if wall > 0:
            self._last_idle = cpu < self.settings.busy * wall
        return self._rate()

    def _rate(self) -> float:
        """Budget seconds per second of wall time between drains. The budget does
        not refill while the queue works, so x/(1-x) makes the work x of the time."""
        x = self.settings.idle_share if self._last_idle else self.settings.share
        return x / (1.0 - x)
