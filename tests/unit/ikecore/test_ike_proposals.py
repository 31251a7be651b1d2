"""Proposal choice the AWS way (docs/aws.md §1.1): the responder walks its own
configured lists in order and takes the first entry the peer offers, whatever
the peer's order. Plus INVALID_KE_PAYLOAD (RFC 7296 §1.2), AEAD without
INTEG (§3.3), ESN, unknown attributes (§3.3.6), and the initiator's checks on
the answer (§2.7).

Proposals are built by hand with IANA numbers: ENCR 12 AES-CBC, 20 AES-GCM-16;
PRF 2 SHA1, 5/6/7 SHA2-256/384/512; INTEG 2 SHA1-96, 12/13/14 SHA2; ESN 0/1.
"""

import pytest

from ikecore.payloads import Proposal, Transform
from ikecore.proposals import (
    InvalidKe, NoProposalChosen, check_answer, esp_offer, ike_offer, select_esp, select_ike,
)

ALL_ENC = ("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16")
ALL_HASH = ("SHA1", "SHA2-256", "SHA2-384", "SHA2-512")
ESP_SPI = b"\x00\x00\x12\x34"


def T(ttype, tid, key_len=None, unknown=False):
    return Transform(ttype, tid, key_len, unknown)


AES128, AES256 = T(1, 12, 128), T(1, 12, 256)
GCM128, GCM256 = T(1, 20, 128), T(1, 20, 256)
PRF_SHA1, PRF_SHA256, PRF_SHA384, PRF_SHA512 = T(2, 2), T(2, 5), T(2, 6), T(2, 7)
I_SHA1, I_SHA256, I_SHA384, I_SHA512 = T(3, 2), T(3, 12), T(3, 13), T(3, 14)
ESN_NO, ESN_YES = T(5, 0), T(5, 1)


def dh(*groups):
    return [T(4, g) for g in groups]


def ike(num, *transforms):
    return Proposal(num, 1, b"", tuple(transforms))


def esp(num, *transforms, spi=b"\x00\x00\xab\xcd"):
    return Proposal(num, 3, spi, tuple(transforms))


def picked(p: Proposal):
    return {(t.type, t.id, t.key_length) for t in p.transforms}


# --- IKE: the responder's order wins ------------------------------------------------------------


def test_own_encryption_order_wins_over_the_peers():
    peer = [ike(1, AES256, AES128, PRF_SHA256, I_SHA256, *dh(14))]
    answer, suite = select_ike(peer, ("AES128", "AES256"), ("SHA2-256",), (14,), 14)
    assert (suite.encr.aws_name, suite.encr.key_bits) == ("AES128", 128)
    assert picked(answer) == {(1, 12, 128), (2, 5, None), (3, 12, None), (4, 14, None)}
    # the same offer, vgw configured the other way round
    _, suite = select_ike(peer, ("AES256", "AES128"), ("SHA2-256",), (14,), 14)
    assert suite.encr.key_bits == 256


def test_own_order_wins_across_proposals():
    """The peer's first proposal is AES256; vgw prefers AES128, in its second."""
    peer = [ike(1, AES256, PRF_SHA256, I_SHA256, *dh(14)),
            ike(2, AES128, PRF_SHA256, I_SHA256, *dh(14))]
    answer, suite = select_ike(peer, ("AES128", "AES256"), ("SHA2-256",), (14,), 14)
    assert suite.encr.key_bits == 128
    assert answer.num == 2  # §3.3.1: the number of the accepted proposal


def test_own_integrity_and_prf_order_wins():
    peer = [ike(1, AES128, PRF_SHA512, PRF_SHA1, I_SHA512, I_SHA1, *dh(14))]
    _, suite = select_ike(peer, ("AES128",), ("SHA1", "SHA2-512"), (14,), 14)
    assert (int(suite.integ), int(suite.prf)) == (2, 2)
    _, suite = select_ike(peer, ("AES128",), ("SHA2-512", "SHA1"), (14,), 14)
    assert (int(suite.integ), int(suite.prf)) == (14, 7)


