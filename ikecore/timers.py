"""The timers of an IKE SA and its CHILD SAs: their kinds, and when AWS sets them
(docs/aws.md §1.5-§1.6, §6.4).

Every timer is a deadline, kept by kind: `IkeSa.timers` maps an IkeTimer to the
time it fires, `ChildSa.timers` a ChildTimer. Nothing here fires a timer: the
IKE SA finds the due ones (IkeSa.handle_timer) and runs the action the endpoint
registered for that kind (ikecore.endpoint.SA_HANDLERS; each action lives beside
the exchange it starts).

Rekey: AWS rekeys at lifetime - margin x (1 + fuzz x random), i.e. somewhere in
[lifetime - 2 x margin, lifetime - margin] with the default fuzz of 100 %, for
the phase 1 (IKE SA) and phase 2 (CHILD SA) lifetimes; at the lifetime itself
the SA is deleted (hard expiry). DPD: the first probe after DPD_DELAY of
silence, then DPD_RETRANSMITS resends up to the timeout (ikecore/exchanges/informational.py).
"""

from __future__ import annotations

from enum import Enum


class IkeTimer(Enum):
    HALF_OPEN = "half_open"              # responder: IKE_AUTH must arrive by then (settings.half_open_timeout)
    REKEY = "ike_rekey"                  # rekey the IKE SA (§2.8)
    EXPIRE = "ike_expire"                # phase 1 lifetime: the IKE SA ends
    DPD = "dpd"                          # look for silence: probe, or the peer is dead (§2.4)
    DELETE_REKEYED = "delete_rekeyed"    # the peer did not delete the IKE SA it rekeyed: vgw does
    DELETE_REDUNDANT = "delete_redundant"  # the peer did not delete the loser of a collision (§2.8.1)
    NAT_KEEPALIVE = "nat_keepalive"      # vgw behind a NAT: one keepalive (RFC 3948 §2.3)


class ChildTimer(Enum):
    """When several are due at once they fire in this order."""

    DELETE = "delete"                    # a replaced CHILD SA the peer did not delete in time
    EXPIRE = "expire"                    # phase 2 lifetime: the CHILD SA ends
    REKEY = "rekey"                      # rekey the CHILD SA (§2.8)


# AWS's DPD: "If AWS receives no traffic from a VPN peer for 10 seconds, AWS sends a
# DPD R-U-THERE message" (docs/aws.md §6.4), resent every 10 s.
DPD_DELAY = 10.0
DPD_INTERVAL = 10.0
DPD_RETRANSMITS = 3     # "three successive DPDs"; "DPD timed out after 3 retransmits" (docs/aws.md §3.3, §6.4)
DPD_MIN_GAP = 1.0       # a probe started late gets fewer resends, at least this far apart
# A replaced SA that the initiator of its rekey should delete (§2.8) and did not:
# vgw deletes it itself after this long (vgw's figure).
REKEYED_DELETE_DELAY = 30.0
# §2.25: after TEMPORARY_FAILURE the rekey is retried after a random delay
TEMPORARY_FAILURE_RETRY = (2.0, 6.0)
# a rekey that was refused or failed: try again (vgw's figure, as strongSwan
# retries), still before the hard expiry ends the SA
REFUSED_RETRY = (30.0, 60.0)


def rekey_deadline(sa, lifetime: float, now: float) -> float:
    p = sa.settings
    return now + lifetime - p.rekey_margin * (1.0 + p.rekey_fuzz / 100.0 * sa.uniform())


def arm_ike(sa, now: float) -> None:
    """An IKE SA came up: its rekey, its hard expiry, its first DPD look."""
    p = sa.settings
    sa.timers[IkeTimer.REKEY] = rekey_deadline(sa, p.phase1_lifetime, now)
    sa.timers[IkeTimer.EXPIRE] = now + p.phase1_lifetime
    sa.timers[IkeTimer.DPD] = now + DPD_DELAY


def arm_child(sa, child, now: float) -> None:
    """A CHILD SA was installed: its rekey and its hard expiry."""
    p = sa.settings
    child.timers[ChildTimer.REKEY] = rekey_deadline(sa, p.phase2_lifetime, now)
    child.timers[ChildTimer.EXPIRE] = now + p.phase2_lifetime


def between(sa, now: float, bounds: tuple[float, float]) -> float:
    """A random time `bounds` (low, high) seconds from now."""
    lo, hi = bounds
    return now + lo + (hi - lo) * sa.uniform()


def retry_at(sa, now: float, expire_at: float | None) -> float | None:
    """When to try a failed rekey again (REFUSED_RETRY), still a second before
    the hard expiry; None when that leaves no time."""
    at = between(sa, now, REFUSED_RETRY)
    if expire_at is not None:
        at = min(at, expire_at - 1.0)
    return at if at > now else None


def liveness_delays(started: float, dead_at: float) -> list[float]:
    """A DPD probe's schedule: DPD_RETRANSMITS resends evenly spread from
    `started` to `dead_at`, where the probe gives up; fewer when they would come
    less than DPD_MIN_GAP apart (a probe sent late, close to `dead_at`: at least
    DPD_MIN_GAP to answer). Why not every DPD_INTERVAL: see
    ikecore/exchanges/informational.py."""
    remaining = dead_at - started
    gaps = DPD_RETRANSMITS + 1
    while gaps > 1 and remaining / gaps < DPD_MIN_GAP:
        gaps -= 1
    return [max(remaining / gaps, DPD_MIN_GAP)] * gaps
