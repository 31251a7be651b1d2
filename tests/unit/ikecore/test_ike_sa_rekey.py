"""IKE SA rekeying (RFC 7296 §1.3.2, §2.18) between two cores, synthetic clock.

- When: lifetime - margin x (1 + fuzz x random) with the phase 1 lifetime
  (docs/aws.md §1.6), worked out by hand for a fixed random value; hard expiry
  at the lifetime.
- How: new SPIs (the rekey's initiator is the new SA's initiator), SKEYSEED =
  prf(SK_d (old), g^ir (new) | Ni | Nr) with the old PRF and the seven keys from
  prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (§2.18) recomputed here from the wire and
  a known DH private value; the CHILD SAs move untouched; the old SA is deleted
  by the rekey's initiator; message IDs of the new SA start at 0 (§2.18).
- Simultaneous IKE rekeys (§2.8.1 applied to IKE SAs, §2.18), each winner
  forced through the nonces; TEMPORARY_FAILURE while a CHILD rekey is in flight
  (§2.25.2); loss and duplication of each message.
"""

from dataclasses import replace

import pytest

from ikecore.crypto import get_dh_group
from ikecore import sa_operations, timers
from ikecore.exchanges import create_child_sa, ike_rekey
from .ikepair import (
    nth,
    NOTIFIES, DhRecorder, Holder, child_keys, ecp_shared_secret, ike_keys, is_answer,
    is_request, nonce, prf,
)
from .lifecycle import (
    PROTO_IKE, T_DH, assert_esp_flows, children, live_child_ups, make_pair, opened, rng, sent,
)


@pytest.fixture
def dh(monkeypatch):
    recorder = DhRecorder(get_dh_group)
    monkeypatch.setattr(ike_rekey, "get_dh_group", recorder)
    monkeypatch.setattr(create_child_sa, "get_dh_group", recorder)
    monkeypatch.setattr(sa_operations, "get_dh_group", recorder)   # the responders
    return recorder


def sides(pair, who):
    return (pair.a, pair.b) if who == "a" else (pair.b, pair.a)


def ike_requests(pair, side, since):
    """CREATE_CHILD_SA requests of `side` that rekey the IKE SA (IKE proposals)."""
    out = []
    for d in sent(pair, side, since, "CREATE_CHILD_SA", response=False):
        props = opened(pair, d).proposals()
        if props and props[0]["protocol"] == PROTO_IKE:
            out.append(d)
    return out


# --- when ------------------------------------------------------------------------------------

# phase 1 lifetime 3600 and phase 2 900 (both in AWS's ranges, docs/aws.md §0) so
# that an hour of tunnel life, CHILD rekeys and DPD included, runs in the test
WINDOW = [
    (270, 100, 0.5, 3195.0),    # 3600 - 270 x 1.5
    (270, 100, 0.0, 3330.0),    # 3600 - 270
    (270, 0, 0.5, 3330.0),      # fuzz 0: lifetime - margin
    (300, 50, 0.5, 3225.0),     # 3600 - 300 x 1.25
]


@pytest.mark.parametrize("margin,fuzz,u,at", WINDOW)
def test_ike_rekey_fires_at_lifetime_minus_margin_fuzzed(margin, fuzz, u, at):
    assert at == 3600 - margin * (1 + fuzz / 100 * u)
    pair = make_pair(a=dict(phase1_lifetime=3600, phase2_lifetime=900, rekey_margin=margin,
                            rekey_fuzz=fuzz), ua=u,
                     b=dict(phase1_lifetime=3600, phase2_lifetime=900, rekey_margin=60,
                            rekey_fuzz=0))
    [up] = pair.a.ups
    ike = pair.a.endpoint.status(0.0)["ike"]
    assert (ike["rekey_in"], ike["expires_in"]) == (at, 3600)

    pair.run_timers(at - 0.01)
    assert ike_requests(pair, pair.a, 0) == []
    assert (pair.a.sa.spi_i, pair.a.sa.spi_r) == (up.spi_i, up.spi_r)
    assert pair.a.child_downs and pair.a.downs == []   # CHILD SAs were rekeyed meanwhile
    mark = len(pair.wire)
    assert pair.run_timers(at) == [at]
    [req] = ike_requests(pair, pair.a, mark)
    assert len(opened(pair, req).proposals()[0]["spi"]) == 8     # §3.3.1: new SPIi
    [new] = [u for u in pair.a.ups if u.rekeyed]
    assert (new.spi_i, new.spi_r) != (up.spi_i, up.spi_r)
    ike = pair.a.endpoint.status(at)["ike"]
    assert (ike["rekey_in"], ike["expires_in"]) == (at, 3600)     # the same schedule again


