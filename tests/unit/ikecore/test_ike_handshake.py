"""Two vgw cores back to back: every AWS phase 1 and phase 2 algorithm, the
resulting SAs on both sides, and ESP sealed with one side's keys opening with
the other's (dataplane.esp), which proves the key directions end to end.

Expected values come from the configuration (AWS names, docs/aws.md §0/§1.4)
and the IANA numbers typed in below, not from running the code.
"""

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP

from dataplane.esp import EspSa
from ikecore.constants import ExchangeType, HeaderFlag, NotifyType
from ikecore.crypto import InvalidPublicValue, get_dh_group
from ikecore import sa_operations
from ikecore.message import Header, decode_message, encode_message
from ikecore.payloads import KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload, Transform
from ikecore.endpoint import IkeEndpoint
from .ikepair import ADDR_A, ADDR_B, IkePair, Side, settings_a, settings_b

ENCRYPTION = ("AES128", "AES256", "AES128-GCM-16", "AES256-GCM-16")
INTEGRITY = ("SHA1", "SHA2-256", "SHA2-384", "SHA2-512")
DH_GROUPS = (2, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24)  # AWS phase 1 (docs/aws.md §0)

# IANA "IKEv2 Parameters": ENCR 12 = AES-CBC, 20 = AES-GCM-16; INTEG 2 = HMAC-SHA1-96,
# 12/13/14 = HMAC-SHA2-256-128/-384-192/-512-256.
ENCR_IANA = {"AES128": (12, 128), "AES256": (12, 256),
             "AES128-GCM-16": (20, 128), "AES256-GCM-16": (20, 256)}
INTEG_IANA = {"SHA1": 2, "SHA2-256": 12, "SHA2-384": 13, "SHA2-512": 14}
ESP_ENCR = {12: "aes-cbc", 20: "aes-gcm-16"}
ESP_INTEG = {2: "hmac-sha1-96", 12: "hmac-sha2-256-128", 13: "hmac-sha2-384-192",
             14: "hmac-sha2-512-256"}


def _phase1_cases():
    """Every encryption x integrity pair once; the DH groups go round so that
    each of the 12 appears at least once (16 handshakes, not 192)."""
    cases = []
    for i, (e, h) in enumerate((e, h) for e in ENCRYPTION for h in INTEGRITY):
        cases.append((e, h, DH_GROUPS[i % len(DH_GROUPS)]))
    return cases


PHASE1_CASES = _phase1_cases()


def test_phase1_cases_cover_every_value():
    assert {c[0] for c in PHASE1_CASES} == set(ENCRYPTION)
    assert {c[1] for c in PHASE1_CASES} == set(INTEGRITY)
    assert {c[2] for c in PHASE1_CASES} == set(DH_GROUPS)


def esp_pair(up_out, up_in):
    """EspSa for up_out's outbound direction and up_in's inbound direction."""
    encr = ESP_ENCR[up_out.encr_id]
    integ = ESP_INTEG.get(int(up_out.integ_id)) if up_out.integ_id else None
    sealer = EspSa(up_out.spi_out, encr, up_out.encr_key_out, integ,
                   up_out.integ_key_out if integ else None)
    encr_in = ESP_ENCR[up_in.encr_id]
    integ_in = ESP_INTEG.get(int(up_in.integ_id)) if up_in.integ_id else None
    opener = EspSa(up_in.spi_in, encr_in, up_in.encr_key_in, integ_in,
                   up_in.integ_key_in if integ_in else None)
    return sealer, opener


def assert_esp_flows(up_a, up_b):
    inner = bytes(IP(src="10.1.0.1", dst="10.2.0.1") / ICMP() / b"vgw back to back")
    for up_out, up_in in ((up_a, up_b), (up_b, up_a)):
        sealer, opener = esp_pair(up_out, up_in)
        packet = sealer.encrypt(inner)
        assert int.from_bytes(packet[:4], "big") == up_in.spi_in  # RFC 4303 §2.1
        assert opener.decrypt(packet) == inner


def assert_children_match(pair):
    [ca] = pair.a.child_ups
    [cb] = pair.b.child_ups
    # the SPI one side receives on is the one the other sends to
    assert ca.spi_in == cb.spi_out and ca.spi_out == cb.spi_in
    assert ca.spi_in != ca.spi_out
    assert ca.spi_in > 255 and ca.spi_out > 255  # RFC 4303 §2.1: 1..255 reserved
    # a's outbound keys are b's inbound keys and the other way round
    assert (ca.encr_key_out, ca.integ_key_out) == (cb.encr_key_in, cb.integ_key_in)
    assert (ca.encr_key_in, ca.integ_key_in) == (cb.encr_key_out, cb.integ_key_out)
    assert ca.encr_key_in != ca.encr_key_out
    # selectors mirror each other
    assert ca.local_ts == cb.remote_ts and ca.remote_ts == cb.local_ts
    return ca, cb


