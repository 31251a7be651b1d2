"""What the DataPath tests share: a fake TUN, keys and packets (the rig: conftest.py).

A datagram socketpair stands in for the TUN fd (one read/write = one packet, like
IFF_NO_PI); the outside sockets are real UDP sockets on 127.0.0.1, no root needed."""

import socket
import time

from scapy.layers.inet import ICMP, IP

GCM_KEY_AB = bytes(range(20))
GCM_KEY_BA = bytes(range(20, 40))
INNER = bytes(IP(src="169.254.10.2", dst="169.254.10.1") / ICMP() / (b"q" * 40))


class FakeTun:
    """What the DataPath needs of a TunDevice: a non-blocking packet fd."""

    def __init__(self):
        self.inside, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (self.inside, self.kernel):  # room for bursts of ~100 packets
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.inside.setblocking(False)
        self.kernel.settimeout(2)
        self.fd = self.inside.fileno()
        self.name = "fake"

    def close(self):
        self.inside.close()
        self.kernel.close()


def settle(pl, ep, tun=None):
    time.sleep(0.01)
    pl.pump_udp(ep)
    if tun is not None:
        pl.pump_tun(pl.binding("t1"))


def drain(sock, timeout=1.0):
    out = []
    sock.settimeout(timeout)
    try:
        while True:
            out.append(sock.recv(65535))
            sock.settimeout(0.05)
    except (TimeoutError, BlockingIOError):
        pass
    return out


def sized(n, tag):
    """An IPv4-looking inner packet of n bytes, tagged in its last byte."""
    return bytes([0x45]) + bytes(n - 2) + bytes([tag])
