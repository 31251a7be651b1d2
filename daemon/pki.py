"""`vgw pki`: a lab PKI in one command, so certificate tunnels can be tried in
minutes (AWS uses AWS Private CA; here a local CA plays its part).

    vgw pki init DIR [--key rsa|ecdsa|ecdsa-p384] [--intermediate]
    vgw pki issue DIR NAME [--key ...] [--days N] [--expired]

`init` writes a root CA (and, with --intermediate, an intermediate CA that
issues the end-entities), a certificate for vgw and one for the customer
gateway, and prints the vgw config snippet and the strongSwan side. `issue`
adds another end-entity from DIR's CA (for a second customer gateway, or an
expired one to watch the refusal). Everything is made with the `cryptography`
package; keys are PKCS#8 PEM without a password, readable by the owner only.
These are lab keys: never use them for anything real.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_KINDS = ("rsa", "rsa-4096", "ecdsa", "ecdsa-p384")
DEFAULT_DAYS = 365
CA_DAYS = 3650


def new_key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    if kind == "rsa-4096":
        return rsa.generate_private_key(65537, 4096)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key kind {kind!r}; use one of {', '.join(KEY_KINDS)}")


def _hash_for(key) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


@dataclass
class Issued:
    cert: x509.Certificate
    key: object
    chain: tuple[x509.Certificate, ...] = ()   # issuers below the root, nearest first


def _name(cn: str) -> x509.Name:
    """CN only, so that the DN is written as simply as `CN=cgw.example.net`."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _validity(days: int, expired: bool, now: datetime.datetime | None) -> tuple[datetime.datetime, datetime.datetime]:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if expired:
        return now - datetime.timedelta(days=days + 1), now - datetime.timedelta(days=1)
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)


def make_ca(cn: str, kind: str = "ecdsa", issuer: Issued | None = None, days: int = CA_DAYS,
            path_length: int | None = None, now: datetime.datetime | None = None) -> Issued:
    """A root CA (issuer None) or an intermediate CA signed by `issuer`."""
    key = new_key(kind)
    not_before, not_after = _validity(days, False, now)
    subject = _name(cn)
    signer = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                              critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    cert = builder.sign(signer, _hash_for(signer))
    chain = (issuer.cert,) + issuer.chain if issuer and _is_intermediate(issuer) else ()
    return Issued(cert, key, chain)


def _is_intermediate(issued: Issued) -> bool:
    return issued.cert.issuer != issued.cert.subject


def make_end_entity(name: str, issuer: Issued, kind: str = "ecdsa", days: int = DEFAULT_DAYS,
                    expired: bool = False, now: datetime.datetime | None = None) -> Issued:
    """An end-entity certificate: subject CN=name and, for a DNS name or an IPv4
    address, the same in subjectAltName (RFC 4945 §3.1: IDs match SANs)."""
    key = new_key(kind)
    not_before, not_after = _validity(days, expired, now)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.IPv4Address(name))
    except ValueError:
        san = x509.DNSName(name)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            # strongSwan's "ikeIntermediate"/serverAuth/clientAuth are all harmless here
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                           critical=False)
            .sign(issuer.key, _hash_for(issuer.key)))
    chain = (issuer.cert,) + issuer.chain if _is_intermediate(issuer) else ()
    return Issued(cert, key, chain)


# --- files ----------------------------------------------------------------------------------


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, secret: bool = False, force: bool = False) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; use --force to overwrite")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if secret:
        os.chmod(path, 0o600)


def _load(path: Path) -> Issued:
    certs = x509.load_pem_x509_certificates(path.with_suffix(".pem").read_bytes())
    key = serialization.load_pem_private_key(path.with_suffix(".key").read_bytes(), password=None)
    return Issued(certs[0], key, tuple(certs[1:]))


def write_end_entity(directory: Path, stem: str, issued: Issued, force: bool = False) -> tuple[Path, Path]:
    """STEM.pem (the certificate, then intermediates) and STEM.key."""
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    _write(cert_path, cert_pem(issued.cert, *issued.chain), force=force)
    _write(key_path, key_pem(issued.key), secret=True, force=force)
    return cert_path, key_path


