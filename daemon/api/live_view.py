"""The GatewayView over the running gateway (daemon/api/view.py has the interface).

Everything here reads the gateway's memory on the event loop's thread: the
Tunnel objects (VgwTelemetry, docs/aws.md §5.2), their IKE and CHILD SAs
(GetActiveVpnTunnelStatus, in the API's spellings, which are ikecore's), the
VPC route table (daemon/routing) and the YAML config. What the API changes goes
to daemon/api/host.py, which applies it to the gateway.
"""

from __future__ import annotations

from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

from .view import ActiveTunnelStatus, ConnectionChange, TunnelTelemetry, VpcRoute

if TYPE_CHECKING:                      # the gateway and the host import this module, not the reverse
    from ..gateway import Gateway
    from .host import ApiHost


class LiveGatewayView:
    def __init__(self, gw: "Gateway", host: "ApiHost"):
        self.gw, self.host = gw, host

    def telemetry(self, outside_ip: IPv4Address) -> TunnelTelemetry | None:
        tunnel = self.gw.tunnels.get(str(outside_ip))
        if tunnel is None:
            return None
        bgp = self.gw.bgp.status(tunnel.id) or {}
        accepted = bgp.get("prefixes", {}).get("accepted", 0) if tunnel.conn.dynamic else len(
            tunnel.conn.static_routes)
        # AWS's messages only (§5.2): an operator's `vgw tunnel down` shows as IPsec down
        message = "IPSEC IS DOWN" if tunnel.admin_down else tunnel.status_message(accepted)
        return TunnelTelemetry("UP" if tunnel.up else "DOWN", message, accepted if tunnel.up else 0,
                               datetime.fromtimestamp(tunnel.last_status_change, timezone.utc))

    def active_tunnel_status(self, outside_ip: IPv4Address) -> ActiveTunnelStatus | None:
        tunnel = self.gw.tunnels.get(str(outside_ip))
        if tunnel is None:
            return None
        core = tunnel.ike_endpoint.status()
        ike, children = core["ike"], core["children"]
        if ike is None or not tunnel.ipsec_up:
            return None
        child = children[-1] if children else {}
        return ActiveTunnelStatus(
            phase1_encryption_algorithm=ike["encryption"], phase1_integrity_algorithm=ike["integrity"],
            phase1_dh_group=ike["dh_group"], phase2_encryption_algorithm=child.get("encryption"),
            phase2_integrity_algorithm=child.get("integrity"), phase2_dh_group=child.get("dh_group"),
            ike_version="ikev2")   # vgw speaks IKEv2 only (docs/api.md)

    def vpc_routes(self) -> list[VpcRoute]:
        return [VpcRoute(prefix, route.path.connection, "active" if route.tunnel else "blackhole")
                for prefix, route in sorted(self.gw.vpc_table.routes.items(),
                                            key=lambda kv: (kv[0].network_address, kv[0].prefixlen))]

    def reserved_inside_cidrs(self) -> set[IPv4Network]:
        return {t.inside_cidr for _, t in self.gw.file_config.all_tunnels()}

    def reserved_outside_ips(self) -> set[IPv4Address]:
        return {t.outside_ip for _, t in self.gw.file_config.all_tunnels()}

    def connection_changed(self, change: ConnectionChange) -> None:
        self.host.connection_changed(change)

    def route_propagation_changed(self, vpn_gateway_id: str, enabled: bool) -> None:
        self.host.route_propagation_changed(vpn_gateway_id, enabled)

    def replacing(self, connection_id: str) -> bool:
        return self.gw.replacer.busy(connection_id)
