"""PacketLoop without root: UDP on 127.0.0.1 and a datagram socketpair standing in for
the TUN fd (one read/write = one packet, like IFF_NO_PI)."""

import asyncio
import errno
import sys
import socket
import time

import pytest
from scapy.layers.inet import ICMP, IP

from dataplane.esp import EspSa
from dataplane.loop import PacketLoop

GCM_KEY_AB = bytes(range(20))
GCM_KEY_BA = bytes(range(20, 40))
INNER = bytes(IP(src="169.254.10.2", dst="169.254.10.1") / ICMP() / (b"q" * 40))


class FakeTun:
    """What the loop needs of a TunDevice: a non-blocking packet fd."""

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


@pytest.fixture
def rig():
    """Loop under test on 127.0.0.1 (random port), a peer UDP socket, a fake TUN."""
    ike = []
    pl = PacketLoop(None, lambda d, l, r: ike.append((d, l, r)))
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False)
    tun = FakeTun()
    pl.add_tunnel("t1", tun, local_ip="127.0.0.1")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    yield pl, ep, tun, peer, ike
    pl.close()
    tun.close()
    peer.close()


def settle(pl, ep, tun=None):
    time.sleep(0.01)
    pl.pump_udp(ep)
    if tun is not None:
        pl.pump_tun(pl._tunnels["t1"])


def test_inbound_esp_reaches_tun(rig):
    pl, ep, tun, peer, _ = rig
    tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    for _ in range(5):
        peer.sendto(tx.encrypt(INNER), ep.local_addr)
    settle(pl, ep)
    for _ in range(5):
        assert tun.kernel.recv(65535) == INNER
    s = pl.stats("t1")
    assert s["packets_in"] == 5 and s["bytes_in"] == 5 * len(INNER)
    assert s["last_inbound"] is not None and s["last_inbound"] <= time.monotonic()
    assert pl.last_inbound("t1") == s["last_inbound"]


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


def test_ike_and_keepalive_and_junk(rig):
    pl, ep, tun, peer, ike = rig
    msg = b"\x22" * 28
    peer.sendto(b"\x00\x00\x00\x00" + msg, ep.local_addr)
    peer.sendto(b"\xff", ep.local_addr)
    peer.sendto(b"\x00\x00", ep.local_addr)
    peer.sendto(b"\x12\x34\x56\x78" + b"\x00" * 20, ep.local_addr)  # unknown SPI
    settle(pl, ep)
    assert ike == [(msg, ep.local_addr, peer.getsockname())]
    g = pl.global_stats()
    assert g["ike_in"] == 1 and g["keepalive_in"] == 1
    d = pl.stats("t1")["drops"]  # the endpoint belongs to t1 alone: charged there
    assert d["malformed"] == 1 and d["unknown_spi"] == 1


def test_unknown_spi_global_when_endpoint_shared(rig):
    pl, ep, tun, peer, _ = rig
    tun2 = FakeTun()
    try:
        pl.add_tunnel("t2", tun2, local_ip="127.0.0.1")
        peer.sendto(b"\x12\x34\x56\x78" + b"\x00" * 20, ep.local_addr)
        settle(pl, ep)
        assert pl.global_stats()["drops"]["unknown_spi"] == 1
        assert pl.stats("t1")["drops"]["unknown_spi"] == 0
    finally:
        pl.remove_tunnel("t2")
        tun2.close()


def test_send_ike_and_keepalive(rig):
    pl, ep, tun, peer, _ = rig
    pl.send_ike("127.0.0.1", peer.getsockname(), b"hello-ike")
    assert peer.recvfrom(100) == (b"\x00\x00\x00\x00hello-ike", ep.local_addr)
    assert not pl.send_keepalive("t1")  # no outbound SA yet
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
    assert pl.send_keepalive("t1")
    assert peer.recvfrom(100) == (b"\xff", ep.local_addr)


def test_ike_callback_error_does_not_stop_loop(rig):
    pl, ep, tun, peer, _ = rig
    pl._on_ike = lambda *a: 1 / 0
    tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    peer.sendto(b"\x00" * 40, ep.local_addr)
    peer.sendto(tx.encrypt(INNER), ep.local_addr)
    settle(pl, ep)
    assert tun.kernel.recv(65535) == INNER
    assert pl.global_stats()["errors"] == 1


