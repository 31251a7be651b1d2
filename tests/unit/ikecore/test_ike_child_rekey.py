"""CHILD SA rekeying (RFC 7296 §1.3.3, §2.8) between two cores, synthetic clock.

- When: AWS rekeys at lifetime - margin x (1 + fuzz x random) (docs/aws.md §1.6);
  the random value is fixed through the policy's random source, so each case
  below has one exact instant, worked out by hand. At the lifetime itself an SA
  that was not replaced is deleted (hard expiry).
- How: new SPIs, PFS with a KE of a phase 2 group (docs/aws.md §1.4), KEYMAT =
  prf+(SK_d, g^ir | Ni | Nr) (§2.17) recomputed here from the wire and a known
  DH private value, the old SA deleted by the initiator (make-before-break).
- Refusals: INVALID_KE_PAYLOAD and the retry (§1.3), NO_PROPOSAL_CHOSEN,
  TEMPORARY_FAILURE (§2.25), CHILD_SA_NOT_FOUND, NO_ADDITIONAL_SAS (§1.3,
  docs/aws.md §1.8: one SA pair per tunnel).
- Loss and duplication of each message of a rekey.

Collisions (§2.8.1) are in test_ike_child_collisions.py.
"""

import struct
from dataclasses import replace

import pytest

from ikecore.constants import NotifyType, ProtocolId
from ikecore.crypto import get_dh_group
from ikecore.events import Datagram
from ikecore import sa_operations, timers
from ikecore.state import ChildState
from ikecore.exchanges import create_child_sa
from ikecore.payloads import (
    KePayload, NoncePayload, NotifyPayload, SaPayload, TsiPayload, TsrPayload,
)
from ikecore.proposals import esp_offer
from .ikepair import (
    nth,
    NOTIFIES, DhRecorder, child_keys, ecp_shared_secret, seal_payloads, snapshot,
)
from .lifecycle import (
    PROTO_ESP, T_DH, assert_esp_flows, children, jump, live_child_ups, make_pair, opened,
    sent, spi_of,
)

LIFETIME = 3600   # phase 2 default (docs/aws.md §0)


@pytest.fixture
def dh(monkeypatch):
    """Known DH private values for CHILD rekeys (both sides share the module)."""
    recorder = DhRecorder(get_dh_group)
    monkeypatch.setattr(create_child_sa, "get_dh_group", recorder)
    monkeypatch.setattr(sa_operations, "get_dh_group", recorder)   # the responder
    return recorder


def sides(pair, who):
    return (pair.a, pair.b) if who == "a" else (pair.b, pair.a)


# --- when: the rekey window and the hard expiry --------------------------------------------

# (margin, fuzz %, uniform value, rekey instant worked out by hand)
WINDOW = [
    (270, 100, 0.0, 3330.0),    # 3600 - 270 x (1 + 0)
    (270, 100, 0.5, 3195.0),    # 3600 - 270 x 1.5
    (270, 100, 0.75, 3127.5),   # 3600 - 270 x 1.75
    (270, 0, 0.75, 3330.0),     # fuzz 0: exactly lifetime - margin, whatever the draw
    (540, 50, 0.5, 2925.0),     # 3600 - 540 x (1 + 0.5 x 0.5)
    (60, 100, 0.25, 3525.0),    # 3600 - 60 x 1.25
]


@pytest.mark.parametrize("margin,fuzz,u,at", WINDOW)
def test_child_rekey_fires_at_lifetime_minus_margin_fuzzed(margin, fuzz, u, at):
    assert at == LIFETIME - margin * (1 + fuzz / 100 * u)
    # B rekeys late (3600 - 60 = 3540) so that A's timer is the one seen
    pair = make_pair(a=dict(rekey_margin=margin, rekey_fuzz=fuzz), ua=u,
                     b=dict(rekey_margin=60, rekey_fuzz=0))
    [old] = pair.a.child_ups
    [child] = pair.a.endpoint.status(0.0)["children"]
    assert (child["rekey_in"], child["expires_in"]) == (at, LIFETIME)

    jump(pair, at - 0.01)
    mark = len(pair.wire)
    assert sent(pair, pair.a, 0, "CREATE_CHILD_SA") == []
    jump(pair, at)
    [req] = sent(pair, pair.a, mark, "CREATE_CHILD_SA", response=False)
    msg = opened(pair, req)
    [(ntype, proto, spi, _)] = msg.notifies()
    assert (ntype, proto, spi_of(spi)) == (NOTIFIES["REKEY_SA"], PROTO_ESP, old.spi_in)
    # the rekey went through at `at`; the new SA runs on the same schedule from there
    [new] = live_child_ups(pair.a)
    assert new.replaces == old.spi_in
    [child] = pair.a.endpoint.status(at)["children"]
    assert child["spi_in"] == f"{new.spi_in:08x}"
    assert (child["rekey_in"], child["expires_in"]) == (at, LIFETIME)


