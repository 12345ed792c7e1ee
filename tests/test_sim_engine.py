"""The fleet model against queueing theory and Sidekiq's rules (semantics.md sections 6 and 9).

Tolerances come from the replications themselves: a metric passes when the theoretical value
lies within mean +- z * s / sqrt(R) of R independent replications (z = 3.29, a 99.9 % interval,
so the nine M/M/c checks together fail by chance about 1 % of the time for an unlucky seed; the
seeds are fixed, so a pass is reproducible).  Each check also asserts that the interval is narrow
enough to catch a real error.
"""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine import (
    FleetEvent,
    JobClass,
    ProcessSpec,
    Scenario,
    ServiceTime,
    TraceSpec,
    mmc_scenario,
    retry_delay,
    simulate,
)

Z = 3.29  # two-sided 99.9 %


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lambda/mu (< c)."""
    term = 1.0
    total = 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c  # a**c / c!
    rho = a / c
    top = last / (1 - rho)
    return top / (total + top)


def test_erlang_c_matches_the_reference_value():
    # semantics.md section 9: c = 20, rho = 0.8 -> C = 0.256078, Wq = 0.064019 / mu.
    c = erlang_c(20, 16.0)
    assert c == pytest.approx(0.256078, abs=1e-6)
    assert c / (20 - 16.0) == pytest.approx(0.064019, abs=1e-6)


def _replicate(c: int, rho: float, jobs: int, reps: int, t_probe: float):
    mu = 1.0
    lam = rho * c * mu
    duration = jobs / lam
    scenario = mmc_scenario(c, lam, mu)
    p_wait, mean_wait, p_above = [], [], []
    for r in range(reps):
        rec = simulate(scenario, duration=duration, seed=1000 + r).recorder
        n = rec.wait_u.total(0)
        p_wait.append(1 - rec.wait_u.counts[0, 0] / n)  # bin 0 holds the zero waits
        mean_wait.append(rec.wait_mom_u.mean[0])
        p_above.append(rec.wait_u.fraction_above(t_probe, 0))
    return p_wait, mean_wait, p_above


def _check(samples: list[float], expected: float, name: str) -> None:
    mean = statistics.fmean(samples)
    half = Z * statistics.stdev(samples) / math.sqrt(len(samples))
    assert half < 0.2 * expected, f"{name}: interval +-{half:.4g} too wide to test anything"
    assert abs(mean - expected) <= half, (
        f"{name}: simulated {mean:.5g} +- {half:.3g}, Erlang C says {expected:.5g}"
    )


@pytest.mark.parametrize("rho", [0.5, 0.7, 0.85])
def test_mmc_matches_erlang_c(rho):
    c, mu = 5, 1.0
    lam = rho * c * mu
    cw = erlang_c(c, lam / mu)
    wq = cw / (c * mu - lam)
    t = 1.0 / (c * mu - lam)  # P(W > t) = C / e
    p_wait, mean_wait, p_above = _replicate(c, rho, jobs=30_000, reps=12, t_probe=t)
    _check(p_wait, cw, "P(wait)")
    _check(mean_wait, wq, "mean wait")
    _check(p_above, cw * math.exp(-(c * mu - lam) * t), "P(W > t)")


def test_retry_delay_follows_sidekiq_8_formula():
    rnd = random.Random(7)
    for count in (0, 1, 2, 5, 24):
        lo = count**4 + 15
        width = 10 * (count + 1)
        draws = [retry_delay(count, rnd) for _ in range(4000)]
        assert min(draws) == lo and max(draws) == lo + width - 1
        # rand(n) is uniform on 0..n-1: mean (n - 1) / 2, sd sqrt((n**2 - 1) / 12).
        sd = math.sqrt((width**2 - 1) / 12) / math.sqrt(len(draws))
        assert abs(statistics.fmean(draws) - (lo + (width - 1) / 2)) < 4 * sd


def _always_failing(tmp_path, max_retries=25) -> Scenario:
    trace = tmp_path / "trace.csv"
    trace.write_text("time,worker_class,duration\n0,FlakyWorker,0.5\n")
    return Scenario(
        classes=(JobClass("FlakyWorker", "low", 0.0, ServiceTime("deterministic", 0.5),
                          failure_probability=1.0),),
        processes=(ProcessSpec("p", "n", ("flaky",), 2),),
        routes={"FlakyWorker": ("flaky", None)},
        trace=TraceSpec(str(trace)),
        max_retries=max_retries,
    )


def test_failing_job_is_retried_25_times_then_dead_on_schedule(tmp_path):
    scenario = _always_failing(tmp_path)
    fastest = sum(n**4 + 15 for n in range(25)) + 26 * 0.5  # delays + executions
    jitter = sum(10 * (n + 1) - 1 for n in range(25)) + 25 * 7.5  # rand() and the poller
    early = simulate(scenario, duration=fastest - 1, seed=3).counters
    assert early["dead"] == 0 and early["retrying"] + early["running"] + early["in_queues"] == 1
    late = simulate(scenario, duration=fastest + jitter + 1, seed=3).counters
    assert late["dead"] == 1
    assert late["retried"] == 25 and late["failed_executions"] == 26
    assert fastest / 86400 == pytest.approx(20.4, abs=0.1)  # "about 20.4 days in all"


def _backlogged(queues: tuple[str, ...], duration: float, seed: int = 5):
    names = list(dict.fromkeys(queues))
    classes = tuple(
        JobClass(f"{q.title()}Worker", "low", 5.0, ServiceTime("deterministic", 1.0))
        for q in names
    )
    scenario = Scenario(
        classes=classes,
        processes=(ProcessSpec("p", "n", queues, 1),),
        routes={c.key: (q, None) for c, q in zip(classes, names, strict=True)},
    )
    result = simulate(scenario, duration=duration, seed=seed)
    served = result.recorder.exec_q.counts.sum(axis=1)
    return {q: int(served[result.queues.index(q)]) for q in names}


def test_weighted_fetch_frequencies_follow_weights():
    served = _backlogged(("a", "b", "b", "c", "c", "c"), duration=12_000)
    n = sum(served.values())
    for q, w in {"a": 1, "b": 2, "c": 3}.items():
        p = w / 6
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(served[q] / n - p) < 4 * sd, (q, served)


def test_strict_order_serves_later_queues_only_when_earlier_are_empty():
    served = _backlogged(("a", "b", "c"), duration=2_000)
    # Only the very first job, handed to the idle thread before any backlog, may be b or c.
    assert served["a"] > 1900 and served["b"] + served["c"] <= 1


def test_blocked_fetchers_are_served_first_come_first_served():
    # Two single-thread processes on one queue; one job every 10 s lasting 1 s.  The process
    # that has waited longer gets each job, so the two alternate exactly.
    scenario = Scenario(
        classes=(JobClass("TickWorker", "low", 0.0, ServiceTime("deterministic", 1.0)),),
        processes=(ProcessSpec("p0", "n0", ("q",), 1), ProcessSpec("p1", "n1", ("q",), 1)),
        routes={"TickWorker": ("q", None)},
    )
    from simulator import engine

    model = engine._Model(scenario, duration=100.5, seed=1, bin_width=None)
    for k in range(10):
        model.env.process(_arrive_at(model, 10.0 * k + 0.25))
    result = model.run()
    per_proc = result.recorder.exec_p.counts.sum(axis=1)
    assert per_proc.tolist() == [5, 5]


def _arrive_at(model, t):
    yield model.env.timeout(t)
    q = model.queue_index["q"]
    model.arrived += 1
    model._push(q, (0, q, model.env.now, 0, 1.0, False), model.env.now)


def test_same_seed_same_result_and_other_seed_differs():
    scenario = mmc_scenario(4, 3.0, 1.0)
    a = simulate(scenario, duration=2000, seed=11)
    b = simulate(scenario, duration=2000, seed=11)
    c = simulate(scenario, duration=2000, seed=12)
    assert a.counters == b.counters
    assert np.array_equal(a.recorder.wait_q.counts, b.recorder.wait_q.counts)
    assert not np.array_equal(a.recorder.wait_q.counts, c.recorder.wait_q.counts)


_service = st.sampled_from([
    ServiceTime("exponential", 0.5),
    ServiceTime("deterministic", 2.0),
    ServiceTime("lognormal", 1.0, sigma=1.0),
    ServiceTime("empirical", 0.8, samples=(0.1, 0.5, 1.8)),
])


@st.composite
def _scenarios(draw):
    n_queues = draw(st.integers(1, 4))
    queues = [f"q{i}" for i in range(n_queues)]
    classes = tuple(
        JobClass(f"W{i}Worker", draw(st.sampled_from(["high", "low", "throttled"])),
                 draw(st.floats(0.0, 6.0)), draw(_service),
                 failure_probability=draw(st.sampled_from([0.0, 0.1, 0.6, 1.0])))
        for i in range(draw(st.integers(1, 5)))
    )
    routes = {c.key: (draw(st.sampled_from(queues)), None) for c in classes}
    n_procs = draw(st.integers(1, 3))
    processes = []
    for p in range(n_procs):
        picked = draw(st.lists(st.sampled_from(queues), min_size=1, max_size=6))
        processes.append(ProcessSpec(f"p{p}", f"n{p % 2}", tuple(picked),
                                     draw(st.integers(1, 4))))
    events = []
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["node_down", "node_up", "restart", "routing"]))
        at = draw(st.floats(0.0, 300.0))
        if action == "routing":
            new = {c.key: (draw(st.sampled_from(queues)), None) for c in classes}
            events.append(FleetEvent(at, "routing", routes=new))
        else:
            events.append(FleetEvent(at, action, node=draw(st.sampled_from(["n0", "n1"]))
                                     if n_procs > 1 else "n0",
                                     timeout_s=draw(st.sampled_from([0.5, 5.0, 25.0])),
                                     boot_s=draw(st.sampled_from([0.0, 10.0]))))
    return Scenario(classes=classes, processes=tuple(processes), routes=routes,
                    events=tuple(events), max_retries=draw(st.integers(0, 3)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenarios(), st.integers(0, 2**16), st.floats(1.0, 400.0))
def test_no_job_is_lost_or_duplicated(scenario, seed, duration):
    result = simulate(scenario, duration=duration, seed=seed)
    c = result.counters
    assert c["arrived"] == (c["succeeded"] + c["dead"] + c["in_queues"] + c["running"]
                            + c["retrying"] + c["lost"])
    executions = int(result.recorder.exec_q.counts.sum())
    assert executions == c["succeeded"] + c["failed_executions"]
    assert c["failed_executions"] == c["retried"] + c["dead"]
    assert sum(result.in_queues.values()) == c["in_queues"]
