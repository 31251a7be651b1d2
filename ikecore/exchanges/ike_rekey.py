"""IKE SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18), both roles.

The new IKE SA gets new SPIs, nonces and a new DH exchange; its SKEYSEED is
prf(SK_d(old), g^ir(new) | Ni | Nr) with the OLD SA's PRF, its keys come from
the new PRF. The CHILD SAs move to it untouched; the initiator of the rekey is
the initiator of the new IKE SA and deletes the old one. Simultaneous IKE
rekeys: the lowest-nonce rule of §2.8.1, as for CHILD SAs.
"""

from __future__ import annotations

import struct
from dataclasses import replace

from ..constants import ExchangeType, NotifyType, ProtocolId
from ..crypto import CryptoError, get_dh_group, rekey_skeyseed
from ..errors import ExchangeError
from ..payloads import KePayload, NoncePayload, SaPayload
from ..proposals import InvalidKe, NoProposalChosen, check_answer, ike_offer, select_ike
from .base import Exchange
from .child_rekey import (
    MAX_KE_RETRIES, REFUSED_RETRY, REKEYED_DELETE_DELAY, TEMPORARY_FAILURE_RETRY, lost_collision,
)
from .ike_init import describe_suite, install_keys, new_ike_spi


def _retry_later(sa, now: float) -> None:
    """Another IKE rekey after a failed one, before the hard expiry (REFUSED_RETRY)."""
    lo, hi = REFUSED_RETRY
    at = now + lo + (hi - lo) * sa.uniform()
    expire = sa.timers.get("ike_expire")
    if expire is not None:
        at = min(at, expire - 1.0)
    if at > now:
        sa.timers["ike_rekey"] = at


def successor(sa, suite, spi_i: bytes, spi_r: bytes, ni: bytes, nr: bytes, shared: bytes,
              initiator: bool, now: float):
    """The IKE SA that replaces `sa` (not yet holding its CHILD SAs)."""
    from ..sa import IkeSa, State
    new = IkeSa(sa.settings, initiator=initiator, local=sa.local, remote=sa.remote, created=now,
                spi_i=spi_i, spi_r=spi_r, state=State.ESTABLISHED, frag_budget=sa.frag_budget)
    new.nonce_i, new.nonce_r = ni, nr
    new.peer_behind_nat, new.local_behind_nat = sa.peer_behind_nat, sa.local_behind_nat
    new.peer_fragmentation = sa.peer_fragmentation
    new.remote_identity = sa.remote_identity
    new.last_inbound = now
    install_keys(new, suite, shared, rekey_skeyseed(sa.prf, sa.sk_d, shared, ni, nr))
    return new


def hand_over(old, new, now) -> None:
    """Move the CHILD SAs and announce the new IKE SA (make-before-break)."""
    from .ike_auth import _ike_up
    new.children, old.children = old.children, {}
    old.successor = new
    old.spawned.append(new)
    _ike_up(new, now, rekeyed=True)
    # CHILD SA exchanges still waiting for the old SA's window (e.g. `vgw rekey
    # --child` right after `--ike`) follow their CHILD SAs; left behind they would
    # find no CHILD SA there and be dropped, and a dropped rekey is not retried
    from .child_rekey import ChildRekey
    from .informational import DeleteChild
    for ex in [e for e in old.queue if isinstance(e, (ChildRekey, DeleteChild))
               and e.spi_in in new.children]:
        old.queue.remove(ex)
        new.start(ex, now)
    old.log(f"AWS tunnel rekeyed IKE_SA with cgw: {old.remote[0]}: new SPIs "
            f"{new.spi_i.hex()}_i {new.spi_r.hex()}_r, {describe_suite(new.suite)}")


