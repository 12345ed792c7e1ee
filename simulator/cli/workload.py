"""``fleetsim workload from-logs``: a workload from GitLab's structured Sidekiq logs."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import FleetError
from ..report.terminal import progress
from ..routing.catalog import Catalog, cached_catalog
from ..sim.logs import Built, Flow, build_workload, read_logs

__all__ = ["cmd_from_logs", "dump_workload"]

_HEADER = """\
# A workload built by `fleetsim workload from-logs` from GitLab's structured Sidekiq logs.
# One segment per worker class (match: worker_name=CLASS), most executions first:
#   rate_per_s           first attempts per second over the hours the logs cover (retries are
#                        the simulator's: failure_probability and Sidekiq's retry schedule)
#   shape.hourly         each hour of the day's (UTC) rate over rate_per_s; 1 where no log
#                        covers the hour
#   service              execution time (duration_s; with --service-time demand, cpu_s plus
#                        the logged waits): empirical means of equal-probability slices, or a
#                        lognormal through the mean and p99 (--service lognormal);
#                        cpu_share = sum(cpu_s) / sum(that time), clipped to [0, 1] (absent
#                        where the logs have no cpu_s: the simulator's default applies)
#   failure_probability  fail / (done + fail), executions Sidekiq interrupted left out
# start_hour is the hour of day (UTC) where the logs begin. observed: what the logs show
# (queueing = scheduling_latency_s, per urgency and per class), to compare with
# `fleetsim simulate --json`; the simulator ignores it.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _flow(dumper: yaml.SafeDumper, data: Flow) -> Any:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=True)


_Dumper.add_representer(Flow, _flow)


def dump_workload(document: dict[str, Any]) -> str:
    return _HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100,
                               allow_unicode=True)


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    target = Path(path)
    hint = "give -o a file in a directory you can write to"
    if target.is_dir():
        raise FleetError("-o: is a directory", file=path, hint=hint)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".",
                                   prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise FleetError(f"-o: cannot write: {exc.strerror}", file=path, hint=hint) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FleetError(f"-o: cannot write: {exc.strerror}", file=path, hint=hint) from None


def _catalog(args: argparse.Namespace) -> Catalog:
    if args.inventory:
        from ..fleet.inventory import load_fleet

        return load_fleet(args.inventory).catalog
    return cached_catalog(args.catalog)


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _report(built: Built, args: argparse.Namespace, seconds: float) -> None:
    observed = built.document["observed"]
    files = observed["files"]
    lines = sum(f["lines"] for f in files)
    jobs = sum(f["job_lines"] for f in files)
    skipped = {k: sum(f[k] for f in files) for k in ("not_json", "other_json", "unusable",
                                                       "too_long")}
    out = sys.stdout
    print(f"read {len(files)} file(s), {lines:,} lines in {seconds:.1f} s "
          f"({lines / seconds if seconds > 0 else 0:,.0f} lines/s): {jobs:,} job lines; "
          f"skipped {skipped['not_json']:,} not JSON, {skipped['other_json']:,} other JSON, "
          f"{skipped['unusable']:,} job lines without class or time, "
          f"{skipped['too_long']:,} over 1 MiB", file=out)
    for f in files:
        if not f["job_lines"]:
            print(f"warning: {f['path']}: no job line ({f['lines']:,} lines, "
                  f"{f['not_json']:,} not JSON)", file=out)
    window = observed["window"]
    print(f"wrote {args.output}: {built.segments} segment(s), one per worker class; logs from "
          f"{window['first']} to {window['last']}, {built.covered_s / 3600:.2f} h covered",
          file=out)
    print(f"{'urgency':<10} {'jobs':>10} {'per s':>9} {'queueing p50':>13} {'p95':>9} "
          f"{'p99':>9}", file=out)
    for urgency, row in observed["by_urgency"].items():
        q = row["queueing"]

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.3g} s"

        rate = row["throughput_per_s"]
        print(f"{urgency:<10} {row['jobs']:>10,} {'-' if rate is None else f'{rate:.3g}':>9} "
              f"{fmt(q['p50_s']):>13} {fmt(q['p95_s']):>9} {fmt(q['p99_s']):>9}", file=out)
    for note in built.notes:
        print(f"note: {note}", file=out)
    inventory = args.inventory or "INVENTORY"
    print(f"simulate it: fleetsim simulate -i {inventory} --workload {args.output} "
          f"--duration {_duration(built.covered_s)}", file=out)


def cmd_from_logs(args: argparse.Namespace) -> int:
    catalog = _catalog(args)  # first: a bad catalog or inventory fails before the long read
    started = time.perf_counter()
    logs = read_logs(args.files, progress=lambda total, label: progress(total, label, "MiB"))
    seconds = time.perf_counter() - started
    built = build_workload(logs, catalog, samples=args.samples, service=args.service,
                           service_time=args.service_time,
                           sources=args.files)
    _write(args.output, dump_workload(built.document))
    _report(built, args, seconds)
    return 0
