"""SK payload protection (RFC 7296 §3.14, RFC 5282): known answers and properties.

GCM known answers: McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)",
test cases 3, 4 (AES-128) and 15, 16 (AES-256), whose 12-byte IV
cafebabe||facedbaddecaf888 splits into the RFC 5282 4-byte salt (the tail of
SK_e) and 8-byte IV, so they drive the same code path as seal(). Carried over
from strongSwan test_vectors/aes_gcm.c (aes_gcm3, 4, 6, 7), which quotes them.
CBC known answers: RFC 3602 §4, cases #1, #2 and #4 (via strongSwan
test_vectors/aes_cbc.c, which labels #4 "Test 3").
"""

import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikecore.constants import EncrId, IntegId
from ikecore.crypto import (
    CryptoError,
    IntegrityError,
    UnsupportedAlgorithm,
    get_sk_cipher,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# IKE header (28) + SK generic payload header (4): what precedes the IV.
ASSOC = bytes(range(32))

# -- AES-GCM, McGrew & Viega test cases ------------------------------------

GCM_KEY_128 = h("feffe9928665731c6d6a8f9467308308")
GCM_KEY_256 = GCM_KEY_128 * 2
GCM_SALT = h("cafebabe")
GCM_IV = h("facedbaddecaf888")
GCM_P64 = h(
    "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b391aafd255"
)
GCM_P60 = GCM_P64[:60]
GCM_AAD = h("feedfacedeadbeeffeedfacedeadbeef abaddad2")

GCM_VECTORS = [
    # (name, bits, key, aad, plaintext, ciphertext || tag)
    ("TC3", 128, GCM_KEY_128, b"", GCM_P64, h(
        "42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091473f5985"
        "4d5c2af327cd64a62cf35abd2ba6fab4")),
    ("TC4", 128, GCM_KEY_128, GCM_AAD, GCM_P60, h(
        "42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091"
        "5bc94fbc3221a5db94fae95ae7121a47")),
    ("TC15", 256, GCM_KEY_256, b"", GCM_P64, h(
        "522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662898015ad"
        "b094dac5d93471bdec1a502270e3cc6c")),
    ("TC16", 256, GCM_KEY_256, GCM_AAD, GCM_P60, h(
        "522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662"
        "76fc6ece0f4e1768cddf8853bb2d551b")),
]


@pytest.mark.parametrize("name, bits, key, aad, plaintext, expected", GCM_VECTORS)
def test_gcm_known_answers(name, bits, key, aad, plaintext, expected):
    cipher = get_sk_cipher(EncrId.AES_GCM_16, bits, IntegId.NONE)
    sk_e = key + GCM_SALT  # RFC 5282 §7.1: key || salt
    # plaintext is taken as already padded: it ends in its pad length octet
    body = cipher._seal_padded(sk_e, b"", aad, plaintext, GCM_IV)
    assert body == GCM_IV + expected
    if plaintext[-1] + 1 <= len(plaintext):
        # TC4/TC16 end in 0x39: 57 padding octets precede it, 2 octets remain
        assert cipher.open(sk_e, b"", aad, body) == plaintext[: len(plaintext) - 58]
    else:
        # TC3/TC15 end in 0x55 = 85 > 63: authentic, but the padding cannot fit
        with pytest.raises(IntegrityError):
            cipher.open(sk_e, b"", aad, body)


# -- AES-CBC, RFC 3602 §4 -------------------------------------------------

CBC_VECTORS = [
    # (case, key, iv, plaintext, ciphertext)
    ("#1", h("06a9214036b8a15b512e03d534120006"), h("3dafba429d9eb430b422da802c9fac41"),
     b"Single block msg", h("e353779c1079aeb82708942dbe77181a")),
    ("#2", h("c286696d887c9aa0611bbb3e2025a45a"), h("562e17996d093d28ddb3ba695a2e6f58"),
     bytes(range(32)),
     h("d296cd94c2cccf8a3a863028b5e1dc0a 7586602d253cfff91b8266bea6d61ab1")),
    ("#4", h("56e47a38c5598974bc46903dba290349"), h("8ce82eefbea0da3c44699ed7db51b7d9"),
     bytes(range(0xA0, 0xE0)),
     h("c30e32ffedc0774e6aff6af0869f71aa 0f3af07a9a31a9c684db207eb0ef8e4e"
       "35907aa632c3ffdf868bb7b29d3d46ad 83ce9f9a102ee99d49a53e87f4c3da55")),
]


@pytest.mark.parametrize("case, key, iv, plaintext, ciphertext", CBC_VECTORS)
def test_cbc_known_answers(case, key, iv, plaintext, ciphertext):
    cipher = get_sk_cipher(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128)
    sk_a = b"\x5a" * 32
    body = cipher._seal_padded(key, sk_a, ASSOC, plaintext, iv)
    # RFC 7296 §3.14: ICV over IKE header .. end of the encrypted data, checked
    # here with the standard library as an independent HMAC.
    icv = hmac.new(sk_a, ASSOC + iv + ciphertext, hashlib.sha256).digest()[:16]
    assert body == iv + ciphertext + icv
    pad = plaintext[-1]
    if pad + 1 <= len(plaintext):
        # case #2 ends in 0x1f: all 31 octets before it are padding
        assert cipher.open(key, sk_a, ASSOC, body) == plaintext[: len(plaintext) - pad - 1]
    else:
        with pytest.raises(IntegrityError):
            cipher.open(key, sk_a, ASSOC, body)


# -- every suite ------------------------------------------------------------

SUITES = [(EncrId.AES_GCM_16, bits, IntegId.NONE) for bits in (128, 256)] + [
    (EncrId.AES_CBC, bits, integ)
    for bits in (128, 256)
    for integ in (
        IntegId.HMAC_SHA1_96,
        IntegId.HMAC_SHA2_256_128,
        IntegId.HMAC_SHA2_384_192,
        IntegId.HMAC_SHA2_512_256,
    )
]
SUITE_IDS = [f"{e.name}-{b}-{i.name}" for e, b, i in SUITES]


def keys_for(cipher):
    return b"\x11" * cipher.key_size, b"\x22" * cipher.integ_key_size


@pytest.mark.parametrize(
    "suite, key_size, integ_key_size, iv_size, icv_size, aead",
    [
        ((EncrId.AES_CBC, 128, IntegId.HMAC_SHA1_96), 16, 20, 16, 12, False),
        ((EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_256_128), 32, 32, 16, 16, False),
        ((EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_384_192), 16, 48, 16, 24, False),
        ((EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_512_256), 32, 64, 16, 32, False),
        ((EncrId.AES_GCM_16, 128, IntegId.NONE), 20, 0, 8, 16, True),  # RFC 5282 §7.1
        ((EncrId.AES_GCM_16, 256, IntegId.NONE), 36, 0, 8, 16, True),
    ],
)
def test_suite_sizes(suite, key_size, integ_key_size, iv_size, icv_size, aead):
    c = get_sk_cipher(*suite)
    assert (c.key_size, c.integ_key_size, c.iv_size, c.icv_size, c.is_aead) == (
        key_size, integ_key_size, iv_size, icv_size, aead,
    )


@pytest.mark.parametrize(
    "plaintext_len, cbc_len, gcm_len",
    # CBC-SHA256: IV 16 + ceil((n+1)/16)*16 + ICV 16; GCM: IV 8 + n + 1 + tag 16
    [(0, 48, 25), (14, 48, 39), (15, 48, 40), (16, 64, 41), (100, 144, 125)],
)
def test_encrypted_length(plaintext_len, cbc_len, gcm_len):
    assert get_sk_cipher(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128).encrypted_length(
        plaintext_len) == cbc_len
    assert get_sk_cipher(EncrId.AES_GCM_16, 128, IntegId.NONE).encrypted_length(
        plaintext_len) == gcm_len


def test_cbc_accepts_peer_padding_longer_than_a_block():
    """RFC 7296 §3.14 lets the sender pad with up to 255 octets."""
    c = get_sk_cipher(EncrId.AES_CBC, 256, IntegId.HMAC_SHA2_256_128)
    sk_e, sk_a = keys_for(c)
    payload = b"inner payloads!"  # 15 octets + 48 padding + pad length = 4 blocks
    padded = payload + b"\xee" * 48 + bytes((48,))
    body = c._seal_padded(sk_e, sk_a, ASSOC, padded, None)
    assert c.open(sk_e, sk_a, ASSOC, body) == payload


def test_gcm_ivs_never_repeat():
    c = get_sk_cipher(EncrId.AES_GCM_16, 128, IntegId.NONE)
    sk_e, sk_a = keys_for(c)
    ivs = [c.seal(sk_e, sk_a, ASSOC, b"x")[:8] for _ in range(200)]
    assert len(set(ivs)) == len(ivs)
    counters = [int.from_bytes(iv, "big") for iv in ivs]
    assert all((b - a) % 2**64 == 1 for a, b in zip(counters, counters[1:]))


def test_cbc_ivs_are_random():
    c = get_sk_cipher(EncrId.AES_CBC, 128, IntegId.HMAC_SHA2_256_128)
    sk_e, sk_a = keys_for(c)
    assert c.seal(sk_e, sk_a, ASSOC, b"x")[:16] != c.seal(sk_e, sk_a, ASSOC, b"x")[:16]


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_tampered_and_truncated_bodies(suite):
    c = get_sk_cipher(*suite)
    sk_e, sk_a = keys_for(c)
    body = c.seal(sk_e, sk_a, ASSOC, b"IDi AUTH SA TSi TSr" * 3)
    for bad in (
        body[:-1],  # truncated ICV
        body[:-c.icv_size],  # no ICV at all
        body[: c.iv_size],  # IV only
        b"",
        body + b"\x00",  # trailing garbage
        body[:-1] + bytes((body[-1] ^ 0x80,)),  # ICV bit
        body[:5] + bytes((body[5] ^ 1,)) + body[6:],  # IV bit
    ):
        with pytest.raises(IntegrityError):
            c.open(sk_e, sk_a, ASSOC, bad)
    with pytest.raises(IntegrityError):
        c.open(sk_e, sk_a, ASSOC[:-1] + b"\xff", body)  # header changed
    wrong_e = bytes([sk_e[0] ^ 1]) + sk_e[1:]
    with pytest.raises(IntegrityError):
        c.open(wrong_e if c.is_aead else sk_e, sk_a if c.is_aead else b"\x23" * len(sk_a),
               ASSOC, body)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_wrong_key_lengths_are_caller_errors(suite):
    c = get_sk_cipher(*suite)
    sk_e, sk_a = keys_for(c)
    body = c.seal(sk_e, sk_a, ASSOC, b"payload")
    for e, a in ((sk_e[:-1], sk_a), (sk_e, sk_a + b"\x00")):
        with pytest.raises(CryptoError) as info:
            c.open(e, a, ASSOC, body)
        assert not isinstance(info.value, IntegrityError)
        with pytest.raises(CryptoError):
            c.seal(e, a, ASSOC, b"payload")
    with pytest.raises(CryptoError):
        c.seal(sk_e, sk_a, ASSOC, b"payload", iv=b"\x00" * (c.iv_size + 1))


@pytest.mark.parametrize(
    "encr, bits, integ",
    [
        (EncrId.AES_GCM_16, 128, IntegId.HMAC_SHA2_256_128),  # AEAD with integrity
        (EncrId.AES_CBC, 128, IntegId.NONE),  # CBC without integrity
        (EncrId.AES_CBC, 192, IntegId.HMAC_SHA2_256_128),
        (EncrId.AES_GCM_16, 192, IntegId.NONE),
        (EncrId.AES_CBC, 128, IntegId.HMAC_MD5_96),
        (EncrId.AES_CBC, 128, IntegId.AES_XCBC_96),
        (EncrId.TRIPLE_DES, 128, IntegId.HMAC_SHA1_96),
        (EncrId.AES_GCM_8, 128, IntegId.NONE),
        (EncrId.CHACHA20_POLY1305, 256, IntegId.NONE),
        (999, 128, IntegId.NONE),
    ],
)
def test_unsupported_combinations(encr, bits, integ):
    with pytest.raises(UnsupportedAlgorithm):
        get_sk_cipher(encr, bits, integ)


# -- properties ---------------------------------------------------------------

suite_st = st.sampled_from(SUITES)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(suite=suite_st, assoc=st.binary(max_size=64), plaintext=st.binary(max_size=600),
       seed=st.binary(min_size=1, max_size=1))
def test_round_trip(suite, assoc, plaintext, seed):
    c = get_sk_cipher(*suite)
    sk_e, sk_a = seed * c.key_size, (seed * 2)[:1] * c.integ_key_size
    body = c.seal(sk_e, sk_a, assoc, plaintext)
    assert len(body) == c.encrypted_length(len(plaintext))
    assert c.open(sk_e, sk_a, assoc, body) == plaintext


@FAST
@given(suite=suite_st, assoc=st.binary(max_size=40), plaintext=st.binary(max_size=100),
       data=st.data())
def test_any_single_bit_flip_is_rejected(suite, assoc, plaintext, data):
    c = get_sk_cipher(*suite)
    sk_e, sk_a = keys_for(c)
    body = c.seal(sk_e, sk_a, assoc, plaintext)
    message = bytearray(assoc + body)
    bit = data.draw(st.integers(0, len(message) * 8 - 1))
    message[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(IntegrityError):
        c.open(sk_e, sk_a, bytes(message[: len(assoc)]), bytes(message[len(assoc):]))


@FAST
@given(suite=suite_st, assoc=st.binary(max_size=40), body=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_integrity_error(suite, assoc, body):
    c = get_sk_cipher(*suite)
    sk_e, sk_a = keys_for(c)
    with pytest.raises(IntegrityError):
        c.open(sk_e, sk_a, assoc, body)
