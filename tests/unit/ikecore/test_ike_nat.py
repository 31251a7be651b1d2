"""NAT traversal beyond detection (RFC 7296 §2.23, RFC 3948): keepalives from
the side behind the NAT, a NAT mapping that changes, a customer gateway with no
configured address. Side A sits behind the NAPT of ikepair.Nat.
"""

from __future__ import annotations

from ikecore.events import NatKeepalive, PeerMoved
from ikecore.timers import IkeTimer
from .ikepair import ADDR_B, IkePair, Nat, settings_a, settings_b

PUBLIC = "203.0.113.5"


def nat_pair(**b):
    pair = IkePair(settings_a(), settings_b(remote_ip=b.pop("remote_ip", PUBLIC), **b), nat_a=Nat(PUBLIC))
    pair.handshake()
    assert len(pair.a.ups) == 1 and len(pair.b.ups) == 1
    return pair


def test_nat_detected_and_port_4500():
    pair = nat_pair()
    a, b = pair.a.endpoint.current, pair.b.endpoint.current
    assert (a.local_behind_nat, a.peer_behind_nat) == (True, False)
    assert (b.local_behind_nat, b.peer_behind_nat) == (False, True)
    assert a.remote == (ADDR_B, 4500) and b.remote == (PUBLIC, 40001)   # the NAT's second mapping
    [child] = pair.b.child_ups
    assert child.udp_encap and child.remote == (PUBLIC, 40001)
    status = pair.b.endpoint.status()["ike"]
    assert status["remote"] == f"{PUBLIC}[40001]" and status["peer_behind_nat"]
    assert status["auth"] == "psk" and status["fragmentation"] is True


def test_keepalives_come_from_the_side_behind_the_nat():
    """RFC 3948 §2.3: the node behind the NAT sends them (every 20 s here, as
    strongSwan); the other side relies on its periodic DPD (docs/aws.md §6.4)."""
    pair = nat_pair()
    start = pair.now
    pair.run_timers(start + 61)
    a_keepalives = pair.a.of(NatKeepalive)
    assert len(a_keepalives) == 3
    assert all(k.remote == (ADDR_B, 4500) for k in a_keepalives)
    assert pair.b.of(NatKeepalive) == []
    assert pair.b.endpoint.current.counters.retransmitted_requests == 0   # periodic DPD answered


def test_no_keepalives_without_a_nat():
    pair = IkePair()
    pair.handshake()
    pair.run_timers(100)
    assert pair.a.of(NatKeepalive) == [] and pair.b.of(NatKeepalive) == []


def test_nat_mapping_change_is_followed_on_the_next_authenticated_message():
    pair = nat_pair()
    b_sa = pair.b.endpoint.current
    old = b_sa.remote
    # the NAT forgets its mappings (a reboot, a conntrack flush): A's next packet
    # leaves from a new public port, and answers to the old one are dropped
    pair.a.nat.out_map.clear()
    pair.a.nat.in_map.clear()
    pair.advance(b_sa.timers[IkeTimer.DPD])              # B's periodic DPD (peer behind NAT)
    lost = pair.outgoing(pair.b)
    assert lost and not any(pair.deliver(pair.a, d) for d in lost)
    assert b_sa.remote == old
    # unauthenticated junk from the new port moves nothing
    pair.b.endpoint.receive(b"\x00" * 40, b_sa.local, (PUBLIC, 41000), pair.now)
    assert b_sa.remote == old and pair.b.of(PeerMoved) == []
    pair.liveness(pair.a)                         # A's own DPD, from the new mapping
    pair.transfer(pair.a)
    [moved] = pair.b.of(PeerMoved)
    assert moved.remote[0] == PUBLIC and moved.remote[1] != old[1]
    assert b_sa.remote == moved.remote
    assert pair.b.logged(f"AWS tunnel follows cgw from {PUBLIC}:{old[1]} to {PUBLIC}:{moved.remote[1]}")
    # B's DPD retransmission goes to the new mapping and is answered
    pair.run_timers(pair.now + 30)
    assert len(pair.b.downs) == 0 and b_sa.established
    assert pair.b.endpoint.current is b_sa


def test_customer_gateway_from_any_address():
    """customer_gateway.ip omitted: the tunnel accepts the CGW at whatever address
    its NAT gives it; status shows where it actually is."""
    pair = nat_pair(remote_ip=None)
    assert pair.b.ups[0].remote[0] == PUBLIC
    assert pair.b.endpoint.status()["ike"]["remote"].startswith(f"{PUBLIC}[")


