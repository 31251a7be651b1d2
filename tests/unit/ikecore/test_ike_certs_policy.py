"""The certificate policy vgw states itself rather than inheriting from the
installed `cryptography`: which hashes may sign a certificate, which keyUsage
bits let an end-entity sign AUTH (RFC 4945 §5.1.3.2), and in which order a
configured DN's RDNs must appear (RFC 5280 §7.1) - each refused case next to
one that is accepted, and the refusals followed through IKE_AUTH to
AUTHENTICATION_FAILED.

`cryptography`'s CertificateBuilder will not sign with MD5 or SHA-1, so those
certificates are built here at the DER level: a certificate from the builder,
its TBSCertificate given another signature AlgorithmIdentifier and signed again
with the low-level key API. The same path with SHA-256 gives accepted
certificates, so a refusal can only come from the algorithm.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from ikecore.certs import Identity, LocalCredentials, TrustAnchors, private_key_der
from ikecore.constants import IdType
from .ikepair import ADDR_A, IkePair
from .test_ike_cert_auth import Lab, cert_policies, refused_by_b, up
from .test_ike_certs import KU_CA, KU_ENCIPHER, KU_SIGN, NOW, Pki, build, check, der, name, p256, refused

# --- DER by hand (X.690), independent of the code under test -------------------------------


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def fields(seq: bytes) -> list[bytes]:
    """The TLVs inside one DER SEQUENCE, each whole."""
    def header(pos):
        first = seq[pos + 1]
        if first < 0x80:
            return 2, first
        k = first & 0x7F
        return 2 + k, int.from_bytes(seq[pos + 2:pos + 2 + k], "big")
    hlen, length = header(0)
    pos, end, out = hlen, hlen + length, []
    while pos < end:
        h, n = header(pos)
        out.append(seq[pos:pos + h + n])
        pos += h + n
    return out


def oid(hexbody: str) -> bytes:
    return tlv(0x06, bytes.fromhex(hexbody))


NULL = b"\x05\x00"
SHA256 = oid("608648016503040201")
MGF1, PSS = oid("2a864886f70d010108"), oid("2a864886f70d01010a")


def pss_algid(hash_oid: bytes | None, mgf_oid: bytes | None, salt: int | None) -> bytes:
    """RSASSA-PSS-params (RFC 4055 §3.1); None leaves a field at its default
    (SHA-1, MGF1 with SHA-1, salt 20), which DER must not encode (X.690 §11.5)."""
    params = b""
    if hash_oid:
        params += tlv(0xA0, tlv(0x30, hash_oid + NULL))
    if mgf_oid:
        params += tlv(0xA1, tlv(0x30, MGF1 + tlv(0x30, mgf_oid + NULL)))
    if salt is not None:
        params += tlv(0xA2, tlv(0x02, bytes([salt])))
    return tlv(0x30, PSS + tlv(0x30, params))


# name: (AlgorithmIdentifier DER, signer(key, tbs), issuer key kind, words in the refusal)
ALGS = {
    "rsa-sha1": (tlv(0x30, oid("2a864886f70d010105") + NULL),
                 lambda k, t: k.sign(t, padding.PKCS1v15(), hashes.SHA1()), "rsa",
                 "is signed with SHA-1 (signature algorithm 1.2.840.113549.1.1.5)"),
    "rsa-md5": (tlv(0x30, oid("2a864886f70d010104") + NULL),
                lambda k, t: k.sign(t, padding.PKCS1v15(), hashes.MD5()), "rsa",
                "is signed with MD5 (signature algorithm 1.2.840.113549.1.1.4)"),
    "ecdsa-sha1": (tlv(0x30, oid("2a8648ce3d0401")),
                   lambda k, t: k.sign(t, ec.ECDSA(hashes.SHA1())), "ec",
                   "is signed with SHA-1 (signature algorithm 1.2.840.10045.4.1)"),
    "pss-sha1": (pss_algid(None, None, None),
                 lambda k, t: k.sign(t, padding.PSS(padding.MGF1(hashes.SHA1()), 20), hashes.SHA1()), "rsa",
                 "is signed with SHA-1 (signature algorithm 1.2.840.113549.1.1.10)"),
    "pss-sha256-mgf1-sha1": (pss_algid(SHA256, None, 32),
                             lambda k, t: k.sign(t, padding.PSS(padding.MGF1(hashes.SHA1()), 32),
                                                 hashes.SHA256()), "rsa",
                             "is signed with RSASSA-PSS whose mask uses MGF1 with SHA-1"),
}
# the same construction with SHA-256: accepted
GOOD = {
    "rsa": (tlv(0x30, oid("2a864886f70d01010b") + NULL),
            lambda k, t: k.sign(t, padding.PKCS1v15(), hashes.SHA256())),
    "ec": (tlv(0x30, oid("2a8648ce3d040302")), lambda k, t: k.sign(t, ec.ECDSA(hashes.SHA256()))),
    "pss": (pss_algid(SHA256, SHA256, 32),
            lambda k, t: k.sign(t, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())),
}


def resign(cert: x509.Certificate, issuer_key, algid: bytes, signer) -> bytes:
    """`cert` with its signature algorithm replaced (in the TBSCertificate and
    outside it, RFC 5280 §4.1.1.2) and signed again by `issuer_key`."""
    tbs = fields(cert.tbs_certificate_bytes)
    assert tbs[0][0] == 0xA0, "version [0] first"
    tbs[2] = algid                                     # version, serialNumber, signature
    tbs_der = tlv(0x30, b"".join(tbs))
    return tlv(0x30, tbs_der + algid + tlv(0x03, b"\x00" + signer(issuer_key, tbs_der)))


# --- chains ------------------------------------------------------------------------------------


class MixedPki(Pki):
    """Pki (P-256 root and leaf) plus an RSA-2048 intermediate issuing a second leaf."""

    def __init__(self):
        super().__init__()
        self.rsa_key = rsa.generate_private_key(65537, 2048)
        self.rsa_inter = build(name("Test RSA Intermediate"), self.rsa_key, self.root.subject,
                               self.root_key, ca=True, key_usage=KU_CA)

    def issuer(self, kind: str):
        return (self.rsa_inter, self.rsa_key) if kind == "rsa" else (self.inter, self.inter_key)


@pytest.fixture(scope="module")
def pki():
    return MixedPki()


@pytest.fixture
def signature_checks(monkeypatch):
    """Counts cryptography's signature checks: the policy must refuse before them."""
    calls = []
    real = x509.Certificate.verify_directly_issued_by
    monkeypatch.setattr(x509.Certificate, "verify_directly_issued_by",
                        lambda self, issuer: calls.append(1) or real(self, issuer))
    return calls


