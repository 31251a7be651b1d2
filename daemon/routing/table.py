"""The VPC route table: one place decides every route and every advertisement.

As GoBGP and BIRD keep per-peer state apart from the RIB, vgw's BGP sessions
only report what they accepted (`learn`, `forget`) and send what this table
decides (`advertisements`); the gateway reports which tunnels are up. From
that, for the whole virtual private gateway (docs/aws.md §7):

- each connection's primary tunnel, the one AWS egresses on: kept while it is
  up, else the first tunnel up in configuration order; a tunnel being drained
  for maintenance is chosen only when no other is up (docs/aws.md §13);
- per prefix, one route by AWS's path selection (selection.py) across the
  static routes and BGP-learned paths of all connections;
- per tunnel of a dynamic connection, what its BGP session announces: the VPC's
  CIDRs with MED 100 on the primary tunnel and 200 on the other, and, as VPN
  CloudHub does, every prefix selected from another dynamic connection with that
  site's AS_PATH (docs/aws.md §7, §11); static connections' prefixes are not
  re-advertised (AWS documents CloudHub for dynamic connections only).

Learned prefixes that must not be installed are refused and logged once: a
default route (it would replace the host's own), one overlapping the VPC's
CIDRs, one containing a customer gateway's address (vgw's IKE/ESP to it would
enter a tunnel), and one overlapping, with another length, a prefix that
another connection had first (its static route, or a prefix it learned
earlier): that one keeps its place (CloudHub sites must not overlap,
docs/aws.md §7). The same prefix from two connections is no conflict: that is
redundancy, and selection decides.

The table is sans-I/O and incremental: inputs record what changed and mark the
prefixes they touch; `decide()` revisits only those (and their overlaps) and
returns a `Changes` with only what moved, which the gateway programs into the
kernel (daemon/routing/kernel.py) and the sessions. A full gateway (10 connections x 2
sessions x 100 prefixes) is decided once at start; an UPDATE then costs work in
proportion to its prefixes, not to the table.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Iterable, Mapping

from .paths import (MED_OTHER, MED_PRIMARY, ORIGIN_IGP, Advertisement, Changes, ConnectionPlan, Learned,
                    Path, Route, Source)
from .prefixes import PrefixIndex
from .selection import Key, path_key, select


def choose_primary(current: str | None, up: list[str]) -> str | None:
    """Keep the current primary while it is up (AWS: the selection "may change at
    times", not at every flap); else the tunnel that came up first (`up` is in
    the order the tunnels came up)."""
    if current in up:
        return current
    return up[0] if up else None


class VpcRouteTable:
    def __init__(self) -> None:
        self.vpc_cidrs: tuple[IPv4Network, ...] = ()
        self.connections: dict[str, ConnectionPlan] = {}
        self._connection_of: dict[str, str] = {}          # tunnel -> connection
        self._order: dict[str, int] = {}                  # connection -> position in the config
        self._up: set[str] = set()
        self._up_since: dict[str, int] = {}               # tunnel -> when it came up (a count)
        self._ups = 0
        self._draining: set[str] = set()
        self.primaries: dict[str, str | None] = {}
        self._paths: dict[IPv4Network, dict[Key, Path]] = {}     # every candidate, by prefix
        self._index = PrefixIndex()                               # the prefixes of _paths
        self._sequence = 0
        self.routes: dict[IPv4Network, Route] = {}
        self.refused: dict[str, dict[IPv4Network, str]] = {}     # tunnel -> prefix -> reason
        self._hub: dict[IPv4Network, Path] = {}           # selected BGP paths: what CloudHub re-advertises
        self._advertised: dict[str, dict[IPv4Network, Advertisement]] = {}
        self._dirty: set[IPv4Network] = set()
        self._rebuild: set[str] = set()                   # connections whose whole advertisement is redone
        self._made: dict[tuple, Advertisement] = {}

    # --- inputs: they record; decide() acts --------------------------------------------

    def configure(self, vpc_cidrs: Iterable[IPv4Network], connections: Iterable[ConnectionPlan]) -> None:
        """The gateway's configuration (at start and on every reload). Only what
        changed is decided again: a reload that adds one connection to a full
        CloudHub leaves the others' routes and advertisements as they are. A change
        of the VPC's CIDRs reconsiders every prefix (every refusal depends on them);
        a customer gateway's new or gone address only the prefixes containing it."""
        old_vpc, old = self.vpc_cidrs, self.connections
        self.vpc_cidrs = tuple(vpc_cidrs)
        self.connections = {c.name: c for c in connections}
        self._order = {name: i for i, name in enumerate(self.connections)}
        self._connection_of = {t: c.name for c in self.connections.values() for t in c.tunnels}
        self._up &= set(self._connection_of)
        self._up_since = {t: n for t, n in self._up_since.items() if t in self._up}
        self._draining &= set(self._connection_of)
        everything = old_vpc != self.vpc_cidrs
        old_ips = {c.customer_gateway_ip for c in old.values()}
        new_ips = {c.customer_gateway_ip for c in self.connections.values()}
        for ip in (old_ips ^ new_ips) - {None}:
            # a learned prefix containing a customer gateway's address is refused
            self._dirty.update(self._index.overlapping(IPv4Network(ip)))
        changed = {name for name in set(old) | set(self.connections) if old.get(name) != self.connections.get(name)}
        for prefix in list(self._paths):
            for key, path in list(self._paths[prefix].items()):
                # a changed connection's static paths are made again below; learned
                # ones stay while their tunnel stays in the same connection
                if (path.source is Source.STATIC and path.connection in changed) or \
                        self._connection_of.get(path.tunnel or "") != path.connection and path.tunnel:
                    self._drop(prefix, key)
        for name in changed & set(self.connections):
            for prefix in self.connections[name].static_routes:
                # static routes count as older than anything learned (learned -1);
                # between two of them the configuration order decides
                self._put(Path(prefix=prefix, connection=name, source=Source.STATIC, learned=-1))
        self.refused = {t: r for t, r in self.refused.items() if t in self._connection_of}
        if everything:
            self._dirty |= set(self._paths) | set(self.routes)
            self._rebuild |= set(self.connections)
        else:
            self._rebuild |= changed & set(self.connections)

    def set_up(self, tunnel: str, up: bool) -> None:
        """A tunnel can carry traffic (IPsec up; for a dynamic connection also its
        BGP session Established, docs/aws.md §5.2) or no longer can."""
        if tunnel in self._connection_of and (tunnel in self._up) != up:
            (self._up.add if up else self._up.discard)(tunnel)
            if up:
                self._ups += 1
                self._up_since[tunnel] = self._ups
            else:
                del self._up_since[tunnel]
            self._dirty |= {p.prefix for p in self._paths_of(tunnel)}
            self._rebuild.add(self._connection_of[tunnel])

    def set_draining(self, tunnel: str, draining: bool) -> None:
        """Before maintenance replaces a tunnel, AWS moves egress off it and raises
        its MED (docs/aws.md §7, §13)."""
        if tunnel in self._connection_of:
            (self._draining.add if draining else self._draining.discard)(tunnel)

    def learn(self, tunnel: str, announced: Mapping[IPv4Network, Learned],
              withdrawn: Iterable[IPv4Network] = ()) -> None:
        """What one tunnel's BGP session accepted (an UPDATE's worth)."""
        connection = self._connection_of.get(tunnel)
        if connection is None:
            return
        key = (connection, tunnel, Source.PROPAGATED)
        for prefix in withdrawn:
            self._drop(prefix, key)
        for prefix, route in announced.items():
            old = self._paths.get(prefix, {}).get(key)
            if old is None:
                self._sequence += 1
            # a re-announcement with new attributes keeps its age (RFC 5004: the
            # same path, updated)
            self._put(Path(prefix=prefix, connection=connection, source=Source.PROPAGATED, tunnel=tunnel,
                           as_path=route.as_path, as_path_length=route.as_path_length, med=route.med,
                           next_hop=route.next_hop, origin=route.origin,
                           learned=old.learned if old is not None else self._sequence))

    def forget(self, tunnel: str) -> None:
        """The tunnel's session ended: every path it learned is withdrawn."""
        for path in self._paths_of(tunnel):
            self._drop(path.prefix, path_key(path))

    # --- outputs -----------------------------------------------------------------------

    def advertisements(self, tunnel: str) -> dict[IPv4Network, Advertisement]:
        """The whole set one tunnel's session should announce now."""
        return dict(self._advertised.get(tunnel, {}))

    def accepted_count(self, tunnel: str) -> int:
        """Prefixes of this tunnel's session that the route table holds as paths,
        refused ones not counted (VgwTelemetry's AcceptedRouteCount, docs/aws.md §5.2)."""
        return len(self._paths_of(tunnel)) - len(self.refused.get(tunnel, {}))

    def is_up(self, tunnel: str) -> bool:
        return tunnel in self._up

    def advertised_to(self, prefix: IPv4Network) -> tuple[str, ...]:
        """The tunnels (up) whose sessions re-advertise a CloudHub prefix."""
        return tuple(t for t in self._connection_of
                     if t in self._up and prefix in self._advertised.get(t, {})
                     and self._advertised[t][prefix].learned_from is not None)

    # --- the decision ------------------------------------------------------------------

    def decide_all(self) -> Changes:
        """Decide every prefix and every advertisement anew (a check that the
        incremental decisions agree with a full one; the tests use it)."""
        self._dirty |= set(self._paths) | set(self.routes)
        self._rebuild |= set(self.connections)
        return self.decide()

    def decide(self) -> Changes:
        """Decide what the recorded inputs changed; only what moved is returned.

        The gateway calls this once per batch of inputs (one event-loop turn), so
        a burst of UPDATEs costs one decision."""
        changes = Changes()
        self._choose_primaries(changes)
        hub_moved = self._select_routes(changes)
        self._plan_advertisements(hub_moved, changes)
        self._dirty.clear()
        self._rebuild.clear()
        return changes

    def _choose_primaries(self, changes: Changes) -> None:
        for name, connection in self.connections.items():
            # the first session up was offered MED 100 (no primary yet): it becomes
            # the primary, so the MEDs it was sent stay true
            up = sorted((t for t in connection.tunnels if t in self._up), key=self._up_since.__getitem__)
            preferred = [t for t in up if t not in self._draining] or up
            current = self.primaries.get(name)
            new = choose_primary(current if current in preferred else None, preferred)
            if new != current:
                changes.primaries[name] = new
                changes.lines.append(f"[{name}] primary tunnel: {new or 'none (no tunnel is up)'}")
                self._rebuild.add(name)
                # static routes follow the primary; the primary breaks ties
                self._dirty |= {prefix for prefix, paths in self._paths.items()
                                if any(key[0] == name for key in paths)}
            self.primaries[name] = new
        for gone in set(self.primaries) - set(self.connections):
            del self.primaries[gone]

    def _select_routes(self, changes: Changes) -> dict[IPv4Network, Path | None]:
        """Decide each dirty prefix; return the CloudHub entries that moved."""
        hub_moved: dict[IPv4Network, Path | None] = {}
        for prefix in self._dirty:
            eligible = [p for p in self._paths.get(prefix, {}).values() if self._admitted(p, changes)]
            old = self.routes.get(prefix)
            route = self._route_for(prefix, eligible, old)
            if route is None:
                if old is not None:
                    del self.routes[prefix]
                    changes.removed.add(prefix)
                    changes.lines.append(f"[{old.path.connection}] route {prefix} withdrawn")
            else:
                self.routes[prefix] = route
                if old is None or old.tunnel != route.tunnel or path_key(old.path) != path_key(route.path):
                    changes.kernel[prefix] = route.tunnel
                    where = f"via {route.tunnel}" if route.tunnel else "unreachable (no tunnel up)"
                    changes.lines.append(f"[{route.path.connection}] route {prefix} {where}"
                                         f" ({route.path.source.value}; {route.reason})")
            hub = route.path if route and route.path.source is Source.PROPAGATED else None
            if self._hub.get(prefix) != hub:
                hub_moved[prefix] = hub
                if hub is None:
                    self._hub.pop(prefix, None)
                else:
                    self._hub[prefix] = hub
        return hub_moved

    def _route_for(self, prefix: IPv4Network, eligible: list[Path], old: Route | None) -> Route | None:
        if not eligible:
            return None

        def tunnel_of(path: Path) -> str | None:
            if path.source is Source.STATIC:
                return self.primaries.get(path.connection)
            return path.tunnel if path.tunnel in self._up else None

        def config_order(path: Path) -> tuple:
            tunnels = self.connections[path.connection].tunnels
            return (self._order[path.connection], tunnels.index(path.tunnel) if path.tunnel in tunnels else -1)

        best, tunnel, reason, others = select(eligible, tunnel_of, self.primaries,
                                              path_key(old.path) if old else None, config_order)
        if best.source is Source.PROPAGATED and tunnel is None:
            return None     # learned on a tunnel that is down: no route
        return Route(prefix=prefix, path=best, tunnel=tunnel, reason=reason, others=others)

    def _admitted(self, path: Path, changes: Changes) -> bool:
        """False for a learned path that must not be installed (logged once)."""
        if path.source is Source.STATIC:
            return True
        reason = self._refusal(path)
        refused = self.refused.setdefault(path.tunnel, {})
        if reason is None:
            refused.pop(path.prefix, None)
            return True
        if refused.get(path.prefix) != reason:
            refused[path.prefix] = reason
            changes.lines.append(f"[{path.connection}] {path.tunnel}: learned prefix {path.prefix}"
                                 f" not installed: {reason}")
        return False

    def _refusal(self, path: Path) -> str | None:
        prefix = path.prefix
        if prefix.prefixlen == 0:
            return "a default route would replace the host's own"
        for cidr in self.vpc_cidrs:
            if prefix.overlaps(cidr):
                return f"overlaps the VPC CIDR {cidr}"
        for connection in self.connections.values():
            ip = connection.customer_gateway_ip
            if ip is not None and ip in prefix:
                return f"contains the customer gateway address {ip}"
        for other in self._index.overlapping(prefix):
            if other == prefix:
                continue
            first = [q.connection for q in self._paths[other].values()
                     if q.connection != path.connection and (q.source is Source.STATIC or q.learned < path.learned)]
            if first:
                return (f"overlaps {other} of connection {', '.join(sorted(set(first)))}"
                        " (sites must not overlap; the first keeps its place)")
        return None

    def _plan_advertisements(self, hub_moved: Mapping[IPv4Network, Path | None], changes: Changes) -> None:
        for connection in self.connections.values():
            if not connection.dynamic:
                continue
            primary = self.primaries.get(connection.name)
            for tunnel in connection.tunnels:
                # with no primary yet, every tunnel offers MED 100: the first
                # session up becomes the primary and keeps what it was sent
                med = MED_PRIMARY if primary in (tunnel, None) else MED_OTHER
                if connection.name in self._rebuild or tunnel not in self._advertised:
                    table = {cidr: self._advert((), med, ORIGIN_IGP, None) for cidr in self.vpc_cidrs}
                    for prefix, path in self._hub.items():
                        if path.connection != connection.name:
                            table[prefix] = self._advert(path.as_path, med, path.origin, path.connection)
                    delta = _difference(self._advertised.get(tunnel, {}), table)
                    self._advertised[tunnel] = table
                else:
                    table = self._advertised[tunnel]
                    delta = {}
                    for prefix, path in hub_moved.items():
                        if path is not None and path.connection != connection.name:
                            new = self._advert(path.as_path, med, path.origin, path.connection)
                            if table.get(prefix) is not new:
                                table[prefix] = delta[prefix] = new
                        elif prefix in table and table[prefix].learned_from is not None:
                            del table[prefix]
                            delta[prefix] = None
                if delta:
                    changes.advertisements[tunnel] = delta
        for gone in set(self._advertised) - set(self._connection_of):
            del self._advertised[gone]

    def _advert(self, as_path: tuple[int, ...], med: int, origin: int, source: str | None) -> Advertisement:
        """Equal advertisements are one object: comparing tables is then mostly
        identity checks, and the sessions can cache what they encode per object."""
        key = (as_path, med, origin, source)
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = Advertisement(as_path=as_path, med=med, origin=origin, learned_from=source)
        return found

    # --- bookkeeping -------------------------------------------------------------------

    def _paths_of(self, tunnel: str) -> list[Path]:
        connection = self._connection_of.get(tunnel)
        key = (connection, tunnel, Source.PROPAGATED)
        return [paths[key] for paths in self._paths.values() if key in paths]

    def _put(self, path: Path) -> None:
        paths = self._paths.get(path.prefix)
        if paths is None:
            paths = self._paths[path.prefix] = {}
            self._index.add(path.prefix)
        paths[path_key(path)] = path
        self._touch(path.prefix)

    def _drop(self, prefix: IPv4Network, key: Key) -> None:
        paths = self._paths.get(prefix)
        if paths is None or paths.pop(key, None) is None:
            return
        self._touch(prefix)
        if not paths:
            del self._paths[prefix]
            self._index.remove(prefix)
        if key[2] is Source.PROPAGATED:
            self.refused.get(key[1], {}).pop(prefix, None)

    def _touch(self, prefix: IPv4Network) -> None:
        """A prefix's paths changed: it and the prefixes overlapping it (whose
        refusal may depend on it) are decided again."""
        self._dirty.add(prefix)
        self._dirty.update(self._index.overlapping(prefix))


def _difference(old: Mapping[IPv4Network, Advertisement],
                new: Mapping[IPv4Network, Advertisement]) -> dict[IPv4Network, Advertisement | None]:
    """What turns `old` into `new`: changed or added entries, None for withdrawn ones."""
    delta: dict[IPv4Network, Advertisement | None] = {p: a for p, a in new.items() if old.get(p) is not a}
    delta.update({p: None for p in old if p not in new})
    return delta
