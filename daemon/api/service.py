"""The EC2 API as a function: (Action, fields, now) -> (HTTP status, XML body).

Each request runs in one database transaction: it commits whole or not at all,
and what it must tell the gateway (GatewayView.connection_changed) is told only
after the commit. DryRun runs the action and rolls it back (EC2: DryRunOperation
when the request would have succeeded). No clock is read here: the server
passes `now` in, and `advance(now)` applies maintenance whose deadline passed.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

from . import (
    connections,
    customer_gateways,
    device_configs,
    modify,
    states,
    tags,
    tunnels,
    vpc,
    vpn_gateways,
    vpn_routes,
    wire,
)
from .context import Context, Vpc
from .errors import ApiError
from ..config.api import ApiConfig
from .store import Store
from .view import GatewayView

log = logging.getLogger("vgw.api")

Handler = Callable[[Context, dict[str, Any]], dict[str, Any]]

ACTIONS: dict[str, Handler] = {
    "CreateCustomerGateway": customer_gateways.create_customer_gateway,
    "DescribeCustomerGateways": customer_gateways.describe_customer_gateways,
    "DeleteCustomerGateway": customer_gateways.delete_customer_gateway,
    "CreateVpnGateway": vpn_gateways.create_vpn_gateway,
    "DescribeVpnGateways": vpn_gateways.describe_vpn_gateways,
    "AttachVpnGateway": vpn_gateways.attach_vpn_gateway,
    "DetachVpnGateway": vpn_gateways.detach_vpn_gateway,
    "DeleteVpnGateway": vpn_gateways.delete_vpn_gateway,
    "DescribeVpcs": vpc.describe_vpcs,
    "DescribeRouteTables": vpc.describe_route_tables,
    "EnableVgwRoutePropagation": vpc.enable_vgw_route_propagation,
    "DisableVgwRoutePropagation": vpc.disable_vgw_route_propagation,
    "CreateVpnConnection": connections.create_vpn_connection,
    "DescribeVpnConnections": connections.describe_vpn_connections,
    "DeleteVpnConnection": connections.delete_vpn_connection,
    "CreateVpnConnectionRoute": vpn_routes.create_vpn_connection_route,
    "DeleteVpnConnectionRoute": vpn_routes.delete_vpn_connection_route,
    "ModifyVpnConnection": modify.modify_vpn_connection,
    "ModifyVpnConnectionOptions": modify.modify_vpn_connection_options,
    "ModifyVpnTunnelOptions": modify.modify_vpn_tunnel_options,
    "CreateTags": tags.create_tags,
    "DeleteTags": tags.delete_tags,
    "DescribeTags": tags.describe_tags,
    "GetVpnConnectionDeviceTypes": device_configs.get_vpn_connection_device_types,
    "GetVpnConnectionDeviceSampleConfiguration": device_configs.get_vpn_connection_device_sample_configuration,
    "GetActiveVpnTunnelStatus": tunnels.get_active_vpn_tunnel_status,
    "ReplaceVpnTunnel": tunnels.replace_vpn_tunnel,
    "GetVpnTunnelReplacementStatus": tunnels.get_vpn_tunnel_replacement_status,
}

# Rows whose deleted state has been visible long enough (daemon/api/states.py).
_PURGEABLE = ("customer_gateways", "vpn_gateways", "vpn_connections")


def _handler(action: str) -> Handler:
    handler = ACTIONS.get(action)
    if handler is None:
        raise ApiError("UnsupportedOperation", f"vgw does not implement {action}; see docs/api.md for the"
                       " actions it supports")
    return handler


class _RollBack(Exception):
    pass


class ApiService:
    """The API's state and rules; one per gateway, used from the event loop thread."""

    def __init__(self, settings: ApiConfig, view: GatewayView, vpc_cidrs: list[IPv4Network] | None, *,
                 rng: random.Random | None = None, settle: float = states.SETTLE_SECONDS,
                 visible: float = states.DELETED_VISIBLE_SECONDS):
        self.settings = settings
        self.view = view
        self.vpc = Vpc(tuple(vpc_cidrs)) if vpc_cidrs else None
        self.rng = rng or random.SystemRandom()
        self.settle, self.visible = settle, visible
        self.store = Store(settings.database)
        wire.service_model()  # load botocore's model now, not in the first request

    def close(self) -> None:
        self.store.close()

    def _context(self, now: float) -> Context:
        return Context(self.store.db, now, self.view, self.settings, self.vpc, self.rng, self.settle, self.visible)

    def run(self, action: str, params: dict[str, Any], now: float, dry_run: bool = False) -> dict[str, Any]:
        """One action in one transaction; tells the gateway what changed once committed."""
        handler = _handler(action)
        ctx = self._context(now)
        try:
            with self.store.transaction():
                self._purge(ctx)
                result = handler(ctx, params)
                if dry_run:
                    raise _RollBack()
        except _RollBack:
            raise ApiError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.") from None
        self._announce(ctx)
        return result

    def _announce(self, ctx: Context) -> None:
        for callback in ctx.on_commit:
            try:
                callback()
            except Exception:  # the gateway's problem must not undo what the API answered
                log.exception("the gateway failed to take an API change")

    def _purge(self, ctx: Context) -> None:
        for table in _PURGEABLE:
            for row in ctx.db.execute(f"SELECT id, state, since FROM {table}").fetchall():
                if states.gone(row["state"], row["since"], ctx.now, ctx.settle, ctx.visible):
                    ctx.db.execute(f"DELETE FROM {table} WHERE id = ?", (row["id"],))
                    ctx.db.execute("DELETE FROM tags WHERE resource_id = ?", (row["id"],))
        for table in ("vpn_routes", "vpc_attachments"):
            for row in ctx.db.execute(f"SELECT rowid, state, since FROM {table}").fetchall():
                if states.gone(row["state"], row["since"], ctx.now, ctx.settle, ctx.visible):
                    ctx.db.execute(f"DELETE FROM {table} WHERE rowid = ?", (row["rowid"],))

    def handle(self, action: str | None, fields: list[tuple[str, str]], now: float) -> tuple[int, bytes]:
        """A whole request: the status and the XML body to answer it with."""
        request_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        try:
            if not action:
                raise ApiError("MissingAction", "The request must contain the parameter Action")
            wire.operation(action)  # InvalidAction for what EC2 does not have
            _handler(action)  # UnsupportedOperation for what vgw does not do
            params = wire.parse_request(action, fields)
            dry_run = bool(params.pop("DryRun", False))
            result = self.run(action, params, now, dry_run)
            return 200, wire.serialize_response(action, result, request_id)
        except ApiError as exc:
            return exc.status, wire.serialize_error(exc.code, exc.message, request_id)
        except Exception:
            log.exception("API request %s failed", action)
            return 500, wire.serialize_error("InternalError", "An internal error has occurred", request_id)

    # -- what the gateway and the CLI drive

    def advance(self, now: float) -> list[tuple[str, str]]:
        """Apply the maintenance whose deadline passed: (connection id, outside IP) each."""
        ctx = self._context(now)
        with self.store.transaction():
            done = tunnels.apply_due(ctx)
        self._announce(ctx)
        return done

    def schedule_maintenance(self, connection_id: str, outside_ip: str | None, apply_after: float,
                             now: float) -> list[str]:
        """`vgw maintenance schedule`: pending until applied or `apply_after` for tunnels
        with lifecycle control; applied at once to the others (returned)."""
        ctx = self._context(now)
        with self.store.transaction():
            applied = tunnels.schedule(ctx, connection_id, outside_ip, apply_after)
        self._announce(ctx)
        return applied

    def propagating_gateways(self, now: float) -> set[str]:
        """The virtual private gateways whose routes propagate into the VPC's route
        table (EnableVgwRoutePropagation)."""
        ctx = self._context(now)
        return set(vpc.propagating(ctx)) if ctx.vpc else set()

    def maintenance(self, now: float) -> list[dict]:
        """Every live tunnel's maintenance (`vgw maintenance status`)."""
        ctx = self._context(now)
        with self.store.transaction():
            return tunnels.maintenance_of(ctx)

    def definitions(self, now: float) -> list:
        """Every live API connection as the gateway runs it (for startup: rebuild them all)."""
        ctx = self._context(now)
        with self.store.transaction():
            return [connections.definition(ctx, record) for record in connections.live_records(ctx)
                    if ctx.state(record.row) not in ("deleting", "deleted")]
