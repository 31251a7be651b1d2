"""Proposal choice in CREATE_CHILD_SA (issue 2, docs/aws.md §1.1): a CHILD SA
rekey with PFS (a KE from phase2_dh_group_numbers, docs/aws.md §1.4) and an IKE
SA rekey (RFC 7296 §1.3.2) choose the suite in vgw's order first, as
IKE_SA_INIT does; the peer's KE group only decides the group.

vgw's own initiator puts every group in every proposal, so it cannot show the
difference; the requests here come from a scripted peer holding the keys of A's
IKE SA, offering the preferred cipher with one group and a lesser cipher with
the group it guesses.
"""

import struct

from ikecore.constants import NotifyType, ProtocolId
from ikecore.crypto import get_dh_group
from ikecore.events import Datagram
from ikecore.payloads import (
    KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload, Transform, TsiPayload, TsrPayload,
)
from .ikepair import NOTIFIES, seal_payloads
from .lifecycle import PROTO_ESP, PROTO_IKE, T_DH, T_ENCR, T_ESN, T_INTEG, T_PRF, make_pair, opened

# IANA: ENCR 12 AES-CBC (key length 128/256), INTEG 2 HMAC-SHA1-96, PRF 2 HMAC-SHA1, ESN 0 none
CREATE_CHILD_SA = 36


def _request(pair, payloads):
    """B's answer, opened, to a CREATE_CHILD_SA request from A's IKE SA; A's
    message counter moves on as if A had sent it."""
    a = pair.a.sa
    pair.deliver(pair.b, Datagram(seal_payloads(a, CREATE_CHILD_SA, a.next_request_id, payloads),
                                  a.local, a.remote))
    a.next_request_id += 1
    [answer] = pair.outgoing(pair.b)
    return opened(pair, answer)


def _ke(group):
    return KePayload(group, get_dh_group(group).generate().public_bytes)


def _esp(num, key_bits, group, spi):
    return Proposal(num, PROTO_ESP, struct.pack("!I", spi), (
        Transform(T_ENCR, 12, key_bits), Transform(T_INTEG, 2), Transform(T_DH, group),
        Transform(T_ESN, 0)))


def test_child_rekey_pfs_guess_does_not_buy_a_less_preferred_cipher():
    """B prefers AES128; the peer offers AES128 with 19 and AES256 with 14 and
    guesses 14: INVALID_KE_PAYLOAD(19); the retry with 19 gets AES128."""
    pair = make_pair(a=dict(phase2_dh_groups=(19, 14)),
                     b=dict(phase2_encryption=("AES128", "AES256"), phase2_dh_groups=(19, 14)))
    [ca] = pair.a.child_ups
    [c] = pair.a.sa.children.values()

    def payloads(ke_group):
        return [NotifyPayload(NotifyType.REKEY_SA, protocol=ProtocolId.ESP,
                              spi=struct.pack("!I", ca.spi_in)),
                SaPayload([_esp(1, 128, 19, 0x1234567), _esp(2, 256, 14, 0x1234567)]),
                NoncePayload(bytes(range(32))), _ke(ke_group),
                TsiPayload(list(c.local_ts)), TsrPayload(list(c.remote_ts))]

    refusal = _request(pair, payloads(14))
    assert [(n[0], n[3]) for n in refusal.notifies()] == \
        [(NOTIFIES["INVALID_KE_PAYLOAD"], struct.pack("!H", 19))]
    assert len(pair.b.child_ups) == 1
    answer = _request(pair, payloads(19))
    [chosen] = answer.proposals()
    assert chosen["num"] == 1
    assert chosen["transforms"] == [(T_ENCR, 12, 128), (T_INTEG, 2, None), (T_DH, 19, None),
                                    (T_ESN, 0, None)]
    assert answer.ke()[0] == 19
    assert [(u.encryption, u.dh_group) for u in pair.b.child_ups[1:]] == [("AES128", 19)]


def _ike(num, key_bits, group):
    return Proposal(num, PROTO_IKE, b"\x77" * 8, (
        Transform(T_ENCR, 12, key_bits), Transform(T_PRF, 2), Transform(T_INTEG, 2),
        Transform(T_DH, group)))


def test_ike_rekey_guess_does_not_buy_a_less_preferred_cipher():
    pair = make_pair(b=dict(phase1_encryption=("AES128", "AES256"), phase1_dh_groups=(19, 14)))

    def payloads(ke_group):
        return [SaPayload([_ike(1, 128, 19), _ike(2, 256, 14)]),
                NoncePayload(bytes(range(32))), _ke(ke_group)]

    refusal = _request(pair, payloads(14))
    assert [(n[0], n[3]) for n in refusal.notifies()] == \
        [(NOTIFIES["INVALID_KE_PAYLOAD"], struct.pack("!H", 19))]
    answer = _request(pair, payloads(19))
    [chosen] = answer.proposals()
    assert chosen["num"] == 1 and len(chosen["spi"]) == 8
    assert chosen["transforms"] == [(T_ENCR, 12, 128), (T_PRF, 2, None), (T_INTEG, 2, None),
                                    (T_DH, 19, None)]
    assert answer.ke()[0] == 19
