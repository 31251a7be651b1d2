"""`vgw cgw-config --vendor strongswan` works unchanged: the swanctl.conf it prints
is loaded as is into the strongSwan customer gateway, which brings both tunnels
up against vgw by itself (start_action start) and carries traffic both ways."""

from __future__ import annotations

import sys

import pytest

from tests.lab.netns import wait_until
from tests.lab.strongswan import Charon, installed_children
from tests.lab.traffic import ping
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

pytestmark = pytest.mark.lab

VGW_IPS = ("198.51.100.1", "198.51.100.2")
INSIDE = ("169.254.10.0/30", "169.254.11.0/30")
PSKS = ("example_psk_generated1_ab", "example_psk_generated2_ab")


def test_generated_strongswan_config_brings_both_tunnels_up(lab, topo):
    # tunnel 1 narrowed to non-default algorithms and lifetimes, tunnel 2 all AWS defaults
    tunnel1 = dict(phase1_encryption_algorithms=["AES256-GCM-16", "AES128"], phase1_integrity_algorithms=["SHA2-384"],
                   phase1_dh_group_numbers=[20, 14], phase2_encryption_algorithms=["AES256"],
                   phase2_integrity_algorithms=["SHA2-512", "SHA1"], phase2_dh_group_numbers=[19],
                   phase1_lifetime_seconds=14400, phase2_lifetime_seconds=1800)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(gateway_yaml(
        control=vgw.control, vpc_cidrs=["10.0.0.0/16"], name="vpn-gen", cgw_ip=topo.cgw_wan_ip,
        static_routes=["172.16.0.0/16"],
        tunnels=[tunnel_yaml(VGW_IPS[0], INSIDE[0], PSKS[0], **tunnel1),
                 tunnel_yaml(VGW_IPS[1], INSIDE[1], PSKS[1])]))
    vgw.start()
    generated = lab.run(topo.vgw, sys.executable, "-m", "daemon", "cgw-config", "--config", vgw.config_path,
                        "--connection", "vpn-gen", "--vendor", "strongswan", env=vgw.env).stdout
    # libipsec puts 0.0.0.0/0 into table 220; after main, so the lab's LANs stay local
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    cgw.load(generated)   # start_action = start: charon initiates both tunnels itself
    for ip in VGW_IPS:
        vgw.wait_up(ip, timeout=25)
    status = {t["outside_ip"]: t for t in vgw.status()}
    assert status[VGW_IPS[0]]["ike"]["encryption"] == "AES256-GCM-16"
    assert status[VGW_IPS[0]]["ike"]["dh_group"] == 20
    assert status[VGW_IPS[0]]["children"][0]["encryption"] == "AES256"
    assert status[VGW_IPS[0]]["children"][0]["integrity"] == "SHA2-512"
    # AWS's default lists: vgw's first choice among everything offered
    assert status[VGW_IPS[1]]["ike"]["encryption"] == "AES128"
    sas = wait_until(lambda: len(installed_children(cgw.list_sas())) == 2 and cgw.list_sas(), 10, 0.2,
                     "both CHILD SAs installed on the customer gateway")
    assert sorted(sa["name"] for sa in sas) == ["vpn-gen-tunnel1", "vpn-gen-tunnel2"]
    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)


def test_generated_strongswan_config_for_a_certificate_tunnel(lab, topo):
    """A certificate tunnel: the generated file names pubkey auth and vgw's DN;
    with the CGW's certificate, key and the CA in place it comes up unchanged."""
    import os
    import shutil

    from tests.lab.certnat import CGW_ID, VGW_IP, start_vgw, vgw_pki
    pki = vgw_pki(lab, "gen")
    vgw = start_vgw(lab, topo, pki, topo.cgw_wan_ip, identity=CGW_ID)
    generated = lab.run(topo.vgw, sys.executable, "-m", "daemon", "cgw-config", "--config", vgw.config_path,
                        "--vendor", "strongswan", env=vgw.env).stdout
    assert "auth = pubkey" in generated and "secret" not in generated.split("secrets {")[1]
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767}).start()
    staging = lab.tmpdir("cgw-creds")
    shutil.copy(os.path.join(pki, "cgw.pem"), os.path.join(staging, "cgw-cert.pem"))
    cgw.add_credentials(cas=[os.path.join(pki, "ca.pem")], certs=[os.path.join(staging, "cgw-cert.pem")],
                        keys=[os.path.join(pki, "cgw.key")])
    cgw.load(generated)
    vgw.wait_up(VGW_IP, timeout=25)
    assert vgw.tunnel(VGW_IP)["ike"]["remote_id"] == CGW_ID
    assert ping(lab, topo.onprem, topo.vpc_ip)
