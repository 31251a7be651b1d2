"""Certificate authentication in IKE_AUTH, two vgw cores back to back
(ikepair): RSA and ECDSA, RFC 7427 and the classic methods, chains with an
intermediate CA, and every refusal answered with AUTHENTICATION_FAILED.

Certificates come from daemon.pki (the `vgw pki` builders), made at run time.
"""

from __future__ import annotations

import datetime
import hashlib
import time

import pytest
from cryptography.hazmat.primitives import serialization

from daemon import pki
from ikecore.certs import LocalCredentials, TrustAnchors, der, private_key_der
from ikecore.constants import AuthMethod, IdType, NotifyType
from ikecore.exchanges import authenticate
from ikecore.message import decode_message
from ikecore.payloads import AuthPayload, CertPayload, CertReqPayload, IdrPayload
from .ikepair import ADDR_A, ADDR_B, IkePair, settings_a, settings_b

class Lab:
    """A root CA, an intermediate, and end-entities for side A and side B."""

    def __init__(self, kind: str, intermediate: bool = False):
        self.kind = kind
        self.root = pki.make_ca("Test Root CA", kind)
        self.issuer = pki.make_ca("Test Intermediate CA", kind, issuer=self.root) if intermediate else self.root
        self.a = pki.make_end_entity("vgw-a.example.net", self.issuer, kind)
        self.b = pki.make_end_entity("vgw-b.example.net", self.issuer, kind)
        # the wall time the cores check validity against: taken when the
        # certificates were made (valid from 5 minutes before), not at import:
        # a module fixture may be built many minutes after collection
        self.clock = time.time()

    @property
    def trust(self) -> TrustAnchors:
        return TrustAnchors((der(self.root.cert),))


def creds(issued, fqdn=None, key=None) -> LocalCredentials:
    chain = tuple(der(c) for c in (issued.cert, *issued.chain))
    return LocalCredentials(chain, private_key_der(key or issued.key), fqdn)


def cert_policies(lab: Lab, a: dict | None = None, b: dict | None = None):
    """Both sides with certificates. Fragments only from 4000 bytes on, so that the
    tests read whole messages off the wire (test_chain_with_intermediate_... lowers it)."""
    pa = dict(psk=None, credentials=creds(lab.a), trust=lab.trust, wall_time=lambda: lab.clock,
              fragment_size=4000)
    pb = dict(psk=None, credentials=creds(lab.b), trust=lab.trust, wall_time=lambda: lab.clock,
              fragment_size=4000)
    pa.update(a or {})
    pb.update(b or {})
    return settings_a(**pa), settings_b(**pb)


@pytest.fixture(scope="module")
def ecdsa():
    return Lab("ecdsa")


@pytest.fixture(scope="module")
def rsa_chain():
    return Lab("rsa", intermediate=True)


def up(pair) -> None:
    assert len(pair.a.ups) == 1 and len(pair.b.ups) == 1, pair.a.logs + pair.b.logs
    assert len(pair.a.child_ups) == 1 and len(pair.b.child_ups) == 1


def refused_by_b(pair, words: str) -> None:
    """B logged why, answered AUTHENTICATION_FAILED, and both sides are down."""
    assert any(words in line for line in pair.b.logs), pair.b.logs
    assert pair.b.logged("AWS tunnel is sending AUTHENTICATION_FAILED as the response")
    assert pair.a.logged(f"AWS tunnel authentication with cgw: {ADDR_B} failed: AUTHENTICATION_FAILED")
    assert [d.reason for d in pair.a.downs] == ["auth-failed"]
    assert [d.reason for d in pair.b.downs] == ["auth-failed"]
    assert pair.a.ups == [] and pair.b.ups == []


def auth_messages(pair):
    """The plaintext payloads of A's IKE_AUTH request and B's response (SK only)."""
    keys = pair.b.endpoint.current.keys
    _, _, req, resp = [d for _, d in pair.wire][:4]
    return decode_message(req.data, keys=keys), decode_message(resp.data, keys=keys)


@pytest.mark.parametrize("kind,hash_name", [("ecdsa", "SHA2-256"), ("ecdsa-p384", "SHA2-384"),
                                            ("rsa", "SHA2-256")])