def init(directory: str | Path, kind: str = "ecdsa", intermediate: bool = False,
         vgw_name: str = "vgw.example.net", cgw_name: str = "cgw.example.net",
         days: int = DEFAULT_DAYS, force: bool = False) -> dict[str, Path]:
    """Make the lab PKI in `directory`; returns the paths written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    root = make_ca("vgw lab root CA", kind)
    paths = {"ca": d / "ca.pem", "ca_key": d / "ca.key"}
    _write(paths["ca"], cert_pem(root.cert), force=force)
    _write(paths["ca_key"], key_pem(root.key), secret=True, force=force)
    issuer = root
    if intermediate:
        issuer = make_ca("vgw lab intermediate CA", kind, issuer=root, path_length=0)
        paths["intermediate"], paths["intermediate_key"] = write_end_entity(d, "intermediate", issuer, force)
    vgw = make_end_entity(vgw_name, issuer, kind, days)
    cgw = make_end_entity(cgw_name, issuer, kind, days)
    paths["vgw"], paths["vgw_key"] = write_end_entity(d, "vgw", vgw, force)
    paths["cgw"], paths["cgw_key"] = write_end_entity(d, "cgw", cgw, force)
    return paths


def issue(directory: str | Path, name: str, stem: str | None = None, kind: str = "ecdsa",
          days: int = DEFAULT_DAYS, expired: bool = False, force: bool = False) -> tuple[Path, Path]:
    """Another end-entity from DIR's issuing CA (the intermediate if there is one)."""
    d = Path(directory)
    issuer_stem = d / "intermediate" if (d / "intermediate.pem").exists() else d / "ca"
    issuer = _load(issuer_stem)
    issued = make_end_entity(name, issuer, kind, days, expired)
    return write_end_entity(d, stem or _stem(name), issued, force)


def _stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def snippet(paths: dict[str, Path], vgw_name: str, cgw_name: str) -> str:
    """What to put in vgw's config and in strongSwan's, for the files just written."""
    ca, vgw, vgw_key = (paths[k].resolve() for k in ("ca", "vgw", "vgw_key"))
    cgw, cgw_key = paths["cgw"].resolve(), paths["cgw_key"].resolve()
    return f"""\
# --- vgw config (add to your gateway YAML) -------------------------------------------
ca_certificates: [{ca}]
connections:
  - name: vpn-lab
    customer_gateway: {{ip: 198.51.100.10, identity: "CN={cgw_name}"}}   # identity optional
    tunnels:
      - outside_ip: 198.51.100.1
        certificate: {vgw}
        private_key: {vgw_key}

# --- strongSwan (swanctl) on the customer gateway ------------------------------------
#   cp {ca} /etc/swanctl/x509ca/
#   cp {cgw} /etc/swanctl/x509/       cp {cgw_key} /etc/swanctl/private/
# connections.tun1:
#   local  {{ auth = pubkey  certs = {cgw.name}  id = "CN={cgw_name}" }}
#   remote {{ auth = pubkey  id = "CN={vgw_name}" }}
# Lab keys, made on this machine: never use them for anything real.
"""


# --- the command line -------------------------------------------------------------------------


def add_parser(sub) -> None:
    """`vgw pki init|issue` (daemon/cli.py adds it)."""
    pki = sub.add_parser("pki", help="make a lab CA and certificates for certificate tunnels")
    actions = pki.add_subparsers(dest="pki_command", required=True, metavar="ACTION")
    init_p = actions.add_parser("init", help="a CA (optionally an intermediate), a vgw and a CGW certificate")
    init_p.add_argument("dir", metavar="DIR", help="directory to write into (created if missing)")
    init_p.add_argument("--key", choices=KEY_KINDS, default="ecdsa",
                        help="key type of every certificate: rsa (2048), rsa-4096, ecdsa (P-256, the default),"
                             " ecdsa-p384")
    init_p.add_argument("--intermediate", action="store_true",
                        help="an intermediate CA issues vgw's and the CGW's certificates")
    init_p.add_argument("--vgw-name", default="vgw.example.net", help="vgw's CN and DNS name")
    init_p.add_argument("--cgw-name", default="cgw.example.net", help="the customer gateway's CN and DNS name")
    init_p.add_argument("--days", type=int, default=DEFAULT_DAYS, help="validity of the end-entities")
    init_p.add_argument("--force", action="store_true", help="overwrite existing files")
    issue_p = actions.add_parser("issue", help="one more end-entity certificate from DIR's CA")
    issue_p.add_argument("dir", metavar="DIR", help="a directory made by `vgw pki init`")
    issue_p.add_argument("name", metavar="NAME", help="CN and DNS name (or IPv4 address) of the certificate")
    issue_p.add_argument("--out", metavar="STEM", help="file names STEM.pem and STEM.key (default: NAME)")
    issue_p.add_argument("--key", choices=KEY_KINDS, default="ecdsa")
    issue_p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    issue_p.add_argument("--expired", action="store_true",
                         help="a certificate that expired yesterday (to see it refused)")
    issue_p.add_argument("--force", action="store_true", help="overwrite existing files")


def run(args) -> int:
    import sys
    try:
        if args.pki_command == "init":
            paths = init(args.dir, args.key, args.intermediate, args.vgw_name, args.cgw_name,
                         args.days, args.force)
            for what, path in paths.items():
                print(f"wrote {path}", file=sys.stderr)
            sys.stdout.write(snippet(paths, args.vgw_name, args.cgw_name))
        else:
            cert, key = issue(args.dir, args.name, args.out, args.key, args.days, args.expired, args.force)
            print(f"wrote {cert}\nwrote {key}")
    except (OSError, ValueError) as exc:
        print(f"vgw pki: {exc}", file=sys.stderr)
        return 2
    return 0
