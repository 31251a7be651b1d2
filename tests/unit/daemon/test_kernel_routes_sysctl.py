"""The sysctls that ingress on both tunnels needs (docs/aws.md §1.1, §7): loose
reverse-path filtering on each TUN (RFC 3704 §2.4) and IPv4 forwarding into the VPC.
A temporary directory stands in for /proc/sys. rp_filter is set where the TUN is
created (dataplane/tun.py); forwarding is checked once by the gateway's KernelRoutes."""

import errno
import logging
import os

import pytest

from daemon.routing import kernel as routes
from dataplane import tun

DEV = "vgwc6336401"


def sysctl_tree(tmp_path, all_rp=1, dev_rp=1, ip_forward=1):
    conf = tmp_path / "net" / "ipv4" / "conf"
    for dev, value in (("all", all_rp), (DEV, dev_rp)):
        (conf / dev).mkdir(parents=True)
        (conf / dev / "rp_filter").write_text(f"{value}\n")
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text(f"{ip_forward}\n")
    return tmp_path


def rp_filter_of(root, dev=DEV):
    return (root / "net" / "ipv4" / "conf" / dev / "rp_filter").read_text().strip()


def test_the_tun_gets_loose_rp_filter_whatever_all_says(tmp_path, caplog):
    root = sysctl_tree(tmp_path, all_rp=1, dev_rp=1)
    with caplog.at_level(logging.WARNING, logger="vgw.tun"):
        assert tun.loosen_rp_filter(DEV, str(root)) is True
    assert rp_filter_of(root) == "2"
    assert rp_filter_of(root, "all") == "1"     # the host's setting is not touched
    assert caplog.records == []


@pytest.fixture
def read_only(monkeypatch):
    """/proc/sys mounted read-only, as in a container."""
    def refuse(path, value):
        raise OSError(errno.EROFS, "Read-only file system", path)
    monkeypatch.setattr(tun, "_write_sysctl", refuse)


@pytest.mark.parametrize("all_rp,dev_rp", [(1, 0), (0, 1), (1, 1)])
def test_read_only_proc_sys_with_strict_filtering_warns_and_does_not_fail(tmp_path, caplog, read_only,
                                                                          all_rp, dev_rp):
    root = sysctl_tree(tmp_path, all_rp=all_rp, dev_rp=dev_rp)
    with caplog.at_level(logging.WARNING, logger="vgw.tun"):
        assert tun.loosen_rp_filter(DEV, str(root)) is False
    [record] = caplog.records
    assert f"net.ipv4.conf.{DEV}.rp_filter=2" in record.getMessage()
    assert "strict (1)" in record.getMessage() and "net.ipv4.conf.default.rp_filter=2" in record.getMessage()


@pytest.mark.parametrize("all_rp,dev_rp", [(0, 0), (2, 1), (1, 2)])
def test_read_only_proc_sys_is_fine_when_filtering_is_already_off_or_loose(tmp_path, caplog, read_only,
                                                                           all_rp, dev_rp):
    root = sysctl_tree(tmp_path, all_rp=all_rp, dev_rp=dev_rp)
    with caplog.at_level(logging.WARNING, logger="vgw.tun"):
        assert tun.loosen_rp_filter(DEV, str(root)) is False
    assert caplog.records == []


def test_no_proc_sys_at_all_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vgw.tun"):
        assert tun.loosen_rp_filter(DEV, str(tmp_path / "missing")) is False
    assert "unknown" in caplog.text


def test_ip_forward_off_is_named_in_a_warning(tmp_path, caplog):
    root = sysctl_tree(tmp_path, ip_forward=0)
    with caplog.at_level(logging.WARNING, logger="vgw.routes"):
        assert routes.check_ip_forward(str(root)) is False
    assert "net.ipv4.ip_forward=1" in caplog.text and "VPC" in caplog.text
    caplog.clear()
    (root / "net" / "ipv4" / "ip_forward").write_text("1\n")
    with caplog.at_level(logging.WARNING, logger="vgw.routes"):
        assert routes.check_ip_forward(str(root)) is True
    assert caplog.records == []


def test_unreadable_ip_forward_is_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vgw.routes"):
        assert routes.check_ip_forward(str(tmp_path / "missing")) is True
    assert caplog.records == []


def test_the_gateway_route_table_checks_forwarding_once(tmp_path, caplog):
    """KernelRoutes is made once per gateway at startup: one warning, not one per tunnel."""
    root = sysctl_tree(tmp_path, ip_forward=0)

    class NoNetlink:
        def close(self):
            pass

    with caplog.at_level(logging.WARNING, logger="vgw.routes"):
        table = routes.KernelRoutes(NoNetlink(), proc_sys=str(root))
    [record] = caplog.records
    assert "net.ipv4.ip_forward=1" in record.getMessage()
    table.close()


def test_creating_a_tun_loosens_its_rp_filter(monkeypatch):
    """TunDevice.create is where each tunnel's device appears: its rp_filter is
    set there (without root: the ioctl and netlink are stubbed)."""
    calls = []
    real_open = os.open
    monkeypatch.setattr(tun.os, "open", lambda path, flags: real_open(os.devnull, os.O_RDWR))
    monkeypatch.setattr(tun.fcntl, "ioctl", lambda *a: 0)
    monkeypatch.setattr(tun, "_netlink", lambda fn: 42)
    monkeypatch.setattr(tun, "loosen_rp_filter", lambda name: calls.append(("rp_filter", name)))
    device = tun.TunDevice.create(DEV)
    try:
        assert device.ifindex == 42
        assert calls == [("rp_filter", DEV)]
    finally:
        os.close(device.fd)
