"""Synthetic GitLab Sidekiq logs for the tests: jobs in, JSON lines (start and done/fail) out."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: 2024-05-06 10:00:00 UTC, a Monday.
T0 = datetime(2024, 5, 6, 10, tzinfo=UTC).timestamp()


def iso(t: float) -> str:
    """GitLab's format: UTC, milliseconds, Z."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    cls: str
    enqueued: float
    latency: float = 0.01
    duration: float = 0.1
    status: str = "done"  # done | fail
    cpu: float | None = None
    retry_count: int | None = None
    error_class: str | None = None
    queue: str = "default"
    latency_on_end: float | None = None  # a different latency written on the done/fail line
    start_line: bool = True
    extra: dict[str, Any] | None = None

    def lines(self, *, epoch: bool = False) -> list[tuple[float, dict[str, Any]]]:
        stamp = (lambda t: round(t, 6)) if epoch else iso
        start = self.enqueued + self.latency
        end = start + self.duration
        base: dict[str, Any] = {"severity": "INFO", "class": self.cls, "jid": "0123abcd",
                                "queue": self.queue, "created_at": stamp(self.enqueued),
                                "enqueued_at": stamp(self.enqueued)}
        if self.retry_count is not None:
            base["retry_count"] = self.retry_count
        out = []
        if self.start_line:
            out.append((start, {**base, "time": stamp(start), "job_status": "start",
                                "scheduling_latency_s": round(self.latency, 6)}))
        done = {**base, "time": stamp(end), "job_status": self.status,
                "duration_s": round(self.duration, 6), "db_duration_s": 0.0}
        if self.status == "fail":
            done["severity"] = "WARN"
            done["error_class"] = self.error_class or "RuntimeError"
        if self.cpu is not None:
            done["cpu_s"] = round(self.cpu, 6)
        if self.latency_on_end is not None:
            done["scheduling_latency_s"] = self.latency_on_end
        if self.extra:
            done.update(self.extra)
        out.append((end, done))
        return out


def render(jobs: Iterable[Job], *, epoch: bool = False) -> list[str]:
    """The JSON lines of ``jobs`` in time order."""
    events = [e for job in jobs for e in job.lines(epoch=epoch)]
    events.sort(key=lambda e: e[0])
    return [json.dumps(line, separators=(",", ":")) for _, line in events]


def write(path: Path, lines: Iterable[str | bytes], *, gz: bool = False) -> Path:
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n"
                    for line in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path
