"""Routes between two cores: export, diffs, End-of-RIB, refresh, AWS's import
policy, the prefix limit and its back-off."""

from ipaddress import IPv4Address, IPv4Network

from bgpcore.aspath import AsPath
from bgpcore.attributes import PathAttributes, parse_attributes
from bgpcore.constants import Origin
from bgpcore.events import (
    EndOfRib, Established, NotificationReceived, NotificationSent, PrefixLimitExceeded,
    PrefixLimitWarning, RouteDenied, RouteRefreshReceived, RoutesAdvertised, RoutesChanged,
    SessionDown,
)
from bgpcore.fsm import State
from bgpcore.messages import decode_update
from bgpcore.wire import MAX_MESSAGE_LEN

from .bgppair import VGW, BgpPair, prefixes, route, settings_a, settings_b

VPC = IPv4Network("10.0.0.0/16")
VPC2 = IPv4Network("10.1.0.0/16")
EST = State.ESTABLISHED


def updates(raw_writes):
    """Decoded UPDATEs among the writes: (withdrawn, attributes, nlri)."""
    out = []
    for m in raw_writes:
        if m[18] == 2:
            u = decode_update(m[19:])
            out.append(u)
    return out


def test_export_prepends_our_as_sets_next_hop_drops_local_pref():
    pair = BgpPair(settings_a(), settings_b())
    pair.a.peer.set_advertised({VPC: PathAttributes(med=100, local_pref=300),
                                VPC2: route((65001,), med=200, origin=Origin.INCOMPLETE)},
                               pair.now)
    pair.establish()
    got = pair.b.peer.accepted
    assert got[VPC] == PathAttributes(Origin.IGP, AsPath.of(64512), VGW, 100)
    assert got[VPC2] == PathAttributes(Origin.INCOMPLETE, AsPath.of(64512, 65001), VGW, 200)
    assert str(got[VPC2].as_path) == "64512 65001"
    assert pair.a.peer.advertised == got
    [adv] = pair.a.of(RoutesAdvertised)
    assert adv.announced == got and adv.withdrawn == frozenset()


def test_end_of_rib_follows_the_initial_updates():
    pair = BgpPair(settings_a(), settings_b())
    pair.a.peer.set_advertised({VPC: PathAttributes(med=100)}, pair.now)
    pair.establish()
    ups = updates(pair.sent["a"])
    assert [u.nlri for u in ups] == [(VPC,), ()]
    assert ups[-1].is_end_of_rib
    names = [type(e).__name__ for e in pair.b.events]
    assert names.index("RoutesChanged") < names.index("EndOfRib")
    # nothing to advertise: End-of-RIB alone
    assert [u.is_end_of_rib for u in updates(pair.sent["b"])] == [True]
    assert pair.a.of(EndOfRib)


def test_med_change_on_one_prefix_sends_one_update_with_that_prefix():
    """The primary tunnel moves: MED 100 -> 200 (docs/aws.md §7)."""
    pair = BgpPair(settings_a(), settings_b())
    pair.a.peer.set_advertised({VPC: PathAttributes(med=100), VPC2: PathAttributes(med=100)},
                               pair.now)
    pair.establish()
    assert len(updates(pair.sent["a"])) == 2            # one UPDATE for both + End-of-RIB
    before = len(pair.sent["a"])
    pair.b.clear()
    pair.a.peer.set_advertised({VPC: PathAttributes(med=200), VPC2: PathAttributes(med=100)},
                               pair.now)
    pair.run()
    [u] = updates(pair.sent["a"][before:])
    assert u.nlri == (VPC,) and u.withdrawn == ()
    assert parse_attributes(u.attributes, True).values["med"] == 200
    [ch] = pair.b.of(RoutesChanged)
    assert set(ch.announced) == {VPC} and ch.announced[VPC].med == 200
    # the same set again: nothing goes out
    before = len(pair.sent["a"])
    pair.a.peer.set_advertised({VPC: PathAttributes(med=200), VPC2: PathAttributes(med=100)},
                               pair.now)
    pair.run()
    assert pair.sent["a"][before:] == []


def test_prefix_that_left_is_withdrawn():
    pair = BgpPair(settings_a(), settings_b())
    pair.a.peer.set_advertised({VPC: PathAttributes(), VPC2: PathAttributes()}, pair.now)
    pair.establish()
    before = len(pair.sent["a"])
    pair.a.peer.set_advertised({VPC2: PathAttributes()}, pair.now)
    pair.run()
    [u] = updates(pair.sent["a"][before:])
    assert u.withdrawn == (VPC,) and u.nlri == () and u.attributes == b""
    assert pair.b.of(RoutesChanged)[-1].withdrawn == frozenset({VPC})
    assert set(pair.b.peer.accepted) == {VPC2}
    assert pair.a.of(RoutesAdvertised)[-1].withdrawn == frozenset({VPC})


