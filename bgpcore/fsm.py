"""The BGP finite state machine of RFC 4271 §8 as a table.

`TABLE[(state, event)]` is the RFC's §8.2.2 text for that state and event,
as a tuple of actions and the next state (None: stay); `OTHER[state]` is the
RFC's "in response to any other event" row of that state. A reader can put
the table beside §8.2.2 and check it row by row; bgpcore.peer only carries
the actions out. vgw runs the optional session attributes of §8.1.1 as:
DampPeerOscillations on (IdleHold), DelayOpen off, SendNOTIFICATIONwithoutOPEN
off, CollisionDetectEstablishedState off, PassiveTcpEstablishment by setting.
With DelayOpen off, events 12 and 20 never occur; they are left to "other".

Rows where vgw departs from the RFC's literal text (docs/bgp.md explains each):
- (Connect, TcpConnectionFails) -> Active, keeping the ConnectRetryTimer: the
  RFC's row for a running DelayOpenTimer. The literal row goes to Idle, and an
  Idle peer refuses the CGW's own connection (FRR and BIRD do the same as vgw).
- (OpenSent, NotifMsg): no FSM Error NOTIFICATION sent back to a peer that
  has just closed the connection with its own NOTIFICATION.
- (OpenConfirm | Established, BGPOpen) is an OPEN repeated on the same
  connection: an unexpected message (RFC 6608). Collision detection (§6.8)
  compares connections and is done by the peer before the table runs: the
  connection it closes receives OpenCollisionDump.
- (Established, BGPHeaderErr) sends the Message Header Error §6.1 requires,
  not the FSM Error the "other events" row would send.
- ROUTE-REFRESH messages (RFC 2918) are fed as UpdateMsg: processed when
  Established, an unexpected message elsewhere (RFC 6608 §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class State(Enum):
    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPENSENT = "OpenSent"
    OPENCONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"

    def __str__(self) -> str:
        return self.value


# How far a connection got; the peer shows its most advanced connection.
PROGRESS = {State.IDLE: 0, State.CONNECT: 1, State.ACTIVE: 1, State.OPENSENT: 2,
            State.OPENCONFIRM: 3, State.ESTABLISHED: 4}


class Event(IntEnum):
    """RFC 4271 §8.1 events, with the RFC's numbers and names."""

    ManualStart = 1
    ManualStop = 2
    AutomaticStart = 3
    ManualStart_with_PassiveTcpEstablishment = 4
    AutomaticStart_with_PassiveTcpEstablishment = 5
    AutomaticStart_with_DampPeerOscillations = 6
    AutomaticStart_with_DampPeerOscillations_and_PassiveTcpEstablishment = 7
    AutomaticStop = 8
    ConnectRetryTimer_Expires = 9
    HoldTimer_Expires = 10
    KeepaliveTimer_Expires = 11
    DelayOpenTimer_Expires = 12
    IdleHoldTimer_Expires = 13
    TcpConnection_Valid = 14
    Tcp_CR_Invalid = 15
    Tcp_CR_Acked = 16
    TcpConnectionConfirmed = 17
    TcpConnectionFails = 18
    BGPOpen = 19
    BGPOpen_with_DelayOpenTimer_running = 20
    BGPHeaderErr = 21
    BGPOpenMsgErr = 22
    OpenCollisionDump = 23
    NotifMsgVerErr = 24
    NotifMsg = 25
    KeepAliveMsg = 26
    UpdateMsg = 27
    UpdateMsgErr = 28


class Action(Enum):
    INITIALIZE = "initialize resources, ConnectRetryCounter = 0"
    START_CONNECT_RETRY = "(re)start the ConnectRetryTimer"
    STOP_CONNECT_RETRY = "stop the ConnectRetryTimer (set to zero)"
    INITIATE_TCP = "initiate a TCP connection"
    DROP_TCP = "drop the TCP connection"
    RELEASE = "release all BGP resources"
    DELETE_ROUTES = "delete all routes of this connection"
    ZERO_COUNTER = "ConnectRetryCounter = 0"
    INCR_COUNTER = "ConnectRetryCounter += 1"
    DAMP = "peer oscillation damping (IdleHold back-off grows)"
    START_IDLE_HOLD = "start the IdleHoldTimer"
    AUTOMATIC_START = "AutomaticStart (passive or not, as configured)"
    SEND_OPEN = "send OPEN"
    SEND_KEEPALIVE = "send KEEPALIVE"
    SEND_CEASE = "send NOTIFICATION Cease (the subcode the event carries)"
    SEND_HOLD_EXPIRED = "send NOTIFICATION Hold Timer Expired"
    SEND_FSM_ERROR = "send NOTIFICATION Finite State Machine Error (RFC 6608 subcode)"
    SEND_ERROR = "send the NOTIFICATION the error carries"
    SET_HOLD_LARGE = "set the HoldTimer to a large value"
    SET_HOLD_NEGOTIATED = "set the HoldTimer to the negotiated value"
    START_KEEPALIVE = "start the KeepaliveTimer"
    RESTART_KEEPALIVE = "restart the KeepaliveTimer"
    RESTART_HOLD = "restart the HoldTimer"
    PROCESS_MESSAGE = "process the UPDATE (or ROUTE-REFRESH)"
    SEND_ROUTES = "send the Adj-RIB-Out, then End-of-RIB"
    TRACK_SECOND = "track the second connection (§6.8)"


