"""Make-before-break in daemon/tunnel.py (RFC 7296 §2.8): how a CHILD SA rekey
reaches the data path. A fake loop records the data path, a recorded call_later
stands in for the asyncio timer (fired by hand: no sleeps), and a synthetic
monotonic clock orders the SAs.

- the new inbound SA is installed before anything is removed;
- outbound moves at once when vgw initiated the rekey (outbound_ready), and only
  when the old SA goes down when vgw answered it (the initiator cannot decrypt the
  new SA before our answer);
- an old SA that went down "rekeyed" keeps accepting inbound packets for a grace
  period (strongSwan's charon.delete_rekeyed_delay: 5 s); any other reason removes
  it at once;
- outbound always uses the newest SA left.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import daemon.tunnel as tunnel_module
from daemon.config import parse_config
from daemon.tunnel import Tunnel
from ikecore.constants import EncrId, IntegId
from ikecore.events import ChildSaDown, ChildSaUp

CONFIG = """
vpc: {cidrs: [10.0.0.0/16]}
connections:
  - name: vpn-lab
    customer_gateway: {ip: 198.51.100.10}
    static_routes_only: true          # IPsec alone makes the tunnel UP (no BGP)
    tunnels:
      - outside_ip: 198.51.100.1
        pre_shared_key: example_psk_tunnel1_abcdef