def test_equal_attributes_share_updates_and_messages_stay_within_4096():
    pair = BgpPair(settings_a(max_prefixes=None), settings_b(max_prefixes=None))
    many = prefixes(1500, "10.0.0.0")
    routes = {p: PathAttributes(med=100) for p in many[:1400]}
    routes.update({p: PathAttributes(med=200) for p in many[1400:]})
    pair.a.peer.set_advertised(routes, pair.now)
    pair.establish()
    ups = [m for m in pair.sent["a"] if m[18] == 2]
    assert all(len(m) <= MAX_MESSAGE_LEN for m in ups)
    decoded = updates(ups)
    assert sum(len(u.nlri) for u in decoded) == 1500
    # 1400 /24s need two messages of at most ~1000 prefixes, the 100 others one
    assert len(decoded) == 4 and decoded[-1].is_end_of_rib
    assert len(pair.b.peer.accepted) == 1500


def test_route_refresh_resends_the_adj_rib_out():
    pair = BgpPair(settings_a(), settings_b())
    pair.a.peer.set_advertised({VPC: PathAttributes(med=100), VPC2: PathAttributes(med=200)},
                               pair.now)
    pair.establish()
    before = len(pair.sent["a"])
    pair.b.clear()
    assert pair.b.peer.request_refresh(pair.now) is True
    pair.run()
    assert pair.sent["b"][-1][18] == 5                   # ROUTE-REFRESH
    ups = updates(pair.sent["a"][before:])
    assert sorted(p for u in ups for p in u.nlri) == [VPC, VPC2]
    assert pair.a.of(RouteRefreshReceived)
    assert not pair.b.of(RoutesChanged)                  # the same routes again
    assert pair.a.peer.counters.messages_in["ROUTE-REFRESH"] == 1


def test_request_refresh_needs_an_established_session():
    pair = BgpPair(settings_a(), settings_b())
    assert pair.a.peer.request_refresh(pair.now) is False


def test_route_with_our_own_as_is_denied():
    pair = BgpPair(settings_a(), settings_b())
    loop, fine = prefixes(2, "172.16.0.0")
    pair.b.peer.set_advertised({loop: route((64512,)), fine: route()}, pair.now)
    pair.establish()
    [d] = pair.a.of(RouteDenied)
    assert (d.prefix, d.reason) == (loop, "as-path contains our own AS")
    assert str(d.attributes.as_path) == "65000 64512"
    assert set(pair.a.peer.accepted) == {fine}
    assert pair.a.peer.received_prefixes == 2
    [ch] = pair.a.of(RoutesChanged)
    assert set(ch.announced) == {fine}


def test_route_with_a_non_connected_next_hop_is_denied():
    """The CGW's core says its own address is .6; vgw peers with .2 (in a lab
    the harness does not care which address a connection comes from)."""
    pair = BgpPair(settings_a(), settings_b(local_address=IPv4Address("169.254.10.6")))
    pair.b.peer.set_advertised({IPv4Network("172.16.0.0/16"): route()}, pair.now)
    pair.establish()
    [d] = pair.a.of(RouteDenied)
    assert d.reason == "non-connected next-hop" and d.attributes.next_hop == IPv4Address(
        "169.254.10.6")
    assert pair.a.peer.accepted == {} and pair.a.peer.received_prefixes == 1
    assert not pair.a.of(RoutesChanged)


def test_accepted_route_replaced_by_a_denied_path_is_withdrawn():
    pair = BgpPair(settings_a(), settings_b())
    p = IPv4Network("172.16.0.0/16")
    pair.b.peer.set_advertised({p: route()}, pair.now)
    pair.establish()
    pair.a.clear()
    pair.b.peer.set_advertised({p: route((64512,))}, pair.now)
    pair.run()
    assert pair.a.of(RouteDenied) and pair.a.of(RoutesChanged)[-1].withdrawn == frozenset({p})
    assert pair.a.peer.accepted == {} and pair.a.peer.received_prefixes == 1


def test_session_down_withdraws_everything_accepted():
    pair = BgpPair(settings_a(), settings_b())
    pair.b.peer.set_advertised({p: route() for p in prefixes(5, "172.16.0.0")}, pair.now)
    pair.a.peer.set_advertised({VPC: PathAttributes(med=100)}, pair.now)
    pair.establish()
    assert len(pair.a.peer.accepted) == 5
    pair.b.peer.stop(pair.now)
    pair.run()
    [down] = pair.a.of(SessionDown)
    assert (down.notification.code, down.notification.subcode, down.sent) == (6, 2, False)
    assert pair.a.peer.accepted == {} and pair.a.peer.received_prefixes == 0
    assert pair.a.peer.advertised == {} and pair.a.peer.established_since is None
    # after the restart everything is sent again
    pair.b.peer.start(pair.now)
    pair.advance(10)
    assert pair.a.peer.state == EST and len(pair.a.peer.accepted) == 5
    assert set(pair.b.peer.accepted) == {VPC}


