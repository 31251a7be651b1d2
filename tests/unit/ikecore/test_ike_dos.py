"""Unauthenticated IKE_SA_INIT traffic: cookies, half-open caps, no amplification
(RFC 7296 §2.6; issue: hardening).

The responder's guard is shared by all tunnels of a gateway; here one tunnel
gets its own guard with the settings under test.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct

from ikecore.constants import ExchangeType, HeaderFlag, NotifyType, ProtocolId, TransformType
from ikecore.crypto import get_dh_group
from ikecore.dos import COOKIE_MAC_LEN, DosGuard, DosSettings
from ikecore.message import Header, decode_message, encode_message
from ikecore.payloads import (
    KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload, Transform,
)
from ikecore.endpoint import IkeEndpoint
from .ikepair import ADDR_A, ADDR_B, IkePair, settings_b, seeded_random


def guarded_pair(**settings) -> IkePair:
    pair = IkePair()
    pair.b.endpoint.guard = DosGuard(DosSettings(**settings), random_bytes=seeded_random(9))
    return pair


def _first(pair, side_name: str, n: int = 1) -> list:
    """The first `n` (unencrypted) messages `side_name` sent."""
    return [decode_message(d.data) for d in [d for who, d in pair.wire if who == side_name][:n]]


def test_cookie_when_configured_then_the_handshake_completes():
    pair = guarded_pair(require_cookies=True)
    pair.handshake()
    [first] = _first(pair, "b")
    # HDR(SPIi, 0), N(COOKIE) and nothing else (§2.6)
    assert first.header.spi_r == bytes(8) and first.header.is_response
    assert [type(p) for p in first.payloads] == [NotifyPayload]
    assert first.payloads[0].notify_type == NotifyType.COOKIE
    # the initiator repeated its request with the cookie as the first payload
    requests = _first(pair, "a", 2)
    assert requests[1].exchange == ExchangeType.IKE_SA_INIT and requests[1].message_id == 0
    assert requests[1].payloads[0].notify_type == NotifyType.COOKIE
    assert requests[1].payloads[0].data == first.payloads[0].data
    assert pair.a.endpoint.current.established and pair.b.endpoint.current.established
    assert pair.b.endpoint.guard.counters.cookies_accepted == 1
    assert pair.b.endpoint.guard.half_open == 0      # released once established


def test_the_cookie_is_the_rfc_construction():
    """Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>): recomputed
    here from the guard's secret with hmac, independently of the guard's code."""
    guard = DosGuard(DosSettings(require_cookies=True), random_bytes=seeded_random(5))
    ni, spi = b"\x11" * 32, b"\x22" * 8
    cookie = guard.make("192.0.2.7", spi, ni, 0.0)
    version, secret = guard._secrets[0]
    expected = hmac.new(secret, ni + ipaddress.ip_address("192.0.2.7").packed + spi,
                        hashlib.sha256).digest()[:COOKIE_MAC_LEN]
    assert cookie == bytes([version]) + expected
    assert guard.check(cookie, "192.0.2.7", spi, ni, 1.0)
    assert not guard.check(cookie, "192.0.2.8", spi, ni, 1.0)          # other address
    assert not guard.check(cookie, "192.0.2.7", b"\x23" * 8, ni, 1.0)  # other SPI
    assert not guard.check(cookie, "192.0.2.7", spi, b"\x12" * 32, 1.0)  # other nonce
    assert not guard.check(cookie[:-1], "192.0.2.7", spi, ni, 1.0)


def test_secret_rotation_keeps_the_previous_secret_only():
    s = DosSettings(secret_lifetime=100.0)
    guard = DosGuard(s, random_bytes=seeded_random(6))
    ni, spi = b"\x01" * 16, b"\x02" * 8
    old = guard.make("192.0.2.1", spi, ni, 0.0)
    assert guard.check(old, "192.0.2.1", spi, ni, 150.0)      # one rotation: still good
    assert not guard.check(old, "192.0.2.1", spi, ni, 250.0)  # two rotations: gone
    assert guard.make("192.0.2.1", spi, ni, 250.0) != old


def _init_request(spi_i: bytes, nonce_len: int = 32, nat: bool = True, cookie: bytes | None = None,
                  group: int = 19) -> bytes:
    """A hand-built IKE_SA_INIT request (not vgw's initiator), AES128/SHA2-256."""
    ke = get_dh_group(group).generate()
    proposal = Proposal(1, ProtocolId.IKE, b"", (
        Transform(TransformType.ENCR, 12, 128), Transform(TransformType.PRF, 5),
        Transform(TransformType.INTEG, 12), Transform(TransformType.DH, group)))
    payloads = []
    if cookie is not None:
        payloads.append(NotifyPayload(NotifyType.COOKIE, cookie))
    payloads += [SaPayload([proposal]), KePayload(group, ke.public_bytes),
                 NoncePayload(b"\x33" * nonce_len)]
    if nat:
        payloads += [NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, b"\x00" * 20),
                     NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, b"\x00" * 20)]
    header = Header(spi_i, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0, 0)
    return encode_message(header, payloads)


def _feed(endpoint: IkeEndpoint, data: bytes, source=(ADDR_A, 500), now=0.0) -> list:
    endpoint.receive(data, (ADDR_B, 500), source, now)
    return endpoint.datagrams_to_send()


