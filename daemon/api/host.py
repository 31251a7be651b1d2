"""The EC2 API served by a running gateway: `vgw run` with an `api:` section.

The API's modules (service.py and below) keep objects in SQLite and know no
tunnel; this module is where they meet the gateway:

* the endpoint (ApiServer) on the gateway's event loop, and `advance` about once
  a second (maintenance whose deadline passed, daemon/api/tunnels.py);
* the API's connections, as ConnectionDefinitions, beside the YAML file's: the
  gateway runs `effective()`, the file's connections followed by the API's, and
  every change is applied as a reload is (daemon/reload.py), so an unchanged
  tunnel keeps its SAs and its BGP session whatever else changes;
* the outside addresses of API tunnels, on the host (daemon/api/addresses.py);
* the YAML may not take what the API holds: a YAML connection named as an API
  connection, or with one of its outside IPs or inside CIDRs, is refused
  (`conflicts`), at start (exit 2) as at a reload (the running config stays).

Changes to the `api:` section itself take effect after a restart: the endpoint,
its database and its pool stay as they started (a reload logs that).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..config import ConfigIssue, GatewayConfig
from .addresses import HostAddresses
from .errors import ApiError
from .live_view import LiveGatewayView
from .server import ApiServer
from .service import ApiService
from ..config.api import ApiConfig
from .store import DatabaseError
from .view import ConnectionChange, ConnectionDefinition

if TYPE_CHECKING:                      # the gateway imports this module, not the reverse
    from ..gateway import Gateway

log = logging.getLogger("vgw.api")

__all__ = ["ApiHost", "DatabaseError"]


class ApiHost:
    def __init__(self, gw: "Gateway", settings: ApiConfig, addresses: HostAddresses | None = None):
        self.gw = gw
        self.settings = settings
        self.view = LiveGatewayView(gw, self)
        self.service = ApiService(settings, self.view, gw.file_config.vpc_cidrs)   # DatabaseError
        self.server = ApiServer(self.service, settings)
        self.addresses = addresses
        now = time.time()
        self.definitions: dict[str, ConnectionDefinition] = {d.connection_id: d for d in
                                                             self.service.definitions(now)}
        self.propagating: set[str] = self.service.propagating_gateways(now)
        self.address: tuple[str, int] | None = None

    # --- the gateway's view of the API's connections ---------------------------------

    def effective(self, file_config: GatewayConfig) -> GatewayConfig:
        """What the gateway runs: the file's connections, then the API's (in creation order)."""
        api = [d.config for d in self.definitions.values()]
        return file_config.model_copy(update={"connections": [*file_config.connections, *api]})

    def owns(self, connection_name: str) -> ConnectionDefinition | None:
        return self.definitions.get(connection_name)

    def propagates(self, connection_name: str) -> bool:
        """Whether the connection's routes are in the VPC's route table: an API
        connection's only while its gateway's route propagation is on (AWS's
        EnableVgwRoutePropagation); a YAML connection's always (the operator's own routes)."""
        definition = self.definitions.get(connection_name)
        return definition is None or definition.vpn_gateway_id in self.propagating

    def conflicts(self, file_config: GatewayConfig) -> list[ConfigIssue]:
        """YAML entries that would take what an API connection holds."""
        ips = {ip: d.connection_id for d in self.definitions.values() for ip in d.outside_ips}
        cidrs = {t.inside_cidr: d.connection_id for d in self.definitions.values() for t in d.config.tunnels}
        issues = []
        for ci, connection in enumerate(file_config.connections):
            if connection.name in self.definitions:
                issues.append(ConfigIssue(f"connections[{ci}].name",
                                          f"{connection.name} is a VPN connection the EC2 API created"
                                          f" ({self.settings.database}); it cannot be edited in YAML: change it"
                                          " through the API (ModifyVpnTunnelOptions, ...) and give this entry"
                                          " another name"))
            for ti, tunnel in enumerate(connection.tunnels):
                where = f"connections[{ci}].tunnels[{ti}]"
                if tunnel.outside_ip in ips:
                    issues.append(ConfigIssue(f"{where}.outside_ip",
                                              f"{tunnel.outside_ip} is an outside IP of {ips[tunnel.outside_ip]},"
                                              " a connection of the EC2 API; give this tunnel another address"))
                if tunnel.inside_cidr in cidrs:
                    issues.append(ConfigIssue(f"{where}.inside_cidr",
                                              f"{tunnel.inside_cidr} is an inside CIDR of"
                                              f" {cidrs[tunnel.inside_cidr]}, a connection of the EC2 API; the"
                                              " inside /30 must be unique across the gateway (docs/aws.md §1.2)"))
        return issues

    # --- life --------------------------------------------------------------------------

    def add_addresses(self) -> None:
        """The outside addresses of every API connection, before their tunnels bind them."""
        if self.addresses is None:
            self.addresses = HostAddresses()
        for definition in self.definitions.values():
            for ip in definition.outside_ips:
                self.addresses.add(ip)

    async def start(self) -> None:
        self.address = await self.server.start()
        log.info("EC2 API listening on http://%s:%d (%d connection(s) in %s)", *self.address,
                 len(self.definitions), self.settings.database)

    def advance(self, now: float) -> None:
        """Maintenance whose deadline passed (the gateway's one-second timer)."""
        for connection_id, ip in self.service.advance(now):
            log.info("[%s] maintenance of tunnel %s applied: its deadline passed", connection_id, ip)

    async def close_server(self) -> None:
        """No request after this: SIGTERM closes the endpoint before the tunnels go."""
        await self.server.close()

    def close(self) -> None:
        """After the tunnels are gone: their addresses off the host, the database closed."""
        if self.addresses is not None:
            self.addresses.close()
        self.service.close()

    def reload(self, new: ApiConfig | None) -> None:
        if new != self.settings:
            log.warning("the api section changed: the EC2 API keeps its endpoint, database and pool until vgw"
                        " restarts")

    # --- what the API tells the gateway ------------------------------------------------

    def connection_changed(self, change: ConnectionChange) -> None:
        """One committed change (docs/api.md): applied to the gateway as a reload is."""
        definition = change.definition
        cid = definition.connection_id
        gw = self.gw
        if change.kind == "deleted":
            self.definitions.pop(cid, None)
            gw.replacer.cancel(cid)
            self._apply(f"[{cid}] deleted by the EC2 API")
            for ip in definition.outside_ips:
                self.addresses.remove(ip)
            return
        self.definitions[cid] = definition
        if change.kind == "created":
            for ip in definition.outside_ips:
                self.addresses.add(ip)
        if change.replace:
            # one tunnel at a time, the MED raised first (daemon/maintenance.py)
            gw.replacer.replace(cid, [str(ip) for ip in change.replace], modifying=change.kind == "modified")
        self._apply(f"[{cid}] {change.kind} by the EC2 API")

    def route_propagation_changed(self, vpn_gateway_id: str, enabled: bool) -> None:
        (self.propagating.add if enabled else self.propagating.discard)(vpn_gateway_id)
        self.gw.refresh_vpc_routes()

    def _apply(self, what: str) -> None:
        try:
            self.gw.apply(what=what)
        except Exception as exc:   # the API answered already; the gateway logs what it could not do
            log.error("%s, but the gateway could not apply it: %s", what, exc)

    # --- maintenance (`vgw maintenance`) -----------------------------------------------

    def schedule_maintenance(self, connection_id: str, outside_ip: str | None, apply_after: float,
                             now: float) -> list[str]:
        return self.service.schedule_maintenance(connection_id, outside_ip, apply_after, now)

    def apply_maintenance(self, connection_id: str, outside_ip: str | None, now: float) -> list[str]:
        """ReplaceVpnTunnel with ApplyPendingMaintenance, for one tunnel or each."""
        definition = self.definitions[connection_id]
        ips = [outside_ip] if outside_ip else [str(ip) for ip in definition.outside_ips]
        applied = []
        for ip in ips:
            try:
                result = self.service.run("ReplaceVpnTunnel", {"VpnConnectionId": connection_id,
                                                               "VpnTunnelOutsideIpAddress": ip,
                                                               "ApplyPendingMaintenance": True}, now)
            except ApiError as exc:
                raise ValueError(exc.message) from None
            if result.get("Return"):
                applied.append(ip)
        return applied

    def maintenance(self, now: float) -> list[dict]:
        return self.service.maintenance(now)
