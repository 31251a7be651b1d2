"""Emulated per-tunnel limits in the DataPath (dataplane/limits.py), without root:
loopback UDP outside, a socketpair TUN (tests/unit/dataplane/fakes.py).

The limits below refill one packet (or 8,000 bits) per second with a burst of 10 s,
so within a test's fraction of a second a bucket admits its burst and not one packet
more: the counts are exact."""

import socket
import sys
import time

import pytest

from dataplane.datapath import DataPath
from dataplane.esp import EspSa
from dataplane.limits import TunnelLimits

from .fakes import GCM_KEY_AB, GCM_KEY_BA, FakeTun, drain, sized

BURST_10 = TunnelLimits(bits_per_second=10**9, packets_per_second=1, burst_seconds=10)  # 10 packets
BITS_100K = TunnelLimits(bits_per_second=80_000, packets_per_second=10**6, burst_seconds=10)  # 100,000 bytes


def _send_inbound(peer, ep, inners, tx=None):
    tx = tx or EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
    for p in inners:
        peer.sendto(tx.encrypt(p), ep.local_addr)
    time.sleep(0.02)


def _pump_all(pump, arg):
    while pump(arg):
        pass


def test_inbound_over_the_packet_budget_drops_exactly_the_excess(rig):
    pl, ep, tun, peer, _ = rig
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    pl.set_limits("t1", BURST_10)
    inners = [sized(200, i) for i in range(25)]
    _send_inbound(peer, ep, inners)
    _pump_all(pl.pump_udp, ep)
    assert drain(tun.kernel) == inners[:10]
    s = pl.stats("t1")
    assert s["drops"]["rate_limit"] == 15
    assert (s["packets_in"], s["bytes_in"]) == (10, 2000)   # TunnelDataIn: what entered the VPC
    assert (s["limits"]["dropped_in"], s["limits"]["dropped_out"]) == (15, 0)


def test_outbound_over_the_packet_budget_drops_exactly_the_excess(rig):
    pl, ep, tun, peer, _ = rig
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
    pl.set_limits("t1", BURST_10)
    inners = [sized(200, i) for i in range(25)]
    for p in inners:
        tun.kernel.send(p)
    _pump_all(pl.pump_tun, pl.binding("t1"))
    rx = EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA)
    assert [rx.decrypt(d) for d in drain(peer)] == inners[:10]
    s = pl.stats("t1")
    assert s["drops"]["rate_limit"] == 15
    assert (s["packets_out"], s["bytes_out"]) == (10, 2000)
    assert (s["limits"]["dropped_in"], s["limits"]["dropped_out"]) == (0, 15)


def test_the_bit_budget_binds_big_packets_in_both_directions(rig):
    pl, ep, tun, peer, _ = rig
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    pl.set_outbound("t1", EspSa(0x2002, "aes-gcm-16", GCM_KEY_BA), "127.0.0.1", peer.getsockname(), True)
    pl.set_limits("t1", BITS_100K)
    inners = [sized(1000, i % 256) for i in range(130)]
    for p in inners:                     # out: 100 of 1,000 bytes fit, each direction its own bucket
        tun.kernel.send(p)
    _pump_all(pl.pump_tun, pl.binding("t1"))
    assert len(drain(peer)) == 100
    tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
    for chunk in (inners[:60], inners[60:]):   # in: the same budget again
        _send_inbound(peer, ep, chunk, tx)
        _pump_all(pl.pump_udp, ep)
    assert drain(tun.kernel) == inners[:100]
    assert pl.stats("t1")["drops"]["rate_limit"] == 60


def test_a_gro_run_counts_as_its_segments():
    """One recvmsg returns a UDP GRO run of 20 ESP packets: the bucket sees 20 packets."""
    pl = DataPath(None, lambda *a: None)
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False)
    tun = FakeTun()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    try:
        if not ep.gro:
            pytest.skip("kernel without UDP GRO")
        pl.add_tunnel("t1", tun, local_ip="127.0.0.1")
        pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
        pl.set_limits("t1", BURST_10)
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)
        inners = [sized(500, i) for i in range(20)]
        esps = [tx.encrypt(p) for p in inners]
        peer.sendmsg(esps, [(socket.SOL_UDP, 103, len(esps[0]).to_bytes(2, sys.byteorder))], 0, ep.local_addr)
        time.sleep(0.02)
        assert pl.pump_udp(ep) == 20
        assert drain(tun.kernel) == inners[:10]
        assert pl.stats("t1")["drops"]["rate_limit"] == 10
    finally:
        pl.close()
        tun.close()
        peer.close()


def test_limits_lifted_and_set_again(rig):
    """None lifts the limits (nothing dropped, the drop count stays); the same
    limits twice keep the bucket (an empty one stays empty)."""
    pl, ep, tun, peer, _ = rig
    pl.install_inbound("t1", EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB))
    tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY_AB)

    def offer(n):
        for i in range(n):
            peer.sendto(tx.encrypt(sized(100, i)), ep.local_addr)
        time.sleep(0.02)
        _pump_all(pl.pump_udp, ep)
        return len(drain(tun.kernel, timeout=0.2))

    pl.set_limits("t1", BURST_10)
    assert offer(12) == 10
    pl.set_limits("t1", TunnelLimits(bits_per_second=10**9, packets_per_second=1, burst_seconds=10))
    assert offer(3) == 0                      # equal limits: the same, empty bucket
    pl.set_limits("t1", None)
    assert offer(40) == 40
    s = pl.stats("t1")
    assert s["drops"]["rate_limit"] == 5 and s["limits"] is None
    pl.set_limits("t1", BURST_10)             # new limits: a full bucket
    assert offer(11) == 10


def test_without_limits_the_binding_has_no_bucket(rig):
    pl, *_ = rig
    b = pl.binding("t1")
    assert (b.limit_in, b.limit_out, pl.stats("t1")["limits"]) == (None, None, None)
    assert pl.stats("t1")["drops"]["rate_limit"] == 0
