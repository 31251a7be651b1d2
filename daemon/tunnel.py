"""One tunnel at run time: its IKE core, its TUN device and its ESP SAs.

Turns the core's events into data path actions (install / remove ESP SAs), log
lines and status. Sockets, the timer and routes belong to the Gateway, which
calls `on_event` for every event this tunnel's IkeEndpoint produces.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from dataplane.datapath import DataPath
from dataplane.esp import EspSa
from dataplane.limits import TunnelLimits
from dataplane.selectors import Range, Selectors
from dataplane.tun import DEFAULT_TXQUEUELEN, TunDevice
from ikecore.events import ChildSaDown, ChildSaUp, IkeSaDown, IkeSaUp, LogLine, NatKeepalive, PeerMoved
from ikecore.endpoint import IkeEndpoint

from .awslog import TunnelLog
from .config import ConnectionConfig, TunnelConfig
from .history import TunnelHistory
from .config.ike_settings import esp_algorithms, ike_settings
from .config.values import TUNNEL_BANDWIDTH_LIMITS
from .ratelimit import LimitedLog

log = logging.getLogger("vgw.tunnel")

REKEYED_INBOUND_GRACE = 5.0
#: Tests only: "PACKETS_PER_SECOND,BITS_PER_SECOND" replaces AWS's figures for every
#: tunnel that emulates the limits, read once when vgw starts (a lab machine may not
#: reach 140,000 packets per second; the mechanism is the same at any rate).
TEST_LIMITS_ENV = "VGW_TEST_TUNNEL_LIMITS"


def limits_from_env(environ) -> TunnelLimits | None:
    """The limits VGW_TEST_TUNNEL_LIMITS asks for, or None; ValueError says what to write."""
    text = environ.get(TEST_LIMITS_ENV, "").strip()
    if not text:
        return None
    try:
        pps, bps = (int(part) for part in text.split(","))
        return TunnelLimits(bits_per_second=bps, packets_per_second=pps)
    except ValueError:
        raise ValueError(f"{TEST_LIMITS_ENV}={text!r}: write PACKETS_PER_SECOND,BITS_PER_SECOND as two positive"
                         " whole numbers, e.g. 5000,20000000 (a setting for tests only), or unset it") from None


def tunnel_limits(bandwidth: str, override: TunnelLimits | None = None) -> TunnelLimits:
    """What one tunnel of AWS's TunnelBandwidth ``bandwidth`` carries at most in each
    direction (docs/aws.md §1.9, §4.1: standard = 1.25 Gbps and 140,000 packets per
    second per tunnel). AWS gives the figures per tunnel without a direction; vgw
    limits each direction on its own (inference: the reading that never refuses
    what AWS would carry), with a burst of 10 ms of each rate (dataplane/limits.py)."""
    if override is not None:
        return override
    bps, pps = TUNNEL_BANDWIDTH_LIMITS[bandwidth]
    return TunnelLimits(bits_per_second=bps, packets_per_second=pps)


def _ipv6_disabled(ifname: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6") as f:
            return f.read().strip() == "1"
    except OSError:
        return True  # no IPv6 in this kernel or namespace at all


def _ranges(selectors) -> tuple[Range, ...]:
    """ikecore TrafficSelectors as the data path's plain ranges."""
    return tuple(Range(t.start.version, int(t.start), int(t.end), t.ip_proto, t.start_port, t.end_port)
                 for t in selectors)


def _limits_text(limits: TunnelLimits) -> str:
    return (f"{limits.bits_per_second / 1e9:g} Gbit/s and {limits.packets_per_second} packets/s"
            f" in each direction, bursts of {limits.burst_seconds * 1000:g} ms")


def tun_name(outside_ip: str) -> str:
    """A stable, unique interface name (<= 15 chars) from the outside IP."""
    return "vgw" + "".join(f"{int(o):02x}" for o in outside_ip.split("."))


@dataclass
class ChildRecord:
    spi_in: int
    spi_out: int
    inbound: EspSa
    outbound: EspSa
    event: ChildSaUp
    installed_at: float


