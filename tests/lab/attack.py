"""Tools for the hardening lab tests (tests/lab/test_hardening.py, test_soak.py):
sockets opened inside a lab namespace, a packet capture, IKE message mutators,
a paced sender, and figures of a running process (RSS, file descriptors).

Sockets: a socket belongs to the network namespace it was *created* in, so a
short-lived thread enters the namespace (setns(2) on /run/netns/NAME, which
changes only that thread) and creates it; the test then uses it from any
thread. Only namespaces of the test's own Lab are accepted.

Nothing here sends anything by itself: the tests decide what goes where, and
every loop is bounded in time or count.
"""

from __future__ import annotations

import ctypes
import os
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from tests.lab.netns import Lab

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003   # outgoing packets reach only ETH_P_ALL taps
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
IKE_HEADER = struct.Struct("!8s8sBBBBII")
MARKER = b"\x00\x00\x00\x00"       # RFC 3948 §2.2 non-ESP marker (IKE on 4500)

_libc = ctypes.CDLL(None, use_errno=True)


# --- namespaces ---------------------------------------------------------------------------


def in_ns(lab: Lab, ns: str, fn: Callable[[], object], timeout: float = 10.0):
    """Run ``fn`` in a fresh thread that has entered the lab namespace ``ns``."""
    lab._check_ours(ns)
    box: dict = {}

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=run, name=f"ns-{ns}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"entering namespace {ns} took more than {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def ns_socket(lab: Lab, ns: str, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside lab namespace ``ns`` (usable from any thread)."""
    return in_ns(lab, ns, lambda: socket.socket(family, type_, proto))


def udp_socket(lab: Lab, ns: str, bind: tuple[str, int]) -> socket.socket:
    s = ns_socket(lab, ns, socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(bind)
    return s


# --- capture ------------------------------------------------------------------------------


@dataclass
class Packet:
    t: float              # time.monotonic() when read
    outgoing: bool        # sent by this namespace (PACKET_OUTGOING) or received
    ip: bytes             # the IPv4 packet


@dataclass
class Udp:
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def parse_udp(ip: bytes) -> Udp | None:
    """An unfragmented IPv4/UDP packet's addresses and payload, else None."""
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
        return None
    if struct.unpack_from("!H", ip, 6)[0] & 0x3FFF:   # MF or a fragment offset
        return None
    ihl = (ip[0] & 15) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    sport, dport, ulen = struct.unpack_from("!HHH", ip, ihl)
    return Udp(socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), sport, dport,
               bytes(ip[ihl + 8:min(total, ihl + ulen)]))


class Capture:
    """AF_PACKET capture of IPv4 on one interface of a lab namespace, in a thread.

    ``keep(packet) -> bool`` chooses what is stored; at most ``limit`` packets
    are kept and the thread stops by itself after ``max_seconds``.
    """

    def __init__(self, lab: Lab, ns: str, ifname: str, keep: Callable[[Packet], bool],
                 limit: int = 100000, max_seconds: float = 600.0,
                 bpf: list[tuple[int, int, int, int]] | None = None):
        self.sock = ns_socket(lab, ns, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        if bpf is not None:
            attach_filter(self.sock, bpf)
        self.sock.bind((ifname, ETH_P_ALL))
        self.sock.settimeout(0.1)
        self.keep = keep
        self.limit = limit
        self.packets: list[Packet] = []
        self.seen = 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._run, name=f"capture-{ns}-{ifname}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            if addr[1] != ETH_P_IP:
                continue
            self.seen += 1
            pkt = Packet(time.monotonic(), addr[2] == PACKET_OUTGOING, data)
            if len(self.packets) < self.limit and self.keep(pkt):
                self.packets.append(pkt)

    def stop(self) -> list[Packet]:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        return self.packets


# Classic BPF, so that a capture on a busy link (iperf3 through the tunnel) only
# wakes Python for the packets it wants. On an AF_PACKET SOCK_DGRAM socket the
# program sees the packet from its IP header on.
SO_ATTACH_FILTER = 26
_LDB_ABS, _LDH_ABS, _LDH_IND, _LDXB_MSH = 0x30, 0x28, 0x48, 0xB1
_JEQ, _JSET, _RET = 0x15, 0x45, 0x06


def udp_filter(sport: int | None = None, dport: int | None = None) -> list[tuple[int, int, int, int]]:
    """A program accepting unfragmented IPv4 UDP with the given ports."""
    prog = [(_LDB_ABS, 0, 0, 9), (_JEQ, 0, None, 17),            # UDP?
            (_LDH_ABS, 0, 0, 6), (_JSET, None, 0, 0x1FFF),        # not a fragment
            (_LDXB_MSH, 0, 0, 0)]                                 # X = IP header length
    if sport is not None:
        prog += [(_LDH_IND, 0, 0, 0), (_JEQ, 0, None, sport)]
    if dport is not None:
        prog += [(_LDH_IND, 0, 0, 2), (_JEQ, 0, None, dport)]
    accept = len(prog)
    prog += [(_RET, 0, 0, 65535), (_RET, 0, 0, 0)]
    # None: jump to the final "drop"
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        drop = len(prog) - 1 - i - 1
        out.append((code, drop if jt is None else jt, drop if jf is None else jf, k))
    assert out[accept][0] == _RET
    return out


def attach_filter(sock: socket.socket, prog: list[tuple[int, int, int, int]]) -> None:
    insns = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(insns)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)   # the kernel copies it


# --- spoofed IKE_SA_INIT --------------------------------------------------------------------


def ipv4_udp(src: str, dst: str, sport: int, dport: int, data: bytes, ident: int = 0) -> bytes:
    """An IPv4/UDP packet for an IP_HDRINCL raw socket (the kernel fills the IP
    checksum; a zero UDP checksum means none, RFC 768)."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(data), ident & 0xFFFF, 0, 64,
                     socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def with_spi(request: bytes, spi_i: bytes) -> bytes:
    return spi_i + request[8:]


def with_cookie(request: bytes, cookie: bytes) -> bytes:
    """The IKE_SA_INIT request again with N(COOKIE) as its first payload (§2.6)."""
    notify = payload(request[16], struct.pack("!BBH", 0, 0, 16390) + cookie)
    body = notify + request[28:]
    return ike_header(request[:8], request[8:16], 41, request[18], request[19],
                      struct.unpack_from("!I", request, 20)[0], 28 + len(body)) + body


def cookie_of(answer: bytes) -> bytes | None:
    """The cookie of a stateless COOKIE answer (HDR, N(COOKIE)), else None."""
    if len(answer) < 36 or answer[16] != 41 or answer[18] != 34 or not answer[19] & 0x20:
        return None
    length = struct.unpack_from("!H", answer, 30)[0]
    if struct.unpack_from("!H", answer, 34)[0] != 16390:
        return None
    return answer[36:28 + length]


# --- process figures ------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (/proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- pacing -------------------------------------------------------------------------------------


def paced(items, rate: float, max_seconds: float):
    """Yield items at about ``rate`` per second (sleeping in 10 ms steps), and stop
    after ``max_seconds`` whatever is left: the bound of every sender loop."""
    start = time.monotonic()
    for i, item in enumerate(items):
        now = time.monotonic()
        if now - start > max_seconds:
            return
        due = start + i / rate
        if due - now > 0.01:
            time.sleep(due - now)
        yield item


# --- IKE message building and mutation -------------------------------------------------------


def ike_header(spi_i: bytes, spi_r: bytes, first: int, exchange: int, flags: int, mid: int,
               length: int, version: int = 0x20) -> bytes:
    return IKE_HEADER.pack(spi_i, spi_r, first, version, exchange, flags, mid, length)


def payload(next_type: int, body: bytes, critical: bool = False, length: int | None = None) -> bytes:
    return struct.pack("!BBH", next_type, 0x80 if critical else 0,
                       4 + len(body) if length is None else length) + body


def chain(items: list[tuple[int, bytes]]) -> tuple[int, bytes]:
    """[(type, body)...] -> (first type, payload bytes), each header naming the next."""
    out = []
    for i, (_, body) in enumerate(items):
        nxt = items[i + 1][0] if i + 1 < len(items) else 0
        out.append(payload(nxt, body))
    return (items[0][0] if items else 0), b"".join(out)


def message(spi_i: bytes, spi_r: bytes, exchange: int, flags: int, mid: int,
            items: list[tuple[int, bytes]]) -> bytes:
    first, body = chain(items)
    return ike_header(spi_i, spi_r, first, exchange, flags, mid, 28 + len(body)) + body


def payload_offsets(data: bytes) -> list[int]:
    """Offsets of the generic payload headers of a message, walked leniently."""
    out, pos = [], 28
    nxt = data[16] if len(data) > 16 else 0
    while nxt and pos + 4 <= len(data) and len(out) < 64:
        out.append(pos)
        length = struct.unpack_from("!H", data, pos + 2)[0]
        if nxt in (46, 53) or length < 4:
            break
        nxt = data[pos]
        pos += length
    return out


def set_length(data: bytes) -> bytes:
    """The header's length field made true again (after a change of size)."""
    b = bytearray(data)
    if len(b) >= 28:
        struct.pack_into("!I", b, 24, len(b))
    return bytes(b)


@dataclass
class FuzzContext:
    corpus: list[bytes]                 # real IKE messages captured on the wire
    est_spis: tuple[bytes, bytes]       # (SPIi, SPIr) of the established IKE SA
    init_requests: list[bytes]          # real IKE_SA_INIT requests (from the corpus)
    kinds: dict[str, int] = field(default_factory=dict)   # how many of each were made


def _rand_spi(rng: random.Random) -> bytes:
    return rng.getrandbits(64).to_bytes(8, "big")


def _flip(rng: random.Random, data: bytes, flips: int, start: int = 0) -> bytes:
    b = bytearray(data)
    for _ in range(flips):
        if len(b) > start:
            i = rng.randrange(start, len(b))
            b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _junk(rng: random.Random, n: int) -> bytes:
    return rng.getrandbits(8 * n).to_bytes(n, "big") if n else b""


def m_replay(rng, ctx):
    return rng.choice(ctx.corpus)


def m_bitflip(rng, ctx):
    return _flip(rng, rng.choice(ctx.corpus), rng.choice((1, 1, 2, 3, 8)))


def m_truncate(rng, ctx):
    data = rng.choice(ctx.corpus)
    cut = data[:rng.randrange(len(data))]
    return set_length(cut) if rng.random() < 0.5 else cut


def m_extend(rng, ctx):
    data = rng.choice(ctx.corpus) + _junk(rng, rng.choice((1, 3, 4, 16, 200)))
    return set_length(data) if rng.random() < 0.5 else data


def m_header_length(rng, ctx):
    b = bytearray(rng.choice(ctx.corpus))
    struct.pack_into("!I", b, 24, rng.choice((0, 1, 27, 28, len(b) - 1, len(b) + 1, 65535,
                                               0xFFFFFFFF, rng.getrandbits(32))))
    return bytes(b)


def m_payload_length(rng, ctx):
    b = bytearray(rng.choice(ctx.corpus))
    offsets = payload_offsets(bytes(b))
    if not offsets:
        return bytes(b)
    pos = rng.choice(offsets)
    rest = len(b) - pos
    struct.pack_into("!H", b, pos + 2, rng.choice((0, 1, 3, 4, 5, rest - 1, rest + 1, rest + 100,
                                                   0xFFFF, rng.getrandbits(16))))
    return bytes(b)


def m_next_payload(rng, ctx):
    """A payload type lie: in the header or in one generic payload header."""
    b = bytearray(rng.choice(ctx.corpus))
    offsets = payload_offsets(bytes(b))
    where = [16] + offsets
    b[rng.choice(where)] = rng.choice((0, 1, 33, 34, 35, 39, 40, 41, 46, 53, 99, 128, 255,
                                       rng.randrange(256)))
    return bytes(b)


def m_critical(rng, ctx):
    """The critical bit on payloads, or an unknown critical payload (§2.5)."""
    data = rng.choice(ctx.corpus)
    b = bytearray(data)
    for pos in payload_offsets(data):
        if rng.random() < 0.5:
            b[pos + 1] |= 0x80
    if rng.random() < 0.5:
        spi_i, spi_r, first, ver, exch, flags, mid, _ = IKE_HEADER.unpack_from(data)
        return ike_header(spi_i, spi_r, 200, exch, flags, mid, len(data) + 8, version=ver) + \
            payload(first, b"junk", critical=True) + bytes(b[28:])
    return bytes(b)


def m_payload_loop(rng, ctx):
    """A chain whose next-payload fields keep naming the same type: empty payloads
    (length 4) of one type, far more than any message holds."""
    spi_i, spi_r = rng.choice((ctx.est_spis, (_rand_spi(rng), bytes(8)),
                               (_rand_spi(rng), _rand_spi(rng))))
    ptype = rng.choice((41, 43, 40, 33, 200, 34))
    count = rng.choice((65, 100, 300, 1000))
    body = payload(ptype, b"") * count
    b = bytearray(body)
    struct.pack_into("!B", b, len(b) - 4, 0)    # the last one ends the chain
    return ike_header(spi_i, spi_r, ptype, rng.choice((34, 35, 36, 37)),
                      rng.choice((0x08, 0x20, 0x28, 0x00)), rng.choice((0, 1, 2)), 28 + len(b)) + bytes(b)


def m_huge_chain(rng, ctx):
    """Big messages (up to ~60 KB: IP-fragmented on the wire): many payloads, or a
    few huge ones, behind valid headers."""
    spi_i, spi_r = rng.choice((ctx.est_spis, (_rand_spi(rng), bytes(8))))
    exch = 34 if spi_r == bytes(8) else rng.choice((35, 36, 37))
    shape = rng.randrange(3)
    if shape == 0:    # thousands of notifies
        items = [(41, struct.pack("!BBH", 0, 0, 16384 + rng.randrange(100)))] * rng.choice((500, 3000))
    elif shape == 1:  # one giant KE / vendor ID
        items = [(rng.choice((34, 43, 40)), _junk(rng, rng.choice((20000, 60000))))]
    else:             # an SK payload as big as a datagram gets
        items = [(46, _junk(rng, rng.choice((30000, 65000))))]
    data = message(spi_i, spi_r, exch, 0x08, rng.choice((0, 1, 5)), items)
    return data[:65507]


def m_bad_version(rng, ctx):
    b = bytearray(rng.choice(ctx.corpus))
    b[17] = rng.choice((0x00, 0x10, 0x30, 0xF0, 0x21, 0x2F, 0x11, rng.randrange(256)))
    return bytes(b)


def m_est_spis_junk(rng, ctx):
    """The established SA's real SPIs, every exchange/flag/message ID combination,
    with junk, or a well-formed SK payload of random bytes (fails its ICV)."""
    spi_i, spi_r = ctx.est_spis
    if rng.random() < 0.2:
        spi_i, spi_r = spi_r, spi_i
    exch = rng.choice((34, 35, 36, 37, 37, 37, 36, 0, 33, 38, 255))
    flags = rng.choice((0x00, 0x08, 0x20, 0x28, 0xFF, 0x10))
    mid = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32)))
    shape = rng.randrange(4)
    if shape == 0:
        items = [(46, _junk(rng, rng.choice((0, 1, 8, 16, 32, 48, 64, 80, 96, 112, 500))))]
    elif shape == 1:
        items = [(53, struct.pack("!HH", rng.randrange(3), rng.randrange(3)) + _junk(rng, 64))]
    elif shape == 2:
        items = [(41, struct.pack("!BBH", 0, 0, 0))]         # a plaintext notify: never acts (§3.14)
    else:
        items = [(rng.choice((42, 33, 39, 44, 41)), _junk(rng, rng.randrange(40)))]
    return message(spi_i, spi_r, exch, flags, mid, items)


