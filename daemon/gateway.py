"""The asyncio shell around the IKE cores, the data path and the BGP sessions
(aioquic's protocol.py in spirit): sockets in, datagrams and one timer out.

Per tunnel (one outside IP): a UDP socket on port 500 for IKE, and the data
path's outside sockets (UDP 4500, shared by IKE behind the non-ESP marker and
ESP-in-UDP, plus a raw ESP socket). One asyncio timer serves every IKE core:
after any input the earliest deadline of all cores is armed. The VPC route
table (daemon/routing) decides the routes whenever a tunnel's state changes; the
kernel and the BGP sessions follow. Operator commands (daemon/operator.py) and
reloads (daemon/reload.py) act through the methods here, so the same rules hold
for them as for network input.

With an `api:` section the EC2 API's connections run beside the file's
(daemon/api/host.py): `config` is then what runs (the file's connections and the
API's), `file_config` the file alone, and every change of either is applied by
`apply`, as a reload.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from typing import Callable

from dataplane.datapath import DataPath
from dataplane.limits import TunnelLimits
from ikecore.dos import DosGuard, DosSettings

from .api.host import ApiHost, DatabaseError
from .bgp.sessions import BgpSessions
from .startup import StartupError, bind_hint
from .cgwconfig import stable_id
from .config import ConfigError, ConfigIssue, GatewayConfig
from .control import ControlServer
from .initqueue import InitQueue
from .maintenance import Replacer, YamlMaintenance
from .netlink import NetlinkWorker
from .operator import Operator
from .ratelimit import LimitedLog
from .reload import apply_reload
from .routing.kernel import VPC_TABLE, KernelRoutes, SourceRules
from .routing import ConnectionPlan, VpcRouteTable
from .tunnel import Tunnel, tunnel_limits

log = logging.getLogger("vgw")

_NO_SPI = bytes(8)
IKE_BATCH = 64
HOUSEKEEPING_SECONDS = 1.0   # maintenance deadlines (the API's and the YAML connections')

__all__ = ["Gateway", "StartupError"]    # StartupError: daemon/startup.py, here for the commands


class Gateway:
    def __init__(self, config: GatewayConfig, loop: asyncio.AbstractEventLoop,
                 limits_override: TunnelLimits | None = None):
        self.config = config          # what runs: the file's connections and the API's
        self.file_config = config     # the YAML file alone
        self.loop = loop
        # tests only (VGW_TEST_TUNNEL_LIMITS): enforced instead of AWS's figures
        self.limits_override = limits_override
        self.datapath = DataPath(loop, self._ike_from_4500, on_peer_moved=self._esp_from_new_address)
        self.guard = DosGuard(self.dos_settings(config))
        # IKE_SA_INIT requests (no responder SPI yet) are unauthenticated work:
        # bounded, droppable, and drained in small slices between the data
        # path's readers, so a flood never delays ESP or established IKE SAs
        self.init_queue = InitQueue(cpu_clock=time.thread_time)
        self._init_drain_scheduled = False
        self.tunnels: dict[str, Tunnel] = {}
        self.ike_socks: dict[str, socket.socket] = {}
        self.kernel_routes = KernelRoutes()          # the kernel's routes that vgw owns (proto 190)
        # the VPC route table: AWS's path selection and what each BGP session
        # announces (daemon/routing); the kernel follows its decisions
        self.vpc_table = VpcRouteTable()
        # with the EC2 API: the VPC's route table in the kernel, for traffic from the VPC
        # (an API connection's routes there only while its gateway propagates them)
        self.vpc_kernel: KernelRoutes | None = None
        self.vpc_rules: SourceRules | None = None
        self.bgp = BgpSessions(loop, self.vpc_table, self._decide_soon, self._decide,
                               connection_id=self.connection_id)
        self._decide_scheduled = False
        self.api: ApiHost | None = None
        self.replacer = Replacer(self)           # endpoint replacement (daemon/maintenance.py)
        self.maintenance = YamlMaintenance(self.replacer)
        self._housekeeping: asyncio.TimerHandle | None = None
        self.operator = Operator(self)
        self.control = ControlServer(config.control_socket, self.handle_control)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.stopping = False
        self.dropped_no_tunnel = 0
        self.on_state_change: list[Callable[[], None]] = []
        # lines that input from the network can cause (answers to spoofed
        # addresses that cannot be sent, internal errors): rate-limited
        self.limited_log = LimitedLog(lambda level, text, **kw: log.log(level, text, **kw),
                                      lambda: self.loop.call_later)

    # --- start / stop --------------------------------------------------------------------

    @staticmethod
    def dos_settings(config: GatewayConfig) -> DosSettings:
        d = config.dos_protection
        return DosSettings(cookie_threshold=d.cookie_threshold, require_cookies=d.require_cookies,
                           max_half_open=d.max_half_open, max_half_open_per_source=d.max_half_open_per_source,
                           max_new_per_second=d.max_new_per_second, max_reassembly_bytes=d.max_reassembly_bytes)

    def connection_id(self, connection) -> str:
        """The connection's vpn- id: an API connection's own (its name), a YAML
        connection's stable one (the one `vgw cgw-config` prints)."""
        if self.api is not None and self.api.owns(connection.name):
            return connection.name
        return stable_id("vpn", connection.name)

    def amazon_side_asn_of(self, connection, config: GatewayConfig | None = None) -> int:
        """The ASN of the virtual private gateway the connection belongs to: an API
        connection's gateway's AmazonSideAsn, else the config's amazon_side_asn."""
        definition = self.api.owns(connection.name) if self.api is not None else None
        if definition is not None:
            return definition.amazon_side_asn
        return (config or self.config).amazon_side_asn

    def configure_routes(self) -> None:
        """Tell the route table the connections of the configuration."""
        self.vpc_table.configure(self.config.vpc_cidrs, [
            ConnectionPlan(name=c.name, tunnels=tuple(str(t.outside_ip) for t in c.tunnels), dynamic=c.dynamic,
                           static_routes=tuple(c.static_routes), customer_gateway_ip=c.customer_gateway.ip)
            for c in self.config.connections])

    def tunnel_limits(self, conn) -> TunnelLimits | None:
        """What the connection's tunnels enforce: AWS's limits for its tunnel_bandwidth
        when emulate_limits (its own, else the top level's) is true; else None."""
        if not self.config.limits_emulated(conn):
            return None
        return tunnel_limits(conn.tunnel_bandwidth, self.limits_override)

    @property
    def primary(self) -> dict[str, str | None]:
        """Each connection's primary tunnel (the route table's choice)."""
        return self.vpc_table.primaries

    async def start(self) -> None:
        try:
            if self.file_config.api is not None:
                self._open_api()
            self.configure_routes()
            for conn, tunnel_cfg in self.config.all_tunnels():
                self.add_tunnel(conn, tunnel_cfg)
            await self.control.start()
            if self.api is not None:
                await self.api.start()
        except BaseException:
            await self.stop(send_delete=False)
            raise
        self.update_routes()
        for tunnel in self.tunnels.values():
            if tunnel.cfg.startup_action == "start":
                self.initiate(tunnel)
        self.flush()
        self._housekeeping = self.loop.call_later(HOUSEKEEPING_SECONDS, self._housekeep)
        log.info("vgw is running: %d tunnel(s), control socket %s", len(self.tunnels),
                 self.config.control_socket)

    def _open_api(self) -> None:
        """The EC2 API's database, its connections beside the file's and their
        outside addresses on the host (daemon/api/host.py)."""
        try:
            self.api = ApiHost(self, self.file_config.api)
        except DatabaseError as exc:
            raise ConfigError("the config", [ConfigIssue("api.database", str(exc))]) from None
        conflicts = self.api.conflicts(self.file_config)
        if conflicts:
            raise ConfigError("the config", conflicts)
        self.api.add_addresses()
        self.config = self.api.effective(self.file_config)
        if self.file_config.vpc_cidrs:
            netlink = NetlinkWorker()
            self.vpc_rules = SourceRules(netlink)
            self.vpc_kernel = KernelRoutes(netlink, table=VPC_TABLE)
            self.vpc_rules.set(self.file_config.vpc_cidrs)

    def _housekeep(self) -> None:
        """Once a second: maintenance whose deadline passed, the API's and the YAML's."""
        if self.stopping:
            return
        now = time.time()
        try:
            for ip in self.maintenance.advance(now):
                log.info("maintenance of tunnel %s applied: its deadline passed", ip)
            if self.api is not None:
                self.api.advance(now)
        except Exception:   # noqa: BLE001 - the timer must stay armed
            log.exception("maintenance timer failed")
        self._housekeeping = self.loop.call_later(HOUSEKEEPING_SECONDS, self._housekeep)

    def add_tunnel(self, conn, tunnel_cfg) -> Tunnel:
        """Bind the tunnel's outside address, create its TUN device and its IKE
        endpoint; BGP too for a dynamic connection. Nothing half-made is left on
        failure (StartupError says what to change)."""
        ip = str(tunnel_cfg.outside_ip)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((ip, 500))
        except OSError as exc:
            sock.close()
            raise StartupError(bind_hint(ip, 500, exc)) from None
        self.ike_socks[ip] = sock
        self.loop.add_reader(sock.fileno(), self._read_500, ip, sock)
        try:
            try:
                self.datapath.add_outside_sockets(ip)
            except OSError as exc:
                raise StartupError(bind_hint(ip, 4500, exc)) from None
            tunnel = Tunnel(conn, tunnel_cfg, self.datapath, guard=self.guard,
                            tun_offload=self.config.data_path.tun_offload, limits=self.tunnel_limits(conn))
            tunnel.call_later = self.loop.call_later
            self.tunnels[ip] = tunnel
            try:
                tunnel.open()
            except OSError as exc:
                raise StartupError(f"cannot create the TUN device for tunnel {ip}: {exc}") from None
            if conn.dynamic:
                # BGP between the inside addresses, over this tunnel (docs/aws.md §11)
                self.bgp.add(tunnel, self.amazon_side_asn_of(conn))
        except BaseException:
            # leave nothing half-made behind: on a reload the tunnel is skipped and
            # the next reload must be able to bind its sockets again
            self.remove_tunnel(ip, send_delete=False)
            raise
        return tunnel

    def remove_tunnel(self, ip: str, send_delete: bool) -> None:
        """Close the tunnel's runtime (if any), its port 500 socket and its endpoint."""
        tunnel = self.tunnels.get(ip)
        if ip in self.bgp.sessions:
            self.loop.create_task(self.bgp.remove(ip))
        if tunnel is not None:
            if send_delete:
                tunnel.ike_endpoint.delete(self.loop.time())
                self._flush_one(tunnel)
            tunnel.close()
            del self.tunnels[ip]
        sock = self.ike_socks.pop(ip, None)
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.datapath.remove_outside_sockets(ip)

    async def stop(self, send_delete: bool = True) -> None:
        """SIGTERM: DELETE every SA, remove routes and TUNs (docs/design.md §6); with
        the EC2 API, its endpoint closes first and the outside addresses go last."""
        self.stopping = True
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self.api is not None:
            await self.api.close_server()
        await self.replacer.close()
        await self.bgp.close()      # Cease goes out while the tunnels still carry it
        for ip in list(self.tunnels):
            self.remove_tunnel(ip, send_delete)
        for ip, sock in list(self.ike_socks.items()):  # a tunnel that failed to open
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.ike_socks.clear()
        self.kernel_routes.close()
        if self.vpc_rules is not None:
            self.vpc_rules.close()
        if self.vpc_kernel is not None:
            self.vpc_kernel.close()
        if self.api is not None:
            self.api.close()        # the outside addresses vgw added, the database
        self.datapath.close()
        if self._timer:
            self._timer.cancel()
        await self.control.close()

    # --- IKE input -----------------------------------------------------------------------

    def _read_500(self, ip: str, sock: socket.socket) -> None:
        for _ in range(IKE_BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # e.g. ICMP port unreachable reported on the socket
            self._ike_in(ip, data, (ip, 500), addr)

    def _ike_from_4500(self, data: bytes, local: tuple, remote: tuple) -> None:
        self._ike_in(local[0], data, local, remote)

    def _esp_from_new_address(self, tunnel_id: str, remote: tuple) -> None:
        """Authenticated ESP came from a new address: the core decides whether the
        tunnel follows (IkeEndpoint.esp_from); its PeerMoved moves the outbound ESP."""
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is not None and tunnel.ike_endpoint.esp_from(remote, self.loop.time()):
            self._flush_one(tunnel)
            self._arm_timer()

    def _ike_in(self, ip: str, data: bytes, local: tuple, remote: tuple) -> None:
        tunnel = self.tunnels.get(ip)
        if tunnel is None:
            self.dropped_no_tunnel += 1
            return
        if data[8:16] == _NO_SPI:
            cgw = tunnel.ike_settings.remote_ip
            if cgw and remote[0] != cgw:
                # not the customer gateway (docs/aws.md §2): the core would drop it
                # too; doing so here keeps the queue for the real one under a flood
                tunnel.ike_endpoint.counters.dropped_unknown_peer += 1
                return
            self.init_queue.push((tunnel, data, local, remote), len(data))
            if not self._init_drain_scheduled:
                self._init_drain_scheduled = True
                self.loop.call_soon(self._drain_init_queue)
            return
        self._ike_deliver(tunnel, data, local, remote)

    def _drain_init_queue(self) -> None:
        self._init_drain_scheduled = False
        delay = self.init_queue.drain(self._deliver_init)
        if delay is not None:
            # yield to the event loop (ESP readers, timers) before the next slice
            self._init_drain_scheduled = True
            if delay > 0:
                self.loop.call_later(delay, self._drain_init_queue)
            else:
                self.loop.call_soon(self._drain_init_queue)

    def _deliver_init(self, item) -> None:
        tunnel, data, local, remote = item
        if self.tunnels.get(tunnel.id) is tunnel:   # not a tunnel a reload replaced or removed
            self._ike_deliver(tunnel, data, local, remote)

    def _ike_deliver(self, tunnel: Tunnel, data: bytes, local: tuple, remote: tuple) -> None:
        try:
            tunnel.ike_endpoint.receive(data, local, remote, self.loop.time())
        except Exception:  # the core must never raise; if it does, one tunnel logs it
            self.limited_log.log(logging.ERROR, f"[{tunnel.name}] internal error on an IKE message (dropped)",
                                 exc_info=True)
        self._flush_one(tunnel)
        self._arm_timer()

    # --- output, events, timer -----------------------------------------------------------

    def flush(self) -> None:
        try:
            for tunnel in list(self.tunnels.values()):
                try:
                    self._flush_one(tunnel)
                except Exception:   # one tunnel's trouble stops no other (nor the timer)
                    self.limited_log.log(logging.ERROR, f"[{tunnel.name}] internal error (output)",
                                         exc_info=True)
        finally:
            self._arm_timer()

    def _flush_one(self, tunnel: Tunnel) -> None:
        for d in tunnel.ike_endpoint.datagrams_to_send():
            try:
                if d.local[1] == 4500:
                    self.datapath.send_ike(d.local[0], d.remote, d.data)
                else:
                    self.ike_socks[d.local[0]].sendto(d.data, d.remote)
            except (OSError, KeyError) as exc:
                self.limited_log.log(logging.WARNING, f"[{tunnel.name}] cannot send IKE to {d.remote}: {exc}")
        changed = False
        while (ev := tunnel.ike_endpoint.next_event()) is not None:
            try:
                changed |= tunnel.on_event(ev)
            except Exception:
                log.exception("[%s] cannot apply %s", tunnel.name, type(ev).__name__)
        if changed:
            # a session needs its tunnel: IPsec up starts it, down ends it at once
            self.bgp.ipsec(tunnel.id, tunnel.ipsec_up)
            self.update_routes()

    def _arm_timer(self) -> None:
        deadlines = [d for d in (t.ike_endpoint.next_deadline() for t in self.tunnels.values()) if d is not None]
        at = min(deadlines) if deadlines else None
        if at == self._timer_at:
            return
        if self._timer:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._on_timer) if at is not None else None

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        now = self.loop.time()
        try:
            for tunnel in list(self.tunnels.values()):
                try:
                    # ESP from the peer counts as life for DPD (docs/aws.md §6.4)
                    tunnel.ike_endpoint.note_inbound(self.datapath.last_inbound(tunnel.id) if tunnel.tun else None)
                    deadline = tunnel.ike_endpoint.next_deadline()
                    if deadline is not None and deadline <= now:
                        tunnel.ike_endpoint.handle_timer(now)
                except Exception:
                    self.limited_log.log(logging.ERROR, f"[{tunnel.name}] internal error in a timer",
                                         exc_info=True)
        finally:
            # whatever raised, the next deadline is armed again: a timer left
            # unarmed would stop DPD and rekeys until the next packet arrives
            self.flush()

    # --- tunnel lifecycle ------------------------------------------------------------------

    def initiate(self, tunnel: Tunnel) -> None:
        """startup_action start (docs/aws.md §1.7); later re-initiations (after DPD
        restart, or a tunnel that went down) are decided by the core (IkeEndpoint)."""
        if self.stopping or tunnel.admin_down or tunnel.ike_endpoint.current is not None:
            return
        tunnel.ike_endpoint.initiate(self.loop.time())
        self._flush_one(tunnel)
        self._arm_timer()

    def after_change(self, tunnel: Tunnel, routes: bool = True) -> None:
        """An operator's change to a tunnel: what the core must send goes out, the
        routes follow the tunnels' state, the timer is armed again."""
        self._flush_one(tunnel)
        if routes:
            self.update_routes()
        self._arm_timer()

    def update_routes(self) -> None:
        """Tell the route table which tunnels are up, and apply its decision now."""
        for ip, tunnel in self.tunnels.items():
            self.vpc_table.set_up(ip, tunnel.up)
        self._decide()

    def _decide_soon(self) -> None:
        """BGP input arrived: decide once for everything of this event-loop turn."""
        if not self._decide_scheduled:
            self._decide_scheduled = True
            self.loop.call_soon(self._decide)

    def _decide(self) -> None:
        """Apply the route table's decision; then tell who watches the tunnels'
        state (systemd's STATUS line): this runs after every IPsec or BGP change."""
        self._decide_scheduled = False
        changes = self.vpc_table.decide()
        for cb in self.on_state_change:
            cb()
        if not changes:
            return
        for line in changes.lines:
            log.info("%s", line)
        for prefix, tunnel_id in changes.kernel.items():
            self.kernel_routes.point([prefix], self._ifindex(tunnel_id))
            self._point_vpc(prefix)
        self.kernel_routes.remove(sorted(changes.removed))
        if self.vpc_kernel is not None:
            self.vpc_kernel.remove(sorted(changes.removed))
        self.bgp.advertise(changes.advertisements)

    def _ifindex(self, tunnel_id: str | None) -> int | None:
        tunnel = self.tunnels.get(tunnel_id) if tunnel_id else None
        return tunnel.tun.ifindex if tunnel is not None and tunnel.tun else None

    def _point_vpc(self, prefix) -> None:
        """The VPC's route table (traffic from the VPC, daemon/routing/kernel.py's
        SourceRules): the route as in the main table, or unreachable while the
        connection's gateway does not propagate into it (AWS: no route in the VPC's
        table). CloudHub traffic between sites sees the main table only."""
        route = self.vpc_table.routes.get(prefix)
        if self.vpc_kernel is None or route is None:
            return
        propagates = self.api is None or self.api.propagates(route.path.connection)
        self.vpc_kernel.point([prefix], self._ifindex(route.tunnel) if propagates else None)

    def refresh_vpc_routes(self) -> None:
        """Route propagation was turned on or off: the VPC's table follows."""
        for prefix in list(self.vpc_table.routes):
            self._point_vpc(prefix)

    async def restart_session(self, tunnel: Tunnel, amazon_side_asn: int) -> None:
        """A tunnel's BGP settings changed (a reload): the session starts over."""
        await self.bgp.remove(tunnel.id)
        if self.tunnels.get(tunnel.id) is tunnel:
            self.bgp.add(tunnel, amazon_side_asn)

    def reload(self, new: GatewayConfig) -> dict:
        """SIGHUP (daemon/reload.py): the new file, beside the API's connections. A file
        that takes what an API connection holds is refused (ConfigError), as an
        invalid one is."""
        if self.api is not None:
            conflicts = self.api.conflicts(new)
            if conflicts:
                raise ConfigError("the config", conflicts)
            self.api.reload(new.api)
        summary = self.apply(new)
        self.maintenance.forget({str(t.outside_ip) for _, t in self.config.all_tunnels()})
        return summary

    def apply(self, file_config: GatewayConfig | None = None, force: frozenset[str] = frozenset(),
              what: str = "configuration reloaded") -> dict:
        """Run `file_config` (default: the current file) beside the API's connections;
        tunnels waiting for their endpoint replacement stay as they are, those in
        `force` are replaced (daemon/maintenance.py)."""
        base = file_config or self.file_config
        new = self.api.effective(base) if self.api is not None else base
        summary = apply_reload(self, new, hold=self.replacer.held - force, force=force, what=what)
        self.file_config = base      # (a refused reload raised before anything changed)
        if self.vpc_rules is not None:
            self.vpc_rules.set(new.vpc_cidrs)
        return summary

    def handle_control(self, req: dict) -> dict:
        """A request from the control socket (daemon/operator.py)."""
        return self.operator.handle(req)

    def install_signal_handlers(self, on_stop: Callable[[], None], on_reload: Callable[[], None]) -> None:
        self.loop.add_signal_handler(signal.SIGTERM, on_stop)
        self.loop.add_signal_handler(signal.SIGINT, on_stop)
        self.loop.add_signal_handler(signal.SIGHUP, on_reload)
