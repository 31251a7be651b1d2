"""INFORMATIONAL (RFC 7296 §1.4, §1.5): DELETE, liveness checks (DPD) and notifies,
both roles, and the timers that start them.

AWS's log wording for deletes comes from docs/aws.md §3.3. State changes: an
IKE SA -> DELETING while our DELETE is out, -> DEAD when it is answered (or the
peer's is); a CHILD SA -> DELETING, then removed (ikecore.state, §1.4.1).

DPD (docs/aws.md §1.5, §6.4): "If AWS receives no traffic from a VPN peer for
10 seconds, AWS sends a DPD R-U-THERE message ... If the VPN peer does not
respond to three successive DPDs, the VPN peer is considered dead" - in IKEv2 an
empty INFORMATIONAL. The timeout counts from the last traffic: "A DPD timeout
of 40 seconds means that the VPN endpoint will consider the peer dead 30 seconds
after the first failed keep-alive" (§1.5: 10 s of silence + 30 s), so the peer
is dead at last traffic + dpd_timeout_seconds, 30 by default. AWS then logs "AWS
tunnel DPD timed out after 3 retransmits" (§3.3) with its defaults. Three
resends between the probe (last traffic + 10 s) and the timeout (last traffic +
30 s) cannot be 10 s apart, and AWS does not document their spacing (the "DPD
Interval: 10, DPD Retries: 3" of its generated configurations is advice for the
customer gateway, §6.2), so vgw spreads DPD_RETRANSMITS resends evenly over that
time (ikecore.timers.liveness_delays): with 30 s at 15, 20 and 25 s, dead at
30 s; with 40 s every 7.5 s. The peer is thus dead after three successive
unanswered DPDs and at the documented time, and the line carries the resends
really sent. Peers behind a NAT get periodic DPDs whatever the traffic
("periodic DPDs for peers using NAT"): a probe DPD_INTERVAL after the last answer.
Then dpd_timeout_action: clear (delete), none (keep),
restart (the endpoint initiates again; see IkeEndpoint). The peer is dead at
that time whatever vgw has outstanding: a request of its own (a rekey, a
DELETE) takes the probe's place in the window of one (RFC 7296 §2.3) and its
retransmissions probe, but its own give-up (~165 s) must not decide, or the
action would be "timeout", not "dpd". With none the SA stays: the outstanding
request goes on every DPD_INTERVAL (the same message ID, so the windows of both
ends still agree when the peer comes back, RFC 7296 §2.1) and the timeout is
logged once per outage.
"""

from __future__ import annotations

import struct

from ..constants import ExchangeType, NotifyType, ProtocolId
from ..events import DpdTimeout
from ..payloads import DeletePayload, NotifyPayload
from ..sa_operations import hand_over, holder, remove_child
from ..state import ChildState, IkeState, transition
from ..timers import DPD_DELAY, DPD_INTERVAL, ChildTimer, IkeTimer, liveness_delays
from .base import Exchange


class DeleteIke(Exchange):
    """Delete the whole IKE SA (and with it every CHILD SA, §1.4.1)."""

    TYPE = ExchangeType.INFORMATIONAL

    def __init__(self, reason: str = "deleted"):
        self.reason = reason

    def build(self, sa, now):
        transition(sa, IkeState.DELETING)
        sa.log(f"AWS tunnel is deleting IKE_SA with cgw: {sa.remote[0]}")
        return [DeletePayload(ProtocolId.IKE)]

    def process(self, sa, msg, now):
        sa.fail("deleted by vgw", self.reason)
        return False

    def timed_out(self, sa, now):
        sa.fail("deleted by vgw (no answer to DELETE)", self.reason)


class DeleteChild(Exchange):
    """Delete one CHILD SA; the peer answers with its own half (§1.4.1)."""

    TYPE = ExchangeType.INFORMATIONAL
    moves_with_child = True

    def __init__(self, spi_in: int, reason: str = "deleted", installed: bool = True):
        self.spi_in = spi_in
        self.reason = reason
        # installed=False: a CHILD SA the peer created but vgw refused (e.g. a bad
        # IKE_AUTH answer): only the peer has it, and only the DELETE is left to send
        self.installed = installed

    def build(self, sa, now):
        if not self.installed:
            sa.log(f"AWS tunnel is sending DELETE for Phase 2 SA with SPI: {self.spi_in:08x}")
            return [DeletePayload(ProtocolId.ESP, [struct.pack("!I", self.spi_in)])]
        child = sa.children.get(self.spi_in)
        if child is None:
            return None
        if child.state is not ChildState.DELETING:   # DELETING: ours again after an IKE rekey (§2.18)
            transition(child, ChildState.DELETING)
        sa.log(f"AWS tunnel is sending DELETE for Phase 2 SA with SPI: {child.spi_in:08x}")
        return [DeletePayload(ProtocolId.ESP, [struct.pack("!I", self.spi_in)])]

    def process(self, sa, msg, now):
        remove_child(holder(sa, self.spi_in), self.spi_in, self.reason)
        return False

    def timed_out(self, sa, now):
        remove_child(holder(sa, self.spi_in), self.spi_in, self.reason)
        super().timed_out(sa, now)


