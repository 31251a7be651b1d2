"""BGP messages as values: OPEN (with capabilities), UPDATE (its three fields),
NOTIFICATION, KEEPALIVE, ROUTE-REFRESH; `encode()` gives the whole message,
`decode_*` takes the body after the 19-octet header (bgpcore.wire).

Decoders check every length and raise BgpError with the RFC's NOTIFICATION.
What an UPDATE's path attributes mean is bgpcore.attributes' business; here an
UPDATE is withdrawn prefixes, raw attribute octets and NLRI prefixes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from .constants import (
    AFI_IPV4, AS_TRANS, BGP_VERSION, SAFI_UNICAST, Capability, ErrorCode, MessageType,
    OpenError, OptParam, UpdateError, notification_name,
)
from .errors import BgpError
from .wire import frame

# --- prefixes (RFC 4271 §4.3: length in bits, then the fewest octets) ----------------


def encode_prefix(net: IPv4Network) -> bytes:
    nbytes = (net.prefixlen + 7) // 8
    return bytes([net.prefixlen]) + net.network_address.packed[:nbytes]


def decode_prefixes(data: bytes, code: int = ErrorCode.UPDATE_MESSAGE,
                    subcode: int = UpdateError.INVALID_NETWORK_FIELD,
                    what: str = "NLRI") -> list[IPv4Network]:
    """IPv4 prefixes of a Withdrawn Routes or NLRI field. A length above 32 or
    a prefix running past the field is "syntactically incorrect" (RFC 7606
    §5.3): BgpError(code, subcode). Bits past the length are ignored (§4.3)."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        bits = data[pos]
        if bits > 32:
            raise BgpError(code, subcode, reason=f"{what}: prefix length {bits} > 32")
        nbytes = (bits + 7) // 8
        if pos + 1 + nbytes > end:
            raise BgpError(code, subcode, reason=f"{what}: prefix runs past the field")
        raw = data[pos + 1:pos + 1 + nbytes] + bytes(4 - nbytes)
        out.append(IPv4Network((int.from_bytes(raw, "big"), bits), strict=False))
        pos += 1 + nbytes
    return out


