"""The fleet model: a SimPy discrete-event simulation of a Sidekiq fleet.

What is modelled (docs/behaviour.md §6):

* arrivals: Poisson per worker class (piecewise-constant rates following hourly multipliers)
  plus an optional trace replay; each job is routed to its queue (a Redis list on a shard);
* every Sidekiq thread is a fetcher looping on ``BRPOP q1 q2 ... 2``: when data is waiting it
  pops from the first non-empty queue in strict order (no weights) or in a weighted shuffle
  (weighted sampling without replacement, P(first = q) = w_q / sum w); otherwise it blocks, and
  blocked fetchers are served first come first served when a job is pushed;
* execution: a CPU part (``cpu_share`` of the service time) on the process's GVL, shared with
  its other threads' CPU parts, and the node's cores shared by its busy processes
  (:mod:`simulator.sim.cpu`), then the waiting part;
* then success or failure; a failure is retried after
  ``count**4 + 15 + rand(10 * (count + 1))`` seconds (Sidekiq 8), at most 25 times, then the
  job is dead; every running process's scheduled-set poller pushes due retries back, each
  sleeping about (processes x 5 s), so the cluster polls about every 5 s;
* Redis CPU per shard from a per-command cost model (section 8);
* events: node down / up, graceful restart (quiet, wait ``timeout``, push back the rest),
  routing change (for a share of the producers: a rolling switch), ``listen`` (a node's
  processes restart gracefully with new queue lists), ``move_jobs`` (waiting jobs move from
  queues nothing routes to any more, as ``sidekiq_migrate_jobs`` does), ``redis_failover``
  (a Redis shard unreachable for a while, the unreplicated writes lost);
* stranded jobs: jobs waiting in a queue that no up, non-quiet process listens to, sampled
  over time.

How it stays fast: there is no SimPy process per job.  A job is a small slots object
(:class:`~simulator.sim.jobs.Job`); each arrival and each completion is one SimPy event whose
callback does the work (enqueue or hand the job straight to the longest-waiting idle fetcher,
start the next job), on a reusable event (:mod:`simulator.sim.kernel`).  Random numbers are
drawn in numpy batches.  Statistics are streamed into fixed-size histograms
(:mod:`simulator.sim.stats`).

How it is built: this module sets a run up (queues, processes, fetchers, cost tables) and
runs it; the mechanics are one part per module, sharing the run's state
(:mod:`simulator.sim.state`): :mod:`~simulator.sim.arrivals`, :mod:`~simulator.sim.fetchers`
(queues and fetchers), :mod:`~simulator.sim.cpu` (GVL and cores),
:mod:`~simulator.sim.retries`, :mod:`~simulator.sim.fleet_events` (events and a process's
life), :mod:`~simulator.sim.redis_failover` and :mod:`~simulator.sim.sampling`.
"""

from __future__ import annotations

import csv
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simpy
from simpy.events import Timeout

from .arrivals import Arrivals
from .cpu import Cpu
from .fetchers import Fetchers
from .fleet_events import FleetEvents
from .jobs import DOWN, UP, Job, ProcState
from .kernel import Tick, event_queue, scheduler
from .model import (
    ACTIONS,
    URGENCIES,
    JobClass,
    Overheads,
    Process,
    Scenario,
    ServiceTime,
)
from .redis_failover import FailoverResult, RedisFailovers
from .retries import Retries
from .sampling import Sampling
from .stats import FleetRecorder

__all__ = ["RunResult", "mmc_scenario", "simulate", "trace_classes"]


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
    #: Per process: core-seconds its Ruby threads used (at most the run's duration: one GVL).
    cpu_seconds: list[float] = field(default_factory=list)
    #: Per ``redis_failover`` event, in time order: what it cost (simulator.sim.redis_failover).
    failovers: list[FailoverResult] = field(default_factory=list)

    @property
    def stranded_max(self) -> int:
        return max((s for _, s, _ in self.stranded), default=0)

    @property
    def stranded_final(self) -> int:
        return self.stranded[-1][1] if self.stranded else 0


