"""daemon.routing: AWS's path selection and what each BGP session announces.

The table is sans-I/O, so these tests feed it what sessions and tunnels report
and check the decisions against docs/aws.md §7 and §11 rule by rule."""

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.routing import (MED_OTHER, MED_PRIMARY, ConnectionPlan, Learned, Source, VpcRouteTable,
                            choose_primary)

N = IPv4Network
VPC = N("10.0.0.0/16")
ASN = 64512


def conn(name, t1, t2, dynamic=True, static=(), cgw=None):
    return ConnectionPlan(name=name, tunnels=(t1, t2), dynamic=dynamic,
                          static_routes=tuple(N(s) for s in static),
                          customer_gateway_ip=IPv4Address(cgw) if cgw else None)


def learned(*as_path, med=None, hop="169.254.10.2"):
    return Learned(as_path=tuple(as_path), as_path_length=len(as_path), med=med,
                   next_hop=IPv4Address(hop))


def table(*connections, vpc=(VPC,)):
    t = VpcRouteTable()
    t.configure(vpc, connections)
    t.decide()
    return t


A1, A2, B1, B2, C1, C2 = "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6"


def test_choose_primary_keeps_the_current_one_while_it_is_up():
    assert choose_primary("b", ["a", "b"]) == "b"
    assert choose_primary("b", ["a"]) == "a"
    assert choose_primary(None, []) is None


def test_static_routes_follow_the_primary_and_turn_blackhole_with_no_tunnel_up():
    t = table(conn("s", A1, A2, dynamic=False, static=["172.16.0.0/16"]))
    route = t.routes[N("172.16.0.0/16")]
    assert route.tunnel is None and route.state == "blackhole"
    t.set_up(A2, True)
    ch = t.decide()
    assert ch.kernel == {N("172.16.0.0/16"): A2} and ch.primaries == {"s": A2}
    t.set_up(A1, True)
    assert not t.decide()                       # the primary stays while it is up
    t.set_up(A2, False)
    assert t.decide().kernel == {N("172.16.0.0/16"): A1}
    t.set_up(A1, False)
    ch = t.decide()
    assert ch.kernel == {N("172.16.0.0/16"): None} and not ch.removed


def test_vpc_cidrs_go_out_with_med_100_on_the_primary_and_200_on_the_other():
    t = table(conn("d", A1, A2))
    t.set_up(A1, True)
    t.set_up(A2, True)
    t.decide()
    assert t.advertisements(A1)[VPC].med == MED_PRIMARY
    assert t.advertisements(A2)[VPC].med == MED_OTHER
    assert t.advertisements(A1)[VPC].as_path == ()      # the session prepends 64512
    t.set_up(A1, False)                                 # e.g. vgw tunnel down
    ch = t.decide()
    assert ch.primaries == {"d": A2}
    assert ch.advertisements[A2][VPC].med == MED_PRIMARY   # the MEDs follow the primary
    assert ch.advertisements[A1][VPC].med == MED_OTHER


def test_before_any_session_is_up_every_tunnel_offers_med_100():
    """The first session up becomes the primary: it must not be sent 200 first."""
    t = table(conn("d", A1, A2))
    assert t.advertisements(A1)[VPC].med == t.advertisements(A2)[VPC].med == MED_PRIMARY


def test_the_tunnel_that_came_up_first_stays_primary_when_both_come_up_in_one_decision():
    """Two sessions Established within the same moment, the second tunnel's first:
    it was sent MED 100 (no primary yet), so it becomes the primary and the MED
    it was sent stays true; the other is moved to 200, not the first one flipped."""
    t = table(conn("d", A1, A2))
    t.set_up(A2, True)
    t.set_up(A1, True)
    ch = t.decide()
    assert ch.primaries == {"d": A2}
    assert A2 not in ch.advertisements                  # nothing to resend: it already has 100
    assert ch.advertisements[A1][VPC].med == MED_OTHER


def test_a_prefix_learned_on_both_tunnels_moves_without_a_gap():
    t = table(conn("d", A1, A2))
    for tunnel in (A1, A2):
        t.set_up(tunnel, True)
        t.learn(tunnel, {N("172.16.0.0/16"): learned(65000)})
    ch = t.decide()
    assert ch.kernel == {N("172.16.0.0/16"): A1}
    assert t.routes[N("172.16.0.0/16")].reason == "primary tunnel"
    t.set_up(A1, False)
    t.forget(A1)
    ch = t.decide()
    # replaced in place, never removed in between
    assert ch.kernel == {N("172.16.0.0/16"): A2} and not ch.removed
    t.learn(A2, {}, withdrawn=[N("172.16.0.0/16")])
    assert t.decide().removed == {N("172.16.0.0/16")}


