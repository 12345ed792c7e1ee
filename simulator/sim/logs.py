"""Workloads from GitLab's structured Sidekiq logs (``fleetsim workload from-logs``).

GitLab's Sidekiq writes one JSON object per line (Omnibus: ``/var/log/gitlab/sidekiq/current``,
rotated by svlogd into gzipped ``@<timestamp>.s`` files). Each job execution writes a line
with ``job_status: start`` when it begins and one with ``done`` or ``fail`` when it ends; the
fields this module reads are ``class``, ``queue``, ``time``, ``enqueued_at``, ``created_at``,
``retry_count``, ``duration_s`` (older logs: ``duration``), ``cpu_s``, ``db_duration_s``,
``gitaly_duration_s``, ``redis_duration_s``, ``scheduling_latency_s``, ``queue_duration_s``,
``error_class`` and ``urgency``. Timestamps may be ISO 8601 strings or epoch seconds.

:func:`read_logs` streams any number of files (plain or gzip, recognised by their first
bytes, not their names) into per-class aggregates whose size does not depend on the number of
lines: counters, sums, :class:`~.sketch.LogSketch` quantile sketches and arrivals per clock
hour. :func:`build_workload` turns them into a workload document (:mod:`.workload`'s format)
with an ``observed`` section the simulator ignores. Lines that are not JSON are counted and
skipped; a file that cannot be read, or a gzip stream that is corrupt or cut short, is a
:class:`LogError` naming the file and the line reached.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.scanner import make_scanner
from statistics import NormalDist
from typing import Any

from ..errors import WorkloadError, clip
from ..routing.catalog import Catalog
from .progress import Progress, no_progress
from .sketch import LogSketch

__all__ = ["ClassStats", "FileReport", "LogError", "Logs", "build_workload", "parse_time",
           "read_logs"]

#: Lines longer than this are not read into memory whole: they are counted and skipped.
MAX_LINE_BYTES = 1 << 20
#: A clock hour the logs cover for less than this is left out of the rates (too short to tell).
MIN_EXPOSURE_S = 60.0
#: Error classes of an execution Sidekiq interrupted (shutdown): pushed back, not a failure.
INTERRUPTED = frozenset({"Sidekiq::Shutdown"})
_GZIP_MAGIC = b"\x1f\x8b"
#: json's own scanner (C): one object from an index, without json.loads' per-call checks.
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(
    json.JSONDecoder())  # type: ignore[arg-type]  # typeshed types the C scanner oddly
_STATUSES = frozenset({"start", "done", "fail"})
_NUMBERS = (float, int)
_INF = math.inf
#: ISO 8601 time to the second -> epoch seconds (the hot path of parse_time; bounded).
_ISO_SECONDS: dict[str, float] = {}
_MIB = 1 << 20
_Z99 = NormalDist().inv_cdf(0.99)


class LogError(WorkloadError):
    """A Sidekiq log that cannot be read (file, line and fix in the message)."""


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO 8601 string (UTC when it names no zone) or an epoch number
    (seconds; milliseconds when it is beyond the year 5138, as Sidekiq 8 writes them)."""
    if type(value) is str:
        # Fast path for GitLab's "2024-05-06T10:00:00.123Z": the second from a cache.
        if len(value) > 20 and value[-1] == "Z" and value[19] == ".":
            base = _ISO_SECONDS.get(value[:19])
            if base is None:
                base = _iso_seconds(value[:19])
            if base is not None:
                try:
                    return base + float(value[19:-1])
                except ValueError:
                    pass
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                return None
        else:
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            return stamp.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds / 1000.0 if seconds > 1e11 else seconds


def _iso_seconds(prefix: str) -> float | None:
    try:
        stamp = datetime.fromisoformat(prefix).replace(tzinfo=UTC)
    except ValueError:
        return None
    if len(_ISO_SECONDS) >= 4096:  # log lines come in time order: recent seconds suffice
        _ISO_SECONDS.clear()
    seconds = _ISO_SECONDS[prefix] = stamp.timestamp()
    return seconds


