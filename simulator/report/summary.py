"""What a simulation tells an operator, as typed results (also the JSON output).

``summarize(run)`` reads one run's streamed statistics; ``combine(summaries)`` turns several
replications into means with 95 % confidence half-widths (Student t over replications).
Figures are seconds (``_s``) or shares (0..1); ``None`` where there is nothing to measure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..sim.engine import RunResult
from ..sim.model import URGENCIES, SloTargets
from ..sim.redis_failover import FailoverResult
from ..sim.stats import LogHistogram, Moments, confidence_interval

__all__ = [
    "FailoverSummary",
    "Latency",
    "ProcessSummary",
    "QueueSummary",
    "RedisSummary",
    "Slo",
    "Summary",
    "UrgencySummary",
    "combine",
    "summarize",
    "to_jsonable",
]


@dataclass(frozen=True)
class Latency:
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    mean_s: float | None
    max_s: float | None


@dataclass(frozen=True)
class UrgencySummary:
    jobs: float  # a count; a mean over replications
    executed: float
    throughput_per_s: float | None
    queueing: Latency  # enqueued -> started
    execution: Latency
    queueing_target_s: float | None  # None: no target (throttled)
    within_queueing_target: float | None
    queueing_apdex: float | None
    execution_target_s: float | None
    within_execution_target: float | None
    execution_apdex: float | None
    slo_met: bool


@dataclass(frozen=True)
class QueueSummary:
    shard: str
    jobs: float
    executed: float
    queueing: Latency
    execution: Latency
    within_queueing_target: float | None
    failed_executions: float
    backlog_end: float
    backlog_max: float
    still_waiting_at_end: float  # jobs waiting in the queue at the end (not the running ones)
    running_at_end: float = 0  # jobs of the queue running at the end


@dataclass(frozen=True)
class ProcessSummary:
    node: str
    concurrency: float
    queues: float
    fetch: str  # strict | weighted
    jobs: float
    queueing: Latency
    within_queueing_target: float | None
    utilisation: float | None
    utilisation_peak: float | None
    #: Share of one core its Ruby threads used (its GVL busy; 1 is the most a process can).
    cpu: float | None = None


@dataclass(frozen=True)
class RedisSummary:
    cpu_mean: float | None  # share of one core
    cpu_peak: float | None
    cpu_seconds: float | None


@dataclass(frozen=True)
class FailoverSummary:
    """One ``redis_failover`` (simulator.sim.redis_failover.FailoverResult): seconds from the
    failure, counts of jobs (means over replications)."""

    at_s: float
    shard: str
    downtime_s: float
    lose_last_s: float
    producer_retry: bool
    #: From the failure until a job was fetched from the shard again (None: none was).
    processing_resumed_after_s: float | None
    lost: float  # the four causes below together
    lost_unreplicated: float  # pushed in the last lose_last_s seconds, still waiting
    lost_pushes: float  # producers' pushes refused during the downtime, not retried
    lost_retries: float  # failed during the downtime: the retry could not be written
    lost_push_backs: float  # a shutdown's push-back during the downtime
    run_twice: float  # fetched in the last lose_last_s seconds, delivered again
    refused_pushes: float  # producers' pushes during the downtime (lost or retried)
    retried_pushes: float  # pushed again by the producers after the downtime
    in_flight: float  # running at the failure (they complete)
    backlog_before: float
    backlog_peak: float
    #: From the failure until the shard's backlog was back to backlog_before, checked every
    #: second from a second after the downtime (None: not by the end of the run).
    drained_after_s: float | None
    #: Jobs of the shard started from the failure until it drained, per urgency; of those,
    #: the ones over their queueing target (urgencies with a target); the longest wait.
    started: dict[str, float]
    late: dict[str, float]
    longest_wait_s: float | None


@dataclass(frozen=True)
class Slo:
    met: bool
    failures: list[str]


@dataclass(frozen=True)
class Summary:
    """One run, or the means of several replications (``replications`` set, ``ci95`` the
    95 % half-widths in the same shape as the JSON output, where they exist)."""

    duration_s: float
    seed: float
    counters: dict[str, float]
    by_urgency: dict[str, UrgencySummary]
    by_queue: dict[str, QueueSummary]
    by_process: dict[str, ProcessSummary]
    redis: dict[str, RedisSummary]
    slo: Slo
    events: list[str]
    warnings: list[str]
    replications: int | None = None
    seeds: list[int] | None = None
    ci95: dict[str, Any] | None = None
    plots: list[str] | None = None
    #: Per ``redis_failover`` event of the workload (None: it has none).
    failovers: list[FailoverSummary] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON output (optional parts only when set)."""
        data = asdict(self)
        out = {f.name: data[f.name] for f in fields(self)[:10]}
        if self.failovers is not None:
            out["failovers"] = data["failovers"]
        if self.replications is not None:
            out.update(replications=self.replications, seeds=self.seeds, ci95=self.ci95)
        if self.plots is not None:
            out["plots"] = self.plots
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        def latencies(entry: dict[str, Any], kind: type[Any]) -> Any:
            parts = {k: Latency(**v) if k in ("queueing", "execution") else v
                     for k, v in entry.items()}
            return kind(**parts)

        return cls(
            duration_s=data["duration_s"], seed=data["seed"], counters=data["counters"],
            by_urgency={k: latencies(v, UrgencySummary) for k, v in data["by_urgency"].items()},
            by_queue={k: latencies(v, QueueSummary) for k, v in data["by_queue"].items()},
            by_process={k: latencies(v, ProcessSummary) for k, v in data["by_process"].items()},
            redis={k: RedisSummary(**v) for k, v in data["redis"].items()},
            slo=Slo(**data["slo"]), events=data["events"], warnings=data["warnings"],
            replications=data.get("replications"), seeds=data.get("seeds"),
            ci95=data.get("ci95"), plots=data.get("plots"),
            failovers=([FailoverSummary(**f) for f in data["failovers"]]
                       if data.get("failovers") is not None else None),
        )


