#!/usr/bin/env bash
# Builds the compose lab's images without an image registry (README, "Docker"):
#   1. a Debian bookworm root made by debootstrap into build/docker-root (Debian's
#      package mirror only), imported with `docker import` as $VGW_BASE_IMAGE
#      (default vgw-base:bookworm) - skipped when that image exists;
#   2. Python wheels for vgw and its dependencies in build/docker-wheels (PyPI
#      once; the image build itself needs no index);
#   3. `docker-compose build` of docker/compose.yaml with BASE=$VGW_BASE_IMAGE.
# Needs root (debootstrap), a running Docker engine (DOCKER_HOST is honoured),
# debootstrap and docker-compose (apt-get install debootstrap docker.io docker-compose).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${VGW_BASE_IMAGE:-vgw-base:bookworm}
ROOT=build/docker-root
WHEELS=build/docker-wheels
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PKGS=python3,python3-venv,iproute2,iputils-ping,procps,strongswan-charon,strongswan-swanctl
PKGS=$PKGS,libstrongswan-standard-plugins,libcharon-extra-plugins,libstrongswan-extra-plugins
PY=${PYTHON:-python3}

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ ! -f "$ROOT.complete" ]; then
        echo "docker-images: debootstrap bookworm into $ROOT (about a minute)"
        rm -rf "$ROOT"
        mkdir -p build
        debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOT" "$MIRROR" >build/debootstrap.log 2>&1 || {
            echo "docker-images: debootstrap failed; see build/debootstrap.log" >&2; exit 1; }
        rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
        touch "$ROOT.complete"
    fi
    echo "docker-images: docker import $ROOT as $BASE_IMAGE"
    tar -C "$ROOT" -c . | docker import - "$BASE_IMAGE" >/dev/null
fi

# Dependencies as manylinux wheels for the base's CPython 3.11, whatever runs this script.
mkdir -p "$WHEELS"
deps=$("$PY" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
# the marker holds the dependency list it was made for: a new dependency downloads again
if [ "$(cat "$WHEELS/.deps-complete" 2>/dev/null)" != "$deps" ]; then
    # shellcheck disable=SC2086
    "$PY" -m pip download -q --dest "$WHEELS" --only-binary=:all: --python-version 3.11 \
        --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --platform any $deps
    printf '%s' "$deps" > "$WHEELS/.deps-complete"
fi
rm -f "$WHEELS"/vgw-*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$WHEELS" . 2>/dev/null \
    || "$PY" -m pip wheel -q --no-deps --wheel-dir "$WHEELS" .

VGW_BASE_IMAGE=$BASE_IMAGE docker-compose -f docker/compose.yaml build -q
echo "docker-images: built vgw:lab and vgw-strongswan:lab on $BASE_IMAGE"