@pytest.mark.parametrize("alg", sorted(ALGS))
def test_weak_leaf_signature_refused_with_its_own_reason(pki, alg, signature_checks):
    algid, signer, kind, words = ALGS[alg]
    inter, inter_key = pki.issuer(kind)
    leaf = resign(pki.issue(issuer=inter, issuer_key=inter_key), inter_key, algid, signer)
    reason = refused([leaf, inter], pki.anchors)
    assert reason.startswith("certificate O=Example, CN=cgw.example.net " + words), reason
    assert "not issued by" not in reason
    assert signature_checks == []


@pytest.mark.parametrize("kind", ["rsa", "ec", "pss"])
def test_the_same_construction_with_sha256_is_accepted(pki, kind):
    """The control for the test above: the hand-built DER is a good certificate."""
    algid, signer = GOOD[kind]
    inter, inter_key = pki.issuer("ec" if kind == "ec" else "rsa")
    leaf = resign(pki.issue(issuer=inter, issuer_key=inter_key), inter_key, algid, signer)
    assert check([leaf, inter], pki.anchors).subject == pki.leaf_name


def test_weak_intermediate_signature(pki):
    """Every certificate on the path, not only the end-entity."""
    algid, signer, _, _ = ALGS["ecdsa-sha1"]
    weak_inter = resign(pki.inter, pki.root_key, algid, signer)
    reason = refused([pki.leaf, weak_inter], pki.anchors)
    assert reason.startswith("certificate CN=Test Intermediate is signed with SHA-1"), reason


