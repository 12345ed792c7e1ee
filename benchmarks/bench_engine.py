"""Benchmark: fleetsim's engine against a straightforward SimPy model, and its memory growth.

    .venv/bin/python benchmarks/bench_engine.py                 # 200k jobs + memory at 1M, 10M
    .venv/bin/python benchmarks/bench_engine.py --memory 1000000,2000000   # quicker

The fleet is M/M/20 at rho = 0.8 (lambda = 16/s, mu = 1/s).  The baseline is the model a SimPy
newcomer writes: one SimPy process per job and a ``simpy.Resource`` of 20 threads, collecting
waits in a list.  Both run in fresh subprocesses (one after the other, never in parallel) so
their peak memory (ru_maxrss) is their own; the time is taken inside each subprocess around the
simulation (interpreter start-up and imports excluded), best of ``--repeat``, and the ratio is
against the baseline measured in the same run.  This is a report, not a test: the figures and
the ratio move with the machine and its load (timed as whole processes, start-up included, the
ratio is smaller), so quote them with the run and the method.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

C, LAM, MU = 20, 16.0, 1.0


def erlang_c(c: int, a: float) -> float:
    term = total = 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    top = term * a / c / (1 - a / c)
    return top / (total + top)


def run_engine(jobs: int, seed: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from simulator.sim.engine import mmc_scenario, simulate

    start = time.perf_counter()
    run = simulate(mmc_scenario(C, LAM, MU), duration=jobs / LAM, seed=seed)
    seconds = time.perf_counter() - start
    rec = run.recorder
    return {"jobs": run.counters["arrived"], "seconds": seconds,
            "mean_wait": float(rec.wait_mom_u.mean[0]),
            "p_wait": float(1 - rec.wait_u.counts[0, 0] / rec.wait_u.total(0))}


def run_baseline(jobs: int, seed: int) -> dict:
    import numpy as np
    import simpy

    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    threads = simpy.Resource(env, capacity=C)
    waits: list[float] = []

    def job(service: float):
        arrived = env.now
        with threads.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(service)

    def source():
        for _ in range(jobs):
            yield env.timeout(rng.exponential(1 / LAM))
            env.process(job(rng.exponential(1 / MU)))

    start = time.perf_counter()
    env.process(source())
    env.run()
    seconds = time.perf_counter() - start
    return {"jobs": jobs, "seconds": seconds, "mean_wait": float(np.mean(waits)),
            "p_wait": float(np.mean(np.asarray(waits) > 0))}


def child(kind: str, jobs: int, seed: int) -> None:
    out = run_engine(jobs, seed) if kind == "engine" else run_baseline(jobs, seed)
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(kind: str, jobs: int, seed: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--jobs", str(jobs),
                           "--seed", str(seed)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="speed runs per engine (best kept)")
    ap.add_argument("--memory", default="1000000,10000000",
                    help="job counts for the memory-growth runs of fleetsim's engine ('' = skip)")
    ap.add_argument("--child", choices=["engine", "baseline"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.jobs, args.seed)
        return 0

    cw = erlang_c(C, LAM / MU)
    print(f"M/M/{C} at rho = {LAM / (C * MU):.1f}, {args.jobs:,} jobs; Erlang C: "
          f"P(wait) = {cw:.4f}, mean wait = {cw / (C * MU - LAM):.4f} s")
    best: dict[str, dict] = {}
    for r in range(args.repeat):
        for kind in ("baseline", "engine"):  # alternate so load changes hit both alike
            m = measure(kind, args.jobs, args.seed + r)
            if kind not in best or m["seconds"] < best[kind]["seconds"]:
                best[kind] = m
    for kind, label in (("baseline", "SimPy baseline (process per job + Resource)"),
                        ("engine", "fleetsim engine")):
        m = best[kind]
        print(f"{label:45s} {m['jobs'] / m['seconds']:>10,.0f} jobs/s   "
              f"peak RSS {m['maxrss_mb']:6.0f} MB   mean wait {m['mean_wait']:.4f} s   "
              f"P(wait) {m['p_wait']:.4f}")
    ratio = (best["engine"]["jobs"] / best["engine"]["seconds"]) / (
        best["baseline"]["jobs"] / best["baseline"]["seconds"])
    print(f"speed ratio (fleetsim / baseline): {ratio:.2f}x   (target >= 3x)")
    counts = [int(float(x)) for x in args.memory.split(",") if x.strip()]
    for n in counts:
        m = measure("engine", n, args.seed)
        print(f"fleetsim engine, {n:>12,} jobs: peak RSS {m['maxrss_mb']:6.0f} MB, "
              f"{m['jobs'] / m['seconds']:,.0f} jobs/s, mean wait {m['mean_wait']:.4f} s")
    if counts:
        print("(target: flat memory, under 500 MB at 10 million jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
