"""dataplane.offload: GRO into the TUN and TSO splitting, against scapy-built packets.

Oracles: scapy computes every checksum independently (RFC 1071 words summed by its own
code); the expected coalesced packet is built by scapy from the concatenated payload.
"""

import os
import random

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.utils import checksum as scapy_checksum

from dataplane.offload import (
    GSO_NONE,
    GSO_TCPV4,
    GSO_UDP_L4,
    MAX_GRO_SEGS,
    PLAIN_HDR,
    VNET_F_NEEDS_CSUM,
    VNET_HDR_LEN,
    Gro,
    coalesce,
    complete_csum,
    csum16,
    parse_vnet_hdr,
    tso_split,
    vnet_hdr,
)

SRC, DST = "172.16.1.10", "10.0.1.10"
TS = [("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000))]


def tcp_seg(seq, payload, flags="A", ip_id=1, sport=40000, dport=5201, ack=777, window=501, opts=TS, **ip):
    pkt = IP(src=SRC, dst=DST, id=ip_id, flags="DF", ttl=63, **ip) / TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window, options=opts) / payload
    return bytes(pkt)


def udp_dgram(payload, ip_id=1, sport=40001, dport=5201):
    return bytes(IP(src=SRC, dst=DST, id=ip_id, flags="DF", ttl=63) / UDP(sport=sport, dport=dport) / payload)


def segments(n, mss, start_seq=1000, last_len=None, last_flags="A", first_id=1):
    pays = [os.urandom(mss) for _ in range(n)]
    if last_len is not None:
        pays[-1] = pays[-1][:last_len]
    pkts, seq = [], start_seq
    for i, pay in enumerate(pays):
        pkts.append(tcp_seg(seq, pay, flags=last_flags if i == n - 1 else "A", ip_id=first_id + i))
        seq += len(pay)
    return pkts, pays


def split_frame(frame):
    return parse_vnet_hdr(frame), frame[VNET_HDR_LEN:]


def checksum_ok(pkt: bytes) -> bool:
    """scapy's verdict: recompute IP and transport checksums and compare."""
    p = IP(pkt)
    q = IP(pkt)
    del q.chksum
    l4 = q.payload
    del l4.chksum
    q = IP(bytes(q))
    return p.chksum == q.chksum and p.payload.chksum == q.payload.chksum


# -- checksum --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 3, 20, 63, 64, 1379, 1400, 1401, 9000, 65000])
def test_csum16_matches_scapy(n):
    data = os.urandom(n)
    # scapy's checksum() returns the complement of the folded sum
    expected = (~scapy_checksum(data)) & 0xFFFF if n else 0
    got = csum16(data)
    assert got % 0xFFFF == expected % 0xFFFF


def test_csum16_edge_values():
    assert csum16(b"\xff\xff") == 0  # 0xFFFF is ones'-complement zero
    assert csum16(b"\x00\x01\xff\xfe") == 0
    assert csum16(b"\x12") == 0x1200  # odd byte padded on the right (RFC 1071)


# -- GRO -------------------------------------------------------------------------------

def test_tcp_run_coalesced_into_one_gso_frame():
    pkts, pays = segments(5, 1379, last_flags="PA")
    frames = coalesce(pkts)
    assert len(frames) == 1
    (flags, gso_type, hdr_len, gso_size, cs, co), sup = split_frame(frames[0])
    assert (flags, gso_type, hdr_len, gso_size, cs, co) == (VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, 1379, 20, 16)
    got = IP(sup)
    assert got.len == len(sup) == 52 + 5 * 1379
    assert bytes(got[TCP].payload) == b"".join(pays)
    assert got[TCP].seq == 1000 and got[TCP].flags == "PA"  # PSH of the last segment kept
    assert got.id == 1 and got.ttl == 63 and got.flags == "DF"
    # the IP header checksum is complete
    h = bytearray(sup[:20]); h[10:12] = b"\0\0"
    assert int.from_bytes(sup[10:12], "big") == scapy_checksum(bytes(h))
    # the TCP checksum is partial: finishing it gives what scapy computes for the whole packet
    done = complete_csum(sup, 20, 16)
    assert checksum_ok(done)
    # and the kernel's segmentation of it (our tso_split as the model) gives back the segments
    assert tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, 1379, 20, 16) + sup) == pkts


def test_single_packet_written_plain():
    pkts, _ = segments(1, 1400)
    assert coalesce(pkts) == [PLAIN_HDR + pkts[0]]


def test_gap_in_sequence_starts_a_new_run():
    a, _ = segments(3, 1000, start_seq=1000)
    b, _ = segments(3, 1000, start_seq=9000, first_id=10)
    frames = coalesce(a + b)
    assert len(frames) == 2
    assert [IP(f[VNET_HDR_LEN:])[TCP].seq for f in frames] == [1000, 9000]