def test_ike_hard_expiry_deletes_when_the_peer_refuses_the_rekey():
    """B no longer accepts A's phase 1 group (its configuration changed under the
    running SA): the rekey is refused; at the phase 1 lifetime A deletes the SA."""
    pair = make_pair(a=dict(phase1_lifetime=3600, phase2_lifetime=900, rekey_margin=270,
                            rekey_fuzz=0),
                     b=dict(phase1_lifetime=7200, phase2_lifetime=900))
    [up] = pair.a.ups
    pair.b.sa.settings = replace(pair.b.sa.settings, phase1_dh_groups=(20,))
    pair.run_timers(3330.0)
    [req] = ike_requests(pair, pair.a, 0)
    [answer] = [d for d in sent(pair, pair.b, 0, "CREATE_CHILD_SA", response=True)
                if opened(pair, d).message_id == opened(pair, req).message_id]
    assert opened(pair, answer).notify_types() == [NOTIFIES["NO_PROPOSAL_CHOSEN"]]
    assert pair.a.logged("AWS tunnel IKE_SA rekey refused by cgw")
    pair.run_timers(3599.99)
    assert pair.a.downs == [] and pair.a.sa.spi_i == up.spi_i
    mark = len(pair.wire)
    pair.run_timers(3600.0)
    [delete] = sent(pair, pair.a, mark, "INFORMATIONAL", response=False)
    assert opened(pair, delete).deletes() == [(PROTO_IKE, [])]
    assert [(d.spi_i, d.reason) for d in pair.a.downs] == [(up.spi_i, "expired")]
    assert [d.reason for d in pair.b.downs] == ["deleted-by-peer"]
    assert pair.b.logged("AWS tunnel received DELETE for IKE_SA from CGW")
    assert pair.a.sas == [] and pair.b.sas == []


def test_ike_hard_expiry_when_the_peer_never_answers_the_rekey():
    """The peer swallows the rekey request: at the phase 1 lifetime the IKE SA is
    gone (with its CHILD SAs), whatever request is outstanding."""
    pair = make_pair(a=dict(phase1_lifetime=900, phase2_lifetime=3600, rekey_margin=60,
                            rekey_fuzz=0),
                     b=dict(phase1_lifetime=1800, phase2_lifetime=3600))

    def swallow(out):
        return [d for d in out if not (d.local[0] == pair.a.ip and d.data[18] == 36)]
    pair.run_timers(899.99, hook=swallow)
    assert pair.a.downs == [] and pair.a.sa.pending is not None
    pair.run_timers(900.0, hook=swallow)
    assert [d.reason for d in pair.a.downs] == ["expired"]
    assert len(pair.a.child_downs) == 1


