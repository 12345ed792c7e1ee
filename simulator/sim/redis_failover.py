"""A Redis failover: a shard's primary fails, and ``downtime_s`` later its clients reach the
promoted replica (docs/simulator.md, "Redis failover").

What the fleet sees, as Sidekiq behaves with its basic fetch:

* **At the failure.**  Replication is asynchronous: the writes of the last ``lose_last_s``
  seconds never reached the replica.  Jobs pushed to the shard's queues in that window and
  still waiting are **lost**; jobs fetched from them in that window but pushed before it are
  still in the replica's lists (the pop was not replicated either): they are delivered again
  and **run twice**.  Jobs running at the failure go on: basic fetch removed them from Redis
  when it took them.
* **During the downtime.**  Nothing is fetched from the shard: every fetcher that talks to it
  is in Sidekiq's fetch-error loop (``handle_fetch_exception``: log, sleep 1 s, try again).
  A producer's push fails (``Sidekiq::Client`` raises the Redis error to the caller): the job is
  **lost**, or, with ``producer_retry``, the producer keeps it and pushes it when the shard is
  back (its wait counts from the first attempt).  A running job that fails cannot be written to
  the retry (or dead) set, and a shutdown cannot push its unfinished jobs back: those jobs are
  **lost** too.  The shard's retry set waits (no poller can read it); ``move_jobs`` moves
  nothing while any shard is down.
* **At the end of the downtime.**  The producers' kept jobs are pushed, in arrival order; each
  fetcher of the shard's processes fetches again at its next attempt, within the one-second
  sleep after a fetch error (uniform, from a random stream of its own).

Measured per failover (:class:`FailoverResult`): seconds until a job is fetched from the shard
again, jobs lost (by cause) and run twice, the backlog (in the shard's queues and kept by
producers) before, at its peak and when it is back to its level before the failure, and the
waits of the jobs started from the failure until then.

Nothing here runs unless the scenario has a ``redis_failover`` event.  While a shard is down,
instance attributes shadow a few of the engine's methods (``_push``, ``_enqueue``,
``_failed``, ``_move_jobs``) and its queues are taken out of ``nonempty``; while a failover is
being observed, ``_start`` is shadowed too.  The hot paths are the same code otherwise.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from simpy.events import Timeout

from .jobs import UP, Job
from .kernel import Tick
from .model import URGENCIES, FleetEvent
from .state import ModelState

__all__ = ["FETCH_ERROR_SLEEP_S", "SAMPLE_S", "FailoverResult"]

#: Sidekiq's processor sleeps this long after a failed fetch before it tries again.
FETCH_ERROR_SLEEP_S = 1.0
#: From a sleep after the downtime (every fetcher has tried again), the shard's backlog is
#: sampled this often until it is back to its level before the failure (its peak, and when it
#: drained).
SAMPLE_S = 1.0


@dataclass
class FailoverResult:
    """What one ``redis_failover`` did (counts of jobs; times in seconds from the failure)."""

    at_s: float
    shard: str
    downtime_s: float
    lose_last_s: float
    producer_retry: bool
    #: Jobs of the shard's queues running at the failure (they complete).
    in_flight: int = 0
    #: Pushed in the last ``lose_last_s`` seconds and still waiting: not on the replica.
    lost_unreplicated: int = 0
    #: Fetched in the last ``lose_last_s`` seconds, pushed before: delivered again.
    run_twice: int = 0
    #: Producers' pushes that failed during the downtime ...
    refused_pushes: int = 0
    #: ... lost (no ``producer_retry``) ...
    lost_pushes: int = 0
    #: ... or pushed again when the shard was back.
    retried_pushes: int = 0
    #: Executions that failed during the downtime: their retry could not be written.
    lost_retries: int = 0
    #: Jobs a shutdown during the downtime could not push back.
    lost_push_backs: int = 0
    #: From the failure until a job was fetched from the shard again (None: none was).
    processing_resumed_after_s: float | None = None
    #: Jobs waiting for the shard at the failure (in its queues, or in transit to them), and
    #: the most waiting at once (there, or kept by producers) from then until it drained.
    backlog_before: int = 0
    backlog_peak: int = 0
    #: From the failure until the shard's backlog was back to ``backlog_before``, checked every
    #: second from a second after the downtime (None: not by the end of the run).
    drained_after_s: float | None = None
    #: Jobs of the shard's queues started from the failure until it drained, per urgency ...
    started: dict[str, int] = field(default_factory=dict)
    #: ... of them over their urgency's queueing target ...
    late: dict[str, int] = field(default_factory=dict)
    #: ... and the longest queueing wait among them.
    longest_wait_s: float | None = None

    @property
    def lost(self) -> int:
        return (self.lost_unreplicated + self.lost_pushes + self.lost_retries
                + self.lost_push_backs)


class _Failover:
    """One failover's state while the run goes on."""

    def __init__(self, event: FleetEvent, shard: int, queues: list[int], procs: list[int],
                 name: str) -> None:
        self.event = event
        self.shard = shard
        self.queues = queues
        self.procs = procs
        self.result = FailoverResult(event.at, name, event.downtime_s, event.lose_last_s,
                                     event.producer_retry)
        self.held: list[Job] = []  # pushes the producers keep until the shard is back
        self.frozen_retries: list[tuple[float, int, Job]] = []
        self.popped: list[Job] = []  # fetched in the unreplicated window (copies)
        self.cut = event.at - event.lose_last_s  # pushes after this were not replicated
        self.logging = False  # recording fetches of the unreplicated window
        self.watching = False  # measuring the waits from the failure until drained
        self.awaiting = False  # waiting for the first fetch from the shard after the failure


