"""Create/Describe/DeleteVpnConnection, and a connection as data.

A connection is rows (the connection, its two tunnels, its static routes) that
turn into two things: the YAML connection entry the gateway runs
(`definition`, validated by the config's ConnectionConfig) and the VpnConnection
the API returns (`describe`: options with AWS's defaults filled in, routes,
live VgwTelemetry from the gateway view, the CustomerGatewayConfiguration XML of
`vgw cgw-config --vendor xml` with the real addresses and PSKs).

Allocation follows AWS: two tunnels (docs/aws.md §1.1), each with an outside
address from api.outside_ip_pool, an inside /30 chosen at random from
169.254.0.0/16 outside the reserved blocks and unique on the gateway (§1.2),
and a generated PSK unless one is given (§1.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from daemon.cgwconfig import render_for
from daemon.config import ConnectionConfig, CustomerGatewayConfig

from . import alloc, filters
from .context import Context
from .customer_gateways import certificate_subject
from .errors import ApiError, bad_value, combination, invalid_value, missing
from .store import dumps, loads
from .tunnel_options import options_from_request, tunnel_option, validate_connection
from .view import ConnectionChange, ConnectionDefinition

MAX_CONNECTIONS_PER_GATEWAY = 10  # docs/aws.md §4.1
TUNNELS = 2                       # docs/aws.md §1.1
_FILTERS = ("customer-gateway-configuration", "customer-gateway-id", "state", "option.static-routes-only",
            "route.destination-cidr-block", "bgp-asn", "type", "vpn-connection-id", "vpn-gateway-id",
            "transit-gateway-id")


@dataclass
class Record:
    """One connection's rows."""

    row: Any
    tunnels: list
    routes: list
    customer_gateway: Any
    vpn_gateway: Any

    @property
    def id(self) -> str:
        return self.row["id"]


def load(ctx: Context, connection_id: str) -> Record:
    row = ctx.row("vpn_connections", "InvalidVpnConnectionID", connection_id)
    return _record(ctx, row)


def _record(ctx: Context, row) -> Record:
    tunnels = ctx.db.execute("SELECT * FROM tunnels WHERE connection_id = ? ORDER BY position", (row["id"],)).fetchall()
    routes = ctx.db.execute("SELECT * FROM vpn_routes WHERE connection_id = ? ORDER BY cidr", (row["id"],)).fetchall()
    cgw = ctx.db.execute("SELECT * FROM customer_gateways WHERE id = ?", (row["customer_gateway_id"],)).fetchone()
    vgw = ctx.db.execute("SELECT * FROM vpn_gateways WHERE id = ?", (row["vpn_gateway_id"],)).fetchone()
    return Record(row, tunnels, [r for r in routes if ctx.listed(r)], cgw, vgw)


def find_tunnel(record: Record, outside_ip: str):
    for tunnel in record.tunnels:
        if tunnel["outside_ip"] == outside_ip:
            return tunnel
    raise invalid_value(f"The VPN tunnel outside IP address {outside_ip} is not one of {record.id}'s"
                        f" ({', '.join(t['outside_ip'] for t in record.tunnels)})")


# ---------------------------------------------------------------------------
# A connection as the gateway runs it


def _tunnel_entry(ctx: Context, record: Record, tunnel) -> dict[str, Any]:
    entry: dict[str, Any] = {"outside_ip": tunnel["outside_ip"], "inside_cidr": tunnel["inside_cidr"]}
    if tunnel["pre_shared_key"] is not None:
        entry["pre_shared_key"] = tunnel["pre_shared_key"]
    else:  # a customer gateway with a certificate: vgw authenticates with its own (§2)
        entry["certificate"] = ctx.settings.certificate
        entry["private_key"] = ctx.settings.private_key
    entry.update(loads(tunnel["options"]))
    return entry


def _fit(entry: dict[str, Any]) -> dict[str, Any]:
    """Drop the keys this vgw's ConnectionConfig does not know yet (static_routes_only,
    customer_gateway.bgp_asn arrive with dynamic routing); ConnectionDefinition
    carries them regardless."""
    fitted = {key: value for key, value in entry.items() if key in ConnectionConfig.model_fields}
    fitted["customer_gateway"] = {key: value for key, value in entry["customer_gateway"].items()
                                  if key in CustomerGatewayConfig.model_fields}
    return fitted


