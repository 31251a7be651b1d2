"""DPD and re-initiation as AWS does them (docs/aws.md §1.5, §1.7, §6.4).

- "If AWS receives no traffic from a VPN peer for 10 seconds, AWS sends a DPD
  R-U-THERE message" (§6.4): in IKEv2 an empty INFORMATIONAL request (RFC 7296
  §1.4); inbound ESP counts as traffic; the peer is dead dpd_timeout seconds
  after the last traffic (§1.5: "40 seconds ... dead 30 seconds after the first
  failed keep-alive", 10 s idle + 30 s), after "three successive DPDs" (§6.4)
  and AWS logs "DPD timed out after 3 retransmits" (§3.3): the probe at 10 s and
  3 resends evenly spread up to the timeout (30 s: at 15, 20, 25; 40 s: every
  7.5 s), and the line counts the resends really sent. Dead is dead whatever
  vgw has outstanding: a rekey unanswered in the probe's place does not defer it.
- dpd_timeout_action none: the SA stays, probing goes on every 10 s, and the
  timeout is logged once per outage.
- "periodic DPDs for peers using NAT": probes every 10 s whatever the traffic.
- dpd_timeout_action clear / none / restart (§1.5); restart needs the CGW IP.
- startup_action start: vgw initiates, and again after the tunnel went down,
  with the back-off of ikecore.endpoint (RESTART_BASE doubling up to RESTART_MAX,
  vgw's figures: AWS publishes none); hold() stops it, release() starts again;
  startup_action add never initiates (§1.7).
"""

import pytest

from ikecore.events import DpdTimeout
from ikecore.settings import RetransmitSettings
from ikecore.endpoint import RESTART_BASE, RESTART_MAX
from .ikepair import Holder, Nat, is_request
from .lifecycle import children, live_child_ups, make_pair, opened

IDLE = 10.0        # AWS: R-U-THERE after 10 s without traffic
INTERVAL = 10.0    # the kept probe of action none, and NAT's periodic probes
RETRANSMITS = 3    # AWS: "three successive DPDs", "DPD timed out after 3 retransmits"


def resend_gap(dpd_timeout: float) -> float:
    """The probe's resends, evenly spread from the probe to the timeout."""
    return (dpd_timeout - IDLE) / (RETRANSMITS + 1)


def probe_times(pair, side, since=0):
    """(time, bytes) of each empty INFORMATIONAL request `side` sent, from the
    record of sends that step() keeps."""
    return [(t, d.data) for t, who, d in pair.sends[since:] if who == side.name
            and d.data[18] == 37 and not d.data[19] & 0x20 and opened(pair, d).payloads == []]


SAME_INSTANT_LIMIT = 50   # timer firings at one instant before a test calls it a loop


def step(pair, until, deliver=True, tick=None, on_tick=None):
    """Advance deadline by deadline (and every `tick` seconds) up to `until`,
    recording what each side sends and when; deliver it or lose it. A timer
    re-armed at the instant it fired, forever, fails the test (no hang)."""
    if not hasattr(pair, "sends"):
        pair.sends = []
    _flush(pair, pair.now, deliver)
    last, same = None, 0
    while True:
        times = [t for t in (pair.next_deadline(),) if t is not None and t <= until]
        if tick is not None:
            nxt_tick = (int(pair.now / tick) + 1) * tick
            if nxt_tick <= until:
                times.append(nxt_tick)
        if not times:
            break
        t = min(times)
        same = same + 1 if t == last else 0
        last = t
        assert same < SAME_INSTANT_LIMIT, f"a timer fires again and again at t={t!r}"
        pair.advance(t)
        if on_tick is not None:
            on_tick(t)
        _flush(pair, t, deliver)
    pair.now = max(pair.now, until)


def _flush(pair, t, deliver):
    for _ in range(20):
        moved = 0
        for side in (pair.a, pair.b):
            out = pair.outgoing(side)
            pair.sends.extend((t, side.name, d) for d in out)
            if deliver:
                moved += sum(pair.deliver(pair.other(side), d) for d in out)
        if not moved:
            break


# --- the probe ------------------------------------------------------------------------------


