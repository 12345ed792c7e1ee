"""``fleetsim migrate``: plan a routing migration and rehearse it, safe order vs naive."""

from __future__ import annotations

import argparse
import json

from ..errors import FleetError
from ..fleet.checks import check_fleet
from ..fleet.inventory import load_fleet
from ..migration.plan import load_target, plan_migration, plan_problems
from ..migration.rehearsal import judge, rehearse, verdict
from ..report.plots import write_rehearsal_plots
from ..report.rehearsal import render_rehearsal
from ..report.terminal import progress
from ..sim.workload import load_workload
from .options import check_plots_dir

__all__ = ["cmd_migrate"]


def cmd_migrate(args: argparse.Namespace) -> int:
    check_plots_dir(args.plots)
    workload = load_workload(args.workload)
    fleet = load_fleet(args.inventory)
    if not fleet.sidekiq_hosts():
        raise FleetError("the inventory has no Sidekiq host to migrate", file=args.inventory,
                         hint="add hosts to the sidekiq group")
    target = load_target(args.to, fleet)
    plan = plan_migration(fleet, target)
    problems = plan_problems(fleet, plan)
    findings = [f for f in check_fleet(fleet) if f.severity == "error"]
    rehearsal = rehearse(fleet, plan, workload, gap=args.phase_gap, duration=args.duration,
                         seed=args.seed,
                         progress=lambda total, label: progress(total, label, "orders"))
    report = rehearsal.report.to_dict()
    if args.plots:
        try:
            report["plots"] = [str(p) for p in write_rehearsal_plots(rehearsal, args.plots)]
        except OSError as exc:
            raise FleetError(f"--plots: cannot write the plots: {exc.strerror}", file=args.plots,
                             hint="give --plots a directory you can write to") from None
    safe = rehearsal.report.orders["safe"]
    reasons = verdict(safe)
    fleet_errors = [f"{f.code} {f.host}: {f.message}" for f in findings]
    judged = judge(safe, gap=args.phase_gap, problems=problems, fleet_errors=fleet_errors)
    summary = plan.to_dict()
    out = {
        "inventory": args.inventory,
        "target": args.to,
        "workload": args.workload,
        **report,
        "plan": {
            "producers": plan.producers,
            "sidekiq_hosts": list(plan.current),
            "added_queues": plan.added_queues,
            "retired_queues": plan.retired_queues,
            "moved_workers": summary["moved_workers"],
            "problems": problems,
        },
        "fleet_errors": fleet_errors,
        # The exit code: what was checked (configured listeners, restart windows, conservation,
        # plan and fleet checks), with the figures, and what was only reported.
        "verdict": {
            "order": "safe",
            **judged.to_dict(),
            "reasons": reasons,
            "ok": judged.ok and not reasons,
        },
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        render_rehearsal(out)
    return 0 if out["verdict"]["ok"] else 1
