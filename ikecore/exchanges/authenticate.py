"""Who vgw is and how it proves it in IKE_AUTH, and how it checks the customer
gateway: a pre-shared key (RFC 7296 §2.15) or certificates with signatures
(RFC 7296 §3.6-§3.8, RFC 7427), as AWS offers both (docs/aws.md §2: "PSK or AWS
Private CA certificate"). ike_auth.py keeps the flow of the exchange; this
module holds the two methods. Also the IKE_SA_INIT notifies that prepare them.

Every refusal logs why, in AWS's tone, then raises AuthFailed; the caller
answers (or notifies) AUTHENTICATION_FAILED.
"""

from __future__ import annotations

from ..auth import psk_auth, psk_verify
from ..certs import (
    CertError, Identity, cert_vouches_for, describe_id, dn_text, subject_text, utc, validate_chain,
)
from ..constants import AuthMethod, CertEncoding, NotifyType
from ..payloads import AuthPayload, CertPayload, CertReqPayload, NotifyPayload
from ..sigauth import SignatureError, hash_notify, parse_hash_notify, sign, verify

SIGNATURE_METHODS = (AuthMethod.RSA_SIG, AuthMethod.ECDSA_SHA256_P256,
                     AuthMethod.ECDSA_SHA384_P384, AuthMethod.DIGITAL_SIGNATURE)


