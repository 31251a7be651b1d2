"""The timers of an established tunnel, as AWS sets them (aws-facts.md §1.5-1.6, §6.4).

Rekey: AWS rekeys at lifetime - margin x (1 + fuzz x random), i.e. somewhere in
[lifetime - 2 x margin, lifetime - margin] with the default fuzz of 100 %, for
the phase 1 (IKE SA) and phase 2 (CHILD SA) lifetimes; at the lifetime itself
the SA is deleted (hard expiry).

DPD: "If AWS receives no traffic from a VPN peer for 10 seconds, AWS sends a DPD
R-U-THERE message ... If the VPN peer does not respond to three successive DPDs,
the VPN peer is considered dead" (docs/aws.md §6.4) - in IKEv2 an empty
INFORMATIONAL. The timeout counts from the last traffic: "A DPD timeout of 40
seconds means that the VPN endpoint will consider the peer dead 30 seconds after
the first failed keep-alive" (§1.5: 10 s of silence + 30 s), so the peer is dead
at last traffic + dpd_timeout_seconds, 30 by default. AWS then logs "AWS tunnel
DPD timed out after 3 retransmits" (§3.3) with its defaults. Three resends
between the probe (last traffic + 10 s) and the timeout (last traffic + 30 s)
cannot be 10 s apart, and AWS does not document their spacing (the "DPD
Interval: 10, DPD Retries: 3" of its generated configurations is advice for the
customer gateway, §6.2), so vgw spreads DPD_RETRANSMITS resends evenly over that
time: with 30 s at 15, 20 and 25 s, dead at 30 s; with 40 s every 7.5 s. The
peer is thus dead after three successive unanswered DPDs and at the documented
time, and the line carries the resends really sent. Peers behind a NAT get
periodic DPDs whatever the traffic ("periodic DPDs for peers using NAT"): a
probe DPD_INTERVAL after the last answer.
Then dpd_timeout_action: clear (delete), none (keep), restart (the tunnel
initiates again; see IkeTunnel). The peer is dead at that time whatever vgw has
outstanding: a request of its own (a rekey, a DELETE) takes the probe's place in
the window of one (RFC 7296 §2.3) and its retransmissions probe, but its own
give-up (~165 s) must not decide, or the action would be "timeout", not "dpd".
With none the SA stays: the outstanding request goes on every DPD_INTERVAL
(the same message ID, so the windows of both ends still agree when the peer
comes back, RFC 7296 §2.1) and the timeout is logged once per outage.

All timers are deadlines (sa.timers, ChildSa.rekey_at/expire_at/delete_at).
"""

from __future__ import annotations

from ..events import DpdTimeout

DPD_DELAY = 10.0
DPD_INTERVAL = 10.0
DPD_RETRANSMITS = 3     # "three successive DPDs"; "DPD timed out after 3 retransmits"
DPD_MIN_GAP = 1.0       # a probe started late gets fewer resends, at least this far apart


def rekey_deadline(sa, lifetime: float, now: float) -> float:
    p = sa.policy
    return now + lifetime - p.rekey_margin * (1.0 + p.rekey_fuzz / 100.0 * sa.uniform())


def on_ike_established(sa, now: float) -> None:
    p = sa.policy
    sa.timers["ike_rekey"] = rekey_deadline(sa, p.phase1_lifetime, now)
    sa.timers["ike_expire"] = now + p.phase1_lifetime
    sa.timers["dpd"] = now + DPD_DELAY


def on_child_installed(sa, child, now: float) -> None:
    p = sa.policy
    child.rekey_at = rekey_deadline(sa, p.phase2_lifetime, now)
    child.expire_at = now + p.phase2_lifetime


def liveness_delays(started: float, dead_at: float) -> list[float]:
    """DPD_RETRANSMITS resends evenly spread from `started` to `dead_at`, where
    the probe gives up; fewer when they would come less than DPD_MIN_GAP apart
    (a probe sent late, close to `dead_at`: at least DPD_MIN_GAP to answer)."""
    remaining = dead_at - started
    gaps = DPD_RETRANSMITS + 1
    while gaps > 1 and remaining / gaps < DPD_MIN_GAP:
        gaps -= 1
    return [max(remaining / gaps, DPD_MIN_GAP)] * gaps