def test_encryption_outranks_integrity():
    """AWS walks encryption first: AES128 with its less preferred hash beats
    AES256 with the preferred one."""
    peer = [ike(1, AES256, PRF_SHA256, I_SHA256, *dh(14)),
            ike(2, AES128, PRF_SHA1, I_SHA1, *dh(14))]
    _, suite = select_ike(peer, ("AES128", "AES256"), ("SHA2-256", "SHA1"), (14,), 14)
    assert suite.encr.key_bits == 128 and int(suite.integ) == 2


def test_gcm_ike_proposal_has_prf_but_no_integ():
    peer = [ike(1, GCM256, PRF_SHA384, *dh(20))]
    answer, suite = select_ike(peer, ALL_ENC, ALL_HASH, (20,), 20)
    assert suite.encr.aws_name == "AES256-GCM-16"
    assert int(suite.integ) == 0 and int(suite.prf) == 6
    assert picked(answer) == {(1, 20, 256), (2, 6, None), (4, 20, None)}  # no type 3


def test_gcm_with_integ_none_is_accepted():
    peer = [ike(1, GCM128, PRF_SHA256, T(3, 0), *dh(19))]
    _, suite = select_ike(peer, ("AES128-GCM-16",), ALL_HASH, (19,), 19)
    assert suite.encr.aws_name == "AES128-GCM-16"


def test_gcm_with_a_real_integ_is_not_taken():
    """§3.3: an AEAD cipher is proposed without integrity (or with NONE)."""
    peer = [ike(1, GCM128, PRF_SHA256, I_SHA256, *dh(19))]
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ("AES128-GCM-16",), ALL_HASH, (19,), 19)


def test_nothing_in_common():
    peer = [ike(1, T(1, 3), PRF_SHA1, I_SHA1, *dh(2))]  # 3DES
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ALL_ENC, ALL_HASH, (2, 14), 2)
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(5))]   # group 5 is not AWS phase 1
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ALL_ENC, ALL_HASH, (2, 14), 5)
    peer = [ike(1, AES128, T(2, 1), T(3, 1), *dh(14))]  # MD5
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ALL_ENC, ALL_HASH, (14,), 14)
    with pytest.raises(NoProposalChosen):
        select_ike([], ALL_ENC, ALL_HASH, (14,), 14)


def test_esp_proposal_in_ike_sa_is_ignored():
    peer = [esp(1, AES128, I_SHA1, *dh(14))]
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ALL_ENC, ALL_HASH, (14,), 14)


# --- DH groups and INVALID_KE_PAYLOAD ---------------------------------------------------------------


def test_guessed_group_accepted_when_acceptable():
    """The peer's KE group is in vgw's list and in the proposal: no extra round
    trip, even though vgw prefers another group."""
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(14, 19))]
    answer, suite = select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 14)
    assert suite.dh == 14
    assert (4, 14, None) in picked(answer) and (4, 19, None) not in picked(answer)


def test_invalid_ke_names_vgws_preferred_group_among_those_offered():
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(14, 19, 20))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ALL_ENC, ALL_HASH, (21, 20, 19), 14)
    assert info.value.group == 20  # 21 is preferred but not offered


def test_invalid_ke_when_ke_group_not_in_proposal():
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(19))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 14)
    assert info.value.group == 19


def test_right_suite_other_group_not_in_vgws_list_is_no_proposal():
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(14))]
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ALL_ENC, ALL_HASH, (19, 20), 14)


def test_ke_guess_does_not_buy_a_less_preferred_cipher():
    """vgw prefers AES128; the peer's KE group (14) is offered only with AES256.
    The suite is chosen in vgw's order first (docs/aws.md §1.1), so the answer
    is INVALID_KE_PAYLOAD naming the group offered with AES128, not AES256."""
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(19)),
            ike(2, AES256, PRF_SHA1, I_SHA1, *dh(14))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 14)
    assert info.value.group == 19
    # the peer retries with 19 (RFC 7296 §1.2): AES128 from proposal 1
    answer, suite = select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 19)
    assert (suite.encr.key_bits, suite.dh, answer.num) == (128, 19, 1)
    assert picked(answer) == {(1, 12, 128), (2, 2, None), (3, 2, None), (4, 19, None)}


