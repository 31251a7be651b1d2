#!/bin/sh
# vgw container of the compose lab: the second outside IP on the WAN interface
# (compose gives a container one address per network), no default route (the
# lab reaches nothing outside), then vgw in the foreground as PID 1.
set -e
wan=$(ip -o -4 addr show | awk '$4 == "198.51.100.1/24" {print $2}')
ip addr add 198.51.100.2/24 dev "$wan" 2>/dev/null || true
ip route del default 2>/dev/null || true
exec vgw run --config /etc/vgw/vgw.yaml
