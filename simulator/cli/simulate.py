"""``fleetsim simulate`` and ``fleetsim capacity``: run the fleet model, print the results."""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from typing import Any

from ..errors import FleetError, WorkloadError
from ..extras import require
from ..fleet.inventory import load_fleet
from ..inputs import MAX_SEED
from ..report.capacity import render_capacity
from ..report.plots import write_plots
from ..report.summary import Summary, combine, summarize, to_jsonable
from ..report.tables import render
from ..report.terminal import progress, wide_console
from ..sim.capacity import DEFAULT_CONCURRENCY, GroupCapacity, Policy, search
from ..sim.engine import simulate
from ..sim.model import Scenario
from ..sim.workload import build_scenario, load_workload
from .options import check_plots_dir

__all__ = ["cmd_capacity", "cmd_simulate"]


def _scenario(args: argparse.Namespace) -> Scenario:
    workload = load_workload(args.workload)  # first: workload errors need no inventory
    fleet = load_fleet(args.inventory)
    return build_scenario(workload, fleet)


def _run_one(scenario: Scenario, duration: float, seed: int, plots: str | None) -> Summary:
    run = simulate(scenario, duration=duration, seed=seed)
    summary = summarize(run)
    if plots:
        try:
            summary = replace(summary, plots=[str(p) for p in write_plots(run, plots)])
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
        with ProcessPoolExecutor(max_workers=workers) as pool, \
                progress(len(seeds), "simulate", "replications") as step:
            futures = [pool.submit(_run_one, scenario, args.duration, s,
                                   args.plots if i == 0 else None)
                       for i, s in enumerate(seeds)]
            for _ in as_completed(futures):
                step()
            summaries = [f.result() for f in futures]
    summary = combine(summaries)
    if summaries[0].plots:
        summary = replace(summary, plots=summaries[0].plots)
    if args.json:
        print(json.dumps(to_jsonable(summary.to_dict()), indent=2))
    else:
        render(summary)
        if summary.plots:
            print(f"plots: {', '.join(summary.plots)}")
    return 0 if summary.slo.met else 1


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
    policy = Policy(max_utilisation=getattr(args, "max_utilisation", None),
                    n_plus_one=getattr(args, "n_plus_one", False))
    report: dict[str, Any] = {}
    ok = True
    console = wide_console(110)
    for group in args.group:
        results = search(scenario, group, duration=args.duration, seeds=seeds,
                         max_processes=args.max_processes,
                         concurrency=args.concurrency or DEFAULT_CONCURRENCY,
                         workers=args.workers, scheduler=args.scheduler,
                         progress=lambda total, label: progress(total, label, "candidates"),
                         policy=policy)
        result = GroupCapacity.of(scenario, group, results)
        ok = ok and result.cheapest is not None
        report[group] = result.to_dict()
        if not args.json:
            render_capacity(result, console)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0 if ok else 1
