"""Per-job overheads (simulator.sim.overheads): the fetch round trip and dispatch hold the thread
before the execution starts, a push becomes poppable enqueue_visible_s later, and zero
overheads are the ideal queue."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from sim_ledger import _Observed

from simulator.cli.main import main
from simulator.errors import WorkloadError
from simulator.sim.engine import mmc_scenario, simulate
from simulator.sim.model import FleetEvent, JobClass, Process, Scenario, ServiceTime
from simulator.sim.overheads import (
    DEFAULT_DISPATCH_CPU_S,
    DEFAULT_DISPATCH_S,
    DEFAULT_ENQUEUE_VISIBLE_S,
    DEFAULT_FETCH_ROUND_TRIP_S,
    Overheads,
)
from simulator.sim.workload import load_workload

OVERHEADS = Overheads(fetch_round_trip_s=0.002, dispatch_s=0.003, enqueue_visible_s=0.004,
                      dispatch_cpu_s=0.0)


def _scenario(rate: float, service: float, threads: int, overheads: Overheads, *,
              cpu_share: float = 0.0, events: tuple[FleetEvent, ...] = ()) -> Scenario:
    return Scenario(
        classes=(JobClass("AWorker", "high", rate, ServiceTime("deterministic", service),
                          cpu_share=cpu_share),),
        processes=(Process.placed("p", "n", ("a",), threads),),
        routes={"AWorker": ("a", None)},
        overheads=overheads,
        events=events,
    )


def test_defaults_are_documented_small_figures_and_zero_is_zero():
    assert Overheads() == Overheads(DEFAULT_FETCH_ROUND_TRIP_S, DEFAULT_DISPATCH_S,
                                    DEFAULT_ENQUEUE_VISIBLE_S, DEFAULT_DISPATCH_CPU_S) == Overheads(
        0.0002, 0.0001, 0.0006, 0.001)
    assert Scenario(classes=(), processes=(), routes={}).overheads == Overheads()
    assert Overheads.zero().total_s == 0.0 and mmc_scenario(2, 1.0, 1.0).overheads.total_s == 0
    assert OVERHEADS.hold_s == pytest.approx(0.005) and OVERHEADS.total_s == pytest.approx(0.009)
    for bad in (-0.001, math.inf, math.nan, 61.0, True, "1"):
        with pytest.raises(ValueError, match="dispatch_s"):
            Overheads(dispatch_s=bad)


@pytest.mark.parametrize("cpu_share", [0.0, 0.3])
def test_without_contention_each_job_takes_exactly_its_service_plus_the_overheads(cpu_share):
    # 1 job/s of 0.1 s on 50 threads: no job ever waits for a thread. With a CPU part, jobs
    # that arrive within 0.2 s of another may share the GVL: only the others are checked.
    model = _Observed(_scenario(1.0, 0.1, 50, OVERHEADS, cpu_share=cpu_share),
                      duration=2_000, seed=3, bin_width=None)
    run = model.run()
    assert len(model.executions) > 1_900
    rows = sorted(model.executions, key=lambda r: r[3])
    enq, start, end = (np.array([r[i] for r in rows]) for i in (3, 4, 5))
    gaps = np.diff(enq)
    alone = np.concatenate(([True], gaps > 0.2)) & np.concatenate((gaps > 0.2, [True]))
    assert alone.sum() > 1_000
    assert (end - enq >= 0.1 + OVERHEADS.total_s - 1e-9).all()
    if cpu_share:
        enq, start, end = enq[alone], start[alone], end[alone]
    # Time in system: service + round trip + dispatch + enqueue-to-visible, for every job.
    assert np.allclose(end - enq, 0.1 + OVERHEADS.total_s, rtol=0, atol=1e-9)
    # The queueing time (enqueued to execution start) holds the overheads, the execution none.
    assert np.allclose(start - enq, OVERHEADS.total_s, rtol=0, atol=1e-9)
    assert np.allclose(end - start, 0.1, rtol=0, atol=1e-9)
    # The thread is busy from when it takes the job: service + round trip + dispatch (+ any
    # wait for the GVL, for the jobs not alone).
    taken_to_end = sum(r[5] - r[7] for r in model.executions)
    assert float(run.recorder.busy.sum()) == pytest.approx(taken_to_end, rel=1e-9)
    if not cpu_share:
        execution = sum(r[5] - r[4] for r in model.executions)
        assert taken_to_end == pytest.approx(
            execution + len(model.executions) * OVERHEADS.hold_s, rel=1e-9)


@pytest.mark.parametrize("overheads", [Overheads.zero(), Overheads(), OVERHEADS])
def test_a_saturated_thread_loses_throughput_by_the_overheads_share(overheads):
    # One process of one thread, 10 ms jobs, 200 jobs/s offered: the thread never idles, so it
    # completes one job per 10 ms + round trip + dispatch + Sidekiq's own CPU (alone on the GVL;
    # enqueue-to-visible holds no thread).
    duration = 100.0
    run = simulate(_scenario(200.0, 0.010, 1, overheads), duration=duration, seed=1)
    extra = overheads.hold_s + overheads.dispatch_cpu_s
    cycle = 0.010 + extra
    assert abs(run.counters["succeeded"] - duration / cycle) <= 3
    share = extra / cycle  # the drop against the ideal queue's 100 jobs/s
    assert run.counters["succeeded"] / duration == pytest.approx(100 * (1 - share), rel=2e-3)
    # The thread counts as busy throughout, overheads included.
    assert float(run.recorder.utilisation().mean()) == pytest.approx(1.0, abs=2e-3)


def test_default_overheads_cost_about_a_tenth_of_a_saturated_10ms_thread():
    run = simulate(_scenario(200.0, 0.010, 1, Overheads()), duration=100.0, seed=1)
    assert run.counters["succeeded"] / 100.0 == pytest.approx(100 / 1.13, rel=2e-3)  # 88.50/s


def test_pushes_in_transit_at_the_end_count_as_waiting():
    # 2 s from push to poppable, 10 jobs/s: about 20 jobs are in transit when the run ends.
    run = simulate(_scenario(10.0, 0.01, 5, Overheads(0.0, 0.0, 2.0)), duration=50.0, seed=2)
    c = run.counters
    assert 10 <= c["in_queues"] == sum(run.in_queues.values()) <= 40
    assert c["arrived"] == c["succeeded"] + c["running"] + c["in_queues"]
    assert int(run.recorder.censored_q.sum()) == c["in_queues"]


def test_a_node_lost_while_its_threads_hold_jobs_loses_them_and_counts_no_negative_busy():
    # Dispatch of 1 s: at the node_down most threads are inside the hold.
    events = (FleetEvent(30.2, "node_down", node="n"), FleetEvent(40.0, "node_up", node="n"))
    model = _Observed(_scenario(4.0, 0.1, 3, Overheads(0.0, 1.0, 0.0), events=events),
                      duration=60.0, seed=4, bin_width=None)
    run = model.run()
    assert run.counters["lost"] == len(model.lost_jobs) > 0
    assert (run.recorder.busy >= -1e-9).all()


def test_zero_overheads_are_the_old_model_event_for_event():
    plain = mmc_scenario(20, 16.0, 1.0)
    again = dataclasses.replace(plain, overheads=Overheads(0.0, 0.0, 0.0, 0.0))
    a, b = simulate(plain, duration=2_000, seed=7), simulate(again, duration=2_000, seed=7)
    assert a.counters == b.counters
    assert np.array_equal(a.recorder.wait_q.counts, b.recorder.wait_q.counts)
    assert np.array_equal(a.recorder.busy, b.recorder.busy)


# -- the workload file's overheads key --------------------------------------------------------

SEGMENT = 'segments:\n  - {match: "*", rate_per_s: 1, service: {mean_s: 1}}\n'


def test_a_workload_overrides_some_overheads_and_keeps_the_others(tmp_path):
    path = tmp_path / "w.yml"
    path.write_text(SEGMENT + "overheads: {dispatch_s: 0.004, enqueue_visible_s: 0.0002}\n")
    assert load_workload(path).overheads == Overheads(DEFAULT_FETCH_ROUND_TRIP_S, 0.004, 0.0002)
    path.write_text(SEGMENT)
    assert load_workload(path).overheads == Overheads()
    path.write_text(SEGMENT + "overheads: {fetch_round_trip_s: 0, dispatch_s: 0, "
                    "enqueue_visible_s: 0, dispatch_cpu_s: 0}\n")
    assert load_workload(path).overheads == Overheads.zero()


@pytest.mark.parametrize(("text", "words"), [
    ("overheads: {dispatch_ms: 1}", ["unknown overheads settings", "dispatch_ms", "known:"]),
    ("overheads: {dispatch_s: -0.1}", ["overheads.dispatch_s is negative"]),
    ("overheads: {fetch_round_trip_s: 500}", ["overheads.fetch_round_trip_s", "at most 60"]),
    ("overheads: {enqueue_visible_s: .nan}", ["overheads.enqueue_visible_s", "number"]),
    ("overheads: [0.001]", ["unknown overheads settings"]),
])
def test_bad_overheads_are_refused_with_the_fix(tmp_path, text, words):
    path = tmp_path / "w.yml"
    path.write_text(SEGMENT + text + "\n")
    with pytest.raises(WorkloadError) as info:
        load_workload(path)
    message = str(info.value)
    for word in [str(path), "overheads", "fix:", *words]:
        assert word in message, (word, message)


def test_fleetsim_simulate_refuses_a_bad_overhead_with_exit_2(tmp_path, capsys):
    path = tmp_path / "w.yml"
    path.write_text(SEGMENT + "overheads: {dispatch_s: -1}\n")
    code = main(["simulate", "-i", "inventories/example", "--workload", str(path),
                 "--duration", "1m"])
    err = capsys.readouterr().err
    assert code == 2 and "overheads.dispatch_s is negative" in err and "Traceback" not in err


def test_the_docs_give_the_defaults_the_engine_uses():
    # docs/simulator.md had kept the defaults of before the lab's calibration for a while.
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()
    section = doc.split("### Overheads", 1)[1].split("\n### ", 1)[0]
    table = {m[1]: float(m[2])
             for m in re.finditer(r"^\| `(\w+_s)` \| ([0-9.]+) \|", section, re.M)}
    key_row = next(line for line in doc.splitlines() if line.startswith("| `overheads` |"))
    row = {m[1]: float(m[2]) for m in re.finditer(r"`(\w+_s)` ([0-9.]+)", key_row)}
    defaults = {f.name: f.default for f in dataclasses.fields(Overheads)}
    assert table == defaults
    assert row == defaults


class _Unfolded(_Observed):
    """The run with every arrival's push in transit, as the engine did before folding."""

    def _fold_transit(self) -> bool:
        return False


