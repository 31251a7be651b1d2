"""The IKE_SA_INIT queue (daemon/initqueue.py) with a synthetic clock: bounded in
items and bytes, newest first, stale requests dropped, and never more than its
share of the loop's time however much work is queued."""

from __future__ import annotations

import pytest

from daemon.initqueue import InitQueue, InitQueueSettings


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_bounded_in_items_the_oldest_make_room():
    clock = Clock()
    q = InitQueue(InitQueueSettings(max_items=10), clock)
    for i in range(25):
        q.push(i, 100)
    assert len(q) == 10 and q.dropped_full == 15 and q.bytes == 1000
    served = []
    while q.drain(served.append) is not None:
        pass
    assert sorted(served) == list(range(15, 25))     # the newest ten survived
    assert served[0] == 24                          # and the newest goes first
    assert q.bytes == 0


def test_bounded_in_bytes():
    q = InitQueue(InitQueueSettings(max_items=1000, max_bytes=10_000), Clock())
    for i in range(50):
        q.push(i, 1500)
    assert q.bytes <= 10_000 and len(q) == 6 and q.dropped_full == 44
    q.push("huge", 20_000)                          # larger than the whole queue
    assert len(q) == 6 and q.dropped_full == 45


def test_requests_that_waited_too_long_are_dropped_not_served():
    clock = Clock()
    q = InitQueue(InitQueueSettings(max_age=2.0), clock)
    for i in range(5):
        q.push(("old", i), 100)
    clock.t += 1.5
    q.push(("young", 0), 100)
    clock.t += 1.0                                  # the old ones waited 2.5 s
    served = []
    assert q.drain(served.append) is None
    assert served == [("young", 0)] and q.dropped_stale == 5 and q.bytes == 0


def _work(clock: Clock, cost: float, served: list):
    def work(item) -> None:
        clock.t += cost                             # the DH computation of one request
        served.append(item)
    return work


@pytest.mark.parametrize("cost", [0.0005, 0.004, 0.015])
def test_the_queue_gets_at_most_its_share_of_the_time(cost):
    """A full queue of expensive requests: over 10 s of the loop driving the
    drains as asyncio would (call_soon -> at once, call_later -> after the
    delay), the work done stays within share x elapsed + the burst."""
    clock = Clock()
    s = InitQueueSettings(max_age=1000.0)
    q = InitQueue(s, clock)
    served: list = []
    work = _work(clock, cost, served)
    start = clock.t
    while clock.t - start < 10.0:
        while len(q) < s.max_items:                 # the flood keeps it full
            q.push(len(served), 300)
        delay = q.drain(work)
        clock.t += delay if delay else 0.0001       # the loop's other readers
    elapsed = clock.t - start
    assert q.work_seconds <= s.share * elapsed + s.burst + cost
    assert q.work_seconds >= 0.5 * s.share * elapsed     # and the queue is served
    assert len(served) > 0


class Cpu:
    """The loop thread's CPU clock: advanced by the work and by the loop's other
    readers, not by time the loop sleeps in epoll."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _run(q: InitQueue, clock: Clock, cpu: Cpu, cost: float, seconds: float, others_busy) -> float:
    """Drive the drains as asyncio would for `seconds` with a full queue of
    requests costing `cost` each; `others_busy(t)` says whether the loop's other
    readers use all the time between drains at time t (else the loop sleeps).
    Returns the share of the time spent on the queue's work."""
    s = q.settings

    def work(item) -> None:
        clock.t += cost
        cpu.t += cost
    start, worked = clock.t, q.work_seconds
    while clock.t - start < seconds:
        while len(q) < s.max_items:
            q.push("request", 300)
        delay = q.drain(work)
        gap = delay if delay else 0.0001
        clock.t += gap
        if others_busy(clock.t):
            cpu.t += gap
    return (q.work_seconds - worked) / (clock.t - start)


@pytest.mark.parametrize("cost", [0.0005, 0.004, 0.015])
def test_an_idle_loop_gives_the_queue_most_of_its_time(cost):
    """200 customer gateways at once after a restart: with nothing else to do the
    loop serves them at nearly full speed (idle_share), not at `share`."""
    clock, cpu = Clock(), Cpu()
    s = InitQueueSettings(max_age=1000.0)
    q = InitQueue(s, clock, cpu)
    assert _run(q, clock, cpu, cost, 10.0, lambda t: False) >= 0.7


def test_the_share_falls_back_as_soon_as_the_loop_has_other_work():
    """Idle for 2 s, then ESP fills every gap between drains: from then on the
    queue keeps to `share`."""
    clock, cpu = Clock(), Cpu()
    s = InitQueueSettings(max_age=1000.0)
    q = InitQueue(s, clock, cpu)
    busy_from = clock.t + 2.0
    assert _run(q, clock, cpu, 0.004, 2.0, lambda t: t >= busy_from) >= 0.7
    assert _run(q, clock, cpu, 0.004, 10.0, lambda t: True) <= s.share + s.burst / 10.0


def test_a_slice_yields_to_the_loop():
    """Cheap requests: one drain serves at most `batch` of them and stops after
    `slice` seconds of work, then asks to be called again soon."""
    clock = Clock()
    s = InitQueueSettings()
    q = InitQueue(s, clock)
    for i in range(200):
        q.push(i, 100)
    served: list = []
    assert q.drain(_work(clock, 0.0001, served)) == 0.0
    assert len(served) <= s.batch and len(served) * 0.0001 <= s.slice + 0.0001
    served.clear()
    q.drain(_work(clock, 0.001, served))
    assert len(served) <= s.slice / 0.001 + 1


def test_work_that_raises_is_still_accounted():
    clock = Clock()
    q = InitQueue(InitQueueSettings(), clock)
    q.push("bad", 100)

    def work(item):
        clock.t += 0.01
        raise RuntimeError("bug")
    with pytest.raises(RuntimeError):
        q.drain(work)
    assert q.work_seconds == pytest.approx(0.01) and len(q) == 0 and q.bytes == 0


def test_the_gateway_hands_no_queued_request_to_a_replaced_tunnel():
    """A reload can replace a tunnel while IKE_SA_INIT requests for it wait in
    the queue: they must not reach the old, closed tunnel (whose core would
    open a half-open SA there that nothing ever expires), only the one the
    tunnel's outside IP names now."""
    import asyncio
    from pathlib import Path
    from daemon.config import parse_config
    from daemon.gateway import Gateway

    example = Path(__file__).resolve().parents[3] / "examples" / "vgw.yaml"
    loop = asyncio.new_event_loop()
    try:
        gw = Gateway(parse_config(example.read_text()), loop)
        received = []

        class Core:
            def __init__(self, name):
                self.name = name

            def receive(self, data, local, remote, now):
                received.append(self.name)

            def datagrams_to_send(self):
                return []

            def next_event(self):
                return None

            def next_deadline(self):
                return None

        class Runtime:
            def __init__(self, name):
                self.id, self.name, self.ike_endpoint = "198.51.100.1", name, Core(name)

        old, new = Runtime("old"), Runtime("new")
        gw.tunnels[old.id] = old
        gw._deliver_init((old, b"x", ("198.51.100.1", 500), ("198.51.100.10", 500)))
        gw.tunnels[old.id] = new                    # the reload replaced it
        gw._deliver_init((old, b"x", ("198.51.100.1", 500), ("198.51.100.10", 500)))
        gw._deliver_init((new, b"x", ("198.51.100.1", 500), ("198.51.100.10", 500)))
        assert received == ["old", "new"]
    finally:
        loop.close()
