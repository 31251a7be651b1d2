"""Hardening of the IKE core against what the lab attacks found (issue 8,
tests/lab/test_hardening.py): the work per unauthenticated message must not
grow with the number of half-open SAs, the established SA's drops are visible,
and no DH group costs far more than its exponentiation.
"""

import os

import pytest

from ikecore.constants import DhId
from ikecore.crypto import get_dh_group
from ikecore.dos import DosGuard, DosSettings
from ikecore.message import Header, encode_message
from ikecore.payloads import NotifyPayload
from ikecore.sa import IkeSa
from ikecore.state import IkeState
from ikecore.endpoint import IkeEndpoint
from .ikepair import ADDR_A, ADDR_B, IkePair, Side, settings_a, settings_b

FLOOD = "203.0.113.{}"


def init_request(src: str, group: int = 19) -> bytes:
    """A real IKE_SA_INIT request from an initiator at `src` (vgw's own core)."""
    t = IkeEndpoint(settings_a(local_ip=src, phase1_dh_groups=(group,), random_bytes=os.urandom))
    t.initiate(0.0)
    [d] = t.datagrams_to_send()
    return d.data


def open_half_open(endpoint: IkeEndpoint, count: int, now: float, spread: float = 0.01) -> None:
    """`count` half-open SAs from the flood's addresses, within `spread` s from `now`."""
    request = init_request(FLOOD.format(1))
    for i in range(count):
        endpoint.receive(os.urandom(8) + request[8:], (ADDR_B, 500), (FLOOD.format(i % 250 + 1), 500),
                       now + i * spread / count)
        endpoint.datagrams_to_send()
        while endpoint.next_event():
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


def responder(**kw) -> IkeEndpoint:
    guard = DosGuard(DosSettings(cookie_threshold=10_000, max_half_open_per_source=10_000,
                                 max_new_per_second=10_000))
    return IkeEndpoint(settings_b(remote_ip=None, **kw), guard)


@pytest.mark.parametrize("half_open", [10, 400])
def test_work_per_message_does_not_grow_with_half_open_sas(monkeypatch, half_open):
    """Found by the flood test: with 1,024 half-open SAs every IKE message and
    every timer walked all of them (0.6 ms per message, 2,000 messages a second:
    the data path starved)."""
    pair = IkePair(settings_a(), settings_b(remote_ip=None))
    pair.handshake()
    endpoint = pair.b.endpoint
    endpoint.guard.settings = DosSettings(cookie_threshold=10_000, max_half_open_per_source=10_000,
                                        max_new_per_second=10_000)
    open_half_open(endpoint, half_open, pair.now, spread=1.0)
    pair.now += 1.0
    assert endpoint.guard.half_open == half_open
    counter = CallCounter(monkeypatch)
    sa = endpoint.current
    junk = Header(sa.spi_i, sa.spi_r, 0, 37, 0x08, 99, 0)
    for _ in range(10):
        endpoint.receive(encode_message(junk, [NotifyPayload(16384)]), (ADDR_B, 500), (ADDR_A, 500), pair.now)
        endpoint.next_deadline()
        endpoint.handle_timer(pair.now)
    open_half_open(endpoint, 10, pair.now)
    assert counter.calls < 250, f"{counter.calls} SA method calls for 30 messages and 10 timers"
    assert endpoint.current is sa and sa.state == IkeState.ESTABLISHED


def test_half_open_sas_expire_in_order_and_free_their_slots():
    endpoint = responder()
    for step in range(3):
        open_half_open(endpoint, 5, now=float(step))
    assert endpoint.guard.half_open == 15
    timeout = endpoint.settings.half_open_timeout
    assert endpoint.next_deadline() == timeout
    endpoint.handle_timer(timeout + 1.5)        # the first two batches are due
    assert endpoint.guard.half_open == 5
    assert endpoint.next_deadline() == timeout + 2.0
    endpoint.handle_timer(timeout + 2.5)
    assert endpoint.guard.half_open == 0 and endpoint.next_deadline() is None
    assert not endpoint.sas and not endpoint._init_index and not endpoint._half_open and not endpoint._active


