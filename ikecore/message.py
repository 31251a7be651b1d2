"""IKE message framing (RFC 7296 §3.1-§3.2) and SK protection (§3.14).

`Header` is parsed first and cheaply, so the endpoint can find the SA (by SPI)
before any payload is read. `decode_chain` walks a payload chain strictly;
`Message` is a parsed message (after decryption) and `encode_message` builds one,
sealing the payloads in an SK payload when keys are given.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .constants import (
    GENERIC_PAYLOAD_HEADER_LEN, IKE_HEADER_LEN, IKE_MAJOR_VERSION, ExchangeType,
    HeaderFlag, NotifyType, PayloadType,
)
from .crypto import IntegrityError
from .errors import ParseError
from .payloads import (
    PAYLOAD_CLASSES, NotifyPayload, Payload, SkfPayload, SkPayload, UnknownPayload,
)

_HEADER = struct.Struct("!8s8sBBBBII")
_GENERIC = struct.Struct("!BBH")
MAX_MESSAGE_SIZE = 65535


@dataclass
class Header:
    spi_i: bytes
    spi_r: bytes
    next_payload: int
    exchange: int
    flags: int
    message_id: int
    length: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & HeaderFlag.RESPONSE)

    @property
    def from_initiator(self) -> bool:
        """The I flag: set by the original initiator of the IKE SA (§3.1)."""
        return bool(self.flags & HeaderFlag.INITIATOR)

    def encode(self) -> bytes:
        return _HEADER.pack(self.spi_i, self.spi_r, self.next_payload,
                            (IKE_MAJOR_VERSION << 4), self.exchange, self.flags,
                            self.message_id, self.length)

    @classmethod
    def decode(cls, data: bytes) -> "Header":
        """Parse and check the fixed header; `data` is the whole datagram."""
        if len(data) < IKE_HEADER_LEN:
            raise ParseError(f"message shorter than the IKE header ({len(data)} bytes)")
        spi_i, spi_r, nxt, version, exch, flags, msgid, length = _HEADER.unpack_from(data)
        if version >> 4 != IKE_MAJOR_VERSION:
            # §2.5: answer INVALID_MAJOR_VERSION (only to an IKE_SA_INIT request)
            raise ParseError(f"major version {version >> 4}", NotifyType.INVALID_MAJOR_VERSION,
                             bytes([IKE_MAJOR_VERSION << 4]))
        if length != len(data):
            raise ParseError(f"header length {length} but datagram has {len(data)} bytes")
        if spi_i == bytes(8):
            raise ParseError("initiator SPI is zero")  # §3.1: SPIi is never zero
        return cls(spi_i, spi_r, nxt, exch, flags, msgid, length)


def decode_chain(first: int, data: bytes, base_offset: int = 0) -> list[Payload]:
    """Walk a payload chain. SK/SKF must be the last payload (§3.14); unknown
    non-critical payloads are kept as UnknownPayload and ignored (§2.5)."""
    payloads: list[Payload] = []
    pos = 0
    nxt = first
    while nxt != PayloadType.NONE:
        if pos + GENERIC_PAYLOAD_HEADER_LEN > len(data):
            raise ParseError(f"payload {nxt}: truncated generic header")
        following, crit_byte, length = _GENERIC.unpack_from(data, pos)
        if length < GENERIC_PAYLOAD_HEADER_LEN or pos + length > len(data):
            raise ParseError(f"payload {nxt}: bad length {length}")
        body = data[pos + GENERIC_PAYLOAD_HEADER_LEN:pos + length]
        critical = bool(crit_byte & 0x80)
        if nxt in (PayloadType.SK, PayloadType.SKF):
            if pos + length != len(data):
                raise ParseError("encrypted payload is not the last payload")
            if nxt == PayloadType.SK:
                payloads.append(SkPayload(following, bytes(body), base_offset + pos))
            else:
                if len(body) < 4:
                    raise ParseError("SKF: truncated")
                number, total = struct.unpack_from("!HH", body)
                if number == 0 or total == 0 or number > total:
                    raise ParseError(f"SKF: fragment {number} of {total}")
                payloads.append(SkfPayload(following, number, total, bytes(body[4:]),
                                           base_offset + pos))
            return payloads
        cls = PAYLOAD_CLASSES.get(nxt)
        if cls is None:
            if critical:
                raise ParseError(f"unsupported critical payload {nxt}",
                                 NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, bytes([nxt & 0xFF]))
            payloads.append(UnknownPayload(nxt, bytes(body)))
        else:
            payload = cls.decode_body(bytes(body))
            payload.critical = critical
            payloads.append(payload)
        pos += length
        nxt = following
        if len(payloads) > 64:
            raise ParseError("too many payloads")  # bounds work on hostile input
    if pos != len(data):
        raise ParseError(f"{len(data) - pos} bytes after the last payload")
    return payloads


def encode_chain(payloads: list[Payload], tail_type: int = PayloadType.NONE) -> tuple[int, bytes]:
    """Encode payloads; returns (type of the first payload, bytes)."""
    out = []
    for i, p in enumerate(payloads):
        body = p.encode_body()
        nxt = payloads[i + 1].TYPE if i + 1 < len(payloads) else tail_type
        out.append(_GENERIC.pack(nxt, 0x80 if p.critical else 0,
                                 GENERIC_PAYLOAD_HEADER_LEN + len(body)) + body)
    first = payloads[0].TYPE if payloads else tail_type
    return first, b"".join(out)


@dataclass
class Message:
    """A parsed (and, if it was protected, decrypted) message."""

    header: Header
    payloads: list[Payload] = field(default_factory=list)
    encrypted: bool = False
    raw: bytes = field(default=b"", repr=False)  # as received: AUTH signs IKE_SA_INIT bytes

    @property
    def exchange(self) -> int:
        return self.header.exchange

    @property
    def message_id(self) -> int:
        return self.header.message_id

    @property
    def is_response(self) -> bool:
        return self.header.is_response

    def get(self, cls):
        """The first payload of this class, or None."""
        for p in self.payloads:
            if type(p) is cls:
                return p
        return None

    def all(self, cls) -> list:
        return [p for p in self.payloads if type(p) is cls]

    def notify(self, ntype: NotifyType) -> NotifyPayload | None:
        for p in self.payloads:
            if isinstance(p, NotifyPayload) and p.notify_type == ntype:
                return p
        return None

    def notifies(self) -> list[NotifyPayload]:
        return [p for p in self.payloads if isinstance(p, NotifyPayload)]

    def error_notify(self) -> NotifyPayload | None:
        for p in self.notifies():
            if p.is_error:
                return p
        return None


@dataclass
class SaKeys:
    """What protects one direction pair of an IKE SA: the SK cipher and keys.
    `_i` keys protect messages sent by the original initiator (§2.14)."""

    cipher: object  # ikecore.crypto.SkCipher
    # keys stay out of logs and tracebacks
    sk_ei: bytes = field(repr=False)
    sk_er: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)

    def for_sender(self, initiator: bool) -> tuple[bytes, bytes]:
        return (self.sk_ei, self.sk_ai) if initiator else (self.sk_er, self.sk_ar)


def decode_message(data: bytes, header: Header | None = None,
                   keys: SaKeys | None = None) -> Message:
    """Parse a whole message. If it carries SK and `keys` is given, decrypt it.

    Raises ParseError for malformed bytes and IntegrityError (from ikecore.crypto)
    when the SK payload fails its integrity check: the caller drops those silently
    (§2.21.2, unauthenticated input never acts).
    """
    header = header or Header.decode(data)
    payloads = decode_chain(header.next_payload, data[IKE_HEADER_LEN:], IKE_HEADER_LEN)
    if payloads and isinstance(payloads[-1], SkPayload):
        sk = payloads[-1]
        if len(payloads) != 1:
            raise ParseError("payloads outside the SK payload")  # vgw sends none either
        if keys is None:
            raise ParseError("encrypted message without keys")
        inner = open_sk(data, sk, header, keys)
        try:
            payloads = decode_chain(sk.first_inner, inner)
        except ParseError as exc:
            exc.authenticated = True
            raise
        return Message(header, payloads, encrypted=True, raw=data)
    return Message(header, payloads, encrypted=False, raw=data)


def open_sk(data: bytes, sk: SkPayload | SkfPayload, header: Header, keys: SaKeys) -> bytes:
    """Decrypt an SK (or SKF) payload in place in `data`; returns the plaintext."""
    sk_e, sk_a = keys.for_sender(header.from_initiator)
    head = GENERIC_PAYLOAD_HEADER_LEN + (4 if isinstance(sk, SkfPayload) else 0)
    assoc = data[:sk.offset + head]
    body = data[sk.offset + head:]
    return keys.cipher.open(sk_e, sk_a, assoc, body)


def encode_message(header: Header, payloads: list[Payload], keys: SaKeys | None = None,
                   initiator_sent: bool | None = None) -> bytes:
    """Build the wire bytes. With `keys`, payloads go inside one SK payload sealed
    with the keys of the sending side (`initiator_sent`: are we the original
    initiator?)."""
    if keys is None:
        first, body = encode_chain(payloads)
        header.next_payload = first
        header.length = IKE_HEADER_LEN + len(body)
        out = header.encode() + body
    else:
        first, plain = encode_chain(payloads)
        sealed_len = keys.cipher.encrypted_length(len(plain))
        header.next_payload = PayloadType.SK
        header.length = IKE_HEADER_LEN + GENERIC_PAYLOAD_HEADER_LEN + sealed_len
        assoc = header.encode() + _GENERIC.pack(first, 0, GENERIC_PAYLOAD_HEADER_LEN + sealed_len)
        sk_e, sk_a = keys.for_sender(bool(initiator_sent))
        out = assoc + keys.cipher.seal(sk_e, sk_a, assoc, plain)
    if len(out) > MAX_MESSAGE_SIZE:
        raise ValueError("IKE message too large")
    return out


__all__ = ["Header", "Message", "SaKeys", "decode_chain", "encode_chain", "decode_message",
           "encode_message", "open_sk", "IntegrityError", "ExchangeType"]
