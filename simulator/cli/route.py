"""``fleetsim route match`` and ``fleetsim route resolve``: queries and routing rules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import RoutingError
from ..inputs import load_yaml_file
from ..routing.catalog import cached_catalog
from ..routing.query import parse_query
from ..routing.rules import Router

__all__ = ["cmd_route_match", "cmd_route_resolve", "load_rules_file", "print_json"]


def print_json(data: Any) -> None:
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
        print(f"fleetsim: warning: {note.lead} at {note.render(args.query)}", file=sys.stderr)
    keys = sorted(w.key for w in query.select(catalog.workers))
    if args.json:
        print_json(keys)
    else:
        for key in keys:
            print(key)
    return 0


def cmd_route_resolve(args: argparse.Namespace) -> int:
    catalog = cached_catalog(args.catalog)
    rules = load_rules_file(args.rules)
    router = Router.from_rules(rules, catalog, strict=not args.gitlab_compat, source=args.rules)
    for rule in router.rules:
        for note in rule.query.notes:
            print(
                f"fleetsim: warning: {args.rules}, {rule.describe()}: {note.lead} at "
                f"{note.render(rule.query.text)}",
                file=sys.stderr,
            )
    resolved = router.resolve()
    if args.json:
        print_json(
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