def test_status_shows_what_the_established_sa_dropped():
    """The fuzz campaign's messages with the real SPIs were dropped by the SA
    and counted nowhere that `vgw status` showed."""
    pair = IkePair(settings_a(), settings_b())
    pair.handshake()
    endpoint = pair.b.endpoint
    sa = endpoint.current
    expected = sa.expected_request_id
    for mid, body in ((expected, b"\x00" * 64), (expected + 5, b"")):   # a forged SK; a far message ID
        header = Header(sa.spi_i, sa.spi_r, 46 if body else 41, 37, 0x08, mid, 0)
        data = header.encode() + (bytes([0, 0, 0, 4 + len(body)]) + body if body else b"\0\0\0\x08\0\0\x40\0")
        data = data[:24] + len(data).to_bytes(4, "big") + data[28:]
        endpoint.receive(data, (ADDR_B, 500), (ADDR_A, 500), pair.now)
    counters = endpoint.status(pair.now)["ike"]["counters"]
    assert counters["dropped_unauthenticated"] == 1 and counters["dropped_bad_message_id"] == 1
    assert endpoint.current is sa and sa.state == IkeState.ESTABLISHED


@pytest.mark.parametrize("dh_id", [DhId.MODP1024, DhId.MODP1536, DhId.MODP2048, DhId.MODP2048_224])
def test_the_peer_modp_value_is_loaded_the_cheap_way(dh_id, monkeypatch):
    """Group 2 is not a named group to OpenSSL: loading the peer's key through
    DHPublicNumbers re-checked the prime every time (36 ms, 300 times group 5's
    0.12 ms; commit acee697). Since the MODP groups moved to gmpy2, the peer's
    value costs the RFC 6989 checks (for 22-24 one public exponentiation) and one
    constant-time exponentiation, nothing else: no primality test, nothing of
    cryptography's finite-field DH (a structural check: no timing on a shared
    machine)."""
    import gmpy2

    import ikecore.crypto.dh as dhmod
    group = get_dh_group(dh_id)
    a, b = group.generate(), group.generate()
    secret, public = [], []
    real_sec, real_pow = gmpy2.powmod_sec, gmpy2.powmod

    def refuse(*args, **kw):
        raise AssertionError("a primality test or another check of the prime")
    monkeypatch.setattr(dhmod.gmpy2, "powmod_sec", lambda *x: secret.append(x) or real_sec(*x))
    monkeypatch.setattr(dhmod.gmpy2, "powmod", lambda *x: public.append(x) or real_pow(*x))
    for name in ("is_prime", "is_strong_prp", "is_bpsw_prp", "next_prime"):
        monkeypatch.setattr(dhmod.gmpy2, name, refuse)
    assert a.shared_secret(b.public_bytes) == b.shared_secret(a.public_bytes)
    assert len(secret) == 2
    assert len(public) == (2 if dh_id == DhId.MODP2048_224 else 0)   # y^q = 1, RFC 6989 §2.2
    assert not hasattr(dhmod, "_dh")


