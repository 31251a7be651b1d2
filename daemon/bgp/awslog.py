"""The BGP log in AWS's format (docs/aws.md §3.4).

Since November 2025 AWS Site-to-Site VPN can write BGP records per tunnel when
`LogOptions.CloudwatchLogOptions.BgpLogEnabled` is true, as json or text
(`BgpLogOutputFormat`). vgw does the same per tunnel, under
`log_options.cloudwatch_log_options.bgp_log_enabled` / `bgp_log_output_format`,
to its own log and, if `bgp_log_file` is set (vgw only), to that file.

A record has the documented keys, in this order:

    resource_id      the connection's id and the tunnel's outside IP: vpn-..._198.51.100.1
    event_timestamp  epoch milliseconds
    timestamp        human readable, UTC ("2026-12-07 10:00:00.000Z")
    type             BGPStatus (session events) | RouteStatus (one prefix)
    status           UP | DOWN for BGPStatus (is the session Established after
                     the event); ADVERTISED | UPDATED | WITHDRAWN for RouteStatus
    message          an object: `details`, and for RouteStatus `prefix`,
                     `asPath`, `localPref`, `med`, `nextHopIp`, `weight`

AWS's documented example of a RouteStatus record carries asPath "64512",
localPref 100, med 100 and weight 32768 (Cisco's weight of a route the router
originates): vgw writes ADVERTISED for each prefix its session announces, with
those values, and UPDATED / WITHDRAWN for each prefix the customer gateway's
announcements add, change or take away (an inference: AWS documents the three
values, not which direction each is used for). `details` carries AWS's wording
where AWS quotes it (state changes, "Hold Timer Expired", "remote AS is {asn},
expected {asn}", OPEN with "version 4, AS ..., holdtime ..., router-id ...",
End-of-RIB, "DENIED due to: ..."); vgw words the rest in the same style.
"""

from __future__ import annotations

import json
import logging
import time
from ipaddress import IPv4Address, IPv4Network

from ..awslog import LogFile, parse_text, readable_timestamp

__all__ = ["BGP_RECORD_KEYS", "ROUTE_KEYS", "BgpLog", "make_bgp_record", "format_bgp_record",
           "parse_bgp_record", "resource_id"]

BGP_RECORD_KEYS = ("resource_id", "event_timestamp", "timestamp", "type", "status", "message")
ROUTE_KEYS = ("details", "prefix", "asPath", "localPref", "med", "nextHopIp", "weight")
STATUS_VALUES = {"BGPStatus": ("UP", "DOWN"), "RouteStatus": ("ADVERTISED", "UPDATED", "WITHDRAWN")}

# The values of AWS's documented RouteStatus example (docs/aws.md §3.4)
LOCAL_PREF = 100
WEIGHT_ORIGINATED = 32768
WEIGHT_LEARNED = 0

log = logging.getLogger("vgw.bgp")


def resource_id(connection_id: str, outside_ip: str) -> str:
    """AWS's resource_id: the connection's id and the tunnel's outside IP."""
    return f"{connection_id}_{outside_ip}"


def make_bgp_record(resource: str, kind: str, status: str, details: str, *, now: float,
                    route: dict | None = None) -> dict:
    """One record (docs/aws.md §3.4); `route` holds the RouteStatus fields."""
    if status not in STATUS_VALUES[kind]:
        raise ValueError(f"status {status!r} is not one of {STATUS_VALUES[kind]} for {kind}")
    message: dict = {"details": details}
    if kind == "RouteStatus":
        message.update({key: (route or {}).get(key) for key in ROUTE_KEYS[1:]})
    return {"resource_id": resource, "event_timestamp": int(now * 1000), "timestamp": readable_timestamp(now),
            "type": kind, "status": status, "message": message}


def format_bgp_record(record: dict, output_format: str) -> str:
    """`json`, or `text`: the keys in order as key=value, each value a JSON literal."""
    if output_format == "json":
        return json.dumps(record, ensure_ascii=False)
    return " ".join(f"{key}={json.dumps(record[key], ensure_ascii=False)}" for key in BGP_RECORD_KEYS)


def parse_bgp_record(line: str, output_format: str) -> dict:
    """Parse one record and check its keys and values (tests and tools)."""
    record = json.loads(line) if output_format == "json" else parse_text(line)
    if not isinstance(record, dict) or tuple(record) != BGP_RECORD_KEYS:
        raise ValueError(f"keys {list(record)} are not AWS's {list(BGP_RECORD_KEYS)}")
    if record["type"] not in STATUS_VALUES or record["status"] not in STATUS_VALUES[record["type"]]:
        raise ValueError(f"type/status {record['type']}/{record['status']} is not AWS's")
    message = record["message"]
    if not isinstance(message, dict) or not isinstance(message.get("details"), str):
        raise ValueError("message must be an object with details")
    if record["type"] == "RouteStatus" and tuple(message) != ROUTE_KEYS:
        raise ValueError(f"RouteStatus message keys {list(message)} are not {list(ROUTE_KEYS)}")
    if not isinstance(record["event_timestamp"], int):
        raise ValueError("event_timestamp must be a number")
    return record


def route_fields(prefix: IPv4Network, as_path: tuple[int, ...], med: int | None,
                 next_hop: IPv4Address | None, originated: bool) -> dict:
    """The RouteStatus message fields of one prefix."""
    return {"prefix": str(prefix), "asPath": " ".join(map(str, as_path)), "localPref": LOCAL_PREF,
            "med": med, "nextHopIp": str(next_hop) if next_hop else None,
            "weight": WEIGHT_ORIGINATED if originated else WEIGHT_LEARNED}


class BgpLog:
    """One tunnel's BGP log. Options are read from the tunnel's config at each
    record, so a reload that changes only log_options needs no new session.
    With bgp_log_enabled false (AWS's default) the details go to vgw's log as
    plain lines, prefixed with the tunnel's name."""

    def __init__(self, name: str, resource: str, logger: logging.Logger = log, clock=time.time):
        self.name = name
        self.resource = resource
        self.logger = logger
        self.clock = clock
        self.records = 0
        self.file = LogFile(name, "BGP log", "bgp_log_file")

    def session(self, details: str, established: bool, tunnel_cfg, level: int = logging.INFO) -> dict | None:
        return self._write("BGPStatus", "UP" if established else "DOWN", details, tunnel_cfg, level)

    def route(self, status: str, details: str, fields: dict, tunnel_cfg,
              level: int = logging.INFO) -> dict | None:
        return self._write("RouteStatus", status, details, tunnel_cfg, level, fields)

    def _write(self, kind: str, status: str, details: str, tunnel_cfg, level: int,
               route: dict | None = None) -> dict | None:
        if not self.logger.isEnabledFor(level):
            return None
        options = tunnel_cfg.log_options.cloudwatch_log_options
        if not options.bgp_log_enabled:
            self.logger.log(level, "[%s] %s", self.name, details)
            return None
        record = make_bgp_record(self.resource, kind, status, details, now=self.clock(), route=route)
        line = format_bgp_record(record, options.bgp_log_output_format)
        self.records += 1
        self.logger.log(level, "[%s] %s", self.name, line)
        if options.bgp_log_file:
            self.file.append(options.bgp_log_file, line)
        return record
