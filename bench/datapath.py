"""CPU per packet of the data path, in one process: sender and receiver side by side.

    python -m bench.datapath [--traffic tcp|udp64|udp1400] [--outside gso|udp|raw]
                             [--packets 30000] [--runs 5] [--burst 176] [--batch N]

Two packet loops in this process: A reads inner packets from a fake TUN, seals them
and sends them to B over loopback; B receives, opens and writes them to its fake TUN.
A fake TUN is a datagram socketpair with IFF_VNET_HDR framing (one datagram = one TUN
frame, as the daemon's default ``tun_offload: gro`` TUN), so the code under test is
the daemon's hot path: TUN read, seal, send; receive, open, GRO coalescing, TUN writev.

Outside: ``gso`` UDP 4500-style with UDP GSO and GRO (ESP in UDP), ``udp`` the same
without GSO/GRO (one syscall per packet), ``raw`` raw ESP (IP protocol 50) from
127.0.0.1 to 127.0.0.2 (root); ``mem-gso`` and ``mem-raw`` the same paths with the
outside sockets replaced by an in-memory wire (MemoryWire: no outside syscalls, so
the Python work alone, with far less noise).  Traffic: ``tcp`` one bulk flow of 1436-byte inner
packets (TCP with timestamps, the MSS of AWS's 1436 MTU), ``udp64``/``udp1400`` one
UDP flow of 64/1400-byte payloads.

Each run writes ``--burst`` frames at a time into A's TUN, then lets A pump once (one
wake-up: up to ``batch`` packets) and B pump until its socket is empty, until all
``--packets`` went through.  CPU is ``time.process_time`` around the pump calls
(user + system: the syscalls count, and on loopback so does the kernel's delivery
into B's socket, which runs in A's send call).  Medians over ``--runs``; compare
within one run of this command or between runs taken back to back.
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import statistics
import struct
import sys
import time

from dataplane.esp import EspSa
from dataplane.datapath import DataPath
from dataplane.offload import PLAIN_HDR

KEY = bytes(range(20))  # AES128-GCM-16 key + salt, obviously fake
SPI = 0x1001
INNER_MTU = 1436  # AWS's tunnel interface MTU


def _ip_header(total: int, proto: int, ident: int) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, 64, proto, 0,
                    bytes((10, 0, 1, 10)), bytes((172, 16, 1, 10)))
    s = sum(struct.unpack("!10H", h))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return h[:10] + struct.pack("!H", 0xFFFF - s) + h[12:]


def inner_packets(traffic: str, n: int) -> list[bytes]:
    """``n`` inner packets of one flow, in order (checksums of TCP/UDP left zero:
    nothing on this path checks them)."""
    out = []
    if traffic == "tcp":
        payload = INNER_MTU - 20 - 32
        body = os.urandom(payload)
        opts = b"\x01\x01\x08\x0a" + bytes(8)  # NOP NOP timestamps, as iperf3's TCP
        for i in range(n):
            tcp = struct.pack("!HHIIBBHHH", 40000, 5201, 1000 + i * payload, 1, 8 << 4, 0x10,
                              502, 0, 0) + opts
            out.append(_ip_header(20 + 32 + payload, 6, i & 0xFFFF) + tcp + body)
    else:
        payload = 64 if traffic == "udp64" else 1400
        body = os.urandom(payload)
        for i in range(n):
            udp = struct.pack("!HHHH", 40000, 5201, 8 + payload, 0)
            out.append(_ip_header(28 + payload, 17, i & 0xFFFF) + udp + body)
    return out


class FakeTun:
    """A TUN with IFF_VNET_HDR as far as the loop can tell: a packet fd whose frames
    start with a virtio_net_hdr; ``kernel`` is the other end of the socketpair."""

    def __init__(self) -> None:
        self.inside, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (self.inside, self.kernel):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
            s.setblocking(False)
        self.fd = self.inside.fileno()
        self.name = "bench"
        self.vnet_hdr = True
        self.uso = True

    def drain(self) -> int:
        n = 0
        recv = self.kernel.recv
        try:
            while True:
                recv(70000)
                n += 1
        except BlockingIOError:
            return n

    def close(self) -> None:
        self.inside.close()
        self.kernel.close()


class MemoryWire:
    """Loopback in memory (``--outside mem-gso``/``mem-raw``): A's UDP or raw socket
    queues what it sends; B's reads return it as the kernel would (a GSO send as one
    UDP GRO run with its segment size; raw ESP behind a 20-byte IPv4 header), joined
    into one bytes object as the kernel's copy would be.  No syscall on the outside:
    the figures are the Python work alone, much steadier on a shared machine."""

    _IP = _ip_header(20, 50, 0)

    def __init__(self, raw: bool) -> None:
        self.raw = raw
        self.queue: collections.deque = collections.deque()

    def sendto(self, data, addr) -> int:
        self.queue.append(((data,), 0))
        return len(data)

    def sendmsg(self, bufs, anc=(), flags=0, addr=None) -> int:
        seg = int.from_bytes(anc[0][2], sys.byteorder) if anc else 0
        self.queue.append((list(bufs), seg))
        return 0

    def recvmsg(self, size, ancsize=0):
        if not self.queue:
            raise BlockingIOError
        bufs, seg = self.queue.popleft()
        data = b"".join(bufs)
        anc = [(socket.SOL_UDP, 104, struct.pack("=i", seg))] if seg and seg < len(data) else []
        return data, anc, 0, ("127.0.0.1", 4500)

    def recv(self, size):
        if not self.queue:
            raise BlockingIOError
        return b"".join((self._IP, *self.queue.popleft()[0]))

    def close(self) -> None:
        pass


def one_run(traffic: str, outside: str, packets: int, burst: int, batch: int | None) -> dict:
    kw = {} if batch is None else {"batch": batch}
    a = DataPath(None, lambda *x: None, **kw)
    b = DataPath(None, lambda *x: None, **kw)
    tun_a, tun_b = FakeTun(), FakeTun()
    udp_encap = outside not in ("raw", "mem-raw")
    replaced: list = []  # real sockets a MemoryWire stands in for
    try:
        if outside == "raw":
            ep_a = a.add_outside_sockets("127.0.0.1", port=0, raw_esp=True)
            ep_b = b.add_outside_sockets("127.0.0.2", port=0, raw_esp=True)
            dest, pump_b = ("127.0.0.2", 0), (lambda: b.pump_raw(ep_b))
        else:
            gso = outside in ("gso", "mem-gso")
            ep_a = a.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gso=gso, gro=gso)
            ep_b = b.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gso=gso, gro=gso)
            dest, pump_b = ep_b.local_addr, (lambda: b.pump_udp(ep_b))
            if outside.startswith("mem-"):
                wire = MemoryWire(raw=not udp_encap)
                ep_a.gso = ep_b.gro = True
                replaced += [ep_a.udp, ep_b.udp]
                if udp_encap:
                    ep_a.udp = ep_b.udp = wire
                    dest = ("127.0.0.1", 4500)
                else:
                    ep_a.raw = ep_b.raw = wire
                    dest, pump_b = ("127.0.0.2", 0), (lambda: b.pump_raw(ep_b))
        a.add_tunnel("a", tun_a)
        b.add_tunnel("b", tun_b)
        a.set_outbound("a", EspSa(SPI, "aes-gcm-16", KEY), ep_a.local_ip, dest, udp_encap)
        b.install_inbound("b", EspSa(SPI, "aes-gcm-16", KEY))
        binding_a = a.binding("a")
        frames = [PLAIN_HDR + p for p in inner_packets(traffic, burst)]
        send = tun_a.kernel.send
        clock = time.process_time
        cpu_a = cpu_b = 0.0
        wakeups_a = 0
        done = 0
        while done < packets:
            for f in frames:
                send(f)
            while True:
                t0 = clock()
                n = a.pump_tun(binding_a)
                t1 = clock()
                while pump_b():
                    pass
                t2 = clock()
                cpu_a += t1 - t0
                cpu_b += t2 - t1
                tun_b.drain()
                if not n:
                    break
                wakeups_a += 1
            done += burst
        s_a, s_b = a.stats("a"), b.stats("b")
        lost = s_a["packets_out"] - s_b["packets_in"]
        return {"send_ns": cpu_a / done * 1e9, "recv_ns": cpu_b / done * 1e9, "lost": lost,
                "per_wakeup": done / max(1, wakeups_a), "drops": {k: v for k, v in s_b["drops"].items() if v}}
    finally:
        a.close()
        b.close()
        tun_a.close()
        tun_b.close()
        for sock in replaced:
            sock.close()


def isolated(traffic: str, outside: str, burst: int, batch: int | None, reps: int) -> dict:
    """Each side alone, over MemoryWire: the sender pumps ``burst`` frames out of its
    TUN into the wire; the receiver pumps what one such burst put on the wire (same
    packets every repetition, a fresh inbound SA each time).  ns per packet of each
    repetition (process time), so min and median over ``reps``."""
    kw = {} if batch is None else {"batch": batch}
    a = DataPath(None, lambda *x: None, **kw)
    b = DataPath(None, lambda *x: None, **kw)
    tun_a, tun_b = FakeTun(), FakeTun()
    udp_encap = outside == "mem-gso"
    wire = MemoryWire(raw=not udp_encap)
    ep_a = a.add_outside_sockets("127.0.0.1", port=0, raw_esp=False)
    ep_b = b.add_outside_sockets("127.0.0.2", port=0, raw_esp=False)
    replaced = [ep_a.udp, ep_b.udp]
    try:
        ep_a.gso = ep_b.gro = True
        if udp_encap:
            ep_a.udp = ep_b.udp = wire
            pump_b = lambda: b.pump_udp(ep_b)  # noqa: E731
        else:
            ep_a.raw = ep_b.raw = wire
            pump_b = lambda: b.pump_raw(ep_b)  # noqa: E731
        a.add_tunnel("a", tun_a)
        b.add_tunnel("b", tun_b)
        a.set_outbound("a", EspSa(SPI, "aes-gcm-16", KEY), "127.0.0.1", ("127.0.0.2", 4500), udp_encap)
        binding_a = a.binding("a")
        frames = [PLAIN_HDR + p for p in inner_packets(traffic, burst)]
        send = tun_a.kernel.send
        clock = time.process_time
        send_ns, recv_ns = [], []
        wire_burst = None
        for _ in range(reps):
            for f in frames:
                send(f)
            t0 = clock()
            while a.pump_tun(binding_a):
                pass
            send_ns.append((clock() - t0) / burst * 1e9)
            if wire_burst is None:  # what the kernel would hand the receiver, copied once
                wire_burst = [((b"".join(bufs),), seg) for bufs, seg in wire.queue]
            wire.queue.clear()
        for _ in range(reps):
            b.install_inbound("b", EspSa(SPI, "aes-gcm-16", KEY))  # a fresh replay window
            wire.queue.extend(wire_burst)
            t0 = clock()
            while pump_b():
                pass
            recv_ns.append((clock() - t0) / burst * 1e9)
            tun_b.drain()
        got = b.stats("b")
        return {"send_ns": send_ns, "recv_ns": recv_ns, "packets_in": got["packets_in"],
                "expected": burst * reps, "drops": {k: v for k, v in got["drops"].items() if v}}
    finally:
        a.close()
        b.close()
        tun_a.close()
        tun_b.close()
        for sock in replaced:
            sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.datapath", description=__doc__.split("\n\n")[0])
    ap.add_argument("--traffic", choices=["tcp", "udp64", "udp1400"], default="tcp")
    ap.add_argument("--outside", choices=["gso", "udp", "raw", "mem-gso", "mem-raw"], default="gso")
    ap.add_argument("--packets", type=int, default=30000, help="packets per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--burst", type=int, default=176, help="frames written into the TUN at a time")
    ap.add_argument("--batch", type=int, default=None, help="the loop's batch (default: its own)")
    ap.add_argument("--isolated", action="store_true",
                    help="each side alone over the in-memory wire (mem-gso or mem-raw): min and median "
                         "over --runs repetitions of one --burst")
    a = ap.parse_args(argv)
    if a.isolated:
        outside = a.outside if a.outside in ("mem-gso", "mem-raw") else "mem-gso"
        r = isolated(a.traffic, outside, a.burst, a.batch, a.runs)
        load = " ".join(open("/proc/loadavg").read().split()[:3])
        print(f"bench.datapath --isolated {a.traffic} over {outside}: {a.runs} x {a.burst} packets, "
              f"load average {load}")
        for key, label in (("send_ns", "sender"), ("recv_ns", "receiver")):
            xs = r[key]
            print(f"  {label:8s} {statistics.median(xs):7.0f} ns/packet median, {min(xs):.0f} best, "
                  f"{max(xs):.0f} worst")
        print(f"  received {r['packets_in']} of {r['expected']}; receiver drops {r['drops'] or 'none'}")
        return 0
    if a.outside == "raw" and os.geteuid() != 0:
        print("--outside raw needs root (raw sockets)", file=sys.stderr)
        return 2
    runs = [one_run(a.traffic, a.outside, a.packets, a.burst, a.batch) for _ in range(a.runs)]
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"bench.datapath {a.traffic} over {a.outside}: {a.packets} packets x {a.runs} runs, "
          f"burst {a.burst}, load average {load}")
    for key, label in (("send_ns", "sender"), ("recv_ns", "receiver")):
        xs = [r[key] for r in runs]
        print(f"  {label:8s} {statistics.median(xs):7.0f} ns/packet median, {min(xs):.0f} best, {max(xs):.0f} worst")
    print(f"  packets per sender wake-up {statistics.median(r['per_wakeup'] for r in runs):.0f}; "
          f"lost {sum(r['lost'] for r in runs)}; receiver drops {runs[-1]['drops'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
