"""vgw against vgw: AWS-side initiation (startup_action start) and raw ESP.

strongSwan's kernel-libipsec can only do ESP in UDP, so ESP as IP protocol 50
(RFC 4303 without RFC 3948) is shown vgw to vgw: with no NAT on the path, no
UDP encapsulation is negotiated (RFC 7296 §2.23). nftables counters in the
namespaces are the independent witness of what crossed the wire.
"""

from __future__ import annotations

import re

import pytest

from tests.lab.traffic import ping, run_iperf
from tests.lab.vgwproc import Vgw, gateway_yaml, tunnel_yaml

pytestmark = pytest.mark.lab

PSK = "example_psk_vgw_pair_abc"


def _count_wire(lab, ns: str) -> None:
    lab.run(ns, "nft", "-f", "-", input="""
table inet vgwtest {
  chain input {
    type filter hook input priority -300; policy accept;
    ip protocol esp counter
    udp dport 4500 counter
    udp dport 500 counter
  }
}
""")


def _counters(lab, ns: str) -> dict:
    text = lab.run(ns, "nft", "list", "table", "inet", "vgwtest").stdout
    out = {}
    for key, pattern in (("esp", r"ip protocol esp counter packets (\d+)"),
                         ("udp4500", r"udp dport 4500 counter packets (\d+)"),
                         ("udp500", r"udp dport 500 counter packets (\d+)")):
        out[key] = int(re.search(pattern, text).group(1))
    return out


def test_vgw_initiates_to_vgw_with_raw_esp(lab, topo):
    aws_ip = topo.vgw_outside_ips[0]
    aws = Vgw(lab, topo.vgw, name="aws")
    aws.write_config(gateway_yaml(aws.control, ["10.0.0.0/16"], "to-site", topo.cgw_wan_ip,
                                  ["172.16.0.0/16"], [tunnel_yaml(aws_ip, "169.254.30.0/30", PSK)]))
    # the "customer" side is a vgw too, initiating (AWS startup_action start)
    site = Vgw(lab, topo.cgw, name="site")
    site.write_config(gateway_yaml(site.control, ["172.16.0.0/16"], "to-aws", aws_ip,
                                   ["10.0.0.0/16"],
                                   [tunnel_yaml(topo.cgw_wan_ip, "169.254.31.0/30", PSK,
                                                startup_action="start")]))
    _count_wire(lab, topo.vgw)
    aws.start()
    site.start()
    up = site.wait_up(topo.cgw_wan_ip)
    aws_side = aws.wait_up(aws_ip)
    assert up["ike"]["role"] == "initiator" and aws_side["ike"]["role"] == "responder"
    assert aws_side["ike"]["nat_t"] is False
    assert aws_side["children"][0]["spi_in"] == up["children"][0]["spi_out"]

    assert ping(lab, topo.onprem, topo.vpc_ip)
    assert ping(lab, topo.vpc, topo.onprem_ip)
    result = run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=2)
    assert result["gbps"] > 0.01
    wire = _counters(lab, topo.vgw)
    assert wire["esp"] > 1000, wire            # the TCP transfer went as protocol 50
    assert wire["udp4500"] == 0, wire          # nothing was UDP-encapsulated
    assert wire["udp500"] >= 2, wire           # IKE stayed on 500 without a NAT

    # SIGTERM on the initiator: it deletes its SAs, the responder sees it go down
    assert site.stop() == 0
    assert not re.search(r": vgw[0-9a-f]{8}", lab.run(topo.cgw, "ip", "-o", "link").stdout)  # TUN gone
    assert "proto 190" not in lab.run(topo.cgw, "ip", "route").stdout   # routes removed
    lab.wait_until(lambda: aws.tunnel(aws_ip)["status"] == "DOWN", 10,
                   what="the AWS side to see the DELETE")
    assert "AWS tunnel received DELETE for IKE_SA from CGW" in aws.log_text()