def test_rfc7427_handshake(kind, hash_name):
    lab = Lab(kind)
    pair = IkePair(*cert_policies(lab))
    pair.handshake()
    up(pair)
    algo = "ECDSA" if kind.startswith("ecdsa") else "RSA"
    assert pair.b.logged(f"AWS tunnel authenticated cgw: {ADDR_A} as CN=vgw-a.example.net with "
                         f"{algo} with {hash_name} (RFC 7427), certificate issued by CN=Test Root CA")
    assert pair.a.ups[0].remote_id == "CN=vgw-b.example.net"
    assert pair.b.ups[0].remote_id == "CN=vgw-a.example.net"
    req, resp = auth_messages(pair)
    for msg, issued in ((req, lab.a), (resp, lab.b)):
        [cert] = msg.all(CertPayload)
        assert (cert.encoding, cert.data) == (4, der(issued.cert))
        auth = msg.get(AuthPayload)
        assert auth.method == AuthMethod.DIGITAL_SIGNATURE
        ident = msg.payloads[0]
        assert ident.id_type == IdType.DER_ASN1_DN and ident.data == issued.cert.subject.public_bytes()
    # RFC 7296 §1.2 order in the request: IDi, N(INITIAL_CONTACT), CERT, CERTREQ, AUTH, SA, TSi, TSr
    assert [p.TYPE for p in req.payloads] == [35, 41, 37, 38, 39, 33, 44, 45]
    certreq = req.get(CertReqPayload)
    spki = lab.root.cert.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    assert certreq.authorities == [hashlib.sha1(spki).digest()]


