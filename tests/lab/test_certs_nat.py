"""Certificates, identities and NAT against a real strongSwan 5.9.8 customer
gateway (issue: certificates, identities and NAT).

Certificates are made in the test by `vgw pki` (tests/lab/certnat.py runs the
command). IKE fragments are counted on the wire by nftables in vgw's namespace
(datagrams whose IKE Next Payload is 53, SKF), not read from vgw's log. The NAT
tests use the NAT topology of tests/lab/netns.py: the CGW at 192.168.77.10
behind a masquerading router (198.51.100.10, random ports).
"""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from tests.lab import certnat as cn
from tests.lab.netns import nat_flush, nat_mappings, topology, wait_until
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import BackgroundPing, ping, run_iperf

pytestmark = pytest.mark.lab


def both_ways(lab, topo, tcp: bool = True) -> None:
    assert ping(lab, topo.onprem, topo.vpc_ip), "on-premises -> VPC"
    assert ping(lab, topo.vpc, topo.onprem_ip), "VPC -> on-premises"
    if tcp:
        assert run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=1)["gbps"] > 0.005
        assert run_iperf(lab, topo.vpc, topo.onprem, topo.onprem_ip, seconds=1)["gbps"] > 0.005


def auth_failures(cgw: Charon) -> int:
    return cgw.log_text().count("received AUTHENTICATION_FAILED notify error")


def test_rsa_chain_fragments_both_ways_and_refusals(lab):
    """RSA certificates issued by an intermediate CA: vgw and strongSwan each
    send two CERT payloads, IKE_AUTH goes in RFC 7383 fragments both ways. Then
    a CGW certificate from another CA, an expired one and one with another
    identity are each refused with AUTHENTICATION_FAILED."""
    topo = topology(lab)
    d = cn.vgw_pki(lab, "rsa", "--key", "rsa", "--intermediate")
    cn.vgw_pki_issue(lab, d, "cgw.example.net", "expired", "--key", "rsa", "--expired")
    cn.vgw_pki_issue(lab, d, "intruder.example.net", "intruder", "--key", "rsa")
    other = cn.vgw_pki(lab, "other", "--key", "rsa")
    for ext in ("pem", "key"):
        shutil.copy(os.path.join(other, f"cgw.{ext}"), os.path.join(d, f"othercgw.{ext}"))
    cn.count_skf(lab, topo.vgw)
    vgw = cn.start_vgw(lab, topo, d, topo.cgw_public_ip, identity=cn.CGW_ID)
    stems = ("cgw", "othercgw", "expired", "intruder")
    cgw = cn.start_cgw(lab, topo, os.path.join(d, "ca.pem"),
                       [os.path.join(d, f"{s}.pem") for s in stems],
                       [os.path.join(d, f"{s}.key") for s in stems],
                       local_ids=[cn.CGW_ID, cn.CGW_ID, cn.CGW_ID, "CN=intruder.example.net"],
                       names=list(stems))
    cgw.initiate("net", ike="cgw", timeout=15)
    status = vgw.wait_up(cn.VGW_IP)
    assert status["ike"]["auth"] == "certificate" and status["ike"]["fragmentation"]
    assert status["ike"]["remote_id"] == cn.CGW_ID
    counts = cn.skf_counts(lab, topo.vgw)
    assert counts["skf_in"] >= 2 and counts["skf_out"] >= 2, counts
    log = cgw.log_text()
    assert re.search(r"authentication of 'CN=vgw.example.net' with RSA_EMSA_PKCS1_SHA2_256 successful", log)
    assert "sending issuer cert \"CN=vgw lab intermediate CA\"" in log
    assert re.search(r"received fragment #2 of \d, reassembled fragmented IKE message", log)
    assert "AWS tunnel authenticated cgw: 198.51.100.10 as CN=cgw.example.net with RSA with SHA2-256 " \
           "(RFC 7427), certificate issued by CN=vgw lab intermediate CA" in vgw.log_text()
    both_ways(lab, topo, tcp=False)

    refusals = {
        "othercgw": "is not issued by a configured CA (issuer CN=vgw lab root CA)",
        "expired": "certificate CN=cgw.example.net expired on",
        "intruder": "identity CN=intruder.example.net is not the configured CN=cgw.example.net",
    }
    for name, why in refusals.items():
        before = auth_failures(cgw)
        res = cgw.swanctl("--initiate", "--child", "net", "--ike", name, "--timeout", "10", check=False,
                          timeout=20)
        assert res.returncode != 0, f"{name} was accepted"
        assert auth_failures(cgw) == before + 1, f"{name}: no AUTHENTICATION_FAILED"
        vgw.wait_log(why)   # vgw answered AUTHENTICATION_FAILED first, then logged why
    assert [sa["name"] for sa in cgw.list_sas()] == ["cgw"]
    assert vgw.tunnel(cn.VGW_IP)["status"] == "UP"


