"""GitLab's Sidekiq routing rules: which queue (and Redis shard) each worker class enqueues to.

Semantics (docs/behaviour.md §3): an ordered list of ``[query, queue]`` or
``[query, queue, shard]``; the first matching rule wins; a blank queue means the worker's
generated queue name; no match means the generated name; ``nil``/``[]`` means
``[['*', 'default']]``. Mailer jobs are never routed: they always go to ``mailers``.

A rule set is checked whole: every bad rule and, in strict mode, every place of every query
GitLab would misread or that no worker matches, each with its rule and position, in one
:class:`~simulator.errors.FleetErrors` (one error alone is raised as itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FleetError, RoutingError, clip, excerpt, raise_all
from .catalog import Catalog, Worker
from .query import Query, note_error, parse_query, worker_attributes
from .queue_names import QUEUE_NAME_HINT, check_queue_name

MAILERS_QUEUE = "mailers"
#: Classes Rails enqueues mail deliveries with; GitLab sends them to ``mailers`` unrouted.
MAILER_CLASSES = frozenset({"ActionMailer::MailDeliveryJob", "ActionMailer::DeliveryJob"})
DEFAULT_RULES: list[list[Any]] = [["*", "default"]]


def ruby_inspect(value: Any) -> str:
    """Render a YAML value the way Ruby's ``#inspect`` does (GitLab quotes rules this way)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
        )
    return str(value)


@dataclass(frozen=True)
class Route:
    queue: str
    shard: str | None = None
    #: 1-based index of the rule that matched; None for mailers or no match.
    rule_index: int | None = None


@dataclass(frozen=True)
class RoutingRule:
    index: int  # 1-based
    query: Query
    queue: str | None  # None: the worker's generated queue name
    shard: str | None
    raw: tuple[Any, ...]

    def describe(self) -> str:
        return f"rule {self.index} {ruby_inspect(list(self.raw))}"


def is_mailer(worker: Worker) -> bool:
    return worker.worker_name in MAILER_CLASSES or worker.name == MAILERS_QUEUE


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())



def _parse_rule(i: int, rule: Any, catalog: Catalog | None, *, strict: bool,
                source: str | None) -> RoutingRule:
    """One rule; raises every error it has (a :class:`FleetErrors` when there are several)."""
    where = f"rule {i}"
    if not isinstance(rule, (list, tuple)) or len(rule) not in (2, 3):
        raise RoutingError(
            f"Routing rule `{ruby_inspect(rule)}` is invalid",
            file=source,
            rule=where,
            hint="each rule is [query, queue] or [query, queue, redis_shard]",
        )
    query_text, queue = rule[0], rule[1]
    shard = rule[2] if len(rule) == 3 else None
    if not isinstance(query_text, str):
        raise RoutingError(
            f"Routing rule `{ruby_inspect(rule)}` is invalid: the query must be a string",
            file=source,
            rule=where,
            hint="quote the query, e.g. ['urgency=high', 'urgent']",
        )
    problems: list[FleetError] = []
    if not (queue is None or isinstance(queue, str)):
        problems.append(RoutingError(
            f"Routing rule `{ruby_inspect(rule)}` is invalid: the queue must be a string "
            "or empty",
            file=source,
            rule=where,
            hint="use a queue name, or null / '' for the worker's generated queue name",
        ))
    if not (shard is None or isinstance(shard, str)):
        problems.append(RoutingError(
            f"Routing rule `{ruby_inspect(rule)}` is invalid: the Redis shard must be a name",
            file=source,
            rule=where,
        ))
    if isinstance(queue, str) and not _blank(queue):
        text = queue.strip()
        try:
            check_queue_name(
                text,
                error=RoutingError,
                file=source,
                rule=f"{where}, queue",
                offset=len(queue) - len(queue.lstrip()),
                what=f"the queue {excerpt(text)}",
                hint=QUEUE_NAME_HINT + "; leave it empty (null or '') for the worker's "
                "generated queue name",
            )
        except FleetError as exc:
            problems.append(exc)
    located = f"{where} {clip(ruby_inspect(list(rule)))}"
    query: Query | None = None
    try:
        # Compat reading first: every note, not only the first, becomes an error below.
        query = parse_query(query_text, strict=False, catalog=catalog)
    except FleetError as exc:
        problems.append(exc.located(file=source, rule=located))
    if query is not None and strict:
        problems += [note_error(n, query_text).located(file=source, rule=located)
                     for n in query.notes]
    raise_all(problems)
    assert query is not None
    return RoutingRule(
        index=i,
        query=Query(query.text, query.clauses, query.notes, strict),
        queue=None if queue is None or _blank(queue) else str(queue).strip(),
        shard=None if _blank(shard) else shard,
        raw=tuple(rule),
    )


