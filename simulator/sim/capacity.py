"""Capacity search: the fewest threads for a queue group that still meets every SLO target.

A candidate gives one queue group (an entry of ``sidekiq_queue_groups``, e.g. ``high-urgency``)
``processes`` Sidekiq processes of ``concurrency`` threads each; every other process stays as
the inventory has it.  Each candidate is simulated (same seeds for every candidate: common
random numbers make the comparison fair) and passes when, for every urgency with a queueing
target, the share of the group's queues' jobs that start within the target reaches the apdex
target (0.999 by default).  Candidates run in parallel on all local cores (a process pool), or
on an existing Dask cluster with ``scheduler=ADDRESS``.

The engine's CPU model (simulator.sim.cpu) makes the split matter: a process's threads share
one GVL and a node's processes its cores (``Scenario.node_cpus``), so 1 x 50 threads and
5 x 10 differ on work with a CPU part, and a candidate that puts more busy processes on a node
than it has cores is slowed down.  ``cpu`` is each candidate's GVL load.

A :class:`Policy` asks more of a recommendation than the queueing targets: a utilisation
ceiling (the group's threads busy at most that share of the time, on average, so a burst
still finds idle threads) and N+1 (the targets are still met with the busiest node of the
candidate lost: every process on it, of every group, removed, the same seeds run again).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import FleetError
from ..extras import require
from .engine import simulate
from .model import URGENCIES, Process, Scenario
from .progress import Progress, no_progress
from .shares import floor_ratio

__all__ = [
    "Candidate",
    "CandidateResult",
    "GroupCapacity",
    "NodeLoss",
    "Policy",
    "busiest_node",
    "candidates_for",
    "cheapest",
    "evaluate",
    "evaluate_with_policy",
    "search",
    "without_node",
]

DEFAULT_CONCURRENCY = (5, 10, 15, 20, 25, 30, 40, 50)


@dataclass(frozen=True)
class Candidate:
    group: str
    processes: int
    concurrency: int
    nodes: tuple[str, ...]  # where the group's processes go, round robin

    @property
    def threads(self) -> int:
        return self.processes * self.concurrency


@dataclass(frozen=True)
class Policy:
    """What a recommendation must also satisfy besides the queueing targets."""

    #: Highest mean busy share of the group's threads (e.g. 0.7); None: no ceiling.
    max_utilisation: float | None = None
    #: The targets must still be met with the candidate's busiest node lost.
    n_plus_one: bool = False

    def describe(self) -> tuple[list[str], list[str]]:
        """(what a recommendation was required to meet, what was not asked of it)."""
        checked = ["every queueing target (apdex) with all nodes up"]
        unchecked = []
        if self.max_utilisation is None:
            unchecked.append("a utilisation ceiling (--max-utilisation)")
        else:
            checked.append(f"the group's threads busy at most {self.max_utilisation:.0%} "
                           "on average")
        if self.n_plus_one:
            checked.append("every queueing target with the busiest node of the group lost")
        else:
            unchecked.append("losing a node (--n-plus-one)")
        return checked, unchecked


@dataclass(frozen=True)
class NodeLoss:
    """A candidate re-run without its busiest node (N+1)."""

    node: str
    met: bool
    worst_share: float
    worst_urgency: str | None
    backlog_end: int


@dataclass(frozen=True)
class CandidateResult:
    candidate: Candidate
    met: bool
    worst_share: float  # lowest share of jobs within the queueing target, over urgencies
    worst_urgency: str | None
    utilisation: float  # mean busy share of the group's threads
    backlog_end: int
    #: What the search asked of the candidate, and its N+1 run (None: not run).
    policy: Policy = Policy()
    node_loss: NodeLoss | None = None
    #: Mean share of one core each of the group's processes used for Ruby (simulator.sim.cpu):
    #: near 1 the process's GVL is never free, and more threads in it do not help.
    cpu: float = 0.0

    @property
    def within_ceiling(self) -> bool:
        ceiling = self.policy.max_utilisation
        return ceiling is None or self.utilisation <= ceiling

    @property
    def survives_node_loss(self) -> bool | None:
        """None when N+1 was not asked for."""
        if not self.policy.n_plus_one:
            return None
        return self.node_loss is not None and self.node_loss.met

    @property
    def passes(self) -> bool:
        """Meets the queueing targets and everything the policy asks."""
        return self.met and self.within_ceiling and self.survives_node_loss is not False


def group_processes(scenario: Scenario, group: str) -> list[int]:
    return [i for i, p in enumerate(scenario.processes) if p.group == group]


def apply_candidate(scenario: Scenario, cand: Candidate) -> Scenario:
    """The scenario with the group's processes replaced by the candidate's."""
    mine = group_processes(scenario, cand.group)
    if not mine:
        raise FleetError(f"no Sidekiq process runs queue group {cand.group!r}")
    template = scenario.processes[mine[0]]
    keep = [p for i, p in enumerate(scenario.processes) if i not in set(mine)]
    new = [
        Process.placed(f"{cand.group}#{k + 1}@{cand.nodes[k % len(cand.nodes)].split('.')[0]}",
                       cand.nodes[k % len(cand.nodes)], template.queues, cand.concurrency,
                       cand.group, fetch_order=template.fetch_order)
        for k in range(cand.processes)
    ]
    return replace(scenario, processes=tuple(keep + new))


def evaluate(scenario: Scenario, cand: Candidate, queues: tuple[str, ...], duration: float,
             seeds: tuple[int, ...]) -> CandidateResult:
    """Simulate one candidate (a top-level function: it runs in worker processes and on Dask)."""
    targets = scenario.targets
    worst, worst_u, utils, cpus, backlog = 1.0, None, [], [], 0
    for seed in seeds:
        run = simulate(scenario, duration=duration, seed=seed)
        rec = run.recorder
        qidx = [run.queues.index(q) for q in queues if q in run.queues]
        for u, name in enumerate(URGENCIES):
            if not math.isfinite(targets.queueing[name]):
                continue
            n = rec.n_qu[qidx, u].sum()
            if n == 0:
                continue
            share = rec.wok_qu[qidx, u].sum() / n
            if share < worst:
                worst, worst_u = float(share), name
        mine = [i for i, p in enumerate(run.processes) if p.group == cand.group]
        utils.append(float(rec.utilisation()[mine].mean()) if mine else 0.0)
        cpus.append(sum(run.cpu_seconds[i] for i in mine) / (len(mine) * duration)
                    if mine else 0.0)
        backlog = max(backlog, sum(run.in_queues.get(q, 0) for q in queues))
    return CandidateResult(cand, worst >= targets.queueing_apdex, worst, worst_u,
                           float(np.mean(utils)), backlog, cpu=float(np.mean(cpus)))


def busiest_node(scenario: Scenario, cand: Candidate) -> str:
    """The node whose loss hurts the candidate most: the most of the group's threads, then the
    most threads of any group (``scenario`` is the one :func:`apply_candidate` returns)."""
    group: dict[str, int] = {}
    every: dict[str, int] = {}
    for p in scenario.processes:
        every[p.node] = every.get(p.node, 0) + p.concurrency
        if p.group == cand.group:
            group[p.node] = group.get(p.node, 0) + p.concurrency
    return max(group, key=lambda n: (group[n], every[n]))


def without_node(scenario: Scenario, node: str) -> Scenario:
    """The scenario with ``node`` lost for the whole run: its processes (of every group) and the
    events that name it removed."""
    return replace(scenario,
                   processes=tuple(p for p in scenario.processes if p.node != node),
                   events=tuple(e for e in scenario.events if e.node != node))


def evaluate_with_policy(scenario: Scenario, cand: Candidate, queues: tuple[str, ...],
                         duration: float, seeds: tuple[int, ...],
                         policy: Policy = Policy()) -> CandidateResult:
    """:func:`evaluate`, then (N+1) the same seeds without the busiest node, for a candidate
    that passes everything else."""
    res = replace(evaluate(scenario, cand, queues, duration, seeds), policy=policy)
    if policy.n_plus_one and res.met and res.within_ceiling:
        node = busiest_node(scenario, cand)
        lost = evaluate(without_node(scenario, node), cand, queues, duration, seeds)
        res = replace(res, node_loss=NodeLoss(node, lost.met, lost.worst_share,
                                              lost.worst_urgency, lost.backlog_end))
    return res


def candidates_for(group: str, nodes: tuple[str, ...], max_processes: int,
                   concurrency: Iterable[int]) -> list[Candidate]:
    out = [Candidate(group, k, c, nodes) for k in range(1, max_processes + 1) for c in concurrency]
    return sorted(out, key=lambda c: (c.threads, c.processes))


def _run_local(jobs: list[tuple], workers: int | None) -> Iterator[CandidateResult]:
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        for job in jobs:
            yield evaluate_with_policy(*job)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = [pool.submit(evaluate_with_policy, *job) for job in jobs]
        for fut in as_completed(futures):
            yield fut.result()


def _run_dask(jobs: list[tuple], scheduler: Any) -> Iterator[CandidateResult]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        require("distributed", extra="dask", option="--scheduler")
        raise  # importable but broken: let the real error show

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        args = list(zip(*jobs, strict=True))
        futures = client.map(evaluate_with_policy, *args, pure=False)
        for fut in dask_completed(futures):
            yield fut.result()
    finally:
        if client is not scheduler:
            client.close()


def search(
    scenario: Scenario,
    group: str,
    *,
    duration: float,
    seeds: tuple[int, ...] = (1,),
    max_processes: int | None = None,
    concurrency: Iterable[int] = DEFAULT_CONCURRENCY,
    workers: int | None = None,
    scheduler: Any = None,
    progress: Progress | None = None,
    policy: Policy | None = None,
) -> list[CandidateResult]:
    """Simulate every candidate of ``group``; results sorted by threads (cheapest first).

    ``progress(total, label)`` (the CLI's progress bar) gives the step called per result;
    ``policy`` what a candidate must meet besides the queueing targets."""
    policy = policy or Policy()
    mine = group_processes(scenario, group)
    if not mine:
        known = sorted({p.group for p in scenario.processes})
        raise FleetError(f"no Sidekiq process runs queue group {group!r}",
                         hint="queue groups of this inventory: " + ", ".join(known))
    nodes = tuple(dict.fromkeys(scenario.processes[i].node for i in mine))
    if policy.n_plus_one and len(nodes) < 2:
        raise FleetError(
            f"--n-plus-one: queue group {group!r} runs on one node only ({nodes[0]}), so losing "
            "it stops the group whatever its size",
            hint=f"add {group!r} to the sidekiq_queue_groups of a second sidekiq host, then "
                 "size it again (candidates are spread over the nodes that run the group)")
    queues = tuple(scenario.processes[mine[0]].weights)
    max_processes = max_processes or max(2 * len(mine), 2)
    cands = candidates_for(group, nodes, max_processes, concurrency)
    jobs = [(apply_candidate(scenario, c), c, queues, duration, seeds, policy) for c in cands]
    results = []
    with (progress or no_progress)(len(jobs), f"capacity {group}") as step:
        runner = _run_dask(jobs, scheduler) if scheduler else _run_local(jobs, workers)
        for res in runner:
            results.append(res)
            step()
    return sorted(results, key=lambda r: (r.candidate.threads, r.candidate.processes))


def cheapest(results: list[CandidateResult]) -> CandidateResult | None:
    """The cheapest candidate that meets the targets and its policy."""
    for r in results:
        if r.passes:
            return r
    return None


@dataclass(frozen=True)
class GroupCapacity:
    """The search's answer for one queue group: today's size and every candidate."""

    group: str
    today_processes: int
    today_threads: int
    candidates: list[CandidateResult]  # cheapest first

    @classmethod
    def of(cls, scenario: Scenario, group: str,
           results: list[CandidateResult]) -> GroupCapacity:
        today = [scenario.processes[i] for i in group_processes(scenario, group)]
        return cls(group, len(today), sum(p.concurrency for p in today), results)

    @property
    def cheapest(self) -> CandidateResult | None:
        """The cheapest candidate that meets every queueing target and the policy (None: none
        does)."""
        return cheapest(self.candidates)

    @property
    def policy(self) -> Policy:
        return self.candidates[0].policy if self.candidates else Policy()

    def to_dict(self) -> dict[str, Any]:
        """``fleetsim capacity --json``: one group."""
        best = self.cheapest
        return {
            "today": {"processes": self.today_processes, "threads": self.today_threads},
            "cheapest": None if best is None else {
                "processes": best.candidate.processes,
                "concurrency": best.candidate.concurrency,
                "threads": best.candidate.threads,
                "nodes": list(best.candidate.nodes),
                "utilisation": round(best.utilisation, 4),
                "cpu": round(best.cpu, 4),
                "worst_within_target": floor_ratio(best.worst_share),
                **({} if best.node_loss is None else {"without_busiest_node": _loss(best)}),
            },
            "policy": {
                "max_utilisation": self.policy.max_utilisation,
                "n_plus_one": self.policy.n_plus_one,
                "checked": self.policy.describe()[0],
                "not_checked": self.policy.describe()[1],
            },
            "candidates": [
                {"processes": r.candidate.processes, "concurrency": r.candidate.concurrency,
                 "threads": r.candidate.threads, "met": r.met,
                 "worst_within_target": floor_ratio(r.worst_share),
                 "worst_urgency": r.worst_urgency, "utilisation": round(r.utilisation, 4),
                 "cpu": round(r.cpu, 4), "backlog_end": r.backlog_end,
                 "within_ceiling": r.within_ceiling,
                 "without_busiest_node": None if r.node_loss is None else _loss(r),
                 "passes": r.passes}
                for r in self.candidates
            ],
        }


def _loss(r: CandidateResult) -> dict[str, Any]:
    loss = r.node_loss
    assert loss is not None
    return {"node": loss.node, "met": loss.met,
            "worst_within_target": floor_ratio(loss.worst_share),
            "worst_urgency": loss.worst_urgency, "backlog_end": loss.backlog_end}