def test_shorter_segment_closes_run_and_psh_closes_run():
    a, _ = segments(3, 1000, last_len=500)
    more = tcp_seg(1000 + 2500, b"x" * 1000, ip_id=9)
    frames = coalesce(a + [more])
    assert [split_frame(f)[0][1] for f in frames] == [GSO_TCPV4, GSO_NONE]
    assert IP(frames[0][VNET_HDR_LEN:]).len == 52 + 2500
    a, _ = segments(2, 1000, last_flags="PA")
    frames = coalesce(a + [tcp_seg(3000, b"y" * 1000, ip_id=9)])
    assert len(frames) == 2


def test_pure_ack_and_fin_keep_flow_order():
    a, _ = segments(3, 1000)
    ack = tcp_seg(4000, b"", ip_id=20)
    after, _ = segments(2, 1000, start_seq=4000, first_id=30)
    fin = tcp_seg(6000, b"z" * 10, flags="FA", ip_id=40)
    frames = coalesce(a + [ack] + after + [fin])
    inner = [f[VNET_HDR_LEN:] for f in frames]
    assert len(frames) == 4
    assert inner[1] == ack and inner[3] == fin
    assert [IP(p)[TCP].seq for p in inner] == [1000, 4000, 4000, 6000]


def test_interleaved_flows_coalesce_separately():
    a, pa = segments(4, 1200)
    b = [tcp_seg(50000 + i * 1200, os.urandom(1200), sport=40002, ip_id=100 + i) for i in range(4)]
    mixed = [x for pair in zip(a, b) for x in pair]
    frames = coalesce(mixed)
    assert len(frames) == 2
    sups = [IP(f[VNET_HDR_LEN:]) for f in frames]
    assert {s[TCP].sport for s in sups} == {40000, 40002}
    assert bytes(sups[0][TCP].payload) == b"".join(pa)


@pytest.mark.parametrize("change", ["ack", "window", "options", "ttl", "tos"])
def test_header_differences_prevent_coalescing(change):
    p1 = tcp_seg(1000, b"a" * 1000)
    kw = {"ack": dict(ack=778), "window": dict(window=502),
          "options": dict(opts=[("NOP", None), ("NOP", None), ("Timestamp", (1001, 2000))]),
          "ttl": {}, "tos": dict(tos=4)}[change]
    p2 = tcp_seg(2000, b"b" * 1000, ip_id=2, **kw)
    if change == "ttl":
        p2 = bytes(IP(src=SRC, dst=DST, id=2, flags="DF", ttl=62) / TCP(
            sport=40000, dport=5201, seq=2000, ack=777, flags="A", window=501, options=TS) / (b"b" * 1000))
    assert len(coalesce([p1, p2])) == 2