def m_random_spis(rng, ctx):
    spi_r = rng.choice((bytes(8), _rand_spi(rng)))
    spi_i = rng.choice((_rand_spi(rng), bytes(8)))
    items = [(rng.choice((46, 41, 33, 34, 40, 53)), _junk(rng, rng.randrange(200)))]
    return message(spi_i, spi_r, rng.choice((34, 35, 36, 37)), rng.choice((0x08, 0x20, 0x00, 0x28)),
                   rng.choice((0, 0, 1, rng.getrandbits(32))), items)


def m_header_junk(rng, ctx):
    """A valid header (real or random SPIs, true length) followed by junk."""
    spi_i, spi_r = rng.choice((ctx.est_spis, (_rand_spi(rng), bytes(8)), (_rand_spi(rng), _rand_spi(rng))))
    n = rng.choice((0, 1, 3, 4, 7, 40, 300, 1200))
    return ike_header(spi_i, spi_r, rng.randrange(256), rng.choice((34, 35, 36, 37)),
                      rng.choice((0x08, 0x20, 0x00)), rng.choice((0, 1, 2)), 28 + n) + _junk(rng, n)


def m_pure_junk(rng, ctx):
    return _junk(rng, rng.choice((0, 1, 4, 8, 27, 28, 29, 100, 1000)))