def test_invalid_ke_names_the_group_offered_with_the_chosen_suite():
    """vgw's first group (14) is what the peer guessed, but the peer offers it only
    with AES256: for AES128 the group to name is 19, vgw's best among AES128's."""
    peer = [ike(1, AES256, PRF_SHA1, I_SHA1, *dh(14)),
            ike(2, AES128, PRF_SHA1, I_SHA1, *dh(19, 20))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ("AES128", "AES256"), ALL_HASH, (14, 20, 19), 14)
    assert info.value.group == 20


def test_ke_guess_does_not_buy_a_less_preferred_integrity():
    peer = [ike(1, AES128, PRF_SHA256, I_SHA256, *dh(19)),
            ike(2, AES128, PRF_SHA1, I_SHA1, *dh(14))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ("AES128",), ("SHA2-256", "SHA1"), (19, 14), 14)
    assert info.value.group == 19


def test_ke_guess_does_not_buy_a_less_preferred_prf():
    """The peer pairs PRF and INTEG freely; both proposals carry INTEG SHA1 (the
    only one offered), so the PRF decides: vgw prefers SHA2-256, found with
    group 19 only. The PRF is the last key of vgw's order but still outranks the
    KE guess."""
    peer = [ike(1, AES128, PRF_SHA256, I_SHA1, *dh(19)),
            ike(2, AES128, PRF_SHA1, I_SHA1, *dh(14))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ("AES128",), ("SHA2-256", "SHA1"), (19, 14), 14)
    assert info.value.group == 19
    _, suite = select_ike(peer, ("AES128",), ("SHA2-256", "SHA1"), (19, 14), 19)
    assert (int(suite.integ), int(suite.prf), suite.dh) == (2, 5, 19)


def test_invalid_ke_group_is_vgws_best_across_the_proposals_holding_the_suite():
    """The same suite in two proposals with different groups: the guess (2) fits
    neither; vgw names its most preferred group of both (19, from proposal 2)."""
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(14, 2)),
            ike(2, AES128, PRF_SHA1, I_SHA1, *dh(19))]
    with pytest.raises(InvalidKe) as info:
        select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 2)
    assert info.value.group == 19
    # a guess offered with the suite in either proposal is taken from that proposal
    answer, suite = select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 14)
    assert (suite.dh, answer.num) == (14, 1)
    answer, suite = select_ike(peer, ALL_ENC, ALL_HASH, (19, 14), 19)
    assert (suite.dh, answer.num) == (19, 2)


def test_suite_without_a_common_group_gives_way_to_the_next():
    """vgw's preferred AES128 comes only with group 5, which vgw's phase 1 list
    lacks: that suite cannot be had at all, so AES256 (with 14) is next."""
    peer = [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(5)),
            ike(2, AES256, PRF_SHA1, I_SHA1, *dh(14))]
    answer, suite = select_ike(peer, ALL_ENC, ALL_HASH, (14,), 14)
    assert (suite.encr.key_bits, suite.dh, answer.num) == (256, 14, 2)
    with pytest.raises(InvalidKe) as info:   # the guess 5 fits no suite vgw can take
        select_ike(peer, ALL_ENC, ALL_HASH, (14,), 5)
    assert info.value.group == 14
    with pytest.raises(NoProposalChosen):
        select_ike(peer, ALL_ENC, ALL_HASH, (19, 20), 14)


