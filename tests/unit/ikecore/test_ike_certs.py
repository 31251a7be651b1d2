"""Certificate chain validation and identities (ikecore.certs).

Each rule gets a certificate built here with `cryptography` that breaks exactly
that rule, next to one that keeps it, so that every test can fail.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ikecore import certs
from ikecore.certs import CertError, Identity, TrustAnchors, cert_vouches_for, validate_chain
from ikecore.constants import IdType

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def name(cn: str, *extra) -> x509.Name:
    return x509.Name([*extra, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def p256():
    return ec.generate_private_key(ec.SECP256R1())


def build(subject: x509.Name, key, issuer_name: x509.Name, issuer_key, *, ca: bool | None = False,
          path_length=None, key_usage: x509.KeyUsage | None = None, san=None,
          not_before=NOW - 60 * DAY, not_after=NOW + 365 * DAY, extra=()):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if key_usage is not None:
        b = b.add_extension(key_usage, critical=True)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    algo = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, algo)


def der(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.DER)


KU_CA = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
KU_SIGN = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
KU_ENCIPHER = x509.KeyUsage(False, False, True, False, False, False, False, False, False)


class Pki:
    def __init__(self):
        self.root_key, self.inter_key, self.leaf_key = p256(), p256(), p256()
        self.root = build(name("Test Root"), self.root_key, name("Test Root"), self.root_key,
                          ca=True, key_usage=KU_CA)
        self.inter = build(name("Test Intermediate"), self.inter_key, self.root.subject, self.root_key,
                           ca=True, path_length=0, key_usage=KU_CA)
        self.leaf_name = name("cgw.example.net", x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"))
        self.san = [x509.DNSName("cgw.example.net"), x509.IPAddress(ipaddress.IPv4Address("192.0.2.7")),
                    x509.RFC822Name("ops@example.net")]
        self.leaf = self.issue()

    def issue(self, issuer=None, issuer_key=None, **kw):
        kw.setdefault("key_usage", KU_SIGN)
        kw.setdefault("san", self.san)
        return build(kw.pop("subject", self.leaf_name), kw.pop("key", self.leaf_key),
                     (issuer or self.inter).subject, issuer_key or self.inter_key, **kw)

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors((der(self.root),))


@pytest.fixture(scope="module")
def pki():
    return Pki()


def check(ders, anchors, now=NOW):
    return validate_chain([der(c) if isinstance(c, x509.Certificate) else c for c in ders], anchors, now)


def refused(ders, anchors, now=NOW) -> str:
    with pytest.raises(CertError) as exc:
        check(ders, anchors, now)
    return exc.value.reason


def test_leaf_intermediate_root(pki):
    assert check([pki.leaf, pki.inter], pki.anchors).subject == pki.leaf.subject
    # the intermediate may also be a configured CA (then it is the anchor)
    assert check([pki.leaf], TrustAnchors((der(pki.inter),)))
    # a leaf straight from the root
    direct = pki.issue(issuer=pki.root, issuer_key=pki.root_key)
    assert check([direct], pki.anchors)
    # extra unrelated certificates in the peer's CERT payloads are ignored
    assert check([pki.leaf, pki.root, pki.inter], pki.anchors)


def test_missing_intermediate_or_other_ca(pki):
    assert "not issued by a configured CA" in refused([pki.leaf], pki.anchors)
    other_key = p256()
    other = build(name("Other Root"), other_key, name("Other Root"), other_key, ca=True)
    assert "not issued by a configured CA" in refused([pki.leaf, pki.inter], TrustAnchors((der(other),)))
    assert "no CA" in refused([pki.leaf, pki.inter], TrustAnchors(()))


def test_same_name_other_key_is_not_the_issuer(pki):
    """An impostor CA with the root's name: the signature link fails."""
    fake_key = p256()
    fake = build(pki.root.subject, fake_key, pki.root.subject, fake_key, ca=True)
    assert "not issued by" in refused([pki.leaf, pki.inter], TrustAnchors((der(fake),)))


def test_tampered_signature(pki):
    raw = bytearray(der(pki.leaf))
    raw[-3] ^= 0x01   # inside the signature BIT STRING
    assert "not issued by" in refused([bytes(raw), pki.inter], pki.anchors)


