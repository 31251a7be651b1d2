"""The kernel's routes that vgw owns: what the VPC route table decided, programmed.

daemon/routing/table.py decides, per prefix, the tunnel (or `unreachable`: a
static route of a connection with no tunnel up is refused rather than leaking in
clear text along some other route, e.g. a default route to the Internet); this
module installs, moves and removes those routes in the main table with protocol
190, and never touches a route it did not install.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from ipaddress import IPv4Network

from pyroute2.netlink.exceptions import NetlinkError

from ..netlink import NetlinkWorker

log = logging.getLogger("vgw.routes")

PROTO_VGW = 190   # rtm_protocol for our routes (a private value, visible in `ip route`)
MAIN_TABLE = 254  # RT_TABLE_MAIN, where `route add` without a table goes
# The VPC's route table, with the EC2 API (SourceRules): a table and a rule priority
# of vgw's own, before main's 32766
VPC_TABLE = 190
VPC_RULE_PRIORITY = 190
PROC_SYS = "/proc/sys"   # a parameter of check_ip_forward and KernelRoutes (tests)


def check_ip_forward(proc_sys: str = PROC_SYS) -> bool:
    """False, with a warning naming the sysctl, when net.ipv4.ip_forward is 0.

    Traffic decrypted on either tunnel goes to the kernel, which must forward it
    into the VPC (AWS accepts ingress on both tunnels, docs/aws.md §1.1, §7); with
    forwarding off it stops at the host. Unreadable (no /proc/sys): no opinion."""
    try:
        with open(os.path.join(proc_sys, "net", "ipv4", "ip_forward")) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return True
    if value == 0:
        log.warning("net.ipv4.ip_forward is 0: traffic decrypted on the tunnels will not reach the VPC;"
                    " set the sysctl net.ipv4.ip_forward=1")
        return False
    return True


class KernelRoutes:
    """Owns the kernel routes for a set of prefixes; removes them on close().

    It never takes over a route it did not install: the first route to a prefix is
    added exclusively (NLM_F_EXCL), so an existing route to the same prefix (the
    host's default route, a route of the host's own network) makes the add fail and
    is left as it is, with an error naming it; only the routes vgw added are then
    replaced (moved between tunnels) and deleted, and deletes match vgw's protocol
    number so that the kernel refuses to remove anyone else's. A route left behind by
    an earlier vgw run (protocol PROTO_VGW) is taken over.

    Made once per gateway at startup, it also warns if IPv4 forwarding is off
    (check_ip_forward)."""

    def __init__(self, netlink: NetlinkWorker | None = None, proc_sys: str = PROC_SYS, table: int = MAIN_TABLE):
        if table == MAIN_TABLE:
            check_ip_forward(proc_sys)
        self._nl = netlink or NetlinkWorker()
        self.table = table
        self._installed: dict[str, int | None] = {}   # prefix -> ifindex (None: unreachable)

    def point(self, prefixes: list[IPv4Network], ifindex: int | None) -> None:
        """Make each prefix go to `ifindex`, or `unreachable` when None."""
        for net in prefixes:
            dst = str(net)
            if self._installed.get(dst, -1) == ifindex:
                continue
            target = {"type": "unreachable"} if ifindex is None else {"oif": ifindex}
            try:
                if dst in self._installed or not self._add(net, target):
                    self._nl.call(lambda ipr: ipr.route("replace", dst=dst, proto=PROTO_VGW, table=self.table,
                                                        **target))
                self._installed[dst] = ifindex
            except _NotOurs as exc:
                log.error("cannot install route %s: the main routing table already has a route to %s that vgw"
                          " did not install (protocol %s); vgw leaves it alone: remove that route or this"
                          " static route", dst, dst, exc)
            except Exception as exc:   # netlink errors must not take the daemon down
                log.error("cannot install route %s: %s", dst, exc)

    def _add(self, net: IPv4Network, target: dict) -> bool:
        """Add a route to `net` only if none exists. True if added; False if the one
        there is vgw's own (left by an earlier run: replace it); _NotOurs otherwise."""
        dst = str(net)
        try:
            self._nl.call(lambda ipr: ipr.route("add", dst=dst, proto=PROTO_VGW, table=self.table, **target))
            return True
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        protos = self._nl.call(lambda ipr: _protocols_of(ipr, net, self.table))
        if protos and all(p == PROTO_VGW for p in protos):
            log.info("taking over route %s left by an earlier vgw run", dst)
            return False
        raise _NotOurs(", ".join(map(str, protos)) or "unknown")

    def remove(self, prefixes: list[IPv4Network]) -> None:
        for net in prefixes:
            dst = str(net)
            if dst in self._installed:
                self._delete(dst)

    def _delete(self, dst: str) -> None:
        ifindex = self._installed.pop(dst)
        try:
            if ifindex is None:
                self._nl.call(lambda ipr: ipr.route("del", dst=dst, type="unreachable",
                                                    proto=PROTO_VGW, table=self.table))
            else:
                self._nl.call(lambda ipr: ipr.route("del", dst=dst, oif=ifindex, proto=PROTO_VGW,
                                                    table=self.table))
        except Exception as exc:
            log.debug("route %s already gone: %s", dst, exc)

    def snapshot(self) -> dict[str, int | None]:
        return dict(self._installed)

    def close(self) -> None:
        for dst in list(self._installed):
            self._delete(dst)
        self._nl.close()