# --- how ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["a", "b"])
def test_ike_rekey_by_either_side(who, dh):
    pair = make_pair()
    by, peer = sides(pair, who)
    [old_up] = by.ups
    old_sk_d = by.sa.sk_d
    [c_by], [c_peer] = by.child_ups, peer.child_ups
    mark = len(pair.wire)
    assert by.endpoint.rekey("ike", pair.now) is None
    assert by.endpoint.status(pair.now)["phase1_state"] == "rekeying"
    assert by.endpoint.rekey("ike", pair.now) == "an IKE SA rekey is already in progress"
    pair.run()

    [req] = ike_requests(pair, by, mark)
    req_msg = opened(pair, req)
    assert req_msg.notify_types() == []                   # no REKEY_SA for IKE (§1.3.2)
    [prop] = req_msg.proposals()[:1]
    assert prop["protocol"] == PROTO_IKE and len(prop["spi"]) == 8
    ke_group, ke_i = req_msg.ke()
    assert ke_group == 19
    ni = req_msg.nonce()
    [ans] = sent(pair, peer, mark, "CREATE_CHILD_SA", response=True)
    ans_msg = opened(pair, ans)
    [chosen] = ans_msg.proposals()
    assert chosen["protocol"] == PROTO_IKE and len(chosen["spi"]) == 8
    assert (T_DH, 19, None) in chosen["transforms"]
    ke_group_r, ke_r = ans_msg.ke()
    nr = ans_msg.nonce()
    spi_i, spi_r = prop["spi"], chosen["spi"]      # the rekey's initiator is the new SPIi

    # events: the new SA up (rekeyed), the old one down (rekeyed); CHILD SAs untouched
    for side, initiator in ((by, True), (peer, False)):
        [new_up] = [u for u in side.ups if u.rekeyed]
        assert (new_up.spi_i, new_up.spi_r, new_up.initiator) == (spi_i, spi_r, initiator)
        assert [(d.spi_i, d.spi_r, d.reason) for d in side.downs] == [
            (old_up.spi_i, old_up.spi_r, "rekeyed")]
        assert len(side.child_ups) == 1 and side.child_downs == []
        sa = side.sa                                     # exactly one IKE SA left
        assert (sa.spi_i, sa.spi_r) == (spi_i, spi_r) and sa.established
        assert side.endpoint.status(pair.now)["phase1_state"] == "established"
    assert children(by) == {c_by.spi_in: c_by.spi_out}
    assert children(peer) == {c_peer.spi_in: c_peer.spi_out}

    # SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the old PRF (§2.18)
    group, x = dh.private_for(ke_i)
    shared = ecp_shared_secret(group, x, ke_r)
    seed = prf(old_up.prf, old_sk_d, shared + ni + nr)
    [new_up] = [u for u in by.ups if u.rekeyed]
    k = ike_keys(new_up.prf, new_up.encryption, new_up.integrity, ni, nr, spi_i, spi_r,
                 shared, skeyseed=seed)
    for side in (by, peer):
        sa = side.sa
        assert sa.sk_d == k["sk_d"] and (sa.sk_pi, sa.sk_pr) == (k["sk_pi"], k["sk_pr"])
        assert (sa.keys.sk_ei, sa.keys.sk_er) == (k["sk_ei"], k["sk_er"])
        assert (sa.keys.sk_ai, sa.keys.sk_ar) == (k["sk_ai"], k["sk_ar"])
    assert k["sk_d"] != old_sk_d

    # the rekey's initiator deleted the old IKE SA with the old SPIs
    [dreq] = [d for d in sent(pair, by, mark, "INFORMATIONAL", response=False)]
    assert dreq.data[:16] == old_up.spi_i + old_up.spi_r
    assert by.logged("AWS tunnel is rekeying IKE_SA with cgw")

    # the new SA's message IDs start at 0 (§2.18), both ways; liveness works on it
    mark = len(pair.wire)
    pair.liveness(by)
    pair.liveness(peer)
    pair.run()
    for side in (by, peer):
        [probe] = sent(pair, side, mark, "INFORMATIONAL", response=False)
        m = opened(pair, probe)
        assert (m.spi_i, m.spi_r, m.message_id, m.payloads) == (spi_i, spi_r, 0, [])
        assert side.sa.pending is None

    # a CHILD rekey on the new IKE SA takes its KEYMAT from the new SK_d (§2.17)
    mark = len(pair.wire)
    peer.endpoint.rekey("child", pair.now)
    pair.run()
    [creq] = sent(pair, peer, mark, "CREATE_CHILD_SA", response=False)
    [cans] = sent(pair, by, mark, "CREATE_CHILD_SA", response=True)
    cq, ca = opened(pair, creq), opened(pair, cans)
    assert cq.message_id == 1 and (cq.spi_i, cq.spi_r) == (spi_i, spi_r)
    g, xc = dh.private_for(cq.ke()[1])
    c_shared = ecp_shared_secret(g, xc, ca.ke()[1])
    [new_child_peer] = live_child_ups(peer)
    [new_child_by] = live_child_ups(by)
    ck = child_keys(new_up.prf, k["sk_d"], cq.nonce(), ca.nonce(), new_child_peer.encryption,
                    new_child_peer.integrity, c_shared)
    assert new_child_peer.encr_key_out == ck["encr_i"] and new_child_by.encr_key_in == ck["encr_i"]
    assert new_child_peer.replaces == c_peer.spi_in
    assert_esp_flows(new_child_by, new_child_peer)


