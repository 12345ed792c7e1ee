"""Fleet checks: what would leave a job hanging in a queue nobody listens to, and lesser sins.

Each finding is an error (the fleet must not be deployed) or a warning, names the host (or the
fleet) and says how to fix it.

Every check is one small function registered with :func:`check`: an id (the finding's code), a
severity, a one-line description (README.md's table of checks is generated from them by
``scripts/checks_table.py``) and the scope it looks at.  A check yields ``(host, message, fix)``
for each problem it finds; :func:`check_fleet` turns them into :class:`Finding` objects.  Scopes
run in order -- the fleet, then each Sidekiq host, each routed-to queue, each Sidekiq process --
and within a scope every subject goes through the checks in registration order, so findings
about one host (or queue, or process) stay together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

from ..errors import FleetError
from ..routing.queue_groups import Process
from ..routing.rules import MAILERS_QUEUE, Router
from ..routing.versions import REMOVALS, deprecations
from .connections import Budget, database_connections, redis_clients
from .inventory import Fleet, HostSettings, SidekiqHost, catalog_in_inventory, read_as_inventory

__all__ = [
    "CHECKS",
    "ERROR",
    "WARNING",
    "Check",
    "Finding",
    "check",
    "check_fleet",
    "errors",
    "safe_check",
]

ERROR = "error"
WARNING = "warning"

Scope = Literal["fleet", "host", "queue", "process"]
SCOPES: tuple[Scope, ...] = ("fleet", "host", "queue", "process")
#: What a check yields per problem: (host, message, fix).
Problem = tuple[str, str, str]
#: A routed-to destination: (queue, shard) and the workers routed there.
Destination = tuple[tuple[str, str | None], list[str]]


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    host: str
    message: str
    fix: str

    def render(self) -> str:
        return (
            f"{self.severity.upper()} [{self.code}] {self.host}: {self.message}\n  fix: {self.fix}"
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One registered check."""

    id: str
    severity: str
    description: str
    scope: Scope
    run: Callable[..., Iterator[Problem]]
    #: When it finds something, no other check runs (the rest would be meaningless).
    final: bool = False


#: Every check, in the order they run (registration order).
CHECKS: dict[str, Check] = {}


def check(id: str, severity: str, description: str, *, scope: Scope = "fleet",
          final: bool = False) -> Callable[[Callable[..., Iterator[Problem]]],
                                           Callable[..., Iterator[Problem]]]:
    """Register a check.  ``scope`` says what it is called with besides the context: nothing
    (``fleet``), a :class:`SidekiqHost` (``host``), a :data:`Destination` (``queue``) or a
    ``(SidekiqHost, Process)`` pair (``process``)."""
    if severity not in (ERROR, WARNING):
        raise ValueError(f"check {id}: severity {severity!r} is not {ERROR!r} or {WARNING!r}")

    def register(func: Callable[..., Iterator[Problem]]) -> Callable[..., Iterator[Problem]]:
        if id in CHECKS:
            raise ValueError(f"check {id!r} is registered twice")
        CHECKS[id] = Check(id, severity, description, scope, func, final)
        return func

    return register


