"""What several exchanges do to an IKE SA, written once.

The exchanges (ikecore/exchanges/) say what goes on the wire; the changes they
share live here: installing the IKE SA's keys (RFC 7296 §2.14), bringing it up
(§1.2), the responder's half of a key exchange (one for IKE_SA_INIT and both
rekeys), the responder's new CHILD SA (one for IKE_AUTH and the CHILD SA
rekey), installing and removing CHILD SAs, and the IKE SA that replaces another
(§1.3.2, §2.18). Below the exchanges, above the SA: this module imports no
exchange.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .child import ChildSa, new_spi
from .constants import NotifyType, ProtocolId
from .crypto import CryptoError, derive_ike_keys, get_dh_group, get_prf, get_sk_cipher, rekey_skeyseed, skeyseed
from .errors import ExchangeError
from .events import ChildSaDown, IkeSaUp
from .message import SaKeys
from .nat import arm_keepalive
from .payloads import KePayload, Proposal, SaPayload, TrafficSelector, TsiPayload, TsrPayload
from .proposals import InvalidKe, NoProposalChosen, describe_suite, select_esp
from .sa import IkeSa
from .state import IKE_INITIAL, IkeState, transition
from .timers import IkeTimer, arm_child, arm_ike
from .transforms import integ_name, prf_name
from .ts import narrow

# INVALID_KE_PAYLOAD names the group the peer wants (§1.2, §1.3): vgw tries again
# with it, this many times per exchange
MAX_KE_RETRIES = 3


# --- the IKE SA ------------------------------------------------------------------------


def new_ike_spi(random_bytes) -> bytes:
    """An IKE SPI: eight random octets, never zero (§3.1)."""
    while True:
        spi = random_bytes(8)
        if spi != bytes(8):
            return spi


def install_keys(sa, suite, shared: bytes, skeyseed_value: bytes | None = None) -> None:
    """Derive SK_* (§2.14) and switch the SA to them."""
    prf = get_prf(suite.prf)
    cipher = get_sk_cipher(suite.encr.id, suite.encr.key_bits, suite.integ)
    seed = skeyseed_value or skeyseed(prf, sa.nonce_i, sa.nonce_r, shared)
    k = derive_ike_keys(prf, seed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r,
                        cipher.integ_key_size, cipher.key_size)
    sa.suite, sa.prf = suite, prf
    sa.sk_d, sa.sk_pi, sa.sk_pr = k.sk_d, k.sk_pi, k.sk_pr
    sa.keys = SaKeys(cipher, k.sk_ei, k.sk_er, k.sk_ai, k.sk_ar)


def ike_up(sa, now: float, rekeyed: bool = False) -> None:
    """The IKE SA is up: after IKE_AUTH (§1.2), or a new one from a rekey handed
    its CHILD SAs (§2.18; it was born ESTABLISHED). Announce it, arm its timers."""
    if not rekeyed:
        transition(sa, IkeState.ESTABLISHED)
    sa.established_at = now
    sa.last_inbound = now
    sa.timers.pop(IkeTimer.HALF_OPEN, None)
    s = sa.suite
    sa.emit(IkeSaUp(sa.spi_i, sa.spi_r, sa.initiator, sa.local, sa.remote, s.encr.aws_name,
                    integ_name(s.integ), prf_name(s.prf), s.dh, sa.peer_behind_nat,
                    sa.local_behind_nat, sa.remote_identity, rekeyed))
    if not rekeyed:
        sa.log(f"AWS tunnel phase 1 is established with cgw: {sa.remote[0]} "
               f"(remote id {sa.remote_identity})")
    arm_ike(sa, now)
    arm_keepalive(sa, now)   # RFC 3948 §2.3, when vgw is behind a NAT


def responder_key_exchange(sa, group_id: int, peer_public: bytes, peer: str,
                           fatal: bool = False) -> tuple[bytes, bytes]:
    """The responder's half of a Diffie-Hellman exchange (IKE_SA_INIT §1.2,
    CREATE_CHILD_SA §1.3): our public value and the shared secret. The peer's
    value is checked before vgw makes a key of its own (RFC 6989), so a bad one
    costs no key generation; it is refused with INVALID_SYNTAX (`fatal`: the IKE
    SA ends after the answer)."""
    try:
        group = get_dh_group(group_id)
        group.check_public(peer_public)
        key = group.generate()
        shared = key.shared_secret(peer_public)
    except CryptoError as exc:
        sa.log(f"AWS tunnel rejected the KE payload of cgw: {peer}: {exc}", "warning")
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "invalid KE public value", fatal=fatal)
    return key.public_bytes, shared


def successor(sa, suite, spi_i: bytes, spi_r: bytes, ni: bytes, nr: bytes, shared: bytes,
              initiator: bool, now: float) -> IkeSa:
    """The IKE SA that replaces `sa` (§1.3.2), not yet holding its CHILD SAs. Its
    SKEYSEED is prf(SK_d(old), g^ir(new) | Ni | Nr) with the old SA's PRF (§2.18)."""
    new = IkeSa(sa.settings, initiator=initiator, local=sa.local, remote=sa.remote, created=now,
                spi_i=spi_i, spi_r=spi_r, state=IKE_INITIAL["rekey"], handlers=sa.handlers,
                frag_budget=sa.frag_budget)
    new.nonce_i, new.nonce_r = ni, nr
    new.peer_behind_nat, new.local_behind_nat = sa.peer_behind_nat, sa.local_behind_nat
    new.peer_fragmentation = sa.peer_fragmentation
    new.remote_identity = sa.remote_identity
    new.last_inbound = now
    install_keys(new, suite, shared, rekey_skeyseed(sa.prf, sa.sk_d, shared, ni, nr))
    return new


