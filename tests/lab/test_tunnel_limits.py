"""AWS's per-tunnel limits, emulated (emulate_limits, docs/aws.md §4.1), vgw <-> vgw
with iperf3 UDP floods between the namespaces.

This 2-core lab machine does not carry 140,000 packets per second through a vgw
pair at all (README: about 100k), so the test proves the mechanism at lower rates
set with the test-only VGW_TEST_TUNNEL_LIMITS: 5,000 packets/s and 20 Mbit/s per
tunnel and direction on the AWS side. The site side is a vgw without limits.

- emulate_limits false: a flood at three times the rate loses nothing to rate_limit;
- a reload sets emulate_limits true: the running tunnel takes it (same SAs);
- a 64-byte flood at three times the packet rate, site -> VPC (the AWS side's
  inbound bucket) and VPC -> site (its outbound bucket), is cut to the rate: what
  vgw delivered is at most the rate times the time plus the burst, what it dropped
  is counted as rate_limit, and both add up to what the site vgw sent;
- 1,400-byte packets at twice the bit rate are cut by the bit budget.
"""

from __future__ import annotations

import time

import pytest

from tests.lab.traffic import run_iperf
from tests.lab.vgwproc import Vgw, connection_yaml, gateway_yaml_multi, tunnel_yaml

pytestmark = pytest.mark.lab

PSK = "example_psk_limits_abcdef"
PPS, BPS = 5000, 20_000_000            # the test rates (VGW_TEST_TUNNEL_LIMITS)
BURST = 0.010                          # dataplane/limits.py DEFAULT_BURST
SECONDS = 3


def _aws_config(aws: Vgw, topo, emulate: bool) -> str:
    return gateway_yaml_multi(aws.control, ["10.0.0.0/16"], [connection_yaml(
        "to-site", topo.cgw_wan_ip, ["172.16.0.0/16"], [tunnel_yaml(topo.vgw_outside_ips[0], "169.254.30.0/30", PSK)],
        extra={"emulate_limits": emulate})])


def _counters(vgw: Vgw, ip: str) -> tuple[dict, float]:
    t = vgw.tunnel(ip)
    return {**t["counters"], "rate_limit": t["drops"]["rate_limit"], "limits": t["limits"]}, time.monotonic()


def _flood(lab, topo, aws: Vgw, site: Vgw, size: int, pps: int, reverse: bool = False) -> dict:
    """iperf3 UDP of ``size``-byte payloads at ``pps`` for SECONDS, onprem -> VPC (or
    back with ``reverse``); what each vgw counted meanwhile, and the wall time."""
    aws_ip, site_ip = topo.vgw_outside_ips[0], topo.cgw_wan_ip
    a0, t0 = _counters(aws, aws_ip)
    s0, _ = _counters(site, site_ip)
    run_iperf(lab, topo.onprem, topo.vpc, topo.vpc_ip, seconds=SECONDS, udp_size=size,
              udp_rate=str(pps * size * 8), extra=("-R",) if reverse else ())
    time.sleep(0.3)                                   # the last packets through
    a1, t1 = _counters(aws, aws_ip)
    s1, _ = _counters(site, site_ip)
    d = lambda after, before, key: after[key] - before[key]  # noqa: E731
    return {"wall": t1 - t0, "limits": a1["limits"],
            "aws_in": d(a1, a0, "packets_in"), "aws_out": d(a1, a0, "packets_out"),
            "aws_bytes_in": d(a1, a0, "bytes_in"), "aws_bytes_out": d(a1, a0, "bytes_out"),
            "aws_rate_limit": d(a1, a0, "rate_limit"),
            "site_in": d(s1, s0, "packets_in"), "site_out": d(s1, s0, "packets_out")}


