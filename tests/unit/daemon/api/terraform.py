"""The calls Terraform's aws provider makes, replayed with boto3, waiters included.

Facts from hashicorp/terraform-provider-aws internal/service/ec2
(vpnsite_customer_gateway.go, vpnsite_gateway.go, vpnsite_connection.go,
vpnsite_connection_route.go, wait.go, find.go): a customer gateway waits
pending -> available; a VPN gateway attaches and waits attaching -> attached;
a VPN connection is created with TunnelInsideIpVersion ipv4 and both
TunnelOptions (an empty first one is not sent at all), then polled every 10 s
(after a 10 s delay) until pending -> available; a read takes tunnel1/2 from the
XML, ordered by tunnel1's PSK; a VPN route is polled through the
route.destination-cidr-block and vpn-connection-id filters and must be available
within 15 s; deletes wait until the object reads as deleted (the finders treat
`deleted` as gone); DeleteVpnGateway is retried on IncorrectState.

Used by the unit test (test_api_terraform.py, on a clock the test moves) and
by the lab (tests/lab/test_api.py, against `vgw run` on real time).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Callable

from botocore.exceptions import ClientError


def _gone_if_deleted(state):
    return None if state == "deleted" else state


def replay(ec2, clock, on_available: Callable[[str, list[str]], None] | None = None) -> tuple[str, list[str]]:
    """The whole sequence against `ec2`; `clock` waits (`wait(refresh, pending, target,
    delay, poll, timeout)` as Terraform's StateChangeConf, `pause(seconds)`);
    `on_available(vpn_id, outside_ips)` runs once the connection is available.
    Returns the connection's id and its tunnels' outside IPs."""
    # aws_customer_gateway
    cgw_id = ec2.create_customer_gateway(
        Type="ipsec.1", BgpAsn=65000, IpAddress="203.0.113.50",
        TagSpecifications=[{"ResourceType": "customer-gateway", "Tags": [{"Key": "Name", "Value": "tf"}]}],
    )["CustomerGateway"]["CustomerGatewayId"]
    cgw = lambda: ec2.describe_customer_gateways(CustomerGatewayIds=[cgw_id])["CustomerGateways"][0]  # noqa: E731
    assert clock.wait(lambda: cgw()["State"], ["pending"], ["available"], poll=3) == "available"
    assert cgw()["BgpAsn"] == "65000" and cgw()["Tags"] == [{"Key": "Name", "Value": "tf"}]

    # aws_vpn_gateway with vpc_id (attach inside the resource), then its read
    vgw_id = ec2.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=64512)["VpnGateway"]["VpnGatewayId"]
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ec2.attach_vpn_gateway(VpcId=vpc_id, VpnGatewayId=vgw_id)

    def attachment():
        gateway = ec2.describe_vpn_gateways(VpnGatewayIds=[vgw_id])["VpnGateways"][0]
        states = [a["State"] for a in gateway["VpcAttachments"] if a["VpcId"] == vpc_id]
        return None if not states or states[0] == "detached" else states[0]

    assert clock.wait(attachment, ["attaching"], ["attached"], delay=0, poll=2) == "attached"
    found = ec2.describe_vpn_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]},
                                               {"Name": "attachment.state", "Values": ["attached"]}])
    assert [g["VpnGatewayId"] for g in found["VpnGateways"]] == [vgw_id]

    # aws_vpn_connection: tunnel2 options only (Terraform sends TunnelOptions.2 without .1)
    psk2 = "tf_example_psk_tunnel2_x"
    vpn_id = ec2.create_vpn_connection(
        CustomerGatewayId=cgw_id, Type="ipsec.1", VpnGatewayId=vgw_id,
        Options={"TunnelInsideIpVersion": "ipv4", "StaticRoutesOnly": True,
                 "TunnelOptions": [{}, {"PreSharedKey": psk2, "TunnelInsideCidr": "169.254.44.0/30"}]},
        TagSpecifications=[{"ResourceType": "vpn-connection", "Tags": [{"Key": "Name", "Value": "tf"}]}],
    )["VpnConnection"]["VpnConnectionId"]
    connection = lambda: ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]  # noqa: E731
    assert clock.wait(lambda: connection()["State"], ["pending"], ["available"]) == "available"
    read = connection()
    options = read["Options"]["TunnelOptions"]
    assert options[1]["PreSharedKey"] == psk2 and options[1]["TunnelInsideCidr"] == "169.254.44.0/30"
    assert options[0]["PreSharedKey"] != psk2
    # the read's XML: tunnel1 is the ipsec_tunnel whose PSK is tunnel1's
    tunnels = ET.fromstring(read["CustomerGatewayConfiguration"]).findall("ipsec_tunnel")
    by_psk = {t.findtext("ike/pre_shared_key"): t for t in tunnels}
    tunnel1 = by_psk[options[0]["PreSharedKey"]]
    assert tunnel1.findtext("vpn_gateway/tunnel_outside_address/ip_address") == options[0]["OutsideIpAddress"]
    assert by_psk[psk2].findtext("vpn_gateway/tunnel_inside_address/ip_address") == "169.254.44.1"
    assert by_psk[psk2].findtext("customer_gateway/tunnel_inside_address/ip_address") == "169.254.44.2"
    ips = [o["OutsideIpAddress"] for o in options]
    if on_available is not None:
        on_available(vpn_id, ips)

    # aws_vpn_connection_route: available within 15 s
    ec2.create_vpn_connection_route(DestinationCidrBlock="192.168.10.0/24", VpnConnectionId=vpn_id)

    def route():
        found = ec2.describe_vpn_connections(Filters=[
            {"Name": "route.destination-cidr-block", "Values": ["192.168.10.0/24"]},
            {"Name": "vpn-connection-id", "Values": [vpn_id]}])["VpnConnections"]
        states = [r["State"] for c in found for r in c.get("Routes", []) if r["DestinationCidrBlock"] == "192.168.10.0/24"]
        return None if not states or states[0] == "deleted" else states[0]

    assert clock.wait(route, ["pending"], ["available"], delay=0, poll=1, timeout=15) == "available"

    # an in-place update: tunnel1's DPD timeout, then the modifying -> available waiter
    ec2.modify_vpn_tunnel_options(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=options[0]["OutsideIpAddress"],
                                  TunnelOptions={"DPDTimeoutSeconds": 40})
    assert clock.wait(lambda: connection()["State"], ["modifying"], ["available"]) == "available"
    ec2.create_tags(Resources=[vpn_id], Tags=[{"Key": "env", "Value": "ci"}])
    ec2.delete_tags(Resources=[vpn_id], Tags=[{"Key": "Name"}])
    assert connection()["Tags"] == [{"Key": "env", "Value": "ci"}]

    # destroy, in Terraform's dependency order
    ec2.delete_vpn_connection_route(DestinationCidrBlock="192.168.10.0/24", VpnConnectionId=vpn_id)
    assert clock.wait(route, ["pending", "available", "deleting"], [], delay=0, poll=1, timeout=15) is None
    ec2.delete_vpn_connection(VpnConnectionId=vpn_id)
    assert clock.wait(lambda: _gone_if_deleted(connection()["State"]), ["deleting"], []) is None
    ec2.detach_vpn_gateway(VpcId=vpc_id, VpnGatewayId=vgw_id)
    assert clock.wait(attachment, ["attached", "detaching"], [], delay=0, poll=2) is None
    while True:  # RetryWhenAWSErrCodeEquals(IncorrectState)
        try:
            ec2.delete_vpn_gateway(VpnGatewayId=vgw_id)
            break
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "IncorrectState"
            clock.pause(1)
    gateway_state = lambda: ec2.describe_vpn_gateways(VpnGatewayIds=[vgw_id])["VpnGateways"][0]["State"]  # noqa: E731
    assert clock.wait(lambda: _gone_if_deleted(gateway_state()), ["deleting"], []) is None
    ec2.delete_customer_gateway(CustomerGatewayId=cgw_id)
    assert clock.wait(lambda: _gone_if_deleted(cgw()["State"]), ["available", "deleting"], [], delay=0,
                poll=1) is None
    return vpn_id, ips
