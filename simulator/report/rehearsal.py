"""The ``fleetsim migrate`` report as tables: per phase and order, stranded jobs and waits."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..sim.shares import percent_floor
from .tables import fmt_s
from .terminal import wide_console

__all__ = ["render_rehearsal"]


def _slo_cell(slo: dict[str, Any], urgency: str) -> str:
    """Late jobs first, then the share on time rounded down: never "100.00% (2 late)"."""
    e = slo.get(urgency)
    if not e or e["within_target"] is None:
        return "-"
    late, jobs = e["late"], e["jobs"]
    text = f"{late:,} late ({percent_floor(jobs - late, jobs)})" if late else "0 late"
    return text if e["met"] else f"[red]{text}[/]"


def render_rehearsal(out: dict[str, Any]) -> None:
    console = wide_console(130)
    plan = out["plan"]
    console.print(
        f"Migration of {out['inventory']} to {out['target']}: {len(plan['added_queues'])} new "
        f"queue(s) ({', '.join(plan['added_queues'][:6]) or 'none'}), "
        f"{len(plan['retired_queues'])} retired, {plan['moved_workers']} worker class(es) "
        f"change queue; {len(plan['sidekiq_hosts'])} Sidekiq node(s), "
        f"{len(plan['producers'])} producer(s). Simulated {out['duration_s'] / 60:.0f} min, "
        f"steps {out['phase_gap_s']:g} s apart, seed {out['seed']}.")
    urgencies = [u for u in ("high", "low")
                 if any(u in p["slo"] for o in out["orders"].values() for p in o["phases"])]
    t = Table(title="Per phase (stranded = waiting in a queue no up, non-quiet process listens "
                    "to; wait = enqueued -> started)")
    for col in ("order", "phase", "from", "stranded max", "at end", "no listener configured",
                "longest wait", *[f"{u}: late (share on time)" for u in urgencies]):
        t.add_column(col, justify="left" if col in ("order", "phase") else "right")
    for name, order in out["orders"].items():
        for k, p in enumerate(order["phases"]):
            t.add_row(name if k == 0 else "", p["phase"], f"{p['start_s'] / 60:.0f}m",
                      f"{p['stranded_max']:,}", f"{p['stranded_end']:,}",
                      f"{p['unlistened_max']:,}", fmt_s(p["longest_wait_s"]),
                      *[_slo_cell(p["slo"], u) for u in urgencies],
                      end_section=k == len(order["phases"]) - 1)
    console.print(t)
    for name, order in out["orders"].items():
        r = order["run"]
        c = r["counters"]
        line = (f"{name}: {c['arrived']:,} jobs arrived, {c['succeeded']:,} succeeded, "
                f"{c['moved']:,} moved (+{c['moved_retries']:,} in the retry set), "
                f"{c['kept_unknown']:,} of unknown classes left in place, {r['lost']} lost "
                f"({'conserved' if r['conserved'] else '[red]NOT conserved[/]'}); "
                f"stranded at most {r['stranded_max']:,}, {r['stranded_end']:,} at the end; "
                f"longest wait {fmt_s(r['longest_wait_s'])}")
        if r["stranded_queues_end"]:
            line += " (left in " + ", ".join(
                f"{q}: {n}" for q, n in list(r["stranded_queues_end"].items())[:5]) + ")"
        console.print(line)
    for p in plan["problems"]:
        console.print(f"[red]plan problem:[/] {p}")
    for f in out["fleet_errors"]:
        console.print(f"[red]fleet check:[/] {f}")
    if out.get("plots"):
        console.print(f"plots: {', '.join(out['plots'])}")
    v = out["verdict"]
    console.print(f"\nVerdict on the {v['order']} order (the exit code):")
    for j in v["checked"]:
        mark = "[green]passed[/]" if j["passed"] else "[red]FAILED[/]"
        console.print(f"  {mark} {j['check']}: {j['detail']}.")
    for reason in v["reasons"]:
        console.print(f"  [red]safe order:[/] {reason}")
    for item in v["not_checked"]:
        console.print(f"  not checked: {item}.")
    if v["ok"]:
        console.print(f"[green]The {v['order']} order passes every check above.[/]")
    else:
        console.print(f"[red]The {v['order']} order fails a check above.[/]")
