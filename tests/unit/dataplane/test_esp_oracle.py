"""EspSa against scapy's SecurityAssociation as an independent oracle, both ways."""

import os

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

from dataplane.esp import NH_IPV4, NH_IPV6, DropReason, EspDrop, EspSa

SPI = 0xC0FFEE01
OUTER = dict(src="192.0.2.1", dst="192.0.2.2")

# (vgw encr, key bytes, vgw integ, integ key bytes, scapy crypt, scapy auth)
SUITES = [
    ("aes-gcm-16", 16 + 4, None, 0, "AES-GCM", None),
    ("aes-gcm-16", 32 + 4, None, 0, "AES-GCM", None),
    ("aes-cbc", 16, "hmac-sha1-96", 20, "AES-CBC", "HMAC-SHA1-96"),
    ("aes-cbc", 32, "hmac-sha1-96", 20, "AES-CBC", "HMAC-SHA1-96"),
    ("aes-cbc", 16, "hmac-sha2-256-128", 32, "AES-CBC", "SHA2-256-128"),
    ("aes-cbc", 32, "hmac-sha2-256-128", 32, "AES-CBC", "SHA2-256-128"),
    ("aes-cbc", 16, "hmac-sha2-384-192", 48, "AES-CBC", "SHA2-384-192"),
    ("aes-cbc", 32, "hmac-sha2-384-192", 48, "AES-CBC", "SHA2-384-192"),
    ("aes-cbc", 16, "hmac-sha2-512-256", 64, "AES-CBC", "SHA2-512-256"),
    ("aes-cbc", 32, "hmac-sha2-512-256", 64, "AES-CBC", "SHA2-512-256"),
]
# e.g. "aes-gcm-16-128-None", "aes-cbc-256-hmac-sha1-96" (GCM keys carry a 4-byte salt)
IDS = [f"{s[0]}-{(s[1] - (4 if s[0] == 'aes-gcm-16' else 0)) * 8}-{s[2]}" for s in SUITES]


def make(suite, seed=0):
    encr, klen, integ, iklen, s_crypt, s_auth = suite
    rnd = __import__("random").Random(seed)
    key = bytes(rnd.getrandbits(8) for _ in range(klen))
    ikey = bytes(rnd.getrandbits(8) for _ in range(iklen)) if iklen else None
    ours = lambda **kw: EspSa(SPI, encr, key, integ, ikey, **kw)  # noqa: E731
    theirs = SecurityAssociation(
        ESP,
        spi=SPI,
        crypt_algo=s_crypt,
        crypt_key=key,
        auth_algo=s_auth,
        auth_key=ikey,
        tunnel_header=IP(**OUTER),
    )
    return ours, theirs


def inner_packets():
    # Sizes chosen to hit every padding length for both block sizes.
    pkts = []
    for n in range(0, 40):
        pkts.append(bytes(IP(src="169.254.10.2", dst="169.254.10.1") / ICMP(id=7, seq=n) / Raw(b"a" * n)))
    pkts.append(bytes(IP(src="10.1.0.1", dst="10.2.0.1") / UDP(sport=1, dport=2) / Raw(os.urandom(1400))))
    pkts.append(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / Raw(b"v6" * 50)))
    return pkts


def esp_of(scapy_pkt) -> bytes:
    return bytes(scapy_pkt[ESP])


def as_ip(esp: bytes):
    return IP(bytes(IP(proto=50, **OUTER) / Raw(esp)))


@pytest.mark.parametrize("suite", SUITES, ids=IDS)
def test_vgw_encrypts_scapy_decrypts(suite):
    ours, theirs = make(suite)
    sa = ours()
    total = 0
    for i, inner in enumerate(inner_packets(), start=1):
        esp = sa.encrypt(inner)
        assert esp[:4] == SPI.to_bytes(4, "big")
        assert int.from_bytes(esp[4:8], "big") == i  # RFC 4303 §3.3.3: first seq is 1
        decrypted = theirs.decrypt(as_ip(esp))
        assert bytes(decrypted) == inner
        total += len(inner)
    assert sa.packets == len(inner_packets())
    assert sa.bytes == total  # inner bytes (AWS TunnelDataOut: before encryption)


