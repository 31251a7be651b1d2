"""DataPath with a TUN opened with IFF_VNET_HDR, without root: a datagram socketpair
stands in for the TUN fd, each datagram one TUN frame (virtio_net_hdr + packet).

Inbound ESP is coalesced (dataplane.offload.Gro) and written as one frame per run;
outbound frames are plain packets or TSO super-packets cut before encryption."""

import os
import socket
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from dataplane.esp import EspSa
from dataplane.datapath import DataPath
from dataplane.offload import (
    GSO_NONE,
    GSO_TCPV4,
    GSO_UDP_L4,
    PLAIN_HDR,
    VNET_F_NEEDS_CSUM,
    parse_vnet_hdr,
    tso_split,
    vnet_hdr,
)

KEY_IN = bytes(range(20))
KEY_OUT = bytes(range(20, 40))
ICMP_PKT = bytes(IP(src="10.0.1.10", dst="172.16.1.10") / ICMP() / (b"p" * 56))


class VnetTun:
    def __init__(self, uso=True):
        self.inside, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (self.inside, self.kernel):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.inside.setblocking(False)
        self.kernel.settimeout(2)
        self.fd = self.inside.fileno()
        self.name = "fakevnet"
        self.vnet_hdr = True
        self.uso = uso

    def frames(self):
        out = []
        self.kernel.settimeout(0.5)
        try:
            while True:
                out.append(self.kernel.recv(70000))
                self.kernel.settimeout(0.05)
        except (TimeoutError, BlockingIOError):
            pass
        return out

    def close(self):
        self.inside.close()
        self.kernel.close()


@pytest.fixture
def rig():
    pl = DataPath(None, lambda *a: None)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False)
    tun = VnetTun()
    pl.add_tunnel("t1", tun, local_ip="127.0.0.1")
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", KEY_IN))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    yield pl, ep, tun, peer
    pl.close()
    tun.close()
    peer.close()


def tcp_segments(n, mss=1200, seq=5000):
    out = []
    for i in range(n):
        out.append(bytes(IP(src="10.0.1.10", dst="172.16.1.10", id=100 + i, flags="DF") / TCP(
            sport=5201, dport=40000, seq=seq + i * mss, ack=9, flags="A") / os.urandom(mss)))
    return out


def send_esp(peer, ep, inners):
    tx = EspSa(0x1001, "aes-gcm-16", KEY_IN)
    for p in inners:
        peer.sendto(tx.encrypt(p), ep.local_addr)
    time.sleep(0.02)


def test_inbound_tcp_run_is_one_gso_frame(rig):
    pl, ep, tun, peer = rig
    segs = tcp_segments(5)
    send_esp(peer, ep, segs)
    assert pl.pump_udp(ep) == 5
    frames = tun.frames()
    assert len(frames) == 1
    flags, gso_type, _, gso_size, cs, co = parse_vnet_hdr(frames[0])
    assert (flags, gso_type, gso_size, cs, co) == (VNET_F_NEEDS_CSUM, GSO_TCPV4, 1200, 20, 16)
    assert tso_split(frames[0]) == segs  # what the kernel will cut it into
    g = pl.global_stats()
    assert (g["gro_frames"], g["gro_packets"]) == (1, 5)
    assert pl.stats("t1")["packets_in"] == 5


def test_inbound_udp_run_is_one_uso_frame_and_lone_packets_are_plain(rig):
    pl, ep, tun, peer = rig
    dgrams = [bytes(IP(src="10.0.1.10", dst="172.16.1.10") / UDP(sport=1, dport=2) / os.urandom(64))
              for _ in range(4)]
    send_esp(peer, ep, dgrams + [ICMP_PKT])
    assert pl.pump_udp(ep) == 5
    frames = tun.frames()
    assert [parse_vnet_hdr(f)[1] for f in frames] == [GSO_UDP_L4, GSO_NONE]
    assert frames[1] == PLAIN_HDR + ICMP_PKT
    assert len(tso_split(frames[0])) == 4


def test_outbound_plain_frame_and_tso_super_packet(rig):
    pl, ep, tun, peer = rig
    rx = EspSa(0x2002, "aes-gcm-16", KEY_OUT)
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", KEY_OUT), "127.0.0.1", peer.getsockname(), True)
    payload = os.urandom(3000)
    big = bytes(IP(src="172.16.1.10", dst="10.0.1.10", id=7, flags="DF") / TCP(
        sport=40000, dport=5201, seq=1, ack=2, flags="PA") / payload)
    s = (int.from_bytes(big[12:20], "big") + 6 + len(big) - 20) % 0xFFFF  # the kernel's partial sum
    big = big[:36] + s.to_bytes(2, "big") + big[38:]
    tun.kernel.send(PLAIN_HDR + ICMP_PKT)
    tun.kernel.send(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 16) + big)
    time.sleep(0.01)
    assert pl.pump_tun(pl.binding("t1")) == 2  # two frames read
    got = [rx.decrypt(peer.recv(65535)) for _ in range(4)]
    assert got[0] == ICMP_PKT
    segs = [IP(p) for p in got[1:]]
    assert [len(bytes(p[TCP].payload)) for p in segs] == [1400, 1400, 200]
    assert b"".join(bytes(p[TCP].payload) for p in segs) == payload
    for p in segs:  # scapy recomputes and compares every checksum
        q = IP(bytes(p))
        del q.chksum, q[TCP].chksum
        q = IP(bytes(q))
        assert (q.chksum, q[TCP].chksum) == (p.chksum, p[TCP].chksum)
    assert pl.stats("t1")["packets_out"] == 4


def test_outbound_frame_that_cannot_be_split_is_dropped(rig):
    pl, ep, tun, peer = rig
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", KEY_OUT), "127.0.0.1", peer.getsockname(), True)
    tun.kernel.send(vnet_hdr(VNET_F_NEEDS_CSUM, 4, 60, 1000, 40, 16) + bytes(3000))  # TCPv6 GSO
    time.sleep(0.01)
    assert pl.pump_tun(pl.binding("t1")) == 1
    assert pl.stats("t1")["drops"]["not_ip"] == 1
    assert pl.stats("t1")["packets_out"] == 0


def test_tun_write_error_counts_every_packet_of_the_frame(rig):
    pl, ep, tun, peer = rig
    tun.kernel.close()  # writes to the "TUN" now fail
    send_esp(peer, ep, tcp_segments(3))
    assert pl.pump_udp(ep) == 3
    assert pl.stats("t1")["drops"]["tun_error"] == 3
    assert pl.global_stats()["errors"] == 0
