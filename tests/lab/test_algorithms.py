"""Every algorithm of the AWS lists crosses real strongSwan at least once, in the
IKE SA and in the ESP SA (docs/aws.md §0, §1.4), phase 2 DH groups (PFS) included.

vgw is configured with exactly one value per list, so the SA only comes up if
that value was negotiated; strongSwan's own `list-sas` is the oracle for what
was agreed, and a ping proves the keys. The phase 2 DH group is negotiated only
when a CHILD SA is rekeyed (the first one, made in IKE_AUTH, carries no KE: RFC
7296 §1.2): each case rekeys its CHILD SA once, started by vgw or by strongSwan
in turn, and checks the group on the new SA.
"""

from __future__ import annotations

import pytest

from tests.lab.netns import Lab, require_lab, topology
from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.traffic import ping
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

pytestmark = pytest.mark.lab

# AWS name -> (strongSwan keyword, list-sas encr-alg, key size)
ENCR = {
    "AES128": ("aes128", "AES_CBC", 128),
    "AES256": ("aes256", "AES_CBC", 256),
    "AES128-GCM-16": ("aes128gcm16", "AES_GCM_16", 128),
    "AES256-GCM-16": ("aes256gcm16", "AES_GCM_16", 256),
}
# AWS name -> (keyword, integ-alg, prf keyword, prf-alg)
INTEG = {
    "SHA1": ("sha1", "HMAC_SHA1_96", "prfsha1", "PRF_HMAC_SHA1"),
    "SHA2-256": ("sha256", "HMAC_SHA2_256_128", "prfsha256", "PRF_HMAC_SHA2_256"),
    "SHA2-384": ("sha384", "HMAC_SHA2_384_192", "prfsha384", "PRF_HMAC_SHA2_384"),
    "SHA2-512": ("sha512", "HMAC_SHA2_512_256", "prfsha512", "PRF_HMAC_SHA2_512"),
}
DH = {
    2: ("modp1024", "MODP_1024"), 5: ("modp1536", "MODP_1536"), 14: ("modp2048", "MODP_2048"), 15: ("modp3072", "MODP_3072"),
    16: ("modp4096", "MODP_4096"), 17: ("modp6144", "MODP_6144"), 18: ("modp8192", "MODP_8192"),
    19: ("ecp256", "ECP_256"), 20: ("ecp384", "ECP_384"), 21: ("ecp521", "ECP_521"),
    22: ("modp1024s160", "MODP_1024_160"), 23: ("modp2048s224", "MODP_2048_224"),
    24: ("modp2048s256", "MODP_2048_256"),
}
ENCR_NAMES, INTEG_NAMES = list(ENCR), list(INTEG)
# docs/aws.md §0: phase 1 DH groups 2, 14-24; phase 2 (PFS) also 5
PHASE1_DH = [g for g in DH if g != 5]
PHASE2_DH = list(DH)

