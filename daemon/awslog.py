"""The tunnel activity log in AWS's format (docs/aws.md §3).

AWS Site-to-Site VPN writes one record per tunnel event to CloudWatch Logs when
the tunnel's `LogOptions.CloudwatchLogOptions.LogEnabled` is true, as JSON or
text (`LogOutputFormat`, §3.1). vgw does the same per tunnel, to its own log
(stdout, hence the journal under systemd) and, if `log_file` is set (vgw only),
appended to that file, one record per line.

A record has exactly the documented keys (§3.2), nothing else:

    event_timestamp   epoch seconds (the newer doc says epoch; the constructed
                      example in §3.2 uses seconds)
    timestamp         human readable, UTC: "2023-11-14 22:13:20.000Z"
    dpd_enabled       true/false
    nat_t_detected    true/false: NAT-T detected on the customer gateway
    ike_phase1_state  established | rekeying | negotiating | down
    ike_phase2_state  the same four values
    details           the message, in AWS's wording where AWS has one (§3.3;
                      the IKE core's LogLine text)

The casing of the phase states is not documented; a FortiGate workshop tells
users to look for ike_phase1_state = "established" (§3.2), so they are lower
case. AWS publishes no sample of the *text* format either; vgw's text record is
the same keys in the same order as `key=value`, each value a JSON literal (so a
details string with quotes or spaces stays one value): `parse_text` reads it.

The file gets exactly the records vgw's log gets: a record below vgw's log level
(VGW_LOG_LEVEL, INFO by default; the IKE core's debug lines) is made for neither.

No key material can reach a record: `details` is only ever a LogLine's text,
which the core builds from addresses, SPIs and algorithm names. The file is
opened per record (records are rare: a few per tunnel event), so logrotate can
move it at any time without a reload.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime, timezone

__all__ = ["RECORD_KEYS", "PHASE_STATES", "LogFile", "TunnelLog", "make_record", "format_record",
           "parse_text", "parse_record", "readable_timestamp"]

RECORD_KEYS = ("event_timestamp", "timestamp", "dpd_enabled", "nat_t_detected",
               "ike_phase1_state", "ike_phase2_state", "details")
PHASE_STATES = ("established", "rekeying", "negotiating", "down")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}

log = logging.getLogger("vgw.tunnel")


def _state(value: str | None) -> str:
    """One of AWS's four phase states, lower case; anything else the core says is
    mapped to the nearest (an unknown state is not "established")."""
    text = (value or "down").lower()
    return text if text in PHASE_STATES else "negotiating"


def readable_timestamp(now: float) -> str:
    """AWS's human-readable `timestamp`: UTC, milliseconds, "2023-11-14 22:13:20.000Z"."""
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_record(details: str, *, now: float, dpd_enabled: bool, nat_t_detected: bool,
                phase1: str | None, phase2: str | None) -> dict:
    """One AWS tunnel log record (docs/aws.md §3.2), keys in the documented order."""
    return {
        "event_timestamp": int(now),
        "timestamp": readable_timestamp(now),
        "dpd_enabled": bool(dpd_enabled),
        "nat_t_detected": bool(nat_t_detected),
        "ike_phase1_state": _state(phase1),
        "ike_phase2_state": _state(phase2),
        "details": details,
    }


def format_record(record: dict, output_format: str) -> str:
    """`json` (LogOutputFormat json) or `text` (key=value, values as JSON literals)."""
    if output_format == "json":
        return json.dumps(record, ensure_ascii=False)
    return " ".join(f"{key}={json.dumps(record[key], ensure_ascii=False)}" for key in RECORD_KEYS)


_TEXT_KEY = re.compile(r"\s*([a-z0-9_]+)=")


def parse_text(line: str) -> dict:
    """Read a text record back (ValueError if it is not one)."""
    decoder = json.JSONDecoder()
    out: dict = {}
    pos = 0
    while pos < len(line.rstrip()):
        match = _TEXT_KEY.match(line, pos)
        if not match:
            raise ValueError(f"not a key=value pair at column {pos}: {line[pos:pos + 30]!r}")
        value, pos = decoder.raw_decode(line, match.end())
        if match.group(1) in out:
            raise ValueError(f"{match.group(1)} appears twice")
        out[match.group(1)] = value
    return out


