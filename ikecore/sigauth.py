"""Signatures in the AUTH payload (RFC 7296 §2.15, §3.8; RFC 7427; RFC 4754).

Methods vgw signs and verifies:

* 14, Digital Signature (RFC 7427): AUTH data = one octet giving the length of
  an ASN.1 AlgorithmIdentifier, the AlgorithmIdentifier (DER), the signature.
  RSASSA-PKCS1-v1_5 and ECDSA with SHA2-256/384/512; RSASSA-PSS is verified
  too. ECDSA signatures are the DER Ecdsa-Sig-Value (RFC 7427 §3, RFC 3279).
  Used when the peer announced SIGNATURE_HASH_ALGORITHMS in IKE_SA_INIT
  (RFC 7427 §4), with a hash both sides announced.
* 1, RSA Digital Signature: RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 §3.8, the
  hash RFC 7427 §1 names for it).
* 9 / 10, ECDSA with SHA-256 on P-256 / SHA-384 on P-384 (RFC 4754): the
  signature is r || s, each as long as the curve's order.

vgw announces SHA2-256, SHA2-384 and SHA2-512 (never SHA-1) and accepts in
method 14 only a hash it announced.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature,
)

from . import asn1
from .constants import AuthMethod, NotifyType
from .payloads import NotifyPayload


class HashId(IntEnum):
    """RFC 7427 §7 "Hash Algorithm Identifiers" (IANA)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4


OFFERED = (HashId.SHA2_256, HashId.SHA2_384, HashId.SHA2_512)
_HASHES = {HashId.SHA1: hashes.SHA1, HashId.SHA2_256: hashes.SHA256,
           HashId.SHA2_384: hashes.SHA384, HashId.SHA2_512: hashes.SHA512}
_NAMES = {HashId.SHA1: "SHA1", HashId.SHA2_256: "SHA2-256", HashId.SHA2_384: "SHA2-384",
          HashId.SHA2_512: "SHA2-512"}

# OIDs (RFC 3279, RFC 4055, RFC 5758; collected in RFC 7427 Appendix A)
_RSA_PKCS1 = {HashId.SHA1: "1.2.840.113549.1.1.5", HashId.SHA2_256: "1.2.840.113549.1.1.11",
              HashId.SHA2_384: "1.2.840.113549.1.1.12", HashId.SHA2_512: "1.2.840.113549.1.1.13"}
_ECDSA = {HashId.SHA1: "1.2.840.10045.4.1", HashId.SHA2_256: "1.2.840.10045.4.3.2",
          HashId.SHA2_384: "1.2.840.10045.4.3.3", HashId.SHA2_512: "1.2.840.10045.4.3.4"}
_HASH_OIDS = {HashId.SHA1: "1.3.14.3.2.26", HashId.SHA2_256: "2.16.840.1.101.3.4.2.1",
              HashId.SHA2_384: "2.16.840.1.101.3.4.2.2", HashId.SHA2_512: "2.16.840.1.101.3.4.2.3"}
RSASSA_PSS = "1.2.840.113549.1.1.10"
MGF1 = "1.2.840.113549.1.1.8"

# classic methods: (key kind, curve size, hash)
_CLASSIC_EC = {AuthMethod.ECDSA_SHA256_P256: ("secp256r1", 32, HashId.SHA2_256),
               AuthMethod.ECDSA_SHA384_P384: ("secp384r1", 48, HashId.SHA2_384)}


class SignatureError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Scheme:
    """A signature scheme: "rsa" (PKCS#1 v1.5), "rsa-pss" or "ecdsa", and its hash."""

    kind: str
    hash_id: HashId
    salt: int | None = None          # PSS salt length
    mgf_hash: HashId | None = None   # PSS MGF1 hash

    def __str__(self) -> str:
        name = {"rsa": "RSA", "rsa-pss": "RSASSA-PSS", "ecdsa": "ECDSA"}[self.kind]
        return f"{name} with {_NAMES[self.hash_id]}"


# --- SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) ------------------------------------------


def hash_notify() -> NotifyPayload:
    return NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS,
                         b"".join(struct.pack("!H", h) for h in OFFERED))


def parse_hash_notify(data: bytes) -> tuple[int, ...]:
    """The peer's list (unknown values kept: they are simply never chosen)."""
    return tuple(struct.unpack_from("!H", data, i)[0] for i in range(0, len(data) - 1, 2))


# --- AlgorithmIdentifier (RFC 7427 §3, Appendix A) -----------------------------------------


def _hash_algid(h: HashId) -> bytes:
    # RFC 4055 §2.1: the SHA-2 AlgorithmIdentifiers inside PSS parameters carry NULL
    return asn1.tlv(asn1.SEQUENCE, asn1.encode_oid(_HASH_OIDS[h]) + asn1.tlv(asn1.NULL, b""))


