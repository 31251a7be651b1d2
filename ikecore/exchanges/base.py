"""What every exchange vgw initiates provides (strongSwan's task_t, in small)."""

from __future__ import annotations


class Exchange:
    """A request vgw sends and the processing of its response.

    build() returns the payloads of the request (None: nothing to send any more);
    sent() sees the encoded bytes; process() handles the response and returns True
    to resend a rebuilt request with the same message ID; timed_out() runs when
    retransmission gives up.
    """

    TYPE: int

    def build(self, sa, now: float):
        raise NotImplementedError

    def sent(self, sa, data: bytes) -> None:
        pass

    def delays(self, policy) -> list[float]:
        """Delay before each resend, the last entry before giving up (§2.1)."""
        return policy.retransmit.delays()

    def process(self, sa, msg, now: float) -> bool:
        raise NotImplementedError

    def timed_out(self, sa, now: float) -> None:
        sa.log(f"AWS tunnel gave up on a request to cgw: {sa.remote[0]} "
               f"after {sa.policy.retransmit.tries} retransmits", "warning")
        sa.fail("peer did not answer", "timeout")
