#!/usr/bin/env bash
# Installs vgw as a systemd service (README, "Run as a service"):
#   sudo ./scripts/install-service.sh [--no-pip] [--enable]
# - pip-installs vgw from this checkout (unless --no-pip) and finds the `vgw` command;
# - copies systemd/vgw.service to /etc/systemd/system/vgw.service, with ExecStart
#   pointing at that command (and ProtectHome=read-only if it lives under /root or /home);
# - copies examples/vgw.yaml to /etc/vgw/vgw.yaml (mode 0600) only if there is none:
#   an existing config is never overwritten;
# - reloads systemd; with --enable also enables and starts vgw.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=1 ENABLE=0
for arg in "$@"; do
    case "$arg" in
        --no-pip) PIP=0 ;;
        --enable) ENABLE=1 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install-service: unknown option $arg (use --no-pip, --enable)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "install-service: run as root (sudo ./scripts/install-service.sh)" >&2
    exit 1
fi
PREFIX=${DESTDIR:-}
PY=${PYTHON:-python3}
if [ "$PIP" -eq 1 ]; then
    "$PY" -m pip install -q --root-user-action=ignore .
fi
# The interpreter's own scripts directory first: a shim (pyenv) on PATH would not
# work under systemd's clean environment.
VGW="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/vgw"
[ -x "$VGW" ] || VGW=$(command -v vgw || true)
if [ -z "$VGW" ]; then
    echo "install-service: the vgw command is not on PATH; install it with: pip install ." >&2
    exit 1
fi
VGW=$(readlink -f "$VGW")
case "$VGW" in
    /root/*|/home/*) PROTECT_HOME=read-only ;;   # vgw lives in a home directory: keep it readable
    *) PROTECT_HOME=yes ;;
esac
install -d -m 0755 "$PREFIX/etc/systemd/system"
sed -e "s#/usr/local/bin/vgw#$VGW#g" -e "s#^ProtectHome=yes#ProtectHome=$PROTECT_HOME#" \
    systemd/vgw.service > "$PREFIX/etc/systemd/system/vgw.service"
chmod 0644 "$PREFIX/etc/systemd/system/vgw.service"
install -d -m 0750 "$PREFIX/etc/vgw"
if [ -e "$PREFIX/etc/vgw/vgw.yaml" ]; then
    echo "install-service: keeping the existing $PREFIX/etc/vgw/vgw.yaml"
else
    install -m 0600 examples/vgw.yaml "$PREFIX/etc/vgw/vgw.yaml"
    echo "install-service: wrote $PREFIX/etc/vgw/vgw.yaml from examples/vgw.yaml: edit it (outside IPs, PSKs)"
fi
echo "install-service: installed $PREFIX/etc/systemd/system/vgw.service (ExecStart $VGW run)"
if [ -z "$PREFIX" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$ENABLE" -eq 1 ]; then
        systemctl enable --now vgw
    else
        echo "install-service: start it with: systemctl enable --now vgw"
    fi
else
    echo "install-service: systemd is not running here; the files are in place for when it is"
fi
