"""IKE_AUTH (RFC 7296 §1.2, §2.15): identities, authentication (a PSK or
certificates: exchanges/authenticate.py) and the first CHILD SA, which takes its
keys from the IKE SA (no KE: PFS groups apply to rekeys only).

A failure of the CHILD SA part does not fail the IKE SA (§1.2): the response
carries AUTH plus the error notify, and AWS logs "Phase 2 was unable to
establish while keeping Phase 1" (docs/aws.md §3.3).

Its state changes: AUTH_SENT (initiator) or HALF_OPEN (responder) ->
ESTABLISHED (ikecore.state); the responder's HALF_OPEN ends when IKE_AUTH does
not come in time (IkeTimer.HALF_OPEN).
"""

from __future__ import annotations

import ipaddress
import struct

from ..auth import signed_octets
from ..certs import Identity, describe_id, parse_dn
from ..child import ChildSa, new_spi
from ..constants import ExchangeType, IdType, NotifyType, ProtocolId
from ..errors import ExchangeError
from ..payloads import (
    AuthPayload, IdiPayload, IdrPayload, NotifyPayload, SaPayload, TsiPayload, TsrPayload,
)
from ..proposals import NoProposalChosen, check_answer, esp_offer
from ..sa_operations import add_child, ike_up, responder_child
from ..ts import covers, selectors_for
from . import authenticate
from .authenticate import AuthFailed
from .base import Exchange
from .informational import DeleteChild, Notify

CHILD_ERRORS = (NotifyType.NO_PROPOSAL_CHOSEN, NotifyType.TS_UNACCEPTABLE,
                NotifyType.SINGLE_PAIR_REQUIRED, NotifyType.INTERNAL_ADDRESS_FAILURE,
                NotifyType.FAILED_CP_REQUIRED, NotifyType.INVALID_SELECTORS,
                NotifyType.NO_ADDITIONAL_SAS)


class IkeAuth(Exchange):
    """Initiator side: AWS initiates with startup_action start (docs/aws.md §1.7)."""

    TYPE = ExchangeType.IKE_AUTH

    def build(self, sa, now):
        p = sa.settings
        self.spi_in = new_spi(p.random_bytes)
        idi = sa.our_id(IdiPayload)
        octets = signed_octets(sa.prf, sa.init_request, sa.nonce_r, sa.sk_pi, idi.encode_body())
        self.offered = esp_offer(p.phase2_encryption, p.phase2_integrity,
                                 struct.pack("!I", self.spi_in))
        self.tsi = selectors_for(p.vgw_ts)
        self.tsr = selectors_for(p.cgw_ts)
        try:
            proof = authenticate.prove(sa, octets, initiator=True)
        except AuthFailed as exc:
            raise ExchangeError(NotifyType.AUTHENTICATION_FAILED, exc.detail, fatal=True)
        # §1.2: IDi, [CERT,] [CERTREQ,] [IDr,] AUTH. docs/aws.md §1.7: AWS names the
        # CGW's identity (IDr) when it initiates, needed behind a NAT
        idr = _wanted_idr(p.remote_id) if p.remote_id else None
        certs, auth = proof[:-1], proof[-1]
        return ([idi, NotifyPayload(NotifyType.INITIAL_CONTACT), *certs, *([idr] if idr else []),
                 auth, SaPayload(self.offered), TsiPayload(self.tsi), TsrPayload(self.tsr)])

    def process(self, sa, msg, now):
        err = msg.error_notify()
        idr, auth = msg.get(IdrPayload), msg.get(AuthPayload)
        if err is not None and err.notify_type not in CHILD_ERRORS or not (idr and auth):
            why = err.name if err is not None else "no IDr/AUTH in the answer"
            sa.log(f"AWS tunnel authentication with cgw: {sa.remote[0]} failed: {why}", "error")
            sa.fail(f"IKE_AUTH refused: {why}", "auth-failed")
            return False
        sa.remote_identity = describe_id(idr.id_type, idr.data)
        octets = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.sk_pr, idr.encode_body())
        try:
            authenticate.check_peer(sa, msg, idr, auth, octets)
        except AuthFailed as exc:
            _notify_auth_failed(sa, now)
            sa.fail(exc.detail, "auth-failed")
            return False
        ike_up(sa, now)
        if err is not None:
            if err.notify_type == NotifyType.TS_UNACCEPTABLE:
                sa.log("AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder", "error")
            else:
                sa.log(f"AWS tunnel received {err.name} for phase 2 from cgw: {sa.remote[0]}", "error")
            sa.log("AWS tunnel Phase 2 was unable to establish while keeping Phase 1", "error")
            return False
        sa_p, tsi, tsr = msg.get(SaPayload), msg.get(TsiPayload), msg.get(TsrPayload)
        try:
            if not (sa_p and tsi and tsr):
                raise NoProposalChosen("answer lacks SA, TSi or TSr")
            suite = check_answer(self.offered, sa_p.proposals, ProtocolId.ESP)
            if suite.dh or suite.esn:
                raise NoProposalChosen("answer picked DH or ESN in IKE_AUTH")
            if not covers(self.tsi, tsi.selectors) or not covers(self.tsr, tsr.selectors):
                raise NoProposalChosen("answer widened the traffic selectors")
        except NoProposalChosen as exc:
            sa.log(f"AWS tunnel Phase 2 was unable to establish while keeping Phase 1: {exc}", "error")
            if sa_p is not None:
                # the responder installed its half: delete it (RFC 7296 §1.4.1)
                sa.start(DeleteChild(self.spi_in, "refused", installed=False), now)
            return False
        spi_out = struct.unpack("!I", sa_p.proposals[0].spi)[0]
        add_child(sa, ChildSa(self.spi_in, spi_out, suite, tuple(tsi.selectors),
                              tuple(tsr.selectors), now, True, sa.nonce_i, sa.nonce_r), now)
        return False

    def timed_out(self, sa, now):
        sa.log(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: "
               f"{sa.remote[0]}", "warning")
        sa.fail("no answer to IKE_AUTH", "timeout")


