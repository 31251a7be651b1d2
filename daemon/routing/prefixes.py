"""A set of IPv4 prefixes searchable by overlap, for the route table's refusals.

Kept as (network address, length) integers rather than IPv4Network objects
(whose hash is recomputed on every lookup): supernets of a prefix are found by
walking up its lengths (33 lookups at most), subnets by bisecting the sorted
network addresses. Sizes are a VGW's: at most some thousands of prefixes.
"""

from __future__ import annotations

import bisect
from ipaddress import IPv4Network

_MASKS = [(0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF for n in range(33)]


class PrefixIndex:
    def __init__(self) -> None:
        self._held: set[tuple[int, int]] = set()
        self._starts: list[int] = []                 # network addresses, sorted, each once
        self._lengths: dict[int, list[int]] = {}     # network address -> prefix lengths held

    def add(self, prefix: IPv4Network) -> None:
        key = (int(prefix.network_address), prefix.prefixlen)
        if key in self._held:
            return
        self._held.add(key)
        if key[0] not in self._lengths:
            bisect.insort(self._starts, key[0])
            self._lengths[key[0]] = []
        self._lengths[key[0]].append(key[1])

    def remove(self, prefix: IPv4Network) -> None:
        key = (int(prefix.network_address), prefix.prefixlen)
        if key not in self._held:
            return
        self._held.discard(key)
        lengths = self._lengths[key[0]]
        lengths.remove(key[1])
        if not lengths:
            del self._lengths[key[0]]
            del self._starts[bisect.bisect_left(self._starts, key[0])]

    def __len__(self) -> int:
        return len(self._held)

    def overlapping(self, prefix: IPv4Network) -> list[IPv4Network]:
        """The held prefixes that contain `prefix` or lie inside it (itself included)."""
        address, length = int(prefix.network_address), prefix.prefixlen
        found = [(address & _MASKS[up], up) for up in range(length, -1, -1)
                 if (address & _MASKS[up], up) in self._held]
        last = address | (~_MASKS[length] & 0xFFFFFFFF)
        for i in range(bisect.bisect_left(self._starts, address), len(self._starts)):
            start = self._starts[i]
            if start > last:
                break
            found += [(start, held) for held in self._lengths[start] if held > length]
        return [IPv4Network(key) for key in found]