class Liveness(Exchange):
    """An empty INFORMATIONAL request: AWS's DPD "R-U-THERE" (docs/aws.md §6.4),
    resent every DPD_INTERVAL until the peer is dead at `dead_at`; `kept`: the
    probe of dpd_timeout_action none after the timeout, resent without end."""

    TYPE = ExchangeType.INFORMATIONAL

    def __init__(self, dead_at: float | None = None, kept: bool = False):
        self.dead_at = dead_at     # last traffic + dpd_timeout (dpd_check)
        self.kept = kept
        self.schedule = None

    def build(self, sa, now):
        dead_at = self.dead_at if self.dead_at is not None else now + sa.settings.dpd_timeout
        self.schedule = liveness_delays(now, dead_at)
        return []

    def delays(self, settings):
        return super().delays(settings) if self.kept else self.schedule

    def process(self, sa, msg, now):
        sa.timers[IkeTimer.DPD] = now + DPD_DELAY   # the peer lives: silence counts anew
        return False

    def timed_out(self, sa, now):
        on_dpd_timeout(sa, now, len(self.schedule) - 1)


class Notify(Exchange):
    """Tell the peer something that needs no answer, e.g. AUTHENTICATION_FAILED
    after its AUTH did not verify (§2.21.2); the SA is torn down right after."""

    TYPE = ExchangeType.INFORMATIONAL

    def __init__(self, notify_type: int):
        self.notify_type = notify_type

    def build(self, sa, now):
        return [NotifyPayload(self.notify_type)]

    def process(self, sa, msg, now):
        return False

    def timed_out(self, sa, now):
        pass


