"""EspSa inbound drops and outbound limits: each bad packet is dropped with its reason and counted."""

import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from scapy.layers.inet import ICMP, IP
from scapy.layers.ipsec import ESP, SecurityAssociation

from dataplane.esp import MAX_SEQ, DropReason, EspDrop, EspError, EspSa

SPI = 0x10000001
INNER = bytes(IP(src="169.254.10.2", dst="169.254.10.1") / ICMP() / (b"p" * 27))

GCM_KEY = bytes(range(20))
CBC_KEY = bytes(range(16))
SHA256_KEY = bytes(range(100, 132))

SUITES = {
    "gcm": dict(encr="aes-gcm-16", encr_key=GCM_KEY),
    "cbc-sha256": dict(encr="aes-cbc", encr_key=CBC_KEY, integ="hmac-sha2-256-128", integ_key=SHA256_KEY),
    "cbc-sha1": dict(encr="aes-cbc", encr_key=CBC_KEY, integ="hmac-sha1-96", integ_key=bytes(20)),
}


def sa_pair(name, window=1024):
    kw = SUITES[name]
    return EspSa(SPI, **kw), EspSa(SPI, replay_window=window, **kw)


def craft(name, seq, plaintext):
    """Build an authentic ESP packet around an arbitrary plaintext (trailer included),
    independently of EspSa, to reach the checks after the ICV."""
    hdr = struct.pack("!II", SPI, seq)
    if name == "gcm":
        iv = os.urandom(8)
        ct = AESGCM(GCM_KEY[:-4]).encrypt(GCM_KEY[-4:] + iv, plaintext, hdr)
        return hdr + iv + ct
    kw = SUITES[name]
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(kw["encr_key"]), modes.CBC(iv)).encryptor()
    body = iv + enc.update(plaintext) + enc.finalize()
    h, icv = (hashes.SHA256, 16) if kw["integ"] == "hmac-sha2-256-128" else (hashes.SHA1, 12)
    mac = hmac.HMAC(kw["integ_key"], h())
    mac.update(hdr + body)
    return hdr + body + mac.finalize()[:icv]


def plaintext(name, inner=INNER, nh=4):
    """inner | 1,2,3.. | pad length | next header, aligned as RFC 4303 §2.4 wants."""
    n = -(len(inner) + 2) % (4 if name == "gcm" else 16)
    return inner + bytes(range(1, n + 1)) + bytes((n, nh))


def expect_drop(sa, pkt, reason):
    before = sa.drops[reason]
    with pytest.raises(EspDrop) as ei:
        sa.decrypt(pkt)
    assert ei.value.reason is reason
    assert sa.drops[reason] == before + 1
    return ei.value


# -- constructor validation ----------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(encr="aes-gcm-16", encr_key=bytes(16)), "20- or 36-byte"),
        (dict(encr="aes-gcm-16", encr_key=bytes(28)), "20- or 36-byte"),
        (dict(encr="aes-gcm-16", encr_key=bytes(20), integ="hmac-sha1-96", integ_key=bytes(20)), "AEAD"),
        (dict(encr="aes-cbc", encr_key=bytes(24), integ="hmac-sha1-96", integ_key=bytes(20)), "16- or 32-byte"),
        (dict(encr="aes-cbc", encr_key=bytes(16)), "integrity"),
        (dict(encr="aes-cbc", encr_key=bytes(16), integ="hmac-md5-96", integ_key=bytes(16)), "integrity"),
        (dict(encr="aes-cbc", encr_key=bytes(16), integ="hmac-sha2-256-128", integ_key=bytes(20)), "32-byte"),
        (dict(encr="aes-cbc", encr_key=bytes(16), integ="hmac-sha1-96"), "20-byte"),
        (dict(encr="3des", encr_key=bytes(24)), "unknown encryption"),
        (dict(encr="aes-gcm-16", encr_key=bytes(20), replay_window=32), "64 and 2048"),
    ],
)
def test_constructor_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EspSa(SPI, **kwargs)


