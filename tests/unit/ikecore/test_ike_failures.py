"""Negotiations that fail, or succeed only after a detour: PSK mismatch, no
common proposal in phase 1 or 2, INVALID_KE_PAYLOAD, traffic selector
narrowing and TS_UNACCEPTABLE, a peer at the wrong address, NAT detection.

Log lines are AWS's own wording (docs/aws.md §3.3).
"""

import ipaddress
import struct

import pytest

from ikecore.constants import NotifyType
from ikecore.message import decode_message
from ikecore.payloads import AuthPayload
from .ikepair import ADDR_A, ADDR_B, IkePair, Nat, nat_hash, settings_a, settings_b, seal_payloads


def nets(selectors):
    return [n for t in selectors for n in t.networks()]


def net(text):
    return ipaddress.ip_network(text)


def assert_gone(pair):
    assert pair.a.sas == [] and pair.b.sas == []
    assert pair.a.child_ups == [] and pair.b.child_ups == []
    assert pair.a.endpoint.status()["phase1_state"] == "down"
    assert pair.b.endpoint.status()["phase1_state"] == "down"


# --- authentication --------------------------------------------------------------------------


def test_psk_mismatch():
    pair = IkePair(settings_a(psk=b"example_psk_abcdef"), settings_b(psk=b"example_psk_zyxwvu"))
    pair.handshake()
    assert pair.b.logged(f"AWS tunnel detected a pre-shared key mismatch with cgw: {ADDR_A}")
    assert pair.b.logged("AWS tunnel is sending AUTHENTICATION_FAILED as the response")
    assert [d.reason for d in pair.b.downs] == ["auth-failed"]
    assert [d.reason for d in pair.a.downs] == ["auth-failed"]
    assert pair.a.ups == [] and pair.b.ups == []
    assert_gone(pair)
    # B answered the IKE_AUTH request (RFC 7296 §2.21.2), A did not retry
    assert [who for who, _ in pair.wire] == ["a", "b", "a", "b"]
    assert pair.next_deadline() is None


def _tamper_auth_response(pair):
    """Deliver B's IKE_AUTH response with a wrong AUTH value, as a responder with
    another PSK (that still accepted ours) would send it."""
    pair.initiate()
    pair.roundtrip(pair.a)              # IKE_SA_INIT
    pair.transfer(pair.a)               # IKE_AUTH request; B is up
    [d] = pair.outgoing(pair.b)
    b_sa = pair.b.sa
    msg = decode_message(d.data, keys=b_sa.keys)
    payloads = []
    for p in msg.payloads:
        if isinstance(p, AuthPayload):
            p = AuthPayload(p.method, bytes(x ^ 0x5A for x in p.data))
        payloads.append(p)
    forged = seal_payloads(b_sa, 35, 1, payloads, response=True)
    pair.deliver(pair.a, d.__class__(forged, d.local, d.remote))
    return b_sa


def test_initiator_detects_psk_mismatch_and_tells_the_responder():
    pair = IkePair()
    b_sa = _tamper_auth_response(pair)
    assert pair.a.logged(f"AWS tunnel detected a pre-shared key mismatch with cgw: {ADDR_B}")
    assert [d.reason for d in pair.a.downs] == ["auth-failed"]
    assert pair.a.child_ups == [] and pair.a.sas == []
    # §2.21.2: the initiator reports AUTHENTICATION_FAILED in an INFORMATIONAL request
    [note] = pair.outgoing(pair.a)
    msg = decode_message(note.data, keys=b_sa.keys)
    assert (msg.exchange, msg.is_response) == (37, False)
    assert [n.notify_type for n in msg.notifies()] == [NotifyType.AUTHENTICATION_FAILED]
    # ... and the responder, which had already installed its side, drops the IKE SA
    # and its CHILD SA (§2.21.2: AUTHENTICATION_FAILED deletes the IKE SA without a Delete)
    pair.deliver(pair.b, note)
    assert [d.reason for d in pair.b.downs] == ["auth-failed"]
    assert len(pair.b.child_downs) == 1 and pair.b.sas == []


# --- proposals ---------------------------------------------------------------------------------