@pytest.mark.parametrize("suite", SUITES, ids=IDS)
def test_scapy_encrypts_vgw_decrypts(suite):
    ours, theirs = make(suite)
    sa = ours()
    total = 0
    for inner in inner_packets():
        pkt = IPv6(inner) if inner[0] >> 4 == 6 else IP(inner)
        esp = esp_of(theirs.encrypt(pkt))
        assert sa.decrypt(esp) == inner
        total += len(inner)
    assert sa.packets == len(inner_packets())
    assert sa.bytes == total  # AWS TunnelDataIn: after decryption
    assert sa.drop_counts() == {}


ICV_LEN = {None: 16, "hmac-sha1-96": 12, "hmac-sha2-256-128": 16, "hmac-sha2-384-192": 24, "hmac-sha2-512-256": 32}


@pytest.mark.parametrize("suite", SUITES, ids=IDS)
def test_lengths_and_minimal_padding(suite):
    ours, _ = make(suite)
    sa = ours()
    encr, integ = suite[0], suite[2]
    block, iv = (4, 8) if encr == "aes-gcm-16" else (16, 16)  # RFC 4303 §2.4, RFC 3602
    for inner in inner_packets():
        esp = sa.encrypt(inner)
        ct_len = len(esp) - 8 - iv - ICV_LEN[integ]
        assert ct_len % block == 0
        assert 0 <= ct_len - len(inner) - 2 < block


@pytest.mark.parametrize("suite", SUITES, ids=IDS)
def test_padding_and_next_header_seen_by_scapy(suite):
    """scapy's ESP-level decrypt shows the pad bytes and next header we sent."""
    ours, theirs = make(suite)
    sa = ours()
    for inner in inner_packets():
        esp = sa.encrypt(inner)
        alg = theirs.crypt_algo
        # scapy's low-level decrypt keeps the trailer fields on the _ESPPlain object.
        plain = alg.decrypt(theirs, ESP(esp), theirs.crypt_key, ICV_LEN[suite[2]])
        assert plain.nh == (NH_IPV6 if inner[0] >> 4 == 6 else NH_IPV4)
        assert bytes(plain.padding) == bytes(range(1, plain.padlen + 1))


@pytest.mark.parametrize("suite", SUITES, ids=IDS)
def test_reordered_within_window_from_scapy(suite):
    ours, theirs = make(suite)
    sa = ours(replay_window=64)
    inner = inner_packets()[3]
    pkts = {n: esp_of(theirs.encrypt(IP(inner), seq_num=n)) for n in range(1, 101)}
    order = [100, 50, 99, 37, 60, 61, 98]
    for n in order:
        assert sa.decrypt(pkts[n]) == inner
    assert sa.packets == len(order)


@pytest.mark.parametrize("batch", [False, True], ids=["open", "open_batch"])
@pytest.mark.parametrize("suite", SUITES, ids=IDS)
def test_replayed_scapy_packets_are_dropped_and_leave_the_window(suite, batch):
    """RFC 4303 §3.4.3 with an independent sender: each scapy-made packet passes
    once; sent again (inside the window or left of it) it is dropped, counted as
    replay, and the window (top and bitmap) does not move."""
    ours, theirs = make(suite)
    sa = ours(replay_window=64)
    inner = inner_packets()[5]
    pkts = {n: esp_of(theirs.encrypt(IP(inner), seq_num=n)) for n in (1, 2, 3, 70, 71, 100)}
    for n in (1, 2, 3, 70, 100, 71):
        assert sa.decrypt(pkts[n]) == inner
    window = (sa.replay.top, sa.replay.bits)
    assert window[0] == 100
    replays = [pkts[n] for n in (100, 71, 70, 3, 1)]   # 3 and 1: left of the window now
    if batch:
        assert sa.open_batch(replays) == []
    else:
        for pkt in replays:
            with pytest.raises(EspDrop) as info:
                sa.decrypt(pkt)
            assert info.value.reason is DropReason.REPLAY
    assert sa.drop_counts() == {"replay": len(replays)}
    assert (sa.replay.top, sa.replay.bits) == window
    assert sa.packets == 6