_QS = [0.5, 0.95, 0.99]


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _latency(hist: LogHistogram, mom: Moments, g: int) -> Latency:
    p50, p95, p99 = hist.quantiles(_QS, g)
    return Latency(p50_s=_num(p50), p95_s=_num(p95), p99_s=_num(p99),
                   mean_s=_num(mom.mean[g]) if mom.n[g] else None,
                   max_s=_num(mom.max[g]) if mom.n[g] else None)


def _share(ok: float, n: float) -> float | None:
    return _num(ok / n) if n else None


def summarize(run: RunResult) -> Summary:
    """One run's results."""
    rec = run.recorder
    t = rec.targets
    dur = run.duration
    by_urgency: dict[str, UrgencySummary] = {}
    failures: list[str] = []
    for u, name in enumerate(URGENCIES):
        n = int(rec.n_qu[:, u].sum())
        executed = int(rec.exec_mom_u.n[u])
        if n == 0:
            continue
        qt, et = t.queueing[name], t.execution[name]
        wok, wtol = rec.wok_qu[:, u].sum(), rec.wtol_qu[:, u].sum()
        eok, etol = rec.eok_qu[:, u].sum(), rec.etol_qu[:, u].sum()
        within_q = _share(wok, n)
        within_e = _share(eok, executed)
        exec_lat = _latency(rec.exec_u, rec.exec_mom_u, u)
        ok = True
        if math.isfinite(qt) and within_q is not None and within_q < t.queueing_apdex:
            ok = False
            failures.append(f"{name}: {within_q:.4%} of jobs start within {qt:g} s "
                            f"(target {t.queueing_apdex:.3%})")
        if within_e is not None and within_e < t.execution_apdex:
            ok = False
            failures.append(f"{name}: {within_e:.3%} of jobs finish within {et:g} s "
                            f"(target {t.execution_apdex:.1%}; a workload property, not capacity)")
        if name == "high" and (exec_lat.p50_s or 0) >= 1.0:
            ok = False
            failures.append(f"high: median execution {exec_lat.p50_s:.2f} s (target < 1 s)")
        by_urgency[name] = UrgencySummary(
            jobs=n,
            executed=executed,
            throughput_per_s=_num(executed / dur),
            queueing=_latency(rec.wait_u, rec.wait_mom_u, u),
            execution=exec_lat,
            queueing_target_s=_num(qt),
            within_queueing_target=within_q,
            queueing_apdex=_share(wok + (wtol - wok) / 2, n),
            execution_target_s=_num(et),
            within_execution_target=within_e,
            execution_apdex=_share(eok + (etol - eok) / 2, executed),
            slo_met=ok,
        )

    backlog = rec.backlog_matrix()
    by_queue: dict[str, QueueSummary] = {}
    for q, name in enumerate(run.queues):
        n = int(rec.n_qu[q].sum())
        if n == 0 and not (backlog.size and backlog[:, q].any()):
            continue
        by_queue[name] = QueueSummary(
            shard=run.queue_shards[q],
            jobs=n,
            executed=int(rec.exec_mom_q.n[q]),
            queueing=_latency(rec.wait_q, rec.wait_mom_q, q),
            execution=_latency(rec.exec_q, rec.exec_mom_q, q),
            within_queueing_target=_share(rec.wok_qu[q].sum(), n),
            failed_executions=int(rec.fail_q[q]),
            backlog_end=int(run.in_queues.get(name, 0)),
            backlog_max=int(backlog[:, q].max()) if backlog.size else 0,
            still_waiting_at_end=int(rec.censored_q[q]),
            running_at_end=int(rec.running_q[q]),
        )
    util = rec.utilisation()
    by_process: dict[str, ProcessSummary] = {}
    for p, proc in enumerate(run.processes):
        n = int(rec.exec_mom_p.n[p])
        by_process[proc.name] = ProcessSummary(
            node=proc.node,
            concurrency=proc.concurrency,
            queues=len(proc.weights),
            fetch="strict" if proc.strict else "weighted",
            jobs=n,
            queueing=_latency(rec.wait_p, rec.wait_mom_p, p),
            within_queueing_target=_share(rec.wok_pu[p].sum(), rec.n_pu[p].sum()),
            utilisation=_num(util[p].mean()) if util.size else None,
            utilisation_peak=_num(util[p].max()) if util.size else None,
            cpu=_num(run.cpu_seconds[p] / dur) if run.cpu_seconds else None,
        )
    cpu = rec.redis_cpu_share()
    redis = {
        shard: RedisSummary(cpu_mean=_num(cpu[s].mean()), cpu_peak=_num(cpu[s].max()),
                            cpu_seconds=_num(rec.redis[s].sum() * 1e-6))
        for s, shard in enumerate(run.shards)
    }
    warnings = [f"queue {q!r} receives jobs but no Sidekiq process listens to it"
                for q in run.unserved_queues]
    failovers = [_failover(f, t) for f in run.failovers]
    node_lost = run.counters["lost"] - sum(f.lost for f in run.failovers)
    if node_lost:
        warnings.append(f"{node_lost} running jobs were lost when nodes went down "
                        "(open-source Sidekiq's fetch loses in-flight jobs)")
    warnings.extend(_failover_warning(f) for f in failovers if f.lost or f.run_twice)
    return Summary(
        duration_s=dur,
        seed=run.seed,
        counters=dict(run.counters),
        by_urgency=by_urgency,
        by_queue=by_queue,
        by_process=by_process,
        redis=redis,
        slo=Slo(met=not failures, failures=failures),
        events=list(run.events_applied),
        warnings=warnings,
        failovers=failovers or None,
    )


