"""ModifyVpnConnection, ModifyVpnConnectionOptions, ModifyVpnTunnelOptions.

Endpoint replacement as AWS does it (docs/aws.md §1.10): changing the target
gateway, the customer gateway or the connection options replaces both tunnels,
one at a time; changing a tunnel's options replaces that tunnel only; the
outside IPs stay. The connection shows `modifying` meanwhile (Terraform waits
modifying -> available). SkipTunnelReplacement applies when the change is only
EnableTunnelLifecycleControl (EC2 API ModifyVpnTunnelOptions).
"""

from __future__ import annotations

from typing import Any

from .connections import (
    MAX_CONNECTIONS_PER_GATEWAY,
    announce,
    check_asns,
    check_inside_cidr,
    count_on_gateway,
    describe,
    entry,
    find_tunnel,
    load,
    state_of,
    used_inside_cidrs,
)
from .context import Context
from .errors import ApiError, bad_value, incorrect_state, invalid_value
from .store import dumps, loads
from .tunnel_options import options_from_request, validate_connection


def _modifiable(ctx: Context, connection_id: str):
    record = load(ctx, connection_id)
    state = state_of(ctx, record)
    if state != "available":
        raise incorrect_state(f"The VPN connection {connection_id} is {state}; it can be modified when available")
    return record


def _set_modifying(ctx: Context, connection_id: str) -> None:
    ctx.db.execute("UPDATE vpn_connections SET state = 'modifying', since = ? WHERE id = ?", (ctx.now, connection_id))


def _replace_both(ctx: Context, connection_id: str) -> dict[str, Any]:
    """A connection-wide change: modifying, and both tunnels replaced (§1.10)."""
    _set_modifying(ctx, connection_id)
    record = load(ctx, connection_id)
    validate_connection(entry(ctx, record), lambda p: f"TunnelOptions.{p + 1}.")
    announce(ctx, "modified", record.id, tuple(t["outside_ip"] for t in record.tunnels))
    return {"VpnConnection": describe(ctx, record)}


def modify_vpn_connection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = _modifiable(ctx, params["VpnConnectionId"])
    if params.get("TransitGatewayId"):
        raise invalid_value("vgw emulates a virtual private gateway; TransitGatewayId is not supported")
    cgw_id = params.get("CustomerGatewayId") or record.row["customer_gateway_id"]
    vgw_id = params.get("VpnGatewayId") or record.row["vpn_gateway_id"]
    if (cgw_id, vgw_id) == (record.row["customer_gateway_id"], record.row["vpn_gateway_id"]):
        raise invalid_value("Give a CustomerGatewayId or VpnGatewayId other than the connection's own")
    cgw = ctx.usable("customer_gateways", "InvalidCustomerGatewayID", cgw_id, "customer gateway")
    vgw = ctx.usable("vpn_gateways", "InvalidVpnGatewayID", vgw_id, "virtual private gateway")
    if bool(cgw["certificate"]) != bool(record.customer_gateway["certificate"]):
        raise invalid_value("The new customer gateway authenticates differently (certificate or PSK) from the"
                            " connection's; create a new VPN connection instead")
    if vgw_id != record.row["vpn_gateway_id"] and count_on_gateway(ctx, vgw_id) >= MAX_CONNECTIONS_PER_GATEWAY:
        raise ApiError("VpnConnectionLimitExceeded", f"The virtual private gateway {vgw_id} has"
                       f" {MAX_CONNECTIONS_PER_GATEWAY} VPN connections, AWS's limit")
    check_asns(vgw["amazon_side_asn"], cgw["bgp_asn"], bool(record.row["static_routes_only"]))
    ctx.db.execute("UPDATE vpn_connections SET customer_gateway_id = ?, vpn_gateway_id = ? WHERE id = ?",
                   (cgw_id, vgw_id, record.id))
    return _replace_both(ctx, record.id)


def modify_vpn_connection_options(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = _modifiable(ctx, params["VpnConnectionId"])
    for name in ("LocalIpv6NetworkCidr", "RemoteIpv6NetworkCidr"):
        if params.get(name):
            raise invalid_value(f"{name} is supported for transit gateway VPN connections only")
    if params.get("TunnelBandwidth", "standard") != "standard":
        raise bad_value(params["TunnelBandwidth"], "TunnelBandwidth", "A virtual private gateway supports standard only.")
    local = params.get("LocalIpv4NetworkCidr", record.row["local_cidr"])
    remote = params.get("RemoteIpv4NetworkCidr", record.row["remote_cidr"])
    if (local, remote) == (record.row["local_cidr"], record.row["remote_cidr"]):
        raise invalid_value("The request changes no option of the VPN connection")
    ctx.db.execute("UPDATE vpn_connections SET local_cidr = ?, remote_cidr = ? WHERE id = ?", (local, remote, record.id))
    return _replace_both(ctx, record.id)


def modify_vpn_tunnel_options(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = _modifiable(ctx, params["VpnConnectionId"])
    tunnel = find_tunnel(record, params["VpnTunnelOutsideIpAddress"])
    if params.get("PreSharedKeyStorage", "Standard") != "Standard":
        raise bad_value(params["PreSharedKeyStorage"], "PreSharedKeyStorage", "vgw stores PSKs itself (Standard).")
    changes, own, aws_only = options_from_request(params["TunnelOptions"])
    if "pre_shared_key" in own and tunnel["pre_shared_key"] is None:
        raise invalid_value("This tunnel authenticates with certificates; it takes no PreSharedKey")
    inside = own.get("inside_cidr", tunnel["inside_cidr"])
    if inside != tunnel["inside_cidr"]:
        check_inside_cidr(ctx, inside, "TunnelOptions.TunnelInsideCidr",
                          used_inside_cidrs(ctx, skip=(record.id, tunnel["position"])))
    options = loads(tunnel["options"])
    before = dict(options)
    options.update(changes)
    if "log_options" in changes:
        log = dict(before.get("log_options", {}).get("cloudwatch_log_options", {}))
        log.update(changes["log_options"]["cloudwatch_log_options"])
        options["log_options"] = {"cloudwatch_log_options": log}
    stored_aws_only = {**loads(tunnel["aws_only"]), **aws_only}
    psk = own.get("pre_shared_key", tunnel["pre_shared_key"])
    override = {**options, "inside_cidr": inside}
    if psk is not None:
        override["pre_shared_key"] = psk
    validate_connection(entry(ctx, record, {tunnel["position"]: override}), lambda p: "TunnelOptions.")
    ctx.db.execute("UPDATE tunnels SET options = ?, aws_only = ?, inside_cidr = ?, pre_shared_key = ?"
                   " WHERE connection_id = ? AND position = ?",
                   (dumps(options), dumps(stored_aws_only), inside, psk, record.id, tunnel["position"]))
    changed = {key for key in set(options) | set(before) if options.get(key) != before.get(key)}
    if inside != tunnel["inside_cidr"]:
        changed.add("inside_cidr")
    if psk != tunnel["pre_shared_key"]:
        changed.add("pre_shared_key")
    skip = params.get("SkipTunnelReplacement") and changed <= {"enable_tunnel_lifecycle_control"}
    _set_modifying(ctx, record.id)
    announce(ctx, "modified", record.id, () if skip or not changed else (tunnel["outside_ip"],))
    return {"VpnConnection": describe(ctx, load(ctx, record.id))}
