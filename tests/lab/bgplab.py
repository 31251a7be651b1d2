"""Dynamic-routing labs: customer gateways that run BGP over both tunnels, and
many sites on one vgw (redundant CGWs, VPN CloudHub).

A customer gateway here is strongSwan (kernel-libipsec) plus, for a dynamic
connection, FRR, BIRD, GoBGP or ExaBGP (tests/lab/frr.py, bird.py, gobgp.py,
exabgp.py) peering with the VGW inside address of each tunnel (docs/aws.md §1.2:
VGW = network+1 of the tunnel's /30, CGW = network+2). What it takes with libipsec, established here:

* One ``ipsec0`` carries every CHILD SA of a charon, and libipsec picks the SA
  by the packet's addresses. Each tunnel's inside /30 goes into that tunnel's
  selectors (local and remote, beside the site's prefixes), so the session of
  tunnel 1 (169.254.10.2 -> .1) can only match tunnel 1's SA, and tunnel 2's
  only tunnel 2's. Both tunnels carry the site's prefixes.
* The CGW inside addresses (network+2/30) go on ``ipsec0`` itself, after charon
  created it (at start-up) and before any CHILD SA: libipsec refuses a CHILD SA
  whose local selector holds no local address ("unable to install IPsec
  policies"), and the /30 on ipsec0 gives the main table a connected route to
  the VGW inside address. That connected route is what FRR's eBGP "directly
  connected" check and zebra's next-hop lookup want (no ``disable-connected-check``,
  no ``ebgp-multihop``), and what BIRD's direct eBGP wants; learned routes go
  into the main table ``via 169.254.x.1 dev ipsec0``, ahead of libipsec's table
  220 (``routing_table_prio`` 32767 puts that table after main).
* Consequence: on the CGW, a route's next hop does not pick the tunnel. Every
  route leads into ipsec0 and libipsec takes the SA whose selectors match the
  packet: the site's traffic matches both tunnels' SAs, and libipsec uses the
  one installed last (tests/lab/strongswan.py). Which tunnel the CGW sends the
  site's traffic on is libipsec's choice, not BGP's; vgw's side (its route table,
  its egress tunnel, the per-tunnel counters) is what a test can observe.

:func:`hub_topology` builds the many-site lab::

    vpc ---- vgw ---- wan bridge (198.51.100.0/24) ---- cgw s1c1 --+-- onprem s1
    10.0.1.10                |                     `--- cgw s1c2 --'   (br0, 172.16.1.10)
                             +---------------------- cgw s2c1 ----- onprem s2 ...

Connection k (0-based, in site order, a site's CGWs in turn) has the vgw
outside IPs 198.51.100.(2k+1) and .(2k+2), the inside /30s 169.254.(10+2k).0 and
169.254.(11+2k).0 and the CGW WAN address 198.51.100.(101+k); connection 0 has
the standard lab's addresses.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from tests.lab.bgpspeaker import BgpSpeaker, Neighbor
from tests.lab.bird import Bird, bird_unavailable_reason
from tests.lab.exabgp import ExaBgp, exabgp_unavailable_reason
from tests.lab.frr import Frr, frr_unavailable_reason
from tests.lab.gobgp import GoBgp, gobgp_unavailable_reason
from tests.lab.netns import Lab, Topo, topology, wait_until
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import ping
from tests.lab.vgwproc import Vgw, connection_yaml, gateway_yaml_multi, tunnel_yaml

AMAZON_SIDE_ASN = 64512   # docs/aws.md §5.2: AWS's default amazon-side ASN
CGW_ASN = 65000           # docs/aws.md §5.2: AWS's default customer gateway ASN
SPEAKERS = {"frr": Frr, "bird": Bird, "gobgp": GoBgp, "exabgp": ExaBgp}
# libipsec routes table 220 after main, so main's connected and BGP routes win
# (tests/lab/strongswan.py)
CGW_SETTINGS = {"routing_table_prio": 32767}
VPC_CIDR = "10.0.0.0/16"


@dataclass(frozen=True)
class TunnelPlan:
    """One tunnel as both ends see it: vgw's outside IP, the inside /30, the PSK."""

    outside_ip: str
    inside_cidr: str
    psk: str

    @property
    def vgw_inside_ip(self) -> str:
        return str(ipaddress.ip_network(self.inside_cidr).network_address + 1)

    @property
    def cgw_inside_ip(self) -> str:
        return str(ipaddress.ip_network(self.inside_cidr).network_address + 2)