@pytest.mark.parametrize("who", ["a", "b"])
def test_ike_rekey_reuses_the_agreed_group(who):
    """The handshake settled on 20 after INVALID_KE; the rekey offers 20 first (the
    group agreed last time, as strongSwan does) and needs no second round trip."""
    guesser, strict = dict(phase1_dh_groups=(19, 20)), dict(phase1_dh_groups=(20,))
    pair = make_pair(a=guesser if who == "a" else strict, b=strict if who == "a" else guesser)
    by, peer = sides(pair, who)
    [old] = by.ups
    assert old.dh_group == 20
    mark = len(pair.wire)
    by.endpoint.rekey("ike", pair.now)
    pair.run()
    [only] = ike_requests(pair, by, mark)
    assert opened(pair, only).ke()[0] == 20
    for side in (by, peer):
        [new] = [u for u in side.ups if u.rekeyed]
        assert new.dh_group == 20 and side.sa.spi_i == new.spi_i


@pytest.mark.parametrize("who", ["a", "b"])
def test_ike_rekey_invalid_ke_then_retry(who):
    """The peer's policy no longer allows the agreed group (20) but 21: the rekey
    guesses 20, the peer answers INVALID_KE_PAYLOAD naming 21 (§1.3), the retry
    with 21 goes through."""
    guesser, strict = dict(phase1_dh_groups=(19, 20, 21)), dict(phase1_dh_groups=(20,))
    pair = make_pair(a=guesser if who == "a" else strict, b=strict if who == "a" else guesser)
    by, peer = sides(pair, who)
    [old] = by.ups
    assert old.dh_group == 20
    changed = replace(peer.endpoint.settings, phase1_dh_groups=(21,))
    peer.endpoint.settings = peer.sa.settings = changed
    mark = len(pair.wire)
    by.endpoint.rekey("ike", pair.now)
    pair.run()
    first, second = ike_requests(pair, by, mark)
    refusal = [d for d in sent(pair, peer, mark, "CREATE_CHILD_SA", response=True)][0]
    assert opened(pair, first).ke()[0] == 20 and opened(pair, second).ke()[0] == 21
    [(ntype, _, _, data)] = opened(pair, refusal).notifies()
    assert (ntype, data) == (NOTIFIES["INVALID_KE_PAYLOAD"], b"\x00\x15")
    for side in (by, peer):
        [new] = [u for u in side.ups if u.rekeyed]
        assert new.dh_group == 21 and side.sa.spi_i == new.spi_i
        downs = [d.reason for d in side.downs if (d.spi_i, d.spi_r) == (old.spi_i, old.spi_r)]
        assert downs == ["rekeyed"]


# --- simultaneous IKE rekeys ------------------------------------------------------------------

LOW, HIGH = 0x00, 0xFF
# (Ni of A's request, Ni of B's request, Nr of B's answer, Nr of A's answer) -> winner
CASES = {
    "ni-a-lowest": ((LOW, HIGH, HIGH, HIGH), "b"),
    "ni-b-lowest": ((HIGH, LOW, HIGH, HIGH), "a"),
    "nr-b-lowest": ((HIGH, HIGH, LOW, HIGH), "b"),
    "nr-a-lowest": ((HIGH, HIGH, HIGH, LOW), "a"),
}


def colliding_pair(nonces):
    ni_a, ni_b, nr_b, nr_a = nonces
    pair = make_pair()
    rng(pair.a).nonces[:] = [nonce(ni_a), nonce(nr_a)]
    rng(pair.b).nonces[:] = [nonce(ni_b), nonce(nr_b)]
    return pair


