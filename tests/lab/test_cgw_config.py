"""`vgw cgw-config --vendor strongswan` works unchanged: the swanctl.conf it prints
is loaded as is into the strongSwan customer gateway, which brings both tunnels
up against vgw by itself (start_action start) and carries traffic both ways. For a
dynamic connection the frr.conf it prints beside it runs as is in FRR, once its
one placeholder (the site's networks) is filled in, and both BGP sessions reach
Established with vgw."""

from __future__ import annotations

import sys

import pytest

from daemon.cgwconfig.frr import SITE_NETWORKS_PLACEHOLDER

from tests.lab.bgplab import VPC_CIDR, add_inside_addresses, cgw_of_topo, cgw_speaker, vgw_config, wait_tunnels_up
from tests.lab.frr import frr_config_errors
from tests.lab.netns import topology, wait_until
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


def test_generated_strongswan_and_frr_configs_bring_bgp_up_on_both_tunnels(bgp_lab):
    """A dynamic connection with ASNs that are not AWS's defaults (so a renderer
    that ignored the config would fail): the printed swanctl.conf and frr.conf
    bring both tunnels and both BGP sessions up. The edits, both the site's
    network where the files mark it: frr.conf's placeholder line, and (what the
    swanctl.conf header asks of a kernel-libipsec customer gateway, which this lab
    is) the site's prefix in place of 0.0.0.0/0 in each local_ts; and, as the
    header says too, the CGW inside addresses on ipsec0 before the tunnels."""
    lab = bgp_lab
    topo = topology(lab)
    node = cgw_of_topo(topo, asn=65010)
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(vgw_config(vgw.control, [node], dynamic=True, bgp_keys=True, amazon_side_asn=64700))
    vgw.start()

    def cgw_config(*args: str) -> str:
        return lab.run(topo.vgw, sys.executable, "-m", "daemon", "cgw-config", "--config", vgw.config_path,
                       "--vendor", "strongswan", *args, env=vgw.env).stdout

    swanctl, frr = cgw_config("--file", "swanctl"), cgw_config("--file", "frr")
    # the default output is both files, each under its separator line
    assert cgw_config() == (f"# --- file: /etc/swanctl/conf.d/{node.name}.conf ---\n{swanctl}\n"
                            f"# --- file: /etc/frr/frr.conf ---\n{frr}")
    # edit 1: the site's network in place of frr.conf's placeholder; bgpd parses all of it
    assert frr.count(SITE_NETWORKS_PLACEHOLDER + "\n") == 1
    frr = frr.replace(SITE_NETWORKS_PLACEHOLDER, f"  network {topo.onprem_cidr}")
    assert frr_config_errors(lab, topo.cgw, frr) == ""
    # edit 2 (kernel-libipsec): the site's network in place of 0.0.0.0/0 where local_ts is marked
    marked = "# kernel-libipsec: your site's prefixes in place of 0.0.0.0/0 (see the header)\n"
    assert swanctl.count(marked) == 2 and swanctl.count(marked + " " * 16 + "local_ts = 0.0.0.0/0,") == 2
    swanctl = swanctl.replace("local_ts = 0.0.0.0/0,", f"local_ts = {topo.onprem_cidr},")

    cgw = Charon(lab, topo.cgw, name=node.name, settings={"routing_table_prio": 32767}).start()
    add_inside_addresses(lab, node)
    speaker = cgw_speaker(lab, node, "frr", amazon_side_asn=64700, config=frr).start()
    cgw.load(swanctl)   # start_action = start: charon initiates both tunnels itself
    t1, t2 = node.tunnels
    # a dynamic tunnel is UP only with BGP Established (docs/aws.md §11.3)
    status = {t["outside_ip"]: t for t in wait_tunnels_up(vgw, [t1.outside_ip, t2.outside_ip], timeout=60)}
    for t in node.tunnels:
        bgp = status[t.outside_ip]["bgp"]
        assert bgp["state"] == "Established" and bgp["peer_asn"] == 65010 and bgp["hold_time"] == 30, bgp
        session = speaker.wait_established(t.vgw_inside_ip)
        assert (session.peer_as, session.hold_time, session.keepalive) == (64700, 30, 10), session
    assert "No such command" not in speaker.log_text() and "Unknown command" not in speaker.log_text()
    # each session crosses its own tunnel: its source address is in that tunnel's local selector only
    sas = {sa["name"]: sa for sa in installed_children(cgw.list_sas())}
    for number, t in enumerate(node.tunnels, 1):
        child = sas[f"{node.name}-tunnel{number}"]
        assert sorted(child["local-ts"]) == sorted([topo.onprem_cidr, t.inside_cidr]), child
    # and vgw saw each tunnel carry packets (unedited, libipsec sent both sessions on tunnel 2)
    assert all(t["counters"]["packets_in"] > 0 for t in vgw.status()), vgw.status()
    # routes both ways by BGP: the VPC CIDR with vgw's AS and MED 100/200, the site propagated
    paths = speaker.wait_routes(VPC_CIDR, lambda ps: len(ps) == 2)
    assert all(p.as_path == (64700,) for p in paths) and sorted(p.med for p in paths) == [100, 200], paths
    wait_until(lambda: status_message(vgw, node) == {"1 BGP ROUTES"}, 30, 0.2, "the site's prefix at vgw")
    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)


def status_message(vgw: Vgw, node) -> set[str]:
    ips = {t.outside_ip for t in node.tunnels}
    return {t["status_message"] for t in vgw.status() if t["outside_ip"] in ips}
