"""A per-job ledger over the engine (tests/sim, tests/migration): every job in exactly one place."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st

from simulator.sim import engine
from simulator.sim.jobs import ProcState
from simulator.sim.model import FleetEvent, JobClass, ServiceTime, TraceSpec

_service = st.sampled_from([
    ServiceTime("exponential", 0.5),
    ServiceTime("deterministic", 2.0),
    ServiceTime("lognormal", 1.0, sigma=1.0),
    ServiceTime("empirical", 0.8, samples=(0.1, 0.5, 1.8)),
])


# ----------------------------------------------------------------------------- per-job ledger
class _Observed(engine._Model):
    """The engine with an observer: every execution record, every job a node failure or a
    Redis failover loses, every job that dies, every job a failover delivers again, and what
    each ``move_jobs`` did (jobs moved, and how many went straight to a fetcher that was
    blocked waiting on the destination queue)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.executions: list[tuple] = []
        self.lost_jobs: list[tuple] = []
        self.dead_jobs: list = []
        self.duplicates: list = []
        self.moves: list[dict] = []

    def _failed(self, job, now: float) -> None:
        if job.retries >= self.sc.max_retries:
            self.dead_jobs.append(job)
        super()._failed(job, now)

    def _lose_job(self, job, why: str) -> None:
        self.lost_jobs.append(job)
        super()._lose_job(job, why)

    def _duplicate_job(self, job) -> None:
        self.duplicates.append(job)
        super()._duplicate_job(job)

    def _flush(self) -> None:
        self.executions.extend(self.records)
        super()._flush()

    def _down(self, p: int, now: float, *, lose: bool) -> None:
        if lose:
            self.lost_jobs.extend(self.f_job[f] for f in self.p_fetchers[p]
                                  if self.f_job[f] is not None)
        super()._down(p, now, lose=lose)

    def _move_jobs(self, event: FleetEvent, now: float) -> None:
        dests = ({self.queue_index[q] for q, _ in event.routes.values()}
                 if event.routes is not None else None)
        waiting_off = (sum(len(d) for i, d in enumerate(self.queues) if i not in dests)
                       if dests is not None else None)
        blocked = sum(len(d) for d in self.idle)
        moved, kept, running = self.moved, self.kept_unknown, self.running
        super()._move_jobs(event, now)
        self.moves.append({
            "at": now, "moved": self.moved - moved, "kept": self.kept_unknown - kept,
            "handed": self.running - running, "blocked_before": blocked,
            "waiting_off": waiting_off,
            "named": set(event.routes) if event.routes is not None else None,
            "left_off": ([self.classes[job.cls].key for i, d in enumerate(self.queues)
                          if i not in dests for job in d] if dests is not None else None),
        })


@st.composite
def _trace_jobs(draw, max_jobs: int = 40, horizon: float = 300.0):
    """Jobs for a trace: (arrival time, first duration, class).  One class per job."""
    n = draw(st.integers(1, max_jobs))
    times = sorted(draw(st.lists(st.floats(0.0, horizon), min_size=n, max_size=n)))
    rows = []
    for i, t in enumerate(times):
        cls = JobClass(f"J{i}Worker", draw(st.sampled_from(["high", "low", "throttled"])), 0.0,
                       draw(_service), failure_probability=draw(st.sampled_from([0.0, 0.3, 1.0])),
                       cpu_share=draw(st.sampled_from([0.0, 0.0, 0.4, 1.0])))
        rows.append((t, draw(st.sampled_from([0.05, 0.7, 3.0, 40.0])), cls))
    return rows


def _write_trace(directory: str, rows) -> TraceSpec:
    path = Path(directory) / "trace.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["time", "worker_class", "duration"])
        for t, svc, cls in rows:
            out.writerow([repr(t), cls.key, repr(svc)])
    return TraceSpec(str(path))


def assert_every_job_accounted_for(model: _Observed, run, rows, duration: float) -> None:
    """Each job of the trace that arrived before ``duration`` is in exactly one place; the
    expected arrivals are counted from the trace the test wrote, not from the engine."""
    c = run.counters
    expected = [cls.key for t, _, cls in rows if t < duration]
    assert c["arrived"] == len(expected)
    max_retries = model.sc.max_retries
    wins: Counter[str] = Counter()
    fails: Counter[str] = Counter()
    for rec in model.executions:
        (fails if int(rec[6]) & 2 else wins)[model.classes[int(rec[0])].key] += 1

    def key(job) -> str:
        return model.classes[job.cls].key

    # Waiting: in a queue, or pushed and not poppable yet (enqueue_visible_s).
    waiting = Counter(key(job) for d in model.queues for job in d) + Counter(
        key(job) for _, _, job in model._transit)
    running = Counter(key(job) for job in model.f_job if job is not None)
    retrying = Counter(key(job) for _, _, job in model.retry_heap)
    lost = Counter(key(job) for job in model.lost_jobs)
    dead = Counter(key(job) for job in model.dead_jobs)
    # Kept by a producer while its Redis is down; delivered a second time by a failover.
    held = Counter(key(job) for f in model._failovers for job in f.held)
    twice = Counter(key(job) for job in model.duplicates)
    assert all(n <= (max_retries + 1) * (1 + twice[k]) for k, n in fails.items()), fails
    places = wins + dead + waiting + running + retrying + lost + held
    failing_always = {cls.key for _, _, cls in rows if cls.failure_probability == 1.0}
    for k in expected:
        assert places[k] == 1 + twice[k], (
            f"{k}: succeeded {wins[k]}, dead {dead[k]}, waiting {waiting[k]}, running "
            f"{running[k]}, retrying {retrying[k]}, lost {lost[k]}, kept by a producer "
            f"{held[k]} (failed {fails[k]} times, delivered again {twice[k]} times)")
        assert not (k in failing_always and wins[k]), f"{k} always fails yet succeeded"
    assert set(places) <= set(expected), set(places) - set(expected)  # nothing from nowhere
    # The engine's counters agree with the ledger.
    assert c["succeeded"] == sum(wins.values()) and c["dead"] == sum(dead.values())
    assert c["lost"] == sum(lost.values()) and c["running"] == sum(running.values())
    assert c["in_queues"] == sum(waiting.values()) == sum(run.in_queues.values())
    assert c["retrying"] == sum(retrying.values())
    assert c["failed_executions"] == sum(fails.values())
    assert c["duplicated"] == sum(twice.values())
    assert c["held_by_producers"] == sum(held.values())
    assert int(run.recorder.exec_q.counts.sum()) == len(model.executions)
    # Each process's GVL: its holder (unless planned as alone) and the threads in line for it
    # are threads of its own with a running job, each once; nobody waits behind a free GVL.
    for p, line in enumerate(model.g_q):
        h = model.g_hold[p]
        solo = model.g_solo[p]
        members = [*line, *([h] if h >= 0 and not solo else [])]
        assert len(set(members)) == len(members), members
        assert all(model.f_proc[fid] == p and model.f_job[fid] is not None for fid in members)
        assert not line or (h >= 0 and not solo), (p, h, solo, list(line))
    # No job is left waiting on a queue that a running process's blocked fetcher listens to
    # (unless its Redis is down).
    for p, blocked in enumerate(model.idle):
        if blocked and model.p_state[p] == ProcState.UP:
            stuck = [model.queue_names[q] for q in model.p_pos[p]
                     if model.queues[q] and model.queue_shard[q] not in model._down_shards]
            assert not stuck, f"{model.procs[p].name} blocked while jobs wait on {stuck}"
