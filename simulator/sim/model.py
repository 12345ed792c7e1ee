"""What a simulation run is given: job classes, Sidekiq processes, routes, events, targets.

The description of a fleet and its load, apart from the mechanics that run it
(:mod:`simulator.sim.engine`): plain, picklable, frozen data. A Sidekiq process is the
routing layer's :class:`~simulator.routing.queue_groups.Process` (placed on a node).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..routing.queue_groups import Process
from .overheads import Overheads

__all__ = [
    "ACTIONS",
    "DEFAULT_CPU_SHARE",
    "DEFAULT_CPU_SHARE_CPU_BOUND",
    "URGENCIES",
    "FleetEvent",
    "JobClass",
    "Overheads",
    "Process",
    "RedisCost",
    "Scenario",
    "ServiceTime",
    "SloTargets",
    "TraceSpec",
    "default_cpu_share",
    "retry_delay",
]

#: Urgencies in result order; a worker without one counts as ``low`` (GitLab's default).
URGENCIES = ("high", "low", "throttled")

#: ``cpu_share`` of a worker class whose workload gives none (docs/simulator.md, "CPU"):
#: GitLab declares a worker ``resource_boundary: cpu`` when it spends more than a third of its
#: execution on a CPU (``cpu_s / duration_s``) -- such workers get half; every other worker
#: spends less than a third, and GitLab's own sizing (20 threads in a process that gets about
#: one core) only works when a busy process's threads keep the GVL below saturation, which at
#: half the threads busy means a tenth or less -- they get a tenth.
DEFAULT_CPU_SHARE = 0.1
DEFAULT_CPU_SHARE_CPU_BOUND = 0.5


def default_cpu_share(resource_boundary: str | None) -> float:
    """The share of a worker's execution that runs Ruby when the workload does not say."""
    return DEFAULT_CPU_SHARE_CPU_BOUND if resource_boundary == "cpu" else DEFAULT_CPU_SHARE


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
    #: Share of the execution time that runs Ruby on a core (0-1); the rest is waiting
    #: (database, Gitaly, HTTP, Redis).  0 here (threads as independent servers, M/M/c);
    #: workload files default by the worker's resource boundary (:func:`default_cpu_share`).
    cpu_share: float = 0.0


@dataclass(frozen=True)
class RedisCost:
    """Redis CPU per command (microseconds), docs/behaviour.md §8 as defaults."""

    handoff_us: float = 47.0
    handoff_per_key_us: float = 0.335
    idle_cycle_us: float = 28.0
    idle_cycle_per_key_us: float = 0.35
    waiting_us: float = 5.5
    waiting_per_key_us: float = 0.04


@dataclass(frozen=True)
class SloTargets:
    """GitLab's Sidekiq service targets (docs/behaviour.md §7), seconds."""

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


#: Event actions the engine knows.
ACTIONS = ("node_down", "node_up", "restart", "routing", "listen", "move_jobs",
           "redis_failover")


@dataclass(frozen=True)
class FleetEvent:
    """Something that happens to the fleet at time ``at`` (seconds).

    * ``node_down`` / ``node_up`` / ``restart``: the processes ``node`` runs now;
    * ``routing``: ``routes`` for a ``share`` of the arrivals (producers switch one at a time:
      share k/P).  Share 1 puts ``routes`` fully in force; below 1 the other arrivals keep the
      routes fully in force before (the scenario's, or the last share-1 routing event's);
    * ``listen``: ``node``'s processes restart gracefully (quiet, finish running jobs within
      ``timeout_s``, push the rest back) and come back after ``boot_s`` as ``processes``
      (process i replaces process i; extra ones start after ``boot_s``, missing ones stop);
    * ``move_jobs``: every job waiting in a queue that is not a destination of the routes in
      force (or of ``routes``, when given) moves, oldest first, to the newest end of its
      class's queue under those routes; jobs in the retry set get their queue rewritten;
      jobs of classes the routes do not name stay where they are;
    * ``redis_failover``: the Redis ``shard`` (None: ``default``) is unreachable for
      ``downtime_s`` (its primary fails; Sentinel promotes a replica and the clients
      reconnect): nothing is pushed to, fetched from or retried on it meanwhile; the jobs
      pushed in the last ``lose_last_s`` seconds before the failure were not replicated and
      are lost; producers' pushes during the downtime are lost, or with ``producer_retry``
      pushed again when it ends (simulator.sim.redis_failover).
    """

    at: float
    action: str  # one of ACTIONS
    node: str | None = None
    timeout_s: float = 25.0
    boot_s: float = 10.0
    #: For ``routing`` (and optionally ``move_jobs``): class key -> (queue, shard).
    routes: Mapping[str, tuple[str, str | None]] | None = None
    #: For ``routing``: the share (0..1) of arrivals that use ``routes``.
    share: float = 1.0
    #: For ``listen``: the node's processes after the change (their ``node`` is ``node``).
    processes: tuple[Process, ...] = ()
    #: A label for reports (``fleetsim migrate`` names the phase step).
    label: str = ""
    #: For ``redis_failover``: the shard that fails (None: ``default``), how long no client
    #: reaches it, the unreplicated seconds of writes lost, and whether producers retry a
    #: push that failed (after the downtime) or lose the job (Sidekiq's client raises).
    shard: str | None = None
    downtime_s: float = 0.0
    lose_last_s: float = 0.0
    producer_retry: bool = False


@dataclass(frozen=True)
class Scenario:
    """Everything one run needs, as plain picklable data."""

    classes: tuple[JobClass, ...]
    processes: tuple[Process, ...]
    #: class key -> (queue, shard); shard None is the default Redis.
    routes: Mapping[str, tuple[str, str | None]]
    shape: tuple[float, ...] | None = None
    start_hour: float = 0.0
    trace: TraceSpec | None = None
    events: tuple[FleetEvent, ...] = ()
    redis: RedisCost = RedisCost()
    targets: SloTargets = SloTargets()
    max_retries: int = 25
    #: Sidekiq's ``average_scheduled_poll_interval``: the whole cluster polls about this often
    #: (each process's poller sleeps about processes x this; simulator.sim.retries).
    poll_interval_s: float = 5.0
    #: With 10 or more processes a poller sleeps ``processes x poll_interval_s x rand x F``:
    #: F = 1 in Sidekiq 6.4 to 8.0.9 (GitLab's 7.x, the lab's 6.4 and 7.3), 2 from 8.0.10.
    poll_large_cluster_factor: float = 1.0
    fetch_timeout_s: float = 2.0
    #: Sample stranded jobs every this many seconds (None: once per statistics time bin).
    #: They are also sampled after every event and at the end.
    stranded_sample_s: float | None = None
    #: Cores per node (``sidekiq_cpus``) that its processes' Ruby threads share; a node not
    #: listed has a core for each of its processes (simulator.sim.cpu).
    node_cpus: Mapping[str, float] = field(default_factory=dict)
    #: Fetch round trip, dispatch and enqueue-to-visible time per job (simulator.sim.overheads:
    #: the defaults and what each means); ``Overheads.zero()`` is the ideal queue.
    overheads: Overheads = field(default_factory=Overheads)


def retry_delay(count: int, rnd: random.Random) -> float:
    """Sidekiq 8's delay after the failure numbered ``count`` (0-based)."""
    return count**4 + 15 + rnd.randrange(10 * (count + 1))