def test_child_rekey_margin_counts_from_the_install_time():
    """The deadline is relative to when the SA was installed, not to t=0."""
    pair = make_pair(a=dict(rekey_margin=270, rekey_fuzz=100), ua=0.5, up=False,
                     b=dict(rekey_margin=60, rekey_fuzz=0))
    pair.now = 1000.0
    pair.handshake()
    [c] = pair.a.sa.children.values()
    assert c.timers[timers.ChildTimer.REKEY] == 1000.0 + 3195.0
    assert c.timers[timers.ChildTimer.EXPIRE] == 1000.0 + LIFETIME


def test_child_hard_expiry_deletes_when_the_peer_refuses_the_rekey():
    """B has no PFS group in common with A: the rekey is refused with
    NO_PROPOSAL_CHOSEN, the SA stays, and at its lifetime A deletes it."""
    pair = make_pair(a=dict(rekey_margin=270, rekey_fuzz=0),
                     b=dict(phase2_dh_groups=(20,), phase2_lifetime=7200))
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    jump(pair, 3330.0)
    [answer] = sent(pair, pair.b, 0, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["NO_PROPOSAL_CHOSEN"]]
    assert pair.a.logged(f"AWS tunnel rekey of Phase 2 SA {ca.spi_in:08x} refused by cgw")
    assert children(pair.a) == {ca.spi_in: ca.spi_out} and pair.a.child_downs == []
    assert children(pair.b) == {cb.spi_in: cb.spi_out}

    jump(pair, LIFETIME - 0.01)
    assert pair.a.child_downs == [] and pair.b.child_downs == []
    mark = len(pair.wire)
    jump(pair, LIFETIME)
    deletes = [opened(pair, d).deletes() for d in sent(pair, pair.a, mark, "INFORMATIONAL", False)]
    assert [(PROTO_ESP, [struct.pack("!I", ca.spi_in)])] in deletes   # §3.11: our inbound SPI
    assert [(d.spi_in, d.reason) for d in pair.a.child_downs] == [(ca.spi_in, "expired")]
    assert [d.spi_in for d in pair.b.child_downs] == [cb.spi_in]
    assert pair.b.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {ca.spi_in:08x}")
    assert children(pair.a) == children(pair.b) == {}
    assert pair.a.downs == pair.b.downs == []   # the IKE SA stays


def test_a_refused_child_rekey_is_tried_again_before_the_lifetime():
    """A refused rekey is retried 30-60 s later (REFUSED_RETRY; with u=0.5: 45 s)
    until the hard expiry, so a peer that was only briefly unable to agree (e.g.
    its config being reloaded) does not cost the tunnel its SA."""
    pair = make_pair(a=dict(rekey_margin=270, rekey_fuzz=0),
                     b=dict(phase2_dh_groups=(20,), phase2_lifetime=7200), ua=0.5)
    jump(pair, 3330.0)
    assert len(sent(pair, pair.a, 0, "CREATE_CHILD_SA", False)) == 1
    jump(pair, 3330.0 + 45.0 - 0.01)
    assert len(sent(pair, pair.a, 0, "CREATE_CHILD_SA", False)) == 1
    jump(pair, 3330.0 + 45.0)
    assert len(sent(pair, pair.a, 0, "CREATE_CHILD_SA", False)) == 2
    # B agrees now (its policy was fixed): the next retry goes through
    fixed = replace(pair.b.endpoint.settings, phase2_dh_groups=(19, 20))
    pair.b.endpoint.settings = pair.b.sa.settings = fixed
    jump(pair, 3330.0 + 90.0)
    assert [u.replaces for u in pair.a.child_ups][-1] is not None
    assert pair.a.child_downs and pair.a.child_downs[-1].reason == "rekeyed"