@pytest.mark.parametrize("spi", [0, 1, 255, 2**32, -5])
def test_bad_spi(spi):
    with pytest.raises(ValueError):
        EspSa(spi, "aes-gcm-16", bytes(20))


def test_constructor_gives_algorithm_specific_espsa():
    for kw in SUITES.values():
        assert isinstance(EspSa(SPI, **kw), EspSa)


# -- replay ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", SUITES)
def test_replay_duplicate_and_reorder(name):
    tx, rx = sa_pair(name, window=64)
    pkts = [tx.encrypt(INNER) for _ in range(200)]
    assert rx.decrypt(pkts[99]) == INNER  # seq 100
    expect_drop(rx, pkts[99], DropReason.REPLAY)  # duplicate
    assert rx.decrypt(pkts[50]) == INNER  # seq 51: 100-51 = 49 < 64, inside
    expect_drop(rx, pkts[50], DropReason.REPLAY)
    assert rx.decrypt(pkts[36]) == INNER  # seq 37: the oldest still inside (100-63)
    expect_drop(rx, pkts[35], DropReason.REPLAY)  # seq 36: left of the window
    expect_drop(rx, pkts[0], DropReason.REPLAY)
    assert rx.packets == 3
    assert rx.drops[DropReason.REPLAY] == 4


@pytest.mark.parametrize("name", SUITES)
def test_seq_zero_is_replay(name):
    _, rx = sa_pair(name)
    expect_drop(rx, craft(name, 0, plaintext(name)), DropReason.REPLAY)


@pytest.mark.parametrize("name", SUITES)
def test_forged_huge_seq_does_not_move_window(name):
    tx, rx = sa_pair(name, window=64)
    good = [tx.encrypt(INNER) for _ in range(3)]
    forged = bytearray(good[0])
    forged[4:8] = (2**31).to_bytes(4, "big")
    expect_drop(rx, bytes(forged), DropReason.BAD_ICV)
    assert rx.replay.top == 0
    assert rx.decrypt(good[0]) == INNER


def test_replay_checked_before_icv():
    """A replayed packet is dropped as REPLAY without paying for the ICV, so a garbled
    duplicate counts as REPLAY, not BAD_ICV (RFC 4303 §3.4.3)."""
    tx, rx = sa_pair("cbc-sha256")
    p = tx.encrypt(INNER)
    rx.decrypt(p)
    garbled = p[:-1] + bytes([p[-1] ^ 1])
    expect_drop(rx, garbled, DropReason.REPLAY)
    assert rx.drops[DropReason.BAD_ICV] == 0


# -- tampering --------------------------------------------------------------------

@pytest.mark.parametrize("name", SUITES)
@pytest.mark.parametrize("where", ["spi", "seq", "iv", "ciphertext", "icv_first", "icv_last"])
def test_tampered(name, where):
    tx, rx = sa_pair(name)
    p = bytearray(tx.encrypt(INNER))
    icv = 16 if name in ("gcm", "cbc-sha256") else 12
    pos = {"spi": 3, "seq": 7, "iv": 9, "ciphertext": 30, "icv_first": len(p) - icv, "icv_last": len(p) - 1}[where]
    p[pos] ^= 0x80
    expect_drop(rx, bytes(p), DropReason.BAD_ICV)
    assert rx.packets == 0 and rx.bytes == 0


@pytest.mark.parametrize("name", SUITES)
def test_truncated(name):
    tx, rx = sa_pair(name)
    p = tx.encrypt(INNER)
    for cut in range(0, len(p)):
        with pytest.raises(EspDrop) as ei:
            rx.decrypt(p[:cut])
        assert ei.value.reason in (DropReason.MALFORMED, DropReason.BAD_ICV)
    assert rx.decrypt(p) == INNER


@pytest.mark.parametrize("name", SUITES)
def test_misaligned_is_malformed(name):
    tx, rx = sa_pair(name)
    p = tx.encrypt(INNER)
    expect_drop(rx, p + b"\x00", DropReason.MALFORMED)
    expect_drop(rx, b"", DropReason.MALFORMED)


