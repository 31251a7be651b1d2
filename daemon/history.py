"""What happened to one tunnel: counts and times of its SA events.

The IKE core reports events (ikecore/events.py); the tunnel's runtime hands each
one to `TunnelHistory.record`. Metrics (daemon/metrics.py) and `vgw status` read
the result at scrape/status time, so nothing here runs on the data path.

Counted: IKE SAs and CHILD SAs that came up, rekeys (a ChildSaUp that replaces
another SA; an IkeSaUp marked rekeyed), IKE SAs that went down by reason
(IkeSaDown.reason: "dpd" is a DPD timeout, AWS's "AWS tunnel DPD timed out
after N retransmits", aws-facts §3.3). Times are wall-clock (time.time()) so
that people and scripts can read them; the core's own times are the event
loop's monotonic clock and are converted here.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from ikecore.events import ChildSaDown, ChildSaUp, IkeSaDown, IkeSaUp

__all__ = ["TunnelHistory", "wall_time"]


def wall_time(monotonic_t: float | None, now_wall: float | None = None,
              now_mono: float | None = None) -> float | None:
    """A time.monotonic() instant (the asyncio loop's clock) as wall-clock time."""
    if monotonic_t is None:
        return None
    now_wall = time.time() if now_wall is None else now_wall
    now_mono = time.monotonic() if now_mono is None else now_mono
    return now_wall - (now_mono - monotonic_t)


@dataclass
class TunnelHistory:
    ike_sa_up: int = 0
    ike_rekeys: int = 0
    child_sa_up: int = 0
    child_rekeys: int = 0
    child_sa_down: int = 0
    ike_sa_down: Counter = field(default_factory=Counter)   # by IkeSaDown.reason
    last_ike_rekey: float | None = None                      # wall clock
    last_child_rekey: float | None = None

    def record(self, ev, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if isinstance(ev, IkeSaUp):
            self.ike_sa_up += 1
            if ev.rekeyed:
                self.ike_rekeys += 1
                self.last_ike_rekey = now
        elif isinstance(ev, IkeSaDown):
            self.ike_sa_down[ev.reason] += 1
        elif isinstance(ev, ChildSaUp):
            self.child_sa_up += 1
            if ev.replaces is not None:
                self.child_rekeys += 1
                self.last_child_rekey = now
        elif isinstance(ev, ChildSaDown):
            self.child_sa_down += 1

    @property
    def dpd_timeouts(self) -> int:
        return self.ike_sa_down.get("dpd", 0)

    def status(self, core_status: dict) -> dict:
        """For `vgw status --json` (key "history"): counts, and when the current SAs
        came up, from the core's status (monotonic times) as wall-clock times."""
        ike = core_status.get("ike") or {}
        children = core_status.get("children") or []
        created = [c.get("created") for c in children if c.get("created") is not None]
        return {
            "ike_sa_up_since": wall_time(ike.get("established_at")),
            "child_sa_up_since": wall_time(max(created)) if created else None,
            "ike_sa_up": self.ike_sa_up,
            "child_sa_up": self.child_sa_up,
            "ike_rekeys": self.ike_rekeys,
            "child_rekeys": self.child_rekeys,
            "last_ike_rekey": self.last_ike_rekey,
            "last_child_rekey": self.last_child_rekey,
            "ike_sa_down": dict(self.ike_sa_down),
            "dpd_timeouts": self.dpd_timeouts,
        }
