"""The fleet model: a SimPy discrete-event simulation of a Sidekiq fleet.

What is modelled (docs/behaviour.md §6):

* arrivals: Poisson per worker class (piecewise-constant rates following hourly multipliers)
  plus an optional trace replay; each job is routed to its queue (a Redis list on a shard);
* every Sidekiq thread is a fetcher looping on ``BRPOP q1 q2 ... 2``: when data is waiting it
  pops from the first non-empty queue in strict order (no weights) or in a weighted shuffle
  (weighted sampling without replacement, P(first = q) = w_q / sum w); otherwise it blocks, and
  blocked fetchers are served first come first served when a job is pushed;
* execution, then success or failure; a failure is retried after
  ``count**4 + 15 + rand(10 * (count + 1))`` seconds (Sidekiq 8), at most 25 times, then the
  job is dead; the scheduled-set poller (about every 5 s) pushes due retries back;
* Redis CPU per shard from a per-command cost model (section 8);
* events: node down / up, graceful restart (quiet, wait ``timeout``, push back the rest),
  routing change (for a share of the producers: a rolling switch), ``listen`` (a node's
  processes restart gracefully with new queue lists), ``move_jobs`` (waiting jobs move from
  queues nothing routes to any more, as ``sidekiq_migrate_jobs`` does);
* stranded jobs: jobs waiting in a queue that no up, non-quiet process listens to, sampled
  over time.

How it stays fast: there is no SimPy process per job.  A job is a small tuple; each arrival
and each completion is one SimPy event whose callback does the work (enqueue or hand the job
straight to the longest-waiting idle fetcher, start the next job).  Random numbers are drawn
in numpy batches.  Statistics are streamed into fixed-size histograms (:mod:`simulator.sim.stats`).
"""

from __future__ import annotations

import csv
import heapq
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simpy
from simpy.events import Timeout

from .model import (
    ACTIONS,
    URGENCIES,
    FleetEvent,
    JobClass,
    Process,
    Scenario,
    ServiceTime,
    retry_delay,
)
from .stats import FleetRecorder

__all__ = ["RunResult", "mmc_scenario", "simulate", "trace_classes"]


_ARRIVAL_BATCH = 8192
_FLUSH_EVERY = 32768
_NORMAL = 1  # SimPy's NORMAL event priority


class _Tick:
    """A reusable SimPy event: what ``Environment.step`` needs (callbacks, _ok) and a fetcher.

    Arrivals and job completions are scheduled straight onto the environment's event queue
    with one of these; each fetcher owns one (it has at most one job running), so no event
    object is allocated per job.
    """

    __slots__ = ("_ok", "_value", "callbacks", "fid")

    def __init__(self, fid: int = -1) -> None:
        self._ok = True
        self._value = None
        self.callbacks: list | None = None
        self.fid = fid


@dataclass
class RunResult:
    """Counters and streamed statistics of one run."""

    duration: float
    seed: int
    queues: list[str]
    queue_shards: list[str]
    shards: list[str]
    processes: list[Process]
    recorder: FleetRecorder
    counters: dict[str, int]
    in_queues: dict[str, int]
    unserved_queues: list[str]
    events_applied: list[str]
    #: ``(time, stranded, unlistened)`` samples: jobs waiting in queues that no up, non-quiet
    #: process listens to, and of those the ones in queues no process of the fleet's current
    #: configuration listens to at all (restarting or down processes count as listeners).
    stranded: list[tuple[float, int, int]] = field(default_factory=list)
    #: Per event applied: its time, action and label (in order).
    event_log: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def stranded_max(self) -> int:
        return max((s for _, s, _ in self.stranded), default=0)

    @property
    def stranded_final(self) -> int:
        return self.stranded[-1][1] if self.stranded else 0


