"""One vgw process (the virtual private gateway): its sections, its connections,
and the checks across connections (quota, unique names, outside IPs and inside
CIDRs, ASNs, static routes that would capture vgw's own packets, certificates).

Its own module because these checks need the whole file; each is a named method
that returns its problems, so that all of them are reported at once. Section
numbers (§N) are docs/aws.md's.
"""

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr, ValidationInfo, model_validator

from .api import ApiConfig
from ..credentials import check_issued, read_ca, resolve
from .connection import ConnectionConfig
from .errors import ConfigIssue, path_text
from .sections import DataPathConfig, DosProtectionConfig, MetricsConfig, VpcConfig
from .tunnel import TunnelConfig, choose_inside_cidr
from .values import (
    DEFAULT_AMAZON_SIDE_ASN,
    AmazonSideAsn,
    ConfigModel,
    CredentialFile,
    TrueOrFalse,
    fail,
    fail_many,
    show,
    whole_number,
)

DEFAULT_CONTROL_SOCKET = "/run/vgw/vgw.sock"
MAX_UNIX_SOCKET_PATH = 107  # sun_path is 108 bytes including the terminating NUL
MAX_CONNECTIONS = 10  # §4.1: Site-to-Site VPN connections per virtual private gateway (default quota)


def _check_socket_path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail(f"must be a file path, e.g. {DEFAULT_CONTROL_SOCKET}; got {show(value)}")
    if len(value.encode()) > MAX_UNIX_SOCKET_PATH:
        raise fail(
            f"is {len(value.encode())} bytes long; a Unix socket path can have at most"
            f" {MAX_UNIX_SOCKET_PATH}: choose a shorter path"
        )
    return value


def _check_ca_files(paths: list[str], info: ValidationInfo) -> list[str]:
    """Each CA file must be readable and hold CA certificates. Checked as a field,
    so that its problems are reported beside the tunnels' own (a model check runs
    only when every field passed)."""
    base = (info.context or {}).get("base_dir")
    problems = []
    for index, path in enumerate(paths):
        try:
            read_ca(resolve(path, base))
        except ValueError as exc:
            problems.append(((index,), str(exc)))
    if problems:
        raise fail_many(problems)
    return paths