class AuthFailed(Exception):
    """The peer did not authenticate; the cause is already logged."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def uses_certificates(settings) -> bool:
    return settings.credentials is not None


# --- IKE_SA_INIT ----------------------------------------------------------------------


def init_payloads(sa, request=None) -> list:
    """What vgw adds to its IKE_SA_INIT message: IKEV2_FRAGMENTATION_SUPPORTED
    (RFC 7383 §2.3) and, for a certificate tunnel, SIGNATURE_HASH_ALGORITHMS
    (RFC 7427 §4) and in the response CERTREQ naming the configured CAs (RFC 7296
    §3.7: the initiator then sends its certificate). A responder (`request` given)
    answers the two notifies only when the initiator sent them (RFC 7383 §2.3),
    which also keeps the answer no larger than needed."""
    p = sa.settings
    certs = uses_certificates(p)
    if request is None:
        return [NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)] + ([hash_notify()] if certs else [])
    out = []
    if certs and p.trust is not None and p.trust.ders:
        out.append(CertReqPayload(CertEncoding.X509_SIGNATURE, p.trust.certreq_data()))
    if request.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED):
        out.append(NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    if certs and request.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS):
        out.append(hash_notify())
    return out


def note_init(sa, msg) -> None:
    """What the peer's IKE_SA_INIT says it supports."""
    sa.peer_fragmentation = bool(msg.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    hashes = msg.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    sa.peer_sig_hashes = parse_hash_notify(hashes.data) if hashes is not None else ()


# --- proving who vgw is -------------------------------------------------------------------


def prove(sa, octets: bytes, initiator: bool) -> list:
    """CERT payloads (end-entity first, then intermediates), for an initiator a
    CERTREQ, then AUTH over `octets`."""
    p = sa.settings
    if not uses_certificates(p):
        if not p.psk:
            sa.log("AWS tunnel has no pre-shared key configured", "error")
            raise AuthFailed("no pre-shared key configured")
        return [AuthPayload(AuthMethod.PSK, psk_auth(sa.prf, p.psk, octets))]
    creds = p.credentials
    out = [CertPayload(CertEncoding.X509_SIGNATURE, d) for d in creds.chain]
    if initiator and p.trust is not None and p.trust.ders:
        out.append(CertReqPayload(CertEncoding.X509_SIGNATURE, p.trust.certreq_data()))
    method, data, scheme = sign(creds.private_key, octets, sa.peer_sig_hashes)
    how = "RFC 7427" if method == AuthMethod.DIGITAL_SIGNATURE else f"AUTH method {int(method)}"
    sa.log(f"AWS tunnel authenticates as {describe_id(*creds.id_body())} with {scheme} ({how})", "debug")
    return out + [AuthPayload(method, data)]


# --- checking the peer ----------------------------------------------------------------------


def check_peer(sa, msg, id_payload, auth: AuthPayload, octets: bytes) -> None:
    """Authenticate the peer's ID and AUTH; raises AuthFailed (after logging why)."""
    peer = sa.remote[0]
    if uses_certificates(sa.settings):
        _check_signature(sa, msg, id_payload, auth, octets)
    else:
        if auth.method != AuthMethod.PSK:
            sa.log(f"AWS tunnel refused authentication method {auth.method} from cgw: {peer}: "
                   "this tunnel uses a pre-shared key", "error")
            raise AuthFailed("wrong auth method")
        if not sa.settings.psk:
            sa.log("AWS tunnel has no pre-shared key configured", "error")
            raise AuthFailed("no pre-shared key configured")
        if not psk_verify(sa.prf, sa.settings.psk, octets, auth.data):
            sa.log(f"AWS tunnel detected a pre-shared key mismatch with cgw: {peer}", "error")
            raise AuthFailed("pre-shared key mismatch")
    want = sa.settings.remote_id
    if want and not _identity_matches(want, id_payload, sa.remote_identity):
        sa.log(f"AWS tunnel refused cgw: {peer}: identity {sa.remote_identity} "
               f"is not the configured {want}{_identity_hint(want, id_payload)}", "error")
        raise AuthFailed(f"unexpected identity {sa.remote_identity}")


def _identity_matches(want: str, id_payload, shown: str) -> bool:
    try:
        return Identity.parse(want).matches(id_payload.id_type, id_payload.data)
    except ValueError:
        return want == shown


def _identity_hint(want: str, id_payload) -> str:
    """What to change when the configured DN is the peer's in reverse RDN order."""
    try:
        return Identity.parse(want).mismatch_hint(id_payload.id_type, id_payload.data)
    except ValueError:
        return ""


def _check_signature(sa, msg, id_payload, auth: AuthPayload, octets: bytes) -> None:
    p, peer = sa.settings, sa.remote[0]
    if auth.method not in SIGNATURE_METHODS:
        what = "a pre-shared key" if auth.method == AuthMethod.PSK else f"method {auth.method}"
        sa.log(f"AWS tunnel refused authentication with {what} from cgw: {peer}: "
               "this tunnel uses certificates", "error")
        raise AuthFailed("wrong auth method")
    certs = [c.data for c in msg.all(CertPayload) if c.encoding == CertEncoding.X509_SIGNATURE]
    others = [c.encoding for c in msg.all(CertPayload) if c.encoding != CertEncoding.X509_SIGNATURE]
    if others:
        sa.log(f"AWS tunnel ignores CERT payloads of encoding {others} from cgw: {peer}", "debug")
    if not certs:
        sa.log(f"AWS tunnel received no certificate from cgw: {peer} (identity "
               f"{sa.remote_identity}); it must send its certificate (vgw asked with CERTREQ)", "error")
        raise AuthFailed("no certificate")
    if p.wall_time is None or p.trust is None:
        sa.log("AWS tunnel cannot validate certificates: no CA or no clock configured", "error")
        raise AuthFailed("certificates cannot be validated")
    try:
        leaf = validate_chain(certs, p.trust, utc(p.wall_time()))
    except CertError as exc:
        sa.log(f"AWS tunnel rejected the certificate of cgw: {peer}: {exc.reason}", "error")
        raise AuthFailed(f"certificate rejected: {exc.reason}") from None
    if not cert_vouches_for(leaf, id_payload.id_type, id_payload.data):
        sa.log(f"AWS tunnel refused cgw: {peer}: identity {sa.remote_identity} is not in its "
               f"certificate (subject {subject_text(leaf)})", "error")
        raise AuthFailed(f"identity {sa.remote_identity} not in the certificate")
    try:
        scheme = verify(leaf.public_key(), auth.method, auth.data, octets)
    except SignatureError as exc:
        sa.log(f"AWS tunnel could not verify the AUTH signature of cgw: {peer}: {exc.reason}", "error")
        raise AuthFailed(f"bad signature: {exc.reason}") from None
    how = "RFC 7427" if auth.method == AuthMethod.DIGITAL_SIGNATURE else f"AUTH method {auth.method}"
    sa.log(f"AWS tunnel authenticated cgw: {peer} as {sa.remote_identity} with {scheme} ({how}), "
           f"certificate issued by {dn_text(leaf.issuer)}")
