"""The state machine of ikecore.state: the tables, the one function that moves a
state, and the path each exchange takes through the tables (RFC 7296 §1.2-§1.4,
§2.8, §2.25).

The paths are recorded independently of `transition`: every write of `.state`
on an IkeSa or ChildSa is seen (a class-level __setattr__ spy), so a state
changed behind the table's back would show up as a step here too.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import pytest

from ikecore.child import ChildSa
from ikecore.sa import IkeSa
from ikecore.state import (
    CHILD_INITIAL, CHILD_TRANSITIONS, ESTABLISHED_STATES, IKE_INITIAL, IKE_TRANSITIONS, ChildState,
    IkeState, IllegalTransition, transition,
)
from .ikepair import IkePair, drop_all, settings_a, settings_b

I, C = IkeState, ChildState


class Holder:
    def __init__(self, state):
        self.state = state


# --- the tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("enum,table", [(IkeState, IKE_TRANSITIONS), (ChildState, CHILD_TRANSITIONS)])
def test_every_change_not_in_the_table_raises_and_changes_nothing(enum, table):
    allowed = refused = 0
    for old, new in product(enum, enum):
        h = Holder(old)
        if (old, new) in table:
            transition(h, new)
            assert h.state is new
            allowed += 1
        else:
            with pytest.raises(IllegalTransition):
                transition(h, new)
            assert h.state is old
            refused += 1
    assert allowed == len(table) and refused == len(enum) ** 2 - len(table)


def test_the_ike_table_reads_as_the_rfc_says():
    """No way back from DEAD (§1.4.1: deleted is deleted), no self-loop, every
    state reachable from a start and every state but DEAD able to end (DEAD)."""
    assert not [row for row in IKE_TRANSITIONS if row[0] is I.DEAD]
    assert not [row for row in IKE_TRANSITIONS if row[0] is row[1]]
    assert all(why for why in IKE_TRANSITIONS.values())
    reached, todo = set(IKE_INITIAL.values()), list(IKE_INITIAL.values())
    while todo:
        here = todo.pop()
        for old, new in IKE_TRANSITIONS:
            if old is here and new not in reached:
                reached.add(new)
                todo.append(new)
    assert reached == set(IkeState)
    assert all((s, I.DEAD) in IKE_TRANSITIONS for s in IkeState if s is not I.DEAD)
    # authenticated and not being deleted: rekeys included (§2.8, §2.18)
    assert ESTABLISHED_STATES == {I.ESTABLISHED, I.REKEYING, I.REKEYED}


def test_the_child_table_reads_as_the_rfc_says():
    """A CHILD SA is rekeyed at most once (REKEYED and DELETING lead nowhere but
    DELETING / removal, §2.8) and only an installed one starts a rekey."""
    assert CHILD_INITIAL is C.INSTALLED
    assert {new for old, new in CHILD_TRANSITIONS if old is C.REKEYED} == {C.DELETING}
    assert not [row for row in CHILD_TRANSITIONS if row[0] is C.DELETING]
    assert [old for old, new in CHILD_TRANSITIONS if new is C.REKEYING] == [C.INSTALLED]


def test_transition_moves_real_sas_and_refuses_on_them():
    sa = IkeSa(settings_a(), initiator=True, local=("198.51.100.1", 500),
               remote=("198.51.100.10", 500), created=0.0)
    assert sa.state is IKE_INITIAL["initiator"]
    with pytest.raises(IllegalTransition, match="INIT_SENT -> ESTABLISHED"):
        transition(sa, I.ESTABLISHED)     # §1.2: not before IKE_AUTH
    transition(sa, I.AUTH_SENT)
    assert sa.state is I.AUTH_SENT
    child = ChildSa(0x1234, 0x5678, None, (), (), 0.0, True)
    assert child.state is CHILD_INITIAL
    with pytest.raises(IllegalTransition):
        transition(child, C.INSTALLED)
    with pytest.raises(IllegalTransition):
        transition(child, I.DEAD)         # an IKE state on a CHILD SA
    assert child.state is C.INSTALLED


# --- the path of each exchange ------------------------------------------------------------


class StateSpy:
    """Every `.state` write of IKE and CHILD SAs, as (object, old, new); the
    first write (in __init__) has old None."""

    def __init__(self, monkeypatch):
        self.steps: list[tuple[object, object, object]] = []
        for cls in (IkeSa, ChildSa):
            def spy(obj, name, value, _set=object.__setattr__):
                if name == "state":
                    self.steps.append((obj, obj.__dict__.get("state"), value))
                _set(obj, name, value)
            monkeypatch.setattr(cls, "__setattr__", spy)

    def path(self, obj) -> list:
        """The states `obj` went through, its first one included."""
        out = []
        for o, old, new in self.steps:
            if o is obj:
                if not out:
                    out.append(old if old is not None else new)
                if old is not None:
                    out.append(new)
        return out

    def check_table(self) -> None:
        for _, old, new in self.steps:
            if old is not None and old is not new:
                table = IKE_TRANSITIONS if isinstance(new, IkeState) else CHILD_TRANSITIONS
                assert (old, new) in table


@pytest.fixture
def spy(monkeypatch):
    s = StateSpy(monkeypatch)
    yield s
    s.check_table()


def test_ike_sa_init_and_ike_auth(spy):
    """§1.2: initiator INIT_SENT -> AUTH_SENT -> ESTABLISHED, responder
    INIT_RECEIVED -> HALF_OPEN -> ESTABLISHED; the first CHILD SA is INSTALLED."""
    pair = IkePair()
    pair.handshake()
    a, b = pair.a.sa, pair.b.sa
    assert spy.path(a) == [I.INIT_SENT, I.AUTH_SENT, I.ESTABLISHED]
    assert spy.path(b) == [I.INIT_RECEIVED, I.HALF_OPEN, I.ESTABLISHED]
    for sa in (a, b):
        [child] = sa.children.values()
        assert spy.path(child) == [C.INSTALLED]


def test_ike_sa_init_refused(spy):
    """§1.2: NO_PROPOSAL_CHOSEN ends both: the responder keeps no state."""
    pair = IkePair(settings_a(phase1_dh_groups=(2,)), settings_b(phase1_dh_groups=(14, 19)))
    pair.initiate()
    a = pair.a.sa
    pair.run()
    [b] = {id(o): o for o, _, _ in spy.steps if isinstance(o, IkeSa) and o is not a}.values()
    assert spy.path(a) == [I.INIT_SENT, I.DEAD]
    assert spy.path(b) == [I.INIT_RECEIVED, I.DEAD]


def test_ike_auth_refused(spy):
    """§2.21.2: a PSK mismatch ends both in their IKE_AUTH states."""
    pair = IkePair(settings_a(psk=b"example_psk_abcdef"), settings_b(psk=b"example_psk_zyxwvu"))
    pair.initiate()
    pair.roundtrip(pair.a)
    a, b = pair.a.sa, pair.b.sa
    pair.run()
    assert spy.path(a) == [I.INIT_SENT, I.AUTH_SENT, I.DEAD]
    assert spy.path(b) == [I.INIT_RECEIVED, I.HALF_OPEN, I.DEAD]


def test_half_open_expires(spy):
    pair = IkePair()
    pair.initiate()
    pair.roundtrip(pair.a)               # IKE_SA_INIT answered
    b = pair.b.sa
    pair.run_timers(pair.b.endpoint.settings.half_open_timeout, hook=drop_all)
    assert spy.path(b) == [I.INIT_RECEIVED, I.HALF_OPEN, I.DEAD]
    assert [d.reason for d in pair.b.downs] == ["half-open"]


def test_child_sa_rekey(spy):
    """§1.3.3, §2.8: the initiator's old CHILD SA INSTALLED -> REKEYING -> REKEYED
    -> DELETING; the responder's INSTALLED -> REKEYED; both are then removed."""
    pair = IkePair(settings_a(phase2_dh_groups=(19,)), settings_b(phase2_dh_groups=(19,)))
    pair.handshake()
    [old_a], [old_b] = pair.a.sa.children.values(), pair.b.sa.children.values()
    assert pair.a.endpoint.rekey("child", pair.now) is None
    pair.run()
    assert spy.path(old_a) == [C.INSTALLED, C.REKEYING, C.REKEYED, C.DELETING]
    assert spy.path(old_b) == [C.INSTALLED, C.REKEYED]
    assert old_a.spi_in not in pair.a.sa.children and old_b.spi_in not in pair.b.sa.children
    for sa in (pair.a.sa, pair.b.sa):
        [new] = sa.children.values()
        assert spy.path(new) == [C.INSTALLED]


