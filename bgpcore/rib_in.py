"""The Adj-RIB-In of one session, with AWS's import policy and prefix limit.

Every prefix the peer announced and did not withdraw is held here, accepted or
denied, since AWS's limit counts what the peer sent (docs/aws.md §7: 100 routes
per VGW session; the 101st ends it with Cease/1). Holding denied ones too means
a peer cannot grow vgw's memory past the limit whatever it sends.

Import policy (docs/aws.md §3.4 quotes the log lines): a path that contains
vgw's own AS is denied ("as-path contains our own AS", the eBGP loop check of
RFC 4271 §9.1.2), and so is a next hop other than the peer's inside address
("non-connected next-hop": a VGW peers only with its directly connected CGW).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from .attributes import PathAttributes

DENY_OWN_AS = "as-path contains our own AS"
DENY_NEXT_HOP = "non-connected next-hop"


@dataclass
class RibChange:
    """The net effect of one UPDATE on the accepted routes."""

    announced: dict = field(default_factory=dict)       # prefix -> PathAttributes
    withdrawn: set = field(default_factory=set)
    denied: list = field(default_factory=list)          # (prefix, PathAttributes, reason)
    limit_exceeded: bool = False


class AdjRibIn:
    def __init__(self, local_asn: int, peer_address: IPv4Address, max_prefixes: int | None):
        self.local_asn = local_asn
        self.peer_address = peer_address
        self.max_prefixes = max_prefixes
        self.received: dict[IPv4Network, PathAttributes] = {}   # accepted and denied
        self.accepted: dict[IPv4Network, PathAttributes] = {}

    def deny_reason(self, attrs: PathAttributes) -> str | None:
        if attrs.as_path.contains(self.local_asn):
            return DENY_OWN_AS
        if attrs.next_hop != self.peer_address:
            return DENY_NEXT_HOP
        return None

    def apply(self, withdrawn, announced) -> RibChange:
        """Withdrawals first, then announcements (a prefix in both is
        announced, RFC 4271 §4.3). Stops at the first prefix past the limit:
        the caller ends the session, so the rest does not matter."""
        change = RibChange()
        before: dict = {}
        for prefix in withdrawn:
            before.setdefault(prefix, self.accepted.get(prefix))
            self.received.pop(prefix, None)
            self.accepted.pop(prefix, None)
        for prefix, attrs in announced:
            if (prefix not in self.received and self.max_prefixes is not None
                    and len(self.received) >= self.max_prefixes):
                change.limit_exceeded = True
                break
            before.setdefault(prefix, self.accepted.get(prefix))
            self.received[prefix] = attrs
            reason = self.deny_reason(attrs)
            if reason is None:
                self.accepted[prefix] = attrs
            else:
                self.accepted.pop(prefix, None)
                change.denied.append((prefix, attrs, reason))
        for prefix, old in before.items():
            new = self.accepted.get(prefix)
            if new is not None and new != old:
                change.announced[prefix] = new
            elif new is None and old is not None:
                change.withdrawn.add(prefix)
        return change

    def clear(self) -> dict:
        """Session down: everything goes; returns what was accepted."""
        gone = self.accepted
        self.received, self.accepted = {}, {}
        return gone
