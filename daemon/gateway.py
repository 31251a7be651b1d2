"""The asyncio shell around the IKE cores and the data path (aioquic's protocol.py
in spirit): sockets in, datagrams and one timer out.

Per tunnel (one outside IP): a UDP socket on port 500 for IKE, and a data path
endpoint (UDP 4500, shared by IKE behind the non-ESP marker and ESP-in-UDP, plus
a raw ESP socket). One asyncio timer serves every IKE core: after any input the
earliest deadline of all cores is armed. Routes follow the tunnels' state.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import time
from typing import Callable

from dataplane.datapath import DataPath
from ikecore.dos import DosGuard, DosSettings

from .bgp.sessions import BgpSessions
from .cgwconfig import stable_id
from .config import GatewayConfig
from .config.ike_settings import ike_settings
from .control import ControlServer
from .initqueue import InitQueue
from .ratelimit import LimitedLog
from .routes import RouteTable
from .routing import ConnectionPlan, VpcRouteTable
from .runtime import TunnelRuntime

log = logging.getLogger("vgw")

_NO_SPI = bytes(8)


def _dos_settings(config: GatewayConfig) -> DosSettings:
    d = config.dos_protection
    return DosSettings(cookie_threshold=d.cookie_threshold, require_cookies=d.require_cookies,
                       max_half_open=d.max_half_open,
                       max_half_open_per_source=d.max_half_open_per_source,
                       max_new_per_second=d.max_new_per_second,
                       max_reassembly_bytes=d.max_reassembly_bytes)

IKE_BATCH = 64


class StartupError(Exception):
    """A problem the user must fix before vgw can run (message says what)."""


class Gateway:
    def __init__(self, config: GatewayConfig, loop: asyncio.AbstractEventLoop):
        self.config = config
        self.loop = loop
        self.packets = DataPath(loop, self._ike_from_4500, on_peer_moved=self._esp_from_new_address)
        self.guard = DosGuard(_dos_settings(config))
        # IKE_SA_INIT requests (no responder SPI yet) are unauthenticated work:
        # bounded, droppable, and drained in small slices between the data
        # path's readers, so a flood never delays ESP or established IKE SAs
        self.init_queue = InitQueue(cpu_clock=time.thread_time)
        self._init_drain_scheduled = False
        self.tunnels: dict[str, TunnelRuntime] = {}
        self.ike_socks: dict[str, socket.socket] = {}
        self.routes = RouteTable()          # the kernel's routes that vgw owns (proto 190)
        # the VPC route table: AWS's path selection and what each BGP session
        # announces (daemon/routing); the kernel follows its decisions
        self.vpc_table = VpcRouteTable()
        self.bgp = BgpSessions(loop, self.vpc_table, self._decide_soon, connection_id=_connection_id)
        self._decide_scheduled = False
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

    @property
    def primary(self) -> dict[str, str | None]:
        """Each connection's primary tunnel (the route table's choice)."""
        return self.vpc_table.primaries

    async def start(self) -> None:
        try:
            self.vpc_table.configure(self.config.vpc_cidrs, _plans(self.config))
            for conn, tun in self.config.all_tunnels():
                self._add_tunnel(conn, tun)
            await self.control.start()
        except BaseException:
            await self.stop(send_delete=False)
            raise
        self._update_routes()
        for rt in self.tunnels.values():
            if rt.cfg.startup_action == "start":
                self._initiate(rt)
        self._flush()
        log.info("vgw is running: %d tunnel(s), control socket %s", len(self.tunnels),
                 self.config.control_socket)

    def _add_tunnel(self, conn, tun) -> TunnelRuntime:
        ip = str(tun.outside_ip)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((ip, 500))
        except OSError as exc:
            sock.close()
            raise StartupError(_bind_hint(ip, 500, exc)) from None
        self.ike_socks[ip] = sock
        self.loop.add_reader(sock.fileno(), self._read_500, ip, sock)
        try:
            try:
                self.packets.add_outside_sockets(ip)
            except OSError as exc:
                raise StartupError(_bind_hint(ip, 4500, exc)) from None
            rt = TunnelRuntime(conn, tun, self.packets, guard=self.guard,
                               tun_offload=self.config.data_path.tun_offload)
            rt.call_later = self.loop.call_later
            self.tunnels[ip] = rt
            try:
                rt.open()
            except OSError as exc:
                raise StartupError(f"cannot create the TUN device for tunnel {ip}: {exc}") from None
            if conn.dynamic:
                # BGP between the inside addresses, over this tunnel (docs/aws.md §11)
                self.bgp.add(rt, self.config.amazon_side_asn)
        except BaseException:
            # leave nothing half-made behind: on a reload the tunnel is skipped and
            # the next reload must be able to bind its sockets again
            self._remove_tunnel(ip, send_delete=False)
            raise
        return rt

    def _remove_tunnel(self, ip: str, send_delete: bool) -> None:
        """Close the tunnel's runtime (if any), its port 500 socket and its endpoint."""
        rt = self.tunnels.get(ip)
        if ip in self.bgp.sessions:
            self.loop.create_task(self.bgp.remove(ip))
        if rt is not None:
            if send_delete:
                rt.ike.delete(self.loop.time())
                self._flush_one(rt)
            rt.close()
            del self.tunnels[ip]
        sock = self.ike_socks.pop(ip, None)
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.packets.remove_outside_sockets(ip)

    async def stop(self, send_delete: bool = True) -> None:
        """SIGTERM: DELETE every SA, remove routes and TUNs (DESIGN.md Interfaces)."""
        self.stopping = True
        await self.bgp.close()      # Cease goes out while the tunnels still carry it
        for ip in list(self.tunnels):
            self._remove_tunnel(ip, send_delete)
        for ip, sock in list(self.ike_socks.items()):  # a tunnel that failed to open
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.ike_socks.clear()
        self.routes.close()
        self.packets.close()
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
        rt = self.tunnels.get(tunnel_id)
        if rt is not None and rt.ike.esp_from(remote, self.loop.time()):
            self._flush_one(rt)
            self._arm_timer()

    def _ike_in(self, ip: str, data: bytes, local: tuple, remote: tuple) -> None:
        rt = self.tunnels.get(ip)
        if rt is None:
            self.dropped_no_tunnel += 1
            return
        if data[8:16] == _NO_SPI:
            cgw = rt.ike_settings.remote_ip
            if cgw and remote[0] != cgw:
                # not the customer gateway (aws-facts.md §2): the core would drop it
                # too; doing so here keeps the queue for the real one under a flood
                rt.ike.counters.dropped_unknown_peer += 1
                return
            self.init_queue.push((rt, data, local, remote), len(data))
            if not self._init_drain_scheduled:
                self._init_drain_scheduled = True
                self.loop.call_soon(self._drain_init_queue)
            return
        self._ike_deliver(rt, data, local, remote)

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
        rt, data, local, remote = item
        if self.tunnels.get(rt.id) is rt:   # not a tunnel a reload replaced or removed
            self._ike_deliver(rt, data, local, remote)

    def _ike_deliver(self, rt: TunnelRuntime, data: bytes, local: tuple, remote: tuple) -> None:
        try:
            rt.ike.receive(data, local, remote, self.loop.time())
        except Exception:  # the core must never raise; if it does, one tunnel logs it
            self.limited_log.log(logging.ERROR, f"[{rt.name}] internal error on an IKE message (dropped)",
                                 exc_info=True)
        self._flush_one(rt)
        self._arm_timer()

    # --- output, events, timer -----------------------------------------------------------

    def _flush(self) -> None:
        try:
            for rt in list(self.tunnels.values()):
                try:
                    self._flush_one(rt)
                except Exception:   # one tunnel's trouble stops no other (nor the timer)
                    self.limited_log.log(logging.ERROR, f"[{rt.name}] internal error (output)",
                                         exc_info=True)
        finally:
            self._arm_timer()

    def _flush_one(self, rt: TunnelRuntime) -> None:
        for d in rt.ike.datagrams_to_send():
            try:
                if d.local[1] == 4500:
                    self.packets.send_ike(d.local[0], d.remote, d.data)
                else:
                    self.ike_socks[d.local[0]].sendto(d.data, d.remote)
            except (OSError, KeyError) as exc:
                self.limited_log.log(logging.WARNING, f"[{rt.name}] cannot send IKE to {d.remote}: {exc}")
        changed = False
        while (ev := rt.ike.next_event()) is not None:
            try:
                changed |= rt.on_event(ev)
            except Exception:
                log.exception("[%s] cannot apply %s", rt.name, type(ev).__name__)
        if changed:
            # a session needs its tunnel: IPsec up starts it, down ends it at once
            self.bgp.ipsec(rt.id, rt.ipsec_up)
            self._update_routes()

    def _arm_timer(self) -> None:
        deadlines = [d for d in (rt.ike.next_deadline() for rt in self.tunnels.values()) if d is not None]
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
            for rt in list(self.tunnels.values()):
                try:
                    # ESP from the peer counts as life for DPD (aws-facts.md §6.4)
                    rt.ike.note_inbound(self.packets.last_inbound(rt.id) if rt.tun else None)
                    deadline = rt.ike.next_deadline()
                    if deadline is not None and deadline <= now:
                        rt.ike.handle_timer(now)
                except Exception:
                    self.limited_log.log(logging.ERROR, f"[{rt.name}] internal error in a timer",
                                         exc_info=True)
        finally:
            # whatever raised, the next deadline is armed again: a timer left
            # unarmed would stop DPD and rekeys until the next packet arrives
            self._flush()

    # --- tunnel lifecycle ------------------------------------------------------------------

    def _initiate(self, rt: TunnelRuntime) -> None:
        """startup_action start (aws-facts.md §1.7); later re-initiations (after DPD
        restart, or a tunnel that went down) are decided by the core (IkeEndpoint)."""
        if self.stopping or rt.admin_down or rt.ike.current is not None:
            return
        rt.ike.initiate(self.loop.time())
        self._flush_one(rt)
        self._arm_timer()

    def _update_routes(self) -> None:
        """Tell the route table which tunnels are up, and apply its decision now."""
        for ip, rt in self.tunnels.items():
            self.vpc_table.set_up(ip, rt.up)
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
        for prefix, tunnel in changes.kernel.items():
            rt = self.tunnels.get(tunnel) if tunnel else None
            self.routes.point([prefix], rt.tun.ifindex if rt is not None and rt.tun else None)
        self.routes.remove(sorted(changes.removed))
        self.bgp.advertise(changes.advertisements)

    def tunnel_down(self, ip: str) -> dict:
        rt = self.tunnels.get(ip)
        if rt is None:
            return {"ok": False, "error": f"no tunnel with outside IP {ip}"}
        if rt.up:
            rt.last_status_change = time.time()   # UP -> DOWN by the operator
        rt.admin_down = True
        self.bgp.ipsec(ip, False)
        rt.ike.hold()   # new IKE SAs are refused, no re-initiation; the DELETE's answer still counts
        rt.ike.delete(self.loop.time())
        log.info("[%s] tunnel taken down by the operator", rt.name)
        self._flush_one(rt)
        self._update_routes()
        self._arm_timer()
        return {"ok": True, "tunnel": ip, "status": "DOWN"}

    def tunnel_up(self, ip: str) -> dict:
        rt = self.tunnels.get(ip)
        if rt is None:
            return {"ok": False, "error": f"no tunnel with outside IP {ip}"}
        rt.admin_down = False
        log.info("[%s] tunnel enabled by the operator", rt.name)
        rt.ike.release(self.loop.time())
        if rt.cfg.startup_action == "start":
            note = "initiating"
        else:
            note = "waiting for the customer gateway to initiate (startup_action add)"
        self._flush_one(rt)
        self._update_routes()
        self._arm_timer()
        return {"ok": True, "tunnel": ip, "note": note}

    def rekey(self, ip: str, kind: str) -> dict:
        """`vgw rekey TUNNEL [--ike|--child]`: rekey now, not at the lifetime."""
        rt = self.tunnels.get(ip)
        if rt is None:
            return {"ok": False, "error": f"no tunnel with outside IP {ip}"}
        if kind not in ("ike", "child"):
            return {"ok": False, "error": f"rekey what? {kind!r} (ike or child)"}
        error = rt.ike.rekey(kind, self.loop.time())
        if error:
            return {"ok": False, "error": f"tunnel {ip}: {error}"}
        self._flush_one(rt)
        self._arm_timer()
        return {"ok": True, "tunnel": ip, "sa": kind}

    # --- reload -------------------------------------------------------------------------------

    def reload(self, new: GatewayConfig) -> dict:
        """SIGHUP: tunnels whose settings did not change keep their SAs (DESIGN.md)."""
        wanted = {str(t.outside_ip): (c, t) for c, t in new.all_tunnels()}
        # A new tunnel whose address cannot be bound refuses the whole reload before
        # anything changes, like an invalid file: the running tunnels stay as they are.
        for ip in wanted:
            if ip not in self.tunnels:
                check_bindable(ip)
        kept, replaced, removed, added = [], [], [], []
        for ip, rt in list(self.tunnels.items()):
            pair = wanted.get(ip)
            if pair is None:
                self._remove_tunnel(ip, send_delete=True)
                removed.append(ip)
            elif (ike_settings(*pair) != rt.ike_settings or pair[1].inside_cidr != rt.cfg.inside_cidr
                  or pair[0].dynamic != rt.conn.dynamic):
                self._remove_tunnel(ip, send_delete=True)
                replaced.append(ip)
            else:
                rt.conn, rt.cfg = pair
                kept.append(ip)
                if pair[0].dynamic and self.bgp.settings_changed(rt, new.amazon_side_asn):
                    # a new ASN: the session starts over, the IPsec SAs stay
                    self.loop.create_task(self._restart_session(rt, new.amazon_side_asn))
        self.guard.settings = _dos_settings(new)
        if new.control_socket != self.config.control_socket:
            log.warning("control_socket changed to %s: takes effect after a restart", new.control_socket)
        if new.data_path != self.config.data_path:
            # the TUN devices were opened with the old offload mode; new tunnels get the new one
            log.warning("data_path changed: existing tunnels keep the old setting until a restart")
        self.config = new
        self.vpc_table.configure(new.vpc_cidrs, _plans(new))
        for ip, (conn, tun) in wanted.items():
            if ip not in self.tunnels:
                try:
                    rt = self._add_tunnel(conn, tun)
                except StartupError as exc:
                    log.error("reload: %s", exc)
                    continue
                added.append(ip)
                if rt.cfg.startup_action == "start":
                    self._initiate(rt)
        self._update_routes()
        self._flush()
        summary = {"kept": kept, "replaced": replaced, "removed": removed,
                   "added": [i for i in added if i not in replaced]}
        log.info("configuration reloaded: %s", summary)
        return summary

    # --- control -----------------------------------------------------------------------------

    async def _restart_session(self, rt: TunnelRuntime, amazon_side_asn: int) -> None:
        await self.bgp.remove(rt.id)
        if self.tunnels.get(rt.id) is rt:
            self.bgp.add(rt, amazon_side_asn)

    def status(self) -> dict:
        primaries = set(self.primary.values())
        return {"tunnels": [rt.status(rt.id in primaries, self.bgp.status(rt.id)) for rt in self.tunnels.values()],
                "connections": [_connection_status(c, self) for c in self.config.connections],
                "amazon_side_asn": self.config.amazon_side_asn,
                "dropped_no_tunnel": self.dropped_no_tunnel,
                "ike_dos": {**vars(self.guard.counters), "half_open": self.guard.half_open,
                            "init_queue": len(self.init_queue),
                            "dropped_init_queue": self.init_queue.dropped_full,
                            "dropped_init_stale": self.init_queue.dropped_stale,
                            "reassembly_bytes": self.guard.reassembly_bytes,
                            "init_work_seconds": round(self.init_queue.work_seconds, 3)},
                "data_path": self.packets.global_stats()}

    def handle_control(self, req: dict) -> dict:
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, **self.status()}
        if cmd == "tunnel":
            action, ip = req.get("action"), str(req.get("tunnel"))
            if action == "down":
                return self.tunnel_down(ip)
            if action == "up":
                return self.tunnel_up(ip)
            return {"ok": False, "error": f"unknown tunnel action {action!r}"}
        if cmd == "rekey":
            return self.rekey(str(req.get("tunnel")), req.get("sa", "child"))
        if cmd == "routes":
            return {"ok": True, "routes": vpc_routes(self)}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def install_signal_handlers(self, on_stop: Callable[[], None], on_reload: Callable[[], None]) -> None:
        self.loop.add_signal_handler(signal.SIGTERM, on_stop)
        self.loop.add_signal_handler(signal.SIGINT, on_stop)
        self.loop.add_signal_handler(signal.SIGHUP, on_reload)


