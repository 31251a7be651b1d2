"""`vgw cgw-config` (daemon/cgwconfig): AWS's CustomerGatewayConfiguration tree
(aws-facts §6.1) read the way Terraform reads it, the generic text (§6.2) with the
tunnels' real options, and the strongSwan proposals in vgw's preference order.
The lab test tests/lab/test_cgw_config.py loads the strongSwan output into a real
customer gateway."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from daemon.cgwconfig import find_connection, ids, render
from daemon.cli import main
from daemon.config import parse_config

CONFIG = """
vpc: {cidrs: [10.0.0.0/16, 10.1.0.0/16]}
connections:
  - name: vpn-lab
    customer_gateway: {ip: 198.51.100.10}
    static_routes: [172.16.0.0/16]
    tunnels:
      - outside_ip: 198.51.100.1
        inside_cidr: 169.254.10.0/30
        pre_shared_key: example_psk_tunnel1_abcdef
        phase1_encryption_algorithms: [AES256-GCM-16, AES128]
        phase1_integrity_algorithms: [SHA2-384, SHA1]
        phase1_dh_group_numbers: [20, 14]
        phase2_encryption_algorithms: [AES256]
        phase2_integrity_algorithms: [SHA2-512]
        phase2_dh_group_numbers: [19]
        phase1_lifetime_seconds: 14400
        phase2_lifetime_seconds: 1800
      - outside_ip: 198.51.100.2
        inside_cidr: 169.254.11.0/30
        pre_shared_key: example_psk_tunnel2_abcdef
  - name: other
    tunnels:
      - outside_ip: 198.51.100.3
        pre_shared_key: example_psk_tunnel3_abcdef
