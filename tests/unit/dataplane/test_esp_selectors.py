"""Inbound traffic selectors (RFC 4301 §5.2): an authentic ESP packet whose inner
packet lies outside the SA's selectors is dropped and counted as `policy`, the
rest is delivered; with AWS's default 0.0.0.0/0 selectors nothing is checked.
Inner packets are built with scapy (an independent encoder)."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6

from dataplane.esp import DropReason, EspSa
from dataplane.selectors import Range, Selectors
from daemon.tunnel import _ranges
from ikecore.payloads import TrafficSelector

GCM_KEY = bytes(range(20))
CBC_KEY, SHA_KEY = bytes(range(16)), bytes(range(32))


def v4(cidr: str, protocol: int = 0, ports=(0, 65535)) -> Range:
    net = ipaddress.ip_network(cidr)
    return Range(4, int(net.network_address), int(net.broadcast_address), protocol, *ports)


def pair(kind: str, selectors: Selectors | None):
    if kind == "gcm":
        tx = EspSa(0x1001, "aes-gcm-16", GCM_KEY)
        rx = EspSa(0x1001, "aes-gcm-16", GCM_KEY, selectors=selectors)
    else:
        tx = EspSa(0x1001, "aes-cbc", CBC_KEY, "hmac-sha2-256-128", SHA_KEY)
        rx = EspSa(0x1001, "aes-cbc", CBC_KEY, "hmac-sha2-256-128", SHA_KEY, selectors=selectors)
    return tx, rx


CGW_SIDE = (v4("172.16.0.0/16"),)
VGW_SIDE = (v4("10.0.0.0/16"),)


@pytest.mark.parametrize("kind", ["gcm", "cbc"])
@pytest.mark.parametrize("batch", [False, True])
def test_outside_the_selectors_is_dropped_as_policy(kind, batch):
    tx, rx = pair(kind, Selectors.for_inbound(CGW_SIDE, VGW_SIDE))
    inside = bytes(IP(src="172.16.1.10", dst="10.0.1.10") / ICMP())
    spoofed = bytes(IP(src="192.0.2.66", dst="10.0.1.10") / ICMP())    # a source the SA does not cover
    elsewhere = bytes(IP(src="172.16.1.10", dst="203.0.113.9") / ICMP())
    packets = [tx.seal(p) for p in (inside, spoofed, elsewhere, inside)]
    if batch and kind == "gcm":
        out = rx.open_batch(packets)
    else:
        out = [x for x in map(rx.open, packets) if x is not None]
    assert out == [inside, inside]
    assert rx.drops[DropReason.POLICY] == 2 and rx.packets == 2
    assert rx.bytes == 2 * len(inside)


def test_protocol_and_ports_of_a_narrowed_selector():
    """A selector for TCP port 443 on the VGW side admits that, refuses UDP and
    other ports; a later fragment (no ports) is judged by address and protocol."""
    sel = Selectors.for_inbound(CGW_SIDE, (v4("10.0.0.0/16", 6, (443, 443)),))
    ok = bytes(IP(src="172.16.1.1", dst="10.0.0.5") / TCP(sport=40000, dport=443))
    assert sel.admits(ok)
    assert not sel.admits(bytes(IP(src="172.16.1.1", dst="10.0.0.5") / TCP(sport=40000, dport=80)))
    assert not sel.admits(bytes(IP(src="172.16.1.1", dst="10.0.0.5") / UDP(sport=40000, dport=443)))
    later = bytes(IP(src="172.16.1.1", dst="10.0.0.5", proto=6, frag=100) / (b"x" * 40))
    assert sel.admits(later)


def test_ipv6_inner_and_garbage():
    sel = Selectors.for_inbound(CGW_SIDE, VGW_SIDE)
    assert not sel.admits(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()))
    assert not sel.admits(b"\x45" + bytes(10))           # shorter than an IPv4 header
    six = (Range(6, 0, (1 << 128) - 1),)
    assert Selectors(six, six).admits(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()))


def test_everything_gets_no_checker():
    """AWS's default 0.0.0.0/0 both sides: no per-packet work at all."""
    assert Selectors.for_inbound((v4("0.0.0.0/0"),), (v4("0.0.0.0/0"),)) is None
    assert Selectors.for_inbound((v4("0.0.0.0/0"),), VGW_SIDE) is not None
    assert Selectors.for_inbound((v4("0.0.0.0/0", 6),), (v4("0.0.0.0/0"),)) is not None


def test_the_runtime_turns_negotiated_selectors_into_ranges():
    ts = (TrafficSelector.from_network("172.16.0.0/16"),
          TrafficSelector(ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.9"), 17, 53, 53))
    assert _ranges(ts) == (v4("172.16.0.0/16"), Range(4, int(ipaddress.ip_address("10.0.0.1")),
                                                      int(ipaddress.ip_address("10.0.0.9")), 17, 53, 53))
