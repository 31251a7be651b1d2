"""Two cores back to back: establishment, collisions, timers, OPEN checks."""

from ipaddress import IPv4Address

import pytest

from bgpcore.events import (
    CloseConnection, ConnectRequested, Established, NotificationReceived, NotificationSent,
    OpenReceived, OpenSent, SessionDown, StateChanged,
)
from bgpcore.fsm import State
from bgpcore.messages import KEEPALIVE

from .bgppair import BgpPair, settings_a, settings_b

EST = State.ESTABLISHED


def states(side):
    return [(e.old.value, e.new.value) for e in side.of(StateChanged)]


def test_vgw_connects_cgw_listens():
    """Only A starts; B is passive (listens first): A's connection carries the session."""
    pair = BgpPair(settings_a(), settings_b(passive=True))
    pair.start()
    pair.run()
    assert pair.a.peer.state == EST and pair.b.peer.state == EST
    assert states(pair.a) == [("Idle", "Connect"), ("Connect", "OpenSent"),
                              ("OpenSent", "OpenConfirm"), ("OpenConfirm", "Established")]
    assert states(pair.b)[:2] == [("Idle", "Active"), ("Active", "OpenSent")]
    assert pair.a.of(Established)[0].outbound is True
    assert pair.b.of(Established)[0].outbound is False
    assert len(pair.links) == 1 and not pair.a.of(NotificationSent)


def test_cgw_connects_vgw_passive():
    pair = BgpPair(settings_a(passive=True), settings_b())
    pair.start()
    pair.run()
    assert pair.a.peer.state == EST and pair.b.peer.state == EST
    assert pair.a.of(Established)[0].outbound is False
    assert pair.a.of(Established)[0] == Established(IPv4Address("169.254.10.2"), 30, 10, 65000,
                                                    True, True, False)


def test_passive_side_connects_after_connect_retry():
    """RFC 4271 event 4: Active first, then a connection of its own after ConnectRetryTime."""
    pair = BgpPair(settings_a(passive=True, connect_retry=12),
                   settings_b(passive=True, connect_retry=1000))
    pair.start()
    pair.run()
    assert pair.a.peer.state == State.ACTIVE and not pair.a.of(ConnectRequested)
    pair.advance(11.9)
    assert pair.a.peer.state == State.ACTIVE
    pair.advance(0.2)
    assert pair.a.of(ConnectRequested) and pair.a.peer.state == EST
    assert pair.a.of(Established)[0].outbound is True


@pytest.mark.parametrize("ids", [("169.254.10.1", "169.254.10.2"),
                                 ("169.254.10.9", "169.254.10.2")])
def test_both_connect_at_once_collision(ids):
    """Both open a connection at once: each side closes the same one with
    Cease/7, the one initiated by the higher BGP Identifier survives (§6.8)."""
    ida, idb = map(IPv4Address, ids)
    pair = BgpPair(settings_a(router_id=ida), settings_b(router_id=idb))
    pair.establish()
    [(conn_a, out_a, _)] = pair.a.peer.connections
    [(conn_b, out_b, _)] = pair.b.peer.connections
    # the surviving connection is the same TCP connection on both ends
    link = next(l for l in pair.links if l.ends["a"] == conn_a)
    assert link.ends["b"] == conn_b
    a_higher = int(ida) > int(idb)
    assert out_a is a_higher and out_b is not a_higher
    for side in (pair.a, pair.b):
        [n] = side.of(NotificationSent)
        assert (n.code, n.subcode, n.name) == (6, 7, "Cease / Connection Collision Resolution")
        assert len(side.of(Established)) == 1 and not side.of(SessionDown)
    # the peer's state never dipped while a connection was dropped
    assert states(pair.a)[-2:] == [("OpenSent", "OpenConfirm"), ("OpenConfirm", "Established")]
    pair.advance(100)
    assert pair.a.peer.state == EST and pair.b.peer.state == EST