def test_limits_cut_a_flood_to_the_rate_and_count_what_they_drop(lab, topo):
    aws_ip = topo.vgw_outside_ips[0]
    aws = Vgw(lab, topo.vgw, name="aws")
    aws.env["VGW_TEST_TUNNEL_LIMITS"] = f"{PPS},{BPS}"
    aws.write_config(_aws_config(aws, topo, emulate=False))
    site = Vgw(lab, topo.cgw, name="site")
    site.write_config(gateway_yaml_multi(site.control, ["172.16.0.0/16"], [connection_yaml(
        "to-aws", aws_ip, ["10.0.0.0/16"],
        [tunnel_yaml(topo.cgw_wan_ip, "169.254.31.0/30", PSK, startup_action="start")])]))
    aws.start()
    site.start()
    site.wait_up(topo.cgw_wan_ip)
    before = aws.wait_up(aws_ip)

    # off: three times the packet rate, nothing dropped by the limits
    off = _flood(lab, topo, aws, site, 64, 3 * PPS)
    assert off["limits"] is None and off["aws_rate_limit"] == 0, off
    assert off["aws_in"] > 1.2 * PPS * SECONDS, off   # more than the limit would let through: it was not cut

    # a reload turns them on for the running tunnel: same SAs, nothing re-established
    aws.write_config(_aws_config(aws, topo, emulate=True))
    aws.reload()
    aws.wait_log("AWS's per-tunnel limits are emulated now", timeout=10)
    now = aws.tunnel(aws_ip)
    assert now["limits"]["packets_per_second"] == PPS and now["limits"]["bits_per_second"] == BPS
    assert [c["spi_in"] for c in now["children"]] == [c["spi_in"] for c in before["children"]]
    assert now["ike"]["spi_i"] == before["ike"]["spi_i"] and now["status"] == "UP"

    # on, site -> VPC: the AWS side's inbound bucket
    inbound = _flood(lab, topo, aws, site, 64, 3 * PPS)
    assert inbound["aws_in"] <= PPS * (inbound["wall"] + BURST) + 1, inbound     # never above the rate
    assert inbound["aws_in"] >= 0.5 * PPS * SECONDS, inbound                     # but carrying traffic
    assert inbound["aws_rate_limit"] >= 0.5 * PPS * SECONDS, inbound             # the excess, counted
    arrived = inbound["aws_in"] + inbound["aws_rate_limit"]
    assert 0.9 * inbound["site_out"] <= arrived <= inbound["site_out"], inbound  # every packet accounted for

    # on, VPC -> site: the AWS side's outbound bucket
    outbound = _flood(lab, topo, aws, site, 64, 3 * PPS, reverse=True)
    assert outbound["aws_out"] <= PPS * (outbound["wall"] + BURST) + 1, outbound
    assert outbound["aws_out"] >= 0.5 * PPS * SECONDS, outbound
    assert outbound["aws_rate_limit"] >= 0.5 * PPS * SECONDS, outbound
    assert 0.9 * outbound["aws_out"] <= outbound["site_in"] <= outbound["aws_out"], outbound
    limits = aws.tunnel(aws_ip)["limits"]
    assert limits["dropped_in"] >= inbound["aws_rate_limit"] and limits["dropped_out"] == outbound["aws_rate_limit"]

    # on, 1,400-byte packets at twice the bit rate (1,786 packets/s: the packet budget
    # does not bind): the bit budget cuts them; its burst holds at least one 64 KB packet
    big = _flood(lab, topo, aws, site, 1400, 2 * BPS // (1428 * 8))
    assert big["aws_bytes_in"] * 8 <= BPS * big["wall"] + max(BPS * BURST, 65535 * 8), big
    assert big["aws_rate_limit"] >= 0.25 * BPS * SECONDS / (1428 * 8), big

    assert "drops rate_limit" in aws.cli("status").stdout
    assert "dropping ESP packet: rate_limit (inbound, over the tunnel's limits)" in aws.log_text()
    assert site.tunnel(topo.cgw_wan_ip)["drops"]["rate_limit"] == 0     # the site has no limits
    for name, run in (("off", off), ("inbound", inbound), ("outbound", outbound), ("1400 B", big)):
        print(f"{name}: {run}")      # the figures, with pytest -s
