"""`vgw cgw-config`: AWS's "Download configuration" for one VPN connection.

AWS generates, per connection, a configuration for the customer gateway: the
`CustomerGatewayConfiguration` XML that the API returns (aws-facts.md §6.1) and
vendor texts rendered from it (the generic text, §6.2; a strongSwan sample,
§6.3). vgw renders the same from its own config, with the tunnel's real options
(AWS's XML always shows the AES128/SHA1/group 2 profile, §6.1; vgw shows the
first value of each configured list, and the vendor texts list them all):

* `xml`: the element tree of §6.1, for tools that parse it (Terraform reads
  `vpn_gateway/tunnel_outside_address/ip_address`, `ike/pre_shared_key`, ...);
* `generic`: the generic text of §6.2, adapted to the tunnel's options;
* `strongswan`: a swanctl.conf (AWS's sample is ipsec.conf style; swanctl is
  strongSwan's current interface) that works against vgw unchanged.

AWS identifies a connection by ids (vpn-..., cgw-..., vgw-...) that vgw does not
have; `ids()` derives stable ones from the config, so the output does not change
between runs.
"""

from __future__ import annotations

import hashlib

from ..config import ConnectionConfig, GatewayConfig

__all__ = ["VENDORS", "ids", "render", "render_for", "find_connection", "stable_id"]

VENDORS = ("strongswan", "generic", "xml")

# AWS's recommendations printed in every generated config (aws-facts §6.1, §6.2, §4.2).
DPD_INTERVAL = 10
DPD_RETRIES = 3
TCP_MSS_ADJUSTMENT = 1379
TUNNEL_MTU = 1436


def stable_id(prefix: str, seed: str) -> str:
    """An AWS-style id (prefix-17 hex) that the same seed always gives."""
    # Current AWS ids carry 17 hex digits (vpn-006dfdf3f4989c4df, §6.2's real copy).
    return f"{prefix}-{hashlib.sha256(f'{prefix}:{seed}'.encode()).hexdigest()[:17]}"


def ids(config: GatewayConfig, connection: ConnectionConfig) -> dict[str, str]:
    """Stable stand-ins for AWS's VpnConnectionId, CustomerGatewayId, VpnGatewayId."""
    return {
        "vpn_connection_id": stable_id("vpn", connection.name),
        "customer_gateway_id": stable_id("cgw", str(connection.customer_gateway.ip or connection.name)),
        # one VGW per vgw process: named after its VPC, or its ASN for a hub without one
        "vpn_gateway_id": stable_id("vgw", ",".join(str(c) for c in config.vpc_cidrs)
                                    or f"hub:{config.amazon_side_asn}"),
    }


def find_connection(config: GatewayConfig, name: str | None) -> ConnectionConfig:
    """The named connection (or the only one); ValueError says which names exist."""
    names = [c.name for c in config.connections]
    if name is None:
        if len(config.connections) == 1:
            return config.connections[0]
        raise ValueError(f"the config has {len(names)} connections: choose one with --connection"
                         f" ({', '.join(names)})")
    for connection in config.connections:
        if connection.name == name:
            return connection
    raise ValueError(f"no connection named {name!r}; the config has: {', '.join(names)}")


def render(config: GatewayConfig, connection: ConnectionConfig, vendor: str) -> str:
    """A YAML connection's configuration, under the stable ids of `ids()`."""
    return render_for(connection, vendor, ids(config, connection), config.vpc_cidrs)


def render_for(connection: ConnectionConfig, vendor: str, names: dict[str, str], vpc_cidrs) -> str:
    """The configuration of `connection` under the given ids (`ids()`'s keys): the
    EC2 API passes its own vpn-/cgw-/vgw- ids and the gateway's VPC CIDRs."""
    if vendor == "strongswan":
        from .strongswan import render_swanctl
        return render_swanctl(connection, names, vpc_cidrs)
    if vendor == "generic":
        from .generic import render_generic
        return render_generic(connection, names, vpc_cidrs)
    if vendor == "xml":
        from .xmlconf import render_xml
        return render_xml(connection, names)
    raise ValueError(f"unknown vendor {vendor!r}; choose one of: {', '.join(VENDORS)}")
