"""What happened to one tunnel: counts and times of its SA events.

The IKE core reports events (ikecore/events.py); the tunnel (daemon/tunnel.py) hands each
one to `TunnelHistory.record`. Metrics (daemon/metrics.py) and `vgw status` read
the result at scrape/status time, so nothing here runs on the data path.

Counted: IKE SAs and CHILD SAs that came up, rekeys (a ChildSaUp that replaces
another SA; an IkeSaUp marked rekeyed), IKE SAs that went down by reason
(IkeSaDown.reason), and DPD timeouts (DpdTimeout, AWS's "AWS tunnel DPD timed
out after N retransmits", docs/aws.md §3.3) whatever the action: with
dpd_timeout_action none the SA stays up and only this count shows the outage.
Times are wall-clock (time.time()), taken when the event arrives, so that people
and scripts can read them.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from ikecore.events import ChildSaDown, ChildSaUp, DpdTimeout, IkeSaDown, IkeSaUp

__all__ = ["TunnelHistory"]


@dataclass
class TunnelHistory:
    ike_sa_up: int = 0
    ike_rekeys: int = 0
    child_sa_up: int = 0
    child_rekeys: int = 0
    child_sa_down: int = 0
    ike_sa_down: Counter = field(default_factory=Counter)   # by IkeSaDown.reason
    dpd_timeouts: int = 0                                    # DpdTimeout events, any action
    last_ike_rekey: float | None = None                      # wall clock
    last_child_rekey: float | None = None
    # when each live SA came up (wall clock), by IKE SPIs (hex) / inbound CHILD SPI
    ike_up_at: dict = field(default_factory=dict)
    child_up_at: dict = field(default_factory=dict)

    def record(self, ev, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if isinstance(ev, IkeSaUp):
            self.ike_sa_up += 1
            self.ike_up_at[(ev.spi_i.hex(), ev.spi_r.hex())] = now
            if ev.rekeyed:
                self.ike_rekeys += 1
                self.last_ike_rekey = now
        elif isinstance(ev, IkeSaDown):
            self.ike_sa_down[ev.reason] += 1
            self.ike_up_at.pop((ev.spi_i.hex(), ev.spi_r.hex()), None)
        elif isinstance(ev, ChildSaUp):
            self.child_sa_up += 1
            self.child_up_at[ev.spi_in] = now
            if ev.replaces is not None:
                self.child_rekeys += 1
                self.last_child_rekey = now
        elif isinstance(ev, ChildSaDown):
            self.child_sa_down += 1
            self.child_up_at.pop(ev.spi_in, None)
        elif isinstance(ev, DpdTimeout):
            self.dpd_timeouts += 1

    def status(self, core_status: dict) -> dict:
        """For `vgw status --json` (key "history"): counts, and since when the current
        IKE SA and the newest current CHILD SA are up (wall clock, None if unknown)."""
        ike = core_status.get("ike") or {}
        ike_since = self.ike_up_at.get((ike.get("spi_i"), ike.get("spi_r")))
        child_since = [self.child_up_at.get(int(c["spi_in"], 16)) for c in core_status.get("children") or []
                       if isinstance(c.get("spi_in"), str)]
        child_since = [t for t in child_since if t is not None]
        return {
            "ike_sa_up_since": ike_since,
            "child_sa_up_since": max(child_since) if child_since else None,
            "ike_sa_up": self.ike_sa_up,
            "child_sa_up": self.child_sa_up,
            "ike_rekeys": self.ike_rekeys,
            "child_rekeys": self.child_rekeys,
            "last_ike_rekey": self.last_ike_rekey,
            "last_child_rekey": self.last_child_rekey,
            "ike_sa_down": dict(self.ike_sa_down),
            "dpd_timeouts": self.dpd_timeouts,
        }
