"""IKE fragmentation (RFC 7383), two vgw cores back to back (ikepair) and the
reassembler on its own: the wire format checked with an independent opener
(hmac / AES written here from RFC 7296 §3.14 and RFC 7383 §2.5), loss,
reordering, duplicates, a bad fragment, retransmissions and the limits.

Large messages come from certificate authentication with an RSA chain (an
intermediate CA): IKE_AUTH of about 2.5 KB each way, cut for a 576-byte path.
"""

from __future__ import annotations

import hmac
import struct
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from daemon import pki
from ikecore import fragment
from ikecore.certs import LocalCredentials, TrustAnchors, der, private_key_der
from ikecore.constants import ExchangeType, PayloadType
from ikecore.crypto import get_sk_cipher
from ikecore.events import Datagram
from ikecore.exchanges import authenticate
from ikecore.message import Header, SaKeys, decode_chain
from ikecore.payloads import CertPayload, NotifyPayload
from .ikepair import ADDR_A, IkePair, Nat, settings_a, settings_b

SIZE = 576          # the IPv4 minimum: IKE_AUTH needs several fragments


@pytest.fixture(scope="module")
def chain():
    root = pki.make_ca("Frag Root", "rsa")
    inter = pki.make_ca("Frag Intermediate", "rsa", issuer=root)
    a = pki.make_end_entity("vgw-a.example.net", inter, "rsa")
    b = pki.make_end_entity("vgw-b.example.net", inter, "rsa")

    def creds(i):
        return LocalCredentials(tuple(der(c) for c in (i.cert, *i.chain)), private_key_der(i.key))
    # the wall time for validity checks: when the certificates were made (valid
    # from 5 minutes before), not at import (a module fixture may come much later)
    return {"a": creds(a), "b": creds(b), "trust": TrustAnchors((der(root.cert),)), "clock": time.time()}


def make_pair(chain, size=SIZE, nat=False):
    """A offers every AWS algorithm (a large IKE_SA_INIT, so B answers without a
    cookie round trip); B picks AES128 / SHA2-256, which open_fragment reads."""
    common = dict(psk=None, trust=chain["trust"], wall_time=lambda: chain["clock"], fragment_size=size)
    return IkePair(settings_a(credentials=chain["a"], **common),
                   settings_b(credentials=chain["b"], phase1_encryption=("AES128",),
                            phase1_integrity=("SHA2-256",), remote_ip=None, **common),
                   nat_a=Nat("203.0.113.5") if nat else None)


def is_skf(d: Datagram) -> bool:
    return d.data[16] == PayloadType.SKF


def open_fragment(data: bytes, sk_e: bytes, sk_a: bytes) -> tuple[int, int, int, bytes]:
    """(next payload, number, total, plaintext) of one SKF message, AES-CBC +
    HMAC-SHA2-256-128, opened without ikecore (RFC 7383 §2.5, RFC 7296 §3.14)."""
    assert data[16] == 53
    first, _, length, number, total = struct.unpack_from("!BBHHH", data, 28)
    assert 28 + length == len(data) == struct.unpack_from("!I", data, 24)[0]
    assoc, body = data[:36], data[36:]
    signed, icv = body[:-16], body[-16:]
    assert hmac.compare_digest(hmac.new(sk_a, assoc + signed, "sha256").digest()[:16], icv)
    dec = Cipher(algorithms.AES(sk_e), modes.CBC(signed[:16])).decryptor()
    padded = dec.update(signed[16:]) + dec.finalize()
    return first, number, total, padded[:len(padded) - 1 - padded[-1]]


def auth_fragments(pair, who: str) -> list[Datagram]:
    return [d for w, d in pair.wire if w == who and is_skf(d) and d.data[18] == ExchangeType.IKE_AUTH]


# --- the wire ---------------------------------------------------------------------------------


