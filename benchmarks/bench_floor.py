"""How fast can any pure-Python event engine be on the benchmark's M/M/20?  A floor, not a model.

    .venv/bin/python benchmarks/bench_floor.py

The barest event loop that still simulates M/M/20 at rho = 0.8 (lambda = 16/s, mu = 1/s) job
by job: a heap of (time, kind, job) events, arrivals and completions only, a FIFO queue and a
count of idle threads; the waits are summed, nothing else is kept (no histograms, no GVL, no
overheads, no routing).  Whole processes, timed as bench_engine.py times ``fleetsim simulate``,
against the same plain SimPy baseline, median of ``--repeat`` runs each.

Why it is here: item 10's target asks ``fleetsim simulate`` for at least 3x the baseline as a
whole process.  Whatever fleetsim adds to this loop (start-up, statistics, the CPU model, the
fleet) comes on top of the floor's time, so the floor's ratio bounds what any engine written
in pure Python can reach (docs/simulator.md, "Benchmark").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import deque
from heapq import heappop, heappush
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import CHILD_ENV, LAM, SPEED_JOBS, C, whole


def floor(jobs: int, seed: int) -> float:
    """The bare loop; returns the mean wait."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / LAM, jobs)).tolist()
    service = rng.exponential(1.0, jobs).tolist()
    heap: list[tuple[float, int, int]] = [(arrivals[0], 0, 0)]
    line: deque[int] = deque()
    idle = C
    waited = 0.0
    while heap:
        t, kind, j = heappop(heap)
        if kind == 0:  # an arrival
            if j + 1 < jobs:
                heappush(heap, (arrivals[j + 1], 0, j + 1))
            if idle:
                idle -= 1
                heappush(heap, (t + service[j], 1, j))
            else:
                line.append(j)
        elif line:  # a completion, and a job waiting
            k = line.popleft()
            waited += t - arrivals[k]
            heappush(heap, (t + service[k], 1, k))
        else:
            idle += 1
    return waited / jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", choices=["floor"])
    args = ap.parse_args()
    if args.child:
        start = time.perf_counter()
        mean = floor(SPEED_JOBS, 1)
        print(f"{mean:.4f} {time.perf_counter() - start:.3f}")
        return
    here = Path(__file__).resolve()
    base_argv = [sys.executable, str(here.with_name("bench_engine.py")), "--child", "baseline",
                 "--jobs", str(SPEED_JOBS), "--seed", "1"]
    floor_argv = [sys.executable, str(here), "--child", "floor"]
    subprocess.run(floor_argv, check=True, env=CHILD_ENV, capture_output=True)  # warm-up
    base, bare = [], []
    for _ in range(args.repeat):
        base.append(whole(base_argv, CHILD_ENV)[0])
        bare.append(whole(floor_argv, CHILD_ENV)[0])
    b, f = statistics.median(base), statistics.median(bare)
    print(f"Floor: the barest pure-Python event loop of M/M/20, {SPEED_JOBS:,} jobs, whole "
          f"processes (median of {args.repeat}):")
    print(f"   SimPy baseline (python process)        {b:6.2f} s")
    print(f"   bare event loop (python process)       {f:6.2f} s   ratio {b / f:.2f}x")
    print(f"   left for fleetsim's start-up, statistics, CPU model and fleet at 3x: "
          f"{b / 3 - f:+.2f} s")


if __name__ == "__main__":
    main()
