"""What every vendor's output says about BGP on a dynamic connection.

The session of each tunnel runs between its inside addresses (VGW network+1,
CGW network+2, docs/aws.md §1.2), so the inside /30 must lie within both traffic
selectors: vgw, as AWS, narrows what the customer gateway proposes to
local_network_cidr / remote_network_cidr, and a /30 outside them is narrowed
away, leaving IPsec up and BGP down (docs/aws.md §1.8, §11.3).
"""

from __future__ import annotations

from ..config import ConnectionConfig
from ..routing.paths import MED_OTHER, MED_PRIMARY

__all__ = ["MED_OTHER", "MED_PRIMARY", "selector_gaps", "vpc_cidrs_text"]


def selector_gaps(connection: ConnectionConfig) -> list[str]:
    """One line per traffic selector that leaves out a tunnel's inside /30 (BGP
    cannot cross that tunnel); empty when every session fits."""
    gaps = []
    for key in ("local_network_cidr", "remote_network_cidr"):
        allowed = getattr(connection, key)
        left_out = [str(t.inside_cidr) for t in connection.tunnels if not t.inside_cidr.subnet_of(allowed)]
        if left_out:
            gaps.append(f"{key} {allowed} leaves out the inside {', '.join(left_out)}: BGP cannot cross"
                        f" (AWS narrows the selectors to it); set {key}: 0.0.0.0/0")
    return gaps


def vpc_cidrs_text(vpc_cidrs) -> str:
    """The VPC's CIDR blocks as the texts name them (a CloudHub hub has none)."""
    return ", ".join(str(c) for c in vpc_cidrs) or "none: this gateway has no VPC (a VPN CloudHub hub)"
