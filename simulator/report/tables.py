"""A simulation's :class:`~simulator.report.summary.Summary` as terminal tables (rich)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from ..sim.shares import floor_ratio
from .summary import Summary
from .terminal import wide_console

__all__ = ["fmt_s", "render"]


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


def _pm(value: Any, ci: Any, fmt: Callable[[Any], str]) -> str:
    text = fmt(value)
    if isinstance(ci, (int, float)) and not (isinstance(ci, float) and math.isnan(ci)):
        text += f" ±{fmt(ci)}"
    return text


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _within(x: float | None) -> str:
    """A share of jobs within a target, rounded down: 99.996 % reads 99.99%, never 100.00%."""
    return "-" if x is None else f"{floor_ratio(x, 4) * 100:.2f}%"


def render(summary: Summary, console: Console | None = None) -> None:
    """Print the summary as tables (rich)."""
    if console is None:
        console = wide_console(120)
    s = summary
    ci = s.ci95 or {}
    reps = s.replications or 1
    head = f"Simulated {s.duration_s / 3600:.2f} h"
    head += f", {reps} replications (± = 95 % CI)" if reps > 1 else f", seed {s.seed}"
    c = s.counters
    head += (f": {c['arrived']:,.0f} jobs arrived, {c['succeeded']:,.0f} succeeded, "
             f"{c['retried']:,.0f} retries, {c['dead']:,.0f} dead, {c['lost']:,.0f} lost, "
             f"{c['in_queues']:,.0f} still queued")
    console.print(head)

    t = Table(title="By urgency (queueing = enqueued -> started)")
    for col in ("urgency", "jobs/s", "queue p50", "p95", "p99", "max", "within target",
                "apdex", "exec p50", "exec p99", "exec within", "SLO"):
        t.add_column(col, justify="left" if col == "urgency" else "right")
    for name, u in s.by_urgency.items():
        eci = ci.get("by_urgency", {}).get(name, {})
        qci = eci.get("queueing", {})
        target = u.queueing_target_s
        t.add_row(
            name, _pm(u.throughput_per_s, eci.get("throughput_per_s"), lambda x: f"{x:.2f}"),
            _pm(u.queueing.p50_s, qci.get("p50_s"), fmt_s),
            _pm(u.queueing.p95_s, qci.get("p95_s"), fmt_s),
            _pm(u.queueing.p99_s, qci.get("p99_s"), fmt_s),
            fmt_s(u.queueing.max_s),
            (_pm(u.within_queueing_target, eci.get("within_queueing_target"), _within)
             + f" ≤{fmt_s(target)}") if target is not None else "no target",
            f"{u.queueing_apdex:.4f}" if u.queueing_apdex is not None else "-",
            fmt_s(u.execution.p50_s), fmt_s(u.execution.p99_s),
            _within(u.within_execution_target),
            "[green]met[/]" if u.slo_met else "[red]MISSED[/]",
        )
    console.print(t)

    t = Table(title="By queue")
    for col in ("queue", "shard", "jobs", "queue p50", "p99", "max", "within target",
                "failed", "backlog max", "backlog end"):
        t.add_column(col, justify="left" if col in ("queue", "shard") else "right")
    queues = sorted(s.by_queue.items(), key=lambda kv: -kv[1].jobs)
    for name, q in queues[:15]:
        t.add_row(name, q.shard, f"{q.jobs:,.0f}", fmt_s(q.queueing.p50_s),
                  fmt_s(q.queueing.p99_s), fmt_s(q.queueing.max_s),
                  _within(q.within_queueing_target), f"{q.failed_executions:,.0f}",
                  f"{q.backlog_max:,.0f}", f"{q.backlog_end:,.0f}")
    if len(queues) > 15:
        rest = queues[15:]
        t.add_row(f"... {len(rest)} more", "", f"{sum(q.jobs for _, q in rest):,.0f}",
                  "", "", "", "", "", "", "")
    console.print(t)

    t = Table(title="By process")
    for col in ("process", "threads", "queues", "fetch", "jobs", "queue p99",
                "within target", "utilisation", "peak", "GVL busy"):
        t.add_column(col, justify="left" if col in ("process", "fetch") else "right")
    for name, proc in s.by_process.items():
        pci = ci.get("by_process", {}).get(name, {})
        t.add_row(name, str(proc.concurrency), str(proc.queues), proc.fetch,
                  f"{proc.jobs:,.0f}", fmt_s(proc.queueing.p99_s),
                  _within(proc.within_queueing_target),
                  _pm(proc.utilisation, pci.get("utilisation"), _pct),
                  _pct(proc.utilisation_peak), _pct(proc.cpu))
    console.print(t)

    for shard, r in s.redis.items():
        console.print(f"Redis shard {shard}: CPU {_pct(r.cpu_mean)} of a core on average, "
                      f"peak {_pct(r.cpu_peak)} (cost model, docs/behaviour.md §8: compare "
                      "configurations, not absolute figures)")
    if s.failovers:
        _failover_table(s, console)
    for event in s.events:
        console.print(f"event: {event}")
    for w in s.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if s.slo.met:
        console.print("[green]Every SLO target met.[/]")
    else:
        for f in s.slo.failures:
            console.print(f"[red]SLO missed:[/] {f}")


def _failover_table(s: Summary, console: Console) -> None:
    """One row per ``redis_failover``: how long nothing was fetched, what was lost or run
    twice, the backlog and the waits until it drained."""
    t = Table(title="Redis failovers (times from the failure; backlog = waiting in the "
                    "shard's queues or kept by producers)")
    for col in ("at", "shard", "down", "fetching again", "lost", "run twice", "pushes refused",
                "backlog → peak", "drained", "longest wait", "late / started"):
        t.add_column(col, justify="left" if col in ("shard", "late / started") else "right",
                     no_wrap=col == "late / started")
    for f in s.failovers or []:
        refused = f"{f.refused_pushes:,.0f}"
        if f.refused_pushes:
            refused += "\nretried" if f.producer_retry else "\nlost"
        late = "\n".join(f"{u} {f.late[u]:,.0f}/{f.started.get(u, 0):,.0f}"
                         for u in f.late if f.started.get(u, 0)) or "-"
        t.add_row(
            fmt_s(f.at_s), f.shard, fmt_s(f.downtime_s),
            "never" if f.processing_resumed_after_s is None
            else fmt_s(f.processing_resumed_after_s),
            f"{f.lost:,.0f}", f"{f.run_twice:,.0f}", refused,
            f"{f.backlog_before:,.0f} → {f.backlog_peak:,.0f}",
            "not by the end" if f.drained_after_s is None else fmt_s(f.drained_after_s),
            fmt_s(f.longest_wait_s), late,
        )
    console.print(t)
