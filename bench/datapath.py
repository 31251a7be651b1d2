"""CPU per packet of the data path, in one process: sender and receiver side by side.

    python -m bench.datapath [--traffic tcp|udp64|udp1400] [--outside gso|udp|raw|mem-gso|mem-raw]
                             [--bursts 400] [--burst 176] [--batch N] [--against DIR | --limits]

Two DataPaths in this process: A reads inner packets from a fake TUN, seals them and
sends them to B; B receives, opens and writes them to its fake TUN.  A fake TUN is a
datagram socketpair with IFF_VNET_HDR framing (one datagram = one TUN frame, as the
daemon's default ``tun_offload: gro`` TUN), so the code under test is the daemon's
hot path: TUN read, seal, send; receive, open, GRO coalescing, TUN writev.

Outside: ``gso`` UDP with GSO and GRO (ESP in UDP), ``udp`` the same without them
(one syscall per packet), ``raw`` raw ESP (IP protocol 50) between two loopback
addresses (root); ``mem-gso``/``mem-raw`` the same paths over an in-memory wire
(MemoryWire: no outside syscalls).  Traffic: ``tcp`` one bulk flow of 1436-byte inner
packets (TCP with timestamps, AWS's 1436 MTU), ``udp64``/``udp1400`` one UDP flow.

A burst writes ``--burst`` frames into A's TUN, then A pumps once per wake-up (up to
``batch`` reads) and B pumps until its socket is empty, until the TUN is empty.  CPU
is ``time.process_time`` around the pump calls (the syscalls count; on loopback so
does the kernel's delivery into B's socket, which runs in A's send call).

``--against DIR`` measures DIR's dataplane package (another checkout, before or after
the DataPath rename) against this one in the same process, alternating burst by
burst, and prints the median of the per-burst ratios with its quartiles: both see
the same machine, so on a shared 2-core VM, where separate runs of one tree differ
by 10-30 %, a change of 2 % shows (an A/A run gives 1.00 +- 0.005).

``--limits`` measures the emulated per-tunnel limits (dataplane/limits.py) the same
way: A is this checkout without limits, B the same with limits on both tunnels
(sender's outbound bucket, receiver's inbound one) at 100 times AWS's figures, so
that every batch pays the bookkeeping and nothing is dropped.  What the option
costs when it is off is ``--against`` a checkout from before it.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from types import SimpleNamespace

KEY = bytes(range(20))  # AES128-GCM-16 key + salt, obviously fake
SPI = 0x1001
INNER_MTU = 1436  # AWS's tunnel interface MTU
PLAIN_HDR = bytes(10)  # virtio_net_hdr of a plain packet (dataplane.offload.PLAIN_HDR)


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
    """A TUN with IFF_VNET_HDR as far as the data path can tell: a packet fd whose
    frames start with a virtio_net_hdr; ``kernel`` is the other end of the socketpair."""

    def __init__(self) -> None:
        self.inside, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (self.inside, self.kernel):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
            s.setblocking(False)
        self.fd = self.inside.fileno()
        self.name = "bench"
        self.vnet_hdr = True
        self.uso = True

    def drain(self) -> None:
        recv = self.kernel.recv
        try:
            while True:
                recv(70000)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.inside.close()
        self.kernel.close()


class MemoryWire:
    """Loopback in memory: the sender's UDP or raw socket queues what it sends; the
    receiver's reads return it as the kernel would (a GSO send as one UDP GRO run
    with its segment size; raw ESP behind a 20-byte IPv4 header), joined into one
    bytes object as the kernel's copy would be."""

    _IP = _ip_header(20, 50, 0)

    def __init__(self) -> None:
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


def load_dataplane(tree: str | None) -> SimpleNamespace:
    """DataPath and EspSa of this checkout (None), or of ``tree``'s dataplane package
    imported under another name (a copy in a temporary directory)."""
    if tree is None:
        name = "dataplane"
    else:
        tmp = tempfile.mkdtemp(prefix="bench-datapath-")
        name = "dataplane_against"
        shutil.copytree(os.path.join(tree, "dataplane"), os.path.join(tmp, name))
        sys.path.insert(0, tmp)
    try:
        datapath = importlib.import_module(f"{name}.datapath").DataPath
    except ModuleNotFoundError:  # a tree from before the DataPath rename
        datapath = importlib.import_module(f"{name}.loop").PacketLoop
    return SimpleNamespace(DataPath=datapath, EspSa=importlib.import_module(f"{name}.esp").EspSa)