class _Model(Arrivals, Fetchers, Cpu, Retries, FleetEvents, RedisFailovers, Sampling):
    """One simulation run.  Not reusable: build, ``run()``, read the result."""

    def __init__(self, scenario: Scenario, *, duration: float, seed: int,
                 bin_width: float | None) -> None:
        self.sc = scenario
        self.duration = float(duration)
        self.seed = seed
        # One random stream per purpose, each its own child of the seed (common random
        # numbers): the arrivals (times and classes), their service times and their failures
        # are the same whatever the fleet, because nothing the fleet does draws from them.
        # What depends on the fleet's behaviour (a retried attempt, the poller, a weighted
        # fetch, a rolling switch's producer) draws from streams of its own.
        (arr_ss, svc_ss, fail_ss, retry_ss, poll_ss, fetch_ss, mix_ss,
         trace_ss) = np.random.SeedSequence(seed).spawn(8)

        def stdlib(child: np.random.SeedSequence) -> random.Random:
            return random.Random(int(child.generate_state(1)[0]))

        self.rng = np.random.default_rng(arr_ss)
        self.svc_rng = np.random.default_rng(svc_ss)
        self.fail_rng = np.random.default_rng(fail_ss)
        retry_np, retry_std = retry_ss.spawn(2)
        self.retry_rng = np.random.default_rng(retry_np)  # a retried attempt's service time
        self.retry_rnd = stdlib(retry_std)  # retry delays, a retried attempt's failure
        self.poll_rnd = stdlib(poll_ss)
        self.fetch_rnd = stdlib(fetch_ss)
        self.trace_rnd = stdlib(trace_ss)  # a replayed job's failure
        # Which producer (old or new routes) an arrival comes from during a rolling switch.
        self._mix_rnd = stdlib(mix_ss)
        self.env = simpy.Environment()
        self.at = scheduler(self.env)
        self._evq, self._eid = event_queue(self.env)

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
        self.f_job = [None] * nf
        self.f_start = [0.0] * nf
        self.f_taken = [0.0] * nf
        self.f_handed = [0] * nf
        self.f_idle_since = [0.0] * nf
        self.f_ev = [Tick(fid) for fid in range(nf)]
        self._done_cbs = [self._on_done]
        self._arr_cbs = [self._on_arrival]
        self._arr_ev = Tick()
        self.idle: list[deque[int]] = [deque() for _ in procs]
        overheads = scenario.overheads
        self._visible = overheads.enqueue_visible_s
        self._hold = overheads.hold_s
        self._dispatch_cpu = overheads.dispatch_cpu_s
        self._transit = deque()
        self._transit_ev = Tick()
        self._transit_cbs = [self._on_visible]
        self._setup_cpu(scenario, classes, procs)
        n_initial = len(scenario.processes)
        # Slots of listen events start down.
        self.p_state: list[ProcState] = [UP] * n_initial + [DOWN] * (len(procs) - n_initial)
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

        self.queues: list[deque[Job]] = [deque() for _ in range(nq)]
        self.nonempty: set[int] = set()
        self.retry_heap = []
        self._retry_seq = 0
        self._registered = n_initial

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
            hold_s=self._hold,
        )
        self.records = []
        self.idle_log: list[tuple[int, float, float]] = []
        self.half = 1.0 / scenario.fetch_timeout_s

        self.arrived = 0
        self.succeeded = 0
        self.failed_runs = 0
        self.retried = 0
        self.dead = 0
        self.lost = 0
        self.pushed_back = 0
        self.polls = 0
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
        self._polling = bool(self.cls_fail.any())
        self._a_t: list[float] = []
        self._a_cls: list[int] = []
        self._a_svc: list[float] = []
        self._a_fail: list[bool] = []
        self._a_i = 0
        self._a_boundary = math.inf
        self._a_n = 0
        self._a_full = False
        self._a_shift = self._visible if self._fold_transit() else 0.0
        self._setup_failovers()

    def _setup_cpu(self, scenario: Scenario, classes: list[JobClass],
                   procs: list[Process]) -> None:
        """The CPU model's state (simulator.sim.cpu): shares per class, a GVL per process,
        cores per node (only nodes with fewer cores than processes can ever limit)."""
        for c in classes:
            if not 0.0 <= c.cpu_share <= 1.0:
                raise ValueError(f"cpu_share of {c.key} is {c.cpu_share!r}, not between 0 and 1")
        self.cls_cpu = [float(c.cpu_share) for c in classes]
        n = len(procs)
        nf = len(self.f_proc)
        self.f_wait = [0.0] * nf
        self.f_left = [0.0] * nf
        self.f_acq = [True] * nf
        self.g_hold = [-1] * n
        self.g_q = [deque() for _ in range(n)]
        self.g_t = [0.0] * n
        self.g_dl = [math.inf] * n
        self.g_rate = [1.0] * n
        self.g_ev = [Tick(p) for p in range(n)]
        self.g_due = [math.inf] * n
        self.g_busy = [0.0] * n
        self.g_solo = [False] * n
        self.g_solo_end = [0.0] * n
        self._gvl_cbs = [self._on_gvl]
        per_node: dict[str, list[int]] = {}
        for p, proc in enumerate(procs):
            per_node.setdefault(proc.node, []).append(p)
        self.p_host = [-1] * n
        self.h_cores, self.h_active, self.h_rate, self.h_procs = [], [], [], []
        for node, cores in scenario.node_cpus.items():
            if isinstance(cores, bool) or not cores > 0 or not math.isfinite(cores):
                raise ValueError(f"node {node!r} has {cores!r} cores: give a positive number")
            mine = per_node.get(node, [])
            if cores >= len(mine):
                continue  # never more busy processes than cores
            h = len(self.h_cores)
            self.h_cores.append(float(cores))
            self.h_active.append(0)
            self.h_rate.append(1.0)
            self.h_procs.append(mine)
            for p in mine:
                self.p_host[p] = h

    def run(self) -> RunResult:
        env = self.env
        for p in range(len(self.sc.processes)):  # slots of listen events start down
            for fid in self.p_fetchers[p]:
                self.f_idle_since[fid] = 0.0
                self.idle[p].append(fid)
        if len(self.rates) and self.rates.sum() > 0:
            self._refill(0.0)
        self._start_trace()
        self._start_pollers()
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
        self._pushed_not_visible(self.duration)
        self._sample_stranded(self.duration)
        if self._failovers:
            self._failover_finish(self.duration)
        self._finish()
        in_queues = {self.queue_names[i]: len(d) for i, d in enumerate(self.queues) if d}
        for _, q, _job in self._transit:  # pushed, not poppable yet: in Redis for the producer
            name = self.queue_names[q]
            in_queues[name] = in_queues.get(name, 0) + 1
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
            "polls": self.polls,
            "running": self.running,
            "retrying": len(self.retry_heap),
            "in_queues": sum(len(d) for d in self.queues) + len(self._transit),
            "moved": self.moved,
            "moved_retries": self.moved_retries,
            "kept_unknown": self.kept_unknown,
            # Redis failovers: jobs delivered again (run twice), and pushes the producers
            # still keep at the end because their shard is down.
            "duplicated": self.duplicated,
            "held_by_producers": self.held_by_producers,
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
            cpu_seconds=list(self.g_busy),
            failovers=[f.result for f in self._failovers],
        )



def simulate(scenario: Scenario, *, duration: float, seed: int = 1,
             bin_width: float | None = None) -> RunResult:
    """Run ``scenario`` for ``duration`` seconds and return counters and statistics."""
    return _Model(scenario, duration=duration, seed=seed, bin_width=bin_width).run()


def trace_classes(path: str | Path) -> set[str]:
    """Worker classes named in a trace file (streamed, for validation)."""
    with open(path, newline="") as fh:
        return {row["worker_class"].strip() for row in csv.DictReader(fh)}


def mmc_scenario(c: int, lam: float, mu: float) -> Scenario:
    """The M/M/c fleet: one queue, one process of ``c`` threads, exponential service, and no
    overhead (the queue Erlang C describes)."""
    return Scenario(
        classes=(JobClass("MmcWorker", "high", lam, ServiceTime("exponential", 1.0 / mu)),),
        processes=(Process.placed("mmc", "node-1", ("mmc",), c),),
        routes={"MmcWorker": ("mmc", None)},
        overheads=Overheads.zero(),
    )


