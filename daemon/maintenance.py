"""Tunnel endpoint replacement and maintenance, as AWS does them (docs/aws.md §1.10, §13).

A replaced tunnel keeps its outside IP and loses its IKE and ESP state; it comes
back when the customer gateway initiates again (or vgw does, with startup_action
start). AWS replaces one tunnel of a connection at a time, and before it takes a
tunnel down it moves its egress to the other tunnel and lowers the other
tunnel's MED (docs/aws.md §7: "set[s] a lower outbound multi-exit discriminator
(MED) value on the other tunnel"). `Replacer` does the same for every cause: a
Modify* of the EC2 API, ReplaceVpnTunnel, a maintenance applied, and
`vgw maintenance` on a YAML connection:

1. the tunnel is marked draining in the VPC route table (daemon/routing): the
   other tunnel becomes the primary, so egress moves and its MED becomes 100 and
   this one's 200; for a dynamic connection vgw then waits DRAIN_SECONDS so the
   customer gateway's BGP moves its traffic too;
2. the tunnel is replaced (daemon/reload.py with `force`): DELETE to the customer
   gateway, a new IKE endpoint on the same address;
3. before the connection's next tunnel goes, vgw waits (at most RETURN_SECONDS)
   for this one to be UP again, if it was UP before.

Tunnels waiting for their turn keep running with the settings they had
(`held`): a Modify* that changed both tunnels changes the second only when it is
replaced.

`YamlMaintenance` keeps the maintenance planned for YAML connections (those of
the API live in its database): with the tunnel's enable_tunnel_lifecycle_control
on it waits until applied (`vgw maintenance apply`) or its deadline; without, it
is applied at once (docs/aws.md §1.10). It lives in memory: a restart forgets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:                      # the gateway imports this module, not the reverse
    from .gateway import Gateway

log = logging.getLogger("vgw")

# vgw's choices; AWS publishes neither figure
DRAIN_SECONDS = 3.0     # after the MEDs moved, before the tunnel goes (a BGP UPDATE and its processing)
RETURN_SECONDS = 60.0   # a replaced tunnel back UP before the connection's next one goes


class Replacer:
    """Endpoint replacements in progress, one task per connection."""

    def __init__(self, gw: "Gateway", drain_seconds: float = DRAIN_SECONDS,
                 return_seconds: float = RETURN_SECONDS):
        self.gw = gw
        self.drain_seconds, self.return_seconds = drain_seconds, return_seconds
        self.queues: dict[str, list[str]] = {}     # connection -> outside IPs still to replace, in order
        self.tasks: dict[str, asyncio.Task] = {}
        self.modifying: set[str] = set()            # connections whose replacement a Modify* asked for
        self.replaced: dict[str, float] = {}        # outside IP -> when it was last replaced

    @property
    def held(self) -> frozenset[str]:
        """Tunnels waiting for their turn: they keep running as they are."""
        return frozenset(ip for queue in self.queues.values() for ip in queue)

    def busy(self, connection: str) -> bool:
        """A Modify*'s replacement of this connection is still going on (the API
        shows the connection `modifying` meanwhile)."""
        return connection in self.modifying and connection in self.tasks

    def replace(self, connection: str, outside_ips, modifying: bool = False) -> None:
        """Queue tunnels of `connection` for replacement, one at a time, in order."""
        queue = self.queues.setdefault(connection, [])
        queue += [str(ip) for ip in outside_ips if str(ip) not in queue]
        if modifying:
            self.modifying.add(connection)
        if connection not in self.tasks:
            self.tasks[connection] = self.gw.loop.create_task(self._run(connection))

    def cancel(self, connection: str) -> None:
        """The connection is gone (or its replacements no longer matter)."""
        task = self.tasks.pop(connection, None)
        if task is not None:
            task.cancel()
        for ip in self.queues.pop(connection, []):
            self.gw.vpc_table.set_draining(ip, False)
        self.modifying.discard(connection)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for connection in list(self.tasks):
            self.cancel(connection)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, connection: str) -> None:
        gw = self.gw
        queue = self.queues[connection]
        try:
            while queue and not gw.stopping:
                ip = queue[0]
                tunnel = gw.tunnels.get(ip)
                was_up = tunnel is not None and tunnel.up
                if tunnel is not None:
                    await self._drain(connection, ip, tunnel.conn.dynamic)
                queue.pop(0)
                log.info("[%s] endpoint replacement of tunnel %s: its IKE and ESP state go, its outside"
                         " IP stays", connection, ip)
                gw.apply(force=frozenset({ip}), what=f"[{connection}] tunnel {ip} replaced")
                self.replaced[ip] = time.time()
                gw.vpc_table.set_draining(ip, False)
                if queue and was_up:
                    await self._back_up(connection, ip)
        except asyncio.CancelledError:
            raise
        except Exception:   # noqa: BLE001 - a failed replacement must not take the gateway down
            log.exception("[%s] endpoint replacement failed; `vgw status` shows what runs now", connection)
        finally:
            if self.tasks.get(connection) is asyncio.current_task():
                del self.tasks[connection]
                self.queues.pop(connection, None)
                self.modifying.discard(connection)

    async def _drain(self, connection: str, ip: str, dynamic: bool) -> None:
        """Move egress off the tunnel and raise its MED (docs/aws.md §7, §13)."""
        gw = self.gw
        before = gw.primary.get(connection)
        gw.vpc_table.set_draining(ip, True)
        gw.update_routes()
        after = gw.primary.get(connection)
        if before == ip and after != ip:
            log.info("[%s] tunnel %s is about to be replaced: egress and MED 100 moved to %s", connection, ip,
                     after)
            if dynamic:
                await asyncio.sleep(self.drain_seconds)   # the customer gateway's BGP follows the MEDs

    async def _back_up(self, connection: str, ip: str) -> None:
        deadline = self.gw.loop.time() + self.return_seconds
        while self.gw.loop.time() < deadline:
            tunnel = self.gw.tunnels.get(ip)
            if tunnel is not None and tunnel.up:
                return
            await asyncio.sleep(0.2)
        log.warning("[%s] tunnel %s is not UP again %g s after its replacement (the customer gateway must"
                    " initiate, or startup_action start); replacing the next tunnel all the same", connection,
                    ip, self.return_seconds)


@dataclass
class Pending:
    connection: str
    outside_ip: str
    apply_after: float


class YamlMaintenance:
    """Maintenance planned for the YAML connections' tunnels (the API's own are in its database)."""

    def __init__(self, replacer: Replacer):
        self.replacer = replacer
        self.pending: dict[str, Pending] = {}       # outside IP -> the maintenance waiting there
        self.applied: dict[str, float] = {}         # outside IP -> when maintenance was last applied

    def schedule(self, connection, outside_ip: str | None, apply_after: float, now: float) -> list[str]:
        """Plan a maintenance of one tunnel or of each; returns the tunnels it was
        applied to at once (those without lifecycle control, docs/aws.md §1.10)."""
        tunnels = [t for t in connection.tunnels if outside_ip is None or str(t.outside_ip) == outside_ip]
        applied = []
        for tunnel in tunnels:
            ip = str(tunnel.outside_ip)
            if tunnel.enable_tunnel_lifecycle_control:
                self.pending[ip] = Pending(connection.name, ip, apply_after)
            else:
                self._apply(connection.name, ip, now)
                applied.append(ip)
        return applied

    def apply(self, connection: str, outside_ip: str | None, now: float) -> list[str]:
        """Apply the pending maintenance now (the customer accepts it early)."""
        due = [p for p in self.pending.values() if p.connection == connection
               and (outside_ip is None or p.outside_ip == outside_ip)]
        for item in due:
            self._apply(item.connection, item.outside_ip, now)
        return [p.outside_ip for p in due]

    def advance(self, now: float) -> list[str]:
        """Apply what is due (the gateway's one-second timer)."""
        due = [p for p in self.pending.values() if p.apply_after <= now]
        for item in due:
            self._apply(item.connection, item.outside_ip, now)
        return [p.outside_ip for p in due]

    def forget(self, keep: set[str]) -> None:
        """Tunnels gone from the config (a reload) have no maintenance any more."""
        for ip in set(self.pending) - keep:
            del self.pending[ip]

    def _apply(self, connection: str, ip: str, now: float) -> None:
        self.pending.pop(ip, None)
        self.applied[ip] = now
        self.replacer.replace(connection, [ip])
