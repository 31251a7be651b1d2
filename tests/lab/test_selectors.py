"""Narrowed traffic selectors against real strongSwan (RFC 7296 §2.9, RFC 4301
§5.2): vgw configured with local_network_cidr / remote_network_cidr narrows the
CGW's 0.0.0.0/0 proposal, both ends install the narrowed SA, and traffic inside
the selectors crosses with vgw's inbound selector check active (a packet outside
them is refused by the check: tests/unit/dataplane/test_esp_selectors.py)."""

from __future__ import annotations

import pytest

from tests.lab.awspair import VGW_IPS, bring_up, start_pair
from tests.lab.traffic import ping, run_iperf

pytestmark = pytest.mark.lab


def test_narrowed_selectors_carry_traffic(lab, topo):
    vgw, cgw = start_pair(lab, topo, tunnels=1,
                          vgw_kwargs={"local_cidr": "172.16.0.0/16", "remote_cidr": "10.0.0.0/16"})
    bring_up(vgw, cgw, tunnels=1)
    [sa] = cgw.list_sas()
    [child] = sa["child-sas"]
    assert child["local-ts"] == ["172.16.0.0/16"] and child["remote-ts"] == ["10.0.0.0/16"]
    [mine] = vgw.tunnel(VGW_IPS[0])["children"]
    assert mine["local_ts"] == ["10.0.0.0/16"] and mine["remote_ts"] == ["172.16.0.0/16"]
    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    assert run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=2)["gbps"] > 0.01
    drops = vgw.tunnel(VGW_IPS[0])["drops"]
    assert drops["policy"] == 0, drops
