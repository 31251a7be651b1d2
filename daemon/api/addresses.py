"""The outside addresses the EC2 API hands out, on the host.

AWS gives each tunnel a public outside address (docs/aws.md §1.1); vgw takes
them from `api.outside_ip_pool` and must carry them itself so that its tunnels
can bind them. Each address goes, as a /32, on the interface whose network
already contains it (the customer gateways then reach it as a neighbour on that
link), else on `lo` (the host must then route the pool to it).

vgw removes only what it added: every address it adds carries the address
protocol PROTO_VGW (IFA_PROTO, Linux 6.1; what `ip -d address` shows as
`proto 190`), and an address the host already had is left alone and never
removed. One left behind by an earlier vgw that died (protocol PROTO_VGW) is
taken over, and removed with its connection or at exit.
"""

from __future__ import annotations

import logging
import socket
from ipaddress import IPv4Address, IPv4Interface

from ..netlink import NetlinkWorker
from ..routing.kernel import PROTO_VGW

log = logging.getLogger("vgw.api")


class HostAddresses:
    """The pool addresses vgw put on the host: add, remove, remove all at close()."""

    def __init__(self, netlink: NetlinkWorker | None = None):
        self._nl = netlink or NetlinkWorker()
        self.added: dict[IPv4Address, int] = {}   # address -> ifindex, only those vgw added

    def add(self, address: IPv4Address) -> None:
        """Put `address` on the host (if it is not there already); errors are logged:
        the tunnel's bind then says what is missing."""
        if address in self.added:
            return
        try:
            self._nl.call(lambda ipr: self._add(ipr, address))
        except Exception as exc:   # netlink trouble must not take the daemon down
            log.error("cannot add the outside address %s to the host: %s", address, exc)

    def _add(self, ipr, address: IPv4Address) -> None:
        present = [a for a in ipr.get_addr(family=socket.AF_INET) if a.get_attr("IFA_LOCAL") == str(address)]
        for found in present:
            if found.get_attr("IFA_PROTO") == PROTO_VGW:
                log.info("taking over the outside address %s left by an earlier vgw run", address)
                self.added[address] = found["index"]
                return
        if present:
            log.info("the outside address %s is already on the host; vgw uses it and will not remove it", address)
            return
        index, name = self._interface_for(ipr, address)
        ipr.addr("add", index=index, address=str(address), prefixlen=32, proto=PROTO_VGW)
        self.added[address] = index
        log.info("added the outside address %s/32 to %s", address, name)

    @staticmethod
    def _interface_for(ipr, address: IPv4Address) -> tuple[int, str]:
        """The interface whose network holds `address` (the longest such network), else lo."""
        best: tuple[int, int, str] | None = None
        for item in ipr.get_addr(family=socket.AF_INET):
            network = IPv4Interface(f"{item.get_attr('IFA_LOCAL')}/{item['prefixlen']}").network
            if network.prefixlen < 32 and address in network and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, item["index"], item.get_attr("IFA_LABEL") or "")
        if best is not None:
            return best[1], best[2]
        return ipr.link_lookup(ifname="lo")[0], "lo"

    def remove(self, address: IPv4Address) -> None:
        """Take `address` off the host if vgw added it; nothing otherwise."""
        index = self.added.pop(address, None)
        if index is None:
            return
        try:
            self._nl.call(lambda ipr: ipr.addr("del", index=index, address=str(address), prefixlen=32))
            log.info("removed the outside address %s from the host", address)
        except Exception as exc:
            log.warning("cannot remove the outside address %s: %s", address, exc)

    def close(self) -> None:
        for address in list(self.added):
            self.remove(address)
        self._nl.close()
