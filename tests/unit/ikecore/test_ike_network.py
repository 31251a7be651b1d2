"""An unreliable network between two cores: lost, duplicated and reordered
datagrams, the response cache, the retransmission schedule and its give-up,
half-open SAs that expire, and DELETE of IKE and CHILD SAs.

RFC 7296 §2.1 (retransmission, response cache), §2.3 (window), §1.4.1
(DELETE). The retransmission schedule is strongSwan's, as ikecore's policy
documents it (4 s, then x1.8 per try, 5 tries); AWS publishes none.
"""

import pytest

from ikecore.settings import RetransmitSettings
from .ikepair import (
    ADDR_A, ADDR_B, IkePair, drop_all, drop_first, duplicate, settings_a, settings_b, snapshot,
)


def schedule(timeout, base, tries):
    """Send times of the first request and its retransmissions, then the give-up
    time: t0 = 0, t(n+1) = t(n) + timeout * base**n."""
    times, t = [0.0], 0.0
    for n in range(tries + 1):
        t += timeout * base ** n
        times.append(t)
    return times[:-1], times[-1]


def assert_up_once(pair):
    """Established on both sides, exactly one IKE SA and one CHILD SA each, keys agree."""
    for side in (pair.a, pair.b):
        assert len(side.ups) == 1 and len(side.child_ups) == 1, side.events
        assert side.downs == [] and side.child_downs == []
        assert side.sa.state.value == "ESTABLISHED"
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    assert (ca.spi_in, ca.spi_out) == (cb.spi_out, cb.spi_in)
    assert ca.encr_key_out == cb.encr_key_in and ca.encr_key_in == cb.encr_key_out
    assert pair.a.sa.keys.sk_ei == pair.b.sa.keys.sk_ei


