"""Every BGP session of the gateway, and what their events mean for the rest.

One BgpTransport per tunnel of a dynamic connection (docs/aws.md §7, §11): it
listens from the moment the tunnel's TUN carries the VGW inside address, runs
while the tunnel's IPsec is up (a session needs the tunnel to carry its TCP),
and is stopped when IPsec goes down, so that AWS's "tunnel down" also ends the
session and withdraws its routes at once rather than at hold-timer expiry.

Session events become route table input (the session's accepted routes, and
whether the tunnel is up: for a dynamic connection only with BGP Established,
docs/aws.md §5.2) and records of AWS's BGP log (docs/aws.md §3.4). What each
session announces is the route table's decision, handed in by `advertise`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Awaitable, Callable

from bgpcore.settings import PeerSettings
from bgpcore import events as ev
from bgpcore.aspath import AsPath
from bgpcore.attributes import PathAttributes
from bgpcore.constants import Origin
from bgpcore.fsm import State

from ..routing import Advertisement, Learned, VpcRouteTable
from .awslog import BgpLog, resource_id, route_fields
from .transport import BgpTransport

log = logging.getLogger("vgw.bgp")

MAX_PREFIXES = 100      # docs/aws.md §4.1: dynamic routes from a CGW to a VGW connection


def peer_settings(amazon_side_asn: int, connection, tunnel) -> PeerSettings:
    """The session of one tunnel: between its inside addresses (VGW network+1,
    CGW network+2, docs/aws.md §1.2), hold time 30 s (docs/aws.md §0, §11)."""
    return PeerSettings(local_asn=amazon_side_asn, peer_asn=connection.customer_gateway.bgp_asn,
                        local_address=tunnel.vgw_inside_ip, peer_address=tunnel.cgw_inside_ip,
                        hold_time=30, max_prefixes=MAX_PREFIXES)


@dataclass
class Session:
    """One tunnel's transport with what the rest of vgw asks of it."""

    tunnel: object                      # daemon Tunnel: .id, .name, .conn, .cfg
    transport: BgpTransport
    log: BgpLog
    wanted: dict[IPv4Network, PathAttributes] = field(default_factory=dict)
    last_notification: dict | None = None
    last_change: float = field(default_factory=time.time)