def test_vgw_initiates_with_ecdsa_classic_methods(lab):
    """startup_action start with customer_gateway.identity: vgw initiates (AWS
    side, IKEv2), sends CERT, CERTREQ and IDr naming the CGW (docs/aws.md §1.7).
    strongSwan answers with RFC 7427 off (charon.signature_authentication = no),
    so it announces no SIGNATURE_HASH_ALGORITHMS: both sides sign with ECDSA on
    P-384 and SHA-384, AUTH method 10 (RFC 4754)."""
    topo = topology(lab)
    d = cn.vgw_pki(lab, "p384", "--key", "ecdsa-p384")
    cgw = cn.start_cgw(lab, topo, os.path.join(d, "ca.pem"), [os.path.join(d, "cgw.pem")],
                       [os.path.join(d, "cgw.key")], settings={"signature_authentication": False})
    vgw = cn.start_vgw(lab, topo, d, topo.cgw_public_ip, identity=cn.CGW_ID, startup_action="start")
    status = vgw.wait_up(cn.VGW_IP)
    assert status["ike"]["role"] == "initiator" and status["ike"]["remote_id"] == cn.CGW_ID
    log = cgw.log_text()
    assert "parsed IKE_AUTH request 1 [ IDi N(INIT_CONTACT) CERT CERTREQ IDr AUTH SA TSi TSr ]" in log
    assert "authentication of 'CN=vgw.example.net' with ECDSA-384 signature successful" in log
    assert "with ECDSA with SHA2-384 (AUTH method 10)" in vgw.log_text()
    both_ways(lab, topo, tcp=False)


def test_psk_cgw_behind_nat_with_its_address(lab):
    """customer_gateway.ip is the NAT's public address (AWS: register the NAT
    device's IP); ESP in UDP both ways through a real NAPT."""
    topo = topology(lab, nat=True)
    vgw = cn.start_vgw(lab, topo, None, topo.cgw_public_ip, psk="example_psk_tunnel1_abcdef")
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, cn.VGW_IP, "example_psk_tunnel1_abcdef"))
    cgw.initiate("net", ike="tun1", timeout=15)
    status = vgw.wait_up(cn.VGW_IP)
    [mapping] = [m for m in nat_mappings(lab, topo) if m.startswith(f"{topo.cgw_wan_ip} 4500 ")]
    port = int(mapping.split()[-1])
    assert status["ike"]["remote"] == f"{topo.cgw_public_ip}[{port}]"
    assert port != 4500 and status["ike"]["peer_behind_nat"] and status["ike"]["nat_t"]
    assert not status["ike"]["local_behind_nat"]
    both_ways(lab, topo)


def _port(status: dict) -> int:
    """The CGW's port as vgw's status shows it ("ip[port]")."""
    return int(status["ike"]["remote"].split("[")[1].rstrip("]"))


