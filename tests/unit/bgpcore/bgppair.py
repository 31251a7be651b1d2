"""Two BGP cores back to back in memory, with a synthetic clock.

Nothing here opens a socket, reads a clock or sleeps. `BgpPair(settings_a,
settings_b)` joins two BgpPeers by in-memory "TCP connections": a
ConnectRequested from one side becomes a connection that both ends see in
`connection_made` (outbound on the side that asked), bytes from `transmit()`
travel in order per connection, a CloseConnection delivers what was written
before it and then `connection_lost` on the other end.

    pair = BgpPair(settings_a(), settings_b())
    pair.a.peer.start(pair.now); pair.b.peer.start(pair.now)
    pair.run()                 # until nothing moves
    pair.advance(30)           # the clock moves; timers fire at their deadlines

`deaf(side)` stops delivering to a side (the TCP connection stays up: a
silent peer), `auto_connect = False` leaves ConnectRequested unanswered
until the test calls `connect(side)` itself; `refuse = {side}` makes a side's
connection attempts fail (connect_failed).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from bgpcore.attributes import PathAttributes
from bgpcore.events import CloseConnection, ConnectRequested, Event
from bgpcore.peer import BgpPeer
from bgpcore.settings import PeerSettings

VGW = IPv4Address("169.254.10.1")
CGW = IPv4Address("169.254.10.2")


def settings_a(**kw) -> PeerSettings:
    """vgw's side (AWS's ASN, the VGW inside address)."""
    args = dict(local_asn=64512, peer_asn=65000, local_address=VGW, peer_address=CGW)
    args.update(kw)
    return PeerSettings(**args)


def settings_b(**kw) -> PeerSettings:
    """The customer gateway, played by a second core."""
    args = dict(local_asn=65000, peer_asn=64512, local_address=CGW, peer_address=VGW,
                max_prefixes=None)
    args.update(kw)
    return PeerSettings(**args)


def route(asn_path=(), med=None, next_hop=None, **kw) -> PathAttributes:
    from bgpcore.aspath import AsPath
    return PathAttributes(as_path=AsPath.of(*asn_path), med=med, next_hop=next_hop, **kw)


def prefixes(n: int, base: str = "10.100.0.0") -> list[IPv4Network]:
    start = int(IPv4Address(base))
    return [IPv4Network((start + (i << 8), 24)) for i in range(n)]


def split(stream: bytes) -> list[bytes]:
    """The whole messages in a write (a shell's write may hold several)."""
    out, pos = [], 0
    while pos + 19 <= len(stream):
        length = int.from_bytes(stream[pos + 16:pos + 18], "big")
        out.append(stream[pos:pos + length])
        pos += length
    assert pos == len(stream), "a write ended inside a message"
    return out


class Side:
    def __init__(self, name: str, peer: BgpPeer):
        self.name = name
        self.peer = peer
        self.events: list[Event] = []
        self.times: list[float] = []          # when each event was drained
        self.wants_connect = False

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def when(self, kind) -> list[float]:
        return [t for t, e in zip(self.times, self.events) if isinstance(e, kind)]

    def clear(self) -> None:
        self.events.clear()
        self.times.clear()


@dataclass
class Link:
    """One TCP connection: `ends[side] = conn id on that side`."""

    ends: dict
    queues: dict = field(default_factory=lambda: {"a": deque(), "b": deque()})  # bytes TO side
    closed_by: set = field(default_factory=set)
    lost_told: set = field(default_factory=set)


class BgpPair:
    def __init__(self, sa: PeerSettings, sb: PeerSettings, now: float = 1000.0):
        self.a = Side("a", BgpPeer(sa))
        self.b = Side("b", BgpPeer(sb))
        self.now = now
        self.links: list[Link] = []
        self.auto_connect = True
        self.deaf_sides: set[str] = set()
        self.refuse: set[str] = set()
        self.sent: dict[str, list[bytes]] = {"a": [], "b": []}   # every message, per sender
        self._n = 0

    def side(self, name: str) -> Side:
        return self.a if name == "a" else self.b

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    def start(self, *names: str) -> None:
        for n in names or ("a", "b"):
            self.side(n).peer.start(self.now)

    def deaf(self, name: str) -> None:
        self.deaf_sides.add(name)

    # --- moving things ---------------------------------------------------------------

    def _drain(self, side: Side) -> bool:
        """Write what the side transmits, then act on its events (a shell
        writes a connection's bytes before closing it)."""
        moved = False
        for conn, data in side.peer.transmit():
            moved = True
            self.sent[side.name] += split(data)
            for link in self.links:
                if link.ends[side.name] == conn and side.name not in link.closed_by:
                    link.queues[self.other(side).name].append(data)
        while (e := side.peer.next_event()) is not None:
            moved = True
            side.events.append(e)
            side.times.append(self.now)
            if isinstance(e, ConnectRequested):
                side.wants_connect = True
            elif isinstance(e, CloseConnection):
                for link in self.links:
                    if link.ends.get(side.name) == e.conn:
                        link.closed_by.add(side.name)
        return moved

    def connect(self, name: str) -> Link | None:
        """Answer `name`'s ConnectRequested: a new connection, both ends told."""
        side = self.side(name)
        side.wants_connect = False
        if name in self.refuse:
            side.peer.connect_failed(self.now)
            return None
        other = self.other(side)
        self._n += 1
        link = Link({name: f"{name}{self._n}-out", other.name: f"{other.name}{self._n}-in"})
        self.links.append(link)
        side.peer.connection_made(link.ends[name], self.now, outbound=True)
        other.peer.connection_made(link.ends[other.name], self.now, outbound=False)
        return link

    def _deliver(self) -> bool:
        moved = False
        for link in self.links:
            for name in ("a", "b"):
                if name in self.deaf_sides:
                    continue
                q = link.queues[name]
                side = self.side(name)
                while q:
                    moved = True
                    side.peer.data_received(link.ends[name], q.popleft(), self.now)
                sender = "b" if name == "a" else "a"
                if sender in link.closed_by and name not in link.closed_by \
                        and name not in link.lost_told:
                    link.lost_told.add(name)
                    moved = True
                    side.peer.connection_lost(link.ends[name], self.now)
        return moved

    def run(self, rounds: int = 1000) -> None:
        for _ in range(rounds):
            moved = self._drain(self.a) | self._drain(self.b)
            if self.auto_connect:
                wanting = [s for s in (self.a, self.b) if s.wants_connect]
                for s in wanting:
                    self.connect(s.name)
                    moved = True
            moved |= self._drain(self.a) | self._drain(self.b)
            moved |= self._deliver()
            if not moved:
                return
        raise AssertionError("the pair did not settle")

    def next_deadline(self) -> float | None:
        ds = [d for d in (self.a.peer.next_deadline(), self.b.peer.next_deadline())
              if d is not None]
        return min(ds) if ds else None

    def advance(self, seconds: float) -> None:
        """Move the clock by `seconds`, firing every timer at its deadline."""
        end = self.now + seconds
        self.run()
        while (d := self.next_deadline()) is not None and d <= end:
            self.now = max(self.now, d)
            self.a.peer.handle_timer(self.now)
            self.b.peer.handle_timer(self.now)
            self.run()
        self.now = end
        self.run()

    def establish(self) -> None:
        self.start()
        self.run()
        assert self.a.peer.state.value == "Established", self.a.events
        assert self.b.peer.state.value == "Established", self.b.events