def test_size_and_segment_caps():
    pkts, _ = segments(60, 1400)  # 84 KB: more than one IP packet holds
    frames = coalesce(pkts)
    assert len(frames) == 2
    lens = [IP(f[VNET_HDR_LEN:]).len for f in frames]
    assert all(n <= 65535 for n in lens)
    assert sum(n - 52 for n in lens) == 60 * 1400
    small, _ = segments(MAX_GRO_SEGS + 6, 100)
    frames = coalesce(small)
    assert [ (IP(f[VNET_HDR_LEN:]).len - 52) // 100 for f in frames] == [MAX_GRO_SEGS, 6]


def test_fragments_options_and_ipv6_are_written_alone():
    frag = bytes(IP(src=SRC, dst=DST, flags="MF", id=5) / UDP(sport=1, dport=2) / (b"f" * 100))
    opt = bytes(IP(src=SRC, dst=DST, options=[b"\x01\x01\x01\x00"]) / TCP(seq=5, flags="A") / (b"o" * 100))
    v6 = bytes.fromhex("6000000000083a40") + bytes(32) + bytes(8)
    frames = coalesce([frag, opt, v6, b"\x45"])
    assert frames == [PLAIN_HDR + frag, PLAIN_HDR + opt, PLAIN_HDR + v6, PLAIN_HDR + b"\x45"]


def test_udp_equal_datagrams_become_one_uso_frame():
    pays = [os.urandom(64) for _ in range(10)] + [b"short"]
    dgrams = [udp_dgram(p, ip_id=i + 1) for i, p in enumerate(pays)]
    frames = coalesce(dgrams)
    assert len(frames) == 1
    (flags, gso_type, hdr_len, gso_size, cs, co), sup = split_frame(frames[0])
    assert (flags, gso_type, hdr_len, gso_size, cs, co) == (VNET_F_NEEDS_CSUM, GSO_UDP_L4, 28, 64, 20, 6)
    u = IP(sup)
    assert u.len == len(sup) and u[UDP].len == len(sup) - 20
    assert bytes(u[UDP].payload) == b"".join(pays)
    assert checksum_ok(complete_csum(sup, 20, 6))
    assert tso_split(frames[0]) == dgrams
    # a longer datagram starts a new run; without USO every datagram goes alone
    assert len(coalesce(dgrams[:3] + [udp_dgram(b"L" * 65)])) == 2
    assert coalesce(dgrams[:3], uso=False) == [PLAIN_HDR + d for d in dgrams[:3]]


def test_gro_object_is_reusable_and_counts():
    g = Gro()
    pkts, _ = segments(3, 1000)
    for p in pkts:
        g.add(p)
    assert g.segs == 3
    assert len(g.flush()) == 1 and g.segs == 0
    assert g.flush() == []


def test_packets_given_inside_longer_buffers_give_the_same_frames():
    """add(buf, n) - the packet is buf[:n], followed by an ESP trailer - writes
    exactly what add(packet) writes: runs, lone packets, UDP and TCP alike."""
    tcp, _ = segments(5, 1000, last_len=300)
    mixed = tcp + [udp_dgram(b"u" * 64, ip_id=i) for i in range(3)] + [tcp_seg(9, b"", flags="FA")]
    mixed.insert(2, tcp_seg(50, b"x" * 10, flags="A", sport=40005))   # a lone one between runs
    for uso in (True, False):
        plain, spans = Gro(uso), Gro(uso)
        for p in mixed:
            plain.add(p)
            spans.add(p + bytes([1, 2, 3, 3, 4]), len(p))   # trailer: padding, pad length, next header
        assert [b"".join(f) for f in spans.flush()] == [b"".join(f) for f in plain.flush()]


def test_random_streams_round_trip():
    """Any mix of flows, sizes and gaps: splitting what GRO wrote gives back exactly
    the packets, in per-flow order."""
    rng = random.Random(7)
    for _ in range(30):
        seqs = {40000: 1, 40002: 50_000}
        pkts = []
        for i in range(rng.randrange(1, 80)):
            sport = rng.choice([40000, 40002])
            size = rng.choice([1000, 1000, 1000, 300, 0])
            flags = rng.choice(["A"] * 8 + ["PA", "FA"])
            if rng.random() < 0.05:
                seqs[sport] += 7  # a gap
            pkts.append(tcp_seg(seqs[sport], bytes([i & 255]) * size, flags=flags, sport=sport, ip_id=i))
            seqs[sport] += size
        out = []
        for f in coalesce(pkts):
            segs = tso_split(f)
            assert segs is not None
            out.extend(segs)
        def by_flow(ps, sp):
            return [(IP(p)[TCP].seq, bytes(IP(p)[TCP].payload)) for p in ps if IP(p)[TCP].sport == sp]
        for sp in (40000, 40002):
            assert by_flow(out, sp) == by_flow(pkts, sp)
        for p in out:
            assert checksum_ok(p)


# -- TSO split ---------------------------------------------------------------------------

def partial(pkt: bytes, proto_off: int) -> bytes:
    """``pkt`` as the kernel hands a CHECKSUM_PARTIAL packet: transport checksum field =
    the pseudo-header sum, not complemented."""
    ip = IP(pkt)
    tl = ip.len - ip.ihl * 4
    s = (int.from_bytes(pkt[12:20], "big") + ip.proto + tl) % 0xFFFF
    at = ip.ihl * 4 + proto_off
    return pkt[:at] + s.to_bytes(2, "big") + pkt[at + 2:]


@pytest.mark.parametrize("mss,total", [(1379, 5000), (1400, 2800), (536, 537), (1448, 1448)])
def test_tso_split_tcp_against_scapy(mss, total):
    payload = os.urandom(total)
    big = tcp_seg(70000, payload, flags="FPA", ip_id=300)
    frame = vnet_hdr(VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, mss, 20, 16) + partial(big, 16)
    got = tso_split(frame)
    want = []
    for i, off in enumerate(range(0, total, mss)):
        last = off + mss >= total
        want.append(tcp_seg(70000 + off, payload[off:off + mss], flags="FPA" if last else "A", ip_id=300 + i))
    assert got == want


def test_tso_split_cwr_only_on_first():
    big = tcp_seg(1, os.urandom(3000), flags="CA")
    segs = tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, 1000, 20, 16) + partial(big, 16))
    assert [int(IP(s)[TCP].flags) for s in segs] == [0x90, 0x10, 0x10]  # CWR|ACK, ACK, ACK
    assert all(checksum_ok(s) for s in segs)


def test_tso_split_udp_l4_against_scapy():
    pays = [os.urandom(1200) for _ in range(3)] + [os.urandom(100)]
    big = udp_dgram(b"".join(pays), ip_id=9)
    segs = tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_UDP_L4, 28, 1200, 20, 6) + partial(big, 6))
    assert segs == [udp_dgram(p, ip_id=9 + i) for i, p in enumerate(pays)]


def test_plain_and_partial_frames():
    pkt = tcp_seg(5, b"hello")
    assert tso_split(PLAIN_HDR + pkt) == [pkt]
    assert tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_NONE, 0, 0, 20, 16) + partial(pkt, 16)) == [pkt]
    u = udp_dgram(b"x" * 33)
    assert tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_NONE, 0, 0, 20, 6) + partial(u, 6)) == [u]


def test_tso_split_rejects_what_it_cannot_do():
    pkt = tcp_seg(5, b"x" * 3000)
    assert tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, 4, 52, 1000, 20, 16) + pkt) is None  # TCPv6 GSO
    assert tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, 0, 20, 16) + pkt) is None
    assert tso_split(vnet_hdr(VNET_F_NEEDS_CSUM, GSO_NONE, 0, 0, 5000, 16) + pkt) is None