def test_child_hard_expiry_when_the_peer_never_answers_the_rekey():
    """The peer swallows the rekey (lifetime 900, margin 60, fuzz 0: rekey at 840,
    retransmissions at 844, 851.2, ...): at 900 the SA has reached its lifetime and
    must be gone from the data path (RFC 4301 §4.4.2.1: at the hard lifetime the
    SA is deleted), whatever the outstanding request."""
    pair = make_pair(a=dict(phase2_lifetime=900, rekey_margin=60, rekey_fuzz=0),
                     b=dict(phase2_lifetime=1800))
    [ca] = pair.a.child_ups

    def swallow(out):
        return [d for d in out if not (d.local[0] == pair.a.ip and d.data[18] == 36)]
    pair.run_timers(899.99, hook=swallow)
    assert pair.a.child_downs == []
    assert pair.a.sa.pending is not None          # the rekey, unanswered
    pair.run_timers(900.0, hook=swallow)
    assert [(d.spi_in, d.reason) for d in pair.a.child_downs] == [(ca.spi_in, "expired")]


# --- how: either side, PFS, keys, make-before-break ---------------------------------------


@pytest.mark.parametrize("who", ["a", "b"])
def test_child_rekey_by_either_side(who, dh):
    pair = make_pair()
    by, peer = sides(pair, who)
    [old_by], [old_peer] = by.child_ups, peer.child_ups
    [up] = by.ups
    first_mid = 2 if who == "a" else 0    # A used 0 and 1 for IKE_SA_INIT and IKE_AUTH
    mark = len(pair.wire)

    assert by.endpoint.rekey("child", pair.now) is None
    status = by.endpoint.status(pair.now)
    assert status["phase2_state"] == "rekeying" and status["children"][0]["state"] == "REKEYING"
    assert peer.endpoint.status(pair.now)["phase2_state"] == "established"
    pair.run()

    # the request: REKEY_SA names the old SA, a new SPI, KE of the PFS group, Ni
    [req] = sent(pair, by, mark, "CREATE_CHILD_SA", response=False)
    req_msg = opened(pair, req)
    assert req_msg.message_id == first_mid
    [(ntype, proto, spi, _)] = req_msg.notifies()
    assert (ntype, proto, spi_of(spi)) == (NOTIFIES["REKEY_SA"], PROTO_ESP, old_by.spi_in)
    proposals = req_msg.proposals()
    assert {p["protocol"] for p in proposals} == {PROTO_ESP}
    assert {(t[0], t[1]) for p in proposals for t in p["transforms"] if t[0] == T_DH} == {(T_DH, 19)}
    new_spi_by = spi_of(proposals[0]["spi"])
    ke_group, ke_i = req_msg.ke()
    assert ke_group == 19 and len(ke_i) == 64     # RFC 5903 §7: x | y, 32 bytes each
    ni = req_msg.nonce()
    # the answer: one proposal, the responder's new SPI, KE, Nr
    [ans] = sent(pair, peer, mark, "CREATE_CHILD_SA", response=True)
    ans_msg = opened(pair, ans)
    assert ans_msg.message_id == first_mid and ans_msg.notify_types() == []
    [chosen] = ans_msg.proposals()
    assert (T_DH, 19, None) in chosen["transforms"]
    new_spi_peer = spi_of(chosen["spi"])
    ke_group_r, ke_r = ans_msg.ke()
    assert ke_group_r == 19
    nr = ans_msg.nonce()

    # both sides: one new SA, replacing the old one; only the initiator sends on it at once
    [new_by] = [u for u in by.child_ups if u.replaces is not None]
    [new_peer] = [u for u in peer.child_ups if u.replaces is not None]
    assert (new_by.spi_in, new_by.spi_out) == (new_spi_by, new_spi_peer)
    assert (new_peer.spi_in, new_peer.spi_out) == (new_spi_peer, new_spi_by)
    assert {new_by.spi_in, new_by.spi_out}.isdisjoint({old_by.spi_in, old_by.spi_out})
    assert new_by.replaces == old_by.spi_in and new_peer.replaces == old_peer.spi_in
    assert new_by.outbound_ready is True and new_peer.outbound_ready is False
    assert new_by.dh_group == new_peer.dh_group == 19

    # KEYMAT = prf+(SK_d, g^ir | Ni | Nr), initiator->responder keys first (§2.17)
    group, x = dh.private_for(ke_i)
    shared = ecp_shared_secret(group, x, ke_r)
    assert shared == ecp_shared_secret(*dh.private_for(ke_r), ke_i)
    k = child_keys(up.prf, by.sa.sk_d, ni, nr, new_by.encryption, new_by.integrity, shared)
    assert (new_by.encr_key_out, new_by.integ_key_out) == (k["encr_i"], k["integ_i"])
    assert (new_by.encr_key_in, new_by.integ_key_in) == (k["encr_r"], k["integ_r"])
    assert (new_peer.encr_key_in, new_peer.encr_key_out) == (k["encr_i"], k["encr_r"])
    assert new_by.encr_key_out not in (old_by.encr_key_out, old_by.encr_key_in)
    assert_esp_flows(new_by, new_peer)

    # the initiator deletes the old SA (§2.8); both report it rekeyed
    [dreq] = sent(pair, by, mark, "INFORMATIONAL", response=False)
    assert opened(pair, dreq).deletes() == [(PROTO_ESP, [struct.pack("!I", old_by.spi_in)])]
    [dans] = sent(pair, peer, mark, "INFORMATIONAL", response=True)
    assert opened(pair, dans).deletes() == [(PROTO_ESP, [struct.pack("!I", old_peer.spi_in)])]
    assert [(d.spi_in, d.reason) for d in by.child_downs] == [(old_by.spi_in, "rekeyed")]
    assert [(d.spi_in, d.reason) for d in peer.child_downs] == [(old_peer.spi_in, "rekeyed")]
    assert children(by) == {new_spi_by: new_spi_peer}
    assert children(peer) == {new_spi_peer: new_spi_by}

    # AWS's log lines (docs/aws.md §3.3)
    assert by.logged(f"AWS tunnel is rekeying Phase 2 SA with SPI: {old_by.spi_in:08x}")
    assert by.logged(f"AWS tunnel is sending request (id={first_mid}) for CREATE_CHILD_SA")
    assert by.logged(f"AWS tunnel processed response (id={first_mid}) for CREATE_CHILD_SA")
    assert peer.logged(f"AWS tunnel processed request (id={first_mid}) for CREATE_CHILD_SA")
    assert peer.logged(f"AWS tunnel is sending response (id={first_mid}) for CREATE_CHILD_SA")
    assert peer.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {old_by.spi_in:08x}")
    for side in (by, peer):
        assert side.endpoint.status(pair.now)["phase2_state"] == "established"
        assert side.downs == [] and side.sa.pending is None


