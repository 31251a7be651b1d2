"""An independent parser reads what vgw sends: scapy.contrib.ikev2.

Every message of a handshake, a liveness check, CHILD and IKE SA deletes, and
the error answers is dissected by scapy, and its fields are compared with
what RFC 7296 and the configuration say they must be. Encrypted messages are
opened with keys this test derives itself (ikepair: prf+ with hmac, raw
AES-CBC/AES-GCM from `cryptography`) from the nonces scapy read and the DH
shared secret, and the AUTH payloads are recomputed the same way; vgw's own
parser and crypto are not used to check vgw.
"""

import ipaddress
import struct

import pytest
from scapy.contrib.ikev2 import (
    IKEv2, IKEv2_AUTH, IKEv2_Encrypted, IKEv2_IDi, IKEv2_IDr, IKEv2_Notify, IKEv2_SA,
    IKEv2_TSi, IKEv2_TSr,
)
from scapy.packet import NoPayload, Raw

from ikecore import sa_operations
from ikecore.exchanges import ike_init
from .ikepair import (
    ADDR_A, ADDR_B, CIPHERS, HASHES, PSK, IkePair, child_keys, ike_keys, nat_hash, open_sk,
    settings_a, settings_b, psk_auth,
)

# RFC 7296 §3.1 header flags, §3.2 payload types, §3.10.1 notify types
I_FLAG, R_FLAG = 0x08, 0x20
SA, KE, IDI, IDR, AUTH, NONCE, NOTIFY, DELETE, TSI, TSR, SK = 33, 34, 35, 36, 39, 40, 41, 42, 44, 45, 46
NAT_SRC, NAT_DST, INITIAL_CONTACT = 16388, 16389, 16384
FRAG_SUP = 16430  # RFC 7383 §2.3: IKEV2_FRAGMENTATION_SUPPORTED
NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, AUTHENTICATION_FAILED, TS_UNACCEPTABLE = 14, 17, 24, 38
# RFC 3526 / RFC 5903 public value sizes: MODP2048 256 bytes, ECP256 2 x 32
KE_SIZE = {14: 256, 19: 64}
PRF_ID = {"SHA1": 2, "SHA2-256": 5, "SHA2-384": 6, "SHA2-512": 7}
INTEG_ID = {"SHA1": 2, "SHA2-256": 12, "SHA2-384": 13, "SHA2-512": 14}


def payloads(pkt) -> list:
    """The top-level payload chain as scapy dissected it."""
    out = []
    layer = pkt.payload
    while not isinstance(layer, (NoPayload, Raw)):
        out.append(layer)
        layer = layer.payload
    assert not isinstance(layer, Raw), f"scapy left undissected bytes: {bytes(layer)!r}"
    return out


def types(pkt) -> list[int]:
    """Payload types in order, read from the next_payload fields. SK is last:
    its next_payload names the first payload inside it (RFC 7296 §3.14)."""
    out = [pkt.next_payload]
    for p in payloads(pkt):
        if isinstance(p, IKEv2_Encrypted):
            return out
        out.append(p.next_payload)
    assert out[-1] == 0
    return out[:-1]


def proposals(sa_layer) -> list:
    out = []
    prop = sa_layer.prop
    while not isinstance(prop, (NoPayload, Raw)):
        out.append(prop)
        prop = prop.payload
    return out


def transforms(prop) -> list[tuple]:
    out = []
    t = prop.trans
    while not isinstance(t, (NoPayload, Raw)):
        out.append((t.transform_type, t.transform_id, t.key_length if t.length > 8 else None))
        t = t.payload
    assert len(out) == prop.trans_nb
    return out


def inner(data: bytes, encr: str, integ, keys: dict, from_initiator: bool):
    """Open an SK message with independently derived keys; dissect the inner chain
    with scapy under a copy of the header whose next payload is the first inner one."""
    sk_e = keys["sk_ei"] if from_initiator else keys["sk_er"]
    sk_a = keys["sk_ai"] if from_initiator else keys["sk_ar"]
    first, plain = open_sk(data, encr, integ, sk_e, sk_a)
    hdr = data[:16] + bytes([first]) + data[17:24] + struct.pack("!I", 28 + len(plain))
    return IKEv2(hdr + plain)


