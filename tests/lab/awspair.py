"""The usual lab pair: vgw as the AWS side, a strongSwan customer gateway.

strongSwan (kernel-libipsec) in cgw, AWS-style route-based with 0.0.0.0/0
selectors; table 220 goes after main so that the LANs stay local.
"""

from __future__ import annotations

from tests.lab.strongswan import Charon, swanctl_conf_psk
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

VGW_IPS = ("198.51.100.1", "198.51.100.2")
INSIDE = ("169.254.10.0/30", "169.254.11.0/30")
PSKS = ("example_psk_tunnel1_abcdef", "example_psk_tunnel2_abcdef")


def start_pair(lab, topo, tunnels: int = 2, tunnel_options=None, cgw_kwargs=None,
               cgw_settings=None, vgw_kwargs=None):
    """Start vgw (AWS side) with `tunnels` tunnels and a strongSwan CGW with them
    loaded (not initiated). Returns (vgw, cgw)."""
    opts = tunnel_options or {}
    vgw = Vgw(lab, topo.vgw)
    vgw.write_config(gateway_yaml(
        vgw.control, ["10.0.0.0/16"], "vpn-lab", topo.cgw_wan_ip, ["172.16.0.0/16"],
        [tunnel_yaml(ip, cidr, psk, **opts)
         for ip, cidr, psk in list(zip(VGW_IPS, INSIDE, PSKS))[:tunnels]],
        **(vgw_kwargs or {})))
    vgw.start()
    settings = {"routing_table_prio": 32767, **(cgw_settings or {})}
    cgw = Charon(lab, topo.cgw, settings=settings).start()
    cgw.load(swanctl_conf_psk(topo.cgw_wan_ip, list(VGW_IPS[:tunnels]), list(PSKS[:tunnels]),
                              **(cgw_kwargs or {})))
    return vgw, cgw


def bring_up(vgw, cgw, tunnels: int = 2):
    for i in range(tunnels):
        cgw.initiate("net", ike=f"tun{i + 1}", timeout=15)
    for ip in VGW_IPS[:tunnels]:
        vgw.wait_up(ip)
