"""Simultaneous CHILD SA rekeys and rekey/delete collisions (RFC 7296 §2.8.1,
§2.25.1), each winner forced through the nonces.

§2.8.1: "the SA created with the lowest of the four nonces used in the two
exchanges SHOULD be closed by the endpoint that created it", lowest being an
octet-by-octet comparison; "the node that initiated the surviving rekeyed SA
should delete the replaced SA". Each side draws its nonces from a queue: the one
of its own request first, then the one of its answer to the peer's request.

Nonce order in the tables: (Ni of A's request, Ni of B's request, Nr of B's
answer to A, Nr of A's answer to B). A's exchange holds Ni_A and Nr_B; when the
lowest of the four is one of those, A's new SA is the redundant one and B's
survives. AWS's log lines: docs/aws.md §3.3.
"""

import struct

import pytest

from ikecore import timers
from .ikepair import NOTIFIES, Holder, is_answer, is_request, nonce
from .lifecycle import (
    PROTO_ESP, assert_esp_flows, children, make_pair, opened, rng, sent, spi_of,
)

LOW, HIGH = 0x00, 0xFF

# which of the four nonces is the lowest -> whose SA survives
CASES = {
    "ni-a-lowest": ((LOW, HIGH, HIGH, HIGH), "b"),
    "ni-b-lowest": ((HIGH, LOW, HIGH, HIGH), "a"),
    "nr-b-lowest": ((HIGH, HIGH, LOW, HIGH), "b"),
    "nr-a-lowest": ((HIGH, HIGH, HIGH, LOW), "a"),
}

COLLISION = "AWS tunnel detected a (CHILD_REKEY) collision"
REDUNDANT = "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision"


def colliding_pair(nonces):
    ni_a, ni_b, nr_b, nr_a = nonces
    pair = make_pair()
    rng(pair.a).nonces[:] = [nonce(ni_a), nonce(nr_a)]
    rng(pair.b).nonces[:] = [nonce(ni_b), nonce(nr_b)]
    return pair


def proposal_spi(pair, d):
    return spi_of(opened(pair, d).proposals()[0]["spi"])


def check_outcome(pair, winner_name, mark, old):
    """Exactly one new SA on both sides, the one the winner's exchange made; the
    loser deleted its redundant SA, the winner the old one."""
    winner, loser = (pair.a, pair.b) if winner_name == "a" else (pair.b, pair.a)
    [w_req] = [d for d in sent(pair, winner, mark, "CREATE_CHILD_SA", response=False)]
    [l_req] = [d for d in sent(pair, loser, mark, "CREATE_CHILD_SA", response=False)]
    [l_ans] = sent(pair, loser, mark, "CREATE_CHILD_SA", response=True)   # to the winner
    [w_ans] = sent(pair, winner, mark, "CREATE_CHILD_SA", response=True)  # to the loser
    survivor = (proposal_spi(pair, w_req), proposal_spi(pair, l_ans))  # winner in, loser in
    redundant = (proposal_spi(pair, l_req), proposal_spi(pair, w_ans))  # loser in, winner in
    assert children(winner) == {survivor[0]: survivor[1]}
    assert children(loser) == {survivor[1]: survivor[0]}

    # who sent which DELETE: the loser its redundant SA, the winner the old one
    def deleted_by(side):
        return [opened(pair, d).deletes() for d in sent(pair, side, mark, "INFORMATIONAL", False)]
    assert [(PROTO_ESP, [struct.pack("!I", redundant[0])])] in deleted_by(loser)
    assert [(PROTO_ESP, [struct.pack("!I", old[winner.name])])] in deleted_by(winner)
    assert [(PROTO_ESP, [struct.pack("!I", old[loser.name])])] not in deleted_by(loser)
    assert loser.logged(REDUNDANT) and not winner.logged(REDUNDANT)

    # events: the old SA went down as rekeyed on both sides; the survivor is up, once
    for side, mine in ((winner, survivor[0]), (loser, survivor[1])):
        assert [d.reason for d in side.child_downs if d.spi_in == old[side.name]] == ["rekeyed"]
        ups = [u for u in side.child_ups if u.spi_in == mine]
        assert len(ups) == 1 and ups[0].replaces == old[side.name]
        assert not [d for d in side.child_downs if d.spi_in == mine]
        assert side.downs == [] and side.sa.pending is None and not side.sa.queue
        assert side.endpoint.status(pair.now)["phase2_state"] == "established"
    [w_up] = [u for u in winner.child_ups if u.spi_in == survivor[0]]
    [l_up] = [u for u in loser.child_ups if u.spi_in == survivor[1]]
    assert w_up.outbound_ready is True     # the winner made it: sends on it at once
    assert_esp_flows(w_up, l_up)
    return survivor, redundant


