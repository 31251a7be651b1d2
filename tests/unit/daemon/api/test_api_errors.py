"""Bad requests get AWS's error codes, as botocore raises them (ClientError)."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
from botocore.exceptions import ClientError

from .helpers import error_code, make_gateways


def test_not_found_codes(ec2):
    assert error_code(ec2.describe_customer_gateways, CustomerGatewayIds=["cgw-0123456789abcdef0"]) == \
        "InvalidCustomerGatewayID.NotFound"
    assert error_code(ec2.describe_vpn_gateways, VpnGatewayIds=["vgw-0123456789abcdef0"]) == \
        "InvalidVpnGatewayID.NotFound"
    assert error_code(ec2.describe_vpn_connections, VpnConnectionIds=["vpn-0123456789abcdef0"]) == \
        "InvalidVpnConnectionID.NotFound"
    assert error_code(ec2.delete_vpn_connection, VpnConnectionId="vpn-0123456789abcdef0") == \
        "InvalidVpnConnectionID.NotFound"
    assert error_code(ec2.attach_vpn_gateway, VpnGatewayId="vgw-0123456789abcdef0", VpcId="vpc-1") == \
        "InvalidVpnGatewayID.NotFound"
    assert error_code(ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"]) == "InvalidVpcID.NotFound"


def test_missing_and_unknown_parameters(endpoint):
    raw = endpoint.client(parameter_validation=False)  # let the server see what botocore would refuse
    assert error_code(raw.delete_vpn_connection) == "MissingParameter"
    assert error_code(raw.create_customer_gateway, BgpAsn=65000, IpAddress="203.0.113.1") == "MissingParameter"
    assert error_code(raw.create_customer_gateway, Type="ipsec.2", IpAddress="203.0.113.1") == "InvalidParameterValue"
    assert error_code(raw.create_vpn_gateway, Type="ipsec.1", AmazonSideAsn="many") == "InvalidParameterValue"


def test_unknown_action_and_field(endpoint):
    import urllib.request

    def post(body: bytes) -> str:
        request = urllib.request.Request(endpoint.url, data=body,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as exc:
            return exc.read().decode()
        raise AssertionError("succeeded")

    assert "<Code>InvalidAction</Code>" in post(b"Action=LaunchRockets&Version=2016-11-15")
    assert "<Code>UnsupportedOperation</Code>" in post(b"Action=RunInstances&Version=2016-11-15")
    assert "<Code>UnknownParameter</Code>" in post(b"Action=DescribeVpnConnections&Version=2016-11-15&Bogus=1")
    text = post(b"Action=DescribeVpnConnections&Version=2016-11-15&Filter.1.Name=nope&Filter.1.Value.1=x")
    assert "<Code>InvalidParameterValue</Code>" in text and "<RequestID>" in text


@pytest.mark.parametrize("asn, code", [(0, "InvalidParameterValue"), (7224, "InvalidParameterValue"),
                                       (2147483648, "InvalidParameterValue")])
def test_customer_gateway_asn_rules(ec2, asn, code):
    assert error_code(ec2.create_customer_gateway, Type="ipsec.1", BgpAsn=asn, IpAddress="203.0.113.1") == code


def test_customer_gateway_asn_extended(ec2):
    cgw = ec2.create_customer_gateway(Type="ipsec.1", BgpAsnExtended=4200000001, IpAddress="203.0.113.1")
    assert cgw["CustomerGateway"]["BgpAsnExtended"] == "4200000001"
    assert error_code(ec2.create_customer_gateway, Type="ipsec.1", BgpAsn=65000, BgpAsnExtended=4200000001,
                      IpAddress="203.0.113.2") == "InvalidParameterCombination"


def test_identical_customer_gateway_is_returned(ec2):
    first = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=65000, IpAddress="203.0.113.1")["CustomerGateway"]
    again = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=65000, IpAddress="203.0.113.1")["CustomerGateway"]
    assert again["CustomerGatewayId"] == first["CustomerGatewayId"]


@pytest.mark.parametrize("asn", [64511, 65535, 4199999999, 4294967295])
def test_amazon_side_asn_rules(ec2, asn):
    assert error_code(ec2.create_vpn_gateway, Type="ipsec.1", AmazonSideAsn=asn) == "InvalidParameterValue"


@pytest.mark.parametrize("tunnel, words", [
    ({"DPDTimeoutSeconds": 29}, "DPDTimeoutSeconds"),
    ({"PreSharedKey": "0startswithzero"}, "PreSharedKey"),
    ({"PreSharedKey": "short"}, "PreSharedKey"),
    ({"PreSharedKey": "has-a-dash-in-it"}, "PreSharedKey"),
    ({"TunnelInsideCidr": "169.254.1.0/30"}, "reserved"),
    ({"TunnelInsideCidr": "169.254.10.0/29"}, "/30"),
    ({"TunnelInsideCidr": "10.0.0.0/30"}, "169.254.0.0/16"),
    ({"Phase1LifetimeSeconds": 899}, "Phase1LifetimeSeconds"),
    ({"Phase2LifetimeSeconds": 3601}, "Phase2LifetimeSeconds"),
    ({"Phase2LifetimeSeconds": 1000, "RekeyMarginTimeSeconds": 600}, "RekeyMarginTimeSeconds"),
    ({"RekeyFuzzPercentage": 101}, "RekeyFuzzPercentage"),
    ({"ReplayWindowSize": 32}, "ReplayWindowSize"),
    ({"Phase1EncryptionAlgorithms": [{"Value": "DES"}]}, "Phase1EncryptionAlgorithms"),
    ({"Phase1DHGroupNumbers": [{"Value": 5}]}, "Phase1DHGroupNumbers"),
    ({"DPDTimeoutAction": "explode"}, "DPDTimeoutAction"),
    ({"IKEVersions": [{"Value": "ikev1"}]}, "IKEVersions"),
])
def test_tunnel_option_rules(ec2, endpoint, tunnel, words):
    cgw_id, vgw_id, _ = make_gateways(ec2, endpoint)
    with pytest.raises(ClientError) as caught:
        ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                  Options={"StaticRoutesOnly": True, "TunnelOptions": [tunnel]})
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert words in caught.value.response["Error"]["Message"]
    # nothing half-made: no connection, and the gateway was told nothing
    assert ec2.describe_vpn_connections()["VpnConnections"] == []
    assert endpoint.view.changes == []


def test_connection_rules(ec2, endpoint):
    cgw_id, vgw_id, _ = make_gateways(ec2, endpoint)
    same_asn = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=64512, IpAddress="203.0.113.9")["CustomerGateway"]
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=same_asn["CustomerGatewayId"],
                      VpnGatewayId=vgw_id) == "InvalidParameterValue"
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                      Options={"EnableAcceleration": True}) == "InvalidParameterValue"
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                      Options={"TunnelOptions": [{"DPDTimeoutSeconds": 30}] * 3}) == "InvalidParameterValue"
    first = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                      Options={"StaticRoutesOnly": True,
                                               "TunnelOptions": [{"TunnelInsideCidr": "169.254.20.0/30"}]})
    assert first["VpnConnection"]["Options"]["TunnelOptions"][0]["TunnelInsideCidr"] == "169.254.20.0/30"
    # docs/aws.md §1.2: unique across the gateway's connections
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                      Options={"TunnelOptions": [{}, {"TunnelInsideCidr": "169.254.20.0/30"}]}) == \
        "InvalidParameterValue"
    # the YAML config's /30s count too
    endpoint.view.yaml_inside_cidrs.add(IPv4Network("169.254.30.0/30"))
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                      Options={"TunnelOptions": [{"TunnelInsideCidr": "169.254.30.0/30"}]}) == \
        "InvalidParameterValue"
    assert error_code(ec2.delete_customer_gateway, CustomerGatewayId=cgw_id) == "IncorrectState"
    assert error_code(ec2.delete_vpn_gateway, VpnGatewayId=vgw_id) == "IncorrectState"


def test_connection_quota_and_address_pool(ec2, endpoint):
    cgw_id, vgw_id, _ = make_gateways(ec2, endpoint)
    # the /28 pool has 14 usable addresses: 7 connections, then the pool is exhausted
    for _ in range(7):
        ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id)
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw_id,
                      VpnGatewayId=vgw_id) == "VpnConnectionLimitExceeded"
    used = [t.outside_ip for c in endpoint.view.changes for t in c.definition.config.tunnels]
    assert len(set(used)) == 14


def test_dry_run(ec2, endpoint):
    assert error_code(ec2.create_vpn_gateway, Type="ipsec.1", DryRun=True) == "DryRunOperation"
    assert ec2.describe_vpn_gateways()["VpnGateways"] == []
