"""The EC2 API served by `vgw run`, end to end: boto3 and the AWS CLI (in vgw's
namespace, against its loopback) build connections whose tunnels a strongSwan
customer gateway, configured from the API's own CustomerGatewayConfiguration,
brings up; telemetry, route propagation, endpoint replacement (only the modified
tunnel; both one at a time; the MED raised first with BGP), a restart that keeps
every object, the maintenance rehearsal, Terraform's call sequence, and a flood
of API requests that costs the tunnel not one ping.

Each test is one vgw life in its own namespaces (tests/lab/apilab.py).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import time

import pytest

from tests.lab.apilab import (
    Ec2,
    aws_cli,
    api_config,
    child_spis,
    flood,
    host_addresses,
    node_from_xml,
    oversize_answer,
    propagated_routes,
    vgw_routes,
    wait_state,
    wait_telemetry,
)
from tests.lab.bgplab import bring_up_cgw, cgw_speaker, start_cgw
from tests.lab.netns import require_tool, topology, wait_until
from tests.lab.traffic import BackgroundPing, ping
from tests.unit.daemon.api.terraform import replay
from tests.lab.vgwproc import Vgw, connection_yaml, tunnel_yaml

pytestmark = pytest.mark.lab

VPC_PREFIX = "10.0.0.0/16"


@pytest.fixture
def api_lab(lab):
    """The standard topology, vgw with the API and no connection, boto3 in its namespace."""
    topo = topology(lab)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(api_config(vgw))
    vgw.start()
    ec2 = Ec2(topo.vgw)
    yield lab, topo, vgw, ec2
    ec2.close()


def make_gateways(ec2: Ec2, topo, asn: int = 65000, amazon_asn: int = 64512) -> tuple[str, str, str]:
    """A customer gateway at the lab CGW's address, a virtual private gateway attached
    to the VPC; returns their ids and the main route table's."""
    cgw = ec2.create_customer_gateway(Type="ipsec.1", BgpAsn=asn, IpAddress=topo.cgw_wan_ip)
    vgw_id = ec2.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=amazon_asn)["VpnGateway"]["VpnGatewayId"]
    vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ec2.attach_vpn_gateway(VpnGatewayId=vgw_id, VpcId=vpc_id)
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][0]
    return cgw["CustomerGateway"]["CustomerGatewayId"], vgw_id, rtb["RouteTableId"]


def up(message: str = "IPSEC IS UP", routes: int | None = None):
    return lambda t: t["Status"] == "UP" and t["StatusMessage"] == message and (
        routes is None or t["AcceptedRouteCount"] == routes)


def wait_replaced(vgw: Vgw, before: dict[str, set[str]], ip: str, timeout: float = 45) -> None:
    """Until the tunnel has CHILD SAs again, none of them one it had before."""
    wait_until(lambda: child_spis(vgw)[ip] and not child_spis(vgw)[ip] & before[ip], timeout, 0.2,
               f"tunnel {ip} replaced and up again")