def test_no_common_phase1_proposal():
    pair = IkePair(settings_a(phase1_encryption=("AES128",), phase1_integrity=("SHA1",)),
                   settings_b(phase1_encryption=("AES256", "AES256-GCM-16"),
                            phase1_integrity=("SHA2-256",)))
    pair.handshake()
    assert pair.b.logged("No Proposal Match Found by AWS")
    assert pair.b.logged('No Proposal Match Found. Notifying with "No proposal chosen"')
    [answer] = [d for who, d in pair.wire if who == "b"]
    msg = decode_message(answer.data)
    assert [n.notify_type for n in msg.notifies()] == [NotifyType.NO_PROPOSAL_CHOSEN]
    assert msg.header.spi_r == bytes(8)  # an answer that keeps no state
    assert [d.reason for d in pair.a.downs] == ["no-proposal"]
    assert_gone(pair)


def test_no_common_phase1_dh_group():
    pair = IkePair(settings_a(phase1_dh_groups=(2,)), settings_b(phase1_dh_groups=(14, 19)))
    pair.handshake()
    assert pair.b.logged("No Proposal Match Found by AWS")
    assert_gone(pair)


def test_no_common_phase2_proposal_keeps_phase1():
    pair = IkePair(settings_a(phase2_encryption=("AES128",), phase2_integrity=("SHA1",)),
                   settings_b(phase2_encryption=("AES256-GCM-16",)))
    pair.handshake()
    assert len(pair.a.ups) == 1 and len(pair.b.ups) == 1
    assert pair.a.child_ups == [] and pair.b.child_ups == []
    for side in (pair.a, pair.b):
        assert side.logged("AWS tunnel Phase 2 was unable to establish while keeping Phase 1")
        assert side.sa.state.value == "ESTABLISHED" and side.sa.children == {}
        assert side.downs == []
        assert side.endpoint.status()["phase1_state"] == "established"
        assert side.endpoint.status()["phase2_state"] != "established"
    assert pair.b.logged("No Proposal Match Found by AWS")
    # the IKE SA still carries INFORMATIONAL exchanges
    pair.liveness(pair.a)
    assert pair.run() == 2


def test_invalid_ke_retry():
    """A guesses group 14, B only takes 19: B answers INVALID_KE_PAYLOAD(19), A
    retries once with 19 (RFC 7296 §1.2) and the SA comes up with it."""
    pair = IkePair(settings_a(phase1_dh_groups=(14, 19)), settings_b(phase1_dh_groups=(19,)))
    pair.handshake()
    assert len(pair.wire) == 6  # one extra round trip
    first, answer, retry = (decode_message(d.data) for _, d in pair.wire[:3])
    [n] = answer.notifies()
    assert n.notify_type == NotifyType.INVALID_KE_PAYLOAD and n.data == struct.pack("!H", 19)
    assert first.get(type(first.payloads[1])).group == 14
    assert retry.payloads[1].group == 19
    assert first.header.spi_i == retry.header.spi_i and retry.message_id == 0
    [up_a], [up_b] = pair.a.ups, pair.b.ups
    assert up_a.dh_group == up_b.dh_group == 19
    assert len(pair.a.child_ups) == len(pair.b.child_ups) == 1
    assert pair.a.logged("AWS tunnel received INVALID_KE_PAYLOAD")
    assert pair.a.downs == []


def test_invalid_ke_naming_a_group_we_do_not_have():
    pair = IkePair(settings_a(phase1_dh_groups=(14,)), settings_b(phase1_dh_groups=(19,)))
    pair.handshake()
    # B refuses: the proposal's only group is not in its list
    assert pair.b.logged("No Proposal Match Found by AWS")
    assert_gone(pair)


def test_invalid_ke_answer_with_an_unconfigured_group_ends_the_attempt():
    """INVALID_KE_PAYLOAD travels in the clear; rewritten on the path to name a
    group A never offered (20), it ends A's attempt instead of a retry with a
    group A does not want (RFC 7296 §1.2: the group must be one A proposed)."""
    pair = IkePair(settings_a(phase1_dh_groups=(14, 19)), settings_b(phase1_dh_groups=(19,)))
    pair.initiate()
    [req] = pair.outgoing(pair.a)
    pair.deliver(pair.b, req)
    [ans] = pair.outgoing(pair.b)
    data = bytearray(ans.data)
    assert data[-2:] == struct.pack("!H", 19)
    data[-2:] = struct.pack("!H", 20)   # unprotected, so anyone on the path can do this
    pair.deliver(pair.a, ans.__class__(bytes(data), ans.local, ans.remote))
    assert [d.reason for d in pair.a.downs] == ["invalid-ke"] and pair.a.sas == []
    assert pair.outgoing(pair.a) == []


