"""One tunnel's BGP session in asyncio: the thin shell around a bgpcore.BgpPeer.

As the gateway does for ikecore, this module only moves bytes and time: it
listens on TCP 179 at the VGW inside address (network+1 of the tunnel's /30),
connects to the customer gateway's (network+2) when the core asks, hands every
received chunk and every connection change to the core with the event loop's
clock, writes what the core transmits, arms one timer at the core's next
deadline, and passes the core's other events to its owner. Both ends may open
a connection; the core resolves the collision (RFC 4271 §6.8).

Nothing here decides anything about BGP. A connection from any address but the
customer gateway's inside address is closed at once (counted): the inside /30 is
point-to-point, AWS peers only with network+2 (docs/aws.md §1.2, §11).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import socket
from typing import Callable

from bgpcore.peer import BgpPeer
from bgpcore.settings import PeerSettings
from bgpcore.events import CloseConnection, ConnectRequested, Event

log = logging.getLogger("vgw.bgp")

BGP_PORT = 179
CONNECT_TIMEOUT = 10.0          # one attempt; the core's ConnectRetryTimer paces the next
MAX_WRITE_BUFFER = 1 << 20      # a peer that stops reading is cut off, not buffered for


class BgpTransport:
    def __init__(self, loop: asyncio.AbstractEventLoop, settings: PeerSettings, name: str,
                 on_event: Callable[["BgpTransport", Event], None], port: int = BGP_PORT):
        self.loop = loop
        self.port = port                      # 179; tests on loopback use another
        self.settings = settings
        self.name = name
        self.on_event = on_event
        self.peer = BgpPeer(settings)
        self.refused_connections = 0          # from an address that is not the CGW's
        self.listen_error: str | None = None
        self._server: asyncio.base_events.Server | None = None
        self._transports: dict[int, asyncio.Transport] = {}
        self._ids = itertools.count(1)
        self._connecting: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._closed = False

    # --- life --------------------------------------------------------------------------

    async def listen(self) -> None:
        """Accept the customer gateway's connections (the port stays open while
        the session is stopped: the core refuses what it cannot take)."""
        if self._server is not None or self._closed:
            return
        try:
            server = await self.loop.create_server(
                lambda: _Connection(self, outbound=False), host=str(self.settings.local_address),
                port=self.port, reuse_address=True)
        except OSError as exc:
            self.listen_error = _bind_problem(self.settings.local_address, self.port, exc)
            log.error("[%s] BGP: %s", self.name, self.listen_error)
            return
        if self._closed or self._server is not None:   # closed (or listened) while binding
            server.close()
            return
        self._server = server
        self.listen_error = None

    def start(self) -> None:
        """The tunnel's IPsec is up: the session may run (RFC 4271 ManualStart)."""
        if self._running:
            return
        self._running = True
        if self._server is None and not self._closed:
            self.loop.create_task(self.listen())
        self.peer.start(self.loop.time())
        self._pump()

    def stop(self, subcode: int = 2) -> None:
        """The tunnel went down or is removed: Cease (Administrative Shutdown by
        default, RFC 4486) on what is open, and no restart (ManualStop)."""
        if not self._running:
            return
        self._running = False
        self.peer.stop(self.loop.time(), subcode=subcode)
        self._pump()
        self._cancel_connect()

    async def close(self) -> None:
        self._closed = True
        self.stop()
        for transport in list(self._transports.values()):
            transport.close()
        self._transports.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def set_advertised(self, routes) -> None:
        self.peer.set_advertised(routes, self.loop.time())
        self._pump()

    def request_refresh(self) -> None:
        self.peer.request_refresh(self.loop.time())
        self._pump()

    # --- the core's input and output ---------------------------------------------------

    def _pump(self) -> None:
        """Write what the core transmits, act on or pass on its events, re-arm."""
        for conn, data in self.peer.transmit():
            transport = self._transports.get(conn)
            if transport is not None and not transport.is_closing():
                transport.write(data)
                if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                    log.warning("[%s] BGP: the peer does not read; closing the connection", self.name)
                    transport.abort()
        while (event := self.peer.next_event()) is not None:
            if isinstance(event, ConnectRequested):
                self._connect()
            elif isinstance(event, CloseConnection):
                transport = self._transports.pop(event.conn, None)
                if transport is not None:
                    transport.close()      # what was written is flushed first
            else:
                try:
                    self.on_event(self, event)
                except Exception:   # the owner's trouble must not stop the session
                    log.exception("[%s] BGP: cannot apply %s", self.name, type(event).__name__)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.peer.next_deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.peer.handle_timer(self.loop.time())
        self._pump()

    def _connect(self) -> None:
        self._cancel_connect()
        self._connecting = self.loop.create_task(self._connect_once())

    def _cancel_connect(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self._connecting = None

    async def _connect_once(self) -> None:
        s = self.settings
        try:
            await asyncio.wait_for(self.loop.create_connection(
                lambda: _Connection(self, outbound=True), host=str(s.peer_address), port=self.port,
                local_addr=(str(s.local_address), 0)), CONNECT_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            log.debug("[%s] BGP: connect to %s failed: %s", self.name, s.peer_address, exc)
            if self._running:
                self.peer.connect_failed(self.loop.time())
                self._pump()

    # --- connections -------------------------------------------------------------------

    def _made(self, transport: asyncio.Transport, outbound: bool) -> int | None:
        peer = transport.get_extra_info("peername")
        if not outbound and (peer is None or peer[0] != str(self.settings.peer_address)):
            self.refused_connections += 1
            transport.abort()
            return None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = next(self._ids)
        self._transports[conn] = transport
        self.peer.connection_made(conn, self.loop.time(), outbound=outbound)
        self._pump()
        return conn

    def _received(self, conn: int, data: bytes) -> None:
        self.peer.data_received(conn, data, self.loop.time())
        self._pump()

    def _lost(self, conn: int) -> None:
        if self._transports.pop(conn, None) is not None:
            self.peer.connection_lost(conn, self.loop.time())
            self._pump()


class _Connection(asyncio.Protocol):
    """One TCP connection: forwards to the speaker under a small id."""

    def __init__(self, speaker: BgpTransport, outbound: bool):
        self.speaker = speaker
        self.outbound = outbound
        self.conn: int | None = None

    def connection_made(self, transport) -> None:
        self.conn = self.speaker._made(transport, self.outbound)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.speaker._received(self.conn, data)

    def connection_lost(self, exc) -> None:
        if self.conn is not None:
            self.speaker._lost(self.conn)


def _bind_problem(address, port: int, exc: OSError) -> str:
    where = f"cannot listen on {address}:{port}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: the address is not on this host yet"
    if exc.errno == errno.EADDRINUSE:
        return (f"{where}: the port is in use; is a routing daemon (bgpd, bird) listening on all"
                " addresses? bind it to its own addresses")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied (needs CAP_NET_BIND_SERVICE)"
    return f"{where}: {exc.strerror or exc}"
