"""`vgw cgw-config` (daemon/cgwconfig): AWS's CustomerGatewayConfiguration tree
(docs/aws.md §6.1) read the way Terraform reads it, the generic text (§6.2) with the
tunnels' real options, and the strongSwan proposals in vgw's preference order; for
a dynamic connection the BGP part of each (§6.1-§6.3, §11) and the frr.conf.
The lab test tests/lab/test_cgw_config.py loads the strongSwan output (and the
frr.conf) into a real customer gateway."""

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
    assert list(root.iter("bgp")) == []  # static routing: no bgp element anywhere


def test_xml_paths_terraform_reads(config):
    """terraform-provider-aws customerGatewayConfigurationToTunnelInfo (docs/aws.md §6.1)."""
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
    """AWS omits phase 2 integrity with AES-GCM (docs/aws.md §1.4); a CBC tunnel keeps it."""
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


# -- a dynamic connection: BGP in every vendor's output ------------------------------

# ASNs other than AWS's defaults, so that a renderer that ignored them would fail
DYNAMIC = """
amazon_side_asn: 64700
vpc: {cidrs: [10.0.0.0/16, 10.1.0.0/16]}
connections:
  - name: vpn-bgp
    customer_gateway: {ip: 198.51.100.10, bgp_asn: 65010}
    tunnels:
      - outside_ip: 198.51.100.1
        inside_cidr: 169.254.10.0/30
        pre_shared_key: example_psk_tunnel1_abcdef
      - outside_ip: 198.51.100.2
        inside_cidr: 169.254.11.0/30
        pre_shared_key: example_psk_tunnel2_abcdef
"""
# (tunnel outside IP, VGW inside address, CGW inside address, inside /30) of DYNAMIC
TUNNELS = [("198.51.100.1", "169.254.10.1", "169.254.10.2", "169.254.10.0/30"),
           ("198.51.100.2", "169.254.11.1", "169.254.11.2", "169.254.11.0/30")]


@pytest.fixture
def dynamic():
    config = parse_config(DYNAMIC)
    assert config.connections[0].dynamic
    return config


def test_xml_of_a_dynamic_connection_has_bgp_in_aws_element_order(dynamic):
    """docs/aws.md §6.1: no vpn_connection_attributes (NoBGPVPNConnection is for
    static connections); customer_gateway and vpn_gateway each end with bgp/{asn,
    hold_time}, the customer gateway's ASN and the VGW's, hold time 30."""
    text = render(dynamic, dynamic.connections[0], "xml")
    root = ET.fromstring(text.split("\n", 1)[1])
    assert [c.tag for c in root] == ["customer_gateway_id", "vpn_gateway_id", "vpn_connection_type",
                                    "ipsec_tunnel", "ipsec_tunnel"]
    assert root.find("vpn_connection_attributes") is None
    for tunnel, (outside, vgw_inside, cgw_inside, _) in zip(root.findall("ipsec_tunnel"), TUNNELS):
        assert [c.tag for c in tunnel] == ["customer_gateway", "vpn_gateway", "ike", "ipsec"]
        for side, asn, inside in (("customer_gateway", "65010", cgw_inside), ("vpn_gateway", "64700", vgw_inside)):
            element = tunnel.find(side)
            assert [c.tag for c in element] == ["tunnel_outside_address", "tunnel_inside_address", "bgp"]
            assert element.findtext("tunnel_inside_address/ip_address") == inside
            bgp = element.find("bgp")
            assert [(c.tag, c.text) for c in bgp] == [("asn", asn), ("hold_time", "30")]
        # what Terraform reads (docs/aws.md §6.1)
        assert tunnel.findtext("vpn_gateway/bgp/asn") == "64700"
        assert tunnel.findtext("vpn_gateway/bgp/hold_time") == "30"
        assert tunnel.findtext("vpn_gateway/tunnel_outside_address/ip_address") == outside


