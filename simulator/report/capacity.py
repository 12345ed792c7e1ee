"""The ``fleetsim capacity`` report: per queue group, every candidate and the cheapest."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..sim.capacity import GroupCapacity

__all__ = ["render_capacity"]


def render_capacity(result: GroupCapacity, console: Console) -> None:
    group = result.group
    t = Table(title=f"queue group {group!r}: candidates (cheapest first)")
    for col in ("processes", "threads each", "threads", "within target (worst)",
                "utilisation", "backlog at end", "SLO"):
        t.add_column(col, justify="right")
    for r in result.candidates:
        t.add_row(str(r.candidate.processes), str(r.candidate.concurrency),
                  str(r.candidate.threads), f"{r.worst_share:.4%}",
                  f"{r.utilisation:.1%}", f"{r.backlog_end:,}",
                  "[green]met[/]" if r.met else "[red]missed[/]")
    console.print(t)
    best = result.cheapest
    if best is None:
        console.print(f"[red]No candidate for {group!r} meets the queueing targets;[/] "
                      "raise --max-processes or --concurrency.")
    else:
        c = best.candidate
        console.print(
            f"{group!r}: {c.processes} process(es) x {c.concurrency} threads = {c.threads} "
            f"threads (today {result.today_threads}) meet every queueing "
            f"target; on {', '.join(n.split('.')[0] for n in c.nodes[:c.processes])}.")

