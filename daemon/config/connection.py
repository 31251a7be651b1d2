"""One VPN connection (AWS's VpnConnection): its customer gateway, static
routes or BGP, traffic selectors and its one or two tunnels, with the checks that
span its tunnels.

Its own module because the connection is the unit the EC2 API layer creates and
deletes, and the unit cgw-config renders. Section numbers (§N) are docs/aws.md's.
"""

from ipaddress import IPv4Network
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from .tunnel import TunnelConfig
from .values import (
    DEFAULT_CUSTOMER_GATEWAY_ASN,
    Address,
    Cidr,
    ConfigModel,
    CustomerGatewayAsn,
    Name,
    PeerIdentity,
    TrueOrFalse,
    TunnelBandwidth,
    fail,
    fail_many,
    listed_twice,
)

MAX_TUNNELS_PER_CONNECTION = 2  # §1.1: AWS always creates exactly two
MAX_STATIC_ROUTES = 100  # §4.1: static routes from CGW to a VGW connection, not adjustable


class CustomerGatewayConfig(ConfigModel):
    """The customer gateway (AWS's CustomerGateway); without ip any address may connect.

    `identity` (vgw only): the ID the customer gateway must present, a DN
    (`CN=cgw.example.net`), an FQDN or an IPv4 address; without it any identity its
    certificate vouches for (or, with a pre-shared key, any). AWS needs it for a
    customer gateway behind NAT when AWS initiates (docs/aws.md §1.7)."""

    ip: Address | None = None
    identity: PeerIdentity | None = None
    # §1.11: the customer gateway's BGP ASN (CreateCustomerGateway BgpAsn / BgpAsnExtended)
    bgp_asn: CustomerGatewayAsn = DEFAULT_CUSTOMER_GATEWAY_ASN


def _check_static_routes(routes: list[IPv4Network]) -> list[IPv4Network]:
    if len(routes) > MAX_STATIC_ROUTES:
        # docs/aws.md §4.1: 100 static routes per VGW connection, not adjustable.
        raise fail(f"has {len(routes)} routes; AWS allows at most {MAX_STATIC_ROUTES} static routes per VPN connection")
    problems = listed_twice(routes, "route")
    if problems:
        raise fail_many(problems)
    return routes


def _check_tunnel_count(tunnels: list[TunnelConfig]) -> list[TunnelConfig]:
    # docs/aws.md §1.1: AWS creates exactly two tunnels per connection; one is enough to test with.
    if not tunnels:
        raise fail("is empty; add one or two tunnels, each with outside_ip and pre_shared_key")
    if len(tunnels) > MAX_TUNNELS_PER_CONNECTION:
        raise fail(
            f"has {len(tunnels)} tunnels; an AWS VPN connection has two at most:"
            " remove the extra ones or put them in another connection"
        )
    return tunnels


class ConnectionConfig(ConfigModel):
    """One VPN connection (AWS's VpnConnection): a customer gateway and its tunnels."""

    name: Name = Field(description="a name for the connection, e.g. name: vpn-lab")
    customer_gateway: CustomerGatewayConfig = Field(default_factory=CustomerGatewayConfig)
    static_routes: Annotated[list[Cidr], AfterValidator(_check_static_routes)] = Field(default_factory=list)
    # AWS's StaticRoutesOnly; omitted: true when static_routes are listed, else false (BGP)
    static_routes_only: TrueOrFalse | None = None
    # §1.9: AWS's TunnelBandwidth, set per connection for both tunnels; standard only on a VGW
    tunnel_bandwidth: TunnelBandwidth = "standard"
    # vgw only: enforce the tunnel_bandwidth's limits (§1.9, §4.1) on each tunnel, each
    # direction on its own; omitted: the top level's emulate_limits (false by default)
    emulate_limits: TrueOrFalse | None = None
    # §1.8: traffic selectors; local is the customer side, remote the AWS side.
    local_network_cidr: Cidr = IPv4Network("0.0.0.0/0")
    remote_network_cidr: Cidr = IPv4Network("0.0.0.0/0")
    tunnels: Annotated[list[TunnelConfig], AfterValidator(_check_tunnel_count)] = Field(
        description="a list of one or two tunnels, each with outside_ip and pre_shared_key"
    )

    @property
    def dynamic(self) -> bool:
        """BGP runs in each tunnel (StaticRoutesOnly false, docs/aws.md §7)."""
        return not self.static_routes_only

    @model_validator(mode="after")
    def _check_connection(self) -> "ConnectionConfig":
        problems: list[tuple[tuple, str]] = []
        if self.static_routes_only is None:
            self.static_routes_only = bool(self.static_routes)
        elif not self.static_routes_only and self.static_routes:
            # §7: "If you select the option to use BGP advertisement, then you cannot specify static routes."
            problems.append(
                (
                    ("static_routes",),
                    "a dynamic connection (static_routes_only: false) learns the customer's prefixes by BGP and"
                    " cannot have static routes (AWS's rule): remove static_routes, or set"
                    " static_routes_only: true to route statically",
                )
            )
        for index, tunnel in enumerate(self.tunnels):
            # §1.7: AWS can initiate only if it knows where the customer gateway is.
            if tunnel.startup_action == "start" and self.customer_gateway.ip is None:
                problems.append(
                    (
                        ("tunnels", index, "startup_action"),
                        "start needs the customer gateway's address: set customer_gateway.ip,"
                        " or use startup_action: add (the customer gateway initiates); behind a NAT"
                        " give the NAT's public address and set customer_gateway.identity (docs/aws.md §1.7)",
                    )
                )
            # restart means vgw initiates again after DPD: same need as start
            if tunnel.dpd_timeout_action == "restart" and self.customer_gateway.ip is None:
                problems.append(
                    (
                        ("tunnels", index, "dpd_timeout_action"),
                        "restart makes vgw initiate again, which needs the customer gateway's address:"
                        " set customer_gateway.ip, or use dpd_timeout_action: clear",
                    )
                )
        for index, route in enumerate(self.static_routes):
            # Route-based VPN with one SA pair per tunnel (§1.8): a route outside the
            # customer-side selector could never pass the tunnel.
            if not route.subnet_of(self.local_network_cidr):
                problems.append(
                    (
                        ("static_routes", index),
                        f"{route} is outside local_network_cidr {self.local_network_cidr}: traffic to it would not"
                        " match the tunnel's traffic selector; widen local_network_cidr or remove the route",
                    )
                )
        if problems:
            raise fail_many(problems)
        return self
