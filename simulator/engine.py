"""The fleet model: a SimPy discrete-event simulation of a Sidekiq fleet.

What is modelled (semantics.md section 6):

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
  routing change.

How it stays fast: there is no SimPy process per job.  A job is a small tuple; each arrival
and each completion is one SimPy event whose callback does the work (enqueue or hand the job
straight to the longest-waiting idle fetcher, start the next job).  Random numbers are drawn
in numpy batches.  Statistics are streamed into fixed-size histograms (:mod:`simulator.stats`).
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

from .stats import FleetRecorder

__all__ = [
    "URGENCIES",
    "FleetEvent",
    "JobClass",
    "ProcessSpec",
    "RedisCost",
    "RunResult",
    "Scenario",
    "ServiceTime",
    "SloTargets",
    "TraceSpec",
    "retry_delay",
    "simulate",
]

#: Urgencies in result order; a worker without one counts as ``low`` (GitLab's default).
URGENCIES = ("high", "low", "throttled")

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


@dataclass(frozen=True)
class ServiceTime:
    """Execution time distribution of a job class (seconds)."""

    kind: str  # exponential | lognormal | deterministic | empirical
    mean: float
    sigma: float = 0.0  # lognormal: sigma of the underlying normal
    samples: tuple[float, ...] = ()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "exponential":
            return rng.exponential(self.mean, n)
        if self.kind == "deterministic":
            return np.full(n, self.mean)
        if self.kind == "lognormal":
            mu = math.log(self.mean) - self.sigma**2 / 2
            return rng.lognormal(mu, self.sigma, n)
        if self.kind == "empirical":
            return rng.choice(np.asarray(self.samples, dtype=float), n)
        raise ValueError(f"unknown service time distribution {self.kind!r}")


@dataclass(frozen=True)
class JobClass:
    """A worker class with its load."""

    key: str
    urgency: str = "low"
    rate: float = 0.0  # jobs per second before the hourly shape
    service: ServiceTime = ServiceTime("exponential", 1.0)
    failure_probability: float = 0.0
    #: 24 hourly multipliers for this class (None: the scenario's shape).
    shape: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ProcessSpec:
    """One Sidekiq process: its node, queues in fetch order (repeated = weight), threads."""

    name: str
    node: str
    queues: tuple[str, ...]
    concurrency: int
    #: The queue group (``sidekiq_queue_groups`` entry) the process runs.
    group: str = ""

    @property
    def weights(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for q in self.queues:
            out[q] = out.get(q, 0) + 1
        return out

    @property
    def strict(self) -> bool:
        return all(w == 1 for w in self.weights.values())


@dataclass(frozen=True)
class RedisCost:
    """Redis CPU per command (microseconds), semantics.md section 8 as defaults."""

    handoff_us: float = 47.0
    handoff_per_key_us: float = 0.335
    idle_cycle_us: float = 28.0
    idle_cycle_per_key_us: float = 0.35
    waiting_us: float = 5.5
    waiting_per_key_us: float = 0.04


@dataclass(frozen=True)
class SloTargets:
    """GitLab's Sidekiq service targets (semantics.md section 7), seconds."""

    queueing: Mapping[str, float] = field(
        default_factory=lambda: {"high": 10.0, "low": 60.0, "throttled": math.inf}
    )
    execution: Mapping[str, float] = field(
        default_factory=lambda: {"high": 10.0, "low": 300.0, "throttled": 300.0}
    )
    #: Share of jobs that must start within the queueing target (GitLab.com's apdex target).
    queueing_apdex: float = 0.999
    #: Share of jobs that must finish within the execution target (a project default).
    execution_apdex: float = 0.99


@dataclass(frozen=True)
class TraceSpec:
    """A CSV with columns ``time,worker_class,duration`` (seconds from the start)."""

    path: str


@dataclass(frozen=True)
class FleetEvent:
    """Something that happens to the fleet at time ``at`` (seconds)."""

    at: float
    action: str  # node_down | node_up | restart | routing
    node: str | None = None
    timeout_s: float = 25.0
    boot_s: float = 10.0
    #: For ``routing``: class key -> (queue, shard) after the change.
    routes: Mapping[str, tuple[str, str | None]] | None = None


@dataclass(frozen=True)
class Scenario:
    """Everything one run needs, as plain picklable data."""

    classes: tuple[JobClass, ...]
    processes: tuple[ProcessSpec, ...]
    #: class key -> (queue, shard); shard None is the default Redis.
    routes: Mapping[str, tuple[str, str | None]]
    shape: tuple[float, ...] | None = None
    start_hour: float = 0.0
    trace: TraceSpec | None = None
    events: tuple[FleetEvent, ...] = ()
    redis: RedisCost = RedisCost()
    targets: SloTargets = SloTargets()
    max_retries: int = 25
    poll_interval_s: float = 5.0
    fetch_timeout_s: float = 2.0