# --- traffic selectors ------------------------------------------------------------------------


def test_ts_narrowed_to_the_responders_networks():
    """RFC 7296 §2.9: the responder answers the intersection of what was proposed
    and what its policy allows (AWS: local/remote_network_cidr, docs/aws.md §1.8)."""
    pair = IkePair(settings_a(vgw_ts="0.0.0.0/0", cgw_ts="0.0.0.0/0"),
                   settings_b(cgw_ts="172.16.0.0/16", vgw_ts="10.0.0.0/16"))
    pair.handshake()
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    assert nets(ca.local_ts) == [net("172.16.0.0/16")] and nets(ca.remote_ts) == [net("10.0.0.0/16")]
    assert nets(cb.local_ts) == [net("10.0.0.0/16")] and nets(cb.remote_ts) == [net("172.16.0.0/16")]


def test_ts_partial_overlap_and_inner():
    pair = IkePair(settings_a(vgw_ts="10.1.0.0/16", cgw_ts="10.2.5.0/24"),
                   settings_b(cgw_ts="10.1.128.0/17", vgw_ts="10.2.0.0/16"))
    pair.handshake()
    [ca] = pair.a.child_ups
    assert nets(ca.local_ts) == [net("10.1.128.0/17")]   # narrowed
    assert nets(ca.remote_ts) == [net("10.2.5.0/24")]    # already inside: unchanged


def test_ts_unacceptable():
    pair = IkePair(settings_a(vgw_ts="192.168.0.0/16"), settings_b(cgw_ts="10.0.0.0/8"))
    pair.handshake()
    assert pair.a.logged("AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder")
    assert pair.a.logged("AWS tunnel Phase 2 was unable to establish while keeping Phase 1")
    assert pair.b.logged("AWS tunnel Phase 2 was unable to establish while keeping Phase 1")
    assert pair.a.child_ups == [] and pair.b.child_ups == []
    assert len(pair.a.ups) == len(pair.b.ups) == 1   # §1.2: the IKE SA stays
    assert pair.a.downs == pair.b.downs == []


def test_ts_unacceptable_on_the_vgw_side_selector():
    pair = IkePair(settings_a(cgw_ts="192.168.0.0/16"), settings_b(vgw_ts="10.0.0.0/8"))
    pair.handshake()
    assert pair.a.logged("AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder")
    assert pair.a.child_ups == []


# --- addresses and NAT ------------------------------------------------------------------------


def test_init_from_an_unknown_address_is_dropped():
    pair = IkePair(settings_a(), settings_b(remote_ip="203.0.113.5"))
    pair.initiate()
    assert pair.transfer(pair.a) == 1
    assert pair.outgoing(pair.b) == []
    assert pair.b.sas == [] and pair.b.events == []
    assert pair.b.endpoint.counters.dropped_unknown_peer == 1
    assert pair.b.endpoint.next_deadline() is None


def test_responder_without_remote_ip_accepts_any_address():
    pair = IkePair(settings_a(), settings_b(remote_ip=None))
    pair.handshake()
    assert len(pair.b.child_ups) == 1


def _nat_pair(public_ip, private_ip="192.168.1.10"):
    nat = Nat(public_ip)
    pair = IkePair(settings_a(local_ip=private_ip), settings_b(remote_ip=public_ip), nat_a=nat)
    pair.handshake()
    return pair, nat


