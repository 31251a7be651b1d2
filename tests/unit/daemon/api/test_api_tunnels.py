"""One tunnel: replacement, maintenance (tunnel endpoint lifecycle control),
negotiated algorithms, device sample configurations, certificate gateways."""

from __future__ import annotations

import datetime as dt
from ipaddress import IPv4Address

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from daemon.api.view import ActiveTunnelStatus

from .helpers import error_code, make_gateways


def _connection(ec2, endpoint, lifecycle: bool):
    cgw_id, vgw_id, _ = make_gateways(ec2, endpoint)
    vpn = ec2.create_vpn_connection(
        Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
        Options={"StaticRoutesOnly": True,
                 "TunnelOptions": [{"EnableTunnelLifecycleControl": lifecycle}, {}]})["VpnConnection"]
    endpoint.clock.advance(5)
    return vpn["VpnConnectionId"], [t["OutsideIpAddress"] for t in vpn["Options"]["TunnelOptions"]]


def test_replace_vpn_tunnel(ec2, endpoint):
    vpn_id, ips = _connection(ec2, endpoint, lifecycle=False)
    assert ec2.replace_vpn_tunnel(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[1])["Return"] is True
    change = endpoint.view.changes[-1]
    assert change.kind == "replaced" and [str(ip) for ip in change.replace] == [ips[1]]
    status = ec2.get_vpn_tunnel_replacement_status(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[1])
    assert status["MaintenanceDetails"]["LastMaintenanceApplied"].timestamp() == pytest.approx(endpoint.clock.now,
                                                                                               abs=0.01)
    assert error_code(ec2.replace_vpn_tunnel, VpnConnectionId=vpn_id,
                      VpnTunnelOutsideIpAddress="192.0.2.99") == "InvalidParameterValue"
    # nothing pending: applying pending maintenance does nothing
    assert ec2.replace_vpn_tunnel(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0],
                                  ApplyPendingMaintenance=True)["Return"] is False


def test_maintenance_with_lifecycle_control(ec2, endpoint):
    vpn_id, ips = _connection(ec2, endpoint, lifecycle=True)
    service, clock, view = endpoint.service, endpoint.clock, endpoint.view
    deadline = clock.now + 3600
    created = len(view.changes)
    # tunnel 1 has lifecycle control: pending; tunnel 2 has not: applied at once
    applied = endpoint.call(_in_loop(service.schedule_maintenance, vpn_id, None, deadline, clock.now))
    assert applied == [ips[1]]
    assert [str(ip) for c in view.changes[created:] for ip in c.replace] == [ips[1]]
    status = ec2.get_vpn_tunnel_replacement_status(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0])
    details = status["MaintenanceDetails"]
    assert details["PendingMaintenance"]
    assert details["MaintenanceAutoAppliedAfter"].timestamp() == pytest.approx(deadline, abs=0.01)  # milliseconds
    assert "LastMaintenanceApplied" not in details
    # the customer applies it early
    assert ec2.replace_vpn_tunnel(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0],
                                  ApplyPendingMaintenance=True)["Return"] is True
    assert view.changes[-1].kind == "replaced" and [str(ip) for ip in view.changes[-1].replace] == [ips[0]]
    details = ec2.get_vpn_tunnel_replacement_status(VpnConnectionId=vpn_id,
                                                   VpnTunnelOutsideIpAddress=ips[0])["MaintenanceDetails"]
    assert "PendingMaintenance" not in details and "LastMaintenanceApplied" in details


def test_maintenance_deadline_applies_it(ec2, endpoint):
    vpn_id, ips = _connection(ec2, endpoint, lifecycle=True)
    service, clock = endpoint.service, endpoint.clock
    endpoint.call(_in_loop(service.schedule_maintenance, vpn_id, ips[0], clock.now + 60, clock.now))
    assert endpoint.call(_in_loop(service.advance, clock.now + 30)) == []
    assert endpoint.call(_in_loop(service.advance, clock.now + 61)) == [(vpn_id, ips[0])]
    assert endpoint.view.changes[-1].kind == "replaced"


async def _in_loop(function, *args):
    """The service lives on the server's loop thread: call it there."""
    return function(*args)


def test_active_tunnel_status(ec2, endpoint):
    vpn_id, ips = _connection(ec2, endpoint, lifecycle=False)
    status = ec2.get_active_vpn_tunnel_status(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0])
    assert status["ActiveVpnTunnelStatus"] == {"ProvisioningStatus": "available"}
    endpoint.view.status_by_ip[IPv4Address(ips[0])] = ActiveTunnelStatus(
        "AES256-GCM-16", "AES128-GCM-16", "SHA2-256", None, 20, 20, "ikev2")
    status = ec2.get_active_vpn_tunnel_status(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0])
    assert status["ActiveVpnTunnelStatus"] == {
        "Phase1EncryptionAlgorithm": "AES256-GCM-16", "Phase2EncryptionAlgorithm": "AES128-GCM-16",
        "Phase1IntegrityAlgorithm": "SHA2-256", "Phase1DHGroup": 20, "Phase2DHGroup": 20, "IkeVersion": "ikev2",
        "ProvisioningStatus": "available"}


def test_device_types_and_sample_configuration(ec2, endpoint):
    vpn_id, ips = _connection(ec2, endpoint, lifecycle=False)
    types = {t["VpnConnectionDeviceTypeId"] for t in ec2.get_vpn_connection_device_types()["VpnConnectionDeviceTypes"]}
    assert types == {"strongswan", "generic", "xml"}
    psk = ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]["Options"]["TunnelOptions"][0][
        "PreSharedKey"]
    text = ec2.get_vpn_connection_device_sample_configuration(
        VpnConnectionId=vpn_id, VpnConnectionDeviceTypeId="strongswan",
        InternetKeyExchangeVersion="ikev2")["VpnConnectionDeviceSampleConfiguration"]
    assert psk in text and ips[0] in text and vpn_id in text
    assert error_code(ec2.get_vpn_connection_device_sample_configuration, VpnConnectionId=vpn_id,
                      VpnConnectionDeviceTypeId="cisco-asa") == "InvalidParameterValue"


def test_customer_gateway_with_a_certificate(ec2, endpoint, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cgw.example.net")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path = tmp_path / "cgw.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cgw = ec2.create_customer_gateway(Type="ipsec.1", CertificateArn=str(path))["CustomerGateway"]
    assert cgw["CertificateArn"] == str(path) and "IpAddress" not in cgw
    assert error_code(ec2.create_customer_gateway, Type="ipsec.1",
                      CertificateArn=str(tmp_path / "none.pem")) == "InvalidParameterValue"
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]
    # vgw has no certificate of its own configured (api.certificate): refused, saying so
    assert error_code(ec2.create_vpn_connection, Type="ipsec.1", CustomerGatewayId=cgw["CustomerGatewayId"],
                      VpnGatewayId=vgw["VpnGatewayId"], Options={"StaticRoutesOnly": True}) == "InvalidParameterValue"
