"""The BGP log in AWS's format (daemon/bgp/awslog.py, docs/aws.md §3.4)."""

import json
import logging
from ipaddress import IPv4Address, IPv4Network
from types import SimpleNamespace

import pytest

from daemon.bgp.awslog import (BGP_RECORD_KEYS, ROUTE_KEYS, BgpLog, format_bgp_record, make_bgp_record,
                               parse_bgp_record, resource_id, route_fields)


def cfg(enabled=True, fmt="json", path=None):
    options = SimpleNamespace(bgp_log_enabled=enabled, bgp_log_output_format=fmt, bgp_log_file=path)
    return SimpleNamespace(log_options=SimpleNamespace(cloudwatch_log_options=options))


def test_a_session_record_has_exactly_aws_keys_in_order():
    record = make_bgp_record(resource_id("vpn-0123456789abcdef0", "198.51.100.1"), "BGPStatus", "UP",
                             "AWS-side peer BGP session state has changed from OpenConfirm to Established"
                             " with neighbor 169.254.10.2", now=1765100000.25)
    assert tuple(record) == BGP_RECORD_KEYS
    assert record["resource_id"] == "vpn-0123456789abcdef0_198.51.100.1"
    assert record["event_timestamp"] == 1765100000250          # epoch milliseconds
    assert record["timestamp"] == "2025-12-07 09:33:20.250Z"
    assert record["message"] == {"details": record["message"]["details"]}


def test_a_route_record_carries_the_route_fields_in_order():
    fields = route_fields(IPv4Network("10.0.0.0/16"), (64512,), 100, IPv4Address("169.254.10.1"), originated=True)
    record = make_bgp_record("vpn-1_198.51.100.1", "RouteStatus", "ADVERTISED", "advertised", now=0, route=fields)
    assert tuple(record["message"]) == ROUTE_KEYS
    # the values of AWS's documented example
    assert record["message"]["asPath"] == "64512" and record["message"]["localPref"] == 100
    assert record["message"]["med"] == 100 and record["message"]["weight"] == 32768


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_records_round_trip_in_both_formats(fmt):
    fields = route_fields(IPv4Network("172.16.0.0/16"), (65000, 65000), None, IPv4Address("169.254.10.2"),
                          originated=False)
    for record in (make_bgp_record("r", "BGPStatus", "DOWN", 'said "bye" = Cease', now=5),
                   make_bgp_record("r", "RouteStatus", "UPDATED", "x", now=5, route=fields)):
        assert parse_bgp_record(format_bgp_record(record, fmt), fmt) == record


def test_status_values_are_aws_ones_only():
    with pytest.raises(ValueError):
        make_bgp_record("r", "BGPStatus", "ESTABLISHED", "x", now=0)
    with pytest.raises(ValueError):
        parse_bgp_record(json.dumps({"resource_id": "r"}), "json")


def test_the_log_writes_records_when_enabled_and_plain_lines_when_not(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vgw.bgp")
    path = tmp_path / "sub" / "bgp.log"
    bgp = BgpLog("vpn-lab 198.51.100.1", "vpn-1_198.51.100.1", clock=lambda: 7.0)
    record = bgp.session("Hold Timer Expired", established=False, tunnel_cfg=cfg(path=str(path)))
    assert record["status"] == "DOWN" and record["event_timestamp"] == 7000
    assert parse_bgp_record(path.read_text().strip(), "json") == record
    assert bgp.session("plain", established=True, tunnel_cfg=cfg(enabled=False)) is None
    assert caplog.messages[-1] == "[vpn-lab 198.51.100.1] plain"
    assert path.read_text().count("\n") == 1               # the disabled one went to the log only
