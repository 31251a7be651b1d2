"""The tunnel's life as the status shows it, and DELETEs on the wire.

- IkeEndpoint.status(now): rekey_in / expires_in of the IKE SA and of each CHILD
  SA follow the deadlines of docs/aws.md §1.6 (lifetime - margin x (1 + fuzz x
  random), the random value fixed here), phase 1 / phase 2 "rekeying" while a
  rekey is in flight.
- DELETE (RFC 7296 §1.4.1, §3.11) both ways for IKE and CHILD SAs: the payloads,
  the answers, AWS's log lines (docs/aws.md §3.3).
"""

import struct

import pytest

from .ikepair import Holder, is_request
from .lifecycle import PROTO_ESP, PROTO_IKE, jump, live_child_ups, make_pair, opened, sent


def test_status_counts_down_to_the_deadlines():
    # A: u = 0.5, margin 270, fuzz 100 -> IKE rekey at 28800 - 405 = 28395,
    # CHILD rekey at 3600 - 405 = 3195. B: u = 0.25 -> 28800 - 337.5, 3600 - 337.5.
    pair = make_pair(ua=0.5, ub=0.25)
    for side, ike_rekey, child_rekey in ((pair.a, 28395.0, 3195.0), (pair.b, 28462.5, 3262.5)):
        st = side.endpoint.status(0.0)
        assert (st["ike"]["rekey_in"], st["ike"]["expires_in"]) == (ike_rekey, 28800.0)
        [c] = st["children"]
        assert (c["rekey_in"], c["expires_in"]) == (child_rekey, 3600.0)
        st = side.endpoint.status(1000.0)
        assert (st["ike"]["rekey_in"], st["ike"]["expires_in"]) == (ike_rekey - 1000, 27800.0)
        [c] = st["children"]
        assert (c["rekey_in"], c["expires_in"]) == (child_rekey - 1000, 2600.0)
        assert (st["phase1_state"], st["phase2_state"]) == ("established", "established")


def test_status_after_a_child_rekey_restarts_its_clock():
    pair = make_pair(ua=0.5, ub=0.25)
    jump(pair, 3195.0)                                  # A's CHILD rekey
    [new] = live_child_ups(pair.a)
    [c] = pair.a.endpoint.status(3195.0)["children"]
    assert c["spi_in"] == f"{new.spi_in:08x}" and c["state"] == "INSTALLED"
    assert (c["rekey_in"], c["expires_in"]) == (3195.0, 3600.0)
    [c] = pair.b.endpoint.status(3195.0)["children"]       # B installed it at 3195 too
    assert (c["rekey_in"], c["expires_in"]) == (3262.5, 3600.0)
    ike = pair.a.endpoint.status(3195.0)["ike"]
    assert ike["rekey_in"] == 28395.0 - 3195.0          # the IKE SA is not concerned


@pytest.mark.parametrize("kind", ["ike", "child"])
def test_states_while_a_rekey_is_in_flight(kind):
    pair = make_pair(ua=0.5)
    held = Holder(is_request("CREATE_CHILD_SA"))
    pair.a.endpoint.rekey(kind, pair.now)
    pair.transfer(pair.a, held)
    st = pair.a.endpoint.status(pair.now)
    if kind == "ike":
        assert (st["phase1_state"], st["phase2_state"]) == ("rekeying", "established")
    else:
        assert (st["phase1_state"], st["phase2_state"]) == ("established", "rekeying")
        assert st["children"][0]["state"] == "REKEYING"
    held.release(pair, pair.b)
    pair.run()
    st = pair.a.endpoint.status(pair.now)
    assert (st["phase1_state"], st["phase2_state"]) == ("established", "established")
    assert st["children"][0]["state"] == "INSTALLED"
    if kind == "ike":   # the new IKE SA runs its own lifetime from now (t=0 here)
        assert (st["ike"]["rekey_in"], st["ike"]["expires_in"]) == (28395.0, 28800.0)


def test_rekey_command_refusals():
    pair = make_pair(up=False)
    assert pair.a.endpoint.rekey("child", 0.0) == "the tunnel has no established IKE SA"
    pair.handshake()
    [ca] = pair.a.child_ups
    pair.delete_child(pair.a, ca.spi_in)
    pair.run()
    assert pair.a.endpoint.rekey("child", pair.now) == "the tunnel has no installed CHILD SA to rekey"
    assert pair.a.endpoint.status(pair.now)["phase2_state"] == "negotiating"


# --- DELETE -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["a", "b"])
def test_delete_ike_sa_on_the_wire(who):
    pair = make_pair()
    by, peer = (pair.a, pair.b) if who == "a" else (pair.b, pair.a)
    mark = len(pair.wire)
    by.endpoint.delete(pair.now)
    pair.run()
    [req] = sent(pair, by, mark, "INFORMATIONAL", response=False)
    [ans] = sent(pair, peer, mark, "INFORMATIONAL", response=True)
    assert opened(pair, req).deletes() == [(PROTO_IKE, [])]   # §3.11: no SPI for IKE
    assert opened(pair, ans).payloads == []                    # §1.4.1: empty answer
    assert peer.logged("AWS tunnel received DELETE for IKE_SA from CGW")
    assert by.logged("AWS tunnel is deleting IKE_SA with cgw")
    assert [d.reason for d in by.downs] == ["deleted"]
    assert [d.reason for d in peer.downs] == ["deleted-by-peer"]
    assert len(by.child_downs) == len(peer.child_downs) == 1
    assert by.sas == peer.sas == []


@pytest.mark.parametrize("who", ["a", "b"])
def test_delete_child_sa_on_the_wire(who):
    pair = make_pair()
    by, peer = (pair.a, pair.b) if who == "a" else (pair.b, pair.a)
    [c_by], [c_peer] = by.child_ups, peer.child_ups
    mark = len(pair.wire)
    pair.delete_child(by, c_by.spi_in)
    pair.run()
    [req] = sent(pair, by, mark, "INFORMATIONAL", response=False)
    [ans] = sent(pair, peer, mark, "INFORMATIONAL", response=True)
    # each side names the SPI it receives on (§3.11); the answer carries the peer's half
    assert opened(pair, req).deletes() == [(PROTO_ESP, [struct.pack("!I", c_by.spi_in)])]
    assert opened(pair, ans).deletes() == [(PROTO_ESP, [struct.pack("!I", c_peer.spi_in)])]
    assert peer.logged(f"AWS tunnel received DELETE for Phase 2 SA with SPI: {c_by.spi_in:08x}")
    assert by.logged(f"AWS tunnel is sending DELETE for Phase 2 SA with SPI: {c_by.spi_in:08x}")
    assert [(d.spi_in, d.reason) for d in by.child_downs] == [(c_by.spi_in, "deleted")]
    assert [(d.spi_in, d.reason) for d in peer.child_downs] == [(c_peer.spi_in, "deleted-by-peer")]
    assert by.downs == peer.downs == []