def test_drops_from_sa_and_rekey_keeps_totals(rig):
    pl, ep, tun, peer, _ = rig
    tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    p = tx.encrypt(INNER)
    bad = bytearray(tx.encrypt(INNER))
    bad[-1] ^= 1
    for d in (p, p, bytes(bad)):
        peer.sendto(d, ep.local_addr)
    settle(pl, ep)
    s = pl.stats("t1")
    assert s["packets_in"] == 1 and s["drops"]["replay"] == 1 and s["drops"]["bad_icv"] == 1
    # Rekey: new inbound SA, old one removed; totals never go back.
    tx2 = EspSa(0x1002, "aes-gcm-16", GCM_KEY_BA)
    pl.install_inbound("t1", EspSa(0x1002, "aes-gcm-16", GCM_KEY_BA))
    pl.remove_inbound(0x1001)
    peer.sendto(tx2.encrypt(INNER), ep.local_addr)
    peer.sendto(tx.encrypt(INNER), ep.local_addr)  # old SPI: now unknown
    settle(pl, ep)
    s = pl.stats("t1")
    assert s["packets_in"] == 2 and s["bytes_in"] == 2 * len(INNER)
    assert s["drops"]["replay"] == 1 and s["drops"]["bad_icv"] == 1 and s["drops"]["unknown_spi"] == 1
    assert s["inbound_spis"] == [0x1002]


def test_batch_is_bounded(rig):
    pl, ep, tun, peer, ike = rig
    pl.batch = 8
    for _ in range(20):
        peer.sendto(b"\x00" * 4 + b"\x01" * 28, ep.local_addr)
    time.sleep(0.01)
    assert pl.pump_udp(ep) == 8
    assert pl.pump_udp(ep) == 8
    assert pl.pump_udp(ep) == 4
    assert pl.pump_udp(ep) == 0
    assert len(ike) == 20


def test_driven_by_asyncio():
    """Both directions through a real asyncio loop, add_reader registration and close()."""
    async def main():
        loop = asyncio.get_running_loop()
        pl = PacketLoop(loop, lambda *a: None)
        ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False)
        tun = FakeTun()
        tun.kernel.setblocking(False)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        try:
            pl.add_tunnel("t1", tun)
            pl.install_inbound("t1", EspSa(0x1001, "aes-cbc", bytes(16), "hmac-sha1-96", bytes(20)))
            pl.set_outbound("t1", EspSa(0x2002, "aes-cbc", bytes(range(16)), "hmac-sha1-96", bytes(20)),
                            "127.0.0.1", peer.getsockname(), True)
            tx = EspSa(0x1001, "aes-cbc", bytes(16), "hmac-sha1-96", bytes(20))
            rx = EspSa(0x2002, "aes-cbc", bytes(range(16)), "hmac-sha1-96", bytes(20))
            await loop.sock_sendto(peer, tx.encrypt(INNER), ep.local_addr)
            got = await asyncio.wait_for(loop.sock_recv(tun.kernel, 65535), 2)
            assert got == INNER
            tun.kernel.send(INNER)
            data = await asyncio.wait_for(loop.sock_recv(peer, 65535), 2)
            assert rx.decrypt(data) == INNER
        finally:
            pl.close()
            tun.close()
            peer.close()
        s = pl.global_stats()
        assert s["errors"] == 0

    asyncio.run(asyncio.wait_for(main(), 10))


def _drain(sock, timeout=1.0):
    out = []
    sock.settimeout(timeout)
    try:
        while True:
            out.append(sock.recv(65535))
            sock.settimeout(0.05)
    except (TimeoutError, BlockingIOError):
        pass
    return out


def _sized(n, tag):
    """An IPv4-looking inner packet of n bytes, tagged in its last byte."""
    return bytes([0x45]) + bytes(n - 2) + bytes([tag])


