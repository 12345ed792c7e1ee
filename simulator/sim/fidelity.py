"""How close fleetsim's predictions come to a real fleet: the measured side (from the fleet's own
GitLab-format Sidekiq log lines), the predicted side (``fleetsim simulate --json`` runs), the
targets and the table of docs/fidelity.md.

Both sides count the same things over the same window [t0, t0 + duration): the jobs of a queue
that *started* in the window (their queueing latency, enqueued to execution start) and that
*finished* in it (throughput). Jobs still waiting or running at the end are in neither.

Targets (issue of record: the simulator must be trusted before a rollout):

* throughput within 10 %;
* queueing p95 and p99 within 20 %, or within 50 ms where both are under 250 ms (below that,
  a relative error of a few milliseconds says nothing).

p50 is shown, not judged. A figure the model is known to leave out (docs/fidelity.md, "What
the model leaves out") can be named as a known gap: it is shown with its error and marked so,
not judged, and the list of known gaps is part of the record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.sim.logs import parse_time

__all__ = [
    "ABSOLUTE_S",
    "ABSOLUTE_UNDER_S",
    "RELATIVE_LATENCY",
    "RELATIVE_THROUGHPUT",
    "Measured",
    "Row",
    "compare",
    "markdown_table",
    "measure",
    "predicted",
]

RELATIVE_THROUGHPUT = 0.10
RELATIVE_LATENCY = 0.20
ABSOLUTE_S = 0.050
ABSOLUTE_UNDER_S = 0.250
_QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def _quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile, linear between order statistics (NumPy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Measured:
    """One queue over one window, from log lines."""

    queue: str
    started: int = 0
    finished: int = 0
    latencies: list[float] = field(default_factory=list)

    def figures(self, duration: float) -> dict[str, float | None]:
        out: dict[str, float | None] = {"throughput_per_s": self.finished / duration}
        for name, q in _QUANTILES:
            out[f"{name}_s"] = _quantile(self.latencies, q)
        return out


def measure(lines: Iterable[str], queues: Iterable[str], t0: float,
            duration: float) -> dict[str, Measured]:
    """Per queue: the queueing latency of every job that started in [t0, t0 + duration) and the
    number that finished (done or failed) in it, from GitLab-format JSON log lines (other lines
    are skipped)."""
    out = {q: Measured(q) for q in queues}
    end = t0 + duration
    for line in lines:
        brace = line.find("{")
        if brace < 0 or '"job_status"' not in line:
            continue
        try:
            data = json.loads(line[brace:])
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        queue = data.get("queue")
        stats = out.get(queue) if isinstance(queue, str) else None
        t = parse_time(data.get("time"))
        if stats is None or t is None or not t0 <= t < end:
            continue
        status = data.get("job_status")
        if status == "start":
            latency = data.get("scheduling_latency_s", data.get("queue_duration_s"))
            if isinstance(latency, (int, float)) and not isinstance(latency, bool):
                stats.started += 1
                stats.latencies.append(max(float(latency), 0.0))
        elif status in ("done", "fail"):
            stats.finished += 1
    return out


def predicted(runs: Sequence[Mapping[str, Any]], queue: str) -> dict[str, float | None]:
    """The mean over ``fleetsim simulate --json`` runs (one per seed) of a queue's throughput
    (executed / duration) and queueing quantiles."""
    out: dict[str, float | None] = {}
    values: dict[str, list[float]] = {"throughput_per_s": []}
    for run in runs:
        entry = run["by_queue"].get(queue)
        if entry is None:
            raise KeyError(f"queue {queue!r} is not in the simulation (no process listens?)")
        values["throughput_per_s"].append(entry["executed"] / run["duration_s"])
        for name, _ in _QUANTILES:
            v = entry["queueing"].get(f"{name}_s")
            if v is not None:
                values.setdefault(f"{name}_s", []).append(float(v))
    for key in ("throughput_per_s", *(f"{n}_s" for n, _ in _QUANTILES)):
        got = values.get(key) or []
        out[key] = sum(got) / len(got) if got else None
    return out


@dataclass(frozen=True)
class Row:
    """One figure of one workload: measured, predicted, error and whether it is within target."""

    workload: str
    queue: str
    figure: str  # throughput_per_s | p50_s | p95_s | p99_s
    measured: float | None
    predicted: float | None
    judged: bool
    known_gap: bool = False

    @property
    def error(self) -> float | None:
        """Relative error (predicted - measured) / measured; None when undefined."""
        if self.measured is None or self.predicted is None or self.measured == 0:
            return None
        return (self.predicted - self.measured) / self.measured

    @property
    def within(self) -> bool:
        if not self.judged:
            return True
        if self.measured is None or self.predicted is None:
            return False
        diff = abs(self.predicted - self.measured)
        if self.figure == "throughput_per_s":
            return diff <= RELATIVE_THROUGHPUT * self.measured
        if max(self.measured, self.predicted) < ABSOLUTE_UNDER_S and diff <= ABSOLUTE_S:
            return True
        return diff <= RELATIVE_LATENCY * self.measured

    @property
    def target(self) -> str:
        if self.known_gap:
            return "known gap: not judged"
        if not self.judged:
            return "shown"
        if self.figure == "throughput_per_s":
            return f"±{RELATIVE_THROUGHPUT:.0%}"
        return f"±{RELATIVE_LATENCY:.0%} or ±{ABSOLUTE_S * 1000:.0f} ms under " \
               f"{ABSOLUTE_UNDER_S * 1000:.0f} ms"


def compare(workload: str, queue: str, measured: Mapping[str, float | None],
            prediction: Mapping[str, float | None],
            known_gaps: Iterable[str] = ()) -> list[Row]:
    """The four figures of one queue; ``known_gaps`` names figures shown but not judged."""
    gaps = set(known_gaps)
    return [Row(workload, queue, figure, measured.get(figure), prediction.get(figure),
                figure != "p50_s" and figure not in gaps, figure in gaps)
            for figure in ("throughput_per_s", "p50_s", "p95_s", "p99_s")]


def _fmt(figure: str, value: float | None) -> str:
    if value is None:
        return "—"
    if figure == "throughput_per_s":
        return f"{value:.1f}/s"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| workload | queue | figure | measured | predicted | error | target | verdict |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        err = "—" if r.error is None else f"{r.error:+.1%}"
        if r.known_gap:
            verdict = "known gap"
        elif not r.judged:
            verdict = "—"
        else:
            verdict = "within" if r.within else "**outside**"
        lines.append(f"| {r.workload} | {r.queue} | {r.figure.removesuffix('_s')} | "
                     f"{_fmt(r.figure, r.measured)} | {_fmt(r.figure, r.predicted)} | {err} | "
                     f"{r.target} | {verdict} |")
    return "\n".join(lines) + "\n"
