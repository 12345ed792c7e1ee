"""``fleetsim simulate``: run the fleet model, print the results.

Start-up counts (a simulation is often seconds long): what only ``--plots`` or
``--replications`` need is imported when they are asked for."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace

from ..errors import FleetError, WorkloadError
from ..fleet.inventory import load_fleet
from ..inputs import MAX_SEED
from ..report.summary import Summary, combine, summarize, to_jsonable
from ..report.tables import render
from ..sim.engine import simulate
from ..sim.model import Scenario
from ..sim.workload import build_scenario, load_workload
from .options import check_plots_dir

__all__ = ["cmd_simulate", "scenario_of"]


def scenario_of(args: argparse.Namespace) -> Scenario:
    workload = load_workload(args.workload)  # first: workload errors need no inventory
    fleet = load_fleet(args.inventory)
    return build_scenario(workload, fleet)


def _run_one(scenario: Scenario, duration: float, seed: int, plots: str | None) -> Summary:
    run = simulate(scenario, duration=duration, seed=seed)
    summary = summarize(run)
    if plots:
        from ..report.plots import write_plots  # matplotlib: only with --plots

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
    scenario = scenario_of(args)
    if not scenario.processes:
        raise WorkloadError("the inventory has no Sidekiq process to simulate",
                            file=args.inventory, hint="add hosts to the sidekiq group")
    seeds = [args.seed + r for r in range(args.replications)]
    if len(seeds) == 1:
        summaries = [_run_one(scenario, args.duration, seeds[0], args.plots)]
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from ..report.terminal import progress

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
