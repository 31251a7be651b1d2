"""Endpoint replacement and maintenance (daemon/maintenance.py) on a stand-in
gateway: the real VPC route table, tunnels that go down when replaced and come
back when the test says so, short drain and return waits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from ipaddress import IPv4Network

import pytest

from daemon.commands import parse_time
from daemon.maintenance import Replacer, YamlMaintenance
from daemon.routing import MED_OTHER, MED_PRIMARY, ConnectionPlan, VpcRouteTable

A1, A2 = "198.51.100.1", "198.51.100.2"
VPC = IPv4Network("10.0.0.0/16")


@dataclass
class Conn:
    dynamic: bool


@dataclass
class FakeTunnel:
    conn: Conn
    up: bool = True


@dataclass
class FakeGateway:
    loop: asyncio.AbstractEventLoop
    dynamic: bool = True
    vpc_table: VpcRouteTable = field(default_factory=VpcRouteTable)
    tunnels: dict = field(default_factory=dict)
    stopping: bool = False
    events: list = field(default_factory=list)
    replacer: Replacer | None = None

    def __post_init__(self):
        self.vpc_table.configure((VPC,), [ConnectionPlan(name="c", tunnels=(A1, A2), dynamic=self.dynamic,
                                                         static_routes=(), customer_gateway_ip=None)])
        self.tunnels = {ip: FakeTunnel(Conn(self.dynamic)) for ip in (A1, A2)}
        self.update_routes()

    @property
    def primary(self):
        return self.vpc_table.primaries

    def update_routes(self):
        for ip, tunnel in self.tunnels.items():
            self.vpc_table.set_up(ip, tunnel.up)
        changes = self.vpc_table.decide()
        for tunnel, delta in changes.advertisements.items():
            if VPC in delta:
                self.events.append(("med", tunnel, delta[VPC].med))

    def apply(self, force=frozenset(), what=""):
        held = self.replacer.held
        for ip in force:
            self.tunnels[ip].up = False    # its IKE and ESP state gone
        self.events.append(("replaced", tuple(sorted(force)), tuple(sorted(held))))
        self.update_routes()


async def _until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_both_tunnels_one_at_a_time_the_med_raised_first():
    async def scenario():
        gw = FakeGateway(asyncio.get_running_loop())
        gw.replacer = Replacer(gw, drain_seconds=0.05, return_seconds=5)
        assert gw.primary["c"] == A1
        gw.events.clear()
        gw.replacer.replace("c", [A1, A2], modifying=True)
        assert gw.replacer.held == {A1, A2} and gw.replacer.busy("c")
        await _until(lambda: any(e[0] == "replaced" for e in gw.events))
        # the MEDs moved before tunnel 1 went, and tunnel 2 was held meanwhile
        assert gw.events[:3] == [("med", A1, MED_OTHER), ("med", A2, MED_PRIMARY), ("replaced", (A1,), (A2,))]
        await asyncio.sleep(0.2)
        assert len([e for e in gw.events if e[0] == "replaced"]) == 1   # tunnel 2 waits for tunnel 1
        gw.tunnels[A1].up = True                                          # the CGW initiated again
        await _until(lambda: not gw.replacer.busy("c"))
        assert gw.events[-1] == ("replaced", (A2,), ())
        assert gw.replacer.held == frozenset() and gw.replacer.tasks == {}
    asyncio.run(scenario())


def test_a_static_connection_is_replaced_without_waiting_and_cancel_stops_it():
    async def scenario():
        gw = FakeGateway(asyncio.get_running_loop(), dynamic=False)
        gw.replacer = Replacer(gw, drain_seconds=30, return_seconds=30)
        gw.replacer.replace("c", [A1, A2])
        await _until(lambda: any(e[0] == "replaced" for e in gw.events), timeout=1)  # no 30 s drain
        assert gw.primary["c"] == A2 and not gw.replacer.busy("c")               # not a Modify*
        gw.replacer.cancel("c")                                                  # e.g. DeleteVpnConnection
        await asyncio.sleep(0.05)
        assert gw.replacer.held == frozenset() and gw.replacer.tasks == {}
        assert [e for e in gw.events if e[0] == "replaced"] == [("replaced", (A1,), (A2,))]
    asyncio.run(scenario())


@dataclass
class YamlTunnel:
    outside_ip: str
    enable_tunnel_lifecycle_control: bool


@dataclass
class YamlConnection:
    name: str
    tunnels: list


class Recorder:
    def __init__(self):
        self.calls = []

    def replace(self, connection, ips, modifying=False):
        self.calls.append((connection, tuple(ips)))


def test_yaml_maintenance_waits_with_lifecycle_control_and_not_without():
    replacer = Recorder()
    maintenance = YamlMaintenance(replacer)
    connection = YamlConnection("vpn-lab", [YamlTunnel(A1, True), YamlTunnel(A2, False)])
    assert maintenance.schedule(connection, None, apply_after=1000.0, now=10.0) == [A2]
    assert replacer.calls == [("vpn-lab", (A2,))] and set(maintenance.pending) == {A1}
    assert maintenance.advance(999.0) == [] and maintenance.advance(1000.0) == [A1]
    assert replacer.calls[-1] == ("vpn-lab", (A1,)) and maintenance.applied == {A2: 10.0, A1: 1000.0}
    maintenance.schedule(connection, A1, apply_after=5000.0, now=2000.0)
    assert maintenance.apply("vpn-lab", A1, now=2001.0) == [A1] and not maintenance.pending
    maintenance.schedule(connection, A1, apply_after=5000.0, now=3000.0)
    maintenance.forget({A2})                                  # tunnel 1 left the config
    assert maintenance.advance(6000.0) == []


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1.5d", 129600)])
def test_apply_after_durations(text, seconds):
    assert parse_time(text, 1000.0) == 1000.0 + seconds


def test_apply_after_times_and_mistakes():
    assert parse_time("2026-12-08T10:00:00Z", 0) == parse_time("2026-12-08T10:00:00", 0) == 1796724000.0
    with pytest.raises(ValueError, match="duration"):
        parse_time("tomorrow", 0)
