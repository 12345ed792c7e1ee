"""Benchmark: the reader of ``fleetsim workload from-logs`` against plain ``json.loads``.

    .venv/bin/python benchmarks/bench_logs.py                  # 200,000 lines
    .venv/bin/python benchmarks/bench_logs.py --lines 1000000 --json

The lines imitate GitLab's structured Sidekiq log (about 700 bytes each: a start and a done or
fail line per job, 60 worker classes, ISO times, the metadata fields GitLab writes), written
once to a temporary file. Everything runs in this one process, one measurement after another:

* speed: lines per second of :func:`simulator.sim.logs.read_logs` (the whole aggregation) and
  of the baseline, a loop that reads the same file and calls ``json.loads`` on every line and
  keeps nothing; best of ``--repeat``, and their ratio;
* memory: the peak of Python allocations (``tracemalloc``) while reading a quarter of the
  lines and all of them (bounded memory: the same peak), against the baseline's peak and
  against a naive aggregator that keeps every duration and latency in per-class lists.

This is a report, not a test: the figures move with the machine and its load; quote them with
the run.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.sim.logs import read_logs

T0 = datetime(2024, 5, 6, 0, tzinfo=UTC).timestamp()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def write_log(path: Path, lines: int, seed: int = 1) -> None:
    """``lines`` GitLab-like JSON lines (half start, half done/fail) spread over a day."""
    rng = random.Random(seed)
    classes = [f"Bench::Worker{i}Worker" for i in range(60)]
    weights = [1 / (i + 1) for i in range(60)]
    jobs = lines // 2
    events = []
    for _ in range(jobs):
        cls = rng.choices(classes, weights)[0]
        enqueued = T0 + rng.uniform(0, 86400)
        latency = rng.expovariate(20)
        duration = rng.lognormvariate(-2, 1)
        base = {
            "severity": "INFO", "retry": 3, "queue": "default", "version": 0,
            "queue_namespace": None, "class": cls, "args": ["1234", "[FILTERED]"],
            "jid": f"{rng.getrandbits(96):024x}", "created_at": _iso(enqueued),
            "correlation_id": f"{rng.getrandbits(128):032x}",
            "meta.caller_id": "POST /api/:version/internal/post_receive",
            "meta.feature_category": "source_code_management", "meta.client_id": "user/42",
            "worker_data_consistency": "always", "size_limiter": "validated",
            "enqueued_at": _iso(enqueued), "job_size_bytes": 41, "pid": 8123,
        }
        start = enqueued + latency
        end = start + duration
        events.append((start, {**base, "message": f"{cls} JID-{base['jid']}: start",
                               "job_status": "start", "time": _iso(start),
                               "scheduling_latency_s": round(latency, 6)}))
        failed = rng.random() < 0.02
        done = {**base, "severity": "WARN" if failed else "INFO",
                "message": f"{cls} JID-{base['jid']}: {'fail' if failed else 'done'}: "
                           f"{duration:.6f} sec",
                "job_status": "fail" if failed else "done", "time": _iso(end),
                "scheduling_latency_s": round(latency, 6), "duration_s": round(duration, 6),
                "cpu_s": round(duration * 0.4, 6), "db_count": 12, "db_write_count": 2,
                "db_cached_count": 3, "db_duration_s": round(duration * 0.2, 6),
                "gitaly_calls": 2, "gitaly_duration_s": round(duration * 0.1, 6),
                "redis_calls": 7, "redis_duration_s": round(duration * 0.02, 6),
                "mem_objects": 41234, "mem_bytes": 3123456, "mem_mallocs": 9123,
                "completed_at": _iso(end)}
        if failed:
            done["error_class"] = "Gitlab::Git::CommandError"
            done["error_message"] = "14:failed to connect to all addresses"
        events.append((end, done))
    events.sort(key=lambda e: e[0])
    with open(path, "w", encoding="utf-8") as fh:
        for _, event in events:
            fh.write(json.dumps(event, separators=(",", ":")) + "\n")


def baseline(path: Path) -> int:
    """Plain json.loads of every line, nothing kept."""
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            json.loads(line)
            n += 1
    return n


def naive(path: Path) -> int:
    """What the sketches avoid: every duration and latency kept in per-class lists."""
    durations: dict[str, list[float]] = {}
    latencies: dict[str, list[float]] = {}
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            d = json.loads(line)
            n += 1
            if d.get("job_status") == "start":
                latencies.setdefault(d["class"], []).append(d["scheduling_latency_s"])
            else:
                durations.setdefault(d["class"], []).append(d["duration_s"])
    return n


def reader(path: Path) -> int:
    logs = read_logs([str(path)])
    return sum(f.lines for f in logs.files)


def best_time(fn: Callable[[Path], int], path: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    n = 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        n = fn(path)
        best = min(best, time.perf_counter() - start)
    return best, n


def peak_bytes(fn: Callable[[Path], int], path: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        full = Path(tmp) / "current"
        quarter = Path(tmp) / "quarter"
        write_log(full, args.lines)
        write_log(quarter, args.lines // 4, seed=2)
        size = full.stat().st_size
        base_s, n = best_time(baseline, full, args.repeat)
        read_s, n_read = best_time(reader, full, args.repeat)
        assert n == n_read, (n, n_read)
        memory = {
            "baseline_peak_bytes": peak_bytes(baseline, full),
            "reader_peak_bytes_quarter": peak_bytes(reader, quarter),
            "reader_peak_bytes": peak_bytes(reader, full),
            "naive_lists_peak_bytes": peak_bytes(naive, full),
        }
    result = {
        "lines": n, "bytes_per_line": round(size / n),
        "baseline_lines_per_s": n / base_s, "reader_lines_per_s": n / read_s,
        "speed_ratio": base_s / read_s,  # > 1: the reader is faster than json.loads alone
        **memory,
        "memory_ratio_vs_baseline": memory["reader_peak_bytes"] / memory["baseline_peak_bytes"],
        "memory_growth_4x_lines": (memory["reader_peak_bytes"]
                                   / memory["reader_peak_bytes_quarter"]),
        "memory_ratio_vs_naive_lists": (memory["reader_peak_bytes"]
                                        / memory["naive_lists_peak_bytes"]),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    mib = 1 << 20
    print(f"workload from-logs reader, {n:,} GitLab-like lines of {result['bytes_per_line']} "
          f"bytes, best of {args.repeat} (same process)")
    print(f"  json.loads alone   {result['baseline_lines_per_s']:>12,.0f} lines/s")
    print(f"  read_logs          {result['reader_lines_per_s']:>12,.0f} lines/s   "
          f"{result['speed_ratio']:.2f}x json.loads' speed")
    print(f"  peak Python memory: read_logs {memory['reader_peak_bytes'] / mib:.2f} MiB "
          f"({result['memory_ratio_vs_baseline']:.1f}x json.loads alone, "
          f"{memory['baseline_peak_bytes'] / mib:.2f} MiB); a quarter of the lines "
          f"{memory['reader_peak_bytes_quarter'] / mib:.2f} MiB "
          f"(4x the lines: {result['memory_growth_4x_lines']:.2f}x the memory); "
          f"per-class lists {memory['naive_lists_peak_bytes'] / mib:.2f} MiB "
          f"({result['memory_ratio_vs_naive_lists']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