@pytest.mark.parametrize("encr,integ,group", PHASE1_CASES)
def test_phase1_suite(encr, integ, group):
    # A offers every AWS value, in the reverse of B's preference, and guesses
    # `group` first; B accepts only the case under test, so B's choice is forced.
    others = tuple(g for g in DH_GROUPS if g != group)
    pair = IkePair(
        settings_a(phase1_encryption=ENCRYPTION[::-1], phase1_integrity=INTEGRITY[::-1],
                 phase1_dh_groups=(group,) + others),
        settings_b(phase1_encryption=(encr,), phase1_integrity=(integ,), phase1_dh_groups=(group,)))
    pair.handshake()

    [up_a], [up_b] = pair.a.ups, pair.b.ups
    for up in (up_a, up_b):
        assert up.encryption == encr
        assert up.prf == integ
        # RFC 7296 §3.3 / RFC 5282: no INTEG with an AEAD cipher
        assert up.integrity == (None if "GCM" in encr else integ)
        assert up.dh_group == group
        assert (up.spi_i, up.spi_r) == (up_a.spi_i, up_a.spi_r)
    assert up_a.initiator and not up_b.initiator
    assert pair.a.sa.state.value == pair.b.sa.state.value == "ESTABLISHED"
    assert pair.a.sa.keys.sk_ei == pair.b.sa.keys.sk_ei
    assert pair.a.sa.keys.sk_er == pair.b.sa.keys.sk_er
    assert pair.a.sa.sk_d == pair.b.sa.sk_d
    # 4 datagrams: IKE_SA_INIT and IKE_AUTH, one round trip each (RFC 7296 §1.2)
    assert len(pair.wire) == 4
    ca, cb = assert_children_match(pair)
    assert_esp_flows(ca, cb)
    assert pair.a.endpoint.status()["phase1_state"] == "established"
    assert pair.b.endpoint.status()["phase2_state"] == "established"


PHASE2_CASES = [(e, h) for e in ENCRYPTION for h in INTEGRITY]


@pytest.mark.parametrize("encr,integ", PHASE2_CASES)
def test_phase2_suite(encr, integ):
    pair = IkePair(
        settings_a(phase2_encryption=ENCRYPTION[::-1], phase2_integrity=INTEGRITY[::-1]),
        settings_b(phase2_encryption=(encr,), phase2_integrity=(integ,)))
    pair.handshake()
    ca, cb = assert_children_match(pair)
    encr_id, key_bits = ENCR_IANA[encr]
    gcm = encr_id == 20
    for c in (ca, cb):
        assert (int(c.encr_id), c.encr_key_bits) == (encr_id, key_bits)
        assert c.encryption == encr
        # AWS omits phase 2 integrity with GCM (docs/aws.md §1.4)
        assert int(c.integ_id) == (0 if gcm else INTEG_IANA[integ])
        assert c.integrity == (None if gcm else integ)
        assert c.dh_group == 0  # IKE_AUTH's CHILD SA has no KE (RFC 7296 §1.2)
        # key sizes: RFC 4106 §8.1 (GCM key + 4-byte salt), RFC 4868 / RFC 2404
        assert len(c.encr_key_in) == len(c.encr_key_out) == key_bits // 8 + (4 if gcm else 0)
        integ_len = {"SHA1": 20, "SHA2-256": 32, "SHA2-384": 48, "SHA2-512": 64}[integ]
        assert len(c.integ_key_in) == len(c.integ_key_out) == (0 if gcm else integ_len)
        assert c.udp_encap is False
        assert c.lifetime == 3600 and c.replay_window == 1024  # AWS defaults, docs/aws.md §0
    assert (ca.local, ca.remote) == ((ADDR_A, 500), (ADDR_B, 500))
    assert (cb.local, cb.remote) == ((ADDR_B, 500), (ADDR_A, 500))
    assert_esp_flows(ca, cb)


