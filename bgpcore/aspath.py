"""AS_PATH and AS4_PATH: segments, their wire form with 2- or 4-octet AS
numbers, path length, and the AS4_PATH merge of RFC 6793 §4.2.3.

An `AsPath` is immutable and hashable, so paths compare as values (the
daemon's path selection counts their length: RFC 4271 §9.1.2.2, an AS_SET
counts as one).
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import AS_TRANS, SegmentType

MAX_SEGMENT = 255                 # the segment length field is one octet


class MalformedPath(Exception):
    """An AS_PATH / AS4_PATH that RFC 7606 §7.2 / RFC 6793 §6 call malformed."""


@dataclass(frozen=True)
class Segment:
    type: SegmentType
    asns: tuple[int, ...]

    def __str__(self) -> str:
        inner = " ".join(str(a) for a in self.asns)
        return {SegmentType.AS_SET: "{%s}", SegmentType.AS_CONFED_SEQUENCE: "(%s)",
                SegmentType.AS_CONFED_SET: "[%s]"}.get(self.type, "%s") % inner

    @property
    def length(self) -> int:
        """Contribution to the path length (RFC 4271 §9.1.2.2 a; RFC 5065 §5.3)."""
        if self.type == SegmentType.AS_SEQUENCE:
            return len(self.asns)
        if self.type == SegmentType.AS_SET:
            return 1
        return 0


@dataclass(frozen=True)
class AsPath:
    segments: tuple[Segment, ...] = ()

    @classmethod
    def of(cls, *asns: int) -> "AsPath":
        """A path of one AS_SEQUENCE (empty for no AS)."""
        return cls(_sequence_segments(tuple(asns)))

    def __str__(self) -> str:
        """AWS's log spelling: space-separated, "64512 65000" (docs/aws.md §3.4)."""
        return " ".join(str(s) for s in self.segments)

    @property
    def length(self) -> int:
        return sum(s.length for s in self.segments)

    def asns(self) -> tuple[int, ...]:
        return tuple(a for s in self.segments for a in s.asns)

    def contains(self, asn: int) -> bool:
        return any(asn in s.asns for s in self.segments)

    @property
    def first_as(self) -> int | None:
        """The leftmost AS if the path starts with an AS_SEQUENCE (RFC 4271 §6.3)."""
        if self.segments and self.segments[0].type == SegmentType.AS_SEQUENCE:
            return self.segments[0].asns[0]
        return None

    def prepend(self, asn: int) -> "AsPath":
        """RFC 4271 §5.1.2 b: into the leading AS_SEQUENCE, or a new one in front."""
        if self.segments and self.segments[0].type == SegmentType.AS_SEQUENCE:
            rest = self.segments[0].asns
            return AsPath(_sequence_segments((asn,) + rest) + self.segments[1:])
        return AsPath((Segment(SegmentType.AS_SEQUENCE, (asn,)),) + self.segments)

    @property
    def needs_four_octets(self) -> bool:
        return any(a > 0xFFFF for a in self.asns())


def _sequence_segments(asns: tuple[int, ...]) -> tuple[Segment, ...]:
    return tuple(Segment(SegmentType.AS_SEQUENCE, asns[i:i + MAX_SEGMENT])
                 for i in range(0, len(asns), MAX_SEGMENT))


def encode_path(path: AsPath, four_octet: bool) -> bytes:
    """Wire form. With 2-octet AS numbers, one above 65535 becomes AS_TRANS
    (RFC 6793 §4.2.2); the caller adds AS4_PATH with the real numbers."""
    out = bytearray()
    size = 4 if four_octet else 2
    for seg in path.segments:
        for i in range(0, len(seg.asns), MAX_SEGMENT):
            chunk = seg.asns[i:i + MAX_SEGMENT]
            out += bytes([seg.type, len(chunk)])
            for a in chunk:
                out += (a if four_octet or a <= 0xFFFF else AS_TRANS).to_bytes(size, "big")
    return bytes(out)


def decode_path(data: bytes, four_octet: bool, confed: bool = False) -> AsPath:
    """Segments of an AS_PATH (or AS4_PATH with four_octet=True). Malformed per
    RFC 7606 §7.2: a segment type other than AS_SET/AS_SEQUENCE (or the confed
    types when `confed`), a zero segment length, a segment running past the
    attribute, or a lone octet left over; AS 0 anywhere (RFC 7607 §2)."""
    size = 4 if four_octet else 2
    segments = []
    pos, end = 0, len(data)
    allowed = {SegmentType.AS_SET, SegmentType.AS_SEQUENCE}
    if confed:
        allowed |= {SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET}
    while pos < end:
        if end - pos < 2:
            raise MalformedPath("a lone octet after the last segment")
        stype, count = data[pos], data[pos + 1]
        if stype not in allowed:
            raise MalformedPath(f"segment type {stype}")
        if count == 0:
            raise MalformedPath("segment of length zero")
        stop = pos + 2 + count * size
        if stop > end:
            raise MalformedPath("segment runs past the attribute")
        asns = tuple(int.from_bytes(data[i:i + size], "big") for i in range(pos + 2, stop, size))
        if 0 in asns:
            raise MalformedPath("AS 0 in the path (RFC 7607)")
        segments.append(Segment(SegmentType(stype), asns))
        pos = stop
    return AsPath(tuple(segments))


def merge_as4(as_path: AsPath, as4_path: AsPath) -> AsPath:
    """RFC 6793 §4.2.3: the path a NEW speaker builds from an OLD speaker's
    AS_PATH (with AS_TRANS) and AS4_PATH. AS4_PATH longer than AS_PATH is
    ignored; otherwise AS_PATH's leading part fills the difference."""
    missing = as_path.length - as4_path.length
    if missing < 0:
        return as_path
    lead: list[Segment] = []
    for seg in as_path.segments:
        if missing <= 0:
            break
        if seg.type == SegmentType.AS_SEQUENCE:
            take = seg.asns[:missing]
            lead.append(Segment(seg.type, take))
            missing -= len(take)
        elif seg.type == SegmentType.AS_SET:
            lead.append(seg)
            missing -= 1
        else:                      # confed segments count 0 and come along (§4.2.3)
            lead.append(seg)
    merged = lead + list(as4_path.segments)
    # join a cut AS_SEQUENCE to a following one, so that the path prints and
    # compares as the 4-octet speaker sent it
    out: list[Segment] = []
    for seg in merged:
        if (out and seg.type == SegmentType.AS_SEQUENCE and out[-1].type == SegmentType.AS_SEQUENCE
                and len(out[-1].asns) + len(seg.asns) <= MAX_SEGMENT):
            out[-1] = Segment(SegmentType.AS_SEQUENCE, out[-1].asns + seg.asns)
        else:
            out.append(seg)
    return AsPath(tuple(out))


def drop_confed(path: AsPath) -> tuple[AsPath, bool]:
    """AS4_PATH without confed segments (RFC 6793 §6), and whether any were dropped."""
    kept = tuple(s for s in path.segments
                 if s.type in (SegmentType.AS_SET, SegmentType.AS_SEQUENCE))
    return AsPath(kept), len(kept) != len(path.segments)