def check_ike_outcome(pair, winner_name, mark, old_spis, children_before):
    winner, loser = (pair.a, pair.b) if winner_name == "a" else (pair.b, pair.a)
    [w_req] = ike_requests(pair, winner, mark)
    [l_ans] = [d for d in sent(pair, loser, mark, "CREATE_CHILD_SA", response=True)
               if d.data[:8] == old_spis[0]]
    l_ans_props = opened(pair, l_ans).proposals()
    survivor = (opened(pair, w_req).proposals()[0]["spi"],
                l_ans_props[0]["spi"] if len(l_ans_props) == 1 else None)
    for side in (winner, loser):
        sa = side.sa                                   # one IKE SA left on each side
        assert (sa.spi_i, sa.spi_r) == survivor and sa.established
        ups = [u for u in side.ups if u.rekeyed]
        assert [(u.spi_i, u.spi_r) for u in ups] == [survivor]
        assert (side is winner) == ups[0].initiator
        # the old SA went down as rekeyed; nothing else that was up went down
        assert [(d.spi_i, d.spi_r) for d in side.downs if d.reason == "rekeyed"] == [old_spis]
        assert {d.reason for d in side.downs} <= {"rekeyed", "redundant"}
        assert not [d for d in side.downs if (d.spi_i, d.spi_r) == survivor]
        # the CHILD SA moved, untouched
        assert children(side) == children_before[side.name]
        assert side.child_downs == [] and len(side.child_ups) == 1
        assert side.endpoint.current is sa and side.endpoint.status(pair.now)["phase1_state"] == "established"
        assert sa.pending is None and not sa.queue
    # the loser deleted its redundant SA, the winner the old one
    assert [d for d in sent(pair, winner, mark, "INFORMATIONAL", False)
            if d.data[:16] == old_spis[0] + old_spis[1]]
    assert not [d for d in sent(pair, loser, mark, "INFORMATIONAL", False)
                if d.data[:16] == old_spis[0] + old_spis[1]]
    # both still work: liveness both ways; on the survivor each side's requests
    # are numbered from 0 (§2.18)
    pair.liveness(winner)
    pair.liveness(loser)
    pair.run()
    for side in (winner, loser):
        mids = [opened(pair, d).message_id for d in sent(pair, side, mark, response=False)
                if d.data[:16] == survivor[0] + survivor[1]]
        assert mids == list(range(len(mids))) and mids
        assert side.sa.pending is None


def _start_both(pair):
    old = (pair.a.sa.spi_i, pair.a.sa.spi_r)
    before = {"a": children(pair.a), "b": children(pair.b)}
    mark = len(pair.wire)
    pair.a.endpoint.rekey("ike", pair.now)
    pair.b.endpoint.rekey("ike", pair.now)
    return old, before, mark


@pytest.mark.parametrize("case", CASES)
def test_simultaneous_ike_rekeys(case):
    nonces, winner = CASES[case]
    pair = colliding_pair(nonces)
    old, before, mark = _start_both(pair)
    [req_a] = pair.outgoing(pair.a)
    [req_b] = pair.outgoing(pair.b)
    pair.deliver(pair.b, req_a)
    pair.deliver(pair.a, req_b)
    assert pair.a.logged("AWS tunnel detected a (IKE_REKEY) collision")
    assert pair.b.logged("AWS tunnel detected a (IKE_REKEY) collision")
    pair.run()
    check_ike_outcome(pair, winner, mark, old, before)


@pytest.mark.parametrize("case", CASES)
def test_ike_collision_with_a_delayed_answer(case):
    """Both requests cross; B's answer to A is held back, so B settles the
    collision (and sends its DELETE) before A learns how its exchange ended."""
    nonces, winner = CASES[case]
    pair = colliding_pair(nonces)
    old, before, mark = _start_both(pair)
    [req_a] = pair.outgoing(pair.a)
    [req_b] = pair.outgoing(pair.b)
    pair.deliver(pair.b, req_a)
    pair.deliver(pair.a, req_b)
    held = Holder(is_answer("CREATE_CHILD_SA"))
    pair.transfer(pair.b, held)
    pair.run()
    held.release(pair, pair.a)
    pair.run()
    # the side that expects the peer to delete the redundant SA deletes it itself
    # when the peer cannot (its answer came after the old SA was gone): 30 s, then
    # retransmissions to an SA the peer never had, up to the give-up (165 s)
    pair.run_timers(250.0)
    check_ike_outcome(pair, winner, mark, old, before)


