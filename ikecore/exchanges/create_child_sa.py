"""CREATE_CHILD_SA (RFC 7296 §1.3): which kind a request is, and the CHILD SA
rekey (§1.3.3, §2.8), both roles. The IKE SA rekey is ike_rekey.py.

A request with IKE proposals rekeys the IKE SA; a REKEY_SA notify makes it a
CHILD SA rekey; anything else asks for an additional CHILD SA, which AWS does
not give: "You are limited to one unique security association (SA) pair per
tunnel" (docs/aws.md §1.8), so it is refused with NO_ADDITIONAL_SAS (§1.3).

PFS as AWS wants it: the rekey carries a KE from the phase 2 DH list
(docs/aws.md §1.4); a rekey without an acceptable KE is refused.

Make-before-break (§2.8): the new SA is installed before the old one is
deleted. The responder installs the new inbound SA at once but keeps sending on
the old one until the initiator deletes it (ChildSaUp.outbound_ready False), so
no packet goes out on an SA the peer cannot decrypt yet.

Simultaneous rekeys of one CHILD SA (§2.8.1): each side ends up with two new SAs;
the one whose exchange used the lowest of the four nonces is redundant and is
deleted by the side that created it; the winner deletes the old SA. The old
CHILD SA's states: INSTALLED -> REKEYING -> REKEYED (or back to INSTALLED when
the rekey fails) -> DELETING (ikecore.state).
"""

from __future__ import annotations

import struct

from ..child import ChildSa, new_spi
from ..constants import ExchangeType, NotifyType, ProtocolId
from ..crypto import CryptoError, get_dh_group
from ..errors import ExchangeError
from ..payloads import KePayload, NoncePayload, NotifyPayload, SaPayload, TsiPayload, TsrPayload
from ..proposals import NoProposalChosen, check_answer, esp_offer
from ..sa_operations import MAX_KE_RETRIES, add_child, lost_collision, remove_child, responder_child
from ..state import ChildState, transition
from ..timers import REKEYED_DELETE_DELAY, TEMPORARY_FAILURE_RETRY, ChildTimer, between, retry_at
from ..ts import covers
from . import ike_rekey
from .base import Exchange
from .informational import DeleteChild


def respond(sa, msg, now, local, remote):
    """The responder: which CREATE_CHILD_SA this is (§1.3)."""
    sa_p = msg.get(SaPayload)
    rekey = msg.notify(NotifyType.REKEY_SA)
    if sa_p and sa_p.proposals and all(p.protocol == ProtocolId.IKE for p in sa_p.proposals):
        return ike_rekey.respond(sa, msg, now, local, remote)
    if rekey is not None:
        return respond_child_rekey(sa, msg, now, local, remote, rekey)
    sa.log(f"AWS tunnel is refusing an additional CHILD_SA from cgw: {remote[0]} "
           "(one SA pair per tunnel)", "warning")
    raise ExchangeError(NotifyType.NO_ADDITIONAL_SAS, "one SA pair per tunnel")


def rekey_due(sa, child, now: float) -> None:
    """ChildTimer.REKEY: rekey the CHILD SA (docs/aws.md §1.6)."""
    if child.state is ChildState.INSTALLED:
        sa.start(ChildRekey(child.spi_in), now)


def retry_later(sa, child, now: float) -> None:
    """Schedule another rekey of `child` after a failed one, before it expires."""
    if child is None or child.state is not ChildState.INSTALLED:
        return
    at = retry_at(sa, now, child.timers.get(ChildTimer.EXPIRE))
    if at is not None:
        child.timers[ChildTimer.REKEY] = at


def _ordered_groups(groups, first):
    groups = list(groups)
    if first in groups:
        groups.remove(first)
        groups.insert(0, first)
    return groups


