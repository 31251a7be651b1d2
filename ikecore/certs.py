"""X.509 for IKE_AUTH: vgw's own credentials, the configured CAs, chain validation
and identities (RFC 7296 §3.5-§3.7, §2.15; RFC 4945 for the PKI profile).

Everything is parsed with the `cryptography` package. The core never reads a
file or a clock: the daemon hands over DER bytes (config time) and the wall-clock
time to check validity dates against (IkeSettings.wall_time, called only while
a chain is validated).

Validation is deliberately small and strict, the checks a VPN gateway needs
(what AWS Private CA certificates carry) rather than the whole of RFC 5280:

* bounded work first: at most MAX_CHAIN_CERTS certificates and MAX_CHAIN_BYTES
  bytes, every one parsed, before any signature is checked;
* the path: the end-entity, then issuers found among the peer's other CERT
  payloads, ending at a configured CA certificate (the trust anchor), each link
  checked with `verify_directly_issued_by` (issuer name and signature);
* validity dates of every certificate on the path, the anchor included;
* signatures: every certificate vgw verifies a signature on (all but the
  configured anchor, whose self-signature plays no part, RFC 5280 §6.1.1(d))
  must be signed with SHA-256, SHA-384 or SHA-512 (RSA PKCS#1 v1.5, RSASSA-PSS
  with MGF1 of one of those, or ECDSA), checked explicitly so the policy does not
  depend on which `cryptography` is installed; MD5, SHA-1 and anything else are
  refused with their own reason;
* issuers: basicConstraints CA:TRUE, keyUsage keyCertSign when present,
  pathLenConstraint; the end-entity: keyUsage digitalSignature or
  nonRepudiation when present (RFC 4945 §5.1.3.2);
* keys: RSA of 2048 bits or more, ECDSA on P-256 or P-384 (end-entity); CAs may
  also use P-521;
* an unknown critical extension refuses the certificate (RFC 5280 §4.2).

There is no revocation checking (no CRL, no OCSP).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from . import asn1
from .asn1 import name_text, names_match
from .constants import IdType
from .payloads import format_identity
from .sigauth import OFFERED, RSASSA_PSS, SignatureError, parse_algorithm_identifier

MAX_CHAIN_CERTS = 8            # end-entity + intermediates the peer may send
MAX_CHAIN_BYTES = 16 * 1024    # their DER, together
MIN_RSA_BITS = 2048
LEAF_CURVES = (ec.SECP256R1, ec.SECP384R1)
CA_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)

# Hashes a certificate may be signed with: the SHA-2 set vgw also announces for
# AUTH (RFC 7427 §4), which covers AWS Private CA's signing algorithms
# (SHA256/384/512 WITH RSA or ECDSA). MD5 and SHA-1 are broken for signatures
# (RFC 6151, SHAttered); SHA-224 and SHA-3 no IKE peer of AWS needs.
CERT_SIG_HASHES = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"}
_HASH_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224", **CERT_SIG_HASHES}
# signature algorithms without a separate hash (cryptography says None)
_NO_HASH = {"1.3.101.112": "Ed25519", "1.3.101.113": "Ed448"}

# Extensions vgw understands (or may ignore safely); any other critical one refuses
# the certificate (RFC 5280 §4.2).
_KNOWN_EXTENSIONS = {
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.CRL_DISTRIBUTION_POINTS, ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
}

# Attribute names accepted in a written DN besides RFC 4514's (CN, L, ST, O, OU, C,
# STREET, DC, UID), as strongSwan and OpenSSL write them.
_DN_NAMES = {"E": NameOID.EMAIL_ADDRESS, "EMAIL": NameOID.EMAIL_ADDRESS,
             "EMAILADDRESS": NameOID.EMAIL_ADDRESS, "SERIALNUMBER": NameOID.SERIAL_NUMBER,
             "SN": NameOID.SURNAME, "GN": NameOID.GIVEN_NAME, "T": NameOID.TITLE}


class CertError(Exception):
    """Why a certificate or chain is refused, in words for the tunnel log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- parsing --------------------------------------------------------------------------


