"""AUTH payload signatures (ikecore.sigauth): RFC 7427 AlgorithmIdentifiers, the
SIGNATURE_HASH_ALGORITHMS choice, and the classic methods 1, 9 and 10.

The expected AlgorithmIdentifier bytes come from two places that do not use
vgw's encoder: RFC 7427 Appendix A (typed in below, byte by byte) and the DER
that the `cryptography` package writes into certificates it signs (the
Certificate's signatureAlgorithm field is the same ASN.1 type).
"""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ikecore import sigauth
from ikecore.constants import AuthMethod
from ikecore.sigauth import HashId, Scheme, SignatureError

# RFC 7427 Appendix A, as printed there:
# A.1.2 sha256WithRSAEncryption, A.1.3 sha384WithRSAEncryption, A.1.4 sha512WithRSAEncryption
RFC7427_RSA = {
    HashId.SHA2_256: "300d06092a864886f70d01010b0500",
    HashId.SHA2_384: "300d06092a864886f70d01010c0500",
    HashId.SHA2_512: "300d06092a864886f70d01010d0500",
}
# A.3.1 ecdsa-with-SHA256, A.3.2 ecdsa-with-SHA384, A.3.3 ecdsa-with-SHA512
RFC7427_ECDSA = {
    HashId.SHA2_256: "300a06082a8648ce3d040302",
    HashId.SHA2_384: "300a06082a8648ce3d040303",
    HashId.SHA2_512: "300a06082a8648ce3d040304",
}
HASHES = {HashId.SHA2_256: hashes.SHA256, HashId.SHA2_384: hashes.SHA384,
          HashId.SHA2_512: hashes.SHA512}
OCTETS = b"RealMessage | Nonce | prf(SK_p, ID')" * 3


@pytest.fixture(scope="module")
def keys():
    return {"rsa": rsa.generate_private_key(65537, 2048),
            "p256": ec.generate_private_key(ec.SECP256R1()),
            "p384": ec.generate_private_key(ec.SECP384R1())}


