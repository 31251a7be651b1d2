"""The rig most DataPath tests use (tests/unit/dataplane/fakes.py has its parts)."""

import socket

import pytest

from dataplane.datapath import DataPath

from .fakes import FakeTun


@pytest.fixture
def rig():
    """DataPath under test on 127.0.0.1 (random port), a peer UDP socket, a fake TUN."""
    ike = []
    pl = DataPath(None, lambda d, l, r: ike.append((d, l, r)))
    ep = pl.add_outside_sockets("127.0.0.1", port=0, raw_esp=False)
    tun = FakeTun()
    pl.add_tunnel("t1", tun, local_ip="127.0.0.1")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    yield pl, ep, tun, peer, ike
    pl.close()
    tun.close()
    peer.close()