def fire(sa, name: str, now: float) -> None:
    from ..sa import State
    from .ike_rekey import IkeRekey
    from .informational import DeleteIke
    if name == "half_open":
        sa.log(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: "
               f"{sa.remote[0]}", "warning")
        sa.fail("IKE_AUTH did not arrive in time", "half-open")
    elif name == "ike_rekey":
        if sa.state == State.ESTABLISHED and sa.successor is None:
            sa.start(IkeRekey(), now)
    elif name == "ike_expire":
        if sa.state == State.ESTABLISHED:
            sa.log(f"AWS tunnel IKE_SA with cgw: {sa.remote[0]} reached its phase 1 lifetime", "warning")
            if sa.pending is None:
                sa.start(DeleteIke("expired"), now, front=True)
            else:
                # Hard lifetime: the SA ends now (RFC 4301 §4.4.2.1); no DELETE can
                # pass an unanswered request (window of one, RFC 7296 §2.3)
                sa.fail("reached its phase 1 lifetime", "expired")
    elif name == "delete_rekeyed":
        if sa.state == State.ESTABLISHED and sa.successor is not None:
            sa.start(DeleteIke("rekeyed"), now)   # the peer did not delete it
    elif name == "delete_redundant":
        if sa.state == State.ESTABLISHED and sa.redundant:
            sa.start(DeleteIke("redundant"), now)   # the peer did not delete it
    elif name == "dpd":
        dpd_check(sa, now)


def fire_child(sa, child, now: float) -> None:
    from .child_rekey import ChildRekey
    from .informational import DeleteChild, remove_child
    if child.delete_at is not None and now >= child.delete_at:
        child.delete_at = None
        if child.state == "REKEYED":
            sa.start(DeleteChild(child.spi_in, "rekeyed"), now)
    if child.expire_at is not None and now >= child.expire_at:
        child.expire_at = child.rekey_at = None
        if child.state != "DELETING":
            sa.log(f"AWS tunnel Phase 2 SA with SPI: {child.spi_in:08x} reached its lifetime", "warning")
            # Hard lifetime: the SA ends now (RFC 4301 §4.4.2.1), even if the DELETE
            # must wait for the window (a rekey of it may be unanswered, RFC 7296 §2.3)
            remove_child(sa, child.spi_in, "expired")
            sa.start(DeleteChild(child.spi_in, "expired", installed=False), now, front=True)
    if child.rekey_at is not None and now >= child.rekey_at:
        child.rekey_at = None
        if child.state == "INSTALLED":
            sa.start(ChildRekey(child.spi_in), now)


def dpd_check(sa, now: float) -> None:
    """The "dpd" timer: probe after DPD_DELAY of silence, apply the action at
    last traffic + dpd_timeout. Deadlines are compared as they were computed
    (`now < last + delay`, never `now - last < delay`: in floating point the
    difference can fall short at the deadline itself and re-arm the timer at
    the same instant forever)."""
    from ..sa import State
    from .informational import Liveness
    if sa.state != State.ESTABLISHED:
        return
    dead_at = sa.last_inbound + sa.policy.dpd_timeout
    if sa.pending is not None and now >= dead_at:
        # silent for dpd_timeout while our request is out (a probe, or a rekey
        # or DELETE in the probe's place): dead, whatever the request is
        on_dpd_timeout(sa, now, sa.pending.attempt)
        return
    if not sa.peer_behind_nat and now < sa.last_inbound + DPD_DELAY:
        sa.timers["dpd"] = sa.last_inbound + DPD_DELAY
        return
    if sa.pending is not None or sa.queue:
        # the window is busy (RFC 7296 §2.3): the outstanding request probes in
        # the probe's place; look again in DPD_INTERVAL, or when the peer is dead
        sa.timers["dpd"] = dead_at if now < dead_at < now + DPD_INTERVAL else now + DPD_INTERVAL
        return
    sa.start(Liveness(dead_at), now)
    sa.timers["dpd"] = now + DPD_INTERVAL


def on_liveness_answered(sa, now: float) -> None:
    sa.timers["dpd"] = now + DPD_DELAY


def on_dpd_timeout(sa, now: float, retransmits: int) -> None:
    """No traffic from the peer for dpd_timeout: the DPD action (aws-facts.md §1.5).

    none keeps the SA and its CHILD SAs; the request that found the peer silent
    goes on every DPD_INTERVAL without giving up (a Liveness that gave up is
    sent again, with the same message ID), so the outage is logged once: the
    next timeout is logged only after the peer answered in between."""
    from .informational import Liveness
    p = sa.pending
    if p is not None and p.exchange.kept:
        sa.timers["dpd"] = now + DPD_INTERVAL   # this outage was logged already
        return
    sa.log(f"AWS tunnel DPD timed out after {retransmits} retransmits", "error")
    sa.emit(DpdTimeout(sa.policy.dpd_action))
    if sa.policy.dpd_action != "none":
        sa.fail("peer is not responsive", "dpd")
        return
    sa.log("AWS tunnel keeps the tunnel (dpd_timeout_action none)", "warning")
    if p is None:
        sa.start(Liveness(kept=True), now, front=True)
    else:
        p.exchange.kept = True
        p.deadline = min(p.deadline, now + DPD_INTERVAL)
    sa.timers["dpd"] = now + DPD_INTERVAL
