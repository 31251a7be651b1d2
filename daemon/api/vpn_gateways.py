"""Create/Describe/Attach/Detach/DeleteVpnGateway.

A virtual private gateway carries the Amazon-side ASN of its connections' BGP
sessions and attaches to at most one VPC: the gateway config's `vpc`
(docs/aws.md §4.1: one VGW per VPC at a time). Terraform's aws_vpn_gateway and
aws_vpn_gateway_attachment wait for attaching -> attached and for the
attachment to disappear (detached) after a detach.
"""

from __future__ import annotations

from typing import Any

from . import filters
from .alloc import new_id
from .context import Context
from .errors import ApiError, bad_value, incorrect_state

MAX_VPN_GATEWAYS = 5          # docs/aws.md §4.1: per Region
DEFAULT_AMAZON_SIDE_ASN = 64512  # docs/aws.md §1.11
_FILTERS = ("amazon-side-asn", "attachment.state", "attachment.vpc-id", "availability-zone", "state", "type",
            "vpn-gateway-id")


def valid_amazon_side_asn(asn: int) -> bool:
    """docs/aws.md §1.11: 64512-65534 or 4200000000-4294967294."""
    return 64512 <= asn <= 65534 or 4200000000 <= asn <= 4294967294


def _attachments(ctx: Context, gateway_id: str) -> list:
    rows = ctx.db.execute("SELECT * FROM vpc_attachments WHERE vpn_gateway_id = ?", (gateway_id,)).fetchall()
    return [row for row in rows if ctx.listed(row)]


def describe(ctx: Context, row) -> dict[str, Any]:
    result = {
        "VpnGatewayId": row["id"],
        "State": ctx.state(row),
        "Type": row["type"],
        "AmazonSideAsn": row["amazon_side_asn"],
        "AvailabilityZone": row["availability_zone"],
        "VpcAttachments": [{"VpcId": a["vpc_id"], "State": ctx.state(a)} for a in _attachments(ctx, row["id"])],
        "Tags": ctx.tag_list(row["id"]),
    }
    return {k: v for k, v in result.items() if v is not None}