def test_the_101st_prefix_ends_the_session_with_cease_1_and_the_limit():
    """docs/aws.md §7 / RFC 4486: NOTIFICATION 6/1, data 00 01 01 00 00 00 64."""
    pair = BgpPair(settings_a(), settings_b())
    pair.b.peer.set_advertised({p: route() for p in prefixes(101)}, pair.now)
    pair.start()
    pair.run()
    [n] = pair.a.of(NotificationSent)[-1:]
    assert (n.code, n.subcode) == (6, 1)
    assert n.data == bytes.fromhex("00010100000064")
    assert n.name == "Cease / Maximum Number of Prefixes Reached"
    wire = [m for m in pair.sent["a"] if m[18] == 3][-1]
    assert wire == b"\xff" * 16 + bytes.fromhex("001c" "03" "0601" "00010100000064")
    assert pair.a.of(PrefixLimitExceeded) == [PrefixLimitExceeded(100)]
    [warn] = pair.a.of(PrefixLimitWarning)
    assert (warn.count, warn.limit) == (101, 100)      # all 101 came in one UPDATE
    assert pair.b.of(NotificationReceived)[-1].data == n.data
    assert pair.a.peer.state == State.IDLE
    assert pair.a.of(SessionDown)[-1].notification == n.notification
    assert pair.a.peer.received_prefixes == 0 and pair.a.peer.accepted == {}
    assert pair.a.peer.counters.prefix_limit_exceeded == 1


def test_adj_rib_in_never_holds_more_than_the_limit():
    pair = BgpPair(settings_a(max_prefixes=10), settings_b())
    pair.b.peer.set_advertised({p: route() for p in prefixes(500)}, pair.now)
    seen = []
    real = pair.a.peer.rib_in.apply

    def spy(withdrawn, announced):
        change = real(withdrawn, announced)
        seen.append(len(pair.a.peer.rib_in.received))
        return change
    pair.a.peer.rib_in.apply = spy
    pair.start()
    pair.run()
    assert seen and max(seen) == 10
    assert pair.a.of(NotificationSent)[-1].data == bytes.fromhex("0001010000000a")


def test_denied_prefixes_count_toward_the_limit():
    """AWS counts what the CGW sent: 60 accepted + 41 denied = 101 -> Cease/1."""
    pair = BgpPair(settings_a(), settings_b())
    ps = prefixes(101)
    routes = {p: route() for p in ps[:60]}
    routes.update({p: route((64512,)) for p in ps[60:]})
    pair.b.peer.set_advertised(routes, pair.now)
    pair.start()
    pair.run()
    assert [(n.code, n.subcode) for n in pair.a.of(NotificationSent)][-1] == (6, 1)
    assert len(pair.a.of(RouteDenied)) == 40        # the 101st never got that far


def test_over_the_limit_the_session_flaps_with_a_growing_capped_back_off():
    pair = BgpPair(settings_a(idle_hold=5, idle_hold_max=20),
                   settings_b(idle_hold=1, connect_retry=1000))
    pair.b.peer.set_advertised({p: route() for p in prefixes(101)}, pair.now)
    pair.start()
    for _ in range(300):
        pair.advance(1)
        if len(pair.a.of(PrefixLimitExceeded)) >= 6:
            break
    times = pair.a.when(PrefixLimitExceeded)[:6]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps == [5, 10, 20, 20, 20]
    # never more than 100 prefixes held, and each session was up before it broke
    assert len(pair.a.of(Established)) == 6
    assert all((n.code, n.subcode) == (6, 1) for n in pair.a.of(NotificationSent)
               if n.code == 6 and n.subcode != 7)


def test_back_off_starts_over_after_a_stable_session():
    pair = BgpPair(settings_a(idle_hold=5, idle_hold_max=20), settings_b(idle_hold=1))
    pair.establish()
    peer = pair.a.peer
    for _ in range(3):        # quick failures: the next restart waits 5, 10, 20 s
        peer.reset(pair.now)
        pair.advance(peer.idle_hold_delay + 1)
        assert peer.state == State.ESTABLISHED
    assert peer.idle_hold_delay == 20
    pair.advance(20)          # a session that stayed up for the cap
    peer.reset(pair.now)
    pair.run()
    assert peer.idle_hold_delay == 5


def test_prefix_warning_once_below_the_limit():
    pair = BgpPair(settings_a(), settings_b())
    pair.b.peer.set_advertised({p: route() for p in prefixes(80)}, pair.now)
    pair.establish()
    pair.b.peer.set_advertised({p: route() for p in prefixes(90)}, pair.now)
    pair.run()
    assert pair.a.of(PrefixLimitWarning) == [PrefixLimitWarning(80, 100)]
    assert pair.a.peer.state == EST and len(pair.a.peer.accepted) == 90