class Pair:
    """Sender A and receiver B of one dataplane package; ``ips`` keeps the outside
    addresses of two pairs apart (raw sockets see every ESP packet to their address)."""

    def __init__(self, dp: SimpleNamespace, outside: str, batch: int | None, ips: tuple[str, str],
                 limits=None) -> None:
        kw = {} if batch is None else {"batch": batch}
        self.a, self.b = dp.DataPath(None, lambda *x: None, **kw), dp.DataPath(None, lambda *x: None, **kw)
        self.tun_a, self.tun_b = FakeTun(), FakeTun()
        self.replaced: list = []  # real sockets a MemoryWire stands in for
        udp_encap = outside in ("gso", "udp", "mem-gso")
        raw = outside == "raw"
        gso = outside in ("gso", "mem-gso")
        socks_a = self._add(self.a, ips[0], raw, gso)
        socks_b = self._add(self.b, ips[1], raw, gso)
        dest = (ips[1], socks_b.port if udp_encap else 0)
        if outside.startswith("mem-"):
            wire = MemoryWire()
            self.replaced += [socks_a.udp, socks_b.udp]
            socks_a.gso = socks_b.gro = True
            if udp_encap:
                socks_a.udp = socks_b.udp = wire
            else:
                socks_a.raw = socks_b.raw = wire
        self.pump_b = (lambda: self.b.pump_udp(socks_b)) if udp_encap else (lambda: self.b.pump_raw(socks_b))
        self.a.add_tunnel("a", self.tun_a)
        self.b.add_tunnel("b", self.tun_b)
        self.a.set_outbound("a", dp.EspSa(SPI, "aes-gcm-16", KEY), ips[0], dest, udp_encap)
        self.b.install_inbound("b", dp.EspSa(SPI, "aes-gcm-16", KEY))
        self.binding = self.a.binding("a") if hasattr(self.a, "binding") else self.a._tunnels["a"]
        if limits is not None:
            self.a.set_limits("a", limits)
            self.b.set_limits("b", limits)

    @staticmethod
    def _add(dp, ip: str, raw: bool, gso: bool):
        add = getattr(dp, "add_outside_sockets", None) or dp.add_endpoint
        return add(ip, port=0, raw_esp=raw, gso=gso, gro=gso)

    def burst(self, frames: list[bytes]) -> tuple[float, float]:
        """One burst through A and B: CPU ns per packet on each side."""
        send = self.tun_a.kernel.send
        for f in frames:
            send(f)
        clock = time.process_time
        cpu_a = cpu_b = 0.0
        while True:
            t0 = clock()
            n = self.a.pump_tun(self.binding)
            t1 = clock()
            while self.pump_b():
                pass
            t2 = clock()
            cpu_a += t1 - t0
            cpu_b += t2 - t1
            self.tun_b.drain()
            if not n:
                return cpu_a / len(frames) * 1e9, cpu_b / len(frames) * 1e9

    def lost(self) -> int:
        return self.a.stats("a")["packets_out"] - self.b.stats("b")["packets_in"]

    def rate_limited(self) -> int:
        return sum(dp.stats(t)["drops"].get("rate_limit", 0) for dp, t in ((self.a, "a"), (self.b, "b")))

    def close(self) -> None:
        for x in (self.a, self.b, self.tun_a, self.tun_b, *self.replaced):
            x.close()


def _quartiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return xs[len(xs) // 4], xs[3 * len(xs) // 4]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.datapath", description=__doc__.split("\n\n")[0])
    ap.add_argument("--traffic", choices=["tcp", "udp64", "udp1400"], default="tcp")
    ap.add_argument("--outside", choices=["gso", "udp", "raw", "mem-gso", "mem-raw"], default="gso")
    ap.add_argument("--bursts", type=int, default=400, help="bursts (per tree with --against)")
    ap.add_argument("--burst", type=int, default=176, help="frames written into the TUN at a time")
    ap.add_argument("--batch", type=int, default=None, help="the DataPath's batch (default: its own)")
    ap.add_argument("--against", metavar="DIR", help="another checkout: its dataplane is A, this one B")
    ap.add_argument("--limits", action="store_true",
                    help="A: no limits, B: per-tunnel limits on (100x AWS's figures: nothing dropped)")
    a = ap.parse_args(argv)
    if a.against and a.limits:
        ap.error("--against and --limits each make a pair A; give one of them")
    if a.outside == "raw" and os.geteuid() != 0:
        print("--outside raw needs root (raw sockets)", file=sys.stderr)
        return 2
    frames = [PLAIN_HDR + p for p in inner_packets(a.traffic, a.burst)]
    pairs = {"B": Pair(load_dataplane(None), a.outside, a.batch, ("127.0.0.1", "127.0.0.2"))}
    if a.against:
        pairs["A"] = Pair(load_dataplane(a.against), a.outside, a.batch, ("127.0.0.3", "127.0.0.4"))
    elif a.limits:
        from dataplane.limits import TunnelLimits
        aws = TunnelLimits(bits_per_second=1_250_000_000, packets_per_second=140_000)  # docs/aws.md §4.1
        pairs["A"] = pairs["B"]
        pairs["B"] = Pair(load_dataplane(None), a.outside, a.batch, ("127.0.0.3", "127.0.0.4"),
                          limits=TunnelLimits(aws.bits_per_second * 100, aws.packets_per_second * 100))
    results: dict[str, list] = {k: [] for k in pairs}
    order = sorted(pairs)
    try:
        for i in range(a.bursts):
            for k in (order if i % 2 else order[::-1]):
                results[k].append(pairs[k].burst(frames))
        lost = {k: p.lost() for k, p in pairs.items()}
        limited = pairs["B"].rate_limited() if a.limits else 0
    finally:
        for p in pairs.values():
            p.close()
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"bench.datapath {a.traffic} over {a.outside}: {a.bursts} bursts of {a.burst}, "
          f"load average {load}" + (f"; A = {a.against}, B = this checkout" if a.against else "")
          + ("; A = limits off, B = limits on (100x AWS's)" if a.limits else ""))
    for side, label in ((0, "sender"), (1, "receiver")):
        b = [r[side] for r in results["B"]]
        if "A" in results:
            ref = [r[side] for r in results["A"]]
            ratios = [y / x for x, y in zip(ref, b)]
            lo, hi = _quartiles(ratios)
            print(f"  {label:8s} A {statistics.median(ref):6.0f}  B {statistics.median(b):6.0f} ns/packet "
                  f"(medians); B/A {statistics.median(ratios):.3f} (quartiles {lo:.3f}-{hi:.3f})")
        else:
            lo, hi = _quartiles(b)
            print(f"  {label:8s} {statistics.median(b):6.0f} ns/packet median (quartiles {lo:.0f}-{hi:.0f}), "
                  f"{min(b):.0f} best")
    print(f"  lost: {lost}" + (f"; dropped by the limits: {limited}" if a.limits else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
