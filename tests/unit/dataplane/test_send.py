"""The send path without root: TUN reads sealed and sent, UDP GSO runs and their
fallbacks (tests/unit/dataplane/fakes.py: the rig)."""

import socket
import time

import pytest

from dataplane.datapath import DataPath
from dataplane.esp import EspSa

from .fakes import GCM_KEY_BA, INNER, FakeTun, drain, settle, sized


def test_outbound_udp_encap(rig):
    pl, ep, tun, peer, _ = rig
    rx = EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA)
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
    tun.kernel.send(INNER)
    settle(pl, ep, tun)
    data, addr = peer.recvfrom(65535)
    assert addr == ep.local_addr
    assert rx.decrypt(data) == INNER
    s = pl.stats("t1")
    assert (s["packets_out"], s["bytes_out"]) == (1, len(INNER))


def test_no_outbound_sa_counted(rig):
    pl, ep, tun, peer, _ = rig
    tun.kernel.send(INNER)
    tun.kernel.send(INNER)
    settle(pl, ep, tun)
    assert pl.stats("t1")["drops"]["no_outbound_sa"] == 2
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
    pl.clear_outbound("t1")
    tun.kernel.send(INNER)
    settle(pl, ep, tun)
    assert pl.stats("t1")["drops"]["no_outbound_sa"] == 3


@pytest.mark.parametrize("gso", [True, False])
def test_outbound_bursts_keep_order_and_sizes(gso):
    """Runs of equal sizes, a shorter packet ending a run, a longer one starting a
    new run, more than 64 in a row: the peer gets each packet, in order."""
    pl = DataPath(None, lambda *a: None, batch=256)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gso=gso)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    counting = ep.udp = _CountingSocket(ep.udp)
    try:
        pl.add_tunnel("t1", tun)
        pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
        sizes = [1400] * 5 + [100] + [1400] * 3 + [1420] * 2 + [60] * 70 + [1400]
        inners = [sized(n, i % 251) for i, n in enumerate(sizes)]
        for p in inners:
            tun.kernel.send(p)
        time.sleep(0.01)
        assert pl.pump_tun(pl.binding("t1")) == len(inners)
        rx = EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA)
        got = [rx.decrypt(d) for d in drain(peer)]
        assert got == inners
        assert pl.stats("t1")["drops"]["send_error"] == 0
        if ep.gso:
            # runs: 5x1400+100 | 3x1400 | 2x1420+60 | 64x60 | 5x60 | 1400
            assert counting.calls == 6
        else:
            assert counting.calls == len(inners)
    finally:
        ep.udp = counting._sock
        pl.close()
        tun.close()
        peer.close()


class _CountingSocket:
    def __init__(self, sock):
        self._sock = sock
        self.calls = 0

    def sendmsg(self, *a):
        self.calls += 1
        return self._sock.sendmsg(*a)

    def sendto(self, *a):
        self.calls += 1
        return self._sock.sendto(*a)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _NoGsoSocket:
    """Wraps a UDP socket whose path refuses GSO sends (as without checksum offload)."""

    def __init__(self, sock):
        self._sock = sock
        self.refused = 0

    def sendmsg(self, *a):
        self.refused += 1
        raise OSError(5, "Input/output error")  # EIO, as udp_send_skb without csum offload

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_gso_refused_falls_back_per_packet():
    pl = DataPath(None, lambda *a: None)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gso=True)
    if not ep.gso:
        pytest.skip("kernel without UDP GSO")
    real = ep.udp
    ep.udp = _NoGsoSocket(real)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    try:
        pl.add_tunnel("t1", tun)
        pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
        for _ in range(10):
            tun.kernel.send(INNER)
        time.sleep(0.01)
        pl.pump_tun(pl.binding("t1"))
        assert ep.udp.refused == 1 and ep.gso is False
        assert len(drain(peer)) == 10
        assert pl.stats("t1")["drops"]["send_error"] == 0
    finally:
        ep.udp = real
        pl.close()
        tun.close()
        peer.close()


class _MtuSocket(_CountingSocket):
    """A path whose MTU is too small for GSO segments above ``limit`` bytes."""

    def __init__(self, sock, limit):
        super().__init__(sock)
        self.limit = limit
        self.refused = 0

    def sendmsg(self, bufs, anc, flags, addr):
        if len(bufs[0]) > self.limit:
            self.refused += 1
            raise OSError(90, "Message too long")  # EMSGSIZE
        return super().sendmsg(bufs, anc, flags, addr)


def test_gso_segment_over_path_mtu_sent_one_by_one():
    pl = DataPath(None, lambda *a: None)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gso=True)
    if not ep.gso:
        pytest.skip("kernel without UDP GSO")
    real = ep.udp
    ep.udp = fake = _MtuSocket(real, 1000)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    try:
        pl.add_tunnel("t1", tun)
        pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
        inners = [sized(1400, i) for i in range(10)] + [sized(500, i) for i in range(10)]
        for p in inners:
            tun.kernel.send(p)
        time.sleep(0.01)
        pl.pump_tun(pl.binding("t1"))
        rx = EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA)
        assert [rx.decrypt(d) for d in drain(peer)] == inners
        assert fake.refused == 1 and ep.gso and ep.gso_limit < 1440
        # Afterwards: big packets go one by one without trying GSO, small ones in a run.
        fake.calls = 0
        for p in inners:
            tun.kernel.send(p)
        time.sleep(0.01)
        pl.pump_tun(pl.binding("t1"))
        assert [rx.decrypt(d) for d in drain(peer)] == inners
        assert fake.refused == 1 and fake.calls == 10 + 1
        assert pl.stats("t1")["drops"]["send_error"] == 0
    finally:
        ep.udp = real
        pl.close()
        tun.close()
        peer.close()