@lru_cache(maxsize=256)
def parse_der(der: bytes) -> x509.Certificate:
    """A certificate from DER; CertError if it is not one."""
    try:
        cert = x509.load_der_x509_certificate(der)
        # cryptography parses lazily: read now everything validation uses, so that
        # a malformed field fails here (an unknown key type, a bad extension or name)
        cert.public_key()
        cert.extensions
        dn_text(cert.subject), dn_text(cert.issuer)
        cert.not_valid_before_utc, cert.not_valid_after_utc
    except Exception as exc:   # hostile bytes: whatever the parser raises (InvalidVersion, ...)
        raise CertError(f"unparsable certificate ({type(exc).__name__}: {exc})") from None
    return cert


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a bundle: end-entity first, then issuers)."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertError(f"no PEM certificate could be read ({exc})") from None
    for cert in certs:
        parse_der(cert.public_bytes(serialization.Encoding.DER))
    return certs


def load_pem_private_key(data: bytes):
    """An unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertError("the private key is encrypted; vgw needs it unencrypted "
                        "(openssl pkey -in KEY -out KEY.plain)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertError(f"no PEM private key could be read ({exc})") from None


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_problem(key, leaf: bool = True) -> str | None:
    """None if vgw accepts this public or private key, else what is wrong."""
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        if key.key_size < MIN_RSA_BITS:
            return f"an RSA key of {key.key_size} bits is too small (at least {MIN_RSA_BITS})"
        return None
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        curves = LEAF_CURVES if leaf else CA_CURVES
        if not isinstance(key.curve, curves):
            names = ", ".join(c.name for c in curves)
            return f"ECDSA curve {key.curve.name} is not supported (use {names})"
        return None
    return f"{type(key).__name__.lstrip('_')} keys are not supported (use RSA 2048+ or ECDSA P-256/P-384)"


def same_public_key(a, b) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def spki_sha1(cert: x509.Certificate) -> bytes:
    """The CERTREQ "Certification Authority" value: SHA-1 of the CA's
    SubjectPublicKeyInfo (RFC 7296 §3.7)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(hashes.SHA1())
    h.update(spki)
    return h.finalize()


# --- what the settings carry ---------------------------------------------------------------


@dataclass(frozen=True)
class TrustAnchors:
    """The configured CA certificates (the stand-in for AWS Private CA), as DER."""

    ders: tuple[bytes, ...]

    @property
    def certs(self) -> list[x509.Certificate]:
        return [parse_der(d) for d in self.ders]

    def certreq_data(self) -> bytes:
        """The CERTREQ body after the encoding octet: one SHA-1 per CA."""
        return b"".join(spki_sha1(c) for c in self.certs)


@dataclass(frozen=True)
class LocalCredentials:
    """vgw's certificate chain (end-entity first) and its private key."""

    chain: tuple[bytes, ...]
    key_der: bytes = field(repr=False)      # PKCS#8 DER
    # present this subjectAltName instead of the subject DN: a DNS name (ID_FQDN)
    # or an IPv4 address (ID_IPV4_ADDR)
    identity: str | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return parse_der(self.chain[0])

    @property
    def private_key(self):
        return _load_key(self.key_der)

    def id_body(self) -> tuple[int, bytes]:
        """(ID type, data) vgw presents: the subject DN (RFC 4945 §3.1.5), or a
        DNS name or IPv4 address of the certificate's subjectAltName (§3.1.1, §3.1.2)."""
        if self.identity:
            try:
                return IdType.IPV4_ADDR, ipaddress.IPv4Address(self.identity).packed
            except ValueError:
                return IdType.FQDN, self.identity.encode("ascii")
        return IdType.DER_ASN1_DN, self.leaf.subject.public_bytes()


@lru_cache(maxsize=64)
def _load_key(key_der: bytes):
    return serialization.load_der_private_key(key_der, password=None)


