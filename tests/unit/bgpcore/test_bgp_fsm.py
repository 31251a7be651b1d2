"""The FSM table against RFC 4271 §8.2.2, and the FSM's answers on the wire."""

import pytest

from bgpcore.events import NotificationReceived, StateChanged
from bgpcore.fsm import OTHER, TABLE, Action, Event, State, transition
from bgpcore.messages import KEEPALIVE, Notification, RouteRefresh

from .rawpeer import (
    cgw_open, cgw_update, established_peer, events, notifications, out, raw_peer,
)

S, E = State, Event
I, C, A, OS, OC, ES = (S.IDLE, S.CONNECT, S.ACTIVE, S.OPENSENT, S.OPENCONFIRM,
                       S.ESTABLISHED)

# Next states transcribed from RFC 4271 §8.2.2 independently of bgpcore.fsm
# (None: stays). Events not listed fall under each state's "other events".
RFC_NEXT = {
    (I, E.ManualStart): C, (I, E.AutomaticStart): C,
    (I, E.ManualStart_with_PassiveTcpEstablishment): A,
    (I, E.AutomaticStart_with_PassiveTcpEstablishment): A,
    (C, E.ManualStop): I, (C, E.ConnectRetryTimer_Expires): None,
    (C, E.Tcp_CR_Acked): OS, (C, E.TcpConnectionConfirmed): OS,
    (C, E.TcpConnectionFails): A,          # the RFC's row with DelayOpenTimer running
    (C, E.BGPHeaderErr): I, (C, E.BGPOpenMsgErr): I, (C, E.NotifMsgVerErr): I,
    (A, E.ManualStop): I, (A, E.ConnectRetryTimer_Expires): C,
    (A, E.Tcp_CR_Acked): OS, (A, E.TcpConnectionConfirmed): OS, (A, E.TcpConnectionFails): I,
    (A, E.BGPHeaderErr): I, (A, E.BGPOpenMsgErr): I, (A, E.NotifMsgVerErr): I,
    (OS, E.ManualStop): I, (OS, E.AutomaticStop): I, (OS, E.HoldTimer_Expires): I,
    (OS, E.TcpConnectionFails): A, (OS, E.BGPOpen): OC, (OS, E.BGPHeaderErr): I,
    (OS, E.BGPOpenMsgErr): I, (OS, E.OpenCollisionDump): I, (OS, E.NotifMsgVerErr): I,
    (OC, E.ManualStop): I, (OC, E.AutomaticStop): I, (OC, E.HoldTimer_Expires): I,
    (OC, E.KeepaliveTimer_Expires): None, (OC, E.TcpConnectionFails): I, (OC, E.NotifMsg): I,
    (OC, E.NotifMsgVerErr): I, (OC, E.BGPHeaderErr): I, (OC, E.BGPOpenMsgErr): I,
    (OC, E.OpenCollisionDump): I, (OC, E.KeepAliveMsg): ES,
    (ES, E.ManualStop): I, (ES, E.AutomaticStop): I, (ES, E.HoldTimer_Expires): I,
    (ES, E.KeepaliveTimer_Expires): None, (ES, E.TcpConnectionFails): I,
    (ES, E.NotifMsgVerErr): I, (ES, E.NotifMsg): I, (ES, E.KeepAliveMsg): None,
    (ES, E.UpdateMsg): None, (ES, E.UpdateMsgErr): I, (ES, E.OpenCollisionDump): I,
    # vgw's deviations (bgpcore.fsm's docstring): same next state, other actions
    (OS, E.NotifMsg): I, (ES, E.BGPHeaderErr): I,
}
RFC_OTHER_NEXT = {I: None, C: I, A: I, OS: I, OC: I, ES: I}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_every_state_and_event_has_an_answer_matching_the_rfc(state, event):
    t = transition(state, event)
    if (state, event) in RFC_NEXT:
        expected = RFC_NEXT[(state, event)]
    elif (state, event) in TABLE:
        expected = None        # the RFC's "ignored", "tracked", "processed" rows
    else:
        expected = RFC_OTHER_NEXT[state]
    assert t.next == expected, (state, event, t)


