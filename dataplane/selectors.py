"""Inbound traffic selector check (RFC 4301 §5.2, step 4): a packet that arrives
on an SA must lie inside the selectors the SA was negotiated for, or it is
discarded - otherwise a customer gateway whose SA covers 172.16.0.0/16 could send
any source address into the VPC.

The data path knows nothing of IKE: it is handed plain ranges. An SA whose
selectors cover all of IPv4 (AWS's default, 0.0.0.0/0 both sides) gets no
checker at all, so the common case costs nothing per packet.
"""

from __future__ import annotations

from dataclasses import dataclass

# Upper-layer protocols whose selectors can name ports (RFC 4301 §4.4.1.1).
_PORT_PROTOCOLS = (6, 17, 132, 136)   # TCP, UDP, SCTP, UDP-Lite
_FULL_V4 = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class Range:
    """One selector (RFC 7296 §3.13.1): addresses start..end of IP version
    `version` (4 or 6, as integers), protocol (0 = any) and ports start..end."""

    version: int
    start: int
    end: int
    protocol: int = 0
    port_start: int = 0
    port_end: int = 65535

    @property
    def everything_v4(self) -> bool:
        return (self.version == 4 and (self.start, self.end) == _FULL_V4 and self.protocol == 0
                and (self.port_start, self.port_end) == (0, 65535))


class Selectors:
    """`admits(inner)`: is the inner IP packet from a `sources` range to a
    `destinations` range? Both sides must match one range each."""

    __slots__ = ("sources", "destinations")

    def __init__(self, sources: tuple[Range, ...], destinations: tuple[Range, ...]) -> None:
        self.sources = tuple(sources)
        self.destinations = tuple(destinations)

    @classmethod
    def for_inbound(cls, sources, destinations) -> "Selectors | None":
        """The checker for an inbound SA, or None when there is nothing to check."""
        if any(r.everything_v4 for r in sources) and any(r.everything_v4 for r in destinations):
            return None
        return cls(sources, destinations)

    def admits(self, inner) -> bool:
        version = inner[0] >> 4
        if version == 4:
            if len(inner) < 20:
                return False
            src = int.from_bytes(inner[12:16], "big")
            dst = int.from_bytes(inner[16:20], "big")
            protocol = inner[9]
            header = (inner[0] & 15) * 4
            # only the first fragment carries the ports (RFC 4301 §7: later
            # fragments are judged by addresses and protocol)
            first_fragment = (int.from_bytes(inner[6:8], "big") & 0x1FFF) == 0
        elif version == 6:
            if len(inner) < 40:
                return False
            src = int.from_bytes(inner[8:24], "big")
            dst = int.from_bytes(inner[24:40], "big")
            protocol = inner[6]           # extension headers are not walked
            header = 40
            first_fragment = True
        else:
            return False
        sport = dport = None
        if first_fragment and protocol in _PORT_PROTOCOLS and len(inner) >= header + 4:
            sport = int.from_bytes(inner[header:header + 2], "big")
            dport = int.from_bytes(inner[header + 2:header + 4], "big")
        return (_match(self.sources, version, src, protocol, sport)
                and _match(self.destinations, version, dst, protocol, dport))


def _match(ranges, version: int, addr: int, protocol: int, port: int | None) -> bool:
    for r in ranges:
        if r.version != version or not r.start <= addr <= r.end:
            continue
        if r.protocol and r.protocol != protocol:
            continue
        if (r.port_start, r.port_end) != (0, 65535) and port is not None \
                and not r.port_start <= port <= r.port_end:
            continue
        return True
    return False
