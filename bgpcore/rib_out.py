"""The Adj-RIB-Out of one session: what vgw wants the peer to have, what the
peer has been sent, the difference as UPDATE messages.

Export rules for an external peer: vgw's AS goes in front of the AS_PATH
(RFC 4271 §5.1.2), the next hop is vgw's own address on the shared link
(§5.1.3), LOCAL_PREF is never sent (§5.1.5). ORIGIN, MED and the rest are the
daemon's (docs/aws.md §7: MED 100 on the primary tunnel, 200 on the other).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from .attributes import PathAttributes, encode_attributes
from .messages import Update, encode_prefix
from .wire import HEADER_LEN, MAX_MESSAGE_LEN

ROOM = MAX_MESSAGE_LEN - HEADER_LEN - 4      # withdrawn + attributes + NLRI octets


def _order(prefix: IPv4Network) -> tuple[int, int]:
    return int(prefix.network_address), prefix.prefixlen


def pack_withdrawals(prefixes) -> list[bytes]:
    """UPDATEs carrying only Withdrawn Routes, each as full as 4096 allows."""
    out, batch, size = [], [], 0
    for p in sorted(prefixes, key=_order):
        n = len(encode_prefix(p))
        if size + n > ROOM:
            out.append(Update(withdrawn=tuple(batch)).encode())
            batch, size = [], 0
        batch.append(p)
        size += n
    if batch:
        out.append(Update(withdrawn=tuple(batch)).encode())
    return out


def pack_announcements(routes: dict, four_octet: bool) -> tuple[list[bytes], list]:
    """One UPDATE per set of equal attributes (more if 4096 octets do not
    hold them); returns the messages and prefixes whose attributes alone do
    not fit in a message (a path too long to send)."""
    groups: dict[PathAttributes, list] = {}
    for prefix, attrs in routes.items():
        groups.setdefault(attrs, []).append(prefix)
    out, unsendable = [], []
    for attrs, prefixes in sorted(groups.items(), key=lambda g: min(map(_order, g[1]))):
        raw = encode_attributes(attrs, four_octet)
        room = ROOM - len(raw)
        batch, size = [], 0
        for p in sorted(prefixes, key=_order):
            n = len(encode_prefix(p))
            if n > room:
                unsendable.append(p)
                continue
            if size + n > room:
                out.append(Update(attributes=raw, nlri=tuple(batch)).encode())
                batch, size = [], 0
            batch.append(p)
            size += n
        if batch:
            out.append(Update(attributes=raw, nlri=tuple(batch)).encode())
    return out, unsendable


class AdjRibOut:
    def __init__(self, local_asn: int, local_address: IPv4Address):
        self.local_asn = local_asn
        self.local_address = local_address
        self.wanted: dict[IPv4Network, PathAttributes] = {}
        self.sent: dict[IPv4Network, PathAttributes] = {}    # as exported, this session

    def export(self, attrs: PathAttributes) -> PathAttributes:
        return replace(attrs, as_path=attrs.as_path.prepend(self.local_asn),
                       next_hop=self.local_address, local_pref=None)

    def set_wanted(self, routes) -> None:
        self.wanted = {IPv4Network(p): a for p, a in routes.items()}

    def changes(self, everything: bool = False) -> tuple[dict, set]:
        """(announce, withdraw) to bring the peer to `wanted`; `everything`
        re-sends all wanted routes (session start, ROUTE-REFRESH)."""
        announce = {}
        for prefix, attrs in self.wanted.items():
            exported = self.export(attrs)
            if everything or self.sent.get(prefix) != exported:
                announce[prefix] = exported
        withdraw = {p for p in self.sent if p not in self.wanted}
        return announce, withdraw

    def commit(self, announce: dict, withdraw) -> None:
        for p in withdraw:
            self.sent.pop(p, None)
        self.sent.update(announce)

    def reset(self) -> None:
        """The session ended: the peer has nothing from vgw any more."""
        self.sent = {}
