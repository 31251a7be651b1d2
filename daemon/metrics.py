"""AWS's tunnel metrics (docs/aws.md §5.1) and vgw's own, in Prometheus format.

CloudWatch publishes, in namespace AWS/VPN with dimensions VpnId and
TunnelIpAddress (the AWS outside IP):

* `TunnelState`: 1 UP, 0 DOWN for a static VPN (§5.1). Per tunnel here; the
  connection-level value AWS shows (between 0 and 1 when one tunnel is down) is
  the average over a connection's tunnels: `avg by (VpnId) (TunnelState)`.
* `TunnelDataIn`: bytes received from the customer gateway, counted after
  decryption; `TunnelDataOut`: bytes sent to it, counted before encryption. AWS
  reports per-period sums; Prometheus counters are totals (`TunnelDataIn_total`),
  so `increase(TunnelDataIn_total[5m])` is AWS's Sum over 5 minutes.

The metric and label names are AWS's own, so dashboards and alarms translate one
to one (VpnId carries the connection's name). vgw adds `vgw_*` metrics with the
same labels: packets, drops by reason, IKE SAs by state, rekeys, IKE SAs that
went down by reason (reason "dpd" is a DPD timeout) and which tunnel is the
primary (AWS's egress choice, which AWS says only metrics reveal, §7).

Nothing is updated on the packet path: a custom collector reads the gateway's
counters when Prometheus scrapes. The HTTP endpoint is an asyncio server on the
gateway's own event loop (off by default; `metrics: {listen: 127.0.0.1:9700}`),
so a scrape never reads state another thread is changing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily

__all__ = ["GatewayCollector", "MetricsServer", "make_registry"]

log = logging.getLogger("vgw.metrics")

LABELS = ["VpnId", "TunnelIpAddress"]
MAX_REQUEST_HEAD = 8192
# Scrapers are few (a Prometheus or two); more connections at once than this are
# closed unanswered, so that idle or slow clients cannot pile up sockets and
# buffers in the daemon that also moves the packets.
MAX_CLIENTS = 8
IO_TIMEOUT = 5.0   # seconds for the request head and for the answer to drain


class GatewayCollector:
    """A prometheus_client collector over a running Gateway (read at scrape time)."""

    def __init__(self, gateway):
        self.gateway = gateway

    def describe(self):
        return []  # the label values depend on the config; nothing to pre-declare

    def collect(self):
        gw = self.gateway
        state = GaugeMetricFamily("TunnelState", "AWS/VPN TunnelState: 1 the tunnel is UP (static: IPsec up;"
                                  " BGP: the session Established), 0 otherwise", labels=LABELS)
        data_in = CounterMetricFamily("TunnelDataIn", "AWS/VPN TunnelDataIn: bytes received from the customer"
                                      " gateway, counted after decryption", labels=LABELS, unit="")
        data_out = CounterMetricFamily("TunnelDataOut", "AWS/VPN TunnelDataOut: bytes sent to the customer"
                                       " gateway, counted before encryption", labels=LABELS, unit="")
        packets_in = CounterMetricFamily("vgw_tunnel_packets_in", "ESP packets decrypted and delivered",
                                         labels=LABELS)
        packets_out = CounterMetricFamily("vgw_tunnel_packets_out", "packets encrypted and sent", labels=LABELS)
        drops = CounterMetricFamily("vgw_tunnel_drops", "packets dropped, by reason", labels=LABELS + ["reason"])
        primary = GaugeMetricFamily("vgw_tunnel_primary", "1 if the tunnel carries the connection's egress"
                                    " (AWS's primary tunnel)", labels=LABELS)
        ike_sas = GaugeMetricFamily("vgw_ike_sas", "IKE SAs the tunnel holds, by state", labels=LABELS + ["state"])
        child_sas = GaugeMetricFamily("vgw_child_sas", "CHILD SAs installed in the data path", labels=LABELS)
        ike_up = CounterMetricFamily("vgw_ike_sa_established", "IKE SAs established (new and rekeyed)",
                                     labels=LABELS)
        ike_rekeys = CounterMetricFamily("vgw_ike_sa_rekeys", "IKE SA rekeys", labels=LABELS)
        child_rekeys = CounterMetricFamily("vgw_child_sa_rekeys", "CHILD SA rekeys", labels=LABELS)
        ike_down = CounterMetricFamily("vgw_ike_sa_down", "IKE SAs ended, by reason (dpd: DPD timeout)",
                                       labels=LABELS + ["reason"])
        dpd = CounterMetricFamily("vgw_dpd_timeouts", "DPD timeouts (peer silent for dpd_timeout_seconds),"
                                  " whatever dpd_timeout_action", labels=LABELS)
        primaries = set(gw.primary.values())
        for rt in list(gw.tunnels.values()):
            labels = [rt.conn.name, rt.id]
            stats = gw.datapath.stats(rt.id) if rt.tun is not None else {}
            state.add_metric(labels, 1 if rt.up else 0)
            data_in.add_metric(labels, stats.get("bytes_in", 0))
            data_out.add_metric(labels, stats.get("bytes_out", 0))
            packets_in.add_metric(labels, stats.get("packets_in", 0))
            packets_out.add_metric(labels, stats.get("packets_out", 0))
            for reason, count in (stats.get("drops") or {}).items():
                drops.add_metric(labels + [reason], count)
            primary.add_metric(labels, 1 if rt.id in primaries else 0)
            by_state = Counter(getattr(sa.state, "value", str(sa.state)).lower() for sa in rt.ike_endpoint.sas.values())
            for sa_state, count in sorted(by_state.items()):
                ike_sas.add_metric(labels + [sa_state], count)
            child_sas.add_metric(labels, len(rt.children))
            h = rt.history
            ike_up.add_metric(labels, h.ike_sa_up)
            ike_rekeys.add_metric(labels, h.ike_rekeys)
            child_rekeys.add_metric(labels, h.child_rekeys)
            for reason, count in sorted(h.ike_sa_down.items()):
                ike_down.add_metric(labels + [reason], count)
            dpd.add_metric(labels, h.dpd_timeouts)
        yield from (state, data_in, data_out, packets_in, packets_out, drops, primary, ike_sas, child_sas,
                    ike_up, ike_rekeys, child_rekeys, ike_down, dpd)
        yield from self._bgp(gw)
        unrouted = CounterMetricFamily("vgw_ike_dropped_no_tunnel", "IKE datagrams for an address with no tunnel")
        unrouted.add_metric([], gw.dropped_no_tunnel)
        yield unrouted
        global_drops = CounterMetricFamily("vgw_global_drops", "packets dropped that no tunnel could be charged"
                                           " with, by reason", labels=["reason"])
        for reason, count in (gw.datapath.global_stats().get("drops") or {}).items():
            global_drops.add_metric([reason], count)
        yield global_drops


    @staticmethod
    def _bgp(gw):
        """The BGP sessions of dynamic connections (docs/bgp.md)."""
        session = GaugeMetricFamily("vgw_bgp_session_established", "1 when the tunnel's BGP session is"
                                    " Established", labels=LABELS)
        state = GaugeMetricFamily("vgw_bgp_session_state", "the session's RFC 4271 state (1 for the current one)",
                                  labels=LABELS + ["state"])
        accepted = GaugeMetricFamily("vgw_bgp_prefixes_accepted", "prefixes from the customer gateway in the VPC"
                                     " route table's paths (VgwTelemetry AcceptedRouteCount)", labels=LABELS)
        received = GaugeMetricFamily("vgw_bgp_prefixes_received", "prefixes the customer gateway announced,"
                                     " denied ones included (the limit counts these)", labels=LABELS)
        advertised = GaugeMetricFamily("vgw_bgp_prefixes_advertised", "prefixes vgw announces to the customer"
                                       " gateway", labels=LABELS)
        notifications = CounterMetricFamily("vgw_bgp_notifications", "NOTIFICATIONs, by direction and error"
                                            " code (RFC 4271 §4.5)", labels=LABELS + ["direction", "code"])
        established = CounterMetricFamily("vgw_bgp_sessions_established", "times the session reached"
                                          " Established", labels=LABELS)
        for tunnel_id, s in list(gw.bgp.sessions.items()):
            labels = [s.tunnel.conn.name, tunnel_id]
            status = gw.bgp.status(tunnel_id) or {}
            prefixes = status.get("prefixes", {})
            session.add_metric(labels, 1 if status.get("state") == "Established" else 0)
            state.add_metric(labels + [status.get("state", "Idle")], 1)
            accepted.add_metric(labels, prefixes.get("accepted", 0))
            received.add_metric(labels, prefixes.get("received", 0))
            advertised.add_metric(labels, prefixes.get("advertised", 0))
            for direction, counts in (("sent", s.transport.peer.counters.notifications_sent),
                                      ("received", s.transport.peer.counters.notifications_received)):
                for code, count in sorted(counts.items()):
                    notifications.add_metric(labels + [direction, str(code)], count)
            established.add_metric(labels, s.transport.peer.counters.sessions_established)
        yield from (session, state, accepted, received, advertised, notifications, established)


def make_registry(gateway) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway))
    return registry


class MetricsServer:
    """`GET /metrics` on the gateway's event loop; anything else is 404."""

    def __init__(self, gateway):
        self.registry = make_registry(gateway)
        self.listen: str | None = None
        self._server: asyncio.base_events.Server | None = None
        self.clients = 0
        self.refused = 0

    async def apply(self, metrics_config) -> None:
        """Start, move or stop the endpoint to match the config (start and reload).
        A listen address that cannot be bound is logged; the gateway keeps running."""
        wanted = metrics_config.listen if metrics_config is not None else None
        if wanted == self.listen and (self._server is not None or wanted is None):
            return
        await self.close()
        if metrics_config is None:
            return
        try:
            self._server = await asyncio.start_server(self._serve, metrics_config.host, metrics_config.port)
        except OSError as exc:
            log.error("cannot serve metrics on %s: %s; fix metrics.listen (reload to retry)",
                      metrics_config.listen, exc.strerror or exc)
            return
        self.listen = wanted
        log.info("metrics at http://%s/metrics", wanted)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.clients >= MAX_CLIENTS:
            self.refused += 1
            writer.transport.abort()
            return
        self.clients += 1
        try:
            await self._answer(reader, writer)
        finally:
            self.clients -= 1

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=IO_TIMEOUT)
            method, path, *_ = head[:MAX_REQUEST_HEAD].decode("latin-1").split(" ", 2) + ["", ""]
            path = path.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET /metrics\n"
            elif path in ("/metrics", "/"):
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"vgw serves /metrics\n"
            writer.write((f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                          "Connection: close\r\n\r\n").encode() + (b"" if method == "HEAD" else body))
            await asyncio.wait_for(writer.drain(), timeout=IO_TIMEOUT)
            writer.close()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, OSError):
            writer.transport.abort()   # a silent or slow client: nothing kept for it
        except Exception:  # a scrape must never hurt the gateway
            log.exception("metrics request failed")
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.listen = None