def test_init_carries_hash_algorithms_and_certreq(ecdsa):
    pair = IkePair(*cert_policies(ecdsa))
    pair.handshake()
    init_req, init_resp = (decode_message(d.data) for _, d in pair.wire[:2])
    for msg in (init_req, init_resp):
        hashes = msg.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
        assert hashes is not None and hashes.data == bytes.fromhex("000200030004")
        assert msg.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
    assert init_req.get(CertReqPayload) is None                  # the initiator asks in IKE_AUTH
    assert init_resp.get(CertReqPayload).authorities == [
        hashlib.sha1(ecdsa.root.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()]


@pytest.mark.parametrize("kind,method", [("rsa", 1), ("ecdsa", 9), ("ecdsa-p384", 10)])
def test_classic_methods_without_rfc7427(monkeypatch, kind, method):
    """Peers that do not announce SIGNATURE_HASH_ALGORITHMS get the method of
    RFC 7296 §3.8 / RFC 4754 for the key, and vgw accepts it from them."""
    real = authenticate.init_payloads
    monkeypatch.setattr(authenticate, "init_payloads",
                        lambda sa, request=None: [p for p in real(sa, request)
                                                  if getattr(p, "notify_type", 0) != 16431])
    lab = Lab(kind)
    pair = IkePair(*cert_policies(lab))
    pair.handshake()
    up(pair)
    req, resp = auth_messages(pair)
    assert req.get(AuthPayload).method == method and resp.get(AuthPayload).method == method
    assert pair.b.logged(f"AWS tunnel authenticated cgw: {ADDR_A} as CN=vgw-a.example.net")
    assert any(f"(AUTH method {method})" in line for line in pair.b.logs)


def test_chain_with_intermediate_is_fragmented(rsa_chain):
    pair = IkePair(*cert_policies(rsa_chain, a=dict(fragment_size=1280), b=dict(fragment_size=1280)))
    pair.handshake()
    up(pair)
    skf = [(who, len(d.data)) for who, d in pair.wire if d.data[16] == 53]
    assert {who for who, _ in skf} == {"a", "b"}, "both IKE_AUTH messages went in fragments"
    assert all(size <= 1280 - 28 for _, size in skf)
    assert pair.b.logged(f"AWS tunnel authenticated cgw: {ADDR_A} as CN=vgw-a.example.net with RSA with "
                         "SHA2-256 (RFC 7427), certificate issued by CN=Test Intermediate CA")


def test_fqdn_identity_and_idr(ecdsa):
    """vgw presents a dNSName of its certificate (certificate_identity), and as
    initiator names the identity it wants (IDr) when one is configured."""
    pa, pb = cert_policies(ecdsa, a=dict(credentials=creds(ecdsa.a, fqdn="vgw-a.example.net"),
                                         remote_id="CN=vgw-b.example.net"),
                           b=dict(remote_id="vgw-a.example.net"))
    pair = IkePair(pa, pb)
    pair.handshake()
    up(pair)
    assert pair.b.ups[0].remote_id == "vgw-a.example.net"
    req, _ = auth_messages(pair)
    assert (req.payloads[0].id_type, req.payloads[0].data) == (IdType.FQDN, b"vgw-a.example.net")
    idr = req.get(IdrPayload)
    assert (idr.id_type, idr.data) == (IdType.DER_ASN1_DN, ecdsa.b.cert.subject.public_bytes())


def test_ipv4_identity_as_aws_psk_configurations_use_it(ecdsa):
    """Issue 16: a customer gateway configured as AWS's PSK configurations are
    (the AWS side's ID = the tunnel's outside IP, strongSwan `remote { id =
    198.51.100.1 }`) connects to a certificate tunnel whose certificate_identity
    is that address: vgw presents ID_IPV4_ADDR, found in the certificate's
    iPAddress subjectAltName (RFC 4945 §3.1.1)."""
    issued = pki.make_end_entity(ADDR_A, ecdsa.root, "ecdsa")       # SAN IP:ADDR_A
    pa, pb = cert_policies(ecdsa, a=dict(credentials=creds(issued, fqdn=ADDR_A)), b=dict(remote_id=ADDR_A))
    pair = IkePair(pa, pb)
    pair.handshake()
    up(pair)
    assert pair.b.ups[0].remote_id == ADDR_A
    req, _ = auth_messages(pair)
    assert (req.payloads[0].id_type, req.payloads[0].data) == (IdType.IPV4_ADDR, bytes(map(int, ADDR_A.split("."))))


def test_ipv4_identity_not_in_the_certificate_is_refused(ecdsa):
    pa, pb = cert_policies(ecdsa, a=dict(credentials=creds(ecdsa.a, fqdn=ADDR_A)), b=dict(remote_id=ADDR_A))
    pair = IkePair(pa, pb)
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel refused cgw: {ADDR_A}: identity {ADDR_A} is not in its certificate")


def test_a_peer_holding_the_intermediate_accepts_the_certificate_alone(rsa_chain):
    """Issue 16: vgw's certificate file lacks the intermediate that issued it
    (AWS Private CA's subordinate CA installed on the customer gateway): vgw
    sends its certificate alone, and a peer that trusts the intermediate
    accepts it."""
    leaf_only = LocalCredentials((der(rsa_chain.a.cert),), private_key_der(rsa_chain.a.key))
    holds_intermediate = TrustAnchors((der(rsa_chain.root.cert), der(rsa_chain.issuer.cert)))
    pair = IkePair(*cert_policies(rsa_chain, a=dict(credentials=leaf_only), b=dict(trust=holds_intermediate)))
    pair.handshake()
    up(pair)
    req, _ = auth_messages(pair)
    assert len(req.all(CertPayload)) == 1


def test_a_peer_without_the_intermediate_refuses_the_certificate_alone(rsa_chain):
    leaf_only = LocalCredentials((der(rsa_chain.a.cert),), private_key_der(rsa_chain.a.key))
    pair = IkePair(*cert_policies(rsa_chain, a=dict(credentials=leaf_only)))
    pair.handshake()
    refused_by_b(pair, "is not issued by a configured CA (issuer CN=Test Intermediate CA)")


def test_wrong_ca(ecdsa):
    other = Lab("ecdsa")
    pair = IkePair(*cert_policies(ecdsa, b=dict(trust=other.trust)))
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel rejected the certificate of cgw: {ADDR_A}: certificate "
                       "CN=vgw-a.example.net is not issued by a configured CA (issuer CN=Test Root CA)")


def test_expired_certificate(ecdsa):
    expired = pki.make_end_entity("vgw-a.example.net", ecdsa.root, "ecdsa", expired=True)
    pair = IkePair(*cert_policies(ecdsa, a=dict(credentials=creds(expired))))
    pair.handshake()
    refused_by_b(pair, "certificate CN=vgw-a.example.net expired on")


