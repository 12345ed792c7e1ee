"""Rehearse a routing migration in the simulator, safe order vs naive.

The plan comes from :func:`simulator.migration.plan.plan_migration` (nothing about routing or queue
groups is computed here).  Two timelines run with the same workload and seed:

* **safe**: warm-up; (a) ``listen-both``: each Sidekiq node in turn restarts with its
  old + new queue lists; (b) ``switch-producers``: the Rails hosts switch one at a time (the
  share of arrivals on the new routes goes k/P); (c) ``move-jobs``; (d) ``stop-old``: each
  node in turn restarts with its final queue lists, then a last ``move_jobs`` sweep for jobs
  that came back to a retired queue meanwhile (pushed back by a restart, or retried);
* **naive** (switch producers first): (b), then (d) without listen-both, then (c) last, as
  GitLab's documentation ends with the rake task.

Each step is one engine event (:class:`~simulator.sim.model.FleetEvent`), a phase gap apart.
Reported per phase and order: jobs stranded (waiting in a queue no up, non-quiet process
listens to: the max and at the phase's end), of those the jobs in queues that no process of
the fleet's configuration listens to at all, the longest queueing wait (of the jobs that
started in the phase; jobs still waiting at the end count with their wait so far), and the
share of jobs within the queueing targets per urgency (docs/behaviour.md §7).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import FleetError, WorkloadError
from ..inputs import MAX_SIMULATED_S
from ..sim.engine import RunResult, simulate
from ..sim.model import URGENCIES, FleetEvent, Process
from ..sim.progress import Progress, no_progress
from ..sim.shares import floor_share, late_text
from ..sim.workload import build_scenario

__all__ = [
    "ORDERS",
    "Judged",
    "OrderReport",
    "PhaseReport",
    "Rehearsal",
    "RehearsalReport",
    "RunTotals",
    "Step",
    "StepReport",
    "UrgencySlo",
    "Verdict",
    "Window",
    "judge",
    "rehearse",
    "timelines",
    "verdict",
]

ORDERS = ("safe", "naive")
_SAMPLE_S = 1.0  # stranded jobs sampled every second


@dataclass(frozen=True)
class Step:
    """One engine event of a timeline, with the phase it belongs to."""

    phase: str  # listen-both | switch-producers | move-jobs | stop-old
    what: str
    event: FleetEvent


def _short(host: str) -> str:
    return host.split(".")[0]


def _specs(host: str, processes: list[Any], tag: str) -> tuple[Any, ...]:
    return tuple(
        Process.placed(f"{_short(host)}/{p.index} {tag}", host, tuple(p.queues), p.concurrency,
                    p.group)
        for p in processes
    )


def timelines(plan: Any, *, start: float, gap: float) -> dict[str, list[Step]]:
    """The safe and the naive order as steps at ``start``, ``start + gap``, ..."""
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


@dataclass(frozen=True)
class UrgencySlo:
    """Jobs of one urgency that started in a window, against the queueing target."""

    jobs: int
    target_s: float | None  # None: no queueing target (throttled)
    #: Share of the jobs within the target, rounded *down* (1.0 only when none was late).
    within_target: float | None
    late: int | None
    met: bool
    #: The longest queueing wait of these jobs.
    longest_wait_s: float = 0.0


@dataclass(frozen=True)
class Window:
    """Stranded jobs and waits in a stretch of the run."""

    start_s: float
    end_s: float
    stranded_max: int
    stranded_end: int
    unlistened_max: int
    longest_wait_s: float
    slo: dict[str, UrgencySlo]


@dataclass(frozen=True)
class StepReport:
    """One step of a timeline and what happened in the gap after it."""

    at_s: float
    phase: str
    action: str
    what: str
    stranded_max: int
    stranded_end: int
    unlistened_max: int
    longest_wait_s: float


@dataclass(frozen=True)
class PhaseReport:
    phase: str  # warm-up, a step's phase, or settle
    window: Window

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, **asdict(self.window)}


@dataclass(frozen=True)
class RunTotals:
    """The whole run of one order."""

    stranded_max: int
    unlistened_max: int
    stranded_end: int
    longest_wait_s: float
    slo: dict[str, UrgencySlo]
    lost: int
    conserved: bool  # every job that arrived is in exactly one place at the end
    stranded_queues_end: dict[str, int]
    counters: dict[str, int]


@dataclass(frozen=True)
class OrderReport:
    """One order (safe or naive) simulated: per step, per phase and over the run."""

    steps: list[StepReport]
    phases: list[PhaseReport]
    run: RunTotals

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps],
                "phases": [p.to_dict() for p in self.phases],
                "run": asdict(self.run)}


@dataclass(frozen=True)
class RehearsalReport:
    duration_s: float
    phase_gap_s: float
    seed: int
    orders: dict[str, OrderReport]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report (``fleetsim migrate --json``)."""
        return {"duration_s": self.duration_s, "phase_gap_s": self.phase_gap_s,
                "seed": self.seed,
                "orders": {name: o.to_dict() for name, o in self.orders.items()}}