def test_both_directions_fragmented_on_the_wire(chain):
    pair = make_pair(chain)
    pair.handshake()
    assert len(pair.a.ups) == 1 and len(pair.b.ups) == 1
    keys = pair.a.endpoint.current.keys
    for who, (sk_e, sk_a), first_type in (("a", (keys.sk_ei, keys.sk_ai), PayloadType.IDi),
                                          ("b", (keys.sk_er, keys.sk_ar), PayloadType.IDr)):
        frags = auth_fragments(pair, who)
        assert len(frags) >= 4
        opened = [open_fragment(d.data, sk_e, sk_a) for d in frags]
        assert [o[1] for o in opened] == list(range(1, len(frags) + 1))
        assert {o[2] for o in opened} == {len(frags)}
        # RFC 7383 §2.5: the first fragment names the first inner payload, the others 0
        assert [o[0] for o in opened] == [first_type] + [0] * (len(frags) - 1)
        assert {Header.decode(d.data).message_id for d in frags} == {1}
        assert all(len(d.data) <= SIZE - 28 for d in frags)     # IPv4 + UDP headers
        inner = decode_chain(first_type, b"".join(o[3] for o in opened))
        certs = [p for p in inner if isinstance(p, CertPayload)]
        assert [c.data for c in certs] == list(chain[who].chain)
    # IKE_SA_INIT is never fragmented (§2.5.3)
    assert not any(is_skf(d) for _, d in pair.wire[:2])
    # status counts them
    for side in (pair.a, pair.b):
        frags = side.endpoint.status()["ike"]["fragments"]
        assert frags["reassembled"] == 1 and frags["sent"] >= 4 and frags["bad_integrity"] == 0


def test_fragments_on_port_4500_leave_room_for_the_marker(chain):
    pair = make_pair(chain, nat=True)
    pair.handshake()
    assert len(pair.a.ups) == 1
    frags = auth_fragments(pair, "a") + auth_fragments(pair, "b")
    assert frags and all(d.local[1] == 4500 for d in frags)
    assert all(len(d.data) <= SIZE - 28 - 4 for d in frags)  # RFC 3948 §2.2 non-ESP marker


def test_no_fragments_unless_both_announce_support(chain, monkeypatch):
    real = authenticate.init_payloads
    monkeypatch.setattr(authenticate, "init_payloads", lambda sa, request=None: [
        p for p in real(sa, request) if getattr(p, "notify_type", 0) != 16430])
    pair = make_pair(chain)
    pair.handshake()
    assert len(pair.a.ups) == 1
    assert not any(is_skf(d) for _, d in pair.wire)
    assert max(len(d.data) for _, d in pair.wire) > SIZE  # sent whole; IP fragments it


def test_small_messages_are_not_fragmented(chain):
    pair = make_pair(chain, size=9000)
    pair.handshake()
    assert len(pair.a.ups) == 1 and not any(is_skf(d) for _, d in pair.wire)
    pair.liveness(pair.a)
    pair.run()
    assert not any(is_skf(d) for _, d in pair.wire)


# --- an unreliable network ---------------------------------------------------------------------


def handshake_to_auth(pair):
    """Run IKE_SA_INIT; return A's IKE_AUTH request fragments, not delivered yet."""
    pair.initiate()
    for _ in range(4):
        out = pair.outgoing(pair.a)
        if out and all(d.data[18] == ExchangeType.IKE_AUTH for d in out):
            return out
        deliver_all(pair, pair.b, out)
        pair.transfer(pair.b)
    raise AssertionError("no IKE_AUTH request")


def deliver_all(pair, side, out):
    return sum(pair.deliver(side, d) for d in out)


def test_reordered_fragments(chain):
    pair = make_pair(chain)
    out = handshake_to_auth(pair)
    deliver_all(pair, pair.b, list(reversed(out)))
    assert len(pair.b.ups) == 1
    pair.run()
    assert len(pair.a.ups) == 1


def test_duplicated_fragments(chain):
    pair = make_pair(chain)
    out = handshake_to_auth(pair)
    deliver_all(pair, pair.b, [d for d in out for _ in (0, 1)])
    assert len(pair.b.ups) == 1
    # the copies of fragments 1..N-1 were duplicates of a reassembly; the copy of
    # fragment N came after the answer: a retransmission, not fragment 1, so ignored
    assert pair.b.endpoint.current.fragments.counters.duplicates == len(out) - 1
    answer = pair.outgoing(pair.b)
    assert len(answer) == len({d.data for d in answer}) > 1       # answered once
    assert pair.b.endpoint.current.counters.retransmitted_responses == 0
    deliver_all(pair, pair.a, answer)
    assert len(pair.a.ups) == 1


