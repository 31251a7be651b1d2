"""Small helpers the API tests share."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(call, *args, **kwargs) -> str:
    """The EC2 error code botocore raises for the call (AssertionError if it succeeds)."""
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} succeeded")


def make_gateways(ec2, endpoint, asn=65010, ip="203.0.113.10", amazon_asn=64512):
    """A customer gateway, a virtual private gateway attached to the VPC; settled."""
    cgw = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=asn, IpAddress=ip)["CustomerGateway"]
    vgw = ec2.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=amazon_asn)["VpnGateway"]
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ec2.attach_vpn_gateway(VpnGatewayId=vgw["VpnGatewayId"], VpcId=vpc_id)
    endpoint.clock.advance(5)
    return cgw["CustomerGatewayId"], vgw["VpnGatewayId"], vpc_id
