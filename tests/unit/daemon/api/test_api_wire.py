"""The EC2 Query wire format against botocore's own serializer and parser."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from daemon.api import wire
from daemon.api.errors import ApiError


def _fields(action: str, params: dict) -> list[tuple[str, str]]:
    body = create_serializer("ec2").serialize_to_request(params, wire.operation(action))["body"]
    return [(k, str(v)) for k, v in body.items() if k not in ("Action", "Version")]


def test_request_round_trip():
    params = {
        "CustomerGatewayId": "cgw-1", "Type": "ipsec.1", "VpnGatewayId": "vgw-1",
        "TagSpecifications": [{"ResourceType": "vpn-connection", "Tags": [{"Key": "Name", "Value": "x"}]}],
        "Options": {"StaticRoutesOnly": True, "TunnelOptions": [
            {"Phase1DHGroupNumbers": [{"Value": 14}, {"Value": 19}], "IKEVersions": [{"Value": "ikev2"}],
             "LogOptions": {"CloudWatchLogOptions": {"LogEnabled": True}}},
            {"PreSharedKey": "example_psk_2_abcdef"}]},
    }
    fields = _fields("CreateVpnConnection", params)
    assert ("Options.TunnelOptions.1.Phase1DHGroupNumber.2.Value", "19") in fields
    assert wire.parse_request("CreateVpnConnection", fields) == params


def test_second_tunnel_alone_keeps_its_position():
    # Terraform sends nothing for an empty tunnel1: TunnelOptions.2 is still tunnel 2
    fields = _fields("CreateVpnConnection", {"CustomerGatewayId": "c", "Type": "ipsec.1",
                                             "Options": {"TunnelOptions": [{}, {"DPDTimeoutSeconds": 40}]}})
    parsed = wire.parse_request("CreateVpnConnection", fields)
    assert parsed["Options"]["TunnelOptions"] == [{}, {"DPDTimeoutSeconds": 40}]


@pytest.mark.parametrize("fields, code", [
    ([("Type", "ipsec.1"), ("Bogus", "1")], "UnknownParameter"),
    ([("Type", "ipsec.1"), ("BgpAsn.1", "1")], "UnknownParameter"),
    ([("Type", "ipsec.1"), ("BgpAsn", "12x")], "InvalidParameterValue"),
    ([("Type", "ipsec.1"), ("DryRun", "maybe")], "InvalidParameterValue"),
    ([("Type", "ipsec.9")], "InvalidParameterValue"),
    ([("BgpAsn", "65000")], "MissingParameter"),
    ([("Type", "ipsec.1"), ("TagSpecification.0.ResourceType", "vpc")], "InvalidParameterValue"),
    ([("Type", "ipsec.1"), ("TagSpecification.99999.ResourceType", "vpc")], "InvalidParameterValue"),
])
def test_bad_fields(fields, code):
    with pytest.raises(ApiError) as caught:
        wire.parse_request("CreateCustomerGateway", fields)
    assert caught.value.code == code


def test_unknown_action():
    with pytest.raises(ApiError) as caught:
        wire.operation("DescribeUnicorns")
    assert caught.value.code == "InvalidAction"


def test_response_round_trip():
    when = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
    result = {"VpnConnections": [{
        "VpnConnectionId": "vpn-1", "State": "available", "CustomerGatewayConfiguration": "<a>&amp;</a>",
        "Options": {"StaticRoutesOnly": False, "TunnelOptions": [{"OutsideIpAddress": "198.51.100.1",
                                                                 "Phase1DHGroupNumbers": [{"Value": 14}]}]},
        "VgwTelemetry": [{"OutsideIpAddress": "198.51.100.1", "Status": "UP", "AcceptedRouteCount": 2,
                          "LastStatusChange": when}],
    }]}
    body = wire.serialize_response("DescribeVpnConnections", result, "req-1")
    assert b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"' in body and b"<item>" in body
    parsed = create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 200},
                                        wire.operation("DescribeVpnConnections").output_shape)
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert parsed["VpnConnections"] == result["VpnConnections"]


def test_error_document():
    body = wire.serialize_error("InvalidVpnConnectionID.NotFound", "gone", "req-2")
    parsed = create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 400}, None)
    assert parsed["Error"] == {"Code": "InvalidVpnConnectionID.NotFound", "Message": "gone"}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-2"


def test_result_key_outside_the_model_is_a_bug():
    with pytest.raises(KeyError):
        wire.serialize_response("DescribeVpcs", {"Vpcz": []}, "r")


def test_text_xml_cannot_carry_is_replaced():
    body = wire.serialize_error("UnknownParameter", "The parameter a\x01b is not recognized", "r")
    parsed = create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 400}, None)
    assert parsed["Error"]["Message"] == "The parameter a?b is not recognized"