def entry(ctx: Context, record: Record, overrides: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The YAML connection entry of `record` (its live static routes; `overrides`
    replaces tunnel keys by position, for a modify being validated)."""
    cgw = record.customer_gateway
    customer_gateway: dict[str, Any] = {"bgp_asn": cgw["bgp_asn"]}
    if cgw["ip_address"]:
        customer_gateway["ip"] = cgw["ip_address"]
    if cgw["certificate"]:
        customer_gateway["identity"] = certificate_subject(cgw["certificate"])
    tunnels = []
    for tunnel in record.tunnels:
        item = _tunnel_entry(ctx, record, tunnel)
        item.update((overrides or {}).get(tunnel["position"], {}))
        tunnels.append(item)
    row = record.row
    return _fit({
        "name": record.id,
        "customer_gateway": customer_gateway,
        "static_routes_only": bool(row["static_routes_only"]),
        "static_routes": [r["cidr"] for r in record.routes if ctx.state(r) in ("pending", "available")],
        "local_network_cidr": row["local_cidr"],
        "remote_network_cidr": row["remote_cidr"],
        "tunnels": tunnels,
    })


def definition(ctx: Context, record: Record, config: ConnectionConfig | None = None) -> ConnectionDefinition:
    if config is None:
        config = validate_connection(entry(ctx, record), lambda p: f"TunnelOptions.{p + 1}.")
    return ConnectionDefinition(
        connection_id=record.id, vpn_gateway_id=record.row["vpn_gateway_id"],
        customer_gateway_id=record.row["customer_gateway_id"],
        amazon_side_asn=record.vpn_gateway["amazon_side_asn"], customer_gateway_asn=record.customer_gateway["bgp_asn"],
        static_routes_only=bool(record.row["static_routes_only"]), config=config)


def announce(ctx: Context, kind: str, connection_id: str, replace: tuple[str, ...] = ()) -> None:
    """Tell the gateway after commit, from the rows as this request leaves them."""
    change = ConnectionChange(kind, definition(ctx, load(ctx, connection_id)),
                              tuple(IPv4Address(ip) for ip in replace))
    ctx.on_commit.append(lambda: ctx.view.connection_changed(change))


# ---------------------------------------------------------------------------
# A connection as the API returns it


def _telemetry(ctx: Context, record: Record, tunnel) -> dict[str, Any]:
    live = ctx.view.telemetry(IPv4Address(tunnel["outside_ip"]))
    item: dict[str, Any] = {"OutsideIpAddress": tunnel["outside_ip"]}
    if live is None:  # not running (yet): as AWS shows a tunnel nobody has connected to
        since = tunnel["last_maintenance"] or record.row["created"]
        item.update(Status="DOWN", StatusMessage="IPSEC IS DOWN", AcceptedRouteCount=0, LastStatusChange=since)
    else:
        item.update(Status=live.status, StatusMessage=live.status_message,
                    AcceptedRouteCount=live.accepted_route_count, LastStatusChange=live.last_status_change)
    if record.customer_gateway["certificate"]:
        item["CertificateArn"] = record.customer_gateway["certificate"]
    return item


def state_of(ctx: Context, record: Record) -> str:
    """The connection's state: `modifying` also while the gateway still replaces its
    tunnels, one at a time (docs/aws.md §1.10), after the 2 s AWS shows it anyway."""
    state = ctx.state(record.row)
    if state == "available" and ctx.view.replacing(record.id):
        return "modifying"
    return state


def describe(ctx: Context, record: Record) -> dict[str, Any]:
    row = record.row
    state = state_of(ctx, record)
    config = validate_connection(entry(ctx, record), lambda p: f"TunnelOptions.{p + 1}.")
    tunnel_options = [tunnel_option(tc, loads(t["aws_only"]), loads(t["options"]))
                      for tc, t in zip(config.tunnels, record.tunnels)]
    result: dict[str, Any] = {
        "VpnConnectionId": record.id,
        "State": state,
        "Type": row["type"],
        "Category": "VPN",
        "CustomerGatewayId": row["customer_gateway_id"],
        "VpnGatewayId": row["vpn_gateway_id"],
        "GatewayAssociationState": "associated",
        "Options": {
            "EnableAcceleration": False,
            "StaticRoutesOnly": bool(row["static_routes_only"]),
            "LocalIpv4NetworkCidr": row["local_cidr"],
            "RemoteIpv4NetworkCidr": row["remote_cidr"],
            "OutsideIpAddressType": "PublicIpv4",
            "TunnelInsideIpVersion": "ipv4",
            "TunnelBandwidth": "standard",
            "TunnelOptions": tunnel_options,
        },
        "Routes": [{"DestinationCidrBlock": r["cidr"], "Source": "Static", "State": ctx.state(r)}
                   for r in record.routes] or None,
        "VgwTelemetry": [_telemetry(ctx, record, t) for t in record.tunnels],
        "Tags": ctx.tag_list(record.id),
    }
    if state not in ("deleting", "deleted"):
        # Present only while the connection is pending or available (EC2 API VpnConnection).
        result["CustomerGatewayConfiguration"] = render(ctx, record, config, "xml")
    return {k: v for k, v in result.items() if v is not None}


def render(ctx: Context, record: Record, config: ConnectionConfig, vendor: str) -> str:
    """`vgw cgw-config --vendor VENDOR` for this connection, under its API ids."""
    names = {"vpn_connection_id": record.id, "customer_gateway_id": record.row["customer_gateway_id"],
             "vpn_gateway_id": record.row["vpn_gateway_id"]}
    return render_for(config, vendor, names, ctx.vpc.cidrs if ctx.vpc else (), record.vpn_gateway["amazon_side_asn"])


# ---------------------------------------------------------------------------
# What a gateway's connections already hold


def live_records(ctx: Context) -> list[Record]:
    rows = ctx.db.execute("SELECT * FROM vpn_connections ORDER BY created").fetchall()
    return [_record(ctx, row) for row in rows if ctx.live(row)]


def used_inside_cidrs(ctx: Context, skip: tuple[str, int] | None = None) -> set[IPv4Network]:
    """Every inside /30 taken on the gateway (API and YAML), but the tunnel `skip`."""
    used = set(ctx.view.reserved_inside_cidrs())
    for record in live_records(ctx):
        used |= {IPv4Network(t["inside_cidr"]) for t in record.tunnels if (record.id, t["position"]) != skip}
    return used


def check_inside_cidr(ctx: Context, cidr: str, parameter: str, used: set[IPv4Network]) -> None:
    try:
        network = IPv4Network(cidr)
    except ValueError:
        return  # the config model explains a malformed CIDR
    if network in used:
        # docs/aws.md §1.2: unique across the connections of one virtual private gateway
        raise bad_value(cidr, parameter, "The inside CIDR is already in use by another tunnel of this gateway.")


def _check_options(options: dict[str, Any], params: dict[str, Any]) -> None:
    """Options a virtual private gateway does not have (docs/aws.md §1.2, §1.9)."""
    if options.get("EnableAcceleration"):
        raise invalid_value("Acceleration is supported for transit gateway VPN connections only")
    for name, allowed in (("TunnelInsideIpVersion", "ipv4"), ("OutsideIpAddressType", "PublicIpv4"),
                          ("TunnelBandwidth", "standard")):
        if options.get(name, allowed) != allowed:
            raise bad_value(options[name], f"Options.{name}", f"A virtual private gateway supports {allowed} only.")
    for name in ("LocalIpv6NetworkCidr", "RemoteIpv6NetworkCidr", "TransportTransitGatewayAttachmentId"):
        if options.get(name):
            raise invalid_value(f"Options.{name} is supported for transit gateway VPN connections only")
    for name in ("TransitGatewayId", "VpnConcentratorId"):
        if params.get(name):
            raise invalid_value(f"vgw emulates a virtual private gateway; {name} is not supported (use VpnGatewayId)")
    if params.get("PreSharedKeyStorage", "Standard") != "Standard":
        raise bad_value(params["PreSharedKeyStorage"], "PreSharedKeyStorage", "vgw stores PSKs itself (Standard).")


def check_asns(vgw_asn: int, cgw_asn: int, static_routes_only: bool) -> None:
    # docs/aws.md §1.11: the two ends of a BGP session need different ASNs.
    if not static_routes_only and vgw_asn == cgw_asn:
        raise invalid_value(f"The customer gateway's BGP ASN {cgw_asn} is the virtual private gateway's"
                            " AmazonSideAsn; use another ASN, or StaticRoutesOnly")


def count_on_gateway(ctx: Context, gateway_id: str) -> int:
    return sum(1 for record in live_records(ctx) if record.row["vpn_gateway_id"] == gateway_id)


def create_vpn_connection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    options = params.get("Options") or {}
    _check_options(options, params)
    if not params.get("VpnGatewayId"):
        raise missing("VpnGatewayId")
    cgw = ctx.usable("customer_gateways", "InvalidCustomerGatewayID", params["CustomerGatewayId"], "customer gateway")
    vgw = ctx.usable("vpn_gateways", "InvalidVpnGatewayID", params["VpnGatewayId"], "virtual private gateway")
    if count_on_gateway(ctx, vgw["id"]) >= MAX_CONNECTIONS_PER_GATEWAY:
        raise ApiError("VpnConnectionLimitExceeded", f"The virtual private gateway {vgw['id']} has"
                       f" {MAX_CONNECTIONS_PER_GATEWAY} VPN connections, AWS's limit")
    static_routes_only = bool(options.get("StaticRoutesOnly", False))  # EC2 API default: false (BGP)
    check_asns(vgw["amazon_side_asn"], cgw["bgp_asn"], static_routes_only)
    specs = list(options.get("TunnelOptions") or [])
    if len(specs) > TUNNELS:
        raise invalid_value(f"A VPN connection has {TUNNELS} tunnels; Options.TunnelOptions lists {len(specs)}")
    specs += [{}] * (TUNNELS - len(specs))
    if cgw["certificate"] and ctx.settings.certificate is None:
        raise invalid_value(f"The customer gateway {cgw['id']} authenticates with a certificate and vgw has"
                            " none of its own: add api.certificate and api.private_key to vgw's config")
    used_ips = set(ctx.view.reserved_outside_ips())
    for record in live_records(ctx):
        used_ips |= {IPv4Address(t["outside_ip"]) for t in record.tunnels}
    if cgw["ip_address"]:
        used_ips.add(IPv4Address(cgw["ip_address"]))
    outside_ips = alloc.new_outside_ips(ctx.settings.outside_ip_pool, used_ips, TUNNELS)
    used_cidrs = used_inside_cidrs(ctx)
    connection_id = alloc.new_id("vpn", ctx.rng)
    ctx.db.execute("INSERT INTO vpn_connections VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                   (connection_id, cgw["id"], vgw["id"], params["Type"], int(static_routes_only),
                    options.get("LocalIpv4NetworkCidr", "0.0.0.0/0"), options.get("RemoteIpv4NetworkCidr", "0.0.0.0/0"),
                    ctx.now, ctx.now))
    for position, (spec, outside_ip) in enumerate(zip(specs, outside_ips)):
        tunnel_options, own, aws_only = options_from_request(spec)
        parameter = f"Options.TunnelOptions.{position + 1}."
        if "inside_cidr" in own:
            check_inside_cidr(ctx, own["inside_cidr"], parameter + "TunnelInsideCidr", used_cidrs)
            inside = own["inside_cidr"]
        else:
            inside = str(alloc.new_inside_cidr(used_cidrs, ctx.rng))
        try:
            used_cidrs.add(IPv4Network(inside, strict=False))
        except ValueError:
            pass  # validate_connection below names the bad TunnelInsideCidr
        psk = own.get("pre_shared_key")
        if cgw["certificate"]:
            if psk is not None:
                raise combination(f"{parameter}PreSharedKey: the customer gateway {cgw['id']} authenticates"
                                  " with a certificate; give no pre-shared key")
        elif psk is None:
            psk = alloc.new_psk(ctx.rng)
        ctx.db.execute("INSERT INTO tunnels VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                       (connection_id, position, str(outside_ip), inside, psk, dumps(tunnel_options), dumps(aws_only)))
    record = load(ctx, connection_id)
    validate_connection(entry(ctx, record), lambda p: f"Options.TunnelOptions.{p + 1}.")
    ctx.tag_on_create(params, "vpn-connection", connection_id)
    announce(ctx, "created", connection_id)
    return {"VpnConnection": describe(ctx, load(ctx, connection_id))}


def describe_vpn_connections(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    filters.check_names(params.get("Filters"), _FILTERS)
    rows = ctx.listed_rows("vpn_connections", "InvalidVpnConnectionID", params.get("VpnConnectionIds"), "created")
    result = []
    for row in rows:
        record = _record(ctx, row)
        item = describe(ctx, record)
        attributes = {
            "customer-gateway-configuration": [item.get("CustomerGatewayConfiguration", "")],
            "customer-gateway-id": [row["customer_gateway_id"]], "state": [item["State"]],
            "option.static-routes-only": ["true" if row["static_routes_only"] else "false"],
            "route.destination-cidr-block": [r["cidr"] for r in record.routes],
            "bgp-asn": [record.customer_gateway["bgp_asn"]], "type": [row["type"]],
            "vpn-connection-id": [row["id"]], "vpn-gateway-id": [row["vpn_gateway_id"]], "transit-gateway-id": [],
        }
        if filters.matches(params.get("Filters"), attributes, ctx.tags(row["id"])):
            result.append(item)
    return {"VpnConnections": result}


def delete_vpn_connection(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    record = load(ctx, params["VpnConnectionId"])
    if ctx.state(record.row) in ("deleting", "deleted"):
        return {}
    announce(ctx, "deleted", record.id)  # the definition as it runs now: its tunnels and addresses go
    ctx.db.execute("UPDATE vpn_connections SET state = 'deleting', since = ? WHERE id = ?", (ctx.now, record.id))
    ctx.db.execute("UPDATE vpn_routes SET state = 'deleting', since = ? WHERE connection_id = ? AND state != 'deleting'",
                   (ctx.now, record.id))
    return {}
