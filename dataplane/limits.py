"""Emulated per-tunnel limits: a token bucket per tunnel and direction, for bits and packets.

The daemon hands a tunnel its limits (``DataPath.set_limits``); its binding then
holds one ``TokenBucket`` per direction, or None when the tunnel has no limits, so
that the packet paths test for a bucket once per batch and never per packet.  A
packet over either budget (bits or packets) is dropped and counted under
``rate_limit`` (accounting.py): a policer, not a shaper - nothing is queued, as a
shaper would have to hold packets across wake-ups of the event loop.

What is counted: the inner IP packets (what TunnelDataIn and TunnelDataOut count,
so that the counters and the drops add up to what was offered), outbound before
they are sealed, inbound after they were authenticated (a forged packet with a
tunnel's SPI cannot spend its budget; the price is that packets over the limit are
decrypted before they are dropped).  A TSO or GRO super-packet counts as its
segments: both paths see segments by then (send.py cuts TSO frames before sealing,
receive.py cuts UDP GRO runs before opening, and the TUN's GRO coalescing comes
after the bucket).

Arithmetic: integers only, in credit units of 1/1e9 of a packet or of a bit, so a
packet costs ``NS`` units and each nanosecond adds the rate in units: refills
telescope exactly (the sum of the refills is the rate times the time between the
first and the last batch), so nothing drifts however long a tunnel runs.  The
clock is the caller's ``time.monotonic()`` of the batch, one read per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_BURST", "NS", "TokenBucket", "TunnelLimits"]

NS = 1_000_000_000  # credit units per packet or per bit; also nanoseconds per second
_BYTE = 8 * NS  # credit units per byte

#: How many seconds of each rate the bucket holds when full (the burst it lets
#: through at once).  AWS does not publish its burst; 10 ms is a few event-loop
#: wake-ups: a vgw descheduled for up to 10 ms on a busy host (measured up to a few
#: ms, README "The data path") finds the backlog of a flow at the rate within the
#: budget, while a flood is cut to the rate within 10 ms.  At AWS's standard
#: limits: 1,400 packets and 1.56 MB.
DEFAULT_BURST = 0.010
#: The bit budget holds at least one packet of the largest size IP allows, so that
#: no packet is over the budget at any rate.
_MAX_PACKET_BITS = 65535 * 8


@dataclass(frozen=True)
class TunnelLimits:
    """What one tunnel may carry in each direction: ``bits_per_second`` of inner
    packets and ``packets_per_second``, with a burst of ``burst_seconds`` of each."""

    bits_per_second: int
    packets_per_second: int
    burst_seconds: float = DEFAULT_BURST

    def __post_init__(self) -> None:
        for name in ("bits_per_second", "packets_per_second"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if not 0 < self.burst_seconds <= 10:
            raise ValueError(f"burst_seconds must be above 0 and at most 10, got {self.burst_seconds!r}")

    def as_dict(self) -> dict:
        return {"bits_per_second": self.bits_per_second, "packets_per_second": self.packets_per_second,
                "burst_seconds": self.burst_seconds}


class TokenBucket:
    """One direction of one tunnel: a bit budget and a packet budget, both full at
    the start.  ``take`` charges a batch; ``dropped`` counts what it refused."""

    __slots__ = ("limits", "dropped", "_bit_rate", "_pkt_rate", "_bit_depth", "_pkt_depth",
                 "_bits", "_pkts", "_last")

    def __init__(self, limits: TunnelLimits, now: float) -> None:
        self.limits = limits
        self.dropped = 0
        burst_ns = round(limits.burst_seconds * NS)
        self._bit_rate = limits.bits_per_second  # units per nanosecond
        self._pkt_rate = limits.packets_per_second
        self._bit_depth = max(self._bit_rate * burst_ns, _MAX_PACKET_BITS * NS)
        self._pkt_depth = max(self._pkt_rate * burst_ns, NS)
        self._bits = self._bit_depth
        self._pkts = self._pkt_depth
        self._last = int(now * NS)

    def take(self, sizes: list[int], now: float) -> list[int] | None:
        """Charge a batch of packets of ``sizes`` bytes at ``now`` (monotonic seconds).

        None when every packet fits both budgets (the common case: one sum and two
        comparisons); otherwise the indexes of the packets that fit, in order: each
        packet in turn passes if both budgets still hold it (a small packet after a
        refused big one may pass, as in any policer), and a refused one costs
        nothing."""
        if self._fits(len(sizes), sum(sizes), now):
            return None
        return self._police(sizes)

    def take_packets(self, packets: list, now: float) -> list[int] | None:
        """``take`` for the packets themselves (their sizes are only listed when the
        batch does not fit as a whole: 3 us saved per batch of 88)."""
        if self._fits(len(packets), sum(map(len, packets)), now):
            return None
        return self._police(list(map(len, packets)))

    def _fits(self, n: int, nbytes: int, now: float) -> bool:
        """Refill up to ``now``; charge and return True if ``n`` packets of ``nbytes``
        in all fit both budgets."""
        t = int(now * NS)
        elapsed = t - self._last
        if elapsed > 0:
            self._last = t
            bits = self._bits + elapsed * self._bit_rate
            self._bits = bits if bits < self._bit_depth else self._bit_depth
            pkts = self._pkts + elapsed * self._pkt_rate
            self._pkts = pkts if pkts < self._pkt_depth else self._pkt_depth
        pkt_cost = n * NS
        bit_cost = nbytes * _BYTE
        if pkt_cost <= self._pkts and bit_cost <= self._bits:
            self._pkts -= pkt_cost
            self._bits -= bit_cost
            return True
        return False

    def _police(self, sizes: list[int]) -> list[int]:
        """Packet by packet: the indexes of those both budgets still hold."""
        keep = []
        pkts, bits = self._pkts, self._bits
        for i, size in enumerate(sizes):
            cost = size * _BYTE
            if pkts >= NS and bits >= cost:
                pkts -= NS
                bits -= cost
                keep.append(i)
        self._pkts, self._bits = pkts, bits
        self.dropped += len(sizes) - len(keep)
        return keep

    def level(self) -> tuple[float, float]:
        """(bits, packets) the bucket holds now, as of its last batch (for tests and status)."""
        return self._bits / NS, self._pkts / NS