def hand_over(old, new, now: float) -> None:
    """Move the CHILD SAs to the new IKE SA and announce it (make-before-break,
    §2.18); the old one is REKEYED until a DELETE ends it."""
    new.children, old.children = old.children, {}
    old.successor = new
    transition(old, IkeState.REKEYED)
    old.spawned.append(new)
    ike_up(new, now, rekeyed=True)
    # CHILD SA exchanges still waiting for the old SA's window (e.g. `vgw rekey
    # --child` right after `--ike`) follow their CHILD SAs; left behind they would
    # find no CHILD SA there and be dropped, and a dropped rekey is not retried
    for ex in [e for e in old.queue if e.moves_with_child and e.spi_in in new.children]:
        old.queue.remove(ex)
        new.start(ex, now)
    old.log(f"AWS tunnel rekeyed IKE_SA with cgw: {old.remote[0]}: new SPIs "
            f"{new.spi_i.hex()}_i {new.spi_r.hex()}_r, {describe_suite(new.suite)}")


def lost_collision(ours: tuple[bytes, bytes], theirs: tuple[bytes, bytes]) -> bool:
    """§2.8.1: of two simultaneous rekeys, the exchange holding the lowest of the
    four nonces made the redundant SA."""
    return min(ours) < min(theirs)


# --- CHILD SAs ----------------------------------------------------------------------------


def add_child(sa, child: ChildSa, now: float, shared: bytes | None = None,
              replaces: int | None = None, outbound_ready: bool = True) -> None:
    """Derive the CHILD SA's keys (§2.17), install it, arm its timers, announce it."""
    child.derive(sa.prf, sa.sk_d, shared)
    sa.children[child.spi_in] = child
    arm_child(sa, child, now)
    sa.emit(child.up_event(sa.local, sa.remote, sa.udp_encap, sa.settings.replay_window,
                           sa.settings.phase2_lifetime, replaces, outbound_ready))
    sa.log(f"AWS tunnel phase 2 is established with cgw: {sa.remote[0]}: "
           f"SPI in {child.spi_in:08x} out {child.spi_out:08x}, "
           f"{', '.join(str(t) for t in child.local_ts)} <=> "
           f"{', '.join(str(t) for t in child.remote_ts)}, {child.suite.encr.aws_name}"
           + (f"/{integ_name(child.suite.integ)}" if integ_name(child.suite.integ) else "")
           + (" in UDP" if sa.udp_encap else ""))


def remove_child(sa, spi_in: int, reason: str) -> None:
    child = sa.children.pop(spi_in, None)
    if child is not None:
        sa.emit(ChildSaDown(child.spi_in, child.spi_out, reason))


def holder(sa, spi_in: int):
    """The IKE SA that holds CHILD SA `spi_in` now: an IKE rekey while our DELETE
    was out moved it to the new IKE SA (§2.18)."""
    here = sa
    while here is not None and spi_in not in here.children:
        here = here.successor
    return here or sa