def algorithm_identifier(scheme: Scheme) -> bytes:
    """The DER AlgorithmIdentifier of a scheme."""
    if scheme.kind == "rsa":
        # RFC 4055 §5: the PKCS#1 v1.5 OIDs take NULL parameters
        return asn1.tlv(asn1.SEQUENCE, asn1.encode_oid(_RSA_PKCS1[scheme.hash_id])
                        + asn1.tlv(asn1.NULL, b""))
    if scheme.kind == "ecdsa":
        # RFC 5758 §3.2: the ECDSA OIDs take no parameters
        return asn1.tlv(asn1.SEQUENCE, asn1.encode_oid(_ECDSA[scheme.hash_id]))
    mgf = scheme.mgf_hash or scheme.hash_id
    params = (asn1.tlv(0xA0, _hash_algid(scheme.hash_id))
              + asn1.tlv(0xA1, asn1.tlv(asn1.SEQUENCE, asn1.encode_oid(MGF1) + _hash_algid(mgf)))
              + asn1.tlv(0xA2, asn1.tlv(asn1.INTEGER, _der_uint(scheme.salt or 0))))
    return asn1.tlv(asn1.SEQUENCE, asn1.encode_oid(RSASSA_PSS) + asn1.tlv(asn1.SEQUENCE, params))


