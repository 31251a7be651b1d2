"""CHILD SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.3, §2.8), both roles.

PFS as AWS wants it: the rekey carries a KE from the phase 2 DH list
(aws-facts.md §1.4); a rekey without an acceptable KE is refused.

Make-before-break (§2.8): the new SA is installed before the old one is
deleted. The responder installs the new inbound SA at once but keeps sending on
the old one until the initiator deletes it (ChildSaUp.outbound_ready False), so
no packet goes out on an SA the peer cannot decrypt yet.

Simultaneous rekeys of one CHILD SA (§2.8.1): each side ends up with two new SAs;
the one whose exchange used the lowest of the four nonces is redundant and is
deleted by the side that created it; the winner deletes the old SA.
"""

from __future__ import annotations

import struct

from ..child import ChildSa, new_spi
from ..constants import ExchangeType, NotifyType, ProtocolId
from ..crypto import CryptoError, get_dh_group
from ..errors import ExchangeError
from ..payloads import KePayload, NoncePayload, NotifyPayload, SaPayload, TsiPayload, TsrPayload
from ..proposals import InvalidKe, NoProposalChosen, check_answer, esp_offer, select_esp
from ..ts import covers, narrow
from .base import Exchange

MAX_KE_RETRIES = 3
TEMPORARY_FAILURE_RETRY = (2.0, 6.0)   # §2.25: retry after a random delay
# a rekey that was refused or failed: try again (vgw's figure, as strongSwan
# retries), still before the hard expiry ends the SA
REFUSED_RETRY = (30.0, 60.0)


def retry_later(sa, child, now: float) -> None:
    """Schedule another rekey of `child` after a failed one, before it expires."""
    if child is None or child.state != "INSTALLED":
        return
    lo, hi = REFUSED_RETRY
    at = now + lo + (hi - lo) * sa.uniform()
    if child.expire_at is not None:
        at = min(at, child.expire_at - 1.0)
    if at > now:
        child.rekey_at = at


def lost_collision(ours: tuple[bytes, bytes], theirs: tuple[bytes, bytes]) -> bool:
    """§2.8.1: the exchange holding the lowest of the four nonces made the redundant SA."""
    return min(ours) < min(theirs)


def _ordered_groups(groups, first):
    groups = list(groups)
    if first in groups:
        groups.remove(first)
        groups.insert(0, first)
    return groups


class ChildRekey(Exchange):
    TYPE = ExchangeType.CREATE_CHILD_SA

    def __init__(self, spi_in: int, group: int | None = None, ke_retries: int = 0):
        self.spi_in = spi_in
        self.group = group
        self.ke_retries = ke_retries

    def build(self, sa, now):
        child = sa.children.get(self.spi_in)
        if child is None or child.state != "INSTALLED":
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
        child.state = "REKEYING"
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
            if child is not None and child.state == "REKEYING":
                child.state = "INSTALLED"
            retry_later(sa, child, now)
            return False
        from .ike_auth import add_child
        from .informational import DeleteChild
        if theirs is not None and lost_collision((self.nonce, new.nonce_r),
                                                 (theirs.nonce_i, theirs.nonce_r)):
            # §2.8.1: ours is the redundant one; the peer deletes the old SA
            sa.log("AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision")
            new.state = "DELETING"
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
            child.state = "REKEYED"
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
        if child is not None and child.state == "REKEYING":
            child.state = "INSTALLED"
        ntype = err.notify_type
        if ntype == NotifyType.INVALID_KE_PAYLOAD and child is not None:
            group = struct.unpack("!H", err.data)[0] if len(err.data) == 2 else 0
            if group in sa.settings.phase2_dh_groups and self.ke_retries < MAX_KE_RETRIES:
                sa.log(f"AWS tunnel received INVALID_KE_PAYLOAD for CREATE_CHILD_SA: cgw wants "
                       f"DH group {group}; retrying")
                sa.start(ChildRekey(self.spi_in, group, self.ke_retries + 1), now)
                return
        if ntype == NotifyType.TEMPORARY_FAILURE and child is not None:
            lo, hi = TEMPORARY_FAILURE_RETRY
            child.rekey_at = now + lo + (hi - lo) * sa.uniform()
            sa.log("AWS tunnel received TEMPORARY_FAILURE for CREATE_CHILD_SA; retrying later")
            return
        if ntype == NotifyType.CHILD_SA_NOT_FOUND and child is not None:
            sa.log(f"AWS tunnel: cgw does not know Phase 2 SA {child.spi_in:08x}; removing it", "warning")
            from .informational import remove_child
            remove_child(sa, child.spi_in, "peer-lost")
            return
        sa.log(f"AWS tunnel rekey of Phase 2 SA {self.spi_in:08x} refused by cgw: {err.name}", "error")
        retry_later(sa, child, now)