def flush_nat_and_follow(lab, topo, vgw, status: dict, ping_src: str, ping_dst: str,
                         interval: float, duration: float, timeout: float, what: str) -> tuple:
    """Make the NAT forget its mappings while a ping runs ping_src -> ping_dst, wait
    until vgw's tunnel moves to the CGW's new port, and check the move (AWS log line,
    the NAT's new mapping). Returns (seconds it took, pings sent, pings received)."""
    old_port = _port(status)
    nat_flush(lab, topo)
    flushed = time.monotonic()
    bg = BackgroundPing(lab, ping_src, ping_dst, interval=interval, duration=duration)
    box = {}

    def moved() -> bool:
        box["t"] = vgw.tunnel(cn.VGW_IP)
        return box["t"]["ike"] and box["t"]["ike"]["remote"] != status["ike"]["remote"]
    wait_until(moved, timeout, interval, what)
    took = time.monotonic() - flushed
    sent, received = bg.finish()
    new_port = _port(box["t"])
    print(f"vgw followed the new mapping after {took:.2f} s; pings {received}/{sent}")
    assert new_port != old_port
    assert f"AWS tunnel follows cgw from {topo.cgw_public_ip}:{old_port} to " \
           f"{topo.cgw_public_ip}:{new_port}" in vgw.log_text()
    assert any(m.endswith(f" {new_port}") for m in nat_mappings(lab, topo))
    assert box["t"]["status"] == "UP"
    return took, sent, received


def test_new_nat_mapping_followed_on_esp_alone(lab):
    """The NAT forgets its mappings while the CGW runs no DPD: the CGW's next ESP
    (a ping from on-premises) leaves from a new port, and vgw follows on that
    authenticated ESP at once (RFC 7296 §2.23) - the first reply already goes to
    the new port. vgw's own DPD could not have helped: it goes to the dead
    mapping, and the CGW sends no IKE message."""
    psk = "example_psk_tunnel1_abcdef"
    topo = topology(lab, nat=True)
    vgw = cn.start_vgw(lab, topo, None, topo.cgw_public_ip, psk=psk)
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, cn.VGW_IP, psk, dpd_delay=None))
    cgw.initiate("net", ike="tun1", timeout=15)
    status = vgw.wait_up(cn.VGW_IP)
    both_ways(lab, topo, tcp=False)
    _, sent, received = flush_nat_and_follow(lab, topo, vgw, status, topo.onprem, topo.vpc_ip, 0.05, 3, 3,
                                             "vgw following the CGW's ESP from a new NAT mapping")
    # the ping's first request opened the new mapping; vgw answered it there
    assert received >= sent - 1, f"{received}/{sent} pings answered after the NAT flush"
    after = vgw.tunnel(cn.VGW_IP)
    assert after["ike"]["spi_i"] == status["ike"]["spi_i"] and after["status"] == "UP"
    assert [c["spi_in"] for c in after["children"]] == [c["spi_in"] for c in status["children"]]


def test_certificate_cgw_behind_nat_from_any_address_and_a_new_mapping(lab):
    """No customer_gateway.ip: vgw takes the CGW from whatever address its NAT
    gives it, authenticated by its certificate and the configured identity. The
    NAT then forgets its mappings: the CGW reappears on a new port, vgw follows
    on the next authenticated message (the CGW's DPD) and traffic flows again."""
    topo = topology(lab, nat=True)
    d = cn.vgw_pki(lab, "ecdsa")
    vgw = cn.start_vgw(lab, topo, d, None, identity=cn.CGW_ID)
    cgw = cn.start_cgw(lab, topo, os.path.join(d, "ca.pem"), [os.path.join(d, "cgw.pem")],
                       [os.path.join(d, "cgw.key")], dpd_delay="2s")
    cgw.initiate("net", ike="tun1", timeout=15)
    status = vgw.wait_up(cn.VGW_IP)
    assert status["customer_gateway_ip"] is None and status["customer_gateway_identity"] == cn.CGW_ID
    assert status["ike"]["remote"].startswith(f"{topo.cgw_public_ip}[") and _port(status) != 4500
    assert "authentication of 'CN=vgw.example.net' with ECDSA_WITH_SHA256_DER successful" in cgw.log_text()
    assert "as CN=cgw.example.net with ECDSA with SHA2-256 (RFC 7427)" in vgw.log_text()
    both_ways(lab, topo)

    _, _, received = flush_nat_and_follow(lab, topo, vgw, status, topo.vpc, topo.onprem_ip, 0.2, 4, 15,
                                          "vgw following the CGW's new NAT mapping")
    assert received > 0
    both_ways(lab, topo, tcp=False)
    # the same IKE SA and CHILD SA carried on (no re-authentication)
    assert vgw.tunnel(cn.VGW_IP)["ike"]["spi_i"] == status["ike"]["spi_i"]