class _Model:
    """One simulation run.  Not reusable: build, ``run()``, read the result."""

    def __init__(self, scenario: Scenario, *, duration: float, seed: int,
                 bin_width: float | None) -> None:
        self.sc = scenario
        self.duration = float(duration)
        self.seed = seed
        ss = np.random.SeedSequence(seed)
        arr_ss, misc_ss, mix_ss = ss.spawn(3)  # the first two as before: same streams
        self.rng = np.random.default_rng(arr_ss)
        self.rnd = random.Random(int(misc_ss.generate_state(1)[0]))
        # Which producer (old or new routes) an arrival comes from during a rolling switch:
        # its own stream, so the other draws do not shift with the share.
        self._mix_rnd = random.Random(int(mix_ss.generate_state(1)[0]))
        self.env = simpy.Environment()

        classes = list(scenario.classes)
        known = {c.key for c in classes}
        for key in scenario.routes:
            if key not in known:  # routed but no load: still needed for trace replay
                classes.append(JobClass(key))
                known.add(key)
        self.classes = classes
        self.class_index = {c.key: i for i, c in enumerate(classes)}

        # Queues: every routing destination and every queue a process listens to.
        queue_shard: dict[str, str] = {}
        for event in scenario.events:
            if event.action not in ACTIONS:
                raise ValueError(f"unknown event action {event.action!r}")
            if event.action == "routing" and not 0.0 <= event.share <= 1.0:
                raise ValueError(f"routing share {event.share!r} is not between 0 and 1")
        route_tables = [scenario.routes] + [
            e.routes for e in scenario.events
            if e.action in ("routing", "move_jobs") and e.routes is not None
        ]
        for table in route_tables:
            for queue, shard in table.values():
                queue_shard.setdefault(queue, shard or "default")
        # Process slots: today's processes, then those each listen event brings (they start
        # down and come up when the processes they replace have restarted).
        procs = list(scenario.processes)
        self._event_slots: dict[int, list[int]] = {}
        for event in scenario.events:
            if event.action == "listen":
                self._event_slots[id(event)] = list(
                    range(len(procs), len(procs) + len(event.processes)))
                procs.extend(event.processes)
        for proc in procs:
            for q in proc.queues:
                queue_shard.setdefault(q, "default")
        self.queue_names = list(queue_shard)
        self.queue_index = {q: i for i, q in enumerate(self.queue_names)}
        self.shards = sorted(set(queue_shard.values()), key=lambda s: (s != "default", s))
        shard_index = {s: i for i, s in enumerate(self.shards)}
        self.queue_shard = [shard_index[queue_shard[q]] for q in self.queue_names]

        def table_of(routes: Mapping[str, tuple[str, str | None]]) -> list[int]:
            out = []
            for c in classes:
                queue = routes.get(c.key, (c.key, None))[0]
                out.append(self.queue_index.get(queue, -1))
            return out

        self.route_table = table_of(scenario.routes)
        self._tables = {id(t): table_of(t) for t in route_tables[1:]}
        # Per table, whether the routes name each class (move_jobs leaves unnamed ones alone).
        self._known = {id(t): [c.key in t for c in classes] for t in route_tables}
        self.route_known = self._known[id(scenario.routes)]
        # A rolling switch in progress: the new table and the share of arrivals using it.
        self._mix: list[int] | None = None
        self._mix_known: list[bool] = []
        self._share = 1.0

        # Processes and fetchers.
        self.procs = procs
        nq = len(self.queue_names)
        self.listeners: list[list[int]] = [[] for _ in range(nq)]
        self.p_pos: list[dict[int, int]] = []
        self.p_weight: list[dict[int, int] | None] = []
        self.node_procs: dict[str, list[int]] = {}
        self.f_proc: list[int] = []
        self.p_fetchers: list[list[int]] = []
        for p, proc in enumerate(procs):
            weights = proc.weights
            pos = {self.queue_index[q]: i for i, q in enumerate(weights)}
            self.p_pos.append(pos)
            self.p_weight.append(
                None if proc.strict else {self.queue_index[q]: w for q, w in weights.items()}
            )
            for qi in pos:
                self.listeners[qi].append(p)
            if p < len(scenario.processes):
                self.node_procs.setdefault(proc.node, []).append(p)
            fids = list(range(len(self.f_proc), len(self.f_proc) + proc.concurrency))
            self.f_proc.extend([p] * proc.concurrency)
            self.p_fetchers.append(fids)
        nf = len(self.f_proc)
        self.f_job: list[tuple | None] = [None] * nf
        self.f_idle_since = [0.0] * nf
        self.f_ev = [_Tick(fid) for fid in range(nf)]
        self._done_cbs = [self._on_done]
        self._arr_cbs = [self._on_arrival]
        self._arr_ev = _Tick()
        self._queue = self.env._queue
        self._eid = self.env._eid
        self.idle: list[deque[int]] = [deque() for _ in procs]
        n_initial = len(scenario.processes)
        # 0 up, 1 quiet, 2 down (slots of listen events start down)
        self.p_state = [0] * n_initial + [2] * (len(procs) - n_initial)
        self.p_busy = [0] * len(procs)
        self.p_restart_gen = [0] * len(procs)
        self.p_successors: dict[int, list[int]] = {}  # replaced by a listen event
        self.nodes = {proc.node for proc in procs} | {
            e.node for e in scenario.events if e.action == "listen" and e.node}
        # Per queue: up (state 0) processes listening, and processes of the current
        # configuration listening (any state): the stranded / unlistened measurements.
        self.up_listeners = [0] * nq
        self.cfg_listeners = [0] * nq
        for p in range(n_initial):
            for qi in self.p_pos[p]:
                self.up_listeners[qi] += 1
                self.cfg_listeners[qi] += 1
        self.stranded_log: list[tuple[float, int, int]] = []
        self.event_log: list[tuple[float, str, str]] = []
        self.moved = 0
        self.moved_retries = 0
        self.kept_unknown = 0

        self.queues: list[deque[tuple]] = [deque() for _ in range(nq)]
        self.nonempty: set[int] = set()
        self.retry_heap: list[tuple[float, int, tuple]] = []
        self._retry_seq = 0
        self._poller_active = False

        # Redis cost tables: per (process, queue) the cost of a fetch that was handed a job /
        # found data waiting; per (process, shard) the cost of one idle timeout cycle.
        rc = scenario.redis
        ns = len(self.shards)
        hand = np.zeros((max(len(procs), 1), nq))
        wait = np.zeros((max(len(procs), 1), nq))
        idle_cost = np.zeros((max(len(procs), 1), ns))
        for p, pos in enumerate(self.p_pos):
            keys_on = np.zeros(ns)
            for qi in pos:
                keys_on[self.queue_shard[qi]] += 1
            for qi in pos:
                k = keys_on[self.queue_shard[qi]]
                hand[p, qi] = rc.handoff_us + rc.handoff_per_key_us * k
                wait[p, qi] = rc.waiting_us + rc.waiting_per_key_us * k
            for s in range(ns):
                if keys_on[s]:
                    idle_cost[p, s] = rc.idle_cycle_us + rc.idle_cycle_per_key_us * keys_on[s]

        urg_index = {u: i for i, u in enumerate(URGENCIES)}
        cls_urg = np.array([urg_index.get(c.urgency or "low", 1) for c in classes], dtype=np.intp)
        if bin_width is None:
            bin_width = max(1.0, self.duration / 120)
        self.rec = FleetRecorder(
            class_urgency=cls_urg,
            n_queues=nq,
            queue_shard=np.array(self.queue_shard, dtype=np.intp),
            n_shards=ns,
            n_procs=len(procs),
            proc_concurrency=np.array([p.concurrency for p in procs], dtype=float),
            handoff_cost_us=hand,
            waiting_cost_us=wait,
            idle_cost_us=idle_cost,
            fetch_timeout=scenario.fetch_timeout_s,
            duration=self.duration,
            bin_width=bin_width,
            targets=scenario.targets,
        )
        self.records: list[tuple] = []
        self.idle_log: list[tuple[int, float, float]] = []
        self.half = 1.0 / scenario.fetch_timeout_s

        self.arrived = 0
        self.succeeded = 0
        self.failed_runs = 0
        self.retried = 0
        self.dead = 0
        self.lost = 0
        self.pushed_back = 0
        self.running = 0
        self.events_applied: list[str] = []
        self._boot: dict[int, float] = {}

        # Arrival process state.
        rates = np.array([c.rate for c in classes], dtype=float)
        if np.any(rates < 0):
            raise ValueError("negative arrival rate")
        self.rates = rates
        default_shape = np.asarray(scenario.shape if scenario.shape else [1.0] * 24, dtype=float)
        self.shapes = np.array(
            [np.asarray(c.shape, dtype=float) if c.shape else default_shape for c in classes]
        ) if classes else np.zeros((0, 24))
        self.has_shape = bool(scenario.shape) or any(c.shape for c in classes)
        # Group classes by service distribution so a batch samples each group at once.
        dist_ids: dict[ServiceTime, int] = {}
        self.cls_dist = np.array(
            [dist_ids.setdefault(c.service, len(dist_ids)) for c in classes], dtype=np.intp
        )
        self.dists = list(dist_ids)
        self.cls_fail = np.array([c.failure_probability for c in classes], dtype=float)
        self._a_t: list[float] = []
        self._a_cls: list[int] = []
        self._a_svc: list[float] = []
        self._a_fail: list[bool] = []
        self._a_i = 0
        self._a_boundary = math.inf

    # ----------------------------------------------------------------- arrivals
    def _period(self, now: float) -> tuple[np.ndarray, float]:
        """Rates in force at ``now`` and when they next change."""
        if not self.has_shape:
            return self.rates, math.inf
        hour_pos = now / 3600.0 + self.sc.start_hour
        h = math.floor(hour_pos + 1e-9)
        boundary = (h + 1 - self.sc.start_hour) * 3600.0
        return self.rates * self.shapes[:, h % 24], boundary

    def _refill(self, now: float) -> None:
        rates, boundary = self._period(now)
        self._a_boundary = boundary
        lam = float(rates.sum())
        self._a_i = 0
        if lam <= 0:
            self._a_t = []
            self._schedule_refill(boundary)
            return
        n = _ARRIVAL_BATCH
        rng = self.rng
        t = now + np.cumsum(rng.exponential(1.0 / lam, n))
        keep = int(np.searchsorted(t, boundary, side="left"))
        cum = np.cumsum(rates / lam)
        cum[-1] = 1.0
        cls = np.searchsorted(cum, rng.random(n), side="right")
        cls = np.minimum(cls, len(rates) - 1)
        svc = np.empty(n)
        dist = self.cls_dist[cls]
        for d, st in enumerate(self.dists):
            mask = dist == d
            m = int(mask.sum())
            if m:
                svc[mask] = st.sample(rng, m)
        fail = rng.random(n) < self.cls_fail[cls]
        self._a_t = t[:keep].tolist()
        self._a_cls = cls[:keep].tolist()
        self._a_svc = svc[:keep].tolist()
        self._a_fail = fail[:keep].tolist()
        self._a_full = keep == n
        if keep == 0:
            self._schedule_refill(boundary)
        else:
            self._a_n = keep
            ev = self._arr_ev
            ev.callbacks = self._arr_cbs
            heapq.heappush(self._queue, (self._a_t[0], _NORMAL, next(self._eid), ev))

    def _schedule_refill(self, at: float) -> None:
        if at >= self.duration or math.isinf(at):
            return
        ev = Timeout(self.env, at - self.env.now)
        ev.callbacks.append(lambda _ev: self._refill(at))

    def _on_arrival(self, ev: _Tick) -> None:
        i = self._a_i
        now = self.env._now
        cls = self._a_cls[i]
        q = self.route_table[cls]
        if self._mix is not None:  # a rolling switch: this arrival's producer decides
            q = self._mixed(cls, q)
        self.arrived += 1
        self._push(q, (cls, q, now, 0, self._a_svc[i], self._a_fail[i]), now)
        i += 1
        self._a_i = i
        if i < self._a_n:
            ev.callbacks = self._arr_cbs
            heapq.heappush(self._queue, (self._a_t[i], _NORMAL, next(self._eid), ev))
        elif self._a_full:
            self._refill(now)
        else:
            self._schedule_refill(self._a_boundary)

    def _mixed(self, cls: int, q: int) -> int:
        """During a rolling switch: the new route for a ``share`` of the arrivals."""
        if self._mix_rnd.random() < self._share:
            return self._mix[cls]  # type: ignore[index]
        return q

    # ----------------------------------------------------------------- trace
    def _start_trace(self) -> None:
        if self.sc.trace is None:
            return
        self._trace_file = open(self.sc.trace.path, newline="")  # noqa: SIM115 - closed in run
        reader = csv.DictReader(self._trace_file)
        self._trace_rows = iter(reader)
        self._next_trace(0.0)

    def _next_trace(self, now: float) -> None:
        for row in self._trace_rows:
            t = float(row["time"])
            if t >= self.duration:
                return
            cls = self.class_index[row["worker_class"].strip()]
            svc = float(row["duration"])
            ev = Timeout(self.env, max(0.0, t - now), (cls, svc))
            ev.callbacks.append(self._on_trace)
            return

    def _on_trace(self, ev: Timeout) -> None:
        cls, svc = ev._value
        now = self.env._now
        fail = self.rnd.random() < self.classes[cls].failure_probability
        q = self.route_table[cls]
        if self._mix is not None:
            q = self._mixed(cls, q)
        self.arrived += 1
        self._push(q, (cls, q, now, 0, svc, fail), now)
        self._next_trace(now)

    # ----------------------------------------------------------------- queues and fetchers
    def _push(self, q: int, job: tuple, now: float, front: bool = False) -> None:
        """LPUSH (or the RPUSH of a requeue, ``front``): hand to the longest-blocked fetcher."""
        if q < 0:
            q = self._unrouted(job)
            job = (job[0], q, *job[2:])
        best = -1
        lst = self.listeners[q]
        if len(lst) == 1:
            d = self.idle[lst[0]]
            if d:
                best = d.popleft()
        elif lst:
            since = math.inf
            bp = -1
            for p in lst:
                d = self.idle[p]
                if d and self.f_idle_since[d[0]] < since:
                    since = self.f_idle_since[d[0]]
                    bp = p
            if bp >= 0:
                best = self.idle[bp].popleft()
        if best >= 0:
            t0 = self.f_idle_since[best]
            if now - t0 >= self.sc.fetch_timeout_s:
                self.idle_log.append((self.f_proc[best], t0, now))
            self._start(best, job, now, 1)
        else:
            if front:
                self.queues[q].appendleft(job)
            else:
                self.queues[q].append(job)
            self.nonempty.add(q)

    def _unrouted(self, job: tuple) -> int:
        """A class with no queue index (cannot happen with complete routes): its own name."""
        key = self.classes[job[0]].key
        qi = self.queue_index.get(key)
        if qi is None:
            raise ValueError(f"worker class {key!r} has no queue")
        return qi

    def _start(self, fid: int, job: tuple, now: float, handed: int) -> None:
        self.running += 1
        self.p_busy[self.f_proc[fid]] += 1
        self.f_job[fid] = (job, now, handed)
        ev = self.f_ev[fid]
        ev.callbacks = self._done_cbs
        heapq.heappush(self._queue, (now + job[4], _NORMAL, next(self._eid), ev))

    def _on_done(self, ev: _Tick) -> None:
        fid = ev.fid
        if ev is not self.f_ev[fid]:
            return  # the job was pushed back or lost meanwhile
        job, start, handed = self.f_job[fid]
        now = self.env._now
        p = self.f_proc[fid]
        fail = job[5]
        self.records.append((job[0], job[1], p, job[2], start, now, handed + 2 * fail))
        if len(self.records) >= _FLUSH_EVERY:
            self._flush()
        self.running -= 1
        self.p_busy[p] -= 1
        self.f_job[fid] = None
        if fail:
            self._failed(job, now)
        else:
            self.succeeded += 1
        self._fetch(fid, now)

    def _fetch(self, fid: int, now: float) -> None:
        p = self.f_proc[fid]
        if self.p_state[p]:
            if self.p_state[p] == 1 and self.p_busy[p] == 0:
                self._restart_done(p, now)
            return
        if self.nonempty:
            chosen = -1
            pos = self.p_pos[p]
            weights = self.p_weight[p]
            if weights is None:
                best = math.inf
                for q in self.nonempty:
                    i = pos.get(q)
                    if i is not None and i < best:
                        best = i
                        chosen = q
            else:
                cands = [q for q in self.nonempty if q in weights]
                if len(cands) == 1:
                    chosen = cands[0]
                elif cands:
                    cands.sort(key=pos.__getitem__)
                    total = sum(weights[q] for q in cands)
                    r = self.rnd.random() * total
                    for q in cands:
                        r -= weights[q]
                        chosen = q
                        if r < 0:
                            break
            if chosen >= 0:
                d = self.queues[chosen]
                job = d.popleft()
                if not d:
                    self.nonempty.discard(chosen)
                self._start(fid, job, now, 0)
                return
        self.f_idle_since[fid] = now
        self.idle[p].append(fid)

    # ----------------------------------------------------------------- retries
    def _failed(self, job: tuple, now: float) -> None:
        self.failed_runs += 1
        count = job[3]
        if count >= self.sc.max_retries:
            self.dead += 1
            return
        self.retried += 1
        due = now + retry_delay(count, self.rnd)
        self._retry_seq += 1
        heapq.heappush(self.retry_heap, (due, self._retry_seq, job))
        if not self._poller_active:
            self._poller_active = True
            self._schedule_poll()

    def _schedule_poll(self) -> None:
        interval = self.sc.poll_interval_s
        # Sidekiq's random_poll_interval: interval * rand + interval / 2.
        ev = Timeout(self.env, interval * self.rnd.random() + interval / 2)
        ev.callbacks.append(self._on_poll)

    def _on_poll(self, _ev: object) -> None:
        now = self.env._now
        heap = self.retry_heap
        while heap and heap[0][0] <= now:
            _, _, job = heapq.heappop(heap)
            cls = job[0]
            c = self.classes[cls]
            svc = float(c.service.sample(self.rng, 1)[0])
            fail = self.rnd.random() < c.failure_probability
            self._push(job[1], (cls, job[1], now, job[3] + 1, svc, fail), now)
        if heap:
            self._schedule_poll()
        else:
            self._poller_active = False

    # ----------------------------------------------------------------- fleet events
    def _schedule_events(self) -> None:
        for event in sorted(self.sc.events, key=lambda e: e.at):
            if event.at >= self.duration:
                continue
            if event.node is not None and event.node not in self.nodes:
                raise ValueError(f"event names unknown node {event.node!r}")
            if event.action == "listen" and event.node is None:
                raise ValueError("a listen event needs a node")
            ev = Timeout(self.env, event.at, event)
            ev.callbacks.append(self._on_event)

    def _on_event(self, ev: Timeout) -> None:
        event: FleetEvent = ev._value
        now = self.env._now
        procs = self.node_procs.get(event.node or "", [])
        if event.action == "node_down":
            for p in procs:
                self._down(p, now, lose=True)
        elif event.action == "node_up":
            for p in procs:
                self._up(p, now)
        elif event.action == "restart":
            for p in procs:
                self._quiet(p, now, event.timeout_s, event.boot_s)
        elif event.action == "routing" and event.routes is not None:
            self._switch(event)
        elif event.action == "listen":
            self._listen(event, now)
        elif event.action == "move_jobs":
            self._move_jobs(event, now)
        text = f"{now:.0f}s {event.action} {event.node or ''}".strip()
        if event.action == "routing" and event.share < 1.0:
            text += f" (share {event.share:.3g})"
        self.events_applied.append(text)
        self.event_log.append((now, event.action, event.label))
        self._sample_stranded(now)

    def _switch(self, event: FleetEvent) -> None:
        table = self._tables[id(event.routes)]
        known = self._known[id(event.routes)]
        if event.share >= 1.0:
            self.route_table, self.route_known, self._mix = table, known, None
        elif event.share <= 0.0:
            self._mix = None
        else:
            self._mix, self._mix_known, self._share = table, known, event.share

    def _listen(self, event: FleetEvent, now: float) -> None:
        """The node's processes restart gracefully as ``event.processes`` (new slots)."""
        node = event.node or ""
        old = self.node_procs.get(node, [])
        new = self._event_slots[id(event)]
        self.node_procs[node] = list(new)
        for p in old:
            for qi in self.p_pos[p]:
                self.cfg_listeners[qi] -= 1
        for p in new:
            for qi in self.p_pos[p]:
                self.cfg_listeners[qi] += 1
        for i, p in enumerate(old):
            self.p_successors[p] = [new[i]] if i < len(new) else []
        for s in new[len(old):]:  # more processes than before: they just start
            self._boot[s] = event.boot_s
            self._schedule_up(s, now + event.boot_s)
        for p in old:
            if self.p_state[p] == 0:
                self._quiet(p, now, event.timeout_s, event.boot_s)
            # quiet or restarting: the pending come-back brings the successors up; down
            # (node_down): they come up with the next node_up.

    def _move_jobs(self, event: FleetEvent, now: float) -> None:
        """Move waiting jobs off queues that are no destination (``sidekiq_migrate_jobs``)."""
        if event.routes is not None:
            table, known = self._tables[id(event.routes)], self._known[id(event.routes)]
            tables = [(table, known)]
        elif self._mix is not None:  # mid-switch: both route sets are in force
            table, known = self._mix, self._mix_known
            tables = [(self.route_table, self.route_known), (table, known)]
        else:
            table, known = self.route_table, self.route_known
            tables = [(table, known)]
        dests = {t[c] for t, k in tables for c in range(len(t)) if k[c] and t[c] >= 0}
        for q in sorted(self.nonempty):
            if q in dests:
                continue
            d = self.queues[q]
            jobs = list(d)  # oldest first
            d.clear()
            self.nonempty.discard(q)
            for job in jobs:
                cls = job[0]
                dest = table[cls]
                if known[cls] and dest >= 0 and dest != q:
                    self.moved += 1
                    self._push(dest, (cls, dest, *job[2:]), now)
                else:  # a class the mapping does not name: it stays, never dropped
                    self.kept_unknown += 1
                    d.append(job)
            if d:
                self.nonempty.add(q)
        heap = self.retry_heap
        for i, (due, seq, job) in enumerate(heap):
            cls, q = job[0], job[1]
            dest = table[cls]
            if q not in dests and known[cls] and dest >= 0 and dest != q:
                heap[i] = (due, seq, (cls, dest, *job[2:]))  # same keys: still a heap
                self.moved_retries += 1

    def _set_state(self, p: int, state: int) -> None:
        was_up = self.p_state[p] == 0
        if was_up != (state == 0):
            delta = -1 if was_up else 1
            for qi in self.p_pos[p]:
                self.up_listeners[qi] += delta
        self.p_state[p] = state

    def _sample_stranded(self, now: float) -> None:
        stranded = unlistened = 0
        up, cfg, queues = self.up_listeners, self.cfg_listeners, self.queues
        for q in self.nonempty:
            if not up[q]:
                n = len(queues[q])
                stranded += n
                if not cfg[q]:
                    unlistened += n
        self.stranded_log.append((now, stranded, unlistened))

    def _stranded_sampler(self, _ev: object) -> None:
        now = self.env._now
        self._sample_stranded(now)
        nxt = now + (self.sc.stranded_sample_s or 0.0)
        if nxt < self.duration:
            ev = Timeout(self.env, nxt - now)
            ev.callbacks.append(self._stranded_sampler)

    def _drop_idle(self, p: int, now: float) -> None:
        for fid in self.idle[p]:
            t0 = self.f_idle_since[fid]
            if now - t0 >= self.sc.fetch_timeout_s:
                self.idle_log.append((p, t0, now))
        self.idle[p].clear()

    def _down(self, p: int, now: float, *, lose: bool) -> None:
        self._drop_idle(p, now)
        for fid in self.p_fetchers[p]:
            current = self.f_job[fid]
            if current is None:
                continue
            job, start, _ = current
            self.f_ev[fid] = _Tick(fid)  # the pending completion becomes stale
            self.f_job[fid] = None
            self.running -= 1
            self.rec.add_busy(p, start, now)
            if lose:
                self.lost += 1
            else:
                self.pushed_back += 1
                self._push(job[1], job, now, front=True)
        self.p_busy[p] = 0
        self._set_state(p, 2)
        self.p_restart_gen[p] += 1

    def _up(self, p: int, now: float) -> None:
        if self.p_state[p] == 0:
            return
        self._set_state(p, 0)
        self.p_restart_gen[p] += 1
        for fid in self.p_fetchers[p]:
            if self.f_job[fid] is None:
                self._fetch(fid, now)

    def _quiet(self, p: int, now: float, timeout: float, boot: float) -> None:
        if self.p_state[p] != 0:
            return
        self._set_state(p, 1)
        self.p_restart_gen[p] += 1
        gen = self.p_restart_gen[p]
        self._boot[p] = boot
        self._drop_idle(p, now)
        if self.p_busy[p] == 0:
            self._restart_done(p, now)
            return
        ev = Timeout(self.env, timeout, (p, gen))
        ev.callbacks.append(self._on_shutdown_timeout)

    def _on_shutdown_timeout(self, ev: Timeout) -> None:
        p, gen = ev._value
        if self.p_restart_gen[p] != gen or self.p_state[p] != 1:
            return
        now = self.env._now
        self._down(p, now, lose=False)
        self._schedule_up(p, now + self._boot.get(p, 0.0))

    def _restart_done(self, p: int, now: float) -> None:
        self._set_state(p, 2)
        self.p_restart_gen[p] += 1
        self._schedule_up(p, now + self._boot.get(p, 0.0))

    def _schedule_up(self, p: int, at: float) -> None:
        gen = self.p_restart_gen[p]

        def up(_ev: object) -> None:
            if self.p_restart_gen[p] == gen:
                self._come_back(p, self.env.now)

        ev = Timeout(self.env, max(0.0, at - self.env.now))
        ev.callbacks.append(up)

    def _come_back(self, p: int, now: float) -> None:
        """A restart is over: the process comes up, or the processes that replaced it."""
        successors = self.p_successors.get(p)
        if successors is None:
            self._up(p, now)
            return
        for s in successors:
            self._come_back(s, now)

    # ----------------------------------------------------------------- sampling and results
    def _sample(self, _ev: object) -> None:
        now = self.env._now
        self.rec.sample_backlog(now, [len(d) for d in self.queues], len(self.retry_heap))
        if self.sc.stranded_sample_s is None:
            self._sample_stranded(now)
        nxt = now + self.rec.bin_width
        if nxt <= self.duration:
            ev = Timeout(self.env, nxt - now)
            ev.callbacks.append(self._sample)

    def _flush(self) -> None:
        if self.records:
            self.rec.add_jobs(self.records)
            self.records.clear()
        if self.idle_log:
            self.rec.add_idle(self.idle_log)
            self.idle_log.clear()

    def run(self) -> RunResult:
        env = self.env
        for p in range(len(self.sc.processes)):  # slots of listen events start down
            for fid in self.p_fetchers[p]:
                self.f_idle_since[fid] = 0.0
                self.idle[p].append(fid)
        if len(self.rates) and self.rates.sum() > 0:
            self._refill(0.0)
        self._start_trace()
        self._schedule_events()
        ev = Timeout(env, 0.0)
        ev.callbacks.append(self._sample)
        if self.sc.stranded_sample_s:
            ev = Timeout(env, 0.0)
            ev.callbacks.append(self._stranded_sampler)
        try:
            env.run(until=self.duration)
        finally:
            if self.sc.trace is not None:
                self._trace_file.close()
        self._sample_stranded(self.duration)
        self._finish()
        in_queues = {self.queue_names[i]: len(d) for i, d in enumerate(self.queues) if d}
        routed = set(self.route_table) | set(self._mix or ())
        unserved = [q for i, q in enumerate(self.queue_names)
                    if not self.cfg_listeners[i] and (self.queues[i] or i in routed)]
        counters = {
            "arrived": self.arrived,
            "succeeded": self.succeeded,
            "failed_executions": self.failed_runs,
            "retried": self.retried,
            "dead": self.dead,
            "lost": self.lost,
            "pushed_back": self.pushed_back,
            "running": self.running,
            "retrying": len(self.retry_heap),
            "in_queues": sum(len(d) for d in self.queues),
            "moved": self.moved,
            "moved_retries": self.moved_retries,
            "kept_unknown": self.kept_unknown,
        }
        return RunResult(
            duration=self.duration,
            seed=self.seed,
            queues=self.queue_names,
            queue_shards=[self.shards[s] for s in self.queue_shard],
            shards=self.shards,
            processes=self.procs,
            recorder=self.rec,
            counters=counters,
            in_queues=in_queues,
            unserved_queues=unserved,
            events_applied=self.events_applied,
            stranded=self.stranded_log,
            event_log=self.event_log,
        )

    def _finish(self) -> None:
        now = self.duration
        for p in range(len(self.procs)):
            for fid in self.idle[p]:
                t0 = self.f_idle_since[fid]
                if now - t0 >= self.sc.fetch_timeout_s:
                    self.idle_log.append((p, t0, now))
            for fid in self.p_fetchers[p]:
                current = self.f_job[fid]
                if current is not None:
                    job, start, _ = current
                    self.rec.add_busy(p, start, now)
                    self.rec.add_censored_wait(job[0], job[1], start - job[2])
        self._flush()
        for d in self.queues:
            for job in d:
                self.rec.add_censored_wait(job[0], job[1], now - job[2])
        self.rec.finish()


def simulate(scenario: Scenario, *, duration: float, seed: int = 1,
             bin_width: float | None = None) -> RunResult:
    """Run ``scenario`` for ``duration`` seconds and return counters and statistics."""
    return _Model(scenario, duration=duration, seed=seed, bin_width=bin_width).run()


def trace_classes(path: str | Path) -> set[str]:
    """Worker classes named in a trace file (streamed, for validation)."""
    with open(path, newline="") as fh:
        return {row["worker_class"].strip() for row in csv.DictReader(fh)}


def mmc_scenario(c: int, lam: float, mu: float) -> Scenario:
    """The M/M/c fleet: one queue, one process of ``c`` threads, exponential service."""
    return Scenario(
        classes=(JobClass("MmcWorker", "high", lam, ServiceTime("exponential", 1.0 / mu)),),
        processes=(Process("mmc", "node-1", ("mmc",), c),),
        routes={"MmcWorker": ("mmc", None)},
    )