def test_static_connection_life_with_boto3(api_lab):
    lab, topo, vgw, ec2 = api_lab
    cgw_id, vgw_id, rtb = make_gateways(ec2, topo)
    vpn = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                    Options={"StaticRoutesOnly": True})["VpnConnection"]
    vpn_id = vpn["VpnConnectionId"]
    ips = [t["OutsideIpAddress"] for t in vpn["VgwTelemetry"]]
    assert vpn["State"] == "pending" and set(ips) <= host_addresses(lab, topo.vgw)
    ec2.create_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock=topo.onprem_cidr)
    ec2.enable_vgw_route_propagation(RouteTableId=rtb, GatewayId=vgw_id)
    described = wait_state(ec2, vpn_id, "available")
    status = json.loads(vgw.cli("status", "--json").stdout)
    assert {t["outside_ip"]: (t["source"], t["vpn_connection_id"]) for t in status["tunnels"]} == {
        ip: ("api", vpn_id) for ip in ips}
    assert status["gateway"]["connections"][0]["source"] == "api"

    # the customer gateway from the XML the API returned
    node, vgw_asn = node_from_xml(described["CustomerGatewayConfiguration"], "cgw", topo, [topo.onprem_cidr])
    assert vgw_asn is None and [t.outside_ip for t in node.tunnels] == ips
    start_cgw(lab, node, close_action="start")   # charon initiates again when vgw replaces a tunnel
    bring_up_cgw(node)
    wait_telemetry(ec2, vpn_id, up(routes=1), what="UP, 1 static route")
    active = ec2.get_active_vpn_tunnel_status(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0])
    # the lab CGW proposes aes128-sha256-modp2048 and aes128gcm16 (tests/lab/strongswan.py)
    assert active["ActiveVpnTunnelStatus"] == {
        "Phase1EncryptionAlgorithm": "AES128", "Phase1IntegrityAlgorithm": "SHA2-256", "Phase1DHGroup": 14,
        "Phase2EncryptionAlgorithm": "AES128-GCM-16", "IkeVersion": "ikev2", "ProvisioningStatus": "available"}

    # the static route propagates into the VPC's route table, and traffic flows
    assert propagated_routes(ec2) == [{"DestinationCidrBlock": topo.onprem_cidr, "GatewayId": vgw_id,
                                       "Origin": "EnableVgwRoutePropagation", "State": "active"}]
    assert ping(lab, topo.vpc, topo.onprem_ip) and ping(lab, topo.onprem, topo.vpc_ip)
    # propagation off: the VPC's table loses the route (traffic from the VPC stops), vgw keeps it
    ec2.disable_vgw_route_propagation(RouteTableId=rtb, GatewayId=vgw_id)
    assert propagated_routes(ec2) == [] and "PropagatingVgws" not in ec2.describe_route_tables()["RouteTables"][0]
    assert f"unreachable {topo.onprem_cidr}" in vgw_routes(lab, topo.vgw, "190")
    assert topo.onprem_cidr in vgw_routes(lab, topo.vgw)
    assert not ping(lab, topo.vpc, topo.onprem_ip, count=2)
    ec2.enable_vgw_route_propagation(RouteTableId=rtb, GatewayId=vgw_id)
    assert ping(lab, topo.vpc, topo.onprem_ip)

    # one tunnel's options: that tunnel alone is replaced, the other keeps its SAs
    before = child_spis(vgw)
    changed = ec2.modify_vpn_tunnel_options(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ips[0],
                                            TunnelOptions={"DPDTimeoutSeconds": 40})["VpnConnection"]
    assert changed["State"] == "modifying"
    wait_replaced(vgw, before, ips[0])
    assert child_spis(vgw)[ips[1]] == before[ips[1]]
    options = wait_state(ec2, vpn_id, "available")["Options"]["TunnelOptions"]
    # tunnel 2's DPD timeout is left to AWS's default: applied, not echoed (docs/api.md)
    assert [o.get("DpdTimeoutSeconds") for o in options] == [40, None]
    wait_telemetry(ec2, vpn_id, up(), what="UP after the replacement")

    # the connection's options: both tunnels replaced, one at a time, the connection modifying meanwhile
    before = child_spis(vgw)
    ec2.modify_vpn_connection_options(VpnConnectionId=vpn_id, LocalIpv4NetworkCidr="172.16.0.0/16")
    time.sleep(2.5)     # past the 2 s every modification shows
    assert ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0][
        "State"] == "modifying"
    for ip in ips:
        wait_replaced(vgw, before, ip)
    wait_state(ec2, vpn_id, "available", timeout=30)
    lines = [line for line in vgw.log_text().splitlines() if "endpoint replacement of tunnel" in line][-2:]
    assert [ip for line in lines for ip in ips if f"tunnel {ip}:" in line] == ips, lines
    wait_telemetry(ec2, vpn_id, up(), what="UP after both replacements")

    # a restart keeps every object; the tunnels come back
    vgw.stop()
    assert not set(ips) & host_addresses(lab, topo.vgw)
    vgw.start()
    again = ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]
    assert again["State"] == "available" and again["Options"]["LocalIpv4NetworkCidr"] == "172.16.0.0/16"
    assert [r["DestinationCidrBlock"] for r in again["Routes"]] == [topo.onprem_cidr]
    assert again["CustomerGatewayConfiguration"] == described["CustomerGatewayConfiguration"]
    assert ec2.describe_route_tables()["RouteTables"][0]["PropagatingVgws"] == [{"GatewayId": vgw_id}]
    assert set(ips) <= host_addresses(lab, topo.vgw)
    # the customer gateway reconnects by itself: vgw's DELETE at exit made it initiate
    # again (close_action start), and its retransmissions reach the new vgw
    wait_telemetry(ec2, vpn_id, up(routes=1), timeout=60, what="UP after the restart")
    assert ping(lab, topo.vpc, topo.onprem_ip)

    # delete: tunnels, host addresses and routes go
    ec2.delete_vpn_connection(VpnConnectionId=vpn_id)
    wait_until(lambda: not vgw.status(), 15, 0.2, "no tunnel left")
    assert not set(ips) & host_addresses(lab, topo.vgw)
    assert vgw_routes(lab, topo.vgw) == "" and vgw_routes(lab, topo.vgw, "190") == ""
    assert propagated_routes(ec2) == []
    assert wait_state(ec2, vpn_id, "deleted")["VgwTelemetry"]