def expected_ike_offer(encryption, integrity, groups):
    """RFC 7296 §3.3: AEAD and non-AEAD ciphers in separate proposals; AEAD ones
    carry no INTEG. (type, id, key length) sets per proposal, in order."""
    out = []
    cbc = [e for e in encryption if not CIPHERS[e][2]]
    gcm = [e for e in encryption if CIPHERS[e][2]]
    groups_ = [(4, g, None) for g in groups]
    prfs = [(2, PRF_ID[h], None) for h in integrity]
    for encs in ([cbc, gcm] if encryption[0] in cbc else [gcm, cbc]):
        if not encs:
            continue
        ts = [(1, CIPHERS[e][0], CIPHERS[e][1]) for e in encs] + prfs + groups_
        if not CIPHERS[encs[0]][2]:
            ts += [(3, INTEG_ID[h], None) for h in integrity]
        out.append(sorted(ts))
    return out


def expected_esp_offer(encryption, integrity):
    """ESP: the same split (RFC 7296 §3.3), no PRF, no DH in IKE_AUTH (§1.2),
    and ESN "no" (vgw's data path has no ESN)."""
    out = []
    for encs in ([e for e in encryption if CIPHERS[e][2] == CIPHERS[encryption[0]][2]],
                 [e for e in encryption if CIPHERS[e][2] != CIPHERS[encryption[0]][2]]):
        if not encs:
            continue
        ts = [(1, CIPHERS[e][0], CIPHERS[e][1]) for e in encs] + [(5, 0, None)]
        if not CIPHERS[encs[0]][2]:
            ts += [(3, INTEG_ID[h], None) for h in integrity]
        out.append(sorted(ts))
    return out


SUITES = [
    # phase 1 encr, integ, group; phase 2 encr, integ
    ("AES256", "SHA2-256", 14, "AES128", "SHA1"),
    ("AES128-GCM-16", "SHA2-384", 19, "AES256-GCM-16", "SHA2-512"),
]


@pytest.fixture
def shared_secrets(monkeypatch):
    """Record g^ir as each side computes it (to derive keys independently)."""
    secrets = []
    real = ike_init.get_dh_group

    class Key:
        def __init__(self, key):
            self._key, self.group, self.public_bytes = key, key.group, key.public_bytes

        def shared_secret(self, peer):
            s = self._key.shared_secret(peer)
            secrets.append(s)
            return s

    class Group:
        def __init__(self, group):
            self._group, self.id, self.public_size = group, group.id, group.public_size

        def generate(self):
            return Key(self._group.generate())

        def check_public(self, data):
            return self._group.check_public(data)

    monkeypatch.setattr(ike_init, "get_dh_group", lambda gid: Group(real(gid)))        # the initiator
    monkeypatch.setattr(sa_operations, "get_dh_group", lambda gid: Group(real(gid)))   # the responder
    return secrets


