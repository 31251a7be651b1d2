"""systemd/vgw.service and scripts/install-service.sh: the directives the daemon
relies on, systemd's own verifier, and an install into a scratch root that never
overwrites an existing config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UNIT = REPO / "systemd" / "vgw.service"


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_unit_has_what_the_daemon_relies_on():
    d = directives(UNIT.read_text())
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["ExecStart"][0].endswith("vgw run --config /etc/vgw/vgw.yaml")
    assert d["RuntimeDirectory"] == ["vgw"]  # /run/vgw/vgw.sock, the default control socket
    caps = {"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}
    assert set(d["CapabilityBoundingSet"][0].split()) == caps
    assert set(d["AmbientCapabilities"][0].split()) == caps
    assert d["DeviceAllow"] == ["/dev/net/tun rw"]
    for key, value in (("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("NoNewPrivileges", "yes")):
        assert d[key] == [value], key
    # vgw writes /proc/sys/net/ipv6/conf/<tun>/disable_ipv6: tunables must stay writable
    assert "ProtectKernelTunables" not in d
    assert "AF_NETLINK" in d["RestrictAddressFamilies"][0]  # routes and TUN setup (pyroute2)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    unit = tmp_path / "vgw.service"
    # verify checks that ExecStart's binary exists: point it at one that does
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/vgw", shutil.which("true") or "/bin/true"))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Unknown key" not in res.stderr and "Unknown lvalue" not in res.stderr, res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="install-service.sh refuses to run without root")
def test_install_script_never_overwrites_a_config(tmp_path):
    env = dict(os.environ, DESTDIR=str(tmp_path))
    script = str(REPO / "scripts" / "install-service.sh")
    first = subprocess.run([script, "--no-pip"], capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    config = tmp_path / "etc" / "vgw" / "vgw.yaml"
    assert config.read_text() == (REPO / "examples" / "vgw.yaml").read_text()
    assert oct(config.stat().st_mode & 0o777) == "0o600"  # it holds the PSKs
    unit = (tmp_path / "etc" / "systemd" / "system" / "vgw.service").read_text()
    exec_start = directives(unit)["ExecStart"][0]
    assert os.access(exec_start.split()[0], os.X_OK), exec_start
    config.write_text("# mine\n")
    again = subprocess.run([script, "--no-pip"], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0 and "keeping the existing" in again.stdout
    assert config.read_text() == "# mine\n"
