#!/usr/bin/env bash
# Installs what vgw, its tests and its lab need on a fresh Debian/Ubuntu machine:
# strongSwan (charon + swanctl + kernel-libipsec), iperf3, ping, nftables, tcpdump
# (bench.tunnel's capture of IKE under load), FRR and BIRD 2 (the customer
# gateway's BGP speaker in the dynamic-routing labs; GoBGP and ExaBGP too, for
# test_bgp_peers.py), and vgw itself with its test extras. Idempotent; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (apt-get and network namespaces need it)" >&2
    exit 1
fi
PKGS="strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libcharon-extra-plugins
      libstrongswan-extra-plugins
      iperf3 iputils-ping iproute2 nftables procps tcpdump
      docker.io docker-compose debootstrap systemd frr bird2 gobgpd exabgp"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# strongSwan's Debian package starts a charon on the host; the lab runs its own.
systemctl disable --now strongswan-starter strongswan >/dev/null 2>&1 || true
# Likewise FRR, BIRD, GoBGP and ExaBGP: each lab test runs its own, in its namespaces.
systemctl disable --now frr bird gobgpd exabgp >/dev/null 2>&1 || true
# Likewise Docker: the compose lab test starts an engine of its own (tests/lab/dockerd.py).
systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
PY=${PYTHON:-python3}
"$PY" -m pip install -q --root-user-action=ignore --upgrade pip setuptools wheel
"$PY" -m pip install -q --root-user-action=ignore ".[test,fast]"
"$PY" -c "import ikecore, bgpcore, dataplane, daemon, gmpy2, scapy, pytest, xdist" || {
    echo "install-deps: the Python packages did not install" >&2; exit 1; }