def test_dynamic_connection_life_with_boto3(bgp_lab):
    lab = bgp_lab
    topo = topology(lab)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(api_config(vgw))
    vgw.start()
    ec2 = Ec2(topo.vgw)
    try:
        # ASNs other than AWS's defaults, so a CGW not configured from the API would fail
        cgw_id, vgw_id, rtb = make_gateways(ec2, topo, asn=65010, amazon_asn=64700)
        vpn_id = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id,
                                           VpnGatewayId=vgw_id)["VpnConnection"]["VpnConnectionId"]
        ec2.enable_vgw_route_propagation(RouteTableId=rtb, GatewayId=vgw_id)
        described = wait_state(ec2, vpn_id, "available")
        assert described["Options"]["StaticRoutesOnly"] is False
        node, vgw_asn = node_from_xml(described["CustomerGatewayConfiguration"], "cgw", topo, [topo.onprem_cidr])
        assert (node.asn, vgw_asn) == (65010, 64700)
        start_cgw(lab, node, close_action="start")
        speaker = cgw_speaker(lab, node, "frr", amazon_side_asn=vgw_asn).start()
        bring_up_cgw(node)
        wait_telemetry(ec2, vpn_id, up("1 BGP ROUTES", 1), timeout=60, what="UP with 1 BGP route")
        assert propagated_routes(ec2) == [{"DestinationCidrBlock": topo.onprem_cidr, "GatewayId": vgw_id,
                                           "Origin": "EnableVgwRoutePropagation", "State": "active"}]
        assert ping(lab, topo.vpc, topo.onprem_ip)

        # modify the primary tunnel: its MED goes to 200 while its SAs still stand, then it is replaced
        tunnels = {t["outside_ip"]: t for t in vgw.status()}
        primary = next(ip for ip, t in tunnels.items() if t["primary"])
        other = next(ip for ip in tunnels if ip != primary)
        inside = {t.outside_ip: t.vgw_inside_ip for t in node.tunnels}
        paths = speaker.wait_routes(VPC_PREFIX, lambda ps: len(ps) == 2, timeout=30)
        assert {p.next_hop: p.med for p in paths} == {inside[primary]: 100, inside[other]: 200}
        before = child_spis(vgw)
        ec2.modify_vpn_tunnel_options(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=primary,
                                      TunnelOptions={"DPDTimeoutSeconds": 45})
        seen = {}

        def med_moved_first() -> bool:
            meds = {p.next_hop: p.med for p in speaker.routes(VPC_PREFIX)}
            seen["spis"] = child_spis(vgw)[primary]
            return meds.get(inside[primary]) == 200 and meds.get(inside[other]) == 100
        wait_until(med_moved_first, 10, 0.1, "the MEDs moved before the replacement")
        assert seen["spis"] == before[primary], "the tunnel was replaced before its MED was raised"
        wait_replaced(vgw, before, primary, timeout=60)
        assert child_spis(vgw)[other] == before[other]
        wait_telemetry(ec2, vpn_id, up("1 BGP ROUTES", 1), timeout=60, what="both UP again")
        assert {t["outside_ip"]: t["primary"] for t in vgw.status()}[other]

        # delete: sessions, tunnels, addresses and the propagated route go
        ec2.delete_vpn_connection(VpnConnectionId=vpn_id)
        wait_until(lambda: not vgw.status(), 15, 0.2, "no tunnel left")
        assert not {t.outside_ip for t in node.tunnels} & host_addresses(lab, topo.vgw)
        assert vgw_routes(lab, topo.vgw) == "" and propagated_routes(ec2) == []
    finally:
        ec2.close()