@dataclass
class CgwNode:
    """One customer gateway: one connection of its own to vgw (two tunnels).
    ``charon`` and ``speaker`` are set once started."""

    name: str
    ns: str
    wan_ip: str
    lan_ip: str
    site_prefixes: list[str]
    tunnels: list[TunnelPlan]
    asn: int = CGW_ASN
    charon: Charon | None = None
    speaker: BgpSpeaker | None = None


def connection_plan(k: int) -> tuple[str, list[TunnelPlan]]:
    """Connection k's CGW WAN address and tunnels (see the module docstring)."""
    if not 0 <= k < 40:
        raise ValueError(f"connection index {k} out of the lab's address plan (0-39)")
    tunnels = [TunnelPlan(f"198.51.100.{2 * k + t + 1}", f"169.254.{10 + 2 * k + t}.0/30",
                          f"example_psk_c{k + 1}t{t + 1}_abcdef") for t in range(2)]
    return f"198.51.100.{101 + k}", tunnels


def cgw_of_topo(topo: Topo, asn: int = CGW_ASN) -> CgwNode:
    """The standard lab's CGW (tests/lab/netns.py topology) as a :class:`CgwNode`
    with the tunnels of tests/lab/awspair.py."""
    from tests.lab.awspair import INSIDE, PSKS, VGW_IPS

    return CgwNode("vpn-lab", topo.cgw, topo.cgw_wan_ip, topo.cgw_lan_ip, [topo.onprem_cidr],
                   [TunnelPlan(ip, cidr, psk) for ip, cidr, psk in zip(VGW_IPS, INSIDE, PSKS)], asn)


# -- the customer gateway's IPsec ------------------------------------------


def cgw_swanctl_conf(node: CgwNode, remote_prefixes: Sequence[str] = ("0.0.0.0/0",), **kwargs: Any) -> str:
    """swanctl.conf for ``node``'s two tunnels, each with its inside /30 in its
    selectors beside the site's prefixes (local) and ``remote_prefixes`` (remote).
    ``kwargs`` go to :func:`swanctl_conf_psk` (proposals, DPD...)."""
    return swanctl_conf_psk(
        node.wan_ip, [t.outside_ip for t in node.tunnels], [t.psk for t in node.tunnels],
        local_ts=[[*node.site_prefixes, t.inside_cidr] for t in node.tunnels],
        remote_ts=[[*remote_prefixes, t.inside_cidr] for t in node.tunnels], **kwargs)


def add_inside_addresses(lab: Lab, node: CgwNode, timeout: float = 10.0) -> None:
    """Put the CGW inside addresses (network+2/30) on charon's ipsec0 (see the
    module docstring); waits (bounded) for ipsec0 to exist."""
    wait_until(lambda: lab.run(node.ns, "ip", "link", "show", "ipsec0", check=False).returncode == 0,
               timeout, 0.05, f"ipsec0 in {node.ns}")
    prefixlen = lambda t: ipaddress.ip_network(t.inside_cidr).prefixlen  # noqa: E731
    for t in node.tunnels:
        lab.addr(node.ns, "ipsec0", f"{t.cgw_inside_ip}/{prefixlen(t)}")


