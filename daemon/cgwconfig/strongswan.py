"""swanctl.conf for a strongSwan customer gateway (`vgw cgw-config --vendor strongswan`).

What AWS's own strongSwan sample does (docs/aws.md §6.3), in swanctl terms: both
tunnels, IKEv2 with a PSK per tunnel, identities the two outside IPs
(ID_IPV4_ADDR), selectors local_network_cidr <-> remote_network_cidr (0.0.0.0/0
both ways by default, §1.8), DPD every 10 s with restart (`dpddelay=10s`,
`dpdaction=restart`), initiated at load (`auto=start`) and retried forever
(`keyingtries=%forever`), route-based: the sample marks each tunnel (`mark=100`,
`200`) for a VTI; the swanctl equivalent is an XFRM interface per tunnel
(`if_id_in`/`if_id_out` 1 and 2), created by the commands in the file's header.

On a dynamic connection each tunnel's inside /30 joins its selectors, local and
remote, beside the connection's CIDRs. With XFRM interfaces the route picks the
interface and so the tunnel, and 0.0.0.0/0 holds the /30 anyway (strongSwan drops
a selector that another one of the list holds). With charon's kernel-libipsec
(one ipsec0 for every CHILD SA, the SA picked by the packet's addresses) each BGP
session stays on its own tunnel only if no other tunnel's local selector holds
its source address: the site's prefixes must replace 0.0.0.0/0 in local_ts
(vgw cannot know them: a marked edit, as in frr.conf), and the CGW inside
addresses go on ipsec0, which also makes FRR see its neighbors directly
connected; the header says both. The BGP speaker's configuration is frr.py's.

Proposals follow the tunnel options: vgw takes the first combination of *its*
lists the peer offers (README), so the customer gateway may offer them all; they
are written in the configured (preference) order, so that strongSwan's first DH
guess is vgw's preferred group and no INVALID_KE round trip is needed. AES-GCM
(AEAD) and AES-CBC cannot share a strongSwan proposal, so each gets its own. Phase 2
lists the PFS groups: the first CHILD SA has no KE (IKE_AUTH), a rekey does.

Lifetimes: AWS rekeys at lifetime - margin, minus up to fuzz% of the margin
(§1.6); the same figures are given to strongSwan (`rekey_time`, `rand_time`), with
the hard limit at the lifetime itself (`over_time`/`life_time`).
"""

from __future__ import annotations

from cryptography import x509

from ..config import ConnectionConfig, TunnelConfig
from . import DPD_INTERVAL, TCP_MSS_ADJUSTMENT
from .bgp import selector_gaps
from .names import SWAN_DH, SWAN_ENCRYPTION, SWAN_INTEGRITY, SWAN_PRF, is_gcm


def _proposals(encryptions: list[str], integrities: list[str], groups: list[int], ike: bool) -> list[str]:
    cbc = [SWAN_ENCRYPTION[e] for e in encryptions if not is_gcm(e)]
    gcm = [SWAN_ENCRYPTION[e] for e in encryptions if is_gcm(e)]
    dh = [SWAN_DH[g] for g in groups]
    out = []
    for kind in ("gcm", "cbc") if is_gcm(encryptions[0]) else ("cbc", "gcm"):
        if kind == "cbc" and cbc:
            out.append("-".join(cbc + [SWAN_INTEGRITY[i] for i in integrities] + dh))
        elif kind == "gcm" and gcm:
            # AEAD in IKE still needs a PRF (RFC 5282); in ESP there is no integrity algorithm
            prf = [SWAN_PRF[i] for i in integrities] if ike else []
            out.append("-".join(gcm + prf + dh))
    return out


