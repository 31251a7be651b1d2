"""The queue of IKE_SA_INIT requests: unauthenticated work, bounded and droppable.

Every IKE_SA_INIT request (no responder SPI yet) may cost a DH computation (up to
~15 ms for group 18), and anyone can send them from any address. They wait here
and are handed to the IKE cores only within a share of the event loop's time, so
that a flood never starves ESP or the established IKE SAs (RFC 7296 §2.6 leaves
the defence to the implementation; found by tests/lab/test_hardening.py's
IKE_SA_INIT flood: batches of 32 DH computations held the loop ~0.4 s).

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
    share: float = 0.25           # of the loop's time, at most
    slice: float = 0.002          # seconds of work before yielding to the loop
    burst: float = 0.05           # seconds of work that may be saved up
    batch: int = 32               # requests per slice, at most


class InitQueue:
    """Items with their size in; `drain(work)` calls `work(item)` on the newest
    items while the time budget lasts and says when to drain again."""

    def __init__(self, settings: InitQueueSettings | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings or InitQueueSettings()
        self.clock = clock
        self._items: deque = deque()        # (enqueued at, size, item), oldest left
        self.bytes = 0
        self._budget = self.settings.burst  # seconds of work allowed now (token bucket)
        self._budget_at = clock()
        self.dropped_full = 0               # pushed out by newer requests
        self.dropped_stale = 0              # waited longer than max_age
        self.work_seconds = 0.0

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
        self._budget = min(s.burst, self._budget + (start - self._budget_at) * s.share)
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
        if not self._items:
            return None
        if self._budget > 0:
            return 0.0
        # with the budget spent, wait until `share` of the time has refilled it
        return -self._budget / s.share + 0.001
