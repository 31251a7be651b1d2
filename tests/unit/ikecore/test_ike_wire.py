"""IKEv2 wire format (RFC 7296 §3): round trips, byte layouts, strict parsing.

Byte strings below are written from the RFC's diagrams (field by field), not
taken from the encoder's output. Whatever is wrong with the bytes, parsing
raises ParseError (or, inside SK, IntegrityError) and nothing else.
"""

import ipaddress
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikecore.constants import NotifyType, PayloadType
from ikecore.crypto import IntegrityError
from ikecore.errors import ParseError
from ikecore.message import Header, decode_chain, decode_message, encode_chain, encode_message
from ikecore.payloads import (
    AuthPayload, CertPayload, CertReqPayload, CpPayload, DeletePayload, EapPayload,
    IdiPayload, IdrPayload, KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload,
    SkfPayload, SkPayload, Transform, TrafficSelector, TsiPayload, TsrPayload,
    UnknownPayload, VendorPayload,
)

SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("1112131415161718")


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def generic(next_type: int, body: bytes, critical: bool = False) -> bytes:
    """RFC 7296 §3.2 generic payload header + body."""
    return struct.pack("!BBH", next_type, 0x80 if critical else 0, 4 + len(body)) + body


def header(next_type: int, body_len: int, exchange: int = 34, flags: int = 0x08,
           msgid: int = 0, version: int = 0x20, spi_r: bytes = bytes(8)) -> bytes:
    """RFC 7296 §3.1 IKE header."""
    return SPI_I + spi_r + struct.pack("!BBBBII", next_type, version, exchange, flags, msgid,
                                       28 + body_len)


def message(chain: list[tuple[int, bytes]], **kw) -> bytes:
    """A plaintext message from (type, body) pairs."""
    out = b""
    for i, (ptype, body) in enumerate(chain):
        nxt = chain[i + 1][0] if i + 1 < len(chain) else 0
        out += generic(nxt, body)
    return header(chain[0][0] if chain else 0, len(out), **kw) + out


def transform(ttype, tid, key_len=None, last=True, attrs=b"") -> bytes:
    """RFC 7296 §3.3.2, with the Key Length attribute of §3.3.5 (TV, AF=1, type 14)."""
    if key_len is not None:
        attrs = struct.pack("!HH", 0x800E, key_len) + attrs
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attrs), ttype, 0, tid) + attrs


def proposal(num, proto, spi, transforms: list[bytes], last=True, count=None) -> bytes:
    """RFC 7296 §3.3.1."""
    body = b"".join(transforms)
    n = len(transforms) if count is None else count
    return struct.pack("!BBHBBBB", 0 if last else 2, 0, 8 + len(spi) + len(body), num, proto,
                       len(spi), n) + spi + body


AES128 = transform(1, 12, 128, last=False)
SHA256_PRF = transform(2, 5, last=False)
SHA256_INTEG = transform(3, 12, last=False)
MODP2048 = transform(4, 14)
IKE_PROPOSAL = [AES128, SHA256_PRF, SHA256_INTEG, MODP2048]


# --- byte layouts --------------------------------------------------------------------------


def test_transform_with_key_length_layout():
    t = Transform(1, 12, 128)
    assert t.encode(last=True) == h("00 00 000c 01 00 000c 800e 0080")
    assert t.encode(last=False)[0] == 3  # §3.3.2: 3 = more transforms follow


def test_proposal_layout():
    p = Proposal(1, 3, h("c0ffee01"), (Transform(1, 20, 256), Transform(5, 0)))
    assert p.encode(last=True) == (h("00 00 0020 01 03 04 02 c0ffee01")
                                   + h("03 00 000c 01 00 0014 800e 0100")
                                   + h("00 00 0008 05 00 0000"))


def test_header_layout():
    hd = Header(SPI_I, SPI_R, 33, 34, 0x20, 7, 100)
    assert hd.encode() == SPI_I + SPI_R + h("21 20 22 20 00000007 00000064")


