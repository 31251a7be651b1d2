"""Rate-limited logging (daemon/ratelimit.py): noise from unauthenticated peers
must not flood stdout or the journal; real events are never suppressed."""

from __future__ import annotations

import logging

from daemon.config import parse_config
from daemon.ratelimit import OVERFLOW, LimitedLog, LogLimiter, template
from daemon.tunnel import Tunnel
from ikecore.events import IkeSaDown, LogLine

CONFIG = """
vpc: {cidrs: [10.0.0.0/16]}
connections:
  - name: vpn-lab
    tunnels:
      - outside_ip: 198.51.100.1
        pre_shared_key: example_psk_tunnel1_abcdef
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_template_hides_what_varies_between_lines_of_one_kind():
    a = template("AWS tunnel is sending response (id=0) for IKE_SA_INIT to cgw: 203.0.113.7")
    b = template("AWS tunnel is sending response (id=12) for IKE_SA_INIT to cgw: 198.51.100.10")
    assert a == b == "AWS tunnel is sending response (id=#) for IKE_SA_INIT to cgw: #"
    assert template("SPI in 5d3f0a1b out c0ffee12, 10.0.0.0/16") == "SPI in # out #, #"
    assert template("No Proposal Match Found by AWS") == "No Proposal Match Found by AWS"


def test_at_most_n_lines_per_window_then_one_summary():
    clock = Clock()
    lim = LogLimiter(lines=3, interval=10.0, clock=clock)
    results = [lim.admit("k") for _ in range(10)]
    assert [r[0] for r in results] == [True] * 3 + [False] * 7
    assert all(r[1] == 0 for r in results)
    assert lim.next_expiry() == 1010.0
    clock.now += 10.0
    write, suppressed, key = lim.admit("k")     # the next window: the summary is due first
    assert (write, suppressed, key) == (True, 7, "k")
    assert lim.suppressed_total == 7


def test_kinds_are_limited_separately():
    lim = LogLimiter(lines=2, interval=10.0, clock=Clock())
    assert [lim.admit("a")[0] for _ in range(3)] == [True, True, False]
    assert [lim.admit("b")[0] for _ in range(2)] == [True, True]


def test_a_timer_gets_the_summary_of_a_burst_that_stopped():
    clock = Clock()
    lim = LogLimiter(lines=1, interval=5.0, clock=clock)
    for _ in range(4):
        lim.admit("a")
    lim.admit("quiet")
    assert lim.expired() == []                   # not over yet
    clock.now += 5.0
    assert lim.expired() == [("a", 3)]           # reported once, and windows forgotten
    assert lim.expired() == [] and lim.next_expiry() is None
    assert lim.admit("a") == (True, 0, "a")


def test_memory_stays_bounded_with_ever_new_kinds():
    clock = Clock()
    lim = LogLimiter(lines=2, interval=10.0, max_keys=8, clock=clock)
    written = sum(lim.admit(f"kind {i}")[0] for i in range(1000))
    assert len(lim._windows) <= 8
    assert written == 7 + 2                      # 7 kinds, then the overflow kind's 2 lines
    assert lim.admit("kind 5000")[2] == OVERFLOW
    clock.now += 10.0
    assert lim.admit("kind 6000") == (True, 0, "kind 6000")   # ended windows make room


def _gateway_style_log(clock) -> tuple[LimitedLog, list]:
    """A LimitedLog writing to a logger, as daemon/gateway.py uses it, with a
    recorded timer instead of the event loop's call_later."""
    logger = logging.getLogger("vgw.test")
    timers: list = []
    lim = LogLimiter(lines=2, interval=60.0, clock=clock)
    return LimitedLog(lambda level, text, **kw: logger.log(level, text, **kw),
                      lambda: lambda delay, fn: timers.append((delay, fn)), lim), timers


def test_limited_log_writes_a_summary_with_the_template_before_the_next_line(caplog):
    clock = Clock()
    limited, _ = _gateway_style_log(clock)
    with caplog.at_level(logging.WARNING, logger="vgw.test"):
        for i in range(50):
            limited.log(logging.WARNING, f"[t1] cannot send IKE to {(f'203.0.113.{i}', 500)}: "
                                         "Network is unreachable")
        clock.now += 60.0
        limited.log(logging.WARNING, "[t1] cannot send IKE to ('203.0.113.99', 500): Network is unreachable")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 + 1 + 1
    assert lines[2] == "... 48 similar lines suppressed in 60 s: [t#] cannot send IKE to ('#', #): " \
                       "Network is unreachable"