def test_table_rows_carry_the_rfc_actions():
    assert TABLE[(OS, E.HoldTimer_Expires)].actions[0] is Action.SEND_HOLD_EXPIRED
    assert TABLE[(OC, E.KeepaliveTimer_Expires)].actions == (Action.SEND_KEEPALIVE,
                                                             Action.RESTART_KEEPALIVE)
    assert TABLE[(ES, E.UpdateMsg)].actions == (Action.RESTART_HOLD, Action.PROCESS_MESSAGE)
    assert Action.SEND_OPEN in TABLE[(C, E.TcpConnectionConfirmed)].actions
    assert Action.INITIATE_TCP in TABLE[(C, E.ConnectRetryTimer_Expires)].actions
    for st in (OS, OC, ES):
        assert OTHER[st].actions[0] is Action.SEND_FSM_ERROR and OTHER[st].next is I
        assert Action.DAMP in OTHER[st].actions
    # ManualStop zeroes the counter, AutomaticStop counts a failure and damps
    for st in (OS, OC, ES):
        assert Action.ZERO_COUNTER in TABLE[(st, E.ManualStop)].actions
        assert {Action.INCR_COUNTER, Action.DAMP} <= set(TABLE[(st, E.AutomaticStop)].actions)
    # Idle ignores stops (§8.2.2: "ManualStop ... and AutomaticStop ... are ignored")
    assert transition(I, E.ManualStop).actions == () and transition(I, E.AutomaticStop).next is None


# --- unexpected messages: RFC 6608 subcodes --------------------------------------------


def test_keepalive_in_opensent_is_fsm_error_1():
    peer = raw_peer()
    peer.data_received("c", KEEPALIVE, 0)
    assert notifications(out(peer))[-1] == (5, 1, b"")
    assert peer.state == State.IDLE


def test_update_in_openconfirm_is_fsm_error_2():
    peer = raw_peer()
    peer.data_received("c", cgw_open(), 0)
    assert peer.state == State.OPENCONFIRM
    peer.data_received("c", cgw_update(), 0)
    assert notifications(out(peer))[-1] == (5, 2, b"")


def test_route_refresh_in_openconfirm_is_fsm_error_2():
    peer = raw_peer()
    peer.data_received("c", cgw_open() + RouteRefresh().encode(), 0)
    assert notifications(out(peer))[-1] == (5, 2, b"")


def test_open_in_established_is_fsm_error_3():
    peer = established_peer()
    peer.data_received("c", cgw_open(), 1)
    assert notifications(out(peer)) == [(5, 3, b"")]
    assert peer.state == State.IDLE


def test_notification_in_opensent_gets_no_answer():
    peer = raw_peer()
    peer.data_received("c", Notification(6, 5).encode(), 0)
    assert notifications(out(peer)) == []
    evs = events(peer)
    assert any(isinstance(e, NotificationReceived) and e.subcode == 5 for e in evs)
    assert peer.state == State.IDLE
    assert peer.last_notification_received == Notification(6, 5)


def test_hold_timer_in_opensent_is_four_minutes():
    peer = raw_peer(now=100)
    [d] = [d for d in peer.deadlines() if d.kind.value == "HoldTimer"]
    assert d.at == 340
    peer.handle_timer(339.9)
    assert peer.state == State.OPENSENT
    peer.handle_timer(340)
    assert notifications(out(peer))[-1] == (4, 0, b"")


def test_hold_timer_negotiated_in_openconfirm():
    peer = raw_peer()
    peer.data_received("c", cgw_open(hold=9), 50)
    assert peer.state == State.OPENCONFIRM
    kinds = {d.kind.value: d.at for d in peer.deadlines()}
    assert kinds == {"HoldTimer": 59, "KeepaliveTimer": 53}


def test_state_changes_name_the_rfc_event():
    peer = established_peer()
    peer.handle_timer(30)
    [sc] = [e for e in events(peer) if isinstance(e, StateChanged)]
    assert (sc.old, sc.new, sc.reason) == (ES, I, "HoldTimer_Expires")