def _der_uint(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


def _lookup(table: dict, oid: str) -> HashId | None:
    return next((h for h, o in table.items() if o == oid), None)


def parse_algorithm_identifier(der: bytes) -> Scheme:
    """The scheme named by an AlgorithmIdentifier; SignatureError if vgw does not know it."""
    try:
        tag, start, end = asn1.read(der)
        if tag != asn1.SEQUENCE or end != len(der):
            raise ValueError("not one SEQUENCE")
        fields = asn1.children(der, start, end)
        if not fields or fields[0][0] != asn1.OID or len(fields) > 2:
            raise ValueError("no OID")
        oid = asn1.decode_oid(der[fields[0][1]:fields[0][2]])
        params = fields[1] if len(fields) == 2 else None
        if (h := _lookup(_RSA_PKCS1, oid)) is not None:
            if params is not None and (params[0] != asn1.NULL or params[1] != params[2]):
                raise ValueError("PKCS#1 parameters must be NULL")
            return Scheme("rsa", h)
        if (h := _lookup(_ECDSA, oid)) is not None:
            if params is not None:
                raise ValueError("ECDSA takes no parameters")
            return Scheme("ecdsa", h)
        if oid == RSASSA_PSS:
            return _parse_pss(der, params)
    except ValueError as exc:
        raise SignatureError(f"malformed signature AlgorithmIdentifier ({exc})") from None
    raise SignatureError(f"unsupported signature algorithm {oid}")


def _hash_of(der: bytes, child: tuple[int, int, int]) -> HashId:
    """The hash named by an AlgorithmIdentifier TLV (given as (tag, start, end))."""
    tag, s, e = child
    fields = asn1.children(der, s, e)
    if tag != asn1.SEQUENCE or not fields or fields[0][0] != asn1.OID or len(fields) > 2:
        raise ValueError("bad hash AlgorithmIdentifier")
    h = _lookup(_HASH_OIDS, asn1.decode_oid(der[fields[0][1]:fields[0][2]]))
    if h is None:
        raise ValueError("unknown hash in PSS parameters")
    return h


def _one(der: bytes, start: int, end: int) -> tuple[int, int, int]:
    inner = asn1.children(der, start, end)
    if len(inner) != 1:
        raise ValueError("an explicit tag holds one value")
    return inner[0]


def _parse_pss(der: bytes, params) -> Scheme:
    """RSASSA-PSS-params (RFC 4055 §3.1), with its defaults (SHA-1, MGF1-SHA-1, salt 20)."""
    h, mgf, salt = HashId.SHA1, HashId.SHA1, 20
    if params is not None:
        if params[0] != asn1.SEQUENCE:
            raise ValueError("PSS parameters are not a SEQUENCE")
        for tag, s, e in asn1.children(der, params[1], params[2]):
            if tag == 0xA0:
                h = _hash_of(der, _one(der, s, e))
            elif tag == 0xA1:
                t, ms, me = _one(der, s, e)
                fields = asn1.children(der, ms, me)
                if (t != asn1.SEQUENCE or len(fields) != 2 or fields[0][0] != asn1.OID
                        or asn1.decode_oid(der[fields[0][1]:fields[0][2]]) != MGF1):
                    raise ValueError("mask generation is not MGF1")
                mgf = _hash_of(der, fields[1])
            elif tag == 0xA2:
                t, vs, ve = _one(der, s, e)
                if t != asn1.INTEGER or not 0 < ve - vs <= 4 or der[vs] & 0x80:
                    raise ValueError("bad salt length")
                salt = int.from_bytes(der[vs:ve], "big")
            elif tag == 0xA3:
                t, vs, ve = _one(der, s, e)
                if t != asn1.INTEGER or der[vs:ve] != b"\x01":
                    raise ValueError("trailer field must be 1")
            else:
                raise ValueError("unknown PSS parameter")
    return Scheme("rsa-pss", h, salt, mgf)


# --- signing ---------------------------------------------------------------------------------


def _key_kind(key) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ecdsa"
    raise SignatureError(f"unsupported key type {type(key).__name__}")


def choose(key, peer_hashes: tuple[int, ...]) -> tuple[int, Scheme]:
    """The AUTH method and scheme vgw signs with: RFC 7427 with a hash both
    announced (ECDSA: the curve's own hash first), else the classic method."""
    kind = _key_kind(key)
    common = [h for h in OFFERED if h in peer_hashes]
    if kind == "ecdsa":
        own = HashId.SHA2_384 if key.curve.key_size == 384 else HashId.SHA2_256
        if common:
            return AuthMethod.DIGITAL_SIGNATURE, Scheme("ecdsa", own if own in common else common[0])
        method = (AuthMethod.ECDSA_SHA384_P384 if key.curve.key_size == 384
                  else AuthMethod.ECDSA_SHA256_P256)
        return method, Scheme("ecdsa", own)
    if common:
        return AuthMethod.DIGITAL_SIGNATURE, Scheme("rsa", common[0])
    return AuthMethod.RSA_SIG, Scheme("rsa", HashId.SHA1)


def sign(key, octets: bytes, peer_hashes: tuple[int, ...]) -> tuple[int, bytes, Scheme]:
    """(AUTH method, AUTH data, scheme) over the signed octets (RFC 7296 §2.15)."""
    method, scheme = choose(key, peer_hashes)
    algo = _HASHES[scheme.hash_id]()
    if scheme.kind == "ecdsa":
        sig = key.sign(octets, ec.ECDSA(algo))
        if method != AuthMethod.DIGITAL_SIGNATURE:
            size = (key.curve.key_size + 7) // 8
            r, s = decode_dss_signature(sig)
            sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")   # RFC 4754 §7
    else:
        sig = key.sign(octets, padding.PKCS1v15(), algo)
    if method == AuthMethod.DIGITAL_SIGNATURE:
        algid = algorithm_identifier(scheme)
        return method, bytes([len(algid)]) + algid + sig, scheme
    return method, sig, scheme


# --- verifying -------------------------------------------------------------------------------


def verify(public_key, method: int, data: bytes, octets: bytes) -> Scheme:
    """Check the peer's AUTH data against its certificate's key; returns the
    scheme used, or raises SignatureError saying why not."""
    kind = _key_kind(public_key)
    if method == AuthMethod.DIGITAL_SIGNATURE:
        if not data or 1 + data[0] > len(data):
            raise SignatureError("AUTH data too short for an AlgorithmIdentifier")
        scheme = parse_algorithm_identifier(data[1:1 + data[0]])
        sig = data[1 + data[0]:]
        if scheme.hash_id not in OFFERED:
            raise SignatureError(f"{scheme} uses a hash vgw did not announce "
                                 f"({', '.join(_NAMES[h] for h in OFFERED)})")
        if scheme.kind == "rsa-pss" and scheme.mgf_hash not in OFFERED:
            raise SignatureError(f"RSASSA-PSS with MGF1-{_NAMES[scheme.mgf_hash]} is not supported")
        if (scheme.kind == "ecdsa") != (kind == "ecdsa"):
            raise SignatureError(f"{scheme} does not fit the certificate's {kind.upper()} key")
    elif method == AuthMethod.RSA_SIG:
        if kind != "rsa":
            raise SignatureError("RSA signature (method 1) but the certificate has an ECDSA key")
        scheme, sig = Scheme("rsa", HashId.SHA1), data
    elif method in _CLASSIC_EC:
        curve, size, h = _CLASSIC_EC[method]
        if kind != "ecdsa" or public_key.curve.name != curve:
            raise SignatureError(f"AUTH method {method} needs an ECDSA {curve} key in the certificate")
        if len(data) != 2 * size:
            raise SignatureError(f"ECDSA signature of {len(data)} bytes, expected {2 * size}")
        scheme = Scheme("ecdsa", h)
        sig = encode_dss_signature(int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big"))
    else:
        raise SignatureError(f"authentication method {method} is not supported")
    algo = _HASHES[scheme.hash_id]()
    try:
        if scheme.kind == "ecdsa":
            public_key.verify(sig, octets, ec.ECDSA(algo))
        elif scheme.kind == "rsa":
            public_key.verify(sig, octets, padding.PKCS1v15(), algo)
        else:
            pss = padding.PSS(mgf=padding.MGF1(_HASHES[scheme.mgf_hash]()), salt_length=scheme.salt)
            public_key.verify(sig, octets, pss, algo)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"the {scheme} signature does not verify") from None
    return scheme


__all__ = ["HashId", "OFFERED", "Scheme", "SignatureError", "hash_notify", "parse_hash_notify",
           "algorithm_identifier", "parse_algorithm_identifier", "choose", "sign", "verify"]
