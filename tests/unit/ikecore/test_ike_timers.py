"""Typed timers (ikecore.timers): every deadline is kept by an IkeTimer or a
ChildTimer, the SA fires a due one through the action registered for its kind
(endpoint.SA_HANDLERS), and nothing fires early or twice. Synthetic clock only.
"""

from __future__ import annotations

import pytest

from ikecore.constants import ExchangeType
from ikecore.endpoint import SA_HANDLERS
from ikecore.sa import SaHandlers
from ikecore.timers import (
    DPD_DELAY, REFUSED_RETRY, ChildTimer, IkeTimer, liveness_delays, retry_at,
)
from .ikepair import IkePair, Nat, drop_all, settings_a, settings_b


def test_every_kind_has_an_action_and_every_request_an_answer():
    assert set(SA_HANDLERS.timers) == set(IkeTimer)
    assert set(SA_HANDLERS.child_timers) == set(ChildTimer)
    assert set(SA_HANDLERS.requests) == {ExchangeType.IKE_SA_INIT, ExchangeType.IKE_AUTH,
                                         ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL}
    assert all(callable(f) for f in [*SA_HANDLERS.timers.values(), *SA_HANDLERS.child_timers.values()])


def test_what_an_established_sa_arms():
    """IKE_AUTH done: the IKE SA's rekey, expiry and DPD, each CHILD SA's rekey and
    expiry, all typed; the responder's HALF_OPEN is gone."""
    pair = IkePair(settings_a(rekey_fuzz=0), settings_b(rekey_fuzz=0), now=100.0)
    pair.initiate()
    pair.roundtrip(pair.a)
    assert set(pair.b.sa.timers) == {IkeTimer.HALF_OPEN}
    assert pair.b.sa.timers[IkeTimer.HALF_OPEN] == 100.0 + pair.b.endpoint.settings.half_open_timeout
    pair.run()
    for side in (pair.a, pair.b):
        sa, s = side.sa, side.endpoint.settings
        assert sa.timers == {IkeTimer.REKEY: 100.0 + s.phase1_lifetime - s.rekey_margin,
                             IkeTimer.EXPIRE: 100.0 + s.phase1_lifetime,
                             IkeTimer.DPD: 100.0 + DPD_DELAY}
        [child] = sa.children.values()
        assert child.timers == {ChildTimer.REKEY: 100.0 + s.phase2_lifetime - s.rekey_margin,
                                ChildTimer.EXPIRE: 100.0 + s.phase2_lifetime}
        assert sa.next_deadline() == 100.0 + DPD_DELAY


def test_keepalive_timer_only_behind_a_nat():
    pair = IkePair(settings_a(), settings_b(remote_ip=None), nat_a=Nat("203.0.113.7"))
    pair.handshake()
    assert IkeTimer.NAT_KEEPALIVE in pair.a.sa.timers          # A is behind the NAT
    assert IkeTimer.NAT_KEEPALIVE not in pair.b.sa.timers


class Recorder:
    def __init__(self):
        self.fired: list[tuple] = []

    def handlers(self) -> SaHandlers:
        def ike(kind):
            return lambda sa, now: self.fired.append((kind, now))

        def child(kind):
            return lambda sa, c, now: self.fired.append((kind, c.spi_in, now))
        return SaHandlers(SA_HANDLERS.requests, {k: ike(k) for k in IkeTimer},
                          {k: child(k) for k in ChildTimer})


@pytest.fixture
def up():
    pair = IkePair()
    pair.handshake()
    return pair