# One case per phase 2 DH group (the phase 1 groups rotate alongside, each at
# least once); encryption and integrity rotate so that each value appears in both
# positions several times (phase 2 integrity with a CBC cipher).
CASES = []
for i, pfs in enumerate(PHASE2_DH):
    group = PHASE1_DH[i % len(PHASE1_DH)]
    p1e, p1i = ENCR_NAMES[i % 4], INTEG_NAMES[(i // 4 + i) % 4]
    p2e = ENCR_NAMES[(i + 1) % 4] if i < 8 else ("AES128" if i % 2 else "AES256")
    p2i = INTEG_NAMES[(i + 2) % 4]
    CASES.append((p1e, p1i, group, p2e, p2i, pfs))


def _ike_proposal(encr: str, integ: str, group: int) -> str:
    kw, _, _ = ENCR[encr]
    ikw, _, prf, _ = INTEG[integ]
    middle = prf if "gcm" in kw else ikw   # AEAD proposals name a PRF, not an integrity algorithm
    return f"{kw}-{middle}-{DH[group][0]}"


def _esp_proposal(encr: str, integ: str, pfs: int) -> str:
    kw = ENCR[encr][0]
    return (kw if "gcm" in kw else f"{kw}-{INTEG[integ][0]}") + f"-{DH[pfs][0]}"


def test_cases_cover_every_aws_value():
    """The parametrization itself: every value of every AWS list appears."""
    assert {c[0] for c in CASES} == set(ENCR) and {c[1] for c in CASES} == set(INTEG)
    assert {c[2] for c in CASES} == set(PHASE1_DH)
    assert {c[5] for c in CASES} == set(PHASE2_DH)
    assert {c[3] for c in CASES} == set(ENCR)
    assert {c[4] for c in CASES if "GCM" not in c[3]} == set(INTEG)


@pytest.fixture(scope="module")
def shared_lab():
    require_lab()
    with Lab() as lab:
        yield lab, topology(lab)


@pytest.mark.parametrize("p1e,p1i,group,p2e,p2i,pfs", CASES,
                         ids=[f"{c[0]}-{c[1]}-dh{c[2]}-esp-{c[3]}-{c[4]}-pfs{c[5]}" for c in CASES])
def test_algorithm_interop(shared_lab, p1e, p1i, group, p2e, p2i, pfs):
    lab, topo = shared_lab
    vgw_ip = topo.vgw_outside_ips[0]
    psk = "example_psk_algorithms_abc"
    vgw = Vgw(lab, topo.vgw, name=f"vgw-pfs{pfs}")
    vgw.write_config(gateway_yaml(
        vgw.control, ["10.0.0.0/16"], "alg", topo.cgw_wan_ip, ["172.16.0.0/16"],
        [tunnel_yaml(vgw_ip, "169.254.20.0/30", psk,
                     phase1_encryption_algorithms=[p1e], phase1_integrity_algorithms=[p1i],
                     phase1_dh_group_numbers=[group], phase2_encryption_algorithms=[p2e],
                     phase2_integrity_algorithms=[p2i], phase2_dh_group_numbers=[pfs])]))
    cgw = Charon(lab, topo.cgw, name=f"cgw-pfs{pfs}", settings={"routing_table_prio": 32767})
    try:
        vgw.start()
        cgw.start()
        cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, vgw_ip, psk,
                                  ike_proposals=_ike_proposal(p1e, p1i, group),
                                  esp_proposals=_esp_proposal(p2e, p2i, pfs)))
        # generous: MODP8192 and a busy 2-core machine
        cgw.initiate("net", ike="tun1", timeout=40)
        vgw.wait_up(vgw_ip, timeout=40)
        sa = cgw.list_sas()[0]
        assert (sa["encr-alg"], sa["encr-keysize"]) == ENCR[p1e][1:]
        assert sa["prf-alg"] == INTEG[p1i][3]
        if "GCM" not in p1e:
            assert sa["integ-alg"] == INTEG[p1i][1]
        assert sa["dh-group"] == DH[group][1]
        child = sa["child-sas"][0]
        assert (child["encr-alg"], child["encr-keysize"]) == ENCR[p2e][1:]
        if "GCM" not in p2e:
            assert child["integ-alg"] == INTEG[p2i][1]
        assert ping(lab, topo.onprem, topo.vpc_ip)

        # PFS: a CHILD rekey with a KE of the phase 2 group, from either side
        old_spi = child["spi-in"]
        if PHASE2_DH.index(pfs) % 2:
            vgw.cli("rekey", vgw_ip, "--child")
        else:
            cgw.rekey(child="net")

        def rekeyed():
            sas = cgw.list_sas()
            children = [c for c in sas[0]["child-sas"] if c["state"] == "INSTALLED"] if sas else []
            return children[0] if len(children) == 1 and children[0]["spi-in"] != old_spi else None
        new = lab.wait_until(rekeyed, 40, what=f"the CHILD SA rekeyed with DH group {pfs}")
        assert new["dh-group"] == DH[pfs][1]
        assert (new["encr-alg"], new["encr-keysize"]) == ENCR[p2e][1:]
        assert vgw.tunnel(vgw_ip)["children"][0]["dh_group"] == pfs
        assert ping(lab, topo.onprem, topo.vpc_ip)
    finally:
        cgw.stop()
        vgw.stop()