def test_authenticated_esp_from_a_new_mapping_moves_the_tunnel_at_once():
    """RFC 7296 §2.23: a validated packet - ESP too - from a new port moves the
    SA there. The data path reports it (IkeEndpoint.esp_from); IKE and ESP follow
    without waiting for the CGW's next IKE message."""
    pair = nat_pair()
    b_sa = pair.b.endpoint.current
    old = b_sa.remote
    new = (PUBLIC, old[1] + 7)
    assert pair.b.endpoint.esp_from(new, pair.now)
    [moved] = pair.b.of(PeerMoved)
    assert moved.remote == new and b_sa.remote == new
    assert pair.b.logged(f"AWS tunnel follows cgw from {PUBLIC}:{old[1]} to {PUBLIC}:{new[1]}")
    # the next IKE request (B's periodic DPD) goes to the new port
    pair.advance(b_sa.timers[IkeTimer.DPD])
    out = pair.outgoing(pair.b)
    assert out and all(d.remote == new for d in out)
    # the same address again changes nothing
    assert not pair.b.endpoint.esp_from(new, pair.now)
    assert len(pair.b.of(PeerMoved)) == 1


def test_esp_from_another_address_than_the_configured_cgw_is_not_followed():
    pair = nat_pair()                               # customer_gateway.ip = PUBLIC
    b_sa = pair.b.endpoint.current
    old = b_sa.remote
    assert not pair.b.endpoint.esp_from(("198.51.100.99", old[1]), pair.now)
    assert b_sa.remote == old and pair.b.of(PeerMoved) == []


def test_esp_from_a_new_address_is_followed_without_a_configured_cgw_ip():
    pair = nat_pair(remote_ip=None)
    b_sa = pair.b.endpoint.current
    assert pair.b.endpoint.esp_from(("198.51.100.99", 4500), pair.now)
    assert b_sa.remote == ("198.51.100.99", 4500)
    assert [m.remote for m in pair.b.of(PeerMoved)] == [("198.51.100.99", 4500)]


def test_esp_from_a_new_address_is_not_followed_from_behind_a_nat():
    """§2.23: a host behind a NAT SHOULD NOT update (A is behind the NAT)."""
    pair = nat_pair()
    a_sa = pair.a.endpoint.current
    old = a_sa.remote
    assert not pair.a.endpoint.esp_from((old[0], 4600), pair.now)
    assert a_sa.remote == old and pair.a.of(PeerMoved) == []


def test_esp_from_before_any_sa_is_up_is_ignored():
    pair = IkePair()
    assert not pair.b.endpoint.esp_from((PUBLIC, 4500), pair.now)


def _dpd_from(pair, src):
    """A's DPD request, delivered to B as if it came from `src` (authentic: A's
    keys sealed it; only the source address differs)."""
    pair.liveness(pair.a)
    [req] = pair.outgoing(pair.a)
    pair.b.endpoint.receive(req.data, (ADDR_B, 4500), src, pair.now)
    pair.b.drain()
    return req


def test_ike_from_another_address_than_the_configured_cgw_is_not_followed():
    """RFC 7296 §2.23 with AWS's registered CGW address (docs/aws.md §2): an
    authenticated IKE message - a replayed capture, say - from another address
    answers nothing there and moves nothing, as for ESP."""
    pair = nat_pair()                               # customer_gateway.ip = PUBLIC
    b_sa = pair.b.endpoint.current
    old = b_sa.remote
    _dpd_from(pair, ("198.51.100.99", old[1]))
    assert b_sa.remote == old and pair.b.of(PeerMoved) == []
    assert pair.b.endpoint.counters.dropped_unknown_peer == 1
    assert pair.b.endpoint.datagrams_to_send() == []   # its answer would go to 198.51.100.99
    assert not pair.b.logged("AWS tunnel follows cgw")


def test_ike_from_a_new_port_of_the_configured_cgw_is_followed():
    pair = nat_pair()
    b_sa = pair.b.endpoint.current
    old = b_sa.remote
    _dpd_from(pair, (PUBLIC, old[1] + 3))
    assert b_sa.remote == (PUBLIC, old[1] + 3) and len(pair.b.of(PeerMoved)) == 1


def test_ike_from_a_new_address_is_not_followed_from_behind_a_nat():
    """§2.23: a host behind a NAT SHOULD NOT update its peer's address (A is
    behind the NAT here): an authenticated answer from elsewhere moves nothing."""
    pair = nat_pair()
    a_sa = pair.a.endpoint.current
    old = a_sa.remote
    pair.liveness(pair.b)
    [req] = pair.outgoing(pair.b)
    private = pair.a.nat.inbound(req.remote)
    pair.a.endpoint.receive(req.data, private, (old[0], 4600), pair.now)
    assert a_sa.remote == old and pair.a.of(PeerMoved) == []
    assert a_sa.counters.moves_refused == 1