class Context:
    """What the checks share, each part computed once and only when a check asks for it."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    @cached_property
    def router(self) -> Router:
        return self.fleet.router

    @cached_property
    def destinations(self) -> dict[tuple[str, str | None], list[str]]:
        return self.router.destinations()

    @cached_property
    def listeners(self) -> dict[tuple[str, str | None], list[str]]:
        """Who listens where: (queue, shard) -> ["host/sidekiq@i", ...]."""
        out: dict[tuple[str, str | None], list[str]] = {}
        for sk in self.fleet.sidekiq_hosts():
            for proc in sk.processes:
                for queue in proc.weights:
                    out.setdefault((queue, sk.shard), []).append(f"{sk.name}/sidekiq@{proc.index}")
        return out

    @property
    def workers_hosts(self) -> str:
        return ", ".join(self.fleet.groups["sidekiq"])

    @property
    def first_worker(self) -> str:
        return self.fleet.groups["sidekiq"][0]

    def subjects(self, scope: Scope) -> list[Any]:
        if scope == "fleet":
            return [None]
        if scope == "host":
            return self.fleet.sidekiq_hosts()
        if scope == "queue":
            return sorted(self.destinations.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
        return [(sk, proc) for sk in self.fleet.sidekiq_hosts() for proc in sk.processes]


def _sample(items: list[str], n: int = 3) -> str:
    head = ", ".join(items[:n])
    return head + (f" and {len(items) - n} more" if len(items) > n else "")


# -- the fleet ------------------------------------------------------------------------------


@check("no-sidekiq-hosts", ERROR, "the inventory has no host in group `sidekiq`", final=True)
def _no_sidekiq_hosts(ctx: Context) -> Iterator[Problem]:
    if not ctx.fleet.groups["sidekiq"]:
        yield (
            "fleet",
            "the inventory has no host in group 'sidekiq', so nothing processes jobs",
            "add the worker nodes to the 'sidekiq' group",
        )


@check("routing-rules-differ", ERROR, "routing rules differ between rails/sidekiq hosts")
def _routing_rules_differ(ctx: Context) -> Iterator[Problem]:
    fleet = ctx.fleet
    variants: dict[str, list[str]] = {}
    for name, host in fleet.hosts.items():
        variants.setdefault(fleet.rules_fingerprint(host), []).append(name)
    if len(variants) > 1:
        ref = fleet.reference_host
        assert ref is not None
        ref_print = fleet.rules_fingerprint(ref)
        for fingerprint, names in variants.items():
            if fingerprint == ref_print:
                continue
            yield (
                ", ".join(sorted(names)),
                f"sidekiq_routing_rules differ from those of {ref.name} ({fingerprint} vs "
                f"{ref_print}); producers would enqueue where workers do not listen",
                "define sidekiq_routing_rules once, in group_vars/all, and remove host overrides",
            )
    ref_name = fleet.reference_host.name if fleet.reference_host else None
    for name, host in fleet.hosts.items():
        if name != ref_name:
            fleet.router_for(host)  # a bad query on any host is unusable input


@check("catch-all-not-last", WARNING,
       "a catch-all `*` rule that is not last (the rules after it never match)")
def _catch_all_not_last(ctx: Context) -> Iterator[Problem]:
    rules = ctx.router.rules
    for rule in rules[:-1]:
        if rule.query.is_wildcard:
            yield (
                "fleet",
                f"{rule.describe()} matches every worker, so the {len(rules) - rule.index} "
                "rule(s) after it never match",
                f"move rule {rule.index} to the end of sidekiq_routing_rules",
            )


@check("no-catch-all", WARNING,
       "no catch-all rule: unmatched workers go to their own generated queues")
def _no_catch_all(ctx: Context) -> Iterator[Problem]:
    router = ctx.router
    if any(rule.query.is_wildcard for rule in router.rules):
        return
    unmatched = [
        w.key
        for w in router.routed_workers()
        if router.route(w).rule_index is None and w.name != MAILERS_QUEUE
    ]
    if unmatched:
        yield (
            "fleet",
            f"no rule matches {len(unmatched)} worker(s) ({_sample(unmatched)}); each goes "
            "to its own generated queue name",
            "end sidekiq_routing_rules with ['*', 'default']",
        )


@check("query-note", WARNING,
       "with `sidekiq_query_strict: false`, a rule's query that GitLab reads differently from how "
       "it looks, or a value no worker has (strict mode refuses both)")
def _query_note(ctx: Context) -> Iterator[Problem]:
    for rule in ctx.router.rules:
        for note in rule.query.notes:
            yield (
                "fleet",
                f"sidekiq_routing_rules {rule.describe()}, position {note.position}: {note.lead}: "
                f"{note.message}",
                "fix the query (strict mode, the default, refuses it), or keep it if GitLab's "
                "reading is what you mean",
            )


@check("catalog-in-inventory", ERROR,
       "the worker catalog lies in an inventory directory, where Ansible reads it as an "
       "inventory source")
def _catalog_in_inventory(ctx: Context) -> Iterator[Problem]:
    fleet = ctx.fleet
    users: dict[str, list[str]] = {}
    for name, host in fleet.hosts.items():
        for path in host.catalog_paths:
            if read_as_inventory(path, fleet.sources):
                users.setdefault(path, []).append(name)
    for path, names in users.items():
        message, fix = catalog_in_inventory(path, fleet.sources, names)
        yield "fleet", message, fix


def _over(budget: Budget, fix: str) -> Problem:
    shard = f" (Redis shard {budget.shard!r})" if budget.shard else ""
    return (
        "fleet",
        f"the fleet may open {budget.total:,} {budget.what}{shard}, more than the "
        f"{budget.limit:,} available ({budget.limit_source}): {budget.breakdown()}",
        fix,
    )


@check("db-connections", ERROR,
       "Sidekiq threads (+3 per process) and the producers' `rails_db_pool` exceed PostgreSQL's "
       "`max_connections` (minus the superuser reserve)")
def _db_connections(ctx: Context) -> Iterator[Problem]:
    budget = database_connections(ctx.fleet)
    if budget is not None and budget.over:
        yield _over(
            budget,
            f"raise postgresql_max_connections to at least "
            f"{budget.needed_setting:,}, or lower "
            "sidekiq_concurrency / the number of queue groups, or rails_db_pool (or put a "
            "connection pooler such as PgBouncer in front of PostgreSQL)")


@check("redis-clients", ERROR,
       "Sidekiq threads (+10 per process) and the producers' `rails_redis_pool` exceed Redis' "
       "`maxclients`")
def _redis_clients(ctx: Context) -> Iterator[Problem]:
    for budget in redis_clients(ctx.fleet):
        if budget.over:
            yield _over(
                budget,
                f"raise redis_maxclients to at least {budget.needed_setting:,} (and the open-files "
                "limit of redis-server with it), or lower sidekiq_concurrency / the number of "
                "queue groups")


# -- Redis Sentinel: every client asks the same sentinels for the same master ---------------

#: GitLab Omnibus' default redis['master_name'] (and the fleet role's).
DEFAULT_MASTER_NAME = "gitlab-redis"
DEFAULT_SENTINEL_PORT = 26379


def _sentinel_hosts(fleet: Fleet) -> list[HostSettings]:
    """Every host with a Redis client or a sentinel: rails, sidekiq and redis."""
    hosts = [fleet.hosts[n] for n in sorted(fleet.hosts)]
    return hosts + [fleet.data_hosts[n] for n in fleet.groups["redis"] if n in fleet.data_hosts]


def _sentinel_list(host: HostSettings) -> tuple[str, ...] | str:
    """``fleet_redis_sentinels`` as sorted "host:port" items (the order does not matter to a
    client), or the value as written when it is not a list of {host, port}."""
    value = host.vars.get("fleet_redis_sentinels")
    if value is None:
        return ()
    default_port = host.vars.get("fleet_redis_sentinel_port") or DEFAULT_SENTINEL_PORT
    if not isinstance(value, list):
        return str(value)
    items = []
    for entry in value:
        if not isinstance(entry, dict) or not entry.get("host"):
            return str(value)
        items.append(f"{entry['host']}:{entry.get('port') or default_port}")
    return tuple(sorted(items))


def _show(value: tuple[str, ...] | str) -> str:
    if isinstance(value, str):
        return value
    return "[" + ", ".join(value) + "]" if value else "[] (no Sentinel)"


def _sentinel_settings(host: HostSettings) -> dict[str, Any]:
    return {
        "fleet_redis_sentinels": _sentinel_list(host),
        "fleet_redis_sentinel_master_name": (
            host.vars.get("fleet_redis_sentinel_master_name") or DEFAULT_MASTER_NAME
        ),
        # A digest (inventory.SECRET_VARS), or "" for none: compared, never shown.
        "fleet_redis_sentinel_password": host.vars.get("fleet_redis_sentinel_password") or "",
    }


def _configured_sentinels(fleet: Fleet) -> tuple[str, ...]:
    """The reference host's sentinels (first sidekiq host, else rails, else redis)."""
    hosts = _sentinel_hosts(fleet)
    ref = fleet.reference_host or (hosts[0] if hosts else None)
    value = _sentinel_list(ref) if ref else ()
    return value if isinstance(value, tuple) else ()