@pytest.mark.parametrize("case", CASES)
def test_ike_collision_with_a_delayed_request(case):
    """A's request is held back: B's request reaches A (collision seen by A), A's
    answer reaches B, which completes its rekey and deletes the old IKE SA; A's
    late request meets an SA being deleted (TEMPORARY_FAILURE, §2.25.2). B's
    new IKE SA is the only one made, so it survives whatever the nonces."""
    nonces, _ = CASES[case]
    pair = colliding_pair(nonces)
    old, before, mark = _start_both(pair)
    held = Holder(is_request("CREATE_CHILD_SA"))
    assert pair.transfer(pair.a, held) == 0
    pair.transfer(pair.b)
    assert pair.a.logged("AWS tunnel detected a (IKE_REKEY) collision")
    pair.transfer(pair.a)              # A's answer -> B: B completes, DELETE of the old SA
    held.release(pair, pair.b)
    pair.run()
    pair.run_timers(60.0)
    b_spis = opened(pair, ike_requests(pair, pair.b, mark)[0]).proposals()[0]["spi"]
    for side in (pair.a, pair.b):
        sa = side.sa
        assert sa.spi_i == b_spis and sa.established
        assert children(side) == before[side.name] and side.child_downs == []
        assert [(d.spi_i, d.spi_r) for d in side.downs if d.reason == "rekeyed"] == [old]
        assert {d.reason for d in side.downs} <= {"rekeyed", "redundant"}


# --- TEMPORARY_FAILURE while a CHILD rekey is in flight (§2.25.2) -------------------------------


def test_ike_rekey_during_a_child_rekey_is_retried_later():
    lo, hi = timers.TEMPORARY_FAILURE_RETRY
    retry = lo + (hi - lo) * 0.5
    pair = make_pair(ua=0.5)
    [up] = pair.a.ups
    held = Holder(is_request("CREATE_CHILD_SA"))
    pair.b.endpoint.rekey("child", pair.now)
    pair.transfer(pair.b, held)                    # B's CHILD rekey is in flight
    mark = len(pair.wire)
    pair.a.endpoint.rekey("ike", pair.now)
    pair.run()
    [answer] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["TEMPORARY_FAILURE"]]
    assert pair.a.endpoint.status(pair.now)["ike"]["rekey_in"] == retry
    held.release(pair, pair.a)
    pair.run()
    assert [u.replaces is not None for u in pair.a.child_ups] == [False, True]
    mark = len(pair.wire)
    pair.run_timers(retry - 0.01)
    assert ike_requests(pair, pair.a, mark) == []
    pair.run_timers(retry)
    assert len(ike_requests(pair, pair.a, mark)) == 1
    [new] = [u for u in pair.a.ups if u.rekeyed]
    assert pair.a.sa.spi_i == new.spi_i != up.spi_i
    assert pair.b.sa.spi_i == new.spi_i
    assert children(pair.a) == {c.spi_in: c.spi_out for c in live_child_ups(pair.a)}