def _seconds(value: Any) -> float | None:
    """A duration field: a finite number >= 0, else None (absent or unusable)."""
    kind = type(value)
    if kind is float or kind is int:
        v = float(value)
        if v >= 0 and v != math.inf:  # NaN fails v >= 0
            return v
    return None


@dataclass(slots=True)
class ClassStats:
    """Everything kept about one worker class, whatever the number of lines."""

    queue: str | None = None
    urgency: str | None = None  # as the log says (GitLab writes it); the catalog's wins
    started: int = 0
    done: int = 0
    failed: int = 0
    interrupted: int = 0
    first_attempts: int = 0  # done/fail lines without retry_count
    #: First attempts per clock hour (epoch seconds // 3600) of their enqueue.
    arrivals: dict[int, int] = field(default_factory=dict)
    duration: LogSketch = field(default_factory=LogSketch)
    cpu_s: float = 0.0
    cpu_of_s: float = 0.0  # duration of the executions that reported cpu_s
    db_s: float = 0.0
    gitaly_s: float = 0.0
    redis_s: float = 0.0
    external_s: float = 0.0
    waits_of_s: float = 0.0  # duration of the executions that reported any *_duration_s
    #: The job's own demand per execution (cpu_s + the instrumented waits, at most duration_s):
    #: its execution time without waiting for the GVL or a core (``--service-time demand``).
    demand: LogSketch = field(default_factory=LogSketch)
    demand_cpu_s: float = 0.0
    latency_start: LogSketch = field(default_factory=LogSketch)
    #: From done/fail lines, kept only until a start line brings the latency.
    latency_end: LogSketch = field(default_factory=LogSketch)
    start_latency_seen: bool = False

    @property
    def executed(self) -> int:
        return self.done + self.failed

    @property
    def latency(self) -> LogSketch:
        """Queueing latency from the start lines (where GitLab writes it), else the ends."""
        return self.latency_start if self.start_latency_seen else self.latency_end

    @property
    def cpu_share(self) -> float | None:
        if self.cpu_of_s <= 0:
            return None
        return min(max(self.cpu_s / self.cpu_of_s, 0.0), 1.0)

    @property
    def failure_probability(self) -> float | None:
        return self.failed / self.executed if self.executed else None


@dataclass(slots=True)
class FileReport:
    path: str
    compressed: bool = False
    lines: int = 0
    job_lines: int = 0
    not_json: int = 0  # not a JSON object: text, cut short, an array, bytes that are no text
    other_json: int = 0  # JSON objects that are not a job's start/done/fail line
    unusable: int = 0  # job lines without a class or a readable time
    too_long: int = 0
    first_not_json: int | None = None  # line number, for the error when nothing was usable
    first_unusable: int | None = None


@dataclass
class Logs:
    """The aggregates of every file read."""

    files: list[FileReport] = field(default_factory=list)
    classes: dict[str, ClassStats] = field(default_factory=dict)
    #: Clock hour (epoch seconds // 3600) -> [first, last] job line time seen in it.
    hours: dict[int, list[float]] = field(default_factory=dict)
    #: First and last arrival (enqueued_at of a first attempt) seen, whatever the class.
    arrivals_span: list[float] = field(default_factory=list)

    @property
    def job_lines(self) -> int:
        return sum(f.job_lines for f in self.files)

    @property
    def first(self) -> float | None:
        return self.hours[min(self.hours)][0] if self.hours else None

    @property
    def last(self) -> float | None:
        return self.hours[max(self.hours)][1] if self.hours else None

    def exposure(self) -> dict[int, float]:
        """Seconds of each clock hour the logs cover: whole hours between covered neighbours,
        from the first or to the last line where the coverage starts or stops."""
        out = {}
        for h, (lo, hi) in self.hours.items():
            start = h * 3600.0 if h - 1 in self.hours else lo
            end = (h + 1) * 3600.0 if h + 1 in self.hours else hi
            out[h] = max(0.0, end - start)
        return out