def test_short_life_with_the_aws_cli(lab):
    require_tool("aws", "awscli (pip)")
    topo = topology(lab)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(api_config(vgw))
    vgw.start()

    def aws(*args: str) -> dict:
        out = aws_cli(lab, topo.vgw, *args).stdout
        return json.loads(out) if out.strip() else {}

    cgw = aws("create-customer-gateway", "--type", "ipsec.1", "--bgp-asn", "65000", "--ip-address",
              topo.cgw_wan_ip)["CustomerGateway"]["CustomerGatewayId"]
    gateway = aws("create-vpn-gateway", "--type", "ipsec.1")["VpnGateway"]["VpnGatewayId"]
    vpc = aws("describe-vpcs")["Vpcs"][0]["VpcId"]
    aws("attach-vpn-gateway", "--vpn-gateway-id", gateway, "--vpc-id", vpc)
    vpn = aws("create-vpn-connection", "--type", "ipsec.1", "--customer-gateway-id", cgw, "--vpn-gateway-id",
              gateway, "--options", "StaticRoutesOnly=true")["VpnConnection"]["VpnConnectionId"]
    aws("create-vpn-connection-route", "--vpn-connection-id", vpn, "--destination-cidr-block", topo.onprem_cidr)
    rtb = aws("describe-route-tables", "--filters", f"Name=vpc-id,Values={vpc}")["RouteTables"][0]["RouteTableId"]
    aws("enable-vgw-route-propagation", "--route-table-id", rtb, "--gateway-id", gateway)
    aws_cli(lab, topo.vgw, "wait", "vpn-connection-available", "--vpn-connection-ids", vpn)
    xml = aws("describe-vpn-connections", "--vpn-connection-ids", vpn, "--query",
              "VpnConnections[0].CustomerGatewayConfiguration")
    node, _ = node_from_xml(xml, "cgw", topo, [topo.onprem_cidr])
    start_cgw(lab, node)
    bring_up_cgw(node)

    def both_up() -> bool:
        tel = aws("describe-vpn-connections", "--vpn-connection-ids", vpn)["VpnConnections"][0]["VgwTelemetry"]
        return [t["Status"] for t in tel] == ["UP", "UP"]
    wait_until(both_up, 30, 1, "VgwTelemetry UP from the CLI")
    assert ping(lab, topo.onprem, topo.vpc_ip)
    aws("delete-vpn-connection", "--vpn-connection-id", vpn)
    aws_cli(lab, topo.vgw, "wait", "vpn-connection-deleted", "--vpn-connection-ids", vpn)
    assert not vgw.status()
    failed = aws_cli(lab, topo.vgw, "describe-vpn-connections", "--vpn-connection-ids", "vpn-0000000000000000f",
                     check=False)
    assert failed.returncode != 0 and "InvalidVpnConnectionID.NotFound" in failed.stderr