def test_static_route_beats_bgp_and_shorter_as_path_beats_longer():
    t = table(conn("s", A1, A2, dynamic=False, static=["172.16.0.0/16"]), conn("d", B1, B2))
    for tunnel in (A1, B1):
        t.set_up(tunnel, True)
    t.learn(B1, {N("172.16.0.0/16"): learned(65001), N("172.17.0.0/16"): learned(65001, 65001)})
    t.decide()
    assert t.routes[N("172.16.0.0/16")].path.source is Source.STATIC
    assert t.routes[N("172.16.0.0/16")].reason == "static route"


def test_the_cgw_that_prepends_loses_and_the_other_takes_over_when_it_goes():
    """Redundant customer gateways of one site (docs/aws.md §7)."""
    t = table(conn("cgw1", A1, A2), conn("cgw2", B1, B2))
    t.set_up(A1, True)
    t.set_up(B1, True)
    t.learn(B1, {N("172.16.0.0/16"): learned(65002, 65002, 65002)})     # prepends
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.decide()
    route = t.routes[N("172.16.0.0/16")]
    assert route.tunnel == A1 and route.reason == "shorter AS_PATH"
    t.set_up(A1, False)
    t.forget(A1)
    assert t.decide().kernel == {N("172.16.0.0/16"): B1}
    t.set_up(A1, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    assert t.decide().kernel == {N("172.16.0.0/16"): A1}                 # and back


def test_med_decides_only_between_paths_from_the_same_neighbour_as():
    t = table(conn("x", A1, A2), conn("y", B1, B2))
    for tunnel in (A1, A2, B1):
        t.set_up(tunnel, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001, med=50)})
    t.learn(A2, {N("172.16.0.0/16"): learned(65001, med=10)})
    t.decide()
    route = t.routes[N("172.16.0.0/16")]
    assert route.tunnel == A2 and route.reason == "lower MED"
    # another neighbour AS with a lower MED does not win on MED (no comparison)
    t2 = table(conn("x", A1, A2), conn("y", B1, B2))
    t2.set_up(A1, True)
    t2.set_up(B1, True)
    t2.learn(A1, {N("172.16.0.0/16"): learned(65001, med=50)})
    t2.learn(B1, {N("172.16.0.0/16"): learned(65009, med=0)})
    t2.decide()
    assert t2.routes[N("172.16.0.0/16")].tunnel == A1
    assert t2.routes[N("172.16.0.0/16")].reason == "learned first"


def test_missing_med_counts_as_zero():
    t = table(conn("x", A1, A2))
    t.set_up(A1, True)
    t.set_up(A2, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001, med=5)})
    t.learn(A2, {N("172.16.0.0/16"): learned(65001)})
    t.decide()
    assert t.routes[N("172.16.0.0/16")].tunnel == A2


def test_an_equal_path_from_a_second_site_does_not_take_the_prefix_over():
    t = table(conn("a", A1, A2), conn("b", B1, B2))
    t.set_up(A1, True)
    t.set_up(B1, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.decide()
    t.learn(B1, {N("172.16.0.0/16"): learned(65002)})
    assert not t.decide().kernel
    assert t.routes[N("172.16.0.0/16")].tunnel == A1


@pytest.mark.parametrize("prefix,why", [
    ("0.0.0.0/0", "default route"),
    ("10.0.5.0/24", "overlaps the VPC CIDR"),
    ("10.0.0.0/8", "overlaps the VPC CIDR"),
    ("203.0.113.0/24", "contains the customer gateway address"),
])
def test_prefixes_that_must_not_be_installed_are_refused_and_logged_once(prefix, why):
    t = table(conn("d", A1, A2, cgw="203.0.113.10"))
    t.set_up(A1, True)
    t.learn(A1, {N(prefix): learned(65000), N("172.16.0.0/16"): learned(65000)})
    ch = t.decide()
    assert N(prefix) not in ch.kernel and N(prefix) not in t.routes
    assert [line for line in ch.lines if why in line and prefix in line]
    assert t.refused[A1] == {N(prefix): t.refused[A1][N(prefix)]}
    assert t.accepted_count(A1) == 1
    t.learn(A1, {N("172.18.0.0/16"): learned(65000)})
    assert not [line for line in t.decide().lines if prefix in line]    # once


def test_a_site_advertising_inside_another_sites_prefix_is_not_installed_until_that_one_goes():
    t = table(conn("a", A1, A2), conn("b", B1, B2))
    t.set_up(A1, True)
    t.set_up(B1, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.decide()
    t.learn(B1, {N("172.16.5.0/24"): learned(65002)})
    ch = t.decide()
    assert not ch.kernel and "overlaps 172.16.0.0/16 of connection a" in t.refused[B1][N("172.16.5.0/24")]
    t.learn(A1, {}, withdrawn=[N("172.16.0.0/16")])
    ch = t.decide()
    assert ch.kernel == {N("172.16.5.0/24"): B1} and ch.removed == {N("172.16.0.0/16")}


def test_a_site_may_overlap_its_own_prefixes():
    t = table(conn("a", A1, A2))
    t.set_up(A1, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001), N("172.16.5.0/24"): learned(65001)})
    assert set(t.decide().kernel) == {N("172.16.0.0/16"), N("172.16.5.0/24")}