class _NotOurs(Exception):
    """The prefix already has a route that vgw did not install."""


def _protocols_of(ipr, net: IPv4Network, table: int = MAIN_TABLE) -> list[int]:
    """rtm_protocol of the table's routes to exactly `net` at metric 0 (the
    ones an `add` without a metric collides with)."""
    return [
        route["proto"]
        for route in ipr.route("dump", table=table)
        if route["family"] == socket.AF_INET and route["dst_len"] == net.prefixlen
        and (route.get_attr("RTA_DST") or "0.0.0.0") == str(net.network_address)
        and not route.get_attr("RTA_PRIORITY")
    ]


class SourceRules:
    """`ip rule from CIDR lookup VPC_TABLE` for each VPC CIDR: traffic from the VPC
    sees the VPC's route table first (vgw's routes there, as the VPC route table
    holds them: daemon/gateway.py), everything else only the main table.

    Rules are vgw's by their table and priority; ones left by an earlier run are
    removed at start."""

    def __init__(self, netlink: NetlinkWorker, table: int = VPC_TABLE, priority: int = VPC_RULE_PRIORITY):
        self._nl = netlink
        self.table, self.priority = table, priority
        self.sources: list[IPv4Network] = []
        self._nl.call(self._clear)

    def set(self, cidrs: list[IPv4Network]) -> None:
        if list(cidrs) == self.sources:
            return
        try:
            self._nl.call(self._clear)
            for cidr in cidrs:
                self._nl.call(lambda ipr, c=cidr: ipr.rule("add", table=self.table, priority=self.priority,
                                                           src=str(c.network_address), src_len=c.prefixlen))
            self.sources = list(cidrs)
        except Exception as exc:   # netlink errors must not take the daemon down
            log.error("cannot add the VPC's routing rules (from %s lookup %d): %s",
                      ", ".join(map(str, cidrs)), self.table, exc)

    def _clear(self, ipr) -> None:
        for rule in ipr.get_rules(family=socket.AF_INET):
            if rule.get_attr("FRA_TABLE") == self.table and rule.get_attr("FRA_PRIORITY") == self.priority:
                ipr.rule("del", table=self.table, priority=self.priority,
                         src=rule.get_attr("FRA_SRC"), src_len=rule["src_len"])

    def close(self) -> None:
        try:
            self._nl.call(self._clear)
        except Exception as exc:
            log.warning("cannot remove the VPC's routing rules: %s", exc)
        self.sources = []