def m_init_mutant(rng, ctx):
    """A real IKE_SA_INIT request with a fresh SPIi and damage inside its payloads
    (proposals, transforms, KE, nonce, notifies): it gets past the header and
    into proposal and KE parsing."""
    data = bytearray(rng.choice(ctx.init_requests))
    data[0:8] = _rand_spi(rng)
    offsets = payload_offsets(bytes(data))
    shape = rng.randrange(4)
    if shape == 0 or not offsets:
        return _flip(rng, bytes(data), rng.choice((1, 2, 4)), start=28)
    if shape == 1:          # lie in one payload length
        pos = rng.choice(offsets)
        struct.pack_into("!H", data, pos + 2, rng.choice((4, 5, 8, 0xFFFF, rng.getrandbits(16))))
        return bytes(data)
    if shape == 2:          # lie inside the SA payload: proposal / transform lengths and counts
        pos = offsets[0]
        for _ in range(rng.randrange(1, 4)):
            i = pos + 4 + rng.randrange(40)
            if i < len(data):
                data[i] = rng.choice((0, 1, 2, 3, 8, 255, rng.randrange(256)))
        return bytes(data)
    # the first two body bytes of a payload: the KE's DH group, a notify's
    # protocol and SPI size, a proposal's header...
    pos = rng.choice(offsets)
    struct.pack_into("!H", data, pos + 4, rng.choice((0, 1, 2, 5, 14, 19, 31, 0xFFFF)))
    return bytes(data)