def test_the_anchors_own_signature_is_not_judged(pki):
    """A configured CA is trusted as configured (RFC 5280 §6.1.1(d)): its
    self-signature is never verified, so its hash does not matter."""
    algid, signer, _, _ = ALGS["ecdsa-sha1"]
    sha1_root = resign(pki.root, pki.root_key, algid, signer)
    assert check([pki.leaf, pki.inter], TrustAnchors((sha1_root,)))
    # ... but the same certificate sent as an intermediate below another anchor is judged
    assert check([pki.leaf], TrustAnchors((der(pki.inter),)))
    weak_inter = resign(pki.inter, pki.root_key, algid, signer)
    assert "signed with SHA-1" in refused([pki.leaf, weak_inter], pki.anchors)


def test_sha224_and_ed25519_are_refused(pki):
    sha224 = (x509.CertificateBuilder().subject_name(pki.leaf_name).issuer_name(pki.inter.subject)
              .public_key(pki.leaf_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(pki.leaf.not_valid_before_utc).not_valid_after(pki.leaf.not_valid_after_utc)
              .sign(pki.inter_key, hashes.SHA224()))
    assert "is signed with SHA-224 (signature algorithm 1.2.840.10045.4.3.1)" in refused(
        [sha224, pki.inter], pki.anchors)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_ca = build(name("Ed CA"), ed_key, pki.root.subject, pki.root_key, ca=True, key_usage=KU_CA)
    leaf = build(pki.leaf_name, pki.leaf_key, ed_ca.subject, ed_key, key_usage=KU_SIGN)
    assert "certificate O=Example, CN=cgw.example.net is signed with Ed25519" in refused(
        [leaf, ed_ca], pki.anchors)


def test_a_signature_that_cannot_be_checked_says_why(pki):
    """An issuer with the right name but a key of another type: not "issued by"
    alone, but why the signature could not be checked."""
    fake = build(pki.inter.subject, pki.rsa_key, pki.root.subject, pki.root_key, ca=True, key_usage=KU_CA)
    reason = refused([pki.leaf, fake], pki.anchors)
    assert "is not issued by a configured CA" in reason
    assert "its signature cannot be checked against CN=Test Intermediate (ValueError:" in reason
    # a wrong signature from a key of the right type stays a plain "not issued by"
    other = build(pki.inter.subject, p256(), pki.root.subject, pki.root_key, ca=True, key_usage=KU_CA)
    assert "cannot be checked" not in refused([pki.leaf, other], pki.anchors)


# --- keyUsage (RFC 4945 §5.1.3.2) ----------------------------------------------------------------


def ku(digital_signature: bool, non_repudiation: bool, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature, non_repudiation, key_encipherment, False, False,
                         False, False, False, False)


@pytest.mark.parametrize("usage", [ku(True, False), ku(False, True), ku(True, True)],
                         ids=["digitalSignature", "nonRepudiation", "both"])
def test_either_signing_bit_lets_the_leaf_sign(pki, usage):
    assert check([pki.issue(key_usage=usage), pki.inter], pki.anchors)


def test_neither_signing_bit_is_refused(pki):
    for usage in (ku(False, False, key_encipherment=True), KU_ENCIPHER):
        assert "may not sign (keyUsage has neither digitalSignature nor nonRepudiation)" in refused(
            [pki.issue(key_usage=usage), pki.inter], pki.anchors)


# --- DN order (RFC 5280 §7.1) ----------------------------------------------------------------


CN, O = (x509.NameAttribute(NameOID.COMMON_NAME, "cgw.example.net"),
         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab"))
CN_FIRST = x509.Name([CN, O]).public_bytes()      # DER: CN, then O
O_FIRST = x509.Name([O, CN]).public_bytes()       # DER: O, then CN


@pytest.mark.parametrize("written", ["CN=cgw.example.net,O=Lab", "CN=cgw.example.net, O=Lab",
                                     "CN=CGW.example.net ,  O=lab"])
def test_dn_written_first_rdn_first_matches_only_that_order(written):
    ident = Identity.parse(written)
    assert ident.matches(IdType.DER_ASN1_DN, CN_FIRST)
    assert not ident.matches(IdType.DER_ASN1_DN, O_FIRST)


def test_dn_in_the_other_order():
    ident = Identity.parse("O=Lab, CN=cgw.example.net")
    assert ident.matches(IdType.DER_ASN1_DN, O_FIRST)
    assert not ident.matches(IdType.DER_ASN1_DN, CN_FIRST)


def test_dn_as_strongswan_sends_it():
    """strongSwan encodes `leftid=CN=cgw.example.net, O=Lab` in the written order
    with PrintableString; the same DN as a certificate's UTF8String CN, O."""
    sent = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cgw.example.net", _ASN1Type.PrintableString),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab", _ASN1Type.PrintableString)])
    assert sent.public_bytes() != CN_FIRST
    assert Identity.parse("CN=cgw.example.net, O=Lab").matches(IdType.DER_ASN1_DN, sent.public_bytes())
    assert not Identity.parse("O=Lab, CN=cgw.example.net").matches(IdType.DER_ASN1_DN, sent.public_bytes())


