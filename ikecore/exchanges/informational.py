"""INFORMATIONAL (RFC 7296 §1.4, §1.5): DELETE, liveness checks and notifies.

AWS's log wording for deletes comes from aws-facts.md §3.3.
"""

from __future__ import annotations

import struct

from ..constants import ExchangeType, NotifyType, ProtocolId
from ..events import ChildSaDown
from ..payloads import DeletePayload, NotifyPayload
from .base import Exchange


class DeleteIke(Exchange):
    """Delete the whole IKE SA (and with it every CHILD SA, §1.4.1)."""

    TYPE = ExchangeType.INFORMATIONAL

    def __init__(self, reason: str = "deleted"):
        self.reason = reason

    def build(self, sa, now):
        from ..sa import State
        sa.state = State.DELETING
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
        child.state = "DELETING"
        sa.log(f"AWS tunnel is sending DELETE for Phase 2 SA with SPI: {child.spi_in:08x}")
        return [DeletePayload(ProtocolId.ESP, [struct.pack("!I", self.spi_in)])]

    def process(self, sa, msg, now):
        remove_child(holder(sa, self.spi_in), self.spi_in, self.reason)
        return False

    def timed_out(self, sa, now):
        remove_child(holder(sa, self.spi_in), self.spi_in, self.reason)
        super().timed_out(sa, now)


def holder(sa, spi_in: int):
    """The IKE SA that holds CHILD SA `spi_in` now: an IKE rekey while our DELETE
    was out moved it to the new IKE SA (RFC 7296 §2.18)."""
    here = sa
    while here is not None and spi_in not in here.children:
        here = here.successor
    return here or sa


class Liveness(Exchange):
    """An empty INFORMATIONAL request: AWS's DPD "R-U-THERE" (aws-facts.md §6.4),
    resent every DPD_INTERVAL until the peer is dead at `dead_at`; `kept`: the
    probe of dpd_timeout_action none after the timeout, resent without end."""

    TYPE = ExchangeType.INFORMATIONAL

    def __init__(self, dead_at: float | None = None, kept: bool = False):
        self.dead_at = dead_at     # last traffic + dpd_timeout (lifecycle.py)
        self.kept = kept
        self.schedule = None

    def build(self, sa, now):
        from .lifecycle import liveness_delays
        dead_at = self.dead_at if self.dead_at is not None else now + sa.settings.dpd_timeout
        self.schedule = liveness_delays(now, dead_at)
        return []

    def delays(self, settings):
        return super().delays(settings) if self.kept else self.schedule

    def process(self, sa, msg, now):
        from . import lifecycle
        lifecycle.on_liveness_answered(sa, now)
        return False

    def timed_out(self, sa, now):
        from . import lifecycle
        lifecycle.on_dpd_timeout(sa, now, len(self.schedule) - 1)


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


def remove_child(sa, spi_in: int, reason: str) -> None:
    child = sa.children.pop(spi_in, None)
    if child is not None:
        sa.emit(ChildSaDown(child.spi_in, child.spi_out, reason))


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
                from .ike_rekey import hand_over
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
            if child.state == "REKEYING":
                sa.log("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE")
            if child.state != "DELETING":
                ours.append(struct.pack("!I", child.spi_in))
            # §2.8.1: the peer deletes the SA its own rekey replaced. That is also the
            # case while our rekey of it is in flight, if we already installed the
            # peer's new SA (a collision): make-before-break, not a plain delete.
            replaced = child.state == "REKEYED" or child.spi_in in here.collisions
            reason = "rekeyed" if replaced else "deleted-by-peer"
            remove_child(here, child.spi_in, reason)
        if ours:
            answer.append(DeletePayload(ProtocolId.ESP, ours))
    return answer