def _failover(f: FailoverResult, t: SloTargets) -> FailoverSummary:
    timed = [u for u in URGENCIES if math.isfinite(t.queueing[u])]
    return FailoverSummary(
        at_s=f.at_s, shard=f.shard, downtime_s=f.downtime_s, lose_last_s=f.lose_last_s,
        producer_retry=f.producer_retry,
        processing_resumed_after_s=(None if f.processing_resumed_after_s is None
                                    else _num(f.processing_resumed_after_s)),
        lost=f.lost, lost_unreplicated=f.lost_unreplicated, lost_pushes=f.lost_pushes,
        lost_retries=f.lost_retries, lost_push_backs=f.lost_push_backs,
        run_twice=f.run_twice, refused_pushes=f.refused_pushes,
        retried_pushes=f.retried_pushes, in_flight=f.in_flight,
        backlog_before=f.backlog_before, backlog_peak=f.backlog_peak,
        drained_after_s=None if f.drained_after_s is None else _num(f.drained_after_s),
        started={u: f.started.get(u, 0) for u in URGENCIES},
        late={u: f.late.get(u, 0) for u in timed},
        longest_wait_s=None if f.longest_wait_s is None else _num(f.longest_wait_s),
    )


def _failover_warning(f: FailoverSummary) -> str:
    causes = [(f.lost_unreplicated, f"pushed in the last {f.lose_last_s:g} s and not "
                                    "replicated"),
              (f.lost_pushes, "pushes refused while Redis was down (the producers do not "
                              "retry)"),
              (f.lost_retries, "failed while Redis was down (the retry could not be written)"),
              (f.lost_push_backs, "not pushed back by a shutdown while Redis was down")]
    text = (f"redis_failover at {f.at_s:g} s (shard {f.shard}): {f.lost:,.0f} jobs lost"
            + "".join(f"; {n:,.0f} {why}" for n, why in causes if n))
    if f.run_twice:
        text += (f"; {f.run_twice:,.0f} jobs run twice (fetched in the last "
                 f"{f.lose_last_s:g} s: the replica still had them)")
    return text