def replaced(child, now: float) -> None:
    """`child` was replaced by the peer's rekey of it (§2.8.1: the peer, which
    initiated the surviving SA, deletes it). vgw keeps receiving on it until
    then, but deletes it itself after REKEYED_DELETE_DELAY should the peer not,
    as after an ordinary rekey it answered (respond): else vgw would keep it,
    and send on it, up to its hard expiry."""
    if child is not None and child.state == "REKEYING":
        child.state = "REKEYED"
        child.delete_at = now + REKEYED_DELETE_DELAY


def respond(sa, msg, now, local, remote, rekey: NotifyPayload):
    """Responder side of a CHILD SA rekey."""
    p = sa.settings
    if rekey.protocol != ProtocolId.ESP or len(rekey.spi) != 4:
        raise ExchangeError(NotifyType.CHILD_SA_NOT_FOUND, "REKEY_SA names no ESP SA")
    child = sa.child_by_out(struct.unpack("!I", rekey.spi)[0])
    if child is None:
        raise ExchangeError(NotifyType.CHILD_SA_NOT_FOUND, "no such CHILD SA")
    if child.state in ("DELETING", "REKEYED"):
        # §2.25: a rekey of an SA being closed (or already replaced) is answered
        # TEMPORARY_FAILURE
        raise ExchangeError(NotifyType.TEMPORARY_FAILURE, "CHILD SA is being closed")
    sa_p, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
    tsi, tsr = msg.get(TsiPayload), msg.get(TsrPayload)
    if not (sa_p and nonce and tsi and tsr):
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "CREATE_CHILD_SA lacks SA, Nonce or TS")
    spi_in = new_spi(p.random_bytes)
    try:
        proposal, suite = select_esp(sa_p.proposals, p.phase2_encryption, p.phase2_integrity,
                                     struct.pack("!I", spi_in), p.phase2_dh_groups,
                                     ke.group if ke else None, pfs=True)
    except InvalidKe as exc:
        sa.log(f"AWS tunnel is sending INVALID_KE_PAYLOAD for CREATE_CHILD_SA: wants DH group {exc.group}")
        raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "other PFS group wanted",
                            struct.pack("!H", exc.group))
    except NoProposalChosen:
        sa.log("No Proposal Match Found by AWS: the Phase 2 rekey must use PFS with a "
               "configured phase2_dh_group_numbers group", "error")
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "no PFS proposal in common")
    if ke is None or ke.group != suite.dh:
        raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "KE missing", struct.pack("!H", suite.dh))
    their_ts, our_ts = narrow(tsi.selectors, p.cgw_ts), narrow(tsr.selectors, p.vgw_ts)
    if not their_ts or not our_ts:
        raise ExchangeError(NotifyType.TS_UNACCEPTABLE, "selectors outside the configuration")
    try:
        group = get_dh_group(suite.dh)
        group.check_public(ke.data)      # RFC 6989, before vgw makes a key of its own
        dh = group.generate()
        shared = dh.shared_secret(ke.data)
    except CryptoError as exc:
        sa.log(f"AWS tunnel rejected the KE payload of cgw: {remote[0]}: {exc}", "warning")
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "invalid KE public value")
    nr = p.random_bytes(p.nonce_size)
    peer_proposal = next(pp for pp in sa_p.proposals if pp.num == proposal.num)
    new = ChildSa(spi_in, struct.unpack("!I", peer_proposal.spi)[0], suite, tuple(our_ts),
                  tuple(their_ts), now, False, nonce.data, nr)
    if child.state == "REKEYING":
        sa.log("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_REKEY")
        sa.collisions[child.spi_in] = new
    else:
        child.state = "REKEYED"
        # the initiator deletes the old SA; if it does not, vgw does (hygiene)
        child.delete_at = now + REKEYED_DELETE_DELAY
    from .ike_auth import add_child
    add_child(sa, new, now, shared=shared, replaces=child.spi_in, outbound_ready=False)
    return [SaPayload([proposal]), NoncePayload(nr), KePayload(suite.dh, dh.public_bytes),
            TsiPayload(their_ts), TsrPayload(our_ts)]


REKEYED_DELETE_DELAY = 30.0