def test_probe_after_10s_without_inbound_traffic():
    pair = make_pair()
    step(pair, 9.99)
    assert probe_times(pair, pair.a) == []
    step(pair, 35.0)
    # both sides were idle: each probes at 10 s; answered, the next after 10 s more
    assert [t for t, _ in probe_times(pair, pair.a)] == [10.0, 20.0, 30.0]
    for side in (pair.a, pair.b):
        assert side.sa.pending is None and side.downs == []


def test_inbound_esp_postpones_the_probe():
    pair = make_pair()
    pair.a.endpoint.note_inbound(7.0)        # the data path saw ESP from the peer at 7 s
    pair.a.endpoint.note_inbound(3.0)        # an older report changes nothing
    step(pair, 16.99, deliver=False)
    assert probe_times(pair, pair.a) == []
    step(pair, 17.0, deliver=False)
    assert [t for t, _ in probe_times(pair, pair.a)] == [17.0]


# AWS: "A DPD timeout of 40 seconds means that the VPN endpoint will consider the
# peer dead 30 seconds after the first failed keep-alive": dead at the last
# traffic (t=0, the handshake) + dpd_timeout; the probe at t=10 and 3 resends.
@pytest.mark.parametrize("dpd_timeout", [30, 40, 75])
def test_dpd_schedule_and_timeout(dpd_timeout):
    pair = make_pair(a=dict(dpd_timeout=dpd_timeout), b=dict(dpd_timeout=dpd_timeout))
    [ca] = pair.a.child_ups
    first = IDLE
    dead = 0.0 + dpd_timeout
    step(pair, dead - 0.01, deliver=False)
    probes = probe_times(pair, pair.a)
    gap = resend_gap(dpd_timeout)
    assert [t for t, _ in probes] == pytest.approx([first + gap * k for k in range(RETRANSMITS + 1)])
    assert len({data for _, data in probes}) == 1      # the same request, retransmitted
    assert pair.a.downs == []
    step(pair, dead, deliver=False)
    [down] = pair.a.downs
    assert down.reason == "dpd"
    # the count in AWS's line is the number of resends that really left
    assert dpd_timeouts(pair.a) == [f"AWS tunnel DPD timed out after {len(probes) - 1} retransmits"]
    assert len(probes) - 1 == RETRANSMITS
    assert [(d.spi_in, d.reason) for d in pair.a.child_downs] == [(ca.spi_in, "dpd")]


def test_a_late_probe_gets_fewer_resends_at_least_a_second_apart():
    """A probe started close to the timeout (its window was busy) still gets a
    second to be answered, and its line counts what was sent."""
    from ikecore.timers import liveness_delays
    assert liveness_delays(10.0, 30.0) == [5.0] * 4
    assert liveness_delays(27.5, 30.0) == [1.25, 1.25]
    assert liveness_delays(29.6, 30.0) == [1.0]
    assert liveness_delays(31.0, 30.0) == [1.0]


# --- actions -------------------------------------------------------------------------------


def test_dpd_clear_ends_the_tunnel_and_does_not_initiate():
    pair = make_pair()                       # startup_action add, dpd_timeout_action clear
    step(pair, 40.0, deliver=False)
    assert [d.reason for d in pair.a.downs] == ["dpd"]
    assert len(pair.a.child_downs) == 1
    mark = len(pair.sends)
    step(pair, 1000.0, deliver=False)
    assert [x for x in pair.sends[mark:] if x[1] == "a"] == []
    assert pair.a.endpoint.next_deadline() is None
    assert pair.a.endpoint.status(pair.now)["phase1_state"] == "down"


def dpd_timeouts(side):
    return [line for line in side.logs if line.startswith("AWS tunnel DPD timed out")]