def private_key_der(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# --- chain validation -------------------------------------------------------------------


def check_limits(ders: list[bytes]) -> list[x509.Certificate]:
    """Bound the work before any signature check; parse every certificate."""
    if not ders:
        raise CertError("no certificate")
    if len(ders) > MAX_CHAIN_CERTS:
        raise CertError(f"{len(ders)} certificates exceed the limit of {MAX_CHAIN_CERTS}")
    size = sum(len(d) for d in ders)
    if size > MAX_CHAIN_BYTES:
        raise CertError(f"certificates of {size} bytes exceed the limit of {MAX_CHAIN_BYTES}")
    certs = []
    for i, d in enumerate(ders):
        try:
            certs.append(parse_der(d))
        except CertError as exc:
            raise CertError(f"certificate {i + 1} of {len(ders)}: {exc.reason}") from None
    return certs


def validate_chain(ders: list[bytes], anchors: TrustAnchors,
                   now: datetime.datetime) -> x509.Certificate:
    """Check the end-entity `ders[0]` up to a configured CA; returns it. `now` is
    an aware UTC datetime. Raises CertError saying what failed."""
    certs = check_limits(ders)
    leaf, pool = certs[0], certs[1:]
    _check_cert(leaf, now, issuer=False)
    problem = key_problem(leaf.public_key())
    if problem:
        raise CertError(f"certificate {subject_text(leaf)}: {problem}")
    roots = anchors.certs
    if not roots:
        raise CertError("no CA certificate is configured")
    current, path = leaf, [leaf]
    while True:
        problem = signature_problem(current)
        if problem:
            raise CertError(f"certificate {subject_text(current)} {problem}")
        unusable: list[str] = []
        for root in roots:
            if root.subject == current.issuer and _issued_by(current, root, unusable):
                _check_cert(root, now, issuer=True, below=len(path) - 1)
                return leaf
        nxt = next((c for c in pool if c.subject == current.issuer and c not in path
                    and _issued_by(current, c, unusable)), None)
        if nxt is None:
            why = "".join(f"; {u}" for u in unusable)
            raise CertError(f"certificate {subject_text(current)} is not issued by a configured CA "
                            f"(issuer {dn_text(current.issuer)}){why}")
        if len(path) >= MAX_CHAIN_CERTS:
            raise CertError("certificate path too long")
        _check_cert(nxt, now, issuer=True, below=len(path) - 1)
        path.append(nxt)
        current = nxt


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, unusable: list[str]) -> bool:
    """Did `issuer` sign `cert`? A wrong signature is simply "no" (another
    candidate may be the issuer); a signature that cannot be checked at all (its
    algorithm does not fit the issuer's key, ...) is "no" too, but the reason goes
    to `unusable` so that the refusal says it rather than only "not issued by"."""
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except Exception as exc:   # hostile input: whatever the check raises (ValueError, TypeError, ...)
        unusable.append(f"its signature cannot be checked against {subject_text(issuer)} "
                        f"({type(exc).__name__}: {exc})")
        return False
    return True


def signature_problem(cert: x509.Certificate) -> str | None:
    """None if vgw accepts the algorithm `cert` is signed with (CERT_SIG_HASHES,
    for RSASSA-PSS also as the MGF1 hash), else why not, to follow the subject."""
    oid = cert.signature_algorithm_oid.dotted_string
    accepted = ", ".join(CERT_SIG_HASHES.values())
    try:
        algo = cert.signature_hash_algorithm
    except Exception:   # UnsupportedAlgorithm; hostile input may make the parser raise anything
        return (f"is signed with an unsupported signature algorithm {oid} (vgw accepts RSA or "
                f"ECDSA signatures with {accepted})")
    if algo is None:
        what = _NO_HASH.get(oid, f"signature algorithm {oid}")
        return f"is signed with {what}, which vgw does not accept (RSA or ECDSA with {accepted})"
    if algo.name not in CERT_SIG_HASHES:
        return (f"is signed with {_HASH_NAMES.get(algo.name, algo.name.upper())} (signature "
                f"algorithm {oid}), which vgw refuses (it accepts {accepted})")
    if oid == RSASSA_PSS:
        try:
            scheme = parse_algorithm_identifier(_signature_algorithm_der(cert))
        except (SignatureError, ValueError) as exc:
            return f"has RSASSA-PSS parameters vgw cannot use ({getattr(exc, 'reason', exc)})"
        if scheme.mgf_hash not in OFFERED:   # the parser knows only SHA-1 besides these
            return (f"is signed with RSASSA-PSS whose mask uses MGF1 with SHA-1, which vgw "
                    f"refuses (it accepts {accepted})")
    return None