def test_a_spoofer_of_the_cgw_address_cannot_lock_the_cgw_out():
    """Found by tests/lab/test_hardening.py: 8 IKE_SA_INITs with the customer
    gateway's address every 30 s filled its per-source cap with half-open SAs,
    and the real CGW was dropped (dropped_source_cap) for as long as that went
    on. Now a source over the cap is challenged; the real CGW returns the
    cookie and gets in, the spoofer cannot."""
    guard = DosGuard(DosSettings(), random_bytes=os.urandom)
    endpoint = IkeEndpoint(settings_b(), guard)          # remote_ip: the CGW, ADDR_A
    spoofed = init_request(ADDR_A)
    for _ in range(20):
        endpoint.receive(os.urandom(8) + spoofed[8:], (ADDR_B, 500), (ADDR_A, 500), 0.0)
        endpoint.datagrams_to_send()
    assert guard.half_open == 8
    pair = IkePair(settings_a(), settings_b(), now=1.0)
    pair.b = Side("b", endpoint)                     # the real CGW talks to the same tunnel
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
    pair = IkePair(settings_a(), settings_b())
    pair.initiate()
    [init] = pair.outgoing(pair.a)
    b = pair.b.endpoint
    b.receive(init.data, init.remote, init.local, pair.now)
    [answer] = b.datagrams_to_send()
    junk = init.data[:16] + bytes([41, 0x20, 34, 0x08]) + bytes(4) + (36).to_bytes(4, "big") \
        + bytes([0, 0, 0, 8, 0, 0, 0x40, 0])
    b.receive(junk, init.remote, init.local, pair.now)
    assert b.datagrams_to_send() == []
    b.receive(init.data, init.remote, init.local, pair.now)
    assert [d.data for d in b.datagrams_to_send()] == [answer.data]

    pair = IkePair(settings_a(), settings_b(remote_ip=None))       # any CGW address
    pair.handshake()
    b, sa = pair.b.endpoint, pair.b.endpoint.current
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


def _auth_replay_setup(**b):
    """An established pair and B's view of A's IKE_AUTH request (a capture)."""
    pair = IkePair(settings_a(), settings_b(**b))
    pair.handshake()
    b, sa = pair.b.endpoint, pair.b.endpoint.current
    auth = [d for who, d in pair.wire if who == "a"][1]
    assert auth.data[18] == 35                     # IKE_AUTH (the exchange type octet)
    return pair, b, sa, auth


@pytest.mark.parametrize("cgw_ip", [True, False], ids=["cgw-ip", "any-address"])
def test_a_replayed_request_reflects_nothing_to_another_address(cgw_ip):
    """A captured request passes the integrity check wherever it comes from:
    replayed from a victim's address it must not buy the cached answer, which
    is larger (RFC 7296 §2.1). With a configured CGW IP it is dropped as from an
    unknown peer; without one (any address), the SA answers only where its peer is."""
    pair, b, sa, auth = _auth_replay_setup(**({} if cgw_ip else {"remote_ip": None}))
    for i in range(5):
        b.receive(auth.data, auth.remote, ("192.0.2.99", 500 + i), pair.now + i * 2)
        assert b.datagrams_to_send() == []
    if cgw_ip:
        assert b.counters.dropped_unknown_peer == 5
    else:
        assert sa.counters.resends_refused == 5
    assert sa.counters.retransmitted_responses == 0
    assert sa.remote == (auth.local[0], auth.local[1])   # and the SA did not move


def test_resends_of_the_cached_response_are_spaced_and_capped():
    """From the peer's own address a retransmission is answered again, but at
    most RESEND_MAX times and RESEND_INTERVAL apart: a replayed capture cannot
    turn vgw into a stream of answers."""
    from ikecore.sa import RESEND_INTERVAL, RESEND_MAX
    pair, b, sa, auth = _auth_replay_setup()
    src = auth.local
    t = pair.now
    b.receive(auth.data, auth.remote, src, t)
    assert [d.data for d in b.datagrams_to_send()] == sa.cached_response[1]
    b.receive(auth.data, auth.remote, src, t + RESEND_INTERVAL / 2)    # too soon
    assert b.datagrams_to_send() == []
    answered = 1
    for i in range(1, 3 * RESEND_MAX):
        b.receive(auth.data, auth.remote, src, t + i * RESEND_INTERVAL)
        answered += len(b.datagrams_to_send()) > 0
    assert answered == RESEND_MAX
    assert sa.counters.retransmitted_responses == RESEND_MAX
    assert sa.established and pair.b.downs == []