def test_maintenance_rehearsal(api_lab):
    """Lifecycle control on tunnel 1: a maintenance waits, ReplaceVpnTunnel applies
    it; another is applied by its deadline; tunnel 2 (no lifecycle control) at once."""
    lab, topo, vgw, ec2 = api_lab
    cgw_id, vgw_id, _ = make_gateways(ec2, topo)
    vpn_id = ec2.create_vpn_connection(
        Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
        Options={"StaticRoutesOnly": True, "TunnelOptions": [{"EnableTunnelLifecycleControl": True}, {}]},
    )["VpnConnection"]["VpnConnectionId"]
    described = wait_state(ec2, vpn_id, "available")
    node, _ = node_from_xml(described["CustomerGatewayConfiguration"], "cgw", topo, [topo.onprem_cidr])
    ip1, ip2 = [t.outside_ip for t in node.tunnels]
    start_cgw(lab, node, close_action="start")
    bring_up_cgw(node, vgw)

    def details(ip: str) -> dict:
        return ec2.get_vpn_tunnel_replacement_status(VpnConnectionId=vpn_id,
                                                     VpnTunnelOutsideIpAddress=ip)["MaintenanceDetails"]

    out = vgw.cli("maintenance", "schedule", vpn_id, "--tunnel", ip1, "--apply-after", "1h").stdout
    assert "pending" in out, out
    pending = details(ip1)
    assert pending["PendingMaintenance"] == "Tunnel endpoint replacement"
    assert 3500 < pending["MaintenanceAutoAppliedAfter"].timestamp() - time.time() <= 3600
    rows = json.loads(vgw.cli("maintenance", "status", "--json").stdout)["maintenance"]
    assert [(r["outside_ip"], r["lifecycle_control"], bool(r["pending"])) for r in rows] == [
        (ip1, True, True), (ip2, False, False)]
    before = child_spis(vgw)
    time.sleep(1.5)
    assert child_spis(vgw) == before          # pending: nothing replaced yet
    assert ec2.replace_vpn_tunnel(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ip1,
                                  ApplyPendingMaintenance=True)["Return"] is True
    wait_replaced(vgw, before, ip1)
    assert child_spis(vgw)[ip2] == before[ip2]
    assert "PendingMaintenance" not in details(ip1) and "LastMaintenanceApplied" in details(ip1)
    assert ec2.replace_vpn_tunnel(VpnConnectionId=vpn_id, VpnTunnelOutsideIpAddress=ip1,
                                  ApplyPendingMaintenance=True)["Return"] is False   # nothing pending now

    # by the deadline
    wait_telemetry(ec2, vpn_id, up(), what="UP again")
    before = child_spis(vgw)
    vgw.cli("maintenance", "schedule", vpn_id, "--tunnel", ip1, "--apply-after", "3s")
    assert details(ip1)["PendingMaintenance"]
    wait_replaced(vgw, before, ip1, timeout=30)
    assert "PendingMaintenance" not in details(ip1)
    assert "deadline passed" in vgw.log_text()

    # no lifecycle control: applied at once
    wait_telemetry(ec2, vpn_id, up(), what="UP again")
    before = child_spis(vgw)
    out = vgw.cli("maintenance", "schedule", vpn_id, "--tunnel", ip2).stdout
    assert "applied" in out, out
    wait_replaced(vgw, before, ip2)
    bad = vgw.cli("maintenance", "schedule", "no-such-connection", check=False)
    assert bad.returncode != 0 and "no connection" in bad.stderr


def test_terraform_sequence_against_the_running_gateway(api_lab):
    """tests/unit/daemon/api/terraform.py's replay of the aws provider's calls, on
    real time against `vgw run`: the connection's tunnels run while it exists."""
    lab, topo, vgw, ec2 = api_lab
    seen: dict[str, list] = {}

    def check_running(vpn_id: str, ips: list[str]) -> None:
        seen["tunnels"] = sorted(t["outside_ip"] for t in vgw.status())
        seen["ips"] = sorted(ips)
        seen["addresses"] = set(ips) <= host_addresses(lab, topo.vgw)

    ec2.run(lambda client: replay(client, RealTime(), on_available=check_running), timeout=240)
    assert seen["tunnels"] == seen["ips"] and seen["addresses"]
    assert vgw.status() == [] and not set(seen["ips"]) & host_addresses(lab, topo.vgw)


class RealTime:
    """The replay's waits on the wall clock, Terraform's 10 s polls shortened to 1 s."""

    def wait(self, refresh, pending, target, delay=10.0, poll=10.0, timeout=600.0):
        deadline = time.monotonic() + 60
        time.sleep(min(delay, 1.0))
        while time.monotonic() < deadline:
            state = refresh()
            if state in target or (state is None and not target):
                return state
            assert state in pending, f"unexpected state {state} (waiting for {target or 'gone'})"
            time.sleep(min(poll, 1.0))
        raise AssertionError("timed out")

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.mark.alone
def test_an_api_flood_costs_the_tunnel_no_ping(api_lab):
    """docs/api.md's limits at work: 64 clients at once (twice the cap) sending
    DescribeVpnConnections, bodies over 1 MB and requests that stop half-way, for
    10 s, while a ping crosses the tunnel every 50 ms: not one is lost, and the
    endpoint answers afterwards."""

    lab, topo, vgw, ec2 = api_lab
    cgw_id, vgw_id, rtb = make_gateways(ec2, topo)
    vpn_id = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                       Options={"StaticRoutesOnly": True})["VpnConnection"]["VpnConnectionId"]
    ec2.create_vpn_connection_route(VpnConnectionId=vpn_id, DestinationCidrBlock=topo.onprem_cidr)
    ec2.enable_vgw_route_propagation(RouteTableId=rtb, GatewayId=vgw_id)
    described = wait_state(ec2, vpn_id, "available")
    node, _ = node_from_xml(described["CustomerGatewayConfiguration"], "cgw", topo, [topo.onprem_cidr])
    start_cgw(lab, node)
    bring_up_cgw(node, vgw)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    pinger = BackgroundPing(lab, topo.vpc, topo.onprem_ip, interval=0.05, duration=12)
    counts = flood(topo.vgw, seconds=10, clients=64)
    sent, received = pinger.finish()
    print(f"API flood: {counts}; pings sent {sent}, answered {received}")
    assert sent == received, f"lost {sent - received} of {sent} pings during the API flood ({counts})"
    assert counts["answered"] > 100 and counts["busy"] > 0, counts     # past the 32-client cap
    assert oversize_answer(topo.vgw).startswith(b"HTTP/1.1 413 ")
    assert ec2.describe_vpn_connections(VpnConnectionIds=[vpn_id])["VpnConnections"][0]["State"] == "available"
    assert re.search(r"UP", vgw.cli("status").stdout)