def _flat(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _flat(v, f"{path}[{i}]")
    else:
        yield path, value


def test_folding_the_pushs_transit_into_the_arrival_changes_no_result():
    # The arrival fires when its push becomes visible (one event instead of two). Everything
    # else goes through the transit as before: retries (30 % fail), the poller, a node going
    # down and up. A 2 s visibility leaves jobs pushed but not poppable at the end, and makes
    # the hour boundaries of the shape fall between a batch's last push and its event.
    from simulator.report.summary import summarize

    sc = dataclasses.replace(
        _scenario(3.0, 0.5, 4, dataclasses.replace(OVERHEADS, enqueue_visible_s=2.0)),
        classes=(JobClass("AWorker", "high", 3.0, ServiceTime("exponential", 0.5),
                          failure_probability=0.3, cpu_share=0.2),),
        shape=tuple(1.0 + (h % 3) / 2 for h in range(24)), start_hour=0.5,
        events=(FleetEvent(1000.0, "node_down", node="n"), FleetEvent(1100.0, "node_up", node="n")),
    )
    duration = 2.5 * 3600 + 0.7
    folded = _Observed(sc, duration=duration, seed=5, bin_width=None)
    unfolded = _Unfolded(sc, duration=duration, seed=5, bin_width=None)
    assert folded._a_shift == 2.0 and unfolded._a_shift == 0.0
    a, b = folded.run(), unfolded.run()
    assert a.counters == b.counters and a.in_queues == b.in_queues
    assert a.counters["retried"] > 1000 and a.counters["in_queues"] > 0
    flat_a, flat_b = dict(_flat(summarize(a).to_dict())), dict(_flat(summarize(b).to_dict()))
    assert flat_a.keys() == flat_b.keys()
    for key, value in flat_a.items():
        if isinstance(value, float) and not math.isnan(value):
            assert value == pytest.approx(flat_b[key], rel=1e-9, abs=1e-12), key
        else:
            assert value == flat_b[key] or (value != value and flat_b[key] != flat_b[key]), key


def test_runs_whose_pushes_depend_on_their_instant_keep_the_transit():
    routing = FleetEvent(10.0, "routing", routes={"AWorker": ("a", None)}, share=0.5)
    failover = FleetEvent(10.0, "redis_failover", downtime_s=5.0)
    for events in ((routing,), (failover,)):
        sc = _scenario(3.0, 0.5, 4, OVERHEADS, events=events)
        assert _Observed(sc, duration=100.0, seed=1, bin_width=None)._a_shift == 0.0
    no_visibility = dataclasses.replace(OVERHEADS, enqueue_visible_s=0.0)
    sc = _scenario(3.0, 0.5, 4, no_visibility)
    assert _Observed(sc, duration=100.0, seed=1, bin_width=None)._a_shift == 0.0