class ChildRekey(Exchange):
    TYPE = ExchangeType.CREATE_CHILD_SA
    moves_with_child = True

    def __init__(self, spi_in: int, group: int | None = None, ke_retries: int = 0):
        self.spi_in = spi_in
        self.group = group
        self.ke_retries = ke_retries

    def build(self, sa, now):
        child = sa.children.get(self.spi_in)
        if child is None or child.state is not ChildState.INSTALLED:
            return None
        p = sa.settings
        # the group agreed last time first (as strongSwan does): saves an
        # INVALID_KE round trip on every rekey with a peer that prefers another
        if self.group is None and child.suite.dh in p.phase2_dh_groups:
            self.group = child.suite.dh
        self.group = self.group or p.phase2_dh_groups[0]
        self.new_spi = new_spi(p.random_bytes)
        self.nonce = p.random_bytes(p.nonce_size)
        self.dh = get_dh_group(self.group).generate()
        self.offered = esp_offer(p.phase2_encryption, p.phase2_integrity,
                                 struct.pack("!I", self.new_spi),
                                 _ordered_groups(p.phase2_dh_groups, self.group))
        self.tsi, self.tsr = list(child.local_ts), list(child.remote_ts)
        transition(child, ChildState.REKEYING)
        sa.log(f"AWS tunnel is rekeying Phase 2 SA with SPI: {child.spi_in:08x}")
        return [NotifyPayload(NotifyType.REKEY_SA, protocol=ProtocolId.ESP,
                              spi=struct.pack("!I", child.spi_in)),
                SaPayload(self.offered), NoncePayload(self.nonce),
                KePayload(self.group, self.dh.public_bytes),
                TsiPayload(self.tsi), TsrPayload(self.tsr)]

    def process(self, sa, msg, now):
        child = sa.children.get(self.spi_in)
        theirs = sa.collisions.pop(self.spi_in, None)
        err = msg.error_notify()
        if err is not None:
            self._refused(sa, child, theirs, err, now)
            return False
        try:
            new = self._new_child(sa, msg, now)
        except (NoProposalChosen, CryptoError) as exc:
            sa.log(f"AWS tunnel could not rekey Phase 2 SA {self.spi_in:08x}: {exc}", "error")
            if child is not None and child.state is ChildState.REKEYING:
                transition(child, ChildState.INSTALLED)
            retry_later(sa, child, now)
            return False
        if theirs is not None and lost_collision((self.nonce, new.nonce_r),
                                                 (theirs.nonce_i, theirs.nonce_r)):
            # §2.8.1: ours is the redundant one; the peer deletes the old SA
            sa.log("AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision")
            transition(new, ChildState.DELETING)
            new.derive(sa.prf, sa.sk_d, self.shared)
            sa.children[new.spi_in] = new
            sa.start(DeleteChild(new.spi_in, "redundant"), now)
            replaced(child, now)
            return False
        if theirs is not None:
            sa.log("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_REKEY: "
                   "this side's SA survives")
        add_child(sa, new, now, shared=self.shared, replaces=self.spi_in, outbound_ready=True)
        if child is not None:
            transition(child, ChildState.REKEYED)
            sa.start(DeleteChild(self.spi_in, "rekeyed"), now)
        return False

    def _new_child(self, sa, msg, now) -> ChildSa:
        sa_p, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
        tsi, tsr = msg.get(TsiPayload), msg.get(TsrPayload)
        if not (sa_p and nonce and ke and tsi and tsr):
            raise NoProposalChosen("answer lacks SA, Nonce, KE or TS")
        suite = check_answer(self.offered, sa_p.proposals, ProtocolId.ESP)
        if suite.dh != self.group or ke.group != self.group:
            raise NoProposalChosen("answer changed the PFS group")
        if not covers(self.tsi, tsi.selectors) or not covers(self.tsr, tsr.selectors):
            raise NoProposalChosen("answer widened the traffic selectors")
        self.shared = self.dh.shared_secret(ke.data)
        spi_out = struct.unpack("!I", sa_p.proposals[0].spi)[0]
        return ChildSa(self.new_spi, spi_out, suite, tuple(tsi.selectors), tuple(tsr.selectors),
                       now, True, self.nonce, nonce.data)

    def _refused(self, sa, child, theirs, err, now) -> None:
        if theirs is not None:
            # the peer's own rekey of this SA went through: it deletes the old SA
            replaced(child, now)
            return
        if child is not None and child.state is ChildState.REKEYING:
            transition(child, ChildState.INSTALLED)
        ntype = err.notify_type
        if ntype == NotifyType.INVALID_KE_PAYLOAD and child is not None:
            group = struct.unpack("!H", err.data)[0] if len(err.data) == 2 else 0
            if group in sa.settings.phase2_dh_groups and self.ke_retries < MAX_KE_RETRIES:
                sa.log(f"AWS tunnel received INVALID_KE_PAYLOAD for CREATE_CHILD_SA: cgw wants "
                       f"DH group {group}; retrying")
                sa.start(ChildRekey(self.spi_in, group, self.ke_retries + 1), now)
                return
        if ntype == NotifyType.TEMPORARY_FAILURE and child is not None:
            child.timers[ChildTimer.REKEY] = between(sa, now, TEMPORARY_FAILURE_RETRY)
            sa.log("AWS tunnel received TEMPORARY_FAILURE for CREATE_CHILD_SA; retrying later")
            return
        if ntype == NotifyType.CHILD_SA_NOT_FOUND and child is not None:
            sa.log(f"AWS tunnel: cgw does not know Phase 2 SA {child.spi_in:08x}; removing it", "warning")
            remove_child(sa, child.spi_in, "peer-lost")
            return
        sa.log(f"AWS tunnel rekey of Phase 2 SA {self.spi_in:08x} refused by cgw: {err.name}", "error")
        retry_later(sa, child, now)