# -- trailer checks after authentication ------------------------------------------

def _pad_to(name, body_len):
    block = 4 if name == "gcm" else 16
    return -(body_len + 2) % block


@pytest.mark.parametrize("name", SUITES)
def test_bad_padding_content(name):
    _, rx = sa_pair(name)
    n = _pad_to(name, len(INNER)) or (4 if name == "gcm" else 16)
    pad = bytes(range(1, n + 1))
    bad = pad[:-1] + b"\x00"
    pt = INNER + bad + bytes((len(bad), 4))
    assert len(pt) % (4 if name == "gcm" else 16) == 0
    expect_drop(rx, craft(name, 1, pt), DropReason.BAD_PADDING)
    # A correct packet with the same seq is now a replay: it was authentic, the window moved.
    expect_drop(rx, craft(name, 1, plaintext(name)), DropReason.REPLAY)
    assert rx.decrypt(craft(name, 2, plaintext(name))) == INNER
    assert rx.decrypt(craft(name, 3, INNER + pad + bytes((len(pad), 4)))) == INNER


@pytest.mark.parametrize("name", SUITES)
def test_pad_length_too_long(name):
    _, rx = sa_pair(name)
    block = 4 if name == "gcm" else 16
    pt = bytes(block - 2) + bytes((250, 4))
    expect_drop(rx, craft(name, 1, pt), DropReason.BAD_PADDING)


@pytest.mark.parametrize("name", SUITES)
@pytest.mark.parametrize("nh, reason", [(17, DropReason.MALFORMED), (6, DropReason.MALFORMED), (59, DropReason.DUMMY)])
def test_next_header(name, nh, reason):
    _, rx = sa_pair(name)
    expect_drop(rx, craft(name, 1, plaintext(name, nh=nh)), reason)


@pytest.mark.parametrize("name", SUITES)
def test_next_header_disagrees_with_inner_version(name):
    _, rx = sa_pair(name)
    pt = plaintext(name, nh=41)  # says IPv6, carries IPv4
    expect_drop(rx, craft(name, 1, pt), DropReason.MALFORMED)


@pytest.mark.parametrize("name", SUITES)
def test_empty_inner_is_malformed(name):
    _, rx = sa_pair(name)
    block = 4 if name == "gcm" else 16
    n = block - 2
    pt = bytes(range(1, n + 1)) + bytes((n, 4))
    expect_drop(rx, craft(name, 1, pt), DropReason.MALFORMED)


# -- outbound -----------------------------------------------------------------------

@pytest.mark.parametrize("name", SUITES)
def test_sequence_number_never_wraps(name):
    tx, rx = sa_pair(name)
    tx.seq = MAX_SEQ - 2
    a = tx.encrypt(INNER)
    b = tx.encrypt(INNER)
    assert int.from_bytes(b[4:8], "big") == MAX_SEQ
    with pytest.raises(EspError, match="sequence number exhausted"):
        tx.encrypt(INNER)
    with pytest.raises(EspError, match="sequence number exhausted"):
        tx.encrypt(INNER)
    assert tx.seq == MAX_SEQ
    assert tx.drops[DropReason.SEQ_EXHAUSTED] == 2
    assert tx.packets == 2
    assert rx.decrypt(a) == INNER and rx.decrypt(b) == INNER


@pytest.mark.parametrize("name", SUITES)
@pytest.mark.parametrize("bad", [b"", b"\x00" * 20, b"\x55abc"])
def test_encrypt_refuses_non_ip(name, bad):
    tx, _ = sa_pair(name)
    with pytest.raises(EspError, match="IPv4 or IPv6"):
        tx.encrypt(bad)
    assert tx.seq == 0 and tx.drops[DropReason.NOT_IP] == 1


def test_gcm_iv_is_sequence_number():
    tx, _ = sa_pair("gcm")
    for i in range(1, 4):
        p = tx.encrypt(INNER)
        assert p[8:16] == i.to_bytes(8, "big")  # RFC 4106 §3.1