def respond(sa, msg, now, local, remote):
    answer = []
    for n in msg.notifies():
        if n.is_error:
            sa.log(f"AWS tunnel received {n.name} from cgw: {remote[0]}", "warning")
        if n.notify_type == NotifyType.AUTHENTICATION_FAILED:
            # RFC 7296 §2.21.2: the initiator rejected our AUTH; the IKE SA (and its
            # CHILD SAs) ends without a Delete once this request is answered.
            sa.close_after_response = ("cgw rejected our authentication", "auth-failed")
    for d in msg.all(DeletePayload):
        if d.protocol == ProtocolId.IKE:
            if sa.successor is None and sa.ike_collision is not None:
                # We answered the peer's rekey of this IKE SA while ours was in
                # flight, and the peer now deletes the old SA: its rekey completed
                # (it won, or never saw ours), so its new SA takes over (§2.18);
                # ours is forgotten (§2.25.2: "reply as usual, and forget its
                # own rekeying request").
                new, sa.ike_collision = sa.ike_collision, None
                sa.log("AWS tunnel detected a (IKE_REKEY) collision as IKE_DELETE: "
                       "the peer's new IKE_SA survives")
                hand_over(sa, new, now)
            if sa.successor is not None:
                # the old IKE SA after a rekey (§2.18): its CHILD SAs live on in the new one
                p = sa.pending
                if p is not None and isinstance(p.exchange, DeleteChild):
                    # our DELETE of a CHILD SA, unanswered, would die with this SA:
                    # send it again where the CHILD SA is now
                    target = holder(sa, p.exchange.spi_in)
                    if target is not sa:
                        target.start(DeleteChild(p.exchange.spi_in, p.exchange.reason), now)
                sa.close_after_response = ("rekeyed", "rekeyed")
                return []
            if sa.redundant:
                # the loser of an IKE rekey collision removes its own copy (§2.8.1)
                sa.log("AWS tunnel (IKE_SA) redundant SA deleted by cgw after a rekey collision", "debug")
                sa.close_after_response = ("redundant after a rekey collision", "redundant")
                return []
            sa.log("AWS tunnel received DELETE for IKE_SA from CGW")
            sa.close_after_response = ("deleted by the customer gateway", "deleted-by-peer")
            return []  # §1.4.1: the answer to an IKE SA delete is empty
        if d.protocol != ProtocolId.ESP:
            continue
        ours = []
        for raw in d.spis:
            spi_out = struct.unpack("!I", raw)[0]
            sa.log(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {spi_out:08x}")
            # the IKE SA that holds it now: the DELETE may come on the old IKE SA
            # after a rekey moved the CHILD SAs to the new one (§2.18)
            here = sa
            while here is not None and here.child_by_out(spi_out) is None:
                here = here.successor
            if here is None:
                continue  # already gone (e.g. both sides deleted at once, §1.4.1)
            child = here.child_by_out(spi_out)
            if child.state is ChildState.REKEYING:
                sa.log("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE")
            if child.state is not ChildState.DELETING:
                ours.append(struct.pack("!I", child.spi_in))
            # §2.8.1: the peer deletes the SA its own rekey replaced. That is also the
            # case while our rekey of it is in flight, if we already installed the
            # peer's new SA (a collision): make-before-break, not a plain delete.
            replaced = child.state is ChildState.REKEYED or child.spi_in in here.collisions
            reason = "rekeyed" if replaced else "deleted-by-peer"
            remove_child(here, child.spi_in, reason)
        if ours:
            answer.append(DeletePayload(ProtocolId.ESP, ours))
    return answer


# --- DPD (docs/aws.md §1.5, §6.4; the module docstring) -------------------------------------


def dpd_check(sa, now: float) -> None:
    """IkeTimer.DPD: probe after DPD_DELAY of silence, apply the action at last
    traffic + dpd_timeout. Deadlines are compared as they were computed
    (`now < last + delay`, never `now - last < delay`: in floating point the
    difference can fall short at the deadline itself and re-arm the timer at
    the same instant forever)."""
    if not sa.established:
        return
    dead_at = sa.last_inbound + sa.settings.dpd_timeout
    if sa.pending is not None and now >= dead_at:
        # silent for dpd_timeout while our request is out (a probe, or a rekey
        # or DELETE in the probe's place): dead, whatever the request is
        on_dpd_timeout(sa, now, sa.pending.attempt)
        return
    if not sa.peer_behind_nat and now < sa.last_inbound + DPD_DELAY:
        sa.timers[IkeTimer.DPD] = sa.last_inbound + DPD_DELAY
        return
    if sa.pending is not None or sa.queue:
        # the window is busy (RFC 7296 §2.3): the outstanding request probes in
        # the probe's place; look again in DPD_INTERVAL, or when the peer is dead
        sa.timers[IkeTimer.DPD] = dead_at if now < dead_at < now + DPD_INTERVAL else now + DPD_INTERVAL
        return
    sa.start(Liveness(dead_at), now)
    sa.timers[IkeTimer.DPD] = now + DPD_INTERVAL


def on_dpd_timeout(sa, now: float, retransmits: int) -> None:
    """No traffic from the peer for dpd_timeout: the DPD action (docs/aws.md §1.5).

    none keeps the SA and its CHILD SAs; the request that found the peer silent
    goes on every DPD_INTERVAL without giving up (a Liveness that gave up is
    sent again, with the same message ID), so the outage is logged once: the
    next timeout is logged only after the peer answered in between."""
    p = sa.pending
    if p is not None and p.exchange.kept:
        sa.timers[IkeTimer.DPD] = now + DPD_INTERVAL   # this outage was logged already
        return
    sa.log(f"AWS tunnel DPD timed out after {retransmits} retransmits", "error")
    sa.emit(DpdTimeout(sa.settings.dpd_action))
    if sa.settings.dpd_action != "none":
        sa.fail("peer is not responsive", "dpd")
        return
    sa.log("AWS tunnel keeps the tunnel (dpd_timeout_action none)", "warning")
    if p is None:
        sa.start(Liveness(kept=True), now, front=True)
    else:
        p.exchange.kept = True
        p.deadline = min(p.deadline, now + DPD_INTERVAL)
    sa.timers[IkeTimer.DPD] = now + DPD_INTERVAL


# --- the timers that end SAs (ikecore.timers; the endpoint registers them) -------------------


def ike_expired(sa, now: float) -> None:
    """IkeTimer.EXPIRE: the phase 1 lifetime is over."""
    if not sa.established:
        return
    sa.log(f"AWS tunnel IKE_SA with cgw: {sa.remote[0]} reached its phase 1 lifetime", "warning")
    if sa.pending is None:
        sa.start(DeleteIke("expired"), now, front=True)
    else:
        # Hard lifetime: the SA ends now (RFC 4301 §4.4.2.1); no DELETE can
        # pass an unanswered request (window of one, RFC 7296 §2.3)
        sa.fail("reached its phase 1 lifetime", "expired")


def delete_rekeyed(sa, now: float) -> None:
    """IkeTimer.DELETE_REKEYED: the peer rekeyed this IKE SA but did not delete it (§2.8)."""
    if sa.state is IkeState.REKEYED:
        sa.start(DeleteIke("rekeyed"), now)


def delete_redundant(sa, now: float) -> None:
    """IkeTimer.DELETE_REDUNDANT: the peer did not delete the loser of a rekey collision (§2.8.1)."""
    if sa.established and sa.redundant:
        sa.start(DeleteIke("redundant"), now)


def delete_replaced_child(sa, child, now: float) -> None:
    """ChildTimer.DELETE: a CHILD SA the peer's rekey replaced, and the peer did
    not delete (§2.8): vgw does."""
    if child.state is ChildState.REKEYED:
        sa.start(DeleteChild(child.spi_in, "rekeyed"), now)


def child_expired(sa, child, now: float) -> None:
    """ChildTimer.EXPIRE: the phase 2 lifetime is over."""
    child.timers.pop(ChildTimer.REKEY, None)
    if child.state is not ChildState.DELETING:
        sa.log(f"AWS tunnel Phase 2 SA with SPI: {child.spi_in:08x} reached its lifetime", "warning")
        # Hard lifetime: the SA ends now (RFC 4301 §4.4.2.1), even if the DELETE
        # must wait for the window (a rekey of it may be unanswered, RFC 7296 §2.3)
        remove_child(sa, child.spi_in, "expired")
        sa.start(DeleteChild(child.spi_in, "expired", installed=False), now, front=True)