class IkeRekey(Exchange):
    TYPE = ExchangeType.CREATE_CHILD_SA

    def __init__(self, group: int | None = None, ke_retries: int = 0):
        self.group = group
        self.ke_retries = ke_retries

    def build(self, sa, now):
        from ..sa import State
        if sa.state != State.ESTABLISHED or sa.successor is not None or sa.ike_rekeying is not None:
            return None
        p = sa.settings
        if self.group is None and sa.suite.dh in p.phase1_dh_groups:
            self.group = sa.suite.dh     # the group agreed last time first
        self.group = self.group or p.phase1_dh_groups[0]
        self.spi = new_ike_spi(p.random_bytes)
        self.nonce = p.random_bytes(p.nonce_size)
        self.dh = get_dh_group(self.group).generate()
        self.offered = [replace(pr, spi=self.spi) for pr in ike_offer(
            p.phase1_encryption, p.phase1_integrity, p.phase1_dh_groups, first_group=self.group)]
        sa.ike_rekeying = self
        sa.log(f"AWS tunnel is rekeying IKE_SA with cgw: {sa.remote[0]}")
        return [SaPayload(self.offered), NoncePayload(self.nonce),
                KePayload(self.group, self.dh.public_bytes)]

    def process(self, sa, msg, now):
        sa.ike_rekeying = None
        theirs = sa.ike_collision
        sa.ike_collision = None
        err = msg.error_notify()
        if err is not None:
            if theirs is not None:
                hand_over(sa, theirs, now)   # the peer's rekey went through; it deletes the old SA
                sa.timers["delete_rekeyed"] = now + REKEYED_DELETE_DELAY
                return False
            if err.notify_type == NotifyType.INVALID_KE_PAYLOAD and self.ke_retries < MAX_KE_RETRIES:
                group = struct.unpack("!H", err.data)[0] if len(err.data) == 2 else 0
                if group in sa.settings.phase1_dh_groups:
                    sa.start(IkeRekey(group, self.ke_retries + 1), now)
                    return False
            if err.notify_type == NotifyType.TEMPORARY_FAILURE:
                lo, hi = TEMPORARY_FAILURE_RETRY
                sa.timers["ike_rekey"] = now + lo + (hi - lo) * sa.uniform()
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
            sa.log(f"AWS tunnel could not rekey IKE_SA: {exc}", "error")
            _retry_later(sa, now)
            return False
        new = successor(sa, suite, self.spi, peer_spi, self.nonce, nonce.data, shared, True, now)
        from .informational import DeleteIke
        if theirs is not None and lost_collision((self.nonce, nonce.data),
                                                 (theirs.nonce_i, theirs.nonce_r)):
            # ours is redundant: delete it; the peer deletes the old SA and its new one lives
            sa.log("AWS tunnel (IKE_SA) redundant SA is being deleted due to detected collision")
            new.redundant = True
            sa.spawned.append(new)
            new.start(DeleteIke("redundant"), now)
            hand_over(sa, theirs, now)
            sa.timers["delete_rekeyed"] = now + REKEYED_DELETE_DELAY
            return False
        if theirs is not None:
            sa.log("AWS tunnel detected a (IKE_REKEY) collision as IKE_REKEY: this side's SA survives")
            theirs.redundant = True   # the peer deletes it (§2.8.1)...
            # ...unless its own answer reaches it only after we deleted the old SA:
            # then it never learns of it, so we delete it ourselves after a while
            theirs.timers["delete_redundant"] = now + REKEYED_DELETE_DELAY
            sa.spawned.append(theirs)
        hand_over(sa, new, now)
        sa.start(DeleteIke("rekeyed"), now)
        return False


def _child_exchange_in_flight(sa) -> bool:
    """Is our request to create, rekey or delete a CHILD SA unanswered?"""
    from .informational import DeleteChild
    p = sa.pending
    if p is None:
        return False
    if isinstance(p.exchange, DeleteChild):
        return True
    return p.exchange.TYPE == ExchangeType.CREATE_CHILD_SA and sa.ike_rekeying is None


def respond(sa, msg, now, local, remote):
    from ..sa import State
    p = sa.settings
    if sa.state != State.ESTABLISHED or sa.successor is not None:
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
    try:
        group = get_dh_group(suite.dh)
        group.check_public(ke.data)      # RFC 6989, before vgw makes a key of its own
        dh = group.generate()
        shared = dh.shared_secret(ke.data)
    except CryptoError:
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "invalid KE public value")
    our_spi = new_ike_spi(p.random_bytes)
    nr = p.random_bytes(p.nonce_size)
    new = successor(sa, suite, peer_spi, our_spi, nonce.data, nr, shared, False, now)
    if sa.ike_rekeying is not None:
        sa.log("AWS tunnel detected a (IKE_REKEY) collision as IKE_REKEY")
        sa.ike_collision = new
    else:
        hand_over(sa, new, now)   # the peer deletes the old IKE SA
        sa.timers["delete_rekeyed"] = now + REKEYED_DELETE_DELAY
    return [SaPayload([replace(proposal, spi=our_spi)]), NoncePayload(nr),
            KePayload(suite.dh, dh.public_bytes)]
