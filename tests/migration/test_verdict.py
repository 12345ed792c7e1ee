"""``fleetsim migrate``'s verdict says exactly what it checked (configured listeners, restart
windows, conservation, plan and fleet checks) and what it did not (waits, SLOs), and a late job
is never rounded away."""

from __future__ import annotations

import json
import re
from pathlib import Path

from simulator.cli.main import main
from simulator.migration.rehearsal import (
    OrderReport,
    RunTotals,
    StepReport,
    UrgencySlo,
    judge,
    verdict,
)
from simulator.report.rehearsal import _slo_cell

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "inventories" / "example")
TO_FEW = str(ROOT / "examples" / "migrations" / "to-few-queues.yml")
WORKLOAD = str(ROOT / "examples" / "workloads" / "example.yml")


def _report(*, stranded_max=498, step_end=0, unlistened=0, lost=0, run_end=0,
            low_late=2) -> OrderReport:
    steps = [StepReport(at_s=300.0 * (k + 1), phase="listen-both", action="listen",
                        what=f"sidekiq{k + 1} listens to old and new queues",
                        stranded_max=stranded_max if k == 0 else 0,
                        stranded_end=step_end if k == 0 else 0, unlistened_max=0,
                        longest_wait_s=0.0) for k in range(3)]
    slo = {"high": UrgencySlo(1000, 10.0, 1.0, 0, True, 4.9),
           "low": UrgencySlo(45_123, 60.0, 0.999955, low_late, True, 954.0),
           "throttled": UrgencySlo(500, None, None, None, True, 30.0)}
    run = RunTotals(stranded_max=stranded_max, unlistened_max=unlistened, stranded_end=run_end,
                    longest_wait_s=954.0, slo=slo, lost=lost, conserved=lost == 0,
                    stranded_queues_end={}, counters={"arrived": 46_623})
    return OrderReport(steps=steps, phases=[], run=run)


def test_a_passing_verdict_names_what_it_checked_with_the_figures():
    v = judge(_report(), gap=300.0, problems=[], fleet_errors=[])
    assert v.ok
    checks = {j.check: j for j in v.checked}
    assert list(checks) == ["configured listeners", "restart windows", "no job lost",
                            "plan and fleet checks"]
    assert "at most 498" in checks["restart windows"].detail
    assert "all picked up before the next step" in checks["restart windows"].detail
    assert "each of the 3 steps' 300 s gaps" in checks["restart windows"].detail
    assert "46,623 jobs arrived, 0 lost" in checks["no job lost"].detail
    waits = v.not_checked[0]
    assert "longest wait 15.9 min" in waits
    assert "low: 2 of 45,123 late (99.99% on time) for the 60 s target" in waits
    assert "throttled: 500 jobs, no queueing target" in waits
    assert any("naive order" in item for item in v.not_checked)


def test_each_failed_check_says_what_failed():
    v = judge(_report(step_end=7, run_end=3), gap=300.0)
    restart = next(j for j in v.checked if j.check == "restart windows")
    assert not v.ok and not restart.passed
    assert "still stranded 300 s later at 1 step(s): 7 after 'listen-both: sidekiq1" \
        in restart.detail and "3 at the end of the run" in restart.detail
    v = judge(_report(unlistened=12), gap=60.0)
    (listeners,) = [j for j in v.checked if j.check == "configured listeners"]
    assert not listeners.passed and "up to 12 job(s)" in listeners.detail
    v = judge(_report(lost=1), gap=60.0)
    assert not next(j for j in v.checked if j.check == "no job lost").passed
    v = judge(_report(), gap=60.0, problems=["stop-old: queue 'mailers' has no listener"])
    assert not v.ok
    # The reasons (kept for scripts) agree with the judged checks.
    assert verdict(_report(step_end=7)) and not verdict(_report())


def test_a_late_job_is_never_rounded_away_in_a_cell():
    cell = _slo_cell({"low": {"within_target": 0.999955, "late": 2, "jobs": 45_123,
                              "met": True}}, "low")
    assert cell == "2 late (99.99%)"
    one_in_ten_million = {"within_target": 0.999999, "late": 1, "jobs": 10_000_000,
                          "met": True}
    assert "100" not in _slo_cell({"low": one_in_ten_million}, "low")
    assert _slo_cell({"low": {"within_target": 1.0, "late": 0, "jobs": 5, "met": True}},
                     "low") == "0 late"


def test_migrate_on_the_example_inventory_says_what_it_checked(capsys):
    rc = main(["migrate", "-i", EXAMPLE, "--to", TO_FEW, "--workload", WORKLOAD,
               "--phase-gap", "1m", "--json"])
    out = json.loads(capsys.readouterr().out)
    v = out["verdict"]
    safe = out["orders"]["safe"]
    assert rc == (0 if v["ok"] else 1)
    restart = next(j for j in v["checked"] if j["check"] == "restart windows")
    assert f"at most {safe['run']['stranded_max']:,}" in restart["detail"]
    # Every share within target in the JSON is rounded down: below 1 whenever a job was late.
    for order in out["orders"].values():
        for window in [p for p in order["phases"]] + [order["run"]]:
            for e in window["slo"].values():
                if e["late"]:
                    assert e["within_target"] < 1.0
    rc = main(["migrate", "-i", EXAMPLE, "--to", TO_FEW, "--workload", WORKLOAD,
               "--phase-gap", "1m"])
    text = capsys.readouterr().out
    assert "strands no job" not in text
    assert not re.search(r"100\.0+% \(\d", text)  # no "100.00% (2 late)"
    assert "not checked: waits and queueing targets (reported, not judged)" in text