class RedisFailovers(ModelState):
    _failovers: list[_Failover]
    _failover_of: dict[int, _Failover]
    _fo_urgency: list[str]  # per class: its urgency as the results name it
    _fo_target: list[float]  # per class: its urgency's queueing target
    _down_shards: dict[int, _Failover]
    _start_taps: list[_Failover]
    failover_rnd: random.Random
    duplicated: int

    # -- set-up ---------------------------------------------------------------------------
    def _setup_failovers(self) -> None:
        """Check the failover events against the run's shards (no two on one shard at once)."""
        self._failovers = []
        self._failover_of = {}
        self._down_shards = {}
        self._start_taps = []
        self.duplicated = 0
        events = sorted((e for e in self.sc.events if e.action == "redis_failover"),
                        key=lambda e: e.at)
        if not events:
            return
        # The ninth child of the run's seed: the engine's eight streams stay as they are.
        child = np.random.SeedSequence(self.seed, spawn_key=(8,))
        self.failover_rnd = random.Random(int(child.generate_state(1)[0]))
        self._fo_urgency = [c.urgency if c.urgency in URGENCIES else "low"
                            for c in self.classes]
        self._fo_target = [self.sc.targets.queueing.get(u, math.inf) for u in self._fo_urgency]
        shard_index = {s: i for i, s in enumerate(self.shards)}
        busy_until: dict[int, float] = {}
        for event in events:
            name = event.shard or "default"
            s = shard_index.get(name)
            if s is None:
                raise ValueError(f"redis_failover names Redis shard {name!r}, which no queue "
                                 f"uses (shards: {', '.join(self.shards)})")
            if not (event.downtime_s > 0 and math.isfinite(event.downtime_s)):
                raise ValueError(f"redis_failover downtime_s {event.downtime_s!r} is not a "
                                 "positive number of seconds")
            if not (event.lose_last_s >= 0 and math.isfinite(event.lose_last_s)):
                raise ValueError(f"redis_failover lose_last_s {event.lose_last_s!r} is not 0 "
                                 "or more seconds")
            if event.at < busy_until.get(s, -math.inf):
                raise ValueError(f"redis_failover of shard {name!r} at {event.at:g} s starts "
                                 "before the one before it is over")
            busy_until[s] = event.at + event.downtime_s
            queues = [q for q, qs in enumerate(self.queue_shard) if qs == s]
            procs = [p for p, pos in enumerate(self.p_pos)
                     if any(self.queue_shard[q] == s for q in pos)]
            f = _Failover(event, s, queues, procs, name)
            self._failovers.append(f)
            self._failover_of[id(event)] = f

    def _failover_scheduled(self, event: FleetEvent) -> None:
        """The failure is an event like the others; the unreplicated window opens before it."""
        f = self._failover_of[id(event)]
        if event.lose_last_s > 0:
            ev = Timeout(self.env, max(0.0, f.cut - self.env.now), f)
            ev.callbacks.append(self._failover_log)

    def _failover_log(self, ev: Timeout) -> None:
        f = cast(_Failover, ev.value)
        f.logging = True
        self._tap(f)

    # -- shadowing the engine's methods while needed ---------------------------------------
    def _shadow(self, on: bool, names: tuple[str, ...]) -> None:
        attrs = vars(self)
        for name in names:
            if on:
                attrs[name] = getattr(self, name + "_failover")
            else:
                attrs.pop(name, None)

    def _tap(self, f: _Failover) -> None:
        if f not in self._start_taps:
            self._start_taps.append(f)
            if len(self._start_taps) == 1:
                self._shadow(True, ("_start",))

    def _untap(self, f: _Failover) -> None:
        if f in self._start_taps:
            self._start_taps.remove(f)
            if not self._start_taps:
                self._shadow(False, ("_start",))

    _DOWN = ("_push", "_enqueue", "_failed", "_move_jobs")

    def _start_failover(self, fid: int, job: Job, now: float, handed: int) -> None:
        type(self)._start(self, fid, job, now, handed)
        s = self.queue_shard[job.queue]
        for f in self._start_taps:
            if f.shard != s:
                continue
            if f.logging:
                if job.enqueued <= f.cut:  # on the replica before, and its pop is not
                    f.popped.append(Job(job.cls, job.queue, job.enqueued, job.retries,
                                        job.service, job.fails))
                continue
            r = f.result
            if f.awaiting:
                r.processing_resumed_after_s = now - r.at_s
                f.awaiting = False
                if not f.watching:
                    self._untap(f)
            if f.watching:
                urgency = self._fo_urgency[job.cls]
                wait = now + self._hold - job.enqueued
                r.started[urgency] = r.started.get(urgency, 0) + 1
                if wait > self._fo_target[job.cls]:
                    r.late[urgency] = r.late.get(urgency, 0) + 1
                if r.longest_wait_s is None or wait > r.longest_wait_s:
                    r.longest_wait_s = wait

    def _down_failover(self, q: int) -> _Failover | None:
        return self._down_shards.get(self.queue_shard[q]) if q >= 0 else None

    def _push_failover(self, q: int, job: Job, now: float, front: bool = False) -> None:
        f = self._down_failover(q)
        if f is None:
            type(self)._push(self, q, job, now, front)
        elif front:  # a shutdown's push-back (bulk_requeue) fails
            self.pushed_back -= 1
            f.result.lost_push_backs += 1
            self._lose_job(job, "push back during a Redis downtime")
        else:
            self._refused(f, job)

    def _enqueue_failover(self, q: int, job: Job, now: float) -> None:
        f = self._down_failover(q)
        if f is None:
            type(self)._enqueue(self, q, job, now)
        else:
            self._refused(f, job)

    def _refused(self, f: _Failover, job: Job) -> None:
        """A producer's push fails: kept to push again after the downtime, or lost."""
        r = f.result
        r.refused_pushes += 1
        if f.event.producer_retry:
            f.held.append(job)
        else:
            r.lost_pushes += 1
            self._lose_job(job, "push refused during a Redis downtime")

    def _failed_failover(self, job: Job, now: float) -> None:
        f = self._down_failover(job.queue)
        if f is None:
            type(self)._failed(self, job, now)
            return
        self.failed_runs += 1  # its retry (or death) cannot be written to the shard
        f.result.lost_retries += 1
        self._lose_job(job, "retry not written during a Redis downtime")

    def _move_jobs_failover(self, event: FleetEvent, now: float) -> None:
        down = ", ".join(sorted(self.shards[s] for s in self._down_shards))
        self.events_applied.append(f"{now:.0f}s move_jobs moved nothing: Redis {down} down")

    # -- what the engine counts -------------------------------------------------------------
    def _lose_job(self, job: Job, why: str) -> None:
        self.lost += 1

    def _duplicate_job(self, job: Job) -> None:
        self.duplicated += 1

    def _shard_backlog(self, f: _Failover) -> int:
        """Jobs waiting for the shard: in its queues, in transit to them, kept by producers."""
        queues = self.queues
        n = sum(len(queues[q]) for q in f.queues) + len(f.held)
        if self._transit:
            n += sum(1 for _, q, _ in self._transit if self.queue_shard[q] == f.shard)
        return n

    # -- the failure -------------------------------------------------------------------------
    def _failover_begin(self, event: FleetEvent, now: float) -> None:
        f = self._failover_of[id(event)]
        r = f.result
        s = f.shard
        before = self._down_shards.get(s)
        if before is not None:  # the one before ends at this very instant: first its end
            self._failover_over(before, now)
        f.logging = False
        r.backlog_before = self._shard_backlog(f)
        r.in_flight = sum(1 for job in self.f_job
                          if job is not None and self.queue_shard[job.queue] == s)
        # Pushes that had not become poppable are in Redis: into their queues, or lost.
        if any(self.queue_shard[q] == s for _, q, _ in self._transit):
            self._take_transit(f, now)
        if event.lose_last_s > 0:
            for q in f.queues:
                d = self.queues[q]
                if any(job.enqueued > f.cut for job in d):
                    kept = [job for job in d if job.enqueued <= f.cut]
                    for job in d:
                        if job.enqueued > f.cut:
                            r.lost_unreplicated += 1
                            self._lose_job(job, "not replicated before the failover")
                    d.clear()
                    d.extend(kept)
            by_queue: dict[int, list[Job]] = {}
            for job in f.popped:
                by_queue.setdefault(job.queue, []).append(job)
            for q, jobs in by_queue.items():  # back at the oldest end, in their order
                self.queues[q].extendleft(reversed(jobs))
                for job in jobs:
                    r.run_twice += 1
                    self._duplicate_job(job)
            f.popped = []
        for q in f.queues:  # nobody can fetch from them now
            self.nonempty.discard(q)
        heap = self.retry_heap
        if any(self.queue_shard[job.queue] == s for _, _, job in heap):
            f.frozen_retries = [e for e in heap if self.queue_shard[e[2].queue] == s]
            heap[:] = [e for e in heap if self.queue_shard[e[2].queue] != s]
            heapq.heapify(heap)
        if not self._down_shards:
            self._shadow(True, self._DOWN)
        self._down_shards[s] = f
        r.backlog_peak = max(r.backlog_before, self._shard_backlog(f))
        f.watching = f.awaiting = True
        self._tap(f)
        ev = Timeout(self.env, event.downtime_s, f)
        ev.callbacks.append(self._failover_end)

    def _take_transit(self, f: _Failover, now: float) -> None:
        """Move the shard's pushes in transit into their queues (or lose the unreplicated
        ones); the transit's pending event stays valid for what is left."""
        kept: list[tuple[float, int, Job]] = []
        lose = f.event.lose_last_s > 0
        for entry in self._transit:
            _, q, job = entry
            if self.queue_shard[q] != f.shard:
                kept.append(entry)
            elif lose and job.enqueued > f.cut:
                f.result.lost_unreplicated += 1
                self._lose_job(job, "not replicated before the failover")
            else:
                self.queues[q].append(job)
        pending = self._transit_ev
        pending.callbacks = [_ignore]  # its heap entry fires once more, doing nothing
        fresh = Tick()
        self._transit_ev = fresh
        self._transit.clear()
        self._transit.extend(kept)
        if kept:
            fresh.callbacks = self._transit_cbs
            self.at(max(now, kept[0][0]), fresh)

    # -- the shard is back ---------------------------------------------------------------------
    def _failover_end(self, ev: Timeout) -> None:
        self._failover_over(cast(_Failover, ev.value), self.env.now)

    def _failover_over(self, f: _Failover, now: float) -> None:
        if self._down_shards.get(f.shard) is not f:
            return  # already over: the next failover of the shard began at this instant
        r = f.result
        r.backlog_peak = max(r.backlog_peak, self._shard_backlog(f))
        del self._down_shards[f.shard]
        if not self._down_shards:
            self._shadow(False, self._DOWN)
        for q in f.queues:
            if self.queues[q]:
                self.nonempty.add(q)
        for entry in f.frozen_retries:
            heapq.heappush(self.retry_heap, entry)
        f.frozen_retries = []
        # Each fetcher of the shard's processes fetches again at its next attempt (a busy one
        # when its job is done); then the producers push what they kept.
        rnd = self.failover_rnd
        timeout = self.sc.fetch_timeout_s
        for p in f.procs:
            if self.p_state[p] != UP or not self.idle[p]:
                continue
            gen = self.p_restart_gen[p]
            for fid in self.idle[p]:
                t0 = self.f_idle_since[fid]
                if r.at_s - t0 >= timeout:  # its BRPOPs before the failure
                    self.idle_log.append((p, t0, r.at_s))
                wake = Timeout(self.env, FETCH_ERROR_SLEEP_S * rnd.random(), (fid, gen))
                wake.callbacks.append(self._failover_wake)
            self.idle[p].clear()
        held, f.held = f.held, []
        for job in held:  # the producers push what they kept, in arrival order
            r.retried_pushes += 1
            self._enqueue(job.queue, job, now)
        self.events_applied.append(
            f"{now:.0f}s redis_failover {r.shard} over: {r.lost} lost, {r.run_twice} run "
            f"twice, {r.retried_pushes} pushed again by producers")
        # Drained: checked once every fetcher has tried again, then every second.
        if now + FETCH_ERROR_SLEEP_S <= self.duration:
            ev = Timeout(self.env, FETCH_ERROR_SLEEP_S, f)
            ev.callbacks.append(self._on_drain_sample)

    def _failover_wake(self, ev: Timeout) -> None:
        fid, gen = cast(tuple[int, int], ev.value)
        p = self.f_proc[fid]
        if self.p_restart_gen[p] == gen and self.p_state[p] == UP and self.f_job[fid] is None:
            self._fetch(fid, self.env.now)

    def _drain_check(self, f: _Failover, now: float) -> None:
        r = f.result
        backlog = self._shard_backlog(f)
        r.backlog_peak = max(r.backlog_peak, backlog)
        if backlog <= r.backlog_before:
            r.drained_after_s = now - r.at_s
            f.watching = False
            if not f.awaiting:
                self._untap(f)
            return
        nxt = now + SAMPLE_S
        if nxt <= self.duration:
            ev = Timeout(self.env, SAMPLE_S, f)
            ev.callbacks.append(self._on_drain_sample)

    def _on_drain_sample(self, ev: Timeout) -> None:
        self._drain_check(cast(_Failover, ev.value), self.env.now)

    # -- the end of the run ----------------------------------------------------------------------
    def _failover_finish(self, now: float) -> None:
        """A shard still down at the end: its retry set counts again, the jobs producers keep
        count as waiting (their waits so far, like the jobs in the queues)."""
        for f in self._failovers:
            r = f.result
            if f.shard in self._down_shards and self._down_shards[f.shard] is f:
                r.backlog_peak = max(r.backlog_peak, self._shard_backlog(f))
            for entry in f.frozen_retries:
                heapq.heappush(self.retry_heap, entry)
            f.frozen_retries = []
            for job in f.held:
                self.rec.add_held_wait(job.cls, job.queue, now - job.enqueued)

    @property
    def held_by_producers(self) -> int:
        return sum(len(f.held) for f in self._failovers)


def _ignore(_ev: object) -> None:
    """The callback of a transit event made stale by a failover."""

