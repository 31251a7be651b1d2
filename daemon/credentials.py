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
    CertError, TrustAnchors, der, key_problem, load_pem_certificates, load_pem_private_key,
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


def check_issued(chain: tuple[bytes, ...], ca_ders: tuple[bytes, ...], cert_path: str) -> str | None:
    """None if a configured CA issued vgw's certificate and all is in date; else why not."""
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        validate_chain(list(chain), TrustAnchors(ca_ders), now)
    except CertError as exc:
        hint = (" (put the issuing CA in ca_certificates, intermediates after the certificate in"
                " its file)" if "not issued by" in exc.reason else "")
        return f"{cert_path}: {exc.reason}; the customer gateway would refuse it{hint}"
    return None


def fqdn_in_certificate(chain: tuple[bytes, ...], fqdn: str) -> bool:
    from cryptography import x509
    leaf = x509.load_der_x509_certificate(chain[0])
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return fqdn.lower().rstrip(".") in {n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)}
