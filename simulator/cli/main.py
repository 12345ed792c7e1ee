"""``fleetsim``: check routing and queue groups, plan a fleet, simulate it, write its alerts.

Exit codes: 0 fine, 1 a check failed (an error finding), 2 unusable input (the message says
which file, rule and position, and the fix).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, NoReturn

from ..errors import FleetError
from ..inputs import MAX_SEED
from . import options

__all__ = ["build_parser", "main"]


class _VersionAction(argparse.Action):
    """``--version``: the installed distribution's version (looked up only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("sidekiq-fleet")
        except PackageNotFoundError:  # run from a checkout that was never installed
            text = "unknown (not installed)"
        parser.exit(message=f"fleetsim {text}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetsim",
        description="Check, plan and simulate external Sidekiq fleets (GitLab-style routing).",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    route = sub.add_parser("route", help="worker matching queries and routing rules")
    route_sub = route.add_subparsers(dest="route_command", required=True)
    match = route_sub.add_parser("match", help="catalog entries a worker matching query selects")
    match.add_argument("query", metavar="QUERY")
    match.add_argument(
        "--catalog",
        metavar="FILE",
        action="append",
        help="all_queues.yml-format worker catalog (default: GitLab CE's, shipped); repeat it "
        "to merge files (GitLab EE: the CE and the ee/ all_queues.yml)",
    )
    match.add_argument("--json", action="store_true", help="print a JSON list")
    match.add_argument(
        "--gitlab-compat",
        action="store_true",
        help="accept what GitLab silently misreads, and read it as GitLab does",
    )
    match.set_defaults(func="route:cmd_route_match")

    resolve = route_sub.add_parser("resolve", help="every worker's queue under routing rules")
    resolve.add_argument("--catalog", metavar="FILE", action="append",
                         help="worker catalog, as for route match (repeat it to merge files)")
    resolve.add_argument(
        "--rules",
        metavar="FILE",
        required=True,
        help="YAML/JSON list of [query, queue(, shard)] rules",
    )
    resolve.add_argument("--json", action="store_true", help="print {worker_name: queue}")
    resolve.add_argument("--gitlab-compat", action="store_true")
    resolve.set_defaults(func="route:cmd_route_resolve")

    plan = sub.add_parser("plan", help="the fleet's processes, routing table and findings")
    plan.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func="plan:cmd_plan")

    add_simulate_parser(sub)
    add_capacity_parser(sub)
    add_migrate_parser(sub)
    add_workload_parser(sub)
    add_import_parser(sub)
    add_alerts_parser(sub)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY",
                   help="Ansible inventory of the fleet (the one site.yml deploys)")
    p.add_argument("--workload", required=True, metavar="FILE",
                   help="workload YAML (docs/simulator.md; examples/workloads/)")
    p.add_argument("--duration", type=options.duration, default=3600.0, metavar="TIME",
                   help="simulated time: 90s, 15m, 1h, 2d (default 1h)")
    p.add_argument("--seed", type=options.seed, default=1,
                   help=f"random seed, 0 to {MAX_SEED} (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", help="simulate the fleet under a workload: latency, SLOs, Redis CPU",
        description="Simulate the inventory's Sidekiq fleet under a workload. Exit 0 when "
                    "every SLO target is met, 1 when one is missed, 2 for unusable input.")
    _common(p)
    p.add_argument("--replications", type=options.positive_int, default=1, metavar="R",
                   help="independent runs (seeds SEED..SEED+R-1); R > 1 gives 95%% "
                        "confidence intervals")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots (of the first run) to DIR")
    p.add_argument("--workers", type=options.positive_int, default=None,
                   help="parallel replications (default: all cores)")
    p.set_defaults(func="simulate:cmd_simulate")
    return p