def create_vpn_gateway(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    asn = params.get("AmazonSideAsn", DEFAULT_AMAZON_SIDE_ASN)
    if not valid_amazon_side_asn(asn):
        raise bad_value(asn, "AmazonSideAsn", "It must be between 64512 and 65534, or between 4200000000"
                        " and 4294967294.")
    live = [row for row in ctx.db.execute("SELECT * FROM vpn_gateways") if ctx.live(row)]
    if len(live) >= MAX_VPN_GATEWAYS:
        raise ApiError("VpnGatewayLimitExceeded", f"You have reached the limit of {MAX_VPN_GATEWAYS}"
                       " virtual private gateways")
    gateway_id = new_id("vgw", ctx.rng)
    ctx.db.execute("INSERT INTO vpn_gateways VALUES (?, ?, ?, ?, 'pending', ?)",
                   (gateway_id, asn, params.get("AvailabilityZone"), params["Type"], ctx.now))
    ctx.tag_on_create(params, "vpn-gateway", gateway_id)
    return {"VpnGateway": describe(ctx, ctx.row("vpn_gateways", "InvalidVpnGatewayID", gateway_id))}


def describe_vpn_gateways(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    filters.check_names(params.get("Filters"), _FILTERS)
    rows = ctx.listed_rows("vpn_gateways", "InvalidVpnGatewayID", params.get("VpnGatewayIds"))
    result = []
    for row in rows:
        item = describe(ctx, row)
        attachments = item["VpcAttachments"]
        attributes = {
            "amazon-side-asn": [row["amazon_side_asn"]], "state": [item["State"]], "type": [row["type"]],
            "vpn-gateway-id": [row["id"]], "availability-zone": [row["availability_zone"] or ""],
            "attachment.state": [a["State"] for a in attachments],
            "attachment.vpc-id": [a["VpcId"] for a in attachments],
        }
        if filters.matches(params.get("Filters"), attributes, ctx.tags(row["id"])):
            result.append(item)
    return {"VpnGateways": result}


def attach_vpn_gateway(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    gateway_id, vpc_id = params["VpnGatewayId"], params["VpcId"]
    ctx.usable("vpn_gateways", "InvalidVpnGatewayID", gateway_id, "virtual private gateway")
    ctx.check_vpc(vpc_id)
    for row in ctx.db.execute("SELECT * FROM vpc_attachments WHERE vpc_id = ?", (vpc_id,)).fetchall():
        state = ctx.state(row)
        if row["vpn_gateway_id"] == gateway_id and state in ("attaching", "attached"):
            return {"VpcAttachment": {"VpcId": vpc_id, "State": state}}
        if row["vpn_gateway_id"] != gateway_id and state != "detached":
            raise ApiError("VpnGatewayAttachmentLimitExceeded",
                           f"The VPC {vpc_id} already has the virtual private gateway {row['vpn_gateway_id']}"
                           " attached; a VPC can have one virtual private gateway at a time")
        if row["vpn_gateway_id"] == gateway_id and state == "detaching":
            raise incorrect_state(f"The virtual private gateway '{gateway_id}' is detaching from {vpc_id}")
    ctx.db.execute("INSERT OR REPLACE INTO vpc_attachments VALUES (?, ?, 'attaching', ?)", (gateway_id, vpc_id, ctx.now))
    return {"VpcAttachment": {"VpcId": vpc_id, "State": "attaching"}}


def detach_vpn_gateway(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    gateway_id, vpc_id = params["VpnGatewayId"], params["VpcId"]
    ctx.row("vpn_gateways", "InvalidVpnGatewayID", gateway_id)
    ctx.check_vpc(vpc_id)
    row = ctx.db.execute("SELECT * FROM vpc_attachments WHERE vpn_gateway_id = ? AND vpc_id = ?",
                         (gateway_id, vpc_id)).fetchone()
    if row is None or ctx.state(row) in ("detaching", "detached"):
        raise ApiError("InvalidVpnGatewayAttachment.NotFound",
                       f"The attachment with vpn gateway ID '{gateway_id}' and vpc ID '{vpc_id}' does not exist")
    ctx.db.execute("UPDATE vpc_attachments SET state = 'detaching', since = ? WHERE vpn_gateway_id = ? AND vpc_id = ?",
                   (ctx.now, gateway_id, vpc_id))
    # Detaching also stops propagation of its routes into the VPC's route table.
    if ctx.db.execute("DELETE FROM route_propagation WHERE vpn_gateway_id = ?", (gateway_id,)).rowcount:
        ctx.on_commit.append(lambda: ctx.view.route_propagation_changed(gateway_id, False))
    return {}


def delete_vpn_gateway(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    gateway_id = params["VpnGatewayId"]
    row = ctx.row("vpn_gateways", "InvalidVpnGatewayID", gateway_id)
    if ctx.state(row) in ("deleting", "deleted"):
        return {}
    for attachment in _attachments(ctx, gateway_id):
        if ctx.state(attachment) != "detached":
            # Terraform retries DeleteVpnGateway on IncorrectState while the detach finishes.
            raise incorrect_state(f"The virtual private gateway '{gateway_id}' is attached to"
                                  f" {attachment['vpc_id']} ({ctx.state(attachment)}); detach it first")
    for connection in ctx.db.execute("SELECT * FROM vpn_connections WHERE vpn_gateway_id = ?", (gateway_id,)):
        if ctx.live(connection):
            raise incorrect_state(f"The virtual private gateway '{gateway_id}' is in use by {connection['id']}")
    ctx.db.execute("UPDATE vpn_gateways SET state = 'deleting', since = ? WHERE id = ?", (ctx.now, gateway_id))
    return {}
