"""daemon.bgp.transport: the asyncio shell around bgpcore, two speakers over real
TCP on loopback (127.0.0.2 and 127.0.0.3 stand in for the inside addresses; a
free high port for 179, so no root is needed). Every wait is bounded."""

import asyncio
import socket
from ipaddress import IPv4Address, IPv4Network

import pytest

from bgpcore import events as ev
from bgpcore.aspath import AsPath
from bgpcore.attributes import PathAttributes
from bgpcore.fsm import State
from bgpcore.settings import PeerSettings
from daemon.bgp.transport import BgpTransport

VGW, CGW = IPv4Address("127.0.0.2"), IPv4Address("127.0.0.3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def pair(port, cgw_asn_seen_by_vgw=65000):
    loop = asyncio.get_running_loop()
    seen = {"vgw": [], "cgw": []}
    vgw = BgpTransport(loop, PeerSettings(64512, cgw_asn_seen_by_vgw, VGW, CGW, connect_retry=1.0, idle_hold=0.5),
                     "vgw", lambda s, e: seen["vgw"].append(e), port=port)
    cgw = BgpTransport(loop, PeerSettings(65000, 64512, CGW, VGW, connect_retry=1.0, idle_hold=0.5),
                     "cgw", lambda s, e: seen["cgw"].append(e), port=port)
    return vgw, cgw, seen


def test_two_speakers_establish_and_exchange_routes_over_tcp():
    async def body():
        vgw, cgw, seen = pair(free_port())
        await vgw.listen()
        await cgw.listen()
        try:
            vgw.set_advertised({IPv4Network("10.0.0.0/16"): PathAttributes(med=100)})
            cgw.set_advertised({IPv4Network("172.16.0.0/16"): PathAttributes()})
            vgw.start()
            cgw.start()          # both connect: the collision is the core's to resolve
            await until(lambda: vgw.peer.state is State.ESTABLISHED and cgw.peer.state is State.ESTABLISHED)
            await until(lambda: IPv4Network("10.0.0.0/16") in cgw.peer.accepted
                        and IPv4Network("172.16.0.0/16") in vgw.peer.accepted)
            got = cgw.peer.accepted[IPv4Network("10.0.0.0/16")]
            assert got.as_path == AsPath.of(64512) and got.med == 100 and got.next_hop == VGW
            assert any(isinstance(e, ev.Established) for e in seen["vgw"])
            # a MED change reaches the peer as one UPDATE
            vgw.set_advertised({IPv4Network("10.0.0.0/16"): PathAttributes(med=200)})
            await until(lambda: cgw.peer.accepted[IPv4Network("10.0.0.0/16")].med == 200)
            vgw.stop()           # Cease reaches the other side, whose session goes down
            # Cease / Administrative Shutdown (6/2; a 6/7 may have come before, from the collision)
            await until(lambda: any(isinstance(e, ev.SessionDown) for e in seen["cgw"]))
            assert any(isinstance(e, ev.NotificationReceived) and (e.code, e.subcode) == (6, 2) for e in seen["cgw"])
            assert vgw.peer.state is State.IDLE
        finally:
            await vgw.close()
            await cgw.close()
    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_connection_from_another_address_is_refused_and_counted():
    async def body():
        port = free_port()
        vgw, _, _ = pair(port)
        await vgw.listen()
        try:
            reader, writer = await asyncio.open_connection(str(VGW), port, local_addr=("127.0.0.9", 0))
            assert await asyncio.wait_for(reader.read(), 5) == b""       # closed at once
            writer.close()
            await until(lambda: vgw.refused_connections == 1)
        finally:
            await vgw.close()
    asyncio.run(asyncio.wait_for(body(), 30))


def test_a_wrong_peer_as_is_refused_with_bad_peer_as():
    async def body():
        vgw, cgw, seen = pair(free_port(), cgw_asn_seen_by_vgw=65001)
        await vgw.listen()
        await cgw.listen()
        try:
            vgw.start()
            cgw.start()
            await until(lambda: any(isinstance(e, ev.NotificationReceived) and (e.code, e.subcode) == (2, 2)
                                    for e in seen["cgw"]))
            assert vgw.peer.state is not State.ESTABLISHED
        finally:
            await vgw.close()
            await cgw.close()
    asyncio.run(asyncio.wait_for(body(), 30))


def test_listening_on_an_address_not_on_the_host_is_reported_not_raised():
    async def body():
        loop = asyncio.get_running_loop()
        speaker = BgpTransport(loop, PeerSettings(64512, 65000, "192.0.2.77", "192.0.2.78"), "x",
                             lambda s, e: None, port=free_port())
        await speaker.listen()
        assert "not on this host" in speaker.listen_error
        await speaker.close()
    asyncio.run(asyncio.wait_for(body(), 10))
