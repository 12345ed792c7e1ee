"""``fleetsim migrate``: rehearse a routing migration in the simulator, safe order vs naive.

The plan comes from :func:`simulator.migration.plan_migration` (nothing about routing or queue
groups is computed here).  Two timelines run with the same workload and seed:

* **safe**: warm-up; (a) ``listen-both``: each Sidekiq node in turn restarts with its
  old + new queue lists; (b) ``switch-producers``: the Rails hosts switch one at a time (the
  share of arrivals on the new routes goes k/P); (c) ``move-jobs``; (d) ``stop-old``: each
  node in turn restarts with its final queue lists, then a last ``move_jobs`` sweep for jobs
  that came back to a retired queue meanwhile (pushed back by a restart, or retried);
* **naive** (switch producers first): (b), then (d) without listen-both, then (c) last, as
  GitLab's documentation ends with the rake task.

Each step is one engine event (:class:`~simulator.engine.FleetEvent`), a phase gap apart.
Reported per phase and order: jobs stranded (waiting in a queue no up, non-quiet process
listens to: the max and at the phase's end), of those the jobs in queues that no process of
the fleet's configuration listens to at all, the longest queueing wait (of the jobs that
started in the phase; jobs still waiting at the end count with their wait so far), and the
share of jobs within the queueing targets per urgency (semantics.md section 7).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import FleetError, WorkloadError
from .inputs import MAX_SIMULATED_S

__all__ = ["Step", "add_migrate_parser", "cmd_migrate", "rehearse", "timelines"]

ORDERS = ("safe", "naive")
_SAMPLE_S = 1.0  # stranded jobs sampled every second


@dataclass(frozen=True)
class Step:
    """One engine event of a timeline, with the phase it belongs to."""

    phase: str  # listen-both | switch-producers | move-jobs | stop-old
    what: str
    event: Any  # FleetEvent


def _short(host: str) -> str:
    return host.split(".")[0]


def _specs(host: str, processes: list[Any], tag: str) -> tuple[Any, ...]:
    from .engine import ProcessSpec

    return tuple(
        ProcessSpec(f"{_short(host)}/{p.index} {tag}", host, tuple(p.queues), p.concurrency,
                    p.group)
        for p in processes
    )


def timelines(plan: Any, *, start: float, gap: float) -> dict[str, list[Step]]:
    """The safe and the naive order as steps at ``start``, ``start + gap``, ..."""
    from .engine import FleetEvent

    new_routes = {key: (r.queue, r.shard) for key, r in plan.new.resolve().items()}
    hosts = list(plan.current)
    producers = list(plan.producers)

    def listen(host: str, state: dict[str, Any], tag: str, phase: str, what: str) -> Step:
        return Step(phase, f"{_short(host)} {what}",
                    FleetEvent(0.0, "listen", node=host,
                               processes=_specs(host, state[host].processes, tag)))

    def switches() -> list[Step]:
        if not producers:  # no Rails host in the inventory: one switch for every producer
            return [Step("switch-producers", "every producer switches to the new routing",
                         FleetEvent(0.0, "routing", routes=new_routes, share=1.0))]
        n = len(producers)
        return [Step("switch-producers",
                     f"{_short(h)} switches to the new routing ({k}/{n} of producers)",
                     FleetEvent(0.0, "routing", routes=new_routes, share=k / n))
                for k, h in enumerate(producers, start=1)]

    def move(what: str, phase: str = "move-jobs") -> Step:
        return Step(phase, what, FleetEvent(0.0, "move_jobs"))

    safe = (
        [listen(h, plan.both, "both", "listen-both", "listens to old and new queues")
         for h in hosts]
        + switches()
        + [move("waiting jobs move off retired queues (queued lists and retry set)")]
        + [listen(h, plan.final, "final", "stop-old", "stops listening to retired queues")
           for h in hosts]
        + [move("last sweep: jobs that came back to a retired queue", "stop-old")]
    )
    naive = (
        switches()
        + [listen(h, plan.final, "final", "stop-old", "restarts with its final queue lists")
           for h in hosts]
        + [move("waiting jobs move off retired queues (queued lists and retry set)")]
    )
    out = {}
    for name, steps in (("safe", safe), ("naive", naive)):
        out[name] = [
            replace(s, event=replace(s.event, at=start + i * gap, label=f"{s.phase}: {s.what}"))
            for i, s in enumerate(steps)
        ]
    return out


def _window_stats(run: Any, t0: float, t1: float, *, last: bool) -> dict[str, Any]:
    """Stranded samples in [t0, t1) (the end sample included for the run's last window) and
    per-bin statistics of the jobs that started in it."""
    from .engine import URGENCIES

    samples = [s for s in run.stranded if t0 <= s[0] < t1 or (last and s[0] == t1)]
    rec = run.recorder
    bw = rec.bin_width
    b0 = min(round(t0 / bw), rec.nbins)
    b1 = rec.nbins if last else min(round(t1 / bw), rec.nbins)
    slo: dict[str, Any] = {}
    longest = 0.0
    targets = rec.targets
    for u, name in enumerate(URGENCIES):
        n = int(rec.n_bu[b0:b1, u].sum())
        if not n:
            continue
        longest = max(longest, float(rec.wmax_bu[b0:b1, u].max()))
        target = targets.queueing[name]
        if not math.isfinite(target):
            slo[name] = {"jobs": n, "target_s": None, "within_target": None, "late": None,
                         "met": True}
            continue
        ok = int(rec.wok_bu[b0:b1, u].sum())
        within = ok / n
        slo[name] = {"jobs": n, "target_s": target, "within_target": round(within, 6),
                     "late": n - ok, "met": within >= targets.queueing_apdex}
    return {
        "start_s": round(t0, 3),
        "end_s": round(t1, 3),
        "stranded_max": max((s[1] for s in samples), default=0),
        "stranded_end": samples[-1][1] if samples else 0,
        "unlistened_max": max((s[2] for s in samples), default=0),
        "longest_wait_s": round(longest, 3),
        "slo": slo,
    }


def _report(run: Any, steps: list[Step], *, start: float, gap: float) -> dict[str, Any]:
    duration = run.duration
    step_rows = []
    for step in steps:
        t0 = step.event.at
        t1 = min(t0 + gap, duration)
        w = _window_stats(run, t0, t1, last=False)
        step_rows.append({"at_s": round(t0, 3), "phase": step.phase, "action":
                          step.event.action, "what": step.what,
                          "stranded_max": w["stranded_max"], "stranded_end": w["stranded_end"],
                          "unlistened_max": w["unlistened_max"],
                          "longest_wait_s": w["longest_wait_s"]})
    # Phases: consecutive steps of the same phase, plus warm-up before and settle after.
    windows: list[tuple[str, float, float]] = [("warm-up", 0.0, start)]
    for step in steps:
        t0 = step.event.at
        if windows[-1][0] == step.phase:
            windows[-1] = (step.phase, windows[-1][1], t0 + gap)
        else:
            windows.append((step.phase, t0, t0 + gap))
    end = windows[-1][2]
    if duration > end:
        windows.append(("settle", end, duration))
    phases = []
    for k, (name, t0, t1) in enumerate(windows):
        w = _window_stats(run, t0, min(t1, duration), last=k == len(windows) - 1)
        phases.append({"phase": name, **w})
    c = dict(run.counters)
    conserved = c["arrived"] == (c["succeeded"] + c["dead"] + c["in_queues"] + c["running"]
                                 + c["retrying"] + c["lost"])
    whole = _window_stats(run, 0.0, duration, last=True)
    return {
        "steps": step_rows,
        "phases": phases,
        "run": {
            "stranded_max": whole["stranded_max"],
            "unlistened_max": whole["unlistened_max"],
            "stranded_end": run.stranded_final,
            "longest_wait_s": whole["longest_wait_s"],
            "slo": whole["slo"],
            "lost": c["lost"],
            "conserved": conserved,
            "stranded_queues_end": {q: n for q, n in run.in_queues.items()
                                    if q in set(run.unserved_queues)},
            "counters": c,
        },
    }


def _verdict(report: dict[str, Any]) -> list[str]:
    """Why the safe order is not safe (empty: it is)."""
    reasons = []
    run = report["run"]
    if run["unlistened_max"]:
        reasons.append(f"{run['unlistened_max']} job(s) waited in a queue that no process of "
                       "the fleet listens to")
    for s in report["steps"]:
        if s["stranded_end"]:
            reasons.append(f"{s['stranded_end']} job(s) still stranded at the end of step "
                           f"'{s['phase']}: {s['what']}'")
    if run["stranded_end"]:
        reasons.append(f"{run['stranded_end']} job(s) stranded at the end of the run")
    if run["lost"] or not run["conserved"]:
        reasons.append(f"{run['lost']} job(s) lost (conservation: {run['conserved']})")
    return reasons


def rehearse(fleet: Any, plan: Any, workload: Any, *, gap: float, duration: float | None,
             seed: int, plots: str | None = None) -> dict[str, Any]:
    """Simulate both orders; return the report (JSON-ready)."""
    from .engine import simulate
    from .workload import build_scenario

    base = build_scenario(workload, fleet)
    if any(e.action == "routing" for e in base.events):
        raise WorkloadError("the workload has a routing event; fleetsim migrate sets the routing",
                            file=workload.path,
                            hint="remove the routing events (keep node and restart events)")
    start = gap
    orders = timelines(plan, start=start, gap=gap)
    longest = max(len(steps) for steps in orders.values())
    needed = start + longest * gap
    if duration is None:
        duration = needed + 2 * gap
        if duration > MAX_SIMULATED_S:
            most = MAX_SIMULATED_S / (longest + 3)
            raise FleetError(
                f"--phase-gap {gap:g} s makes the migration ({longest} steps, warm-up and two "
                f"gaps to settle: {duration / 86400:.1f} days) longer than fleetsim simulates "
                f"({MAX_SIMULATED_S / 86400:g} days)",
                hint=f"give --phase-gap {math.floor(most / 60)}m or less")
    elif duration < needed:
        raise FleetError(
            f"--duration {duration:g} s is shorter than the migration ({needed:g} s: "
            f"warm-up and {longest} steps {gap:g} s apart)",
            hint=f"give --duration {math.ceil((needed + 2 * gap) / 60)}m or more, or a shorter "
                 "--phase-gap")
    bin_width = gap / max(1, math.ceil(gap / 30.0))
    report: dict[str, Any] = {"duration_s": duration, "phase_gap_s": gap, "seed": seed,
                              "orders": {}}
    runs = {}
    for name in ORDERS:
        steps = orders[name]
        scenario = replace(base, events=base.events + tuple(s.event for s in steps),
                           stranded_sample_s=_SAMPLE_S)
        if sys.stderr.isatty():
            print(f"fleetsim: simulating the {name} order ...", file=sys.stderr)
        run = simulate(scenario, duration=duration, seed=seed, bin_width=bin_width)
        runs[name] = run
        report["orders"][name] = _report(run, steps, start=start, gap=gap)
    if plots:
        try:
            report["plots"] = [str(p) for p in _plots(runs, orders, plots)]
        except OSError as exc:
            raise FleetError(f"--plots: cannot write the plots: {exc.strerror}", file=plots,
                             hint="give --plots a directory you can write to") from None
    return report


def _plots(runs: dict[str, Any], orders: dict[str, list[Step]], out_dir: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .engine import URGENCIES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colours = {"safe": "#2ca02c", "naive": "#d62728"}
    written = []

    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for ax, name in zip(axes, ORDERS, strict=True):
        run = runs[name]
        t = np.array([s[0] for s in run.stranded]) / 60
        ax.step(t, [s[1] for s in run.stranded], where="post", color=colours[name],
                label="stranded (no listener up)")
        ax.step(t, [s[2] for s in run.stranded], where="post", color="black", lw=0.8,
                ls="--", label="no listener configured")
        for step in orders[name]:
            ax.axvline(step.event.at / 60, color="grey", lw=0.5, alpha=0.5)
        ax.set_title(f"{name} order: jobs stranded (grey lines: migration steps)", fontsize=10)
        ax.set_ylabel("jobs")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (min)")
    fig.tight_layout()
    path = out / "stranded.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(11, 4))
    for name in ORDERS:
        rec = runs[name].recorder
        x = (np.arange(rec.nbins) + 0.5) * rec.bin_width / 60
        for u, urgency in enumerate(URGENCIES):
            if not rec.n_bu[:, u].sum():
                continue
            style = {"high": "-", "low": "--", "throttled": ":"}[urgency]
            ax.plot(x, np.maximum(rec.wmax_bu[:, u], 1e-3), style, color=colours[name],
                    label=f"{name}, {urgency}")
    for urgency, target in runs["safe"].recorder.targets.queueing.items():
        if math.isfinite(target):
            ax.axhline(target, color="black", lw=0.8, alpha=0.5)
            ax.annotate(f"{urgency} target {target:g} s", (0, target), fontsize=8,
                        xytext=(2, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_ylabel("longest queueing wait (s)")
    ax.set_xlabel("time (min)")
    ax.set_title("Longest wait of the jobs started in each interval", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


# ----------------------------------------------------------------------------- CLI
def add_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .inputs import MAX_SEED
    from .sim_cli import _duration, _seed

    p = subparsers.add_parser(
        "migrate", help="rehearse a routing migration: safe phase order vs switching producers "
                        "first",
        description="Plan the migration to the --to routing, then simulate it under the "
                    "workload twice (safe order, naive order) and report stranded jobs, the "
                    "longest wait and SLO breaches per phase. Exit 0 when the safe order "
                    "strands no job and the fleet checks pass, 1 when it would strand a job "
                    "or the plan has problems, 2 for unusable input.")
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY",
                   help="Ansible inventory of the fleet today")
    p.add_argument("--to", required=True, metavar="FILE",
                   help="target routing: sidekiq_routing_rules (and optionally "
                        "sidekiq_queue_groups / hosts); examples/migrations/")
    p.add_argument("--workload", required=True, metavar="FILE",
                   help="workload YAML (docs/simulator.md; examples/workloads/)")
    p.add_argument("--duration", type=_duration, default=None, metavar="TIME",
                   help="simulated time (default: the migration plus two phase gaps)")
    p.add_argument("--phase-gap", type=_duration, default=300.0, metavar="TIME",
                   help="time between two steps (node restarts, producer switches), also "
                        "the warm-up (default 5m)")
    p.add_argument("--seed", type=_seed, default=1,
                   help=f"random seed, 0 to {MAX_SEED} (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plots", metavar="DIR", help="write stranded.png and latency.png to DIR")
    p.set_defaults(func=cmd_migrate)
    return p


def cmd_migrate(args: argparse.Namespace) -> int:
    from .checks import check_fleet
    from .inventory import load_fleet
    from .migration import load_target, plan_migration, plan_problems
    from .sim_cli import check_plots_dir
    from .workload import load_workload

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
    report = rehearse(fleet, plan, workload, gap=args.phase_gap, duration=args.duration,
                      seed=args.seed, plots=args.plots)
    reasons = _verdict(report["orders"]["safe"])
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
        "fleet_errors": [f"{f.code} {f.host}: {f.message}" for f in findings],
        "verdict": {
            "safe_strands_no_job": not reasons,
            "reasons": reasons,
            "ok": not reasons and not problems and not findings,
        },
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _render(out)
    return 0 if out["verdict"]["ok"] else 1


def _slo_cell(slo: dict[str, Any], urgency: str) -> str:
    e = slo.get(urgency)
    if not e or e["within_target"] is None:
        return "-"
    text = f"{e['within_target'] * 100:.2f}%"
    if e["late"]:
        text += f" ({e['late']:,} late)"
    return text if e["met"] else f"[red]{text}[/]"


def _render(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from .results import _fmt_s

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))
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
                "longest wait", *[f"{u} within target" for u in urgencies]):
        t.add_column(col, justify="left" if col in ("order", "phase") else "right")
    for name, order in out["orders"].items():
        for k, p in enumerate(order["phases"]):
            t.add_row(name if k == 0 else "", p["phase"], f"{p['start_s'] / 60:.0f}m",
                      f"{p['stranded_max']:,}", f"{p['stranded_end']:,}",
                      f"{p['unlistened_max']:,}", _fmt_s(p["longest_wait_s"]),
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
                f"longest wait {_fmt_s(r['longest_wait_s'])}")
        if r["stranded_queues_end"]:
            line += " (left in " + ", ".join(
                f"{q}: {n}" for q, n in list(r["stranded_queues_end"].items())[:5]) + ")"
        console.print(line)
    for p in plan["problems"]:
        console.print(f"[red]plan problem:[/] {p}")
    for f in out["fleet_errors"]:
        console.print(f"[red]fleet check:[/] {f}")
    for reason in out["verdict"]["reasons"]:
        console.print(f"[red]safe order:[/] {reason}")
    if out.get("plots"):
        console.print(f"plots: {', '.join(out['plots'])}")
    if out["verdict"]["ok"]:
        console.print("[green]The safe order strands no job; the plan and the fleet checks "
                      "pass.[/]")
