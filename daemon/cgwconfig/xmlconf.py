"""AWS's `CustomerGatewayConfiguration` XML (`vgw cgw-config --vendor xml`).

The element tree is AWS's (docs/aws.md §6.1), assembled there from real payloads:
`vpn_connection@id` with `customer_gateway_id`, `vpn_gateway_id`,
`vpn_connection_type` ipsec.1, `vpn_connection_attributes` NoBGPVPNConnection
(on a static connection only) and one `ipsec_tunnel` per tunnel, with no index
attribute, in config order. Each tunnel has `customer_gateway` and `vpn_gateway`
(outside and inside addresses, then on a dynamic connection `bgp` with that
side's `asn` and `hold_time` 30), `ike` and `ipsec`. AWS fills ike/ipsec with an illustrative
AES128/SHA1/group2 profile; vgw writes the first value of each configured list
(the one vgw prefers), which is the closest the tree can come to the truth.
`mode` is "main" as AWS writes it even for IKEv2 connections.
When the preferred phase 2 cipher is AES-GCM, `ipsec` has no
`authentication_protocol`: GCM authenticates and AWS leaves phase 2 integrity out
with it (docs/aws.md §1.4, Phase2IntegrityAlgorithms omitted), as vgw's generic text
says "none (AES-GCM authenticates)"; `ike` keeps its own, the PRF GCM still needs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from ipaddress import IPv4Network

from ..config import ConnectionConfig, TunnelConfig
from . import BGP_HOLD_TIME, DPD_INTERVAL, DPD_RETRIES, TCP_MSS_ADJUSTMENT
from .names import XML_ENCRYPTION, XML_ESP_INTEGRITY, XML_IKE_INTEGRITY, is_gcm


def _text(parent: ET.Element, tag: str, value=None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if value is not None:
        element.text = str(value)
    return element


def _inside(parent: ET.Element, address, network: IPv4Network) -> None:
    inside = _text(parent, "tunnel_inside_address")
    _text(inside, "ip_address", address)
    _text(inside, "network_mask", network.netmask)
    _text(inside, "network_cidr", network.prefixlen)


def _bgp(parent: ET.Element, asn: int) -> None:
    bgp = _text(parent, "bgp")
    _text(bgp, "asn", asn)
    _text(bgp, "hold_time", BGP_HOLD_TIME)


def _tunnel(root: ET.Element, connection: ConnectionConfig, tunnel: TunnelConfig, amazon_side_asn: int) -> None:
    element = _text(root, "ipsec_tunnel")
    cgw = _text(element, "customer_gateway")
    outside = _text(cgw, "tunnel_outside_address")
    _text(outside, "ip_address", connection.customer_gateway.ip or "")
    _inside(cgw, tunnel.cgw_inside_ip, tunnel.inside_cidr)
    if connection.dynamic:
        _bgp(cgw, connection.customer_gateway.bgp_asn)
    vgw = _text(element, "vpn_gateway")
    outside = _text(vgw, "tunnel_outside_address")
    _text(outside, "ip_address", tunnel.outside_ip)
    _inside(vgw, tunnel.vgw_inside_ip, tunnel.inside_cidr)
    if connection.dynamic:
        _bgp(vgw, amazon_side_asn)
    if tunnel.auth_method == "certificate":
        # AWS's tree has no element for the IKE identity (with a PSK it is the
        # outside address): a comment, which tools reading the tree skip
        from .strongswan import vgw_identity
        vgw.append(ET.Comment(f" vgw's IKE identity on this certificate tunnel: {vgw_identity(tunnel)} "))

    ike = _text(element, "ike")
    _text(ike, "authentication_protocol", XML_IKE_INTEGRITY[tunnel.phase1_integrity_algorithms[0]])
    _text(ike, "encryption_protocol", XML_ENCRYPTION[tunnel.phase1_encryption_algorithms[0]])
    _text(ike, "lifetime", tunnel.phase1_lifetime_seconds)
    _text(ike, "perfect_forward_secrecy", f"group{tunnel.phase1_dh_group_numbers[0]}")
    _text(ike, "mode", "main")
    # empty for a certificate tunnel (consumers such as Terraform read the path)
    _text(ike, "pre_shared_key", tunnel.pre_shared_key or "")

    ipsec = _text(element, "ipsec")
    _text(ipsec, "protocol", "esp")
    if not is_gcm(tunnel.phase2_encryption_algorithms[0]):
        _text(ipsec, "authentication_protocol", XML_ESP_INTEGRITY[tunnel.phase2_integrity_algorithms[0]])
    _text(ipsec, "encryption_protocol", XML_ENCRYPTION[tunnel.phase2_encryption_algorithms[0]])
    _text(ipsec, "lifetime", tunnel.phase2_lifetime_seconds)
    _text(ipsec, "perfect_forward_secrecy", f"group{tunnel.phase2_dh_group_numbers[0]}")
    _text(ipsec, "mode", "tunnel")
    _text(ipsec, "clear_df_bit", "true")
    _text(ipsec, "fragmentation_before_encryption", "true")
    _text(ipsec, "tcp_mss_adjustment", TCP_MSS_ADJUSTMENT)
    dpd = _text(ipsec, "dead_peer_detection")
    _text(dpd, "interval", DPD_INTERVAL)
    _text(dpd, "retries", DPD_RETRIES)


def build_xml(connection: ConnectionConfig, i: dict[str, str], amazon_side_asn: int) -> ET.Element:
    root = ET.Element("vpn_connection", id=i["vpn_connection_id"])
    _text(root, "customer_gateway_id", i["customer_gateway_id"])
    _text(root, "vpn_gateway_id", i["vpn_gateway_id"])
    _text(root, "vpn_connection_type", "ipsec.1")
    if not connection.dynamic:
        _text(root, "vpn_connection_attributes", "NoBGPVPNConnection")
    for tunnel in connection.tunnels:
        _tunnel(root, connection, tunnel, amazon_side_asn)
    return root


def render_xml(connection: ConnectionConfig, i: dict[str, str], amazon_side_asn: int) -> str:
    root = build_xml(connection, i, amazon_side_asn)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
