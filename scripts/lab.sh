#!/usr/bin/env bash
# The two-tunnel lab (README, Quick start): installs what is needed, then brings up
# vgw + strongSwan in network namespaces, shows traffic and `vgw status`, and tears
# everything down. `--keep` keeps it up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
exec "${PYTHON:-python3}" scripts/lab_demo.py "$@"