# --- OPEN (RFC 4271 §4.2, capabilities RFC 5492) --------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What an OPEN announced. `others` keeps codes vgw ignores (RFC 5492 §3:
    an unknown capability is ignored), for the log."""

    multiprotocol: frozenset = frozenset()      # {(afi, safi)}
    route_refresh: bool = False                 # code 2 (RFC 2918)
    route_refresh_cisco: bool = False           # code 128, the same thing pre-standard
    four_octet_as: int | None = None            # code 65 (RFC 6793 §3): the speaker's AS
    others: tuple = ()                          # ((code, value), ...)

    @property
    def refresh(self) -> bool:
        return self.route_refresh or self.route_refresh_cisco


@dataclass(frozen=True)
class Open:
    my_as: int                                  # the 2-octet field (AS_TRANS for a 4-octet AS)
    hold_time: int
    router_id: IPv4Address
    capabilities: Capabilities = field(default_factory=Capabilities)
    version: int = BGP_VERSION

    @property
    def asn(self) -> int:
        """The sender's AS: the 4-octet capability's when present (RFC 6793 §4.1)."""
        cap = self.capabilities.four_octet_as
        return self.my_as if cap is None else cap

    @classmethod
    def for_speaker(cls, asn: int, hold_time: int, router_id: IPv4Address) -> "Open":
        """vgw's OPEN: MP IPv4 unicast, route refresh, 4-octet AS; AS_TRANS in
        My AS when the AS needs 4 octets (RFC 6793 §4.1)."""
        caps = Capabilities(multiprotocol=frozenset({(AFI_IPV4, SAFI_UNICAST)}),
                            route_refresh=True, four_octet_as=asn)
        return cls(my_as=asn if asn <= 0xFFFF else AS_TRANS, hold_time=hold_time,
                   router_id=router_id, capabilities=caps)

    def encode(self) -> bytes:
        caps = b""
        c = self.capabilities
        for afi, safi in sorted(c.multiprotocol):
            caps += struct.pack("!BBHBB", Capability.MULTIPROTOCOL, 4, afi, 0, safi)
        if c.route_refresh:
            caps += bytes([Capability.ROUTE_REFRESH, 0])
        if c.route_refresh_cisco:
            caps += bytes([Capability.ROUTE_REFRESH_CISCO, 0])
        if c.four_octet_as is not None:
            caps += struct.pack("!BBI", Capability.FOUR_OCTET_AS, 4, c.four_octet_as)
        for code, value in c.others:
            caps += bytes([code, len(value)]) + value
        params = bytes([OptParam.CAPABILITIES, len(caps)]) + caps if caps else b""
        body = struct.pack("!BHH4sB", self.version, self.my_as, self.hold_time,
                           self.router_id.packed, len(params)) + params
        return frame(MessageType.OPEN, body)


def _open_error(subcode: int, reason: str, data: bytes = b"") -> BgpError:
    return BgpError(ErrorCode.OPEN_MESSAGE, subcode, data, reason)


def _capabilities(raw: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(raw):
        if pos + 2 > len(raw):
            raise _open_error(OpenError.UNSPECIFIC, "capability header truncated")
        code, length = raw[pos], raw[pos + 1]
        if pos + 2 + length > len(raw):
            raise _open_error(OpenError.UNSPECIFIC, f"capability {code} runs past its parameter")
        out.append((code, raw[pos + 2:pos + 2 + length]))
        pos += 2 + length
    return out


def _optional_parameters(body: bytes, optlen: int) -> list[tuple[int, bytes]]:
    """(type, value) pairs; RFC 9072's extended form is read too (never sent)."""
    rest = body[10:]
    if optlen == 255 and rest[:1] == bytes([OptParam.EXTENDED_LENGTH]):   # RFC 9072 §2
        if len(rest) < 3:
            raise _open_error(OpenError.UNSPECIFIC, "extended optional parameters truncated")
        params, hdr = rest[3:], 3
        if struct.unpack_from("!H", rest, 1)[0] != len(params):
            raise _open_error(OpenError.UNSPECIFIC, "extended optional parameters length")
    else:
        params, hdr = rest, 2
        if optlen != len(params):
            raise _open_error(OpenError.UNSPECIFIC,
                              f"optional parameters length {optlen}, {len(params)} octets follow")
    pos = 0
    out = []
    while pos < len(params):
        if pos + hdr > len(params):
            raise _open_error(OpenError.UNSPECIFIC, "optional parameter header truncated")
        ptype = params[pos]
        plen = params[pos + 1] if hdr == 2 else struct.unpack_from("!H", params, pos + 1)[0]
        if pos + hdr + plen > len(params):
            raise _open_error(OpenError.UNSPECIFIC, f"optional parameter {ptype} overruns")
        out.append((ptype, params[pos + hdr:pos + hdr + plen]))
        pos += hdr + plen
    return out


def decode_open(body: bytes) -> Open:
    """The body of an OPEN (length >= 10 is guaranteed by the header check).
    Structural errors only; the checks against vgw's settings (version, peer AS,
    hold time, identifier: §6.2) are bgpcore.peer's."""
    version, my_as, hold, rid, optlen = struct.unpack_from("!BHH4sB", body, 0)
    mp, others = set(), []
    rr = rr_cisco = False
    four = None
    for ptype, value in _optional_parameters(body, optlen):
        if ptype != OptParam.CAPABILITIES:
            raise _open_error(OpenError.UNSUPPORTED_OPTIONAL_PARAMETER,
                              f"optional parameter type {ptype}")
        for code, cval in _capabilities(value):
            if code == Capability.MULTIPROTOCOL:
                if len(cval) != 4:
                    raise _open_error(OpenError.UNSPECIFIC, "multiprotocol capability length")
                afi, _res, safi = struct.unpack("!HBB", cval)
                mp.add((afi, safi))
            elif code in (Capability.ROUTE_REFRESH, Capability.ROUTE_REFRESH_CISCO):
                if cval:
                    raise _open_error(OpenError.UNSPECIFIC, "route refresh capability length")
                if code == Capability.ROUTE_REFRESH:
                    rr = True
                else:
                    rr_cisco = True
            elif code == Capability.FOUR_OCTET_AS:
                if len(cval) != 4:
                    raise _open_error(OpenError.UNSPECIFIC, "4-octet AS capability length")
                four = struct.unpack("!I", cval)[0]
            else:
                others.append((code, bytes(cval)))
    caps = Capabilities(frozenset(mp), rr, rr_cisco, four, tuple(others))
    return Open(my_as=my_as, hold_time=hold, router_id=IPv4Address(rid),
                capabilities=caps, version=version)


# --- NOTIFICATION (RFC 4271 §4.5) -----------------------------------------------------


@dataclass(frozen=True)
class Notification:
    code: int
    subcode: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return notification_name(self.code, self.subcode)

    @property
    def communication(self) -> str:
        """The Shutdown Communication of Cease/2 and Cease/4 (RFC 9003 §2), or ''."""
        if self.code != ErrorCode.CEASE or self.subcode not in (2, 4) or not self.data:
            return ""
        n = self.data[0]
        if n + 1 > len(self.data):
            return ""
        return self.data[1:1 + n].decode("utf-8", "replace")

    def encode(self) -> bytes:
        return frame(MessageType.NOTIFICATION, bytes([self.code, self.subcode]) + self.data)


def decode_notification(body: bytes) -> Notification:
    return Notification(body[0], body[1], bytes(body[2:]))


def max_prefixes_data(limit: int, afi: int = AFI_IPV4, safi: int = SAFI_UNICAST) -> bytes:
    """Cease/1 data: AFI (2), SAFI (1), upper bound (4) (RFC 4486 §4)."""
    return struct.pack("!HBI", afi, safi, limit)


def shutdown_data(message: str) -> bytes:
    """Cease/2 and /4 data: length + UTF-8 text, at most 255 octets (RFC 9003 §2)."""
    raw = message.encode("utf-8")[:255]
    while raw:
        try:
            raw.decode("utf-8")
            break
        except UnicodeDecodeError:          # cut inside a character: shorten
            raw = raw[:-1]
    return bytes([len(raw)]) + raw if raw else b""


# --- KEEPALIVE (§4.4) and ROUTE-REFRESH (RFC 2918 §3) ---------------------------------

KEEPALIVE = frame(MessageType.KEEPALIVE, b"")


@dataclass(frozen=True)
class RouteRefresh:
    afi: int = AFI_IPV4
    safi: int = SAFI_UNICAST
    reserved: int = 0          # RFC 7313's message subtype; 0 for a plain refresh

    def encode(self) -> bytes:
        return frame(MessageType.ROUTE_REFRESH,
                     struct.pack("!HBB", self.afi, self.reserved, self.safi))


def decode_route_refresh(body: bytes) -> RouteRefresh:
    afi, reserved, safi = struct.unpack("!HBB", body)
    return RouteRefresh(afi, safi, reserved)


# --- UPDATE (§4.3) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    withdrawn: tuple = ()                 # IPv4Network, ...
    attributes: bytes = b""               # raw path attributes (bgpcore.attributes)
    nlri: tuple = ()                      # IPv4Network, ...

    @property
    def is_end_of_rib(self) -> bool:
        """An UPDATE with nothing in it marks IPv4 unicast End-of-RIB (RFC 4724 §2)."""
        return not self.withdrawn and not self.attributes and not self.nlri

    def encode(self) -> bytes:
        wd = b"".join(encode_prefix(p) for p in self.withdrawn)
        body = (struct.pack("!H", len(wd)) + wd + struct.pack("!H", len(self.attributes))
                + self.attributes + b"".join(encode_prefix(p) for p in self.nlri))
        return frame(MessageType.UPDATE, body)


def decode_update(body: bytes) -> Update:
    """Split an UPDATE body into its fields. The two length fields must fit the
    message (§6.3: else Malformed Attribute List); both prefix fields must parse
    (RFC 7606 §5.3: else session reset, Invalid Network Field). Both are errors
    that leave the NLRI impossible to locate, so no finer handling exists."""
    wrl = struct.unpack_from("!H", body, 0)[0]
    if 2 + wrl + 2 > len(body):
        raise BgpError(ErrorCode.UPDATE_MESSAGE, UpdateError.MALFORMED_ATTRIBUTE_LIST,
                       reason=f"withdrawn routes length {wrl} overruns the message")
    tal = struct.unpack_from("!H", body, 2 + wrl)[0]
    if 4 + wrl + tal > len(body):
        raise BgpError(ErrorCode.UPDATE_MESSAGE, UpdateError.MALFORMED_ATTRIBUTE_LIST,
                       reason=f"total path attribute length {tal} overruns the message")
    withdrawn = decode_prefixes(body[2:2 + wrl], what="withdrawn routes")
    attrs = bytes(body[4 + wrl:4 + wrl + tal])
    nlri = decode_prefixes(body[4 + wrl + tal:])
    return Update(tuple(withdrawn), attrs, tuple(nlri))