def add_capacity_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "capacity", help="smallest processes x threads per queue group that meets the SLOs",
        description="For each --group (an entry of sidekiq_queue_groups), simulate candidate "
                    "numbers of processes and threads in parallel and report the cheapest that "
                    "meets every queueing target (and, when asked, a utilisation ceiling and "
                    "the loss of its busiest node). Exit 1 when no candidate does.")
    _common(p)
    p.add_argument("--group", action="append", required=True, metavar="NAME",
                   help="queue group to size, as written in sidekiq_queue_groups (repeatable)")
    p.add_argument("--concurrency", type=options.int_list, default=None, metavar="LIST",
                   help="threads per process to try (default 5,10,15,20,25,30,40,50)")
    p.add_argument("--max-processes", type=options.positive_int, default=None, metavar="N",
                   help="most processes of the group to try (default: twice today's)")
    p.add_argument("--replications", type=options.positive_int, default=1, metavar="R",
                   help="seeds per candidate (a candidate must pass with every one)")
    p.add_argument("--workers", type=options.positive_int, default=None,
                   help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the candidates on an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--max-utilisation", type=options.share, default=None, metavar="SHARE",
                   help="recommend only candidates whose threads are busy at most this share "
                        "of the time on average (e.g. 0.7 or 70%%; default: no ceiling)")
    p.add_argument("--n-plus-one", action="store_true",
                   help="recommend only candidates that still meet every queueing target with "
                        "their busiest node lost (every process on it removed)")
    p.set_defaults(func="capacity:cmd_capacity")
    return p


def add_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "migrate", help="rehearse a routing migration: safe phase order vs switching producers "
                        "first",
        description="Plan the migration to the --to routing, then simulate it under the "
                    "workload twice (safe order, naive order) and report stranded jobs, the "
                    "longest wait and SLO breaches per phase. The verdict (the exit code) "
                    "checks the safe order only: no job in a queue without a configured "
                    "listener, no job still stranded at the end of a step (restart windows) "
                    "or of the run, no job lost, no plan problem or fleet check error; waits "
                    "and SLOs are reported, not judged. Exit 0 when all pass, 1 when one "
                    "fails, 2 for unusable input.")
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY",
                   help="Ansible inventory of the fleet today")
    p.add_argument("--to", required=True, metavar="FILE",
                   help="target routing: sidekiq_routing_rules (and optionally "
                        "sidekiq_queue_groups / hosts); examples/migrations/")
    p.add_argument("--workload", required=True, metavar="FILE",
                   help="workload YAML (docs/simulator.md; examples/workloads/)")
    p.add_argument("--duration", type=options.duration, default=None, metavar="TIME",
                   help="simulated time (default: the migration plus two phase gaps)")
    p.add_argument("--phase-gap", type=options.duration, default=300.0, metavar="TIME",
                   help="time between two steps (node restarts, producer switches), also "
                        "the warm-up (default 5m)")
    p.add_argument("--seed", type=options.seed, default=1,
                   help=f"random seed, 0 to {MAX_SEED} (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plots", metavar="DIR", help="write stranded.png and latency.png to DIR")
    p.set_defaults(func="migrate:cmd_migrate")
    return p


def add_workload_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("workload", help="build workloads")
    sub = p.add_subparsers(dest="workload_command", required=True)
    logs = sub.add_parser(
        "from-logs", help="a workload from GitLab's structured Sidekiq logs (JSON lines)",
        description="Read GitLab's Sidekiq JSON logs (plain or gzipped; lines that are not "
                    "JSON are counted and skipped) and write a workload: one segment per worker "
                    "class with hourly arrival rates, service time, failure probability, and "
                    "the observed queueing latency per urgency. Exit 2 for unusable input.")
    logs.add_argument("files", nargs="+", metavar="FILE",
                      help="/var/log/gitlab/sidekiq/current and its rotated @*.s files")
    logs.add_argument("-o", "--output", required=True, metavar="OUT.yml",
                      help="the workload file to write")
    source = logs.add_mutually_exclusive_group()
    source.add_argument("--catalog", metavar="FILE", action="append",
                        help="worker catalog (default: GitLab CE's, shipped; repeat it to merge "
                        "files)")
    source.add_argument("-i", "--inventory", metavar="INVENTORY",
                        help="take the worker catalog the inventory names")
    logs.add_argument("--service", choices=("empirical", "lognormal"), default="empirical",
                      help="execution time: empirical slices (default) or a lognormal fit")
    logs.add_argument("--service-time", choices=("duration", "demand"), default="duration",
                      help="what a job's service is: its logged duration_s (default), or its "
                           "own demand, cpu_s plus the logged waits (db, gitaly, redis, "
                           "external_http), for logs of a fleet whose jobs waited for the GVL "
                           "or a core")
    logs.add_argument("--samples", type=options.positive_int, default=100, metavar="K",
                      help="empirical slices per class (default 100)")
    logs.set_defaults(func="workload:cmd_from_logs")
    return p