def test_collision_with_established_closes_the_new_connection():
    pair = BgpPair(settings_a(), settings_b(passive=True))
    pair.establish()
    [(old, _, _)] = pair.a.peer.connections
    pair.a.clear()
    pair.b.wants_connect = True            # B opens a second connection
    pair.run()
    assert [c for c, _, _ in pair.a.peer.connections] == [old]
    assert [(n.code, n.subcode) for n in pair.a.of(NotificationSent)] == [(6, 7)]
    assert not pair.a.of(StateChanged) and pair.b.peer.state == EST


def test_hold_timer_expires_after_exactly_the_hold_time():
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    pair.deaf("a")                      # A hears nothing more; TCP stays up
    last = pair.now
    pair.a.clear()
    pair.advance(29.99)
    assert pair.a.peer.state == EST
    pair.advance(0.01)
    [n] = pair.a.of(NotificationSent)
    assert (n.code, n.subcode, n.name) == (4, 0, "Hold Timer Expired")
    assert pair.now == last + 30
    [down] = pair.a.of(SessionDown)
    assert down.notification.code == 4 and down.sent is True
    assert states(pair.a)[0] == ("Established", "Idle")
    assert pair.b.of(NotificationReceived)[-1].code == 4   # B still hears A


def test_keepalives_every_third_of_the_hold_time():
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    start = pair.now
    before = len(pair.sent["a"])
    pair.advance(95)
    writes = pair.sent["a"][before:]
    assert writes == [KEEPALIVE] * 9        # at +10, +20 ... +90
    assert pair.a.peer.counters.messages_out["KEEPALIVE"] >= 9
    assert pair.a.peer.state == EST and pair.b.peer.state == EST
    assert pair.now == start + 95


def test_the_smaller_hold_time_wins():
    pair = BgpPair(settings_a(hold_time=30), settings_b(hold_time=9))
    pair.establish()
    assert pair.a.peer.negotiated_hold_time == 9 == pair.b.peer.negotiated_hold_time
    assert pair.a.of(Established)[0].keepalive == 3
    before = len(pair.sent["a"])
    pair.advance(10)
    assert pair.sent["a"][before:] == [KEEPALIVE] * 3


def test_hold_time_zero_means_no_keepalives_and_no_hold_timer():
    pair = BgpPair(settings_a(), settings_b(hold_time=0))
    pair.establish()
    assert pair.a.peer.negotiated_hold_time == 0
    before = len(pair.sent["a"]) + len(pair.sent["b"])
    pair.deaf("a")
    pair.advance(10_000)
    assert pair.a.peer.state == EST and pair.b.peer.state == EST
    assert len(pair.sent["a"]) + len(pair.sent["b"]) == before
    assert pair.a.peer.next_deadline() is None


def test_update_restarts_keepalive_timer():
    """A KEEPALIVE is due only when no UPDATE went out for the interval (§8.2.2)."""
    from .bgppair import prefixes, route
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    pair.advance(7)
    pair.a.peer.set_advertised({prefixes(1)[0]: route(med=100)}, pair.now)
    before = len(pair.sent["a"])
    pair.advance(9.9)                      # 16.9 s after Established: no KEEPALIVE yet
    assert len(pair.sent["a"]) == before + 1   # only the UPDATE
    pair.advance(0.2)
    assert pair.sent["a"][-1] == KEEPALIVE


def test_bad_peer_as():
    pair = BgpPair(settings_a(), settings_b(local_asn=65001))
    pair.start()
    pair.run()
    sent = pair.a.of(NotificationSent)
    assert sent and all((n.code, n.subcode) == (2, 2) for n in sent)
    assert sent[0].name == "OPEN Message Error / Bad Peer AS"
    reasons = [e.reason for e in pair.a.of(StateChanged)]
    assert any("remote AS is 65001, expected 65000" in r for r in reasons)
    assert pair.a.peer.state == State.IDLE
    assert pair.a.of(OpenReceived)[0].asn == 65001