def test_cgw_names_the_aws_side_by_its_outside_ip(lab):
    """Issue 16: a customer gateway configured the way AWS's PSK configurations
    are, the AWS side's identity = the tunnel's outside IP (strongSwan `remote
    { id = 198.51.100.1 }`), connects to a certificate tunnel whose
    certificate_identity is that address: vgw presents ID_IPV4_ADDR, found in
    its certificate's subjectAltName (issued by `vgw pki issue DIR 198.51.100.1`)."""
    topo = topology(lab)
    d = cn.vgw_pki(lab, "ipid")
    cn.vgw_pki_issue(lab, d, cn.VGW_IP, "vgw", "--force")          # SAN IP:198.51.100.1
    vgw = cn.start_vgw(lab, topo, d, topo.cgw_public_ip, identity=cn.CGW_ID, certificate_identity=cn.VGW_IP)
    cgw = cn.start_cgw(lab, topo, os.path.join(d, "ca.pem"), [os.path.join(d, "cgw.pem")],
                       [os.path.join(d, "cgw.key")], remote_id=cn.VGW_IP)
    cgw.initiate("net", ike="tun1", timeout=15)
    status = vgw.wait_up(cn.VGW_IP)
    assert status["ike"]["auth"] == "certificate" and status["ike"]["remote_id"] == cn.CGW_ID
    assert f"authentication of '{cn.VGW_IP}' with ECDSA_WITH_SHA256_DER successful" in cgw.log_text()
    both_ways(lab, topo, tcp=False)


def test_cgw_holding_the_intermediate_accepts_vgw_without_it(lab):
    """Issue 16: vgw's certificate file lacks the intermediate CA that issued it,
    and ca_certificates has only the root: vgw starts with a warning naming the
    intermediate and sends its certificate alone; the customer gateway, which
    holds the intermediate (as AWS Private CA's subordinate CA is installed on
    it), accepts it."""
    topo = topology(lab)
    d = cn.vgw_pki(lab, "leafonly", "--intermediate")
    vgw_pem = os.path.join(d, "vgw.pem")
    with open(vgw_pem) as f:
        leaf = f.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    with open(vgw_pem, "w") as f:
        f.write(leaf)
    vgw = cn.start_vgw(lab, topo, d, topo.cgw_public_ip, identity=cn.CGW_ID)
    # cgw.pem holds the CGW's certificate and the intermediate: the CGW keeps it in x509ca/
    cgw = cn.start_cgw(lab, topo, os.path.join(d, "ca.pem"), [os.path.join(d, "cgw.pem")],
                       [os.path.join(d, "cgw.key")])
    cgw.initiate("net", ike="tun1", timeout=15)
    vgw.wait_up(cn.VGW_IP)
    assert "its issuer CN=vgw lab intermediate CA is neither in the file nor in ca_certificates" in vgw.log_text()
    log = cgw.log_text()
    assert "received end entity cert \"CN=vgw.example.net\"" in log
    assert "received issuer cert" not in log          # vgw sent its certificate alone
    assert "authentication of 'CN=vgw.example.net' with ECDSA_WITH_SHA256_DER successful" in log
    both_ways(lab, topo, tcp=False)