def test_dpd_none_keeps_the_sa_and_goes_on_probing():
    """none: the SA stays and the probe goes on every 10 s, the same message ID
    (RFC 7296 §2.1: the peer's window still fits when it answers again); the
    timeout is logged once per outage, not once per cycle."""
    pair = make_pair(a=dict(dpd_action="none"), b=dict(dpd_action="none"))
    [ca] = pair.a.child_ups
    step(pair, 30.0, deliver=False)
    assert dpd_timeouts(pair.a) == ["AWS tunnel DPD timed out after 3 retransmits"]
    assert pair.a.downs == [] and pair.a.child_downs == []
    assert pair.a.sa.established and children(pair.a) == {ca.spi_in: ca.spi_out}
    step(pair, 200.0, deliver=False)
    probes = probe_times(pair, pair.a)
    # the probe and its 3 resends, then the kept probe every 10 s from the timeout
    assert [t for t, _ in probes] == [10.0, 15.0, 20.0, 25.0] + [30.0 + INTERVAL * k for k in range(18)]
    assert len({data[20:24] for _, data in probes}) == 1     # one message ID
    assert len(dpd_timeouts(pair.a)) == 1
    assert pair.a.downs == [] and pair.a.sa.established
    step(pair, 215.0)             # the peer is back: the probe of t=210 is answered
    assert pair.a.sa.pending is None and pair.a.downs == []
    # a new outage, from that answer: the probe at 220, resends at 225, 230, 235, timed out at 240
    mark = len(pair.sends)
    step(pair, 239.99, deliver=False)
    assert [t for t, _ in probe_times(pair, pair.a, mark)] == [220.0, 225.0, 230.0, 235.0]
    assert len(dpd_timeouts(pair.a)) == 1
    step(pair, 240.0, deliver=False)
    assert len(dpd_timeouts(pair.a)) == 2
    assert pair.a.of(DpdTimeout) == [DpdTimeout("none")] * 2    # what the metrics count
    assert pair.a.sa.established and children(pair.a) == {ca.spi_in: ca.spi_out}


def requests_of(pair, side, exchange, since=0):
    """(time, bytes) of each request of `exchange` (IKE exchange type) `side` sent."""
    return [(t, d.data) for t, who, d in pair.sends[since:]
            if who == side.name and d.data[18] == exchange and not d.data[19] & 0x20]


def resend_times(start, until):
    """When a request sent at `start` goes out, on the retransmission schedule
    (RFC 7296 §2.1, RetransmitSettings), before `until`."""
    times = [start]
    for delay in RetransmitSettings().delays()[:-1]:
        if times[-1] + delay >= until:
            break
        times.append(times[-1] + delay)
    return times


CREATE_CHILD_SA, IKE_SA_INIT = 36, 34


@pytest.mark.parametrize("action", ["clear", "restart"])
def test_dpd_decides_while_a_rekey_is_outstanding(action):
    """The peer dies just as vgw starts a CHILD rekey (t=5). The rekey holds the
    window (RFC 7296 §2.3) and its retransmissions probe in the probe's place,
    but the peer is still dead at the last traffic (t=0) + dpd_timeout, reason
    "dpd" with AWS's line, not at the rekey's give-up (~165 s) as "timeout"
    (which restart would not act on)."""
    pair = make_pair(a=dict(dpd_action=action))
    [ca] = pair.a.child_ups
    step(pair, 5.0)
    pair.a.endpoint.rekey("child", 5.0)
    dead = 0.0 + pair.a.endpoint.settings.dpd_timeout
    step(pair, dead - 0.01, deliver=False)
    assert pair.a.downs == []
    step(pair, dead, deliver=False)
    resends = resend_times(5.0, dead)
    assert [t for t, _ in requests_of(pair, pair.a, CREATE_CHILD_SA)] == pytest.approx(resends)
    assert [d.reason for d in pair.a.downs] == ["dpd"]
    assert dpd_timeouts(pair.a) == [f"AWS tunnel DPD timed out after {len(resends) - 1} retransmits"]
    assert pair.a.of(DpdTimeout) == [DpdTimeout(action)]
    assert [(d.spi_in, d.reason) for d in pair.a.child_downs] == [(ca.spi_in, "dpd")]
    inits = [t for t, _ in requests_of(pair, pair.a, IKE_SA_INIT)]
    if action == "clear":
        assert inits == []
        return
    assert pair.a.logged("AWS tunnel is restarting the IKE_SA") and inits == [dead]
    step(pair, dead + 30.0)                       # the network is back: up again
    assert len(pair.a.ups) == 2 and pair.a.sa.established