def generic_rows(section: str) -> dict[str, str]:
    """The '  - Label : value' rows of a generic text section."""
    rows = {}
    for line in section.splitlines():
        m = re.fullmatch(r"  - (.+?)\s+: (.*)", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_generic_text_has_a_bgp_section_per_tunnel(dynamic):
    text = render(dynamic, dynamic.connections[0], "generic")
    tunnels = text.split("IPSec Tunnel #")[1:]
    assert len(tunnels) == 2
    for part, (_, vgw_inside, cgw_inside, _) in zip(tunnels, TUNNELS):
        assert "#4: Static Routing Configuration" not in part
        bgp = part.split("#4: Border Gateway Protocol (BGP) Configuration\n", 1)[1]
        rows = generic_rows(bgp)
        assert rows == {"Customer Gateway ASN": "65010", "Virtual Private Gateway ASN": "64700",
                        "Neighbor IP Address": vgw_inside, "Neighbor Hold Time": "30",
                        "Keepalive Interval": "10", "Your BGP source address": cgw_inside}
        prose = " ".join(bgp.split())
        assert "Announce your network's prefixes" in prose and "at most 100 prefixes" in prose
        assert "announces the VPC's CIDR blocks (10.0.0.0/16, 10.1.0.0/16)" in prose
        assert "MED 100 on the tunnel AWS sends its traffic on, MED 200 on the other" in prose
        assert "WARNING" not in bgp


def test_generic_text_of_a_static_connection_keeps_static_routing(config):
    text = render(config, config.connections[0], "generic")
    assert text.count("#4: Static Routing Configuration") == 2
    assert "BGP" not in text and "ASN" not in text


def split_files(text: str) -> dict[str, str]:
    """The strongswan vendor's output by the path on its '# --- file: PATH ---' lines."""
    parts = re.split(r"^# --- file: (\S+) ---\n", text, flags=re.M)
    assert parts[0] == ""
    return dict(zip(parts[1::2], parts[2::2]))


def test_strongswan_vendor_prints_swanctl_and_frr_for_a_dynamic_connection(dynamic):
    connection = dynamic.connections[0]
    files = split_files(render(dynamic, connection, "strongswan"))
    assert list(files) == ["/etc/swanctl/conf.d/vpn-bgp.conf", "/etc/frr/frr.conf"]
    swanctl = render(dynamic, connection, "strongswan", "swanctl")
    frr = render(dynamic, connection, "strongswan", "frr")
    # one blank line between the two files
    assert files["/etc/swanctl/conf.d/vpn-bgp.conf"] == swanctl + "\n"
    assert files["/etc/frr/frr.conf"] == frr
    assert swanctl.count("{") == swanctl.count("}")
    assert frr_commands(frr)[0] == "frr defaults traditional" and "connections {" not in frr


def test_swanctl_of_a_dynamic_connection_carries_each_inside_cidr(dynamic):
    """Each tunnel's inside /30 in its own selectors, local and remote, beside the
    connection's CIDRs; the local one marked for the kernel-libipsec edit; no
    static VPC route in the header (BGP brings it)."""
    swanctl = render(dynamic, dynamic.connections[0], "strongswan", "swanctl")
    children = re.findall(r"\n( +)vpn-bgp-tunnel(\d) \{\n(.*?)\n\1\}", swanctl, flags=re.S)
    children = [(n, body) for _, n, body in children if "local_ts" in body]
    assert [n for n, _ in children] == ["1", "2"]
    for (_, body), (_, _, _, inside) in zip(children, TUNNELS):
        lines = [line.strip() for line in body.splitlines()]
        assert f"local_ts = 0.0.0.0/0,{inside}" in lines and f"remote_ts = 0.0.0.0/0,{inside}" in lines
        marker = lines.index(f"local_ts = 0.0.0.0/0,{inside}") - 1
        assert lines[marker] == "# kernel-libipsec: your site's prefixes in place of 0.0.0.0/0 (see the header)"
    head = swanctl.split("connections {")[0]
    assert "ip route add" not in head and "frr.conf" in head
    assert "ip addr add 169.254.10.2/30 and 169.254.11.2/30 dev ipsec0" in head


def test_swanctl_and_the_file_choice_of_a_static_connection(config):
    connection = config.connections[0]
    text = render(config, connection, "strongswan")
    assert "# --- file:" not in text and text == render(config, connection, "strongswan", "swanctl")
    assert "local_ts = 0.0.0.0/0\n" in text and "kernel-libipsec" not in text
    with pytest.raises(ValueError, match="routes statically .* no frr.conf; use --file swanctl"):
        render(config, connection, "strongswan", "frr")
    with pytest.raises(ValueError, match="--file picks one file of --vendor strongswan"):
        render(config, connection, "xml", "swanctl")
    with pytest.raises(ValueError, match="unknown file 'bird'"):
        render(config, connection, "strongswan", "bird")


def frr_commands(text: str) -> list[str]:
    """frr.conf's command lines as FRR reads them: comments ('!' or '#') and
    blank lines dropped, indentation kept."""
    return [line for line in text.splitlines() if line.strip() and line.strip()[0] not in "!#"]


def test_frr_conf_has_what_frr_needs_line_by_line(dynamic):
    frr = render(dynamic, dynamic.connections[0], "strongswan", "frr")
    expected = ["frr defaults traditional",
                "router bgp 65010",
                " bgp router-id 169.254.10.2",
                " bgp log-neighbor-changes",
                " no bgp ebgp-requires-policy",      # RFC 8212 default: "(Policy)" otherwise
                " no bgp network import-check"]
    for number, (outside, vgw_inside, cgw_inside, _) in enumerate(TUNNELS, 1):
        expected += [f" neighbor {vgw_inside} remote-as 64700",
                     f" neighbor {vgw_inside} description vpn-bgp tunnel {number} ({outside})",
                     f" neighbor {vgw_inside} timers 10 30",
                     f" neighbor {vgw_inside} update-source {cgw_inside}"]
    expected += [" address-family ipv4 unicast",
                 "  neighbor 169.254.10.1 activate",
                 "  neighbor 169.254.11.1 activate",
                 " exit-address-family",
                 "exit"]
    assert frr_commands(frr) == expected
    # the site's networks: a marked placeholder line, under address-family, for the user to replace
    lines = frr.splitlines()
    placeholder = lines.index("  ! network <your site's prefix>/<length>")
    assert lines.index(" address-family ipv4 unicast") < placeholder < lines.index(" exit-address-family")
    assert lines[placeholder - 2].startswith("  ! EDIT: your site's networks")
    # what AWS's MEDs mean and what the customer gateway must keep equal (docs/aws.md §7)
    comments = " ".join(line.lstrip("! ") for line in lines if line.startswith("!"))
    assert "MED 100 on the tunnel AWS sends its own traffic on, MED 200 on the other" in comments
    assert "Keep weight and local-preference equal on both neighbors" in comments
    assert "10.0.0.0/16, 10.1.0.0/16" in comments and "WARNING" not in comments


def test_selectors_that_leave_out_the_inside_cidrs_are_warned_about():
    """vgw narrows to local_network_cidr as AWS does (docs/aws.md §1.8, §11.3): a /30
    outside it cannot carry BGP, and every vendor text says so."""
    config = parse_config(DYNAMIC.replace("    customer_gateway:", "    local_network_cidr: 172.16.0.0/12\n"
                                                                     "    customer_gateway:"))
    connection = config.connections[0]
    warning = ("local_network_cidr 172.16.0.0/12 leaves out the inside 169.254.10.0/30, 169.254.11.0/30: BGP"
               " cannot cross")
    for vendor, file in (("generic", None), ("strongswan", "swanctl"), ("strongswan", "frr")):
        text = " ".join(render(config, connection, vendor, file).replace("!", " ").replace("#", " ").split())
        assert warning in text, (vendor, file)
    # a narrowed local CIDR is no 0.0.0.0/0 to replace: no libipsec marker
    assert "kernel-libipsec: your site's" not in render(config, connection, "strongswan", "swanctl")


def test_a_hub_without_a_vpc_says_so():
    config = parse_config(DYNAMIC.replace("vpc: {cidrs: [10.0.0.0/16, 10.1.0.0/16]}\n", ""))
    for vendor, file in (("generic", None), ("strongswan", "frr")):
        text = " ".join(render(config, config.connections[0], vendor, file).replace("!", " ").split())
        assert "none: this gateway has no VPC (a VPN CloudHub hub)" in text


def test_cli_file_option(tmp_path, capsys):
    path = tmp_path / "vgw.yaml"
    path.write_text(DYNAMIC)
    assert main(["cgw-config", "--config", str(path), "--file", "frr"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("! frr.conf for the customer gateway")
    assert main(["cgw-config", "--config", str(path), "--vendor", "generic", "--file", "frr"]) == 2
    assert "--file picks one file of --vendor strongswan" in capsys.readouterr().err
    static = tmp_path / "static.yaml"
    static.write_text(CONFIG)
    assert main(["cgw-config", "--config", str(static), "--connection", "vpn-lab", "--file", "frr"]) == 2
    assert "use --file swanctl" in capsys.readouterr().err