"""
TID = "198.51.100.1"
CGW = ("198.51.100.10", 4500)
STRONGSWAN_DELETE_REKEYED_DELAY = 5.0


class FakeLoop:
    """The DataPath calls Tunnel makes, as data path state."""

    def __init__(self):
        self.inbound: dict[int, object] = {}
        self.outbound = None            # the EspSa outbound traffic uses, or None
        self.outbound_remote = None
        self.calls: list[tuple] = []

    def install_inbound(self, tunnel_id, sa):
        assert tunnel_id == TID
        self.inbound[sa.spi] = sa
        self.calls.append(("install_inbound", sa.spi))

    def remove_inbound(self, spi):
        self.inbound.pop(spi, None)
        self.calls.append(("remove_inbound", spi))

    def set_outbound(self, tunnel_id, sa, local_ip, remote, udp_encap):
        assert tunnel_id == TID
        self.outbound, self.outbound_remote = sa, remote
        self.calls.append(("set_outbound", sa.spi))

    def clear_outbound(self, tunnel_id):
        self.outbound = None
        self.calls.append(("clear_outbound",))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def rig(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(tunnel_module, "time", SimpleNamespace(monotonic=clock, time=lambda: 1.7e9))
    conn = parse_config(CONFIG).connections[0]
    loop = FakeLoop()
    rt = Tunnel(conn, conn.tunnels[0], loop)
    rt.tun = SimpleNamespace(name="vgwc6336401", ifindex=7)   # open() not called: no TUN needed
    timers: list[tuple] = []
    rt.call_later = lambda delay, fn, *args: timers.append((delay, fn, args))
    return rt, loop, timers, clock


def child_up(n: int, replaces: int | None = None, outbound_ready: bool = True) -> ChildSaUp:
    """CHILD SA number n: inbound SPI 0x100+n, outbound SPI 0x200+n, its own keys."""
    return ChildSaUp(
        spi_in=0x100 + n, spi_out=0x200 + n, encr_id=EncrId.AES_GCM_16, encr_key_bits=128,
        integ_id=IntegId.NONE, encr_key_in=bytes([n]) * 20, integ_key_in=b"",
        encr_key_out=bytes([n + 100]) * 20, integ_key_out=b"", local_ts=(), remote_ts=(),
        local=(TID, 4500), remote=CGW, udp_encap=True, encryption="AES_GCM_16_128",
        integrity=None, dh_group=14, replay_window=1024, lifetime=3600.0,
        replaces=replaces, outbound_ready=outbound_ready)


def child_down(n: int, reason: str) -> ChildSaDown:
    return ChildSaDown(spi_in=0x100 + n, spi_out=0x200 + n, reason=reason)


def fire(timers):
    """Run the timers due, as the event loop would after their delay."""
    due, timers[:] = list(timers), []
    for _delay, fn, args in due:
        fn(*args)


def test_vgw_initiated_rekey_moves_outbound_at_once_and_keeps_old_inbound_for_the_grace(rig):
    rt, loop, timers, clock = rig
    assert rt.on_event(child_up(1)) is True          # the tunnel comes UP
    assert loop.outbound.spi == 0x201
    clock.now += 3000
    assert rt.on_event(child_up(2, replaces=0x101, outbound_ready=True)) is False
    # make before break: the new inbound SA is there, the old one too
    assert set(loop.inbound) == {0x101, 0x102}
    assert loop.outbound.spi == 0x202                # we initiated: the peer has the new SA
    assert loop.calls.index(("install_inbound", 0x102)) < loop.calls.index(("set_outbound", 0x202))

    assert rt.on_event(child_down(1, "rekeyed")) is False    # still UP throughout
    # packets the peer sent on the old SA may still be in flight: not removed yet
    assert set(loop.inbound) == {0x101, 0x102}
    assert ("remove_inbound", 0x101) not in loop.calls
    assert [(delay, args) for delay, _fn, args in timers] == [(STRONGSWAN_DELETE_REKEYED_DELAY, (0x101,))]
    assert loop.outbound.spi == 0x202
    fire(timers)                                     # the grace is over
    assert set(loop.inbound) == {0x102}
    assert loop.outbound.spi == 0x202 and rt.up


def test_vgw_answered_rekey_keeps_outbound_on_the_old_sa_until_it_goes(rig):
    rt, loop, timers, clock = rig
    rt.on_event(child_up(1))
    clock.now += 3000
    rt.on_event(child_up(2, replaces=0x101, outbound_ready=False))
    assert set(loop.inbound) == {0x101, 0x102}
    assert loop.outbound.spi == 0x201                # the initiator has not got our answer yet
    rt.on_event(child_down(1, "rekeyed"))            # the initiator deleted the old SA
    assert loop.outbound.spi == 0x202                # now the new one, the newest
    assert 0x101 in loop.inbound and len(timers) == 1
    fire(timers)
    assert set(loop.inbound) == {0x102}


@pytest.mark.parametrize("reason", ["deleted", "expired", "redundant"])
def test_an_sa_gone_for_another_reason_is_removed_at_once(rig, reason):
    rt, loop, timers, clock = rig
    rt.on_event(child_up(1))
    clock.now += 1
    rt.on_event(child_up(2))
    rt.on_event(child_down(1, reason))
    assert set(loop.inbound) == {0x102}
    assert timers == []
    assert loop.outbound.spi == 0x202


def test_outbound_uses_the_newest_sa_left(rig):
    """Installed 1, 3, 2 (by time); removing the newest sends on the next newest,
    whatever the SPIs or the order of the events."""
    rt, loop, timers, clock = rig
    rt.on_event(child_up(1))
    clock.now += 10
    rt.on_event(child_up(3, outbound_ready=False))
    clock.now += 10
    rt.on_event(child_up(2, outbound_ready=False))
    assert loop.outbound.spi == 0x201                # neither answer moved it
    rt.on_event(child_down(1, "rekeyed"))
    assert loop.outbound.spi == 0x202                # the newest, not the highest SPI
    rt.on_event(child_down(2, "deleted"))
    assert loop.outbound.spi == 0x203
    rt.on_event(child_down(3, "deleted"))
    assert loop.outbound is None and loop.calls[-1] == ("clear_outbound",)
    assert not rt.up
    fire(timers)                                     # the grace of SA 1 ends after all that
    assert loop.inbound == {}


def test_the_grace_timer_leaves_a_closed_tunnel_alone(rig):
    rt, loop, timers, clock = rig
    rt.on_event(child_up(1))
    clock.now += 1
    rt.on_event(child_up(2, replaces=0x101))
    rt.on_event(child_down(1, "rekeyed"))
    rt.tun = None                                    # the tunnel closed meanwhile
    fire(timers)
    assert ("remove_inbound", 0x101) not in loop.calls


def test_without_a_timer_the_old_inbound_goes_at_once(rig):
    """Before the Gateway sets call_later there is no grace to wait for."""
    rt, loop, timers, clock = rig
    rt.call_later = None
    rt.on_event(child_up(1))
    clock.now += 1
    rt.on_event(child_up(2, replaces=0x101))
    rt.on_event(child_down(1, "rekeyed"))
    assert set(loop.inbound) == {0x102}