def half_open_expired(sa, now: float) -> None:
    """IkeTimer.HALF_OPEN: IKE_AUTH did not follow our IKE_SA_INIT answer in time."""
    sa.log(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: "
           f"{sa.remote[0]}", "warning")
    sa.fail("IKE_AUTH did not arrive in time", "half-open")


def _notify_auth_failed(sa, now) -> None:
    """§2.21.2: tell the responder its AUTH did not verify, without waiting."""
    sa.start(Notify(NotifyType.AUTHENTICATION_FAILED), now)


def _wanted_idr(remote_id: str) -> IdrPayload | None:
    """IDr naming the CGW identity vgw expects (RFC 7296 §1.2: the initiator may
    say whom it wants to talk to)."""
    try:
        ident = Identity.parse(remote_id)
    except ValueError:
        return None
    if ident.kind == "dn":
        return IdrPayload(IdType.DER_ASN1_DN, parse_dn(ident.text).public_bytes())
    if ident.kind == "ipv4":
        return IdrPayload(IdType.IPV4_ADDR, ipaddress.IPv4Address(ident.text).packed)
    return IdrPayload(IdType.FQDN, ident.text.encode("ascii"))


def respond(sa, msg, now, local, remote):
    idi, auth = msg.get(IdiPayload), msg.get(AuthPayload)
    if not (idi and auth):
        sa.log(f"AWS tunnel is sending AUTHENTICATION_FAILED as the response: cgw: {remote[0]} "
               "sent no AUTH payload (EAP is not supported)", "error")
        raise ExchangeError(NotifyType.AUTHENTICATION_FAILED, "no AUTH payload", fatal=True)
    sa.remote_identity = describe_id(idi.id_type, idi.data)
    octets = signed_octets(sa.prf, sa.init_request, sa.nonce_r, sa.sk_pi, idi.encode_body())
    idr = sa.our_id(IdrPayload)
    octets_r = signed_octets(sa.prf, sa.init_response, sa.nonce_i, sa.sk_pr, idr.encode_body())
    try:
        authenticate.check_peer(sa, msg, idi, auth, octets)
        proof = authenticate.prove(sa, octets_r, initiator=False)
    except AuthFailed as exc:
        sa.log("AWS tunnel is sending AUTHENTICATION_FAILED as the response", "error")
        raise ExchangeError(NotifyType.AUTHENTICATION_FAILED, exc.detail, fatal=True)
    sa.initial_contact = bool(msg.notify(NotifyType.INITIAL_CONTACT))
    answer = [idr] + proof
    ike_up(sa, now)

    sa_p, tsi, tsr = msg.get(SaPayload), msg.get(TsiPayload), msg.get(TsrPayload)
    if not (sa_p and tsi and tsr):
        return answer  # childless IKE_AUTH (RFC 6023): nothing more to answer
    try:
        new = responder_child(sa, sa_p, tsi, tsr, now, remote[0], sa.nonce_i, sa.nonce_r)
    except ExchangeError as exc:
        sa.log("AWS tunnel Phase 2 was unable to establish while keeping Phase 1", "error")
        return answer + [NotifyPayload(exc.notify, exc.notify_data)]
    add_child(sa, new.child, now)
    return answer + new.payloads()