def parse_rules(
    rules: Any, catalog: Catalog | None = None, *, strict: bool = True, source: str | None = None
) -> tuple[RoutingRule, ...]:
    """Validate routing rules with GitLab's messages. Every problem of every rule is reported
    at once, each naming the file, the rule (index and text) and the position; one problem alone
    is raised as itself, several as a :class:`~simulator.errors.FleetErrors`."""
    if rules is None or (isinstance(rules, list) and not rules):
        rules = DEFAULT_RULES
    if not isinstance(rules, (list, tuple)):
        raise RoutingError(
            "The set of routing rule must be an array",
            file=source,
            hint="sidekiq_routing_rules is a list of [query, queue] pairs, e.g. [['*', 'default']]",
        )
    parsed = []
    problems: list[FleetError] = []
    for i, rule in enumerate(rules, start=1):
        try:
            parsed.append(_parse_rule(i, rule, catalog, strict=strict, source=source))
        except FleetError as exc:
            problems.append(exc)
    raise_all(problems, "problems in the routing rules")
    return tuple(parsed)


class Router:
    """Routes catalog workers to queues with one set of routing rules."""

    def __init__(self, rules: Sequence[RoutingRule], catalog: Catalog) -> None:
        self.rules = tuple(rules)
        self.catalog = catalog
        self._cache: dict[str, Route] = {}

    @classmethod
    def from_rules(
        cls, rules: Any, catalog: Catalog, *, strict: bool = True, source: str | None = None
    ) -> Router:
        return cls(parse_rules(rules, catalog, strict=strict, source=source), catalog)

    def route(self, worker: Worker) -> Route:
        cached = self._cache.get(worker.key)
        if cached is not None:
            return cached
        if is_mailer(worker):
            route = Route(MAILERS_QUEUE)
        else:
            route = Route(worker.name)
            attrs = worker_attributes(worker)
            for rule in self.rules:
                if rule.query.matches_attributes(attrs):
                    route = Route(rule.queue or worker.name, rule.shard, rule.index)
                    break
        self._cache[worker.key] = route
        return route

    def route_key(self, key: str) -> Route:
        worker = self.catalog.get(key)
        if worker is None:
            raise RoutingError(
                f"worker {key!r} is not in the catalog {self.catalog.path}",
                hint="add it to the catalog (sidekiq_worker_catalog) or fix the class name",
            )
        return self.route(worker)

    def routed_workers(self) -> list[Worker]:
        """Workers that producers enqueue: real workers and the mailers entry."""
        return [w for w in self.catalog.workers if w.worker_name is not None or is_mailer(w)]

    def resolve(self) -> dict[str, Route]:
        """Every worker (mailers included) to its route, in catalog order."""
        return {w.key: self.route(w) for w in self.routed_workers()}

    def destinations(self) -> dict[tuple[str, str | None], list[str]]:
        """(queue, shard) to the workers routed there."""
        out: dict[tuple[str, str | None], list[str]] = {}
        for key, route in self.resolve().items():
            out.setdefault((route.queue, route.shard), []).append(key)
        return out

    def wildcard_queues(self) -> list[str]:
        """What ``*`` in ``queue_groups`` means from GitLab 17.0 (docs/behaviour.md §10): the
        queues the rules name, in rule order, then ``mailers``. A rule with a blank queue names
        the generated queues of the workers it routes; workers no rule matches are not in it."""
        by_rule: dict[int, list[str]] = {}
        for route in self.resolve().values():
            if route.rule_index is not None:
                by_rule.setdefault(route.rule_index, []).append(route.queue)
        out: dict[str, None] = {}
        for rule in self.rules:
            for queue in [rule.queue] if rule.queue else by_rule.get(rule.index, []):
                out.setdefault(queue, None)
        out.setdefault(MAILERS_QUEUE, None)
        return list(out)

    def rules_as_data(self) -> list[list[Any]]:
        return [list(rule.raw) for rule in self.rules]


def routing_map(routes: Iterable[tuple[str, Route]]) -> dict[str, str]:
    return {key: route.queue for key, route in routes}
