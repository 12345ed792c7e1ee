"""``fleetsim capacity``: the cheapest processes x threads per queue group that meets the SLO."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import FleetError
from ..extras import require
from ..report.capacity import render_capacity
from ..report.terminal import progress, wide_console
from ..sim.capacity import DEFAULT_CONCURRENCY, GroupCapacity, Policy, search
from .simulate import scenario_of

__all__ = ["cmd_capacity"]


def cmd_capacity(args: argparse.Namespace) -> int:
    if args.scheduler:
        require("distributed", extra="dask", option="--scheduler")
    scenario = scenario_of(args)
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