@pytest.mark.parametrize("gso", [True, False])
def test_outbound_bursts_keep_order_and_sizes(gso):
    """Runs of equal sizes, a shorter packet ending a run, a longer one starting a
    new run, more than 64 in a row: the peer gets each packet, in order."""
    pl = PacketLoop(None, lambda *a: None, batch=256)
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False, gso=gso)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    counting = ep.udp = _CountingSocket(ep.udp)
    try:
        pl.add_tunnel("t1", tun)
        pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
        sizes = [1400] * 5 + [100] + [1400] * 3 + [1420] * 2 + [60] * 70 + [1400]
        inners = [_sized(n, i % 251) for i, n in enumerate(sizes)]
        for p in inners:
            tun.kernel.send(p)
        time.sleep(0.01)
        assert pl.pump_tun(pl._tunnels["t1"]) == len(inners)
        rx = EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA)
        got = [rx.decrypt(d) for d in _drain(peer)]
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
    pl = PacketLoop(None, lambda *a: None)
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False, gso=True)
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
        pl.pump_tun(pl._tunnels["t1"])
        assert ep.udp.refused == 1 and ep.gso is False
        assert len(_drain(peer)) == 10
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
    pl = PacketLoop(None, lambda *a: None)
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False, gso=True)
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
        inners = [_sized(1400, i) for i in range(10)] + [_sized(500, i) for i in range(10)]
        for p in inners:
            tun.kernel.send(p)
        time.sleep(0.01)
        pl.pump_tun(pl._tunnels["t1"])
        rx = EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA)
        assert [rx.decrypt(d) for d in _drain(peer)] == inners
        assert fake.refused == 1 and ep.gso and ep.gso_limit < 1440
        # Afterwards: big packets go one by one without trying GSO, small ones in a run.
        fake.calls = 0
        for p in inners:
            tun.kernel.send(p)
        time.sleep(0.01)
        pl.pump_tun(pl._tunnels["t1"])
        assert [rx.decrypt(d) for d in _drain(peer)] == inners
        assert fake.refused == 1 and fake.calls == 10 + 1
        assert pl.stats("t1")["drops"]["send_error"] == 0
    finally:
        ep.udp = real
        pl.close()
        tun.close()
        peer.close()


class _CountingRecv:
    def __init__(self, sock):
        self._sock = sock
        self.calls = 0

    def recvmsg(self, *a):
        self.calls += 1
        return self._sock.recvmsg(*a)

    def recvfrom(self, *a):
        self.calls += 1
        return self._sock.recvfrom(*a)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_gro_run_split_into_datagrams():
    """A GSO sender's run arrives in one recvmsg on a UDP_GRO socket; each segment is
    handled on its own: ESP to the TUN, an IKE message of the same size to on_ike."""
    ike = []
    pl = PacketLoop(None, lambda d, l, r: ike.append(d))
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False)
    if not ep.gro:
        pytest.skip("kernel without UDP GRO")
    real = ep.udp
    ep.udp = counting = _CountingRecv(real)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    try:
        pl.add_tunnel("t1", tun)
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
        inners = [_sized(1000, i) for i in range(5)]
        esps = [tx.encrypt(p) for p in inners]
        size = len(esps[0])
        ike_msg = b"\x00\x00\x00\x00" + b"\x21" * (size - 4)
        last = _sized(300, 9)
        run = esps[:3] + [ike_msg] + esps[3:] + [tx.encrypt(last)]
        peer.sendmsg(run, [(socket.SOL_UDP, 103, size.to_bytes(2, sys.byteorder))], 0, ep.local_addr)
        time.sleep(0.01)
        assert pl.pump_udp(ep) == len(run)
        assert counting.calls == 2  # one run, then EAGAIN
        assert _drain(tun.kernel) == inners + [last]
        assert ike == [ike_msg[4:]]
    finally:
        ep.udp = real
        pl.close()
        tun.close()
        peer.close()


@pytest.mark.parametrize("gro", [True, False])
def test_inbound_with_and_without_gro(gro):
    pl = PacketLoop(None, lambda *a: None)
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False, gro=gro)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        pl.add_tunnel("t1", tun)
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
        inners = [_sized(n, i) for i, n in enumerate([100, 1400, 1400, 60, 1400])]
        for p in inners:
            peer.sendto(tx.encrypt(p), ep.local_addr)
        peer.sendto(b"\x99" * 30, ep.local_addr)  # unknown SPI
        time.sleep(0.01)
        assert pl.pump_udp(ep) == 6
        assert _drain(tun.kernel) == inners
        assert pl.global_stats()["drops"]["unknown_spi"] == 1
    finally:
        pl.close()
        tun.close()
        peer.close()


