"""GetVpnConnectionDeviceTypes and GetVpnConnectionDeviceSampleConfiguration:
AWS's "Download configuration", with the vendors of `vgw cgw-config`.
"""

from __future__ import annotations

from typing import Any

from .connections import entry, load, render
from .context import Context
from .errors import bad_value
from .tunnel_options import validate_connection

# VpnConnectionDeviceTypeId -> (Vendor, Platform, Software, cgw-config vendor)
DEVICE_TYPES = {
    "strongswan": ("Strongswan", "Linux", "strongSwan 5.8+ (swanctl), FRR for BGP", "strongswan"),
    "generic": ("Generic", "Generic", "Vendor Agnostic", "generic"),
    "xml": ("vgw", "Any", "CustomerGatewayConfiguration XML", "xml"),
}


def get_vpn_connection_device_types(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    return {"VpnConnectionDeviceTypes": [
        {"VpnConnectionDeviceTypeId": type_id, "Vendor": vendor, "Platform": platform, "Software": software}
        for type_id, (vendor, platform, software, _) in DEVICE_TYPES.items()]}


def get_vpn_connection_device_sample_configuration(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    type_id = params["VpnConnectionDeviceTypeId"]
    if type_id not in DEVICE_TYPES:
        raise bad_value(type_id, "VpnConnectionDeviceTypeId", f"Valid values: {', '.join(DEVICE_TYPES)}.")
    if params.get("InternetKeyExchangeVersion", "ikev2") != "ikev2":
        raise bad_value(params["InternetKeyExchangeVersion"], "InternetKeyExchangeVersion",
                        "vgw speaks IKEv2 only: use ikev2.")
    record = load(ctx, params["VpnConnectionId"])
    config = validate_connection(entry(ctx, record), lambda p: f"TunnelOptions.{p + 1}.")
    return {"VpnConnectionDeviceSampleConfiguration": render(ctx, record, config, DEVICE_TYPES[type_id][3])}