"""


@pytest.fixture
def config():
    return parse_config(CONFIG)


def xml_tunnels(config, name="vpn-lab"):
    text = render(config, find_connection(config, name), "xml")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.split("\n", 1)[1])
    return root, root.findall("ipsec_tunnel")


def test_xml_has_aws_element_tree(config):
    root, tunnels = xml_tunnels(config)
    assert root.tag == "vpn_connection" and re.fullmatch(r"vpn-[0-9a-f]{17}", root.get("id"))
    assert [child.tag for child in root] == ["customer_gateway_id", "vpn_gateway_id", "vpn_connection_type",
                                            "vpn_connection_attributes", "ipsec_tunnel", "ipsec_tunnel"]
    assert re.fullmatch(r"cgw-[0-9a-f]{17}", root.findtext("customer_gateway_id"))
    assert re.fullmatch(r"vgw-[0-9a-f]{17}", root.findtext("vpn_gateway_id"))
    assert root.findtext("vpn_connection_type") == "ipsec.1"
    assert root.findtext("vpn_connection_attributes") == "NoBGPVPNConnection"
    for tunnel in tunnels:
        assert tunnel.attrib == {}  # AWS's samples carry no index attribute
        assert [c.tag for c in tunnel] == ["customer_gateway", "vpn_gateway", "ike", "ipsec"]
        assert tunnel.find("vpn_gateway/bgp") is None  # static routing: no bgp element


def test_xml_paths_terraform_reads(config):
    """terraform-provider-aws customerGatewayConfigurationToTunnelInfo (aws-facts §6.1)."""
    _, (t1, t2) = xml_tunnels(config)
    assert t1.findtext("vpn_gateway/tunnel_outside_address/ip_address") == "198.51.100.1"
    assert t2.findtext("vpn_gateway/tunnel_outside_address/ip_address") == "198.51.100.2"
    assert t1.findtext("ike/pre_shared_key") == "example_psk_tunnel1_abcdef"
    assert t2.findtext("ike/pre_shared_key") == "example_psk_tunnel2_abcdef"
    assert t1.findtext("customer_gateway/tunnel_inside_address/ip_address") == "169.254.10.2"
    assert t1.findtext("vpn_gateway/tunnel_inside_address/ip_address") == "169.254.10.1"
    assert t2.findtext("vpn_gateway/tunnel_inside_address/ip_address") == "169.254.11.1"
    assert t1.findtext("customer_gateway/tunnel_outside_address/ip_address") == "198.51.100.10"
    assert t1.findtext("vpn_gateway/tunnel_inside_address/network_mask") == "255.255.255.252"
    assert t1.findtext("vpn_gateway/tunnel_inside_address/network_cidr") == "30"


def test_xml_ike_and_ipsec_carry_the_preferred_options(config):
    _, (t1, t2) = xml_tunnels(config)
    assert {c.tag: c.text for c in t1.find("ike")} == {
        "authentication_protocol": "sha2-384", "encryption_protocol": "aes-256-gcm-16", "lifetime": "14400",
        "perfect_forward_secrecy": "group20", "mode": "main", "pre_shared_key": "example_psk_tunnel1_abcdef"}
    ipsec = t1.find("ipsec")
    assert [c.tag for c in ipsec] == ["protocol", "authentication_protocol", "encryption_protocol", "lifetime",
                                      "perfect_forward_secrecy", "mode", "clear_df_bit",
                                      "fragmentation_before_encryption", "tcp_mss_adjustment",
                                      "dead_peer_detection"]
    assert ipsec.findtext("authentication_protocol") == "hmac-sha512-256"
    assert ipsec.findtext("encryption_protocol") == "aes-256-cbc"
    assert ipsec.findtext("lifetime") == "1800"
    assert ipsec.findtext("perfect_forward_secrecy") == "group19"
    assert ipsec.findtext("dead_peer_detection/interval") == "10"
    assert ipsec.findtext("dead_peer_detection/retries") == "3"
    # tunnel 2 takes AWS's defaults: the first of AWS's lists, as AWS's illustrative XML
    assert t2.findtext("ike/encryption_protocol") == "aes-128-cbc"
    assert t2.findtext("ike/authentication_protocol") == "sha1"
    assert t2.findtext("ike/perfect_forward_secrecy") == "group2"


def test_xml_leaves_esp_integrity_out_when_gcm_is_preferred():
    """AWS omits phase 2 integrity with AES-GCM (aws-facts §1.4); a CBC tunnel keeps it."""
    text = CONFIG.replace("phase2_encryption_algorithms: [AES256]",
                          "phase2_encryption_algorithms: [AES128-GCM-16, AES256]")
    config = parse_config(text)
    _, (gcm, cbc) = xml_tunnels(config)
    ipsec = gcm.find("ipsec")
    assert ipsec.findtext("encryption_protocol") == "aes-128-gcm-16"
    assert ipsec.find("authentication_protocol") is None
    assert [c.tag for c in ipsec][:3] == ["protocol", "encryption_protocol", "lifetime"]
    assert gcm.findtext("ike/authentication_protocol") == "sha2-384"   # the IKE PRF stays
    # tunnel 2, AWS's default lists: CBC first, so its integrity is written
    assert cbc.findtext("ipsec/encryption_protocol") == "aes-128-cbc"
    assert cbc.findtext("ipsec/authentication_protocol") == "hmac-sha1-96"


def test_ids_are_stable_and_distinct(config):
    a = ids(config, config.connections[0])
    assert a == ids(parse_config(CONFIG), parse_config(CONFIG).connections[0])
    b = ids(config, config.connections[1])
    assert a["vpn_connection_id"] != b["vpn_connection_id"]
    assert a["vpn_gateway_id"] == b["vpn_gateway_id"]  # one VGW per config
    assert a["customer_gateway_id"] != b["customer_gateway_id"]


def test_xml_without_customer_gateway_ip_has_an_empty_address(config):
    _, (t,) = xml_tunnels(config, "other")
    assert t.findtext("customer_gateway/tunnel_outside_address/ip_address") == ""


def test_strongswan_proposals_follow_vgw_order(config):
    text = render(config, config.connections[0], "strongswan")
    conn1 = text.split("vpn-lab-tunnel2 {")[0]
    # GCM first (listed first), AEAD and CBC in separate proposals, PRF for the AEAD one
    assert "proposals = aes256gcm16-prfsha384-prfsha1-ecp384-modp2048,aes128-sha384-sha1-ecp384-modp2048" in conn1
    assert "esp_proposals = aes256-sha512-ecp256" in conn1
    assert "rekey_time = 14130s" in conn1 and "life_time = 1800s" in conn1 and "rekey_time = 1530s" in conn1
    assert "dpd_delay = 10s" in conn1 and "dpd_action = restart" in conn1
    assert "remote_addrs = 198.51.100.1" in conn1 and "id = 198.51.100.10" in conn1
    assert 'secret = "example_psk_tunnel1_abcdef"' in text and 'secret = "example_psk_tunnel2_abcdef"' in text
    assert "if_id_in = 1" in conn1 and "if_id_in = 2" in text
    # AWS's defaults, every group in AWS's order: 2 first
    conn2 = text.split("vpn-lab-tunnel2 {")[1]
    assert re.search(r"proposals = aes128-aes256-sha1-sha256-sha384-sha512-modp1024-modp2048-", conn2)
    assert text.count("{") == text.count("}")


def test_generic_text_has_each_tunnels_real_options(config):
    text = render(config, config.connections[0], "generic")
    assert text.count("IPSec Tunnel #") == 2
    t1, t2 = text.split("IPSec Tunnel #")[1:]
    assert "IKEv2" in t1 and "aes-256-gcm-16 (also accepted, in vgw's order: aes-128-cbc)" in t1
    assert "Pre-Shared Key" in t1 and "example_psk_tunnel1_abcdef" in t1
    assert "14400 seconds" in t1 and "1800 seconds" in t1
    assert "Group 20" in t1 and "Diffie-Hellman Group 19" in t1
    assert "DPD Interval                    : 10" in t1 and "DPD Retries                     : 3" in t1
    assert "169.254.10.2/30" in t1 and "169.254.10.1/30" in t1 and "1436 bytes" in t1
    assert "10.0.0.0/16 via 169.254.10.1" in t1 and "10.1.0.0/16 via 169.254.10.1" in t1
    assert "aes-128-cbc (also accepted" in t2 and "example_psk_tunnel2_abcdef" in t2


def test_cli(tmp_path, capsys):
    path = tmp_path / "vgw.yaml"
    path.write_text(CONFIG)
    assert main(["cgw-config", "--config", str(path), "--connection", "vpn-lab", "--vendor", "xml"]) == 0
    assert "<vpn_connection id=" in capsys.readouterr().out
    assert main(["cgw-config", "--config", str(path), "--vendor", "xml"]) == 2
    assert "choose one with --connection (vpn-lab, other)" in capsys.readouterr().err
    assert main(["cgw-config", "--config", str(path), "--connection", "nope"]) == 2
    assert "no connection named 'nope'" in capsys.readouterr().err
    assert main(["cgw-config", "--config", str(path), "--connection", "other", "--vendor", "generic"]) == 0
    assert "<your public IP>" in capsys.readouterr().out


def test_compose_lab_swanctl_conf_is_what_cgw_config_prints():
    """docker/lab/swanctl.conf is committed output of `vgw cgw-config`: keep them equal."""
    from pathlib import Path

    from daemon.config import load_config
    docker = Path(__file__).resolve().parents[3] / "docker" / "lab"
    config = load_config(docker / "vgw.yaml")
    expected = render(config, config.connections[0], "strongswan")
    assert (docker / "swanctl.conf").read_text() == expected, (
        "regenerate: vgw cgw-config --config docker/lab/vgw.yaml --vendor strongswan > docker/lab/swanctl.conf")
