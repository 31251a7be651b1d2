"""ReplayWindow (RFC 4303 §3.4.3) against a plain set-based model."""

import pytest
from hypothesis import given, settings, strategies as st

from dataplane.replay import ReplayWindow


class ModelWindow:
    """Obviously-correct reference: remember every accepted seq."""

    def __init__(self, size):
        self.size = size
        self.seen = set()
        self.top = 0

    def check(self, seq):
        if seq == 0:
            return False
        if seq > self.top:
            return True
        if self.top - seq >= self.size:
            return False
        return seq not in self.seen

    def update(self, seq):
        self.seen.add(seq)
        self.top = max(self.top, seq)


@pytest.mark.parametrize("size", [0, 1, 32, 63, 2049, 4096, -1])
def test_size_out_of_range(size):
    with pytest.raises(ValueError, match="64 and 2048"):
        ReplayWindow(size)


@pytest.mark.parametrize("size", [True, 1024.0, "1024"])
def test_size_wrong_type(size):
    with pytest.raises(ValueError):
        ReplayWindow(size)


def test_default_is_aws_1024():
    assert ReplayWindow().size == 1024


def test_seq_zero_never_accepted():
    w = ReplayWindow(64)
    assert not w.check(0)
    w.update(5)
    assert not w.check(0)


def test_check_does_not_change_state():
    w = ReplayWindow(64)
    for _ in range(3):
        assert w.check(10)
    assert w.top == 0 and w.bits == 0


def test_duplicate_rejected():
    w = ReplayWindow(64)
    w.update(1)
    assert not w.check(1)
    assert w.check(2)


@pytest.mark.parametrize("size", [64, 1024, 2048])
def test_window_edges(size):
    w = ReplayWindow(size)
    top = 10 * size
    w.update(top)
    # The window covers top-size+1 .. top (RFC 4303 §3.4.3).
    assert w.check(top - size + 1)
    assert not w.check(top - size)
    assert not w.check(top)
    assert w.check(top + 1)
    w.update(top - size + 1)
    assert not w.check(top - size + 1)
    # Sliding by exactly one drops the oldest edge.
    w.update(top + 1)
    assert not w.check(top - size + 1)
    assert w.check(top - size + 2)


@pytest.mark.parametrize("size", [64, 2048])
def test_big_jump_clears_bitmap(size):
    w = ReplayWindow(size)
    for s in range(1, size + 1):
        w.update(s)
    w.update(5 * size)
    assert w.bits == 1
    assert w.check(5 * size - 1)
    assert not w.check(5 * size)


def test_reordered_within_window_accepted_once():
    w = ReplayWindow(64)
    for s in (5, 3, 4, 1, 2):
        assert w.check(s)
        w.update(s)
    for s in range(1, 6):
        assert not w.check(s)


def test_max_sequence_number():
    w = ReplayWindow(64)
    w.update(2**32 - 1)
    assert not w.check(2**32 - 1)
    assert w.check(2**32 - 2)


def test_check_and_update():
    w = ReplayWindow(64)
    assert w.check_and_update(7)
    assert not w.check_and_update(7)
    assert w.check_and_update(3)
    assert not w.check_and_update(0)
    w.update(200)
    assert not w.check_and_update(7)


@settings(max_examples=200, deadline=None)
@given(
    size=st.sampled_from([64, 65, 100, 1024, 2048]),
    seqs=st.lists(st.integers(min_value=0, max_value=5000), max_size=300),
)
def test_against_model(size, seqs):
    w, m = ReplayWindow(size), ModelWindow(size)
    for s in seqs:
        assert w.check(s) == m.check(s), s
        if m.check(s):
            w.update(s)
            m.update(s)
        assert w.top == m.top


@settings(max_examples=100, deadline=None)
@given(seqs=st.lists(st.integers(min_value=0, max_value=3000), max_size=300))
def test_check_and_update_matches_check_then_update(seqs):
    a, b = ReplayWindow(64), ReplayWindow(64)
    for s in seqs:
        ok = a.check(s)
        if ok:
            a.update(s)
        assert b.check_and_update(s) == ok
        assert (a.top, a.bits) == (b.top, b.bits)
