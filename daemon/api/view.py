"""The one interface between the EC2 API and the running gateway.

The API keeps its objects in SQLite and knows nothing of tunnels, sockets or
routes. What it needs from the gateway it asks a `GatewayView`: live telemetry
per tunnel (VgwTelemetry, docs/aws.md §5.2), the negotiated algorithms
(GetActiveVpnTunnelStatus), the VPC route table (DescribeRouteTables) and what
the YAML config already uses (inside /30s and outside IPs must stay unique
across the gateway, §1.2). What the gateway must do it is told through
`connection_changed`: a `ConnectionChange` carries the connection as a YAML
connection entry validated by the config's own `ConnectionConfig`, so API and
YAML connections take one code path into tunnels.

Calls happen on the event loop thread, inside request handling: they must be
quick and must not block (read the gateway's in-memory state; queue work).
`connection_changed` is called only after the database transaction committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Network
from typing import Literal, Protocol

from daemon.config import ConnectionConfig


@dataclass(frozen=True)
class TunnelTelemetry:
    """One tunnel's VgwTelemetry (docs/aws.md §5.2)."""

    status: Literal["UP", "DOWN"]
    status_message: str  # "IPSEC IS UP", "IPSEC IS DOWN", "2 BGP ROUTES"
    accepted_route_count: int
    last_status_change: datetime


@dataclass(frozen=True)
class ActiveTunnelStatus:
    """What the tunnel negotiated, in the EC2 API's spellings (AES128, SHA2-256, ikev2)."""

    phase1_encryption_algorithm: str | None = None
    phase2_encryption_algorithm: str | None = None
    phase1_integrity_algorithm: str | None = None
    phase2_integrity_algorithm: str | None = None
    phase1_dh_group: int | None = None
    phase2_dh_group: int | None = None
    ike_version: str | None = None


@dataclass(frozen=True)
class VpcRoute:
    """A route of the VPC's route table that points at a VPN connection.

    `connection` is an API connection's id (vpn-...) or a YAML connection's name;
    `state` is "blackhole" when no tunnel of the connection can carry it."""

    destination: IPv4Network
    connection: str
    state: Literal["active", "blackhole"] = "active"


@dataclass(frozen=True)
class ConnectionDefinition:
    """An API connection as the gateway runs it.

    `config` is the YAML connection entry (name = the connection id) validated by
    ConnectionConfig; the routing facts ride beside it so the gateway has them
    whichever config keys its ConnectionConfig knows."""

    connection_id: str
    vpn_gateway_id: str
    customer_gateway_id: str
    amazon_side_asn: int
    customer_gateway_asn: int
    static_routes_only: bool
    config: ConnectionConfig

    @property
    def outside_ips(self) -> tuple[IPv4Address, ...]:
        """The addresses the host must carry for this connection's tunnels."""
        return tuple(tunnel.outside_ip for tunnel in self.config.tunnels)


@dataclass(frozen=True)
class ConnectionChange:
    """What the gateway must do for one connection.

    created: build the tunnels (add the outside IPs to the host first).
    modified: take the new definition; rebuild the tunnels in `replace`, one at a
      time in that order, keeping their outside IPs (docs/aws.md §1.10); tunnels
      not listed keep running (static routes, SkipTunnelReplacement).
    replaced: rebuild the tunnels in `replace` (ReplaceVpnTunnel, maintenance).
    deleted: remove the tunnels, their routes and their outside IPs."""

    kind: Literal["created", "modified", "replaced", "deleted"]
    definition: ConnectionDefinition
    replace: tuple[IPv4Address, ...] = ()


class GatewayView(Protocol):
    def telemetry(self, outside_ip: IPv4Address) -> TunnelTelemetry | None:
        """The tunnel's live status, or None if the gateway does not run it (yet)."""

    def active_tunnel_status(self, outside_ip: IPv4Address) -> ActiveTunnelStatus | None:
        """What the tunnel's current IKE and CHILD SAs negotiated, or None when down."""

    def vpc_routes(self) -> list[VpcRoute]:
        """The VPC route table's routes through VPN connections (static and BGP)."""

    def reserved_inside_cidrs(self) -> set[IPv4Network]:
        """The inside /30s of the YAML config's tunnels."""

    def reserved_outside_ips(self) -> set[IPv4Address]:
        """The outside IPs of the YAML config's tunnels."""

    def connection_changed(self, change: ConnectionChange) -> None:
        """Build, rebuild or remove tunnels; called after the change is committed."""

    def route_propagation_changed(self, vpn_gateway_id: str, enabled: bool) -> None:
        """Enable/DisableVgwRoutePropagation on the VPC's route table."""

    def replacing(self, connection_id: str) -> bool:
        """A Modify*'s tunnel replacements are still under way (one tunnel at a time,
        docs/aws.md §1.10): the connection shows `modifying` until they are done."""


@dataclass
class InMemoryGatewayView:
    """A GatewayView without a gateway: tests set telemetry and routes, read changes."""

    telemetry_by_ip: dict[IPv4Address, TunnelTelemetry] = field(default_factory=dict)
    status_by_ip: dict[IPv4Address, ActiveTunnelStatus] = field(default_factory=dict)
    routes: list[VpcRoute] = field(default_factory=list)
    yaml_inside_cidrs: set[IPv4Network] = field(default_factory=set)
    yaml_outside_ips: set[IPv4Address] = field(default_factory=set)
    changes: list[ConnectionChange] = field(default_factory=list)
    propagation: dict[str, bool] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)

    def telemetry(self, outside_ip: IPv4Address) -> TunnelTelemetry | None:
        return self.telemetry_by_ip.get(outside_ip)

    def active_tunnel_status(self, outside_ip: IPv4Address) -> ActiveTunnelStatus | None:
        return self.status_by_ip.get(outside_ip)

    def vpc_routes(self) -> list[VpcRoute]:
        return list(self.routes)

    def reserved_inside_cidrs(self) -> set[IPv4Network]:
        return set(self.yaml_inside_cidrs)

    def reserved_outside_ips(self) -> set[IPv4Address]:
        return set(self.yaml_outside_ips)

    def connection_changed(self, change: ConnectionChange) -> None:
        self.changes.append(change)

    def route_propagation_changed(self, vpn_gateway_id: str, enabled: bool) -> None:
        self.propagation[vpn_gateway_id] = enabled

    def replacing(self, connection_id: str) -> bool:
        return connection_id in self.busy

    def set_up(self, outside_ip: IPv4Address, message: str = "IPSEC IS UP", routes: int = 0,
               at: datetime | None = None) -> None:
        """Test helper: mark a tunnel UP as the gateway would report it."""
        self.telemetry_by_ip[outside_ip] = TunnelTelemetry(
            "UP", message, routes, at or datetime.now(timezone.utc))
