"""Helpers shared by the tunnel lifecycle tests (rekeys, collisions, DPD, restarts).

They build on ikepair: a pair whose two sides draw from ScriptedRandom sources
(so a test fixes the uniform value of the rekey fuzz and the nonces that decide
collisions), with fast PFS groups, and a few readers of what went over the wire.
"""

from __future__ import annotations

import struct

from dataplane.esp import EspSa
from ikecore.events import ChildSaUp, Datagram
from .ikepair import (
    EXCHANGES, FLAG_R, IkePair, ScriptedRandom, Side, exchange_of, open_message, settings_a,
    settings_b,
)

PFS = (19,)   # phase 2 (PFS) group of the tests unless they say otherwise: fast ECP

# IANA / RFC 7296 §3.3.1 protocol IDs, §3.3.2 transform types
PROTO_IKE, PROTO_ESP = 1, 3
T_ENCR, T_PRF, T_INTEG, T_DH, T_ESN = 1, 2, 3, 4, 5


def make_pair(a: dict | None = None, b: dict | None = None, ua: float | None = None,
              ub: float | None = None, up: bool = True, nat_a=None) -> IkePair:
    """A pair with steerable randomness on both sides (`ua`/`ub`: the value every
    uniform() draw of that side returns), phase 2 group 19, handshake done at t=0."""
    pa = dict(phase2_dh_groups=PFS, random_bytes=ScriptedRandom(1, ua))
    pb = dict(phase2_dh_groups=PFS, random_bytes=ScriptedRandom(2, ub))
    pa.update(a or {})
    pb.update(b or {})
    pair = IkePair(settings_a(**pa), settings_b(**pb), nat_a=nat_a)
    if up:
        pair.handshake()
    return pair


def rng(side: Side) -> ScriptedRandom:
    return side.endpoint.settings.random_bytes


def sent(pair: IkePair, who: Side, since: int = 0, exchange: str | None = None,
         response: bool | None = None) -> list[Datagram]:
    """Datagrams `who` put on the wire from index `since` on, filtered."""
    out = []
    for name, d in pair.wire[since:]:
        if name != who.name:
            continue
        if exchange is not None and exchange_of(d) != EXCHANGES[exchange]:
            continue
        if response is not None and bool(d.data[19] & FLAG_R) != response:
            continue
        out.append(d)
    return out


def spi_of(raw: bytes) -> int:
    return struct.unpack("!I", raw)[0]


def opened(pair: IkePair, d: Datagram):
    """Decrypt `d` with the keys of the IKE SA it belongs to (alive or gone)."""
    return open_message(pair.sa_of(d), d)


def jump(pair: IkePair, to: float) -> None:
    """Move the clock straight to `to`, fire what is due there, deliver everything."""
    pair.advance(to)
    pair.run()


def children(side: Side) -> dict[int, int]:
    """spi_in -> spi_out of the CHILD SAs the side's current IKE SA holds."""
    cur = side.endpoint.current
    return {c.spi_in: c.spi_out for c in cur.children.values()} if cur else {}


def live_child_ups(side: Side) -> list[ChildSaUp]:
    """ChildSaUp events of SAs that had no ChildSaDown afterwards."""
    down = {d.spi_in for d in side.child_downs}
    return [u for u in side.child_ups if u.spi_in not in down]


ESP_ENCR = {12: "aes-cbc", 20: "aes-gcm-16"}
ESP_INTEG = {2: "hmac-sha1-96", 12: "hmac-sha2-256-128", 13: "hmac-sha2-384-192",
             14: "hmac-sha2-512-256"}


def assert_esp_flows(up_x: ChildSaUp, up_y: ChildSaUp) -> None:
    """A packet sealed with one side's outbound keys opens with the other's inbound
    keys (the data path's own ESP code), both ways."""
    inner = bytes.fromhex("4500001c0001000040017cd90a0100010a020001") + bytes(8)
    for out, into in ((up_x, up_y), (up_y, up_x)):
        integ = ESP_INTEG.get(int(out.integ_id)) if out.integ_id else None
        sealer = EspSa(out.spi_out, ESP_ENCR[out.encr_id], out.encr_key_out, integ,
                       out.integ_key_out if integ else None)
        opener = EspSa(into.spi_in, ESP_ENCR[into.encr_id], into.encr_key_in, integ,
                       into.integ_key_in if integ else None)
        packet = sealer.encrypt(inner)
        assert spi_of(packet[:4]) == into.spi_in
        assert opener.decrypt(packet) == inner