def test_cloudhub_readvertises_each_sites_prefixes_to_the_others_only():
    t = table(conn("a", A1, A2), conn("b", B1, B2), conn("s", C1, C2, dynamic=False, static=["192.168.0.0/24"]))
    for tunnel in (A1, A2, B1, B2, C1):
        t.set_up(tunnel, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001, med=7)})
    t.learn(A2, {N("172.16.0.0/16"): learned(65001)})
    t.learn(B1, {N("172.17.0.0/16"): learned(65002)})
    ch = t.decide()
    # b's sessions get a's prefix with a's path (the session prepends 64512), MED by b's primary
    assert ch.advertisements[B1][N("172.16.0.0/16")].as_path == (65001,)
    assert ch.advertisements[B1][N("172.16.0.0/16")].med == MED_PRIMARY
    assert ch.advertisements[B2][N("172.16.0.0/16")].med == MED_OTHER
    assert ch.advertisements[B1][N("172.16.0.0/16")].learned_from == "a"
    # never back to the site it came from; static sites' prefixes are not re-advertised
    assert N("172.16.0.0/16") not in t.advertisements(A1)
    assert N("172.17.0.0/16") in t.advertisements(A1)
    assert all(N("192.168.0.0/24") not in t.advertisements(x) for x in (A1, A2, B1, B2))
    assert C1 not in ch.advertisements                # a static connection has no session
    assert set(t.advertised_to(N("172.16.0.0/16"))) == {B1, B2}
    t.learn(A1, {}, withdrawn=[N("172.16.0.0/16")])
    t.learn(A2, {}, withdrawn=[N("172.16.0.0/16")])
    ch = t.decide()
    assert ch.advertisements[B1] == {N("172.16.0.0/16"): None}   # withdrawn with the origin
    assert N("172.16.0.0/16") not in t.advertisements(B1)