def test_bodies_layout():
    assert KePayload(14, b"\xaa" * 4).encode_body() == h("000e 0000 aaaaaaaa")
    assert NotifyPayload(16388, b"\x01" * 20).encode_body() == h("00 00 4004") + b"\x01" * 20
    assert NotifyPayload(11, b"", 3, h("01020304")).encode_body() == h("03 04 000b 01020304")
    assert DeletePayload(1).encode_body() == h("01 00 0000")
    assert DeletePayload(3, [h("00000101"), h("00000202")]).encode_body() == \
        h("03 04 0002 00000101 00000202")
    assert IdiPayload(1, ipaddress.IPv4Address("198.51.100.1").packed).encode_body() == \
        h("01 000000 c6336401")
    assert AuthPayload(2, b"\x55" * 3).encode_body() == h("02 000000 555555")
    ts = TrafficSelector(ipaddress.IPv4Address("10.0.0.0"), ipaddress.IPv4Address("10.0.255.255"))
    assert TsiPayload([ts]).encode_body() == h("01 000000 07 00 0010 0000 ffff 0a000000 0a00ffff")


def test_encode_chain_links_payloads_and_critical_bit():
    n = NotifyPayload(16384)
    n.critical = True
    first, data = encode_chain([NoncePayload(b"\x01" * 16), n])
    assert first == PayloadType.NONCE
    assert data == generic(41, b"\x01" * 16) + h("00 80 0008 00 00 4000")


# --- round trips -------------------------------------------------------------------------------

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