def test_lost_fragment_then_retransmission_of_all_fragments(chain):
    pair = make_pair(chain)
    out = handshake_to_auth(pair)
    deliver_all(pair, pair.b, out[:1] + out[2:])        # fragment 2 lost
    assert pair.b.ups == [] and pair.outgoing(pair.b) == []
    pair.advance(4.0)                                   # A's first retransmission (RFC 7296 §2.1)
    again = pair.outgoing(pair.a)
    assert [d.data for d in again] == [d.data for d in out]   # every fragment, the same bytes
    deliver_all(pair, pair.b, again)
    assert len(pair.b.ups) == 1
    pair.run()
    assert len(pair.a.ups) == 1


def test_lost_answer_is_resent_from_the_cache_on_fragment_one_only(chain):
    """RFC 7383 §2.6.1: a retransmitted fragmented request makes the responder
    resend its (fragmented) answer only for fragment number 1."""
    pair = make_pair(chain)
    out = handshake_to_auth(pair)
    deliver_all(pair, pair.b, out)
    answer = pair.outgoing(pair.b)                      # lost
    assert len(answer) > 1
    pair.advance(4.0)
    again = pair.outgoing(pair.a)
    deliver_all(pair, pair.b, again[1:])                # fragments 2..N: no answer
    assert pair.outgoing(pair.b) == []
    deliver_all(pair, pair.b, again[:1])                # fragment 1: the whole cached answer
    resent = pair.outgoing(pair.b)
    assert [d.data for d in resent] == [d.data for d in answer]
    assert pair.b.endpoint.current.counters.retransmitted_responses == 1
    deliver_all(pair, pair.a, resent)
    assert len(pair.a.ups) == 1 and len(pair.b.ups) == 1


def test_a_bad_fragment_is_dropped_and_the_good_one_completes(chain):
    pair = make_pair(chain)
    out = handshake_to_auth(pair)
    bad = bytearray(out[1].data)
    bad[-1] ^= 0xFF                                     # ICV
    deliver_all(pair, pair.b, [out[0], Datagram(bytes(bad), out[1].local, out[1].remote)])
    b_sa = pair.b.sas[0]
    assert b_sa.fragments.counters.bad_integrity == 1
    assert b_sa.counters.dropped_unauthenticated == 1
    deliver_all(pair, pair.b, out[1:])
    assert len(pair.b.ups) == 1


def test_forged_fragment_with_more_fragments_cannot_reset_a_reassembly(chain):
    pair = make_pair(chain)
    out = handshake_to_auth(pair)
    deliver_all(pair, pair.b, out[:2])
    forged = bytearray(out[2].data)
    struct.pack_into("!H", forged, 34, 60)              # Total Fragments 60, ICV now wrong
    deliver_all(pair, pair.b, [Datagram(bytes(forged), out[2].local, out[2].remote)])
    deliver_all(pair, pair.b, out[2:])
    assert len(pair.b.ups) == 1


# --- the reassembler on its own ------------------------------------------------------------------


@pytest.fixture
def keys():
    cipher = get_sk_cipher(12, 128, 12)      # AES-CBC-128 / HMAC-SHA2-256-128
    return SaKeys(cipher, b"e" * 16, b"E" * 16, b"a" * 32, b"A" * 32)


def header(mid=1, response=False):
    return Header(b"I" * 8, b"R" * 8, 0, ExchangeType.IKE_AUTH, 0x08 | (0x20 if response else 0), mid, 0)


def fragments(keys, mid=1, size=200, notes=30, budget=300):
    payloads = [NotifyPayload(40000 + i, bytes([i]) * size) for i in range(notes)]
    return payloads, fragment.encode(header(mid), payloads, keys, True, budget)


def feed(r, keys, packets):
    result = None
    for p in packets:
        result = r.add(p, Header.decode(p), keys) or result
    return result


def test_reassembler_in_order_and_out_of_order(keys):
    payloads, packets = fragments(keys)
    assert len(packets) > 10 and all(len(p) <= 300 for p in packets)
    for order in (packets, packets[::-1], packets[1::2] + packets[::2]):
        first, inner = feed(fragment.Reassembler(), keys, order)
        assert decode_chain(first, inner) == payloads