def test_default_policies_agree_on_awss_first_choices():
    """With AWS's default lists on both sides, the responder's first entries win:
    AES128, SHA1, DH 2 in phase 1 (docs/aws.md §0: the lists, in that order)."""
    from ikecore.settings import IkeSettings
    from .ikepair import PSK, seeded_random
    pa = IkeSettings(name="a", local_ip=ADDR_A, remote_ip=ADDR_B, psk=PSK,
                      startup_action="start", random_bytes=seeded_random(5))
    pb = IkeSettings(name="b", local_ip=ADDR_B, remote_ip=ADDR_A, psk=PSK,
                      random_bytes=seeded_random(6))
    pair = IkePair(pa, pb)
    pair.handshake()
    [up] = pair.b.ups
    assert (up.encryption, up.integrity, up.prf, up.dh_group) == ("AES128", "SHA1", "SHA1", 2)
    [cb] = pair.b.child_ups
    assert (cb.encryption, cb.integrity) == ("AES128", "SHA1")


def test_traffic_selectors_as_configured():
    """A proposes its configured networks; B accepts them unchanged when its
    own configuration covers them (RFC 7296 §2.9)."""
    pair = IkePair(settings_a(vgw_ts="10.1.0.0/16", cgw_ts="10.2.0.0/16"),
                   settings_b(cgw_ts="10.1.0.0/16", vgw_ts="10.2.0.0/16"))
    pair.handshake()
    ca, cb = assert_children_match(pair)
    net = ipaddress.ip_network
    assert [t.networks() for t in ca.local_ts] == [[net("10.1.0.0/16")]]
    assert [t.networks() for t in ca.remote_ts] == [[net("10.2.0.0/16")]]
    for t in ca.local_ts + ca.remote_ts:
        assert (t.ip_proto, t.start_port, t.end_port) == (0, 0, 65535)


def test_remote_identity_is_the_peers_outside_ip():
    """ID_IPV4_ADDR of the outside IP by default (docs/aws.md §9.3)."""
    pair = IkePair()
    pair.handshake()
    assert pair.a.ups[0].remote_id == ADDR_B
    assert pair.b.ups[0].remote_id == ADDR_A


def test_remote_id_mismatch_fails_authentication():
    pair = IkePair(settings_a(), settings_b(remote_id="203.0.113.9"))
    pair.handshake()
    assert [d.reason for d in pair.b.downs] == ["auth-failed"]
    assert [d.reason for d in pair.a.downs] == ["auth-failed"]
    assert pair.b.logged("AWS tunnel is sending AUTHENTICATION_FAILED as the response")
    assert pair.a.sas == [] and pair.b.sas == []


# --- proposal choice on the wire: vgw's order, then the DH group (docs/aws.md §1.1) ----------

# IANA numbers (RFC 7296 §3.3.2): transform types, ENCR 12 AES-CBC, PRF 5 SHA2-256,
# INTEG 12 SHA2-256-128; IKE_SA_INIT is exchange 34, INVALID_KE_PAYLOAD notify 17.
T_ENCR, T_PRF, T_INTEG, T_DH = 1, 2, 3, 4


def _scripted_init(spi_i: bytes, proposals, ke_group: int, ke_data: bytes | None = None) -> bytes:
    """An IKE_SA_INIT request from a scripted peer (not vgw's initiator): any
    proposals, any KE. Nonce and NAT-D sized so that the answer needs no cookie."""
    if ke_data is None:
        ke_data = get_dh_group(ke_group).generate().public_bytes
    payloads = [SaPayload(list(proposals)), KePayload(ke_group, ke_data),
                NoncePayload(b"\x33" * 32),
                NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, b"\x00" * 20),
                NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, b"\x00" * 20)]
    header = Header(spi_i, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0, 0)
    return encode_message(header, payloads)


def _ike_proposal(num, key_bits, group):
    return Proposal(num, 1, b"", (Transform(T_ENCR, 12, key_bits), Transform(T_PRF, 5),
                                  Transform(T_INTEG, 12), Transform(T_DH, group)))


def _feed(endpoint, data):
    endpoint.receive(data, (ADDR_B, 500), (ADDR_A, 500), 0.0)
    return endpoint.datagrams_to_send()