@pytest.mark.parametrize("group,ke_len", [(14, 256), (19, 64), (20, 96)])
def test_pfs_group_and_ke_size(group, ke_len):
    """The rekey carries a KE of the first phase 2 group (RFC 3526 §3: 2048-bit MODP
    is 256 bytes; RFC 5903 §7: ECP x | y); the new SA reports the group."""
    pair = make_pair(a=dict(phase2_dh_groups=(group, 21)), b=dict(phase2_dh_groups=(21, group)))
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.run()
    [req] = sent(pair, pair.a, mark, "CREATE_CHILD_SA", response=False)
    ke_group, data = opened(pair, req).ke()
    assert (ke_group, len(data)) == (group, ke_len)
    [ua] = live_child_ups(pair.a)
    [ub] = live_child_ups(pair.b)
    assert ua.dh_group == ub.dh_group == group
    assert pair.a.endpoint.status(pair.now)["children"][0]["dh_group"] == group


@pytest.mark.parametrize("who", ["a", "b"])
def test_invalid_ke_then_retry_with_the_group_the_responder_names(who):
    """The initiator guesses its first phase 2 group (19); the responder allows only
    20 and answers INVALID_KE_PAYLOAD naming it (§1.3); the initiator starts a new
    CREATE_CHILD_SA (the next message ID) with KE 20, and the rekey completes."""
    guesser, strict = dict(phase2_dh_groups=(19, 20)), dict(phase2_dh_groups=(20,))
    pair = make_pair(a=guesser if who == "a" else strict, b=strict if who == "a" else guesser)
    by, peer = sides(pair, who)
    [old_by] = by.child_ups
    mark = len(pair.wire)
    by.endpoint.rekey("child", pair.now)
    pair.run()
    first, second = sent(pair, by, mark, "CREATE_CHILD_SA", response=False)
    refusal, accept = sent(pair, peer, mark, "CREATE_CHILD_SA", response=True)
    m1, m2 = opened(pair, first), opened(pair, second)
    assert m1.ke()[0] == 19 and m2.ke()[0] == 20
    assert m2.message_id == m1.message_id + 1
    [(ntype, _, _, data)] = opened(pair, refusal).notifies()
    assert (ntype, data) == (NOTIFIES["INVALID_KE_PAYLOAD"], struct.pack("!H", 20))
    # the retry puts the named group first among the DH transforms it offers
    dh_ids = [t[1] for t in m2.proposals()[0]["transforms"] if t[0] == T_DH]
    assert dh_ids[0] == 20
    assert opened(pair, accept).notify_types() == []
    [new_by], [new_peer] = live_child_ups(by), live_child_ups(peer)
    assert new_by.dh_group == new_peer.dh_group == 20
    assert new_by.replaces == old_by.spi_in and new_by.spi_in == new_peer.spi_out
    assert [d.reason for d in by.child_downs] == ["rekeyed"]
    assert_esp_flows(new_by, new_peer)


