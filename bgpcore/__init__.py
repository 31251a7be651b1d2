"""bgpcore: a sans-I/O BGP-4 speaker for vgw (one BgpPeer per tunnel).

No sockets, no clock reads, no threads, no asyncio: bytes and the time go in,
bytes, events and deadlines come out (docs/bgp.md). It imports nothing from
ikecore, dataplane or daemon.
"""