def test_peer_ke_guess_does_not_buy_a_less_preferred_cipher_and_the_retry_gets_vgws():
    """A peer offers AES128 with group 19 and AES256 with group 14, and guesses 14.
    vgw prefers AES128 (its list, not the peer's KE, decides the suite): it answers
    INVALID_KE_PAYLOAD(19) and keeps nothing; the peer's retry with 19 gets AES128
    from proposal 1 (RFC 7296 §1.2, §3.3.1)."""
    endpoint = IkeEndpoint(settings_b(phase1_encryption=("AES128", "AES256"),
                                phase1_integrity=("SHA2-256",), phase1_dh_groups=(19, 14)))
    proposals = [_ike_proposal(1, 128, 19), _ike_proposal(2, 256, 14)]
    spi_i = b"\x5a" * 8
    [first] = _feed(endpoint, _scripted_init(spi_i, proposals, 14))
    refusal = decode_message(first.data)
    assert [(n.notify_type, n.data) for n in refusal.notifies()] == [(17, b"\x00\x13")]  # 19
    assert refusal.get(SaPayload) is None and refusal.header.spi_r == bytes(8)
    assert endpoint.sas == {}
    [second] = _feed(endpoint, _scripted_init(spi_i, proposals, 19))
    answer = decode_message(second.data)
    [chosen] = answer.get(SaPayload).proposals
    assert chosen.num == 1
    assert [(t.type, t.id, t.key_length) for t in chosen.transforms] == \
        [(T_ENCR, 12, 128), (T_PRF, 5, None), (T_INTEG, 12, None), (T_DH, 19, None)]
    assert answer.get(KePayload).group == 19


def test_vgw_initiator_retries_with_the_group_the_responder_names():
    """A prefers AES256 and guesses 14; B prefers AES128 and groups 19, 20 (A lists
    20 before 19). B names its own first group, 19; A retries with it (RFC 7296
    §1.2) and both end on B's choices: AES128, 19."""
    pair = IkePair(settings_a(phase1_encryption=("AES256", "AES128"), phase1_dh_groups=(14, 20, 19)),
                   settings_b(phase1_encryption=("AES128", "AES256"), phase1_dh_groups=(19, 20)))
    pair.handshake()
    answer = decode_message(pair.wire[1][1].data)
    assert [(n.notify_type, n.data) for n in answer.notifies()] == [(17, b"\x00\x13")]
    retry = decode_message(pair.wire[2][1].data)
    assert retry.payloads[1].group == 19
    [up_a], [up_b] = pair.a.ups, pair.b.ups
    assert (up_a.encryption, up_a.dh_group) == (up_b.encryption, up_b.dh_group) == ("AES128", 19)
    assert len(pair.wire) == 6


# --- RFC 6989: the peer's KE value is checked before vgw makes a key ------------------------


class _SpyGroup:
    """A real DH group that records, in order, what the responder asks of it."""

    def __init__(self, real, calls: list):
        self.real, self.calls = real, calls
        self.id, self.public_size = real.id, real.public_size

    def check_public(self, peer: bytes) -> None:
        self.calls.append("check")
        self.real.check_public(peer)

    def generate(self):
        self.calls.append("generate")
        return self.real.generate()


def _bad_ke(group: int) -> bytes:
    """A public value RFC 6989 rejects, per kind of group."""
    size = get_dh_group(group).public_size
    if group in (19, 20, 21):
        return bytes(size)                    # (0, 0): not on the curve (§2.3)
    if group in (22, 23, 24):
        return (2).to_bytes(size, "big")      # in range, not in the order-q subgroup (§2.2)
    return (1).to_bytes(size, "big")          # y = 1 (§2.1)


@pytest.mark.parametrize("group", [19, 14, 24])
def test_bad_ke_is_refused_before_any_key_is_generated(monkeypatch, group):
    bad = _bad_ke(group)
    with pytest.raises(InvalidPublicValue):   # the premise: the value is one to refuse
        get_dh_group(group).check_public(bad)
    calls: list[str] = []
    monkeypatch.setattr(sa_operations, "get_dh_group", lambda g: _SpyGroup(get_dh_group(g), calls))
    b = Side("b", IkeEndpoint(settings_b(phase1_integrity=("SHA2-256",), phase1_dh_groups=(group,))))
    [out] = _feed(b.endpoint, _scripted_init(b"\x6b" * 8, [_ike_proposal(1, 128, group)], group, bad))
    assert [n.notify_type for n in decode_message(out.data).notifies()] == [7]  # INVALID_SYNTAX
    assert "generate" not in calls and "check" in calls
    assert b.endpoint.sas == {}
    assert b.logged("AWS tunnel rejected the KE payload of cgw")


def test_good_ke_is_checked_then_a_key_generated(monkeypatch):
    """The same path with a valid value: checked first, then one key made."""
    calls: list[str] = []
    monkeypatch.setattr(sa_operations, "get_dh_group", lambda g: _SpyGroup(get_dh_group(g), calls))
    endpoint = IkeEndpoint(settings_b(phase1_integrity=("SHA2-256",)))
    [out] = _feed(endpoint, _scripted_init(b"\x6c" * 8, [_ike_proposal(1, 128, 19)], 19))
    assert decode_message(out.data).get(KePayload).group == 19
    assert calls == ["check", "generate"]
