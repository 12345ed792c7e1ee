"""What a simulation tells an operator: a summary (JSON-ready dict) and a terminal table.

``summarize(run)`` reads one run's streamed statistics; ``combine(summaries)`` turns several
replications into means with 95 % confidence half-widths (Student t over replications).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..sim.engine import RunResult
from ..sim.model import URGENCIES
from ..sim.stats import LogHistogram, Moments, confidence_interval

__all__ = ["combine", "render", "summarize"]

_QS = [0.5, 0.95, 0.99]


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _latency(hist: LogHistogram, mom: Moments, g: int) -> dict[str, float | None]:
    p50, p95, p99 = hist.quantiles(_QS, g)
    return {"p50_s": _num(p50), "p95_s": _num(p95), "p99_s": _num(p99),
            "mean_s": _num(mom.mean[g]) if mom.n[g] else None,
            "max_s": _num(mom.max[g]) if mom.n[g] else None}


def _share(ok: float, n: float) -> float | None:
    return _num(ok / n) if n else None


def summarize(run: RunResult) -> dict[str, Any]:
    """One run as plain data (the JSON output)."""
    rec = run.recorder
    t = rec.targets
    dur = run.duration
    by_urgency: dict[str, Any] = {}
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
        entry = {
            "jobs": n,
            "executed": executed,
            "throughput_per_s": _num(executed / dur),
            "queueing": _latency(rec.wait_u, rec.wait_mom_u, u),
            "execution": exec_lat,
            "queueing_target_s": _num(qt),
            "within_queueing_target": within_q,
            "queueing_apdex": _share(wok + (wtol - wok) / 2, n),
            "execution_target_s": _num(et),
            "within_execution_target": within_e,
            "execution_apdex": _share(eok + (etol - eok) / 2, executed),
        }
        ok = True
        if math.isfinite(qt) and within_q is not None and within_q < t.queueing_apdex:
            ok = False
            failures.append(f"{name}: {within_q:.4%} of jobs start within {qt:g} s "
                            f"(target {t.queueing_apdex:.3%})")
        if within_e is not None and within_e < t.execution_apdex:
            ok = False
            failures.append(f"{name}: {within_e:.3%} of jobs finish within {et:g} s "
                            f"(target {t.execution_apdex:.1%}; a workload property, not capacity)")
        if name == "high" and (exec_lat["p50_s"] or 0) >= 1.0:
            ok = False
            failures.append(f"high: median execution {exec_lat['p50_s']:.2f} s (target < 1 s)")
        entry["slo_met"] = ok
        by_urgency[name] = entry

    backlog = rec.backlog_matrix()
    by_queue: dict[str, Any] = {}
    for q, name in enumerate(run.queues):
        n = int(rec.n_qu[q].sum())
        if n == 0 and not (backlog.size and backlog[:, q].any()):
            continue
        by_queue[name] = {
            "shard": run.queue_shards[q],
            "jobs": n,
            "executed": int(rec.exec_mom_q.n[q]),
            "queueing": _latency(rec.wait_q, rec.wait_mom_q, q),
            "execution": _latency(rec.exec_q, rec.exec_mom_q, q),
            "within_queueing_target": _share(rec.wok_qu[q].sum(), n),
            "failed_executions": int(rec.fail_q[q]),
            "backlog_end": int(run.in_queues.get(name, 0)),
            "backlog_max": int(backlog[:, q].max()) if backlog.size else 0,
            "still_waiting_at_end": int(rec.censored_q[q]),
        }
    util = rec.utilisation()
    by_process: dict[str, Any] = {}
    for p, proc in enumerate(run.processes):
        n = int(rec.exec_mom_p.n[p])
        by_process[proc.name] = {
            "node": proc.node,
            "concurrency": proc.concurrency,
            "queues": len(proc.weights),
            "fetch": "strict" if proc.strict else "weighted",
            "jobs": n,
            "queueing": _latency(rec.wait_p, rec.wait_mom_p, p),
            "within_queueing_target": _share(rec.wok_pu[p].sum(), rec.n_pu[p].sum()),
            "utilisation": _num(util[p].mean()) if util.size else None,
            "utilisation_peak": _num(util[p].max()) if util.size else None,
        }
    cpu = rec.redis_cpu_share()
    redis = {
        shard: {"cpu_mean": _num(cpu[s].mean()), "cpu_peak": _num(cpu[s].max()),
                "cpu_seconds": _num(rec.redis[s].sum() * 1e-6)}
        for s, shard in enumerate(run.shards)
    }
    warnings = [f"queue {q!r} receives jobs but no Sidekiq process listens to it"
                for q in run.unserved_queues]
    if run.counters["lost"]:
        warnings.append(f"{run.counters['lost']} running jobs were lost when nodes went down "
                        "(open-source Sidekiq's fetch loses in-flight jobs)")
    return {
        "duration_s": dur,
        "seed": run.seed,
        "counters": dict(run.counters),
        "by_urgency": by_urgency,
        "by_queue": by_queue,
        "by_process": by_process,
        "redis": redis,
        "slo": {"met": not failures, "failures": failures},
        "events": list(run.events_applied),
        "warnings": warnings,
    }


def combine(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Replications -> one summary of means plus ``ci95`` (same shape, half-widths)."""
    if len(summaries) == 1:
        return summaries[0]

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
        if all(isinstance(i, int) for i in items):
            return _num(mean), _num(half)
        return _num(mean), _num(half)

    mean, ci = merge(summaries)
    mean["replications"] = len(summaries)
    mean["seeds"] = [s["seed"] for s in summaries]
    mean["ci95"] = ci
    failures = sorted({f for s in summaries for f in s["slo"]["failures"]})
    mean["slo"] = {"met": all(s["slo"]["met"] for s in summaries), "failures": failures}
    mean["warnings"] = sorted({w for s in summaries for w in s["warnings"]})
    mean["events"] = summaries[0]["events"]
    return mean


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if x < 0.001:
        return f"{x * 1e6:.0f}µs"
    if x < 1:
        return f"{x * 1000:.0f}ms"
    if x < 120:
        return f"{x:.1f}s"
    if x < 7200:
        return f"{x / 60:.1f}m"
    return f"{x / 3600:.1f}h"