@pytest.mark.parametrize("which,when,words", [
    ("leaf", "expired", "expired on"),
    ("leaf", "future", "not valid before"),
    ("inter", "expired", "expired on"),
    ("root", "expired", "expired on"),
])
def test_validity_dates(pki, which, when, words):
    past = dict(not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    future = dict(not_before=NOW + DAY, not_after=NOW + 30 * DAY)
    dates = past if when == "expired" else future
    root, inter, leaf = pki.root, pki.inter, pki.leaf
    if which == "leaf":
        leaf = pki.issue(**dates)
    elif which == "inter":
        inter = build(pki.inter.subject, pki.inter_key, pki.root.subject, pki.root_key, ca=True, **dates)
    else:
        root = build(pki.root.subject, pki.root_key, pki.root.subject, pki.root_key, ca=True, **dates)
    reason = refused([leaf, inter], TrustAnchors((der(root),)))
    assert words in reason
    # and the same chain is fine at a time when everything is valid
    later = NOW - 15 * DAY if when == "expired" else NOW + 15 * DAY
    assert check([leaf, inter], TrustAnchors((der(root),)), later)


def test_issuer_must_be_a_ca(pki):
    # the leaf's key signs another certificate: not a CA (basicConstraints CA:FALSE), or none at all
    for ca in (False, None):
        signer = build(name("not a CA"), pki.inter_key, pki.root.subject, pki.root_key, ca=ca)
        leaf = pki.issue(issuer=signer, issuer_key=pki.inter_key)
        assert "is not a CA" in refused([leaf, signer], pki.anchors)


def test_issuer_key_usage_must_allow_cert_signing(pki):
    inter = build(pki.inter.subject, pki.inter_key, pki.root.subject, pki.root_key, ca=True,
                  key_usage=KU_SIGN)
    assert "keyCertSign" in refused([pki.leaf, inter], pki.anchors)


def test_path_length(pki):
    root = build(pki.root.subject, pki.root_key, pki.root.subject, pki.root_key, ca=True, path_length=0)
    assert "allows 0 intermediate" in refused([pki.leaf, pki.inter], TrustAnchors((der(root),)))
    root1 = build(pki.root.subject, pki.root_key, pki.root.subject, pki.root_key, ca=True, path_length=1)
    assert check([pki.leaf, pki.inter], TrustAnchors((der(root1),)))


def test_leaf_key_usage(pki):
    assert "digitalSignature" in refused([pki.issue(key_usage=KU_ENCIPHER), pki.inter], pki.anchors)
    assert check([pki.issue(key_usage=None), pki.inter], pki.anchors)   # absent: any use


def test_unknown_critical_extension(pki):
    ext = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    leaf = pki.issue(extra=[(ext, True)])
    assert "unsupported critical extension 1.3.6.1.4.1.55555.1" in refused([leaf, pki.inter], pki.anchors)
    assert check([pki.issue(extra=[(ext, False)]), pki.inter], pki.anchors)


@pytest.mark.parametrize("key,words", [
    (lambda: rsa.generate_private_key(65537, 1024), "1024 bits is too small"),
    (lambda: ec.generate_private_key(ec.SECP521R1()), "secp521r1 is not supported"),
    (lambda: ed25519.Ed25519PrivateKey.generate(), "not supported"),
])
def test_leaf_key_types(pki, key, words):
    assert words in refused([pki.issue(key=key()), pki.inter], pki.anchors)


def test_rsa_and_p384_leaves(pki):
    for k in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())):
        assert check([pki.issue(key=k), pki.inter], pki.anchors)


def test_limits_come_before_any_signature_check(pki, monkeypatch):
    calls = []
    real = x509.Certificate.verify_directly_issued_by

    def counting(self, issuer):
        calls.append(1)
        return real(self, issuer)
    monkeypatch.setattr(x509.Certificate, "verify_directly_issued_by", counting)
    nine = [pki.leaf] + [pki.inter] * 8
    assert "9 certificates exceed the limit of 8" in refused(nine, pki.anchors)
    big = [der(pki.leaf)] + [b"\x30" * 9000, b"\x30" * 9000]
    assert "exceed the limit of 16384" in refused(big, pki.anchors)
    junk = [der(pki.leaf), der(pki.inter), b"\x30\x03\x02\x01\x01"]
    assert "certificate 3 of 3: unparsable" in refused(junk, pki.anchors)
    assert "no certificate" in refused([], pki.anchors)
    assert calls == []
    assert check([pki.leaf, pki.inter], pki.anchors) and len(calls) == 2


def test_the_path_cannot_loop(pki):
    """Two CAs that cross-sign each other and no anchor: the walk ends."""
    ka, kb = p256(), p256()
    a = build(name("A"), ka, name("B"), kb, ca=True)
    b = build(name("B"), kb, name("A"), ka, ca=True)
    leaf = pki.issue(issuer=a, issuer_key=ka)
    assert "not issued by a configured CA" in refused([leaf, a, b], pki.anchors)


# --- identities ----------------------------------------------------------------------------------


def test_certificate_vouches_for(pki):
    leaf = pki.leaf
    assert cert_vouches_for(leaf, IdType.DER_ASN1_DN, leaf.subject.public_bytes())
    assert not cert_vouches_for(leaf, IdType.DER_ASN1_DN, name("cgw.example.net").public_bytes())
    assert cert_vouches_for(leaf, IdType.FQDN, b"CGW.Example.NET")
    assert not cert_vouches_for(leaf, IdType.FQDN, b"other.example.net")
    assert cert_vouches_for(leaf, IdType.IPV4_ADDR, bytes([192, 0, 2, 7]))
    assert not cert_vouches_for(leaf, IdType.IPV4_ADDR, bytes([192, 0, 2, 8]))
    assert cert_vouches_for(leaf, IdType.RFC822_ADDR, b"ops@example.net")
    assert not cert_vouches_for(leaf, IdType.KEY_ID, b"whatever")
    no_san = pki.issue(san=None)
    assert not cert_vouches_for(no_san, IdType.FQDN, b"cgw.example.net")


