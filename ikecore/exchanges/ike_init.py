"""IKE_SA_INIT (RFC 7296 §1.2): proposals, key exchange, nonces, NAT detection.

Both roles: `IkeInit` is the initiator's request (with the INVALID_KE and COOKIE
retries of §1.2 and §2.6), `respond` the responder's side. Its state changes:
the initiator INIT_SENT -> AUTH_SENT, the responder INIT_RECEIVED -> HALF_OPEN
(ikecore.state).
"""

from __future__ import annotations

import struct

from ..constants import ExchangeType, NotifyType, ProtocolId
from ..crypto import CryptoError, get_dh_group
from ..errors import CookieRequired, ExchangeError
from ..message import encode_chain
from ..nat import detect, nat_hash
from ..payloads import KePayload, NoncePayload, NotifyPayload, SaPayload
from ..proposals import (
    InvalidKe, NoProposalChosen, check_answer, describe_offer, describe_suite, ike_offer, select_ike,
)
from ..sa_operations import MAX_KE_RETRIES, install_keys, new_ike_spi, responder_key_exchange
from ..state import IkeState, transition
from ..timers import IkeTimer
from . import authenticate
from .base import Exchange
from .ike_auth import IkeAuth


def nat_notifies(spi_i: bytes, spi_r: bytes, local, remote) -> list[NotifyPayload]:
    return [NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, nat_hash(spi_i, spi_r, *local)),
            NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, nat_hash(spi_i, spi_r, *remote))]


def note_nat(sa, msg, spi_r: bytes, local, remote) -> None:
    sources = [n.data for n in msg.notifies() if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dest = msg.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
    sa.peer_behind_nat, sa.local_behind_nat = detect(
        sa.spi_i, spi_r, sources, dest.data if dest else None, remote, local)
    if sa.peer_behind_nat or sa.local_behind_nat:
        where = "cgw" if sa.peer_behind_nat else "AWS side"
        sa.log(f"AWS tunnel detected NAT on the {where} (NAT-T): cgw: {remote[0]}")


class IkeInit(Exchange):
    TYPE = ExchangeType.IKE_SA_INIT

    def __init__(self, group: int | None = None):
        self.group = group
        self.cookie: bytes | None = None
        self.offered = []
        self.ke_retries = 0

    def build(self, sa, now):
        p = sa.settings
        if self.group is None:
            self.group = p.phase1_dh_groups[0]
        if not sa.nonce_i:
            sa.nonce_i = p.random_bytes(p.nonce_size)
        if sa.dh_key is None or sa.dh_key.group.id != self.group:
            sa.dh_key = get_dh_group(self.group).generate()
        sa_payload = SaPayload(ike_offer(p.phase1_encryption, p.phase1_integrity,
                                         p.phase1_dh_groups, first_group=self.group))
        self.offered = sa_payload.proposals
        payloads = []
        if self.cookie is not None:
            payloads.append(NotifyPayload(NotifyType.COOKIE, self.cookie))  # first (§2.6)
        payloads += [sa_payload, KePayload(self.group, sa.dh_key.public_bytes),
                     NoncePayload(sa.nonce_i)]
        payloads += nat_notifies(sa.spi_i, bytes(8), sa.local, sa.remote)
        return payloads + authenticate.init_payloads(sa)

    def sent(self, sa, data):
        sa.init_request = data  # RealMessage1: the last one sent is the one signed

    def process(self, sa, msg, now):
        cookie = msg.notify(NotifyType.COOKIE)
        if cookie is not None and not msg.get(SaPayload):
            if self.cookie is not None and self.cookie == cookie.data:
                raise ExchangeError(NotifyType.INVALID_SYNTAX, "responder repeats the same cookie")
            self.cookie = cookie.data
            sa.log(f"AWS tunnel received a COOKIE challenge from cgw: {sa.remote[0]}", "debug")
            return True
        inv = msg.notify(NotifyType.INVALID_KE_PAYLOAD)
        if inv is not None:
            group = struct.unpack("!H", inv.data)[0] if len(inv.data) == 2 else 0
            if (group in sa.settings.phase1_dh_groups and group != self.group
                    and self.ke_retries < MAX_KE_RETRIES):
                self.ke_retries += 1
                sa.log(f"AWS tunnel received INVALID_KE_PAYLOAD, cgw: {sa.remote[0]} wants "
                       f"DH group {group}; retrying")
                self.group = group
                return True
            raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD,
                                f"cgw asks for DH group {group}, which is not configured")
        err = msg.error_notify()
        if err is not None:
            if err.notify_type == NotifyType.NO_PROPOSAL_CHOSEN:
                sa.log("No Proposal Match Found: cgw answered NO_PROPOSAL_CHOSEN to our "
                       "phase 1 proposals", "error")
            raise ExchangeError(err.notify_type, f"cgw answered {err.name}")
        sa_p, ke, nonce = msg.get(SaPayload), msg.get(KePayload), msg.get(NoncePayload)
        if not (sa_p and ke and nonce) or msg.header.spi_r == bytes(8):
            raise ExchangeError(NotifyType.INVALID_SYNTAX, "IKE_SA_INIT response lacks SA, KE or Nonce")
        try:
            suite = check_answer(self.offered, sa_p.proposals, ProtocolId.IKE)
        except NoProposalChosen as exc:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, f"bad IKE_SA_INIT answer: {exc}")
        if suite.dh != self.group or ke.group != self.group:
            raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "responder changed the DH group")
        try:
            shared = sa.dh_key.shared_secret(ke.data)
        except CryptoError as exc:
            raise ExchangeError(NotifyType.INVALID_SYNTAX, f"bad KE from cgw: {exc}")
        sa.spi_r = msg.header.spi_r
        sa.nonce_r = nonce.data
        install_keys(sa, suite, shared)
        sa.init_response = msg.raw
        sa.dh_key = None
        note_nat(sa, msg, sa.spi_r, sa.local, sa.remote)
        authenticate.note_init(sa, msg)   # fragmentation, signature hashes
        if sa.udp_encap:
            # §2.23: with a NAT, the initiator moves to port 4500 for IKE_AUTH
            sa.local, sa.remote = (sa.local[0], 4500), (sa.remote[0], 4500)
        sa.log(f"AWS tunnel negotiated phase 1 with cgw: {sa.remote[0]}: {describe_suite(suite)}")
        transition(sa, IkeState.AUTH_SENT)
        sa.start(IkeAuth(), now, front=True)
        return False

    def timed_out(self, sa, now):
        sa.log(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: "
               f"{sa.remote[0]}", "warning")
        sa.fail("no answer to IKE_SA_INIT", "timeout")