def test_rekey_with_no_common_pfs_group_is_refused_and_the_old_sa_stays():
    pair = make_pair(a=dict(phase2_dh_groups=(21,)), b=dict(phase2_dh_groups=(19, 20)))
    [ca], [_cb] = pair.a.child_ups, pair.b.child_ups
    before = snapshot(pair.b.sa)
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.run()
    [answer] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["NO_PROPOSAL_CHOSEN"]]
    assert pair.b.logged("No Proposal Match Found by AWS")
    after = snapshot(pair.b.sa)
    assert after["children"] == before["children"] and after["state"] == before["state"]
    assert children(pair.a) == {ca.spi_in: ca.spi_out}
    assert pair.a.sa.children[ca.spi_in].state == ChildState.INSTALLED
    assert pair.a.child_downs == pair.b.child_downs == [] and len(pair.a.child_ups) == 1
    assert pair.a.downs == pair.b.downs == []


def _forge_child_request(pair, payloads):
    """A CREATE_CHILD_SA request A's IKE SA could have sent, with these payloads;
    B's answer, opened. A's message counter moves on as if A had sent it."""
    a = pair.a.sa
    pair.deliver(pair.b, Datagram(seal_payloads(a, 36, a.next_request_id, payloads), a.local, a.remote))
    a.next_request_id += 1
    [answer] = pair.outgoing(pair.b)
    return opened(pair, answer)


def _rekey_payloads(pair, spi_in, dh_groups, ke_group=None, rekey=True):
    a = pair.a.sa
    [c] = a.children.values()
    out = []
    if rekey:
        out.append(NotifyPayload(NotifyType.REKEY_SA, protocol=ProtocolId.ESP,
                                 spi=struct.pack("!I", spi_in)))
    out += [SaPayload(esp_offer(("AES128",), ("SHA2-256",), struct.pack("!I", 0x1234567),
                                dh_groups)),
            NoncePayload(bytes(range(32)))]
    if ke_group is not None:
        out.append(KePayload(ke_group, get_dh_group(ke_group).generate().public_bytes))
    return out + [TsiPayload(list(c.local_ts)), TsrPayload(list(c.remote_ts))]