def test_reassembler_newer_message_replaces_the_partial(keys):
    _, old = fragments(keys, mid=1)
    payloads, new = fragments(keys, mid=2, size=50)
    r = fragment.Reassembler()
    assert feed(r, keys, old[:3]) is None
    assert r.partial[False].message_id == 1
    first, inner = feed(r, keys, new)
    assert decode_chain(first, inner) == payloads
    assert feed(r, keys, old[3:]) is None      # the rest of the old message starts over, incomplete
    assert r.partial[False].message_id == 1 and len(r.partial[False].parts) == len(old) - 3


def test_reassembler_total_fragments_rules(keys):
    """§2.6: fewer Total Fragments than kept: drop it; more: start over with it."""
    payloads, small = fragments(keys, budget=600)
    _, large = fragments(keys, budget=300)
    r = fragment.Reassembler()
    feed(r, keys, large[:2])
    assert feed(r, keys, small[:1]) is None and r.counters.dropped == 1
    assert len(r.partial[False].parts) == 2
    r = fragment.Reassembler()
    feed(r, keys, small[:2])
    feed(r, keys, large[:1])
    assert r.partial[False].total == len(large) and list(r.partial[False].parts) == [1]
    first, inner = feed(r, keys, large[1:])
    assert decode_chain(first, inner) == payloads


def test_reassembler_limits(keys, monkeypatch):
    # encode refuses to make more than MAX_FRAGMENTS ...
    with pytest.raises(ValueError, match="needs 77 fragments"):
        fragments(keys, notes=90, size=100, budget=200)
    # ... and a peer's fragment announcing more is dropped (an authentic one, made
    # here with the limit lifted)
    monkeypatch.setattr(fragment, "MAX_FRAGMENTS", 1000)
    _, packets = fragments(keys, notes=90, size=100, budget=200)
    monkeypatch.setattr(fragment, "MAX_FRAGMENTS", 64)
    r = fragment.Reassembler()
    assert feed(r, keys, packets) is None
    assert r.counters.dropped == len(packets) and not r.partial
    # the size limit: everything held is dropped once it exceeds MAX_REASSEMBLED
    monkeypatch.setattr(fragment, "MAX_REASSEMBLED", 1000)
    _, packets = fragments(keys, notes=20, size=100, budget=300)
    r = fragment.Reassembler()
    assert feed(r, keys, packets) is None
    assert r.counters.dropped >= 1 and r.counters.reassembled == 0


def test_reassembler_refuses_bad_input(keys):
    from ikecore.crypto import IntegrityError
    _, packets = fragments(keys)
    r = fragment.Reassembler()
    bad = bytearray(packets[0])
    bad[40] ^= 1
    with pytest.raises(IntegrityError):
        r.add(bytes(bad), Header.decode(bytes(bad)), keys)
    assert not r.partial
    # fragment number 0 or above the total: malformed, dropped
    for number, total in ((0, 3), (4, 3)):
        p = bytearray(packets[0])
        struct.pack_into("!HH", p, 32, number, total)
        assert r.add(bytes(p), Header.decode(bytes(p)), keys) is None
    assert r.counters.dropped == 2
    # a request fragment and a response fragment are kept apart
    _, resp = fragments(keys)
    resp = [p[:19] + bytes([p[19] | 0x20]) + p[20:] for p in resp]
    r = fragment.Reassembler()
    r.add(packets[0], Header.decode(packets[0]), keys)
    with pytest.raises(IntegrityError):   # the flag is covered by the ICV
        r.add(resp[1], Header.decode(resp[1]), keys)