def _answer_size(sa, proposal, group, request) -> int:
    """The exact size of our IKE_SA_INIT response, computed before any DH work."""
    payloads = ([SaPayload([proposal]), KePayload(group.id, bytes(group.public_size)),
                 NoncePayload(bytes(sa.settings.nonce_size))]
                + nat_notifies(sa.spi_i, bytes(8), ("0.0.0.0", 0), ("0.0.0.0", 0))
                + authenticate.init_payloads(sa, request))   # CERTREQ and notifies
    return 28 + len(encode_chain(payloads)[1])


def respond(sa, msg, now, local, remote):
    """Responder: choose a suite the AWS way, or refuse with NO_PROPOSAL_CHOSEN /
    INVALID_KE_PAYLOAD (answers that keep no state)."""
    p = sa.settings
    sa_p, ke, nonce = msg.get(SaPayload), msg.get(KePayload), msg.get(NoncePayload)
    if not (sa_p and ke and nonce):
        raise ExchangeError(NotifyType.INVALID_SYNTAX, "IKE_SA_INIT without SA, KE or Nonce", fatal=True)
    try:
        proposal, suite = select_ike(sa_p.proposals, p.phase1_encryption, p.phase1_integrity,
                                     p.phase1_dh_groups, ke.group)
    except InvalidKe as exc:
        sa.log(f"AWS tunnel is sending INVALID_KE_PAYLOAD to cgw: {remote[0]}: wants DH group "
               f"{exc.group}, got {ke.group}")
        raise ExchangeError(NotifyType.INVALID_KE_PAYLOAD, "other DH group wanted",
                            struct.pack("!H", exc.group), fatal=True)
    except NoProposalChosen:
        sa.log("No Proposal Match Found by AWS", "error")
        sa.log(f"cgw: {remote[0]} offered phase 1: {describe_offer(sa_p.proposals)}", "debug")
        sa.log('No Proposal Match Found. Notifying with "No proposal chosen"', "error")
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "no phase 1 proposal in common", fatal=True)
    group = get_dh_group(suite.dh)
    if not sa.proven and _answer_size(sa, proposal, group, msg) > len(msg.raw):
        # no amplification: an address that did not return a cookie gets no more
        # bytes than it sent, and no DH work is spent on it
        raise CookieRequired()
    # RFC 6989: the peer's value is checked before vgw makes a key of its own (for
    # groups 22-24 the check itself is an exponentiation; shared_secret repeats it)
    public, shared = responder_key_exchange(sa, suite.dh, ke.data, remote[0], fatal=True)
    sa.spi_r = new_ike_spi(p.random_bytes)
    sa.nonce_i = nonce.data
    sa.nonce_r = p.random_bytes(p.nonce_size)
    sa.init_request = msg.raw
    install_keys(sa, suite, shared)
    note_nat(sa, msg, bytes(8), local, remote)
    authenticate.note_init(sa, msg)   # fragmentation, signature hashes
    transition(sa, IkeState.HALF_OPEN)
    sa.timers[IkeTimer.HALF_OPEN] = now + p.half_open_timeout
    sa.log(f"AWS tunnel negotiated phase 1 with cgw: {remote[0]}: {describe_suite(suite)}")
    return ([SaPayload([proposal]), KePayload(suite.dh, public), NoncePayload(sa.nonce_r)]
            + nat_notifies(sa.spi_i, sa.spi_r, local, remote)
            + authenticate.init_payloads(sa, msg))