def test_reversed_dn_gets_a_hint():
    ident = Identity.parse("O=Lab, CN=cgw.example.net")
    assert ident.mismatch_hint(IdType.DER_ASN1_DN, CN_FIRST) == (
        " (the same RDNs in reverse order: write the DN first RDN first, as strongSwan does: "
        "CN=cgw.example.net, O=Lab)")
    assert ident.mismatch_hint(IdType.DER_ASN1_DN, O_FIRST) == ""              # it matches
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x"), O]).public_bytes()
    assert ident.mismatch_hint(IdType.DER_ASN1_DN, other) == ""                # not a reversal
    assert Identity.parse("cgw.example.net").mismatch_hint(IdType.DER_ASN1_DN, CN_FIRST) == ""


# --- through IKE_AUTH: logged and answered AUTHENTICATION_FAILED ----------------------------------


def lab_leaf(lab: Lab, subject: x509.Name, key_usage: x509.KeyUsage | None = KU_SIGN):
    """A P-256 end-entity from the lab root, with a SAN-less custom subject."""
    key = p256()
    cert = build(subject, key, lab.root.cert.subject, lab.root.key, key_usage=key_usage,
                 not_before=NOW.replace(year=2000), not_after=NOW.replace(year=2100))
    return cert, key


@pytest.fixture(scope="module")
def lab():
    return Lab("ecdsa")


def test_sha1_certificate_refused_in_ike_auth(lab):
    algid, signer, _, words = ALGS["ecdsa-sha1"]
    weak = resign(lab.a.cert, lab.root.key, algid, signer)
    pa = dict(credentials=LocalCredentials((weak,), private_key_der(lab.a.key)))
    pair = IkePair(*cert_policies(lab, a=pa))
    pair.handshake()
    refused_by_b(pair, f"AWS tunnel rejected the certificate of cgw: {ADDR_A}: certificate "
                       f"CN=vgw-a.example.net {words}")


def test_non_repudiation_only_certificate_authenticates(lab):
    cert, key = lab_leaf(lab, name("vgw-a.example.net"), key_usage=ku(False, True))
    pa = dict(credentials=LocalCredentials((der(cert),), private_key_der(key)))
    pair = IkePair(*cert_policies(lab, a=pa))
    pair.handshake()
    up(pair)


@pytest.mark.parametrize("configured,accepted", [("CN=vgw-a.example.net, O=Lab", True),
                                                 ("O=Lab, CN=vgw-a.example.net", False)])
def test_configured_dn_order_in_ike_auth(lab, configured, accepted):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vgw-a.example.net"), O])
    cert, key = lab_leaf(lab, subject)
    pa = dict(credentials=LocalCredentials((der(cert),), private_key_der(key)))
    pair = IkePair(*cert_policies(lab, a=pa, b=dict(remote_id=configured)))
    pair.handshake()
    if accepted:
        up(pair)
        assert pair.b.ups[0].remote_id == "CN=vgw-a.example.net, O=Lab"
    else:
        refused_by_b(pair, f"AWS tunnel refused cgw: {ADDR_A}: identity CN=vgw-a.example.net, O=Lab "
                           f"is not the configured {configured} (the same RDNs in reverse order: "
                           "write the DN first RDN first, as strongSwan does: CN=vgw-a.example.net, O=Lab)")

