"""What simulator/sim/kernel.py relies on in SimPy's internals: this fails when SimPy changes it."""

from __future__ import annotations

import heapq
import itertools

import simpy
from simpy.events import NORMAL, Timeout

from simulator.sim.kernel import Tick, event_queue, scheduler


def test_the_environment_keeps_a_heap_of_time_priority_id_event():
    env = simpy.Environment()
    ev = Timeout(env, 3.0)
    assert isinstance(env._queue, list) and isinstance(env._eid, itertools.count)
    ((time, priority, eid, event),) = env._queue
    assert (time, priority, event) == (3.0, NORMAL, ev) and isinstance(eid, int)


def test_a_scheduled_tick_fires_at_its_time_in_order_and_can_be_reused():
    env = simpy.Environment()
    at = scheduler(env)
    seen: list[tuple[float, int]] = []
    ticks = [Tick(fid) for fid in range(3)]

    def fired(tick: Tick) -> None:
        seen.append((env.now, tick.fid))
        assert tick.callbacks is None  # step() takes the callbacks off the event
        if env.now < 10:  # reuse: the same object again, later
            tick.callbacks = [fired]
            at(env.now + 10, tick)

    for tick, t in zip(ticks, (2.0, 1.0, 2.0), strict=True):
        tick.callbacks = [fired]
        at(t, tick)
    Timeout(env, 1.5).callbacks.append(lambda ev: seen.append((env.now, -1)))
    env.run(until=30)
    # Same time: first scheduled first (event ids), SimPy's own events interleave by time.
    assert seen == [(1.0, 1), (1.5, -1), (2.0, 0), (2.0, 2), (11.0, 1), (12.0, 0), (12.0, 2)]


def test_a_tick_scheduled_next_to_simpy_events_keeps_the_heap_valid():
    env = simpy.Environment()
    at = scheduler(env)
    tick = Tick()
    tick.callbacks = []
    for t in (5.0, 1.0, 3.0):
        Timeout(env, t)
    at(2.0, tick)
    assert [e[0] for e in heapq.nsmallest(4, env._queue)] == [1.0, 2.0, 3.0, 5.0]
    env.run()
    assert env.now == 5.0


def test_a_tick_knows_the_time_it_fires_at():
    env = simpy.Environment()
    at = scheduler(env)
    tick = Tick()
    fired: list[tuple[float, float]] = []
    tick.callbacks = [lambda t: fired.append((t.due, env.now))]
    at(0.1 + 0.2, tick)
    env.run()
    assert fired == [(0.1 + 0.2, 0.1 + 0.2)]


def test_event_queue_is_the_environments_own_heap_and_ids():
    # The hot paths push (time, NORMAL, next(ids), tick) onto it themselves: the same entries
    # scheduler's ``at`` makes, in the same id sequence.
    env = simpy.Environment()
    queue, ids = event_queue(env)
    assert queue is env._queue and ids is env._eid
    at = scheduler(env)
    first, second = Tick(0), Tick(1)
    at(2.0, first)
    second.due = 1.0
    heapq.heappush(queue, (1.0, NORMAL, next(ids), second))
    assert [(t, p, ev) for t, p, _, ev in sorted(env._queue)] == [
        (1.0, NORMAL, second), (2.0, NORMAL, first)]
    assert [eid for *_, eid, _ in sorted(env._queue)] == [1, 0]
