"""The state one run shares between the engine's parts (declarations only, no behaviour).

The run is one object (:class:`simulator.sim.engine._Model`) assembled from the parts in
``arrivals``, ``fetchers``, ``retries``, ``fleet_events``, ``redis_failover`` and
``sampling``; each part is a class of its own module and reads and writes the attributes
declared here.  Indices, not
objects, name queues (``q``), processes (``p``), fetchers (``fid``), classes and shards.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
import simpy

from .jobs import Job, ProcState
from .kernel import Tick
from .model import FleetEvent, JobClass, Process, Scenario, ServiceTime
from .stats import FleetRecorder

#: One execution: class, queue, process, enqueued, started, ended, flags (1 handed, 2 failed),
#: taken (when its thread took it: busy from then).
Record = tuple[int, int, int, float, float, float, int, float]


class ModelState:
    # -- the run
    sc: Scenario
    duration: float
    seed: int
    env: simpy.Environment
    at: Callable[[float, Tick], None]  # kernel.scheduler(env)
    _evq: list[Any]  # kernel.event_queue(env): the hot paths push onto it themselves
    _eid: Iterator[int]
    rng: np.random.Generator  # arrival times and classes
    svc_rng: np.random.Generator  # first attempts' service times
    fail_rng: np.random.Generator  # first attempts' failures
    retry_rng: np.random.Generator  # retried attempts' service times
    retry_rnd: random.Random  # retry delays, retried attempts' failures
    poll_rnd: random.Random  # the scheduled-set pollers
    fetch_rnd: random.Random  # weighted fetch order
    trace_rnd: random.Random  # replayed jobs' failures
    _mix_rnd: random.Random
    rec: FleetRecorder

    # -- classes, queues, routes
    classes: list[JobClass]
    class_index: dict[str, int]
    queue_names: list[str]
    queue_index: dict[str, int]
    queue_shard: list[int]
    shards: list[str]
    route_table: list[int]
    route_known: list[bool]
    _tables: dict[int, list[int]]
    _known: dict[int, list[bool]]
    _mix: list[int] | None
    _mix_known: list[bool]
    _share: float

    # -- queues (Redis lists) and the retry set
    queues: list[deque[Job]]
    nonempty: set[int]
    retry_heap: list[tuple[float, int, Job]]
    _retry_seq: int
    _polling: bool  # some job can fail: the processes' pollers run
    # Overheads (simulator.sim.overheads): pushes not yet poppable, as (visible at, queue, job)
    # in push order, and the one event for the oldest of them.
    _visible: float  # enqueue_visible_s
    _hold: float  # fetch_round_trip_s + dispatch_s: a taken job's execution starts this later
    _dispatch_cpu: float  # dispatch_cpu_s: Sidekiq's own CPU per job, added to the CPU part
    _transit: deque[tuple[float, int, Job]]
    _transit_ev: Tick
    _transit_cbs: list[Callable[[Tick], None]]
    _registered: int  # processes registered in Redis (up or quiet): the pollers' count

    # -- processes and their fetchers (threads)
    procs: list[Process]
    listeners: list[list[int]]
    p_pos: list[dict[int, int]]
    p_weight: list[dict[int, int] | None]
    p_fetchers: list[list[int]]
    p_state: list[ProcState]
    p_busy: list[int]
    p_restart_gen: list[int]
    p_successors: dict[int, list[int]]
    node_procs: dict[str, list[int]]
    nodes: set[str]
    _event_slots: dict[int, list[int]]
    _boot: dict[int, float]
    f_proc: list[int]
    f_job: list[Job | None]
    f_start: list[float]
    f_handed: list[int]
    f_idle_since: list[float]
    f_ev: list[Tick]
    idle: list[deque[int]]
    up_listeners: list[int]
    cfg_listeners: list[int]
    _done_cbs: list[Callable[[Tick], None]]
    f_wait: list[float]  # the waiting part still to come after a job's CPU part
    f_left: list[float]  # CPU seconds left of the job's CPU part
    f_acq: list[bool]  # the thread has held the GVL for its job (the job has started)
    f_taken: list[float]  # when the thread took its job (busy from then)

    # -- CPU: a GVL per process, cores per node (simulator.sim.cpu)
    cls_cpu: list[float]  # per class: share of the execution that runs Ruby
    g_hold: list[int]  # per process: the thread holding the GVL, or -1
    g_q: list[deque[int]]  # the threads waiting for it, first come first served
    g_t: list[float]  # when the holder's progress was last counted
    g_dl: list[float]  # when the holder's time slice ends (inf: nobody waits)
    g_rate: list[float]  # the process's share of one core (1, or node cores / busy processes)
    g_ev: list[Tick]  # the pending GVL event (others are stale)
    g_due: list[float]  # its time (inf: none)
    g_busy: list[float]  # core-seconds used
    g_solo: list[bool]  # the holder runs alone, planned as if no GVL (no GVL event)
    g_solo_end: list[float]  # when that holder's CPU part ends
    _gvl_cbs: list[Callable[[Tick], None]]
    p_host: list[int]  # node index with a core limit, -1: the node never limits
    h_cores: list[float]
    h_active: list[int]  # processes of the node using a core
    h_rate: list[float]
    h_procs: list[list[int]]

    # -- arrivals
    rates: np.ndarray
    shapes: np.ndarray
    has_shape: bool
    cls_dist: np.ndarray
    dists: list[ServiceTime]
    cls_fail: np.ndarray
    _arr_ev: Tick
    _arr_cbs: list[Callable[[Tick], None]]
    _a_t: list[float]
    _a_cls: list[int]
    _a_svc: list[float]
    _a_fail: list[bool]
    _a_i: int
    _a_n: int
    _a_full: bool
    _a_boundary: float
    _a_shift: float  # enqueue_visible_s when arrivals fire as their push becomes visible, else 0
    _trace_file: IO[str]
    _trace_rows: Any

    # -- measurements and counters
    records: list[Record]
    idle_log: list[tuple[int, float, float]]
    stranded_log: list[tuple[float, int, int]]
    event_log: list[tuple[float, str, str]]
    events_applied: list[str]
    arrived: int
    succeeded: int
    failed_runs: int
    retried: int
    dead: int
    lost: int
    pushed_back: int
    polls: int
    running: int
    moved: int
    moved_retries: int
    kept_unknown: int

    # -- what one part asks of another (defined by the part that owns it)
    def _push(self, q: int, job: Job, now: float, front: bool = False) -> None: ...
    def _enqueue(self, q: int, job: Job, now: float) -> None: ...
    def _unrouted(self, job: Job) -> int:
        raise NotImplementedError
    def _fetch(self, fid: int, now: float) -> None: ...
    def _start(self, fid: int, job: Job, now: float, handed: int) -> None: ...
    def _complete(self, fid: int, now: float) -> None: ...
    def _gvl_enter(self, p: int, fid: int, cpu: float, wait: float, now: float) -> bool:
        raise NotImplementedError
    def _gvl_clear(self, p: int, now: float) -> None: ...
    def _gvl_settle(self, now: float) -> None: ...
    def _gvl_waiting(self, p: int) -> list[int]:
        raise NotImplementedError
    def _failed(self, job: Job, now: float) -> None: ...
    def _restart_done(self, p: int, now: float) -> None: ...
    def _poller_started(self, p: int) -> None: ...
    def _sample_stranded(self, now: float) -> None: ...
    def _flush(self) -> None: ...
    def _failover_scheduled(self, event: FleetEvent) -> None: ...
    def _failover_begin(self, event: FleetEvent, now: float) -> None: ...
