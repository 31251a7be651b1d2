"""The AWS tunnel activity log (daemon/awslog.py, docs/aws.md §3): record shape in
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
from tests.unit.ikecore.ikepair import PSK, IkePair, settings_a, settings_b

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


IKE_KEYS = ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")
CHILD_KEYS = ("encr_i", "integ_i", "encr_r", "integ_r")


class KeyRing:
    """Every key of every IKE SA and CHILD SA of both cores, collected while
    the SAs live (harvest() after each step of the tunnel's life): an SA that
    is gone takes its keys with it, so collecting at the end finds only the
    survivors (issue 16: the search then missed SK_d, SK_a*, SK_e*, SK_p*)."""

    def __init__(self, psks: list[bytes]):
        self.ike: dict[tuple, dict[str, bytes]] = {}     # (life, side, SPIi, SPIr) -> name -> key
        self.child: dict[tuple, dict[str, bytes]] = {}   # (life, side, SPI in) -> name -> key
        self.psks = list(psks)

    def harvest(self, pair: IkePair, life: str) -> None:
        """`life` tells pairs apart: seeded alike, their SPIs repeat."""
        for side in (pair.a, pair.b):
            for sa in side.sas:
                if sa.keys is not None and sa.sk_d:
                    self.ike[(life, side.name, sa.spi_i, sa.spi_r)] = {
                        "sk_d": sa.sk_d, "sk_pi": sa.sk_pi, "sk_pr": sa.sk_pr,
                        "sk_ei": sa.keys.sk_ei, "sk_er": sa.keys.sk_er,
                        "sk_ai": sa.keys.sk_ai, "sk_ar": sa.keys.sk_ar}
                for child in sa.children.values():
                    if child.keys is not None:
                        self.child[(life, side.name, child.spi_in)] = {n: getattr(child.keys, n)
                                                                       for n in CHILD_KEYS}
            for ev in side.of(ChildSaUp):   # what the core handed to the data path
                self.child.setdefault((life, side.name, ev.spi_in), {}).update(
                    esp_in=ev.encr_key_in, esp_out=ev.encr_key_out,
                    esp_integ_in=ev.integ_key_in, esp_integ_out=ev.integ_key_out)

    def secrets(self) -> dict[bytes, str]:
        """key bytes -> what it is ("SK_d of ...")."""
        found = {psk: "a PSK" for psk in self.psks}
        for where, keys in (*self.ike.items(), *self.child.items()):
            for name, value in keys.items():
                if len(value) >= 16:   # SPIs, nonces and short values are not secrets
                    found.setdefault(value, f"{name} of {where[0]}, side {where[1]} {where[2:]!r}")
        return found


def leaks(text: str, secrets: dict[bytes, str]) -> list[str]:
    """What of `secrets` appears in `text`, in any form _forms() makes."""
    return [what for secret, what in secrets.items() if any(form in text for form in _forms(secret))]


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
    pair = IkePair(settings_a(), settings_b())

    def feed() -> None:
        """vgw's side is B (the responder, AWS's default): log its new LogLines."""
        pair.b.drain()
        start = seen.get(0, 0)
        for ev in pair.b.events[start:]:
            if isinstance(ev, LogLine):
                tl.write(ev.text, ev.level, cfg, pair.b.endpoint)
        seen[0] = len(pair.b.events)

    ring = KeyRing([PSK, b"wrong_psk_for_the_test"])
    # a customer gateway with the wrong PSK first: its IKE SA has keys from
    # IKE_SA_INIT on, until IKE_AUTH fails
    bad = IkePair(settings_a(psk=b"wrong_psk_for_the_test"), settings_b())
    bad.initiate()
    bad.roundtrip(bad.a)
    ring.harvest(bad, "wrong PSK")
    bad.run()
    for ev in bad.b.of(LogLine):
        tl.write(ev.text, ev.level, cfg, bad.b.endpoint)

    def step(action=None) -> None:
        if action is not None:
            action()
        pair.run()
        ring.harvest(pair, "tunnel")
        feed()
    # then the tunnel's life: up, liveness, CHILD rekeys by either side, an IKE
    # rekey, CHILD delete, IKE delete
    pair.initiate()
    step()
    assert pair.b.child_ups, "the tunnel did not come up"
    step(lambda: pair.liveness(pair.a))
    step(lambda: pair.b.endpoint.rekey("child", pair.now))
    step(lambda: pair.a.endpoint.rekey("child", pair.now))
    step(lambda: pair.b.endpoint.rekey("ike", pair.now))
    step(lambda: pair.a.endpoint.rekey("child", pair.now))   # under the new IKE SA
    step(lambda: pair.delete_child(pair.a, pair.a.child_ups[-1].spi_in))
    step(lambda: pair.a.endpoint.delete(pair.now))

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

    # every SA of the life was collected while it lived, with all its keys:
    # the wrong-PSK IKE SA on each side, then the tunnel's first IKE SA and its
    # rekeyed successor, ...
    assert len([where for where in ring.ike if where[0] == "wrong PSK"]) == 2
    for side in ("a", "b"):
        sas = [keys for (life, name, *_), keys in ring.ike.items() if life == "tunnel" and name == side]
        assert len(sas) == 2 and all(set(keys) == set(IKE_KEYS) for keys in sas)
        # ... and 4 CHILD SAs (the first, 3 rekeys), each with its ESP keys
        children = [keys for (life, name, _), keys in ring.child.items() if life == "tunnel" and name == side]
        assert len(children) == 4 and all(set(CHILD_KEYS) <= set(keys) for keys in children)
    secrets = ring.secrets()
    kinds = {what.split(" of ")[0] for what in secrets.values()}
    assert set(IKE_KEYS) <= kinds and set(CHILD_KEYS) <= kinds and "a PSK" in kinds
    # distinct keys (both sides hold the same): 2 PSKs, 7 per IKE SA (the
    # wrong-PSK one and the tunnel's two), 4 per CHILD SA
    assert len(secrets) == 2 + 3 * 7 + 4 * 4
    everything = stream.getvalue() + log_file.read_text()
    assert leaks(everything, secrets) == [], "key material in the tunnel log"


def test_the_key_search_finds_every_kind_of_key():
    """The search above can fail: each collected key, logged in any of the
    forms searched, is found."""
    ring = KeyRing([PSK])
    pair = IkePair(settings_a(), settings_b())
    pair.handshake()
    ring.harvest(pair, "tunnel")
    secrets = ring.secrets()
    for secret, what in secrets.items():
        for form in _forms(secret):
            assert leaks(f"AWS tunnel something {form} happened", secrets) == [what], (what, form)