def replaced(child, now: float) -> None:
    """`child` was replaced by the peer's rekey of it (§2.8.1: the peer, which
    initiated the surviving SA, deletes it). vgw keeps receiving on it until
    then, but deletes it itself after REKEYED_DELETE_DELAY should the peer not,
    as after an ordinary rekey it answered (respond_child_rekey): else vgw would
    keep it, and send on it, up to its hard expiry."""
    if child is not None and child.state is ChildState.REKEYING:
        transition(child, ChildState.REKEYED)
        child.timers[ChildTimer.DELETE] = now + REKEYED_DELETE_DELAY


def respond_child_rekey(sa, msg, now, local, remote, rekey: NotifyPayload):
    """Responder side of a CHILD SA rekey."""
    if rekey.protocol != ProtocolId.ESP or len(rekey.spi) != 4:
        raise ExchangeError(NotifyType.CHILD_SA_NOT_FOUND, "REKEY_SA names no ESP SA")
    child = sa.child_by_out(struct.unpack("!I", rekey.spi)[0])
    if child is None:
        raise ExchangeError(NotifyType.CHILD_SA_NOT_FOUND, "no such CHILD SA")
    if child.state in (ChildState.DELETING, ChildState.REKEYED):
        # §2.25: a rekey of an SA being closed (or already replaced) is answered
        # TEMPORARY_FAILURE
        raise ExchangeError(NotifyType.TEMPORARY_FAILURE, "CHILD SA is being closed")
    sa_p, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
    tsi, tsr = msg.get(TsiPayload), msg.get(TsrPayload)
    if not (sa_p and nonce and tsi and tsr):
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "CREATE_CHILD_SA lacks SA, Nonce or TS")
    made = responder_child(sa, sa_p, tsi, tsr, now, remote[0], nonce.data, ke=ke, rekey=True)
    if child.state is ChildState.REKEYING:
        sa.log("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_REKEY")
        sa.collisions[child.spi_in] = made.child
    else:
        transition(child, ChildState.REKEYED)
        # the initiator deletes the old SA; if it does not, vgw does (hygiene)
        child.timers[ChildTimer.DELETE] = now + REKEYED_DELETE_DELAY
    add_child(sa, made.child, now, shared=made.shared, replaces=child.spi_in, outbound_ready=False)
    return [SaPayload([made.proposal]), NoncePayload(made.child.nonce_r), made.ke,
            TsiPayload(made.their_ts), TsrPayload(made.our_ts)]
