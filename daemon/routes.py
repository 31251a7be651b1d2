"""Routes into the tunnels, as a VGW does them (aws-facts.md §7).

Egress: a connection's static routes point at ONE tunnel, the primary; ingress
is accepted on both. The primary is kept while it is up (no flapping back when
the other tunnel returns, AWS: the selection "may change at times"); when it
goes down the routes move to another tunnel that is up. With no tunnel up the
routes become `unreachable` rather than vanishing, so that traffic for the
customer network is refused instead of leaking in clear text along some other
route (e.g. a default route to the Internet).
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Network

from .netlink import NetlinkWorker

log = logging.getLogger("vgw.routes")

PROTO_VGW = 190   # rtm_protocol for our routes (a private value, visible in `ip route`)


class RouteTable:
    """Owns the kernel routes for a set of prefixes; removes them on close()."""

    def __init__(self, netlink: NetlinkWorker | None = None):
        self._nl = netlink or NetlinkWorker()
        self._installed: dict[str, int | None] = {}   # prefix -> ifindex (None: unreachable)

    def point(self, prefixes: list[IPv4Network], ifindex: int | None) -> None:
        """Make each prefix go to `ifindex`, or `unreachable` when None."""
        for net in prefixes:
            dst = str(net)
            if self._installed.get(dst, -1) == ifindex:
                continue
            try:
                if ifindex is None:
                    self._nl.call(lambda ipr: ipr.route("replace", dst=dst, type="unreachable",
                                                        proto=PROTO_VGW))
                else:
                    self._nl.call(lambda ipr: ipr.route("replace", dst=dst, oif=ifindex,
                                                        proto=PROTO_VGW))
                self._installed[dst] = ifindex
            except Exception as exc:   # netlink errors must not take the daemon down
                log.error("cannot install route %s: %s", dst, exc)

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
                                                    proto=PROTO_VGW))
            else:
                self._nl.call(lambda ipr: ipr.route("del", dst=dst, oif=ifindex, proto=PROTO_VGW))
        except Exception as exc:
            log.debug("route %s already gone: %s", dst, exc)

    def snapshot(self) -> dict[str, int | None]:
        return dict(self._installed)

    def close(self) -> None:
        for dst in list(self._installed):
            self._delete(dst)
        self._nl.close()


def choose_primary(current: str | None, up: list[str]) -> str | None:
    """Keep the current primary while it is up; else the first tunnel that is up
    (config order)."""
    if current in up:
        return current
    return up[0] if up else None