def _open(path: str) -> tuple[io.BufferedReader, io.BufferedIOBase, bool]:
    """(the file, the stream of its lines, gzip?). Errors are LogError naming the file."""
    hint = ("give the log files themselves, e.g. /var/log/gitlab/sidekiq/current "
            "/var/log/gitlab/sidekiq/@*.s (readable by root: run with sudo)")
    if os.path.isdir(path):
        raise LogError("is a directory, not a log file", file=path, hint=hint)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by read_logs
    except OSError as exc:
        raise LogError(f"cannot read the log: {exc.strerror}", file=path, hint=hint) from None
    try:
        magic = raw.peek(2)[:2]
    except OSError as exc:
        raw.close()
        raise LogError(f"cannot read the log: {exc.strerror}", file=path, hint=hint) from None
    if magic == _GZIP_MAGIC:
        return raw, gzip.GzipFile(fileobj=raw, mode="rb"), True
    return raw, raw, False


class _Unreadable(Exception):
    def __init__(self, line: int, cause: BaseException) -> None:
        super().__init__(line)
        self.line = line
        self.cause = cause


def _read_file(path: str, logs: Logs, tick: Callable[[int], None]) -> FileReport:
    raw, stream, compressed = _open(path)
    report = FileReport(path, compressed)
    try:
        report.lines = _read_lines(stream, raw, report, logs, tick)
        tick(raw.tell())
    except _Unreadable as exc:
        cause = exc.cause
        reason = ("the gzip stream ends early (a file still being written or compressed?)"
                  if isinstance(cause, EOFError) else
                  f"cannot read on: {clip(str(cause) or type(cause).__name__, 120)}")
        raise LogError(f"{reason}; {exc.line - 1:,} lines were read", file=path,
                       rule=f"line {exc.line}",
                       hint="check the file with `gzip -t`; leave out a rotated file that is "
                            "still being compressed (svlogd names it @....u until it is done)"
                       ) from None
    finally:
        stream.close()
        raw.close()
    return report


