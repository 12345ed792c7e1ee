"""Benchmark: ``fleetsim simulate`` against a straightforward SimPy model, and its memory.

    .venv/bin/python benchmarks/bench_engine.py                 # everything, about 4 minutes
    .venv/bin/python benchmarks/bench_engine.py --memory 1000000   # quicker

The fleet is M/M/20 at rho = 0.8 (lambda = 16/s, mu = 1/s).  The baseline is the model a SimPy
newcomer writes: one SimPy process per job and a ``simpy.Resource`` of 20 threads, collecting
waits in a list.  Three measurements, each a ratio against a baseline run in the same run:

1. **Whole processes** (the figure the target is for): ``fleetsim simulate`` of
   ``benchmarks/mm20`` (the inventory and the workload, with the CPU model on: each job's
   CPU part on the process's GVL) for 12,500 simulated seconds (about 200,000 jobs), start-up,
   reading the inventory through ansible-core and printing the report included, against the
   baseline as a whole ``python`` process; median of ``--repeat`` runs each, alternating.
   Target: at least 3x.
2. **Start-up**: the same ``fleetsim simulate`` for 1 simulated second, against
   ``python -c pass``.  Target: under 0.5 s.  Also shown once with an empty parse cache
   (the first run after installing: the worker catalog and ansible-core's own YAML parsed).
3. **In process**: fleetsim's engine on ``mmc_scenario`` (no overheads, no CPU model: the
   queue Erlang C describes) against the baseline, each timed inside its own subprocess
   around the simulation alone, best of ``--repeat``.  Not the target's figure; it shows
   what the engine costs without the start-up and the CPU model.

Then memory: the peak RSS of whole ``fleetsim simulate`` processes of ``benchmarks/mm20`` at
``--memory`` jobs (default 1 and 10 million; target: flat, under 500 MB at 10 million).
Every process runs alone (one after the other, never in parallel), byte-compiled as an
installed package is (``PYTHONDONTWRITEBYTECODE`` is dropped from the children's environment,
so the warm-up runs write the .pyc files).  This is a report, not a test: the figures move
with the machine and its load, so quote them with the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

C, LAM, MU = 20, 16.0, 1.0
ROOT = Path(__file__).resolve().parents[1]
MM20 = ROOT / "benchmarks" / "mm20"
SPEED_JOBS = 200_000


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


def fleetsim() -> list[str]:
    script = Path(sys.executable).with_name("fleetsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "simulator"]


def fleetsim_simulate(seconds: float, seed: int = 1) -> list[str]:
    return [*fleetsim(), "simulate", "-i", str(MM20 / "inventory"),
            "--workload", str(MM20 / "workload.yml"), "--duration", f"{seconds:g}s",
            "--seed", str(seed)]


#: The children's environment: as installed, byte-compiled (see the module's docstring).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def whole(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of one whole process, its output thrown away."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env=env or CHILD_ENV)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):  # fleetsim exits 1 when an SLO target is missed
            err.seek(0)
            sys.exit(f"bench_engine: {' '.join(argv)} exited {code}:\n{err.read()}")
    return seconds, usage.ru_maxrss / 1024


def median_of(argv: list[str], repeat: int) -> float:
    return statistics.median(whole(argv)[0] for _ in range(repeat))


def measure(kind: str, jobs: int, seed: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--jobs", str(jobs),
                           "--seed", str(seed)], capture_output=True, text=True, check=True,
                          env=CHILD_ENV)
    return json.loads(proc.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    ap.add_argument("--memory", default="1000000,10000000",
                    help="job counts for the memory runs of fleetsim simulate ('' = skip)")
    ap.add_argument("--child", choices=["engine", "baseline"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.jobs, args.seed)
        return 0

    baseline_argv = [sys.executable, __file__, "--child", "baseline", "--jobs",
                     str(SPEED_JOBS), "--seed", str(args.seed)]
    simulate_argv = fleetsim_simulate(SPEED_JOBS / LAM, args.seed)
    whole(baseline_argv)  # warm the page cache and the .pyc files
    whole(simulate_argv)
    base_s: list[float] = []
    sim_s: list[float] = []
    for _ in range(args.repeat):  # alternate so load changes hit both alike
        base_s.append(whole(baseline_argv)[0])
        sim_s.append(whole(simulate_argv)[0])
    tb, ts = statistics.median(base_s), statistics.median(sim_s)
    print(f"1. Whole processes, M/M/20 at rho = {LAM / (C * MU):.1f}, about {SPEED_JOBS:,} jobs "
          f"(median of {args.repeat}):")
    print(f"   SimPy baseline (python process)                      {tb:6.2f} s")
    print(f"   fleetsim simulate (benchmarks/mm20, CPU model on)     {ts:6.2f} s")
    print(f"   speed ratio (baseline time / fleetsim time): {tb / ts:.2f}x   (target >= 3x: "
          f"{'met' if tb / ts >= 3 else 'MISSED'})")

    pass_s = median_of([sys.executable, "-c", "pass"], args.repeat)
    up_s = median_of(fleetsim_simulate(1.0, args.seed), args.repeat)
    print(f"2. Start-up: fleetsim simulate of 1 simulated second {up_s:.3f} s "
          f"({up_s / pass_s:.1f}x python -c pass, {pass_s:.3f} s)   (target < 0.5 s: "
          f"{'met' if up_s < 0.5 else 'MISSED'})")
    with tempfile.TemporaryDirectory() as empty:
        cold_s, _ = whole(fleetsim_simulate(1.0, args.seed), {**CHILD_ENV, "XDG_CACHE_HOME": empty})
    print(f"   the same with an empty parse cache (first run after installing): {cold_s:.3f} s")

    cw = erlang_c(C, LAM / MU)
    best: dict[str, dict] = {}
    for r in range(args.repeat):
        for kind in ("baseline", "engine"):
            m = measure(kind, args.jobs, args.seed + r)
            if kind not in best or m["seconds"] < best[kind]["seconds"]:
                best[kind] = m
    print(f"3. In process (the simulation alone, best of {args.repeat}), {args.jobs:,} jobs, no "
          f"overheads, no CPU model; Erlang C: P(wait) = {cw:.4f}, mean wait = "
          f"{cw / (C * MU - LAM):.4f} s")
    for kind, label in (("baseline", "SimPy baseline (process per job + Resource)"),
                        ("engine", "fleetsim engine (mmc_scenario)")):
        m = best[kind]
        print(f"   {label:45s} {m['jobs'] / m['seconds']:>10,.0f} jobs/s   "
              f"peak RSS {m['maxrss_mb']:6.0f} MB   mean wait {m['mean_wait']:.4f} s   "
              f"P(wait) {m['p_wait']:.4f}")
    ratio = (best["engine"]["jobs"] / best["engine"]["seconds"]) / (
        best["baseline"]["jobs"] / best["baseline"]["seconds"])
    print(f"   speed ratio in process: {ratio:.2f}x")

    counts = [int(float(x)) for x in args.memory.split(",") if x.strip()]
    for n in counts:
        seconds, rss = whole(fleetsim_simulate(n / LAM, args.seed))
        print(f"memory: fleetsim simulate, about {n:>12,} jobs: peak RSS {rss:6.0f} MB, "
              f"{seconds:7.1f} s ({n / seconds:,.0f} jobs/s, whole process)")
    if counts:
        print("(target: flat memory, under 500 MB at 10 million jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