def test_resend_budget_is_per_request():
    """The cap counts resends of one cached response: the next request answered
    starts again from zero."""
    from ikecore.sa import RESEND_MAX
    pair, b, sa, auth = _auth_replay_setup()
    for i in range(RESEND_MAX + 2):
        b.receive(auth.data, auth.remote, auth.local, pair.now + 2 * i)
    b.datagrams_to_send()
    pair.now += 2 * (RESEND_MAX + 2)
    pair.liveness(pair.a)                          # a new request, a new cached response
    assert pair.transfer(pair.a) == 1
    [dpd] = [d for who, d in pair.wire if who == "a"][-1:]
    pair.outgoing(pair.b)
    b.receive(dpd.data, dpd.remote, dpd.local, pair.now + 5)
    assert len(b.datagrams_to_send()) == 1


def test_an_ikev1_message_is_dropped_with_a_message_saying_why():
    """RFC 7296 §2.5: another major version is dropped. vgw sends no
    unauthenticated INVALID_MAJOR_VERSION (an answer to junk from anywhere) but
    counts it and tells the operator what the customer gateway got wrong."""
    pair = IkePair(settings_a(), settings_b())
    pair.initiate()
    [init] = pair.outgoing(pair.a)
    v1 = bytearray(init.data)
    v1[17] = 0x10                                  # version 1.0: IKEv1 (RFC 2408 §3.1)
    pair.b.endpoint.receive(bytes(v1), init.remote, init.local, pair.now)
    assert pair.b.endpoint.datagrams_to_send() == []
    assert pair.b.endpoint.counters.dropped_version == 1
    assert pair.b.endpoint.counters.dropped_malformed == 0
    assert any("IKEv2 only" in line and ADDR_A in line for line in pair.b.logs)
    assert pair.b.sas == []


def test_an_exception_inside_an_sa_loses_no_half_open_slot():
    """A bug that raises inside a new responder SA must not leave the SA holding
    a slot of the DoS caps with no timer to free it: repeated with fresh SPIs it
    would fill max_half_open and lock every customer gateway out."""
    guard = DosGuard(settings=DosSettings(max_half_open=4))
    endpoint = IkeEndpoint(settings_b(remote_ip=None), guard)

    def broken(self, *args):
        raise RuntimeError("bug")
    pair = IkePair(settings_a(), settings_b())
    pair.initiate()
    [init] = pair.outgoing(pair.a)
    original = IkeSa.receive
    IkeSa.receive = broken
    try:
        for i in range(10):
            data = bytes([i + 1]) + init.data[1:]            # a fresh SPIi each time
            endpoint.receive(data, init.remote, init.local, float(i))
    finally:
        IkeSa.receive = original
    assert guard.half_open == 0 and endpoint.sas == {} and endpoint._half_open == {}
    assert endpoint.counters.internal_errors == 10
    endpoint.receive(init.data, init.remote, init.local, 20.0)   # the real CGW still gets in
    assert len(endpoint.datagrams_to_send()) == 1 and guard.half_open == 1


def test_a_timer_that_raises_ends_its_sa_and_no_other():
    """One SA whose timer raises is torn down (else its deadline stays in the
    past and the loop spins); the tunnel and its other work go on."""
    pair = IkePair(settings_a(), settings_b())
    pair.handshake()
    b_sa = pair.b.endpoint.current

    def broken(name, now):
        raise RuntimeError("bug")
    b_sa._fire = broken
    deadline = pair.b.endpoint.next_deadline()
    pair.b.endpoint.handle_timer(deadline)
    pair.b.drain()
    assert pair.b.endpoint.counters.internal_errors == 1
    assert b_sa.dead and [d.reason for d in pair.b.downs] == ["error"]
    assert pair.b.endpoint.next_deadline() is None or pair.b.endpoint.next_deadline() > deadline
