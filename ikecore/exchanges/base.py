"""What every exchange vgw initiates provides (strongSwan's task_t, in small)."""

from __future__ import annotations

import sys

from ..timers import DPD_INTERVAL


class Exchange:
    """A request vgw sends and the processing of its response.

    build() returns the payloads of the request (None: nothing to send any more);
    sent() sees the encoded bytes; process() handles the response and returns True
    to resend a rebuilt request with the same message ID; timed_out() runs when
    retransmission gives up.

    kept: the peer was found dead with this request outstanding and
    dpd_timeout_action is none (informational.on_dpd_timeout): resend every
    DPD_INTERVAL and never give up, so the SA lives on and the message IDs of
    both ends still agree when the peer answers again (RFC 7296 §2.1, §2.3).
    """

    TYPE: int
    kept: bool = False
    # about one CHILD SA (`spi_in`): while queued, it follows that CHILD SA to the
    # IKE SA that takes it over in a rekey (§2.18, sa_operations.hand_over)
    moves_with_child: bool = False

    def build(self, sa, now: float):
        raise NotImplementedError

    def sent(self, sa, data: bytes) -> None:
        pass

    def delays(self, settings):
        """Delay before each resend, the last entry before giving up (§2.1)."""
        if self.kept:
            return Endless()
        return settings.retransmit.delays()

    def process(self, sa, msg, now: float) -> bool:
        raise NotImplementedError

    def timed_out(self, sa, now: float) -> None:
        sa.log(f"AWS tunnel gave up on a request to cgw: {sa.remote[0]} "
               f"after {sa.settings.retransmit.tries} retransmits", "warning")
        sa.fail("peer did not answer", "timeout")


class Endless:
    """A retransmission schedule without end: a resend every DPD_INTERVAL (the
    sequence IkeSa.handle_timer indexes; its last entry, the give-up, is never
    reached)."""

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, attempt: int) -> float:
        return DPD_INTERVAL
