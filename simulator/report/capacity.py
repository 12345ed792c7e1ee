"""The ``fleetsim capacity`` report: per queue group, every candidate and the cheapest, and what
the recommendation was (and was not) required to meet."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..sim.capacity import CandidateResult, GroupCapacity
from ..sim.shares import floor_ratio

__all__ = ["render_capacity"]


def _pct(share: float) -> str:
    """A share rounded down: 99.99996 % reads 99.9999%, never 100.0000%."""
    return f"{floor_ratio(share, 6) * 100:.4f}%"


def _verdict(r: CandidateResult) -> str:
    if not r.met:
        return "[red]missed[/]"
    if not r.within_ceiling:
        return "[yellow]over ceiling[/]"
    if r.survives_node_loss is False:
        return "[red]fails N+1[/]" if r.node_loss is not None else "[red]missed[/]"
    return "[green]passes[/]"


def render_capacity(result: GroupCapacity, console: Console) -> None:
    group = result.group
    policy = result.policy
    t = Table(title=f"queue group {group!r}: candidates (cheapest first)")
    columns = ["processes", "threads each", "threads", "within target (worst)", "utilisation",
               "GVL busy"]
    if policy.n_plus_one:
        columns.append("busiest node lost (worst)")
    columns += ["backlog at end", "verdict"]
    for col in columns:
        t.add_column(col, justify="right")
    for r in result.candidates:
        row = [str(r.candidate.processes), str(r.candidate.concurrency),
               str(r.candidate.threads), _pct(r.worst_share), f"{r.utilisation:.1%}",
               f"{r.cpu:.0%}"]
        if policy.n_plus_one:
            loss = r.node_loss
            row.append("-" if loss is None else
                       f"{_pct(loss.worst_share)} ({loss.node.split('.')[0]})")
        row += [f"{r.backlog_end:,}", _verdict(r)]
        t.add_row(*row)
    console.print(t)
    checked, unchecked = policy.describe()
    best = result.cheapest
    if best is None:
        console.print(f"[red]No candidate for {group!r} meets: {'; '.join(checked)}.[/] "
                      "Raise --max-processes or --concurrency"
                      + (", or the --max-utilisation ceiling" if policy.max_utilisation
                         else "") + ".")
    else:
        c = best.candidate
        console.print(
            f"{group!r}: {c.processes} process(es) x {c.concurrency} threads = {c.threads} "
            f"threads (today {result.today_threads}), on "
            f"{', '.join(n.split('.')[0] for n in c.nodes[:c.processes])}; "
            f"utilisation {best.utilisation:.1%}, GVL busy {best.cpu:.0%}"
            + (f"; without {best.node_loss.node.split('.')[0]} "
               f"{_pct(best.node_loss.worst_share)} within target"
               if best.node_loss is not None else "") + ".")
        console.print(f"  checked: {'; '.join(checked)}.")
    if unchecked:
        console.print(f"  not checked: {'; '.join(unchecked)}.")