def _window_stats(run: RunResult, t0: float, t1: float, *, last: bool) -> Window:
    """Stranded samples in [t0, t1) (the end sample included for the run's last window) and
    per-bin statistics of the jobs that started in it."""
    samples = [s for s in run.stranded if t0 <= s[0] < t1 or (last and s[0] == t1)]
    rec = run.recorder
    bw = rec.bin_width
    b0 = min(round(t0 / bw), rec.nbins)
    b1 = rec.nbins if last else min(round(t1 / bw), rec.nbins)
    slo: dict[str, UrgencySlo] = {}
    longest = 0.0
    targets = rec.targets
    for u, name in enumerate(URGENCIES):
        n = int(rec.n_bu[b0:b1, u].sum())
        if not n:
            continue
        mine = round(float(rec.wmax_bu[b0:b1, u].max()), 3)
        longest = max(longest, mine)
        target = targets.queueing[name]
        if not math.isfinite(target):
            slo[name] = UrgencySlo(jobs=n, target_s=None, within_target=None, late=None,
                                   met=True, longest_wait_s=mine)
            continue
        ok = int(rec.wok_bu[b0:b1, u].sum())
        slo[name] = UrgencySlo(jobs=n, target_s=target, within_target=floor_share(ok, n),
                               late=n - ok, met=ok / n >= targets.queueing_apdex,
                               longest_wait_s=mine)
    return Window(
        start_s=round(t0, 3),
        end_s=round(t1, 3),
        stranded_max=max((s[1] for s in samples), default=0),
        stranded_end=samples[-1][1] if samples else 0,
        unlistened_max=max((s[2] for s in samples), default=0),
        longest_wait_s=round(longest, 3),
        slo=slo,
    )


def _report(run: RunResult, steps: list[Step], *, start: float, gap: float) -> OrderReport:
    duration = run.duration
    step_rows = []
    for step in steps:
        t0 = step.event.at
        t1 = min(t0 + gap, duration)
        w = _window_stats(run, t0, t1, last=False)
        step_rows.append(StepReport(
            at_s=round(t0, 3), phase=step.phase, action=step.event.action, what=step.what,
            stranded_max=w.stranded_max, stranded_end=w.stranded_end,
            unlistened_max=w.unlistened_max, longest_wait_s=w.longest_wait_s))
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
    phases = [
        PhaseReport(name, _window_stats(run, t0, min(t1, duration), last=k == len(windows) - 1))
        for k, (name, t0, t1) in enumerate(windows)
    ]
    c = dict(run.counters)
    # A Redis failover of the workload may deliver jobs twice, and producers may still keep
    # pushes at the end (simulator.sim.redis_failover).
    conserved = c["arrived"] + c.get("duplicated", 0) == (
        c["succeeded"] + c["dead"] + c["in_queues"] + c["running"] + c["retrying"] + c["lost"]
        + c.get("held_by_producers", 0))
    whole = _window_stats(run, 0.0, duration, last=True)
    return OrderReport(
        steps=step_rows,
        phases=phases,
        run=RunTotals(
            stranded_max=whole.stranded_max,
            unlistened_max=whole.unlistened_max,
            stranded_end=run.stranded_final,
            longest_wait_s=whole.longest_wait_s,
            slo=whole.slo,
            lost=c["lost"],
            conserved=conserved,
            stranded_queues_end={q: n for q, n in run.in_queues.items()
                                 if q in set(run.unserved_queues)},
            counters=c,
        ),
    )


@dataclass(frozen=True)
class Judged:
    """One thing the verdict checked: its name, whether it passed and the figures."""

    check: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """What ``fleetsim migrate`` judged (the exit code) and what it only reports."""

    checked: list[Judged]
    #: Reported, not judged: waits and SLOs of the safe order, the naive order, the model's gaps.
    not_checked: list[str]

    @property
    def ok(self) -> bool:
        return all(j.passed for j in self.checked)

    def to_dict(self) -> dict[str, Any]:
        return {"checked": [asdict(j) for j in self.checked], "not_checked": self.not_checked}