def start_cgw(lab: Lab, node: CgwNode, remote_prefixes: Sequence[str] = ("0.0.0.0/0",),
              settings: Mapping[str, Any] | None = None, **conf: Any) -> Charon:
    """Start ``node``'s charon, add its inside addresses, load its two tunnels
    (not initiated: :func:`bring_up_cgw`)."""
    node.charon = Charon(lab, node.ns, name=node.name, settings={**CGW_SETTINGS, **(settings or {})}).start()
    add_inside_addresses(lab, node)
    node.charon.load(cgw_swanctl_conf(node, remote_prefixes, **conf))
    return node.charon


def restart_cgw(lab: Lab, node: CgwNode, remote_prefixes: Sequence[str] = ("0.0.0.0/0",), **conf: Any) -> Charon:
    """Start ``node``'s stopped charon again (its TUN, inside addresses and tunnels
    are new), as a customer gateway that comes back; not initiated."""
    assert node.charon is not None, "start_cgw first"
    node.charon.start()
    add_inside_addresses(lab, node)
    node.charon.load(cgw_swanctl_conf(node, remote_prefixes, **conf))
    return node.charon


def bring_up_cgw(node: CgwNode, vgw: Vgw | None = None, timeout: float = 20.0) -> None:
    """Initiate both tunnels from the CGW (each returns once its CHILD SA is up);
    with ``vgw``, also wait until vgw reports them UP."""
    assert node.charon is not None, "start_cgw first"
    for i in range(len(node.tunnels)):
        node.charon.initiate("net", ike=f"tun{i + 1}", timeout=timeout)
    if vgw is not None:
        wait_tunnels_up(vgw, [t.outside_ip for t in node.tunnels], timeout)


def wait_tunnels_up(vgw: Vgw, outside_ips: Sequence[str], timeout: float = 20.0) -> list[dict]:
    """Wait until vgw reports every tunnel of ``outside_ips`` UP (one ``vgw status``
    per poll for all of them); return the status."""
    box: dict[str, list[dict]] = {}

    def all_up() -> bool:
        box["s"] = vgw.status()
        up = {t["outside_ip"] for t in box["s"] if t["status"] == "UP"}
        return set(outside_ips) <= up

    wait_until(all_up, timeout, 0.2, f"vgw tunnels {', '.join(outside_ips)} UP")
    return box["s"]


# -- the customer gateway's BGP ----------------------------------------------


def cgw_speaker(lab: Lab, node: CgwNode, daemon: str, amazon_side_asn: int = AMAZON_SIDE_ASN,
                networks: Sequence[str] | None = None, **options: Any) -> BgpSpeaker:
    """A BGP speaker (``daemon``: a key of SPEAKERS) for ``node``, not started:
    AS ``node.asn``, router ID its WAN address, a neighbor at each tunnel's VGW
    inside address (AS ``amazon_side_asn``) spoken to from the CGW inside address,
    announcing the site's prefixes (or ``networks``). ``options`` as
    :class:`BgpSpeaker` (med, prepend, max_prefixes...)."""
    neighbors = [Neighbor(t.vgw_inside_ip, amazon_side_asn, t.cgw_inside_ip) for t in node.tunnels]
    node.speaker = SPEAKERS[daemon](
        lab, node.ns, node.asn, node.wan_ip, neighbors,
        node.site_prefixes if networks is None else networks, name=f"{daemon}-{node.name}", **options)
    return node.speaker


# -- vgw's config ----------------------------------------------------------------


def cgw_connection_yaml(node: CgwNode, dynamic: bool = False, bgp_keys: bool = False,
                        tunnel_options: Mapping[str, Any] | None = None) -> str:
    """vgw's connection entry for ``node``. Static: ``static_routes`` = the site's
    prefixes. Dynamic: no static routes; with ``bgp_keys`` also
    ``static_routes_only: false`` and ``customer_gateway.bgp_asn`` (keys today's vgw
    does not know yet: it refuses them)."""
    tunnels = [tunnel_yaml(t.outside_ip, t.inside_cidr, t.psk, **(tunnel_options or {})) for t in node.tunnels]
    if not dynamic:
        return connection_yaml(node.name, node.wan_ip, node.site_prefixes, tunnels)
    return connection_yaml(node.name, node.wan_ip, None, tunnels,
                           cgw_extra={"bgp_asn": node.asn} if bgp_keys else None,
                           extra={"static_routes_only": False} if bgp_keys else None)


