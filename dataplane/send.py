"""The send path: a tunnel's TUN -> its outbound EspSa.seal_batch -> the outside socket.

Where an ESP packet comes from: the kernel routes a packet into a tunnel's TUN device
(the daemon's routes point the customer's prefixes there); DataPath registers
``pump_tun`` with the asyncio loop for the TUN's fd.  A pump reads up to ``batch``
packets, until EAGAIN; with IFF_VNET_HDR each read starts with a virtio_net_hdr, and a
TSO super-packet (or a partial checksum) is cut into finished segments first
(offload.tso_split).  When the tunnel has limits (limits.py), its outbound token
bucket then charges the batch, segment by segment, and what is over is dropped.

Where it goes next: the binding's outbound SA (binding.py) seals the whole batch in one
``EspSa.seal_batch`` call (esp.py), and the ESP packets leave on the binding's outside
socket (sockets.py): raw IP protocol 50, or UDP 4500 (RFC 3948).  Over UDP with GSO,
``_send_gso`` - the one GSO run builder - sends runs of equal-sized packets (a bulk
flow's packets are all MSS-sized) with one sendmsg each.  After that the kernel
routes the outer packet to the peer.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import time

from .accounting import Accounting, DataPathDropReason
from .binding import TunBinding
from .esp import DropReason
from .offload import VNET_HDR_LEN, tso_split
from .sockets import UDP_SEGMENT, OutsideSockets

__all__ = ["Sender", "GSO_MAX_SEGS", "GSO_MAX_BYTES"]

log = logging.getLogger("dataplane.datapath")

_READ_SIZE = 65535
_READ_SIZE_VNET = 65535 + VNET_HDR_LEN  # virtio_net_hdr + a 64 KB super-packet
# One GSO send carries at most 64 segments (UDP_MAX_SEGMENTS was 64 before Linux 6.x)
# and must fit the 16-bit IP length.
GSO_MAX_SEGS = 64
GSO_MAX_BYTES = 65000
# errnos meaning "this path cannot do GSO at all": one send per packet from then on.
_GSO_UNSUPPORTED = {errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
# errnos meaning "segments this big do not fit the path MTU": GSO cannot fragment,
# while a single send with DF clear is fragmented by the kernel.
_GSO_TOO_BIG = {errno.EINVAL, errno.EMSGSIZE}
_pack_u16 = struct.Struct("=H").pack
_SEND_ERROR = DropReason.SEND_ERROR
_RATE_LIMIT = DataPathDropReason.RATE_LIMIT


class Sender:
    """Reads TUN devices, seals with each binding's outbound SA, sends."""

    __slots__ = ("accounting", "batch")

    def __init__(self, accounting: Accounting, batch: int) -> None:
        self.accounting = accounting
        self.batch = batch

    def pump_tun(self, b: TunBinding) -> int:
        """Read up to ``batch`` packets from the binding's TUN, seal and send them;
        return how many reads returned a packet."""
        frames = self._read(b)
        n = len(frames)
        if not n:
            return 0
        # Nothing else runs during a pump (no callbacks on this path), so the SA and
        # its destination cannot change under us: look them up once per batch.
        sa = b.out_sa
        if sa is None:
            b.drops[DropReason.NO_OUTBOUND_SA] += n
            return n
        try:
            inners = self._cut_vnet(b, frames) if b.vnet else frames
            if b.limit_out is not None:
                inners = self._police(b, inners)
            pkts = sa.seal_batch(inners)
            if len(pkts) < len(inners):
                self.accounting.log_drop(b, sa.last_drop)
            socks, addr = b.out_sockets, b.out_addr
            if b.out_udp and socks.gso:
                self._send_gso(b, socks, pkts, addr)
            else:
                send = b.out_send
                for pkt in pkts:
                    try:
                        send(pkt, addr)
                    except OSError:
                        b.drops[_SEND_ERROR] += 1
        except Exception:  # never let one packet stop the data path
            self.accounting.internal_error(b)
        return n

    def _read(self, b: TunBinding) -> list:
        """Up to ``batch`` TUN reads, until EAGAIN."""
        read, fd = os.read, b.fd
        size = _READ_SIZE_VNET if b.vnet else _READ_SIZE
        frames: list = []
        add = frames.append
        for _ in range(self.batch):
            try:
                add(read(fd, size))
            except BlockingIOError:
                break
            except OSError:
                b.drops[DropReason.TUN_ERROR] += 1
                break
        return frames

    def _police(self, b: TunBinding, inners: list) -> list:
        """The inner packets the tunnel's outbound bucket admits (one clock read per
        batch); the rest are counted as rate_limit drops."""
        keep = b.limit_out.take_packets(inners, time.monotonic())
        if keep is None:
            return inners
        b.drops[_RATE_LIMIT] += len(inners) - len(keep)
        self.accounting.log_drop(b, _RATE_LIMIT, "(outbound, over the tunnel's limits)")
        return [inners[i] for i in keep]

    def _cut_vnet(self, b: TunBinding, frames: list) -> list:
        """The IP packets in TUN frames that start with a virtio_net_hdr (offload.py)."""
        inners: list = []
        add = inners.append
        for frame in frames:
            if frame[0] & 1 or frame[1]:  # NEEDS_CSUM or a GSO type
                pkts = tso_split(frame)
                if pkts is None:
                    b.drops[DropReason.NOT_IP] += 1
                    continue
                self.accounting.counters["tso_frames"] += 1
                inners.extend(pkts)
            else:
                add(frame[VNET_HDR_LEN:])
        return inners

    def _send_gso(self, b: TunBinding, socks: OutsideSockets, pkts: list, addr: tuple) -> None:
        """Send ``pkts`` in order as runs of equal-sized packets, one sendmsg each (UDP
        GSO).  The last packet of a run may be shorter (the UDP_SEGMENT rule), so a
        shorter packet ends a run and a longer one starts the next; a run also ends at
        GSO_MAX_SEGS packets or GSO_MAX_BYTES.  Packets above the path's known GSO
        segment limit go alone."""
        run: list = []
        size = total = 0
        for pkt in pkts:
            ln = len(pkt)
            if run and (ln > size or total + ln > GSO_MAX_BYTES or len(run) >= GSO_MAX_SEGS):
                self._send_run(b, socks, run, size, addr)
                run = []
            if ln > socks.gso_limit:  # too big for one GSO segment on this path
                self._send_run(b, socks, [pkt], ln, addr)
                continue
            if not run:
                size, total = ln, 0
            run.append(pkt)
            total += ln
            if ln < size:  # a shorter packet ends the run
                self._send_run(b, socks, run, size, addr)
                run = []
        if run:
            self._send_run(b, socks, run, size, addr)

    def _send_run(self, b: TunBinding, socks: OutsideSockets, run: list, size: int, addr: tuple) -> None:
        """One run: one sendmsg with UDP_SEGMENT ``size``; if the path refuses GSO, or
        segments this big, remember it and send the run one packet at a time."""
        sock = socks.udp
        try:
            if len(run) == 1:
                sock.sendto(run[0], addr)
                return
            if socks.gso:
                sock.sendmsg(run, [(socket.SOL_UDP, UDP_SEGMENT, _pack_u16(size))], 0, addr)
                return
        except OSError as e:
            if len(run) > 1 and e.errno in _GSO_TOO_BIG:
                socks.gso_limit = min(socks.gso_limit, size - 1)
                log.info("UDP GSO: %d-byte segments do not fit the path MTU from %s; sending "
                         "such packets one by one (the kernel fragments them)", size, socks)
            elif len(run) > 1 and e.errno in _GSO_UNSUPPORTED:
                socks.gso = False  # this path cannot do GSO after all: per packet from now on
                log.info("UDP GSO refused on %s (%s); sending one packet per syscall", socks, e.strerror)
            else:
                b.drops[_SEND_ERROR] += len(run)
                return
        for pkt in run:
            try:
                sock.sendto(pkt, addr)
            except OSError:
                b.drops[_SEND_ERROR] += 1
