"""The gateway's one VPC and its main route table: DescribeVpcs,
DescribeRouteTables, Enable/DisableVgwRoutePropagation.

The VPC is the config's `vpc` (ids derived from its CIDRs, daemon/api/context.py).
Its route table shows the local routes, then the routes through VPN connections
that the gateway reports (GatewayView.vpc_routes): an API connection's routes
appear with origin EnableVgwRoutePropagation while propagation of its virtual
private gateway is on (AWS propagates a VGW's static and BGP routes into a route
table only then); a YAML connection's routes are routes the operator configured
(origin CreateRoute) through the gateway `vgw cgw-config` names.
"""

from __future__ import annotations

from typing import Any

from daemon.cgwconfig import stable_id

from . import filters
from .context import Context
from .errors import ApiError

OWNER_ID = "000000000000"  # vgw has no AWS account
_VPC_FILTERS = ("cidr", "cidr-block-association.cidr-block", "cidr-block-association.state", "is-default",
                "state", "vpc-id", "owner-id")
_ROUTE_TABLE_FILTERS = ("route-table-id", "vpc-id", "association.main", "route.destination-cidr-block",
                        "route.gateway-id", "route.origin", "route.state", "propagating-vgw.gateway-id")


def _vpc(ctx: Context) -> dict[str, Any]:
    vpc = ctx.vpc
    return {
        "VpcId": vpc.vpc_id, "State": "available", "CidrBlock": str(vpc.cidrs[0]), "OwnerId": OWNER_ID,
        "InstanceTenancy": "default", "IsDefault": False, "DhcpOptionsId": "default",
        "CidrBlockAssociationSet": [
            {"AssociationId": stable_id("vpc-cidr-assoc", str(cidr)), "CidrBlock": str(cidr),
             "CidrBlockState": {"State": "associated"}} for cidr in vpc.cidrs],
        "Tags": ctx.tag_list(vpc.vpc_id),
    }


def describe_vpcs(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    filters.check_names(params.get("Filters"), _VPC_FILTERS)
    for vpc_id in params.get("VpcIds") or []:
        ctx.check_vpc(vpc_id)
    if ctx.vpc is None:
        return {"Vpcs": []}
    cidrs = [str(c) for c in ctx.vpc.cidrs]
    attributes = {"cidr": cidrs[:1], "cidr-block-association.cidr-block": cidrs,
                  "cidr-block-association.state": ["associated"], "is-default": ["false"], "state": ["available"],
                  "vpc-id": [ctx.vpc.vpc_id], "owner-id": [OWNER_ID]}
    if not filters.matches(params.get("Filters"), attributes, ctx.tags(ctx.vpc.vpc_id)):
        return {"Vpcs": []}
    return {"Vpcs": [_vpc(ctx)]}


def propagating(ctx: Context) -> list[str]:
    rows = ctx.db.execute("SELECT vpn_gateway_id FROM route_propagation WHERE route_table_id = ? ORDER BY 1",
                          (ctx.vpc.route_table_id,))
    return [row[0] for row in rows]


def _routes(ctx: Context, propagating: list[str]) -> list[dict[str, Any]]:
    routes = [{"DestinationCidrBlock": str(c), "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}
              for c in ctx.vpc.cidrs]
    gateway_of = {row["id"]: row["vpn_gateway_id"] for row in ctx.db.execute("SELECT * FROM vpn_connections")
                  if ctx.live(row)}
    for route in ctx.view.vpc_routes():
        if route.connection in gateway_of:
            gateway = gateway_of[route.connection]
            if gateway not in propagating:
                continue
            origin = "EnableVgwRoutePropagation"
        else:
            gateway, origin = ctx.vpc.yaml_vpn_gateway_id, "CreateRoute"
        routes.append({"DestinationCidrBlock": str(route.destination), "GatewayId": gateway, "Origin": origin,
                       "State": route.state})
    return routes


def describe_route_tables(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    filters.check_names(params.get("Filters"), _ROUTE_TABLE_FILTERS)
    for table_id in params.get("RouteTableIds") or []:
        ctx.check_route_table(table_id)
    if ctx.vpc is None:
        return {"RouteTables": []}
    table_id = ctx.vpc.route_table_id
    gateways = propagating(ctx)
    routes = _routes(ctx, gateways)
    attributes = {
        "route-table-id": [table_id], "vpc-id": [ctx.vpc.vpc_id], "association.main": ["true"],
        "route.destination-cidr-block": [r["DestinationCidrBlock"] for r in routes],
        "route.gateway-id": [r["GatewayId"] for r in routes], "route.origin": [r["Origin"] for r in routes],
        "route.state": [r["State"] for r in routes], "propagating-vgw.gateway-id": gateways,
    }
    if not filters.matches(params.get("Filters"), attributes, ctx.tags(table_id)):
        return {"RouteTables": []}
    association = {"Main": True, "RouteTableAssociationId": stable_id("rtbassoc", table_id),
                   "RouteTableId": table_id, "AssociationState": {"State": "associated"}}
    return {"RouteTables": [{
        "RouteTableId": table_id, "VpcId": ctx.vpc.vpc_id, "OwnerId": OWNER_ID, "Associations": [association],
        "PropagatingVgws": [{"GatewayId": g} for g in gateways] or None, "Routes": routes,
        "Tags": ctx.tag_list(table_id),
    }]}


def _propagation(ctx: Context, params: dict[str, Any], enable: bool) -> dict[str, Any]:
    table_id, gateway_id = params["RouteTableId"], params["GatewayId"]
    ctx.check_route_table(table_id)
    ctx.row("vpn_gateways", "InvalidVpnGatewayID", gateway_id)
    if enable:
        attached = ctx.db.execute("SELECT * FROM vpc_attachments WHERE vpn_gateway_id = ? AND vpc_id = ?",
                                  (gateway_id, ctx.vpc.vpc_id)).fetchone()
        if attached is None or ctx.state(attached) not in ("attaching", "attached"):
            raise ApiError("Gateway.NotAttached", f"resource {gateway_id} is not attached to network {ctx.vpc.vpc_id}")
        ctx.db.execute("INSERT OR IGNORE INTO route_propagation VALUES (?, ?)", (table_id, gateway_id))
    else:
        ctx.db.execute("DELETE FROM route_propagation WHERE route_table_id = ? AND vpn_gateway_id = ?",
                       (table_id, gateway_id))
    ctx.on_commit.append(lambda: ctx.view.route_propagation_changed(gateway_id, enable))
    return {}


def enable_vgw_route_propagation(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _propagation(ctx, params, True)


def disable_vgw_route_propagation(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return _propagation(ctx, params, False)