class GatewayConfig(ConfigModel):
    """One vgw process: the virtual private gateway, its VPC and its VPN connections."""

    _warned: list = PrivateAttr(default_factory=list)   # (key path, message) or ConfigIssue

    control_socket: Annotated[str, BeforeValidator(_check_socket_path)] = DEFAULT_CONTROL_SOCKET
    # The CAs that vouch for customer gateways' certificates (the stand-in for AWS
    # Private CA); certificate tunnels need at least one. PEM files.
    ca_certificates: Annotated[list[CredentialFile], AfterValidator(_check_ca_files)] = Field(default_factory=list)
    metrics: MetricsConfig | None = None  # vgw only; off by default
    dos_protection: DosProtectionConfig = Field(default_factory=DosProtectionConfig)  # vgw only
    data_path: DataPathConfig = Field(default_factory=DataPathConfig)  # vgw only
    # vgw only: the emulate_limits of every connection that does not set its own
    emulate_limits: TrueOrFalse = False
    # §4.1: "Site-to-Site VPN connections per virtual private gateway", 10 by default and
    # adjustable (a quota increase at AWS); vgw only: raise it here
    max_connections: Annotated[int, whole_number(1, 1000)] = MAX_CONNECTIONS
    # §1.11: the virtual private gateway's ASN (AmazonSideAsn)
    amazon_side_asn: AmazonSideAsn = DEFAULT_AMAZON_SIDE_ASN
    # omitted: a VPN CloudHub hub with no VPC behind it (docs/aws.md §7)
    vpc: VpcConfig | None = None
    # the EC2 API (docs/api.md): its connections run beside these; with it, the
    # file may have no connection at all (vgw waits for the API's)
    api: ApiConfig | None = None
    connections: list[ConnectionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_gateway(self) -> "GatewayConfig":
        """The checks across connections, each a method returning its problems; all
        of them are reported together."""
        outside = self._outside_ips()
        problems = [
            *self._presence_problems(),
            *self._quota_problems(),
            *self._name_problems(),
            *self._outside_ip_problems(outside),
            *self._customer_gateway_ip_problems(outside),
            *self._assign_inside_cidrs(),
            *self._asn_problems(),
            *self._static_route_problems(),
        ]
        self._warn_shared_asns()
        if problems:
            raise fail_many(problems)
        return self

    def _presence_problems(self) -> list[tuple[tuple, str]]:
        if self.connections or self.api is not None:
            return []
        return [(("connections",), "is empty; add at least one connection with a name and its tunnels,"
                 " or an api section to create connections through the EC2 API (docs/api.md)")]

    def _quota_problems(self) -> list[tuple[tuple, str]]:
        # §4.1: "Site-to-Site VPN connections per virtual private gateway: 10" (adjustable)
        if len(self.connections) <= self.max_connections:
            return []
        return [(("connections",),
                 f"has {len(self.connections)} connections; the quota of Site-to-Site VPN connections per"
                 f" virtual private gateway is {self.max_connections} (AWS's default is {MAX_CONNECTIONS}):"
                 " remove some, or raise max_connections as you would ask AWS for a quota increase")]

    def _name_problems(self) -> list[tuple[tuple, str]]:
        problems = []
        names: dict[str, int] = {}
        for ci, connection in enumerate(self.connections):
            if connection.name in names:
                problems.append((("connections", ci, "name"),
                                 f"{connection.name} is already the name of connections[{names[connection.name]}];"
                                 " give each connection its own name"))
            names.setdefault(connection.name, ci)
        return problems

    def _outside_ips(self) -> dict[IPv4Address, str]:
        """Each outside IP and the first tunnel that has it ("connections[0].tunnels[1]")."""
        outside: dict[IPv4Address, str] = {}
        for ci, ti, tunnel in self._indexed_tunnels():
            outside.setdefault(tunnel.outside_ip, f"connections[{ci}].tunnels[{ti}]")
        return outside

    def _outside_ip_problems(self, outside: dict[IPv4Address, str]) -> list[tuple[tuple, str]]:
        # Outside IPs identify tunnels (CloudWatch's TunnelIpAddress, docs/aws.md §5.1): unique.
        problems = []
        for ci, ti, tunnel in self._indexed_tunnels():
            first = outside[tunnel.outside_ip]
            if first != f"connections[{ci}].tunnels[{ti}]":
                problems.append((("connections", ci, "tunnels", ti, "outside_ip"),
                                 f"{tunnel.outside_ip} is already the outside IP of {first};"
                                 " each tunnel needs its own outside IP"))
        return problems

    def _customer_gateway_ip_problems(self, outside: dict[IPv4Address, str]) -> list[tuple[tuple, str]]:
        problems = []
        for ci, connection in enumerate(self.connections):
            cgw = connection.customer_gateway.ip
            if cgw is not None and cgw in outside:
                problems.append((("connections", ci, "customer_gateway", "ip"),
                                 f"{cgw} is also the outside IP of {outside[cgw]}; the customer gateway is the other"
                                 " end of the tunnel and needs an address of its own"))
        return problems

    def _assign_inside_cidrs(self) -> list[tuple[tuple, str]]:
        """§1.2: inside CIDRs unique across all connections of one VGW. Explicit ones
        first, then automatic ones avoid every block already taken."""
        problems = []
        inside: dict[IPv4Network, str] = {}
        for ci, ti, tunnel in self._indexed_tunnels():
            if tunnel.inside_cidr_is_auto:
                continue
            if tunnel.inside_cidr in inside:
                problems.append((("connections", ci, "tunnels", ti, "inside_cidr"),
                                 f"{tunnel.inside_cidr} is already the inside CIDR of {inside[tunnel.inside_cidr]};"
                                 " the inside /30 must be unique across the gateway's connections"))
            inside.setdefault(tunnel.inside_cidr, f"connections[{ci}].tunnels[{ti}]")
        for ci, ti, tunnel in self._indexed_tunnels():
            if tunnel.inside_cidr_is_auto:
                tunnel.inside_cidr = choose_inside_cidr(tunnel.outside_ip, inside)
                inside[tunnel.inside_cidr] = f"connections[{ci}].tunnels[{ti}]"
        return problems

    def _asn_problems(self) -> list[tuple[tuple, str]]:
        # §1.11: "The VGW ASN must differ from the CGW ASN" (for BGP to be eBGP at all)
        return [(("connections", ci, "customer_gateway", "bgp_asn"),
                 f"{connection.customer_gateway.bgp_asn} is also amazon_side_asn: the customer gateway"
                 " needs an ASN of its own (e.g. 65000), or change amazon_side_asn")
                for ci, connection in enumerate(self.connections)
                if connection.dynamic and connection.customer_gateway.bgp_asn == self.amazon_side_asn]

    def _static_route_problems(self) -> list[tuple[tuple, str]]:
        """vgw puts static routes in the host's main routing table (daemon/routes.py),
        so a route must not capture vgw's own IKE/ESP packets to a customer gateway
        (they would loop into the TUN) nor replace the host's default route, and
        must not lie inside the VPC."""
        problems = []
        cgw_ips = [(ci, c.customer_gateway.ip) for ci, c in enumerate(self.connections)
                   if c.customer_gateway.ip is not None]
        for ci, connection in enumerate(self.connections):
            for ri, route in enumerate(connection.static_routes):
                where = ("connections", ci, "static_routes", ri)
                if route.prefixlen == 0:
                    problems.append((where, f"{route} would replace the host's default route (vgw installs static"
                                     " routes in the main routing table) and send vgw's own IKE/ESP packets into"
                                     " the tunnel; list the customer's prefixes instead"))
                    continue
                captured = [(cj, ip) for cj, ip in cgw_ips if ip in route]
                if captured:
                    cj, ip = captured[0]
                    owner = "this connection's" if cj == ci else f"connections[{cj}]'s"
                    problems.append((where, f"{route} contains {ip}, {owner} customer_gateway.ip: vgw's IKE/ESP"
                                     " packets to the customer gateway would be routed into the tunnel itself;"
                                     f" split the route so that it leaves out {ip}, or remove it"))
                    continue
                for vpc_cidr in self.vpc_cidrs:
                    # A supernet of the VPC (e.g. 10.0.0.0/8 around 10.0.0.0/16) is fine:
                    # the VPC's local route is more specific.
                    if route.subnet_of(vpc_cidr):
                        problems.append((where, f"{route} is inside the VPC CIDR {vpc_cidr}: those addresses are"
                                         " in the VPC, not behind the customer gateway; remove the route"))
                        break
        return problems

    @model_validator(mode="after")
    def _check_certificates(self, info: ValidationInfo) -> "GatewayConfig":
        """Read ca_certificates; every certificate tunnel's chain must lead to one of them."""
        base = (info.context or {}).get("base_dir")
        problems: list[tuple[tuple, str]] = []
        ders: list[bytes] = []
        for path in self.ca_certificates:
            ders += read_ca(resolve(path, base))      # read and checked by _check_ca_files
        for ci, ti, tunnel in self._indexed_tunnels():
            if tunnel.auth_method != "certificate":
                continue
            where = ("connections", ci, "tunnels", ti, "certificate")
            if not self.ca_certificates:
                problems.append((where, "certificate authentication needs ca_certificates at the top level:"
                                 " the CA certificate(s) (PEM) that issue the customer gateway's certificate"))
            elif ders:
                problem, warning = check_issued(tunnel.certificate_chain, tuple(ders), tunnel.certificate)
                if problem:
                    problems.append((where, problem))
                if warning:
                    self._warned.append((where, warning))
            tunnel._trust = tuple(ders)
        if problems:
            raise fail_many(problems)
        return self

    @property
    def warnings(self) -> list[ConfigIssue]:
        """What vgw runs with but the user should know (e.g. an intermediate CA
        missing from vgw's certificate file, CloudHub sites sharing an ASN), with
        lines once parse_config set them."""
        return [issue if isinstance(issue, ConfigIssue) else ConfigIssue(path_text(issue[0]), issue[1])
                for issue in self._warned]

    @property
    def vpc_cidrs(self) -> list[IPv4Network]:
        """The VPC's CIDR blocks; none for a CloudHub hub without a VPC."""
        return list(self.vpc.cidrs) if self.vpc else []

    def _warn_shared_asns(self) -> None:
        """§7 (CloudHub): "You must use a unique BGP ASN for each customer gateway": a
        site drops the routes of another site that has its own ASN in their AS_PATH.
        Several connections of one customer gateway (one IP) may share its ASN."""
        by_asn: dict[int, list[int]] = {}
        for ci, connection in enumerate(self.connections):
            if connection.dynamic:
                by_asn.setdefault(connection.customer_gateway.bgp_asn, []).append(ci)
        for asn, indexes in by_asn.items():
            cgw_ips = {str(self.connections[ci].customer_gateway.ip) for ci in indexes}
            if len(indexes) > 1 and len(cgw_ips) > 1:
                names = ", ".join(self.connections[ci].name for ci in indexes)
                for ci in indexes[1:]:
                    self._warned.append((("connections", ci, "customer_gateway", "bgp_asn"),
                                         f"connections {names} have customer gateways with the same bgp_asn {asn}:"
                                         " with VPN CloudHub each site drops the others' routes (their AS_PATH"
                                         " holds its own ASN); give each site's customer gateway its own ASN"))

    def limits_emulated(self, connection: ConnectionConfig) -> bool:
        """Whether the connection's tunnels enforce AWS's per-tunnel limits: its own
        emulate_limits, else the top level's."""
        return self.emulate_limits if connection.emulate_limits is None else connection.emulate_limits

    def _indexed_tunnels(self):
        for ci, connection in enumerate(self.connections):
            for ti, tunnel in enumerate(connection.tunnels):
                yield ci, ti, tunnel

    def all_tunnels(self) -> list[tuple[ConnectionConfig, TunnelConfig]]:
        """Every (connection, tunnel) pair, in file order."""
        return [(connection, tunnel) for connection in self.connections for tunnel in connection.tunnels]

    def find_tunnel(self, outside_ip: IPv4Address | str) -> tuple[ConnectionConfig, TunnelConfig] | None:
        """The tunnel with this outside IP (the tunnel's name on the command line), or None."""
        address = IPv4Address(outside_ip)
        for connection, tunnel in self.all_tunnels():
            if tunnel.outside_ip == address:
                return connection, tunnel
        return None
