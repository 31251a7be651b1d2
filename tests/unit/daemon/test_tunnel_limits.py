"""AWS's per-tunnel limits as an option: `tunnel_bandwidth` (AWS's TunnelBandwidth,
docs/aws.md §1.9) and vgw's `emulate_limits` in the config, the figures the daemon
hands the data path (§4.1), the test-only override, and where the drops show
(status text, metrics)."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pytest

from daemon import commands
from daemon.config import ConfigError, parse_config
from daemon.gateway import Gateway
from daemon.history import TunnelHistory
from daemon.metrics import make_registry
from daemon.statusfmt import render
from daemon.tunnel import TEST_LIMITS_ENV, Tunnel, limits_from_env, tunnel_limits
from dataplane.accounting import DataPathDropReason
from dataplane.datapath import DataPath
from dataplane.limits import DEFAULT_BURST, TunnelLimits

from .test_metrics import L, samples
from .test_statusfmt import NOW, tunnel as status_tunnel


def config(connection_keys: str = "", top_level: str = "", second_keys: str = "", tunnel_keys: str = ""):
    return parse_config(f"""
{top_level}
vpc: {{cidrs: [10.0.0.0/16]}}
connections:
  - name: one
    customer_gateway: {{ip: 198.51.100.10}}
{connection_keys}
    tunnels:
      - outside_ip: 198.51.100.1
        pre_shared_key: example_psk_tunnel1_abcdef
{tunnel_keys}
  - name: two
    customer_gateway: {{ip: 198.51.100.20}}
{second_keys}
    tunnels:
      - outside_ip: 198.51.100.2
        pre_shared_key: example_psk_tunnel2_abcdef
