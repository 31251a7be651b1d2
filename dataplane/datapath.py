"""DataPath: ESP forwarding between TUN devices and outside sockets, for any number of tunnels.

The daemon's one entry into the data path.  It owns the tables both directions share
and wires the parts together; the per-packet work lives in the parts:

    kernel -> TUN -> send.Sender.pump_tun -> EspSa.seal_batch -> sockets (UDP 4500 / raw ESP)
    sockets -> receive.Receiver.pump_udp/pump_raw -> SPI table -> EspSa.open_spans -> TUN -> kernel

* sockets.py: the outside sockets of one local address (OutsideSockets)
* binding.py: one tunnel's TUN device bound to its SAs, with its counters (TunBinding)
* receive.py and send.py: the two packet paths
* accounting.py: drops by reason, global counters, rate-limited drop logs
* limits.py: emulated per-tunnel limits (a token bucket per direction)
* esp.py (EspSa), offload.py (GRO/TSO with virtio_net_hdr), encap.py (RFC 3948)

The pumps are plain code that knows nothing of asyncio: given an event loop, DataPath
registers them with ``add_reader``; given None, the caller drives ``pump_udp``,
``pump_raw`` and ``pump_tun`` itself (tests, or a worker process with its own epoll).
IKE datagrams that share port 4500 with ESP are handed to ``on_ike`` as they are read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from . import encap
from .accounting import Accounting, named_counts
from .binding import TunBinding
from .esp import DropReason, EspSa
from .limits import TunnelLimits
from .receive import Receiver
from .send import Sender
from .sockets import OutsideSockets, open_outside_sockets

__all__ = ["DataPath", "DEFAULT_BATCH"]

#: Reads per wake-up and socket or TUN (until EAGAIN otherwise).  88 = two full UDP
#: GSO runs of 1436-byte inner packets (44 ESP packets of 1472 bytes fit one 64 KB
#: send): with 64 the second run of each batch carried 20.
DEFAULT_BATCH = 88
_MARKER = encap.NON_ESP_MARKER
_KEEPALIVE = encap.NAT_KEEPALIVE

OnIke = Callable[[bytes, tuple, tuple], None]
OnPeerMoved = Callable[[str, tuple], None]


class DataPath:
    """ESP forwarding between TUN devices and outside sockets for any number of tunnels.

    ``loop`` may be None: then nothing is registered with asyncio and the caller
    drives ``pump_udp``/``pump_raw``/``pump_tun`` itself (e.g. a worker process).
    ``on_ike(message, local_addr, remote_addr)`` gets IKE from port 4500;
    ``on_peer_moved(tunnel_id, (ip, port))`` hears of authenticated ESP from a new
    address (the peer's NAT mapping changed).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        on_ike: OnIke,
        batch: int = DEFAULT_BATCH,
        on_peer_moved: OnPeerMoved | None = None,
    ) -> None:
        self._loop = loop
        self._outside: dict[str, OutsideSockets] = {}
        self._bindings: dict[str, TunBinding] = {}
        # SPI as the 4 bytes of the wire (saves an int conversion per packet) -> SA, binding.
        self._inbound: dict[bytes, tuple[EspSa, TunBinding]] = {}
        self.accounting = Accounting()
        self.receiver = Receiver(self._inbound, self.accounting, on_ike, on_peer_moved, batch)
        self.sender = Sender(self.accounting, batch)
        # The pumps, for whoever drives the data path without asyncio.
        self.pump_udp = self.receiver.pump_udp
        self.pump_raw = self.receiver.pump_raw
        self.pump_tun = self.sender.pump_tun
        self._closed = False

    @property
    def batch(self) -> int:
        """Reads per pump call (per wake-up) on one socket or TUN."""
        return self.sender.batch

    @batch.setter
    def batch(self, value: int) -> None:
        self.sender.batch = self.receiver.batch = value

    # -- outside sockets ---------------------------------------------------------------

    def add_outside_sockets(
        self,
        local_ip: str,
        port: int = encap.NAT_T_PORT,
        raw_esp: bool = True,
        gso: bool = True,
        gro: bool = True,
    ) -> OutsideSockets:
        """Bind UDP ``local_ip:port`` (and a raw ESP socket on ``local_ip`` if ``raw_esp``).

        ``gso``: send bursts of equal-sized UDP-encapsulated ESP packets with one
        ``sendmsg`` (UDP_SEGMENT), if the kernel has it.  ``gro``: let the kernel
        hand over runs of datagrams of one flow in one ``recvmsg`` (UDP_GRO)."""
        if local_ip in self._outside:
            raise ValueError(f"outside sockets on {local_ip} already added")
        socks = open_outside_sockets(local_ip, port, raw_esp, gso, gro)
        self._outside[local_ip] = socks
        if self._loop is not None:
            self._loop.add_reader(socks.udp.fileno(), self.pump_udp, socks)
            if socks.raw is not None:
                self._loop.add_reader(socks.raw.fileno(), self.pump_raw, socks)
        return socks

    def remove_outside_sockets(self, local_ip: str) -> None:
        socks = self._outside.pop(local_ip, None)
        if socks is None:
            return
        for b in self._bindings.values():
            if b.out_sockets is socks:
                b.clear_out()
        if self._loop is not None:
            for s in (socks.udp, socks.raw):
                if s is not None:
                    self._loop.remove_reader(s.fileno())
        socks.close()

    def outside_sockets(self, local_ip: str) -> OutsideSockets:
        try:
            return self._outside[local_ip]
        except KeyError:
            raise KeyError(f"no outside sockets on {local_ip}: call add_outside_sockets first") from None

    def send_ike(self, local_ip: str, remote_addr: tuple, data: bytes) -> None:
        """Send an IKE message from ``local_ip``:4500, behind the non-ESP marker (RFC 3948 §2.2)."""
        self.outside_sockets(local_ip).udp.sendto(_MARKER + data, remote_addr)
        self.accounting.counters["ike_out"] += 1

    # -- tunnels: TUN devices and their SAs ----------------------------------------------

    def add_tunnel(self, tunnel_id: str, tun, local_ip: str | None = None) -> None:
        """Bind tunnel ``tunnel_id``'s TUN device; packets read from it go out on the
        tunnel's outbound SA.

        ``local_ip`` (optional) names the tunnel's outside address early, so drops on
        those sockets (unknown SPI, malformed) are charged to this tunnel."""
        if tunnel_id in self._bindings:
            raise ValueError(f"tunnel {tunnel_id!r} already added")
        b = TunBinding(tunnel_id, tun)
        self._bindings[tunnel_id] = b
        if local_ip is not None:
            self._associate(b, self.outside_sockets(local_ip))
        if self._loop is not None:
            self._loop.add_reader(b.fd, self.pump_tun, b)
            b.reader = True

    def remove_tunnel(self, tunnel_id: str) -> None:
        """Unbind a tunnel's TUN and SAs.  The TUN device stays open: its owner closes it."""
        b = self._bindings.pop(tunnel_id, None)
        if b is None:
            return
        if b.reader and self._loop is not None:
            self._loop.remove_reader(b.fd)
        for spi_b in [k for k, (_, bb) in self._inbound.items() if bb is b]:
            del self._inbound[spi_b]
        for socks in self._outside.values():
            socks.tunnels.discard(tunnel_id)
            self._refresh_owner(socks)

    def binding(self, tunnel_id: str) -> TunBinding:
        """The TUN binding of ``tunnel_id`` (what ``pump_tun`` takes)."""
        try:
            return self._bindings[tunnel_id]
        except KeyError:
            raise KeyError(f"unknown tunnel {tunnel_id!r}: call add_tunnel first") from None

    def install_inbound(self, tunnel_id: str, sa: EspSa) -> None:
        """Accept ESP with ``sa.spi``; its packets are written to the tunnel's TUN."""
        b = self.binding(tunnel_id)
        key = sa.spi.to_bytes(4, "big")
        old = self._inbound.get(key)
        if old is not None and old[0] is not sa:
            self._retire_inbound(key)
        self._inbound[key] = (sa, b)
        b.inbound[sa.spi] = sa

    def remove_inbound(self, spi: int) -> None:
        self._retire_inbound(spi.to_bytes(4, "big"))

    def set_outbound(
        self, tunnel_id: str, sa: EspSa, local_ip: str, remote_addr: tuple, udp_encap: bool
    ) -> None:
        """Send the tunnel's traffic with ``sa`` to ``remote_addr`` (ip, port).

        In UDP from ``local_ip``:4500 when ``udp_encap`` (RFC 3948), else as raw IP
        protocol 50 (the port in ``remote_addr`` is then ignored)."""
        b = self.binding(tunnel_id)
        socks = self.outside_sockets(local_ip)
        if udp_encap:
            send, addr = socks.udp.sendto, (remote_addr[0], remote_addr[1])
        else:
            if socks.raw is None:
                raise ValueError(f"outside sockets on {local_ip} have no raw ESP socket "
                                 "(add_outside_sockets(raw_esp=True))")
            send, addr = socks.raw.sendto, (remote_addr[0], 0)
        b.set_out(sa, send, addr, socks, udp_encap)
        self._associate(b, socks)

    def clear_outbound(self, tunnel_id: str) -> None:
        """Stop sending: packets read from the TUN are dropped (NO_OUTBOUND_SA)."""
        self.binding(tunnel_id).clear_out()

    def set_limits(self, tunnel_id: str, limits: TunnelLimits | None, now: float | None = None) -> None:
        """Enforce ``limits`` on the tunnel's traffic in each direction, each with its
        own token bucket (limits.py); None lifts them.  Takes effect with the next
        batch, SAs and counters untouched; the same limits again change nothing.
        ``now``: time.monotonic() (the clock the packet paths use) unless given."""
        self.binding(tunnel_id).set_limits(limits, time.monotonic() if now is None else now)

    def send_keepalive(self, tunnel_id: str) -> bool:
        """Send one NAT-keepalive (RFC 3948 §2.3) to the peer; False if not UDP-encapsulated."""
        b = self.binding(tunnel_id)
        if not b.out_udp or b.out_sockets is None:
            return False
        try:
            b.out_sockets.udp.sendto(_KEEPALIVE, b.out_addr)
        except OSError:
            b.drops[DropReason.SEND_ERROR] += 1
            return False
        self.accounting.counters["keepalive_out"] += 1
        return True

    # -- counters ------------------------------------------------------------------------

    def stats(self, tunnel_id: str) -> dict:
        """Inner bytes/packets (AWS TunnelDataIn after decryption, TunnelDataOut before
        encryption), drops by reason, last authenticated inbound time."""
        return self.binding(tunnel_id).stats()

    def global_stats(self) -> dict:
        """Drops no tunnel could be charged with, and IKE/keepalive counts."""
        return {"drops": named_counts(self.accounting.global_drops), **self.accounting.counters}

    def last_inbound(self, tunnel_id: str) -> float | None:
        """time.monotonic() of the last authenticated ESP packet (for DPD), or None."""
        return self.binding(tunnel_id).last_in

    def close(self) -> None:
        """Unregister and close all sockets; TUN devices are left to their owners."""
        if self._closed:
            return
        self._closed = True
        for tid in list(self._bindings):
            self.remove_tunnel(tid)
        for ip in list(self._outside):
            self.remove_outside_sockets(ip)
        self._inbound.clear()

    # -- helpers -------------------------------------------------------------------------

    def _retire_inbound(self, key: bytes) -> None:
        entry = self._inbound.pop(key, None)
        if entry is not None:
            sa, b = entry
            b.retire_in(sa)

    def _associate(self, b: TunBinding, socks: OutsideSockets) -> None:
        for other in self._outside.values():
            if other is not socks and b.id in other.tunnels:
                other.tunnels.discard(b.id)
                self._refresh_owner(other)
        socks.tunnels.add(b.id)
        self._refresh_owner(socks)

    def _refresh_owner(self, socks: OutsideSockets) -> None:
        socks.owner = self._bindings.get(next(iter(socks.tunnels))) if len(socks.tunnels) == 1 else None
