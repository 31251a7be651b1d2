"""daemon.routing.kernel.KernelRoutes against a model of the kernel's main routing table.

The model follows what Linux does (checked with pyroute2 in a network namespace):
`add` fails with EEXIST when a route to the same prefix exists (same metric 0),
`replace` overwrites whatever is there, and `del` with a protocol number only
matches a route of that protocol (ESRCH otherwise). The point (audit item 1):
vgw must never replace or delete a route it did not install, e.g. the host's
default route or the route of the host's own network."""

import errno
import logging
import socket
from ipaddress import IPv4Network

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from daemon.routing.kernel import PROTO_VGW, KernelRoutes

PROTO_BOOT, PROTO_KERNEL = 3, 2


class Msg(dict):
    """Enough of a pyroute2 rtmsg for KernelRoutes: fields by key, attributes by get_attr."""

    def get_attr(self, name):
        return self["attrs"].get(name)


class FakeKernel:
    """The main table as {prefix: route}; `calls` records every change asked for."""

    def __init__(self):
        self.table: dict[IPv4Network, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_with: int | None = None   # errno every change fails with, when set

    def preset(self, dst: str, proto: int, oif: int | None = 7, type_: str = "unicast") -> None:
        self.table[IPv4Network(dst)] = {"proto": proto, "oif": oif, "type": type_}

    def route(self, cmd, **kw):
        if cmd == "dump":
            assert kw.get("table") == 254
            msgs = [Msg(family=socket.AF_INET6, dst_len=64, proto=PROTO_KERNEL, attrs={"RTA_DST": "fe80::"})]
            for net, r in self.table.items():
                attrs = {"RTA_OIF": r["oif"]}
                if net.prefixlen:
                    attrs["RTA_DST"] = str(net.network_address)   # the kernel omits RTA_DST for /0
                msgs.append(Msg(family=socket.AF_INET, dst_len=net.prefixlen, proto=r["proto"], attrs=attrs))
            return msgs
        net = IPv4Network(kw["dst"])
        self.calls.append((cmd, str(net)))
        if self.fail_with is not None:
            raise NetlinkError(self.fail_with)
        entry = {"proto": kw.get("proto", PROTO_BOOT), "oif": kw.get("oif"), "type": kw.get("type", "unicast")}
        if cmd == "add":
            if net in self.table:
                raise NetlinkError(errno.EEXIST, "File exists")
            self.table[net] = entry
        elif cmd == "replace":
            self.table[net] = entry
        elif cmd == "del":
            have = self.table.get(net)
            if (have is None or ("proto" in kw and have["proto"] != kw["proto"])
                    or ("oif" in kw and have["oif"] != kw["oif"])
                    or ("type" in kw and have["type"] != kw["type"])):
                raise NetlinkError(errno.ESRCH, "No such process")
            del self.table[net]
        else:
            raise AssertionError(cmd)


class FakeNetlink:
    def __init__(self, kernel: FakeKernel):
        self.kernel = kernel
        self.closed = False

    def call(self, fn, timeout=None):
        return fn(self.kernel)

    def close(self):
        self.closed = True


def nets(*prefixes):
    return [IPv4Network(p) for p in prefixes]


@pytest.fixture
def kernel():
    return FakeKernel()


def test_routes_move_between_tunnels_and_go_on_close(kernel):
    table = KernelRoutes(FakeNetlink(kernel))
    table.point(nets("172.16.0.0/16", "172.17.0.0/16"), 11)
    assert kernel.table[IPv4Network("172.16.0.0/16")] == {"proto": PROTO_VGW, "oif": 11, "type": "unicast"}
    table.point(nets("172.16.0.0/16", "172.17.0.0/16"), 12)      # primary moved
    assert kernel.table[IPv4Network("172.17.0.0/16")]["oif"] == 12
    table.point(nets("172.16.0.0/16", "172.17.0.0/16"), None)    # no tunnel up
    assert kernel.table[IPv4Network("172.16.0.0/16")]["type"] == "unreachable"
    table.close()
    assert kernel.table == {}


@pytest.mark.parametrize("prefix,proto", [("0.0.0.0/0", PROTO_BOOT), ("192.0.2.0/24", PROTO_KERNEL)])
def test_a_route_vgw_did_not_install_is_neither_replaced_nor_deleted(kernel, caplog, prefix, proto):
    """The host's default route or its own network: vgw leaves it as it is, says
    so, and close() does not remove it."""
    kernel.preset(prefix, proto, oif=3)
    before = dict(kernel.table)
    table = KernelRoutes(FakeNetlink(kernel))
    with caplog.at_level(logging.ERROR, logger="vgw.routes"):
        table.point(nets(prefix, "172.16.0.0/16"), 11)
    assert kernel.table[IPv4Network(prefix)] == before[IPv4Network(prefix)]
    assert ("replace", prefix) not in kernel.calls
    assert f"cannot install route {prefix}" in caplog.text and "did not install" in caplog.text
    assert prefix not in table.snapshot() and "172.16.0.0/16" in table.snapshot()
    table.point(nets(prefix, "172.16.0.0/16"), 12)    # a later move does not take it either
    table.point(nets(prefix, "172.16.0.0/16"), None)
    assert kernel.table[IPv4Network(prefix)] == before[IPv4Network(prefix)]
    table.close()
    assert kernel.table == before
    assert ("del", prefix) not in kernel.calls


def test_a_route_left_by_an_earlier_vgw_run_is_taken_over(kernel):
    kernel.preset("172.16.0.0/16", PROTO_VGW, oif=5)
    table = KernelRoutes(FakeNetlink(kernel))
    table.point(nets("172.16.0.0/16"), 11)
    assert kernel.table[IPv4Network("172.16.0.0/16")]["oif"] == 11
    table.close()
    assert kernel.table == {}


def test_netlink_errors_are_logged_not_raised_and_nothing_is_deleted_later(kernel, caplog):
    kernel.fail_with = errno.EPERM
    netlink = FakeNetlink(kernel)
    table = KernelRoutes(netlink)
    with caplog.at_level(logging.ERROR, logger="vgw.routes"):
        table.point(nets("172.16.0.0/16"), 11)
    assert "cannot install route 172.16.0.0/16" in caplog.text
    assert table.snapshot() == {}
    kernel.fail_with = None
    kernel.calls.clear()
    table.close()
    assert kernel.calls == [] and netlink.closed