def test_esp_pfs_ke_guess_does_not_buy_a_less_preferred_suite():
    """CREATE_CHILD_SA with PFS (phase2_dh_group_numbers) follows the same rule."""
    peer = [esp(1, AES128, I_SHA256, *dh(19), ESN_NO),
            esp(2, AES256, I_SHA1, *dh(14), ESN_NO)]
    kw = dict(dh_groups=(19, 14), pfs=True)
    with pytest.raises(InvalidKe) as info:
        select_esp(peer, ("AES128", "AES256"), ("SHA2-256", "SHA1"), ESP_SPI, ke_group=14, **kw)
    assert info.value.group == 19
    answer, suite = select_esp(peer, ("AES128", "AES256"), ("SHA2-256", "SHA1"), ESP_SPI,
                               ke_group=19, **kw)
    assert (suite.encr.key_bits, int(suite.integ), suite.dh, answer.num) == (128, 12, 19, 1)
    assert picked(answer) == {(1, 12, 128), (3, 12, None), (4, 19, None), (5, 0, None)}
    # vgw configured the other way round: the peer's guess fits vgw's first suite
    answer, suite = select_esp(peer, ("AES256", "AES128"), ("SHA1", "SHA2-256"), ESP_SPI,
                               ke_group=14, **kw)
    assert (suite.encr.key_bits, suite.dh, answer.num) == (256, 14, 2)


def test_esp_pfs_esn_only_proposal_is_not_a_suite():
    """An ESN-only proposal cannot be taken (no ESN in the data path), so its
    group is never named: the next suite's group is."""
    peer = [esp(1, AES128, I_SHA1, *dh(19), ESN_YES),
            esp(2, AES256, I_SHA1, *dh(14), ESN_NO)]
    with pytest.raises(InvalidKe) as info:
        select_esp(peer, ("AES128", "AES256"), ALL_HASH, ESP_SPI, dh_groups=(19, 14),
                   ke_group=20, pfs=True)
    assert info.value.group == 14


def test_esp_without_pfs_ignores_the_groups_for_the_suite():
    """IKE_AUTH (no KE): the groups of the proposals play no part in the choice."""
    peer = [esp(1, AES256, I_SHA1, *dh(14), ESN_NO),
            esp(2, AES128, I_SHA1, *dh(21), ESN_NO)]
    answer, suite = select_esp(peer, ("AES128", "AES256"), ALL_HASH, ESP_SPI, dh_groups=(14,))
    assert (suite.encr.key_bits, suite.dh, answer.num) == (128, 0, 2)


# --- ESP ----------------------------------------------------------------------------------------------


def test_esp_aws_order_and_spi():
    peer = [esp(1, AES256, AES128, I_SHA512, I_SHA256, ESN_NO)]
    answer, suite = select_esp(peer, ("AES128", "AES256"), ("SHA2-256", "SHA2-512"), ESP_SPI)
    assert suite.encr.key_bits == 128 and int(suite.integ) == 12
    assert answer.spi == ESP_SPI and answer.protocol == 3
    assert picked(answer) == {(1, 12, 128), (3, 12, None), (5, 0, None)}
    assert suite.prf is None and suite.dh == 0


def test_esp_gcm_without_integ():
    peer = [esp(1, GCM256, ESN_NO), esp(2, AES128, I_SHA1, ESN_NO)]
    answer, suite = select_esp(peer, ALL_ENC[::-1], ALL_HASH, ESP_SPI)
    assert suite.encr.aws_name == "AES256-GCM-16" and int(suite.integ) == 0
    assert answer.num == 1 and picked(answer) == {(1, 20, 256), (5, 0, None)}


def test_esp_esn():
    # vgw's data path has no ESN (dataplane.esp): ESN-only offers are refused
    with pytest.raises(NoProposalChosen):
        select_esp([esp(1, AES128, I_SHA1, ESN_YES)], ALL_ENC, ALL_HASH, ESP_SPI)
    answer, suite = select_esp([esp(1, AES128, I_SHA1, ESN_YES, ESN_NO)], ALL_ENC, ALL_HASH, ESP_SPI)
    assert not suite.esn and (5, 0, None) in picked(answer) and (5, 1, None) not in picked(answer)
    # no ESN transform at all: accepted, answered without one
    answer, suite = select_esp([esp(1, AES128, I_SHA1)], ALL_ENC, ALL_HASH, ESP_SPI)
    assert not any(t.type == 5 for t in answer.transforms)


