"""IKEv2 payload bodies (RFC 7296 §3.2-§3.16): decode from bytes, encode to bytes.

Each payload class knows only its own body (what follows the 4-byte generic
payload header). Decoding is strict: any inconsistency raises ParseError, so the
message layer can answer INVALID_SYNTAX or drop, and nothing else ever escapes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import ClassVar

from .constants import (
    CertEncoding, IdType, NotifyType, PayloadType, ProtocolId, TransformAttr,
    TsType,
)
from .errors import ParseError

_U16 = struct.Struct("!H")


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise ParseError(f"{what}: truncated ({len(data)} < {n} bytes)")


# --- SA payload: proposals and transforms (§3.3) ---------------------------------

@dataclass(frozen=True)
class Transform:
    type: int
    id: int
    key_length: int | None = None
    # §3.3.6: a transform with an attribute we do not know must be rejected
    # (skipped during selection), not the whole message.
    unknown_attrs: bool = False

    def encode(self, last: bool) -> bytes:
        attrs = b""
        if self.key_length is not None:
            attrs = struct.pack("!HH", 0x8000 | TransformAttr.KEY_LENGTH, self.key_length)
        length = 8 + len(attrs)
        return struct.pack("!BBHBBH", 0 if last else 3, 0, length, self.type, 0, self.id) + attrs

    @classmethod
    def decode(cls, data: bytes) -> tuple["Transform", bool, int]:
        """Returns (transform, is_last, bytes consumed)."""
        _need(data, 8, "transform")
        more, _, length, ttype, _, tid = struct.unpack_from("!BBHBBH", data)
        if more not in (0, 3):
            raise ParseError(f"transform: bad last/more field {more}")
        if length < 8 or length > len(data):
            raise ParseError(f"transform: bad length {length}")
        key_length = None
        unknown = False
        attrs = data[8:length]
        pos = 0
        while pos < len(attrs):
            _need(attrs[pos:], 4, "transform attribute")
            atype, aval = struct.unpack_from("!HH", attrs, pos)
            if atype & 0x8000:  # TV format
                pos += 4
                if atype & 0x7FFF == TransformAttr.KEY_LENGTH:
                    if key_length is not None:
                        raise ParseError("transform: key length attribute twice")
                    key_length = aval
                else:
                    unknown = True
            else:  # TLV format: aval is the value length
                if pos + 4 + aval > len(attrs):
                    raise ParseError("transform attribute: bad length")
                pos += 4 + aval
                unknown = True
        return cls(ttype, tid, key_length, unknown), more == 0, length


@dataclass(frozen=True)
class Proposal:
    num: int
    protocol: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def encode(self, last: bool) -> bytes:
        body = b"".join(t.encode(i == len(self.transforms) - 1)
                        for i, t in enumerate(self.transforms))
        length = 8 + len(self.spi) + len(body)
        return (struct.pack("!BBHBBBB", 0 if last else 2, 0, length, self.num,
                            self.protocol, len(self.spi), len(self.transforms))
                + self.spi + body)

    @classmethod
    def decode(cls, data: bytes) -> tuple["Proposal", bool, int]:
        _need(data, 8, "proposal")
        more, _, length, num, proto, spi_size, ntrans = struct.unpack_from("!BBHBBBB", data)
        if more not in (0, 2):
            raise ParseError(f"proposal: bad last/more field {more}")
        if length < 8 + spi_size or length > len(data):
            raise ParseError(f"proposal: bad length {length}")
        if proto == ProtocolId.IKE and spi_size not in (0, 8):
            raise ParseError(f"proposal: IKE SPI size {spi_size}")
        if proto in (ProtocolId.ESP, ProtocolId.AH) and spi_size != 4:
            raise ParseError(f"proposal: ESP/AH SPI size {spi_size}")
        spi = bytes(data[8:8 + spi_size])
        body = data[8 + spi_size:length]
        transforms = []
        pos = 0
        last = False
        while not last:
            if pos >= len(body):
                raise ParseError("proposal: transform list ends without a last transform")
            t, last, used = Transform.decode(body[pos:])
            transforms.append(t)
            pos += used
        if pos != len(body):
            raise ParseError("proposal: bytes after the last transform")
        if len(transforms) != ntrans:
            raise ParseError(f"proposal: says {ntrans} transforms, has {len(transforms)}")
        return cls(num, proto, spi, tuple(transforms)), more == 0, length


class Payload:
    """Base of all payload bodies; TYPE is the payload type number."""

    TYPE: ClassVar[int]
    critical: bool = False

    def encode_body(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def decode_body(cls, data: bytes) -> "Payload":  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class SaPayload(Payload):
    TYPE: ClassVar[int] = PayloadType.SA
    proposals: list[Proposal]

    def encode_body(self) -> bytes:
        return b"".join(p.encode(i == len(self.proposals) - 1)
                        for i, p in enumerate(self.proposals))

    @classmethod
    def decode_body(cls, data: bytes) -> "SaPayload":
        proposals = []
        pos = 0
        last = False
        while not last:
            if pos >= len(data):
                raise ParseError("SA: proposal list ends without a last proposal")
            p, last, used = Proposal.decode(data[pos:])
            if p.num == 0:
                raise ParseError("SA: proposal number 0")
            if proposals and p.num not in (proposals[-1].num, proposals[-1].num + 1):
                raise ParseError("SA: proposal numbers must increase by one")
            proposals.append(p)
            pos += used
        if pos != len(data):
            raise ParseError("SA: bytes after the last proposal")
        # §3.3.1: an offer starts at 1; an answer holds the one accepted proposal
        # with the number it had in the offer, which may be 2 or more.
        if proposals[0].num != 1 and len({p.num for p in proposals}) > 1:
            raise ParseError("SA: first proposal number must be 1")
        return cls(proposals)


@dataclass
class KePayload(Payload):
    TYPE: ClassVar[int] = PayloadType.KE
    group: int
    data: bytes

    def encode_body(self) -> bytes:
        return _U16.pack(self.group) + b"\x00\x00" + self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "KePayload":
        _need(data, 5, "KE")
        return cls(_U16.unpack_from(data)[0], bytes(data[4:]))


@dataclass
class NoncePayload(Payload):
    TYPE: ClassVar[int] = PayloadType.NONCE
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "NoncePayload":
        if not 16 <= len(data) <= 256:  # §3.9
            raise ParseError(f"nonce: length {len(data)} outside 16..256")
        return cls(bytes(data))


@dataclass
class IdPayload(Payload):
    """IDi / IDr (§3.5). `body` (type + reserved + data) is what AUTH signs."""

    id_type: int
    data: bytes

    def encode_body(self) -> bytes:
        return bytes([self.id_type, 0, 0, 0]) + self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "IdPayload":
        _need(data, 5, "ID")
        id_type = data[0]
        body = bytes(data[4:])
        if id_type == IdType.IPV4_ADDR and len(body) != 4:
            raise ParseError("ID_IPV4_ADDR: not 4 bytes")
        if id_type == IdType.IPV6_ADDR and len(body) != 16:
            raise ParseError("ID_IPV6_ADDR: not 16 bytes")
        return cls(id_type, body)

    def __str__(self) -> str:
        return format_identity(self.id_type, self.data)


class IdiPayload(IdPayload):
    TYPE: ClassVar[int] = PayloadType.IDi


class IdrPayload(IdPayload):
    TYPE: ClassVar[int] = PayloadType.IDr


def format_identity(id_type: int, data: bytes) -> str:
    """A readable identity for logs and status."""
    if id_type == IdType.IPV4_ADDR and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if id_type == IdType.IPV6_ADDR and len(data) == 16:
        return str(ipaddress.IPv6Address(data))
    if id_type in (IdType.FQDN, IdType.RFC822_ADDR):
        return data.decode("ascii", "replace")
    return f"{IdType(id_type).name if id_type in IdType._value2member_map_ else id_type}:{data.hex()}"


@dataclass
class AuthPayload(Payload):
    TYPE: ClassVar[int] = PayloadType.AUTH
    method: int
    data: bytes

    def encode_body(self) -> bytes:
        return bytes([self.method, 0, 0, 0]) + self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "AuthPayload":
        _need(data, 5, "AUTH")
        return cls(data[0], bytes(data[4:]))


@dataclass
class NotifyPayload(Payload):
    TYPE: ClassVar[int] = PayloadType.NOTIFY
    notify_type: int
    data: bytes = b""
    protocol: int = 0
    spi: bytes = b""

    def encode_body(self) -> bytes:
        return (struct.pack("!BBH", self.protocol, len(self.spi), self.notify_type)
                + self.spi + self.data)

    @classmethod
    def decode_body(cls, data: bytes) -> "NotifyPayload":
        _need(data, 4, "notify")
        proto, spi_size, ntype = struct.unpack_from("!BBH", data)
        _need(data, 4 + spi_size, "notify SPI")
        return cls(ntype, bytes(data[4 + spi_size:]), proto, bytes(data[4:4 + spi_size]))

    @property
    def is_error(self) -> bool:
        return self.notify_type < 16384

    @property
    def name(self) -> str:
        try:
            return NotifyType(self.notify_type).name
        except ValueError:
            return f"NOTIFY({self.notify_type})"


@dataclass
class DeletePayload(Payload):
    TYPE: ClassVar[int] = PayloadType.DELETE
    protocol: int
    spis: list[bytes] = field(default_factory=list)

    def encode_body(self) -> bytes:
        spi_size = 0 if self.protocol == ProtocolId.IKE else 4
        return struct.pack("!BBH", self.protocol, spi_size, len(self.spis)) + b"".join(self.spis)

    @classmethod
    def decode_body(cls, data: bytes) -> "DeletePayload":
        _need(data, 4, "delete")
        proto, spi_size, count = struct.unpack_from("!BBH", data)
        if proto == ProtocolId.IKE:
            if spi_size != 0 or count != 0 or len(data) != 4:
                raise ParseError("delete: IKE SA delete carries SPIs")  # §3.11
            return cls(proto, [])
        if proto not in (ProtocolId.ESP, ProtocolId.AH) or spi_size != 4:
            raise ParseError(f"delete: protocol {proto} SPI size {spi_size}")
        if len(data) != 4 + 4 * count:
            raise ParseError("delete: SPI count does not match length")
        return cls(proto, [bytes(data[4 + 4 * i:8 + 4 * i]) for i in range(count)])


@dataclass
class VendorPayload(Payload):
    TYPE: ClassVar[int] = PayloadType.VENDOR
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "VendorPayload":
        return cls(bytes(data))


@dataclass(frozen=True)
class TrafficSelector:
    """One selector (§3.13.1): an address range, protocol and port range."""

    start: ipaddress.IPv4Address | ipaddress.IPv6Address
    end: ipaddress.IPv4Address | ipaddress.IPv6Address
    ip_proto: int = 0
    start_port: int = 0
    end_port: int = 65535

    @classmethod
    def from_network(cls, net) -> "TrafficSelector":
        net = ipaddress.ip_network(net)
        return cls(net.network_address, net.broadcast_address)

    @property
    def ts_type(self) -> int:
        return TsType.IPV4_ADDR_RANGE if self.start.version == 4 else TsType.IPV6_ADDR_RANGE

    def encode(self) -> bytes:
        addrs = self.start.packed + self.end.packed
        return struct.pack("!BBHHH", self.ts_type, self.ip_proto, 8 + len(addrs),
                           self.start_port, self.end_port) + addrs

    def networks(self) -> list:
        """The CIDRs covering the address range (routes and logs)."""
        return list(ipaddress.summarize_address_range(self.start, self.end))

    def __str__(self) -> str:
        nets = self.networks()
        text = ",".join(str(n) for n in nets) if len(nets) <= 2 else f"{self.start}-{self.end}"
        if self.ip_proto or self.start_port != 0 or self.end_port != 65535:
            text += f"[{self.ip_proto}/{self.start_port}-{self.end_port}]"
        return text


@dataclass
class TsPayload(Payload):
    selectors: list[TrafficSelector]

    def encode_body(self) -> bytes:
        return bytes([len(self.selectors), 0, 0, 0]) + b"".join(s.encode() for s in self.selectors)

    @classmethod
    def decode_body(cls, data: bytes) -> "TsPayload":
        _need(data, 4, "TS")
        count = data[0]
        if count == 0:
            raise ParseError("TS: no selectors")
        pos = 4
        selectors = []
        for _ in range(count):
            _need(data[pos:], 8, "traffic selector")
            ts_type, proto, length, sport, eport = struct.unpack_from("!BBHHH", data, pos)
            if ts_type == TsType.IPV4_ADDR_RANGE:
                if length != 16:
                    raise ParseError("TS: IPv4 selector length must be 16")
                make = ipaddress.IPv4Address
                alen = 4
            elif ts_type == TsType.IPV6_ADDR_RANGE:
                if length != 40:
                    raise ParseError("TS: IPv6 selector length must be 40")
                make = ipaddress.IPv6Address
                alen = 16
            else:
                raise ParseError(f"TS: unknown selector type {ts_type}")
            _need(data[pos:], length, "traffic selector")
            start = make(bytes(data[pos + 8:pos + 8 + alen]))
            end = make(bytes(data[pos + 8 + alen:pos + 8 + 2 * alen]))
            selectors.append(TrafficSelector(start, end, proto, sport, eport))
            pos += length
        if pos != len(data):
            raise ParseError("TS: bytes after the last selector")
        return cls(selectors)


class TsiPayload(TsPayload):
    TYPE: ClassVar[int] = PayloadType.TSi


class TsrPayload(TsPayload):
    TYPE: ClassVar[int] = PayloadType.TSr


@dataclass
class CertPayload(Payload):
    TYPE: ClassVar[int] = PayloadType.CERT
    encoding: int
    data: bytes

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "CertPayload":
        _need(data, 2, "CERT")
        return cls(data[0], bytes(data[1:]))


@dataclass
class CertReqPayload(Payload):
    """CERTREQ (§3.7): for X.509, `data` is a list of 20-byte SHA-1 key hashes of CAs."""

    TYPE: ClassVar[int] = PayloadType.CERTREQ
    encoding: int
    data: bytes = b""

    def encode_body(self) -> bytes:
        return bytes([self.encoding]) + self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "CertReqPayload":
        _need(data, 1, "CERTREQ")
        if data[0] == CertEncoding.X509_SIGNATURE and (len(data) - 1) % 20:
            raise ParseError("CERTREQ: X.509 authority list is not a multiple of 20 bytes")
        return cls(data[0], bytes(data[1:]))

    @property
    def authorities(self) -> list[bytes]:
        return [self.data[i:i + 20] for i in range(0, len(self.data), 20)]


@dataclass
class CpPayload(Payload):
    """Configuration payload (§3.15). vgw parses it for syntax and ignores it:
    a site-to-site gateway hands out no addresses."""

    TYPE: ClassVar[int] = PayloadType.CP
    cfg_type: int
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def encode_body(self) -> bytes:
        out = bytes([self.cfg_type, 0, 0, 0])
        for atype, value in self.attributes:
            out += struct.pack("!HH", atype & 0x7FFF, len(value)) + value
        return out

    @classmethod
    def decode_body(cls, data: bytes) -> "CpPayload":
        _need(data, 4, "CP")
        attrs = []
        pos = 4
        while pos < len(data):
            _need(data[pos:], 4, "CP attribute")
            atype, alen = struct.unpack_from("!HH", data, pos)
            if pos + 4 + alen > len(data):
                raise ParseError("CP attribute: bad length")
            attrs.append((atype & 0x7FFF, bytes(data[pos + 4:pos + 4 + alen])))
            pos += 4 + alen
        return cls(data[0], attrs)


@dataclass
class EapPayload(Payload):
    TYPE: ClassVar[int] = PayloadType.EAP
    data: bytes

    def encode_body(self) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, data: bytes) -> "EapPayload":
        _need(data, 4, "EAP")
        return cls(bytes(data))


@dataclass
class SkPayload(Payload):
    """The Encrypted payload (§3.14), still sealed. `first_inner` is the type of the
    first payload inside; `offset` is where the SK generic header starts."""

    TYPE: ClassVar[int] = PayloadType.SK
    first_inner: int
    body: bytes
    offset: int = 0

    def encode_body(self) -> bytes:
        return self.body


@dataclass
class SkfPayload(Payload):
    """Encrypted Fragment payload (RFC 7383 §2.5)."""

    TYPE: ClassVar[int] = PayloadType.SKF
    first_inner: int
    number: int
    total: int
    body: bytes
    offset: int = 0

    def encode_body(self) -> bytes:
        return _U16.pack(self.number) + _U16.pack(self.total) + self.body


@dataclass
class UnknownPayload(Payload):
    """A non-critical payload type vgw does not know; skipped per §2.5."""

    type: int
    data: bytes

    @property
    def TYPE(self) -> int:  # type: ignore[override]
        return self.type

    def encode_body(self) -> bytes:
        return self.data


PAYLOAD_CLASSES: dict[int, type[Payload]] = {
    cls.TYPE: cls for cls in (
        SaPayload, KePayload, NoncePayload, IdiPayload, IdrPayload, AuthPayload,
        NotifyPayload, DeletePayload, VendorPayload, TsiPayload, TsrPayload,
        CertPayload, CertReqPayload, CpPayload, EapPayload,
    )
}