def test_nat_detected_and_initiator_moves_to_4500():
    pair, nat = _nat_pair("203.0.113.7")
    [up_a], [up_b] = pair.a.ups, pair.b.ups
    # RFC 7296 §2.23: B sees A's source differ from A's NAT_DETECTION_SOURCE_IP;
    # A sees its own address differ from what B hashed as the destination
    assert (up_b.peer_behind_nat, up_b.local_behind_nat) == (True, False)
    assert (up_a.peer_behind_nat, up_a.local_behind_nat) == (False, True)
    # IKE_SA_INIT on 500, IKE_AUTH and everything after on 4500 (§2.23)
    ports = [(d.local[1], d.remote[1]) for who, d in pair.wire if who == "a"]
    assert ports == [(500, 500), (4500, 4500)]
    [ca], [cb] = pair.a.child_ups, pair.b.child_ups
    assert ca.udp_encap and cb.udp_encap
    assert (ca.local, ca.remote) == (("192.168.1.10", 4500), (ADDR_B, 4500))
    assert (cb.local, cb.remote) == ((ADDR_B, 4500), nat.outbound(("192.168.1.10", 4500)))
    assert pair.b.logged("AWS tunnel detected NAT on the cgw")


def test_nat_detection_hashes_are_real():
    """The request's NAT_DETECTION_SOURCE_IP is A's private address: what B saw
    (the NAT's) does not match it, which is why B detects the NAT."""
    pair, nat = _nat_pair("203.0.113.7")
    req = decode_message(pair.wire[0][1].data)
    src = req.notify(NotifyType.NAT_DETECTION_SOURCE_IP).data
    spi_i = req.header.spi_i
    assert src == nat_hash(spi_i, bytes(8), "192.168.1.10", 500)
    assert src != nat_hash(spi_i, bytes(8), *nat.outbound(("192.168.1.10", 500)))


def test_nat_port_only_rewrite_is_detected():
    pair, nat = _nat_pair("192.168.1.10")  # same address, another port
    [up_b] = pair.b.ups
    assert up_b.peer_behind_nat
    assert pair.b.child_ups[0].udp_encap


def test_no_nat_no_encapsulation():
    pair = IkePair()
    pair.handshake()
    for side in (pair.a, pair.b):
        [up] = side.ups
        assert (up.peer_behind_nat, up.local_behind_nat) == (False, False)
        assert side.child_ups[0].udp_encap is False
        assert not side.logged("AWS tunnel detected NAT")
    assert {(d.local[1], d.remote[1]) for _, d in pair.wire} == {(500, 500)}


def test_responder_answers_from_the_address_the_request_reached():
    """RFC 7296 §2.11: respond to the address and port the request came from."""
    pair, nat = _nat_pair("203.0.113.7")
    b_out = [d for who, d in pair.wire if who == "b"]
    a_in = [nat.outbound(("192.168.1.10", 500)), nat.outbound(("192.168.1.10", 4500))]
    assert [d.remote for d in b_out] == a_in
    assert [d.local for d in b_out] == [(ADDR_B, 500), (ADDR_B, 4500)]


# --- authenticated but malformed ------------------------------------------------------------------


def test_authenticated_malformed_request_is_fatal_for_both_peers():
    """RFC 7296 §2.21.3 (and §3.10.1): a request that passes the integrity and
    window checks but is badly formatted gets INVALID_SYNTAX in a protected
    answer, and that notification is fatal in both peers: the IKE SA is
    deleted without an INFORMATIONAL Delete."""
    from .ikepair import seal_raw
    pair = IkePair()
    pair.handshake()
    a = pair.a.sa
    pair.liveness(pair.a)
    [real] = pair.outgoing(pair.a)                 # A waits for an answer to ID 2
    bad_nonce = struct.pack("!BBH", 0, 0, 4 + 15) + b"\x01" * 15   # §3.9: at least 16 bytes
    forged = seal_raw(a, 37, a.pending.message_id, 40, bad_nonce)
    pair.deliver(pair.b, real.__class__(forged, real.local, real.remote))
    [answer] = pair.outgoing(pair.b)
    msg = decode_message(answer.data, keys=a.keys)
    assert msg.encrypted and msg.is_response and msg.message_id == 2
    assert [n.notify_type for n in msg.notifies()] == [NotifyType.INVALID_SYNTAX]
    assert len(pair.b.downs) == 1 and len(pair.b.child_downs) == 1 and pair.b.sas == []
    pair.deliver(pair.a, answer)
    assert len(pair.a.downs) == 1 and len(pair.a.child_downs) == 1 and pair.a.sas == []