@check("redis-sentinel-settings-differ", ERROR,
       "`fleet_redis_sentinels`, `fleet_redis_sentinel_master_name` or the presence or value of "
       "`fleet_redis_sentinel_password` differ between rails, sidekiq and redis hosts")
def _redis_sentinel_settings_differ(ctx: Context) -> Iterator[Problem]:
    hosts = _sentinel_hosts(ctx.fleet)
    if not any(_sentinel_list(h) for h in hosts):
        return  # no Sentinel anywhere: the master name and password are not used
    ref = ctx.fleet.reference_host or hosts[0]
    expected = _sentinel_settings(ref)
    for key, want in expected.items():
        odd: dict[Any, list[HostSettings]] = {}
        for host in hosts:
            got = _sentinel_settings(host)[key]
            if got != want:
                odd.setdefault(got, []).append(host)
        for got, names in odd.items():
            where = sorted({h.where(key) or "" for h in names} - {""})
            if key == "fleet_redis_sentinel_password":
                if bool(got) != bool(want):
                    what = (f"is {'set' if got else 'empty'} here but "
                            f"{'set' if want else 'empty'} on {ref.name}")
                else:
                    what = f"is another password than {ref.name}'s (values not shown)"
                effect = "some clients would fail to authenticate to the sentinels"
            else:
                shown = _show(got) if key == "fleet_redis_sentinels" else repr(got)
                ref_shown = _show(want) if key == "fleet_redis_sentinels" else repr(want)
                what = f"is {shown} here but {ref_shown} on {ref.name}"
                effect = ("clients would look for the Redis primary in different places, and "
                          "after a failover some would write to the old one")
            yield (
                ", ".join(h.name for h in names),
                f"{key} {what}" + (f" (set in {', '.join(where)})" if where else "")
                + f": {effect}",
                f"set {key} once, in group_vars/all (from Vault for the password), and remove "
                "host and group overrides",
            )


