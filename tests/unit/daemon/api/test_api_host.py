"""daemon/api/host.py on a stand-in gateway: the API's connections beside the
file's (`effective`), the YAML refused where it takes what the API holds,
changes applied as reloads with the replacements queued, route propagation."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from daemon.api.host import ApiHost
from daemon.config.api import ApiConfig
from daemon.config import parse_config

from .conftest import make_settings

YAML = """
vpc: {cidrs: [10.0.0.0/16]}
api: {listen: "127.0.0.1:0", outside_ip_pool: 198.51.100.0/28}
connections:
  - name: yaml-one
    customer_gateway: {ip: 203.0.113.9}
    static_routes: [172.20.0.0/16]
    tunnels:
      - {outside_ip: 192.0.2.1, inside_cidr: 169.254.20.0/30, pre_shared_key: example_psk_yaml_one_a}
"""


class Addresses:
    def __init__(self):
        self.added, self.removed = [], []

    def add(self, ip):
        self.added.append(str(ip))

    def remove(self, ip):
        self.removed.append(str(ip))

    def close(self):
        pass


@dataclass
class Replacements:
    queued: list = field(default_factory=list)
    cancelled: list = field(default_factory=list)

    def replace(self, connection, ips, modifying=False):
        self.queued.append((connection, tuple(ips), modifying))

    def cancel(self, connection):
        self.cancelled.append(connection)

    def busy(self, connection):
        return False


class FakeGateway:
    def __init__(self, file_config):
        self.file_config = file_config
        self.replacer = Replacements()
        self.applied = []
        self.refreshed = 0
        self.tunnels, self.vpc_table = {}, None

    def apply(self, what=""):
        self.applied.append(what)

    def refresh_vpc_routes(self):
        self.refreshed += 1


@pytest.fixture
def host(tmp_path):
    config = parse_config(YAML)
    settings: ApiConfig = make_settings(tmp_path)
    gw = FakeGateway(config)
    h = ApiHost(gw, settings, addresses=Addresses())
    h.service.rng = random.Random(3)
    yield h
    h.service.close()


def _create(host, static=True):
    run = host.service.run
    cgw = run("CreateCustomerGateway", {"Type": "ipsec.1", "BgpAsn": 65000, "IpAddress": "203.0.113.7"}, 0)
    vgw = run("CreateVpnGateway", {"Type": "ipsec.1", "AmazonSideAsn": 64700}, 0)
    cgw_id, vgw_id = cgw["CustomerGateway"]["CustomerGatewayId"], vgw["VpnGateway"]["VpnGatewayId"]
    vpn = run("CreateVpnConnection", {"Type": "ipsec.1", "CustomerGatewayId": cgw_id, "VpnGatewayId": vgw_id,
                                      "Options": {"StaticRoutesOnly": static}}, 0)
    return vpn["VpnConnection"], vgw_id


def test_api_connections_run_after_the_files_and_keep_their_asn(host):
    vpn, vgw_id = _create(host, static=False)
    vpn_id = vpn["VpnConnectionId"]
    ips = [t["OutsideIpAddress"] for t in vpn["VgwTelemetry"]]
    assert host.addresses.added == ips and host.gw.applied == [f"[{vpn_id}] created by the EC2 API"]
    effective = host.effective(host.gw.file_config)
    assert [c.name for c in effective.connections] == ["yaml-one", vpn_id]
    assert effective.connections[1].dynamic and host.owns(vpn_id).amazon_side_asn == 64700
    assert host.owns("yaml-one") is None and host.gw.file_config.connections[0].name == "yaml-one"
    # the YAML's addresses and /30 were never handed out
    assert "192.0.2.1" not in ips and all(str(t.inside_cidr) != "169.254.20.0/30" for t in effective.connections[1].tunnels)


def test_a_modify_queues_the_replacement_and_a_delete_removes_everything(host):
    vpn, _ = _create(host)
    vpn_id = vpn["VpnConnectionId"]
    ips = [t["OutsideIpAddress"] for t in vpn["VgwTelemetry"]]
    host.service.run("ModifyVpnTunnelOptions", {"VpnConnectionId": vpn_id, "VpnTunnelOutsideIpAddress": ips[1],
                                                "TunnelOptions": {"DPDTimeoutSeconds": 40}}, 10)
    assert host.gw.replacer.queued == [(vpn_id, (ips[1],), True)]
    assert host.owns(vpn_id).config.tunnels[1].dpd_timeout_seconds == 40
    host.service.run("DeleteVpnConnection", {"VpnConnectionId": vpn_id}, 20)
    assert host.owns(vpn_id) is None and host.gw.replacer.cancelled == [vpn_id]
    assert host.addresses.removed == ips and host.gw.applied[-1] == f"[{vpn_id}] deleted by the EC2 API"


def test_the_yaml_may_not_take_what_the_api_holds(host):
    vpn, _ = _create(host)
    vpn_id = vpn["VpnConnectionId"]
    tunnel = vpn["Options"]["TunnelOptions"][0]
    taken = parse_config(YAML.replace("yaml-one", vpn_id).replace("192.0.2.1", tunnel["OutsideIpAddress"])
                         .replace("169.254.20.0/30", tunnel["TunnelInsideCidr"]))
    issues = {issue.path: issue.message for issue in host.conflicts(taken)}
    assert set(issues) == {"connections[0].name", "connections[0].tunnels[0].outside_ip",
                           "connections[0].tunnels[0].inside_cidr"}
    assert "cannot be edited in YAML" in issues["connections[0].name"]
    assert host.conflicts(host.gw.file_config) == []


def test_route_propagation_follows_the_api(host):
    vpn, vgw_id = _create(host)
    vpn_id = vpn["VpnConnectionId"]
    vpc_id = host.service.run("DescribeVpcs", {}, 0)["Vpcs"][0]["VpcId"]
    rtb = host.service.vpc.route_table_id
    host.service.run("AttachVpnGateway", {"VpnGatewayId": vgw_id, "VpcId": vpc_id}, 0)
    assert not host.propagates(vpn_id) and host.propagates("yaml-one")
    host.service.run("EnableVgwRoutePropagation", {"RouteTableId": rtb, "GatewayId": vgw_id}, 5)
    assert host.propagates(vpn_id) and host.gw.refreshed == 1
    host.service.run("DisableVgwRoutePropagation", {"RouteTableId": rtb, "GatewayId": vgw_id}, 6)
    assert not host.propagates(vpn_id) and host.gw.refreshed == 2
