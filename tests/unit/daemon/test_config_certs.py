"""Certificate keys in the config: ca_certificates, certificate/private_key,
certificate_identity, customer_gateway.identity, ike_fragment_size; PSK and
certificate tunnels side by side; every mistake named by its key, caught by
`vgw validate`. Certificates are made at run time with daemon.pki.
"""

from __future__ import annotations

import pytest

from daemon import pki
from daemon.cli import main
from daemon.config import ConfigError, load_config, parse_config
from daemon.config.ike_settings import ike_settings
from ikecore.constants import IdType


@pytest.fixture(scope="module")
def pkidir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    pki.init(d, "ecdsa", intermediate=True)
    pki.issue(d, "old.example.net", stem="old", expired=True)
    other = tmp_path_factory.mktemp("other")
    pki.init(other, "ecdsa")
    (d / "other-ca.pem").write_bytes((other / "ca.pem").read_bytes())
    (d / "other-vgw.pem").write_bytes((other / "vgw.pem").read_bytes())
    (d / "other-vgw.key").write_bytes((other / "vgw.key").read_bytes())
    (d / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    pki.issue(d, "198.51.100.1", stem="vgw-ip")              # SAN IP:198.51.100.1
    # vgw's certificate without the intermediate that issued it
    (d / "vgw-leaf.pem").write_text((d / "vgw.pem").read_text().split("-----END CERTIFICATE-----")[0]
                                    + "-----END CERTIFICATE-----\n")
    return d


def config(cert_tunnel: str, ca: str = "ca_certificates: [ca.pem]",
           cgw: str = "{identity: CN=cgw.example.net}") -> str:
    """Connection `mixed`: tunnel 1 with the given keys, tunnel 2 with a PSK."""
    lines = [ca, "vpc: {cidrs: [10.0.0.0/16]}", "connections:", "  - name: mixed",
             f"    customer_gateway: {cgw}", "    tunnels:", "      - outside_ip: 198.51.100.1"]
    lines += ["        " + line.strip() for line in cert_tunnel.splitlines() if line.strip()]
    lines += ["      - outside_ip: 198.51.100.2", "        pre_shared_key: example_psk_tunnel2_abcdef"]
    return "\n".join(lines) + "\n"


GOOD = """\
    certificate: vgw.pem
    private_key: vgw.key"""


def load(pkidir, text):
    path = pkidir / "vgw.yaml"
    path.write_text(text)
    return load_config(path)


def issues(pkidir, text) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        load(pkidir, text)
    return [(i.path, i.message) for i in exc.value.issues]


def test_psk_and_certificate_tunnels_in_one_config(pkidir):
    cfg = load(pkidir, config(GOOD))
    conn = cfg.connections[0]
    cert_t, psk_t = conn.tunnels
    assert (cert_t.auth_method, psk_t.auth_method) == ("certificate", "psk")
    assert len(cert_t.certificate_chain) == 2            # vgw's certificate and the intermediate
    p = ike_settings(conn, cert_t)
    assert p.psk is None and p.credentials.chain == cert_t.certificate_chain
    assert p.credentials.id_body()[0] == IdType.DER_ASN1_DN
    assert len(p.trust.ders) == 1 and p.remote_id == "CN=cgw.example.net"
    assert p.wall_time is not None and p.fragment_size == 1280
    q = ike_settings(conn, psk_t)
    assert q.credentials is None and q.psk == b"example_psk_tunnel2_abcdef"
    # the policy compares by content: the same files give an equal policy (reload keeps the tunnel)
    assert ike_settings(*load(pkidir, config(GOOD)).all_tunnels()[0]) == p


def test_design_example_still_validates():
    from pathlib import Path
    example = Path(__file__).resolve().parents[3] / "examples" / "vgw.yaml"
    assert all(t.auth_method == "psk" for _, t in load_config(example).all_tunnels())


def test_relative_files_come_from_the_config_directory(pkidir, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load(pkidir, config(GOOD)).connections[0].tunnels[0].auth_method == "certificate"
    with pytest.raises(ConfigError) as exc:
        parse_config(config(GOOD))                       # text alone: relative to the cwd
    assert "cannot read" in str(exc.value)
    assert parse_config(config(GOOD), base_dir=pkidir).connections[0].tunnels[0].certificate == "vgw.pem"


@pytest.mark.parametrize("tunnel,path,words", [
    ("""\
        pre_shared_key: example_psk_tunnel1_abcdef
        certificate: vgw.pem
        private_key: vgw.key""", "certificate", "not both"),
    ("certificate: vgw.pem", "private_key", "required key is missing: certificate goes with private_key"),
    ("private_key: vgw.key", "certificate", "required key is missing: private_key goes with certificate"),
    ("inside_cidr: 169.254.10.0/30", "pre_shared_key", "or certificate: FILE and private_key: FILE"),
    ("""\
        pre_shared_key: example_psk_tunnel1_abcdef
        certificate_identity: vgw.example.net""", "certificate_identity", "certificate authentication only"),
    ("""\
        certificate: missing.pem
        private_key: vgw.key""", "certificate", "cannot read"),
    ("""\
        certificate: junk.pem
        private_key: vgw.key""", "certificate", "holds no PEM certificate"),
    ("""\
        certificate: vgw.pem
        private_key: cgw.key""", "private_key", "is not the key of the certificate"),
    ("""\
        certificate: vgw.pem
        private_key: vgw.pem""", "private_key", "no PEM private key"),
    ("""\
        certificate: old.pem
        private_key: old.key""", "certificate", "expired on"),
    ("""\
        certificate: other-vgw.pem
        private_key: other-vgw.key""", "certificate", "is not issued by a configured CA"),
    ("""\
        certificate: vgw.pem
        private_key: vgw.key
        certificate_identity: nope.example.net""", "certificate_identity", "not a DNS name"),
    ("""\
        certificate: vgw.pem
        private_key: vgw.key
        certificate_identity: 198.51.100.1""", "certificate_identity", "198.51.100.1 is not an IP address"),
    ("""\
        certificate: vgw.pem
        private_key: vgw.key
        certificate_identity: CN=vgw.example.net""", "certificate_identity", "presents its subject DN"),
    ("""\
        certificate: vgw.pem
        private_key: vgw.key
        certificate_identity: 198.51.100.300""", "certificate_identity", "a DNS name or an IPv4 address"),
    ("""\
        certificate: vgw.pem
        private_key: vgw.key
        ike_fragment_size: 500""", "ike_fragment_size", "between 576 and 9000"),
])
def test_tunnel_mistakes_name_the_key(pkidir, tunnel, path, words):
    found = issues(pkidir, config(tunnel))
    assert len(found) == 1, found
    got_path, message = found[0]
    assert got_path == f"connections[0].tunnels[0].{path}"
    assert words in message, message


def test_certificate_tunnels_need_ca_certificates(pkidir):
    [(path, message)] = issues(pkidir, config(GOOD, ca=""))
    assert path == "connections[0].tunnels[0].certificate"
    assert "needs ca_certificates" in message


@pytest.mark.parametrize("ca,words", [
    ("ca_certificates: [vgw.pem]", "is not a CA certificate"),
    ("ca_certificates: [nothere.pem]", "cannot read"),
])
def test_bad_ca_files(pkidir, ca, words):
    found = issues(pkidir, config("pre_shared_key: example_psk_tunnel1_abcdef", ca=ca))
    assert [p for p, _ in found] == ["ca_certificates[0]"] and words in found[0][1]


def test_a_bad_ca_file_is_reported_beside_a_bad_certificate(pkidir):
    """Issue 16: the ca_certificates problem was hidden behind the tunnel's
    until the next run; both are reported at once now."""
    found = issues(pkidir, config("certificate: vgw.pem\nprivate_key: cgw.key", ca="ca_certificates: [nothere.pem]"))
    assert sorted(p for p, _ in found) == ["ca_certificates[0]", "connections[0].tunnels[0].private_key"], found
    found = issues(pkidir, config("certificate: junk.pem\nprivate_key: vgw.key", ca="ca_certificates: [vgw.pem]"))
    assert sorted(p for p, _ in found) == ["ca_certificates[0]", "connections[0].tunnels[0].certificate"], found


def test_the_intermediate_may_be_the_configured_ca(pkidir):
    assert load(pkidir, config(GOOD, ca="ca_certificates: [intermediate.pem]"))


@pytest.mark.parametrize("identity,ok", [
    ("CN=cgw.example.net", True), ('"C=US, O=Example, CN=cgw"', True), ("cgw.example.net", True),
    ("192.0.2.7", True), ('"=bad"', False), ('"no spaces allowed"', False), ("[1, 2]", False),
])
def test_customer_gateway_identity(pkidir, identity, ok):
    text = config(GOOD, cgw=f"{{identity: {identity}}}")
    if ok:
        assert load(pkidir, text).connections[0].customer_gateway.identity
    else:
        [(path, _)] = issues(pkidir, text)
        assert path == "connections[0].customer_gateway.identity"


def test_start_without_an_ip_says_what_nat_needs(pkidir):
    found = issues(pkidir, config(GOOD + "\nstartup_action: start", cgw="{}"))
    [(path, message)] = found
    assert path == "connections[0].tunnels[0].startup_action"
    assert "customer_gateway.ip" in message and "customer_gateway.identity" in message


def test_vgw_validate_and_pki_commands(pkidir, tmp_path, capsys):
    path = pkidir / "cli.yaml"
    path.write_text(config(GOOD))
    assert main(["validate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "with identity CN=cgw.example.net" in out and "certificate vgw.pem" in out
    path.write_text(config("certificate: vgw.pem\nprivate_key: cgw.key"))
    assert main(["validate", "--config", str(path)]) == 2
    assert "private_key" in capsys.readouterr().err
    # vgw pki init prints a snippet whose files validate as they are
    assert main(["pki", "init", str(tmp_path / "lab"), "--key", "rsa"]) == 0
    snippet = capsys.readouterr().out
    assert f"ca_certificates: [{tmp_path / 'lab' / 'ca.pem'}]" in snippet
    assert main(["pki", "init", str(tmp_path / "lab")]) == 2          # no overwrite without --force
    assert "exists" in capsys.readouterr().err
    assert oct((tmp_path / "lab" / "vgw.key").stat().st_mode & 0o777) == "0o600"
    yaml_text = snippet.split("# --- strongSwan")[0].replace(
        "connections:", "vpc: {cidrs: [10.0.0.0/16]}\nconnections:")
    (tmp_path / "lab.yaml").write_text(yaml_text)
    assert load_config(tmp_path / "lab.yaml").connections[0].tunnels[0].auth_method == "certificate"


# --- issue 16: vgw's identity as an IPv4 address; an intermediate vgw does not have -----------


def test_certificate_identity_may_be_the_outside_ip(pkidir):
    """As AWS's PSK configurations name the AWS side (its outside IP): vgw
    presents ID_IPV4_ADDR, and cgw-config writes that identity for every vendor."""
    from daemon.cgwconfig import render
    cfg = load(pkidir, config("certificate: vgw-ip.pem\nprivate_key: vgw-ip.key\ncertificate_identity: 198.51.100.1"))
    conn = cfg.connections[0]
    policy = ike_settings(conn, conn.tunnels[0])
    assert policy.credentials.id_body() == (IdType.IPV4_ADDR, bytes([198, 51, 100, 1]))
    swanctl = render(cfg, conn, "strongswan")
    remote = swanctl.split("remote {", 1)[1].split("}", 1)[0]
    assert "auth = pubkey" in remote and "id = 198.51.100.1" in remote
    assert "AWS's identity                  : 198.51.100.1" in render(cfg, conn, "generic")
    assert "vgw's IKE identity on this certificate tunnel: 198.51.100.1" in render(cfg, conn, "xml")


def test_cgw_config_writes_the_subject_dn_without_certificate_identity(pkidir):
    from daemon.cgwconfig import render
    cfg = load(pkidir, config(GOOD))
    conn = cfg.connections[0]
    assert 'id = "CN=vgw.example.net"' in render(cfg, conn, "strongswan").split("remote {", 1)[1]
    assert "vgw's IKE identity on this certificate tunnel: CN=vgw.example.net" in render(cfg, conn, "xml")


def test_a_missing_intermediate_is_a_warning_and_vgw_sends_what_it_has(pkidir, capsys):
    """Issue 16: vgw's certificate was issued by an intermediate that is neither
    in its file nor in ca_certificates (AWS Private CA's subordinate CA sits on
    the customer gateway): vgw starts, warns naming it, sends its certificate
    alone; a customer gateway that holds the intermediate accepts it."""
    from ikecore.certs import TrustAnchors, der, load_pem_certificates
    from tests.unit.ikecore.ikepair import IkePair, settings_a
    text = config("certificate: vgw-leaf.pem\nprivate_key: vgw.key")
    cfg = load(pkidir, text)
    [warning] = cfg.warnings
    assert warning.path == "connections[0].tunnels[0].certificate" and warning.line == 8
    assert "its issuer CN=vgw lab intermediate CA is neither in the file nor in ca_certificates" in warning.message
    path = pkidir / "leaf.yaml"
    path.write_text(text)
    assert main(["validate", "--config", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "CN=vgw lab intermediate CA" in err and ":8: " in err
    # the tunnel, vgw as responder (B), against a CGW (A) that holds the intermediate
    conn = cfg.connections[0]
    vgw_policy = ike_settings(conn, conn.tunnels[0])
    assert len(vgw_policy.credentials.chain) == 1
    pems = [der(c) for c in load_pem_certificates((pkidir / "intermediate.pem").read_bytes()
                                                  + (pkidir / "ca.pem").read_bytes())]
    cgw_key = (pkidir / "cgw.key").read_bytes()
    from ikecore.certs import LocalCredentials, load_pem_private_key, private_key_der
    cgw_chain = tuple(der(c) for c in load_pem_certificates((pkidir / "cgw.pem").read_bytes()))
    cgw = settings_a(local_ip="198.51.100.10", remote_ip="198.51.100.1", psk=None,
                   credentials=LocalCredentials(cgw_chain, private_key_der(load_pem_private_key(cgw_key))),
                   trust=TrustAnchors(tuple(pems)), wall_time=vgw_policy.wall_time,
                   phase1_dh_groups=(19,))
    from dataclasses import replace
    vgw = replace(vgw_policy, remote_ip="198.51.100.10", phase1_dh_groups=(19,))
    pair = IkePair(cgw, vgw)
    pair.handshake()
    assert len(pair.a.ups) == 1 and len(pair.b.ups) == 1, pair.a.logs + pair.b.logs


def test_an_issuer_of_the_right_name_that_did_not_sign_stays_an_error(pkidir):
    """Not a missing intermediate: a CA of that name is configured and did not sign."""
    found = issues(pkidir, config("certificate: other-vgw.pem\nprivate_key: other-vgw.key"))
    assert [p for p, _ in found] == ["connections[0].tunnels[0].certificate"]
    assert "is not issued by a configured CA" in found[0][1]