@check("redis-sentinels-too-few", ERROR,
       "a single Sentinel in `fleet_redis_sentinels`: nothing can agree on a failover and it is "
       "a single point of failure for every client")
def _redis_sentinels_too_few(ctx: Context) -> Iterator[Problem]:
    sentinels = _configured_sentinels(ctx.fleet)
    if len(sentinels) == 1:
        yield (
            "fleet",
            f"fleet_redis_sentinels lists one sentinel ({sentinels[0]}): when it is down no "
            "client can find Redis, and no second sentinel can confirm a failover",
            "list a sentinel on every host of group redis (at least 3, an odd number), or "
            "set fleet_redis_sentinels: [] to connect to fleet_redis_host directly",
        )


@check("redis-replicas-without-sentinels", WARNING,
       "two or more redis hosts (the redis role then runs replicas and Sentinel) but "
       "`fleet_redis_sentinels` is empty: clients only know the first primary")
def _redis_replicas_without_sentinels(ctx: Context) -> Iterator[Problem]:
    redis_hosts = ctx.fleet.groups.get("redis", ())
    if len(redis_hosts) > 1 and not _configured_sentinels(ctx.fleet):
        yield (
            "fleet",
            f"group redis has {len(redis_hosts)} hosts, so the redis role runs a primary with "
            "replicas and a sentinel on each, but fleet_redis_sentinels is empty: every client "
            "connects to fleet_redis_host and, after a failover, keeps writing to a replica "
            "that refuses writes until someone changes the inventory",
            "list the sentinels in group_vars/all (fleet_redis_sentinels: one {host, port: "
            "26379} per redis host, docs/failover.md)",
        )


@check("redis-durable-enqueue-replicas", ERROR,
       "`fleet_redis_durable_enqueue_replicas` asks more replicas to confirm each push than "
       "the redis group has: every enqueue would fail")
def _redis_durable_enqueue_replicas(ctx: Context) -> Iterator[Problem]:
    replicas = max(len(ctx.fleet.groups.get("redis", ())) - 1, 0)
    for name in sorted(ctx.fleet.groups.get("rails", ())):
        host = ctx.fleet.hosts.get(name)
        if host is None:
            continue
        key = "fleet_redis_durable_enqueue_replicas"
        raw = host.vars.get(key)
        try:
            wanted = int(raw or 0)
        except (TypeError, ValueError):
            wanted = -1
        if wanted < 0 or wanted > replicas:
            yield (
                name,
                f"{key} is {raw!r} ({host.where(key) or 'the inventory'}) but the redis group "
                f"has {replicas} replica(s): Redis' WAIT can never confirm that many, so every "
                "push would be retried and the enqueue request fail",
                f"set it to a number from 0 (off) to {replicas}, or add Redis hosts (replicas "
                "and Sentinel, docs/failover.md)",
            )


@check("redis-sentinels-fewer-than-3", WARNING,
       "two Sentinels: losing one leaves no majority to authorise a failover")
def _redis_sentinels_fewer_than_3(ctx: Context) -> Iterator[Problem]:
    sentinels = _configured_sentinels(ctx.fleet)
    if len(sentinels) == 2:
        yield (
            "fleet",
            f"fleet_redis_sentinels lists 2 sentinels ({', '.join(sentinels)}): a failover "
            "needs a majority of them (2), so when the primary's host goes down with its "
            "sentinel, nothing fails over",
            "run Redis with a sentinel on 3 hosts (or more, an odd number) and list them all "
            "in fleet_redis_sentinels",
        )