@pytest.mark.parametrize("hold", [1, 2])
def test_unacceptable_hold_time(hold):
    pair = BgpPair(settings_a(), settings_b(passive=True))
    pair.b.peer.settings.__dict__["hold_time"] = hold      # past validation: a broken peer
    pair.start()
    pair.run()
    assert [(n.code, n.subcode) for n in pair.a.of(NotificationSent)] == [(2, 6)]


@pytest.mark.parametrize("rid", ["0.0.0.0", "169.254.10.1"])
def test_bad_bgp_identifier(rid):
    pair = BgpPair(settings_a(), settings_b(passive=True))
    pair.b.peer.settings.__dict__["router_id"] = IPv4Address(rid)
    pair.start()
    pair.run()
    assert [(n.code, n.subcode) for n in pair.a.of(NotificationSent)] == [(2, 3)]


def test_four_octet_asn_uses_as_trans_in_my_as():
    pair = BgpPair(settings_a(local_asn=4200000000), settings_b(peer_asn=4200000000))
    pair.establish()
    opens = [m for m in pair.sent["a"] if m[18] == 1]
    assert opens and opens[0][20:22] == (23456).to_bytes(2, "big")
    assert pair.b.of(OpenReceived)[0].asn == 4200000000
    assert pair.a.of(OpenSent)[0].asn == 4200000000


def test_manual_stop_sends_administrative_shutdown_and_stays_idle():
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    pair.a.peer.stop(pair.now, message="maintenance")
    pair.run()
    n = pair.b.of(NotificationReceived)[-1]
    assert (n.code, n.subcode) == (6, 2)
    assert n.notification.communication == "maintenance"
    assert pair.a.peer.state == State.IDLE
    pair.advance(1000)
    assert pair.a.peer.state == State.IDLE and pair.a.peer.next_deadline() is None
    # B restarts by itself and is refused while A stays down
    assert pair.a.peer.counters.connections_refused >= 1


def test_peer_restarts_after_idle_hold_when_peer_closes():
    """The CGW restarts its session (Cease/2, then at once a new connection):
    vgw refuses connections while Idle and starts again after IdleHold (5 s)."""
    pair = BgpPair(settings_a(idle_hold=5), settings_b(connect_retry=1000))
    pair.establish()
    pair.b.peer.stop(pair.now)
    pair.run()
    pair.b.peer.start(pair.now)
    pair.run()
    assert pair.a.of(SessionDown)[-1].notification.subcode == 2
    assert pair.a.peer.counters.connections_refused == 1
    assert pair.a.peer.state == State.IDLE and pair.b.peer.state == State.ACTIVE
    pair.advance(4.9)
    assert pair.a.peer.state == State.IDLE
    pair.advance(0.2)
    assert pair.a.peer.state == EST and pair.a.of(Established)[-1].outbound is True


def test_connect_retry_after_failed_connect():
    """A refused connection leaves vgw in Active (still listening); it tries
    again after ConnectRetryTime."""
    pair = BgpPair(settings_a(connect_retry=20), settings_b(passive=True, connect_retry=1000))
    pair.refuse = {"a"}
    pair.start()
    pair.run()
    assert pair.a.peer.state == State.ACTIVE
    assert pair.a.peer.counters.connect_failures == 1
    pair.refuse = set()
    pair.advance(19.9)
    assert len(pair.a.of(ConnectRequested)) == 1
    pair.advance(0.2)
    assert len(pair.a.of(ConnectRequested)) == 2 and pair.a.peer.state == EST


def test_connection_lost_while_established():
    pair = BgpPair(settings_a(idle_hold=3), settings_b())
    pair.establish()
    conn = pair.a.peer.connections[0][0]
    pair.a.clear()
    pair.a.peer.connection_lost(conn, pair.now)
    pair.deaf("b")
    pair.run()
    assert pair.a.peer.state == State.IDLE
    down = pair.a.of(SessionDown)[0]
    assert down.notification is None and "TcpConnectionFails" in down.reason
    assert not pair.a.of(CloseConnection)      # the shell knows it is gone


