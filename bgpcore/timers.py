"""BGP's timers as deadlines (RFC 4271 §10): the core never reads a clock; it
is told `now` and answers with the next instant it wants to be called at.

ConnectRetryTimer, HoldTimer and KeepaliveTimer belong to one connection's
FSM; IdleHold belongs to the peer: the back-off before an automatic restart
(RFC 4271 §8.1.1 DampPeerOscillations / IdleHoldTime), doubling with each
failure up to a cap, so that a peer that keeps breaking the session (over the
prefix limit, say) is retried less and less often.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Hashable

LARGE_HOLD = 240.0       # §8.2.2: HoldTimer in OpenSent, "4 minutes is suggested"
MIN_HOLD = 3             # §4.2: the Hold Time is 0 or at least three seconds


class TimerKind(Enum):
    CONNECT_RETRY = "ConnectRetryTimer"
    HOLD = "HoldTimer"
    KEEPALIVE = "KeepaliveTimer"
    IDLE_HOLD = "IdleHoldTimer"


@dataclass(frozen=True, order=True)
class Deadline:
    """When a timer expires; `conn` names the connection (None: the peer's)."""

    at: float
    kind: TimerKind
    conn: Hashable = None


class Timer:
    """One running-or-stopped timer."""

    __slots__ = ("kind", "at")

    def __init__(self, kind: TimerKind):
        self.kind = kind
        self.at: float | None = None

    def start(self, now: float, seconds: float) -> None:
        self.at = now + seconds

    def stop(self) -> None:
        self.at = None

    @property
    def running(self) -> bool:
        return self.at is not None

    def expired(self, now: float) -> bool:
        return self.at is not None and now >= self.at


def negotiate_hold(ours: int, theirs: int) -> int:
    """The smaller of the two Hold Times (§4.2); 0 only if one side said 0."""
    return min(ours, theirs)


def keepalive_interval(hold: int) -> int:
    """One third of the Hold Time (§4.4, §10), whole seconds: 10 s for 30 s;
    0 (none) for a Hold Time of 0."""
    return hold // 3


class IdleHold:
    """The restart back-off: `initial`, doubled per failure, at most `cap`.
    A session that stayed Established for `cap` seconds starts over."""

    def __init__(self, initial: float, cap: float):
        self.initial = initial
        self.cap = cap
        self.failures = 0

    @property
    def delay(self) -> float:
        """initial, initial, 2 x initial, 4 x ... after 0, 1, 2, 3 ... failures."""
        return min(self.initial * (2 ** min(max(self.failures - 1, 0), 32)), self.cap)

    def failed(self) -> None:
        self.failures += 1

    def stable(self, established_for: float) -> None:
        if established_for >= self.cap:
            self.failures = 0