def test_limited_log_reports_a_burst_that_stopped_by_its_timer(caplog):
    """No line of the kind follows the burst: the timer writes its summary once
    the window is over, and arms no further timer when nothing is pending."""
    clock = Clock()
    limited, timers = _gateway_style_log(clock)
    with caplog.at_level(logging.WARNING, logger="vgw.test"):
        for i in range(30):
            limited.log(logging.ERROR, f"[t{i}] internal error on an IKE message (dropped)", exc_info=False)
        assert len(timers) == 1
        delay, flush = timers[0]
        assert 60.0 <= delay <= 61.0
        clock.now += 30.0
        flush()                                   # early: nothing due yet, re-armed
        assert len(caplog.records) == 2 and len(timers) == 2
        clock.now += timers[1][0]
        timers[1][1]()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[2] == (logging.ERROR, "... 28 similar lines suppressed in 60 s: "
                                       "[t#] internal error on an IKE message (dropped)")
    assert len(lines) == 3 and len(timers) == 2


def tunnel_under_test() -> tuple[Tunnel, list, list]:
    conn = parse_config(CONFIG).connections[0]
    rt = Tunnel(conn, conn.tunnels[0], None)
    written, timers = [], []
    rt.tunnel_log.write = lambda text, level, cfg, ike: written.append((level, text))
    rt.call_later = lambda delay, fn: timers.append((delay, fn))
    rt.limited_log.limiter.clock = clock = Clock()
    rt._clock = clock
    return rt, written, timers


def test_a_tunnel_logs_noise_rate_limited_and_reports_it():
    """10,000 peers without a proposal in common: 20 lines and one summary, not 30,000."""
    rt, written, timers = tunnel_under_test()
    for i in range(10_000):
        ip = f"203.0.{i // 250}.{i % 250 + 1}"
        rt.on_event(LogLine("No Proposal Match Found by AWS", "error"))
        rt.on_event(LogLine(f"cgw: {ip} offered phase 1: 12:128/2:2/3:12/4:1", "debug"))
        rt.on_event(LogLine('No Proposal Match Found. Notifying with "No proposal chosen"', "error"))
    assert len(written) == 3 * 20
    assert len(timers) == 1                              # one timer for the summaries
    delay, flush = timers[0]
    assert 60.0 <= delay <= 61.0
    rt._clock.now += delay
    flush()
    summaries = written[60:]
    assert ("error", "... 9980 similar lines suppressed in 60 s: No Proposal Match Found by AWS") in summaries
    assert ("debug", "... 9980 similar lines suppressed in 60 s: cgw: # offered phase #: #") in summaries
    assert len(summaries) == 3


def test_real_events_are_not_suppressed():
    """A day of rekeys: a few lines per rekey, never near the limit."""
    rt, written, _ = tunnel_under_test()
    for n in range(24):
        rt._clock.now += 3600.0
        rt.on_event(LogLine(f"AWS tunnel is sending request (id={n}) for CREATE_CHILD_SA"))
        rt.on_event(LogLine(f"AWS tunnel phase 2 is established with cgw: 198.51.100.10: SPI in {n:08x}"))
    assert len(written) == 48


def test_a_stray_half_open_sa_is_not_the_tunnel_error_while_it_is_up():
    rt, _, _ = tunnel_under_test()
    rt.children[1] = object()            # a CHILD SA up...
    rt.tun = object()                    # ...on its TUN: the tunnel is UP
    rt.on_event(IkeSaDown(b"\x01" * 8, b"\x02" * 8, "half-open", "IKE_AUTH did not arrive in time"))
    assert rt.last_error == ""
    rt.children.clear()
    rt.on_event(IkeSaDown(b"\x03" * 8, b"\x04" * 8, "no-proposal", "no phase 1 proposal in common"))
    assert rt.last_error == "no-proposal: no phase 1 proposal in common"