class BgpSessions:
    def __init__(self, loop, table: VpcRouteTable, on_change: Callable[[], None],
                 decide_now: Callable[[], None], connection_id: Callable[[object], str], port: int = 179):
        self.loop = loop
        self.table = table
        self.on_change = on_change                  # the route table has input to decide
        self.decide_now = decide_now                # ... and must decide before the next packet
        self.connection_id = connection_id          # a connection's vpn- id, for resource_id
        self.port = port
        self.sessions: dict[str, Session] = {}
        self._attributes: dict[Advertisement, PathAttributes] = {}

    # --- life --------------------------------------------------------------------------

    def add(self, tunnel, amazon_side_asn: int) -> None:
        """A tunnel of a dynamic connection exists (its TUN carries the inside address):
        listen at once (in a task: binding is asynchronous), start if IPsec is up."""
        settings = peer_settings(amazon_side_asn, tunnel.conn, tunnel.cfg)
        transport = BgpTransport(self.loop, settings, tunnel.name, self._on_event, port=self.port)
        session = Session(tunnel, transport, BgpLog(tunnel.name, resource_id(self.connection_id(tunnel.conn),
                                                                             tunnel.id)))
        self.sessions[tunnel.id] = session
        self.loop.create_task(transport.listen())
        session.wanted = self._attributes_of(self.table.advertisements(tunnel.id))
        transport.set_advertised(session.wanted)
        if tunnel.ipsec_up:
            transport.start()

    def remove(self, tunnel_id: str) -> Awaitable[None]:
        """End the tunnel's session: it leaves at once, with its routes (a tunnel
        replaced in the same event-loop turn adds its new session beside a closing
        one, never under it); its transport closes in the awaitable returned."""
        session = self.sessions.pop(tunnel_id, None)
        if session is not None:
            self._down(session)
        return self._close(session)

    @staticmethod
    async def _close(session: Session | None) -> None:
        if session is not None:
            await session.transport.close()

    def settings_changed(self, tunnel, amazon_side_asn: int) -> bool:
        session = self.sessions.get(tunnel.id)
        return session is not None and session.transport.settings != peer_settings(amazon_side_asn, tunnel.conn,
                                                                                  tunnel.cfg)

    def ipsec(self, tunnel_id: str, up: bool) -> None:
        """The tunnel's IPsec came up or went down."""
        session = self.sessions.get(tunnel_id)
        if session is None:
            return
        if up:
            session.transport.start()
        else:
            session.transport.stop()
            self._down(session)

    async def close(self) -> None:
        for tunnel_id in list(self.sessions):
            await self.remove(tunnel_id)

    # --- what the sessions announce ----------------------------------------------------

    def advertise(self, deltas: dict[str, dict[IPv4Network, Advertisement | None]]) -> None:
        """The route table's decision, per tunnel (None: withdraw the prefix)."""
        for tunnel_id, delta in deltas.items():
            session = self.sessions.get(tunnel_id)
            if session is None:
                continue
            for prefix, advert in delta.items():
                if advert is None:
                    session.wanted.pop(prefix, None)
                else:
                    session.wanted[prefix] = self._attribute(advert)
            session.transport.set_advertised(session.wanted)

    def _attributes_of(self, adverts: dict[IPv4Network, Advertisement]) -> dict[IPv4Network, PathAttributes]:
        return {prefix: self._attribute(a) for prefix, a in adverts.items()}

    def _attribute(self, advert: Advertisement) -> PathAttributes:
        """Before export (the core prepends the local ASN and sets the next hop)."""
        found = self._attributes.get(advert)
        if found is None:
            found = self._attributes[advert] = PathAttributes(
                origin=Origin(advert.origin), as_path=AsPath.of(*advert.as_path), med=advert.med)
        return found

    # --- events ------------------------------------------------------------------------

    def _on_event(self, transport: BgpTransport, event: ev.Event) -> None:
        session = next((s for s in self.sessions.values() if s.transport is transport), None)
        if session is None:
            return
        tunnel, neighbor = session.tunnel, transport.settings.peer_address
        write = session.log
        cfg = tunnel.cfg
        established = transport.peer.state is State.ESTABLISHED
        if isinstance(event, ev.StateChanged):
            session.last_change = time.time()
            # docs/aws.md §3.4: "AWS-side peer BGP session state has changed from
            # OpenConfirm to Established with neighbor {ip}"
            write.session(f"AWS-side peer BGP session state has changed from {event.old.value} to"
                          f" {event.new.value} with neighbor {neighbor}", event.new is State.ESTABLISHED, cfg)
        elif isinstance(event, ev.Established):
            tunnel.set_bgp_established(True)
            self.table.set_up(tunnel.id, True)
            # at once, not at the end of this event-loop turn: the other tunnel's
            # session may reach Established in the same turn, and its first UPDATE
            # must carry MED 200 now that this one is the primary, not the MED 100
            # every tunnel offers while there is none (seen against ExaBGP: 100,
            # then 200 five milliseconds later)
            self.decide_now()
        elif isinstance(event, ev.SessionDown):
            self._down(session)
            write.session(f"BGP session with neighbor {neighbor} ended: {event.reason}", False, cfg,
                          logging.WARNING)
        elif isinstance(event, ev.RoutesChanged):
            self.table.learn(tunnel.id, {p: _learned(a) for p, a in event.announced.items()}, event.withdrawn)
            self.on_change()
            for prefix, attrs in event.announced.items():
                write.route("UPDATED", f"Route {prefix} received from neighbor {neighbor}",
                            route_fields(prefix, attrs.as_path.asns(), attrs.med, attrs.next_hop, False), cfg)
            for prefix in event.withdrawn:
                write.route("WITHDRAWN", f"Route {prefix} withdrawn by neighbor {neighbor}",
                            route_fields(prefix, (), None, None, False), cfg)
        elif isinstance(event, ev.RoutesAdvertised):
            for prefix, attrs in event.announced.items():
                write.route("ADVERTISED", f"Route {prefix} advertised to neighbor {neighbor}",
                            route_fields(prefix, attrs.as_path.asns(), attrs.med, attrs.next_hop, True), cfg,
                            logging.DEBUG)
            for prefix in event.withdrawn:
                write.route("WITHDRAWN", f"Route {prefix} withdrawn from neighbor {neighbor}",
                            route_fields(prefix, (), None, None, True), cfg, logging.DEBUG)
        elif isinstance(event, ev.RouteDenied):
            # docs/aws.md §3.4: "DENIED due to: as-path contains our own AS" / "non-connected next-hop"
            write.session(f"Route {event.prefix} from neighbor {neighbor} with as-path {event.attributes.as_path}"
                          f" DENIED due to: {event.reason}", established, cfg, logging.WARNING)
        elif isinstance(event, (ev.NotificationSent, ev.NotificationReceived)):
            sent = isinstance(event, ev.NotificationSent)
            session.last_notification = {"direction": "sent" if sent else "received", "code": event.code,
                                         "subcode": event.subcode, "name": event.name,
                                         "data": event.data.hex(), "at": time.time()}
            detail = getattr(event, "reason", "") if sent else ""
            data = f" data {event.data.hex()}" if event.data else ""
            # a collision's Cease (RFC 4271 §6.8) is routine: both ends connected at once
            level = logging.INFO if (event.code, event.subcode) == (6, 7) else logging.WARNING
            write.session(f"AWS-side peer {'sent' if sent else 'received'} NOTIFICATION {event.code}/"
                          f"{event.subcode} ({event.name}){data} {'to' if sent else 'from'} neighbor {neighbor}"
                          + (f": {detail}" if detail else ""), established, cfg, level)
        elif isinstance(event, (ev.OpenSent, ev.OpenReceived)):
            # docs/aws.md §3.4: OPEN "version 4, AS ..., holdtime ..., router-id ..."
            way = "sent OPEN to" if isinstance(event, ev.OpenSent) else "received OPEN from"
            write.session(f"AWS-side peer {way} neighbor {neighbor}: version {event.version}, AS {event.asn},"
                          f" holdtime {event.hold_time}, router-id {event.router_id}", established, cfg,
                          logging.DEBUG)
        elif isinstance(event, ev.EndOfRib):
            write.session(f"AWS-side peer received End-of-RIB from neighbor {neighbor}", established, cfg)
        elif isinstance(event, ev.PrefixLimitWarning):
            write.session(f"Neighbor {neighbor} has sent {event.count} prefixes; the maximum is {event.limit}"
                          " (max-prefix warning)", established, cfg, logging.WARNING)
        elif isinstance(event, ev.PrefixLimitExceeded):
            write.session(f"Neighbor {neighbor} sent more than the maximum of {event.limit} prefixes"
                          " (max-prefix violation): the session is reset", established, cfg, logging.WARNING)
        elif isinstance(event, ev.MalformedUpdate):
            write.session(f"Malformed UPDATE from neighbor {neighbor}: {event.reason} ({event.action})",
                          established, cfg, logging.WARNING)

    def _down(self, session: Session) -> None:
        """The session is not Established (any more): its routes go, the tunnel is down."""
        tunnel = session.tunnel
        if tunnel.bgp_established:
            tunnel.set_bgp_established(False)
            session.last_change = time.time()
        self.table.forget(tunnel.id)
        self.table.set_up(tunnel.id, False)
        self.on_change()

    # --- status ------------------------------------------------------------------------

    def status(self, tunnel_id: str) -> dict | None:
        """`bgp` of `vgw status --json` for one tunnel (None: not a dynamic connection)."""
        session = self.sessions.get(tunnel_id)
        if session is None:
            return None
        peer, settings = session.transport.peer, session.transport.settings
        since = peer.established_since
        return {
            "state": peer.state.value,
            "local_asn": settings.local_asn,
            "peer_asn": settings.peer_asn,
            "local_address": str(settings.local_address),
            "peer_address": str(settings.peer_address),
            "peer_router_id": str(peer.peer_router_id) if peer.peer_router_id else None,
            "hold_time": peer.negotiated_hold_time,
            "uptime_seconds": round(self.loop.time() - since, 1) if since is not None
            and peer.state is State.ESTABLISHED else None,
            "prefixes": {"received": peer.received_prefixes, "accepted": self.table.accepted_count(tunnel_id),
                         "advertised": len(peer.advertised) if peer.state is State.ESTABLISHED else 0,
                         "limit": settings.max_prefixes},
            "last_notification": session.last_notification,
            "listen_error": session.transport.listen_error,
            "refused_connections": session.transport.refused_connections,
            "counters": {"messages_in": dict(peer.counters.messages_in),
                         "messages_out": dict(peer.counters.messages_out),
                         "notifications_sent": dict(peer.counters.notifications_sent),
                         "notifications_received": dict(peer.counters.notifications_received),
                         "routes_denied": peer.counters.routes_denied,
                         "sessions_established": peer.counters.sessions_established},
        }


def _learned(attrs: PathAttributes) -> Learned:
    return Learned(as_path=attrs.as_path.asns(), as_path_length=attrs.as_path.length, med=attrs.med,
                   next_hop=attrs.next_hop, origin=int(attrs.origin))