def vgw_config(control: str, nodes: Sequence[CgwNode], dynamic: Sequence[bool] | bool = False,
               vpc_cidrs: Sequence[str] | None = (VPC_CIDR,), bgp_keys: bool = False,
               amazon_side_asn: int = AMAZON_SIDE_ASN, tunnel_options: Mapping[str, Any] | None = None) -> str:
    """vgw's YAML: one connection per CGW node (``dynamic`` per node or for all);
    ``amazon_side_asn`` is written only with ``bgp_keys``."""
    flags = [dynamic] * len(nodes) if isinstance(dynamic, bool) else list(dynamic)
    return gateway_yaml_multi(
        control, list(vpc_cidrs) if vpc_cidrs is not None else None,
        [cgw_connection_yaml(n, d, bgp_keys, tunnel_options) for n, d in zip(nodes, flags)],
        top_level={"amazon_side_asn": amazon_side_asn} if bgp_keys else None)


# -- many sites on one vgw ----------------------------------------------------------


@dataclass(frozen=True)
class SiteSpec:
    """A site to build: its LAN ``prefix``, how many CGWs (1, or 2 redundant ones,
    each its own connection), its ASN and BGP daemon ("frr", "bird"; None: static)."""

    prefix: str
    cgws: int = 1
    asn: int = CGW_ASN
    bgp: str | None = None


@dataclass
class Site:
    """A built site: the onprem host's namespace and address, its CGWs."""

    name: str
    spec: SiteSpec
    onprem: str
    onprem_ip: str
    cgws: list[CgwNode] = field(default_factory=list)

    def use_cgw(self, lab: Lab, index: int) -> None:
        """Send the onprem host's traffic through CGW ``index`` (its default route)."""
        lab.route(self.onprem, "default", via=self.cgws[index].lan_ip)


@dataclass
class Hub:
    """One vgw, an optional VPC, and the sites on a shared WAN bridge."""

    vgw: str
    wan: str
    vpc: str | None
    sites: list[Site]
    vgw_wan_if: str = "wan0"
    vpc_cidr: str = VPC_CIDR
    vpc_ip: str = "10.0.1.10"
    vgw_vpc_ip: str = "10.0.1.1"

    @property
    def nodes(self) -> list[CgwNode]:
        """Every CGW, in connection order."""
        return [n for s in self.sites for n in s.cgws]


