"""CreateTags, DeleteTags and DescribeTags as EC2 answers them (EC2 API tagging)."""

from __future__ import annotations

from .helpers import error_code, make_gateways


def _described(ec2, **kwargs) -> set[tuple[str, str, str, str]]:
    return {(t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in ec2.describe_tags(**kwargs)["Tags"]}


def test_describe_tags_lists_and_filters(ec2, endpoint):
    cgw_id, vgw_id, vpc_id = make_gateways(ec2, endpoint)
    ec2.create_tags(Resources=[cgw_id, vgw_id], Tags=[{"Key": "env", "Value": "lab"}])
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": "hub"}])
    assert _described(ec2) == {(cgw_id, "customer-gateway", "env", "lab"), (vgw_id, "vpn-gateway", "env", "lab"),
                               (vpc_id, "vpc", "Name", "hub")}
    assert _described(ec2, Filters=[{"Name": "resource-type", "Values": ["vpn-gateway"]}]) == {
        (vgw_id, "vpn-gateway", "env", "lab")}
    assert _described(ec2, Filters=[{"Name": "key", "Values": ["Na*"]}]) == {(vpc_id, "vpc", "Name", "hub")}
    assert _described(ec2, Filters=[{"Name": "resource-id", "Values": [cgw_id]},
                                    {"Name": "value", "Values": ["lab"]}]) == {(cgw_id, "customer-gateway", "env", "lab")}
    assert error_code(ec2.describe_tags, Filters=[{"Name": "owner", "Values": ["x"]}]) == "InvalidParameterValue"
    ec2.delete_tags(Resources=[cgw_id], Tags=[{"Key": "env", "Value": "other"}])   # value differs: kept
    assert (cgw_id, "customer-gateway", "env", "lab") in _described(ec2)
    ec2.delete_tags(Resources=[cgw_id], Tags=[{"Key": "env"}])
    assert cgw_id not in {t[0] for t in _described(ec2)}


def test_tags_of_a_deleted_resource_go_with_it(ec2, endpoint):
    cgw_id, _vgw_id, _vpc_id = make_gateways(ec2, endpoint)
    ec2.create_tags(Resources=[cgw_id], Tags=[{"Key": "env", "Value": "lab"}])
    ec2.delete_customer_gateway(CustomerGatewayId=cgw_id)
    endpoint.clock.advance(3600 * 2)
    ec2.describe_customer_gateways()          # any call lets the API purge what is gone
    assert cgw_id not in {t[0] for t in _described(ec2)}
