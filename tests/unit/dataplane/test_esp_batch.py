"""EspSa.seal_batch / open_batch do exactly what seal / open do one by one."""

import os

import pytest

from dataplane.esp import MAX_SEQ, DropReason, EspSa

GCM = ("aes-gcm-16", bytes(range(20)), None, None)
CBC = ("aes-cbc", bytes(range(16)), "hmac-sha2-256-128", bytes(range(32)))


def inner(n, tag=0):
    return bytes([0x45]) + bytes([tag]) * (n - 1)


@pytest.mark.parametrize("suite", [GCM, CBC], ids=["gcm", "cbc"])
def test_seal_batch_equals_seal_one_by_one(suite):
    a, b = EspSa(0x1001, *suite), EspSa(0x1001, *suite)
    pkts = [inner(n, i) for i, n in enumerate([20, 64, 1400, 1399, 21, 1400])] + [b"", b"\x10junk"]
    one = [p for p in map(a.seal, pkts) if p is not None]
    batch = b.seal_batch(pkts)
    if suite is GCM:  # deterministic (IV = sequence number): byte for byte
        assert batch == one
    rx = EspSa(0x1001, *suite)
    assert [rx.decrypt(p) for p in batch] == pkts[:6]
    assert (b.seq, b.packets, b.bytes) == (a.seq, a.packets, a.bytes) == (6, 6, sum(map(len, pkts[:6])))
    assert b.drops == a.drops and b.drops[DropReason.NOT_IP] == 2
    assert b.last_drop is DropReason.NOT_IP


def test_seal_batch_stops_at_sequence_exhaustion():
    sa = EspSa(0x1001, *GCM)
    sa.seq = MAX_SEQ - 2
    out = sa.seal_batch([inner(40)] * 5)
    assert len(out) == 2 and sa.seq == MAX_SEQ
    assert sa.drops[DropReason.SEQ_EXHAUSTED] == 3


@pytest.mark.parametrize("suite", [GCM, CBC], ids=["gcm", "cbc"])
def test_open_batch_equals_open_one_by_one(suite):
    tx = EspSa(0x1001, *suite)
    good = [tx.encrypt(inner(n, i)) for i, n in enumerate([64, 1400, 300, 1400])]
    tampered = bytearray(good[2])
    tampered[-1] ^= 1
    stream = [good[0], good[1], good[1], bytes(tampered), b"\x00" * 20, good[3], good[2], good[0]]
    a, b = EspSa(0x1001, *suite), EspSa(0x1001, *suite)
    one = [p for p in map(a.open, stream) if p is not None]
    batch = b.open_batch(stream)
    assert batch == one == [inner(64, 0), inner(1400, 1), inner(1400, 3), inner(300, 2)]
    assert b.drops == a.drops
    assert b.drops[DropReason.REPLAY] == 2 and b.drops[DropReason.BAD_ICV] == 1
    assert b.drops[DropReason.MALFORMED] == 1
    assert (b.packets, b.bytes) == (a.packets, a.bytes) == (4, 64 + 1400 + 1400 + 300)
    assert b.last_drop is DropReason.REPLAY  # the last drop's reason
    assert b.open_batch([]) == [] and b.last_drop is None  # reset by each call


def test_open_batch_dummy_and_bad_padding_take_the_precise_path():
    tx = EspSa(0x1001, *GCM)
    # RFC 4303 §2.6: next header 59 is a dummy packet, authentic but not delivered
    from dataplane import esp
    hdr_seq = tx.seq + 1
    tx.seq = hdr_seq
    iv = hdr_seq.to_bytes(8, "big")
    hdr = (0x1001).to_bytes(4, "big") + hdr_seq.to_bytes(4, "big")
    dummy = hdr + iv + tx._aead.encrypt(tx._salt + iv, os.urandom(6) + bytes([0, esp.NH_NONE]), hdr)
    rx = EspSa(0x1001, *GCM)
    assert rx.open_batch([dummy, tx.encrypt(inner(50))]) == [inner(50)]
    assert rx.drops[DropReason.DUMMY] == 1 and rx.packets == 1


@pytest.mark.parametrize("suite", [GCM, CBC], ids=["gcm", "cbc"])
def test_open_spans_are_open_batch_uncut(suite):
    """open_spans: each inner packet is buffer[:end], the same packets, drops and
    counters as open_batch (GCM hands over the plaintext with its trailer)."""
    tx = EspSa(0x1001, *suite)
    good = [tx.encrypt(inner(n, i)) for i, n in enumerate([64, 1400, 21])]
    stream = [good[0], good[1], good[1], b"\x00" * 20, good[2]]
    a, b = EspSa(0x1001, *suite), EspSa(0x1001, *suite)
    bufs, ends = b.open_spans(stream)
    assert [buf[:end] for buf, end in zip(bufs, ends)] == a.open_batch(stream) == [inner(64, 0), inner(1400, 1),
                                                                                   inner(21, 2)]
    assert (b.drops, b.packets, b.bytes, b.last_drop) == (a.drops, a.packets, a.bytes, a.last_drop)
    if suite is GCM:
        assert [len(buf) for buf in bufs] != ends   # the trailers are still there
