"""Hardening of the IKE core against what the lab attacks found (issue 8,
tests/lab/test_hardening.py): the work per unauthenticated message must not
grow with the number of half-open SAs, the established SA's drops are visible,
and no DH group costs far more than its exponentiation.
"""

import os
import time

import pytest

from ikecore.constants import DhId
from ikecore.crypto import get_dh_group
from ikecore.dos import DosGuard, DosSettings
from ikecore.message import Header, encode_message
from ikecore.payloads import NotifyPayload
from ikecore.sa import IkeSa, State
from ikecore.tunnel import IkeTunnel
from ikepair import ADDR_A, ADDR_B, IkePair, Side, policy_a, policy_b

FLOOD = "203.0.113.{}"


def init_request(src: str, group: int = 19) -> bytes:
    """A real IKE_SA_INIT request from an initiator at `src` (vgw's own core)."""
    t = IkeTunnel(policy_a(local_ip=src, phase1_dh_groups=(group,), random_bytes=os.urandom))
    t.initiate(0.0)
    [d] = t.datagrams_to_send()
    return d.data


def open_half_open(tunnel: IkeTunnel, count: int, now: float, spread: float = 0.01) -> None:
    """`count` half-open SAs from the flood's addresses, within `spread` s from `now`."""
    request = init_request(FLOOD.format(1))
    for i in range(count):
        tunnel.receive(os.urandom(8) + request[8:], (ADDR_B, 500), (FLOOD.format(i % 250 + 1), 500),
                       now + i * spread / count)
        tunnel.datagrams_to_send()
        while tunnel.next_event():
            pass


class CallCounter:
    """Counts calls of IkeSa methods that any walk over the SAs makes."""

    def __init__(self, monkeypatch):
        self.calls = 0
        for name in ("next_deadline", "datagrams_to_send", "next_event"):
            original = getattr(IkeSa, name)

            def counted(sa, *a, _original=original, **kw):
                self.calls += 1
                return _original(sa, *a, **kw)
            monkeypatch.setattr(IkeSa, name, counted)


def responder(**kw) -> IkeTunnel:
    guard = DosGuard(DosSettings(cookie_threshold=10_000, max_half_open_per_source=10_000,
                                 max_new_per_second=10_000))
    return IkeTunnel(policy_b(remote_ip=None, **kw), guard)


@pytest.mark.parametrize("half_open", [10, 400])
def test_work_per_message_does_not_grow_with_half_open_sas(monkeypatch, half_open):
    """Found by the flood test: with 1,024 half-open SAs every IKE message and
    every timer walked all of them (0.6 ms per message, 2,000 messages a second:
    the data path starved)."""
    pair = IkePair(policy_a(), policy_b(remote_ip=None))
    pair.handshake()
    tunnel = pair.b.tunnel
    tunnel.guard.settings = DosSettings(cookie_threshold=10_000, max_half_open_per_source=10_000,
                                        max_new_per_second=10_000)
    open_half_open(tunnel, half_open, pair.now, spread=1.0)
    pair.now += 1.0
    assert tunnel.guard.half_open == half_open
    counter = CallCounter(monkeypatch)
    sa = tunnel.current
    junk = Header(sa.spi_i, sa.spi_r, 0, 37, 0x08, 99, 0)
    for _ in range(10):
        tunnel.receive(encode_message(junk, [NotifyPayload(16384)]), (ADDR_B, 500), (ADDR_A, 500), pair.now)
        tunnel.next_deadline()
        tunnel.handle_timer(pair.now)
    open_half_open(tunnel, 10, pair.now)
    assert counter.calls < 250, f"{counter.calls} SA method calls for 30 messages and 10 timers"
    assert tunnel.current is sa and sa.state == State.ESTABLISHED


def test_half_open_sas_expire_in_order_and_free_their_slots():
    tunnel = responder()
    for step in range(3):
        open_half_open(tunnel, 5, now=float(step))
    assert tunnel.guard.half_open == 15
    timeout = tunnel.policy.half_open_timeout
    assert tunnel.next_deadline() == timeout
    tunnel.handle_timer(timeout + 1.5)        # the first two batches are due
    assert tunnel.guard.half_open == 5
    assert tunnel.next_deadline() == timeout + 2.0
    tunnel.handle_timer(timeout + 2.5)
    assert tunnel.guard.half_open == 0 and tunnel.next_deadline() is None
    assert not tunnel.sas and not tunnel._init_index and not tunnel._half_open and not tunnel._active