def test_cbc_ivs_differ_and_are_not_last_ciphertext_block():
    tx, _ = sa_pair("cbc-sha256")
    prev = None
    ivs = set()
    for _ in range(500):
        p = tx.encrypt(INNER)
        iv = p[8:24]
        ivs.add(iv)
        if prev is not None:
            assert iv != prev[-16 - 16 : -16]  # not the chained IV of SSL 3 / TLS 1.0
        prev = p
    assert len(ivs) == 500


# -- fuzz -------------------------------------------------------------------------

@pytest.mark.parametrize("name", SUITES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_only_espdrop(name, data):
    _, rx = sa_pair(name)
    with pytest.raises(EspDrop):
        rx.decrypt(data)


@pytest.mark.parametrize("name", SUITES)
@settings(max_examples=200, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 64))
def test_mutated_packets_only_espdrop(name, flips, cut):
    """Every mutated packet is dropped (EspDrop, counted once): the ICV covers
    SPI, sequence number, IV and ciphertext (RFC 4303 §2, §3.4.4), so no flip
    or cut passes; and the drop burns nothing: the original is still accepted."""
    tx, rx = sa_pair(name)
    original = tx.encrypt(INNER)
    p = bytearray(original)
    for pos, x in flips:
        p[pos % len(p)] ^= x
    if cut:
        p = p[:-cut]
    assume(bytes(p) != original)      # flips of one byte may cancel out
    with pytest.raises(EspDrop):
        rx.decrypt(bytes(p))
    assert sum(rx.drop_counts().values()) == 1, rx.drop_counts()
    assert rx.decrypt(original) == INNER


def test_scapy_encrypted_tamper_counted():
    """Tampering with a scapy-made packet is seen too (independent sender)."""
    kw = SUITES["cbc-sha256"]
    sa = SecurityAssociation(ESP, spi=SPI, crypt_algo="AES-CBC", crypt_key=kw["encr_key"],
                             auth_algo="SHA2-256-128", auth_key=kw["integ_key"],
                             tunnel_header=IP(src="192.0.2.1", dst="192.0.2.2"))
    rx = EspSa(SPI, **kw)
    p = bytearray(bytes(sa.encrypt(IP(INNER))[ESP]))
    p[40] ^= 1
    expect_drop(rx, bytes(p), DropReason.BAD_ICV)
    assert rx.drop_counts() == {"bad_icv": 1}


@pytest.mark.parametrize("key_len", [16, 32], ids=["aes128-gcm", "aes256-gcm"])
@pytest.mark.parametrize("where", ["iv", "ciphertext", "tag_first", "tag_last"])
def test_scapy_encrypted_gcm_tamper_is_bad_icv(key_len, where):
    """A flipped bit anywhere in a scapy-made AES-GCM packet fails the tag
    (RFC 4106 §3: the ICV covers the IV-derived nonce, header and ciphertext):
    bad_icv, nothing delivered, the replay window untouched."""
    key = bytes(range(key_len + 4))   # + 4-byte salt (RFC 4106 §8.1)
    sa = SecurityAssociation(ESP, spi=SPI, crypt_algo="AES-GCM", crypt_key=key,
                             tunnel_header=IP(src="192.0.2.1", dst="192.0.2.2"))
    rx = EspSa(SPI, "aes-gcm-16", key)
    good = bytes(sa.encrypt(IP(INNER), seq_num=5)[ESP])
    p = bytearray(good)
    pos = {"iv": 10, "ciphertext": 20, "tag_first": len(p) - 16, "tag_last": len(p) - 1}[where]
    p[pos] ^= 0x01
    expect_drop(rx, bytes(p), DropReason.BAD_ICV)
    assert rx.drop_counts() == {"bad_icv": 1}
    assert rx.packets == 0 and rx.replay.top == 0
    assert rx.decrypt(good) == INNER   # the untampered packet still passes