def check_bindable(ip: str, ports: tuple[int, ...] = (500, 4500)) -> None:
    """Raise StartupError (with _bind_hint's advice) if vgw could not bind `ip` on
    one of `ports` now. The probe sockets are closed at once; the real ones are
    bound right after, in the same event-loop step."""
    for port in ports:
        probe = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            raise StartupError(_bind_hint(ip, port, exc)) from None
        finally:
            probe.close()


def _bind_hint(ip: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot bind {ip}:{port}: {ip} is not an address of this host; add it "
                f"(e.g. `ip addr add {ip}/32 dev lo`) or fix outside_ip in the config")
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot bind {ip}:{port}: the port is in use; is another IKE daemon "
                "(strongSwan, libreswan, another vgw) running on this address?")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot bind {ip}:{port}: permission denied; run vgw as root or with CAP_NET_BIND_SERVICE and CAP_NET_ADMIN"
    return f"cannot bind {ip}:{port}: {exc.strerror or exc}"


def _connection_id(connection) -> str:
    """The stable vpn- id of a YAML connection (the one `vgw cgw-config` prints)."""
    return stable_id("vpn", connection.name)


def _plans(config: GatewayConfig) -> list[ConnectionPlan]:
    """What the route table needs of each connection."""
    return [ConnectionPlan(name=c.name, tunnels=tuple(str(t.outside_ip) for t in c.tunnels), dynamic=c.dynamic,
                           static_routes=tuple(c.static_routes), customer_gateway_ip=c.customer_gateway.ip)
            for c in config.connections]