def test_status_shows_what_the_established_sa_dropped():
    """The fuzz campaign's messages with the real SPIs were dropped by the SA
    and counted nowhere that `vgw status` showed."""
    pair = IkePair(policy_a(), policy_b())
    pair.handshake()
    tunnel = pair.b.tunnel
    sa = tunnel.current
    expected = sa.expected_request_id
    for mid, body in ((expected, b"\x00" * 64), (expected + 5, b"")):   # a forged SK; a far message ID
        header = Header(sa.spi_i, sa.spi_r, 46 if body else 41, 37, 0x08, mid, 0)
        data = header.encode() + (bytes([0, 0, 0, 4 + len(body)]) + body if body else b"\0\0\0\x08\0\0\x40\0")
        data = data[:24] + len(data).to_bytes(4, "big") + data[28:]
        tunnel.receive(data, (ADDR_B, 500), (ADDR_A, 500), pair.now)
    counters = tunnel.status(pair.now)["ike"]["counters"]
    assert counters["dropped_unauthenticated"] == 1 and counters["dropped_bad_message_id"] == 1
    assert tunnel.current is sa and sa.state == State.ESTABLISHED


def test_no_modp_group_costs_far_more_than_its_exponentiation():
    """Group 2 is not a named group to OpenSSL: loading the peer's key through
    DHPublicNumbers re-checked the prime every time (36 ms, 300 times group 5's
    0.12 ms). Compared with group 5 (1536 bits, named) so the bound does not
    depend on the machine's speed."""
    def cost(dh_id: DhId) -> float:
        group = get_dh_group(dh_id)
        a, b = group.generate(), group.generate()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            a.shared_secret(b.public_bytes)
            best = min(best, time.perf_counter() - start)
        return best
    assert cost(DhId.MODP1024) < 20 * cost(DhId.MODP1536)


def test_a_spoofer_of_the_cgw_address_cannot_lock_the_cgw_out():
    """Found by tests/lab/test_hardening.py: 8 IKE_SA_INITs with the customer
    gateway's address every 30 s filled its per-source cap with half-open SAs,
    and the real CGW was dropped (dropped_source_cap) for as long as that went
    on. Now a source over the cap is challenged; the real CGW returns the
    cookie and gets in, the spoofer cannot."""
    guard = DosGuard(DosSettings(), random_bytes=os.urandom)
    tunnel = IkeTunnel(policy_b(), guard)          # remote_ip: the CGW, ADDR_A
    spoofed = init_request(ADDR_A)
    for _ in range(20):
        tunnel.receive(os.urandom(8) + spoofed[8:], (ADDR_B, 500), (ADDR_A, 500), 0.0)
        tunnel.datagrams_to_send()
    assert guard.half_open == 8
    pair = IkePair(policy_a(), policy_b(), now=1.0)
    pair.b = Side("b", tunnel)                     # the real CGW talks to the same tunnel
    pair.initiate()
    pair.run()
    assert pair.a.ups and pair.b.ups, "the customer gateway did not get in"
    assert guard.counters.cookies_accepted == 1 and guard.counters.dropped_source_cap == 0


def test_only_a_true_retransmission_gets_the_cached_response():
    """RFC 7296 §2.1: a retransmitted request is bitwise identical to the original.
    Any message with the right SPIs and the answered message ID made vgw send
    its cached response again, to wherever the message came from: junk of 36
    bytes bought a 450-byte IKE_SA_INIT answer (from a spoofed address: a
    reflection with amplification), or an IKE_AUTH answer. Now IKE_SA_INIT must
    be the very request, anything later must pass its integrity check."""
    pair = IkePair(policy_a(), policy_b())
    pair.initiate()
    [init] = pair.outgoing(pair.a)
    b = pair.b.tunnel
    b.receive(init.data, init.remote, init.local, pair.now)
    [answer] = b.datagrams_to_send()
    junk = init.data[:16] + bytes([41, 0x20, 34, 0x08]) + bytes(4) + (36).to_bytes(4, "big") \
        + bytes([0, 0, 0, 8, 0, 0, 0x40, 0])
    b.receive(junk, init.remote, init.local, pair.now)
    assert b.datagrams_to_send() == []
    b.receive(init.data, init.remote, init.local, pair.now)
    assert [d.data for d in b.datagrams_to_send()] == [answer.data]

    pair = IkePair(policy_a(), policy_b())
    pair.handshake()
    b, sa = pair.b.tunnel, pair.b.tunnel.current
    auth = [d for who, d in pair.wire if who == "a"][1]          # the IKE_AUTH request
    mid = sa.cached_response[0]
    forged = bytearray(auth.data)
    forged[-1] ^= 1                                              # its ICV
    empty_sk = auth.data[:24] + (32).to_bytes(4, "big") + bytes([0, 0, 0, 4])
    for data in (bytes(forged), empty_sk):
        b.receive(data, auth.remote, ("192.0.2.99", 500), pair.now)
        assert b.datagrams_to_send() == [], f"answered {len(data)} bytes of junk with message ID {mid}"
    b.receive(auth.data, auth.remote, auth.local, pair.now)
    assert [d.data for d in b.datagrams_to_send()] == sa.cached_response[1]
    assert sa.counters.dropped_unauthenticated == 2
