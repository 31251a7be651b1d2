"""One FSM of RFC 4271 §8 with its TCP connection.

RFC 4271 §8: "there is one FSM per BGP connection"; while a collision is being
resolved a peer has two. A `Connection` without a TCP connection is the FSM in
Idle, Connect or Active; bgpcore.peer keeps one of those when nothing is
connected, and disposes of the FSM of a closed connection when another remains.
"""

from __future__ import annotations

from typing import Hashable

from .fsm import State
from .messages import Notification, Open
from .timers import Timer, TimerKind
from .wire import Framer


class Connection:
    def __init__(self, state: State = State.IDLE):
        self.state = state
        self.conn: Hashable | None = None
        self.outbound = False
        self.framer = Framer()
        self.connect_retry = Timer(TimerKind.CONNECT_RETRY)
        self.hold = Timer(TimerKind.HOLD)
        self.keepalive_timer = Timer(TimerKind.KEEPALIVE)
        self.peer_open: Open | None = None
        self.hold_time = 0                  # negotiated (§4.2), once the peer's OPEN is in
        self.keepalive = 0
        self.ended_by: tuple[Notification, bool] | None = None   # (NOTIFICATION, sent by vgw)
        self.damp = False                   # a DAMP action ran on the way to Idle
        self.lost = False                   # the shell reported the connection gone

    def attach(self, conn: Hashable, outbound: bool) -> None:
        self.conn = conn
        self.outbound = outbound
        self.framer = Framer()
        self.peer_open = None
        self.hold_time = self.keepalive = 0
        self.ended_by = None
        self.damp = self.lost = False

    def detach(self) -> None:
        self.conn = None
        self.framer = Framer()
        self.hold.stop()
        self.keepalive_timer.stop()

    @property
    def four_octet(self) -> bool:
        """Both sides announced 4-octet AS support (vgw always does, RFC 6793 §3)."""
        return self.peer_open is not None and self.peer_open.capabilities.four_octet_as is not None

    def timers(self) -> list[Timer]:
        return [self.connect_retry, self.hold, self.keepalive_timer]