def test_notifications_sent_say_why():
    pair = BgpPair(settings_a(), settings_b(local_asn=65001))
    pair.start()
    pair.run()
    assert pair.a.of(NotificationSent)[0].reason == "remote AS is 65001, expected 65000"
    assert pair.a.peer.last_notification_sent.name == "OPEN Message Error / Bad Peer AS"


def test_collision_cease_is_not_kept_as_the_last_notification():
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    assert pair.a.peer.counters.notifications_sent[6] == 1
    assert pair.a.peer.last_notification_sent is None
    assert pair.b.peer.last_notification_received is None


def test_peer_that_reconnects_while_established_moves_the_session():
    """A CGW that restarts (Cease, then at once a new connection, tracked while
    the old session was still up) ends Established on the new connection."""
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    [(old, _, _)] = pair.a.peer.connections
    pair.b.peer.stop(pair.now)
    pair.b.peer.start(pair.now)
    pair.run()
    [(new, _, state)] = pair.a.peer.connections
    assert new != old and state == EST and pair.b.peer.state == EST
    assert len(pair.a.of(SessionDown)) == 1 and len(pair.a.of(Established)) == 2


def test_a_fourth_connection_is_refused():
    from bgpcore.peer import MAX_CONNECTIONS
    from .rawpeer import raw_peer
    peer = raw_peer()
    for i in range(MAX_CONNECTIONS):
        peer.connection_made(f"x{i}", 0, outbound=False)
    assert len(peer.connections) == MAX_CONNECTIONS
    assert peer.counters.connections_refused == 1


def test_deadlines_are_typed_and_ordered():
    pair = BgpPair(settings_a(), settings_b())
    pair.establish()
    ds = pair.a.peer.deadlines()
    assert [d.kind.value for d in ds] == ["KeepaliveTimer", "HoldTimer"]
    assert ds[0].at == pair.now + 10 and ds[1].at == pair.now + 30
    assert ds[0].conn == pair.a.peer.connections[0][0]
    assert pair.a.peer.next_deadline() == ds[0].at


def test_a_collision_each_side_resolved_its_own_way_restarts_after_a_second_not_the_back_off():
    """RFC 4271 §6.8 leaves a race: the CGW reached Established on vgw's
    connection and closed its own with Cease/7 just as vgw, going by the BGP
    Identifiers, kept the CGW's and closed its own. Both connections are gone;
    nothing failed, so vgw comes back after COLLISION_RESTART, not IdleHold's 5 s."""
    from bgpcore.events import ConnectRequested
    from bgpcore.messages import Notification
    from bgpcore.peer import COLLISION_RESTART, BgpPeer
    from .rawpeer import cgw_open, events, out
    peer = BgpPeer(settings_a(idle_hold=5.0))                 # vgw, router ID 169.254.10.1
    peer.start(0.0)
    events(peer)
    peer.connection_made("mine", 0.0, outbound=True)           # vgw's connection
    peer.connection_made("theirs", 0.0, outbound=False)        # the CGW's
    higher = "169.254.10.9"                                    # the CGW's ID is higher: keep "theirs"
    peer.data_received("mine", cgw_open(rid=higher), 0.1)
    peer.data_received("theirs", cgw_open(rid=higher), 0.1)
    assert [c for c, _, _ in peer.connections] == ["theirs"]
    out(peer)
    # the CGW decided the other way: Cease/7 on the one vgw kept
    peer.data_received("theirs", Notification(6, 7).encode(), 0.2)
    assert peer.connections == [] or all(s.value == "Idle" for _, _, s in peer.connections)
    events(peer)
    peer.handle_timer(0.2 + COLLISION_RESTART - 0.01)
    assert not any(isinstance(e, ConnectRequested) for e in events(peer))
    peer.handle_timer(0.2 + COLLISION_RESTART)
    assert any(isinstance(e, ConnectRequested) for e in events(peer))
