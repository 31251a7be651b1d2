"""IKE SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18), both roles.

The new IKE SA gets new SPIs, nonces and a new DH exchange; its SKEYSEED is
prf(SK_d(old), g^ir(new) | Ni | Nr) with the OLD SA's PRF, its keys come from
the new PRF. The CHILD SAs move to it untouched; the initiator of the rekey is
the initiator of the new IKE SA and deletes the old one. Simultaneous IKE
rekeys: the lowest-nonce rule of §2.8.1, as for CHILD SAs.

The old IKE SA's states: ESTABLISHED -> REKEYING while our request is out ->
REKEYED once the new one holds the CHILD SAs (or back to ESTABLISHED when the
rekey fails) -> DELETING / DEAD (ikecore.state). The new one is born
ESTABLISHED (sa_operations.successor).
"""

from __future__ import annotations

import struct
from dataclasses import replace

from ..constants import ExchangeType, NotifyType, ProtocolId
from ..crypto import CryptoError, get_dh_group
from ..errors import ExchangeError
from ..payloads import KePayload, NoncePayload, SaPayload
from ..proposals import InvalidKe, NoProposalChosen, check_answer, ike_offer, select_ike
from ..sa_operations import (
    MAX_KE_RETRIES, hand_over, lost_collision, new_ike_spi, responder_key_exchange, successor,
)
from ..state import IkeState, transition
from ..timers import REKEYED_DELETE_DELAY, TEMPORARY_FAILURE_RETRY, IkeTimer, between, retry_at
from .base import Exchange
from .informational import DeleteChild, DeleteIke


def rekey_due(sa, now: float) -> None:
    """IkeTimer.REKEY: rekey the IKE SA (docs/aws.md §1.6), unless it was rekeyed."""
    if sa.state in (IkeState.ESTABLISHED, IkeState.REKEYING):
        sa.start(IkeRekey(), now)


def _retry_later(sa, now: float) -> None:
    """Another IKE rekey after a failed one, before the hard expiry (REFUSED_RETRY)."""
    at = retry_at(sa, now, sa.timers.get(IkeTimer.EXPIRE))
    if at is not None:
        sa.timers[IkeTimer.REKEY] = at


class IkeRekey(Exchange):
    TYPE = ExchangeType.CREATE_CHILD_SA

    def __init__(self, group: int | None = None, ke_retries: int = 0):
        self.group = group
        self.ke_retries = ke_retries

    def build(self, sa, now):
        if sa.state is not IkeState.ESTABLISHED:
            return None   # rekeying, rekeyed, or going
        p = sa.settings
        if self.group is None and sa.suite.dh in p.phase1_dh_groups:
            self.group = sa.suite.dh     # the group agreed last time first
        self.group = self.group or p.phase1_dh_groups[0]
        self.spi = new_ike_spi(p.random_bytes)
        self.nonce = p.random_bytes(p.nonce_size)
        self.dh = get_dh_group(self.group).generate()
        self.offered = [replace(pr, spi=self.spi) for pr in ike_offer(
            p.phase1_encryption, p.phase1_integrity, p.phase1_dh_groups, first_group=self.group)]
        transition(sa, IkeState.REKEYING)
        sa.log(f"AWS tunnel is rekeying IKE_SA with cgw: {sa.remote[0]}")
        return [SaPayload(self.offered), NoncePayload(self.nonce),
                KePayload(self.group, self.dh.public_bytes)]

    def process(self, sa, msg, now):
        theirs = sa.ike_collision
        sa.ike_collision = None
        err = msg.error_notify()
        if err is not None:
            if theirs is not None:
                hand_over(sa, theirs, now)   # the peer's rekey went through; it deletes the old SA
                sa.timers[IkeTimer.DELETE_REKEYED] = now + REKEYED_DELETE_DELAY
                return False
            transition(sa, IkeState.ESTABLISHED)   # refused: the SA stays as it was
            if err.notify_type == NotifyType.INVALID_KE_PAYLOAD and self.ke_retries < MAX_KE_RETRIES:
                group = struct.unpack("!H", err.data)[0] if len(err.data) == 2 else 0
                if group in sa.settings.phase1_dh_groups:
                    sa.start(IkeRekey(group, self.ke_retries + 1), now)
                    return False
            if err.notify_type == NotifyType.TEMPORARY_FAILURE:
                sa.timers[IkeTimer.REKEY] = between(sa, now, TEMPORARY_FAILURE_RETRY)
                return False
            sa.log(f"AWS tunnel IKE_SA rekey refused by cgw: {err.name}", "error")
            _retry_later(sa, now)
            return False
        try:
            sa_p, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
            if not (sa_p and nonce and ke):
                raise NoProposalChosen("answer lacks SA, Nonce or KE")
            suite = check_answer(self.offered, sa_p.proposals, ProtocolId.IKE)
            peer_spi = sa_p.proposals[0].spi
            if suite.dh != self.group or ke.group != self.group or len(peer_spi) != 8:
                raise NoProposalChosen("answer changed the DH group or has no SPI")
            shared = self.dh.shared_secret(ke.data)
        except (NoProposalChosen, CryptoError) as exc:
            transition(sa, IkeState.ESTABLISHED)
            sa.log(f"AWS tunnel could not rekey IKE_SA: {exc}", "error")
            _retry_later(sa, now)
            return False
        new = successor(sa, suite, self.spi, peer_spi, self.nonce, nonce.data, shared, True, now)
        if theirs is not None and lost_collision((self.nonce, nonce.data),
                                                 (theirs.nonce_i, theirs.nonce_r)):
            # ours is redundant: delete it; the peer deletes the old SA and its new one lives
            sa.log("AWS tunnel (IKE_SA) redundant SA is being deleted due to detected collision")
            new.redundant = True
            sa.spawned.append(new)
            new.start(DeleteIke("redundant"), now)
            hand_over(sa, theirs, now)
            sa.timers[IkeTimer.DELETE_REKEYED] = now + REKEYED_DELETE_DELAY
            return False
        if theirs is not None:
            sa.log("AWS tunnel detected a (IKE_REKEY) collision as IKE_REKEY: this side's SA survives")
            theirs.redundant = True   # the peer deletes it (§2.8.1)...
            # ...unless its own answer reaches it only after we deleted the old SA:
            # then it never learns of it, so we delete it ourselves after a while
            theirs.timers[IkeTimer.DELETE_REDUNDANT] = now + REKEYED_DELETE_DELAY
            sa.spawned.append(theirs)
        hand_over(sa, new, now)
        sa.start(DeleteIke("rekeyed"), now)
        return False


