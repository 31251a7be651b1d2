"""CreateTags, DeleteTags and DescribeTags on the API's resources (EC2 tagging).

A resource id names its kind by prefix; one that does not exist is that kind's
*.NotFound, one of a kind vgw does not have is InvalidID.
"""

from __future__ import annotations

from typing import Any

from .context import Context
from .errors import ApiError
from .filters import check_names, matches

_TABLES = {"cgw": ("customer_gateways", "InvalidCustomerGatewayID"),
           "vgw": ("vpn_gateways", "InvalidVpnGatewayID"),
           "vpn": ("vpn_connections", "InvalidVpnConnectionID")}

# EC2's ResourceType for each id prefix (DescribeTags' resource-type filter and answer).
_RESOURCE_TYPES = {"cgw": "customer-gateway", "vgw": "vpn-gateway", "vpn": "vpn-connection",
                   "vpc": "vpc", "rtb": "route-table"}
_DESCRIBE_FILTERS = ("key", "value", "resource-id", "resource-type")


def _check(ctx: Context, resource_id: str) -> None:
    prefix = resource_id.partition("-")[0]
    if prefix in _TABLES:
        ctx.row(*_TABLES[prefix], resource_id)
    elif prefix == "vpc":
        ctx.check_vpc(resource_id)
    elif prefix == "rtb":
        ctx.check_route_table(resource_id)
    else:
        raise ApiError("InvalidID", f"The ID '{resource_id}' is not valid")


def create_tags(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    for resource_id in params["Resources"]:
        _check(ctx, resource_id)
        ctx.set_tags(resource_id, params["Tags"])
    return {}


def delete_tags(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    for resource_id in params["Resources"]:
        _check(ctx, resource_id)
        tags = params.get("Tags")
        if not tags:  # no Tag: delete them all
            ctx.db.execute("DELETE FROM tags WHERE resource_id = ?", (resource_id,))
        for tag in tags or []:
            if "Value" in tag:  # with a value: only if it matches
                ctx.db.execute("DELETE FROM tags WHERE resource_id = ? AND key = ? AND value = ?",
                               (resource_id, tag.get("Key"), tag["Value"]))
            else:
                ctx.db.execute("DELETE FROM tags WHERE resource_id = ? AND key = ?", (resource_id, tag.get("Key")))
    return {}


def describe_tags(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Every tag of a resource the API still lists (filters key, value,
    resource-id, resource-type, tag:<key>), in one page: vgw holds at most a few
    thousand tags, so NextToken is never needed."""
    filters = params.get("Filters")
    check_names(filters, _DESCRIBE_FILTERS)
    rows = ctx.db.execute("SELECT resource_id, key, value FROM tags ORDER BY resource_id, key").fetchall()
    out = []
    for row in rows:
        resource_id = row["resource_id"]
        prefix = resource_id.partition("-")[0]
        table = _TABLES.get(prefix)
        if table is not None:
            found = ctx.db.execute(f"SELECT state, since FROM {table[0]} WHERE id = ?", (resource_id,)).fetchone()
            if found is None or not ctx.listed(found):
                continue
        kind = _RESOURCE_TYPES.get(prefix, "")
        attributes = {"key": [row["key"]], "value": [row["value"]], "resource-id": [resource_id],
                      "resource-type": [kind]}
        if matches(filters, attributes, ctx.tags(resource_id)):
            out.append({"Key": row["key"], "ResourceId": resource_id, "ResourceType": kind, "Value": row["value"]})
    return {"Tags": out}
