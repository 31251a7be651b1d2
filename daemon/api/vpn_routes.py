"""Create/DeleteVpnConnectionRoute: a static connection's routes to the customer side.

A route is pending, then available; deleting, then deleted (EC2 VpnStaticRoute;
Terraform's aws_vpn_connection_route waits 15 s for each). Besides AWS's rules
(a valid IPv4 CIDR, 100 routes per connection, docs/aws.md §4.1), vgw refuses
the routes its config refuses (daemon/config/gateway.py): a default route (it would
carry vgw's own IKE/ESP packets into the tunnel), one inside the VPC, one that
contains the customer gateway's address, one outside the connection's local
network CIDR. Adding or removing a route replaces no tunnel.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from daemon.config import MAX_STATIC_ROUTES

from .connections import announce, entry, load
from .context import Context
from .errors import ApiError, bad_value, invalid_value
from .tunnel_options import validate_connection


def _cidr(text: str) -> IPv4Network:
    try:
        return IPv4Network(text)
    except ValueError:
        raise bad_value(text, "DestinationCidrBlock", "It must be an IPv4 CIDR such as 172.16.0.0/16.") from None


def _check_route(ctx: Context, record, route: IPv4Network) -> None:
    if route.prefixlen == 0:
        raise bad_value(route, "DestinationCidrBlock", "vgw installs static routes in the host's routing table;"
                        " a default route would carry its own IKE/ESP packets into the tunnel.")
    for vpc_cidr in (ctx.vpc.cidrs if ctx.vpc else ()):
        if route.subnet_of(vpc_cidr):
            raise bad_value(route, "DestinationCidrBlock", f"It is inside the VPC CIDR {vpc_cidr}.")
    cgw_ip = record.customer_gateway["ip_address"]
    if cgw_ip and IPv4Address(cgw_ip) in route:
        raise bad_value(route, "DestinationCidrBlock", f"It contains the customer gateway's address {cgw_ip};"
                        " vgw's packets to it would be routed into the tunnel.")


def create_vpn_connection_route(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = load(ctx, params["VpnConnectionId"])
    if ctx.state(record.row) in ("deleting", "deleted"):
        raise ApiError("IncorrectState", f"The VPN connection {record.id} is {ctx.state(record.row)}")
    if not record.row["static_routes_only"]:
        raise invalid_value(f"The VPN connection {record.id} uses BGP (StaticRoutesOnly is false);"
                            " static routes are for static connections")
    route = _cidr(params["DestinationCidrBlock"])
    _check_route(ctx, record, route)
    live = [r for r in record.routes if ctx.state(r) in ("pending", "available")]
    if str(route) in {r["cidr"] for r in live}:
        raise ApiError("RouteAlreadyExists", f"The route {route} already exists on {record.id}")
    if len(live) >= MAX_STATIC_ROUTES:
        raise ApiError("RouteLimitExceeded", f"The VPN connection {record.id} has {MAX_STATIC_ROUTES} static"
                       " routes, AWS's limit")
    ctx.db.execute("INSERT OR REPLACE INTO vpn_routes VALUES (?, ?, 'pending', ?)", (record.id, str(route), ctx.now))
    validate_connection(entry(ctx, load(ctx, record.id)), lambda p: f"TunnelOptions.{p + 1}.")
    announce(ctx, "modified", record.id)
    return {}


def delete_vpn_connection_route(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = load(ctx, params["VpnConnectionId"])
    route = _cidr(params["DestinationCidrBlock"])
    if not any(r["cidr"] == str(route) and ctx.state(r) in ("pending", "available") for r in record.routes):
        raise ApiError("InvalidRoute.NotFound", f"The route {route} does not exist on {record.id}")
    ctx.db.execute("UPDATE vpn_routes SET state = 'deleting', since = ? WHERE connection_id = ? AND cidr = ?",
                   (ctx.now, record.id, str(route)))
    announce(ctx, "modified", record.id)
    return {}
