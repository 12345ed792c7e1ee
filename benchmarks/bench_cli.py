"""Benchmark: how long ``fleetsim`` takes to answer, as a ratio against ``python -c pass``.

    .venv/bin/python benchmarks/bench_cli.py              # 7 runs of each command
    .venv/bin/python benchmarks/bench_cli.py --repeat 3 --json

Each command runs as a whole process (interpreter start-up, imports, reading the catalog or the
inventory, output), one after another, never in parallel; the figure is the median wall time
of ``--repeat`` runs, and the ratio is against ``python -c pass`` measured in the same run on the
same interpreter. Targets on the project's 2-core machines: ``route match`` under 0.5 s, ``plan
-i inventories/example`` under 1.5 s. This is a report, not a test: the figures move with the
machine and its load, so quote them with the run. The commands run byte-compiled, as an
installed package does (``PYTHONDONTWRITEBYTECODE`` is dropped from their environment).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS_S = {"route match": 0.5, "plan": 1.5}
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def fleetsim() -> list[str]:
    script = Path(sys.executable).with_name("fleetsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "simulator"]


def commands() -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "fleetsim --version": [*fleetsim(), "--version"],
        "route match": [*fleetsim(), "route", "match", "resource_boundary!=cpu&urgency=high"],
        "plan": [*fleetsim(), "plan", "-i", "inventories/example"],
    }


def wall_times(argv: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            sys.exit(f"bench_cli: {' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = {}
    for name, argv in commands().items():
        wall_times(argv, 1)  # warm the page cache and the .pyc files
        times = wall_times(argv, args.repeat)
        results[name] = {"median_s": statistics.median(times), "best_s": min(times)}
    base = results["python -c pass"]["median_s"]
    for row in results.values():
        row["ratio"] = row["median_s"] / base
    if args.json:
        print(json.dumps({"repeat": args.repeat, "results": results}, indent=2))
        return 0
    print(f"fleetsim start-up, median of {args.repeat} runs (ratio against python -c pass)")
    print(f"{'command':<20} {'median':>8} {'best':>8} {'ratio':>7}  target")
    for name, row in results.items():
        target = TARGETS_S.get(name)
        verdict = ""
        if target is not None:
            verdict = f"< {target} s: {'met' if row['median_s'] < target else 'MISSED'}"
        print(f"{name:<20} {row['median_s']:>7.3f}s {row['best_s']:>7.3f}s "
              f"{row['ratio']:>6.1f}x  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