def test_unknown_critical_payload_is_refused_and_the_sa_lives():
    """RFC 7296 §2.5: a request with an unknown payload whose critical bit is set
    is rejected; the answer carries UNSUPPORTED_CRITICAL_PAYLOAD with the one-octet
    payload type. Nothing says the IKE SA ends (INVALID_SYNTAX would, §2.21.3):
    the peer still gets its next request answered."""
    from .ikepair import seal_raw
    pair = IkePair()
    pair.handshake()
    a = pair.a.sa
    pair.liveness(pair.a)
    [real] = pair.outgoing(pair.a)
    unknown = struct.pack("!BBH", 0, 0x80, 4 + 4) + b"\x00" * 4      # type 99, critical
    forged = seal_raw(a, 37, a.pending.message_id, 99, unknown)
    pair.deliver(pair.b, real.__class__(forged, real.local, real.remote))
    [answer] = pair.outgoing(pair.b)
    msg = decode_message(answer.data, keys=a.keys)
    assert msg.encrypted and msg.is_response and msg.message_id == a.pending.message_id
    [n] = msg.notifies()
    assert (n.notify_type, n.data) == (NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, bytes([99]))
    assert pair.b.downs == [] and pair.b.sa.established
    assert pair.b.sa.counters.unsupported_critical == 1
    pair.deliver(pair.a, answer)
    pair.run()
    pair.liveness(pair.a)                          # the next request is answered as usual
    pair.run()
    assert pair.a.downs == [] and pair.b.downs == [] and pair.a.sa.pending is None


# --- ESP SPIs the data path cannot take ---------------------------------------------------------------


def _resealed(sa, data, response, edit):
    """Open a protected message with `sa`'s keys, edit its payloads, seal it again
    (what a peer holding the keys could send)."""
    msg = decode_message(data, keys=sa.keys)
    return seal_payloads(sa, msg.exchange, msg.message_id, [edit(p) for p in msg.payloads],
                         response=response)


def _with_esp_spi(spi: int):
    from dataclasses import replace
    from ikecore.payloads import SaPayload

    def edit(p):
        if isinstance(p, SaPayload):
            return SaPayload([replace(pr, spi=struct.pack("!I", spi)) for pr in p.proposals])
        return p
    return edit


@pytest.mark.parametrize("spi", [0, 1, 255])
def test_reserved_esp_spi_from_the_initiator_is_refused(spi):
    """RFC 4303 §2.1: SPI 0 is never sent, 1..255 are reserved (and the data
    path refuses them): such a proposal is not acceptable."""
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    [auth] = pair.outgoing(pair.a)
    forged = _resealed(pair.a.sa, auth.data, False, _with_esp_spi(spi))
    pair.deliver(pair.b, auth.__class__(forged, auth.local, auth.remote))
    pair.run()
    assert pair.b.child_ups == [] and pair.a.child_ups == []
    assert len(pair.b.ups) == 1   # the IKE SA itself is fine (RFC 7296 §1.2)
    assert pair.b.logged("AWS tunnel Phase 2 was unable to establish while keeping Phase 1")


@pytest.mark.parametrize("spi", [0, 200])
def test_reserved_esp_spi_from_the_responder_is_refused(spi):
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    pair.transfer(pair.a)
    [answer] = pair.outgoing(pair.b)
    forged = _resealed(pair.b.sa, answer.data, True, _with_esp_spi(spi))
    pair.deliver(pair.a, answer.__class__(forged, answer.local, answer.remote))
    assert pair.a.child_ups == []
    assert len(pair.a.ups) == 1
    assert pair.a.logged("AWS tunnel Phase 2 was unable to establish while keeping Phase 1")


def test_refused_child_in_ike_auth_answer_is_deleted_at_the_responder():
    """The responder installed its half of the CHILD SA before answering; when the
    initiator cannot accept the answer, it DELETEs that half (RFC 7296 §1.4.1)
    instead of leaving the responder with a one-sided SA."""
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)
    pair.transfer(pair.a)
    [answer] = pair.outgoing(pair.b)
    assert len(pair.b.child_ups) == 1
    forged = _resealed(pair.b.sa, answer.data, True, _with_esp_spi(200))
    pair.deliver(pair.a, answer.__class__(forged, answer.local, answer.remote))
    pair.run()
    [down] = pair.b.child_downs
    assert down.spi_in == pair.b.child_ups[0].spi_in and down.reason == "deleted-by-peer"
    assert pair.b.sa.children == {} and pair.b.sa.established
    assert pair.a.child_ups == [] and pair.a.sa.established
