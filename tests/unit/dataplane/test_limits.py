"""The token bucket of the emulated per-tunnel limits (dataplane/limits.py), on a
synthetic clock: burst, refill, the bit and the packet budget, and no drift over
long runs (hypothesis)."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataplane.limits import NS, TokenBucket, TunnelLimits

T0 = 5000.0  # a synthetic monotonic clock, seconds; not zero on purpose
STANDARD = TunnelLimits(bits_per_second=1_250_000_000, packets_per_second=140_000)  # docs/aws.md §4.1


def admitted(keep, n):
    return n if keep is None else len(keep)


def test_a_full_bucket_holds_the_burst_then_refuses():
    # 10 ms of 140,000 packets/s: 1,400 packets at once, and not one more
    bucket = TokenBucket(STANDARD, T0)
    assert bucket.take([64] * 1400, T0) is None
    assert bucket.take([64], T0) == []
    assert bucket.dropped == 1


def test_a_batch_over_the_budget_keeps_its_first_packets():
    bucket = TokenBucket(STANDARD, T0)
    keep = bucket.take([64] * 1500, T0)
    assert keep == list(range(1400))
    assert bucket.dropped == 100


def test_refill_follows_the_clock():
    bucket = TokenBucket(STANDARD, T0)
    bucket.take([64] * 1400, T0)                      # empty
    assert bucket.take([64] * 141, T0 + 0.001) == list(range(140))   # 1 ms = 140 packets
    assert bucket.take([64] * 70, T0 + 0.0015) is None                # 0.5 ms = 70 more
    assert bucket.take([64], T0 + 0.0015) == []


def test_refill_stops_at_the_burst():
    bucket = TokenBucket(STANDARD, T0)
    bucket.take([64] * 1400, T0)
    # an hour idle refills 10 ms of the rate, not an hour of it
    assert admitted(bucket.take([64] * 5000, T0 + 3600), 5000) == 1400


def test_the_bit_budget_binds_big_packets():
    # 1.25 Gbit/s for 10 ms: 12.5 Mbit = 1,562,500 bytes, i.e. 1,085 packets of 1,440 bytes
    bucket = TokenBucket(STANDARD, T0)
    keep = bucket.take([1440] * 1400, T0)
    assert len(keep) == 1_562_500 // 1440
    bits, packets = bucket.level()
    assert bits == 12_500_000 - 1085 * 1440 * 8 and packets == 1400 - 1085


def test_a_small_packet_after_a_refused_big_one_passes():
    limits = TunnelLimits(bits_per_second=8 * 100_000, packets_per_second=1000, burst_seconds=1.0)
    bucket = TokenBucket(limits, T0)                 # 100,000 bytes and 1,000 packets
    keep = bucket.take([60_000, 50_000, 30_000, 100], T0)
    assert keep == [0, 2, 3]
    assert bucket.dropped == 1


def test_both_budgets_hold_one_largest_packet_at_any_rate():
    bucket = TokenBucket(TunnelLimits(bits_per_second=1, packets_per_second=1, burst_seconds=0.001), T0)
    assert bucket.take([65535], T0) is None
    assert bucket.take([20], T0) == []


def test_a_clock_that_stands_still_or_goes_back_refills_nothing():
    bucket = TokenBucket(STANDARD, T0)
    bucket.take([64] * 1400, T0)
    assert bucket.take([64], T0) == []
    assert bucket.take([64], T0 - 1) == []
    assert bucket.take([64] * 141, T0 + 0.001) == list(range(140))


@pytest.mark.parametrize("kw", [
    {"bits_per_second": 0, "packets_per_second": 1},
    {"bits_per_second": 1, "packets_per_second": -5},
    {"bits_per_second": 1.5, "packets_per_second": 1},
    {"bits_per_second": True, "packets_per_second": 1},
    {"bits_per_second": 1, "packets_per_second": 1, "burst_seconds": 0},
    {"bits_per_second": 1, "packets_per_second": 1, "burst_seconds": 11},
])
def test_limits_refuse_what_cannot_be_a_rate(kw):
    with pytest.raises(ValueError):
        TunnelLimits(**kw)


@pytest.mark.parametrize("start", [T0, 1e7])
def test_offered_at_exactly_the_rate_never_drops_over_a_long_run(start):
    # one packet every 1/140,000 s for 3 s of a float clock (at 1e7 s its steps are
    # 2 ns): the nanoseconds each step adds are 7142 or 7143, never the 7142.857 a
    # packet needs, yet the refills add up exactly, so the bucket never runs dry
    bucket = TokenBucket(STANDARD, start)
    bucket.take([64] * 1399, start)  # all but one packet of the burst spent at once
    step = 1 / 140_000
    for i in range(1, 140_000 * 3 + 1):
        assert bucket.take([64], start + i * step) is None
    assert bucket.dropped == 0


@settings(max_examples=200, deadline=None)
@given(
    pps=st.integers(1, 10_000_000),
    bps=st.integers(1, 100_000_000_000),
    burst=st.sampled_from([0.001, 0.005, 0.010, 0.1, 1.0]),
    steps=st.lists(st.tuples(st.floats(0, 0.05), st.lists(st.integers(20, 65535), max_size=200)),
                   min_size=1, max_size=60),
)
def test_never_more_than_the_rate_allows(pps, bps, burst, steps):
    """Whatever comes, what passed by time t is at most the burst plus the rate times
    t, for bits and for packets, exactly (integer credit)."""
    limits = TunnelLimits(bits_per_second=bps, packets_per_second=pps, burst_seconds=burst)
    bucket = TokenBucket(limits, T0)
    pkt_depth = max(pps * round(burst * NS), NS)
    bit_depth = max(bps * round(burst * NS), 65535 * 8 * NS)
    now, start_ns = T0, int(T0 * NS)
    passed_pkts = passed_bits = offered = 0
    for dt, sizes in steps:
        now += dt
        keep = bucket.take(sizes, now)
        kept = sizes if keep is None else [sizes[i] for i in keep]
        passed_pkts += len(kept)
        passed_bits += 8 * sum(kept)
        offered += len(sizes)
        elapsed = int(now * NS) - start_ns
        assert passed_pkts * NS <= pkt_depth + pps * elapsed
        assert passed_bits * NS <= bit_depth + bps * elapsed
    assert bucket.dropped == offered - passed_pkts


@settings(max_examples=50, deadline=None)
@given(
    pps=st.integers(1_000, 1_000_000),
    start=st.floats(0, 1e7),
    pattern=st.lists(st.floats(1e-6, 0.009), min_size=1, max_size=40),
    rounds=st.integers(1, 500),
)
def test_no_drift_under_a_flood(pps, start, pattern, rounds):
    """Offered always more than it holds, with steps shorter than the burst (so the
    cap never throws credit away): after any number of batches exactly
    floor(burst + rate x time) packets passed, not one more or less."""
    limits = TunnelLimits(bits_per_second=10**15, packets_per_second=pps)   # the bits never bind
    bucket = TokenBucket(limits, start)
    depth = pps * round(limits.burst_seconds * NS)
    offer = [64] * (pps // 50 + 2)   # 20 ms of the rate: more than the bucket can hold
    now, passed = start, admitted(bucket.take(offer, start), len(offer))   # the burst
    for dt in pattern * rounds:   # up to 20,000 batches
        now += dt
        passed += admitted(bucket.take(offer, now), len(offer))
    elapsed = int(now * NS) - int(start * NS)
    assert passed == Fraction(depth + pps * elapsed, NS).__floor__()


def test_take_packets_charges_as_take_does_with_their_sizes():
    limits = TunnelLimits(bits_per_second=8 * 100_000, packets_per_second=1000, burst_seconds=1.0)
    by_size, by_packet = TokenBucket(limits, T0), TokenBucket(limits, T0)
    batches = [[b"x" * n for n in sizes] for sizes in ([1000] * 10, [60_000, 50_000, 20_000, 100], [500] * 30)]
    for i, batch in enumerate(batches):
        now = T0 + i * 0.01
        assert by_packet.take_packets(batch, now) == by_size.take([len(p) for p in batch], now)
    # 100,000 bytes, +1,000 per 10 ms: the 50,000 of batch 2 and 7 of the 30 of batch 3 are over
    assert by_packet.level() == by_size.level() and by_packet.dropped == by_size.dropped == 1 + 7
