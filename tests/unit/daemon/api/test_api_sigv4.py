"""SigV4: with access keys configured the signature is recomputed with botocore's
signer; an unknown key is AuthFailure, a wrong secret SignatureDoesNotMatch."""

from __future__ import annotations

import pytest
from botocore import UNSIGNED

from daemon.api.view import InMemoryGatewayView

from .conftest import KEY_ID, SECRET, Clock, Endpoint, make_settings
from .helpers import error_code


@pytest.fixture
def signed(tmp_path):
    settings = make_settings(tmp_path, access_keys=[{"access_key_id": KEY_ID, "secret_access_key": SECRET}])
    e = Endpoint(settings, InMemoryGatewayView(), Clock())
    yield e
    e.stop()


def test_right_key_is_accepted(signed):
    ec2 = signed.client()
    created = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=65000, IpAddress="203.0.113.1")
    ids = [g["CustomerGatewayId"] for g in ec2.describe_customer_gateways()["CustomerGateways"]]
    assert ids == [created["CustomerGateway"]["CustomerGatewayId"]]


def test_unknown_key_wrong_secret_and_no_signature(signed):
    assert error_code(signed.client(key_id="AKIDUNKNOWN000000001").describe_vpcs) == "AuthFailure"
    assert error_code(signed.client(secret="not-the-secret-0000000000").describe_vpcs) == "SignatureDoesNotMatch"
    assert error_code(signed.client(signature_version=UNSIGNED).describe_vpcs) == "AuthFailure"
    # nothing was created by the refused requests
    assert signed.client().describe_customer_gateways()["CustomerGateways"] == []


def test_stale_signature_is_refused(signed):
    signed.clock.advance(20 * 60)  # vgw's clock 20 minutes ahead of the client's X-Amz-Date
    assert error_code(signed.client().describe_vpcs) == "RequestExpired"


def test_without_keys_any_signature_is_accepted(endpoint):
    assert endpoint.client(key_id="AKIDANYTHING00000001", secret="whatever-secret-000000").describe_vpcs()["Vpcs"]
