"""DataPath without root: its tables (SAs, rekeys, shared outside addresses), IKE and
keepalives sent, and the asyncio registration (tests/unit/dataplane/fakes.py: the rig)."""

import asyncio
import socket

from dataplane.datapath import DataPath
from dataplane.esp import EspSa

from .fakes import GCM_KEY_AB, GCM_KEY_BA, INNER, FakeTun, settle


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


def test_driven_by_asyncio():
    """Both directions through a real asyncio loop, add_reader registration and close()."""
    async def main():
        loop = asyncio.get_running_loop()
        pl = DataPath(loop, lambda *a: None)
        ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False)
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
