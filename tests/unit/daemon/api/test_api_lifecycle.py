"""The whole life of a static and of a dynamic VPN connection, driven by boto3
against a running endpoint with an in-memory gateway view."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Network

from daemon.api.view import VpcRoute
from daemon.config import RESERVED_INSIDE_CIDRS

from .helpers import error_code, make_gateways

POOL = IPv4Network("198.51.100.0/28")


def _connection(ec2, connection_id):
    return ec2.describe_vpn_connections(VpnConnectionIds=[connection_id])["VpnConnections"][0]


def _bgp_asns(connection) -> list[tuple[str, str]]:
    """(customer gateway ASN, VGW ASN) of each ipsec_tunnel of the XML; hold time 30
    on both sides; no NoBGPVPNConnection."""
    xml = ET.fromstring(connection["CustomerGatewayConfiguration"])
    assert xml.find("vpn_connection_attributes") is None
    out = []
    for tunnel in xml.findall("ipsec_tunnel"):
        assert tunnel.findtext("customer_gateway/bgp/hold_time") == tunnel.findtext("vpn_gateway/bgp/hold_time") == "30"
        out.append((tunnel.findtext("customer_gateway/bgp/asn"), tunnel.findtext("vpn_gateway/bgp/asn")))
    return out


def test_static_connection_life(ec2, endpoint):
    view, clock = endpoint.view, endpoint.clock
    cgw_id, vgw_id, _ = make_gateways(ec2, endpoint)
    created = ec2.create_vpn_connection(
        Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
        Options={"StaticRoutesOnly": True, "TunnelOptions": [{"DPDTimeoutSeconds": 45}, {}]},
        TagSpecifications=[{"ResourceType": "vpn-connection", "Tags": [{"Key": "Name", "Value": "lab"}]}],
    )["VpnConnection"]
    vpn_id = created["VpnConnectionId"]
    assert re.fullmatch(r"vpn-[0-9a-f]{17}", vpn_id)
    assert created["State"] == "pending"
    assert created["Tags"] == [{"Key": "Name", "Value": "lab"}]

    # the gateway was told, with a YAML-shaped connection validated by the config model
    change = view.changes[-1]
    assert change.kind == "created" and change.definition.connection_id == vpn_id
    assert change.definition.static_routes_only is True
    tunnels = change.definition.config.tunnels
    assert tunnels[0].dpd_timeout_seconds == 45 and tunnels[1].dpd_timeout_seconds == 30
    outside = [t.outside_ip for t in tunnels]
    assert len(set(outside)) == 2 and all(ip in POOL for ip in outside)
    inside = [t.inside_cidr for t in tunnels]
    assert inside[0] != inside[1]
    assert all(c.prefixlen == 30 and c.subnet_of(IPv4Network("169.254.0.0/16")) and c not in RESERVED_INSIDE_CIDRS
               for c in inside)
    for tunnel in tunnels:  # docs/aws.md §1.3
        assert re.fullmatch(r"[A-Za-z0-9_.]{32}", tunnel.pre_shared_key) and tunnel.pre_shared_key[0] != "0"

    clock.advance(3)
    described = _connection(ec2, vpn_id)
    assert described["State"] == "available"
    options = described["Options"]["TunnelOptions"]
    assert [o["OutsideIpAddress"] for o in options] == [str(ip) for ip in outside]
    assert options[0]["DpdTimeoutSeconds"] == 45
    # an option left to AWS's default is not echoed (the gateway still applies it:
    # tunnels[1].dpd_timeout_seconds == 30 above), so Terraform reads back no change
    assert "DpdTimeoutSeconds" not in options[1] and "Phase1LifetimeSeconds" not in options[1]
    assert "Phase1EncryptionAlgorithms" not in options[0]
    assert "IkeVersions" not in options[1]

    # the XML of `vgw cgw-config --vendor xml`, with the real addresses and keys
    xml = ET.fromstring(described["CustomerGatewayConfiguration"])
    assert xml.get("id") == vpn_id and xml.findtext("vpn_gateway_id") == vgw_id
    rendered = xml.findall("ipsec_tunnel")
    assert [t.findtext("vpn_gateway/tunnel_outside_address/ip_address") for t in rendered] == [str(i) for i in outside]
    assert [t.findtext("ike/pre_shared_key") for t in rendered] == [o["PreSharedKey"] for o in options]
    assert rendered[0].findtext("customer_gateway/tunnel_outside_address/ip_address") == "203.0.113.10"
    assert xml.findtext("vpn_connection_attributes") == "NoBGPVPNConnection" and list(xml.iter("bgp")) == []

    # telemetry comes from the gateway
    assert [t["Status"] for t in described["VgwTelemetry"]] == ["DOWN", "DOWN"]
    changed_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    view.set_up(outside[0], at=changed_at)
    telemetry = _connection(ec2, vpn_id)["VgwTelemetry"]
    assert telemetry[0]["Status"] == "UP" and telemetry[0]["StatusMessage"] == "IPSEC IS UP"
    assert telemetry[0]["LastStatusChange"] == changed_at and telemetry[1]["Status"] == "DOWN"

    # a static route: pending, then available; the gateway gets it, no tunnel replaced
    ec2.create_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock="172.16.0.0/16")
    assert _connection(ec2, vpn_id)["Routes"][0]["State"] == "pending"
    assert view.changes[-1].kind == "modified" and view.changes[-1].replace == ()
    assert view.changes[-1].definition.config.static_routes == [IPv4Network("172.16.0.0/16")]
    clock.advance(3)
    assert _connection(ec2, vpn_id)["Routes"] == [
        {"DestinationCidrBlock": "172.16.0.0/16", "Source": "Static", "State": "available"}]

    # a tunnel's options: that tunnel alone is replaced, its outside IP kept (docs/aws.md §1.10)
    ec2.modify_vpn_tunnel_options(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=str(outside[1]),
                                  TunnelOptions={"Phase2LifetimeSeconds": 1800,
                                                 "Phase1EncryptionAlgorithms": [{"Value": "AES256"}]})
    assert _connection(ec2, vpn_id)["State"] == "modifying"
    change = view.changes[-1]
    assert change.kind == "modified" and change.replace == (outside[1],)
    assert change.definition.outside_ips == tuple(outside)
    assert change.definition.config.tunnels[1].phase1_encryption_algorithms == ["AES256"]
    clock.advance(3)
    described = _connection(ec2, vpn_id)
    assert described["State"] == "available"
    assert described["Options"]["TunnelOptions"][1]["Phase2LifetimeSeconds"] == 1800
    assert "Phase2LifetimeSeconds" not in described["Options"]["TunnelOptions"][0]   # left to the default
    assert change.definition.config.tunnels[0].phase2_lifetime_seconds == 3600

    ec2.delete_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock="172.16.0.0/16")
    assert view.changes[-1].definition.config.static_routes == []
    clock.advance(3)
    assert _connection(ec2, vpn_id)["Routes"][0]["State"] == "deleted"

    # delete: the gateway removes the tunnels and addresses; the connection shows deleted a while
    ec2.delete_vpn_connection(VpnConnectionId=vpn_id)
    assert view.changes[-1].kind == "deleted" and view.changes[-1].definition.outside_ips == tuple(outside)
    assert _connection(ec2, vpn_id)["State"] == "deleting"
    assert "CustomerGatewayConfiguration" not in _connection(ec2, vpn_id)
    clock.advance(3)
    assert _connection(ec2, vpn_id)["State"] == "deleted"
    clock.advance(3600)
    assert error_code(ec2.describe_vpn_connections, VpnConnectionIds=[vpn_id]) == "InvalidVpnConnectionID.NotFound"

    ec2.delete_customer_gateway(CustomerGatewayId=cgw_id)
    ec2.detach_vpn_gateway(VpnGatewayId=vgw_id, VpcId=ec2.describe_vpcs()["Vpcs"][0]["VpcId"])
    clock.advance(3)
    ec2.delete_vpn_gateway(VpnGatewayId=vgw_id)
    clock.advance(3)
    assert ec2.describe_vpn_gateways(VpnGatewayIds=[vgw_id])["VpnGateways"][0]["State"] == "deleted"
    assert ec2.describe_customer_gateways(CustomerGatewayIds=[cgw_id])["CustomerGateways"][0]["State"] == "deleted"


def test_dynamic_connection_life(ec2, endpoint):
    view, clock = endpoint.view, endpoint.clock
    cgw_id, vgw_id, vpc_id = make_gateways(ec2, endpoint, asn=65020, amazon_asn=64700)
    vpn_id = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                       Options={"LocalIpv4NetworkCidr": "172.16.0.0/12"})["VpnConnection"]["VpnConnectionId"]
    definition = view.changes[-1].definition
    assert (definition.static_routes_only, definition.customer_gateway_asn, definition.amazon_side_asn) == (
        False, 65020, 64700)
    assert definition.config.local_network_cidr == IPv4Network("172.16.0.0/12")
    clock.advance(3)
    # the XML carries BGP with the gateways' ASNs (docs/aws.md §6.1), as `vgw cgw-config` renders it
    assert _bgp_asns(_connection(ec2, vpn_id)) == [("65020", "64700")] * 2
    # BGP connections take no static routes
    assert error_code(ec2.create_vpn_connection_route, VpnConnectionId=vpn_id,
                      DestinationCidrBlock="172.16.0.0/16") == "InvalidParameterValue"

    ips = definition.outside_ips
    view.set_up(ips[0], message="2 BGP ROUTES", routes=2)
    telemetry = _connection(ec2, vpn_id)["VgwTelemetry"][0]
    assert (telemetry["StatusMessage"], telemetry["AcceptedRouteCount"]) == ("2 BGP ROUTES", 2)

    # routes propagate into the VPC's route table once propagation is on
    view.routes = [VpcRoute(IPv4Network("172.16.1.0/24"), vpn_id), VpcRoute(IPv4Network("172.16.2.0/24"), vpn_id,
                                                                            "blackhole")]
    table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][0]
    assert [r["GatewayId"] for r in table["Routes"]] == ["local"] and "PropagatingVgws" not in table
    ec2.enable_vgw_route_propagation(RouteTableId=table["RouteTableId"], GatewayId=vgw_id)
    assert view.propagation == {vgw_id: True}
    table = ec2.describe_route_tables(RouteTableIds=[table["RouteTableId"]])["RouteTables"][0]
    assert table["PropagatingVgws"] == [{"GatewayId": vgw_id}]
    assert [(r["DestinationCidrBlock"], r["GatewayId"], r["Origin"], r["State"]) for r in table["Routes"][1:]] == [
        ("172.16.1.0/24", vgw_id, "EnableVgwRoutePropagation", "active"),
        ("172.16.2.0/24", vgw_id, "EnableVgwRoutePropagation", "blackhole")]
    ec2.disable_vgw_route_propagation(RouteTableId=table["RouteTableId"], GatewayId=vgw_id)
    assert len(ec2.describe_route_tables()["RouteTables"][0]["Routes"]) == 1

    # connection options: both tunnels replaced, in order (docs/aws.md §1.10)
    ec2.modify_vpn_connection_options(VpnConnectionId=vpn_id, RemoteIpv4NetworkCidr="10.0.0.0/16")
    assert view.changes[-1].replace == ips
    assert view.changes[-1].definition.config.remote_network_cidr == IPv4Network("10.0.0.0/16")
    assert error_code(ec2.modify_vpn_connection_options, VpnConnectionId=vpn_id,
                      RemoteIpv4NetworkCidr="10.0.0.0/8") == "IncorrectState"  # still modifying
    clock.advance(3)

    # another customer gateway: both tunnels replaced, outside IPs kept
    other = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=65030, IpAddress="203.0.113.20")["CustomerGateway"]
    modified = ec2.modify_vpn_connection(VpnConnectionId=vpn_id, CustomerGatewayId=other["CustomerGatewayId"])
    assert modified["VpnConnection"]["CustomerGatewayId"] == other["CustomerGatewayId"]
    change = view.changes[-1]
    assert change.replace == ips and change.definition.outside_ips == ips
    assert change.definition.config.customer_gateway.ip == IPv4Address("203.0.113.20")
    clock.advance(3)
    assert _bgp_asns(_connection(ec2, vpn_id)) == [("65030", "64700")] * 2

    ec2.delete_vpn_connection(VpnConnectionId=vpn_id)
    assert view.changes[-1].kind == "deleted"
    clock.advance(3)
    assert _connection(ec2, vpn_id)["State"] == "deleted"
