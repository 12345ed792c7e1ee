"""The simulator's results are typed: a summary, replications combined, the capacity answer."""

from __future__ import annotations

import json

from simulator.report.summary import Latency, Summary, UrgencySummary, combine, summarize
from simulator.sim import engine
from simulator.sim.capacity import CandidateResult, GroupCapacity, candidates_for
from simulator.sim.engine import mmc_scenario, simulate
from simulator.sim.jobs import Job
from simulator.sim.model import JobClass, Process, Scenario, ServiceTime


def _summary(seed: int) -> Summary:
    return summarize(simulate(mmc_scenario(4, 3.0, 1.0), duration=600, seed=seed))


def test_a_summary_is_typed_and_round_trips_through_its_json_form():
    s = _summary(1)
    high = s.by_urgency["high"]
    assert isinstance(high, UrgencySummary) and isinstance(high.queueing, Latency)
    assert high.jobs == s.counters["arrived"] and s.replications is None
    data = s.to_dict()
    assert list(data)[:3] == ["duration_s", "seed", "counters"] and "ci95" not in data
    assert Summary.from_dict(json.loads(json.dumps(data))) == s


def test_replications_combine_into_means_with_confidence_half_widths():
    runs = [_summary(seed) for seed in (1, 2, 3)]
    both = combine(runs)
    assert both.replications == 3 and both.seeds == [1, 2, 3]
    jobs = [r.by_urgency["high"].jobs for r in runs]
    assert abs(both.by_urgency["high"].jobs - sum(jobs) / 3) < 1e-6
    assert both.ci95 is not None and both.ci95["by_urgency"]["high"]["jobs"] > 0
    assert list(both.to_dict())[-3:] == ["replications", "seeds", "ci95"]


def test_the_capacity_answer_is_the_cheapest_candidate_that_meets_the_targets():
    scenario = mmc_scenario(4, 3.0, 1.0)
    group = scenario.processes[0].group
    small, big = candidates_for(group, ("node-1",), 1, (2, 8))
    results = [CandidateResult(small, False, 0.5, "high", 0.99, 40),
               CandidateResult(big, True, 1.0, None, 0.4, 0)]
    answer = GroupCapacity.of(scenario, group, results)
    assert answer.cheapest is results[1]
    assert (answer.today_processes, answer.today_threads) == (1, 4)
    data = answer.to_dict()
    assert data["cheapest"]["threads"] == 8 and len(data["candidates"]) == 2


def test_still_waiting_at_end_counts_waiting_jobs_only_running_ones_apart():
    # One process of 2 threads, a job every second lasting 100 s: after 50 s, 2 jobs run and
    # the other 48 wait in the queue.
    scenario = Scenario(
        classes=(JobClass("SlowWorker", "low", 0.0, ServiceTime("deterministic", 100.0)),),
        processes=(Process.placed("p", "n", ("slow",), 2),),
        routes={"SlowWorker": ("slow", None)},
    )
    model = engine._Model(scenario, duration=50.5, seed=1, bin_width=None)
    q = model.queue_index["slow"]

    def arrivals():
        for _ in range(50):
            yield model.env.timeout(1.0)
            model.arrived += 1
            model._push(q, Job(0, q, model.env.now, 0, 100.0, False), model.env.now)

    model.env.process(arrivals())
    run = model.run()
    queue = summarize(run).by_queue["slow"]
    assert (run.counters["running"], run.counters["in_queues"]) == (2, 48)
    assert queue.still_waiting_at_end == 48 and queue.running_at_end == 2
    assert queue.jobs == 50  # every job's wait counts (the running ones' are final)