@pytest.mark.parametrize("e1,h1,g,e2,h2", SUITES)
def test_handshake_and_informational_as_scapy_reads_them(shared_secrets, e1, h1, g, e2, h2):
    offer_enc = (e1, "AES128" if e1 != "AES128" else "AES256", "AES256-GCM-16")
    offer_hash = (h1, "SHA1")
    offer_esp = (e2, "AES256" if e2 == "AES128" else "AES128")
    pa = settings_a(phase1_encryption=offer_enc, phase1_integrity=offer_hash,
                  phase1_dh_groups=(g, 2), phase2_encryption=offer_esp,
                  phase2_integrity=(h2,), vgw_ts="10.1.0.0/16", cgw_ts="10.2.0.0/16")
    pb = settings_b(phase1_encryption=(e1,), phase1_integrity=(h1,), phase1_dh_groups=(g,),
                  phase2_encryption=(e2,), phase2_integrity=(h2,),
                  cgw_ts="10.1.0.0/24", vgw_ts="10.2.0.0/16")
    pair = IkePair(pa, pb)
    pair.handshake()
    assert len(pair.wire) == 4
    (wa, init_req), (wb, init_resp), (wa2, auth_req), (wb2, auth_resp) = pair.wire
    assert (wa, wb, wa2, wb2) == ("a", "b", "a", "b")

    # --- IKE_SA_INIT request (RFC 7296 §1.2: HDR, SAi1, KEi, Ni) --------------------------
    req = IKEv2(init_req.data)
    spi_i = req.init_SPI
    assert len(spi_i) == 8 and spi_i != bytes(8)
    assert (req.resp_SPI, req.exch_type, req.id, req.version) == (bytes(8), 34, 0, 0x20)
    assert int(req.flags) == I_FLAG and req.length == len(init_req.data)
    assert types(req) == [SA, KE, NONCE, NOTIFY, NOTIFY, NOTIFY]
    sa_l, ke_l, ni_l, n1, n2, n3 = payloads(req)
    props = proposals(sa_l)
    assert [p.proposal for p in props] == list(range(1, len(props) + 1))  # §3.3.1
    assert all(p.proto == 1 and p.SPIsize == 0 for p in props)
    assert [sorted(transforms(p)) for p in props] == expected_ike_offer(offer_enc, offer_hash, (g, 2))
    assert ke_l.group == g and len(ke_l.ke) == KE_SIZE[g]
    assert (4, g, None) in transforms(props[0])  # the KE group is offered
    ni = ni_l.nonce
    assert len(ni) >= max(16, HASHES[h1][1] // 2)  # §2.10
    # §2.23: NAT detection hashes with SPIr zero, of the sender's and receiver's address/port
    assert (n1.type, n1.notify) == (NAT_SRC, nat_hash(spi_i, bytes(8), ADDR_A, 500))
    assert (n2.type, n2.notify) == (NAT_DST, nat_hash(spi_i, bytes(8), ADDR_B, 500))
    assert (n3.type, bytes(n3.notify or b"")) == (FRAG_SUP, b"")  # empty notify data

    # --- IKE_SA_INIT response (HDR, SAr1, KEr, Nr) ----------------------------------------
    resp = IKEv2(init_resp.data)
    spi_r = resp.resp_SPI
    assert resp.init_SPI == spi_i and spi_r not in (bytes(8), spi_i)
    assert (resp.exch_type, resp.id, int(resp.flags)) == (34, 0, R_FLAG)
    assert types(resp) == [SA, KE, NONCE, NOTIFY, NOTIFY, NOTIFY]
    sa_r, ke_r, nr_l, m1, m2, m3 = payloads(resp)
    [chosen] = proposals(sa_r)
    want = [(1, CIPHERS[e1][0], CIPHERS[e1][1]), (2, PRF_ID[h1], None), (4, g, None)]
    if not CIPHERS[e1][2]:
        want.append((3, INTEG_ID[h1], None))
    assert sorted(transforms(chosen)) == sorted(want)
    # §3.3.1: the accepted proposal keeps its number from the offer
    offered = [p for p in props if set(want) <= set(transforms(p))]
    assert chosen.proposal == offered[0].proposal
    assert ke_r.group == g and len(ke_r.ke) == KE_SIZE[g]
    nr = nr_l.nonce
    assert (m1.type, m1.notify) == (NAT_SRC, nat_hash(spi_i, spi_r, ADDR_B, 500))
    assert (m2.type, m2.notify) == (NAT_DST, nat_hash(spi_i, spi_r, ADDR_A, 500))
    assert m3.type == FRAG_SUP   # the responder answers the initiator's support

    # --- keys, derived here from what scapy read -----------------------------------------------
    assert len(shared_secrets) == 2 and shared_secrets[0] == shared_secrets[1]
    integ1 = None if CIPHERS[e1][2] else h1
    k = ike_keys(h1, e1, integ1, ni, nr, spi_i, spi_r, shared_secrets[0])
    for side in (pair.a, pair.b):
        sa = side.sa
        assert (sa.keys.sk_ei, sa.keys.sk_er) == (k["sk_ei"], k["sk_er"])
        assert (sa.keys.sk_ai, sa.keys.sk_ar) == (k["sk_ai"], k["sk_ar"])
        assert (sa.sk_d, sa.sk_pi, sa.sk_pr) == (k["sk_d"], k["sk_pi"], k["sk_pr"])

    [up_a], [up_b] = pair.a.child_ups, pair.b.child_ups

    # --- IKE_AUTH request (HDR, SK {IDi, AUTH, SAi2, TSi, TSr}) ------------------------------
    outer = IKEv2(auth_req.data)
    assert (outer.init_SPI, outer.resp_SPI, outer.exch_type, outer.id) == (spi_i, spi_r, 35, 1)
    assert int(outer.flags) == I_FLAG and types(outer) == [SK]
    auth_i = inner(auth_req.data, e1, integ1, k, from_initiator=True)
    got = types(auth_i)
    assert [t for t in got if t != NOTIFY] == [IDI, AUTH, SA, TSI, TSR]
    by_type = {type(p): p for p in payloads(auth_i)}
    assert {p.type for p in payloads(auth_i) if isinstance(p, IKEv2_Notify)} == {INITIAL_CONTACT}
    idi = by_type[IKEv2_IDi]
    assert (idi.IDtype, idi.ID) == (1, ADDR_A)
    id_body = bytes([1, 0, 0, 0]) + ipaddress.IPv4Address(ADDR_A).packed
    # §2.15: the initiator signs its IKE_SA_INIT request, Nr and prf(SK_pi, IDi')
    assert by_type[IKEv2_AUTH].auth_type == 2
    assert by_type[IKEv2_AUTH].load == psk_auth(h1, PSK, init_req.data, nr, k["sk_pi"], id_body)
    esp_props = proposals(by_type[IKEv2_SA])
    assert all(p.proto == 3 and p.SPIsize == 4 for p in esp_props)
    assert {p.SPI for p in esp_props} == {struct.pack("!I", up_a.spi_in)}  # §3.3.1: inbound SPI
    assert [sorted(transforms(p)) for p in esp_props] == expected_esp_offer(offer_esp, (h2,))
    [tsi] = by_type[IKEv2_TSi].traffic_selector
    [tsr] = by_type[IKEv2_TSr].traffic_selector
    assert (tsi.TS_type, tsi.IP_protocol_ID, tsi.start_port, tsi.end_port) == (7, 0, 0, 65535)
    assert (tsi.starting_address_v4, tsi.ending_address_v4) == ("10.1.0.0", "10.1.255.255")
    assert (tsr.starting_address_v4, tsr.ending_address_v4) == ("10.2.0.0", "10.2.255.255")

    # --- IKE_AUTH response (HDR, SK {IDr, AUTH, SAr2, TSi, TSr}) -----------------------------
    outer = IKEv2(auth_resp.data)
    assert (outer.exch_type, outer.id, int(outer.flags)) == (35, 1, R_FLAG)
    auth_r = inner(auth_resp.data, e1, integ1, k, from_initiator=False)
    assert types(auth_r) == [IDR, AUTH, SA, TSI, TSR]
    by_type = {type(p): p for p in payloads(auth_r)}
    idr = by_type[IKEv2_IDr]
    assert (idr.IDtype, idr.ID) == (1, ADDR_B)
    id_body = bytes([1, 0, 0, 0]) + ipaddress.IPv4Address(ADDR_B).packed
    assert by_type[IKEv2_AUTH].load == psk_auth(h1, PSK, init_resp.data, ni, k["sk_pr"], id_body)
    [esp_chosen] = proposals(by_type[IKEv2_SA])
    assert esp_chosen.SPI == struct.pack("!I", up_b.spi_in)
    assert sorted(transforms(esp_chosen)) == sorted(
        [(1, CIPHERS[e2][0], CIPHERS[e2][1]), (5, 0, None)]
        + ([] if CIPHERS[e2][2] else [(3, INTEG_ID[h2], None)]))
    # §2.9: narrowed to B's cgw_ts 10.1.0.0/24
    [tsi] = by_type[IKEv2_TSi].traffic_selector
    assert (tsi.starting_address_v4, tsi.ending_address_v4) == ("10.1.0.0", "10.1.0.255")
    [tsr] = by_type[IKEv2_TSr].traffic_selector
    assert (tsr.starting_address_v4, tsr.ending_address_v4) == ("10.2.0.0", "10.2.255.255")

    # --- CHILD SA keys (§2.17: KEYMAT = prf+(SK_d, Ni | Nr)) -----------------------------------
    integ2 = None if CIPHERS[e2][2] else h2
    ck = child_keys(h1, k["sk_d"], ni, nr, e2, integ2)
    assert (up_a.encr_key_out, up_a.integ_key_out) == (ck["encr_i"], ck["integ_i"])
    assert (up_a.encr_key_in, up_a.integ_key_in) == (ck["encr_r"], ck["integ_r"])
    assert (up_b.encr_key_in, up_b.encr_key_out) == (ck["encr_i"], ck["encr_r"])

    # --- INFORMATIONAL: liveness A -> B, CHILD delete B -> A, IKE delete A -> B -----------------
    pair.liveness(pair.a)
    pair.run()
    pair.delete_child(pair.b, up_b.spi_in)
    pair.run()
    pair.a.endpoint.delete(pair.now)
    pair.run()
    info = [(who, d.data) for who, d in pair.wire[4:]]
    assert [who for who, _ in info] == ["a", "b", "b", "a", "a", "b"]

    def info_msg(i, from_initiator):
        data = info[i][1]
        o = IKEv2(data)
        assert (o.init_SPI, o.resp_SPI, o.exch_type, types(o)) == (spi_i, spi_r, 37, [SK])
        return o, inner(data, e1, integ1, k, from_initiator)

    # each side numbers its own requests (§2.2): A's 2, 3 after IKE_AUTH; B's first is 0
    o, live = info_msg(0, True)
    assert (o.id, int(o.flags)) == (2, I_FLAG) and types(live) == []
    o, live_r = info_msg(1, False)
    assert (o.id, int(o.flags)) == (2, R_FLAG) and types(live_r) == []
    o, dreq = info_msg(2, False)
    assert (o.id, int(o.flags)) == (0, 0) and types(dreq) == [DELETE]
    [d] = payloads(dreq)
    assert (d.proto, d.SPIsize, d.SPInum, d.SPI) == (3, 4, 1, [struct.pack("!I", up_b.spi_in)])
    o, dresp = info_msg(3, True)
    assert (o.id, int(o.flags)) == (0, I_FLAG | R_FLAG)
    [d] = payloads(dresp)  # §1.4.1: the answer deletes the other half of the pair
    assert (d.proto, d.SPInum, d.SPI) == (3, 1, [struct.pack("!I", up_a.spi_in)])
    o, ireq = info_msg(4, True)
    assert o.id == 3 and types(ireq) == [DELETE]
    [d] = payloads(ireq)
    assert (d.proto, d.SPIsize, d.SPInum) == (1, 0, 0)  # §3.11: no SPI for the IKE SA
    o, iresp = info_msg(5, False)
    assert o.id == 3 and types(iresp) == []  # §1.4.1: empty answer


def test_error_answers_as_scapy_reads_them():
    # NO_PROPOSAL_CHOSEN to IKE_SA_INIT: unprotected, only the notify (§2.21.1)
    pair = IkePair(settings_a(phase1_encryption=("AES128",)), settings_b(phase1_encryption=("AES256",)))
    pair.handshake()
    resp = IKEv2(pair.wire[1][1].data)
    assert (resp.exch_type, resp.id, int(resp.flags)) == (34, 0, R_FLAG)
    assert resp.init_SPI == IKEv2(pair.wire[0][1].data).init_SPI
    assert types(resp) == [NOTIFY] and payloads(resp)[0].type == NO_PROPOSAL_CHOSEN

    # INVALID_KE_PAYLOAD names the wanted group, 2 bytes big endian (§3.10.1)
    pair = IkePair(settings_a(phase1_dh_groups=(14, 19)), settings_b(phase1_dh_groups=(19,)))
    pair.handshake()
    resp = IKEv2(pair.wire[1][1].data)
    assert types(resp) == [NOTIFY]
    [n] = payloads(resp)
    assert (n.type, n.notify) == (INVALID_KE_PAYLOAD, struct.pack("!H", 19))
    retry = IKEv2(pair.wire[2][1].data)
    assert (retry.exch_type, retry.id) == (34, 0)  # the retry keeps message ID 0 (§1.2)
    assert retry.init_SPI == IKEv2(pair.wire[0][1].data).init_SPI
    assert payloads(retry)[1].group == 19


def test_authentication_failed_and_ts_unacceptable_are_protected(shared_secrets):
    pair = IkePair(settings_a(), settings_b(psk=b"another_psk_0123456789"))
    pair.handshake()
    data = pair.wire[3][1].data
    outer = IKEv2(data)
    assert (outer.exch_type, types(outer)) == (35, [SK])
    # the SA is gone: derive the keys from the wire and the recorded secret
    init_req, init_resp = IKEv2(pair.wire[0][1].data), IKEv2(pair.wire[1][1].data)
    ni, nr = payloads(init_req)[2].nonce, payloads(init_resp)[2].nonce
    k = ike_keys("SHA1", "AES128", "SHA1", ni, nr, init_resp.init_SPI, init_resp.resp_SPI,
                 shared_secrets[0])
    answer = inner(data, "AES128", "SHA1", k, from_initiator=False)
    assert types(answer) == [NOTIFY] and payloads(answer)[0].type == AUTHENTICATION_FAILED

    shared_secrets.clear()
    pair = IkePair(settings_a(vgw_ts="192.168.0.0/16"), settings_b(cgw_ts="10.0.0.0/8"))
    pair.handshake()
    sa = pair.a.sa
    k = {"sk_er": sa.keys.sk_er, "sk_ar": sa.keys.sk_ar}
    answer = inner(pair.wire[3][1].data, "AES128", "SHA1", k, from_initiator=False)
    # §1.2: a CHILD SA failure does not fail IKE_AUTH: IDr, AUTH and the notify
    assert types(answer) == [IDR, AUTH, NOTIFY]
    assert payloads(answer)[2].type == TS_UNACCEPTABLE
