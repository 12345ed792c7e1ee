"""``fleetsim simulate`` and ``fleetsim capacity`` (wired into :mod:`simulator.cli`)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .errors import FleetError, WorkloadError, excerpt
from .extras import require
from .inputs import MAX_SEED, check_output_dir

__all__ = ["add_capacity_parser", "add_migrate_parser", "add_simulate_parser", "cmd_capacity",
           "cmd_simulate"]


def _duration(text: str) -> float:
    """Simulated time for an option: above 0, at most 30 days (``MAX_SIMULATED_S``)."""
    from .workload import parse_duration

    try:
        seconds = parse_duration(text, what="time")
    except FleetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be above 0 (e.g. 90s, 15m, 1h)")
    return seconds


def _seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{excerpt(text)} is not a whole number (give a seed from 0 to {MAX_SEED})"
        ) from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"give a seed from 0 to {MAX_SEED}, not "
                                         f"{excerpt(text)}")
    return value


def check_plots_dir(path: str | None) -> None:
    """Fail before simulating when --plots cannot be written (exit 2, not a late traceback)."""
    if path:
        require("matplotlib", extra="plots", option="--plots")
        check_output_dir(path, option="--plots")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{excerpt(text)} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{excerpt(text)}: give whole numbers like 5,10,20") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts must be 1 or more")
    return values


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY",
                   help="Ansible inventory of the fleet (the one site.yml deploys)")
    p.add_argument("--workload", required=True, metavar="FILE",
                   help="workload YAML (docs/simulator.md; examples/workloads/)")
    p.add_argument("--duration", type=_duration, default=3600.0, metavar="TIME",
                   help="simulated time: 90s, 15m, 1h, 2d (default 1h)")
    p.add_argument("--seed", type=_seed, default=1,
                   help=f"random seed, 0 to {MAX_SEED} (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", help="simulate the fleet under a workload: latency, SLOs, Redis CPU",
        description="Simulate the inventory's Sidekiq fleet under a workload. Exit 0 when "
                    "every SLO target is met, 1 when one is missed, 2 for unusable input.")
    _common(p)
    p.add_argument("--replications", type=_positive_int, default=1, metavar="R",
                   help="independent runs (seeds SEED..SEED+R-1); R > 1 gives 95%% "
                        "confidence intervals")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots (of the first run) to DIR")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="parallel replications (default: all cores)")
    p.set_defaults(func=cmd_simulate)
    return p


def add_capacity_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "capacity", help="smallest processes x threads per queue group that meets the SLOs",
        description="For each --group (an entry of sidekiq_queue_groups), simulate candidate "
                    "numbers of processes and threads in parallel and report the cheapest that "
                    "meets every queueing target. Exit 1 when no candidate does.")
    _common(p)
    p.add_argument("--group", action="append", required=True, metavar="NAME",
                   help="queue group to size, as written in sidekiq_queue_groups (repeatable)")
    p.add_argument("--concurrency", type=_int_list, default=None, metavar="LIST",
                   help="threads per process to try (default 5,10,15,20,25,30,40,50)")
    p.add_argument("--max-processes", type=_positive_int, default=None, metavar="N",
                   help="most processes of the group to try (default: twice today's)")
    p.add_argument("--replications", type=_positive_int, default=1, metavar="R",
                   help="seeds per candidate (a candidate must pass with every one)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the candidates on an existing Dask cluster (tcp://host:8786)")
    p.set_defaults(func=cmd_capacity)
    return p


def add_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``fleetsim migrate`` (:mod:`simulator.migrate_sim`)."""
    from .migrate_sim import add_migrate_parser as add

    return add(subparsers)


def _scenario(args: argparse.Namespace) -> Any:
    from .inventory import load_fleet
    from .workload import build_scenario, load_workload

    workload = load_workload(args.workload)  # first: workload errors need no inventory
    fleet = load_fleet(args.inventory)
    return build_scenario(workload, fleet)


def _run_one(scenario: Any, duration: float, seed: int, plots: str | None) -> dict[str, Any]:
    from .engine import simulate
    from .results import summarize

    run = simulate(scenario, duration=duration, seed=seed)
    summary = summarize(run)
    if plots:
        from .plots import write_plots

        try:
            summary["plots"] = [str(p) for p in write_plots(run, plots)]
        except OSError as exc:
            raise FleetError(f"--plots: cannot write the plots: {exc.strerror}", file=plots,
                             hint="give --plots a directory you can write to") from None
    return summary


def cmd_simulate(args: argparse.Namespace) -> int:
    from .results import combine, render, to_jsonable

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
        from concurrent.futures import ProcessPoolExecutor

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
    from rich.console import Console
    from rich.table import Table

    from .capacity import DEFAULT_CONCURRENCY, cheapest, search

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