def test_ike_rekey_during_a_child_delete_is_retried_later():
    """§2.25.2: "If a peer receives a request to rekey the IKE SA, and it is
    currently creating, rekeying, or closing a Child SA of that IKE SA, it SHOULD
    reply with TEMPORARY_FAILURE": B's DELETE of the CHILD SA is unanswered when
    A's IKE rekey arrives. A tries again later, and then it goes through."""
    lo, hi = timers.TEMPORARY_FAILURE_RETRY
    retry = lo + (hi - lo) * 0.5
    pair = make_pair(ua=0.5)
    [up] = pair.a.ups
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    held = Holder(lambda d: d.data[18] == 37 and not d.data[19] & 0x20)
    pair.delete_child(pair.b, cb.spi_in)
    pair.transfer(pair.b, held)                    # B's DELETE is in flight
    assert len(held.held) == 1
    mark = len(pair.wire)
    pair.a.endpoint.rekey("ike", pair.now)
    pair.run()
    [answer] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["TEMPORARY_FAILURE"]]
    assert [u.rekeyed for u in pair.b.ups] == [False]
    assert pair.a.endpoint.status(pair.now)["ike"]["rekey_in"] == retry
    held.release(pair, pair.a)
    pair.run()
    assert children(pair.a) == children(pair.b) == {}
    assert [d.spi_in for d in pair.a.child_downs] == [ca.spi_in]
    mark = len(pair.wire)
    pair.run_timers(retry)
    assert len(ike_requests(pair, pair.a, mark)) == 1
    [new] = [u for u in pair.a.ups if u.rekeyed]
    assert pair.a.sa.spi_i == pair.b.sa.spi_i == new.spi_i != up.spi_i
    assert pair.a.downs[-1].reason == pair.b.downs[-1].reason == "rekeyed"


@pytest.mark.parametrize("queued_on", ["initiator", "responder"])
def test_child_rekey_queued_behind_an_ike_rekey_is_not_lost(queued_on):
    """A CHILD rekey waits for the window of the IKE SA (`vgw rekey --ike` then
    `--child` at once, or the responder's own CHILD rekey behind a DPD probe);
    meanwhile the IKE SA is rekeyed and the CHILD SA moves to the new one (§2.18).
    The CHILD rekey must still happen, on the new IKE SA."""
    pair = make_pair()
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    if queued_on == "initiator":
        pair.a.endpoint.rekey("ike", pair.now)
        pair.a.endpoint.rekey("child", pair.now)       # queued behind the IKE rekey
        pair.run()
    else:
        held = Holder(lambda d: d.data[18] == 37 and not d.data[19] & 0x20)
        pair.liveness(pair.b)
        pair.transfer(pair.b, held)                   # B's probe is out, unanswered
        pair.b.endpoint.rekey("child", pair.now)        # queued behind the probe
        pair.a.endpoint.rekey("ike", pair.now)
        pair.run()
        held.release(pair, pair.a)
        pair.run()
    pair.run_timers(10.0)
    [new_ike] = [u for u in pair.a.ups if u.rekeyed]
    [new_a], [new_b] = live_child_ups(pair.a), live_child_ups(pair.b)
    assert (new_a.replaces, new_b.replaces) == (ca.spi_in, cb.spi_in)
    assert new_a.spi_in == new_b.spi_out and new_a.spi_out == new_b.spi_in
    creqs = [d for side in (pair.a, pair.b) for d in sent(pair, side, 0, "CREATE_CHILD_SA", False)
             if opened(pair, d).proposals()[0]["protocol"] != PROTO_IKE]
    assert [d.data[:8] for d in creqs] == [new_ike.spi_i]     # on the new IKE SA
    assert children(pair.a) == {new_a.spi_in: new_a.spi_out}
    assert_esp_flows(new_a, new_b)


@pytest.mark.parametrize("late", ["none", "delete"])
@pytest.mark.parametrize("deleter", ["a", "b"])
def test_child_delete_crossing_an_ike_rekey(deleter, late):
    """One side deletes the CHILD SA while the other rekeys the IKE SA. The
    deleter refuses the IKE rekey while its DELETE is unanswered
    (TEMPORARY_FAILURE, §2.25.2), and the rekeyer tries again later. late
    "none": the DELETE reaches the rekeyer before the refusal does; "delete":
    after it. Either way the CHILD SA ends on both sides and the IKE SA is
    rekeyed in the end."""
    pair = make_pair()
    by, other = (pair.a, pair.b) if deleter == "a" else (pair.b, pair.a)
    [c_by], [c_other] = by.child_ups, other.child_ups
    pair.delete_child(by, c_by.spi_in)
    other.endpoint.rekey("ike", pair.now)
    [delete] = pair.outgoing(by)
    [rekey] = pair.outgoing(other)
    if late == "none":
        pair.deliver(other, delete)
        pair.deliver(by, rekey)
    else:
        pair.deliver(by, rekey)
        [answer] = pair.outgoing(by)
        pair.deliver(other, answer)        # the IKE rekey completes first
        pair.deliver(other, delete)        # then the DELETE, on the old IKE SA
    pair.run()
    pair.run_timers(100.0)
    for side, mine in ((by, c_by), (other, c_other)):
        assert children(side) == {}
        assert [d.spi_in for d in side.child_downs] == [mine.spi_in]
        [new] = [u for u in side.ups if u.rekeyed]
        assert side.sa.spi_i == new.spi_i and side.sa.established


