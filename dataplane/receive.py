"""The receive path: outside socket -> SPI -> EspSa.open_spans -> the tunnel's TUN.

Where an ESP packet comes from: the UDP 4500 or raw ESP socket of an OutsideSockets
(sockets.py), read here when the asyncio loop reports it readable (DataPath registers
``pump_udp`` and ``pump_raw``).  Each pump reads up to ``batch`` times, until EAGAIN
(so a flood on one socket cannot starve the daemon's IKE socket or its timers); with
UDP GRO one read may return a run of one flow's datagrams, cut here into its segments.

Where it goes next: ``_dispatch`` looks each datagram's SPI up (RFC 4303 §2.1) in the
SPI table DataPath fills (install_inbound) and cuts the batch into runs of one SA from
one source address.  ``_deliver`` - the one deliver path of every socket kind - opens
a run with one ``EspSa.open_spans`` call (esp.py: ICV, replay window, padding,
selectors), lets the binding's inbound token bucket charge what opened when the
tunnel has limits (limits.py), and writes each inner packet to the TUN of the SA's
binding (binding.py):
as it is, or, when the TUN has IFF_VNET_HDR, through the binding's GRO coalescer
(offload.py), whose super-packets ``flush`` writes with one writev each when the pump
ends.  There the packet leaves vgw into the kernel's routing ("the VPC").

Not ESP of a known SA: IKE behind the non-ESP marker goes to ``on_ike`` (the daemon's
IKE core) as it is read, never queued behind ESP work; NAT-keepalives are counted
(RFC 3948 §2.3); the rest is a counted drop (accounting.py).  Nothing here raises:
a packet that makes the code fail is dropped and counted in ``errors``.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from . import encap
from .accounting import Accounting, DataPathDropReason, errno_name
from .binding import PEER_MOVE_INTERVAL, TunBinding
from .esp import DropReason
from .sockets import GRO_CMSG_SPACE, OutsideSockets, gro_segment_size

__all__ = ["Receiver", "READ_SIZE"]

log = logging.getLogger("dataplane.datapath")

READ_SIZE = 65535  # one UDP datagram, or one UDP GRO run (at most 64 KB)
_MIN_ESP = 8  # SPI and sequence number (RFC 4303 §2)
_DUMMY = DropReason.DUMMY
_TUN_ERROR = DropReason.TUN_ERROR
_SOCKET_ERROR = DataPathDropReason.SOCKET_ERROR
_RATE_LIMIT = DataPathDropReason.RATE_LIMIT


class Receiver:
    """Reads the outside sockets and delivers what opens to the TUN devices.

    ``inbound`` is DataPath's SPI table: the SPI's 4 wire bytes -> (EspSa, TunBinding)
    (bytes keys save an int conversion per packet)."""

    __slots__ = ("inbound", "accounting", "on_ike", "on_peer_moved", "batch", "_pending")

    def __init__(self, inbound: dict, accounting: Accounting, on_ike, on_peer_moved, batch: int) -> None:
        self.inbound = inbound
        self.accounting = accounting
        self.on_ike = on_ike  # (IKE message, local (ip, port), remote (ip, port))
        # authenticated ESP in UDP came from another address or port than the
        # tunnel sends to (tunnel id, (ip, port)): the peer's NAT mapping changed
        self.on_peer_moved = on_peer_moved
        self.batch = batch
        self._pending: list[TunBinding] = []  # bindings with GRO output not yet written

    # -- reading: one pump per kind of socket ---------------------------------------

    def pump_udp(self, socks: OutsideSockets) -> int:
        """Read up to ``batch`` times from the UDP socket and handle what came; return
        the number of datagrams read (failed reads count as one)."""
        pkts: list = []
        addrs: list = []
        add, add_addr = pkts.append, addrs.append
        failed = 0
        if socks.gro:
            recvmsg = socks.udp.recvmsg
            for _ in range(self.batch):
                try:
                    data, anc, _flags, addr = recvmsg(READ_SIZE, GRO_CMSG_SPACE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    failed += 1
                    self.accounting.drop(socks.owner, _SOCKET_ERROR, errno_name(exc))
                    continue
                seg = gro_segment_size(anc) if anc else 0
                size = len(data)
                if 0 < seg < size:
                    # a UDP GRO run: datagrams of one flow, all seg long but the last
                    for off in range(0, size, seg):
                        add(data[off : off + seg])
                    addrs.extend([addr] * (len(pkts) - len(addrs)))
                else:
                    add(data)
                    add_addr(addr)
        else:
            # recvfrom, not recvmsg without ancillary data: 7 % less receive CPU
            # per datagram (bench.datapath --outside udp, 2026-12-07)
            recvfrom = socks.udp.recvfrom
            for _ in range(self.batch):
                try:
                    data, addr = recvfrom(READ_SIZE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    failed += 1
                    self.accounting.drop(socks.owner, _SOCKET_ERROR, errno_name(exc))
                    continue
                add(data)
                add_addr(addr)
        if pkts:
            self._dispatch(socks, pkts, addrs, time.monotonic())
        return len(pkts) + failed

    def pump_raw(self, socks: OutsideSockets) -> int:
        """Read up to ``batch`` packets from the raw ESP socket and handle them; return
        how many reads there were.  Raw ESP comes from no port and through no NAT:
        its source address is not passed on (None), so it never moves a tunnel."""
        recv = socks.raw.recv
        v4 = socks.family == socket.AF_INET
        pkts: list = []
        add = pkts.append
        failed = 0
        for _ in range(self.batch):
            try:
                data = recv(READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                failed += 1
                self.accounting.drop(socks.owner, _SOCKET_ERROR, errno_name(exc))
                continue
            if v4:  # raw IPv4 sockets deliver the IP header; skip IHL*4 bytes
                data = data[(data[0] & 15) << 2 :]
            add(data)
        if pkts:
            self._dispatch(socks, pkts, [None] * len(pkts), time.monotonic())
        return len(pkts) + failed

    # -- dispatch and delivery: the same for every socket ------------------------------

    def _dispatch(self, socks: OutsideSockets, pkts: list, addrs: list, now: float) -> None:
        """Hand each run of ESP of one SA from one address to ``_deliver``, in arrival
        order, and everything else to ``_not_esp``; then write the pending GRO frames."""
        inbound = self.inbound
        deliver = self._deliver
        n = len(pkts)
        i = 0
        while i < n:
            d = pkts[i]
            spi = d[:4]
            # never the non-ESP marker: SPI 0 is not a valid SPI (RFC 4303 §2.1)
            entry = inbound.get(spi)
            addr = addrs[i]
            if entry is None or len(d) < _MIN_ESP:
                self._not_esp(socks, d, addr)
                i += 1
                continue
            j = i + 1
            while j < n and pkts[j][:4] == spi and addrs[j] == addr:
                j += 1
            deliver(entry, pkts if j - i == n else pkts[i:j], addr, now)
            i = j
        if self._pending:
            self.flush()

    def _deliver(self, entry: tuple, pkts: list, addr, now: float) -> None:
        """Open ``pkts`` (ESP of one SA, from ``addr``; None for raw ESP) and write the
        inner packets that pass to the SA's TUN."""
        sa, b = entry
        try:
            replay = sa.replay
            top = replay.top
            dummies = sa.drops[_DUMMY]
            bufs, ends = sa.open_spans(pkts)  # inner packet i: bufs[i][:ends[i]]
            reason = sa.last_drop
            if reason is not None:
                if sa.drops[_DUMMY] != dummies:
                    b.last_in = now  # a dummy packet is authentic: the peer is alive (RFC 4303 §2.6)
                if reason is not _DUMMY:
                    self.accounting.log_drop(b, reason)
            if not bufs:
                return
            b.last_in = now
            if replay.top != top and addr is not None and addr != b.out_addr:
                self._peer_moved(b, addr, now)
            if b.limit_in is not None:
                keep = b.limit_in.take(ends, now)
                if keep is not None:
                    bufs, ends = self._police(b, sa, bufs, ends, keep)
                    if not bufs:
                        return
            gro = b.gro
            if gro is None:
                write, fd = os.write, b.fd
                for buf, end in zip(bufs, ends):
                    try:
                        write(fd, buf[:end])
                    except OSError:
                        b.drops[_TUN_ERROR] += 1
            else:
                # the coalescer slices each payload out of the plaintext itself
                if not gro.segs:
                    self._pending.append(b)
                add = gro.add
                for buf, end in zip(bufs, ends):
                    add(buf, end)
        except Exception:  # never let one packet stop the data path
            self.accounting.internal_error(b)

    def _police(self, b: TunBinding, sa, bufs: list, ends: list, keep: list[int]) -> tuple[list, list]:
        """Keep the packets ``keep`` names; the others are rate_limit drops, taken
        back out of the SA's counters (TunnelDataIn counts what entered the VPC)."""
        dropped = len(ends) - len(keep)
        sa.packets -= dropped
        sa.bytes -= sum(ends) - sum(ends[i] for i in keep)
        b.drops[_RATE_LIMIT] += dropped
        self.accounting.log_drop(b, _RATE_LIMIT, "(inbound, over the tunnel's limits)")
        return [bufs[i] for i in keep], [ends[i] for i in keep]

    def flush(self) -> None:
        """Write every pending GRO frame (one writev each) of the bindings that have some."""
        writev = os.writev
        pending = self._pending
        counters = self.accounting.counters
        for b in pending:
            gro = b.gro
            segs = gro.segs
            try:
                frames = gro.flush()
            except Exception:
                gro.out, gro.runs, gro.segs = [], {}, 0
                self.accounting.internal_error(b)
                continue
            counters["gro_frames"] += len(frames)
            counters["gro_packets"] += segs
            fd = b.fd
            for frame in frames:
                try:
                    writev(fd, frame)
                except OSError:
                    b.drops[_TUN_ERROR] += len(frame) - 1
        pending.clear()

    # -- everything that is not ESP of a known SA -----------------------------------------

    def _not_esp(self, socks: OutsideSockets, d, addr) -> None:
        """IKE or a keepalive on port 4500 (RFC 3948 §2), or a drop: too short, or an
        SPI with no inbound SA (RFC 4303 §3.4.2).  ``addr`` None: from the raw socket."""
        accounting = self.accounting
        try:
            if addr is None:
                if len(d) < _MIN_ESP:
                    accounting.drop(socks.owner, DropReason.MALFORMED, "short ESP")
                else:
                    accounting.drop(socks.owner, DropReason.UNKNOWN_SPI, d[:4])
                return
            kind = encap.classify(d)
            if kind == encap.ESP:
                accounting.drop(socks.owner, DropReason.UNKNOWN_SPI, d[:4])
            elif kind == encap.IKE:
                accounting.counters["ike_in"] += 1
                try:
                    self.on_ike(bytes(d[4:]), socks.local_addr, addr)
                except Exception:
                    log.exception("on_ike callback failed")
                    accounting.counters["errors"] += 1
            elif kind == encap.KEEPALIVE:
                accounting.counters["keepalive_in"] += 1  # RFC 3948 §2.3: ignored by the receiver
            else:
                accounting.drop(socks.owner, DropReason.MALFORMED, "short datagram on port 4500")
        except Exception:
            accounting.internal_error(socks.owner)

    def _peer_moved(self, b: TunBinding, addr: tuple, now: float) -> None:
        """Authenticated ESP of ``b`` arrived in UDP from ``addr``, not from where the
        tunnel sends: tell the daemon, which decides whether to follow (RFC 7296
        §2.23, the IKE core's esp_from).

        Called only when the run carried the peer's newest packet (it raised the top of
        the replay window): when a NAT rebinds, the peer's next packets come from the
        new port, while a packet that was delayed, or captured and re-sent from
        elsewhere, is older than what the peer has sent since (tests/lab/
        test_hardening.py injects such packets). At most once per PEER_MOVE_INTERVAL;
        never for raw-ESP tunnels (no NAT)."""
        out = b.out_addr
        if not b.out_udp or out is None or tuple(addr[:2]) == out or now - b.moved_at < PEER_MOVE_INTERVAL:
            return
        b.moved_at = now
        if self.on_peer_moved is not None:
            try:
                self.on_peer_moved(b.id, tuple(addr[:2]))
            except Exception:
                self.accounting.internal_error(b)