def test_yaml_and_api_connections_side_by_side(api_lab):
    """A YAML connection beside an API one: both in `vgw status` with their source,
    the YAML one rehearses maintenance too, and a YAML file that names the API's
    connection is refused, at a reload (the running config stays) and at start (exit 2)."""
    lab, topo, vgw, ec2 = api_lab
    yaml_ips = topo.vgw_outside_ips
    entry = connection_yaml("yaml-lab", topo.cgw_wan_ip, [topo.onprem_cidr], [
        tunnel_yaml(yaml_ips[0], "169.254.10.0/30", "example_psk_yaml_lab_1", enable_tunnel_lifecycle_control=True),
        tunnel_yaml(yaml_ips[1], "169.254.11.0/30", "example_psk_yaml_lab_2")])
    vgw.write_config(api_config(vgw) + "connections:\n" + textwrap.indent(entry, "  ") + "\n")
    vgw.reload()
    vgw.wait_log("configuration reloaded")
    cgw_id, vgw_id, _ = make_gateways(ec2, topo)
    vpn_id = ec2.create_vpn_connection(Type="ipsec.1", CustomerGatewayId=cgw_id, VpnGatewayId=vgw_id,
                                       Options={"StaticRoutesOnly": True})["VpnConnection"]["VpnConnectionId"]
    sources = {t["outside_ip"]: (t["connection"], t["source"]) for t in vgw.status()}
    assert [sources[ip] for ip in yaml_ips] == [("yaml-lab", "yaml")] * 2
    assert sorted(v for v in sources.values() if v[1] == "api") == [(vpn_id, "api")] * 2

    out = vgw.cli("maintenance", "schedule", "yaml-lab", "--apply-after", "1h").stdout
    assert f"{yaml_ips[1]}: maintenance applied" in out and f"{yaml_ips[0]}: maintenance pending" in out, out
    vgw.wait_log(f"endpoint replacement of tunnel {yaml_ips[1]}")
    rows = {r["outside_ip"]: r for r in json.loads(vgw.cli("maintenance", "status", "--json").stdout)["maintenance"]}
    assert rows[yaml_ips[0]]["pending"] and rows[yaml_ips[0]]["source"] == "yaml" and rows[yaml_ips[1]]["last_applied"]
    assert f"{yaml_ips[0]}: maintenance applied" in vgw.cli("maintenance", "apply", "yaml-lab").stdout
    vgw.wait_log(f"endpoint replacement of tunnel {yaml_ips[0]}")

    taken = entry.replace("yaml-lab", vpn_id)
    vgw.write_config(api_config(vgw) + "connections:\n" + textwrap.indent(taken, "  ") + "\n")
    vgw.reload()
    vgw.wait_log("cannot be edited in YAML")
    assert {t["connection"] for t in vgw.status()} == {"yaml-lab", vpn_id}
    vgw.stop()
    refused = lab.run(topo.vgw, sys.executable, "-m", "daemon", "run", "--config", vgw.config_path, env=vgw.env,
                      check=False, timeout=30)
    assert refused.returncode == 2, refused.stderr
    assert "connections[0].name" in refused.stderr and "cannot be edited in YAML" in refused.stderr
