"""What the operator asks of a running gateway over the control socket.

`vgw status`, `vgw routes`, `vgw tunnel down|up`, `vgw rekey` arrive here as
requests (daemon/control.py) and are answered from the gateway's state; the
changes they make go through the gateway's own methods, so that the event loop's
rules (flush the core's output, decide the routes, arm the timer) hold for them
as for network input.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:                      # the gateway imports this module, not the reverse
    from .gateway import Gateway

log = logging.getLogger("vgw")


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

    # --- views -----------------------------------------------------------------------------

    def status(self) -> dict:
        """`vgw status --json` (docs/design.md §6.3): tunnels, connections, the gateway."""
        gw = self.gw
        primaries = set(gw.primary.values())
        return {"tunnels": [t.status(t.id in primaries, gw.bgp.status(t.id)) for t in gw.tunnels.values()],
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

    def connection_status(self, connection) -> dict:
        """A connection as `vgw status` groups tunnels: its customer gateway and routing."""
        cgw = connection.customer_gateway
        return {"name": connection.name, "vpn_connection_id": self.gw.connection_id(connection),
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
