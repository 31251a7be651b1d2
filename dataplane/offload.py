"""TUN offloads (IFF_VNET_HDR): receive-side GRO into the TUN, and TSO splitting.

With IFF_VNET_HDR every TUN read and write starts with a ``struct virtio_net_hdr``
(linux/virtio_net.h, 10 bytes, native byte order for a legacy TUN)::

    flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16

GRO (decrypted packets -> TUN): consecutive in-order TCP segments of one flow, or
equal-sized UDP datagrams of one flow, are coalesced into one super-packet written
with one syscall: ``gso_type`` TCPV4 or UDP_L4, ``gso_size`` the segment payload,
``NEEDS_CSUM`` with ``csum_start``/``csum_offset`` pointing at the transport checksum,
which holds the pseudo-header sum (the kernel's CHECKSUM_PARTIAL convention).  The
kernel segments it again where it must (forwarding to a device without TSO), or
delivers it whole (GRO'd receive).  Each segment's own checksum is not verified on
this path: the ESP ICV already authenticated every segment, so a corrupted one never
gets here (wireguard-go makes the same trade).  Rules follow Linux's tcp_gro_receive:
same addresses, ports, TOS, TTL, DF, ACK number, window, options and flags (ACK, with
PSH allowed on the last segment, which then closes the run), next sequence number
exactly the end of the run, all segments ``gso_size`` long but the last (shorter ends
the run), at most 64 KB.  Anything else (SYN/FIN/RST/URG/ECE/CWR, pure ACKs, IP
options or fragments, IPv6) is written as it came, after the run of its flow, so no
packet overtakes an earlier one of the same flow.

TSO split (TUN -> encryption): a TCP super-packet read from the TUN (when the TUN
advertises TSO) is cut into ``gso_size`` segments before encryption, with the IP
length, ID and checksum and the TCP sequence number, flags and checksum of each
segment rewritten, as the kernel's GSO would.  ``csum16`` is the ones'-complement
sum (RFC 1071) in Python: ``int.from_bytes`` and a reduction modulo 0xFFFF (2^16 is
1 modulo 0xFFFF, so the 16-bit words can be summed as one big integer), folded in
halves first because CPython's big-by-small division is slower than shifts.

All functions here are pure (bytes in, bytes out): the data path calls them, the unit tests
check them against scapy.
"""

from __future__ import annotations

import struct

__all__ = [
    "VNET_HDR_LEN",
    "VNET_F_NEEDS_CSUM",
    "VNET_F_DATA_VALID",
    "GSO_NONE",
    "GSO_TCPV4",
    "GSO_UDP_L4",
    "GSO_TCPV6",
    "GSO_ECN",
    "PLAIN_HDR",
    "vnet_hdr",
    "parse_vnet_hdr",
    "csum16",
    "ip_checksum",
    "Gro",
    "coalesce",
    "tso_split",
    "complete_csum",
    "MAX_GRO_SEGS",
]

VNET_HDR_LEN = 10
VNET_F_NEEDS_CSUM = 1  # the checksum at csum_start+csum_offset is partial (pseudo header)
VNET_F_DATA_VALID = 2  # the checksum was checked
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3  # UFO, not used
GSO_TCPV6 = 4
GSO_UDP_L4 = 5  # USO (Linux 6.2 for TUN)
GSO_ECN = 0x80

_VNET = struct.Struct("=BBHHHH")
PLAIN_HDR = bytes(VNET_HDR_LEN)  # no GSO, no checksum offload: a plain packet follows
_unpack_vnet = _VNET.unpack_from
_pack_vnet = _VNET.pack

#: At most this many segments in one super-packet (the kernel's UDP_MAX_SEGMENTS is
#: 128; 64 keeps the iovec list of one writev short).
MAX_GRO_SEGS = 64
_MAX_IP_LEN = 65535

_PROTO_TCP = 6
_PROTO_UDP = 17
_TH_FIN, _TH_SYN, _TH_RST, _TH_PSH, _TH_ACK, _TH_URG, _TH_ECE, _TH_CWR = 1, 2, 4, 8, 16, 32, 64, 128

_from_bytes = int.from_bytes
_pack_h = struct.Struct("!H").pack
_pack_hh = struct.Struct("!HH").pack
_pack_i = struct.Struct("!I").pack

# Masks for folding a big integer in halves (multiples of 16 bits keep word alignment).
_FOLD = [(k, (1 << k) - 1) for k in (262144, 131072, 65536, 32768, 16384, 8192, 4096, 2048, 1024, 512, 256)]