def combine(results: list[Summary]) -> Summary:
    """Replications -> one summary of means plus ``ci95`` (same shape, half-widths)."""
    if len(results) == 1:
        return results[0]
    summaries = [r.to_dict() for r in results]

    def merge(items: list[Any]) -> tuple[Any, Any]:
        first = items[0]
        if isinstance(first, dict):
            keys = [k for k in first if all(isinstance(i, dict) and k in i for i in items)]
            pairs = {k: merge([i[k] for i in items]) for k in keys}
            return ({k: v[0] for k, v in pairs.items()},
                    {k: v[1] for k, v in pairs.items() if v[1] is not None})
        if isinstance(first, bool) or not all(isinstance(i, (int, float)) for i in items):
            if isinstance(first, bool) and all(isinstance(i, bool) for i in items):
                return all(items), None
            return first, None
        mean, half = confidence_interval([float(i) for i in items])
        return _num(mean), _num(half)

    mean, ci = merge(summaries)
    mean["replications"] = len(summaries)
    mean["seeds"] = [s["seed"] for s in summaries]
    mean["ci95"] = ci
    failures = sorted({f for s in summaries for f in s["slo"]["failures"]})
    mean["slo"] = {"met": all(s["slo"]["met"] for s in summaries), "failures": failures}
    mean["warnings"] = sorted({w for s in summaries for w in s["warnings"]})
    mean["events"] = summaries[0]["events"]
    if summaries[0].get("failovers") is not None:  # the same events in every replication
        pairs = [merge([s["failovers"][i] for s in summaries])
                 for i in range(len(summaries[0]["failovers"]))]
        mean["failovers"] = [m for m, _ in pairs]
        ci["failovers"] = [c for _, c in pairs]
    return Summary.from_dict(mean)


def to_jsonable(obj: Any) -> Any:
    """numpy scalars and arrays to plain Python (for json.dumps)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj
