"""Path attributes: the immutable `PathAttributes` value, its wire form, and
the parse of an UPDATE's attribute field with RFC 7606's revised error handling.

Every attribute vgw knows has a row in SPEC: its expected flags and what a
malformed one costs (RFC 7606 §7, RFC 6793 §6): "treat-as-withdraw" (the
UPDATE's routes are withdrawn) or "attribute discard" (the attribute is dropped,
the routes stay). A flags conflict costs the same as a malformed value (§3 c).
What still ends the session: an unrecognized well-known attribute (RFC 4271
§6.3), a repeated MP_REACH/MP_UNREACH (§3 g) and MP NLRI that cannot be parsed
(§5.3); they raise BgpError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from enum import IntEnum
from ipaddress import IPv4Address

from .aspath import AsPath, MalformedPath, decode_path, drop_confed, encode_path, merge_as4
from .constants import (
    AFI_IPV4, AS_TRANS, SAFI_UNICAST, AttrFlag, AttrType, ErrorCode, Origin, UpdateError,
)
from .errors import BgpError
from .messages import decode_prefixes

OPTIONAL, TRANSITIVE, PARTIAL, EXTENDED = (AttrFlag.OPTIONAL, AttrFlag.TRANSITIVE,
                                           AttrFlag.PARTIAL, AttrFlag.EXTENDED_LENGTH)
WELL_KNOWN = TRANSITIVE                  # optional 0, transitive 1
OPT_TRANS = OPTIONAL | TRANSITIVE
OPT_NON_TRANS = OPTIONAL


class Action(IntEnum):
    """RFC 7606 §2's approaches, weakest first: with several errors in one
    UPDATE the strongest applies (§3 h)."""

    NONE = 0
    ATTRIBUTE_DISCARD = 1
    TREAT_AS_WITHDRAW = 2
    SESSION_RESET = 3

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class Aggregator:
    asn: int
    address: IPv4Address


@dataclass(frozen=True)
class RawAttribute:
    """An optional transitive attribute vgw passes on as received: unknown ones
    (with the Partial bit set, RFC 4271 §5) and extended / large communities."""

    flags: int
    type: int
    value: bytes


@dataclass(frozen=True)
class PathAttributes:
    """The attributes of one route. Frozen and hashable: equal paths compare
    equal, so routes with equal attributes pack into one UPDATE."""

    origin: Origin = Origin.IGP
    as_path: AsPath = field(default_factory=AsPath)
    next_hop: IPv4Address | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: Aggregator | None = None
    communities: tuple[int, ...] = ()
    others: tuple[RawAttribute, ...] = ()


# type: (expected optional/transitive flags, cost of a malformed one) -- RFC 7606 §7.
# MP_REACH_NLRI / MP_UNREACH_NLRI are not here: their errors reset the session
# (RFC 7606 §5.3, §7.11), see _mp_reach.
SPEC = {
    AttrType.ORIGIN: (WELL_KNOWN, Action.TREAT_AS_WITHDRAW),             # §7.1
    AttrType.AS_PATH: (WELL_KNOWN, Action.TREAT_AS_WITHDRAW),            # §7.2
    AttrType.NEXT_HOP: (WELL_KNOWN, Action.TREAT_AS_WITHDRAW),           # §7.3
    AttrType.MULTI_EXIT_DISC: (OPT_NON_TRANS, Action.TREAT_AS_WITHDRAW),  # §7.4
    AttrType.LOCAL_PREF: (WELL_KNOWN, Action.ATTRIBUTE_DISCARD),         # §7.5 (eBGP)
    AttrType.ATOMIC_AGGREGATE: (WELL_KNOWN, Action.ATTRIBUTE_DISCARD),   # §7.6
    AttrType.AGGREGATOR: (OPT_TRANS, Action.ATTRIBUTE_DISCARD),          # §7.7
    AttrType.COMMUNITIES: (OPT_TRANS, Action.TREAT_AS_WITHDRAW),         # §7.8
    AttrType.ORIGINATOR_ID: (OPT_NON_TRANS, Action.ATTRIBUTE_DISCARD),   # §7.9 (eBGP)
    AttrType.CLUSTER_LIST: (OPT_NON_TRANS, Action.ATTRIBUTE_DISCARD),    # §7.10 (eBGP)
    AttrType.EXTENDED_COMMUNITIES: (OPT_TRANS, Action.TREAT_AS_WITHDRAW),  # §7.14
    AttrType.AS4_PATH: (OPT_TRANS, Action.ATTRIBUTE_DISCARD),            # RFC 6793 §6
    AttrType.AS4_AGGREGATOR: (OPT_TRANS, Action.ATTRIBUTE_DISCARD),      # RFC 6793 §6
    AttrType.LARGE_COMMUNITY: (OPT_TRANS, Action.TREAT_AS_WITHDRAW),     # RFC 8092 §6
}
MP_ATTRIBUTES = (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI)


class Malformed(Exception):
    """One attribute is wrong; SPEC says what that costs. `subcode` is the
    RFC 4271 §6.3 one, used if the error has to reset the session after all
    (RFC 7606 §5.2)."""

    def __init__(self, reason: str, subcode: int = UpdateError.ATTRIBUTE_LENGTH):
        super().__init__(reason)
        self.subcode = subcode


@dataclass(frozen=True)
class Problem:
    """One error in an UPDATE and what RFC 7606 makes of it."""

    reason: str
    action: Action
    subcode: int = UpdateError.MALFORMED_ATTRIBUTE_LIST
    data: bytes = b""


@dataclass
class ParsedAttributes:
    """What the attribute field said, before the checks that need the NLRI
    (bgpcore.update). `values` holds the attributes that parsed."""

    values: dict = field(default_factory=dict)          # PathAttributes field -> value
    present: set = field(default_factory=set)           # type codes seen (even if malformed)
    mp_reach: tuple | None = None                       # (next_hop, [prefixes]) for IPv4 unicast
    mp_unreach: list = field(default_factory=list)      # IPv4 unicast prefixes
    problems: list = field(default_factory=list)        # Problem
    others: list = field(default_factory=list)          # RawAttribute

    @property
    def action(self) -> Action:
        return max((p.action for p in self.problems), default=Action.NONE)

    def problem(self, reason: str, action: Action,
                subcode: int = UpdateError.MALFORMED_ATTRIBUTE_LIST, data: bytes = b"") -> None:
        self.problems.append(Problem(reason, action, subcode, bytes(data)))


def _attr_error(subcode: int, raw: bytes, reason: str) -> BgpError:
    return BgpError(ErrorCode.UPDATE_MESSAGE, subcode, raw, reason)


def parse_attributes(data: bytes, four_octet: bool) -> ParsedAttributes:
    """Walk the attribute field of an UPDATE from an external peer.

    `four_octet`: both speakers announced the 4-octet AS capability, so AS
    numbers are 4 octets in AS_PATH and AGGREGATOR (RFC 6793 §4.1)."""
    out = ParsedAttributes()
    raw_as4_path = raw_as4_aggr = None
    seen: set[int] = set()
    pos, end = 0, len(data)
    while pos < end:
        # RFC 7606 §4: a header or value running past the field -> treat-as-withdraw,
        # the NLRI field is still found from the Total Path Attribute Length.
        if end - pos < 3 or (data[pos] & EXTENDED and end - pos < 4):
            out.problem("attribute header truncated", Action.TREAT_AS_WITHDRAW)
            break
        flags, code = data[pos], data[pos + 1]
        if flags & EXTENDED:
            length, hdr = struct.unpack_from("!H", data, pos + 2)[0], 4
        else:
            length, hdr = data[pos + 2], 3
        if pos + hdr + length > end:
            out.problem(f"attribute {code} runs past the attribute field", Action.TREAT_AS_WITHDRAW)
            break
        value = data[pos + hdr:pos + hdr + length]
        raw = data[pos:pos + hdr + length]
        pos += hdr + length
        out.present.add(code)
        if code in seen:
            if code in MP_ATTRIBUTES:                                        # §3 g
                raise _attr_error(UpdateError.MALFORMED_ATTRIBUTE_LIST, b"",
                                  f"attribute {code} repeated")
            out.problem(f"attribute {code} repeated: later copy discarded",
                        Action.ATTRIBUTE_DISCARD)
            continue
        seen.add(code)
        if code in MP_ATTRIBUTES:
            _mp(out, flags, code, value, raw)
            continue
        spec = SPEC.get(code)
        if spec is None:
            _unknown(out, flags, code, value, raw)
            continue
        expected, cost = spec
        try:
            if flags & OPT_TRANS != expected or (flags & PARTIAL and expected != OPT_TRANS):
                raise Malformed(f"flags 0x{flags:02x}", UpdateError.ATTRIBUTE_FLAGS)
            if code == AttrType.AS4_PATH:
                raw_as4_path = value
            elif code == AttrType.AS4_AGGREGATOR:
                raw_as4_aggr = value
            else:
                _parse_one(out, flags, code, value, four_octet)
        except Malformed as exc:
            out.problem(f"{AttrType(code).name}: {exc}", cost, exc.subcode, raw)
    _as4(out, raw_as4_path, raw_as4_aggr, four_octet)
    return out


def _unknown(out: ParsedAttributes, flags: int, code: int, value: bytes, raw: bytes) -> None:
    if not flags & OPTIONAL:                  # RFC 4271 §6.3, kept by RFC 7606
        raise _attr_error(UpdateError.UNRECOGNIZED_WELL_KNOWN, raw,
                          f"unrecognized well-known attribute {code}")
    if flags & TRANSITIVE:                    # §5: passed on, marked partial
        out.others.append(RawAttribute((flags | PARTIAL) & ~EXTENDED, code, bytes(value)))
    # an unrecognized optional non-transitive attribute is quietly ignored (§5)


def _need(value: bytes, length: int) -> None:
    if len(value) != length:
        raise Malformed(f"length {len(value)}, expected {length}")


def _parse_one(out: ParsedAttributes, flags: int, code: int, value: bytes,
               four_octet: bool) -> None:
    v = out.values
    if code == AttrType.ORIGIN:
        _need(value, 1)
        if value[0] > Origin.INCOMPLETE:
            raise Malformed(f"undefined value {value[0]}", UpdateError.INVALID_ORIGIN)
        v["origin"] = Origin(value[0])
    elif code == AttrType.AS_PATH:
        try:
            v["as_path"] = decode_path(value, four_octet)
        except MalformedPath as exc:
            raise Malformed(str(exc), UpdateError.MALFORMED_AS_PATH) from None
    elif code == AttrType.NEXT_HOP:
        _need(value, 4)
        v["next_hop"] = IPv4Address(bytes(value))
    elif code == AttrType.MULTI_EXIT_DISC:
        _need(value, 4)
        v["med"] = struct.unpack("!I", value)[0]
    elif code in (AttrType.LOCAL_PREF, AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST):
        raise Malformed("from an external peer")        # §7.5, §7.9, §7.10
    elif code == AttrType.ATOMIC_AGGREGATE:
        _need(value, 0)
        v["atomic_aggregate"] = True
    elif code == AttrType.AGGREGATOR:
        _need(value, 8 if four_octet else 6)
        asn = int.from_bytes(value[:-4], "big")
        v["aggregator"] = Aggregator(asn, IPv4Address(bytes(value[-4:])))
    elif code == AttrType.COMMUNITIES:
        if not value or len(value) % 4:
            raise Malformed(f"length {len(value)} is not a non-zero multiple of 4",
                            UpdateError.OPTIONAL_ATTRIBUTE)
        v["communities"] = struct.unpack(f"!{len(value) // 4}I", value)
    elif code in (AttrType.EXTENDED_COMMUNITIES, AttrType.LARGE_COMMUNITY):
        unit = 8 if code == AttrType.EXTENDED_COMMUNITIES else 12
        if not value or len(value) % unit:
            raise Malformed(f"length {len(value)} is not a non-zero multiple of {unit}",
                            UpdateError.OPTIONAL_ATTRIBUTE)
        out.others.append(RawAttribute(flags & ~EXTENDED, code, bytes(value)))


def _mp(out: ParsedAttributes, flags: int, code: int, value: bytes, raw: bytes) -> None:
    """MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3, §4). For IPv4 unicast,
    anything wrong leaves its NLRI impossible to trust: session reset (RFC
    7606 §5.3: flags, length, NLRI; §7.11: next hop length). Other
    AFI/SAFIs were never offered by vgw and are ignored whatever they hold."""
    reach = code == AttrType.MP_REACH_NLRI
    name = "MP_REACH_NLRI" if reach else "MP_UNREACH_NLRI"
    if len(value) < (5 if reach else 3):
        raise _attr_error(UpdateError.OPTIONAL_ATTRIBUTE, raw, f"{name} of length {len(value)}")
    afi, safi = struct.unpack_from("!HB", value, 0)
    if (afi, safi) != (AFI_IPV4, SAFI_UNICAST):
        out.problem(f"{name} for AFI {afi} SAFI {safi} ignored", Action.ATTRIBUTE_DISCARD)
        return
    if flags & OPT_TRANS != OPT_NON_TRANS or flags & PARTIAL:
        raise _attr_error(UpdateError.ATTRIBUTE_FLAGS, raw, f"{name} flags 0x{flags:02x}")
    if not reach:
        out.mp_unreach = decode_prefixes(value[3:], ErrorCode.UPDATE_MESSAGE,
                                         UpdateError.OPTIONAL_ATTRIBUTE, name)
        return
    nh_len = value[3]
    if nh_len != 4 or 5 + nh_len > len(value):
        raise _attr_error(UpdateError.OPTIONAL_ATTRIBUTE, raw,
                          f"{name} next hop of length {nh_len} for IPv4")
    prefixes = decode_prefixes(value[5 + nh_len:], ErrorCode.UPDATE_MESSAGE,
                               UpdateError.OPTIONAL_ATTRIBUTE, name)
    out.mp_reach = (IPv4Address(bytes(value[4:8])), prefixes)


def _as4(out: ParsedAttributes, as4_path: bytes | None, as4_aggr: bytes | None,
         four_octet: bool) -> None:
    """RFC 6793 §4.2.3 (from an OLD speaker) and §6 (errors: attribute discard)."""
    if as4_path is None and as4_aggr is None:
        return
    if four_octet:                            # §6: never between NEW speakers
        out.problem("AS4_PATH/AS4_AGGREGATOR from a 4-octet speaker discarded",
                    Action.ATTRIBUTE_DISCARD)
        return
    v = out.values
    aggr = v.get("aggregator")
    if as4_aggr is not None:
        if len(as4_aggr) != 8:
            out.problem("AS4_AGGREGATOR: length", Action.ATTRIBUTE_DISCARD)
        elif aggr is not None and aggr.asn == AS_TRANS:
            v["aggregator"] = Aggregator(int.from_bytes(as4_aggr[:4], "big"),
                                         IPv4Address(bytes(as4_aggr[4:])))
    if aggr is not None and aggr.asn != AS_TRANS:
        return                                # §4.2.3: AS4_* ignored
    if as4_path is None or "as_path" not in v:
        return
    try:
        if len(as4_path) < 6 or len(as4_path) % 2:
            raise MalformedPath(f"length {len(as4_path)}")
        path4, dropped = drop_confed(decode_path(as4_path, True, confed=True))
    except MalformedPath as exc:
        out.problem(f"AS4_PATH: {exc}", Action.ATTRIBUTE_DISCARD)
        return
    if dropped:
        out.problem("AS4_PATH: confederation segments dropped", Action.ATTRIBUTE_DISCARD)
    v["as_path"] = merge_as4(v["as_path"], path4)


# --- encoding ---------------------------------------------------------------------------


def _attr(flags: int, code: int, value: bytes) -> tuple[int, bytes]:
    if len(value) > 255:
        return code, struct.pack("!BBH", flags | EXTENDED, code, len(value)) + value
    return code, struct.pack("!BBB", flags & ~EXTENDED, code, len(value)) + value


def encode_attributes(a: PathAttributes, four_octet: bool) -> bytes:
    """Wire form in ascending type order (RFC 4271 §5). With a 2-octet peer,
    AS numbers above 65535 travel as AS_TRANS plus AS4_PATH / AS4_AGGREGATOR
    (RFC 6793 §4.2.2)."""
    parts = [_attr(WELL_KNOWN, AttrType.ORIGIN, bytes([a.origin])),
             _attr(WELL_KNOWN, AttrType.AS_PATH, encode_path(a.as_path, four_octet))]
    if a.next_hop is not None:
        parts.append(_attr(WELL_KNOWN, AttrType.NEXT_HOP, a.next_hop.packed))
    if a.med is not None:
        parts.append(_attr(OPT_NON_TRANS, AttrType.MULTI_EXIT_DISC, struct.pack("!I", a.med)))
    if a.local_pref is not None:
        parts.append(_attr(WELL_KNOWN, AttrType.LOCAL_PREF, struct.pack("!I", a.local_pref)))
    if a.atomic_aggregate:
        parts.append(_attr(WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, b""))
    if a.aggregator is not None:
        asn = a.aggregator.asn
        if four_octet:
            parts.append(_attr(OPT_TRANS, AttrType.AGGREGATOR,
                               struct.pack("!I", asn) + a.aggregator.address.packed))
        else:
            parts.append(_attr(OPT_TRANS, AttrType.AGGREGATOR,
                               struct.pack("!H", asn if asn <= 0xFFFF else AS_TRANS)
                               + a.aggregator.address.packed))
            if asn > 0xFFFF:
                parts.append(_attr(OPT_TRANS, AttrType.AS4_AGGREGATOR,
                                   struct.pack("!I", asn) + a.aggregator.address.packed))
    if a.communities:
        parts.append(_attr(OPT_TRANS, AttrType.COMMUNITIES,
                           struct.pack(f"!{len(a.communities)}I", *a.communities)))
    if not four_octet and a.as_path.needs_four_octets:
        parts.append(_attr(OPT_TRANS, AttrType.AS4_PATH, encode_path(a.as_path, True)))
    parts += [_attr(o.flags, o.type, o.value) for o in a.others]
    parts.sort(key=lambda p: p[0])
    return b"".join(p for _, p in parts)


def with_values(values: dict, next_hop: IPv4Address | None, others: list) -> PathAttributes:
    """PathAttributes from parsed values, with the next hop a route uses
    (NEXT_HOP for the NLRI field, MP_REACH_NLRI's for its own prefixes)."""
    attrs = PathAttributes(**{k: val for k, val in values.items() if k != "next_hop"})
    return replace(attrs, next_hop=next_hop,
                   others=tuple(sorted(others, key=lambda o: (o.type, o.value))))