def vnet_hdr(flags: int = 0, gso_type: int = GSO_NONE, hdr_len: int = 0, gso_size: int = 0,
             csum_start: int = 0, csum_offset: int = 0) -> bytes:
    """A ``struct virtio_net_hdr`` (native byte order, as a legacy TUN expects)."""
    return _pack_vnet(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def parse_vnet_hdr(frame) -> tuple[int, int, int, int, int, int]:
    """(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset) of a TUN frame."""
    return _unpack_vnet(frame, 0)


def csum16(data) -> int:
    """The 16-bit ones'-complement sum of ``data`` (RFC 1071), not complemented, in
    0..0xFFFE (0xFFFF and 0 are the same number in ones' complement; this returns 0)."""
    n = len(data)
    x = _from_bytes(data, "big")
    if n & 1:
        x <<= 8  # RFC 1071: an odd byte is padded with a zero byte on the right
    bits = n << 3
    for k, mask in _FOLD:
        if bits > k + 16:
            x = (x >> k) + (x & mask)
            bits = k + 17
    return x % 0xFFFF


def ip_checksum(header) -> int:
    """The IPv4 header checksum field value for ``header`` (its checksum bytes zero)."""
    return 0xFFFF - _from_bytes(header, "big") % 0xFFFF


def _fix_ip(ip_hdr: bytes, total_len: int, ip_id: int | None = None) -> bytes:
    """``ip_hdr`` (IPv4, options included) with a new total length (and ID) and checksum."""
    if ip_id is None:
        h = ip_hdr[:2] + _pack_h(total_len) + ip_hdr[4:10] + b"\x00\x00" + ip_hdr[12:]
    else:
        h = ip_hdr[:2] + _pack_hh(total_len, ip_id) + ip_hdr[6:10] + b"\x00\x00" + ip_hdr[12:]
    return h[:10] + _pack_h(ip_checksum(h)) + h[12:]


def _pseudo_sum(ip_hdr, proto: int, length: int) -> int:
    """Ones'-complement sum of the IPv4 pseudo header (RFC 793 §3.1, RFC 768)."""
    return (_from_bytes(ip_hdr[12:20], "big") + proto + length) % 0xFFFF


class Gro:
    """Coalesces decrypted inner packets into TUN frames (vnet header + packet).

    ``add(pkt)`` for each packet in arrival order, then ``flush()`` returns the frames
    as lists of buffers (for ``os.writev``), in an order that keeps every flow's
    packets in sequence.  ``uso``: coalesce UDP too (the TUN takes GSO_UDP_L4).
    ``add(buf, n)`` takes the packet as the first ``n`` bytes of ``buf`` (an ESP
    plaintext with its trailer): payloads are sliced out of ``buf`` directly.
    """

    __slots__ = ("uso", "out", "runs", "segs")

    def __init__(self, uso: bool = True) -> None:
        self.uso = uso
        self.out: list[list] = []  # frames, each a list of buffers; runs are placed when opened
        self.runs: dict[bytes, list] = {}  # flow key (addresses, ports) -> its open run (see add)
        self.segs = 0  # packets added since the last flush

    def add(self, p, n: int | None = None) -> None:
        self.segs += 1
        if n is None:
            n = len(p)
        run = self.runs.get(p[12:24])
        if run is not None:
            # Fast path: the next packet of an open run, compared with whole header
            # slices (the run's first packet passed every check in _add).
            # run: [frame, ip[6:10], tcp[28:33], tcp[34:36], next_seq, gso_size, total,
            #       nsegs, tcp[38:hl], tos, psh, hl, proto, ip[:2], tcp[28:36]]
            hl = run[11]
            plen = n - hl
            if (
                0 < plen <= run[5]
                and p[6:10] == run[1]
                and p[:2] == run[13]
                and (p[2] << 8 | p[3]) == n
                and run[7] < MAX_GRO_SEGS
                and run[6] + plen <= _MAX_IP_LEN
            ):
                if run[12] == _PROTO_TCP:
                    if p[28:36] == run[14] and p[38:hl] == run[8]:
                        seq = _from_bytes(p[24:28], "big")
                        if seq == run[4]:
                            run[0].append(p[hl:n])
                            run[4] = (seq + plen) & 0xFFFFFFFF
                            run[6] += plen
                            run[7] += 1
                            if plen < run[5]:
                                del self.runs[p[12:24]]
                            return
                elif (p[24] << 8 | p[25]) == n - 20:
                    run[0].append(p[28:n])
                    run[6] += plen
                    run[7] += 1
                    if plen < run[5]:
                        del self.runs[p[12:24]]
                    return
        self._add(p, n)

    def _add(self, p, n: int) -> None:
        """Everything but the fast path of add (which counted the packet)."""
        # IPv4 without options, not a fragment, total length = packet length.
        if n < 28 or p[0] != 0x45 or p[6] & 0x3F or p[7] or _from_bytes(p[2:4], "big") != n:
            self._alone(p, n, None)
            return
        proto = p[9]
        if proto == _PROTO_TCP:
            if n < 40:
                self._alone(p, n, None)
                return
            hl = 20 + ((p[32] >> 2) & 0x3C)
            flags = p[33]
            plen = n - hl
            key = p[12:24]
            if plen <= 0 or hl < 40 or flags & 0xF7 != _TH_ACK:
                # pure ACKs, SYN/FIN/RST/URG/ECE/CWR: alone, behind their flow's run
                self._alone(p, n, key)
                return
            seq = _from_bytes(p[24:28], "big")
            run = self.runs.get(key)
            if run is not None:
                # run: [frame, ip_tos_ttl, ack_win, opts, next_seq, gso_size, total, nsegs, tcp]
                if (
                    run[4] == seq
                    and plen <= run[5]
                    and run[6] + plen <= _MAX_IP_LEN
                    and run[7] < MAX_GRO_SEGS
                    and p[28:33] == run[2]
                    and p[34:36] == run[3]
                    and p[38:hl] == run[8]
                    and p[6:10] == run[1]
                    and p[1] == run[9]
                ):
                    run[0].append(p[hl:n])
                    run[4] = (seq + plen) & 0xFFFFFFFF
                    run[6] += plen
                    run[7] += 1
                    if plen < run[5] or flags & _TH_PSH:
                        if flags & _TH_PSH:
                            run[10] = True
                        del self.runs[key]  # closed: a shorter segment or PSH ends it
                    return
                del self.runs[key]
            frame = [p, p[hl:n]]
            # the header is rebuilt at flush time from frame[0]; frame[1:] are payloads
            run = [frame, p[6:10], p[28:33], p[34:36], (seq + plen) & 0xFFFFFFFF, plen, n, 1,
                   p[38:hl], p[1], bool(flags & _TH_PSH), hl, _PROTO_TCP, p[:2], p[28:36]]
            self.out.append(run)
            if not flags & _TH_PSH:
                self.runs[key] = run
            return
        if proto == _PROTO_UDP and self.uso:
            key = p[12:24]
            plen = n - 28
            if plen <= 0 or _from_bytes(p[24:26], "big") != n - 20:
                self._alone(p, n, key)
                return
            run = self.runs.get(key)
            if run is not None:
                if (
                    plen <= run[5]
                    and run[6] + plen <= _MAX_IP_LEN
                    and run[7] < MAX_GRO_SEGS
                    and p[6:10] == run[1]
                    and p[1] == run[9]
                ):
                    run[0].append(p[28:n])
                    run[6] += plen
                    run[7] += 1
                    if plen < run[5]:
                        del self.runs[key]
                    return
                del self.runs[key]
            run = [[p, p[28:n]], p[6:10], None, None, 0, plen, n, 1, None, p[1], False, 28, _PROTO_UDP,
                   p[:2], None]
            self.out.append(run)
            self.runs[key] = run
            return
        self._alone(p, n, None)

    def _alone(self, p, n: int, key) -> None:
        if key is not None:
            self.runs.pop(key, None)  # later packets of the flow must not join an earlier run
        self.out.append(p[:n])

    def flush(self) -> list[list]:
        """The frames for the packets added so far, each a list of buffers to writev."""
        frames = []
        for item in self.out:
            if type(item) is not list:
                frames.append([PLAIN_HDR, item])
                continue
            frame = item[0]
            first = frame[0]
            nsegs = item[7]
            if nsegs == 1:
                frames.append([PLAIN_HDR, first[: item[6]]])  # item[6]: its IP length
                continue
            hl = item[11]
            total = item[6]
            ip = _fix_ip(first[:20], total)
            if item[12] == _PROTO_TCP:
                th = first[20:hl]
                if item[10]:
                    th = th[:13] + bytes((th[13] | _TH_PSH,)) + th[14:]
                pseudo = _pseudo_sum(first, _PROTO_TCP, total - 20)
                th = th[:16] + _pack_h(pseudo) + th[18:]
                head = vnet_hdr(VNET_F_NEEDS_CSUM, GSO_TCPV4, hl, item[5], 20, 16) + ip + th
            else:
                ulen = total - 20
                pseudo = _pseudo_sum(first, _PROTO_UDP, ulen)
                uh = first[20:24] + _pack_hh(ulen, pseudo)
                head = vnet_hdr(VNET_F_NEEDS_CSUM, GSO_UDP_L4, 28, item[5], 20, 6) + ip + uh
            frame[0] = head
            frames.append(frame)
        self.out = []
        self.runs = {}
        self.segs = 0
        return frames


def coalesce(packets, uso: bool = True) -> list[bytes]:
    """GRO over a list of inner packets: the TUN frames (vnet header + packet) to write."""
    g = Gro(uso)
    for p in packets:
        g.add(p)
    return [b"".join(f) for f in g.flush()]


def complete_csum(pkt: bytes, csum_start: int, csum_offset: int) -> bytes:
    """Finish a NEEDS_CSUM packet: the checksum field holds the pseudo-header sum; the
    ones'-complement sum from ``csum_start`` to the end, complemented, goes there."""
    s = csum16(pkt[csum_start:])
    c = 0xFFFF - s
    if c == 0 and pkt[9] == _PROTO_UDP:
        c = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    at = csum_start + csum_offset
    return pkt[:at] + _pack_h(c) + pkt[at + 2:]


def tso_split(frame) -> list[bytes] | None:
    """Cut one TUN frame (vnet header + packet) into plain IP packets.

    A frame without GSO comes back as one packet (its checksum completed if the kernel
    left it partial).  TCPV4 super-packets are cut into ``gso_size`` segments; UDP_L4
    into ``gso_size`` datagrams.  None for what cannot be handled (e.g. TCPv6 GSO,
    which is never enabled, or a malformed header)."""
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = _unpack_vnet(frame, 0)
    pkt = frame[VNET_HDR_LEN:]
    gso = gso_type & ~GSO_ECN
    if gso == GSO_NONE:
        if flags & VNET_F_NEEDS_CSUM:
            if csum_start + csum_offset + 2 > len(pkt):
                return None
            pkt = complete_csum(pkt, csum_start, csum_offset)
        return [pkt]
    if len(pkt) < 20 or pkt[0] >> 4 != 4 or gso_size == 0:
        return None
    ihl = (pkt[0] & 15) << 2
    ip_hdr = pkt[:ihl]
    ip_id = _from_bytes(pkt[4:6], "big")
    src_dst = _from_bytes(pkt[12:20], "big")
    if gso == GSO_TCPV4 and pkt[9] == _PROTO_TCP:
        thl = (pkt[ihl + 12] >> 4) << 2
        hl = ihl + thl
        th = pkt[ihl:hl]
        seq = _from_bytes(th[4:8], "big")
        flags_b = th[13]
        payload = pkt[hl:]
        n = len(payload)
        out = []
        th_a = th[:4]
        th_b = th[8:13]  # ACK number and data offset
        th_c = th[14:16]
        th_d = th[18:]
        # the header words that stay the same in every segment (ports, ACK, window,
        # urgent pointer, options): summed once
        th_sum = _from_bytes(th_a + th[8:12] + th_c + th_d, "big")
        mid_flags = flags_b & ~(_TH_FIN | _TH_PSH)
        for off in range(0, n, gso_size):
            chunk = payload[off : off + gso_size]
            last = off + gso_size >= n
            fl = flags_b if last else mid_flags
            if off:
                fl &= ~_TH_CWR  # CWR only on the first segment (RFC 3168 as the kernel does)
            tcp_len = thl + len(chunk)
            s = (
                src_dst + _PROTO_TCP + tcp_len + th_sum + ((seq >> 16) + (seq & 0xFFFF))
                + fl + (th[12] << 8) + csum16(chunk)
            ) % 0xFFFF
            csum = 0xFFFF - s
            out.append(
                _fix_ip(ip_hdr, ihl + tcp_len, ip_id)
                + th_a + _pack_i(seq) + th_b + bytes((fl,)) + th_c + _pack_h(csum) + th_d
                + chunk
            )
            seq = (seq + len(chunk)) & 0xFFFFFFFF
            ip_id = (ip_id + 1) & 0xFFFF
        return out
    if gso == GSO_UDP_L4 and pkt[9] == _PROTO_UDP:
        hl = ihl + 8
        ports = pkt[ihl : ihl + 4]
        payload = pkt[hl:]
        n = len(payload)
        out = []
        port_sum = _from_bytes(ports, "big")
        for off in range(0, n, gso_size):
            chunk = payload[off : off + gso_size]
            ulen = 8 + len(chunk)
            s = (src_dst + _PROTO_UDP + ulen + port_sum + ulen + csum16(chunk)) % 0xFFFF
            out.append(_fix_ip(ip_hdr, ihl + ulen, ip_id) + ports + _pack_hh(ulen, 0xFFFF - s) + chunk)
            ip_id = (ip_id + 1) & 0xFFFF
        return out
    return None
