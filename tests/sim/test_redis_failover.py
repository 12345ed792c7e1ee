"""A Redis failover (simulator.sim.redis_failover): nothing is fetched, pushed or retried on the
shard while it is down, the unreplicated writes are lost (and their fetches undone: those jobs
run twice), producers lose or keep their pushes, and every job is accounted for."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_ledger import _Observed, _trace_jobs, _write_trace, assert_every_job_accounted_for

from simulator.cli.main import main
from simulator.errors import WorkloadError
from simulator.fleet.inventory import load_fleet
from simulator.report.summary import Summary, combine, summarize
from simulator.sim.engine import simulate
from simulator.sim.model import (
    FleetEvent,
    JobClass,
    Overheads,
    Process,
    Scenario,
    ServiceTime,
    TraceSpec,
)
from simulator.sim.redis_failover import FETCH_ERROR_SLEEP_S
from simulator.sim.workload import EventSpec, build_scenario, load_workload

HIGH_TARGET = 10.0


def _fleet(tmp: Path, times: list[float], service: float, threads: int,
           events: tuple[FleetEvent, ...], *, fails: float = 0.0, max_retries: int = 25,
           overheads: Overheads | None = None) -> tuple[Scenario, list[JobClass]]:
    """One process of ``threads`` threads on queue ``a``; job i arrives at ``times[i]`` as
    the only job of its class (so the ledger can follow every job)."""
    classes = [JobClass(f"J{i}Worker", "high", 0.0, ServiceTime("deterministic", service),
                        failure_probability=fails) for i in range(len(times))]
    trace = _write_trace(str(tmp), [(t, service, c) for t, c in zip(times, classes, strict=True)])
    scenario = Scenario(classes=tuple(classes), processes=(Process.placed("p", "n", ("a",),
                                                                          threads),),
                        routes={c.key: ("a", None) for c in classes}, trace=trace,
                        events=events, max_retries=max_retries,
                        overheads=overheads or Overheads.zero())
    return scenario, classes


def _run(scenario: Scenario, duration: float, seed: int = 1) -> tuple[_Observed, object]:
    model = _Observed(scenario, duration=duration, seed=seed, bin_width=None)
    return model, model.run()


def _rows(times, classes, service):
    return [(t, service, c) for t, c in zip(times, classes, strict=True)]


def test_nothing_is_fetched_while_redis_is_down_and_pushes_are_lost_without_retry(tmp_path):
    # A job every second, 0.5 s each, on 2 threads: never a wait. Redis is down 100 -> 130 s.
    times = [float(t) for t in range(1, 200)]
    down = FleetEvent(100.0, "redis_failover", downtime_s=30.0)
    scenario, classes = _fleet(tmp_path, times, 0.5, 2, (down,))
    model, run = _run(scenario, 200.0)
    starts = sorted(r[4] for r in model.executions)
    assert not [s for s in starts if 100.0 <= s < 130.0]  # no fetch while down
    assert [s for s in starts if 130.0 <= s < 131.0 + 1e-9]  # back within Sidekiq's sleep
    f = run.failovers[0]
    # The 30 pushes of 100..129 s fail; Sidekiq's client raises and nobody retries them.
    assert (f.refused_pushes, f.lost_pushes, f.retried_pushes) == (30, 30, 0)
    assert f.lost == run.counters["lost"] == 30 and f.run_twice == 0
    assert f.in_flight == 0 and f.backlog_before == 0 and f.backlog_peak == 0
    # The first job fetched after the failure: the push at 130 s, when a fetcher wakes.
    assert 30.0 <= f.processing_resumed_after_s <= 30.0 + FETCH_ERROR_SLEEP_S
    assert f.drained_after_s == pytest.approx(30.0 + FETCH_ERROR_SLEEP_S)
    lost_keys = sorted(model.classes[j.cls].key for j in model.lost_jobs)
    assert lost_keys == sorted(c.key for t, c in zip(times, classes, strict=True)
                               if 100.0 <= t < 130.0)
    assert_every_job_accounted_for(model, run, _rows(times, classes, 0.5), 200.0)


def test_producers_that_retry_push_after_the_downtime_and_the_waits_count_from_the_first_try(
        tmp_path):
    times = [float(t) for t in range(1, 200)]
    down = FleetEvent(100.0, "redis_failover", downtime_s=30.0, producer_retry=True)
    scenario, classes = _fleet(tmp_path, times, 0.5, 2, (down,))
    model, run = _run(scenario, 200.0)
    f = run.failovers[0]
    assert (f.refused_pushes, f.lost_pushes, f.retried_pushes, f.lost) == (30, 0, 30, 0)
    assert run.counters["lost"] == 0 and run.counters["held_by_producers"] == 0
    # The kept jobs are the backlog when Redis is back; they start after it, waits counted
    # from their first push: the one of 100 s waited at least 30 s.
    assert f.backlog_peak == 30
    by_enq = {round(r[3]): r[4] for r in model.executions}
    assert all(by_enq[t] >= 130.0 for t in range(100, 130))
    assert f.longest_wait_s >= 30.0 and f.longest_wait_s == pytest.approx(
        max(r[4] - r[3] for r in model.executions))
    # Two threads take the 30 kept jobs in 7.5 s: the one pushed at 100 + k s starts about
    # 30 + k / 4 s after 100, so k up to 26 waits over the 10 s target.
    late = [r for r in model.executions if r[4] >= 100.0 and r[4] - r[3] > HIGH_TARGET]
    assert f.late["high"] == len(late) and 26 <= len(late) <= 29
    assert f.started["high"] >= 30
    # 30 kept jobs, drained at 4 jobs/s while 1 job/s arrives: about 10 s after the downtime.
    assert 38.0 < f.drained_after_s < 43.0
    assert_every_job_accounted_for(model, run, _rows(times, classes, 0.5), 200.0)


def test_unreplicated_pushes_are_lost_and_unreplicated_fetches_run_twice(tmp_path):
    # One thread, 2 s jobs, a job every second: a backlog builds. At 60.5 s the last 10 s of
    # writes are lost: the waiting jobs pushed after 50.5 s are gone, and the jobs fetched
    # after 50.5 s but pushed before are back in the queue (their pop was lost): they run
    # twice.
    times = [float(t) for t in range(0, 120)]
    down = FleetEvent(60.5, "redis_failover", downtime_s=5.0, lose_last_s=10.0)
    scenario, classes = _fleet(tmp_path, times, 2.0, 1, (down,))
    model, run = _run(scenario, 100.0)
    f = run.failovers[0]
    # The job pushed at k s is taken at 2k s: taken in (50.5, 60.5], the jobs of 26..30 s.
    assert f.run_twice == run.counters["duplicated"] == 5
    assert sorted(model.classes[j.cls].key for j in model.duplicates) == [
        f"J{i}Worker" for i in range(26, 31)]
    # Waiting at the failure and pushed after 50.5 s: the jobs of 51..60 s; and the pushes
    # of 61..65 s, refused while Redis is down (the producers do not retry).
    assert (f.lost_unreplicated, f.lost_pushes) == (10, 5)
    assert f.lost == run.counters["lost"] == 15
    assert sorted(int(model.classes[j.cls].key[1:-6]) for j in model.lost_jobs) == list(
        range(51, 66))
    assert f.in_flight == 1  # the job of 30 s, taken at 60 s: it completes at 62 s
    # Redis is back at 65.5 s: the five second deliveries run first (oldest end), by 77 s.
    executed = [model.classes[int(r[0])].key for r in model.executions]
    assert all(executed.count(f"J{i}Worker") == 2 for i in range(26, 31))
    # 30 waited before; 30 - 10 + 5 after: no more than before once the thread is back.
    assert f.backlog_before == f.backlog_peak == 30 and f.drained_after_s == 6.0
    assert_every_job_accounted_for(model, run, _rows(times, classes, 2.0), 100.0)


def test_running_jobs_finish_but_a_failure_cannot_be_retried_while_redis_is_down(tmp_path):
    # Two 20 s jobs taken at 0 and 1 s; Redis is down 10 -> 40 s. Both complete at 20/21 s
    # (basic fetch removed them from Redis); the one that fails cannot be written to the retry
    # set and is lost. A third job fails before the failure: its retry waits in the retry set
    # until Redis is back.
    fail_always = JobClass("FWorker", "low", 0.0, ServiceTime("deterministic", 20.0),
                           failure_probability=1.0)
    ok = JobClass("OkWorker", "low", 0.0, ServiceTime("deterministic", 20.0))
    early = JobClass("EarlyWorker", "low", 0.0, ServiceTime("deterministic", 0.1),
                     failure_probability=1.0)
    rows = [(0.0, 20.0, fail_always), (1.0, 20.0, ok), (2.0, 0.1, early)]
    trace = _write_trace(str(tmp_path), rows)
    down = FleetEvent(10.0, "redis_failover", downtime_s=30.0)
    scenario = Scenario(classes=(fail_always, ok, early),
                        processes=(Process.placed("p", "n", ("a",), 3),),
                        routes={c.key: ("a", None) for c in (fail_always, ok, early)},
                        trace=trace, events=(down,), max_retries=0,
                        overheads=Overheads.zero())
    model, run = _run(scenario, 200.0)
    f = run.failovers[0]
    assert f.in_flight == 2 and f.lost_retries == 1 and f.lost == run.counters["lost"] == 1
    ends = {model.classes[int(r[0])].key: r[5] for r in model.executions}
    assert ends["FWorker"] == pytest.approx(20.0) and ends["OkWorker"] == pytest.approx(21.0)
    assert [model.classes[j.cls].key for j in model.lost_jobs] == ["FWorker"]
    # EarlyWorker failed at 2.1 s with no retry left: dead, written before the failure.
    assert [model.classes[j.cls].key for j in model.dead_jobs] == ["EarlyWorker"]
    assert_every_job_accounted_for(model, run, rows, 200.0)


def test_the_retry_set_of_a_down_shard_waits_until_it_is_back(tmp_path):
    # A job fails at 1 s; its retry is due 16-25 s later, during the downtime (5 -> 60 s):
    # no poller can read the retry set, so it runs only after 60 s.
    once = JobClass("OnceWorker", "low", 0.0, ServiceTime("deterministic", 1.0),
                    failure_probability=1.0)
    trace = _write_trace(str(tmp_path), [(0.0, 1.0, once)])
    scenario = Scenario(classes=(once,), processes=(Process.placed("p", "n", ("a",), 1),),
                        routes={"OnceWorker": ("a", None)}, trace=trace, max_retries=1,
                        events=(FleetEvent(5.0, "redis_failover", downtime_s=55.0),),
                        overheads=Overheads.zero())
    model, run = _run(scenario, 200.0)
    starts = sorted(r[4] for r in model.executions)
    assert len(starts) == 2 and starts[1] > 60.0
    assert run.failovers[0].lost == 0 and run.counters["dead"] == 1


def test_a_shutdown_cannot_push_back_while_redis_is_down(tmp_path):
    # A 100 s job runs when the node restarts at 20 s (timeout 5 s) during the downtime: the
    # push-back at 25 s fails and the job is lost, never silently.
    times = [0.0]
    events = (FleetEvent(10.0, "redis_failover", downtime_s=60.0),
              FleetEvent(20.0, "restart", node="n", timeout_s=5.0, boot_s=1.0))
    scenario, classes = _fleet(tmp_path, times, 100.0, 1, events)
    model, run = _run(scenario, 300.0)
    f = run.failovers[0]
    assert f.lost_push_backs == f.lost == run.counters["lost"] == 1
    assert run.counters["pushed_back"] == 0
    assert_every_job_accounted_for(model, run, _rows(times, classes, 100.0), 300.0)


def test_only_the_failed_shard_stops(tmp_path):
    # Two shards, a process each: the "default" one keeps working while "s2" is down.
    a = JobClass("AWorker", "high", 2.0, ServiceTime("exponential", 0.1))
    b = JobClass("BWorker", "high", 2.0, ServiceTime("exponential", 0.1))
    scenario = Scenario(classes=(a, b),
                        processes=(Process.placed("pa", "n1", ("qa",), 2),
                                   Process.placed("pb", "n2", ("qb",), 2)),
                        routes={"AWorker": ("qa", None), "BWorker": ("qb", "s2")},
                        events=(FleetEvent(100.0, "redis_failover", shard="s2",
                                           downtime_s=50.0, producer_retry=True),))
    model, run = _run(scenario, 300.0)
    during = [r for r in model.executions if 101.0 <= r[4] < 150.0]
    assert during and all(model.queue_names[int(r[1])] == "qa" for r in during)
    f = run.failovers[0]
    assert f.shard == "s2" and f.refused_pushes > 50 and f.lost == 0
    assert f.late["high"] > 0 and f.started["high"] >= f.refused_pushes


def test_shadowed_methods_are_only_there_while_needed(tmp_path):
    times = [float(t) for t in range(0, 50)]
    scenario, _ = _fleet(tmp_path, times, 0.2, 1,
                         (FleetEvent(10.0, "redis_failover", downtime_s=5.0, lose_last_s=2.0),))
    model, run = _run(scenario, 60.0)
    assert run.failovers[0].drained_after_s is not None
    assert not {"_push", "_enqueue", "_failed", "_move_jobs", "_start"} & set(vars(model))
    plain, _ = _run(Scenario(classes=scenario.classes, processes=scenario.processes,
                             routes=scenario.routes, trace=scenario.trace), 60.0)
    assert not {"_push", "_enqueue", "_failed", "_move_jobs", "_start"} & set(vars(plain))
    assert plain._failovers == []


def test_a_failover_past_the_end_changes_nothing_and_one_running_at_the_end_is_counted():
    base = Scenario(classes=(JobClass("AWorker", "high", 5.0, ServiceTime("exponential", 0.3),
                                      failure_probability=0.1),),
                    processes=(Process.placed("p", "n", ("a",), 3),),
                    routes={"AWorker": ("a", None)})
    late = replace(base, events=(FleetEvent(500.0, "redis_failover", downtime_s=10.0),))
    assert simulate(late, duration=400, seed=4).counters == simulate(
        base, duration=400, seed=4).counters
    ending = replace(base, events=(
        FleetEvent(350.0, "redis_failover", downtime_s=100.0, producer_retry=True),))
    run = simulate(ending, duration=400, seed=4)
    c, f = run.counters, run.failovers[0]
    assert c["held_by_producers"] == f.refused_pushes > 100
    assert f.drained_after_s is None and f.processing_resumed_after_s is None
    assert c["arrived"] + c["duplicated"] == (c["succeeded"] + c["dead"] + c["in_queues"]
                                              + c["running"] + c["retrying"] + c["lost"]
                                              + c["held_by_producers"])
    # The kept jobs count as waiting (their waits so far), not as queued in Redis.
    s = summarize(run)
    assert s.by_queue["a"].still_waiting_at_end == c["in_queues"]
    high = s.by_urgency["high"]
    assert high.jobs == (high.executed + c["in_queues"] + c["running"]
                         + c["held_by_producers"])


@pytest.mark.parametrize("event, match", [
    (FleetEvent(10.0, "redis_failover", shard="nosuch", downtime_s=5.0), "shard 'nosuch'"),
    (FleetEvent(10.0, "redis_failover", downtime_s=0.0), "downtime_s"),
    (FleetEvent(10.0, "redis_failover", downtime_s=5.0, lose_last_s=-1.0), "lose_last_s"),
    (FleetEvent(10.0, "redis_failover", downtime_s=math.inf), "downtime_s"),
])
def test_the_engine_refuses_a_failover_it_cannot_run(event, match):
    scenario = Scenario(classes=(JobClass("AWorker", "high", 1.0),),
                        processes=(Process.placed("p", "n", ("a",), 1),),
                        routes={"AWorker": ("a", None)}, events=(event,))
    with pytest.raises(ValueError, match=match):
        simulate(scenario, duration=60)
    overlapping = (FleetEvent(10.0, "redis_failover", downtime_s=30.0),
                   FleetEvent(20.0, "redis_failover", downtime_s=5.0))
    with pytest.raises(ValueError, match="before the one before it is over"):
        simulate(replace(scenario, events=overlapping), duration=60)


# --------------------------------------------------------------------------- every job
def routes_shards(routes) -> set[str]:
    return {shard for _, shard in routes.values() if shard}


@st.composite
def _failover_scenarios(draw):
    """Random fleets on two Redis shards with failovers, node events and overheads."""
    rows = draw(_trace_jobs(max_jobs=40, horizon=300.0))
    classes = tuple(cls for _, _, cls in rows)
    queues = {"q0": None, "q1": None, "r0": "s2"}
    routes = {c.key: (q, queues[q]) for c in classes
              for q in [draw(st.sampled_from(sorted(queues)))]}
    processes = []
    for p in range(draw(st.integers(1, 3))):
        picked = draw(st.lists(st.sampled_from(sorted(queues)), min_size=1, max_size=4))
        processes.append(Process.placed(f"p{p}", f"n{p % 2}", tuple(picked),
                                        draw(st.integers(1, 3))))
    nodes = sorted({p.node for p in processes})
    events = []
    for shard in (None, "s2"):
        if shard is not None and shard not in routes_shards(routes):
            continue
        t = draw(st.floats(0.0, 100.0))
        for _ in range(draw(st.integers(0, 2))):
            down = draw(st.sampled_from([0.5, 5.0, 30.0, 120.0]))
            events.append(FleetEvent(t, "redis_failover", shard=shard, downtime_s=down,
                                     lose_last_s=draw(st.sampled_from([0.0, 1.0, 20.0])),
                                     producer_retry=draw(st.booleans())))
            t += down + draw(st.floats(0.0, 60.0))
    for _ in range(draw(st.integers(0, 2))):
        events.append(FleetEvent(draw(st.floats(0.0, 300.0)),
                                 draw(st.sampled_from(["node_down", "node_up", "restart"])),
                                 node=draw(st.sampled_from(nodes)), timeout_s=2.0,
                                 boot_s=draw(st.sampled_from([0.0, 5.0]))))
    overheads = draw(st.sampled_from([Overheads.zero(), Overheads(), Overheads(0.3, 0.7, 2.0)]))
    max_retries = draw(st.integers(0, 2))

    def build(trace: TraceSpec) -> Scenario:
        return Scenario(classes=classes, processes=tuple(processes), routes=routes,
                        events=tuple(events), trace=trace, overheads=overheads,
                        max_retries=max_retries)

    return rows, build


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_failover_scenarios(), st.integers(0, 2**16), st.floats(1.0, 400.0))
def test_with_failovers_every_job_is_in_exactly_one_place_or_counted_twice(drawn, seed,
                                                                            duration):
    rows, build = drawn
    with tempfile.TemporaryDirectory() as tmp:
        model = _Observed(build(_write_trace(tmp, rows)), duration=duration, seed=seed,
                          bin_width=None)
        run = model.run()
    assert_every_job_accounted_for(model, run, rows, duration)
    assert sum(f.lost for f in run.failovers) <= run.counters["lost"]
    for f, state in zip(run.failovers, model._failovers, strict=True):
        assert f.lost == (f.lost_unreplicated + f.lost_pushes + f.lost_retries
                          + f.lost_push_backs)
        # Every refused push is lost, pushed again, or still kept at the end.
        assert f.refused_pushes == f.lost_pushes + f.retried_pushes + len(state.held)
        assert not (f.producer_retry and f.lost_pushes) and f.backlog_peak >= f.backlog_before


# --------------------------------------------------------------------------- workload files
SEGMENT = 'segments:\n  - {match: "*", rate_per_s: 20, service: {mean_s: 0.2}}\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "w.yml"
    path.write_text(text)
    return path


def test_a_workload_reads_a_failover_with_its_defaults(tmp_path):
    w = load_workload(_write(tmp_path, SEGMENT + (
        "events:\n  - {at: 5m, action: redis_failover, downtime_s: 30}\n"
        "  - {at: 10m, action: redis_failover, downtime_s: 1m, lose_last_s: 2,"
        " producer_retry: true, shard: default}\n")))
    first, second = w.events
    assert (first.at, first.downtime_s, first.lose_last_s, first.producer_retry,
            first.shard) == (300.0, 30.0, 0.0, False, None)
    assert (second.downtime_s, second.lose_last_s, second.producer_retry,
            second.shard) == (60.0, 2.0, True, "default")


@pytest.mark.parametrize("event, words", [
    ("{at: 5m, action: redis_failover}", "needs downtime_s"),
    ("{at: 5m, action: redis_failover, downtime_s: 0}", "above 0"),
    ("{at: 5m, action: redis_failover, downtime_s: -3}", "negative"),
    ("{at: 5m, action: redis_failover, downtime_s: soon}", "not a duration"),
    ("{at: 5m, action: redis_failover, downtime_s: 30, lose_last_s: .inf}", "lose_last_s"),
    ("{at: 5m, action: redis_failover, downtime_s: 30, producer_retry: 'true'}",
     "producer_retry must be true or false"),
    ("{at: 5m, action: redis_failover, downtime_s: 30, node: sidekiq1}",
     "unknown redis_failover keys: 'node'"),
    ("{at: 5m, action: redis_failover, downtime_s: 30, shard: 3}", "shard must be"),
])
def test_a_bad_failover_names_the_file_the_event_and_the_fix(tmp_path, event, words):
    path = _write(tmp_path, SEGMENT + "events:\n  - {at: 1m, action: node_down, node: x}\n"
                  f"  - {event}\n")
    with pytest.raises(WorkloadError) as err:
        load_workload(path)
    text = str(err.value)
    assert str(path) in text and "events entry 2" in text and words in text and "fix:" in text


def test_overlapping_failovers_of_one_shard_are_refused(tmp_path):
    path = _write(tmp_path, SEGMENT + "events:\n"
                  "  - {at: 5m, action: redis_failover, downtime_s: 2m}\n"
                  "  - {at: 6m, action: redis_failover, downtime_s: 10}\n")
    with pytest.raises(WorkloadError, match=r"events entry 2.*events entry 1 keeps it down "
                                            r"until 420 s"):
        load_workload(path)


def test_a_failover_of_a_shard_no_rule_uses_is_refused(tmp_path, capsys):
    path = _write(tmp_path, SEGMENT + "events:\n"
                  "  - {at: 5m, action: redis_failover, downtime_s: 30, shard: cache}\n")
    rc = main(["simulate", "-i", "inventories/example", "--workload", str(path),
               "--duration", "10m"])
    err = capsys.readouterr().err
    assert rc == 2 and "events entry 1" in err and "shard 'cache'" in err
    assert "shards: default" in err and "Traceback" not in err


def test_simulate_reports_the_failover_in_tables_and_json(tmp_path, capsys):
    path = _write(tmp_path, SEGMENT + "events:\n"
                  "  - {at: 2m, action: redis_failover, downtime_s: 30, lose_last_s: 1}\n")
    rc = main(["simulate", "-i", "inventories/example", "--workload", str(path),
               "--duration", "5m", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc in (0, 1)
    (f,) = data["failovers"]
    assert f["at_s"] == 120 and f["shard"] == "default" and f["lost_pushes"] > 400
    assert f["lost"] == data["counters"]["lost"]
    assert any("redis_failover at 120 s" in w and "pushes refused" in w
               for w in data["warnings"])
    assert Summary.from_dict(data).failovers[0].lost == f["lost"]
    main(["simulate", "-i", "inventories/example", "--workload", str(path), "--duration", "5m"])
    out = capsys.readouterr().out
    assert "Redis failovers" in out and "redis_failover default (30 s down" in out


def test_workload_to_scenario_and_replications_keep_the_failover():
    w = replace(load_workload("examples/workloads/example.yml"), events=(
        EventSpec(1, 60.0, "redis_failover", downtime_s=20.0, producer_retry=True),))
    scenario = build_scenario(w, load_fleet("inventories/example"))
    (event,) = scenario.events
    assert event.action == "redis_failover" and event.producer_retry
    runs = [summarize(simulate(scenario, duration=240, seed=s)) for s in (1, 2)]
    both = combine(runs)
    assert both.failovers is not None and len(both.failovers) == 1
    mean = both.failovers[0]
    assert mean.refused_pushes == pytest.approx(
        sum(r.failovers[0].refused_pushes for r in runs) / 2)
    assert both.ci95["failovers"][0]["refused_pushes"] >= 0