def _signature_algorithm_der(cert: x509.Certificate) -> bytes:
    """The outer signatureAlgorithm of a Certificate (RFC 5280 §4.1.1.2), as DER."""
    data = der(cert)
    _, start, end = asn1.read(data)
    fields = asn1.children(data, start, end)
    if len(fields) != 3:
        raise ValueError("a Certificate is three fields")
    return data[fields[0][2]:fields[1][2]]   # from the end of tbsCertificate to its own end


def _check_cert(cert: x509.Certificate, now: datetime.datetime, issuer: bool,
                below: int = 0) -> None:
    """Dates, extensions and, for an issuer, its CA rights. `below`: how many
    intermediate CAs sit between it and the end-entity (pathLenConstraint)."""
    name = subject_text(cert)
    if now < cert.not_valid_before_utc:
        raise CertError(f"certificate {name} is not valid before {_when(cert.not_valid_before_utc)}")
    if now > cert.not_valid_after_utc:
        raise CertError(f"certificate {name} expired on {_when(cert.not_valid_after_utc)}")
    for ext in cert.extensions:
        if ext.critical and ext.oid not in _KNOWN_EXTENSIONS:
            raise CertError(f"certificate {name} has an unsupported critical extension {ext.oid.dotted_string}")
    if not issuer:
        ku = _ext(cert, x509.KeyUsage)
        # RFC 4945 §5.1.3.2: digitalSignature or nonRepudiation (either or both) lets it sign AUTH
        if ku is not None and not (ku.digital_signature or ku.content_commitment):
            raise CertError(f"certificate {name} may not sign (keyUsage has neither "
                            "digitalSignature nor nonRepudiation)")
        return
    bc = _ext(cert, x509.BasicConstraints)
    if bc is None or not bc.ca:
        raise CertError(f"certificate {name} signs certificates but is not a CA (basicConstraints)")
    if bc.path_length is not None and below > bc.path_length:
        raise CertError(f"CA {name} allows {bc.path_length} intermediate CAs below it, the path has {below}")
    ku = _ext(cert, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        raise CertError(f"CA {name} may not sign certificates (keyUsage lacks keyCertSign)")
    problem = key_problem(cert.public_key(), leaf=False)
    if problem:
        raise CertError(f"CA {name}: {problem}")


def _ext(cert: x509.Certificate, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _when(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def utc(posix: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(posix, datetime.timezone.utc)


# --- identities ----------------------------------------------------------------------------


def dn_text(name: x509.Name) -> str:
    """A DN as strongSwan and OpenSSL print it: first RDN first, ", " between."""
    return ", ".join(rdn.rfc4514_string() for rdn in name.rdns) or "(empty DN)"


def subject_text(cert: x509.Certificate) -> str:
    return dn_text(cert.subject)


def parse_dn(text: str) -> x509.Name:
    """A DN written as strongSwan does (`C=US, O=Example, CN=cgw`): RDNs first to
    last, commas with optional spaces (a comma inside a value is escaped: `\\,`)."""
    parts = [p.strip() for p in re.split(r"(?<!\\),", text)]
    if not parts or any(not p or "=" not in p for p in parts):
        raise ValueError(f"{text!r} is not a DN; write it as e.g. CN=cgw.example.net or C=US, O=Example, CN=cgw")
    # from_rfc4514_string reads the last RDN first (RFC 4514 §2.1): reverse it back
    try:
        parsed = x509.Name.from_rfc4514_string(",".join(parts), _DN_NAMES)
    except ValueError:
        raise ValueError(f"{text!r} is not a DN; attribute names are CN, O, OU, C, L, ST, DC, E, ...") from None
    return x509.Name(list(reversed(parsed.rdns)))


FQDN_RE = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)"
                     r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?")


@dataclass(frozen=True)
class Identity:
    """An identity as configured (customer_gateway.identity): a DN, an IPv4
    address or an FQDN."""

    kind: str          # "dn", "ipv4", "fqdn"
    text: str

    @classmethod
    def parse(cls, text: str) -> "Identity":
        text = text.strip()
        if "=" in text:
            parse_dn(text)
            return cls("dn", text)
        try:
            ipaddress.IPv4Address(text)
            return cls("ipv4", text)
        except ValueError:
            pass
        if not FQDN_RE.fullmatch(text):
            raise ValueError(f"{text!r} is neither a DN (CN=...), an IPv4 address nor an FQDN")
        return cls("fqdn", text.rstrip("."))

    def matches(self, id_type: int, data: bytes) -> bool:
        """Does an ID payload (type, data) name this identity? A DN matches only
        with its RDNs in the written order, which is the DER order (first RDN
        first, as strongSwan writes DNs and vgw's own IDr carries this one):
        RFC 5280 §7.1 compares the RDN sequences in order, so `O=A, CN=B` is not
        `CN=B, O=A`. Values compare as asn1.names_match does (string type, case
        and spacing aside)."""
        if self.kind == "dn":
            return id_type == IdType.DER_ASN1_DN and names_match(data, parse_dn(self.text).public_bytes())
        if self.kind == "ipv4":
            return id_type == IdType.IPV4_ADDR and data == ipaddress.IPv4Address(self.text).packed
        return id_type == IdType.FQDN and data.decode("ascii", "replace").lower().rstrip(".") == self.text.lower()

    def mismatch_hint(self, id_type: int, data: bytes) -> str:
        """For the refusal log: when the peer's DN is this one with the RDNs in
        reverse (RFC 4514 order, last RDN first, as `openssl x509 -nameopt RFC2253`
        and `cryptography`'s rfc4514_string() print it), how to write it instead;
        else ""."""
        if self.kind != "dn" or id_type != IdType.DER_ASN1_DN or self.matches(id_type, data):
            return ""
        rdns = parse_dn(self.text).rdns
        if len(rdns) < 2 or not names_match(data, x509.Name(list(reversed(rdns))).public_bytes()):
            return ""
        return (f" (the same RDNs in reverse order: write the DN first RDN first, as strongSwan "
                f"does: {name_text(data)})")


def cert_vouches_for(cert: x509.Certificate, id_type: int, data: bytes) -> bool:
    """Is the peer's ID the certificate's? ID_DER_ASN1_DN: the same DN as the
    subject; ID_FQDN / ID_RFC822_ADDR / ID_IPV4_ADDR: in subjectAltName (RFC 4945 §3.1)."""
    if id_type == IdType.DER_ASN1_DN:
        return names_match(data, cert.subject.public_bytes())
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return False
    if id_type == IdType.FQDN:
        want = data.decode("ascii", "replace").lower().rstrip(".")
        return any(n.lower().rstrip(".") == want for n in san.get_values_for_type(x509.DNSName))
    if id_type == IdType.RFC822_ADDR:
        want = data.decode("ascii", "replace").lower()
        return any(n.lower() == want for n in san.get_values_for_type(x509.RFC822Name))
    if id_type == IdType.IPV4_ADDR and len(data) == 4:
        return ipaddress.IPv4Address(data) in san.get_values_for_type(x509.IPAddress)
    return False


def describe_id(id_type: int, data: bytes) -> str:
    """An ID payload for logs and status; a DN in strongSwan's order."""
    if id_type == IdType.DER_ASN1_DN:
        try:
            return name_text(data)
        except ValueError:
            return f"DER_ASN1_DN:{data.hex()}"
    return format_identity(id_type, data)


__all__ = [
    "CertError", "TrustAnchors", "LocalCredentials", "Identity", "MAX_CHAIN_CERTS",
    "MAX_CHAIN_BYTES", "parse_der", "load_pem_certificates", "load_pem_private_key",
    "validate_chain", "check_limits", "cert_vouches_for", "describe_id", "dn_text",
    "parse_dn", "spki_sha1", "key_problem", "signature_problem", "CERT_SIG_HASHES",
    "same_public_key", "private_key_der", "utc", "der",
]
