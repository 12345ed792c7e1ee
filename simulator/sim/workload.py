"""Workload files: what the fleet is asked to do (docs/simulator.md has the full reference).

A workload is YAML::

    segments:                    # first segment whose query matches a worker class wins
      - match: "urgency=high"    # GitLab's worker matching query (docs/behaviour.md §1)
        rate_per_s: 40           # jobs/s for the whole segment, split evenly over its classes
        service: {distribution: lognormal, mean_s: 0.2, p99_s: 1.5, cpu_share: 0.1}
        failure_probability: 0.001
    shape: {hourly: [24 multipliers]}   # optional daily shape of every rate
    trace: {file: jobs.csv}             # optional replay: time,worker_class,duration
    events:                             # optional fleet events
      - {at: 20m, action: node_down, node: sidekiq2.example.com}
      - {at: 1h, action: redis_failover, downtime_s: 30, lose_last_s: 1, producer_retry: false}
    redis: {...}                        # optional cost model overrides (microseconds)
    overheads: {fetch_round_trip_s: 0.0002, dispatch_s: 0.0001, enqueue_visible_s: 0.0006,
                dispatch_cpu_s: 0.001}  # optional per-job overheads (seconds; sim/overheads.py)
    slo: {...}                          # optional target overrides
    observed: {...}                     # ignored: what logs showed (workload from-logs)

:func:`load_workload` checks everything and raises :class:`WorkloadError` naming the file, the
entry and the fix.  :func:`build_scenario` turns a workload and a :class:`~.inventory.Fleet`
into the plain :class:`~.engine.Scenario` the engine runs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

from ..errors import FleetError, WorkloadError, excerpt
from ..inputs import load_yaml_file, parse_duration
from ..routing.query import parse_query
from ..routing.rules import Router
from .model import (
    FleetEvent,
    JobClass,
    Overheads,
    Process,
    RedisCost,
    Scenario,
    ServiceTime,
    SloTargets,
    TraceSpec,
    default_cpu_share,
)
from .overheads import MAX_OVERHEAD_S

__all__ = ["Segment", "Workload", "build_scenario", "load_workload"]

_Z99 = NormalDist().inv_cdf(0.99)
_TOP_KEYS = {"segments", "shape", "start_hour", "trace", "events", "redis", "slo", "description",
             "observed", "overheads"}
_SEGMENT_KEYS = {"match", "rate_per_s", "service", "failure_probability", "shape", "name"}
_DISTRIBUTIONS = ("exponential", "lognormal", "deterministic", "empirical")
_ACTIONS = ("node_down", "node_up", "restart", "routing", "redis_failover")
_FAILOVER_KEYS = ("at", "action", "downtime_s", "lose_last_s", "producer_retry", "shard")
#: What each event action takes (redis_failover's keys are checked with its settings).
_EVENT_KEYS = {
    "node_down": ("at", "action", "node"),
    "node_up": ("at", "action", "node"),
    "restart": ("at", "action", "node", "timeout_s", "boot_s"),
    "routing": ("at", "action", "rules"),
}


@dataclass(frozen=True)
class Segment:
    index: int  # 1-based, as the error messages count
    match: str
    rate_per_s: float
    service: ServiceTime
    failure_probability: float = 0.0
    shape: tuple[float, ...] | None = None
    name: str | None = None
    #: Share of the execution that runs Ruby (``service.cpu_share``); None: the default of
    #: each worker's resource boundary.
    cpu_share: float | None = None

    @property
    def label(self) -> str:
        return f"segments entry {self.index}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class EventSpec:
    index: int
    at: float
    action: str
    node: str | None = None
    timeout_s: float = 25.0
    boot_s: float = 10.0
    rules: Any = None
    shard: str | None = None
    downtime_s: float = 0.0
    lose_last_s: float = 0.0
    producer_retry: bool = False


@dataclass(frozen=True)
class Workload:
    path: str
    segments: tuple[Segment, ...]
    shape: tuple[float, ...] | None = None
    start_hour: float = 0.0
    trace: str | None = None
    events: tuple[EventSpec, ...] = ()
    redis: RedisCost = field(default_factory=RedisCost)
    slo: SloTargets = field(default_factory=SloTargets)
    overheads: Overheads = field(default_factory=Overheads)


def _number(value: Any, what: str, *, file: str, rule: str, hint: str,
            lo: float = 0.0, hi: float = math.inf, strict_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise WorkloadError(f"{what} must be a number, not {excerpt(value)}", file=file,
                            rule=rule, hint=hint)
    try:
        value = float(value)
    except OverflowError:  # an integer beyond any float
        value = math.inf
    if math.isinf(value):
        raise WorkloadError(f"{what} must be a finite number, not {value:g}", file=file,
                            rule=rule, hint=hint)
    if value < lo or (strict_lo and value == lo) or value > hi:
        if value < 0 and lo >= 0:
            problem = f"{what} is negative ({value:g})"
        else:
            bound = f"above {lo:g}" if strict_lo else f"at least {lo:g}"
            if hi < math.inf:
                bound += f" and at most {hi:g}"
            problem = f"{what} must be {bound}, not {value:g}"
        raise WorkloadError(problem, file=file, rule=rule, hint=hint)
    return value


def _shape(raw: Any, *, file: str, rule: str) -> tuple[float, ...]:
    hint = "give 24 hourly multipliers, e.g. shape: {hourly: [0.5, 0.4, ..., 1.0]}"
    if not isinstance(raw, dict) or set(raw) != {"hourly"}:
        raise WorkloadError("shape must be a mapping with one key, hourly", file=file,
                            rule=rule, hint=hint)
    values = raw["hourly"]
    if not isinstance(values, list) or len(values) != 24:
        count = len(values) if isinstance(values, list) else "not a list"
        raise WorkloadError(f"shape.hourly needs 24 multipliers ({count})", file=file,
                            rule=rule, hint=hint)
    return tuple(_number(v, f"shape.hourly[{i}]", file=file, rule=rule, hint=hint)
                 for i, v in enumerate(values))


def _service(raw: Any, *, file: str, rule: str) -> ServiceTime:
    hint = ("e.g. service: {distribution: lognormal, mean_s: 0.5, p99_s: 4}; distributions: "
            + ", ".join(_DISTRIBUTIONS))
    if not isinstance(raw, dict):
        raise WorkloadError("service must be a mapping", file=file, rule=rule, hint=hint)
    kind = raw.get("distribution", "exponential")
    if kind not in _DISTRIBUTIONS:
        raise WorkloadError(f"unknown service distribution {excerpt(kind)}", file=file, rule=rule,
                            hint=hint)
    allowed = {"distribution", "mean_s", "p99_s", "samples", "value_s", "cpu_share"}
    extra = set(raw) - allowed
    if extra:
        raise WorkloadError(f"unknown service keys: {', '.join(sorted(extra))}", file=file,
                            rule=rule, hint=hint)
    if kind == "empirical":
        samples = raw.get("samples")
        if not isinstance(samples, list) or not samples:
            raise WorkloadError("an empirical service time needs samples: [seconds, ...]",
                                file=file, rule=rule, hint="list measured durations in seconds")
        values = tuple(_number(v, "service sample", file=file, rule=rule,
                               hint="durations are seconds, 0 or more") for v in samples)
        return ServiceTime("empirical", sum(values) / len(values), samples=values)
    mean_key = "value_s" if kind == "deterministic" and "value_s" in raw else "mean_s"
    if mean_key not in raw:
        raise WorkloadError(f"the {kind} service time needs mean_s", file=file, rule=rule,
                            hint=hint)
    mean = _number(raw[mean_key], f"service {mean_key}", file=file, rule=rule, strict_lo=True,
                   hint="the mean execution time in seconds, above 0")
    if kind != "lognormal":
        return ServiceTime(kind, mean)
    if "p99_s" not in raw:
        raise WorkloadError("a lognormal service time needs p99_s as well as mean_s",
                            file=file, rule=rule, hint="add p99_s: the 99th percentile, seconds")
    p99 = _number(raw["p99_s"], "service p99_s", file=file, rule=rule, strict_lo=True,
                  hint="the 99th percentile execution time in seconds")
    if p99 <= mean:
        raise WorkloadError(
            f"p99_s ({p99:g}) is not above mean_s ({mean:g}): no lognormal has its 99th "
            "percentile at or below its mean", file=file, rule=rule,
            hint="check the two figures (p99 is usually several times the mean), or use "
                 "distribution: deterministic",
        )
    # mean = exp(mu + s^2/2), p99 = exp(mu + z s)  =>  s^2 - 2 z s + 2 ln(p99/mean) = 0.
    disc = _Z99**2 - 2 * math.log(p99 / mean)
    if disc < 0:
        limit = math.exp(_Z99**2 / 2)
        raise WorkloadError(
            f"p99_s / mean_s = {p99 / mean:.1f}: a lognormal allows at most {limit:.1f}",
            file=file, rule=rule,
            hint="lower p99_s, or describe the tail with distribution: empirical",
        )
    return ServiceTime("lognormal", mean, sigma=_Z99 - math.sqrt(disc))


def _segment(raw: Any, index: int, file: str) -> Segment:
    rule = f"segments entry {index}"
    hint = 'e.g. - {match: "urgency=high", rate_per_s: 10, service: {mean_s: 0.5}}'
    if not isinstance(raw, dict):
        raise WorkloadError("a segment must be a mapping", file=file, rule=rule, hint=hint)
    extra = set(raw) - _SEGMENT_KEYS
    if extra:
        raise WorkloadError(f"unknown segment keys: {', '.join(sorted(extra))}", file=file,
                            rule=rule, hint="known keys: " + ", ".join(sorted(_SEGMENT_KEYS)))
    if "match" not in raw or not isinstance(raw["match"], str):
        raise WorkloadError("a segment needs match: a worker matching query string",
                            file=file, rule=rule, hint=hint)
    if "rate_per_s" not in raw:
        raise WorkloadError("a segment needs rate_per_s", file=file, rule=rule, hint=hint)
    rate = _number(raw["rate_per_s"], "rate_per_s", file=file, rule=rule,
                   hint="jobs per second for the segment: 0 or more")
    if "service" not in raw:
        raise WorkloadError("a segment needs service: its execution time distribution",
                            file=file, rule=rule,
                            hint="e.g. service: {distribution: exponential, mean_s: 0.5}")
    return Segment(
        index=index,
        match=raw["match"],
        rate_per_s=rate,
        service=_service(raw["service"], file=file, rule=rule),
        failure_probability=_number(raw.get("failure_probability", 0.0),
                                    "failure_probability", file=file, rule=rule, hi=1.0,
                                    hint="a probability between 0 and 1"),
        shape=_shape(raw["shape"], file=file, rule=rule) if "shape" in raw else None,
        name=raw.get("name"),
        cpu_share=_cpu_share(raw["service"], file=file, rule=rule),
    )


def _cpu_share(service: dict[str, Any], *, file: str, rule: str) -> float | None:
    if service.get("cpu_share") is None:
        return None
    return _number(service["cpu_share"], "service cpu_share", file=file, rule=rule, hi=1.0,
                   hint="the share of the execution time that runs Ruby on a core, 0 to 1 "
                        "(GitLab logs it as cpu_s / duration_s)")


def _event(raw: Any, index: int, file: str) -> EventSpec:
    rule = f"events entry {index}"
    hint = ("e.g. - {at: 20m, action: node_down, node: sidekiq2}; actions: "
            + ", ".join(_ACTIONS))
    if not isinstance(raw, dict) or "at" not in raw or "action" not in raw:
        raise WorkloadError("an event needs at and action", file=file, rule=rule, hint=hint)
    action = raw["action"]
    if action not in _ACTIONS:
        raise WorkloadError(f"unknown event action {excerpt(action)}", file=file, rule=rule,
                            hint=hint)
    at = parse_duration(raw["at"], what="at", file=file, rule=rule)
    known = _EVENT_KEYS.get(action)
    extra = sorted(map(str, set(raw) - set(known))) if known else []
    if extra:
        raise WorkloadError(f"unknown {action} event keys: {excerpt(', '.join(extra))}",
                            file=file, rule=rule,
                            hint=f"a {action} event takes {', '.join(known or ())}")
    if action == "routing":
        if "rules" not in raw:
            raise WorkloadError("a routing event needs rules: the new sidekiq_routing_rules",
                                file=file, rule=rule,
                                hint='e.g. rules: [["urgency=high", "urgent"], ["*", "default"]]')
        return EventSpec(index, at, action, rules=raw["rules"])
    if action == "redis_failover":
        return _failover(raw, index, at, file)
    if not isinstance(raw.get("node"), str):
        raise WorkloadError(f"a {action} event needs node: an inventory host", file=file,
                            rule=rule, hint=hint)
    return EventSpec(
        index, at, action, node=raw["node"],
        timeout_s=parse_duration(raw.get("timeout_s", 25), what="timeout_s", file=file,
                                 rule=rule),
        boot_s=parse_duration(raw.get("boot_s", 10), what="boot_s", file=file, rule=rule),
    )


def _failover(raw: dict[Any, Any], index: int, at: float, file: str) -> EventSpec:
    """``{at, action: redis_failover, downtime_s, lose_last_s: 0, producer_retry: false,
    shard: default}`` (simulator.sim.redis_failover)."""
    rule = f"events entry {index}"
    hint = ("e.g. - {at: 5m, action: redis_failover, downtime_s: 30, lose_last_s: 0, "
            "producer_retry: false}")
    extra = sorted(map(str, set(raw) - set(_FAILOVER_KEYS)))
    if extra:
        raise WorkloadError(f"unknown redis_failover keys: {excerpt(', '.join(extra))}",
                            file=file, rule=rule, hint="known: " + ", ".join(_FAILOVER_KEYS))
    if "downtime_s" not in raw:
        raise WorkloadError("a redis_failover event needs downtime_s: how long no client "
                            "reaches Redis (failure to the clients' reconnection)", file=file,
                            rule=rule, hint=hint)
    downtime = parse_duration(raw["downtime_s"], what="downtime_s", file=file, rule=rule)
    if downtime <= 0:
        raise WorkloadError("downtime_s must be above 0", file=file, rule=rule,
                            hint="a failover that loses no time needs no event; " + hint)
    retry = raw.get("producer_retry", False)
    if not isinstance(retry, bool):
        raise WorkloadError(f"producer_retry must be true or false, not {excerpt(retry)}",
                            file=file, rule=rule,
                            hint="write it unquoted: producer_retry: true (the producers push "
                                 "again after the downtime) or false (Sidekiq's client raises: "
                                 "the job is lost)")
    shard = raw.get("shard")
    if shard is not None and (not isinstance(shard, str) or not shard):
        raise WorkloadError(f"shard must be a Redis shard's name, not {excerpt(shard)}",
                            file=file, rule=rule,
                            hint="the third element of a routing rule; leave it out for the "
                                 "default Redis")
    return EventSpec(
        index, at, "redis_failover", shard=shard, downtime_s=downtime,
        lose_last_s=parse_duration(raw.get("lose_last_s", 0), what="lose_last_s", file=file,
                                   rule=rule),
        producer_retry=retry,
    )


def _check_failovers(events: tuple[EventSpec, ...], file: str) -> None:
    """Two failovers of one shard may not overlap (the second would fail a Redis that is
    already down)."""
    busy: dict[str, EventSpec] = {}
    for ev in sorted((e for e in events if e.action == "redis_failover"), key=lambda e: e.at):
        shard = ev.shard or "default"
        before = busy.get(shard)
        if before is not None and ev.at < before.at + before.downtime_s:
            raise WorkloadError(
                f"this redis_failover of shard {shard!r} starts at {ev.at:g} s, while the one "
                f"of events entry {before.index} keeps it down until "
                f"{before.at + before.downtime_s:g} s", file=file, rule=f"events entry {ev.index}",
                hint="move it later or shorten the downtime_s before it")
        busy[shard] = ev


def _dataclass_overrides(cls: type, base: Any, raw: Any, *, file: str, rule: str) -> Any:
    if raw is None:
        return base
    names = {f.name for f in fields(cls)}
    if not isinstance(raw, dict) or set(raw) - names:
        unknown = sorted(set(raw) - names) if isinstance(raw, dict) else raw
        raise WorkloadError(f"unknown {rule} settings: {unknown}", file=file, rule=rule,
                            hint="known: " + ", ".join(sorted(names)))
    return replace(base, **raw)


def _overheads(raw: Any, file: str) -> Overheads:
    """``overheads: {fetch_round_trip_s, dispatch_s, enqueue_visible_s, dispatch_cpu_s}``: each
    in seconds, an unset one keeps its default (simulator.sim.overheads)."""
    names = [f.name for f in fields(Overheads)]
    hint = ("e.g. overheads: {fetch_round_trip_s: 0.0002, dispatch_s: 0.0001, "
            "enqueue_visible_s: 0.0006, dispatch_cpu_s: 0.001} (seconds, the defaults; all 0 "
            "for the ideal queue)")
    if raw is None:
        return Overheads()
    if not isinstance(raw, dict) or set(raw) - set(names):
        unknown = sorted(map(str, set(raw) - set(names))) if isinstance(raw, dict) else raw
        raise WorkloadError(f"unknown overheads settings: {excerpt(unknown)}", file=file,
                            rule="overheads", hint="known: " + ", ".join(names) + "; " + hint)
    values = {name: _number(raw[name], f"overheads.{name}", file=file, rule="overheads",
                            hi=MAX_OVERHEAD_S, hint=hint)
              for name in names if name in raw}
    return Overheads(**values)


def _check_trace(path: Path, file: str) -> None:
    """Stream the trace once: header, numbers, non-decreasing times (class names later)."""
    rule = f"trace file {path}"
    if not path.is_file():
        raise WorkloadError("the trace file does not exist", file=file, rule=rule,
                            hint="give a path relative to the workload file")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        try:
            need = {"time", "worker_class", "duration"}
            if not reader.fieldnames or not need <= set(reader.fieldnames):
                raise WorkloadError("the trace needs a header time,worker_class,duration",
                                    file=file, rule=rule, hint="add the header line")
            last = 0.0
            for row in reader:
                line = f"{rule}, line {reader.line_num}"
                try:
                    t = float(row["time"])
                    d = float(row["duration"])
                except (TypeError, ValueError):
                    raise WorkloadError("time and duration must be numbers (seconds)",
                                        file=file, rule=line, hint="fix the row") from None
                if not (math.isfinite(t) and math.isfinite(d)):
                    raise WorkloadError("time and duration must be finite numbers (seconds)",
                                        file=file, rule=line, hint="fix the row")
                if t < last or d < 0:
                    raise WorkloadError("times must not decrease and durations must be >= 0",
                                        file=file, rule=line, hint="sort the trace by time")
                last = t
        except UnicodeDecodeError:
            raise WorkloadError("the trace is not UTF-8 text", file=file,
                                rule=f"{rule}, near line {reader.line_num + 1}",
                                hint="save the trace as UTF-8") from None
        except csv.Error as exc:
            raise WorkloadError(f"not a readable CSV file: {exc}", file=file,
                                rule=f"{rule}, line {reader.line_num}",
                                hint="columns time,worker_class,duration (seconds)") from None


def load_workload(path: str | Path) -> Workload:
    """Read and check a workload file."""
    path = Path(path)
    file = str(path)
    raw = load_yaml_file(path, error=WorkloadError, what="workload",
                         hint="check the path given to --workload")
    if not isinstance(raw, dict):
        raise WorkloadError("a workload is a mapping with a segments list", file=file,
                            hint="start with segments: [...]")
    extra = set(raw) - _TOP_KEYS
    if extra:
        raise WorkloadError(f"unknown keys: {', '.join(sorted(extra))}", file=file,
                            hint="known keys: " + ", ".join(sorted(_TOP_KEYS)))
    segments_raw = raw.get("segments") or []
    if not isinstance(segments_raw, list):
        raise WorkloadError("segments must be a list", file=file, hint="segments: [...]")
    if not segments_raw and not raw.get("trace"):
        raise WorkloadError("the workload has no segments and no trace", file=file,
                            hint="add at least one segment, e.g. match: '*'")
    segments = tuple(_segment(s, i, file) for i, s in enumerate(segments_raw, start=1))
    trace = None
    if raw.get("trace") is not None:
        t = raw["trace"]
        if not isinstance(t, dict) or not isinstance(t.get("file"), str):
            raise WorkloadError("trace must be {file: path.csv}", file=file, rule="trace",
                                hint="columns time,worker_class,duration (seconds)")
        trace_path = (path.parent / t["file"]).resolve()
        _check_trace(trace_path, file)
        trace = str(trace_path)
    events_raw = raw.get("events") or []
    if not isinstance(events_raw, list):
        raise WorkloadError("events must be a list", file=file, hint="events: [...]")
    slo = SloTargets()
    slo_raw = raw.get("slo")
    if slo_raw is not None:
        slo = _slo(slo_raw, slo, file)
    start_hour = _number(raw.get("start_hour", 0), "start_hour", file=file, rule="start_hour",
                         hi=23.999, hint="the hour of day at time 0, 0-23")
    events = tuple(_event(e, i, file) for i, e in enumerate(events_raw, start=1))
    _check_failovers(events, file)
    return Workload(
        path=file,
        segments=segments,
        shape=_shape(raw["shape"], file=file, rule="shape") if raw.get("shape") else None,
        start_hour=start_hour,
        trace=trace,
        events=events,
        redis=_dataclass_overrides(RedisCost, RedisCost(), raw.get("redis"), file=file,
                                   rule="redis"),
        slo=slo,
        overheads=_overheads(raw.get("overheads"), file),
    )


def _slo(raw: Any, base: SloTargets, file: str) -> SloTargets:
    hint = "e.g. slo: {queueing_s: {high: 10, low: 60}, queueing_apdex: 0.999}"
    known = {"queueing_s", "execution_s", "queueing_apdex", "execution_apdex"}
    if not isinstance(raw, dict) or set(raw) - known:
        raise WorkloadError("unknown slo settings", file=file, rule="slo", hint=hint)
    queueing = dict(base.queueing)
    execution = dict(base.execution)
    for key, target in (("queueing_s", queueing), ("execution_s", execution)):
        for urgency, value in (raw.get(key) or {}).items():
            if urgency not in target:
                raise WorkloadError(f"unknown urgency {excerpt(urgency)} in slo.{key}", file=file,
                                    rule="slo", hint="urgencies: high, low, throttled")
            target[urgency] = math.inf if value is None else _number(
                value, f"slo.{key}.{urgency}", file=file, rule="slo", strict_lo=True, hint=hint)
    return SloTargets(
        queueing=queueing, execution=execution,
        queueing_apdex=_number(raw.get("queueing_apdex", base.queueing_apdex),
                               "slo.queueing_apdex", file=file, rule="slo", hi=1.0, hint=hint),
        execution_apdex=_number(raw.get("execution_apdex", base.execution_apdex),
                                "slo.execution_apdex", file=file, rule="slo", hi=1.0, hint=hint),
    )


def build_scenario(workload: Workload, fleet: Any) -> Scenario:
    """The engine's input from a workload and an inventory ``Fleet`` (catalog, router, hosts)."""
    catalog = fleet.catalog
    router = fleet.router
    workers = router.routed_workers()
    file = workload.path
    assigned: dict[str, tuple[Segment, int]] = {}
    classes: list[JobClass] = []
    for seg in workload.segments:
        try:
            query = parse_query(seg.match, strict=True, catalog=catalog)
        except FleetError as exc:
            raise WorkloadError(exc.message, file=file, rule=f"{seg.label}, match",
                                position=exc.position, hint=exc.hint) from None
        matched = [w for w in workers if query.matches(w)]
        if not matched:
            raise WorkloadError(
                f"match {excerpt(seg.match)} selects no worker class of the catalog", file=file,
                rule=seg.label,
                hint="check the query with `fleetsim route match`, or remove the segment")
        fresh = [w for w in matched if w.key not in assigned]
        if not fresh:
            raise WorkloadError(
                f"every worker class {excerpt(seg.match)} selects is taken by earlier segments",
                file=file, rule=seg.label,
                hint="the first matching segment wins: move this one up or narrow the others")
        for w in fresh:
            assigned[w.key] = (seg, len(fresh))
    for w in workers:
        seg_n = assigned.get(w.key)
        urgency = w.urgency or "low"
        share = default_cpu_share(w.resource_boundary)
        if seg_n is None:
            classes.append(JobClass(w.key, urgency, cpu_share=share))
            continue
        seg, n = seg_n
        classes.append(JobClass(w.key, urgency, seg.rate_per_s / n, seg.service,
                                seg.failure_probability, seg.shape,
                                share if seg.cpu_share is None else seg.cpu_share))
    if workload.trace:
        known = {w.key for w in workers}
        with open(workload.trace, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                if row["worker_class"].strip() not in known:
                    raise WorkloadError(
                        f"worker class {excerpt(row['worker_class'])} is not in the catalog",
                        file=file, rule=f"trace file {workload.trace}, line {reader.line_num}",
                        hint="use worker class names as in all_queues.yml (worker_name)")
    routes = {key: (r.queue, r.shard) for key, r in router.resolve().items()}
    processes: list[Process] = []
    nodes: set[str] = set()
    node_cpus: dict[str, float] = {}
    for host in fleet.sidekiq_hosts():
        nodes.add(host.name)
        for proc in host.processes:
            label = f"{host.name.split('.')[0]}/{proc.index}"
            processes.append(Process.placed(label, host.name, tuple(proc.queues), proc.concurrency,
                                            proc.group, fetch_order=proc.fetch_order))
        # sidekiq_cpus, else a core per process the inventory puts there (Sidekiq's advice):
        # a capacity candidate with more busy processes on the node shares its cores.
        try:
            cpus = host.cpus
        except FleetError as exc:
            raise exc.located(file=getattr(fleet, "source", None)) from None
        node_cpus[host.name] = float(cpus or max(len(host.processes), 1))
    events: list[FleetEvent] = []
    shards = {shard or "default" for _, shard in routes.values()}
    for ev in workload.events:
        rule = f"events entry {ev.index}"
        if ev.action == "redis_failover":
            events.append(FleetEvent(ev.at, "redis_failover", shard=ev.shard,
                                     downtime_s=ev.downtime_s, lose_last_s=ev.lose_last_s,
                                     producer_retry=ev.producer_retry))
            continue
        if ev.action == "routing":
            try:
                new = Router.from_rules(ev.rules, catalog, strict=True)
            except FleetError as exc:
                raise WorkloadError(exc.message, file=file, rule=f"{rule}, rules",
                                    position=exc.position, hint=exc.hint) from None
            new_routes = {key: (r.queue, r.shard) for key, r in new.resolve().items()}
            events.append(FleetEvent(ev.at, "routing", routes=new_routes))
            shards.update(shard or "default" for _, shard in new_routes.values())
            continue
        if ev.node not in nodes:
            raise WorkloadError(f"node {excerpt(ev.node)} is not a sidekiq host of the inventory",
                                file=file, rule=rule,
                                hint="sidekiq hosts: " + ", ".join(sorted(nodes)))
        events.append(FleetEvent(ev.at, ev.action, ev.node, ev.timeout_s, ev.boot_s))
    for ev in workload.events:  # a failover's shard: one the routes (now or later) push to
        name = ev.shard or "default"
        if ev.action == "redis_failover" and name not in shards:
            raise WorkloadError(
                f"shard {excerpt(name)} is not a Redis shard of the routing rules",
                file=file, rule=f"events entry {ev.index}",
                hint="shards: " + ", ".join(sorted(shards)) + " (the third element of a rule; "
                     "leave shard out for the default Redis)")
    return Scenario(
        classes=tuple(classes),
        processes=tuple(processes),
        routes=routes,
        shape=workload.shape,
        start_hour=workload.start_hour,
        trace=TraceSpec(workload.trace) if workload.trace else None,
        events=tuple(events),
        redis=workload.redis,
        targets=workload.slo,
        node_cpus=node_cpus,
        overheads=workload.overheads,
    )