def test_end_of_a_child_rekey_crossing_an_ike_rekey():
    """A finishes a CHILD rekey; its DELETE of the old CHILD SA is held back while
    B rekeys the IKE SA, which A refuses meanwhile (TEMPORARY_FAILURE, §2.25.2)
    and B retries. The old CHILD SA still ends on both sides as rekeyed, the new
    one lives on the new IKE SA."""
    pair = make_pair()
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    held = Holder(lambda d: d.data[18] == 37 and not d.data[19] & 0x20)
    pair.a.endpoint.rekey("child", pair.now)
    pair.run(held)                               # rekeyed; A's DELETE of the old SA held
    assert len(held.held) == 1
    pair.b.endpoint.rekey("ike", pair.now)
    pair.run()
    held.release(pair, pair.b)
    pair.run()
    pair.run_timers(100.0)
    [new_a], [new_b] = live_child_ups(pair.a), live_child_ups(pair.b)
    assert (new_a.replaces, new_b.replaces) == (ca.spi_in, cb.spi_in)
    assert children(pair.a) == {new_a.spi_in: new_b.spi_in}
    assert children(pair.b) == {new_b.spi_in: new_a.spi_in}
    assert [(d.spi_in, d.reason) for d in pair.a.child_downs] == [(ca.spi_in, "rekeyed")]
    assert [(d.spi_in, d.reason) for d in pair.b.child_downs] == [(cb.spi_in, "rekeyed")]
    for side in (pair.a, pair.b):
        assert [u.rekeyed for u in side.ups] == [False, True] and side.sa.established


# --- loss and duplication ------------------------------------------------------------------------




@pytest.mark.parametrize("action", ["drop", "dup"])
@pytest.mark.parametrize("n", [0, 1, 2, 3], ids=["request", "answer", "delete", "delete-answer"])
@pytest.mark.parametrize("who", ["a", "b"])
def test_lossy_ike_rekey_converges(who, n, action):
    pair = make_pair()
    by, peer = sides(pair, who)
    [old] = by.ups
    before = {"a": children(pair.a), "b": children(pair.b)}
    hook = nth(n, action)
    by.endpoint.rekey("ike", pair.now)
    pair.run(hook)
    pair.run_timers(200.0, hook)
    for side in (by, peer):
        ups = [u for u in side.ups if u.rekeyed]
        assert len(ups) == 1
        sa = side.sa
        assert (sa.spi_i, sa.spi_r) == (ups[0].spi_i, ups[0].spi_r) and sa.established
        assert [(d.spi_i, d.reason) for d in side.downs] == [(old.spi_i, "rekeyed")]
        assert children(side) == before[side.name] and side.child_downs == []
    assert by.sa.spi_i == peer.sa.spi_i and by.sa.keys.sk_ei == peer.sa.keys.sk_ei


@pytest.mark.parametrize("who", ["a", "b"])
def test_stale_copies_of_a_finished_ike_rekey_change_nothing(who):
    pair = make_pair()
    by, _ = sides(pair, who)
    mark = len(pair.wire)
    by.endpoint.rekey("ike", pair.now)
    pair.run()
    before = {s.name: ((s.sa.spi_i, s.sa.spi_r), children(s), len(s.ups), len(s.downs))
              for s in (pair.a, pair.b)}
    for name, d in list(pair.wire[mark:]):
        pair.deliver(pair.b if name == "a" else pair.a, d)
    pair.run()
    after = {s.name: ((s.sa.spi_i, s.sa.spi_r), children(s), len(s.ups), len(s.downs))
             for s in (pair.a, pair.b)}
    assert after == before