def test_no_amplification_a_small_request_gets_a_cookie_not_a_bigger_answer():
    """A request that makes the full answer larger than itself is challenged (the
    answer would carry 2x28 bytes of NAT-D and a 32-byte nonce it did not send)."""
    endpoint = IkeEndpoint(settings_b(remote_ip=None))
    small = _init_request(b"\x44" * 8, nonce_len=16, nat=False)
    [answer] = _feed(endpoint, small)
    assert len(answer.data) <= len(small)
    msg = decode_message(answer.data)
    assert [p.notify_type for p in msg.notifies()] == [NotifyType.COOKIE]
    assert endpoint.sas == {} and endpoint.guard.half_open == 0     # no state kept, no DH done
    # the same request with the cookie: now the full answer is allowed
    again = _init_request(b"\x44" * 8, nonce_len=16, nat=False, cookie=msg.payloads[0].data)
    [full] = _feed(endpoint, again)
    reply = decode_message(full.data)
    assert reply.get(SaPayload) and reply.get(KePayload) and reply.header.spi_r != bytes(8)
    assert len(full.data) > len(small)


def test_a_normal_request_is_answered_without_a_cookie():
    endpoint = IkeEndpoint(settings_b(remote_ip=None))
    req = _init_request(b"\x45" * 8)
    [answer] = _feed(endpoint, req)
    assert decode_message(answer.data).get(KePayload) is not None
    assert len(answer.data) <= len(req)


def test_cookies_start_at_the_half_open_threshold():
    endpoint = IkeEndpoint(settings_b(remote_ip=None),
                       DosGuard(DosSettings(cookie_threshold=3), random_bytes=seeded_random(3)))
    kinds = []
    for i in range(5):
        [answer] = _feed(endpoint, _init_request(bytes([0x50 + i]) * 8), source=(f"192.0.2.{10 + i}", 500))
        kinds.append("cookie" if decode_message(answer.data).notify(NotifyType.COOKIE) else "answer")
    assert kinds == ["answer", "answer", "answer", "cookie", "cookie"]
    assert endpoint.guard.half_open == 3


def test_half_open_caps_per_source_and_in_total():
    guard = DosGuard(DosSettings(cookie_threshold=100, max_half_open=5, max_half_open_per_source=2),
                     random_bytes=seeded_random(4))
    endpoint = IkeEndpoint(settings_b(remote_ip=None), guard)
    def kind(answers) -> str:
        if not answers:
            return "none"
        return "cookie" if decode_message(answers[0].data).notify(NotifyType.COOKIE) else "answer"
    got = [kind(_feed(endpoint, _init_request(bytes([0x60 + i]) * 8), source=("192.0.2.20", 500)))
           for i in range(4)]
    # per source: over the cap, a source that has not proved its address is
    # challenged (a spoofer of a CGW's address must not lock the CGW out)
    assert got == ["answer", "answer", "cookie", "cookie"]
    assert guard.half_open == 2
    got = [kind(_feed(endpoint, _init_request(bytes([0x70 + i]) * 8), source=(f"192.0.2.{30 + i}", 500)))
           for i in range(5)]
    assert got == ["answer", "answer", "answer", "none", "none"]   # 5 in total
    assert guard.counters.dropped_total_cap == 2
    # half-open SAs expire (policy.half_open_timeout) and free their places
    endpoint.handle_timer(endpoint.settings.half_open_timeout + 1)
    assert guard.half_open == 0
    assert _feed(endpoint, _init_request(b"\x7f" * 8), source=("192.0.2.20", 500), now=40.0)


def test_one_guard_counts_all_tunnels():
    guard = DosGuard(DosSettings(cookie_threshold=2), random_bytes=seeded_random(7))
    t1 = IkeEndpoint(settings_b(remote_ip=None), guard)
    t2 = IkeEndpoint(settings_b(remote_ip=None, local_ip="198.51.100.99"), guard)
    _feed(t1, _init_request(b"\x81" * 8), source=("192.0.2.40", 500))
    t2.receive(_init_request(b"\x82" * 8), ("198.51.100.99", 500), ("192.0.2.41", 500), 0.0)
    t2.datagrams_to_send()
    [answer] = _feed(t1, _init_request(b"\x83" * 8), source=("192.0.2.42", 500))
    assert decode_message(answer.data).notify(NotifyType.COOKIE)


def test_a_forged_cookie_is_challenged_again():
    pair_guard = DosGuard(DosSettings(require_cookies=True), random_bytes=seeded_random(8))
    endpoint = IkeEndpoint(settings_b(remote_ip=None), pair_guard)
    forged = _init_request(b"\x91" * 8, cookie=b"\x00" * (1 + COOKIE_MAC_LEN))
    [answer] = _feed(endpoint, forged)
    assert decode_message(answer.data).notify(NotifyType.COOKIE)
    assert pair_guard.counters.cookies_rejected == 1 and endpoint.sas == {}
    assert struct.unpack("!I", answer.data[24:28])[0] == len(answer.data)


def test_new_sas_are_rate_limited():
    guard = DosGuard(DosSettings(max_new_per_second=3, max_half_open_per_source=100),
                     random_bytes=seeded_random(10))
    endpoint = IkeEndpoint(settings_b(remote_ip=None), guard)
    got = [bool(_feed(endpoint, _init_request(bytes([0xa0 + i]) * 8), source=(f"192.0.2.{50 + i}", 500),
                      now=0.0)) for i in range(5)]
    assert got == [True, True, True, False, False] and guard.counters.dropped_rate == 2
    # one second later the bucket has refilled
    assert _feed(endpoint, _init_request(b"\xaf" * 8), source=("192.0.2.60", 500), now=1.0)