@pytest.mark.parametrize("case", CASES)
def test_simultaneous_child_rekeys(case):
    nonces, winner = CASES[case]
    pair = colliding_pair(nonces)
    old = {"a": pair.a.child_ups[0].spi_in, "b": pair.b.child_ups[0].spi_in}
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.b.endpoint.rekey("child", pair.now)
    [req_a] = pair.outgoing(pair.a)
    [req_b] = pair.outgoing(pair.b)
    assert opened(pair, req_a).nonce()[0] == nonces[0]
    assert opened(pair, req_b).nonce()[0] == nonces[1]
    pair.deliver(pair.b, req_a)       # B is rekeying too: a collision
    pair.deliver(pair.a, req_b)
    assert pair.a.logged(COLLISION) and pair.b.logged(COLLISION)
    [ans_b] = pair.outgoing(pair.b)
    [ans_a] = pair.outgoing(pair.a)
    assert opened(pair, ans_b).nonce()[0] == nonces[2]
    assert opened(pair, ans_a).nonce()[0] == nonces[3]
    pair.deliver(pair.a, ans_b)
    pair.deliver(pair.b, ans_a)
    pair.run()
    check_outcome(pair, winner, mark, old)


@pytest.mark.parametrize("case", CASES)
def test_child_collision_with_a_delayed_answer(case):
    """Both requests cross, but B's answer to A is held back: B settles the
    collision first and sends its DELETE (of the redundant or of the old SA)
    before A knows how its own exchange ended."""
    nonces, winner = CASES[case]
    pair = colliding_pair(nonces)
    old = {"a": pair.a.child_ups[0].spi_in, "b": pair.b.child_ups[0].spi_in}
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.b.endpoint.rekey("child", pair.now)
    [req_a] = pair.outgoing(pair.a)
    [req_b] = pair.outgoing(pair.b)
    pair.deliver(pair.b, req_a)
    pair.deliver(pair.a, req_b)
    held = Holder(is_answer("CREATE_CHILD_SA"))
    assert pair.transfer(pair.b, held) == 0       # B's answer to A: held back
    pair.run()                                     # A's answer, B's DELETE and its answer
    held.release(pair, pair.a)
    pair.run()
    check_outcome(pair, winner, mark, old)


@pytest.mark.parametrize("case", CASES)
def test_child_collision_with_a_delayed_request(case):
    """A's request is held back: B's request reaches A (A sees the collision), A's
    answer reaches B, which completes its rekey and deletes the old SA; A's late
    request then meets an SA being deleted (TEMPORARY_FAILURE, §2.25.1). Only
    B's exchange made an SA, so it survives whatever the nonces."""
    nonces, _ = CASES[case]
    pair = colliding_pair(nonces)
    old = {"a": pair.a.child_ups[0].spi_in, "b": pair.b.child_ups[0].spi_in}
    mark = len(pair.wire)
    held = Holder(is_request("CREATE_CHILD_SA"))
    pair.a.endpoint.rekey("child", pair.now)
    pair.b.endpoint.rekey("child", pair.now)
    assert pair.transfer(pair.a, held) == 0
    pair.transfer(pair.b)                          # B's request -> A: collision seen by A
    assert pair.a.logged(COLLISION)
    pair.transfer(pair.a)                          # A's answer -> B: B completes, DELETE old
    [b_delete] = pair.outgoing(pair.b)
    held.release(pair, pair.b)                     # A's late request meets a deleting SA
    [temp_fail] = pair.outgoing(pair.b)
    assert opened(pair, temp_fail).notify_types() == [NOTIFIES["TEMPORARY_FAILURE"]]
    pair.deliver(pair.a, b_delete)
    pair.deliver(pair.a, temp_fail)
    pair.run()

    [b_req] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=False)
    [a_ans] = sent(pair, pair.a, mark, "CREATE_CHILD_SA", response=True)
    survivor_b, survivor_a = proposal_spi(pair, b_req), proposal_spi(pair, a_ans)
    assert children(pair.a) == {survivor_a: survivor_b}
    assert children(pair.b) == {survivor_b: survivor_a}
    for side, mine in ((pair.a, survivor_a), (pair.b, survivor_b)):
        assert [d.reason for d in side.child_downs if d.spi_in == old[side.name]] == ["rekeyed"]
        assert len([u for u in side.child_ups if u.spi_in == mine]) == 1
        assert side.downs == [] and side.sa.pending is None and not side.sa.queue
    # A does not try again: its rekey lost to B's, which went through
    mark = len(pair.wire)
    pair.run_timers(60.0)
    assert sent(pair, pair.a, mark, "CREATE_CHILD_SA") == []