def test_malformed_reassembled_request_is_invalid_syntax(chain):
    """Authentic fragments whose inner payloads do not parse: INVALID_SYNTAX, and
    after authentication the IKE SA ends (RFC 7296 §2.21.3), as for a whole message."""
    pair = make_pair(chain)
    pair.handshake()
    a_sa = pair.a.endpoint.current
    mid = a_sa.next_request_id
    inner = b"\x00\x00\x00\x05!" * 300                       # a "notify" of length 5: truncated
    cipher = a_sa.keys.cipher
    sk_e, sk_a = a_sa.keys.for_sender(True)
    chunks = [inner[i:i + 400] for i in range(0, len(inner), 400)]
    out = []
    for n, chunk in enumerate(chunks, 1):
        sealed = cipher.encrypted_length(len(chunk))
        h = Header(a_sa.spi_i, a_sa.spi_r, 53, ExchangeType.INFORMATIONAL, 0x08, mid, 36 + sealed)
        assoc = h.encode() + struct.pack("!BBHHH", PayloadType.NOTIFY if n == 1 else 0, 0, 8 + sealed,
                                         n, len(chunks))
        out.append(Datagram(assoc + cipher.seal(sk_e, sk_a, assoc, chunk), (ADDR_A, 500), pair.b.sa.local))
    for d in out:
        pair.b.endpoint.receive(d.data, pair.b.sa.local, (ADDR_A, 500), pair.now)
    pair.b.drain()
    assert pair.b.logged("AWS tunnel received a malformed INFORMATIONAL request")
    assert [d.reason for d in pair.b.downs] == ["error"]


def test_shared_reassembly_budget(keys):
    """All SAs of a gateway share one byte budget for held fragments: a peer (or
    many half-open SAs) cannot hold more than max_reassembly_bytes together."""
    from ikecore.dos import DosGuard, DosSettings
    _, packets = fragments(keys, notes=20, size=100, budget=300)
    guard = DosGuard(DosSettings(max_reassembly_bytes=700))
    first, second = fragment.Reassembler(guard), fragment.Reassembler(guard)
    # the first SA holds all but its last fragment: within the budget only partly
    for p in packets[:-1]:
        first.add(p, Header.decode(p), keys)
    assert guard.reassembly_bytes <= 700
    assert guard.counters.dropped_reassembly_budget >= 1 and first.counters.dropped >= 1
    # what an SA gives up (dropped partial, completed message, death) goes back
    first.discard_all()
    assert guard.reassembly_bytes == 0
    assert feed(second, keys, packets[:3]) is None and guard.reassembly_bytes > 0
    second.discard_all()
    assert guard.reassembly_bytes == 0
    # a message that fits completes and releases its bytes
    _, small = fragments(keys, notes=3, size=100, budget=300)
    third = fragment.Reassembler(guard)
    assert feed(third, keys, small) is not None and guard.reassembly_bytes == 0


def test_stalled_partial_messages_make_room_for_a_complete_one(keys):
    """SAs that hold fragments and send no more (an attacker's proven half-open
    SAs) fill the shared budget; a customer gateway's message whose fragments
    arrive back to back still completes: the partials that waited longest are
    evicted, not the newcomer refused. Before, it was refused until the holders'
    SAs expired (30 s)."""
    from ikecore.dos import DosGuard, DosSettings
    _, stalled = fragments(keys, notes=20, size=100, budget=300)
    payloads, chain = fragments(keys, mid=7, notes=8, size=100, budget=300)
    guard = DosGuard(DosSettings(max_reassembly_bytes=1200))
    squatters = [fragment.Reassembler(guard) for _ in range(6)]
    for r in squatters:                         # each holds two fragments, then stops
        feed(r, keys, stalled[:2])
    full = guard.reassembly_bytes
    assert 600 < full <= 1200 and guard.counters.evicted_reassembly > 0   # full, already churning
    evicted_before = guard.counters.evicted_reassembly
    cgw = fragment.Reassembler(guard)
    first, inner = feed(cgw, keys, chain)
    assert decode_chain(first, inner) == payloads
    assert guard.counters.evicted_reassembly > evicted_before
    assert guard.counters.dropped_reassembly_budget == 0
    # the oldest squatters went first; what is held stays within the budget and adds up
    assert sum(r.counters.evicted for r in squatters) == guard.counters.evicted_reassembly
    holding = [bool(r.partial) for r in squatters]
    assert not holding[0] and holding == sorted(holding)     # never a newer one before an older
    assert guard.reassembly_bytes == sum(p.size for r in squatters for p in r.partial.values()) <= 1200
    for r in squatters:
        r.discard_all()
    assert guard.reassembly_bytes == 0 and not guard._holders
