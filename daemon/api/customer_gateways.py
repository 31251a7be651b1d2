"""Create/Describe/DeleteCustomerGateway.

A customer gateway is the record of the other end: its public IP, its BGP ASN
and, for certificate authentication, its certificate. vgw takes CertificateArn
as the path of the customer gateway's certificate (PEM) on the vgw host: there
is no ACM to name (docs/api.md); the tunnels then expect the certificate's
subject as the customer gateway's identity.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from . import filters
from .alloc import new_id
from .context import Context
from .errors import ApiError, bad_value, combination, incorrect_state, invalid_value, missing

MAX_CUSTOMER_GATEWAYS = 50  # docs/aws.md §4.1: per Region
DEFAULT_BGP_ASN = 65000     # EC2 CreateCustomerGateway: BgpAsn default 65000
# docs/aws.md §1.11: AWS's own ASNs a customer gateway may not use.
RESERVED_ASNS = (7224, 9059, 10124, 17493)
MAX_CERTIFICATE_FILE = 256 * 1024
_FILTERS = ("bgp-asn", "customer-gateway-id", "ip-address", "state", "type", "device-name")


def _asn(params: dict[str, Any]) -> int:
    asn, extended = params.get("BgpAsn"), params.get("BgpAsnExtended")
    if asn is not None and extended is not None:
        raise combination("Specify BgpAsn or BgpAsnExtended, not both")
    if extended is not None:
        # EC2 API: BgpAsnExtended is 2,147,483,648 - 4,294,967,295
        if not 2147483648 <= extended <= 4294967295:
            raise bad_value(extended, "BgpAsnExtended", "It must be between 2147483648 and 4294967295.")
        return extended
    if asn is None:
        return DEFAULT_BGP_ASN
    if not 1 <= asn <= 2147483647:
        raise bad_value(asn, "BgpAsn", "It must be between 1 and 2147483647 (use BgpAsnExtended above that).")
    if asn in RESERVED_ASNS:
        raise bad_value(asn, "BgpAsn", f"{asn} is reserved by AWS ({', '.join(map(str, RESERVED_ASNS))}).")
    return asn


def certificate_subject(path: str) -> str:
    """The subject DN of the first certificate in the PEM file `path`."""
    from ikecore.certs import CertError, load_pem_certificates, subject_text

    if not path.startswith("/"):
        raise bad_value(path, "CertificateArn", "vgw takes the absolute path of the customer gateway's"
                        " certificate (PEM) on the vgw host.")
    try:
        with open(Path(path), "rb") as f:
            data = f.read(MAX_CERTIFICATE_FILE + 1)
        if len(data) > MAX_CERTIFICATE_FILE:
            raise CertError("the file is larger than 256 KB")
        return subject_text(load_pem_certificates(data)[0])
    except OSError as exc:
        raise bad_value(path, "CertificateArn", f"vgw cannot read it: {exc.strerror or exc}.") from None
    except (CertError, IndexError) as exc:
        raise bad_value(path, "CertificateArn", f"It holds no PEM certificate ({exc}).") from None


def _ip(params: dict[str, Any]) -> str | None:
    text = params.get("IpAddress") or params.get("PublicIp")  # PublicIp: the older name
    if text is None:
        return None
    try:
        address = IPv4Address(text)
    except ValueError:
        raise bad_value(text, "IpAddress", "It must be an IPv4 address.") from None
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        raise bad_value(text, "IpAddress", "It must be the customer gateway's unicast address.")
    return str(address)


def describe(ctx: Context, row) -> dict[str, Any]:
    asn = row["bgp_asn"]
    result = {
        "CustomerGatewayId": row["id"],
        "State": ctx.state(row),
        "Type": row["type"],
        "IpAddress": row["ip_address"],
        "BgpAsn": str(asn) if asn <= 2147483647 else None,
        "BgpAsnExtended": str(asn) if asn > 2147483647 else None,
        "CertificateArn": row["certificate"],
        "DeviceName": row["device_name"],
        "Tags": ctx.tag_list(row["id"]),
    }
    return {k: v for k, v in result.items() if v is not None}


def create_customer_gateway(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    asn = _asn(params)
    ip = _ip(params)
    certificate = params.get("CertificateArn")
    if certificate is not None:
        certificate_subject(certificate)
    if ip is None and certificate is None:
        raise missing("IpAddress")
    if ip is not None and ctx.settings.outside_ip_pool is not None and IPv4Address(ip) in ctx.settings.outside_ip_pool:
        raise bad_value(ip, "IpAddress", "It is inside vgw's api.outside_ip_pool: the customer gateway is"
                        " the other end of the tunnels and needs an address of its own.")
    device = params.get("DeviceName")
    if device is not None and not 1 <= len(device) <= 255:
        raise invalid_value("DeviceName must have 1 to 255 characters")
    rows = ctx.db.execute("SELECT * FROM customer_gateways").fetchall()
    live = [row for row in rows if ctx.live(row)]
    for row in live:
        # EC2 CreateCustomerGateway: an identical request returns the existing gateway.
        if ctx.state(row) != "deleting" and (row["ip_address"], row["bgp_asn"], row["type"], row["device_name"], row["certificate"]) == (
                ip, asn, params["Type"], device, certificate):
            return {"CustomerGateway": describe(ctx, row)}
    if len(live) >= MAX_CUSTOMER_GATEWAYS:
        raise ApiError("CustomerGatewayLimitExceeded",
                       f"You have reached the limit of {MAX_CUSTOMER_GATEWAYS} customer gateways")
    gateway_id = new_id("cgw", ctx.rng)
    ctx.db.execute("INSERT INTO customer_gateways VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                   (gateway_id, asn, ip, certificate, device, params["Type"], ctx.now))
    ctx.tag_on_create(params, "customer-gateway", gateway_id)
    row = ctx.row("customer_gateways", "InvalidCustomerGatewayID", gateway_id)
    return {"CustomerGateway": describe(ctx, row)}


def describe_customer_gateways(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    filters.check_names(params.get("Filters"), _FILTERS)
    rows = ctx.listed_rows("customer_gateways", "InvalidCustomerGatewayID", params.get("CustomerGatewayIds"))
    result = []
    for row in rows:
        item = describe(ctx, row)
        attributes = {"bgp-asn": [row["bgp_asn"]], "customer-gateway-id": [row["id"]],
                      "ip-address": [row["ip_address"] or ""], "state": [item["State"]], "type": [row["type"]],
                      "device-name": [row["device_name"] or ""]}
        if filters.matches(params.get("Filters"), attributes, ctx.tags(row["id"])):
            result.append(item)
    return {"CustomerGateways": result}


def delete_customer_gateway(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    gateway_id = params["CustomerGatewayId"]
    row = ctx.row("customer_gateways", "InvalidCustomerGatewayID", gateway_id)
    if ctx.state(row) in ("deleting", "deleted"):
        return {}
    for connection in ctx.db.execute("SELECT * FROM vpn_connections WHERE customer_gateway_id = ?", (gateway_id,)):
        if ctx.live(connection):
            raise incorrect_state(f"The customer gateway '{gateway_id}' is in use by {connection['id']}")
    ctx.db.execute("UPDATE customer_gateways SET state = 'deleting', since = ? WHERE id = ?", (ctx.now, gateway_id))
    return {}
