"""The AWS CLI (awscli from PyPI) against the endpoint: a short life."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from .conftest import KEY_ID, SECRET

pytestmark = pytest.mark.skipif(shutil.which("aws") is None and os.environ.get("CI") != "true",
                                reason="the AWS CLI is not installed (pip install awscli)")


def test_short_life_with_the_cli(endpoint):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": ""}

    def aws(*args: str) -> dict:
        out = subprocess.run(["aws", "--endpoint-url", endpoint.url, "--output", "json", "ec2", *args],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    cgw = aws("create-customer-gateway", "--type", "ipsec.1", "--bgp-asn", "65000",
              "--ip-address", "203.0.113.77")["CustomerGateway"]["CustomerGatewayId"]
    vgw = aws("create-vpn-gateway", "--type", "ipsec.1")["VpnGateway"]["VpnGatewayId"]
    vpc = aws("describe-vpcs")["Vpcs"][0]["VpcId"]
    aws("attach-vpn-gateway", "--vpn-gateway-id", vgw, "--vpc-id", vpc)
    vpn = aws("create-vpn-connection", "--type", "ipsec.1", "--customer-gateway-id", cgw, "--vpn-gateway-id", vgw,
              "--options", "StaticRoutesOnly=true,TunnelOptions=[{TunnelInsideCidr=169.254.77.0/30},{}]")
    vpn_id = vpn["VpnConnection"]["VpnConnectionId"]
    endpoint.clock.advance(5)
    described = aws("describe-vpn-connections", "--vpn-connection-ids", vpn_id)["VpnConnections"][0]
    assert described["State"] == "available"
    assert described["Options"]["TunnelOptions"][0]["TunnelInsideCidr"] == "169.254.77.0/30"
    aws("create-vpn-connection-route", "--vpn-connection-id", vpn_id, "--destination-cidr-block", "172.31.0.0/16")
    aws("delete-vpn-connection", "--vpn-connection-id", vpn_id)
    assert [c.kind for c in endpoint.view.changes] == ["created", "modified", "deleted"]
    failed = subprocess.run(["aws", "--endpoint-url", endpoint.url, "ec2", "describe-vpn-connections",
                             "--vpn-connection-ids", "vpn-0000000000000000f"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert failed.returncode != 0 and "InvalidVpnConnectionID.NotFound" in failed.stderr