def test_dpd_none_keeps_the_sa_while_a_rekey_is_outstanding():
    """none, the peer silent while vgw's CHILD rekey is unanswered: the SA
    outlives the rekey's give-up (~165 s); from the timeout on the rekey is
    resent every 10 s, byte for byte (the same message ID: the peer's window
    still fits, RFC 7296 §2.1), and completes once the peer answers again."""
    pair = make_pair(a=dict(dpd_action="none"), b=dict(dpd_action="none"))
    [ca] = pair.a.child_ups
    step(pair, 5.0)
    pair.a.endpoint.rekey("child", 5.0)
    dead = 0.0 + pair.a.endpoint.settings.dpd_timeout
    give_up = 5.0 + sum(RetransmitSettings().delays())
    step(pair, 300.0, deliver=False)
    assert give_up < 300.0
    assert pair.a.downs == [] and pair.a.child_downs == [] and pair.a.sa.established
    resends = resend_times(5.0, dead)
    assert dpd_timeouts(pair.a) == [f"AWS tunnel DPD timed out after {len(resends) - 1} retransmits"]
    rekeys = requests_of(pair, pair.a, CREATE_CHILD_SA)
    kept = [dead + INTERVAL * k for k in range(1, int((300.0 - dead) / INTERVAL) + 1)]
    assert [t for t, _ in rekeys] == pytest.approx(resends + kept)
    assert len({data for _, data in rekeys}) == 1
    assert probe_times(pair, pair.a) == []        # the rekey probed in the probe's place
    step(pair, 315.0)                             # the peer is back
    [new] = live_child_ups(pair.a)
    assert new.replaces == ca.spi_in
    assert [(d.spi_in, d.reason) for d in pair.a.child_downs] == [(ca.spi_in, "rekeyed")]
    assert pair.a.downs == [] and pair.b.downs == [] and pair.a.sa.pending is None
    assert children(pair.a) == {new.spi_in: new.spi_out}


# 22.90550324885867 + 10.0 - 22.90550324885867 is 9.999999999999995: a deadline
# compared by subtraction fell short at the deadline itself, and the DPD timer was
# re-armed at that same instant forever
@pytest.mark.parametrize("last", [22.90550324885867, 25.39806302766357, 26.13148273697249])
def test_probe_when_the_deadline_does_not_survive_subtraction(last):
    assert (last + IDLE) - last < IDLE
    pair = make_pair()
    step(pair, last)
    pair.a.endpoint.note_inbound(last)
    mark = len(pair.sends)
    step(pair, last + IDLE + 5.0, deliver=False)
    gap = resend_gap(pair.a.endpoint.settings.dpd_timeout)
    assert [t for t, _ in probe_times(pair, pair.a, mark)] == pytest.approx([last + IDLE, last + IDLE + gap])


def test_dpd_restart_initiates_at_once():
    pair = make_pair(a=dict(dpd_action="restart"))
    step(pair, 29.99, deliver=False)
    mark = len(pair.sends)
    step(pair, 30.0, deliver=False)
    assert [d.reason for d in pair.a.downs] == ["dpd"]
    assert pair.a.logged("AWS tunnel is restarting the IKE_SA")
    inits = [(t, d) for t, who, d in pair.sends[mark:] if who == "a" and d.data[18] == 34]
    assert [t for t, _ in inits] == [30.0]
    step(pair, 60.0)                          # the network is back: a new IKE SA comes up
    assert len(pair.a.ups) == 2 and pair.a.sa.established
    assert pair.a.sa.spi_i == inits[0][1].data[:8]


def test_dpd_restart_without_the_cgw_address_cannot_initiate():
    """vgw as responder without customer_gateway.ip: nothing to initiate to."""
    pair = make_pair(b=dict(remote_ip=None, dpd_action="restart"))
    step(pair, 40.0, deliver=False)
    assert [d.reason for d in pair.b.downs] == ["dpd"]
    mark = len(pair.sends)
    step(pair, 500.0, deliver=False)
    assert [x for x in pair.sends[mark:] if x[1] == "b"] == []
    assert pair.b.endpoint.restart_at is None


