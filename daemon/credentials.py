"""Certificate files named in the config, read and checked at validation time, so
that `vgw validate` catches a bad PEM, a key that does not match its certificate,
a certificate that no configured CA issued, or one that expired.

The checks themselves are ikecore.certs' (the same code judges the customer
gateway's chain at run time); this module reads the files and words the
problems for the config loader, which attaches them to the right key.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from ikecore.certs import (
    CertError, TrustAnchors, der, dn_text, key_problem, load_pem_certificates, load_pem_private_key,
    private_key_der, same_public_key, subject_text, validate_chain,
)

MAX_PEM_FILE = 256 * 1024


def resolve(path: str, base_dir: str | Path | None) -> Path:
    """A path from the config: relative ones are taken from the config file's directory."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_FILE + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_PEM_FILE:
        raise ValueError(f"{path} is larger than {MAX_PEM_FILE // 1024} KB; is it the right file?")
    return data


def read_certificates(path: Path) -> tuple[bytes, ...]:
    """The DER certificates of a PEM file, in file order."""
    data = _read(path)
    try:
        certs = load_pem_certificates(data)
    except CertError as exc:
        raise ValueError(f"{path} holds no PEM certificate: {exc.reason}") from None
    return tuple(der(c) for c in certs)


def read_private_key(path: Path):
    data = _read(path)
    try:
        return load_pem_private_key(data)
    except CertError as exc:
        raise ValueError(f"{path}: {exc.reason}") from None


def read_ca(path: Path) -> tuple[bytes, ...]:
    """A CA file (one or more CA certificates); each must be a CA."""
    from cryptography import x509
    ders = read_certificates(path)
    now = datetime.datetime.now(datetime.timezone.utc)
    for d in ders:
        cert = x509.load_der_x509_certificate(d)
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise ValueError(f"{path}: {subject_text(cert)} is not a CA certificate (basicConstraints"
                             " CA:TRUE); list the CA that issued the certificates, not an end-entity")
        if now > cert.not_valid_after_utc:
            raise ValueError(f"{path}: the CA {subject_text(cert)} expired on "
                             f"{cert.not_valid_after_utc:%Y-%m-%d}")
    return ders


def load_tunnel_credentials(cert_path: Path, key_path: Path) -> tuple[tuple[bytes, ...], bytes, list[tuple[str, str]]]:
    """(chain DER, key PKCS#8 DER, problems as (key, message)) of one tunnel."""
    problems: list[tuple[str, str]] = []
    chain: tuple[bytes, ...] = ()
    key = None
    try:
        chain = read_certificates(cert_path)
    except ValueError as exc:
        problems.append(("certificate", str(exc)))
    try:
        key = read_private_key(key_path)
    except ValueError as exc:
        problems.append(("private_key", str(exc)))
    if chain:
        from cryptography import x509
        leaf = x509.load_der_x509_certificate(chain[0])
        problem = key_problem(leaf.public_key())
        if problem:
            problems.append(("certificate", f"{cert_path}: {problem}"))
        if key is not None and not same_public_key(leaf.public_key(), key.public_key()):
            problems.append(("private_key", f"{key_path} is not the key of the certificate in {cert_path}"
                             " (the public keys differ); give the matching key"))
    if key is not None and key_problem(key) and not chain:
        problems.append(("private_key", f"{key_path}: {key_problem(key)}"))
    return chain, (private_key_der(key) if key is not None else b""), problems


def check_issued(chain: tuple[bytes, ...], ca_ders: tuple[bytes, ...],
                 cert_path: str) -> tuple[str | None, str | None]:
    """(problem, warning) of vgw's certificate chain against the configured CAs:
    (None, None) if a configured CA issued it and all is in date. A chain whose
    top certificate was issued by a CA that is neither in the certificate file
    nor in ca_certificates is a warning naming that CA, not a problem: the
    customer gateway may hold it (AWS Private CA's subordinate CA installed on
    the customer gateway), and vgw sends what it has."""
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        validate_chain(list(chain), TrustAnchors(ca_ders), now)
    except CertError as exc:
        missing = _missing_issuer(chain, ca_ders) if "not issued by" in exc.reason else None
        if missing is not None:
            return None, (f"{cert_path}: its issuer {missing} is neither in the file nor in"
                          " ca_certificates: vgw sends its certificate without it, and the customer"
                          f" gateway must hold {missing} (else it refuses vgw's certificate); append"
                          " it to the file after the certificate to send it")
        hint = (" (put the issuing CA in ca_certificates, intermediates after the certificate in"
                " its file)" if "not issued by" in exc.reason else "")
        return f"{cert_path}: {exc.reason}; the customer gateway would refuse it{hint}", None
    return None, None


def _missing_issuer(chain: tuple[bytes, ...], ca_ders: tuple[bytes, ...]) -> str | None:
    """The DN of the CA above the last certificate of `chain` that vgw can reach
    from its certificate, when no certificate of that name is in the file or
    among the CAs (a CA of that name that did not sign is a problem, not this)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    certs = [x509.load_der_x509_certificate(d) for d in chain]
    known = {c.subject for c in certs} | {x509.load_der_x509_certificate(d).subject for d in ca_ders}
    current, seen = certs[0], [certs[0]]
    while current.issuer != current.subject:
        if current.issuer not in known:
            return dn_text(current.issuer)
        nxt = None
        for candidate in certs:
            if candidate.subject == current.issuer and candidate not in seen:
                try:
                    current.verify_directly_issued_by(candidate)
                except (InvalidSignature, ValueError, TypeError):
                    continue
                nxt = candidate
                break
        if nxt is None:
            return None
        seen.append(nxt)
        current = nxt
    return None


def identity_in_certificate(chain: tuple[bytes, ...], identity: str) -> bool:
    """Is `identity` (a DNS name or an IPv4 address) in the subjectAltName of
    vgw's certificate? What a customer gateway checks of vgw's ID (RFC 4945 §3.1)."""
    import ipaddress

    from cryptography import x509
    leaf = x509.load_der_x509_certificate(chain[0])
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.IPv4Address(identity) in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        want = identity.lower().rstrip(".")
        return want in {n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)}
