"""Reference tunnel: strongSwan as "AWS" (vgw namespace) <-> strongSwan as the CGW.

Proves the lab harness end to end before vgw exists, and is the baseline
every vgw interop test mirrors: two tunnels, PSK, IP identities, the CGW
proposing 172.16.0.0/16 <-> 10.0.0.0/16 and the AWS side accepting any
(0.0.0.0/0, narrowed), as AWS's default local/remote_network_cidr does.
"""

from __future__ import annotations

import pytest

from tests.lab.strongswan import Charon, installed_children, swanctl_conf_psk
from tests.lab.traffic import ping, run_iperf

pytestmark = pytest.mark.lab

PSKS = ("example_psk_tunnel1_abcdef", "example_psk_tunnel2_abcdef")
TUNNELS = ("tun1", "tun2")
CGW_TS = ("172.16.0.0/16", "10.0.0.0/16")


def _children_by_tunnel(charon: Charon) -> dict[str, dict]:
    out = {}
    for sa in charon.list_sas():
        installed = installed_children([sa])
        assert sa["state"] == "ESTABLISHED", sa
        assert len(installed) == 1, sa
        out[sa["name"]] = installed[0]
    return out


def test_strongswan_two_tunnels_and_failover(lab, topo):
    aws = Charon(lab, topo.vgw, name="aws").start()
    cgw = Charon(lab, topo.cgw, name="cgw").start()
    aws.load(swanctl_conf_psk(topo.vgw_outside_ips, topo.cgw_wan_ip, PSKS, names=TUNNELS))
    cgw.load(
        swanctl_conf_psk(
            topo.cgw_wan_ip, topo.vgw_outside_ips, PSKS, names=TUNNELS,
            local_ts=CGW_TS[0], remote_ts=CGW_TS[1],
        )
    )
    for name in TUNNELS:
        cgw.initiate("net", ike=name)
    for charon in (cgw, aws):
        for name in TUNNELS:
            charon.wait_sa(name, "net", timeout=10)

    cgw_sas = {sa["name"]: sa for sa in cgw.list_sas()}
    assert set(cgw_sas) == set(TUNNELS)
    for name, outside_ip in zip(TUNNELS, topo.vgw_outside_ips):
        sa = cgw_sas[name]
        assert sa["remote-host"] == outside_ip and sa["remote-id"] == outside_ip
        assert (sa["encr-alg"], sa["encr-keysize"], sa["dh-group"]) == ("AES_CBC", 128, "MODP_2048")
        # kernel-libipsec fakes NAT detection: always UDP 4500 and encapsulated ESP.
        assert sa["nat-any"] == "yes" and sa["remote-port"] == 4500
    cgw_children, aws_children = _children_by_tunnel(cgw), _children_by_tunnel(aws)
    for name in TUNNELS:
        mine, theirs = cgw_children[name], aws_children[name]
        assert mine["encap"] == "yes" and mine["encr-alg"] == "AES_GCM_16"
        assert (mine["spi-in"], mine["spi-out"]) == (theirs["spi-out"], theirs["spi-in"])
        assert (mine["local-ts"], mine["remote-ts"]) == ([CGW_TS[0]], [CGW_TS[1]])
        assert (theirs["local-ts"], theirs["remote-ts"]) == ([CGW_TS[1]], [CGW_TS[0]])

    assert ping(lab, topo.onprem, topo.vpc_ip), "onprem -> vpc through the tunnels"
    assert ping(lab, topo.vpc, topo.onprem_ip), "vpc -> onprem through the tunnels"
    result = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=2)
    assert result["bits_per_second"] > 0, result

    # libipsec sends on one of the two identical-selector CHILD SAs (the most
    # recently installed); take that one down and traffic must move over.
    cgw_children = _children_by_tunnel(cgw)
    carrying = [n for n in TUNNELS if cgw_children[n]["packets-out"] > 0]
    assert len(carrying) == 1, cgw_children
    active = carrying[0]
    (standby,) = [n for n in TUNNELS if n != active]
    cgw.terminate(ike=active)
    lab.wait_until(
        lambda: [sa["name"] for sa in aws.list_sas()] == [standby], 10, 0.2,
        f"aws side to drop {active} and keep only {standby}",
    )
    before = _children_by_tunnel(cgw)[standby]
    assert ping(lab, topo.onprem, topo.vpc_ip), f"onprem -> vpc after {active} went down"
    assert ping(lab, topo.vpc, topo.onprem_ip), f"vpc -> onprem after {active} went down"
    after_cgw, after_aws = _children_by_tunnel(cgw)[standby], _children_by_tunnel(aws)[standby]
    assert after_cgw["packets-out"] > before["packets-out"]
    assert after_cgw["packets-in"] > before["packets-in"]
    assert after_aws["packets-in"] > 0 and after_aws["packets-out"] > 0