def test_child_sa_rekey_refused(spy):
    """§1.3.3: a refused rekey leaves the CHILD SA INSTALLED (a retry is armed)."""
    pair = IkePair(settings_a(phase2_dh_groups=(19,)), settings_b(phase2_dh_groups=(19,)))
    pair.handshake()
    pair.b.sa.settings = replace(pair.b.sa.settings, phase2_dh_groups=(21,))
    [old_a] = pair.a.sa.children.values()
    pair.a.endpoint.rekey("child", pair.now)
    pair.run()
    assert spy.path(old_a) == [C.INSTALLED, C.REKEYING, C.INSTALLED]


def test_ike_sa_rekey(spy):
    """§1.3.2, §2.18: the initiator's old IKE SA ESTABLISHED -> REKEYING -> REKEYED
    -> DELETING -> DEAD, the responder's ESTABLISHED -> REKEYED -> DEAD; the new
    ones are born ESTABLISHED and hold the CHILD SA."""
    pair = IkePair()
    pair.handshake()
    a, b = pair.a.sa, pair.b.sa
    assert pair.a.endpoint.rekey("ike", pair.now) is None
    pair.run()
    assert spy.path(a) == [I.INIT_SENT, I.AUTH_SENT, I.ESTABLISHED, I.REKEYING, I.REKEYED,
                           I.DELETING, I.DEAD]
    assert spy.path(b) == [I.INIT_RECEIVED, I.HALF_OPEN, I.ESTABLISHED, I.REKEYED, I.DEAD]
    for side in (pair.a, pair.b):
        new = side.sa
        assert spy.path(new) == [I.ESTABLISHED] and len(new.children) == 1