@dataclass
class NewChild:
    """A CHILD SA the responder chose, not installed yet, and what its answer carries."""

    child: ChildSa
    proposal: Proposal                    # the one proposal of our SA payload
    their_ts: list[TrafficSelector]      # TSi of the answer
    our_ts: list[TrafficSelector]        # TSr of the answer
    ke: KePayload | None = None          # with PFS: our KE payload
    shared: bytes | None = None          # with PFS: g^ir for the keys (§2.17)

    def payloads(self) -> list:
        return [SaPayload([self.proposal]), TsiPayload(self.their_ts), TsrPayload(self.our_ts)]


def responder_child(sa, sa_payload: SaPayload, tsi: TsiPayload, tsr: TsrPayload, now: float,
                    peer: str, nonce_i: bytes, nonce_r: bytes | None = None,
                    ke: KePayload | None = None, rekey: bool = False) -> NewChild:
    """The responder's new CHILD SA: one of the peer's ESP proposals the AWS way,
    its traffic selectors narrowed to the configured ones (§2.9), for a rekey a
    Diffie-Hellman exchange from the phase 2 groups (PFS, docs/aws.md §1.4) and
    a fresh Nr. IKE_AUTH (§1.2) passes the IKE SA's nonces (§2.17). `peer`: the
customer gateway's address, for the log.

    Raises ExchangeError with the notify to answer: NO_PROPOSAL_CHOSEN,
    INVALID_KE_PAYLOAD (naming the group vgw wants), TS_UNACCEPTABLE,
    INVALID_SYNTAX (a bad KE value)."""
    p = sa.settings
    proposals = sa_payload.proposals
    spi_in = new_spi(p.random_bytes)
    try:
        if rekey:
            proposal, suite = select_esp(proposals, p.phase2_encryption, p.phase2_integrity,
                                         struct.pack("!I", spi_in), p.phase2_dh_groups,
                                         ke.group if ke else None, pfs=True)
        else:
            proposal, suite = select_esp(proposals, p.phase2_encryption, p.phase2_integrity,
                                         struct.pack("!I", spi_in))
    except InvalidKe as exc:
        sa.log(f"AWS tunnel is sending INVALID_KE_PAYLOAD for CREATE_CHILD_SA: wants DH group {exc.group}")
        raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "other PFS group wanted",
                            struct.pack("!H", exc.group))
    except NoProposalChosen:
        if rekey:
            sa.log("No Proposal Match Found by AWS: the Phase 2 rekey must use PFS with a "
                   "configured phase2_dh_group_numbers group", "error")
        else:
            sa.log("No Proposal Match Found by AWS", "error")
            sa.log('No Proposal Match Found. Notifying with "No proposal chosen"', "error")
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "no phase 2 proposal in common")
    if rekey and (ke is None or ke.group != suite.dh):
        raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "KE missing", struct.pack("!H", suite.dh))
    their_ts = narrow(tsi.selectors, p.cgw_ts)   # TSi: the initiator's (customer) side
    our_ts = narrow(tsr.selectors, p.vgw_ts)     # TSr: the AWS side
    if not their_ts or not our_ts:
        sa.log(f"AWS tunnel cannot narrow the traffic selectors of cgw: {peer} "
               f"({', '.join(map(str, tsi.selectors))} <=> {', '.join(map(str, tsr.selectors))}) "
               f"to {p.cgw_ts} <=> {p.vgw_ts}: sending TS_UNACCEPTABLE", "error")
        raise ExchangeError(NotifyType.TS_UNACCEPTABLE, "selectors outside the configuration")
    our_ke = shared = None
    if rekey:
        public, shared = responder_key_exchange(sa, suite.dh, ke.data, peer)
        our_ke = KePayload(suite.dh, public)
    if nonce_r is None:
        nonce_r = p.random_bytes(p.nonce_size)
    chosen = next(pp for pp in proposals if pp.num == proposal.num and pp.protocol == ProtocolId.ESP)
    child = ChildSa(spi_in, struct.unpack("!I", chosen.spi)[0], suite, tuple(our_ts),
                    tuple(their_ts), now, False, nonce_i, nonce_r)
    return NewChild(child, proposal, their_ts, our_ts, our_ke, shared)