def _read_lines(stream: io.BufferedIOBase, raw: io.BufferedReader, report: FileReport,
                logs: Logs, tick: Callable[[int], None]) -> int:
    """Every line of one file into ``logs``; returns the number of lines."""
    scan = _SCAN
    classes = logs.classes
    hours = logs.hours
    readline = stream.readline
    lines = 0
    while True:
        try:
            line = readline(MAX_LINE_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise _Unreadable(lines + 1, exc) from None
        if not line:
            break
        lines += 1
        if not lines & 0xFFF:
            tick(raw.tell())
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            report.too_long += 1
            try:
                while line and not line.endswith(b"\n"):  # skip the rest of the line
                    line = readline(MAX_LINE_BYTES)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
                raise _Unreadable(lines, exc) from None
            continue
        if b'"job_status"' not in line:
            # Not parsed: a line without the key is no job's, JSON or not.
            stripped = line.strip()
            if stripped.startswith(b"{") and stripped.endswith(b"}"):
                report.other_json += 1
            elif stripped:
                report.not_json += 1
                if report.first_not_json is None:
                    report.first_not_json = lines
            continue
        # JSON from the first brace: tolerates a prefix (svlogd -tt, journalctl's short output).
        text = line.decode("utf-8", "replace")
        brace = text.find("{")
        try:
            data, end = scan(text, brace) if brace >= 0 else (None, 0)
        except (ValueError, StopIteration):
            data = None
        else:
            if end < len(text) and text[end:].strip():
                data = None  # something after the object
        if not isinstance(data, dict):
            report.not_json += 1
            if report.first_not_json is None:
                report.first_not_json = lines
            continue
        get = data.get
        status = get("job_status")
        if status not in _STATUSES:
            report.other_json += 1
            continue
        cls = get("class")
        t = parse_time(get("time"))
        if type(cls) is not str or not cls or t is None:
            report.unusable += 1
            if report.first_unusable is None:
                report.first_unusable = lines
            continue
        report.job_lines += 1
        h = int(t // 3600)
        seen = hours.get(h)
        if seen is None:
            hours[h] = [t, t]
        elif t < seen[0]:
            seen[0] = t
        elif t > seen[1]:
            seen[1] = t
        stats = classes.get(cls)
        if stats is None:
            stats = classes[cls] = ClassStats()
            queue, urgency = get("queue"), get("urgency")
            stats.queue = queue if isinstance(queue, str) else None
            stats.urgency = urgency if isinstance(urgency, str) else None
        if status == "start":
            stats.started += 1
            latency = _latency(data, t, None)
            if latency is not None:
                stats.latency_start.add(latency)
                stats.start_latency_seen = True
            continue
        if status == "fail" and get("error_class") in INTERRUPTED:
            stats.interrupted += 1
            continue
        if status == "done":
            stats.done += 1
        else:
            stats.failed += 1
        duration: Any = get("duration_s")
        if duration is None:
            duration = get("duration")  # GitLab before 12.x
        if type(duration) not in _NUMBERS or not 0 <= duration < _INF:
            duration = None
        else:
            stats.duration.add(duration)
            cpu: Any = get("cpu_s")
            if type(cpu) in _NUMBERS and 0 <= cpu < _INF:
                stats.cpu_s += cpu
                stats.cpu_of_s += duration
            db = _seconds(get("db_duration_s"))
            gitaly = _seconds(get("gitaly_duration_s"))
            redis = _seconds(get("redis_duration_s"))
            external = _seconds(get("external_http_duration_s"))
            if db is not None or gitaly is not None or redis is not None or external is not None:
                stats.db_s += db or 0.0
                stats.gitaly_s += gitaly or 0.0
                stats.redis_s += redis or 0.0
                stats.external_s += external or 0.0
                stats.waits_of_s += duration
            if type(cpu) in _NUMBERS and 0 <= cpu < _INF:
                own = min(cpu + (db or 0.0) + (gitaly or 0.0) + (redis or 0.0)
                          + (external or 0.0), duration)
                stats.demand.add(own)
                stats.demand_cpu_s += min(cpu, own)
        if not stats.start_latency_seen:  # GitLab writes the latency on start lines
            latency = _latency(data, t, duration)
            if latency is not None:
                stats.latency_end.add(latency)
        if "retry_count" not in data:  # a first attempt: an arrival (retries are the model's)
            stats.first_attempts += 1
            arrived = parse_time(get("enqueued_at"))
            if arrived is None:
                arrived = parse_time(get("created_at"))
            if arrived is None:
                arrived = t - (duration or 0.0)
            ah = int(arrived // 3600)
            span = logs.arrivals_span
            if not span:
                span.extend((arrived, arrived))
            elif arrived < span[0]:
                span[0] = arrived
            elif arrived > span[1]:
                span[1] = arrived
            arrivals = stats.arrivals
            arrivals[ah] = arrivals.get(ah, 0) + 1
    return lines


def _latency(data: dict[str, Any], t: float, duration: float | None) -> float | None:
    """Enqueued to started: GitLab's scheduling_latency_s (queue_duration_s), else computed
    from enqueued_at and the line's time (less the duration on a done/fail line)."""
    for key in ("scheduling_latency_s", "queue_duration_s"):
        value: Any = data.get(key)
        kind = type(value)
        if kind is float or kind is int:
            v = float(value)
            if math.isfinite(v):
                return max(v, 0.0)  # another host's clock may be a little ahead
    enqueued = parse_time(data.get("enqueued_at"))
    if enqueued is None:
        return None
    return max(t - (duration or 0.0) - enqueued, 0.0)


def read_logs(paths: Sequence[str], progress: Progress = no_progress) -> Logs:
    """Stream ``paths`` into one :class:`Logs`; ``progress`` counts MiB read (gzip: compressed).

    Raises :class:`LogError` for a file that cannot be read, and when no file has a single
    usable job line (naming the first file and its first line that is not a job's).
    """
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError as exc:
            raise LogError(f"cannot read the log: {exc.strerror}", file=path,
                           hint="check the path (rotated files: /var/log/gitlab/sidekiq/@*.s)"
                           ) from None
    total_mib = max(1, math.ceil(sum(sizes) / _MIB))
    logs = Logs()
    with progress(total_mib, "reading Sidekiq logs") as step:
        done_mib = 0
        base = 0

        def tick(position: int) -> None:
            nonlocal done_mib
            reached = min((base + position) // _MIB, total_mib)
            while done_mib < reached:
                step()
                done_mib += 1

        for path, size in zip(paths, sizes, strict=True):
            logs.files.append(_read_file(path, logs, tick))
            base += size
        while done_mib < total_mib:
            step()
            done_mib += 1
    if not logs.job_lines:
        first = logs.files[0]
        line = first.first_unusable or first.first_not_json or 1
        raise LogError(
            f"no GitLab Sidekiq job line (JSON with job_status start/done/fail, class and time) "
            f"in {len(paths)} file(s): {sum(f.lines for f in logs.files):,} lines, "
            f"{sum(f.not_json for f in logs.files):,} not JSON, "
            f"{sum(f.unusable for f in logs.files):,} job lines without class or time",
            file=first.path, rule=f"line {line}" if first.lines else None,
            hint="give GitLab's structured Sidekiq log (/var/log/gitlab/sidekiq/current, "
                 "sidekiq['log_format'] = 'json', the default)")
    return logs


# ---------------------------------------------------------------------------------------------
# From aggregates to a workload document


def _sig(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


def _latency_dict(sketch: LogSketch) -> dict[str, Any]:
    def q(p: float) -> float | None:
        v = sketch.quantile(p)
        return None if v is None else _sig(v, 4)

    mean = sketch.mean
    return {"samples": sketch.n, "p50_s": q(0.5), "p95_s": q(0.95), "p99_s": q(0.99),
            "mean_s": None if mean is None else _sig(mean, 4),
            "max_s": _sig(sketch.max, 4) if sketch.n else None}


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


class Flow(list[Any]):
    """A list the YAML writer puts on one line (samples, hourly multipliers)."""


def _service(stats: ClassStats, kind: str, samples: int,
             sketch: LogSketch | None = None) -> tuple[dict[str, Any], str | None]:
    """The service entry (from ``sketch``, default the durations) and, when the lognormal fit
    was refused, why."""
    sketch = stats.duration if sketch is None else sketch
    empirical = {"distribution": "empirical", "samples": Flow(
        _sig(v) for v in sketch.bin_means(samples))}
    if kind != "lognormal":
        return empirical, None
    mean = sketch.mean or 0.0
    p99 = sketch.quantile(0.99) or 0.0
    if mean <= 0 or p99 <= mean:
        return empirical, "its p99 is not above its mean"
    if p99 / mean > math.exp(_Z99**2 / 2):
        return empirical, f"p99/mean = {p99 / mean:.1f}, more than a lognormal allows"
    return {"distribution": "lognormal", "mean_s": _sig(mean), "p99_s": _sig(p99)}, None


@dataclass(frozen=True)
class Built:
    """The workload document and what an operator should know about it."""

    document: dict[str, Any]
    notes: list[str]
    segments: int
    covered_s: float


def build_workload(logs: Logs, catalog: Catalog, *, samples: int = 100,
                   service: str = "empirical", cpu_share_in_service: bool = True,
                   service_time: str = "duration", sources: Iterable[str] = ()) -> Built:
    """The workload document (a dict for YAML) from the aggregates.

    * one segment per class the catalog knows (``match: worker_name=CLASS``), in descending
      order of executions; ``rate_per_s`` is the class's first attempts per second over the
      covered hours, ``shape.hourly`` each hour of the day's rate over that mean (1 where no
      log covers the hour), so retries are left to the simulator's own retry model;
    * ``service``: ``samples`` equal-probability slices of ``duration_s`` (their means; exact
      overall mean), or a lognormal through the mean and p99 when asked and possible;
    * ``failure_probability``: fail / (done + fail) over every execution (interrupted ones
      left out);
    * ``cpu_share`` = sum(cpu_s) / sum(duration_s), clipped to [0, 1]: in ``service`` (unless
      ``cpu_share_in_service`` is false; absent without cpu_s: the loader's default applies),
      and under ``observed.classes``;
    * ``service_time="demand"``: the service is each execution's own demand, ``cpu_s`` plus
      the instrumented waits (``db_duration_s``, ``gitaly_duration_s``, ``redis_duration_s``,
      ``external_http_duration_s``), at most ``duration_s``: the execution without the time it
      waited for the GVL or a core, which the simulator's CPU model adds back for the fleet it
      simulates; ``cpu_share`` is then cpu_s over that demand. Classes without ``cpu_s`` keep
      their durations (a note names them);
    * ``start_hour``: the hour of day (UTC) where the logs begin;
    * ``observed``: files, window, queueing and execution per urgency and per class.
    """
    notes: list[str] = []
    exposure = logs.exposure()
    # An hour the logs only touch (the last line just after it begins) is left out, unless the
    # logs cover less than an hour in all (a short test run that crosses a clock hour).
    short = sum(exposure.values()) < 3600.0
    valid = {h: s for h, s in exposure.items() if s > 0 and (short or s >= MIN_EXPOSURE_S)}
    by_hod = [0.0] * 24
    for h, seconds in valid.items():
        by_hod[h % 24] += seconds
    covered = sum(by_hod)
    hours_of_day = [h for h in range(24) if by_hod[h] > 0]
    span = logs.arrivals_span
    if short and span and span[1] > span[0]:
        # A test run, not an instance's day: the rates are over the span of the arrivals (the
        # lines go on while the last jobs drain, which would dilute them), with no hourly shape.
        covered = span[1] - span[0]
        hours_of_day = hours_of_day[:1]
        notes.append(f"the logs cover less than an hour: rates are over the {covered:.1f} s "
                     "from the first to the last arrival (enqueued_at), without hourly shape")

    segments: list[dict[str, Any]] = []
    observed_classes: dict[str, Any] = {}
    unmatched: dict[str, int] = {}
    no_duration: list[str] = []
    refused: list[str] = []
    no_demand: list[str] = []
    urgency_of: dict[str, str] = {}
    order = sorted(logs.classes.items(), key=lambda kv: (-kv[1].executed, kv[0]))
    for name, stats in order:
        worker = catalog.get(name)
        if worker is not None and worker.worker_name is None:
            worker = None  # a placeholder entry (a queue name), not a class
        urgency = (worker.urgency if worker else stats.urgency) or "low"
        urgency_of[name] = urgency
        counts = [0] * 24
        outside = 0
        for h, n in stats.arrivals.items():
            if h in valid:
                counts[h % 24] += n
            else:
                outside += n
        arrived = sum(counts)
        rate = arrived / covered if covered else 0.0
        entry: dict[str, Any] = {
            "urgency": urgency, "queue": stats.queue, "in_catalog": worker is not None,
            "jobs": stats.first_attempts, "executed": stats.executed, "failed": stats.failed,
            "interrupted": stats.interrupted, "started": stats.started,
            "arrivals_outside_window": outside,
            "cpu_share": None if stats.cpu_share is None else round(stats.cpu_share, 4),
        }
        if stats.waits_of_s > 0:
            for key, total in (("db", stats.db_s), ("gitaly", stats.gitaly_s),
                               ("redis", stats.redis_s), ("external_http", stats.external_s)):
                entry[f"{key}_share"] = round(min(total / stats.waits_of_s, 1.0), 4)
        entry["queueing"] = _latency_dict(stats.latency)
        entry["execution"] = _latency_dict(stats.duration)
        observed_classes[name] = entry
        if worker is None:
            unmatched[name] = stats.executed
            continue
        if not stats.duration.n:
            no_duration.append(name)
            continue
        share = stats.cpu_share
        sketch = None
        if service_time == "demand":
            if stats.demand.n and stats.demand.mean:
                sketch = stats.demand
                share = min(max(stats.demand_cpu_s / (stats.demand.mean * stats.demand.n),
                                0.0), 1.0)
            else:
                no_demand.append(name)
        svc, why = _service(stats, service, samples, sketch)
        if why:
            refused.append(f"{name} ({why})")
        if cpu_share_in_service and share is not None:
            svc["cpu_share"] = round(share, 4)
        segment: dict[str, Any] = {"name": name, "match": f"worker_name={name}",
                                   "rate_per_s": _sig(rate)}
        if rate > 0 and len(hours_of_day) > 1:
            shape = [(counts[h] / by_hod[h]) / rate if by_hod[h] else 1.0 for h in range(24)]
            if any(abs(m - 1.0) > 1e-4 for m in shape):
                segment["shape"] = {"hourly": Flow(round(m, 4) for m in shape)}
        segment["service"] = svc
        fp = stats.failure_probability
        if fp:
            segment["failure_probability"] = _sig(fp)
        segments.append(segment)

    if unmatched:
        top = sorted(unmatched, key=lambda k: -unmatched[k])
        notes.append(f"{len(unmatched)} class(es) not in the worker catalog {catalog.path} "
                     f"left out of the segments (most executions first: "
                     f"{', '.join(top[:5])}{', ...' if len(top) > 5 else ''}); "
                     "give --catalog or -i with the catalog the instance runs")
    if no_duration:
        notes.append(f"{len(no_duration)} class(es) without duration_s left out of the "
                     f"segments: {', '.join(sorted(no_duration)[:5])}")
    if no_demand:
        notes.append(f"{len(no_demand)} class(es) without cpu_s keep their logged durations as "
                     f"service (no demand to be had): {', '.join(sorted(no_demand)[:5])}")
    if refused:
        notes.append(f"empirical service for {len(refused)} class(es) a lognormal does not "
                     f"fit: {', '.join(refused[:3])}{', ...' if len(refused) > 3 else ''}")
    if len(hours_of_day) < 24 and covered:
        notes.append(f"the logs cover {len(hours_of_day)} of 24 hours of the day: the others "
                     "run at each class's mean rate")

    by_urgency: dict[str, Any] = {}
    for urgency in sorted(set(urgency_of.values()),
                          key=lambda u: ("high", "low", "throttled").index(u)
                          if u in ("high", "low", "throttled") else 9):
        members = [logs.classes[n] for n, u in urgency_of.items() if u == urgency]
        executed = sum(s.executed for s in members)
        by_urgency[urgency] = {
            "jobs": sum(s.first_attempts for s in members),
            "executed": executed,
            "failed": sum(s.failed for s in members),
            "throughput_per_s": _sig(executed / covered, 4) if covered else None,
            "queueing": _latency_dict(LogSketch.merged(s.latency for s in members)),
            "execution": _latency_dict(LogSketch.merged(s.duration for s in members)),
        }
    # The window: the covered hours (a stray line with a wrong clock does not stretch it).
    first = logs.hours[min(valid)][0] if valid else logs.first
    last = logs.hours[max(valid)][1] if valid else logs.last
    start_hour = 0.0 if first is None else math.floor((first % 86400.0) / 3600.0 * 1000) / 1000
    files = [{"path": f.path, "gzip": f.compressed, "lines": f.lines, "job_lines": f.job_lines,
              "not_json": f.not_json, "other_json": f.other_json, "unusable": f.unusable,
              "too_long": f.too_long} for f in logs.files]
    document: dict[str, Any] = {
        "description": f"from-logs: {len(logs.files)} file(s), {_iso(first)} to {_iso(last)}",
        "start_hour": min(start_hour, 23.999),
        "segments": segments,
        "observed": {
            "generator": "fleetsim workload from-logs",
            "sources": list(sources) or [f.path for f in logs.files],
            "files": files,
            "window": {"first": _iso(first), "last": _iso(last),
                       "covered_s": round(covered, 3), "hours_of_day": Flow(hours_of_day)},
            "service": ("empirical: the means of equal-probability slices of duration_s"
                        if service == "empirical" else
                        "lognormal through mean and p99 of duration_s where it fits, else "
                        "empirical"),
            "by_urgency": by_urgency,
            "classes": observed_classes,
            "notes": notes,
        },
    }
    return Built(document, notes, len(segments), covered)