def test_esp_dh_ignored_in_ike_auth_required_with_pfs():
    peer = [esp(1, AES128, I_SHA1, *dh(14), ESN_NO)]
    answer, suite = select_esp(peer, ALL_ENC, ALL_HASH, ESP_SPI)
    assert suite.dh == 0 and not any(t.type == 4 for t in answer.transforms)
    answer, suite = select_esp(peer, ALL_ENC, ALL_HASH, ESP_SPI, dh_groups=(14,), ke_group=14, pfs=True)
    assert suite.dh == 14
    with pytest.raises(InvalidKe) as info:
        select_esp([esp(1, AES128, I_SHA1, *dh(2, 14), ESN_NO)], ALL_ENC, ALL_HASH, ESP_SPI,
                   dh_groups=(14,), ke_group=2, pfs=True)
    assert info.value.group == 14
    with pytest.raises(NoProposalChosen):
        select_esp([esp(1, AES128, I_SHA1, ESN_NO)], ALL_ENC, ALL_HASH, ESP_SPI,
                   dh_groups=(14,), ke_group=14, pfs=True)


def test_transform_with_unknown_attribute_is_skipped():
    """§3.3.6: a transform with an unknown attribute is rejected, the rest of
    the proposal still counts."""
    peer = [esp(1, T(1, 12, 128, unknown=True), AES256, I_SHA1, ESN_NO)]
    _, suite = select_esp(peer, ("AES128", "AES256"), ALL_HASH, ESP_SPI)
    assert suite.encr.key_bits == 256
    peer = [esp(1, T(1, 12, 128, unknown=True), I_SHA1, ESN_NO)]
    with pytest.raises(NoProposalChosen):
        select_esp(peer, ALL_ENC, ALL_HASH, ESP_SPI)


def test_proposal_with_unknown_transform_type_is_skipped():
    peer = [esp(1, AES128, I_SHA1, ESN_NO, T(6, 1)),   # type 6: an additional key exchange
            esp(2, AES256, I_SHA1, ESN_NO)]
    answer, suite = select_esp(peer, ("AES128", "AES256"), ALL_HASH, ESP_SPI)
    assert suite.encr.key_bits == 256 and answer.num == 2


def test_key_length_must_match():
    peer = [esp(1, T(1, 12, 192), I_SHA1, ESN_NO)]  # AES-192 is not an AWS value
    with pytest.raises(NoProposalChosen):
        select_esp(peer, ALL_ENC, ALL_HASH, ESP_SPI)
    peer = [esp(1, T(1, 12), I_SHA1, ESN_NO)]      # AES-CBC without a key length
    with pytest.raises(NoProposalChosen):
        select_esp(peer, ALL_ENC, ALL_HASH, ESP_SPI)


# --- what vgw offers as initiator -------------------------------------------------------------------


def test_ike_offer_splits_aead_and_puts_the_ke_group_first():
    offer = ike_offer(("AES256-GCM-16", "AES128"), ("SHA2-256", "SHA1"), (14, 19, 20), first_group=19)
    assert [p.num for p in offer] == [1, 2]          # §3.3.1: numbered from 1
    gcm, cbc = offer
    assert [(t.type, t.id, t.key_length) for t in gcm.transforms] == \
        [(1, 20, 256), (2, 5, None), (2, 2, None), (4, 19, None), (4, 14, None), (4, 20, None)]
    assert [(t.type, t.id, t.key_length) for t in cbc.transforms] == \
        [(1, 12, 128), (2, 5, None), (2, 2, None), (3, 12, None), (3, 2, None),
         (4, 19, None), (4, 14, None), (4, 20, None)]
    assert all(p.protocol == 1 and p.spi == b"" for p in offer)