def hub_topology(lab: Lab, sites: Sequence[SiteSpec], vpc: bool = True) -> Hub:
    """Build vgw (+ VPC) and ``sites`` on one WAN bridge; nothing started.

    Site i (1-based) is namespace ``s<i>`` (its onprem host: a bridge ``br0``
    holding ``<prefix>.10``, a port per CGW), its CGWs ``s<i>c<j>`` with LAN
    address ``<prefix>.<j>``. The onprem host's default route goes via CGW 1.
    vgw and the CGWs forward with rp_filter off (traffic may come back on
    another tunnel or CGW).
    """
    wan = lab.add_ns("wan")
    vgw = lab.add_ns("vgw")
    lab.run(wan, "ip", "link", "add", "br0", "type", "bridge")
    lab.run(wan, "ip", "link", "set", "br0", "up")
    hub = Hub(vgw=vgw, wan=wan, vpc=lab.add_ns("vpc") if vpc else None, sites=[])
    k = 0
    vgw_ips = []
    for i, spec in enumerate(sites, 1):
        net = ipaddress.ip_network(spec.prefix)
        onprem = lab.add_ns(f"s{i}")
        lab.run(onprem, "ip", "link", "add", "br0", "type", "bridge")
        site = Site(f"site{i}", spec, onprem, str(net.network_address + 10))
        lab.addr(onprem, "br0", f"{site.onprem_ip}/{net.prefixlen}")
        for j in range(1, spec.cgws + 1):
            wan_ip, tunnels = connection_plan(k)
            node = CgwNode(f"s{i}c{j}", lab.add_ns(f"s{i}c{j}"), wan_ip,
                           str(net.network_address + j), [spec.prefix], tunnels, spec.asn)
            _, port = lab.veth(node.ns, onprem, f"{node.lan_ip}/{net.prefixlen}", None, "lan0", f"c{j}")
            lab.run(onprem, "ip", "link", "set", port, "master", "br0")
            _, port = lab.veth(node.ns, wan, f"{wan_ip}/24", None, "wan0", node.name)
            lab.run(wan, "ip", "link", "set", port, "master", "br0")
            _router(lab, node.ns)
            site.cgws.append(node)
            vgw_ips += [t.outside_ip for t in tunnels]
            k += 1
        lab.route(onprem, "default", via=site.cgws[0].lan_ip)
        hub.sites.append(site)
    _, port = lab.veth(vgw, wan, [f"{ip}/24" for ip in vgw_ips], None, hub.vgw_wan_if, "vgw")
    lab.run(wan, "ip", "link", "set", port, "master", "br0")
    if hub.vpc:
        lab.veth(vgw, hub.vpc, f"{hub.vgw_vpc_ip}/24", f"{hub.vpc_ip}/24", "vpc0", "eth0")
        lab.route(hub.vpc, "default", via=hub.vgw_vpc_ip)
    _router(lab, vgw)
    return hub


def _router(lab: Lab, ns: str) -> None:
    lab.sysctl(ns, "net.ipv4.ip_forward", 1)
    lab.sysctl(ns, "net.ipv4.conf.all.rp_filter", 0)
    lab.sysctl(ns, "net.ipv4.conf.default.rp_filter", 0)


def start_hub(lab: Lab, hub: Hub, bgp_keys: bool = False, remote_prefixes: Sequence[str] = ("0.0.0.0/0",),
              **speaker_options: Any) -> Vgw:
    """Start vgw with a connection per CGW (dynamic for sites with ``bgp``), every
    CGW's charon with its tunnels loaded, and the BGP speakers of dynamic sites;
    then bring every tunnel up. Returns the running :class:`Vgw`. ``bgp_keys``:
    write what today's vgw refuses (:func:`vgw_config`; no ``vpc`` key for a hub
    without a VPC)."""
    vgw = Vgw(lab, hub.vgw)
    # today's vgw needs a vpc key even without a VPC namespace; a hub without a VPC
    # will omit it once vgw allows that, so it is left out only with bgp_keys
    vpc_cidrs = (hub.vpc_cidr,) if hub.vpc or not bgp_keys else None
    vgw.write_config(vgw_config(vgw.control, hub.nodes, [s.spec.bgp is not None for s in hub.sites
                                                          for _ in s.cgws], vpc_cidrs, bgp_keys))
    vgw.start()
    for site in hub.sites:
        for node in site.cgws:
            start_cgw(lab, node, remote_prefixes)
            if site.spec.bgp:
                cgw_speaker(lab, node, site.spec.bgp, **speaker_options).start()
    for node in hub.nodes:
        bring_up_cgw(node)
    wait_tunnels_up(vgw, [t.outside_ip for n in hub.nodes for t in n.tunnels])
    return vgw


def counters(vgw: Vgw) -> dict[str, dict]:
    """Each tunnel's ``counters`` from ``vgw status --json``, by outside IP."""
    return {t["outside_ip"]: dict(t["counters"]) for t in vgw.status()}


def bgp_unavailable_reason() -> str | None:
    """Why FRR, BIRD, GoBGP and ExaBGP cannot all run here, or None."""
    return (frr_unavailable_reason() or bird_unavailable_reason() or gobgp_unavailable_reason()
            or exabgp_unavailable_reason())