def _mins(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def judge(report: OrderReport, *, gap: float, problems: list[str] | None = None,
          fleet_errors: list[str] | None = None) -> Verdict:
    """The safe order's verdict: exactly what was checked, with the figures, and what was not.

    Checked: (1) configured listeners: no job waited in a queue that no process of the fleet's
    configuration (at that step) listens to; (2) restart windows: the jobs stranded while a
    node restarted (their queue's every listener down or quiet) were all picked up before the
    next step, and none is left at the end; (3) no job lost; (4) the plan and the fleet checks.
    Not judged: how long jobs waited and the queueing targets (reported per phase)."""
    run = report.run
    steps = report.steps
    late_steps = [s for s in steps if s.stranded_end]
    checked = [
        Judged("configured listeners", run.unlistened_max == 0,
               "no job waited in a queue that no process of the fleet's configuration listens "
               "to" if run.unlistened_max == 0 else
               f"up to {run.unlistened_max:,} job(s) waited in a queue that no process of the "
               "fleet's configuration listens to"),
        Judged("restart windows", not late_steps and run.stranded_end == 0,
               (f"jobs stranded while nodes restarted (queue listened to only by down or quiet "
                f"processes): at most {run.stranded_max:,}; "
                + ("all picked up before the next step" if not late_steps else
                   f"still stranded {gap:g} s later at {len(late_steps)} step(s): "
                   + "; ".join(f"{s.stranded_end:,} after '{s.phase}: {s.what}'"
                               for s in late_steps[:3]))
                + f" (checked at the end of each of the {len(steps)} steps' {gap:g} s gaps); "
                f"{run.stranded_end:,} at the end of the run")),
        Judged("no job lost", run.lost == 0 and run.conserved,
               f"{run.counters.get('arrived', 0):,} jobs arrived, {run.lost:,} lost"
               + ("; every job is in exactly one place at the end" if run.conserved
                  else "; NOT every job is accounted for at the end")),
        Judged("plan and fleet checks", not problems and not fleet_errors,
               f"{len(problems or [])} plan problem(s), {len(fleet_errors or [])} fleet "
               "check error(s)"),
    ]
    waits = []
    for name, e in run.slo.items():
        if e.target_s is None:
            waits.append(f"{name}: {e.jobs:,} jobs, no queueing target, longest wait "
                         f"{_mins(e.longest_wait_s)}")
        else:
            waits.append(f"{name}: {late_text(e.late or 0, e.jobs)} for the {e.target_s:g} s "
                         f"target, longest wait {_mins(e.longest_wait_s)}")
    not_checked = [
        "waits and queueing targets (reported, not judged): longest wait "
        f"{_mins(run.longest_wait_s)}" + ("; " + "; ".join(waits) if waits else ""),
        "the naive order (simulated for comparison only)",
        "what the model leaves out (fetch round-trips, dispatch overheads, a node that fails "
        "during the migration)",
    ]
    return Verdict(checked, not_checked)


def verdict(report: OrderReport) -> list[str]:
    """Why the safe order is not safe (empty: it is)."""
    reasons = []
    run = report.run
    if run.unlistened_max:
        reasons.append(f"{run.unlistened_max} job(s) waited in a queue that no process of "
                       "the fleet listens to")
    for s in report.steps:
        if s.stranded_end:
            reasons.append(f"{s.stranded_end} job(s) still stranded at the end of step "
                           f"'{s.phase}: {s.what}'")
    if run.stranded_end:
        reasons.append(f"{run.stranded_end} job(s) stranded at the end of the run")
    if run.lost or not run.conserved:
        reasons.append(f"{run.lost} job(s) lost (conservation: {run.conserved})")
    return reasons


@dataclass(frozen=True)
class Rehearsal:
    """Both orders simulated: the report, and each order's run and steps."""

    report: RehearsalReport
    runs: dict[str, RunResult]
    orders: dict[str, list[Step]]


def rehearse(fleet: Any, plan: Any, workload: Any, *, gap: float, duration: float | None,
             seed: int, progress: Progress | None = None) -> Rehearsal:
    """Simulate both orders (same workload and seed); ``progress`` as for the capacity search."""
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
    reports: dict[str, OrderReport] = {}
    runs = {}
    with (progress or no_progress)(len(ORDERS), "rehearsal (safe, naive)") as step:
        for name in ORDERS:
            steps = orders[name]
            scenario = replace(base, events=base.events + tuple(s.event for s in steps),
                               stranded_sample_s=_SAMPLE_S)
            run = simulate(scenario, duration=duration, seed=seed, bin_width=bin_width)
            runs[name] = run
            reports[name] = _report(run, steps, start=start, gap=gap)
            step()
    report = RehearsalReport(duration_s=duration, phase_gap_s=gap, seed=seed, orders=reports)
    return Rehearsal(report, runs, orders)
