"""One BgpPeer driven with hand-made bytes: the test plays the CGW's speaker.

    peer, out = raw_peer()          # vgw, one inbound connection "c", OPEN sent
    peer.data_received("c", cgw_open(), 0)
    assert notifications(out(peer)) == []
"""

from __future__ import annotations

from ipaddress import IPv4Address

from bgpcore.attributes import PathAttributes, encode_attributes
from bgpcore.aspath import AsPath
from bgpcore.messages import KEEPALIVE, Open, Update
from bgpcore.peer import BgpPeer

from .bgppair import CGW, settings_a, split


def raw_peer(now: float = 0.0, **kw) -> BgpPeer:
    kw.setdefault("passive", True)
    peer = BgpPeer(settings_a(**kw))
    peer.start(now)
    peer.connection_made("c", now, outbound=False)
    return peer


def out(peer: BgpPeer) -> list[bytes]:
    """Messages vgw wrote since the last call."""
    msgs = []
    for _conn, data in peer.transmit():
        msgs += split(data)
    return msgs


def events(peer: BgpPeer) -> list:
    evs = []
    while (e := peer.next_event()) is not None:
        evs.append(e)
    return evs


def notifications(msgs: list[bytes]) -> list[tuple[int, int, bytes]]:
    return [(m[19], m[20], m[21:]) for m in msgs if m[18] == 3]


def cgw_open(asn: int = 65000, hold: int = 30, rid: str = "169.254.10.2") -> bytes:
    return Open.for_speaker(asn, hold, IPv4Address(rid)).encode()


def cgw_update(nlri=(), withdrawn=(), attrs: PathAttributes | None = None,
               raw_attrs: bytes | None = None, four_octet: bool = True) -> bytes:
    if raw_attrs is None:
        attrs = attrs if attrs is not None else PathAttributes(as_path=AsPath.of(65000),
                                                               next_hop=CGW)
        raw_attrs = encode_attributes(attrs, four_octet) if nlri else b""
    return Update(tuple(withdrawn), raw_attrs, tuple(nlri)).encode()


def established_peer(now: float = 0.0, **kw) -> BgpPeer:
    peer = raw_peer(now, **kw)
    peer.data_received("c", cgw_open() + KEEPALIVE, now)
    assert peer.state.value == "Established", events(peer)
    out(peer)
    events(peer)
    return peer