@dataclass(frozen=True)
class Transition:
    actions: tuple[Action, ...]
    next: State | None = None          # None: stay

    def __repr__(self) -> str:
        return f"{[a.name for a in self.actions]} -> {self.next}"


E, A, S = Event, Action, State
IGNORE = Transition(())

_START_EVENTS = (E.ManualStart, E.AutomaticStart, E.ManualStart_with_PassiveTcpEstablishment,
                 E.AutomaticStart_with_PassiveTcpEstablishment,
                 E.AutomaticStart_with_DampPeerOscillations,
                 E.AutomaticStart_with_DampPeerOscillations_and_PassiveTcpEstablishment)

# the recurring "close and go Idle" rows, named after what they do
_FAIL = (A.STOP_CONNECT_RETRY, A.RELEASE, A.DROP_TCP, A.INCR_COUNTER, A.DAMP)
_FAIL_ROUTES = (A.STOP_CONNECT_RETRY, A.DELETE_ROUTES, A.RELEASE, A.DROP_TCP,
                A.INCR_COUNTER, A.DAMP)


def _rows(state: State, events, transition: Transition) -> dict:
    return {(state, e): transition for e in events}


TABLE: dict[tuple[State, Event], Transition] = {
    # --- Idle (§8.2.2 "Idle state") -------------------------------------------------
    (S.IDLE, E.ManualStart): Transition((A.INITIALIZE, A.START_CONNECT_RETRY, A.INITIATE_TCP),
                                        S.CONNECT),
    (S.IDLE, E.AutomaticStart): Transition((A.INITIALIZE, A.START_CONNECT_RETRY,
                                            A.INITIATE_TCP), S.CONNECT),
    (S.IDLE, E.ManualStart_with_PassiveTcpEstablishment):
        Transition((A.INITIALIZE, A.START_CONNECT_RETRY), S.ACTIVE),
    (S.IDLE, E.AutomaticStart_with_PassiveTcpEstablishment):
        Transition((A.INITIALIZE, A.START_CONNECT_RETRY), S.ACTIVE),
    # "the method of preventing persistent peer oscillation is outside the scope":
    # vgw waits IdleHoldTime, then starts as AutomaticStart would
    (S.IDLE, E.AutomaticStart_with_DampPeerOscillations): Transition((A.START_IDLE_HOLD,)),
    (S.IDLE, E.AutomaticStart_with_DampPeerOscillations_and_PassiveTcpEstablishment):
        Transition((A.START_IDLE_HOLD,)),
    (S.IDLE, E.IdleHoldTimer_Expires): Transition((A.AUTOMATIC_START,)),

    # --- Connect ----------------------------------------------------------------------
    **_rows(S.CONNECT, _START_EVENTS, IGNORE),
    (S.CONNECT, E.ManualStop): Transition((A.DROP_TCP, A.RELEASE, A.ZERO_COUNTER,
                                           A.STOP_CONNECT_RETRY), S.IDLE),
    (S.CONNECT, E.ConnectRetryTimer_Expires): Transition((A.DROP_TCP, A.START_CONNECT_RETRY,
                                                          A.INITIATE_TCP)),
    (S.CONNECT, E.TcpConnection_Valid): IGNORE,
    (S.CONNECT, E.Tcp_CR_Invalid): IGNORE,
    **_rows(S.CONNECT, (E.Tcp_CR_Acked, E.TcpConnectionConfirmed),
            Transition((A.STOP_CONNECT_RETRY, A.SEND_OPEN, A.SET_HOLD_LARGE), S.OPENSENT)),
    (S.CONNECT, E.TcpConnectionFails): Transition((A.START_CONNECT_RETRY,), S.ACTIVE),  # deviation
    **_rows(S.CONNECT, (E.BGPHeaderErr, E.BGPOpenMsgErr, E.NotifMsgVerErr),
            Transition(_FAIL, S.IDLE)),

    # --- Active -----------------------------------------------------------------------
    **_rows(S.ACTIVE, _START_EVENTS, IGNORE),
    (S.ACTIVE, E.ManualStop): Transition((A.RELEASE, A.DROP_TCP, A.ZERO_COUNTER,
                                          A.STOP_CONNECT_RETRY), S.IDLE),
    (S.ACTIVE, E.ConnectRetryTimer_Expires): Transition((A.START_CONNECT_RETRY, A.INITIATE_TCP),
                                                        S.CONNECT),
    (S.ACTIVE, E.TcpConnection_Valid): IGNORE,
    (S.ACTIVE, E.Tcp_CR_Invalid): IGNORE,
    **_rows(S.ACTIVE, (E.Tcp_CR_Acked, E.TcpConnectionConfirmed),
            Transition((A.STOP_CONNECT_RETRY, A.SEND_OPEN, A.SET_HOLD_LARGE), S.OPENSENT)),
    (S.ACTIVE, E.TcpConnectionFails): Transition((A.START_CONNECT_RETRY, A.RELEASE,
                                                  A.INCR_COUNTER, A.DAMP), S.IDLE),
    **_rows(S.ACTIVE, (E.BGPHeaderErr, E.BGPOpenMsgErr, E.NotifMsgVerErr),
            Transition(_FAIL, S.IDLE)),

    # --- OpenSent ---------------------------------------------------------------------
    **_rows(S.OPENSENT, _START_EVENTS, IGNORE),
    (S.OPENSENT, E.ManualStop): Transition((A.SEND_CEASE, A.STOP_CONNECT_RETRY, A.RELEASE,
                                            A.DROP_TCP, A.ZERO_COUNTER), S.IDLE),
    (S.OPENSENT, E.AutomaticStop): Transition((A.SEND_CEASE,) + _FAIL, S.IDLE),
    (S.OPENSENT, E.HoldTimer_Expires): Transition((A.SEND_HOLD_EXPIRED,) + _FAIL, S.IDLE),
    **_rows(S.OPENSENT, (E.TcpConnection_Valid, E.Tcp_CR_Acked, E.TcpConnectionConfirmed),
            Transition((A.TRACK_SECOND,))),
    (S.OPENSENT, E.Tcp_CR_Invalid): IGNORE,
    (S.OPENSENT, E.TcpConnectionFails): Transition((A.DROP_TCP, A.START_CONNECT_RETRY),
                                                   S.ACTIVE),
    # the Hold Time is negotiated first: it sets the KeepaliveTimer's interval
    (S.OPENSENT, E.BGPOpen): Transition((A.STOP_CONNECT_RETRY, A.SET_HOLD_NEGOTIATED,
                                         A.SEND_KEEPALIVE, A.START_KEEPALIVE), S.OPENCONFIRM),
    **_rows(S.OPENSENT, (E.BGPHeaderErr, E.BGPOpenMsgErr),
            Transition((A.SEND_ERROR,) + _FAIL, S.IDLE)),
    (S.OPENSENT, E.OpenCollisionDump): Transition((A.SEND_CEASE,) + _FAIL, S.IDLE),
    (S.OPENSENT, E.NotifMsgVerErr): Transition((A.STOP_CONNECT_RETRY, A.RELEASE, A.DROP_TCP),
                                               S.IDLE),
    (S.OPENSENT, E.NotifMsg): Transition(_FAIL, S.IDLE),                       # deviation

    # --- OpenConfirm ------------------------------------------------------------------
    **_rows(S.OPENCONFIRM, _START_EVENTS, IGNORE),
    (S.OPENCONFIRM, E.ManualStop): Transition((A.SEND_CEASE, A.RELEASE, A.DROP_TCP,
                                               A.ZERO_COUNTER, A.STOP_CONNECT_RETRY), S.IDLE),
    (S.OPENCONFIRM, E.AutomaticStop): Transition((A.SEND_CEASE,) + _FAIL, S.IDLE),
    (S.OPENCONFIRM, E.HoldTimer_Expires): Transition((A.SEND_HOLD_EXPIRED,) + _FAIL, S.IDLE),
    (S.OPENCONFIRM, E.KeepaliveTimer_Expires): Transition((A.SEND_KEEPALIVE,
                                                           A.RESTART_KEEPALIVE)),
    **_rows(S.OPENCONFIRM, (E.TcpConnection_Valid, E.Tcp_CR_Acked, E.TcpConnectionConfirmed),
            Transition((A.TRACK_SECOND,))),
    (S.OPENCONFIRM, E.Tcp_CR_Invalid): IGNORE,
    **_rows(S.OPENCONFIRM, (E.TcpConnectionFails, E.NotifMsg), Transition(_FAIL, S.IDLE)),
    (S.OPENCONFIRM, E.NotifMsgVerErr): Transition((A.STOP_CONNECT_RETRY, A.RELEASE,
                                                   A.DROP_TCP), S.IDLE),
    **_rows(S.OPENCONFIRM, (E.BGPHeaderErr, E.BGPOpenMsgErr),
            Transition((A.SEND_ERROR,) + _FAIL, S.IDLE)),
    (S.OPENCONFIRM, E.OpenCollisionDump): Transition((A.SEND_CEASE,) + _FAIL, S.IDLE),
    (S.OPENCONFIRM, E.KeepAliveMsg): Transition((A.RESTART_HOLD, A.SEND_ROUTES),
                                                S.ESTABLISHED),

    # --- Established ------------------------------------------------------------------
    **_rows(S.ESTABLISHED, _START_EVENTS, IGNORE),
    (S.ESTABLISHED, E.ManualStop): Transition((A.SEND_CEASE, A.STOP_CONNECT_RETRY,
                                               A.DELETE_ROUTES, A.RELEASE, A.DROP_TCP,
                                               A.ZERO_COUNTER), S.IDLE),
    (S.ESTABLISHED, E.AutomaticStop): Transition((A.SEND_CEASE,) + _FAIL_ROUTES, S.IDLE),
    (S.ESTABLISHED, E.HoldTimer_Expires): Transition((A.SEND_HOLD_EXPIRED,) + _FAIL, S.IDLE),
    (S.ESTABLISHED, E.KeepaliveTimer_Expires): Transition((A.SEND_KEEPALIVE,
                                                           A.RESTART_KEEPALIVE)),
    **_rows(S.ESTABLISHED, (E.TcpConnection_Valid, E.Tcp_CR_Acked, E.TcpConnectionConfirmed),
            Transition((A.TRACK_SECOND,))),
    (S.ESTABLISHED, E.Tcp_CR_Invalid): IGNORE,
    (S.ESTABLISHED, E.OpenCollisionDump): Transition((A.SEND_CEASE,) + _FAIL_ROUTES, S.IDLE),
    **_rows(S.ESTABLISHED, (E.TcpConnectionFails, E.NotifMsgVerErr, E.NotifMsg),
            Transition((A.STOP_CONNECT_RETRY, A.DELETE_ROUTES, A.RELEASE, A.DROP_TCP,
                        A.INCR_COUNTER), S.IDLE)),
    (S.ESTABLISHED, E.KeepAliveMsg): Transition((A.RESTART_HOLD,)),
    (S.ESTABLISHED, E.UpdateMsg): Transition((A.RESTART_HOLD, A.PROCESS_MESSAGE)),
    (S.ESTABLISHED, E.UpdateMsgErr): Transition((A.SEND_ERROR,) + _FAIL_ROUTES, S.IDLE),
    (S.ESTABLISHED, E.BGPHeaderErr): Transition((A.SEND_ERROR,) + _FAIL_ROUTES, S.IDLE),  # dev.
}

# "In response to any other event": Idle ignores; Connect and Active close
# and go Idle; the three states with an OPEN sent answer an FSM Error.
OTHER: dict[State, Transition] = {
    S.IDLE: IGNORE,
    S.CONNECT: Transition(_FAIL, S.IDLE),
    S.ACTIVE: Transition(_FAIL, S.IDLE),
    S.OPENSENT: Transition((A.SEND_FSM_ERROR,) + _FAIL, S.IDLE),
    S.OPENCONFIRM: Transition((A.SEND_FSM_ERROR,) + _FAIL, S.IDLE),
    S.ESTABLISHED: Transition((A.SEND_FSM_ERROR,) + _FAIL_ROUTES, S.IDLE),
}


def transition(state: State, event: Event) -> Transition:
    return TABLE.get((state, event), OTHER[state])
