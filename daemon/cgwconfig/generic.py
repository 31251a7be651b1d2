"""The generic text configuration (`vgw cgw-config --vendor generic`).

AWS's generic config (docs/aws.md §6.2) walks each tunnel in four parts: IKE,
IPsec (with DPD interval 10 / retries 3, TCP MSS adjustment, clear DF bit,
fragmentation before encryption), the tunnel interface (outside and inside
addresses, MTU 1436) and routing: static routes, or on a dynamic connection
BGP with AWS's labels (Customer Gateway ASN, Virtual Private Gateway ASN,
Neighbor IP Address, Neighbor Hold Time 30; keepalive 10 as its Cisco and
Check Point samples set it, §11.1). AWS's text always shows IKEv1 with
aes-128-cbc/sha1/group 2; vgw's shows what the tunnel is configured for: IKEv2,
the preferred (first) value of each list, then every value it accepts, in order.
"""

from __future__ import annotations

from ..config import ConnectionConfig, TunnelConfig
from . import BGP_HOLD_TIME, BGP_KEEPALIVE, DPD_INTERVAL, DPD_RETRIES, TCP_MSS_ADJUSTMENT, TUNNEL_MTU
from .bgp import MED_OTHER, MED_PRIMARY, selector_gaps, vpc_cidrs_text
from .names import XML_ENCRYPTION, XML_ESP_INTEGRITY, XML_IKE_INTEGRITY, is_gcm

RULE = "-" * 78


def _row(label: str, value) -> str:
    return f"  - {label:<32}: {value}"


def _listed(first: str, every: list[str]) -> str:
    return first if len(every) == 1 else f"{first} (also accepted, in vgw's order: {', '.join(every[1:])})"


def _auth_rows(connection: ConnectionConfig, tunnel: TunnelConfig) -> list[str]:
    if tunnel.auth_method != "certificate":
        return [_row("Authentication Method", "Pre-Shared Key"),
                _row("Pre-Shared Key", tunnel.pre_shared_key)]
    from .strongswan import vgw_identity
    yours = connection.customer_gateway.identity or "any identity your certificate holds"
    return [_row("Authentication Method", "Certificate (X.509, RFC 7427 signatures)"),
            _row("Your identity", yours),
            _row("AWS's identity", vgw_identity(tunnel)),
            _row("Trusted CA", "the CA in vgw's ca_certificates must have issued your certificate")]


def _static_routing(connection: ConnectionConfig, tunnel: TunnelConfig, vpc_cidrs: list) -> list[str]:
    return [
        "#4: Static Routing Configuration",
        "",
        "Route the VPC's CIDR blocks into this tunnel interface, next hop the VGW's inside address:",
        *[f"  - {cidr} via {tunnel.vgw_inside_ip}" for cidr in vpc_cidrs],
        "Your networks that AWS routes into this connection (its static routes):",
        *([f"  - {r}" for r in connection.static_routes] or ["  - (none configured)"]),
    ]


def _bgp_routing(connection: ConnectionConfig, tunnel: TunnelConfig, vpc_cidrs: list,
                 amazon_side_asn: int) -> list[str]:
    gaps = selector_gaps(connection)
    return [
        "#4: Border Gateway Protocol (BGP) Configuration",
        "",
        "BGP-4 runs inside the tunnel, between the inside IP addresses, and carries the routes between",
        "the VPC and your network. Each side has its own Autonomous System Number (ASN); yours was",
        "given when the customer gateway was created (vgw's config: customer_gateway.bgp_asn).",
        "",
        _row("Customer Gateway ASN", connection.customer_gateway.bgp_asn),
        _row("Virtual Private Gateway ASN", amazon_side_asn),
        _row("Neighbor IP Address", tunnel.vgw_inside_ip),
        _row("Neighbor Hold Time", BGP_HOLD_TIME),
        _row("Keepalive Interval", BGP_KEEPALIVE),
        _row("Your BGP source address", tunnel.cgw_inside_ip),
        "",
        "Announce your network's prefixes to the virtual private gateway: AWS routes to you only what",
        "you announce, at most 100 prefixes per session (the 101st ends the session).",
        f"The virtual private gateway announces the VPC's CIDR blocks ({vpc_cidrs_text(vpc_cidrs)})",
        f"with AS_PATH {amazon_side_asn}: MED {MED_PRIMARY} on the tunnel AWS sends its traffic on, MED {MED_OTHER}"
        " on the other.",
        "It also announces the prefixes of this gateway's other dynamic connections (VPN CloudHub).",
        "Keep weight and local preference equal on both tunnels, so that the lower MED picks your",
        "tunnel too.",
        "The BGP session needs this tunnel's inside addresses within both traffic selectors.",
        *[f"WARNING: {gap}." for gap in gaps],
        "It takes approximately 30 seconds for a BGP peering to be established.",
    ]