def test_ike_sa_rekey_refused(spy):
    """A refused IKE rekey (NO_PROPOSAL_CHOSEN) returns to ESTABLISHED."""
    pair = IkePair()
    pair.handshake()
    pair.b.sa.settings = replace(pair.b.sa.settings, phase1_dh_groups=(20,))
    a = pair.a.sa
    pair.a.endpoint.rekey("ike", pair.now)
    pair.run()
    assert spy.path(a)[2:] == [I.ESTABLISHED, I.REKEYING, I.ESTABLISHED]
    assert pair.a.sa is a and a.state is I.ESTABLISHED


def test_simultaneous_ike_rekeys(spy):
    """§2.8.1, §2.25.2: both sides rekey at once; each old IKE SA ends REKEYED
    (straight from REKEYING) and one new IKE SA survives on both sides."""
    pair = IkePair()
    pair.handshake()
    a, b = pair.a.sa, pair.b.sa
    pair.a.endpoint.rekey("ike", pair.now)
    pair.b.endpoint.rekey("ike", pair.now)
    pair.run()
    for old in (a, b):
        assert spy.path(old)[2:4] == [I.ESTABLISHED, I.REKEYING]
        assert spy.path(old)[4] is I.REKEYED and spy.path(old)[-1] is I.DEAD
    assert pair.a.sa.spi_i == pair.b.sa.spi_i and pair.a.sa.established and pair.b.sa.established


def test_delete_ike_sa(spy):
    """§1.4.1: our DELETE: ESTABLISHED -> DELETING -> DEAD; the peer's: -> DEAD."""
    pair = IkePair()
    pair.handshake()
    a, b = pair.a.sa, pair.b.sa
    pair.a.endpoint.delete(pair.now)
    pair.run()
    assert spy.path(a)[2:] == [I.ESTABLISHED, I.DELETING, I.DEAD]
    assert spy.path(b)[2:] == [I.ESTABLISHED, I.DEAD]


def test_delete_child_sa(spy):
    pair = IkePair()
    pair.handshake()
    [child] = pair.a.sa.children.values()
    pair.delete_child(pair.a, child.spi_in)
    pair.run()
    assert spy.path(child) == [C.INSTALLED, C.DELETING]
    assert pair.a.sa.children == {} and pair.b.sa.children == {}
