"""daemon/metrics.py: AWS's metric names and labels, vgw's own, read at scrape time,
and the asyncio HTTP endpoint (on 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from daemon.config import parse_config
from daemon.history import TunnelHistory
from daemon import metrics
from daemon.metrics import MetricsServer, make_registry
from ikecore.events import ChildSaUp, DpdTimeout, IkeSaDown, IkeSaUp


def fake_gateway():
    def tunnel(name, ip, up, sas):
        history = TunnelHistory()
        return SimpleNamespace(conn=SimpleNamespace(name=name), id=ip, up=up, tun=object(), children={1: 0} if up else {},
                               ike_endpoint=SimpleNamespace(sas={i: SimpleNamespace(state=SimpleNamespace(value=s))
                                                        for i, s in enumerate(sas)}),
                               history=history)
    t1 = tunnel("vpn-lab", "198.51.100.1", True, ["ESTABLISHED"])
    t2 = tunnel("vpn-lab", "198.51.100.2", False, [])
    stats = {
        "198.51.100.1": {"bytes_in": 1000, "bytes_out": 2000, "packets_in": 10, "packets_out": 20,
                         "drops": {"replay": 3, "bad_icv": 0}},
        "198.51.100.2": {"bytes_in": 0, "bytes_out": 0, "packets_in": 0, "packets_out": 0, "drops": {}},
    }
    packets = SimpleNamespace(stats=lambda ip: stats[ip], global_stats=lambda: {"drops": {"unknown_spi": 4}})
    gw = SimpleNamespace(tunnels={"198.51.100.1": t1, "198.51.100.2": t2}, primary={"vpn-lab": "198.51.100.1"},
                         datapath=packets, dropped_no_tunnel=2, bgp=SimpleNamespace(sessions={}, status=lambda ip: None))
    return gw, stats


def samples(registry) -> dict:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def L(ip, **extra):
    return tuple(sorted({"VpnId": "vpn-lab", "TunnelIpAddress": ip, **extra}.items()))


def test_aws_metrics_with_aws_names_and_dimensions():
    gw, stats = fake_gateway()
    s = samples(make_registry(gw))
    assert s[("TunnelState", L("198.51.100.1"))] == 1
    assert s[("TunnelState", L("198.51.100.2"))] == 0
    assert s[("TunnelDataIn_total", L("198.51.100.1"))] == 1000
    assert s[("TunnelDataOut_total", L("198.51.100.1"))] == 2000
    assert s[("vgw_tunnel_packets_in_total", L("198.51.100.1"))] == 10
    assert s[("vgw_tunnel_drops_total", L("198.51.100.1", reason="replay"))] == 3
    assert s[("vgw_tunnel_primary", L("198.51.100.1"))] == 1
    assert s[("vgw_ike_sas", L("198.51.100.1", state="established"))] == 1
    assert s[("vgw_global_drops_total", (("reason", "unknown_spi"),))] == 4
    assert s[("vgw_ike_dropped_no_tunnel_total", ())] == 2
    # read at scrape time: a later change shows in the next scrape
    stats["198.51.100.1"]["bytes_in"] = 5000
    assert samples(make_registry(gw))[("TunnelDataIn_total", L("198.51.100.1"))] == 5000


def test_bgp_sessions_are_exported_per_tunnel():
    from collections import Counter
    gw, _ = fake_gateway()
    counters = SimpleNamespace(notifications_sent=Counter({6: 2}), notifications_received=Counter({2: 1}),
                               sessions_established=3)
    session = SimpleNamespace(tunnel=gw.tunnels["198.51.100.1"], transport=SimpleNamespace(peer=SimpleNamespace(
        counters=counters)))
    status = {"state": "Established", "prefixes": {"accepted": 7, "received": 9, "advertised": 2}}
    gw.bgp = SimpleNamespace(sessions={"198.51.100.1": session}, status=lambda ip: status)
    s = samples(make_registry(gw))
    assert s[("vgw_bgp_session_established", L("198.51.100.1"))] == 1
    assert s[("vgw_bgp_session_state", L("198.51.100.1", state="Established"))] == 1
    assert s[("vgw_bgp_prefixes_accepted", L("198.51.100.1"))] == 7
    assert s[("vgw_bgp_prefixes_received", L("198.51.100.1"))] == 9
    assert s[("vgw_bgp_prefixes_advertised", L("198.51.100.1"))] == 2
    assert s[("vgw_bgp_notifications_total", L("198.51.100.1", direction="sent", code="6"))] == 2
    assert s[("vgw_bgp_notifications_total", L("198.51.100.1", direction="received", code="2"))] == 1
    assert s[("vgw_bgp_sessions_established_total", L("198.51.100.1"))] == 3
    assert not [k for k in s if k[0].startswith("vgw_bgp") and dict(k[1])["TunnelIpAddress"] == "198.51.100.2"]


def test_rekeys_and_dpd_events_are_counted_from_the_core_events():
    gw, _ = fake_gateway()
    h = gw.tunnels["198.51.100.1"].history
    child = dict(spi_out=2, encr_id=20, encr_key_bits=128, integ_id=0, encr_key_in=b"", integ_key_in=b"",
                 encr_key_out=b"", integ_key_out=b"", local_ts=(), remote_ts=(), local=("a", 1), remote=("b", 1),
                 udp_encap=False, encryption="AES128-GCM-16", integrity=None, dh_group=0, replay_window=1024,
                 lifetime=3600)
    ike = dict(spi_i=b"1" * 8, spi_r=b"2" * 8, initiator=False, local=("a", 500), remote=("b", 500),
               encryption="AES128", integrity="SHA2-256", prf="SHA2-256", dh_group=14, peer_behind_nat=False,
               local_behind_nat=False, remote_id="b")
    for ev in (IkeSaUp(**ike), ChildSaUp(spi_in=1, **child), ChildSaUp(spi_in=3, replaces=1, **child),
               IkeSaUp(**dict(ike, rekeyed=True)), IkeSaDown(b"1" * 8, b"2" * 8, "rekeyed"),
               DpdTimeout("none"), DpdTimeout("clear"), IkeSaDown(b"1" * 8, b"2" * 8, "dpd")):
        h.record(ev)
    s = samples(make_registry(gw))
    assert s[("vgw_child_sa_rekeys_total", L("198.51.100.1"))] == 1
    assert s[("vgw_ike_sa_rekeys_total", L("198.51.100.1"))] == 1
    assert s[("vgw_ike_sa_established_total", L("198.51.100.1"))] == 2
    # an outage under dpd_timeout_action none counts too, though no SA went down
    assert s[("vgw_dpd_timeouts_total", L("198.51.100.1"))] == 2
    assert s[("vgw_ike_sa_down_total", L("198.51.100.1", reason="dpd"))] == 1
    assert s[("vgw_ike_sa_down_total", L("198.51.100.1", reason="rekeyed"))] == 1


def test_metrics_config_is_off_by_default_and_validated():
    base = ("vpc: {cidrs: [10.0.0.0/16]}\nconnections: [{name: c, tunnels: [{outside_ip: 198.51.100.1,"
            " pre_shared_key: example_psk_abcdef}]}]\n")
    assert parse_config(base).metrics is None
    m = parse_config("metrics: {listen: '[::1]:9700'}\n" + base).metrics
    assert (m.host, m.port) == ("::1", 9700)


def test_http_endpoint_serves_metrics_and_nothing_else():
    gw, _ = fake_gateway()

    async def get(port, request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data

    async def main():
        server = MetricsServer(gw)
        config = SimpleNamespace(listen="127.0.0.1:0", host="127.0.0.1", port=0)
        await server.apply(config)
        port = server._server.sockets[0].getsockname()[1]
        ok = await get(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        missing = await get(port, b"GET /secret HTTP/1.1\r\n\r\n")
        post = await get(port, b"POST /metrics HTTP/1.1\r\n\r\n")
        await server.apply(None)  # metrics removed from the config on reload: the port closes
        assert server._server is None
        return ok, missing, post

    ok, missing, post = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.1 200 OK") and b'TunnelState{TunnelIpAddress="198.51.100.1"' in ok
    assert missing.startswith(b"HTTP/1.1 404")
    assert post.startswith(b"HTTP/1.1 405")


def test_http_endpoint_caps_idle_clients_and_drops_them(monkeypatch):
    """Idle connections cannot pile up: past MAX_CLIENTS a connection is closed
    unanswered, and an idle one is dropped after IO_TIMEOUT; scrapes work again."""
    gw, _ = fake_gateway()
    monkeypatch.setattr(metrics, "IO_TIMEOUT", 0.5)

    async def main():
        server = MetricsServer(gw)
        await server.apply(SimpleNamespace(listen="127.0.0.1:0", host="127.0.0.1", port=0))
        port = server._server.sockets[0].getsockname()[1]
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(metrics.MAX_CLIENTS)]
        for _ in range(50):                      # let the server accept them all
            if server.clients == metrics.MAX_CLIENTS:
                break
            await asyncio.sleep(0.01)
        assert server.clients == metrics.MAX_CLIENTS
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
        try:
            over = await asyncio.wait_for(reader.read(), 2)
        except ConnectionError:
            over = b""
        writer.close()
        # the idle ones are dropped by the server (EOF or reset), not by us
        ends = [await asyncio.wait_for(r.read(), 3) for r, _ in idle]
        for _, w in idle:
            w.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
        again = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        refused, clients = server.refused, server.clients
        await server.apply(None)
        return over, ends, again, refused, clients

    over, ends, again, refused, clients = asyncio.run(main())
    assert over == b"" and refused == 1
    assert ends == [b""] * metrics.MAX_CLIENTS
    assert again.startswith(b"HTTP/1.1 200 OK")


def test_history_knows_since_when_the_current_sas_are_up():
    h = TunnelHistory()
    child = dict(spi_out=2, encr_id=20, encr_key_bits=128, integ_id=0, encr_key_in=b"", integ_key_in=b"",
                 encr_key_out=b"", integ_key_out=b"", local_ts=(), remote_ts=(), local=("a", 1), remote=("b", 1),
                 udp_encap=False, encryption="AES128-GCM-16", integrity=None, dh_group=0, replay_window=1024,
                 lifetime=3600)
    h.record(IkeSaUp(b"\x01" * 8, b"\x02" * 8, False, ("a", 500), ("b", 500), "AES128", "SHA1", "SHA1", 2,
                     False, False, "b"), now=100.0)
    h.record(ChildSaUp(spi_in=0xC1, **child), now=101.0)
    h.record(ChildSaUp(spi_in=0xC3, replaces=0xC1, **child), now=500.0)
    core = {"ike": {"spi_i": "01" * 8, "spi_r": "02" * 8},
            "children": [{"spi_in": "000000c1"}, {"spi_in": "000000c3"}]}
    s = h.status(core)
    assert (s["ike_sa_up_since"], s["child_sa_up_since"]) == (100.0, 500.0)
    assert (s["child_rekeys"], s["last_child_rekey"]) == (1, 500.0)
    h.record(IkeSaDown(b"\x01" * 8, b"\x02" * 8, "deleted-by-peer"))
    assert h.status(core)["ike_sa_up_since"] is None
