"""`vgw cgw-config`: AWS's "Download configuration" for one VPN connection.

AWS generates, per connection, a configuration for the customer gateway: the
`CustomerGatewayConfiguration` XML that the API returns (docs/aws.md §6.1) and
vendor texts rendered from it (the generic text, §6.2; a strongSwan sample,
§6.3). vgw renders the same from its own config, with the tunnel's real options
(AWS's XML always shows the AES128/SHA1/group 2 profile, §6.1; vgw shows the
first value of each configured list, and the vendor texts list them all):

* `xml`: the element tree of §6.1, for tools that parse it (Terraform reads
  `vpn_gateway/tunnel_outside_address/ip_address`, `ike/pre_shared_key`, ...);
* `generic`: the generic text of §6.2, adapted to the tunnel's options;
* `strongswan`: a swanctl.conf (AWS's sample is ipsec.conf style; swanctl is
  strongSwan's current interface) that works against vgw unchanged, and for a
  dynamic connection an FRR configuration for both BGP sessions beside it (AWS's
  sample uses Quagga, FRR is its successor): two files, printed one after the
  other under `# --- file: PATH ---` lines, or one of them by `file`.

A dynamic connection (StaticRoutesOnly false, docs/aws.md §7, §11) carries BGP
in every vendor's output, as AWS's do: the ASNs of both sides, hold time 30 s.

AWS identifies a connection by ids (vpn-..., cgw-..., vgw-...) that vgw does not
have; `ids()` derives stable ones from the config, so the output does not change
between runs.
"""

from __future__ import annotations

import hashlib

from ..config import ConnectionConfig, GatewayConfig

__all__ = ["FILES", "VENDORS", "ids", "render", "render_for", "find_connection", "stable_id"]

VENDORS = ("strongswan", "generic", "xml")
# the files of the strongswan vendor, by the name `vgw cgw-config --file` takes
FILES = ("swanctl", "frr")

# AWS's recommendations printed in every generated config (docs/aws.md §6.1, §6.2, §4.2).
DPD_INTERVAL = 10
DPD_RETRIES = 3
TCP_MSS_ADJUSTMENT = 1379
TUNNEL_MTU = 1436
# BGP in AWS's generated configs: hold time 30 s (the XML's bgp/hold_time, the generic
# text's "Neighbor Hold Time"), keepalive 10 s (its Cisco and Check Point samples;
# docs/aws.md §6.1, §6.2, §11.1)
BGP_HOLD_TIME = 30
BGP_KEEPALIVE = 10


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


def render(config: GatewayConfig, connection: ConnectionConfig, vendor: str, file: str | None = None) -> str:
    """A YAML connection's configuration, under the stable ids of `ids()`."""
    return render_for(connection, vendor, ids(config, connection), config.vpc_cidrs, config.amazon_side_asn, file)


def render_for(connection: ConnectionConfig, vendor: str, names: dict[str, str], vpc_cidrs,
               amazon_side_asn: int, file: str | None = None) -> str:
    """The configuration of `connection` under the given ids (`ids()`'s keys): the
    EC2 API passes its own vpn-/cgw-/vgw- ids, the gateway's VPC CIDRs and the
    VGW's ASN. `file` picks one file of a vendor that writes several (FILES);
    ValueError says what to choose instead."""
    if file is not None and vendor != "strongswan":
        raise ValueError(f"--file picks one file of --vendor strongswan; --vendor {vendor} prints one text")
    if vendor == "strongswan":
        return _strongswan(connection, names, vpc_cidrs, amazon_side_asn, file)
    if vendor == "generic":
        from .generic import render_generic
        return render_generic(connection, names, vpc_cidrs, amazon_side_asn)
    if vendor == "xml":
        from .xmlconf import render_xml
        return render_xml(connection, names, amazon_side_asn)
    raise ValueError(f"unknown vendor {vendor!r}; choose one of: {', '.join(VENDORS)}")


def _strongswan(connection: ConnectionConfig, names: dict[str, str], vpc_cidrs, amazon_side_asn: int,
                file: str | None) -> str:
    """swanctl.conf alone for a static connection; swanctl.conf and frr.conf, each
    under a `# --- file: PATH ---` line, for a dynamic one (or the one `file` names)."""
    from .frr import FRR_PATH, render_frr
    from .strongswan import render_swanctl, swanctl_path
    files = {"swanctl": (swanctl_path(connection), lambda: render_swanctl(connection, names, vpc_cidrs))}
    if connection.dynamic:
        files["frr"] = (FRR_PATH, lambda: render_frr(connection, names, vpc_cidrs, amazon_side_asn))
    if file is not None:
        if file not in FILES:
            raise ValueError(f"unknown file {file!r}; choose one of: {', '.join(FILES)}")
        if file not in files:
            raise ValueError(f"connection {connection.name} routes statically (static_routes_only: true):"
                             " it runs no BGP, so there is no frr.conf; use --file swanctl")
        return files[file][1]()
    if len(files) == 1:
        return files["swanctl"][1]()
    return "\n".join(f"# --- file: {path} ---\n{text()}" for path, text in files.values())
