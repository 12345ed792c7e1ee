"""``fleetsim simulate`` and ``fleetsim capacity``: run the fleet model, print the results."""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import FleetError, WorkloadError
from ..extras import require
from ..fleet.inventory import load_fleet
from ..inputs import MAX_SEED
from ..report.plots import write_plots
from ..report.tables import combine, render, summarize, to_jsonable
from ..sim.capacity import DEFAULT_CONCURRENCY, cheapest, search
from ..sim.engine import simulate
from ..sim.model import Scenario
from ..sim.workload import build_scenario, load_workload
from .options import check_plots_dir

__all__ = ["cmd_capacity", "cmd_simulate"]


def _scenario(args: argparse.Namespace) -> Scenario:
    workload = load_workload(args.workload)  # first: workload errors need no inventory
    fleet = load_fleet(args.inventory)
    return build_scenario(workload, fleet)


def _run_one(scenario: Any, duration: float, seed: int, plots: str | None) -> dict[str, Any]:
    run = simulate(scenario, duration=duration, seed=seed)
    summary = summarize(run)
    if plots:
        try:
            summary["plots"] = [str(p) for p in write_plots(run, plots)]
        except OSError as exc:
            raise FleetError(f"--plots: cannot write the plots: {exc.strerror}", file=plots,
                             hint="give --plots a directory you can write to") from None
    return summary


def cmd_simulate(args: argparse.Namespace) -> int:
    check_plots_dir(args.plots)
    if args.seed + args.replications - 1 > MAX_SEED:
        raise FleetError(f"--seed {args.seed} with --replications {args.replications} runs "
                         f"past the largest seed ({MAX_SEED})", hint="give a smaller --seed")
    scenario = _scenario(args)
    if not scenario.processes:
        raise WorkloadError("the inventory has no Sidekiq process to simulate",
                            file=args.inventory, hint="add hosts to the sidekiq group")
    seeds = [args.seed + r for r in range(args.replications)]
    if len(seeds) == 1:
        summaries = [_run_one(scenario, args.duration, seeds[0], args.plots)]
    else:
        workers = min(args.workers or os.cpu_count() or 1, len(seeds))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_one, scenario, args.duration, s,
                                   args.plots if i == 0 else None)
                       for i, s in enumerate(seeds)]
            summaries = [f.result() for f in futures]
    summary = combine(summaries)
    if summaries[0].get("plots"):
        summary["plots"] = summaries[0]["plots"]
    if args.json:
        print(json.dumps(to_jsonable(summary), indent=2))
    else:
        render(summary)
        if summary.get("plots"):
            print(f"plots: {', '.join(summary['plots'])}")
    return 0 if summary["slo"]["met"] else 1


def cmd_capacity(args: argparse.Namespace) -> int:
    if args.scheduler:
        require("distributed", extra="dask", option="--scheduler")
    scenario = _scenario(args)
    groups = {p.group for p in scenario.processes}
    for g in args.group:
        if g not in groups:
            raise FleetError(f"no Sidekiq process of the inventory runs queue group {g!r}",
                             file=args.inventory,
                             hint="queue groups: " + ", ".join(sorted(groups)))
    seeds = tuple(args.seed + r for r in range(args.replications))
    report: dict[str, Any] = {}
    ok = True
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 110))
    for group in args.group:
        results = search(scenario, group, duration=args.duration, seeds=seeds,
                         max_processes=args.max_processes,
                         concurrency=args.concurrency or DEFAULT_CONCURRENCY,
                         workers=args.workers, scheduler=args.scheduler)
        best = cheapest(results)
        ok = ok and best is not None
        today = [p for p in scenario.processes if p.group == group]
        report[group] = {
            "today": {"processes": len(today), "threads": sum(p.concurrency for p in today)},
            "cheapest": None if best is None else {
                "processes": best.candidate.processes,
                "concurrency": best.candidate.concurrency,
                "threads": best.candidate.threads,
                "nodes": list(best.candidate.nodes),
                "utilisation": round(best.utilisation, 4),
                "worst_within_target": round(best.worst_share, 6),
            },
            "candidates": [
                {"processes": r.candidate.processes, "concurrency": r.candidate.concurrency,
                 "threads": r.candidate.threads, "met": r.met,
                 "worst_within_target": round(r.worst_share, 6),
                 "worst_urgency": r.worst_urgency, "utilisation": round(r.utilisation, 4),
                 "backlog_end": r.backlog_end}
                for r in results
            ],
        }
        if args.json:
            continue
        t = Table(title=f"queue group {group!r}: candidates (cheapest first)")
        for col in ("processes", "threads each", "threads", "within target (worst)",
                    "utilisation", "backlog at end", "SLO"):
            t.add_column(col, justify="right")
        for r in results:
            t.add_row(str(r.candidate.processes), str(r.candidate.concurrency),
                      str(r.candidate.threads), f"{r.worst_share:.4%}",
                      f"{r.utilisation:.1%}", f"{r.backlog_end:,}",
                      "[green]met[/]" if r.met else "[red]missed[/]")
        console.print(t)
        if best is None:
            console.print(f"[red]No candidate for {group!r} meets the queueing targets;[/] "
                          "raise --max-processes or --concurrency.")
        else:
            c = best.candidate
            console.print(
                f"{group!r}: {c.processes} process(es) x {c.concurrency} threads = {c.threads} "
                f"threads (today {report[group]['today']['threads']}) meet every queueing "
                f"target; on {', '.join(n.split('.')[0] for n in c.nodes[:c.processes])}.")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0 if ok else 1