def _quorum(host: HostSettings, redis_hosts: int) -> tuple[int | None, str]:
    """(quorum, as written) of a redis host; the role's default (a majority of the redis
    hosts) when unset; None when it is not a whole number."""
    value = host.vars.get("redis_sentinel_quorum")
    if value is None:
        return redis_hosts // 2 + 1, f"{redis_hosts // 2 + 1} (the role's default)"
    if isinstance(value, bool):
        return None, repr(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        return None, repr(value)
    return number, str(number)


@check("redis-sentinel-quorum", ERROR,
       "`redis_sentinel_quorum` not a number between 1 and the number of Sentinels, or not the "
       "same on every redis host")
def _redis_sentinel_quorum(ctx: Context) -> Iterator[Problem]:
    fleet = ctx.fleet
    sentinels = _configured_sentinels(fleet)
    redis_hosts = [fleet.data_hosts[n] for n in fleet.groups["redis"] if n in fleet.data_hosts]
    if not sentinels or not redis_hosts:
        return
    n = len(sentinels)
    fix = (f"set redis_sentinel_quorum once, in group_vars/redis, to {n // 2 + 1} (a majority "
           f"of the {n} sentinels), or remove it for the role's default")
    quorums: dict[str, list[HostSettings]] = {}
    for host in redis_hosts:
        number, shown = _quorum(host, len(redis_hosts))
        if number is None or not 1 <= number <= n:
            where = host.where("redis_sentinel_quorum")
            yield (
                host.name,
                f"redis_sentinel_quorum is {shown}" + (f" (set in {where})" if where else "")
                + f", not a whole number from 1 to {n} (the sentinels in fleet_redis_sentinels)"
                ": " + ("no failover could ever start" if number and number > n else
                        "the sentinels refuse it"),
                fix,
            )
        else:
            quorums.setdefault(str(number), []).append(host)
    if len(quorums) > 1:
        yield (
            ", ".join(h.name for hosts in quorums.values() for h in hosts),
            "redis_sentinel_quorum differs between redis hosts ("
            + "; ".join(f"{q} on {', '.join(h.name for h in hs)}" for q, hs in quorums.items())
            + "): whether a failover starts would depend on which sentinel notices first",
            fix,
        )


@check("redis-sentinel-quorum-minority", WARNING,
       "`redis_sentinel_quorum` at or below half the Sentinels (a majority is recommended)")
def _redis_sentinel_quorum_minority(ctx: Context) -> Iterator[Problem]:
    fleet = ctx.fleet
    sentinels = _configured_sentinels(fleet)
    redis_hosts = [fleet.data_hosts[n] for n in fleet.groups["redis"] if n in fleet.data_hosts]
    n = len(sentinels)
    low = sorted({number for h in redis_hosts
                  if (number := _quorum(h, len(redis_hosts))[0]) is not None
                  and 1 <= number <= n / 2})
    if n and low:
        yield (
            "fleet",
            f"redis_sentinel_quorum {', '.join(map(str, low))} is at most half of the {n} "
            "sentinels: a minority of them (one cut off from the primary by the network) can "
            "mark it down, and the failover still needs a majority",
            f"set redis_sentinel_quorum: {n // 2 + 1} in group_vars/redis",
        )


# -- each Sidekiq host ----------------------------------------------------------------------


@check("min-above-max", ERROR, "`sidekiq_min_concurrency` above `sidekiq_max_concurrency`",
       scope="host")
def _min_above_max(ctx: Context, sk: SidekiqHost) -> Iterator[Problem]:
    lo, hi = sk.settings.get("sidekiq_min_concurrency"), sk.settings.get("sidekiq_max_concurrency")
    if lo is not None and hi and lo > hi:
        yield (
            sk.name,
            f"sidekiq_min_concurrency ({lo}) is above sidekiq_max_concurrency ({hi})",
            "lower sidekiq_min_concurrency or raise sidekiq_max_concurrency",
        )


@check("concurrency-overrides-min-max", WARNING,
       "`sidekiq_concurrency` set together with min/max (GitLab 16.9-16.11; 17.0 removed "
       "min/max)", scope="host")
def _concurrency_overrides(ctx: Context, sk: SidekiqHost) -> Iterator[Problem]:
    s = sk.settings
    lo, hi = s.get("sidekiq_min_concurrency"), s.get("sidekiq_max_concurrency")
    if s.get("sidekiq_concurrency") and (lo is not None or hi is not None):
        yield (
            sk.name,
            f"sidekiq_concurrency ({s.get('sidekiq_concurrency')}) overrides "
            "sidekiq_min/max_concurrency (GitLab 17.0 removed min/max)",
            "remove sidekiq_min_concurrency and sidekiq_max_concurrency",
        )


@check("deprecated-setting", WARNING,
       "a setting the host's GitLab version deprecates and GitLab 17.0 removed "
       "(`sidekiq_queue_selector`, `sidekiq_negate`, min/max concurrency)", scope="host")
def _deprecated_setting(ctx: Context, sk: SidekiqHost) -> Iterator[Problem]:
    s = sk.settings
    found = deprecations({r.variable: s.get(r.variable) for r in REMOVALS}, sk.gitlab_version)
    if found:
        yield (
            sk.name,
            "; ".join(f"{r.variable} ({r.gitlab}) is deprecated since GitLab {r.deprecated} and "
                      f"removed in {r.removed}" for r in found)
            + f": this fleet (GitLab {sk.gitlab_version}) cannot upgrade to 17.0 with it",
            "; ".join(f"{r.variable}: {r.instead}" for r in found),
        )


# -- each routed-to queue -------------------------------------------------------------------


def _on(shard: str | None) -> str:
    return f" on Redis shard {shard!r}" if shard else ""


@check("no-mailers-listener", ERROR, "no process listens to `mailers`", scope="queue")
def _no_mailers_listener(ctx: Context, dest: Destination) -> Iterator[Problem]:
    (queue, shard), _ = dest
    if queue == MAILERS_QUEUE and (queue, shard) not in ctx.listeners:
        yield (
            ctx.workers_hosts,
            f"no Sidekiq process listens to '{MAILERS_QUEUE}'{_on(shard)}: mail deliveries are "
            "never routed and would wait forever",
            f"add 'mailers' to a queue group of a sidekiq host, e.g. in {ctx.first_worker}'s "
            "sidekiq_queue_groups: [..., 'default,mailers']",
        )


@check("no-listener", ERROR,
       "a routed-to queue with no listening process on any sidekiq host", scope="queue")
def _no_listener(ctx: Context, dest: Destination) -> Iterator[Problem]:
    (queue, shard), workers = dest
    if queue != MAILERS_QUEUE and (queue, shard) not in ctx.listeners:
        yield (
            ctx.workers_hosts,
            f"queue '{queue}'{_on(shard)} has {len(workers)} worker(s) routed to it "
            f"({_sample(workers)}) but no Sidekiq process listens to it",
            f"add '{queue}' to a queue group of a sidekiq host (e.g. {ctx.first_worker}'s "
            "sidekiq_queue_groups), or route those workers to a queue that is listened to",
        )


# -- each Sidekiq process -------------------------------------------------------------------


@check("unused-queue", WARNING,
       "a listened-to queue no worker is routed to (a wasted BRPOP key)", scope="process")
def _unused_queue(ctx: Context, subject: tuple[SidekiqHost, Process]) -> Iterator[Problem]:
    sk, proc = subject
    idle = [q for q in proc.weights if (q, sk.shard) not in ctx.destinations]
    if idle:
        yield (
            f"{sk.name}/sidekiq@{proc.index}",
            f"listens to {len(idle)} queue(s) no worker is routed to ({_sample(idle)}): "
            "a wasted BRPOP key on every fetch",
            "remove them from this queue group (keep them only while a routing migration "
            "drains them)",
        )


# -- running them ---------------------------------------------------------------------------


def check_fleet(fleet: Fleet) -> list[Finding]:
    """Run every check. Raises ``FleetError`` only for unusable input (bad query, bad catalog)."""
    ctx = Context(fleet)
    findings: list[Finding] = []
    for scope in SCOPES:
        checks = [c for c in CHECKS.values() if c.scope == scope]
        if not checks:
            continue
        for subject in ctx.subjects(scope):
            args = () if scope == "fleet" else (subject,)
            for c in checks:
                found = [Finding(c.severity, c.id, *p) for p in c.run(ctx, *args)]
                findings += found
                if found and c.final:
                    return findings
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


def safe_check(fleet: Fleet) -> tuple[list[Finding], FleetError | None]:
    try:
        return check_fleet(fleet), None
    except FleetError as exc:
        return [], exc
