"""Rate-limited logging: unauthenticated noise must not flood stdout or the journal.

Anyone can make vgw log: an IKE_SA_INIT with no acceptable proposal logs "No
Proposal Match Found by AWS", a half-open SA that times out logs a warning, a
spoofed source vgw cannot reach logs a send error. At thousands of packets a
second that would bury everything else (docs/design.md §8: bad input is dropped,
counted and logged *rate-limited*).

`LogLimiter` lets through at most `lines` lines per key per `interval`
seconds (a fixed window that starts with the key's first line), counts the
rest, and reports them once the window is over as one summary:
"... 1234 similar lines suppressed in 60 s: <template>". Keys are message
templates: `template()` replaces what varies between two lines of the same
kind (numbers, addresses, SPIs) with '#'. Legitimate events stay far below
the limit (a tunnel logs a few lines per rekey, rekeys come every hours), so
they are never suppressed.

The number of keys is bounded (`max_keys`): when full, windows that ended are
dropped, and a line of yet another kind shares one overflow key. Memory stays
bounded whatever the input.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Callable, Hashable

__all__ = ["LogLimiter", "LimitedLog", "template", "LINES", "INTERVAL", "OVERFLOW"]

LINES = 20            # lines of one kind per window
INTERVAL = 60.0       # seconds
MAX_KEYS = 256
OVERFLOW = "(other lines)"

# a run of hex digits, dots, colons or slashes with at least one digit:
# 42, 198.51.100.10, 10.0.0.0/16, 0x1f2e, c0ffee12 (an SPI), 2001:db8::1
_VARYING = re.compile(r"(?:0x)?[0-9A-Fa-f.:/]*[0-9][0-9A-Fa-f.:/]*")


def _hash(m: re.Match) -> str:
    run = m.group(0)
    return "#" + run[len(run.rstrip(".:/")):]     # "phase 1: x" stays "phase #: x"


def template(text: str) -> str:
    """The line with what varies between lines of one kind replaced by '#'."""
    return _VARYING.sub(_hash, text)


class _Window:
    __slots__ = ("start", "count", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.suppressed = 0


class LogLimiter:
    def __init__(self, lines: int = LINES, interval: float = INTERVAL, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lines = lines
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self.suppressed_total = 0
        self._windows: dict[Hashable, _Window] = {}

    def admit(self, key: Hashable) -> tuple[bool, int, Hashable]:
        """Should a line of kind `key` be written now? Returns (write, K, key):
        K lines of this kind were suppressed in a window that has just ended
        (write their summary first), and the key they were counted under
        (`key`, or OVERFLOW when too many kinds are being tracked)."""
        now = self.clock()
        w = self._windows.get(key)
        if w is None:
            if len(self._windows) >= self.max_keys - 1:     # one place kept for OVERFLOW
                self._prune(now)
            if len(self._windows) >= self.max_keys - 1:
                key = OVERFLOW
                w = self._windows.get(key)
            if w is None:
                w = self._windows[key] = _Window(now)
        reported = 0
        if now - w.start >= self.interval:
            reported = w.suppressed
            w.start, w.count, w.suppressed = now, 0, 0
        if w.count < self.lines:
            w.count += 1
            return True, reported, key
        w.suppressed += 1
        self.suppressed_total += 1
        return False, reported, key

    def expired(self) -> list[tuple[Hashable, int]]:
        """Windows that are over and suppressed lines: (key, K) for each summary
        now due; those windows are forgotten (a timer calls this, so that the
        summary of a burst that stopped is not held back until the next line)."""
        now = self.clock()
        due = []
        for key, w in list(self._windows.items()):
            if now - w.start >= self.interval:
                if w.suppressed:
                    due.append((key, w.suppressed))
                del self._windows[key]
        return due

    def next_expiry(self) -> float | None:
        """When (clock time) the earliest window with suppressed lines ends."""
        ends = [w.start + self.interval for w in self._windows.values() if w.suppressed]
        return min(ends) if ends else None

    def _prune(self, now: float) -> None:
        for key, w in list(self._windows.items()):
            if now - w.start >= self.interval and not w.suppressed:
                del self._windows[key]

    def summary(self, count: int, text: str) -> str:
        """The line that reports `count` suppressed lines like `text`."""
        return f"... {count} similar lines suppressed in {self.interval:g} s: {text}"


class LimitedLog:
    """Lines written through a LogLimiter, and the timer that writes the summary
    of suppressed lines when their window ends, even if no line of that kind
    follows (a burst that stopped is still reported, a minute late at most).

    `emit(level, text, **kw)` writes one line; `timer()` returns the event
    loop's call_later, or None while there is none (then the summary waits for
    the next line of its kind).
    """

    def __init__(self, emit: Callable[..., None], timer: Callable[[], Callable | None],
                 limiter: LogLimiter | None = None, overflow_level=logging.WARNING) -> None:
        self.emit = emit
        self.timer = timer
        self.limiter = limiter if limiter is not None else LogLimiter()
        self.overflow_level = overflow_level
        self._armed = False

    def log(self, level, text: str, **kw) -> None:
        write, suppressed, key = self.limiter.admit((level, template(text)))
        if suppressed:
            self._summary(key, suppressed)
        if write:
            self.emit(level, text, **kw)
        elif not self._armed:
            self._arm()

    def flush(self) -> None:
        """Write the summaries now due (the timer's callback)."""
        self._armed = False
        for key, count in self.limiter.expired():
            self._summary(key, count)
        self._arm()

    def _arm(self) -> None:
        due = self.limiter.next_expiry()
        call_later = self.timer()
        if due is not None and call_later is not None:
            self._armed = True
            call_later(max(0.0, due - self.limiter.clock()) + 0.01, self.flush)

    def _summary(self, key: Hashable, count: int) -> None:
        level, text = key if key != OVERFLOW else (self.overflow_level, OVERFLOW)
        self.emit(level, self.limiter.summary(count, text))