def _child_exchange_in_flight(sa) -> bool:
    """Is our request to create, rekey or delete a CHILD SA unanswered?"""
    p = sa.pending
    if p is None:
        return False
    if isinstance(p.exchange, DeleteChild):
        return True
    return p.exchange.TYPE == ExchangeType.CREATE_CHILD_SA and not isinstance(p.exchange, IkeRekey)


def respond(sa, msg, now, local, remote):
    p = sa.settings
    if sa.state not in (IkeState.ESTABLISHED, IkeState.REKEYING):
        raise ExchangeError(NotifyType.TEMPORARY_FAILURE, "IKE SA is being deleted or rekeyed")
    if _child_exchange_in_flight(sa):
        # §2.25.2: "If a peer receives a request to rekey the IKE SA, and it is
        # currently creating, rekeying, or closing a Child SA of that IKE SA, it
        # SHOULD reply with TEMPORARY_FAILURE"; the peer retries later
        raise ExchangeError(NotifyType.TEMPORARY_FAILURE, "a CHILD SA exchange is in progress")
    sa_p, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
    if not (sa_p and nonce and ke):
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "IKE rekey lacks SA, Nonce or KE")
    try:
        proposal, suite = select_ike(sa_p.proposals, p.phase1_encryption, p.phase1_integrity,
                                     p.phase1_dh_groups, ke.group)
    except InvalidKe as exc:
        raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "other DH group wanted",
                            struct.pack("!H", exc.group))
    except NoProposalChosen:
        sa.log("No Proposal Match Found by AWS (IKE_SA rekey)", "error")
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "no IKE proposal in common")
    peer_spi = next(pp.spi for pp in sa_p.proposals if pp.num == proposal.num)
    if len(peer_spi) != 8:
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "IKE rekey proposal without an 8-byte SPI")
    public, shared = responder_key_exchange(sa, suite.dh, ke.data, remote[0])
    our_spi = new_ike_spi(p.random_bytes)
    nr = p.random_bytes(p.nonce_size)
    new = successor(sa, suite, peer_spi, our_spi, nonce.data, nr, shared, False, now)
    if sa.state is IkeState.REKEYING:
        sa.log("AWS tunnel detected a (IKE_REKEY) collision as IKE_REKEY")
        sa.ike_collision = new
    else:
        hand_over(sa, new, now)   # the peer deletes the old IKE SA
        sa.timers[IkeTimer.DELETE_REKEYED] = now + REKEYED_DELETE_DELAY
    return [SaPayload([replace(proposal, spi=our_spi)]), NoncePayload(nr),
            KePayload(suite.dh, public)]
