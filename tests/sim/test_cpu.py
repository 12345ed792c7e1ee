"""The CPU model (simulator.sim.cpu): one GVL per process, the node's cores shared.

Throughput checks saturate the fleet (arrivals well above what it can do), so what finishes
per second is the fleet's capacity.  The GVL checks compare with M/D/1 and M/M/1 theory the way
the M/M/c checks do (tests/sim/test_engine.py): 12 replications, Student's t.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import t as student_t

from simulator.report.summary import summarize
from simulator.sim.capacity import Candidate, apply_candidate, evaluate
from simulator.sim.engine import mmc_scenario, simulate
from simulator.sim.model import JobClass, Process, Scenario, ServiceTime
from simulator.sim.overheads import Overheads

REPS = 12
T_MULT = float(student_t.ppf(0.9995, REPS - 1))


def _fleet(processes: list[int], *, share: float, rate: float, mean: float = 1.0,
           cores: float | None = None, service: str = "exponential", sigma: float = 0.0,
           node: str = "n") -> Scenario:
    return Scenario(
        classes=(JobClass("WorkWorker", "high", rate, ServiceTime(service, mean, sigma=sigma),
                          cpu_share=share),),
        processes=tuple(Process.placed(f"p{i}", node, ("work",), c)
                        for i, c in enumerate(processes)),
        routes={"WorkWorker": ("work", None)},
        node_cpus={} if cores is None else {node: cores},
        # The ideal queue: these checks compare with processor-sharing theory.
        overheads=Overheads.zero(),
    )


def _throughput(scenario: Scenario, duration: float = 4000.0, seed: int = 1) -> float:
    return simulate(scenario, duration=duration, seed=seed).counters["succeeded"] / duration


def test_cpu_share_zero_is_the_plain_multi_server_model():
    # With no CPU part the GVL and the cores never come into play: a 1-core node gives the
    # same run, event for event, as no core limit (and test_engine's M/M/c checks against
    # Erlang C run with cpu_share 0).
    plain = mmc_scenario(20, 16.0, 1.0)
    limited = Scenario(classes=plain.classes, processes=plain.processes, routes=plain.routes,
                       node_cpus={"node-1": 1}, overheads=plain.overheads)
    a = simulate(plain, duration=3000, seed=4)
    b = simulate(limited, duration=3000, seed=4)
    assert a.counters == b.counters
    assert np.array_equal(a.recorder.wait_q.counts, b.recorder.wait_q.counts)
    assert np.array_equal(a.recorder.exec_q.counts, b.recorder.exec_q.counts)
    assert b.cpu_seconds == [0.0]


def test_cpu_bound_threads_of_one_process_share_one_core():
    # 1 process x 20 threads, saturated: IO-bound work finishes 20 jobs/s (20 threads x 1/s);
    # CPU-bound work (cpu_share 1) 1 job/s, whatever the thread count: each thread does
    # 1/20 of what it does on IO-bound work.
    io = _throughput(_fleet([20], share=0.0, rate=26.0))
    cpu = _throughput(_fleet([20], share=1.0, rate=1.3))
    assert io == pytest.approx(20.0, rel=0.03)
    assert cpu == pytest.approx(1.0, rel=0.05)
    assert (cpu / 20) / (io / 20) == pytest.approx(1 / 20, rel=0.06)
    # Half CPU: the GVL caps the process at 1 / (0.5 x 1 s) = 2 jobs/s.
    assert _throughput(_fleet([20], share=0.5, rate=2.6)) == pytest.approx(2.0, rel=0.05)


def test_four_processes_of_five_beat_one_of_twenty_on_cpu_bound_work():
    one = _throughput(_fleet([20], share=1.0, rate=5.2, cores=4))
    four = _throughput(_fleet([5, 5, 5, 5], share=1.0, rate=5.2, cores=4))
    assert one == pytest.approx(1.0, rel=0.05)
    assert four == pytest.approx(4.0, rel=0.05)
    # IO-bound work does not care how the 20 threads are split.
    assert _throughput(_fleet([20], share=0.0, rate=26.0, cores=4)) == pytest.approx(
        _throughput(_fleet([5, 5, 5, 5], share=0.0, rate=26.0, cores=4)), rel=0.03)


@pytest.mark.parametrize(("cores", "expected"), [(1, 1.0), (2, 2.0), (3, 3.0), (8, 4.0)])
def test_the_nodes_cores_cap_throughput(cores, expected):
    # 4 processes x 5 threads of CPU-bound work: min(cores, processes) jobs/s.
    run = simulate(_fleet([5, 5, 5, 5], share=1.0, rate=1.3 * expected, cores=cores),
                   duration=4000,
                   seed=2)
    assert run.counters["succeeded"] / 4000 == pytest.approx(expected, rel=0.05)
    # The cores are shared fairly: each process used about expected / 4 of one.
    assert [s / 4000 for s in run.cpu_seconds] == pytest.approx([expected / 4] * 4, rel=0.05)


def test_cores_of_other_nodes_do_not_count():
    # Two 1-core nodes with two CPU-bound processes each: 2 jobs/s, not 4.
    scenario = Scenario(
        classes=(JobClass("WorkWorker", "high", 2.6, ServiceTime("exponential", 1.0),
                          cpu_share=1.0),),
        processes=tuple(Process.placed(f"p{i}", f"n{i % 2}", ("work",), 5) for i in range(4)),
        routes={"WorkWorker": ("work", None)},
        node_cpus={"n0": 1, "n1": 1},
    )
    assert _throughput(scenario) == pytest.approx(2.0, rel=0.05)


def _gvl_means(scenario: Scenario, reps: int = REPS) -> tuple[list[float], list[float]]:
    """Per replication: mean queueing (enqueued to the job's start: its thread first holding
    the GVL) and mean execution."""
    waits, execs = [], []
    for r in range(reps):
        rec = simulate(scenario, duration=1_500, seed=300 + r).recorder
        waits.append(float(rec.wait_mom_u.mean[0]))
        execs.append(float(rec.exec_mom_u.mean[0]))
    return waits, execs


def _within(samples: list[float], expected: float) -> None:
    centre = statistics.fmean(samples)
    half = T_MULT * statistics.stdev(samples) / math.sqrt(len(samples))
    assert half < 0.2 * expected
    assert abs(centre - expected) <= half, (centre, half, expected)


def test_cpu_parts_far_shorter_than_the_slice_take_the_gvl_first_come_first_served():
    # One process with more threads than ever busy, CPU-bound jobs of 5 ms: the GVL is an
    # M/D/1 queue, but for the rare part still running when the timer, started by the first
    # thread that began waiting 100 ms before, takes the GVL away.  A job starts when its
    # thread gets the GVL, so its queueing is the M/D/1 wait, lambda D^2 / (2 (1 - rho))
    # (Pollaczek-Khinchine), and its execution D.  Processor sharing would give no queueing
    # and 3.3 D of execution.
    rho, d = 0.7, 0.005
    scenario = _fleet([200], share=1.0, rate=rho / d, mean=d, service="deterministic")
    waits, execs = _gvl_means(scenario, reps=3)
    assert statistics.fmean(waits) == pytest.approx((rho / d) * d * d / (2 * (1 - rho)),
                                                    rel=0.05)
    assert statistics.fmean(execs) == pytest.approx(d, rel=0.03)


def test_exponential_cpu_parts_spend_the_m_m_1_time_in_the_system():
    # Exponential parts (some longer than the slice): the GVL serves work in an order that
    # does not look at the parts' sizes, so a job's mean time in the system (queueing +
    # execution) is E[S] / (1 - rho), as for M/M/1.
    rho, mean = 0.7, 0.1
    waits, execs = _gvl_means(_fleet([200], share=1.0, rate=rho / mean, mean=mean))
    _within([w + e for w, e in zip(waits, execs, strict=True)], mean / (1 - rho))


def test_cpu_parts_of_many_slices_share_the_gvl_in_turn():
    # 1 s parts, ten slices each: handed over every 100 ms, the threads share the GVL almost
    # equally, as processor sharing does (mean time in the system D / (1 - rho) = 3.33 s),
    # far from first come, first served without slices (D + lambda D^2 / (2 (1 - rho)) = 2.17 s).
    rho, d = 0.7, 1.0
    scenario = _fleet([200], share=1.0, rate=rho / d, mean=d, service="deterministic")
    waits, execs = _gvl_means(scenario, reps=4)
    total = statistics.fmean(w + e for w, e in zip(waits, execs, strict=True))
    assert total == pytest.approx(d / (1 - rho), rel=0.1)
    # A job starts at once or after the slices ahead of it, never a whole part later.
    assert statistics.fmean(waits) < 0.3


def test_io_waits_overlap_and_only_the_cpu_part_queues_for_the_gvl():
    # 1 s jobs, 10 % Ruby: 20 threads of one process do 1 / 0.1 = 10 jobs/s at most (the GVL),
    # but at 5 jobs/s (GVL half busy) the execution time stays near 1 s.
    run = simulate(_fleet([20], share=0.1, rate=5.0, service="deterministic"), duration=4000,
                   seed=3)
    s = summarize(run).by_urgency["high"]
    assert s.execution.mean_s is not None and 1.0 <= s.execution.mean_s < 1.1
    assert run.cpu_seconds[0] / 4000 == pytest.approx(0.5, rel=0.05)


def test_capacity_tells_one_process_of_fifty_from_five_of_ten_on_cpu_heavy_work():
    # 12 jobs/s of 0.5 s jobs, half of it Ruby: 3 cores of GVL work.  One process of 50 threads
    # can do 2 jobs/s of it per core -- it falls behind; five processes of ten on a 6-core
    # node keep up.  As independent servers both would be 50 threads at 12 % busy.
    scenario = Scenario(
        classes=(JobClass("HotWorker", "high", 12.0, ServiceTime("exponential", 0.5),
                          cpu_share=0.5),),
        processes=(Process.placed("today", "node", ("hot",), 10, "hot"),),
        routes={"HotWorker": ("hot", None)},
        node_cpus={"node": 6},
    )
    queues = ("hot",)
    one = Candidate("hot", 1, 50, ("node",))
    five = Candidate("hot", 5, 10, ("node",))
    r_one = evaluate(apply_candidate(scenario, one), one, queues, 600.0, (1,))
    r_five = evaluate(apply_candidate(scenario, five), five, queues, 600.0, (1,))
    assert not r_one.met and r_one.cpu == pytest.approx(1.0, abs=0.01)
    assert r_five.met and r_five.cpu == pytest.approx(3.0 / 5, rel=0.1)
    # And the node's cores: five processes of ten on a 2-core node cannot keep up either.
    two_cores = Scenario(classes=scenario.classes, processes=scenario.processes,
                         routes=scenario.routes, node_cpus={"node": 2})
    r_two = evaluate(apply_candidate(two_cores, five), five, queues, 600.0, (1,))
    assert not r_two.met and r_two.cpu == pytest.approx(2.0 / 5, rel=0.05)