@pytest.mark.parametrize("dh_groups,ke_group,refusal", [
    ((19,), None, ("INVALID_KE_PAYLOAD", struct.pack("!H", 19))),  # PFS offered, no KE
    ((), None, ("NO_PROPOSAL_CHOSEN", b"")),                        # no PFS at all
    ((21,), 21, ("NO_PROPOSAL_CHOSEN", b"")),                       # only a group B lacks
    ((21, 19), 21, ("INVALID_KE_PAYLOAD", struct.pack("!H", 19))),  # KE of the wrong group
], ids=["pfs-without-ke", "no-pfs", "unconfigured-group", "wrong-ke"])
def test_rekey_request_without_acceptable_ke_is_refused(dh_groups, ke_group, refusal):
    """AWS requires PFS on a rekey with a configured phase 2 group (docs/aws.md
    §1.4); the answer is the refusal and B's SA is untouched."""
    pair = make_pair()
    [ca] = pair.a.child_ups
    before = snapshot(pair.b.sa)
    msg = _forge_child_request(pair, _rekey_payloads(pair, ca.spi_in, dh_groups, ke_group))
    [(ntype, _, _, data)] = msg.notifies()
    assert (ntype, data) == (NOTIFIES[refusal[0]], refusal[1])
    assert [t for t, _ in msg.payloads] == [41]      # the notify alone, no SA/KE/Nonce
    after = snapshot(pair.b.sa)
    assert after["children"] == before["children"]
    assert pair.b.child_ups[1:] == [] and pair.b.child_downs == []
    # the old SA is still the one a real rekey replaces afterwards
    pair.a.endpoint.rekey("child", pair.now)
    pair.run()
    [new_a] = live_child_ups(pair.a)
    assert new_a.replaces == ca.spi_in


def test_rekey_of_an_unknown_sa_is_answered_child_sa_not_found():
    pair = make_pair()
    [cb] = pair.b.child_ups
    before = snapshot(pair.b.sa)
    msg = _forge_child_request(pair, _rekey_payloads(pair, 0x0BADC0DE, (19,), 19))
    assert msg.notify_types() == [NOTIFIES["CHILD_SA_NOT_FOUND"]]
    assert snapshot(pair.b.sa)["children"] == before["children"]
    assert children(pair.b) == {cb.spi_in: cb.spi_out}


def test_initiator_drops_the_sa_the_peer_does_not_know():
    """The responder lost the SA (e.g. it expired there): CHILD_SA_NOT_FOUND makes
    the initiator remove its half; the IKE SA lives on."""
    pair = make_pair()
    [ca] = pair.a.child_ups
    pair.b.sa.children.clear()
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.run()
    [answer] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["CHILD_SA_NOT_FOUND"]]
    assert [d.spi_in for d in pair.a.child_downs] == [ca.spi_in]
    assert pair.a.child_downs[0].reason != "rekeyed"
    assert children(pair.a) == {} and pair.a.downs == []
    assert pair.a.sa.state.value == "ESTABLISHED"


def test_additional_child_sa_is_refused_and_the_existing_one_untouched():
    """AWS: one SA pair per tunnel (docs/aws.md §1.8); RFC 7296 §1.3:
    NO_ADDITIONAL_SAS."""
    pair = make_pair()
    [_ca], [cb] = pair.a.child_ups, pair.b.child_ups
    before = snapshot(pair.b.sa)
    msg = _forge_child_request(pair, _rekey_payloads(pair, 0, (19,), 19, rekey=False))
    assert msg.notify_types() == [NOTIFIES["NO_ADDITIONAL_SAS"]]
    assert snapshot(pair.b.sa)["children"] == before["children"]
    assert pair.b.logged("AWS tunnel is refusing an additional CHILD_SA")
    assert len(pair.b.child_ups) == 1 and pair.b.child_downs == []
    # the pair keeps working: liveness and a rekey of the one SA
    pair.liveness(pair.b)
    pair.run()
    assert pair.b.sa.pending is None
    pair.b.endpoint.rekey("child", pair.now)
    pair.run()
    [new_b] = live_child_ups(pair.b)
    assert new_b.replaces == cb.spi_in


# --- TEMPORARY_FAILURE (§2.25) --------------------------------------------------------------