def test_the_core_clock_decides_validity(ecdsa):
    later = ecdsa.clock + 400 * 86400   # past the end-entity's 365 days
    pair = IkePair(*cert_policies(ecdsa, b=dict(wall_time=lambda: later)))
    pair.handshake()
    refused_by_b(pair, "certificate CN=vgw-a.example.net expired on")


def test_wrong_configured_identity(ecdsa):
    pair = IkePair(*cert_policies(ecdsa, b=dict(remote_id="CN=cgw.example.net")))
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel refused cgw: {ADDR_A}: identity CN=vgw-a.example.net is not the "
                       "configured CN=cgw.example.net")


def test_identity_not_in_the_certificate(ecdsa):
    pair = IkePair(*cert_policies(ecdsa, a=dict(credentials=creds(ecdsa.a, fqdn="other.example.net"))))
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel refused cgw: {ADDR_A}: identity other.example.net is not in its "
                       "certificate (subject CN=vgw-a.example.net)")


def test_signature_by_another_key(ecdsa):
    pair = IkePair(*cert_policies(ecdsa, a=dict(credentials=creds(ecdsa.a, key=ecdsa.b.key))))
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel could not verify the AUTH signature of cgw: {ADDR_A}: the ECDSA "
                       "with SHA2-256 signature does not verify")


def test_no_certificate_sent(ecdsa, monkeypatch):
    real = authenticate.prove

    def without_cert(sa, octets, initiator):
        return [p for p in real(sa, octets, initiator) if not (initiator and isinstance(p, CertPayload))]
    monkeypatch.setattr(authenticate, "prove", without_cert)
    pair = IkePair(*cert_policies(ecdsa))
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel received no certificate from cgw: {ADDR_A}")


def test_psk_against_certificates(ecdsa):
    pair = IkePair(settings_a(), cert_policies(ecdsa)[1])
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel refused authentication with a pre-shared key from cgw: {ADDR_A}: "
                       "this tunnel uses certificates")
    pair = IkePair(cert_policies(ecdsa)[0], settings_b())
    pair.handshake()
    # a PSK responder announces no signature hashes: the ECDSA initiator falls back to method 9
    refused_by_b(pair, f"AWS tunnel refused authentication method 9 from cgw: {ADDR_A}: "
                       "this tunnel uses a pre-shared key")


def test_initiator_refuses_the_responders_certificate(ecdsa):
    """vgw as initiator (startup_action start): the CGW's certificate is from an
    unknown CA; vgw notifies AUTHENTICATION_FAILED (RFC 7296 §2.21.2) and the
    responder, up after its answer, goes down on that notify."""
    other = Lab("ecdsa")
    pair = IkePair(*cert_policies(ecdsa, b=dict(credentials=creds(other.b))))
    pair.handshake()
    assert pair.a.logged(f"AWS tunnel rejected the certificate of cgw: {ADDR_B}: certificate "
                         "CN=vgw-b.example.net is not issued by a configured CA")
    assert [d.reason for d in pair.a.downs] == ["auth-failed"] and pair.a.ups == []
    assert len(pair.b.ups) == 1
    assert pair.b.logged(f"AWS tunnel received AUTHENTICATION_FAILED from cgw: {ADDR_A}")
    assert [d.reason for d in pair.b.downs] == ["auth-failed"]
    assert [who for who, _ in pair.wire] == ["a", "b", "a", "b", "a", "b"]


def test_psk_and_certificate_tunnels_side_by_side(ecdsa):
    """One process, two tunnels: each authenticates its own way."""
    cert_pair = IkePair(*cert_policies(ecdsa))
    psk_pair = IkePair()
    cert_pair.handshake()
    psk_pair.handshake()
    up(cert_pair)
    up(psk_pair)
    assert psk_pair.b.ups[0].remote_id == ADDR_A


def test_wall_time_is_only_read_for_certificates(ecdsa):
    calls = []
    pair = IkePair(*cert_policies(ecdsa, b=dict(wall_time=lambda: calls.append(1) or ecdsa.clock)))
    pair.handshake()
    up(pair)
    assert calls == [1]
    datetime.datetime.fromtimestamp(ecdsa.clock)  # the clock value is a POSIX time