def parse_record(line: str, output_format: str) -> dict:
    """Parse one record and check it has exactly the documented keys and values."""
    record = json.loads(line) if output_format == "json" else parse_text(line)
    if not isinstance(record, dict) or tuple(record) != RECORD_KEYS:
        raise ValueError(f"keys {list(record)} are not AWS's {list(RECORD_KEYS)}")
    for key in ("ike_phase1_state", "ike_phase2_state"):
        if record[key] not in PHASE_STATES:
            raise ValueError(f"{key} {record[key]!r} is not one of {PHASE_STATES}")
    for key in ("dpd_enabled", "nat_t_detected"):
        if not isinstance(record[key], bool):
            raise ValueError(f"{key} {record[key]!r} is not true/false")
    if not isinstance(record["event_timestamp"], int) or not isinstance(record["details"], str):
        raise ValueError("event_timestamp must be a number and details a string")
    return record


def dpd_enabled(tunnel_cfg) -> bool:
    """TunnelDPDEnabled (§3.2). AWS always runs DPD on its side (§6.2: "IPsec Dead
    Peer Detection (DPD) will be enabled on the AWS Endpoint"); with
    dpd_timeout_action none nothing happens on a timeout, which vgw reports as
    not enabled (inference: AWS does not document this value)."""
    return tunnel_cfg.dpd_timeout_action != "none"


def nat_t_detected(ike) -> bool:
    """TunnelCGWNATTDetectionStatus: the customer gateway is behind a NAT, as the
    current IKE SA (or, while negotiating, any of the tunnel's SAs) detected it."""
    if ike.current is not None:
        return bool(ike.current.peer_behind_nat)
    return any(getattr(sa, "peer_behind_nat", False) for sa in ike.sas.values())


class TunnelLog:
    """The log of one tunnel: every LogLine of its IKE core becomes one record.

    With logging disabled (AWS's default) the line goes to vgw's log as plain
    text, prefixed with the tunnel's name, as before. Options are read from the
    tunnel's config at each record, so a reload that only changes log_options
    takes effect without touching the tunnel.
    """

    def __init__(self, name: str, logger: logging.Logger = log,
                 clock=time.time):
        self.name = name
        self.logger = logger
        self.clock = clock
        self.records = 0
        self.file = LogFile(name, "tunnel log", "log_file")

    def write(self, text: str, level: str, tunnel_cfg, ike) -> dict | None:
        """Log one LogLine of this tunnel; returns the record, or None when logging is
        disabled or the line is below the logger's level (then log_file does not get
        it either: file and journal hold the same records)."""
        lvl = _LEVELS.get(level, logging.INFO)
        if not self.logger.isEnabledFor(lvl):
            return None
        options = tunnel_cfg.log_options.cloudwatch_log_options
        if not options.log_enabled:
            self.logger.log(lvl, "[%s] %s", self.name, text)
            return None
        record = make_record(text, now=self.clock(), dpd_enabled=dpd_enabled(tunnel_cfg),
                             nat_t_detected=nat_t_detected(ike), phase1=ike.phase1_state,
                             phase2=ike.phase2_state)
        line = format_record(record, options.log_output_format)
        self.records += 1
        self.logger.log(lvl, "[%s] %s", self.name, line)
        if options.log_file:
            self.file.append(options.log_file, line)
        return record


class LogFile:
    """Appends records to a file named in the config, one per line. Opened per
    record (records are rare), so logrotate can move it at any time without a
    reload; a failure is logged once per distinct problem, not per record."""

    def __init__(self, name: str, what: str, key: str):
        self.name = name
        self.what = what
        self.key = key
        self._error: str | None = None

    def append(self, path: str, line: str) -> None:
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            message = f"cannot write the {self.what} to {path}: {exc.strerror or exc}"
            if message != self._error:
                self._error = message
                logging.getLogger("vgw").error("[%s] %s; check %s and its directory's permissions",
                                               self.name, message, self.key)
            return
        self._error = None
