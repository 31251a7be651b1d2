#!/bin/sh
# strongSwan customer gateway of the compose lab: charon (kernel-libipsec), then
# the swanctl.conf that `vgw cgw-config` generated; its tunnels start at load.
set -e
ip route del default 2>/dev/null || true   # 0.0.0.0/0 goes into the tunnels (table 220)
/usr/lib/ipsec/charon &
charon=$!
trap 'kill -TERM $charon' TERM INT
i=0
until swanctl --stats >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "cgw: charon did not start" >&2; exit 1; }
    sleep 0.1
done
swanctl --load-all --file /etc/swanctl/swanctl.conf
wait $charon
