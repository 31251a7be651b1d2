"""The receive path without root: UDP (with and without GRO) and raw-socket reads,
ESP to the TUN, IKE and keepalives beside it, drops, peer moves
(tests/unit/dataplane/fakes.py: the rig)."""

import errno
import socket
import sys
import time

import pytest

from dataplane.datapath import DataPath
from dataplane.esp import EspSa

from .fakes import GCM_KEY_AB, GCM_KEY_BA, INNER, FakeTun, drain, settle, sized


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


def test_ike_callback_error_does_not_stop_the_data_path(rig):
    pl, ep, tun, peer, _ = rig
    pl.receiver.on_ike = lambda *a: 1 / 0
    tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    peer.sendto(b"\x00" * 40, ep.local_addr)
    peer.sendto(tx.encrypt(INNER), ep.local_addr)
    settle(pl, ep)
    assert tun.kernel.recv(65535) == INNER
    assert pl.global_stats()["errors"] == 1


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
    pl = DataPath(None, lambda d, l, r: ike.append(d))
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False)
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
        inners = [sized(1000, i) for i in range(5)]
        esps = [tx.encrypt(p) for p in inners]
        size = len(esps[0])
        ike_msg = b"\x00\x00\x00\x00" + b"\x21" * (size - 4)
        last = sized(300, 9)
        run = esps[:3] + [ike_msg] + esps[3:] + [tx.encrypt(last)]
        peer.sendmsg(run, [(socket.SOL_UDP, 103, size.to_bytes(2, sys.byteorder))], 0, ep.local_addr)
        time.sleep(0.01)
        assert pl.pump_udp(ep) == len(run)
        assert counting.calls == 2  # one run, then EAGAIN
        assert drain(tun.kernel) == inners + [last]
        assert ike == [ike_msg[4:]]
    finally:
        ep.udp = real
        pl.close()
        tun.close()
        peer.close()


@pytest.mark.parametrize("gro", [True, False])
def test_inbound_with_and_without_gro(gro):
    pl = DataPath(None, lambda *a: None)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gro=gro)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        pl.add_tunnel("t1", tun)
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
        inners = [sized(n, i) for i, n in enumerate([100, 1400, 1400, 60, 1400])]
        for p in inners:
            peer.sendto(tx.encrypt(p), ep.local_addr)
        peer.sendto(b"\x99" * 30, ep.local_addr)  # unknown SPI
        time.sleep(0.01)
        assert pl.pump_udp(ep) == 6
        assert drain(tun.kernel) == inners
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
    pl = DataPath(None, lambda *a: None, on_peer_moved=lambda tid, addr: moved.append((tid, addr)))
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gro=mode != "plain")
    if mode != "plain" and not ep.gro:
        pytest.skip("kernel without UDP GRO")
    tun = FakeTun()
    peer, attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    attacker.bind(("127.0.0.1", 0))
    clock = [1000.0]
    monkeypatch.setattr("dataplane.receive.time.monotonic", lambda: clock[0])
    try:
        pl.add_tunnel("t1", tun)
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)

        def seal(n: int) -> list[bytes]:
            return [tx.encrypt(sized(500, i)) for i in range(n)]

        def send(esps: list[bytes], sock=peer) -> None:
            if mode == "gro-run":
                sock.sendmsg(esps, [(socket.SOL_UDP, 103, len(esps[0]).to_bytes(2, sys.byteorder))],
                             0, ep.local_addr)
            else:
                for e in esps:
                    sock.sendto(e, ep.local_addr)
            time.sleep(0.01)
            pl.pump_udp(ep)
            drain(tun.kernel)

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
    stats, hence status and metrics), never as malformed ESP, and the data path goes on."""
    pl = DataPath(None, lambda *a: None)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False, gro=path == "udp-gro")
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