def test_temporary_failure_while_the_responder_deletes_and_the_retry():
    """B is deleting the SA (its DELETE lost on the way): A's rekey of it gets
    TEMPORARY_FAILURE (§2.25.1) and A retries after the delay vgw documents
    (timers.TEMPORARY_FAILURE_RETRY, drawn with the fuzz source: u = 0.25),
    until B's retransmitted DELETE ends the SA on both sides."""
    lo, hi = timers.TEMPORARY_FAILURE_RETRY
    retry = lo + (hi - lo) * 0.25
    pair = make_pair(ua=0.25)
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    pair.delete_child(pair.b, cb.spi_in)
    pair.drop(pair.b)                          # B's DELETE is lost; B resends at +4 s
    mark = len(pair.wire)
    pair.a.endpoint.rekey("child", pair.now)
    pair.run()
    [answer] = sent(pair, pair.b, mark, "CREATE_CHILD_SA", response=True)
    assert opened(pair, answer).notify_types() == [NOTIFIES["TEMPORARY_FAILURE"]]
    assert pair.a.sa.children[ca.spi_in].state == ChildState.INSTALLED
    [c] = pair.a.endpoint.status(pair.now)["children"]
    assert c["rekey_in"] == retry
    assert retry < 4.0     # the case needs the retry before B's resend

    mark = len(pair.wire)
    pair.run_timers(retry - 0.01)
    assert sent(pair, pair.a, mark, "CREATE_CHILD_SA") == []
    pair.run_timers(retry)
    [again] = sent(pair, pair.a, mark, "CREATE_CHILD_SA", response=False)
    [(ntype, _, spi, _)] = opened(pair, again).notifies()
    assert (ntype, spi_of(spi)) == (NOTIFIES["REKEY_SA"], ca.spi_in)
    pair.run_timers(30.0)
    # B's DELETE (resent at +4 s) wins: no SA left, no new one made, no more retries
    assert children(pair.a) == children(pair.b) == {}
    assert len(pair.a.child_ups) == len(pair.b.child_ups) == 1
    assert pair.a.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {cb.spi_in:08x}")
    mark = len(pair.wire)
    pair.run_timers(60.0)
    assert sent(pair, pair.a, mark, "CREATE_CHILD_SA") == []
    assert pair.a.downs == pair.b.downs == []


# --- loss and duplication ----------------------------------------------------------------------




@pytest.mark.parametrize("action", ["drop", "dup"])
@pytest.mark.parametrize("n", [0, 1, 2, 3], ids=["request", "answer", "delete", "delete-answer"])
@pytest.mark.parametrize("who", ["a", "b"])
def test_lossy_child_rekey_converges(who, n, action):
    pair = make_pair()
    by, peer = sides(pair, who)
    [old_by], [old_peer] = by.child_ups, peer.child_ups
    hook = nth(n, action)
    by.endpoint.rekey("child", pair.now)
    pair.run(hook)
    pair.run_timers(30.0, hook)
    # one new SA on each side, announced once, the same pair of SPIs; the old one gone once
    news_by = [u for u in by.child_ups if u.replaces is not None]
    news_peer = [u for u in peer.child_ups if u.replaces is not None]
    assert len(news_by) == len(news_peer) == 1
    [new_by], [new_peer] = news_by, news_peer
    assert children(by) == {new_by.spi_in: new_by.spi_out}
    assert children(peer) == {new_peer.spi_in: new_by.spi_in}
    assert [(d.spi_in, d.reason) for d in by.child_downs] == [(old_by.spi_in, "rekeyed")]
    assert [(d.spi_in, d.reason) for d in peer.child_downs] == [(old_peer.spi_in, "rekeyed")]
    assert_esp_flows(new_by, new_peer)
    for side in (by, peer):
        assert side.downs == [] and side.sa.pending is None and not side.sa.queue


@pytest.mark.parametrize("who", ["a", "b"])
def test_stale_copies_of_a_finished_rekey_change_nothing(who):
    """Every datagram of a finished rekey delivered again, late: outside the
    window or answered from the cache (RFC 7296 §2.1, §2.3); no SA is added or
    lost."""
    pair = make_pair()
    by, _ = sides(pair, who)
    mark = len(pair.wire)
    by.endpoint.rekey("child", pair.now)
    pair.run()
    before = {s.name: (children(s), len(s.child_ups), len(s.child_downs)) for s in (pair.a, pair.b)}
    for name, d in list(pair.wire[mark:]):
        pair.deliver(pair.b if name == "a" else pair.a, d)
    pair.run()
    after = {s.name: (children(s), len(s.child_ups), len(s.child_downs)) for s in (pair.a, pair.b)}
    assert after == before
    assert pair.a.downs == pair.b.downs == []