# -- one dynamic connection and what vgw says of it ----------------------------


def dynamic_pair(lab: Lab, daemon: str, cgw_asn: int = CGW_ASN, speaker_asn: int | None = None,
                 tunnel_options: Mapping[str, Any] | None = None,
                 **speaker_options: Any) -> tuple[Topo, CgwNode, Vgw, BgpSpeaker]:
    """vgw with one dynamic connection and a dual-tunnel CGW running ``daemon`` over
    both tunnels (the standard topology); IPsec up, BGP may still be coming."""
    topo = topology(lab)
    node = cgw_of_topo(topo, asn=cgw_asn)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(vgw_config(vgw.control, [node], dynamic=True, bgp_keys=True, tunnel_options=tunnel_options))
    vgw.start()
    start_cgw(lab, node)
    if speaker_asn is not None:
        node.asn = speaker_asn      # the CGW speaks another AS than vgw expects
    speaker = cgw_speaker(lab, node, daemon, **speaker_options).start()
    bring_up_cgw(node)
    return topo, node, vgw, speaker


def wait_dynamic_up(vgw: Vgw, node: CgwNode, timeout: float = 45.0) -> tuple[dict[str, dict], str, str]:
    """Wait until vgw reports both of ``node``'s tunnels UP; check each BGP session
    Established with the CGW's AS and AWS's hold time of 30 s (docs/aws.md §5.2).
    Returns vgw's status by outside IP, then the primary's and the other's outside IP."""
    status = wait_tunnels_up(vgw, [t.outside_ip for t in node.tunnels], timeout)
    by_ip = {t["outside_ip"]: t for t in status}
    for t in node.tunnels:
        bgp = by_ip[t.outside_ip]["bgp"]
        assert bgp["state"] == "Established" and bgp["peer_asn"] == node.asn and bgp["hold_time"] == 30, bgp
    primary = next(ip for ip, t in by_ip.items() if t["primary"])
    other = next(t.outside_ip for t in node.tunnels if t.outside_ip != primary)
    return by_ip, primary, other


def take_primary_down(lab: Lab, topo: Topo, vgw: Vgw, node: CgwNode, speaker: BgpSpeaker,
                      primary: str, other: str) -> None:
    """``vgw tunnel down`` on the primary; check that the site's route moves to the
    other tunnel's TUN, that the CGW then holds the VPC CIDR only from the other
    tunnel with MED 100 (docs/aws.md §7), and that the VPC still reaches the site."""
    tuns = {t["outside_ip"]: t["tun"] for t in vgw.status()}
    vgw.cli("tunnel", "down", primary)
    wait_until(lambda: f"dev {tuns[other]}" in kernel_route(lab, topo.vgw, topo.onprem_cidr), 20, 0.2,
               "the site's route on the other tunnel")
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: [p.med for p in ps] == [100], timeout=45)
    inside = {t.outside_ip: t.vgw_inside_ip for t in node.tunnels}
    assert paths[0].next_hop == inside[other], paths
    assert ping(lab, topo.vpc, topo.onprem_ip)


def tunnel_status(vgw: Vgw) -> dict[str, dict]:
    """``vgw status --json`` by outside IP."""
    return {t["outside_ip"]: t for t in vgw.status()}


def vgw_routes(vgw: Vgw) -> dict[str, dict]:
    """``vgw routes --json`` by destination."""
    return {r["destination"]: r for r in json.loads(vgw.cli("routes", "--json").stdout)["routes"]}


def kernel_route(lab: Lab, ns: str, prefix: str) -> str:
    """vgw's route to ``prefix`` (protocol 190; FRR's rt_protos names 190 "ripng",
    so the number is matched, not the name)."""
    return lab.run(ns, "ip", "route", "show", prefix, "proto", "190").stdout.strip()