# --- NAT: periodic probes ---------------------------------------------------------------------


def test_peer_behind_nat_gets_periodic_probes_despite_traffic():
    public = "203.0.113.7"
    pair = make_pair(a=dict(local_ip="10.0.0.2"), b=dict(remote_ip=public), nat_a=Nat(public))
    assert pair.b.ups[0].peer_behind_nat and not pair.a.ups[0].peer_behind_nat

    def traffic(t):                           # ESP both ways every second
        pair.a.endpoint.note_inbound(t)
        pair.b.endpoint.note_inbound(t)
    step(pair, 35.0, tick=1.0, on_tick=traffic)
    assert [t for t, _ in probe_times(pair, pair.b)] == [10.0, 20.0, 30.0]
    assert probe_times(pair, pair.a) == []    # A's peer is not behind a NAT: on demand


def test_periodic_probes_go_on_after_an_ike_rekey_behind_nat():
    """The new IKE SA keeps the NAT findings (and port 4500) of the old one."""
    public = "203.0.113.7"
    pair = make_pair(a=dict(local_ip="10.0.0.2"), b=dict(remote_ip=public), nat_a=Nat(public))
    pair.a.endpoint.rekey("ike", pair.now)
    pair.run()
    [new_b] = [u for u in pair.b.ups if u.rekeyed]
    assert new_b.peer_behind_nat and new_b.remote == (public, pair.b.ups[0].remote[1])
    assert pair.b.sa.remote[1] != 500                  # still NAT-T (RFC 3948), not 500

    def traffic(t):
        pair.a.endpoint.note_inbound(t)
        pair.b.endpoint.note_inbound(t)
    step(pair, 25.0, tick=1.0, on_tick=traffic)
    probes = [t for t, who, d in pair.sends if who == "b" and d.data[18] == 37
              and not d.data[19] & 0x20 and d.data[:8] == new_b.spi_i]
    assert probes == [10.0, 20.0]


# --- answering the peer's probes --------------------------------------------------------------


def test_liveness_is_answered_while_our_own_request_is_outstanding():
    pair = make_pair()
    held = Holder(is_request("CREATE_CHILD_SA"))
    pair.a.endpoint.rekey("child", pair.now)
    assert pair.transfer(pair.a, held) == 0
    assert pair.a.sa.pending is not None
    pair.liveness(pair.b)
    pair.transfer(pair.b)
    assert pair.transfer(pair.a, held) == 1     # the answer goes out, the rekey still waits
    assert pair.b.sa.pending is None and pair.a.sa.pending is not None
    held.release(pair, pair.b)
    pair.run()
    assert pair.a.sa.pending is None


# --- startup_action start and the back-off ------------------------------------------------------


def test_startup_start_initiates_again_after_a_peer_delete():
    pair = make_pair(a=dict(startup_action="start"))
    for round_ in range(2):                   # twice: a success resets the back-off
        t0 = pair.now
        ups = len(pair.a.ups)
        pair.b.endpoint.delete(pair.now)
        pair.run()
        assert pair.a.downs[-1].reason == "deleted-by-peer"
        mark = len(getattr(pair, "sends", []))
        step(pair, t0 + RESTART_BASE - 0.01)
        assert [x for x in pair.sends[mark:] if x[1] == "a" and x[2].data[18] == 34] == []
        step(pair, t0 + RESTART_BASE)
        inits = [x for x in pair.sends[mark:] if x[1] == "a" and x[2].data[18] == 34]
        assert [t for t, _, _ in inits] == [t0 + RESTART_BASE]
        assert len(pair.a.ups) == ups + 1 and pair.a.sa.established
        assert len(pair.b.sas) == 1 and pair.b.sa.established


def test_startup_start_initiates_again_after_dpd_clear():
    pair = make_pair(a=dict(startup_action="start"))
    step(pair, 30.0, deliver=False)
    assert [d.reason for d in pair.a.downs] == ["dpd"]
    mark = len(pair.sends)
    step(pair, 30.0 + RESTART_BASE, deliver=False)
    inits = [t for t, who, d in pair.sends[mark:] if who == "a" and d.data[18] == 34]
    assert inits == [30.0 + RESTART_BASE]