def _tunnel(connection: ConnectionConfig, tunnel: TunnelConfig, number: int) -> tuple[str, list[str], list[str]]:
    """(name, connection lines, secret lines) of one tunnel."""
    name = f"{connection.name}-tunnel{number}"
    cgw_ip = connection.customer_gateway.ip
    margin = tunnel.rekey_margin_time_seconds
    rand = margin * tunnel.rekey_fuzz_percentage // 100
    ike = _proposals(tunnel.phase1_encryption_algorithms, tunnel.phase1_integrity_algorithms,
                     tunnel.phase1_dh_group_numbers, ike=True)
    esp = _proposals(tunnel.phase2_encryption_algorithms, tunnel.phase2_integrity_algorithms,
                     tunnel.phase2_dh_group_numbers, ike=False)
    cert = tunnel.auth_method == "certificate"
    if cert:
        cgw_identity = connection.customer_gateway.identity
        local_id = (f"id = {_quoted(cgw_identity)}" if cgw_identity else
                    "# id = <the subject DN or a DNS name of your certificate>")
        local_auth = ["            auth = pubkey", "            certs = cgw-cert.pem   # in swanctl/x509/"]
        remote_auth = ["            auth = pubkey", f"            id = {_quoted(vgw_identity(tunnel))}"]
    else:
        local_id = f"id = {cgw_ip}" if cgw_ip else "# id = <your public IP> (the connection has no customer_gateway.ip)"
        local_auth = ["            auth = psk"]
        remote_auth = ["            auth = psk", f"            id = {tunnel.outside_ip}"]
    conn = [
        f"    {name} {{",
        "        version = 2",
        f"        remote_addrs = {tunnel.outside_ip}",
        f"        proposals = {','.join(ike)}",
        f"        rekey_time = {tunnel.phase1_lifetime_seconds - margin}s",
        f"        over_time = {margin}s",
        f"        rand_time = {rand}s",
        f"        dpd_delay = {DPD_INTERVAL}s",
        "        keyingtries = 0",
        "        mobike = no",
        "        local {",
        *local_auth,
        f"            {local_id}",
        "        }",
        "        remote {",
        *remote_auth,
        "        }",
        "        children {",
        f"            {name} {{",
        *(["                # kernel-libipsec: your site's prefixes in place of 0.0.0.0/0 (see the header)"]
          if connection.dynamic and connection.local_network_cidr.prefixlen == 0 else []),
        f"                local_ts = {_selectors(connection.local_network_cidr, connection, tunnel)}",
        f"                remote_ts = {_selectors(connection.remote_network_cidr, connection, tunnel)}",
        f"                esp_proposals = {','.join(esp)}",
        f"                life_time = {tunnel.phase2_lifetime_seconds}s",
        f"                rekey_time = {tunnel.phase2_lifetime_seconds - margin}s",
        f"                rand_time = {rand}s",
        f"                replay_window = {tunnel.replay_window_size}",
        f"                if_id_in = {number}",
        f"                if_id_out = {number}",
        "                start_action = start",
        "                dpd_action = restart",
        "                close_action = start",
        "            }",
        "        }",
        "    }",
    ]
    if cert:
        # the private key goes to swanctl/private/, the CA (ca_certificates) to swanctl/x509ca/
        return name, conn, []
    ids_line = [f"        id-1 = {cgw_ip}"] if cgw_ip else []
    secret = [f"    ike-{name} {{", *ids_line, f"        id-2 = {tunnel.outside_ip}",
              f'        secret = "{tunnel.pre_shared_key}"', "    }"]
    return name, conn, secret


def _selectors(cidr, connection: ConnectionConfig, tunnel: TunnelConfig) -> str:
    """The connection's CIDR, and on a dynamic connection the tunnel's inside /30
    beside it (see the module docstring)."""
    return f"{cidr},{tunnel.inside_cidr}" if connection.dynamic else str(cidr)


def swanctl_path(connection: ConnectionConfig) -> str:
    """Where the file goes: swanctl.conf includes conf.d/*.conf."""
    return f"/etc/swanctl/conf.d/{connection.name}.conf"


