"""What the operator asks of a running gateway over the control socket.

`vgw status`, `vgw routes`, `vgw tunnel down|up`, `vgw rekey`, `vgw maintenance` arrive here as
requests (daemon/control.py) and are answered from the gateway's state; the
changes they make go through the gateway's own methods, so that the event loop's
rules (flush the core's output, decide the routes, arm the timer) hold for them
as for network input.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .api.errors import ApiError

if TYPE_CHECKING:                      # the gateway imports this module, not the reverse
    from .gateway import Gateway

log = logging.getLogger("vgw")

DEFAULT_APPLY_AFTER = 3600.0   # `vgw maintenance schedule` without --apply-after: in an hour


class Operator:
    def __init__(self, gateway: "Gateway"):
        self.gw = gateway

    def handle(self, req: dict) -> dict:
        """One control request (daemon/control.py): {"cmd": ...} -> an answer."""
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, **self.status()}
        if cmd == "routes":
            return {"ok": True, "routes": self.routes()}
        if cmd == "tunnel":
            action, ip = req.get("action"), str(req.get("tunnel"))
            if action == "down":
                return self.tunnel_down(ip)
            if action == "up":
                return self.tunnel_up(ip)
            return {"ok": False, "error": f"unknown tunnel action {action!r}"}
        if cmd == "rekey":
            return self.rekey(str(req.get("tunnel")), req.get("sa", "child"))
        if cmd == "maintenance":
            return self.maintenance(req)
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    # --- changes ---------------------------------------------------------------------------

    def tunnel_down(self, ip: str) -> dict:
        gw = self.gw
        tunnel = gw.tunnels.get(ip)
        if tunnel is None:
            return {"ok": False, "error": f"no tunnel with outside IP {ip}"}
        if tunnel.up:
            tunnel.last_status_change = time.time()   # UP -> DOWN by the operator
        tunnel.admin_down = True
        gw.bgp.ipsec(ip, False)
        tunnel.ike_endpoint.hold()   # new IKE SAs are refused, no re-initiation; the DELETE's answer still counts
        tunnel.ike_endpoint.delete(gw.loop.time())
        log.info("[%s] tunnel taken down by the operator", tunnel.name)
        gw.after_change(tunnel)
        return {"ok": True, "tunnel": ip, "status": "DOWN"}

    def tunnel_up(self, ip: str) -> dict:
        gw = self.gw
        tunnel = gw.tunnels.get(ip)
        if tunnel is None:
            return {"ok": False, "error": f"no tunnel with outside IP {ip}"}
        tunnel.admin_down = False
        log.info("[%s] tunnel enabled by the operator", tunnel.name)
        tunnel.ike_endpoint.release(gw.loop.time())
        if tunnel.cfg.startup_action == "start":
            note = "initiating"
        else:
            note = "waiting for the customer gateway to initiate (startup_action add)"
        gw.after_change(tunnel)
        return {"ok": True, "tunnel": ip, "note": note}

    def rekey(self, ip: str, kind: str) -> dict:
        """`vgw rekey TUNNEL [--ike|--child]`: rekey now, not at the lifetime."""
        gw = self.gw
        tunnel = gw.tunnels.get(ip)
        if tunnel is None:
            return {"ok": False, "error": f"no tunnel with outside IP {ip}"}
        if kind not in ("ike", "child"):
            return {"ok": False, "error": f"rekey what? {kind!r} (ike or child)"}
        error = tunnel.ike_endpoint.rekey(kind, gw.loop.time())
        if error:
            return {"ok": False, "error": f"tunnel {ip}: {error}"}
        gw.after_change(tunnel, routes=False)
        return {"ok": True, "tunnel": ip, "sa": kind}

    # --- maintenance (docs/aws.md §1.10, §13; daemon/maintenance.py) ------------------------

    def maintenance(self, req: dict) -> dict:
        """`vgw maintenance schedule|apply|status`: for an API connection (vpn- id) the
        API's own maintenance (GetVpnTunnelReplacementStatus shows it); for a YAML
        connection (its name or its vpn- id) the gateway's."""
        action, now = req.get("action"), time.time()
        if action == "status":
            return {"ok": True, "maintenance": self.maintenance_status(now)}
        if action not in ("schedule", "apply"):
            return {"ok": False, "error": f"unknown maintenance action {action!r} (schedule, apply or status)"}
        name, ip = str(req.get("connection")), req.get("tunnel")
        source, connection = self._connection(name)
        if connection is None:
            return {"ok": False, "error": f"no connection {name!r}: name a YAML connection or an API connection's"
                                          " vpn- id (`vgw status` lists them)"}
        ips = [str(t.outside_ip) for t in connection.tunnels]
        if ip is not None and str(ip) not in ips:
            return {"ok": False, "error": f"{ip} is not a tunnel of {name} ({', '.join(ips)})"}
        try:
            if action == "schedule":
                after = float(req.get("apply_after") or now + DEFAULT_APPLY_AFTER)
                applied = (self.gw.api.schedule_maintenance(connection.name, ip, after, now) if source == "api"
                           else self.gw.maintenance.schedule(connection, ip, after, now))
                pending = [i for i in ([ip] if ip else ips) if i not in applied]
                return {"ok": True, "connection": connection.name, "applied": applied, "pending": pending,
                        "apply_after": after if pending else None}
            applied = (self.gw.api.apply_maintenance(connection.name, ip, now) if source == "api"
                       else self.gw.maintenance.apply(connection.name, ip, now))
            return {"ok": True, "connection": connection.name, "applied": applied}
        except (ApiError, ValueError) as exc:
            return {"ok": False, "error": getattr(exc, "message", str(exc))}

    def _connection(self, name: str):
        """("api" | "yaml", the running ConnectionConfig) for a name or vpn- id, or (None, None)."""
        gw = self.gw
        for connection in gw.config.connections:
            if name in (connection.name, gw.connection_id(connection)):
                api = gw.api is not None and gw.api.owns(connection.name) is not None
                return ("api" if api else "yaml"), connection
        return None, None

    def maintenance_status(self, now: float) -> list[dict]:
        gw = self.gw
        rows = gw.api.maintenance(now) if gw.api is not None else []
        for connection in gw.file_config.connections:
            for tunnel in connection.tunnels:
                ip = str(tunnel.outside_ip)
                pending = gw.maintenance.pending.get(ip)
                rows.append({"connection": connection.name, "outside_ip": ip,
                             "lifecycle_control": tunnel.enable_tunnel_lifecycle_control,
                             "pending": "Tunnel endpoint replacement" if pending else None,
                             "apply_after": pending.apply_after if pending else None,
                             "last_applied": gw.maintenance.applied.get(ip)})
        for row in rows:
            row["source"] = "api" if gw.api is not None and gw.api.owns(row["connection"]) else "yaml"
            row["replacing"] = row["outside_ip"] in gw.replacer.held
        return rows

    # --- views -----------------------------------------------------------------------------

    def status(self) -> dict:
        """`vgw status --json` (docs/design.md §6.3): tunnels, connections, the gateway."""
        gw = self.gw
        primaries = set(gw.primary.values())
        tunnels = []
        for t in gw.tunnels.values():
            tunnels.append({**t.status(t.id in primaries, gw.bgp.status(t.id)), "source": self._source(t.conn.name),
                            "vpn_connection_id": gw.connection_id(t.conn)})
        api = {"listen": "%s:%d" % gw.api.address, "database": gw.api.settings.database} \
            if gw.api is not None and gw.api.address else None
        return {"tunnels": tunnels,
                "api": api,
                "connections": [self.connection_status(c) for c in gw.config.connections],
                "amazon_side_asn": gw.config.amazon_side_asn,
                "dropped_no_tunnel": gw.dropped_no_tunnel,
                "ike_dos": {**vars(gw.guard.counters), "half_open": gw.guard.half_open,
                            "init_queue": len(gw.init_queue),
                            "dropped_init_queue": gw.init_queue.dropped_full,
                            "dropped_init_stale": gw.init_queue.dropped_stale,
                            "reassembly_bytes": gw.guard.reassembly_bytes,
                            "init_work_seconds": round(gw.init_queue.work_seconds, 3)},
                "data_path": gw.datapath.global_stats()}

    def _source(self, name: str) -> str:
        """Where a connection comes from: "api" (the EC2 API; not editable in YAML) or "yaml"."""
        return "api" if self.gw.api is not None and self.gw.api.owns(name) is not None else "yaml"

    def connection_status(self, connection) -> dict:
        """A connection as `vgw status` groups tunnels: its customer gateway and routing."""
        cgw = connection.customer_gateway
        definition = self.gw.api.owns(connection.name) if self.gw.api is not None else None
        ids = {"vpn_gateway_id": definition.vpn_gateway_id, "customer_gateway_id": definition.customer_gateway_id} \
            if definition is not None else {}
        return {"name": connection.name, "vpn_connection_id": self.gw.connection_id(connection),
                "source": self._source(connection.name), **ids,
                "routing": "dynamic" if connection.dynamic else "static",
                "customer_gateway": {"ip": str(cgw.ip) if cgw.ip else None, "bgp_asn": cgw.bgp_asn
                                     if connection.dynamic else None, "identity": cgw.identity},
                "tunnels": [str(t.outside_ip) for t in connection.tunnels],
                "primary": self.gw.primary.get(connection.name),
                "static_routes": [str(p) for p in connection.static_routes]}

    def routes(self) -> list[dict]:
        """The VPC route table as AWS's DescribeRouteTables shows it, plus why each
        route won and where CloudHub re-advertises it (`vgw routes`, docs/aws.md §7)."""
        gw = self.gw
        rows = [{"destination": str(c), "target": "local", "connection": None, "origin": "local",
                 "state": "active", "reason": "the VPC's own CIDR"} for c in gw.config.vpc_cidrs]
        table = gw.vpc_table
        for prefix, route in sorted(table.routes.items(), key=lambda kv: (kv[0].network_address, kv[0].prefixlen)):
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
                "advertised_to": list(table.advertised_to(prefix)),
            })
        return rows