def _attempt_starts(pair, since):
    """Send time of the first IKE_SA_INIT of each attempt (a new SPIi each)."""
    firsts = {}
    for t, who, d in pair.sends[since:]:
        if who == "a" and d.data[18] == 34:
            firsts.setdefault(d.data[:8], t)
    return sorted(firsts.values())


def test_failed_attempts_back_off_doubling_up_to_the_maximum():
    # each attempt gives up 3 s after its first IKE_SA_INIT (resend at +1, give up +2 later)
    retransmit = RetransmitSettings(timeout=1.0, base=2.0, tries=1)
    give_up = 1.0 + 2.0
    pair = make_pair(a=dict(startup_action="start", retransmit=retransmit))
    pair.b.endpoint.delete(pair.now)
    pair.run()                                 # the tunnel is down at t=0; B is gone after
    pair.b.endpoint.hold()
    expected, t = [], 0.0
    for k in range(8):
        t += min(RESTART_MAX, RESTART_BASE * 2 ** k)    # 5, 10, 20, 40, 80, 120, 120, 120
        expected.append(t)
        t += give_up
    step(pair, expected[-1] + 1.0)
    assert _attempt_starts(pair, 0) == expected
    assert expected[6] - expected[5] == RESTART_MAX + give_up
    assert {d.reason for d in pair.a.downs[1:]} == {"timeout"}


def test_hold_stops_reinitiation_and_release_starts_at_once():
    retransmit = RetransmitSettings(timeout=1.0, base=2.0, tries=1)
    pair = make_pair(a=dict(startup_action="start", retransmit=retransmit))
    pair.b.endpoint.delete(pair.now)
    pair.run()
    pair.b.endpoint.hold()
    pair.a.endpoint.hold()                       # `vgw tunnel down` on A meanwhile
    step(pair, 500.0)
    assert _attempt_starts(pair, 0) == []
    assert pair.a.endpoint.next_deadline() is None
    pair.a.endpoint.release(600.0)              # `vgw tunnel up`
    pair.now = 600.0
    step(pair, 700.0)
    starts = _attempt_starts(pair, 0)
    # at once, then the back-off from its start: 603 + 5, 611 + 10, ...
    assert starts[:3] == [600.0, 603.0 + RESTART_BASE, 611.0 + 2 * RESTART_BASE]


def test_startup_add_never_initiates():
    pair = make_pair()                         # startup_action add (AWS's default)
    pair.b.endpoint.delete(pair.now)
    pair.run()
    assert pair.a.downs[-1].reason == "deleted-by-peer"
    step(pair, 1000.0)
    pair.a.endpoint.release(pair.now)
    step(pair, 1100.0)
    assert _attempt_starts(pair, 0) == []
    assert pair.a.endpoint.restart_at is None and pair.a.sas == []


def test_initiation_needs_the_cgw_address():
    pair = make_pair(a=dict(remote_ip=None, startup_action="start"), up=False)
    with pytest.raises(ValueError):
        pair.a.endpoint.initiate(0.0)
    assert pair.a.sas == []


def test_dpd_restart_keeps_trying_until_the_peer_is_back():
    """restart 'Restart the IKE session' (docs/aws.md §1.5): with startup add, vgw
    keeps initiating with the backoff until an attempt succeeds, not only once."""
    retransmit = RetransmitSettings(timeout=1.0, base=2.0, tries=1)   # an attempt fails 3 s in
    pair = make_pair(a=dict(dpd_action="restart", retransmit=retransmit))
    step(pair, 30.0, deliver=False)            # dead at 30: first attempt at once
    step(pair, 30.0 + 3 + RESTART_BASE + 3 + 2 * RESTART_BASE, deliver=False)
    starts = _attempt_starts(pair, 0)
    assert starts[:3] == [30.0, 33.0 + RESTART_BASE, 36.0 + 3 * RESTART_BASE]
    step(pair, 200.0)                          # the network is back: up, and no more attempts
    assert pair.a.sa.established and len(pair.a.ups) == 2
    mark = len(pair.sends)
    step(pair, 400.0)
    assert _attempt_starts(pair, mark) == []