@pytest.mark.parametrize("first", ["delete-reaches-a-first", "rekey-reaches-b-first"])
def test_peer_deletes_the_sa_vgw_is_rekeying(first):
    """A rekeys the SA while B deletes it (§2.25.1): B answers the rekey with
    TEMPORARY_FAILURE, A answers the DELETE as usual with its own half and logs
    AWS's line; nothing is left and nobody retries."""
    pair = make_pair()
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.delete_child(pair.b, cb.spi_in)
    [rekey] = pair.outgoing(pair.a)
    [delete] = pair.outgoing(pair.b)
    if first == "delete-reaches-a-first":
        pair.deliver(pair.a, delete)
        pair.deliver(pair.b, rekey)
    else:
        pair.deliver(pair.b, rekey)
        pair.deliver(pair.a, delete)
    pair.run()
    assert pair.a.logged("AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE")
    assert pair.a.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {cb.spi_in:08x}")
    [answer] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["TEMPORARY_FAILURE"]]
    [a_del_answer] = sent(pair, pair.a, mark, "INFORMATIONAL", response=True)
    assert opened(pair, a_del_answer).deletes() == [(PROTO_ESP, [struct.pack("!I", ca.spi_in)])]
    assert children(pair.a) == children(pair.b) == {}
    assert [d.spi_in for d in pair.a.child_downs] == [ca.spi_in]
    assert [d.spi_in for d in pair.b.child_downs] == [cb.spi_in]
    assert len(pair.a.child_ups) == len(pair.b.child_ups) == 1
    mark = len(pair.wire)
    pair.run_timers(60.0)
    assert sent(pair, pair.a, mark, "CREATE_CHILD_SA") == []
    assert pair.a.downs == pair.b.downs == []


# --- the winner does not delete the old SA ---------------------------------------------------


def _deletes_of(pair, spi):
    """A predicate for Holder: a DELETE request naming ESP SPI `spi`."""
    def match(d):
        return (d.data[18] == 37 and not d.data[19] & 0x20
                and (PROTO_ESP, [struct.pack("!I", spi)]) in opened(pair, d).deletes())
    return match


def _check_vgw_deletes_the_old_sa(pair, old_a, settled, held):
    """A deletes its old SA itself REKEYED_DELETE_DELAY after it learnt it was
    replaced, as after a rekey it answered: the peer's DELETE never came, and
    until the old SA goes, vgw sends on it."""
    mark = len(pair.wire)
    pair.run_timers(settled + timers.REKEYED_DELETE_DELAY - 0.01, held)
    assert old_a in children(pair.a)
    pair.run_timers(settled + timers.REKEYED_DELETE_DELAY, held)
    dels = [opened(pair, d).deletes() for d in sent(pair, pair.a, mark, "INFORMATIONAL", False)]
    assert [(PROTO_ESP, [struct.pack("!I", old_a)])] in dels
    assert old_a not in children(pair.a)
    assert [d.reason for d in pair.a.child_downs if d.spi_in == old_a] == ["rekeyed"]
    assert children(pair.a) == {v: k for k, v in children(pair.b).items()}
    assert pair.a.downs == pair.b.downs == []


def test_lost_collision_and_the_winner_never_deletes_the_old_sa():
    """A loses a CHILD rekey collision (§2.8.1: the winner deletes the old SA),
    but the winner's DELETE never arrives."""
    nonces, winner = CASES["ni-a-lowest"]
    assert winner == "b"
    pair = colliding_pair(nonces)
    old_a, old_b = pair.a.child_ups[0].spi_in, pair.b.child_ups[0].spi_in
    held = Holder(_deletes_of(pair, old_b), limit=1000)   # B's DELETE, every copy
    pair.a.endpoint.rekey("child", pair.now)
    pair.b.endpoint.rekey("child", pair.now)
    pair.run(held)
    assert pair.a.logged(REDUNDANT) and held.held
    assert old_a in children(pair.a)
    _check_vgw_deletes_the_old_sa(pair, old_a, pair.now, held)


def test_refused_rekey_after_the_peers_went_through_and_no_delete_comes():
    """A's rekey request is late and meets an SA B is deleting (TEMPORARY_FAILURE,
    §2.25.1); B's rekey of it went through, but B's DELETE never arrives."""
    pair = colliding_pair(CASES["ni-a-lowest"][0])
    old_a, old_b = pair.a.child_ups[0].spi_in, pair.b.child_ups[0].spi_in
    held_rekey = Holder(is_request("CREATE_CHILD_SA"))
    held_delete = Holder(_deletes_of(pair, old_b), limit=1000)
    pair.a.endpoint.rekey("child", pair.now)
    pair.b.endpoint.rekey("child", pair.now)
    assert pair.transfer(pair.a, held_rekey) == 0
    pair.transfer(pair.b)                          # B's request -> A: collision seen by A
    pair.transfer(pair.a)                          # A's answer -> B: B completes, DELETE held
    pair.transfer(pair.b, held_delete)
    assert held_delete.held
    held_rekey.release(pair, pair.b)               # A's late request: TEMPORARY_FAILURE
    pair.run(held_delete)
    assert old_a in children(pair.a)
    _check_vgw_deletes_the_old_sa(pair, old_a, pair.now, held_delete)