def test_esp_offer():
    offer = esp_offer(("AES128", "AES128-GCM-16"), ("SHA1",), ESP_SPI)
    cbc, gcm = offer
    assert [(t.type, t.id) for t in cbc.transforms] == [(1, 12), (3, 2), (5, 0)]
    assert [(t.type, t.id) for t in gcm.transforms] == [(1, 20), (5, 0)]
    assert cbc.spi == gcm.spi == ESP_SPI and cbc.protocol == 3


def test_offer_and_select_agree():
    """What vgw offers, vgw (as responder) accepts: every single-valued config."""
    for e in ALL_ENC:
        for hsh in ALL_HASH:
            offer = ike_offer((e,), (hsh,), (19,))
            answer, suite = select_ike(offer, (e,), (hsh,), (19,), 19)
            assert check_answer(offer, [answer], 1) == suite
            offer = esp_offer((e,), (hsh,), ESP_SPI)
            answer, suite = select_esp(offer, (e,), (hsh,), b"\x00\x00\x99\x99")
            assert check_answer(offer, [answer], 3) == suite


# --- the initiator's check of the answer (§2.7) -------------------------------------------------------

OFFER = [ike(1, AES128, AES256, PRF_SHA256, PRF_SHA1, I_SHA256, I_SHA1, *dh(14, 19)),
         ike(2, GCM128, PRF_SHA256, *dh(14, 19))]


def test_check_answer_accepts_a_proper_pick():
    suite = check_answer(OFFER, [ike(1, AES256, PRF_SHA1, I_SHA256, *dh(19))], 1)
    assert (suite.encr.key_bits, int(suite.prf), int(suite.integ), suite.dh) == (256, 2, 12, 19)
    suite = check_answer(OFFER, [ike(2, GCM128, PRF_SHA256, *dh(14))], 1)
    assert suite.encr.aws_name == "AES128-GCM-16" and int(suite.integ) == 0


@pytest.mark.parametrize("answer", [
    [],                                                                        # nothing
    [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(14)), ike(2, GCM128, PRF_SHA1, *dh(14))],  # two
    [ike(3, AES128, PRF_SHA1, I_SHA1, *dh(14))],                                # number not offered
    [ike(1, T(1, 3), PRF_SHA1, I_SHA1, *dh(14))],                               # 3DES not offered
    [ike(1, T(1, 12, 192), PRF_SHA1, I_SHA1, *dh(14))],                          # key length not offered
    [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(20))],                                # group not offered
    [ike(2, AES128, PRF_SHA256, *dh(14))],                                      # from the other proposal
    [ike(1, AES128, AES256, PRF_SHA1, I_SHA1, *dh(14))],                        # two ENCR
    [ike(1, AES128, PRF_SHA1, I_SHA1, *dh(14, 19))],                            # two DH
    [ike(1, AES128, PRF_SHA1, I_SHA1, I_SHA256, *dh(14))],                      # two INTEG
    [ike(1, AES128, PRF_SHA1, *dh(14))],                                        # CBC without INTEG
    [ike(1, AES128, I_SHA1, *dh(14))],                                          # no PRF
    [ike(1, AES128, PRF_SHA1, I_SHA1)],                                         # no DH
    [ike(1, PRF_SHA1, I_SHA1, *dh(14))],                                        # no ENCR
    [esp(1, AES128, PRF_SHA1, I_SHA1, *dh(14))],                                # wrong protocol
])
def test_check_answer_rejects(answer):
    with pytest.raises(NoProposalChosen):
        check_answer(OFFER, answer, 1)


def test_check_answer_esp():
    offer = esp_offer(("AES128",), ("SHA1",), ESP_SPI)
    suite = check_answer(offer, [esp(1, AES128, I_SHA1, ESN_NO)], 3)
    assert not suite.esn and suite.dh == 0
    with pytest.raises(NoProposalChosen):
        check_answer(offer, [esp(1, AES128, I_SHA1, ESN_YES)], 3)   # ESN not offered
    with pytest.raises(NoProposalChosen):
        check_answer(offer, [esp(1, AES128, I_SHA1, ESN_NO)], 1)
