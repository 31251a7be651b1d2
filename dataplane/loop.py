"""The packet loop: moves packets between TUN devices and the outside sockets.

Inbound:  UDP 4500 socket (RFC 3948) or raw IP protocol 50 socket
          -> SPI lookup -> EspSa.open -> write to the tunnel's TUN.
          IKE behind the non-ESP marker goes straight to ``on_ike``.
Outbound: TUN read -> the tunnel's outbound EspSa.seal -> UDP or raw ESP send.

The per-packet work lives in the ``pump_*`` methods, plain code that knows nothing
of asyncio: an asyncio loop drives them through ``add_reader`` here, and a worker
process could drive the same methods from its own ``select``/``epoll`` later.

Each wake-up reads at most ``batch`` packets (until EAGAIN otherwise), so a flood on
one fd cannot starve the others, e.g. the daemon's IKE socket on port 500 or its
timers.  IKE datagrams that share port 4500 with ESP are handed to ``on_ike`` inline,
as they are read, never queued behind ESP work.

Syscalls, not crypto, dominate the per-packet cost (loopback, 1400-byte inner,
AES-GCM: ~1 us per recvfrom or sendto, ~1.9 us per TUN write, ~1.2 us seal/open),
so UDP-encapsulated ESP uses UDP GSO to send runs of equal-sized packets in one
sendmsg, and UDP GRO to receive runs in one recvmsg, where the kernel has them.

Bad input never raises out of a pump: it is dropped and counted per tunnel (or
globally when no tunnel can be named) and logged at most once per reason per
``LOG_INTERVAL`` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import struct
import sys
import time
from enum import IntEnum
from typing import Callable

from . import encap
from .esp import DropReason, EspSa
from .offload import VNET_HDR_LEN, Gro, tso_split
from .tun import TunDevice

__all__ = ["PacketLoop", "Endpoint", "DEFAULT_BATCH", "LoopDropReason"]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 64
LOG_INTERVAL = 10.0
_RCVBUF = 4 << 20
_SNDBUF = 4 << 20
_MARKER = encap.NON_ESP_MARKER
_KEEPALIVE = encap.NAT_KEEPALIVE
_READ_SIZE = 65535
_READ_SIZE_VNET = 65535 + 10  # virtio_net_hdr + a 64 KB super-packet


class LoopDropReason(IntEnum):
    """Drops only the loop sees, numbered after DropReason so that one counter list
    holds both (the SA's own lists stop at DropReason)."""

    # recv on an outside socket failed, e.g. ECONNREFUSED from an ICMP port
    # unreachable: no packet was read, so nothing malformed was received
    SOCKET_ERROR = len(DropReason)


#: Every drop reason, in counter order; stats() reports them by lower-case name.
_REASONS = (*DropReason, *LoopDropReason)
_NREASONS = len(_REASONS)

IPPROTO_ESP = 50
SO_NO_CHECK = 11  # linux/asm-generic/socket.h
UDP_SEGMENT = 103  # linux/udp.h: UDP GSO (Linux 4.18)
UDP_GRO = 104  # linux/udp.h: receive coalesced datagrams (Linux 5.0)
_GRO_CMSG_SPACE = socket.CMSG_SPACE(4)  # the kernel reports gso_size as an int
# One GSO send carries at most 64 segments (UDP_MAX_SEGMENTS was 64 before Linux 5.x)
# and must fit the 16-bit IP length.
_GSO_MAX_SEGS = 64
_GSO_MAX_BYTES = 65000
# errnos meaning "this path cannot do GSO at all": one send per packet from then on.
_GSO_UNSUPPORTED = {errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
# errnos meaning "segments this big do not fit the path MTU": GSO cannot fragment,
# while a single send with DF clear is fragmented by the kernel.
_GSO_TOO_BIG = {errno.EINVAL, errno.EMSGSIZE}
_pack_u16 = struct.Struct("=H").pack
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)

OnIke = Callable[[bytes, tuple, tuple], None]
OnPeerMoved = Callable[[str, tuple], None]
#: Authenticated ESP from a new address is reported at most this often per tunnel
#: (seconds): packets still in flight from the old NAT mapping must not swing the
#: tunnel back.
PEER_MOVE_INTERVAL = 1.0


class Endpoint:
    """Outside sockets of one local address: UDP (port 4500 by default) and raw ESP."""

    __slots__ = ("local_ip", "port", "family", "udp", "raw", "tunnels", "owner", "gso", "gso_limit", "gro")

    def __init__(
        self, local_ip: str, port: int, family: int, udp, raw, gso: bool = False, gro: bool = False
    ) -> None:
        self.gro = gro  # UDP GRO enabled: recvmsg may return several datagrams at once
        self.gso = gso  # UDP GSO (UDP_SEGMENT) usable on the UDP socket
        self.gso_limit = 65535  # largest segment size known to pass (lowered on EMSGSIZE)
        self.local_ip = local_ip
        self.port = port
        self.family = family
        self.udp = udp
        self.raw = raw
        self.tunnels: set[str] = set()
        self.owner: _Tunnel | None = None  # the one tunnel using this address, if just one

    @property
    def local_addr(self) -> tuple[str, int]:
        return (self.local_ip, self.port)

    def __repr__(self) -> str:
        return f"Endpoint({self.local_ip}:{self.port}, raw_esp={self.raw is not None})"


class _Tunnel:
    """Per-tunnel forwarding state and counters."""

    __slots__ = (
        "id", "tun", "fd", "out_sa", "out_send", "out_addr", "out_ep", "out_udp",
        "inbound", "drops", "last_in",
        "old_in_packets", "old_in_bytes", "old_out_packets", "old_out_bytes", "reader",
        "vnet", "gro", "moved_at",
    )

    def __init__(self, tunnel_id: str, tun: TunDevice) -> None:
        self.id = tunnel_id
        self.tun = tun
        self.fd = tun.fd
        self.out_sa: EspSa | None = None
        self.out_send = None  # bound sendto of the socket to use
        self.out_addr = None  # its destination
        self.out_ep: Endpoint | None = None
        self.out_udp = False
        self.inbound: dict[int, EspSa] = {}
        # Drops counted by the loop and folded in from retired SAs, by DropReason.
        self.drops = [0] * _NREASONS
        self.last_in: float | None = None
        # Counters of SAs no longer installed (rekeyed away), so totals never go back.
        self.old_in_packets = self.old_in_bytes = 0
        self.old_out_packets = self.old_out_bytes = 0
        self.reader = False
        # IFF_VNET_HDR: reads start with a virtio_net_hdr, writes go through GRO.
        self.vnet = bool(getattr(tun, "vnet_hdr", False))
        self.gro: Gro | None = Gro(uso=bool(getattr(tun, "uso", False))) if self.vnet else None
        self.moved_at = -PEER_MOVE_INTERVAL   # when ESP from a new peer address was last reported

    def retire_in(self, sa: EspSa) -> None:
        self.old_in_packets += sa.packets
        self.old_in_bytes += sa.bytes
        _add(self.drops, sa.drops)

    def retire_out(self, sa: EspSa) -> None:
        self.old_out_packets += sa.packets
        self.old_out_bytes += sa.bytes
        _add(self.drops, sa.drops)


def _errno_name(exc: OSError) -> str:
    return "receive error " + errno.errorcode.get(exc.errno or 0, str(exc))


def _add(acc: list[int], more: list[int]) -> None:
    for i, v in enumerate(more):
        acc[i] += v


class PacketLoop:
    """ESP forwarding between TUN devices and outside sockets for any number of tunnels.

    ``loop`` may be None: then nothing is registered with asyncio and the caller
    drives ``pump_udp``/``pump_raw``/``pump_tun`` itself (e.g. a worker process).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        on_ike: OnIke,
        batch: int = DEFAULT_BATCH,
        on_peer_moved: OnPeerMoved | None = None,
    ) -> None:
        self._loop = loop
        self._on_ike = on_ike
        # authenticated ESP in UDP came from another address or port than the
        # tunnel sends to (tunnel id, (ip, port)): the peer's NAT mapping changed
        self.on_peer_moved = on_peer_moved
        self.batch = batch
        self._endpoints: dict[str, Endpoint] = {}
        self._tunnels: dict[str, _Tunnel] = {}
        # SPI as the 4 bytes of the wire (saves an int conversion per packet) -> SA, tunnel.
        self._inbound: dict[bytes, tuple[EspSa, _Tunnel]] = {}
        # Drops no tunnel can be charged with, and other global events.
        self.global_drops = [0] * _NREASONS
        self.counters = {"ike_in": 0, "keepalive_in": 0, "ike_out": 0, "keepalive_out": 0, "errors": 0,
                         # TUN writes with IFF_VNET_HDR: frames written, packets they carried
                         "gro_frames": 0, "gro_packets": 0,
                         # TUN reads with a GSO type or a partial checksum, cut by tso_split
                         "tso_frames": 0}
        self._last_log: dict[object, float] = {}
        self._closed = False
        self._dirty: list[_Tunnel] = []  # tunnels with GRO output not yet written

    # -- endpoints --------------------------------------------------------------

    def add_endpoint(
        self,
        local_ip: str,
        port: int = encap.NAT_T_PORT,
        raw_esp: bool = True,
        gso: bool = True,
        gro: bool = True,
    ) -> Endpoint:
        """Bind UDP ``local_ip:port`` (and a raw ESP socket on ``local_ip`` if ``raw_esp``).

        ``gso``: send bursts of equal-sized UDP-encapsulated ESP packets with one
        ``sendmsg`` (UDP_SEGMENT), if the kernel has it.  ``gro``: let the kernel
        hand over runs of datagrams of one flow in one ``recvmsg`` (UDP_GRO)."""
        if local_ip in self._endpoints:
            raise ValueError(f"endpoint {local_ip} already added")
        family = socket.AF_INET6 if ipaddress.ip_address(local_ip).version == 6 else socket.AF_INET
        udp = socket.socket(family, socket.SOCK_DGRAM)
        raw = None
        try:
            udp.setblocking(False)
            _tune(udp, family)
            gso = gso and _probe_gso(udp)
            gro = gro and _enable_gro(udp)
            if not gso and family == socket.AF_INET:
                # RFC 3948 §2.1: the UDP checksum SHOULD be sent as zero.  But the
                # kernel refuses GSO sends without a checksum (EINVAL), and GSO saves
                # ~2.3 us per packet, so the zero checksum is only used without GSO;
                # receivers MUST NOT depend on it being zero (same section).
                try:
                    udp.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
                except OSError:
                    pass
            try:
                udp.bind((local_ip, port))
            except OSError as e:
                raise OSError(e.errno, f"cannot bind UDP {local_ip}:{port}: {e.strerror} "
                              "(is another IKE daemon running, or is the address not on this host?)") from None
            if raw_esp:
                raw = socket.socket(family, socket.SOCK_RAW, IPPROTO_ESP)
                raw.setblocking(False)
                _tune(raw, family)
                raw.bind((local_ip, 0))
        except BaseException:
            udp.close()
            if raw is not None:
                raw.close()
            raise
        ep = Endpoint(local_ip, udp.getsockname()[1], family, udp, raw, gso, gro)
        self._endpoints[local_ip] = ep
        if self._loop is not None:
            self._loop.add_reader(udp.fileno(), self.pump_udp, ep)
            if raw is not None:
                self._loop.add_reader(raw.fileno(), self.pump_raw, ep)
        return ep

    def remove_endpoint(self, local_ip: str) -> None:
        ep = self._endpoints.pop(local_ip, None)
        if ep is None:
            return
        for t in self._tunnels.values():
            if t.out_ep is ep:
                self._unset_out(t)
        for s in (ep.udp, ep.raw):
            if s is not None:
                if self._loop is not None:
                    self._loop.remove_reader(s.fileno())
                s.close()

    def endpoint(self, local_ip: str) -> Endpoint:
        try:
            return self._endpoints[local_ip]
        except KeyError:
            raise KeyError(f"no endpoint for local address {local_ip}: call add_endpoint first") from None

    def send_ike(self, local_ip: str, remote_addr: tuple, data: bytes) -> None:
        """Send an IKE message from ``local_ip``:4500, behind the non-ESP marker (RFC 3948 §2.2)."""
        self.endpoint(local_ip).udp.sendto(_MARKER + data, remote_addr)
        self.counters["ike_out"] += 1

    # -- tunnels and SAs -----------------------------------------------------------

    def add_tunnel(self, tunnel_id: str, tun: TunDevice, local_ip: str | None = None) -> None:
        """Attach a TUN device; packets read from it go out on the tunnel's outbound SA.

        ``local_ip`` (optional) names the tunnel's outside address early, so drops on
        that endpoint (unknown SPI, malformed) are charged to this tunnel."""
        if tunnel_id in self._tunnels:
            raise ValueError(f"tunnel {tunnel_id!r} already added")
        t = _Tunnel(tunnel_id, tun)
        self._tunnels[tunnel_id] = t
        if local_ip is not None:
            self._associate(t, self.endpoint(local_ip))
        if self._loop is not None:
            self._loop.add_reader(t.fd, self.pump_tun, t)
            t.reader = True

    def remove_tunnel(self, tunnel_id: str) -> None:
        """Detach a tunnel and its SAs.  The TUN device stays open: its owner closes it."""
        t = self._tunnels.pop(tunnel_id, None)
        if t is None:
            return
        if t.reader and self._loop is not None:
            self._loop.remove_reader(t.fd)
        for spi_b in [k for k, (_, tt) in self._inbound.items() if tt is t]:
            del self._inbound[spi_b]
        for ep in self._endpoints.values():
            ep.tunnels.discard(tunnel_id)
            self._refresh_owner(ep)

    def install_inbound(self, tunnel_id: str, sa: EspSa) -> None:
        """Accept ESP with ``sa.spi``; its packets are written to the tunnel's TUN."""
        t = self._tunnel(tunnel_id)
        key = sa.spi.to_bytes(4, "big")
        old = self._inbound.get(key)
        if old is not None and old[0] is not sa:
            self._retire_inbound(key)
        self._inbound[key] = (sa, t)
        t.inbound[sa.spi] = sa

    def remove_inbound(self, spi: int) -> None:
        self._retire_inbound(spi.to_bytes(4, "big"))

    def set_outbound(
        self, tunnel_id: str, sa: EspSa, local_ip: str, remote_addr: tuple, udp_encap: bool
    ) -> None:
        """Send the tunnel's traffic with ``sa`` to ``remote_addr`` (ip, port).

        In UDP from ``local_ip``:4500 when ``udp_encap`` (RFC 3948), else as raw IP
        protocol 50 (the port in ``remote_addr`` is then ignored)."""
        t = self._tunnel(tunnel_id)
        ep = self.endpoint(local_ip)
        if udp_encap:
            send, addr = ep.udp.sendto, (remote_addr[0], remote_addr[1])
        else:
            if ep.raw is None:
                raise ValueError(f"endpoint {local_ip} has no raw ESP socket (add_endpoint(raw_esp=True))")
            send, addr = ep.raw.sendto, (remote_addr[0], 0)
        if t.out_sa is not None and t.out_sa is not sa:
            t.retire_out(t.out_sa)
        t.out_sa, t.out_send, t.out_addr, t.out_ep, t.out_udp = sa, send, addr, ep, udp_encap
        self._associate(t, ep)

    def clear_outbound(self, tunnel_id: str) -> None:
        """Stop sending: packets read from the TUN are dropped (NO_OUTBOUND_SA)."""
        self._unset_out(self._tunnel(tunnel_id))

    def send_keepalive(self, tunnel_id: str) -> bool:
        """Send one NAT-keepalive (RFC 3948 §2.3) to the peer; False if not UDP-encapsulated."""
        t = self._tunnel(tunnel_id)
        if not t.out_udp or t.out_ep is None:
            return False
        try:
            t.out_ep.udp.sendto(_KEEPALIVE, t.out_addr)
        except OSError:
            t.drops[DropReason.SEND_ERROR] += 1
            return False
        self.counters["keepalive_out"] += 1
        return True

    def stats(self, tunnel_id: str) -> dict:
        """Inner bytes/packets (AWS TunnelDataIn after decryption, TunnelDataOut before
        encryption), drops by reason, last authenticated inbound time."""
        t = self._tunnel(tunnel_id)
        drops = list(t.drops)
        pin, bin_ = t.old_in_packets, t.old_in_bytes
        for sa in t.inbound.values():
            pin += sa.packets
            bin_ += sa.bytes
            _add(drops, sa.drops)
        pout, bout = t.old_out_packets, t.old_out_bytes
        if t.out_sa is not None:
            pout += t.out_sa.packets
            bout += t.out_sa.bytes
            _add(drops, t.out_sa.drops)
        return {
            "packets_in": pin,
            "bytes_in": bin_,
            "packets_out": pout,
            "bytes_out": bout,
            "drops": {r.name.lower(): drops[r] for r in _REASONS},
            "last_inbound": t.last_in,
            "inbound_spis": sorted(t.inbound),
            "outbound_spi": None if t.out_sa is None else t.out_sa.spi,
        }

    def global_stats(self) -> dict:
        """Drops no tunnel could be charged with, and IKE/keepalive counts."""
        return {
            "drops": {r.name.lower(): self.global_drops[r] for r in _REASONS},
            **self.counters,
        }

    def last_inbound(self, tunnel_id: str) -> float | None:
        """time.monotonic() of the last authenticated ESP packet (for DPD), or None."""
        return self._tunnel(tunnel_id).last_in

    def close(self) -> None:
        """Unregister and close all sockets; TUN devices are left to their owners."""
        if self._closed:
            return
        self._closed = True
        for tid in list(self._tunnels):
            self.remove_tunnel(tid)
        for ip in list(self._endpoints):
            self.remove_endpoint(ip)
        self._inbound.clear()

    # -- the hot path ----------------------------------------------------------------

    def pump_udp(self, ep: Endpoint) -> int:
        """Read up to ``batch`` datagrams from the endpoint's UDP socket; return how many."""
        if ep.gro:
            return self._pump_udp_gro(ep)
        recvfrom = ep.udp.recvfrom
        inbound = self._inbound
        write = os.write
        now = time.monotonic()
        dirty = self._dirty
        n = 0
        for n in range(1, self.batch + 1):
            try:
                data, addr = recvfrom(_READ_SIZE)
            except BlockingIOError:
                n -= 1
                break
            except OSError as exc:
                self._drop(ep.owner, LoopDropReason.SOCKET_ERROR, _errno_name(exc))
                continue
            spi = data[:4]
            try:
                if spi != _MARKER and len(data) >= 8:
                    entry = inbound.get(spi)
                    if entry is None:
                        self._drop(ep.owner, DropReason.UNKNOWN_SPI, spi)
                        continue
                    sa, t = entry
                    inner = sa.open(data)
                    if inner is None:
                        self._sa_drop(sa, t, now)
                        continue
                    t.last_in = now
                    if addr != t.out_addr:
                        self._peer_moved(t, addr, now, sa, data)
                    gro = t.gro
                    if gro is None:
                        try:
                            write(t.fd, inner)
                        except OSError:
                            t.drops[DropReason.TUN_ERROR] += 1
                    else:
                        gro.add(inner)
                        if gro.segs == 1:
                            dirty.append(t)
                else:
                    self._udp_other(ep, data, addr)
            except Exception:  # never let one packet stop the loop
                self._internal_error(ep.owner)
        if dirty:
            self._flush_gro()
        return n

    def _pump_udp_gro(self, ep: Endpoint) -> int:
        """pump_udp with UDP GRO: one recvmsg may carry a run of datagrams of one flow,
        all ``gso_size`` long but the last (e.g. from a GSO sender).  Up to ``batch``
        receive calls; returns the number of datagrams.  A run of one SA is opened
        with one EspSa.open_batch call; other datagrams one by one, with the work of
        _udp_datagram inlined for ESP."""
        recvmsg = ep.udp.recvmsg
        datagram = self._udp_datagram
        inbound = self._inbound
        dirty = self._dirty
        write = os.write
        now = time.monotonic()
        n = 0
        for _ in range(self.batch):
            try:
                data, anc, _flags, addr = recvmsg(_READ_SIZE, _GRO_CMSG_SPACE)
            except BlockingIOError:
                break
            except OSError as exc:
                self._drop(ep.owner, LoopDropReason.SOCKET_ERROR, _errno_name(exc))
                continue
            seg = 0
            if anc:
                seg = int.from_bytes(anc[0][2][:4], sys.byteorder)
            size = len(data)
            if 0 < seg < size:
                # a GRO run: usually all ESP of one SA, opened in one call
                segs = [data[off : off + seg] for off in range(0, size, seg)]
                n += len(segs)
                spis = {d[:4] for d in segs}
                entry = inbound.get(segs[0][:4]) if len(spis) == 1 else None
                if entry is not None and len(segs[-1]) >= 8:
                    sa, t = entry
                    try:
                        inners = sa.open_batch(segs)
                        if sa.last_drop is not None:
                            self._sa_drop(sa, t, now)
                        if inners:
                            t.last_in = now
                            if addr != t.out_addr:
                                self._peer_moved(t, addr, now, sa, segs[-1])
                            gro = t.gro
                            if gro is None:
                                for inner in inners:
                                    try:
                                        write(t.fd, inner)
                                    except OSError:
                                        t.drops[DropReason.TUN_ERROR] += 1
                            else:
                                if not gro.segs:
                                    dirty.append(t)
                                add = gro.add
                                for inner in inners:
                                    add(inner)
                    except Exception:  # never let one packet stop the loop
                        self._internal_error(ep.owner)
                    continue
            else:
                segs = (data,)
                n += 1
            for d in segs:
                entry = inbound.get(d[:4])
                if entry is None or len(d) < 8:
                    datagram(ep, d, addr, now)  # IKE, keepalive, unknown SPI, short
                    continue
                sa, t = entry
                try:
                    inner = sa.open(d)
                    if inner is None:
                        self._sa_drop(sa, t, now)
                        continue
                    t.last_in = now
                    if addr != t.out_addr:
                        self._peer_moved(t, addr, now, sa, d)
                    gro = t.gro
                    if gro is None:
                        try:
                            write(t.fd, inner)
                        except OSError:
                            t.drops[DropReason.TUN_ERROR] += 1
                    else:
                        gro.add(inner)
                        if gro.segs == 1:
                            dirty.append(t)
                except Exception:  # never let one packet stop the loop
                    self._internal_error(ep.owner)
        if dirty:
            self._flush_gro()
        return n

    def _udp_datagram(self, ep: Endpoint, data: bytes, addr: tuple, now: float) -> None:
        """One datagram from port 4500 (same logic as inlined in pump_udp)."""
        spi = data[:4]
        try:
            if spi != _MARKER and len(data) >= 8:
                entry = self._inbound.get(spi)
                if entry is None:
                    self._drop(ep.owner, DropReason.UNKNOWN_SPI, spi)
                    return
                sa, t = entry
                inner = sa.open(data)
                if inner is None:
                    self._sa_drop(sa, t, now)
                    return
                t.last_in = now
                if addr != t.out_addr:
                    self._peer_moved(t, addr, now, sa, data)
                gro = t.gro
                if gro is None:
                    try:
                        os.write(t.fd, inner)
                    except OSError:
                        t.drops[DropReason.TUN_ERROR] += 1
                else:
                    gro.add(inner)
                    if gro.segs == 1:
                        self._dirty.append(t)
            else:
                self._udp_other(ep, data, addr)
        except Exception:  # never let one packet stop the loop
            self._internal_error(ep.owner)

    def pump_raw(self, ep: Endpoint) -> int:
        """Read up to ``batch`` packets from the raw ESP socket (IPv4: IP header included)."""
        recv = ep.raw.recv
        inbound = self._inbound
        write = os.write
        v4 = ep.family == socket.AF_INET
        now = time.monotonic()
        dirty = self._dirty
        n = 0
        for n in range(1, self.batch + 1):
            try:
                data = recv(_READ_SIZE)
            except BlockingIOError:
                n -= 1
                break
            except OSError as exc:
                self._drop(ep.owner, LoopDropReason.SOCKET_ERROR, _errno_name(exc))
                continue
            try:
                if v4:  # raw IPv4 sockets deliver the IP header; skip IHL*4 bytes
                    data = data[(data[0] & 15) << 2 :]
                if len(data) < 8:
                    self._drop(ep.owner, DropReason.MALFORMED, "short ESP")
                    continue
                entry = inbound.get(data[:4])
                if entry is None:
                    self._drop(ep.owner, DropReason.UNKNOWN_SPI, data[:4])
                    continue
                sa, t = entry
                inner = sa.open(data)
                if inner is None:
                    self._sa_drop(sa, t, now)
                    continue
                t.last_in = now
                gro = t.gro
                if gro is None:
                    try:
                        write(t.fd, inner)
                    except OSError:
                        t.drops[DropReason.TUN_ERROR] += 1
                else:
                    gro.add(inner)
                    if gro.segs == 1:
                        dirty.append(t)
            except Exception:
                self._internal_error(ep.owner)
        if dirty:
            self._flush_gro()
        return n

    def _flush_gro(self) -> None:
        """Write every pending GRO frame (one writev each) of the tunnels that have some."""
        writev = os.writev
        dirty = self._dirty
        counters = self.counters
        for t in dirty:
            gro = t.gro
            segs = gro.segs
            try:
                frames = gro.flush()
            except Exception:
                gro.out, gro.runs, gro.segs = [], {}, 0
                self._internal_error(t)
                continue
            counters["gro_frames"] += len(frames)
            counters["gro_packets"] += segs
            fd = t.fd
            for frame in frames:
                try:
                    writev(fd, frame)
                except OSError:
                    t.drops[DropReason.TUN_ERROR] += len(frame) - 1
        dirty.clear()

    def pump_tun(self, t: _Tunnel) -> int:
        """Read up to ``batch`` packets from the tunnel's TUN, encrypt and send them."""
        fd = t.fd
        read = os.read
        # Nothing else runs during a pump (no callbacks on this path), so the SA and
        # its destination cannot change under us: look them up once per batch.
        sa, send, addr = t.out_sa, t.out_send, t.out_addr
        if t.vnet:
            return self._pump_tun_vnet(t, sa, send, addr)
        if sa is not None and t.out_udp and t.out_ep.gso:
            return self._pump_tun_gso(t, sa, t.out_ep, addr)
        seal = sa.seal if sa is not None else None
        n = 0
        for n in range(1, self.batch + 1):
            try:
                inner = read(fd, _READ_SIZE)
            except BlockingIOError:
                return n - 1
            except OSError:
                t.drops[DropReason.TUN_ERROR] += 1
                return n
            if seal is None:
                t.drops[DropReason.NO_OUTBOUND_SA] += 1
                continue
            try:
                pkt = seal(inner)
                if pkt is None:
                    self._log_drop(t, sa.last_drop)
                    continue
                try:
                    send(pkt, addr)
                except OSError:
                    t.drops[DropReason.SEND_ERROR] += 1
            except Exception:
                self._internal_error(t)
        return n

    def _pump_tun_gso(self, t: _Tunnel, sa: EspSa, ep: Endpoint, addr: tuple) -> int:
        """pump_tun for UDP encapsulation with GSO: runs of equal-sized ESP packets
        (a bulk flow's packets are all MSS-sized) leave in one sendmsg each; the last
        packet of a run may be shorter (the UDP_SEGMENT rule)."""
        fd = t.fd
        read = os.read
        seal = sa.seal
        run: list[bytes] = []
        size = total = 0
        n = 0
        while n < self.batch:
            try:
                inner = read(fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                t.drops[DropReason.TUN_ERROR] += 1
                break
            n += 1
            try:
                pkt = seal(inner)
                if pkt is None:
                    self._log_drop(t, sa.last_drop)
                    continue
                ln = len(pkt)
                if run and (ln > size or total + ln > _GSO_MAX_BYTES or len(run) >= _GSO_MAX_SEGS):
                    self._send_run(t, ep, run, size, addr)
                    run = []
                if ln > ep.gso_limit:  # too big for one GSO segment on this path
                    self._send_run(t, ep, [pkt], ln, addr)
                    continue
                if not run:
                    size, total = ln, 0
                run.append(pkt)
                total += ln
                if ln < size:  # a shorter packet ends the run
                    self._send_run(t, ep, run, size, addr)
                    run = []
            except Exception:
                run = []
                self._internal_error(t)
        if run:
            self._send_run(t, ep, run, size, addr)
        return n

    def _pump_tun_vnet(self, t: _Tunnel, sa: EspSa | None, send, addr: tuple) -> int:
        """pump_tun for a TUN with IFF_VNET_HDR: each read is a virtio_net_hdr and a
        packet; a TSO super-packet (or a partial checksum) is cut into finished
        segments first (offload.tso_split).  Reads the batch first, then seals it in
        one call (EspSa.seal_batch: no method call per packet) and sends UDP GSO runs
        as _pump_tun_gso does."""
        fd = t.fd
        read = os.read
        frames: list[bytes] = []
        append = frames.append
        batch = self.batch
        n = 0
        while n < batch:
            try:
                append(read(fd, _READ_SIZE_VNET))
            except BlockingIOError:
                break
            except OSError:
                t.drops[DropReason.TUN_ERROR] += 1
                break
            n += 1
        if not n:
            return 0
        if sa is None:
            t.drops[DropReason.NO_OUTBOUND_SA] += n
            return n
        try:
            inners: list[bytes] = []
            add = inners.append
            for frame in frames:
                if frame[0] & 1 or frame[1]:  # NEEDS_CSUM or a GSO type
                    pkts = tso_split(frame)
                    if pkts is None:
                        t.drops[DropReason.NOT_IP] += 1
                        continue
                    self.counters["tso_frames"] += 1
                    inners.extend(pkts)
                else:
                    add(frame[VNET_HDR_LEN:])
            pkts = sa.seal_batch(inners)
            if len(pkts) < len(inners):
                self._log_drop(t, sa.last_drop)
            ep = t.out_ep
            if not (t.out_udp and ep.gso):
                for pkt in pkts:
                    try:
                        send(pkt, addr)
                    except OSError:
                        t.drops[DropReason.SEND_ERROR] += 1
                return n
            run: list[bytes] = []
            size = total = 0
            limit = ep.gso_limit
            for pkt in pkts:
                ln = len(pkt)
                if run and (ln > size or total + ln > _GSO_MAX_BYTES or len(run) >= _GSO_MAX_SEGS):
                    self._send_run(t, ep, run, size, addr)
                    run = []
                if ln > limit:
                    self._send_run(t, ep, [pkt], ln, addr)
                    continue
                if not run:
                    size, total = ln, 0
                run.append(pkt)
                total += ln
                if ln < size:
                    self._send_run(t, ep, run, size, addr)
                    run = []
            if run:
                self._send_run(t, ep, run, size, addr)
        except Exception:
            self._internal_error(t)
        return n

    def _send_run(self, t: _Tunnel, ep: Endpoint, run: list, size: int, addr: tuple) -> None:
        sock = ep.udp
        try:
            if len(run) == 1:
                sock.sendto(run[0], addr)
            else:
                sock.sendmsg(run, [(socket.SOL_UDP, UDP_SEGMENT, _pack_u16(size))], 0, addr)
            return
        except OSError as e:
            if len(run) > 1 and e.errno in _GSO_TOO_BIG:
                ep.gso_limit = min(ep.gso_limit, size - 1)
                log.info("UDP GSO: %d-byte segments do not fit the path MTU from %s; sending "
                         "such packets one by one (the kernel fragments them)", size, ep)
            elif len(run) > 1 and e.errno in _GSO_UNSUPPORTED:
                ep.gso = False  # this path cannot do GSO after all: per packet from now on
                log.info("UDP GSO refused on %s (%s); sending one packet per syscall", ep, e.strerror)
            else:
                t.drops[DropReason.SEND_ERROR] += len(run)
                return
        for pkt in run:
            try:
                sock.sendto(pkt, addr)
            except OSError:
                t.drops[DropReason.SEND_ERROR] += 1

    # -- slow paths ----------------------------------------------------------------

    def _udp_other(self, ep: Endpoint, data: bytes, addr: tuple) -> None:
        kind = encap.classify(data)
        if kind == encap.IKE:
            self.counters["ike_in"] += 1
            try:
                self._on_ike(data[4:], ep.local_addr, addr)
            except Exception:
                log.exception("on_ike callback failed")
                self.counters["errors"] += 1
        elif kind == encap.KEEPALIVE:
            self.counters["keepalive_in"] += 1  # RFC 3948 §2.3: ignored by the receiver
        else:
            self._drop(ep.owner, DropReason.MALFORMED, "short datagram on port 4500")

    def _peer_moved(self, t: _Tunnel, addr: tuple, now: float, sa: EspSa, packet: bytes) -> None:
        """Authenticated ESP of ``t`` (``packet``, opened by ``sa``) arrived in UDP
        from ``addr``, not from where the tunnel sends: tell the daemon, which
        decides whether to follow (RFC 7296 §2.23, IkeTunnel.esp_from).

        Only the peer's newest packet counts (its sequence number is the top of
        the replay window): when a NAT rebinds, the peer's next packets come
        from the new port, while a packet that was delayed, or captured and
        re-sent from elsewhere, is older than what the peer has sent since
        (tests/lab/test_hardening.py injects such packets). At most once per
        PEER_MOVE_INTERVAL; never for raw-ESP tunnels (pump_raw: no NAT)."""
        out = t.out_addr
        if not t.out_udp or out is None or tuple(addr[:2]) == out:
            return
        if int.from_bytes(packet[4:8], "big") != sa.replay.top or now - t.moved_at < PEER_MOVE_INTERVAL:
            return
        t.moved_at = now
        if self.on_peer_moved is not None:
            try:
                self.on_peer_moved(t.id, tuple(addr[:2]))
            except Exception:
                self._internal_error(t)

    def _sa_drop(self, sa: EspSa, t: _Tunnel, now: float) -> None:
        reason = sa.last_drop
        if reason is DropReason.DUMMY:
            t.last_in = now  # authentic: the peer is alive (RFC 4303 §2.6)
            return
        self._log_drop(t, reason)

    def _drop(self, t: _Tunnel | None, reason: DropReason | LoopDropReason, detail: object = "") -> None:
        if t is None:
            self.global_drops[reason] += 1
        else:
            t.drops[reason] += 1
        self._log_drop(t, reason, detail)

    def _log_drop(self, t: _Tunnel | None, reason: DropReason | LoopDropReason,
                  detail: object = "") -> None:
        key = (None if t is None else t.id, reason)
        now = time.monotonic()
        if now - self._last_log.get(key, -LOG_INTERVAL) >= LOG_INTERVAL:
            self._last_log[key] = now
            if isinstance(detail, bytes):
                detail = f"SPI 0x{detail.hex()}"
            log.info("tunnel %s: dropping ESP packet: %s %s (at most one such line per %.0f s)",
                     "-" if t is None else t.id, reason.name.lower(), detail, LOG_INTERVAL)

    def _internal_error(self, t: _Tunnel | None) -> None:
        self.counters["errors"] += 1
        key = ("error", None if t is None else t.id)
        now = time.monotonic()
        if now - self._last_log.get(key, -LOG_INTERVAL) >= LOG_INTERVAL:
            self._last_log[key] = now
            log.exception("tunnel %s: packet handling failed; packet dropped", "-" if t is None else t.id)

    # -- helpers ------------------------------------------------------------------

    def _tunnel(self, tunnel_id: str) -> _Tunnel:
        try:
            return self._tunnels[tunnel_id]
        except KeyError:
            raise KeyError(f"unknown tunnel {tunnel_id!r}: call add_tunnel first") from None

    def _retire_inbound(self, key: bytes) -> None:
        entry = self._inbound.pop(key, None)
        if entry is not None:
            sa, t = entry
            if t.inbound.get(sa.spi) is sa:
                del t.inbound[sa.spi]
            t.retire_in(sa)

    def _unset_out(self, t: _Tunnel) -> None:
        if t.out_sa is not None:
            t.retire_out(t.out_sa)
        t.out_sa = t.out_send = t.out_addr = t.out_ep = None
        t.out_udp = False

    def _associate(self, t: _Tunnel, ep: Endpoint) -> None:
        for other in self._endpoints.values():
            if other is not ep and t.id in other.tunnels:
                other.tunnels.discard(t.id)
                self._refresh_owner(other)
        ep.tunnels.add(t.id)
        self._refresh_owner(ep)

    def _refresh_owner(self, ep: Endpoint) -> None:
        ep.owner = self._tunnels.get(next(iter(ep.tunnels))) if len(ep.tunnels) == 1 else None


def _enable_gro(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(socket.SOL_UDP, UDP_GRO, 1)
        return True
    except OSError:
        return False


def _probe_gso(sock: socket.socket) -> bool:
    """True if the kernel knows UDP_SEGMENT (setting the socket default 0 = off)."""
    try:
        sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)
        return True
    except OSError:
        return False


def _tune(sock: socket.socket, family: int) -> None:
    """Big buffers (bursts at line rate) and DF clear on the outer packets: AWS VPN
    does not do Path MTU Discovery and clears DF (reference/aws-facts.md §4.2)."""
    for opt, force, size in ((socket.SO_RCVBUF, 33, _RCVBUF), (socket.SO_SNDBUF, 32, _SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)  # SO_RCVBUFFORCE/SO_SNDBUFFORCE (root)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
            except OSError:
                pass
    if family == socket.AF_INET:
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        except OSError:
            pass