def _connection_status(connection, gw: "Gateway") -> dict:
    """A connection as `vgw status` groups tunnels: its customer gateway and routing."""
    cgw = connection.customer_gateway
    return {"name": connection.name, "vpn_connection_id": _connection_id(connection),
            "routing": "dynamic" if connection.dynamic else "static",
            "customer_gateway": {"ip": str(cgw.ip) if cgw.ip else None, "bgp_asn": cgw.bgp_asn
                                 if connection.dynamic else None, "identity": cgw.identity},
            "tunnels": [str(t.outside_ip) for t in connection.tunnels],
            "primary": gw.primary.get(connection.name),
            "static_routes": [str(p) for p in connection.static_routes]}


def vpc_routes(gw: "Gateway") -> list[dict]:
    """The VPC route table as AWS's DescribeRouteTables shows it, plus why each
    route won and where CloudHub re-advertises it (`vgw routes`)."""
    rows = [{"destination": str(c), "target": "local", "connection": None, "origin": "local", "state": "active",
             "reason": "the VPC's own CIDR"} for c in gw.config.vpc_cidrs]
    for prefix, route in sorted(gw.vpc_table.routes.items(), key=lambda kv: (kv[0].network_address, kv[0].prefixlen)):
        path = route.path
        rows.append({
            "destination": str(prefix),
            "target": route.tunnel,
            "connection": path.connection,
            "origin": path.source.value,
            "state": route.state,
            "reason": route.reason,
            "as_path": list(path.as_path) if path.as_path else None,
            "med": path.med,
            "alternatives": [{"connection": p.connection, "tunnel": p.tunnel, "origin": p.source.value,
                              "as_path": list(p.as_path), "med": p.med} for p in route.others],
            "advertised_to": list(gw.vpc_table.advertised_to(prefix)),
        })
    return rows