def vgw_identity(tunnel: TunnelConfig) -> str:
    """The ID vgw presents on a certificate tunnel: certificate_identity (a DNS
    name or an IPv4 address of its certificate) or its certificate's subject DN,
    written in the certificate's RDN order as strongSwan reads DNs
    ("C=US, O=Example, CN=vgw")."""
    if tunnel.certificate_identity:
        return tunnel.certificate_identity
    leaf = x509.load_der_x509_certificate(tunnel.certificate_chain[0])
    return ", ".join(rdn.rfc4514_string() for rdn in leaf.subject.rdns)


def _quoted(identity: str) -> str:
    return f'"{identity}"' if ("," in identity or " " in identity or "=" in identity) else identity


def _bgp_head(connection: ConnectionConfig) -> list[str]:
    """The header's part for a dynamic connection (see the module docstring)."""
    inside = " and ".join(f"{t.cgw_inside_ip}/{t.inside_cidr.prefixlen}" for t in connection.tunnels)
    return [
        "# Dynamic routing: BGP over both tunnels (frr.conf, printed with this file), so no route to the",
        "# VPC above: FRR learns it from each tunnel's neighbor. Each tunnel's inside /30 is in its traffic",
        "# selectors, so that each BGP session stays on its own tunnel. With charon's kernel-libipsec",
        "# instead of XFRM interfaces (one ipsec0 for all tunnels, the SA chosen by the packet's",
        "# addresses), put your site's prefixes in place of 0.0.0.0/0 in each local_ts, and the inside",
        f"# addresses on ipsec0 once charon runs, before the tunnels come up: ip addr add {inside} dev ipsec0",
        *[f"# WARNING: {gap}." for gap in selector_gaps(connection)],
    ]


def render_swanctl(connection: ConnectionConfig, i: dict[str, str], vpc_cidrs) -> str:
    cgw = connection.customer_gateway.ip or "<your public IP>"
    head = [
        f"# swanctl.conf for the customer gateway of VPN connection {connection.name} ({i['vpn_connection_id']}),",
        "# generated by `vgw cgw-config --vendor strongswan`. strongSwan 5.8 or later, IKEv2, route-based:",
        "# one XFRM interface per tunnel (if_id 1 and 2). Keep charon from installing policy routes",
        "# (strongswan.conf: charon { install_routes = no }), then, per tunnel N (replace eth0):",
    ]
    for number, tunnel in enumerate(connection.tunnels, start=1):
        head += [
            f"#   ip link add aws-tun{number} type xfrm dev eth0 if_id {number}",
            f"#   ip addr add {tunnel.cgw_inside_ip}/30 dev aws-tun{number}   # the VGW is {tunnel.vgw_inside_ip}",
            f"#   ip link set aws-tun{number} up mtu 1419",
        ]
    vpc = " ".join(str(c) for c in vpc_cidrs)
    if not connection.dynamic:
        head.append(f"#   ip route add <each VPC CIDR: {vpc}> dev aws-tun1 metric 100   (aws-tun2: metric 200)")
    head += [
        f"#   iptables -t mangle -A FORWARD -o aws-tun+ -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss {TCP_MSS_ADJUSTMENT}",
        "#   sysctl -w net.ipv4.conf.aws-tun1.rp_filter=2 net.ipv4.conf.aws-tun2.rp_filter=2",
        "# (AWS answers on either tunnel: asymmetric routing is normal.) Load with: swanctl --load-all",
    ]
    if connection.dynamic:
        head += _bgp_head(connection)
    if any(t.auth_method == "certificate" for t in connection.tunnels):
        head += [
            "# Certificate tunnels: your certificate in swanctl/x509/cgw-cert.pem, its key in",
            "# swanctl/private/, and the CA that vgw trusts (ca_certificates) in swanctl/x509ca/.",
        ]
    head += [
        f"# This customer gateway: {cgw}. Both tunnels start at load and restart after DPD or a DELETE.",
        "",
    ]
    conns, secrets = [], []
    for number, tunnel in enumerate(connection.tunnels, start=1):
        _, conn, secret = _tunnel(connection, tunnel, number)
        conns += conn
        secrets += secret
    return "\n".join(head + ["connections {", *conns, "}", "", "secrets {", *secrets, "}", ""])