PAYLOADS = [
    SaPayload([Proposal(1, 1, b"", (Transform(1, 12, 256), Transform(2, 7), Transform(3, 14),
                                    Transform(4, 21))),
               Proposal(2, 1, b"", (Transform(1, 20, 128), Transform(2, 2), Transform(4, 19)))]),
    SaPayload([Proposal(1, 3, h("deadbeef"), (Transform(1, 12, 128), Transform(3, 2),
                                               Transform(5, 0), Transform(5, 1)))]),
    SaPayload([Proposal(2, 3, h("00001000"), (Transform(1, 20, 256),))]),  # an answer
    KePayload(19, bytes(range(64))),
    NoncePayload(bytes(range(32))),
    NoncePayload(b"\x07" * 16),
    NoncePayload(b"\x07" * 256),
    IdiPayload(1, V4("198.51.100.1").packed),
    IdrPayload(2, b"vpn.example.com"),
    IdiPayload(5, V6("2001:db8::1").packed),
    IdrPayload(11, b"\x00\x01key-id"),
    AuthPayload(2, bytes(range(48))),
    NotifyPayload(16388, b"\x02" * 20),
    NotifyPayload(17, struct.pack("!H", 14)),
    NotifyPayload(11, b"", 3, h("11223344")),
    NotifyPayload(16393, b"", 3, h("55667788")),
    DeletePayload(1),
    DeletePayload(3, [h("00001000")]),
    DeletePayload(3, [h("00001000"), h("00002000"), h("00003000")]),
    VendorPayload(b"vgw"),
    TsiPayload([TrafficSelector(V4("0.0.0.0"), V4("255.255.255.255"))]),
    TsrPayload([TrafficSelector(V4("10.0.0.0"), V4("10.0.255.255"), 6, 443, 443),
                TrafficSelector(V6("2001:db8::"), V6("2001:db8::ffff"), 17, 0, 65535)]),
    CertPayload(4, b"\x30\x82\x01\x00"),
    CertReqPayload(4, b"\x01" * 40),
    CertReqPayload(4),
    CpPayload(2, [(1, V4("10.0.0.1").packed), (3, b"")]),
    CpPayload(1),
    EapPayload(h("01 02 0005 01")),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_payload_round_trip(payload):
    decoded = type(payload).decode_body(payload.encode_body())
    assert decoded == payload
    assert decoded.encode_body() == payload.encode_body()


def test_every_payload_class_is_covered():
    from ikecore.payloads import PAYLOAD_CLASSES
    assert set(PAYLOAD_CLASSES.values()) <= {type(p) for p in PAYLOADS}


def test_chain_round_trip():
    first, data = encode_chain(PAYLOADS)
    assert decode_chain(first, data) == PAYLOADS


def test_message_round_trip_plain():
    hd = Header(SPI_I, bytes(8), 0, 34, 0x08, 0, 0)
    payloads = [PAYLOADS[0], KePayload(19, b"\x04" * 64), NoncePayload(b"\x01" * 32)]
    data = encode_message(hd, payloads)
    msg = decode_message(data)
    assert msg.payloads == payloads
    assert (msg.header.spi_i, msg.header.exchange, msg.header.message_id) == (SPI_I, 34, 0)
    assert msg.header.from_initiator and not msg.is_response


def test_message_round_trip_encrypted():
    from ikecore.crypto import get_sk_cipher
    from ikecore.message import SaKeys
    keys = SaKeys(get_sk_cipher(20, 256, 0), b"\x01" * 36, b"\x02" * 36, b"", b"")
    hd = Header(SPI_I, SPI_R, 0, 35, 0x08, 1, 0)
    payloads = [IdiPayload(1, b"\xc6\x33\x64\x01"), AuthPayload(2, b"\x00" * 32)]
    data = encode_message(hd, payloads, keys, initiator_sent=True)
    assert data[16] == PayloadType.SK
    msg = decode_message(data, keys=keys)
    assert msg.encrypted and msg.payloads == payloads
    # the responder's keys do not open the initiator's message
    swapped = SaKeys(keys.cipher, keys.sk_er, keys.sk_ei, b"", b"")
    with pytest.raises(IntegrityError):
        decode_message(data, keys=swapped)


def test_skf_fragment_is_parsed():
    body = struct.pack("!HH", 2, 3) + b"\x00" * 40
    [skf] = decode_chain(PayloadType.SKF, generic(35, body))
    assert isinstance(skf, SkfPayload)
    assert (skf.first_inner, skf.number, skf.total) == (35, 2, 3)


# --- strict parsing: SA payload ------------------------------------------------------------------


def sa_error(body: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        SaPayload.decode_body(body)
    assert info.value.notify == NotifyType.INVALID_SYNTAX
    return info.value


def test_sa_well_formed_reference():
    sa = SaPayload.decode_body(proposal(1, 1, b"", IKE_PROPOSAL))
    [p] = sa.proposals
    assert [(t.type, t.id, t.key_length) for t in p.transforms] == \
        [(1, 12, 128), (2, 5, None), (3, 12, None), (4, 14, None)]


def test_sa_first_proposal_must_be_one_in_an_offer():
    sa_error(proposal(2, 1, b"", IKE_PROPOSAL, last=False) + proposal(3, 1, b"", IKE_PROPOSAL))


def test_sa_answer_keeps_the_offer_number():
    """§3.3.1: the accepted proposal keeps its number in the answer."""
    [p] = SaPayload.decode_body(proposal(2, 1, b"", IKE_PROPOSAL)).proposals
    assert p.num == 2


def test_sa_proposal_numbers_must_increase_by_one():
    sa_error(proposal(1, 1, b"", IKE_PROPOSAL, last=False) + proposal(3, 1, b"", IKE_PROPOSAL))
    sa_error(proposal(1, 1, b"", IKE_PROPOSAL, last=False)
             + proposal(2, 1, b"", IKE_PROPOSAL, last=False) + proposal(1, 1, b"", IKE_PROPOSAL))
    sa_error(proposal(0, 1, b"", IKE_PROPOSAL))


def test_sa_bad_last_more_values():
    good = proposal(1, 1, b"", IKE_PROPOSAL)
    sa_error(bytes([3]) + good[1:])   # 3 is a transform's "more", not a proposal's
    sa_error(bytes([1]) + good[1:])
    # last proposal says "more" but nothing follows
    sa_error(bytes([2]) + good[1:])
    # a transform's more/last field with a proposal's value
    bad_t = bytes([2]) + AES128[1:]
    sa_error(proposal(1, 1, b"", [bad_t, SHA256_PRF, SHA256_INTEG, MODP2048]))
    # the last transform says "more"
    sa_error(proposal(1, 1, b"", [AES128, SHA256_PRF, SHA256_INTEG, transform(4, 14, last=False)]))
    # a transform says "last" but another one follows
    sa_error(proposal(1, 1, b"", [transform(1, 12, 128), SHA256_PRF, MODP2048]))


def test_sa_wrong_transform_count():
    sa_error(proposal(1, 1, b"", IKE_PROPOSAL, count=3))
    sa_error(proposal(1, 1, b"", IKE_PROPOSAL, count=5))
    sa_error(proposal(1, 1, b"", IKE_PROPOSAL, count=0))


@pytest.mark.parametrize("proto,spi_len", [(1, 4), (1, 1), (3, 0), (3, 8), (2, 2)])
def test_sa_spi_size(proto, spi_len):
    """§3.3.1: IKE SPI 0 (or 8 when rekeying), ESP/AH SPI 4."""
    sa_error(proposal(1, proto, b"\x01" * spi_len, IKE_PROPOSAL))


def test_sa_valid_spi_sizes():
    assert SaPayload.decode_body(proposal(1, 1, b"\x01" * 8, IKE_PROPOSAL)).proposals[0].spi == b"\x01" * 8
    assert SaPayload.decode_body(proposal(1, 3, b"\x00\x00\x10\x00", [transform(1, 12, 128)])) \
        .proposals[0].spi == b"\x00\x00\x10\x00"


def test_sa_truncated_and_overlong():
    good = proposal(1, 1, b"", IKE_PROPOSAL)
    for cut in (1, 4, 8, 12, len(good) - 1):
        sa_error(good[:cut])
    sa_error(good + b"\x00")                          # bytes after the last proposal
    sa_error(good[:2] + struct.pack("!H", len(good) + 4) + good[4:])   # length beyond the data
    sa_error(good[:2] + struct.pack("!H", 7) + good[4:])               # shorter than its header
    # a transform whose length runs past its proposal
    long_t = AES128[:2] + struct.pack("!H", 200) + AES128[4:]
    sa_error(proposal(1, 1, b"", [long_t, SHA256_PRF, SHA256_INTEG, MODP2048]))
    sa_error(b"")


def test_transform_attributes():
    # a TLV attribute whose length runs past the transform
    tlv_bad = transform(1, 12, attrs=struct.pack("!HH", 0x0001, 10) + b"\x00\x00")
    sa_error(proposal(1, 1, b"", [tlv_bad[:0] + tlv_bad]))
    # the key length twice
    twice = transform(1, 12, 128, attrs=struct.pack("!HH", 0x800E, 256))
    sa_error(proposal(1, 1, b"", [twice]))
    # §3.3.6: an unknown attribute makes the transform unusable, not the message
    odd = transform(1, 12, 128, attrs=struct.pack("!HH", 0x8001, 1))
    [p] = SaPayload.decode_body(proposal(1, 1, b"", [odd])).proposals
    assert p.transforms[0].unknown_attrs and p.transforms[0].key_length == 128
    assert not SaPayload.decode_body(proposal(1, 1, b"", [transform(1, 12, 128)])) \
        .proposals[0].transforms[0].unknown_attrs


# --- strict parsing: other payloads ---------------------------------------------------------------


@pytest.mark.parametrize("cls,body", [
    (NoncePayload, b"\x01" * 15),                         # §3.9: 16..256 bytes
    (NoncePayload, b"\x01" * 257),
    (KePayload, h("000e 0000")),                          # no key exchange data
    (IdiPayload, h("01 000000 c63364")),                  # ID_IPV4_ADDR of 3 bytes
    (IdrPayload, h("05 000000") + b"\x00" * 4),           # ID_IPV6_ADDR of 4 bytes
    (IdiPayload, h("01 0000")),
    (AuthPayload, h("02 000000")),
    (NotifyPayload, h("03 04 000b 0102")),                 # SPI size beyond the payload
    (NotifyPayload, h("0000")),
    (DeletePayload, h("01 08 0001") + b"\x00" * 8),        # §3.11: IKE delete carries no SPI
    (DeletePayload, h("03 04 0002 00001000")),             # count says 2, one SPI
    (DeletePayload, h("03 08 0001") + b"\x00" * 8),        # ESP SPI of 8 bytes
    (DeletePayload, h("03 04 0001 00001000 00")),
    (TsiPayload, h("00 000000")),                          # no selectors
    (TsiPayload, h("01 000000 07 00 0014 0000 ffff 0a000000 0a00ffff 00000000")),  # v4 len 20
    (TsrPayload, h("01 000000 09 00 0010 0000 ffff 0a000000 0a00ffff")),            # type 9
    (TsrPayload, h("01 000000 07 00 0010 0000 ffff 0a000000 0a00")),                # truncated
    (TsrPayload, h("02 000000 07 00 0010 0000 ffff 0a000000 0a00ffff")),            # count 2, one
    (TsrPayload, h("01 000000 07 00 0010 0000 ffff 0a000000 0a00ffff 00")),         # trailing
    (CertReqPayload, h("04") + b"\x01" * 19),             # CA hashes are 20 bytes each
    (CpPayload, h("01 000000 0001 0008 0a00")),
    (EapPayload, h("0102")),
])
def test_payload_body_errors(cls, body):
    with pytest.raises(ParseError):
        cls.decode_body(body)


# --- strict parsing: chains and messages -------------------------------------------------------


NONCE = (40, b"\x01" * 32)
KE = (34, h("0013 0000") + b"\x04" * 64)


def test_well_formed_message_reference():
    msg = decode_message(message([(33, proposal(1, 1, b"", IKE_PROPOSAL)), KE, NONCE]))
    assert [type(p) for p in msg.payloads] == [SaPayload, KePayload, NoncePayload]


def test_header_errors():
    good = message([NONCE])
    with pytest.raises(ParseError):
        decode_message(good[:27])                           # shorter than the header
    with pytest.raises(ParseError):
        decode_message(good + b"\x00")                      # datagram longer than header says
    with pytest.raises(ParseError):
        decode_message(good[:-1])                           # header says more than arrived
    with pytest.raises(ParseError):
        decode_message(bytes(8) + good[8:])                 # §3.1: SPIi is never zero


def test_bad_major_version():
    data = message([NONCE], version=0x30)
    with pytest.raises(ParseError) as info:
        decode_message(data)
    assert info.value.notify == NotifyType.INVALID_MAJOR_VERSION
    assert info.value.notify_data == b"\x20"  # §2.5: the highest version we support


def test_minor_version_is_ignored():
    """§3.1: implementations MUST ignore the minor version of received messages."""
    assert decode_message(message([NONCE], version=0x21)).payloads == [NoncePayload(b"\x01" * 32)]


def test_trailing_bytes_after_last_payload():
    body = generic(0, b"\x01" * 32) + b"\x00\x00\x00"
    with pytest.raises(ParseError):
        decode_message(header(40, len(body)) + body)


@pytest.mark.parametrize("bad_len", [0, 3, 37, 200])
def test_payload_length_lies(bad_len):
    body = struct.pack("!BBH", 0, 0, bad_len) + b"\x01" * 32
    with pytest.raises(ParseError):
        decode_message(header(40, len(body)) + body)


def test_unknown_critical_payload():
    """§2.5: an unknown payload with the critical bit rejects the whole message,
    answered with UNSUPPORTED_CRITICAL_PAYLOAD carrying the payload type."""
    body = generic(40, b"\x00" * 4, critical=True) + generic(0, b"\x01" * 32)
    with pytest.raises(ParseError) as info:
        decode_message(header(99, len(body)) + body)
    assert info.value.notify == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
    assert info.value.notify_data == bytes([99])


def test_unknown_non_critical_payload_is_skipped():
    body = generic(99, b"\x01" * 32) + generic(40, b"junk") + generic(0, b"\x02" * 16)
    msg = decode_message(header(40, len(body)) + body)
    assert [type(p) for p in msg.payloads] == [NoncePayload, UnknownPayload, NoncePayload]
    assert msg.payloads[1].type == 99
    assert msg.get(NoncePayload).data == b"\x01" * 32


def test_sk_must_be_last_and_alone():
    sk = generic(0, b"\x00" * 40)
    with pytest.raises(ParseError):
        decode_chain(46, sk + generic(0, b""))  # bytes after SK
    data = header(40, len(generic(46, b"\x01" * 16)) + len(sk)) + generic(46, b"\x01" * 16) + generic(0, b"\x00" * 40)
    data = data[:16] + bytes([40]) + data[17:]
    with pytest.raises(ParseError):
        decode_message(data)
    # without keys an SK message cannot be read
    body = generic(35, b"\x00" * 40)
    with pytest.raises(ParseError):
        decode_message(header(46, len(body), exchange=35, msgid=1, spi_r=SPI_R) + body)
    [sk_p] = decode_chain(46, body)
    assert isinstance(sk_p, SkPayload) and sk_p.first_inner == 35


@pytest.mark.parametrize("number,total", [(0, 1), (1, 0), (3, 2)])
def test_skf_numbering(number, total):
    with pytest.raises(ParseError):
        decode_chain(53, generic(0, struct.pack("!HH", number, total) + b"\x00" * 20))


def test_too_many_payloads():
    chain = [(43, b"v")] * 70
    with pytest.raises(ParseError):
        decode_message(message(chain))


def test_an_error_inside_sk_is_marked_authenticated():
    """§3.10.1: only a message whose integrity check passed may be answered
    with INVALID_SYNTAX, so the parser says which errors were authenticated."""
    from ikecore.crypto import get_sk_cipher
    from ikecore.message import SaKeys
    keys = SaKeys(get_sk_cipher(12, 128, 12), b"\x01" * 16, b"\x02" * 16, b"\x03" * 32, b"\x04" * 32)
    inner = generic(0, b"\x01" * 15)  # a nonce that is too short
    sealed_len = keys.cipher.encrypted_length(len(inner))
    assoc = header(46, 4 + sealed_len, exchange=37, msgid=2, spi_r=SPI_R) + \
        struct.pack("!BBH", 40, 0, 4 + sealed_len)
    data = assoc + keys.cipher.seal(keys.sk_ei, keys.sk_ai, assoc, inner)
    with pytest.raises(ParseError) as info:
        decode_message(data, keys=keys)
    assert info.value.authenticated
    with pytest.raises(ParseError) as info:
        decode_message(message([(40, b"\x01" * 15)]))
    assert not info.value.authenticated


# --- only the defined errors, whatever the bytes -----------------------------------------------


def _keys():
    from ikecore.crypto import get_sk_cipher
    from ikecore.message import SaKeys
    return SaKeys(get_sk_cipher(12, 256, 14), b"\x01" * 32, b"\x02" * 32, b"\x03" * 64, b"\x04" * 64)


def _decode_defined_errors_only(data, keys=None):
    try:
        decode_message(data, keys=keys)
    except (ParseError, IntegrityError):
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_decode_arbitrary_bytes(data):
    _decode_defined_errors_only(data)
    _decode_defined_errors_only(data, _keys())


@st.composite
def framed(draw):
    """Bytes behind a consistent header, so that the payload walk is exercised."""
    body = draw(st.binary(max_size=300))
    first = draw(st.sampled_from([0, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                                  48, 53, 99, 255]))
    exchange = draw(st.sampled_from([34, 35, 36, 37, 0, 255]))
    flags = draw(st.sampled_from([0, 0x08, 0x20, 0x28]))
    return header(first, len(body), exchange=exchange, flags=flags, spi_r=SPI_R) + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(framed())
def test_decode_framed_junk(data):
    _decode_defined_errors_only(data)
    _decode_defined_errors_only(data, _keys())


@st.composite
def chains(draw):
    """Well-formed generic headers around arbitrary bodies of known payload types."""
    n = draw(st.integers(1, 6))
    types = draw(st.lists(st.sampled_from([33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45,
                                           47, 48, 99]), min_size=n, max_size=n))
    bodies = [draw(st.binary(max_size=60)) for _ in range(n)]
    crit = [draw(st.booleans()) for _ in range(n)]
    out = b""
    for i in range(n):
        nxt = types[i + 1] if i + 1 < n else 0
        out += generic(nxt, bodies[i], crit[i])
    return header(types[0], len(out)) + out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_decode_chains_of_junk_bodies(data):
    _decode_defined_errors_only(data)


def test_sk_keys_and_cookie_secret_stay_out_of_repr():
    from ikecore.crypto import get_sk_cipher
    from ikecore.dos import DosGuard
    from ikecore.message import SaKeys
    keys = SaKeys(get_sk_cipher(12, 128, 12), b"\x11" * 16, b"\x12" * 16, b"\x13" * 32, b"\x14" * 32)
    for key in (keys.sk_ei, keys.sk_er, keys.sk_ai, keys.sk_ar):
        assert str(key) not in repr(keys) and key.hex() not in repr(keys)
    guard = DosGuard()
    guard.make("198.51.100.10", b"\x01" * 8, b"n" * 32, 0.0)
    secret = guard._secrets[0][1]
    assert str(secret) not in repr(guard) and secret.hex() not in repr(guard)