def add_alerts_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "alerts", help="Prometheus alerting rules from the inventory and the SLOs",
        description="Write Prometheus alerting rules for the inventory's fleet: queueing SLO "
                    "burn per urgency (the simulator's targets, multi-window), queues the "
                    "routing rules use with no listener up, processes down or not as planned, "
                    "dead and retry set growth, Redis memory and refusals, exporters down. "
                    "docs/alerts.md explains each alert. Exit 2 for unusable input.")
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY",
                   help="Ansible inventory of the fleet (the one site.yml deploys)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the rule file to write (Prometheus rule_files)")
    p.add_argument("--workload", metavar="FILE",
                   help="take the SLO targets from this workload's slo: (default: the "
                        "simulator's defaults)")
    p.add_argument("--runbook-url", default="docs/alerts.md", metavar="URL",
                   help="where docs/alerts.md is published; each alert's runbook_url is "
                        "URL#<alert name> (default: docs/alerts.md)")
    p.set_defaults(func="alerts:cmd_alerts")
    return p


def add_import_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("import", help="an inventory from a fleet's own configuration")
    sub = p.add_subparsers(dest="import_command", required=True)
    rb = sub.add_parser(
        "gitlab-rb", help="an inventory from Omnibus gitlab.rb files (parsed, never run)",
        description="Read each node's /etc/gitlab/gitlab.rb without running it and write an "
                    "inventory (DIR/hosts.yml, DIR/host_vars/HOST.yml) that fleetsim plan, "
                    "simulate and migrate accept: groups from roles and X['enable'], the "
                    "routing, queue group, concurrency and connection settings as the "
                    "inventory's variables. A needed setting that is not a literal is refused "
                    "with its line; secrets are never written. Exit 2 for unusable input.")
    rb.add_argument("hosts", nargs="+", metavar="HOST=FILE",
                    help="a host's inventory name and a copy of its /etc/gitlab/gitlab.rb")
    rb.add_argument("-o", "--output", required=True, metavar="DIR",
                    help="the inventory directory to write (new or empty)")
    rb.add_argument("--force", action="store_true",
                    help="write into a DIR that is not empty: hosts.yml, the hosts' host_vars "
                         "and .catalog/ are replaced, nothing else is removed")
    rb.add_argument("--catalog", metavar="FILE", action="append",
                    help="the fleet's worker catalog (default: GitLab CE's, shipped), copied "
                         "into DIR/.catalog/; repeat it for CE + EE")
    rb.add_argument("--gitlab-version", metavar="X.Y",
                    help="the GitLab version the nodes run (sidekiq_gitlab_version)")
    rb.add_argument("--gitlab-compat", action="store_true",
                    help="sidekiq_query_strict: false: read the routing queries exactly as "
                         "GitLab does")
    rb.set_defaults(func="import_gitlab_rb:cmd_import_gitlab_rb")
    return p


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """``"module:function"`` of this package: a command's module (and what it needs:
    ansible-core, NumPy, SimPy, rich) is imported only when that command runs."""
    module, _, function = name.partition(":")
    handler: Callable[[argparse.Namespace], int] = getattr(
        import_module(f"{__package__}.{module}"), function)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_handler(args.func)(args))
    except FleetError as exc:
        print(f"fleetsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `fleetsim route match ... | head`
        return 0


def run() -> NoReturn:
    """The ``fleetsim`` command: :func:`main`, then an exit that skips tearing the interpreter
    down.

    Freeing every module and object of a run that imported ansible-core, NumPy and SimPy takes
    40-50 ms, a tenth of a short command. The exit handlers still run first (ansible-core's
    removal of its local temporary directory, logging's flush) and the output is flushed; with
    another thread still alive (a process pool, a Dask client), or where the exit handlers
    cannot be run, the interpreter exits as usual."""
    code = main()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None or threading.active_count() > 1:
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