def _tunnel(connection: ConnectionConfig, tunnel: TunnelConfig, number: int, vpc_cidrs: list,
            amazon_side_asn: int) -> list[str]:
    cgw_ip = connection.customer_gateway.ip or "<your public IP>"
    p1_encr = [XML_ENCRYPTION[e] for e in tunnel.phase1_encryption_algorithms]
    p1_integ = [XML_IKE_INTEGRITY[i] for i in tunnel.phase1_integrity_algorithms]
    p2_encr = [XML_ENCRYPTION[e] for e in tunnel.phase2_encryption_algorithms]
    p2_integ = [XML_ESP_INTEGRITY[i] for i in tunnel.phase2_integrity_algorithms]
    p1_dh = [f"Group {g}" for g in tunnel.phase1_dh_group_numbers]
    p2_dh = [f"Diffie-Hellman Group {g}" for g in tunnel.phase2_dh_group_numbers]
    gcm_only = all(is_gcm(e) for e in tunnel.phase2_encryption_algorithms)
    routing = (_bgp_routing(connection, tunnel, vpc_cidrs, amazon_side_asn) if connection.dynamic
               else _static_routing(connection, tunnel, vpc_cidrs))
    return [
        RULE,
        f"IPSec Tunnel #{number}",
        RULE,
        "",
        "#1: Internet Key Exchange (IKE) Configuration",
        "",
        _row("IKE version", "IKEv2"),
        *_auth_rows(connection, tunnel),
        _row("Authentication Algorithm", _listed(p1_integ[0], p1_integ)),
        _row("Encryption Algorithm", _listed(p1_encr[0], p1_encr)),
        _row("Lifetime", f"{tunnel.phase1_lifetime_seconds} seconds"),
        _row("Diffie-Hellman", _listed(p1_dh[0], p1_dh)),
        *([] if tunnel.auth_method == "certificate" else
          [_row("Identities", f"IP addresses: yours {cgw_ip}, AWS's {tunnel.outside_ip}")]),
        "",
        "#2: IPSec Configuration",
        "",
        _row("Protocol", "esp"),
        _row("Authentication Algorithm", "none (AES-GCM authenticates)" if gcm_only
             else _listed(p2_integ[0], p2_integ)),
        _row("Encryption Algorithm", _listed(p2_encr[0], p2_encr)),
        _row("Lifetime", f"{tunnel.phase2_lifetime_seconds} seconds"),
        _row("Mode", "tunnel"),
        _row("Perfect Forward Secrecy", _listed(p2_dh[0], p2_dh)),
        _row("Traffic selectors", f"{connection.local_network_cidr} (yours) <-> {connection.remote_network_cidr}"
             " (AWS's)"),
        "",
        "Dead Peer Detection runs on the AWS end: after 10 s without traffic it sends a liveness check, and",
        f"after {tunnel.dpd_timeout_seconds} s without an answer it acts ({tunnel.dpd_timeout_action}). Configure"
        " DPD on your end as:",
        _row("DPD Interval", DPD_INTERVAL),
        _row("DPD Retries", DPD_RETRIES),
        "",
        "Packets that do not fit the tunnel: clamp TCP, clear DF and fragment before encrypting:",
        _row("TCP MSS Adjustment", f"{TCP_MSS_ADJUSTMENT} bytes"),
        _row("Clear Don't Fragment Bit", "enabled"),
        _row("Fragmentation", "Before encryption"),
        "",
        "#3: Tunnel Interface Configuration",
        "",
        "Outside IP Addresses:",
        _row("Customer Gateway", cgw_ip),
        _row("Virtual Private Gateway", tunnel.outside_ip),
        "",
        "Inside IP Addresses:",
        _row("Customer Gateway", f"{tunnel.cgw_inside_ip}/{tunnel.inside_cidr.prefixlen}"),
        _row("Virtual Private Gateway", f"{tunnel.vgw_inside_ip}/{tunnel.inside_cidr.prefixlen}"),
        "",
        _row("Tunnel interface MTU", f"{TUNNEL_MTU} bytes"),
        "",
        *routing,
        "",
    ]


def render_generic(connection: ConnectionConfig, i: dict[str, str], vpc_cidrs, amazon_side_asn: int) -> str:
    lines = [
        "vgw: the AWS side of a Site-to-Site VPN (generic customer gateway configuration)",
        "",
        _row("Your VPN Connection ID", i["vpn_connection_id"]),
        _row("Your Virtual Private Gateway ID", i["vpn_gateway_id"]),
        _row("Your Customer Gateway ID", i["customer_gateway_id"]),
        _row("Connection name (vgw)", connection.name),
        _row("VPC CIDR blocks", ", ".join(str(c) for c in vpc_cidrs)),
        "",
        f"This connection has {len(connection.tunnels)} tunnel(s). Configure all of them: AWS sends its",
        "traffic over one tunnel at a time and accepts yours on any. The values below are what this",
        "gateway is configured to accept; the first one is the one it prefers.",
        "",
    ]
    for number, tunnel in enumerate(connection.tunnels, start=1):
        lines += _tunnel(connection, tunnel, number, vpc_cidrs, amazon_side_asn)
    return "\n".join(lines)
