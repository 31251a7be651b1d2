"""Traffic selector narrowing (RFC 7296 §2.9).

The responder intersects each selector the initiator proposed with the network
it is configured for; what remains is answered. Nothing left -> TS_UNACCEPTABLE.
AWS narrows to the connection's local/remote network CIDRs (docs/aws.md §1.8).
"""

from __future__ import annotations

import ipaddress

from .payloads import TrafficSelector


def narrow(proposed: list[TrafficSelector], allowed: str) -> list[TrafficSelector]:
    net = ipaddress.ip_network(allowed)
    lo, hi = net.network_address, net.broadcast_address
    out = []
    for ts in proposed:
        if ts.start.version != net.version or ts.start > ts.end or ts.start_port > ts.end_port:
            continue
        start, end = max(ts.start, lo), min(ts.end, hi)
        if start <= end:
            narrowed = TrafficSelector(start, end, ts.ip_proto, ts.start_port, ts.end_port)
            if narrowed not in out:
                out.append(narrowed)
    return out


def covers(outer: list[TrafficSelector], inner: list[TrafficSelector]) -> bool:
    """Initiator check: every selector the responder answered lies inside one we
    proposed (the responder may only narrow)."""
    def inside(i: TrafficSelector, o: TrafficSelector) -> bool:
        return (i.start.version == o.start.version and o.start <= i.start and i.end <= o.end
                and (o.ip_proto == 0 or o.ip_proto == i.ip_proto)
                and o.start_port <= i.start_port and i.end_port <= o.end_port)
    return bool(inner) and all(any(inside(i, o) for o in outer) for i in inner)


def selectors_for(cidr: str) -> list[TrafficSelector]:
    return [TrafficSelector.from_network(cidr)]