""")


def problems(**keys) -> str:
    with pytest.raises(ConfigError) as exc:
        config(**keys)
    return str(exc.value)


# --- the config -----------------------------------------------------------------


def test_defaults_standard_tunnels_without_limits():
    c = config()
    assert [x.tunnel_bandwidth for x in c.connections] == ["standard", "standard"]
    assert c.emulate_limits is False
    assert [c.limits_emulated(x) for x in c.connections] == [False, False]


def test_emulate_limits_per_connection_and_from_the_top_level():
    c = config(connection_keys="    emulate_limits: true")
    assert [c.limits_emulated(x) for x in c.connections] == [True, False]
    c = config(top_level="emulate_limits: true", second_keys="    emulate_limits: false")
    assert [c.limits_emulated(x) for x in c.connections] == [True, False]   # a connection's own wins


def test_large_is_refused_as_transit_gateway_only():
    text = problems(connection_keys="    tunnel_bandwidth: large")
    assert "connections[0].tunnel_bandwidth" in text
    assert "transit gateway or Cloud WAN" in text and "use standard" in text


@pytest.mark.parametrize("value, says", [("Standard", "did you mean standard?"), ("5", "allowed: standard")])
def test_other_bandwidths_name_the_allowed_one(value, says):
    assert says in problems(connection_keys=f"    tunnel_bandwidth: {value}")


def test_tunnel_bandwidth_under_a_tunnel_says_it_is_a_connection_option():
    text = problems(tunnel_keys="        tunnel_bandwidth: standard")
    assert "connections[0].tunnels[0].tunnel_bandwidth" in text and "move it up to the connection" in text


@pytest.mark.parametrize("where", ["connection_keys", "top_level"])
def test_emulate_limits_must_be_true_or_false(where):
    keys = {where: ("    " if where == "connection_keys" else "") + "emulate_limits: often"}
    assert "emulate_limits: must be true or false" in problems(**keys)


# --- what the daemon hands the data path ------------------------------------------


def test_standard_tunnel_limits_are_aws_figures():
    # docs/aws.md §4.1: up to 1.25 Gbps and 140,000 packets per second per tunnel
    assert tunnel_limits("standard") == TunnelLimits(1_250_000_000, 140_000, DEFAULT_BURST)
    override = TunnelLimits(8_000_000, 5000)
    assert tunnel_limits("standard", override) is override


def test_the_gateway_gives_limits_only_to_connections_that_emulate_them():
    loop = asyncio.new_event_loop()
    try:
        c = config(connection_keys="    emulate_limits: true")
        gw = Gateway(c, loop)
        assert gw.tunnel_limits(c.connections[0]) == tunnel_limits("standard")
        assert gw.tunnel_limits(c.connections[1]) is None
        gw = Gateway(c, loop, limits_override=TunnelLimits(8_000_000, 5000))
        assert gw.tunnel_limits(c.connections[0]) == TunnelLimits(8_000_000, 5000)
        assert gw.tunnel_limits(c.connections[1]) is None
    finally:
        loop.close()


@pytest.mark.parametrize("text, expected", [
    ("", None), ("5000,20000000", TunnelLimits(20_000_000, 5000)), (" 7,8 ", TunnelLimits(8, 7))])
def test_limits_from_env(text, expected):
    assert limits_from_env({TEST_LIMITS_ENV: text}) == expected
    assert limits_from_env({}) is None


@pytest.mark.parametrize("text", ["5000", "5000,0", "a,b", "1,2,3", "-1,5"])
def test_a_bad_override_says_what_to_write(text):
    with pytest.raises(ValueError, match="PACKETS_PER_SECOND,BITS_PER_SECOND"):
        limits_from_env({TEST_LIMITS_ENV: text})


def test_vgw_run_refuses_a_bad_override_with_exit_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "vgw.yaml"
    path.write_text("vpc: {cidrs: [10.0.0.0/16]}\nconnections:\n  - name: c\n    tunnels:\n"
                    "      - outside_ip: 198.51.100.1\n        pre_shared_key: example_psk_tunnel1_abcdef\n")
    monkeypatch.setenv(TEST_LIMITS_ENV, "fast")
    assert commands.run(SimpleNamespace(config=str(path))) == commands.EXIT_CONFIG
    assert TEST_LIMITS_ENV in capsys.readouterr().err


class FakeDataPath:
    def __init__(self):
        self.calls = []

    def set_limits(self, tunnel_id, limits):
        self.calls.append((tunnel_id, limits))


def test_a_running_tunnel_takes_new_limits_without_anything_else():
    c = config()
    dp = FakeDataPath()
    t = Tunnel(c.connections[0], c.connections[0].tunnels[0], dp)
    t.tun = SimpleNamespace(name="vgwc6336401")     # open() not called: no TUN needed
    endpoint = t.ike_endpoint
    t.apply_limits(tunnel_limits("standard"))
    t.apply_limits(tunnel_limits("standard"))       # the same again: nothing to do
    t.apply_limits(None)
    assert dp.calls == [("198.51.100.1", tunnel_limits("standard")), ("198.51.100.1", None)]
    assert t.ike_endpoint is endpoint


# --- where the drops show ----------------------------------------------------------


def test_status_text_shows_the_limits_and_what_they_dropped():
    limits = {**tunnel_limits("standard").as_dict(), "dropped_in": 12, "dropped_out": 3}
    text = render({"tunnels": [status_tunnel("198.51.100.1", limits=limits,
                                             drops={"rate_limit": 15})]}, now=NOW)
    assert "drops rate_limit 15" in text
    assert "limits emulated: 1.25 Gbit/s and 140000 packets/s each way; rate_limit dropped in 12, out 3" in text
    assert "limits emulated" not in render({"tunnels": [status_tunnel("198.51.100.1", limits=None)]}, now=NOW)


def test_rate_limit_drops_are_a_metric_reason():
    class Tun:
        fd = os.open("/dev/null", os.O_RDONLY)
    dp = DataPath(None, lambda *a: None)
    try:
        dp.add_tunnel("198.51.100.1", Tun())
        dp.binding("198.51.100.1").drops[DataPathDropReason.RATE_LIMIT] += 7
        tunnel = SimpleNamespace(conn=SimpleNamespace(name="vpn-lab"), id="198.51.100.1", up=True, tun=object(),
                                 children={}, ike_endpoint=SimpleNamespace(sas={}),
                                 history=TunnelHistory())
        gw = SimpleNamespace(tunnels={"198.51.100.1": tunnel}, primary={}, datapath=dp, dropped_no_tunnel=0,
                             bgp=SimpleNamespace(sessions={}, status=lambda ip: None))
        s = samples(make_registry(gw))
        assert s[("vgw_tunnel_drops_total", L("198.51.100.1", reason="rate_limit"))] == 7
    finally:
        dp.close()
        os.close(Tun.fd)


def test_validate_says_which_connections_emulate_the_limits():
    from daemon.cli import summarize
    lines = summarize(config(connection_keys="    emulate_limits: true"))
    one, two = (line for line in lines if line.startswith("connection "))
    assert one.endswith("; standard tunnels' limits emulated (1.25 Gbit/s and 140,000 packets/s each way)")
    assert "limits" not in two