@pytest.mark.parametrize("mode", ["plain", "gro", "gro-run"])
def test_authenticated_esp_from_a_new_address_is_reported(mode, monkeypatch):
    """RFC 7296 §2.23: the peer's newest ESP (top of the replay window) from
    another address or port than the tunnel sends to is reported
    (on_peer_moved), at most once a second. Not reported: forged packets, an
    older authentic packet re-sent from elsewhere, packets from the expected
    address. (pump_raw never reports: raw ESP means no NAT on the path, and a
    raw socket needs root.)"""
    moved = []
    pl = PacketLoop(None, lambda *a: None, on_peer_moved=lambda tid, addr: moved.append((tid, addr)))
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False, gro=mode != "plain")
    if mode != "plain" and not ep.gro:
        pytest.skip("kernel without UDP GRO")
    tun = FakeTun()
    peer, attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    attacker.bind(("127.0.0.1", 0))
    clock = [1000.0]
    monkeypatch.setattr("dataplane.loop.time.monotonic", lambda: clock[0])
    try:
        pl.add_tunnel("t1", tun)
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)

        def seal(n: int) -> list[bytes]:
            return [tx.encrypt(_sized(500, i)) for i in range(n)]

        def send(esps: list[bytes], sock=peer) -> None:
            if mode == "gro-run":
                sock.sendmsg(esps, [(socket.SOL_UDP, 103, len(esps[0]).to_bytes(2, sys.byteorder))],
                             0, ep.local_addr)
            else:
                for e in esps:
                    sock.sendto(e, ep.local_addr)
            time.sleep(0.01)
            pl.pump_udp(ep)
            _drain(tun.kernel)

        def outbound(addr) -> None:
            pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", addr, True)

        here = peer.getsockname()
        outbound(here)
        send(seal(3))
        assert moved == []                                  # from where vgw sends: nothing
        withheld = seal(2)                                  # captured on the way, held back
        send(seal(3))
        send(withheld, attacker)                            # authentic, unseen, but older
        assert pl.stats("t1")["packets_in"] == 8 and moved == []
        outbound(("127.0.0.1", 9))                          # vgw sends elsewhere: the peer moved
        send([e[:-1] + bytes([e[-1] ^ 1]) for e in seal(3)])
        assert moved == [] and pl.stats("t1")["drops"]["bad_icv"] == 3
        send(seal(3))
        assert moved == [("t1", here)]                      # once, not once per packet
        clock[0] += 0.5
        send(seal(2))
        assert len(moved) == 1                              # within the second: not again
        clock[0] += 0.6
        send(seal(2))
        assert moved == [("t1", here)] * 2                  # the daemon did not follow: again
        pl.clear_outbound("t1")
        clock[0] += 2
        send(seal(2))
        assert len(moved) == 2                              # nowhere to send: nothing to move
    finally:
        pl.close()
        tun.close()
        peer.close()
        attacker.close()


class RefusingSocket:
    """An outside socket whose next receives fail as after an ICMP port unreachable
    (ECONNREFUSED), then behave as the real one."""

    def __init__(self, real, errors):
        self.real = real
        self.errors = errors

    def _fail(self):
        if self.errors:
            self.errors -= 1
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    def recvfrom(self, size):
        self._fail()
        return self.real.recvfrom(size)

    def recvmsg(self, *args):
        self._fail()
        return self.real.recvmsg(*args)

    def recv(self, size):
        self._fail()
        raise BlockingIOError

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize("path", ["udp", "udp-gro", "raw"])
def test_receive_errors_are_socket_errors_not_malformed_esp(path):
    """A failed recv read no packet: it is counted as socket_error (visible in
    stats, hence status and metrics), never as malformed ESP, and the loop goes on."""
    pl = PacketLoop(None, lambda *a: None)
    ep = pl.add_endpoint("127.0.0.1", port=0, raw_esp=False, gro=path == "udp-gro")
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        pl.add_tunnel("t1", tun, local_ip="127.0.0.1")
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        if path == "raw":
            ep.raw = RefusingSocket(ep.udp, errors=2)
            pl.pump_raw(ep)
        else:
            ep.udp = RefusingSocket(ep.udp, errors=2)
            peer.sendto(EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB).encrypt(INNER), ep.local_addr)
            time.sleep(0.01)
            pl.pump_udp(ep)
            assert tun.kernel.recv(65535) == INNER   # the packet after the errors got through
        drops = pl.stats("t1")["drops"]
        assert drops["socket_error"] == 2
        assert drops["malformed"] == 0
        assert pl.global_stats()["drops"]["socket_error"] == 0   # charged to the endpoint's tunnel
    finally:
        pl.close()
        tun.close()
        peer.close()
