"""``fleetsim``: check routing and queue groups, plan a fleet, simulate it.

Exit codes: 0 fine, 1 a check failed (an error finding), 2 unusable input (the message says
which file, rule and position, and the fix).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .catalog import cached_catalog
from .errors import FleetError, RoutingError
from .inputs import load_yaml_file
from .query import parse_query


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def load_rules_file(path: str) -> Any:
    """A YAML or JSON list of [query, queue] pairs (the shape of sidekiq_routing_rules)."""
    data = load_yaml_file(path, error=RoutingError, what="rules file",  # JSON is YAML
                          hint="a YAML or JSON list of [query, queue] rules")
    if isinstance(data, dict) and "sidekiq_routing_rules" in data:
        data = data["sidekiq_routing_rules"]
    return data


def cmd_route_match(args: argparse.Namespace) -> int:
    catalog = cached_catalog(args.catalog)
    query = parse_query(args.query, strict=not args.gitlab_compat, catalog=catalog)
    for note in query.notes:
        print(
            f"fleetsim: warning: GitLab reads this query differently at {note.render(args.query)}",
            file=sys.stderr,
        )
    keys = sorted(w.key for w in query.select(catalog.workers))
    if args.json:
        _print_json(keys)
    else:
        for key in keys:
            print(key)
    return 0


def cmd_route_resolve(args: argparse.Namespace) -> int:
    from .routing import Router

    catalog = cached_catalog(args.catalog)
    rules = load_rules_file(args.rules)
    router = Router.from_rules(rules, catalog, strict=not args.gitlab_compat, source=args.rules)
    for rule in router.rules:
        for note in rule.query.notes:
            print(
                f"fleetsim: warning: {args.rules}, {rule.describe()}: GitLab reads this query "
                f"differently at {note.render(rule.query.text)}",
                file=sys.stderr,
            )
    resolved = router.resolve()
    if args.json:
        _print_json(
            {key: route.queue for key, route in resolved.items()}
            if not any(r.shard for r in resolved.values())
            else {key: {"queue": r.queue, "redis_shard": r.shard} for key, r in resolved.items()}
        )
    else:
        width = max((len(k) for k in resolved), default=0)
        for key, route in resolved.items():
            shard = f"  (shard {route.shard})" if route.shard else ""
            print(f"{key:<{width}}  {route.queue}{shard}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .inventory import load_fleet
    from .plan import build_plan, render_plan

    plan = build_plan(load_fleet(args.inventory))
    if args.json:
        _print_json(plan)
    else:
        print(render_plan(plan))
    return 1 if plan["errors"] else 0


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
        help="all_queues.yml-format worker catalog (default: GitLab CE's, shipped)",
    )
    match.add_argument("--json", action="store_true", help="print a JSON list")
    match.add_argument(
        "--gitlab-compat",
        action="store_true",
        help="accept what GitLab silently misreads, and read it as GitLab does",
    )
    match.set_defaults(func=cmd_route_match)

    resolve = route_sub.add_parser("resolve", help="every worker's queue under routing rules")
    resolve.add_argument("--catalog", metavar="FILE")
    resolve.add_argument(
        "--rules",
        metavar="FILE",
        required=True,
        help="YAML/JSON list of [query, queue(, shard)] rules",
    )
    resolve.add_argument("--json", action="store_true", help="print {worker_name: queue}")
    resolve.add_argument("--gitlab-compat", action="store_true")
    resolve.set_defaults(func=cmd_route_resolve)

    plan = sub.add_parser("plan", help="the fleet's processes, routing table and findings")
    plan.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=cmd_plan)

    try:
        from . import sim_cli
    except ImportError:
        sim_cli = None  # type: ignore[assignment]
    if sim_cli is not None:
        for name in ("add_simulate_parser", "add_capacity_parser", "add_migrate_parser"):
            adder = getattr(sim_cli, name, None)
            if adder is not None:
                adder(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FleetError as exc:
        print(f"fleetsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `fleetsim route match ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
