"""The one place the engine reaches past SimPy's public API (tests/sim/test_kernel.py pins it).

The engine has no SimPy process per job: an arrival or a job completion is one event whose
callback does the work.  Allocating a ``simpy.Timeout`` for each would cost a third of the run
time, so a fetcher reuses one :class:`Tick` and :func:`scheduler` puts it straight onto the
environment's event queue.  What that relies on, all of it SimPy 4 internals:

* ``Environment._queue`` is a heap of ``(time, priority, event id, event)``, ``_eid`` an
  ``itertools.count`` of event ids;
* ``Environment.step`` pops an entry, sets the clock, takes ``event.callbacks``, sets it to
  ``None``, calls each with the event, and raises unless ``event._ok`` is true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["NORMAL", "Tick", "event_queue", "scheduler"]


class Tick:
    """A reusable event: what ``Environment.step`` reads (``callbacks``, ``_ok``, ``_value``),
    the time it was last scheduled for (``due``: the clock when it fires, read without a call
    to ``env.now``) and the fetcher it belongs to (``fid``, -1 for the arrivals')."""

    __slots__ = ("_ok", "_value", "callbacks", "due", "fid")

    def __init__(self, fid: int = -1) -> None:
        self._ok = True
        self._value: Any = None
        self.callbacks: list[Callable[[Tick], None]] | None = None
        self.due = 0.0
        self.fid = fid


def event_queue(env: simpy.Environment) -> tuple[list[Any], Iterator[int]]:
    """The environment's event heap and its event-id counter, for the hottest paths, which
    push ``(time, NORMAL, next(ids), tick)`` themselves (with ``tick.due = time``) instead of
    calling :func:`scheduler`'s ``at``: a function call per event is a tenth of a run."""
    return env._queue, env._eid


def scheduler(env: simpy.Environment) -> Callable[[float, Tick], None]:
    """``at(time, tick)``: trigger ``tick`` (its ``callbacks`` set by the caller) at ``time``;
    ``tick.due`` is ``time``, exactly the clock when it fires."""
    queue: list[Any] = env._queue  # entries (time, priority, id, event): a Tick is one
    eid = env._eid

    def at(time: float, tick: Tick) -> None:
        tick.due = time
        heappush(queue, (time, NORMAL, next(eid), tick))

    return at