def _pm(value: Any, ci: Any, fmt: Any) -> str:
    text = fmt(value)
    if isinstance(ci, (int, float)) and not (isinstance(ci, float) and math.isnan(ci)):
        text += f" ±{fmt(ci)}"
    return text


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def render(summary: dict[str, Any], console: Any = None) -> None:
    """Print the summary as tables (rich)."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 120))
    ci = summary.get("ci95", {})
    reps = summary.get("replications", 1)
    head = f"Simulated {summary['duration_s'] / 3600:.2f} h"
    head += f", {reps} replications (± = 95 % CI)" if reps > 1 else f", seed {summary['seed']}"
    c = summary["counters"]
    head += (f": {c['arrived']:,.0f} jobs arrived, {c['succeeded']:,.0f} succeeded, "
             f"{c['retried']:,.0f} retries, {c['dead']:,.0f} dead, {c['lost']:,.0f} lost, "
             f"{c['in_queues']:,.0f} still queued")
    console.print(head)

    t = Table(title="By urgency (queueing = enqueued -> started)")
    for col in ("urgency", "jobs/s", "queue p50", "p95", "p99", "max", "within target",
                "apdex", "exec p50", "exec p99", "exec within", "SLO"):
        t.add_column(col, justify="left" if col == "urgency" else "right")
    for name, e in summary["by_urgency"].items():
        eci = ci.get("by_urgency", {}).get(name, {})
        qci = eci.get("queueing", {})
        target = e["queueing_target_s"]
        t.add_row(
            name, _pm(e["throughput_per_s"], eci.get("throughput_per_s"), lambda x: f"{x:.2f}"),
            _pm(e["queueing"]["p50_s"], qci.get("p50_s"), fmt_s),
            _pm(e["queueing"]["p95_s"], qci.get("p95_s"), fmt_s),
            _pm(e["queueing"]["p99_s"], qci.get("p99_s"), fmt_s),
            fmt_s(e["queueing"]["max_s"]),
            (_pm(e["within_queueing_target"], eci.get("within_queueing_target"), _pct)
             + f" ≤{fmt_s(target)}") if target is not None else "no target",
            f"{e['queueing_apdex']:.4f}" if e["queueing_apdex"] is not None else "-",
            fmt_s(e["execution"]["p50_s"]), fmt_s(e["execution"]["p99_s"]),
            _pct(e["within_execution_target"]),
            "[green]met[/]" if e["slo_met"] else "[red]MISSED[/]",
        )
    console.print(t)

    t = Table(title="By queue")
    for col in ("queue", "shard", "jobs", "queue p50", "p99", "max", "within target",
                "failed", "backlog max", "backlog end"):
        t.add_column(col, justify="left" if col in ("queue", "shard") else "right")
    queues = sorted(summary["by_queue"].items(), key=lambda kv: -kv[1]["jobs"])
    for name, e in queues[:15]:
        t.add_row(name, e["shard"], f"{e['jobs']:,.0f}", fmt_s(e["queueing"]["p50_s"]),
                  fmt_s(e["queueing"]["p99_s"]), fmt_s(e["queueing"]["max_s"]),
                  _pct(e["within_queueing_target"]), f"{e['failed_executions']:,.0f}",
                  f"{e['backlog_max']:,.0f}", f"{e['backlog_end']:,.0f}")
    if len(queues) > 15:
        rest = queues[15:]
        t.add_row(f"... {len(rest)} more", "", f"{sum(e['jobs'] for _, e in rest):,.0f}",
                  "", "", "", "", "", "", "")
    console.print(t)

    t = Table(title="By process")
    for col in ("process", "threads", "queues", "fetch", "jobs", "queue p99",
                "within target", "utilisation", "peak"):
        t.add_column(col, justify="left" if col in ("process", "fetch") else "right")
    for name, e in summary["by_process"].items():
        pci = ci.get("by_process", {}).get(name, {})
        t.add_row(name, str(e["concurrency"]), str(e["queues"]), e["fetch"],
                  f"{e['jobs']:,.0f}", fmt_s(e["queueing"]["p99_s"]),
                  _pct(e["within_queueing_target"]),
                  _pm(e["utilisation"], pci.get("utilisation"), _pct),
                  _pct(e["utilisation_peak"]))
    console.print(t)

    for shard, e in summary["redis"].items():
        console.print(f"Redis shard {shard}: CPU {_pct(e['cpu_mean'])} of a core on average, "
                      f"peak {_pct(e['cpu_peak'])} (cost model, docs/behaviour.md §8: compare "
                      "configurations, not absolute figures)")
    for event in summary["events"]:
        console.print(f"event: {event}")
    for w in summary["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    if summary["slo"]["met"]:
        console.print("[green]Every SLO target met.[/]")
    else:
        for f in summary["slo"]["failures"]:
            console.print(f"[red]SLO missed:[/] {f}")


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