def test_strongswan_rekey_and_reauth_with_any_selectors(lab, topo):
    """One tunnel with 0.0.0.0/0 on both sides (AWS's defaults): CHILD rekey
    with PFS, IKE rekey and reauthentication each replace the right SPIs and keep
    traffic flowing.  Table 220 goes after main, or its default route would
    swallow the LANs (see tests.lab.strongswan)."""
    settings = {"routing_table_prio": 32767}
    aws = Charon(lab, topo.vgw, name="aws", settings=settings).start()
    cgw = Charon(lab, topo.cgw, name="cgw", settings=settings).start()
    aws.load(swanctl_conf_psk(topo.vgw_outside_ips[0], topo.cgw_wan_ip, PSKS[0], names=["tun1"]))
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, topo.vgw_outside_ips[0], PSKS[0], names=["tun1"]))
    cgw.initiate("net", ike="tun1")
    aws.wait_sa("tun1", "net")
    assert ping(lab, topo.onprem, topo.vpc_ip) and ping(lab, topo.vpc, topo.onprem_ip)

    def spis() -> tuple[str, str, str, str] | None:
        sas = cgw.list_sas("tun1")
        children = installed_children(sas)
        if len(sas) != 1 or sas[0]["state"] != "ESTABLISHED" or len(children) != 1:
            return None  # mid-exchange: old and new SAs side by side
        return sas[0]["initiator-spi"], sas[0]["responder-spi"], children[0]["spi-in"], children[0]["spi-out"]

    # Reauthentication first: charon postpones it while a rekeyed CHILD SA
    # lingers in state DELETED (delete_rekeyed_delay, 5 s).
    before = spis()
    cgw.rekey(ike="tun1", reauth=True)
    after = lab.wait_until(
        lambda: (s := spis()) and s[:2] != before[:2] and s[2:] != before[2:] and s, 10, 0.1, "reauthentication"
    )
    aws.wait_sa("tun1", "net")
    assert ping(lab, topo.onprem, topo.vpc_ip) and ping(lab, topo.vpc, topo.onprem_ip)

    before = after
    cgw.rekey(child="net")
    after = lab.wait_until(lambda: (s := spis()) and s[2:] != before[2:] and s, 10, 0.1, "CHILD rekey")
    assert after[:2] == before[:2]
    assert "[ N(REKEY_SA) SA No KE TSi TSr ]" in cgw.log_text(), "PFS: the CHILD rekey carries a KE"
    assert ping(lab, topo.onprem, topo.vpc_ip)

    before = after
    cgw.rekey(ike="tun1")
    after = lab.wait_until(lambda: (s := spis()) and s[:2] != before[:2] and s, 10, 0.1, "IKE rekey")
    assert after[2:] == before[2:], "an IKE rekey keeps the CHILD SA"
    assert ping(lab, topo.onprem, topo.vpc_ip) and ping(lab, topo.vpc, topo.onprem_ip)