def signature_algorithm_of(key, algo, rsa_padding=None) -> bytes:
    """The signatureAlgorithm AlgorithmIdentifier that `cryptography` writes into a
    certificate signed by `key` with `algo`: Certificate ::= SEQUENCE {tbs,
    signatureAlgorithm, signature}, so it is the TLV right after the tbs bytes."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oracle")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    kw = {"rsa_padding": rsa_padding} if rsa_padding else {}
    cert = builder.sign(key, algo, **kw)
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs = cert.tbs_certificate_bytes
    start = der.index(tbs) + len(tbs)
    length = der[start + 1]
    assert der[start] == 0x30 and length < 0x80
    return der[start:start + 2 + length]


@pytest.mark.parametrize("h", list(RFC7427_RSA))
def test_rsa_algorithm_identifiers_match_rfc7427_and_cryptography(keys, h):
    mine = sigauth.algorithm_identifier(Scheme("rsa", h))
    assert mine.hex() == RFC7427_RSA[h]
    assert mine == signature_algorithm_of(keys["rsa"], HASHES[h]())
    assert sigauth.parse_algorithm_identifier(bytes.fromhex(RFC7427_RSA[h])) == Scheme("rsa", h)


@pytest.mark.parametrize("h", list(RFC7427_ECDSA))
def test_ecdsa_algorithm_identifiers_match_rfc7427_and_cryptography(keys, h):
    mine = sigauth.algorithm_identifier(Scheme("ecdsa", h))
    assert mine.hex() == RFC7427_ECDSA[h]
    assert mine == signature_algorithm_of(keys["p256"], HASHES[h]())
    assert sigauth.parse_algorithm_identifier(bytes.fromhex(RFC7427_ECDSA[h])) == Scheme("ecdsa", h)


@pytest.mark.parametrize("h", list(HASHES))
def test_pss_algorithm_identifier_as_cryptography_writes_it(keys, h):
    algo = HASHES[h]()
    oracle = signature_algorithm_of(keys["rsa"], algo, padding.PSS(padding.MGF1(algo), algo.digest_size))
    scheme = Scheme("rsa-pss", h, algo.digest_size, h)
    assert sigauth.parse_algorithm_identifier(oracle) == scheme
    assert sigauth.algorithm_identifier(scheme) == oracle


def test_pss_defaults_when_parameters_are_empty():
    # RSASSA-PSS with an empty parameter SEQUENCE: SHA-1, MGF1-SHA-1, salt 20 (RFC 4055 §3.1)
    blob = bytes.fromhex("300d06092a864886f70d01010a3000")
    assert sigauth.parse_algorithm_identifier(blob) == Scheme("rsa-pss", HashId.SHA1, 20, HashId.SHA1)


@pytest.mark.parametrize("blob,why", [
    ("300d06092a864886f70d01010b05", "malformed"),            # truncated: says 13, has 12
    ("300d06092a864886f70d01010b0400", "malformed"),          # params an OCTET STRING
    ("300c06082a8648ce3d0403020500", "malformed"),            # ECDSA with NULL params
    ("300b06092b0601040182371402", "unsupported"),            # some other OID
    ("3100", "malformed"),
    ("", "malformed"),
])
def test_bad_algorithm_identifiers_are_refused(blob, why):
    with pytest.raises(SignatureError) as exc:
        sigauth.parse_algorithm_identifier(bytes.fromhex(blob))
    assert why in exc.value.reason


def test_hash_notify_lists_sha2_only():
    n = sigauth.hash_notify()
    assert n.notify_type == 16431                    # RFC 7427 §7: SIGNATURE_HASH_ALGORITHMS
    assert n.data == bytes.fromhex("000200030004")   # SHA2-256, SHA2-384, SHA2-512
    assert sigauth.parse_hash_notify(bytes.fromhex("0001000200050004")) == (1, 2, 5, 4)


@pytest.mark.parametrize("key,peer,method,scheme", [
    ("rsa", (2, 3, 4), AuthMethod.DIGITAL_SIGNATURE, Scheme("rsa", HashId.SHA2_256)),
    ("rsa", (4,), AuthMethod.DIGITAL_SIGNATURE, Scheme("rsa", HashId.SHA2_512)),
    ("rsa", (), AuthMethod.RSA_SIG, Scheme("rsa", HashId.SHA1)),
    ("rsa", (1,), AuthMethod.RSA_SIG, Scheme("rsa", HashId.SHA1)),          # vgw never offers SHA-1
    ("p256", (2, 3, 4), AuthMethod.DIGITAL_SIGNATURE, Scheme("ecdsa", HashId.SHA2_256)),
    ("p384", (2, 3, 4), AuthMethod.DIGITAL_SIGNATURE, Scheme("ecdsa", HashId.SHA2_384)),
    ("p384", (2,), AuthMethod.DIGITAL_SIGNATURE, Scheme("ecdsa", HashId.SHA2_256)),
    ("p256", (), AuthMethod.ECDSA_SHA256_P256, Scheme("ecdsa", HashId.SHA2_256)),
    ("p384", (), AuthMethod.ECDSA_SHA384_P384, Scheme("ecdsa", HashId.SHA2_384)),
])
def test_method_choice_and_round_trip(keys, key, peer, method, scheme):
    k = keys[key]
    got_method, data, got_scheme = sigauth.sign(k, OCTETS, peer)
    assert (got_method, got_scheme) == (method, scheme)
    assert sigauth.verify(k.public_key(), got_method, data, OCTETS) == scheme
    with pytest.raises(SignatureError):
        sigauth.verify(k.public_key(), got_method, data, OCTETS + b"x")


def test_rfc7427_auth_data_layout(keys):
    """AUTH data = length octet | AlgorithmIdentifier | signature (RFC 7427 §3),
    the signature checked here with `cryptography` directly."""
    method, data, _ = sigauth.sign(keys["p256"], OCTETS, (2,))
    assert method == 14
    assert data[0] == 12 and data[1:13].hex() == RFC7427_ECDSA[HashId.SHA2_256]
    keys["p256"].public_key().verify(data[13:], OCTETS, ec.ECDSA(hashes.SHA256()))  # DER Ecdsa-Sig-Value
    method, data, _ = sigauth.sign(keys["rsa"], OCTETS, (3,))
    assert data[0] == 15 and data[1:16].hex() == RFC7427_RSA[HashId.SHA2_384]
    keys["rsa"].public_key().verify(data[16:], OCTETS, padding.PKCS1v15(), hashes.SHA384())


def test_classic_ecdsa_is_r_concatenated_with_s(keys):
    """RFC 4754 §7: methods 9 and 10 carry r | s, each the size of the curve."""
    for key, size in (("p256", 32), ("p384", 48)):
        method, data, _ = sigauth.sign(keys[key], OCTETS, ())
        assert len(data) == 2 * size
        # the same signature, DER-encoded, verifies with cryptography
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        der = encode_dss_signature(int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big"))
        keys[key].public_key().verify(der, OCTETS, ec.ECDSA(hashes.SHA256() if size == 32 else hashes.SHA384()))


def test_classic_rsa_is_pkcs1_sha1(keys):
    method, data, _ = sigauth.sign(keys["rsa"], OCTETS, ())
    assert method == 1
    keys["rsa"].public_key().verify(data, OCTETS, padding.PKCS1v15(), hashes.SHA1())


def test_pss_signatures_verify(keys):
    k = keys["rsa"]
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    sig = k.sign(OCTETS, pss, hashes.SHA256())
    algid = sigauth.algorithm_identifier(Scheme("rsa-pss", HashId.SHA2_256, 32, HashId.SHA2_256))
    data = bytes([len(algid)]) + algid + sig
    assert sigauth.verify(k.public_key(), 14, data, OCTETS).kind == "rsa-pss"


def test_refusals(keys):
    rsa_pub, p256_pub = keys["rsa"].public_key(), keys["p256"].public_key()
    # SHA-1 in RFC 7427: vgw did not announce it
    sig = keys["rsa"].sign(OCTETS, padding.PKCS1v15(), hashes.SHA1())
    algid = bytes.fromhex("300d06092a864886f70d0101050500")   # A.1.1 sha1WithRSAEncryption
    with pytest.raises(SignatureError, match="did not announce"):
        sigauth.verify(rsa_pub, 14, bytes([len(algid)]) + algid + sig, OCTETS)
    # an ECDSA scheme against an RSA certificate and the other way round
    _, data, _ = sigauth.sign(keys["p256"], OCTETS, (2,))
    with pytest.raises(SignatureError, match="does not fit"):
        sigauth.verify(rsa_pub, 14, data, OCTETS)
    _, data, _ = sigauth.sign(keys["rsa"], OCTETS, ())
    with pytest.raises(SignatureError):
        sigauth.verify(p256_pub, 1, data, OCTETS)
    # method 10 (P-384) with a P-256 key; r|s of the wrong size
    with pytest.raises(SignatureError, match="secp384r1"):
        sigauth.verify(p256_pub, 10, bytes(96), OCTETS)
    with pytest.raises(SignatureError, match="expected 64"):
        sigauth.verify(p256_pub, 9, bytes(63), OCTETS)
    # PSK, DSS, NULL are not signature methods; an empty or too short RFC 7427 blob
    for method in (2, 3, 11, 13):
        with pytest.raises(SignatureError, match="not supported"):
            sigauth.verify(rsa_pub, method, b"x" * 64, OCTETS)
    for data in (b"", b"\x40abc"):
        with pytest.raises(SignatureError, match="too short"):
            sigauth.verify(rsa_pub, 14, data, OCTETS)
    # a DER ECDSA signature whose r and s are swapped does not verify
    _, data, _ = sigauth.sign(keys["p256"], OCTETS, (2,))
    r, s = decode_dss_signature(data[13:])
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    with pytest.raises(SignatureError, match="does not verify"):
        sigauth.verify(p256_pub, 14, data[:13] + encode_dss_signature(s, r), OCTETS)