def test_a_flapping_site_moves_nothing_of_the_other_sites():
    t = table(conn("a", A1, A2), conn("b", B1, B2), conn("c", C1, C2))
    for tunnel in (A1, B1, C1):
        t.set_up(tunnel, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.learn(B1, {N("172.17.0.0/16"): learned(65002)})
    t.decide()
    for _ in range(5):
        t.set_up(C1, True)
        t.learn(C1, {N("172.18.0.0/16"): learned(65003)})
        ch = t.decide()
        assert set(ch.kernel) <= {N("172.18.0.0/16")} and not ch.removed
        for tunnel, delta in ch.advertisements.items():
            if tunnel in (C1, C2):
                continue        # the flapping site's own sessions: its primary and MEDs move
            assert set(delta) == {N("172.18.0.0/16")}
        t.set_up(C1, False)
        t.forget(C1)
        ch = t.decide()
        assert ch.removed == {N("172.18.0.0/16")} and not ch.kernel
        assert all(set(d) == {N("172.18.0.0/16")} for x, d in ch.advertisements.items() if x not in (C1, C2))


def test_draining_moves_the_primary_and_raises_the_med_first():
    t = table(conn("d", A1, A2))
    t.set_up(A1, True)
    t.set_up(A2, True)
    t.decide()
    t.set_draining(A1, True)
    ch = t.decide()
    assert ch.primaries == {"d": A2}
    assert ch.advertisements[A1][VPC].med == MED_OTHER and ch.advertisements[A2][VPC].med == MED_PRIMARY


def test_a_reload_that_removes_a_connection_leaves_the_others_alone():
    a, b = conn("a", A1, A2), conn("b", B1, B2)
    t = table(a, b)
    t.set_up(A1, True)
    t.set_up(B1, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.learn(B1, {N("172.17.0.0/16"): learned(65002)})
    t.decide()
    t.configure((VPC,), [a])
    ch = t.decide()
    assert ch.removed == {N("172.17.0.0/16")} and not ch.kernel and "b" not in t.primaries


def test_a_reload_that_adds_a_connection_decides_only_that_connection():
    a, b = conn("a", A1, A2), conn("b", B1, B2)
    t = table(a, b)
    for tunnel in (A1, B1):
        t.set_up(tunnel, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.learn(B1, {N("172.17.0.0/16"): learned(65002)})
    t.decide()
    t.configure((VPC,), [a, b, conn("c", C1, C2)])
    ch = t.decide()
    assert not ch.kernel and not ch.removed and set(ch.advertisements) == {C1, C2}
    assert set(ch.advertisements[C1]) == {VPC, N("172.16.0.0/16"), N("172.17.0.0/16")}
    assert not t.decide_all()


def test_a_new_customer_gateway_address_inside_a_learned_prefix_withdraws_it():
    a = conn("a", A1, A2)
    t = table(a)
    t.set_up(A1, True)
    t.learn(A1, {N("203.0.113.0/24"): learned(65001), N("172.16.0.0/16"): learned(65001)})
    t.decide()
    t.configure((VPC,), [a, conn("b", B1, B2, cgw="203.0.113.7")])
    ch = t.decide()
    assert ch.removed == {N("203.0.113.0/24")} and "contains the customer gateway address 203.0.113.7" in \
        t.refused[A1][N("203.0.113.0/24")]
    t.configure((VPC,), [a])
    assert t.decide().kernel == {N("203.0.113.0/24"): A1}
    assert not t.decide_all()


def test_a_hub_without_a_vpc():
    t = table(conn("a", A1, A2), conn("b", B1, B2), vpc=())
    t.set_up(A1, True)
    t.set_up(B1, True)
    t.learn(A1, {N("172.16.0.0/16"): learned(65001)})
    t.decide()
    assert t.advertisements(B1) == {N("172.16.0.0/16"): t.advertisements(B1)[N("172.16.0.0/16")]}


PREFIXES = [N(f"172.{16 + i // 4}.{(i % 4) * 64}.0/18") for i in range(8)] + [N("172.16.0.0/16"), N("10.0.1.0/24")]
TUNNELS = [A1, A2, B1, B2, C1, C2]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["up", "down", "learn", "withdraw", "drain"]),
                          st.sampled_from(TUNNELS), st.sampled_from(PREFIXES),
                          st.integers(1, 4), st.sampled_from([None, 0, 100])), max_size=40))
def test_invariants_hold_whatever_the_sessions_report(ops):
    plans = [conn("a", A1, A2), conn("b", B1, B2), conn("c", C1, C2, dynamic=False, static=["192.168.0.0/24"])]
    t = table(*plans)
    for op, tunnel, prefix, length, med in ops:
        if op in ("up", "down"):
            t.set_up(tunnel, op == "up")
            if op == "down":
                t.forget(tunnel)
        elif op == "learn" and t.is_up(tunnel):
            t.learn(tunnel, {prefix: learned(*([65000 + TUNNELS.index(tunnel) // 2] * length), med=med)})
        elif op == "withdraw":
            t.learn(tunnel, {}, withdrawn=[prefix])
        elif op == "drain":
            t.set_draining(tunnel, True)
        t.decide()
        assert not t.decide()                                   # a decision is a fixed point
        assert not t.decide_all()                               # everything decided anew agrees
        for name, primary in t.primaries.items():
            assert primary is None or (t.is_up(primary) and primary in t.connections[name].tunnels)
        for prefix_, route in t.routes.items():
            assert not prefix_.overlaps(VPC)
            if route.path.source is Source.PROPAGATED:
                assert route.tunnel == route.path.tunnel and t.is_up(route.tunnel)
        for tunnel_ in TUNNELS[:4]:
            adverts = t.advertisements(tunnel_)
            meds = {a.med for a in adverts.values()}
            assert len(meds) <= 1 and meds <= {MED_PRIMARY, MED_OTHER}
            mine = "a" if tunnel_ in (A1, A2) else "b"
            assert all(a.learned_from != mine for a in adverts.values())