MUTATORS: dict[str, Callable] = {
    "replay": m_replay, "bitflip": m_bitflip, "truncate": m_truncate, "extend": m_extend,
    "header_length": m_header_length, "payload_length": m_payload_length,
    "next_payload": m_next_payload, "critical": m_critical, "payload_loop": m_payload_loop,
    "huge_chain": m_huge_chain, "bad_version": m_bad_version, "est_spis_junk": m_est_spis_junk,
    "random_spis": m_random_spis, "header_junk": m_header_junk, "pure_junk": m_pure_junk,
    "init_mutant": m_init_mutant,
}
# Relative frequencies: big messages are rare (bandwidth), the rest about even.
WEIGHTS = {name: (1 if name == "huge_chain" else 10) for name in MUTATORS}


def fuzz_messages(ctx: FuzzContext, count: int, seed: int) -> list[bytes]:
    """``count`` mutated IKE messages, reproducible from ``seed``."""
    rng = random.Random(seed)
    names = list(MUTATORS)
    weights = [WEIGHTS[n] for n in names]
    out = []
    for _ in range(count):
        name = rng.choices(names, weights)[0]
        ctx.kinds[name] = ctx.kinds.get(name, 0) + 1
        out.append(MUTATORS[name](rng, ctx))
    return out


def ike_of_udp(u: Udp) -> bytes | None:
    """The IKE message in a UDP datagram on port 500 or 4500 (after the marker)."""
    if 500 in (u.sport, u.dport) and len(u.payload) >= 28:
        return u.payload
    if 4500 in (u.sport, u.dport) and u.payload[:4] == MARKER and len(u.payload) >= 32:
        return u.payload[4:]
    return None


class RttPing:
    """ping at a fixed interval for a bounded time; ``finish()`` returns
    (sent, received, the RTT of each reply in ms)."""

    def __init__(self, lab: Lab, ns: str, dst: str, interval: float, duration: float):
        import subprocess
        self.lab = lab
        self.duration = duration
        self.proc = lab.popen(ns, "ping", "-n", "-i", interval, "-c", max(1, int(duration / interval)),
                              "-W", 2, dst, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self) -> tuple[int, int, list[float]]:
        import re
        import subprocess
        try:
            out, _ = self.proc.communicate(timeout=2 * self.duration + 15)
        except subprocess.TimeoutExpired:
            self.lab.stop(self.proc)
            raise RuntimeError("ping did not finish in time")
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
        if not m:
            raise RuntimeError(f"cannot read ping's summary: {out!r}")
        rtts = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
        return int(m.group(1)), int(m.group(2)), rtts


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values; inf when there are none."""
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]
