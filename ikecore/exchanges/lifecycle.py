"""Timers of an established SA: lifetimes, DPD (AWS tunnel options, aws-facts.md §1.5-1.6).

Hooks called by the exchanges when SAs come up; `fire` runs when a named timer
of the SA expires. Timers are deadlines in sa.timers, never sleeps.
"""

from __future__ import annotations


def on_ike_established(sa, now: float) -> None:
    pass


def on_child_installed(sa, child, now: float) -> None:
    pass


def on_dpd_timeout(sa, now: float) -> None:
    sa.log(f"AWS tunnel DPD timed out after {sa.policy.retransmit.tries} retransmits", "error")
    sa.fail("peer is not responsive", "dpd")


def fire(sa, name: str, now: float) -> None:
    if name == "half_open":
        sa.log(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: "
               f"{sa.remote[0]}", "warning")
        sa.fail("IKE_AUTH did not arrive in time", "half-open")
