"""Lab helpers for certificate tunnels and NAT: a PKI made by `vgw pki`, vgw with
a certificate tunnel, a strongSwan CGW with `auth = pubkey`, and nftables
counters that count IKE fragments on the wire independently of vgw's logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.lab.netns import Lab, LabError, Topo
from tests.lab.strongswan import Charon, swanctl_conf_pubkey
from tests.lab.vgwproc import REPO, Vgw, gateway_yaml, tunnel_yaml

VGW_IP = "198.51.100.1"
INSIDE = "169.254.10.0/30"
VGW_ID = "CN=vgw.example.net"
CGW_ID = "CN=cgw.example.net"


def vgw_pki(lab: Lab, name: str, *args: str) -> str:
    """Run `vgw pki ARGS` (this checkout) into a fresh directory; returns it."""
    d = lab.tmpdir(f"pki-{name}")
    env = dict(os.environ, PYTHONPATH=REPO)
    for cmd in (["init", d, *args],):
        res = subprocess.run([sys.executable, "-m", "daemon", "pki", *cmd], capture_output=True,
                             text=True, timeout=60, env=env, cwd=REPO)
        if res.returncode != 0:
            raise LabError(f"vgw pki {' '.join(cmd)} exited {res.returncode}: {res.stderr}")
    return d


def vgw_pki_issue(lab: Lab, directory: str, name: str, stem: str, *args: str) -> tuple[str, str]:
    env = dict(os.environ, PYTHONPATH=REPO)
    res = subprocess.run([sys.executable, "-m", "daemon", "pki", "issue", directory, name, "--out", stem, *args],
                         capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    if res.returncode != 0:
        raise LabError(f"vgw pki issue exited {res.returncode}: {res.stderr}")
    return os.path.join(directory, f"{stem}.pem"), os.path.join(directory, f"{stem}.key")


def start_vgw(lab: Lab, topo: Topo, pki_dir: str | None, cgw_ip: str | None, identity: str | None = None,
              psk: str | None = None, **options) -> Vgw:
    """vgw with one tunnel (198.51.100.1): a certificate from `pki_dir`, or `psk`."""
    vgw = Vgw(lab, topo.vgw)
    if psk is None:
        options.update(certificate=os.path.join(pki_dir, "vgw.pem"),
                       private_key=os.path.join(pki_dir, "vgw.key"))
    vgw.write_config(gateway_yaml(
        vgw.control, ["10.0.0.0/16"], "vpn-lab", cgw_ip, ["172.16.0.0/16"],
        [tunnel_yaml(VGW_IP, INSIDE, psk, **options)],
        ca_certificates=[os.path.join(pki_dir, "ca.pem")] if pki_dir else None, cgw_identity=identity))
    return vgw.start()


def start_cgw(lab: Lab, topo: Topo, ca: str, certs: list[str], keys: list[str],
              local_ids: str | list[str] = CGW_ID, remote_id: str = VGW_ID,
              settings: dict | None = None, **conf) -> Charon:
    """A strongSwan CGW trusting `ca`, one connection per certificate (tun1, or
    names=[...]) towards vgw's tunnel, auth = pubkey."""
    cgw = Charon(lab, topo.cgw, settings={"routing_table_prio": 32767, **(settings or {})}).start()
    cgw.add_credentials(cas=[ca], certs=certs, keys=keys)
    cgw.load(swanctl_conf_pubkey(topo.cgw_wan_ip, VGW_IP, [os.path.basename(c) for c in certs],
                                 local_ids, remote_id, **conf))
    return cgw


# --- IKE fragments on the wire (nftables in vgw's namespace) ---------------------------------

# Offsets from the UDP header (@th): IKE's Next Payload is octet 16 of the IKE
# header; on port 4500 the 4-octet non-ESP marker (RFC 3948 §2.2) comes first.
_NFT_RULES = """\
table inet vgwlab_ike {{
  counter skf_in {{}}
  counter skf_out {{}}
  counter ike_in {{}}
  counter ike_out {{}}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {ip} udp dport 500 @th,192,8 53 counter name skf_in
    ip daddr {ip} udp dport 4500 @th,64,32 0 @th,224,8 53 counter name skf_in
    ip daddr {ip} udp dport {{500, 4500}} counter name ike_in
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    ip saddr {ip} udp sport 500 @th,192,8 53 counter name skf_out
    ip saddr {ip} udp sport 4500 @th,64,32 0 @th,224,8 53 counter name skf_out
    ip saddr {ip} udp sport {{500, 4500}} counter name ike_out
  }}
}}
"""


def count_skf(lab: Lab, ns: str, ip: str = VGW_IP) -> None:
    """Count UDP datagrams to and from `ip` that carry an SKF payload (type 53)."""
    lab.run(ns, "nft", "-f", "-", input=_NFT_RULES.format(ip=ip))


def skf_counts(lab: Lab, ns: str) -> dict[str, int]:
    out = json.loads(lab.run(ns, "nft", "-j", "list", "counters", "table", "inet", "vgwlab_ike").stdout)
    return {item["counter"]["name"]: item["counter"]["packets"]
            for item in out["nftables"] if "counter" in item}