# --- loss ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lost", [0, 1, 2, 3], ids=["init-req", "init-resp", "auth-req", "auth-resp"])
def test_one_lost_datagram_at_each_step(lost):
    pair = IkePair()
    pair.initiate()
    hook = drop_first(1)
    # let `lost` datagrams through, then lose one
    delivered = 0
    while delivered < lost:
        delivered += pair.transfer(pair.a if delivered % 2 == 0 else pair.b)
    sender = pair.a if lost % 2 == 0 else pair.b
    assert pair.transfer(sender, hook) == 0
    pair.run()
    assert pair.a.ups == [] or lost == 3  # not up yet, unless only the last answer was lost
    # A's retransmission at t=4 repairs it
    fired = pair.run_timers(5.0)
    assert fired == [4.0]
    assert_up_once(pair)
    assert pair.a.sa.counters.retransmitted_requests == 1
    if lost in (1, 3):  # B saw the request twice and answered from its cache (§2.1)
        assert pair.b.sa.counters.retransmitted_responses == 1
        b_sent = [d.data for who, d in pair.wire if who == "b"]
        assert b_sent[lost // 2] == b_sent[lost // 2 + 1]


def test_several_losses_in_a_row():
    pair = IkePair()
    pair.initiate()
    hook = drop_first(3)          # the first request and two retransmissions are lost
    pair.run(hook)
    pair.run_timers(30.0, hook)
    assert_up_once(pair)
    assert pair.a.sa.counters.retransmitted_requests == 3


# --- duplication -------------------------------------------------------------------------------


def test_every_datagram_duplicated():
    pair = IkePair()
    pair.handshake(duplicate)
    assert_up_once(pair)
    # the copies of both requests got the cached answers; of the four answers
    # (two, each duplicated) to each request A took the first and dropped three
    assert pair.b.sa.counters.retransmitted_responses == 2
    assert pair.a.sa.counters.dropped_bad_message_id == 6
    assert pair.b.sa.counters.dropped_bad_message_id == 0
    assert len(pair.b.sas) == 1


def test_duplicates_through_informational_and_delete():
    pair = IkePair()
    pair.handshake(duplicate)
    pair.liveness(pair.a)
    pair.run(duplicate)
    [cb] = pair.b.child_ups
    pair.delete_child(pair.b, cb.spi_in)
    pair.run(duplicate)
    spi_text = f"AWS tunnel received DELETE for Phase 2 SA with SPI: {cb.spi_in:08x}"
    assert pair.a.logs.count(spi_text) == 1  # processed once, the copy answered from the cache
    assert len(pair.a.child_downs) == len(pair.b.child_downs) == 1
    assert pair.a.sa.state.value == pair.b.sa.state.value == "ESTABLISHED"


# --- reordering and stale copies -------------------------------------------------------------------


def test_stale_copies_after_establishment_change_nothing():
    """Copies of every handshake datagram, delayed until after the SA is up,
    are delivered again: no new SA, no change to the established one."""
    pair = IkePair()
    pair.handshake()
    before_a, before_b = snapshot(pair.a.sa), snapshot(pair.b.sa)
    stale = list(pair.wire)
    for who, d in stale:
        pair.deliver(pair.b if who == "a" else pair.a, d)
    pair.run()
    assert snapshot(pair.a.sa) == before_a and snapshot(pair.b.sa) == before_b
    assert len(pair.a.sas) == len(pair.b.sas) == 1
    assert_up_once(pair)
    # nothing is left to expire later (a new half-open SA would log AWS's
    # "Timeout: deleting un-established Phase 1 IKE_SA" for a tunnel that is up)
    pair.run_timers(1000.0)
    assert not pair.b.logged("AWS tunnel Timeout")
    assert pair.b.downs == []


def test_retransmitted_init_crossing_the_first_answer():
    """A's retransmission of IKE_SA_INIT and B's (late) first answer cross."""
    pair = IkePair()
    pair.initiate()
    [req] = pair.outgoing(pair.a)
    pair.deliver(pair.b, req)
    [late_answer] = pair.outgoing(pair.b)          # held back in the network
    pair.advance(4.0)                             # A retransmits
    [again] = pair.outgoing(pair.a)
    assert again.data == req.data                 # the same bytes (§2.1)
    pair.deliver(pair.b, again)
    [cached] = pair.outgoing(pair.b)
    assert cached.data == late_answer.data        # the cached answer, byte for byte
    pair.deliver(pair.a, late_answer)
    pair.deliver(pair.a, cached)                  # the second copy is dropped
    pair.run()
    assert_up_once(pair)


def test_crossing_informational_requests():
    """Both sides send a request at once (each has its own window, §2.3) and the
    datagrams arrive in the opposite order."""
    pair = IkePair()
    pair.handshake()
    pair.liveness(pair.a)
    pair.liveness(pair.b)
    [from_a] = pair.outgoing(pair.a)
    [from_b] = pair.outgoing(pair.b)
    pair.deliver(pair.a, from_b)
    pair.deliver(pair.b, from_a)
    pair.run()
    for side in (pair.a, pair.b):
        assert side.sa.pending is None and not side.sa.queue
    assert (pair.a.sa.next_request_id, pair.a.sa.expected_request_id) == (3, 1)
    assert (pair.b.sa.next_request_id, pair.b.sa.expected_request_id) == (1, 3)


# --- the response cache -------------------------------------------------------------------------------


def test_retransmitted_auth_gets_identical_bytes_and_is_not_processed_twice():
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    [auth] = pair.outgoing(pair.a)
    pair.deliver(pair.b, auth)
    [answer] = pair.outgoing(pair.b)
    events = len(pair.b.events)
    pair.deliver(pair.b, auth)
    [again] = pair.outgoing(pair.b)
    assert again.data == answer.data
    assert len(pair.b.child_ups) == 1 and len(pair.b.ups) == 1
    assert not pair.b.logs[events:] or all("processed request" not in t for t in pair.b.logs[events:])
    pair.deliver(pair.a, answer)
    assert_up_once(pair)


def test_retransmitted_informational_gets_identical_bytes():
    pair = IkePair()
    pair.handshake()
    pair.liveness(pair.a)
    [req] = pair.outgoing(pair.a)
    pair.deliver(pair.b, req)
    [answer] = pair.outgoing(pair.b)
    pair.deliver(pair.b, req)
    [again] = pair.outgoing(pair.b)
    assert again.data == answer.data
    assert pair.b.sa.expected_request_id == 3


def test_old_request_outside_the_window_is_dropped():
    """§2.3: a request older than the cached one gets nothing."""
    pair = IkePair()
    pair.handshake()
    pair.liveness(pair.a)
    [first] = pair.outgoing(pair.a)
    pair.deliver(pair.b, first)
    pair.run()
    pair.liveness(pair.a)
    pair.run()
    pair.deliver(pair.b, first)                   # message ID 2; B now caches 3
    assert pair.outgoing(pair.b) == []
    assert pair.b.sa.counters.dropped_bad_message_id == 1


# --- retransmission schedule and give-up -----------------------------------------------------------------


def test_retransmission_schedule_and_give_up():
    pair = IkePair()
    pair.initiate()
    [first] = pair.outgoing(pair.a)
    sends, give_up = schedule(4.0, 1.8, 5)
    # 0, 4, 11.2, 24.16, 47.488, 89.4784; give up at 165.06112
    assert sends[1:3] == pytest.approx([4.0, 11.2]) and give_up == pytest.approx(165.06112)
    seen = [0.0]
    while (t := pair.next_deadline()) is not None:
        assert pair.a.downs == []
        pair.advance(t)
        out = pair.outgoing(pair.a)
        if out:
            assert [d.data for d in out] == [first.data]
            seen.append(t)
    assert seen == pytest.approx(sends)
    assert pair.now == pytest.approx(give_up)
    [down] = pair.a.downs
    assert down.reason == "timeout"
    assert pair.a.logged(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: {ADDR_B}")
    assert pair.a.sas == [] and pair.a.endpoint.next_deadline() is None
    assert pair.a.endpoint.status()["phase1_state"] == "down"


def test_retransmission_schedule_follows_the_policy():
    pair = IkePair(settings_a(retransmit=RetransmitSettings(timeout=1.0, base=2.0, tries=3)))
    pair.initiate()
    pair.drop(pair.a)
    fired = pair.run_timers(100.0, hook=drop_all)
    sends, give_up = schedule(1.0, 2.0, 3)
    assert fired == pytest.approx(sends[1:] + [give_up])  # 1, 3, 7; give up at 15
    assert [d.reason for d in pair.a.downs] == ["timeout"]


def test_give_up_on_ike_auth():
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    pair.run_timers(200.0, hook=lambda out: [d for d in out if d.local[0] != ADDR_B])
    assert [d.reason for d in pair.a.downs] == ["timeout"]
    assert pair.a.logged(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: {ADDR_B}")
    assert pair.a.child_ups == []


def test_liveness_give_up_is_dpd():
    pair = IkePair()
    pair.handshake()
    pair.liveness(pair.a)
    pair.drop(pair.a)
    pair.run_timers(200.0, hook=drop_all)
    [down] = pair.a.downs
    assert down.reason == "dpd"
    assert pair.a.logged("AWS tunnel DPD timed out after")  # "... {retry_count} retransmits"
    [cd] = pair.a.child_downs
    assert cd.spi_in == pair.a.child_ups[0].spi_in
    assert pair.a.sas == []


# --- half-open SAs ---------------------------------------------------------------------------------------


def test_half_open_responder_sa_expires():
    pair = IkePair(settings_a(), settings_b(half_open_timeout=10.0))
    pair.initiate()
    pair.roundtrip(pair.a)
    pair.drop(pair.a)                              # IKE_AUTH never arrives
    assert pair.b.endpoint.status()["half_open"] == 1
    assert pair.b.endpoint.next_deadline() == pytest.approx(10.0)
    pair.run_timers(9.9, hook=drop_all)
    assert pair.b.downs == []
    pair.run_timers(10.0, hook=drop_all)
    assert pair.b.logged(f"AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: {ADDR_A}")
    [down] = pair.b.downs
    assert down.reason == "half-open"
    assert pair.b.sas == [] and pair.b.endpoint.status()["half_open"] == 0
    # A's later retransmissions of IKE_AUTH find nothing on B
    pair.run_timers(30.0)
    assert pair.b.sas == [] and pair.b.ups == []


def test_half_open_timer_uses_the_default():
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    pair.drop(pair.a)
    assert pair.b.endpoint.next_deadline() == pytest.approx(30.0)  # IkeSettings default


# --- DELETE ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("deleter", ["a", "b"])
def test_delete_ike_sa_from_either_side(deleter):
    pair = IkePair()
    pair.handshake()
    by, peer = (pair.a, pair.b) if deleter == "a" else (pair.b, pair.a)
    [c_by], [c_peer] = by.child_ups, peer.child_ups
    by.endpoint.delete(pair.now)
    pair.run()
    assert peer.logged("AWS tunnel received DELETE for IKE_SA from CGW")
    assert [d.reason for d in by.downs] == ["deleted"]
    assert [d.reason for d in peer.downs] == ["deleted-by-peer"]
    assert [(c.spi_in, c.spi_out) for c in by.child_downs] == [(c_by.spi_in, c_by.spi_out)]
    assert [(c.spi_in, c.spi_out) for c in peer.child_downs] == [(c_peer.spi_in, c_peer.spi_out)]
    assert pair.a.sas == [] and pair.b.sas == []
    assert pair.next_deadline() is None


def test_delete_ike_sa_with_the_answer_lost():
    pair = IkePair()
    pair.handshake()
    pair.a.endpoint.delete(pair.now)
    pair.transfer(pair.a)
    pair.drop(pair.b)
    assert [d.reason for d in pair.b.downs] == ["deleted-by-peer"]
    pair.run_timers(200.0)     # A's retransmissions reach nobody; A gives up
    assert [d.reason for d in pair.a.downs] == ["deleted"]
    assert pair.a.sas == [] and pair.b.sas == []


@pytest.mark.parametrize("deleter", ["a", "b"])
def test_delete_child_sa(deleter):
    pair = IkePair()
    pair.handshake()
    by, peer = (pair.a, pair.b) if deleter == "a" else (pair.b, pair.a)
    [c_by], [c_peer] = by.child_ups, peer.child_ups
    pair.delete_child(by, c_by.spi_in)
    pair.run()
    # the Delete payload carries the sender's inbound SPI (§3.11), the peer's outbound one
    assert peer.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {c_by.spi_in:08x}")
    assert [(c.spi_in, c.spi_out) for c in by.child_downs] == [(c_by.spi_in, c_by.spi_out)]
    assert [(c.spi_in, c.spi_out) for c in peer.child_downs] == [(c_peer.spi_in, c_peer.spi_out)]
    for side in (pair.a, pair.b):
        assert side.sa.children == {} and side.sa.state.value == "ESTABLISHED"
        assert side.downs == []
        assert side.endpoint.status()["phase2_state"] != "established"


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_delete_child_sa_with_a_loss(lost):
    pair = IkePair()
    pair.handshake()
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    pair.delete_child(pair.a, ca.spi_in)
    if lost == "request":
        pair.drop(pair.a)
    else:
        pair.transfer(pair.a)
        pair.drop(pair.b)
    pair.run_timers(5.0)          # A's retransmission at +4 s
    assert [(c.spi_in, c.spi_out) for c in pair.a.child_downs] == [(ca.spi_in, ca.spi_out)]
    assert [(c.spi_in, c.spi_out) for c in pair.b.child_downs] == [(cb.spi_in, cb.spi_out)]
    assert pair.b.logs.count(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {ca.spi_in:08x}") == 1
    assert pair.a.sa.pending is None and pair.a.downs == pair.b.downs == []


def test_both_sides_delete_the_child_sa_at_once():
    """RFC 7296 §1.4.1: when both ends delete the same pair at once, each answers
    the other's request without a Delete of its own; each closes its SA once."""
    pair = IkePair()
    pair.handshake()
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    pair.delete_child(pair.a, ca.spi_in)
    pair.delete_child(pair.b, cb.spi_in)
    [from_a] = pair.outgoing(pair.a)
    [from_b] = pair.outgoing(pair.b)
    pair.deliver(pair.a, from_b)
    pair.deliver(pair.b, from_a)
    pair.run()
    assert len(pair.a.child_downs) == len(pair.b.child_downs) == 1
    for side in (pair.a, pair.b):
        assert side.sa.children == {} and side.sa.pending is None
        assert side.sa.state.value == "ESTABLISHED" and side.downs == []