@dataclass
class Tunnel:
    conn: ConnectionConfig
    cfg: TunnelConfig
    datapath: DataPath
    ike_endpoint: IkeEndpoint = None   # the IKE side of this tunnel (ikecore)
    tun: TunDevice | None = None
    admin_down: bool = False
    children: dict[int, ChildRecord] = field(default_factory=dict)
    last_error: str = ""
    last_status_change: float = field(default_factory=time.time)
    events_seen: dict[str, int] = field(default_factory=dict)
    call_later: object = None   # loop.call_later, set by the Gateway (grace timers)
    guard: object = None        # the gateway's DosGuard, shared by all tunnels
    tun_offload: str = "gro"    # data_path.tun_offload: gro | tso | none (at TUN creation)
    bgp_established: bool = False   # a dynamic connection's session (daemon/bgp/sessions.py)
    limits: TunnelLimits | None = None  # emulate_limits: what the data path enforces, or None

    def __post_init__(self) -> None:
        self.ike_settings = ike_settings(self.conn, self.cfg)
        self.ike_endpoint = IkeEndpoint(self.ike_settings, self.guard)
        self.tunnel_log = TunnelLog(self.name)   # AWS's tunnel activity log (daemon/awslog.py)
        self.history = TunnelHistory()           # counts for metrics and status (daemon/history.py)
        # log lines per template and interval (daemon/ratelimit.py): whoever sends
        # IKE_SA_INIT can make the core log; they must not flood stdout or the journal
        self.limited_log = LimitedLog(lambda level, text: self.tunnel_log.write(text, level, self.cfg, self.ike_endpoint),
                                      lambda: self.call_later, overflow_level="warning")

    @property
    def id(self) -> str:
        return str(self.cfg.outside_ip)

    @property
    def name(self) -> str:
        return f"{self.conn.name} {self.id}"

    @property
    def ipsec_up(self) -> bool:
        """IPsec (a CHILD SA) is up and may carry traffic."""
        return bool(self.children) and self.tun is not None and not self.admin_down

    @property
    def up(self) -> bool:
        """AWS's tunnel status (VgwTelemetry, TunnelState; docs/aws.md §5.1, §5.2):
        IPsec up, and for a dynamic connection also its BGP session Established."""
        return self.ipsec_up and (not self.conn.dynamic or self.bgp_established)

    def set_bgp_established(self, established: bool) -> None:
        was_up = self.up
        self.bgp_established = established
        if self.up != was_up:
            self.last_status_change = time.time()

    # --- setup / teardown -----------------------------------------------------------

    def open(self) -> None:
        """Create the TUN device with the VGW inside address (network+1 of the /30,
        docs/aws.md §1.2); the kernel then answers pings on it, the AWS heartbeat
        target."""
        # data_path.tun_offload (daemon/config/sections.py); VGW_TUN_OFFLOAD overrides it (benchmarks)
        mode = os.environ.get("VGW_TUN_OFFLOAD") or self.tun_offload
        self.tun = TunDevice.create(tun_name(self.id), vnet_hdr=mode in ("gro", "tso"), tso=mode == "tso",
                                    txqueuelen=DEFAULT_TXQUEUELEN)
        # VGW tunnels are IPv4 inside (docs/aws.md §1.2: VGWs do not support IPv6);
        # without this the kernel sends router solicitations into the tunnel
        try:
            self.tun.disable_ipv6()
        except OSError as exc:
            # A container mounts /proc/sys read-only; there the sysctl
            # net.ipv6.conf.default.disable_ipv6=1 does it (docker/compose.yaml)
            if not _ipv6_disabled(self.tun.name):
                log.warning("[%s] cannot disable IPv6 on %s (%s); set the sysctl"
                            " net.ipv6.conf.default.disable_ipv6=1", self.name, self.tun.name, exc)
        self.tun.add_address(f"{self.cfg.vgw_inside_ip}/{self.cfg.inside_cidr.prefixlen}")
        self.tun.up()
        self.datapath.add_tunnel(self.id, self.tun, local_ip=self.id)
        if self.limits is not None:
            self.datapath.set_limits(self.id, self.limits)

    def apply_limits(self, limits: TunnelLimits | None) -> None:
        """Enforce ``limits`` from now on (a reload flipped emulate_limits); the SAs,
        the TUN device and the counters stay."""
        if limits == self.limits:
            return
        self.limits = limits
        if self.tun is not None:
            self.datapath.set_limits(self.id, limits)
        log.info("[%s] %s", self.name, "AWS's per-tunnel limits are emulated now: " + _limits_text(limits)
                 if limits else "AWS's per-tunnel limits are no longer emulated")

    def close(self) -> None:
        for spi in list(self.children):
            self._remove_child(spi)
        self.datapath.remove_tunnel(self.id)
        if self.tun is not None:
            self.tun.close()
            self.tun = None

    # --- events from the IKE core --------------------------------------------------------

    def on_event(self, ev) -> bool:
        """Apply one event; returns True when IPsec went up or down (and with it,
        for a static connection, the tunnel's UP/DOWN state)."""
        kind = type(ev).__name__
        self.events_seen[kind] = self.events_seen.get(kind, 0) + 1
        self.history.record(ev)
        if isinstance(ev, LogLine):
            self.limited_log.log(ev.level, ev.text)
            return False
        was_up, was_ipsec_up = self.up, self.ipsec_up
        if isinstance(ev, ChildSaUp):
            self._install_child(ev)
        elif isinstance(ev, ChildSaDown):
            self._remove_child(ev.spi_in, ev.reason)
        elif isinstance(ev, IkeSaDown):
            # invalid-ke is a normal step of a negotiation (RFC 7296 §1.2), not an error;
            # while the tunnel is up, another IKE SA that fails (anyone's stray
            # IKE_SA_INIT timing out half-open, a bad proposal) is not its error
            if ev.reason not in ("deleted", "replaced", "rekeyed", "redundant", "invalid-ke") \
                    and not self.ipsec_up:
                self.last_error = f"{ev.reason}: {ev.detail}" if ev.detail else ev.reason
        elif isinstance(ev, IkeSaUp):
            self.last_error = ""
        elif isinstance(ev, PeerMoved):
            self._follow_peer(ev)
        elif isinstance(ev, NatKeepalive):
            self.datapath.send_keepalive(self.id)   # RFC 3948 §2.3: vgw is behind a NAT
        if self.up != was_up:
            self.last_status_change = time.time()
        return self.ipsec_up != was_ipsec_up

    def _install_child(self, ev: ChildSaUp) -> None:
        encr, integ = esp_algorithms(ev.encr_id, ev.integ_id)
        # RFC 4301 §5.2: what arrives on the SA must come from the CGW's selectors
        # and go to vgw's (nothing to check with AWS's default 0.0.0.0/0 both sides)
        inbound = EspSa(ev.spi_in, encr, ev.encr_key_in, integ, ev.integ_key_in or None,
                        replay_window=ev.replay_window,
                        selectors=Selectors.for_inbound(_ranges(ev.remote_ts), _ranges(ev.local_ts)))
        outbound = EspSa(ev.spi_out, encr, ev.encr_key_out, integ, ev.integ_key_out or None)
        # Make-before-break (RFC 7296 §2.8): the new inbound SA first; outbound moves
        # to it at once unless we answered the rekey, then only when the initiator
        # deletes the old SA (it cannot decrypt the new one before our answer)
        self.datapath.install_inbound(self.id, inbound)
        if ev.outbound_ready or not self.children:
            self.datapath.set_outbound(self.id, outbound, self.id, ev.remote, ev.udp_encap)
        self.children[ev.spi_in] = ChildRecord(ev.spi_in, ev.spi_out, inbound, outbound, ev,
                                               time.monotonic())

    def _remove_child(self, spi_in: int, reason: str = "") -> None:
        rec = self.children.pop(spi_in, None)
        if rec is None:
            return
        if reason == "rekeyed" and self.call_later is not None:
            # packets the peer sent on the old SA may still be in flight: accept them
            # for a while (strongSwan's charon.delete_rekeyed_delay is 5 s)
            self.call_later(REKEYED_INBOUND_GRACE, self._retire_inbound, spi_in)
        else:
            self.datapath.remove_inbound(spi_in)
        newest = self._newest()
        if newest is not None:
            self.datapath.set_outbound(self.id, newest.outbound, self.id, newest.event.remote,
                                   newest.event.udp_encap)
        else:
            self.datapath.clear_outbound(self.id)

    def _newest(self) -> ChildRecord | None:
        """The CHILD SA installed last: outbound traffic goes there (dicts keep
        insertion order, so the last one is the newest, even for two SAs
        installed within one clock tick)."""
        return next(reversed(self.children.values()), None)

    def _retire_inbound(self, spi_in: int) -> None:
        if spi_in not in self.children and self.tun is not None:
            self.datapath.remove_inbound(spi_in)

    def _follow_peer(self, ev: PeerMoved) -> None:
        newest = self._newest()
        if newest is not None:
            self.datapath.set_outbound(self.id, newest.outbound, self.id, ev.remote,
                                   newest.event.udp_encap)

    # --- status -----------------------------------------------------------------------------

    def status_message(self, accepted_routes: int = 0) -> str:
        """VgwTelemetry's StatusMessage (docs/aws.md §5.2, §11.3): a static tunnel says
        whether IPsec is up; a dynamic one that is UP counts the BGP routes accepted;
        with IPsec up and BGP not Established the tunnel is DOWN with "IPSEC IS UP"."""
        if self.admin_down:
            return "ADMINISTRATIVELY DOWN"
        if not self.ipsec_up:
            return "IPSEC IS DOWN"
        if self.conn.dynamic and self.bgp_established:
            return f"{accepted_routes} BGP ROUTES"
        return "IPSEC IS UP"

    def status(self, primary: bool, bgp: dict | None = None) -> dict:
        core = self.ike_endpoint.status(time.monotonic())   # the core's clock is the loop's: monotonic
        stats = self.datapath.stats(self.id) if self.tun is not None else {}
        accepted = (bgp or {}).get("prefixes", {}).get("accepted", 0)
        message = self.status_message(accepted)
        return {
            "connection": self.conn.name,
            "outside_ip": self.id,
            "status": "UP" if self.up else "DOWN",
            "status_message": message,
            "routing": "dynamic" if self.conn.dynamic else "static",
            "ipsec": "UP" if self.ipsec_up else "DOWN",
            # AcceptedRouteCount (docs/aws.md §5.2): 0 while down, as AWS's dumps show
            "accepted_route_count": (accepted if self.conn.dynamic else len(self.conn.static_routes))
            if self.up else 0,
            "last_status_change": self.last_status_change,
            "customer_gateway_ip": str(self.conn.customer_gateway.ip or "") or None,
            "customer_gateway_identity": self.conn.customer_gateway.identity,
            "inside_cidr": str(self.cfg.inside_cidr),
            "vgw_inside_ip": str(self.cfg.vgw_inside_ip),
            "cgw_inside_ip": str(self.cfg.cgw_inside_ip),
            "tun": self.tun.name if self.tun else None,
            "primary": primary,
            "admin_down": self.admin_down,
            "startup_action": self.cfg.startup_action,
            "ike_phase1_state": core["phase1_state"],
            "ike_phase2_state": core["phase2_state"],
            "ike": core["ike"],
            "children": core["children"],
            "ike_counters": core["counters"],
            "counters": {k: stats.get(k, 0) for k in ("bytes_in", "bytes_out", "packets_in",
                                                      "packets_out")},
            "drops": stats.get("drops", {}),
            # emulate_limits: the rates and what rate_limit dropped per direction, or None
            "limits": stats.get("limits"),
            "last_error": self.last_error,
            "history": self.history.status(core),
            "bgp": bgp,
        }
