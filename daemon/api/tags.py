"""CreateTags and DeleteTags on the API's resources (EC2 tagging).

A resource id names its kind by prefix; one that does not exist is that kind's
*.NotFound, one of a kind vgw does not have is InvalidID.
"""

from __future__ import annotations

from typing import Any

from .context import Context
from .errors import ApiError

_TABLES = {"cgw": ("customer_gateways", "InvalidCustomerGatewayID"),
           "vgw": ("vpn_gateways", "InvalidVpnGatewayID"),
           "vpn": ("vpn_connections", "InvalidVpnConnectionID")}


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