def retry_delay(count: int, rnd: random.Random) -> float:
    """Sidekiq 8's delay after the failure numbered ``count`` (0-based)."""
    return count**4 + 15 + rnd.randrange(10 * (count + 1))


@dataclass
class RunResult:
    """Counters and streamed statistics of one run."""

    duration: float
    seed: int
    queues: list[str]
    queue_shards: list[str]
    shards: list[str]
    processes: list[ProcessSpec]
    recorder: FleetRecorder
    counters: dict[str, int]
    in_queues: dict[str, int]
    unserved_queues: list[str]
    events_applied: list[str]


class _Model:
    """One simulation run.  Not reusable: build, ``run()``, read the result."""

    def __init__(self, scenario: Scenario, *, duration: float, seed: int,
                 bin_width: float | None) -> None:
        self.sc = scenario
        self.duration = float(duration)
        self.seed = seed
        ss = np.random.SeedSequence(seed)
        arr_ss, misc_ss = ss.spawn(2)
        self.rng = np.random.default_rng(arr_ss)
        self.rnd = random.Random(int(misc_ss.generate_state(1)[0]))
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
        route_tables = [scenario.routes] + [
            e.routes for e in scenario.events if e.action == "routing" and e.routes
        ]
        for table in route_tables:
            for queue, shard in table.values():
                queue_shard.setdefault(queue, shard or "default")
        for proc in scenario.processes:
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

        # Processes and fetchers.
        procs = list(scenario.processes)
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
        self.p_state = [0] * len(procs)  # 0 up, 1 quiet, 2 down
        self.p_busy = [0] * len(procs)
        self.p_restart_gen = [0] * len(procs)

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
            if event.node is not None and event.node not in self.node_procs:
                raise ValueError(f"event names unknown node {event.node!r}")
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
            self.route_table = self._tables[id(event.routes)]
        self.events_applied.append(f"{now:.0f}s {event.action} {event.node or ''}".strip())

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
        self.p_state[p] = 2
        self.p_restart_gen[p] += 1

    def _up(self, p: int, now: float) -> None:
        if self.p_state[p] == 0:
            return
        self.p_state[p] = 0
        self.p_restart_gen[p] += 1
        for fid in self.p_fetchers[p]:
            if self.f_job[fid] is None:
                self._fetch(fid, now)

    def _quiet(self, p: int, now: float, timeout: float, boot: float) -> None:
        if self.p_state[p] != 0:
            return
        self.p_state[p] = 1
        self.p_restart_gen[p] += 1
        gen = self.p_restart_gen[p]
        self._boot = getattr(self, "_boot", {})
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
        self.p_state[p] = 2
        self.p_restart_gen[p] += 1
        self._schedule_up(p, now + self._boot.get(p, 0.0))

    def _schedule_up(self, p: int, at: float) -> None:
        gen = self.p_restart_gen[p]

        def up(_ev: object) -> None:
            if self.p_restart_gen[p] == gen:
                self._up(p, self.env.now)

        ev = Timeout(self.env, max(0.0, at - self.env.now))
        ev.callbacks.append(up)

    # ----------------------------------------------------------------- sampling and results
    def _sample(self, _ev: object) -> None:
        now = self.env._now
        self.rec.sample_backlog(now, [len(d) for d in self.queues], len(self.retry_heap))
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
        for p in range(len(self.procs)):
            for fid in self.p_fetchers[p]:
                self.f_idle_since[fid] = 0.0
                self.idle[p].append(fid)
        if len(self.rates) and self.rates.sum() > 0:
            self._refill(0.0)
        self._start_trace()
        self._schedule_events()
        ev = Timeout(env, 0.0)
        ev.callbacks.append(self._sample)
        try:
            env.run(until=self.duration)
        finally:
            if self.sc.trace is not None:
                self._trace_file.close()
        self._finish()
        in_queues = {self.queue_names[i]: len(d) for i, d in enumerate(self.queues) if d}
        unserved = [q for i, q in enumerate(self.queue_names)
                    if not self.listeners[i] and (self.queues[i] or i in set(self.route_table))]
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
        processes=(ProcessSpec("mmc", "node-1", ("mmc",), c),),
        routes={"MmcWorker": ("mmc", None)},
    )