def test_configured_identities():
    dn = name("cgw", x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
              x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."))   # C, O, CN
    data = dn.public_bytes()
    # strongSwan/OpenSSL order (first RDN first); RFC 4514 order (last first) is another DN
    # (RFC 5280 §7.1 compares RDN sequences in order; test_ike_certs_policy has more)
    assert Identity.parse(r"C=US, O=Example\, Inc., CN=cgw").matches(IdType.DER_ASN1_DN, data)
    assert not Identity.parse(r"CN=cgw,O=Example\, Inc.,C=US").matches(IdType.DER_ASN1_DN, data)
    assert not Identity.parse("CN=cgw, C=US").matches(IdType.DER_ASN1_DN, data)
    assert not Identity.parse("C=US, O=Example, CN=cgw").matches(IdType.FQDN, b"cgw")
    assert Identity.parse("CN=cgw.example.net").matches(
        IdType.DER_ASN1_DN, name("cgw.example.net").public_bytes())
    assert Identity.parse("cgw.example.net").matches(IdType.FQDN, b"CGW.example.net.")
    assert not Identity.parse("cgw.example.net").matches(IdType.DER_ASN1_DN, b"")
    assert Identity.parse("192.0.2.7").matches(IdType.IPV4_ADDR, bytes([192, 0, 2, 7]))
    assert Identity.parse("192.0.2.7").kind == "ipv4"
    for bad in ("=x", "not a name!", "CN=a,,O=b", "XYZ=1", "a..b"):
        with pytest.raises(ValueError):
            Identity.parse(bad)


def test_describe_id():
    dn = name("cgw", x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
              x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."))
    assert certs.describe_id(IdType.DER_ASN1_DN, dn.public_bytes()) == r"C=US, O=Example\, Inc., CN=cgw"
    assert certs.describe_id(IdType.DER_ASN1_DN, b"\x30\x05junk") == "DER_ASN1_DN:30056a756e6b"
    assert certs.describe_id(IdType.FQDN, b"cgw.example.net") == "cgw.example.net"
    assert certs.describe_id(IdType.IPV4_ADDR, bytes([192, 0, 2, 7])) == "192.0.2.7"


def test_certreq_names_cas_by_spki_sha1(pki):
    """RFC 7296 §3.7: each CA is the SHA-1 hash of its SubjectPublicKeyInfo."""
    anchors = TrustAnchors((der(pki.root), der(pki.inter)))
    spki = [c.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
            for c in (pki.root, pki.inter)]
    assert anchors.certreq_data() == b"".join(hashlib.sha1(s).digest() for s in spki)


def test_dn_matching_ignores_string_type_case_and_spaces(pki):
    """strongSwan encodes an ID_DER_ASN1_DN written as text with PrintableString;
    `cryptography` certificates carry UTF8String: the same DN (RFC 5280 §7.1)."""
    from cryptography.x509.name import _ASN1Type
    printable = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example", _ASN1Type.PrintableString),
                           x509.NameAttribute(NameOID.COMMON_NAME, "cgw.example.net", _ASN1Type.PrintableString)])
    assert printable.public_bytes() != pki.leaf.subject.public_bytes()
    assert cert_vouches_for(pki.leaf, IdType.DER_ASN1_DN, printable.public_bytes())
    spaced = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, " EXAMPLE "),
                        x509.NameAttribute(NameOID.COMMON_NAME, "CGW.example.net")])
    assert cert_vouches_for(pki.leaf, IdType.DER_ASN1_DN, spaced.public_bytes())
    reordered = x509.Name(list(reversed(pki.leaf.subject.rdns)))
    assert not cert_vouches_for(pki.leaf, IdType.DER_ASN1_DN, reordered.public_bytes())
    longer = x509.Name([*pki.leaf.subject.rdns, x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "US")])])
    assert not cert_vouches_for(pki.leaf, IdType.DER_ASN1_DN, longer.public_bytes())
    other = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                       x509.NameAttribute(NameOID.COMMON_NAME, "cgw.example.org")])
    assert not cert_vouches_for(pki.leaf, IdType.DER_ASN1_DN, other.public_bytes())
    assert not cert_vouches_for(pki.leaf, IdType.DER_ASN1_DN, b"\x30\x03junk")
    assert Identity.parse("O=Example, CN=cgw.example.net").matches(IdType.DER_ASN1_DN, printable.public_bytes())
