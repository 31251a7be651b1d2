"""The README's lab command runs end to end: `scripts/lab_demo.py --bgp` and
`--cloudhub` (what `scripts/lab.sh --bgp|--cloudhub` runs after installing) exit
0, and what they print from vgw (`vgw status`, `vgw routes`) and from the
customer gateways' FRR and BIRD shows the sessions, routes and AS_PATHs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.lab.bgplab import bgp_unavailable_reason
from tests.lab.netns import require_lab
from tests.lab.vgwproc import REPO

pytestmark = pytest.mark.lab


def run_demo(*args: str) -> str:
    require_lab(more=bgp_unavailable_reason)
    res = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "lab_demo.py"), *args, "--seconds", "1"],
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout


def test_lab_bgp_demo():
    out = run_demo("--bgp")
    # vgw status: both tunnels UP with BGP Established; the first one up is the primary
    rows = dict(re.findall(r"^vpn-lab +(198\.51\.100\.[12]) +UP +established +established +Established +(\S+)",
                           out, re.M))
    assert set(rows) == {"198.51.100.1", "198.51.100.2"} and sorted(rows.values()) == ["-", "primary"], rows
    primary = next(ip for ip, egress in rows.items() if egress == "primary")
    other = next(ip for ip in rows if ip != primary)
    inside = {"198.51.100.1": r"169\.254\.10\.1", "198.51.100.2": r"169\.254\.11\.1"}
    # vgw routes: the site's prefix propagated, first via the primary, after its failure via the other
    for ip in (primary, other):
        assert re.search(rf"^172\.16\.1\.0/24 +{re.escape(ip)} +vpn-lab +propagated +active +65000 ", out, re.M), ip
    # FRR's RIB: the VPC CIDR with MED 100 via the primary's VGW inside address, 200 via the other's;
    # then 100 via the other
    assert re.search(rf"{inside[primary]} +100 +0 64512 i$", out, re.M)
    assert re.search(rf"{inside[other]} +200 +0 64512 i$", out, re.M)
    assert re.search(rf"{inside[other]} +100 +0 64512 i$", out, re.M)
    assert "FAILED" not in out


def test_lab_cloudhub_demo():
    out = run_demo("--cloudhub")
    assert len(re.findall(r"^s\dc1 +198\.51\.100\.\d +UP +established +established +Established ", out, re.M)) == 6
    # vgw routes: each site's prefix from its connection, re-advertised to the other sites' four tunnels
    for site, conn in ((1, "s1c1"), (2, "s2c1"), (3, "s3c1")):
        assert re.search(rf"^172\.16\.{site}\.0/24 +198\.51\.100\.\d +{conn} +propagated +active +6500{site} ",
                         out, re.M), site
        assert re.search(rf"^  172\.16\.{site}\.0/24: .*re-advertised to (198\.51\.100\.\d(, )?){{4}}$", out, re.M)
    # FRR (sites 1 and 3): the other sites' prefixes with AS_PATH 64512 <ASN>; BIRD (site 2): origin AS of each
    for asn in (65002, 65003, 65001):
        assert re.search(rf"169\.254\.1\d\.1 +[12]00 +0 64512 {asn} i$", out, re.M), asn
    for asn in (65001, 65003):
        assert re.search(rf"^172\.16\.\d\.0/24 +unicast \[peer[12] [^\]]*\] \* \(100\) \[AS{asn}i\]$", out, re.M), asn
    assert "FAILED" not in out
