"""The AWS tunnel activity log (daemon/awslog.py, aws-facts.md §3): record shape in
both formats, config keys, and no key material in any record of a whole tunnel
life driven in-process (two IKE cores back to back, tests/unit/ikecore/ikepair.py)."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest

from daemon.awslog import (
    PHASE_STATES, RECORD_KEYS, TunnelLog, format_record, make_record, parse_record, parse_text,
)
from daemon.config import ConfigError, parse_config
from ikecore.events import ChildSaUp, LogLine
from tests.unit.ikecore.ikepair import PSK, IkePair, policy_a, policy_b

BASE = """
vpc: {cidrs: [10.0.0.0/16]}
connections:
  - name: vpn-lab
    tunnels:
      - outside_ip: 198.51.100.1
        pre_shared_key: example_psk_tunnel1_abcdef
"""


def tunnel_cfg(options: str = ""):
    text = BASE + (f"        log_options: {options}\n" if options else "")
    return parse_config(text).connections[0].tunnels[0]


# --- config -----------------------------------------------------------------------------


def test_log_options_default_is_off_json_like_aws():
    opts = tunnel_cfg().log_options.cloudwatch_log_options
    assert (opts.log_enabled, opts.log_output_format, opts.log_file) == (False, "json", None)


def test_log_options_spelled_as_aws_in_snake_case():
    opts = tunnel_cfg("{cloudwatch_log_options: {log_enabled: true, log_output_format: text,"
                      " log_file: /var/log/vgw/t1.log}}").log_options.cloudwatch_log_options
    assert (opts.log_enabled, opts.log_output_format, opts.log_file) == (True, "text", "/var/log/vgw/t1.log")


@pytest.mark.parametrize("options, expected", [
    ("{cloudwatch_log_options: {log_output_format: Json}}", "did you mean json?"),
    ("{cloudwatch_log_options: {log_enabled: yes please}}", "must be true or false"),
    ("{cloudwatch_log_options: {log_group_arn: 'arn:aws:logs:x'}}", "vgw has no CloudWatch"),
    ("{cloudwatch_log_options: {bgp_log_group_arn: 'arn:aws:logs:x'}}", "bgp_log_file"),
    ("{cloudwatch_log_options: {bgp_log_output_format: xml}}", "json"),
    ("{cloudwatch_log_options: {bgp_log_file: bgp.log}}", "absolute path"),
    ("{cloudwatch_log_options: {log_file: relative.log}}", "absolute path"),
    ("{cloudwatch_logs_options: {}}", "did you mean cloudwatch_log_options?"),
])
def test_log_options_errors_say_what_to_change(options, expected):
    with pytest.raises(ConfigError) as err:
        tunnel_cfg(options)
    assert expected in str(err.value)
    assert "log_options" in str(err.value)


# --- record shape -------------------------------------------------------------------------


def test_record_has_exactly_the_documented_keys_in_order():
    record = make_record("AWS tunnel received DELETE for IKE_SA from CGW", now=1700000000.25,
                         dpd_enabled=True, nat_t_detected=False, phase1="established", phase2="down")
    assert tuple(record) == RECORD_KEYS
    assert record["event_timestamp"] == 1700000000
    assert record["timestamp"] == "2023-11-14 22:13:20.250Z"
    for fmt in ("json", "text"):
        assert parse_record(format_record(record, fmt), fmt) == record


def test_text_record_keeps_quotes_and_spaces_in_details():
    details = 'No Proposal Match Found. Notifying with "No proposal chosen"'
    record = make_record(details, now=0, dpd_enabled=False, nat_t_detected=True, phase1="negotiating",
                         phase2="down")
    line = format_record(record, "text")
    assert line.startswith("event_timestamp=0 timestamp=\"1970-01-01 00:00:00.000Z\" dpd_enabled=false")
    assert parse_text(line)["details"] == details


def test_unknown_core_state_is_never_reported_as_established():
    record = make_record("x", now=0, dpd_enabled=True, nat_t_detected=False, phase1="ESTABLISHED",
                         phase2="something-new")
    assert record["ike_phase1_state"] == "established"
    assert record["ike_phase2_state"] in PHASE_STATES and record["ike_phase2_state"] != "established"


def test_parse_record_rejects_extra_or_missing_keys():
    record = make_record("x", now=0, dpd_enabled=True, nat_t_detected=False, phase1="down", phase2="down")
    with pytest.raises(ValueError):
        parse_record(json.dumps(dict(record, tunnel_ip="198.51.100.1")), "json")
    with pytest.raises(ValueError):
        parse_record(json.dumps({k: v for k, v in record.items() if k != "details"}), "json")


def test_disabled_log_keeps_the_plain_line():
    stream, logger = _capture()
    out = TunnelLog("vpn-lab 198.51.100.1", logger).write("hello", "info", tunnel_cfg(), _FakeIke())
    assert out is None
    assert stream.getvalue() == "[vpn-lab 198.51.100.1] hello\n"


def test_unwritable_log_file_is_reported_once_and_stdout_keeps_going(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = tunnel_cfg("{cloudwatch_log_options: {log_enabled: true, log_file: %s}}" % (blocker / "x.log"))
    stream, logger = _capture()
    tl = TunnelLog("t", logger)
    with caplog.at_level(logging.ERROR, logger="vgw"):
        for _ in range(3):
            tl.write("line", "info", cfg, _FakeIke())
    assert len([r for r in caplog.records if "cannot write the tunnel log" in r.getMessage()]) == 1
    assert stream.getvalue().count("\n") == 3


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_file_gets_the_records_the_journal_gets_at_info(tmp_path, fmt):
    """At the default level (INFO) the core's debug lines reach neither the
    journal nor log_file; at DEBUG both."""
    log_file = tmp_path / "t1.log"
    cfg = tunnel_cfg("{cloudwatch_log_options: {log_enabled: true, log_output_format: %s, log_file: %s}}"
                     % (fmt, log_file))
    stream, logger = _capture(logging.INFO)
    tl = TunnelLog("t", logger)
    assert tl.write("a debug line", "debug", cfg, _FakeIke()) is None
    assert tl.write("an info line", "info", cfg, _FakeIke())["details"] == "an info line"
    tl.write("a warning line", "warning", cfg, _FakeIke())
    file_details = [parse_record(line, fmt)["details"] for line in log_file.read_text().splitlines()]
    journal_details = [parse_record(line.partition("] ")[2], fmt)["details"]
                       for line in stream.getvalue().splitlines()]
    assert file_details == journal_details == ["an info line", "a warning line"]
    assert tl.records == 2
    logger.setLevel(logging.DEBUG)
    tl.write("another debug line", "debug", cfg, _FakeIke())
    assert parse_record(log_file.read_text().splitlines()[-1], fmt)["details"] == "another debug line"
    assert stream.getvalue().count("\n") == 3


# --- a whole tunnel life, in-process ---------------------------------------------------------


class _FakeIke:
    current = None
    sas: dict = {}
    phase1_state = "down"
    phase2_state = "down"


def _capture(level: int = logging.DEBUG) -> tuple[io.StringIO, logging.Logger]:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.awslog.{id(stream)}")
    logger.propagate = False
    logger.setLevel(level)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return stream, logger


def _secrets_of(pair: IkePair, psk: bytes) -> set[bytes]:
    """Every key the two cores hold or handed out: PSK, IKE SA keys, ESP keys."""
    found = {psk}
    for side in (pair.a, pair.b):
        for ev in side.of(ChildSaUp):
            found |= {ev.encr_key_in, ev.encr_key_out, ev.integ_key_in, ev.integ_key_out}
        for sa in side.sas:
            for holder in (sa, sa.keys):
                for value in vars(holder).values() if holder is not None and hasattr(holder, "__dict__") else ():
                    if isinstance(value, bytes):
                        found.add(value)
            if sa.keys is not None and hasattr(sa.keys, "__dataclass_fields__"):
                for name in sa.keys.__dataclass_fields__:
                    value = getattr(sa.keys, name)
                    if isinstance(value, bytes):
                        found.add(value)
                    elif hasattr(value, "__dataclass_fields__"):
                        found |= {getattr(value, n) for n in value.__dataclass_fields__
                                  if isinstance(getattr(value, n), bytes)}
    # SPIs, nonces and short values are not secrets; keys are >= 16 bytes
    return {s for s in found if len(s) >= 16}


def _forms(secret: bytes) -> list[str]:
    text = [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode(),
            secret[:8].hex(), " ".join(f"{b:02x}" for b in secret[:8])]
    try:
        text.append(secret.decode("ascii"))
    except UnicodeDecodeError:
        pass
    return text


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_whole_tunnel_life_logs_records_and_no_key_material(tmp_path, fmt):
    log_file = tmp_path / "t1.log"
    cfg = tunnel_cfg("{cloudwatch_log_options: {log_enabled: true, log_output_format: %s, log_file: %s}}"
                     % (fmt, log_file))
    stream, logger = _capture()
    tl = TunnelLog("vpn-lab 198.51.100.10", logger)
    seen: dict[int, int] = {}
    pair = IkePair(policy_a(), policy_b())

    def feed() -> None:
        """vgw's side is B (the responder, AWS's default): log its new LogLines."""
        pair.b.drain()
        start = seen.get(0, 0)
        for ev in pair.b.events[start:]:
            if isinstance(ev, LogLine):
                tl.write(ev.text, ev.level, cfg, pair.b.tunnel)
        seen[0] = len(pair.b.events)

    # a customer gateway with the wrong PSK first
    bad = IkePair(policy_a(psk=b"wrong_psk_for_the_test"), policy_b())
    bad.handshake()
    for ev in bad.b.of(LogLine):
        tl.write(ev.text, ev.level, cfg, bad.b.tunnel)
    # then the tunnel's life: up, liveness, CHILD delete, IKE delete
    pair.handshake()
    feed()
    assert pair.b.child_ups, "the tunnel did not come up"
    pair.liveness(pair.a)
    pair.run()
    feed()
    pair.delete_child(pair.a, pair.a.child_ups[0].spi_in)
    pair.run()
    feed()
    pair.a.tunnel.delete(pair.now)
    pair.run()
    feed()

    stdout_lines = stream.getvalue().splitlines()
    file_lines = log_file.read_text().splitlines()
    assert len(file_lines) == len(stdout_lines) == tl.records >= 5
    records = []
    for line in stdout_lines:
        prefix, _, body = line.partition("] ")
        assert prefix == "[vpn-lab 198.51.100.10"
        records.append(parse_record(body, fmt))
    assert [parse_record(line, fmt) for line in file_lines] == records
    details = [r["details"] for r in records]
    assert any("pre-shared key mismatch" in d for d in details)
    assert "AWS tunnel received DELETE for IKE_SA from CGW" in details
    assert any(r["ike_phase1_state"] == "established" and r["ike_phase2_state"] == "established"
               for r in records)
    assert records[-1]["ike_phase1_state"] in ("down", "established")  # logged as the DELETE arrives

    secrets = _secrets_of(pair, PSK) | _secrets_of(bad, b"wrong_psk_for_the_test")
    assert len(secrets) >= 6
    everything = stream.getvalue() + log_file.read_text()
    for secret in secrets:
        for form in _forms(secret):
            assert form not in everything, f"key material ({len(secret)} bytes) in the tunnel log"