def test_the_sa_fires_each_kind_through_its_action_once_when_due(up):
    sa = up.a.sa
    rec = Recorder()
    sa.handlers = rec.handlers()
    [child] = sa.children.values()
    sa.timers = {IkeTimer.DPD: 5.0, IkeTimer.REKEY: 3.0, IkeTimer.DELETE_REKEYED: 9.0}
    child.timers = {ChildTimer.EXPIRE: 4.0}
    assert sa.next_deadline() == 3.0
    sa.handle_timer(2.99)
    assert rec.fired == []
    sa.handle_timer(4.0)
    assert rec.fired == [(IkeTimer.REKEY, 4.0), (ChildTimer.EXPIRE, child.spi_in, 4.0)]
    sa.handle_timer(4.0)                                         # fired once only
    assert len(rec.fired) == 2
    assert sa.timers == {IkeTimer.DPD: 5.0, IkeTimer.DELETE_REKEYED: 9.0} and child.timers == {}
    sa.handle_timer(10.0)
    assert rec.fired[2:] == [(IkeTimer.DPD, 10.0), (IkeTimer.DELETE_REKEYED, 10.0)]
    assert sa.next_deadline() is None


def test_child_timers_due_together_fire_delete_expire_rekey(up):
    sa = up.a.sa
    rec = Recorder()
    sa.handlers = rec.handlers()
    sa.timers = {}
    [child] = sa.children.values()
    child.timers = {ChildTimer.REKEY: 1.0, ChildTimer.EXPIRE: 1.0, ChildTimer.DELETE: 1.0}
    sa.handle_timer(1.0)
    assert [f[0] for f in rec.fired] == [ChildTimer.DELETE, ChildTimer.EXPIRE, ChildTimer.REKEY]


def test_a_dead_sa_fires_nothing(up):
    sa = up.a.sa
    rec = Recorder()
    sa.handlers = rec.handlers()
    sa.fail("test", "deleted")
    sa.timers[IkeTimer.DPD] = 0.0
    sa.handle_timer(1e9)
    assert rec.fired == []


def test_expiry_clears_the_child_rekey(up):
    """ChildTimer.EXPIRE ends the CHILD SA: its REKEY, due at the same time, never
    starts a rekey of an SA that is gone."""
    sa = up.a.sa
    [child] = sa.children.values()
    child.timers = {ChildTimer.REKEY: 50.0, ChildTimer.EXPIRE: 50.0}
    up.advance(50.0)
    assert sa.children == {}
    assert [d.reason for d in up.a.child_downs] == ["expired"]
    assert not up.a.logged("AWS tunnel is rekeying Phase 2 SA")


def test_half_open_timer_ends_the_responder_sa_at_its_deadline():
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    b = pair.b.sa
    deadline = b.timers[IkeTimer.HALF_OPEN]
    pair.run_timers(deadline - 0.01, hook=drop_all)
    assert not b.dead
    pair.run_timers(deadline, hook=drop_all)
    assert b.dead and [d.reason for d in pair.b.downs] == ["half-open"]


def test_dpd_timer_rearms_from_the_last_traffic(up):
    """IkeTimer.DPD looks at the silence: traffic in between moves it, no probe."""
    sa = up.a.sa
    first = sa.timers[IkeTimer.DPD]
    sa.note_inbound(first - 1.0)
    up.advance(first)
    assert sa.timers[IkeTimer.DPD] == first - 1.0 + DPD_DELAY and sa.pending is None
    up.advance(first - 1.0 + DPD_DELAY)
    assert sa.pending is not None                       # silent for DPD_DELAY: a probe


def test_retry_and_liveness_schedules():
    class Fixed:
        def uniform(self):
            return 0.5
    lo, hi = REFUSED_RETRY
    assert retry_at(Fixed(), 100.0, None) == 100.0 + (lo + hi) / 2
    assert retry_at(Fixed(), 100.0, 120.0) == 119.0             # a second before the expiry
    assert retry_at(Fixed(), 100.0, 100.5) is None              # no time left
    # three resends evenly spread up to the timeout (docs/aws.md §3.3: "3 retransmits")
    assert liveness_delays(0.0, 20.0) == [5.0, 5.0, 5.0, 5.0]
    assert liveness_delays(0.0, 25.0) == [6.25, 6.25, 6.25, 6.25]
