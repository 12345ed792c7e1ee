"""Rolling routing migrations: the safe phase order, computed from current and desired routing.

GitLab warns that after routing rules change "administrators must take care with the migration
to avoid losing jobs entirely". The safe order, per phase:

a. ``listen-both``: every Sidekiq process also listens to the new queue of every worker it
   serves today, so jobs routed either way have a listener;
b. ``switch-producers``: the Rails/producer hosts switch to the new rules one at a time, each
   drained from the load balancer first and put back only when healthy;
c. ``move-jobs``: jobs still waiting in queues nothing routes to any more (queued lists, retry
   and schedule sets) are moved with ``sidekiq_migrate_jobs``;
d. ``stop-old``: processes stop listening to queues nothing is routed to, once they are empty;
e. ``final-sweep``: the job migration runs once more, because a retry or a job pushed back by a
   restart returns to the queue it was first pushed to, which may be a retired one.

The naive order (switch producers first, then workers) is computed too, so the simulator can
show the difference. Everything here uses the routing engine; nothing is re-implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import FleetError, RoutingError, excerpt
from ..fleet.inventory import Fleet, SidekiqHost
from ..inputs import load_yaml_file
from ..routing.catalog import Catalog
from ..routing.queue_groups import Process, expand_queue_groups, process_concurrency
from ..routing.rules import Router

PHASES = ("listen-both", "switch-producers", "move-jobs", "stop-old", "final-sweep")


@dataclass
class MigrationTarget:
    """What ``--to FILE`` asks for: new rules and, optionally, new queue groups."""

    rules: Any
    #: host -> sidekiq_queue_groups after the migration (None: derived from the rules).
    queue_groups: dict[str, list[str]] = field(default_factory=dict)
    source: str = "<target>"


def load_target(path: str, fleet: Fleet) -> MigrationTarget:
    data = load_yaml_file(path, error=RoutingError, what="target routing",
                          hint="check the path given to --to")
    if isinstance(data, list):
        return MigrationTarget(data, {}, path)
    if not isinstance(data, dict) or "sidekiq_routing_rules" not in data:
        raise RoutingError(
            "the target file needs sidekiq_routing_rules",
            file=path,
            hint="write `sidekiq_routing_rules: [[query, queue], ...]`, optionally "
            "`sidekiq_queue_groups: [...]` (every sidekiq host) or `hosts: {HOST: "
            "{sidekiq_queue_groups: [...]}}`",
        )
    groups: dict[str, list[str]] = {}
    if data.get("sidekiq_queue_groups") is not None:
        for host in fleet.groups["sidekiq"]:
            groups[host] = data["sidekiq_queue_groups"]
    hosts = data.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise RoutingError(
            f"hosts must be a mapping of host names, not a {type(hosts).__name__}",
            file=path,
            rule="hosts",
            hint="write `hosts: {HOST: {sidekiq_queue_groups: [...]}}`, one key per sidekiq "
            "host (or `sidekiq_queue_groups: [...]` at the top for every host)",
        )
    for host, hv in hosts.items():
        if host not in fleet.groups["sidekiq"]:
            raise RoutingError(
                f"host {excerpt(host)} is not in the inventory's sidekiq group",
                file=path,
                hint="name a host of group 'sidekiq'",
            )
        if hv is not None and not isinstance(hv, dict):
            raise RoutingError(
                f"host {host}: expected a mapping of variables, not a {type(hv).__name__}",
                file=path,
                rule=f"hosts, {host}",
                hint=f"write `{host}: {{sidekiq_queue_groups: [...]}}`",
            )
        if hv and hv.get("sidekiq_queue_groups") is not None:
            groups[host] = hv["sidekiq_queue_groups"]
    return MigrationTarget(data["sidekiq_routing_rules"], groups, path)


@dataclass
class HostPhase:
    host: str
    processes: list[Process]

    def queue_groups(self) -> list[str]:
        """The explicit ``sidekiq_queue_groups`` (selector off, negate off) for this phase."""
        return [",".join(p.queues) for p in self.processes]


@dataclass
class MigrationPlan:
    old: Router
    new: Router
    producers: list[str]
    #: processes per sidekiq host in each state
    current: dict[str, HostPhase]
    both: dict[str, HostPhase]
    final: dict[str, HostPhase]
    #: worker class -> new queue (the job migration's mapping)
    mapping: dict[str, str]
    #: queues that nothing routes to after the migration (drained in move-jobs)
    retired_queues: list[str]
    added_queues: list[str]

    def to_dict(self) -> dict[str, Any]:
        def hosts(state: dict[str, HostPhase]) -> dict[str, Any]:
            return {
                h: [
                    {"queues": list(p.weights), "weights": p.weights, "concurrency": p.concurrency}
                    for p in hp.processes
                ]
                for h, hp in state.items()
            }

        return {
            "phases": [
                {"name": "listen-both", "sidekiq": hosts(self.both)},
                {"name": "switch-producers", "order": self.producers},
                {"name": "move-jobs", "from_queues": self.retired_queues},
                {"name": "stop-old", "sidekiq": hosts(self.final)},
                {"name": "final-sweep", "from_queues": self.retired_queues},
            ],
            "added_queues": self.added_queues,
            "retired_queues": self.retired_queues,
            "moved_workers": sum(
                1 for k, q in self.mapping.items() if self.old.route_key(k).queue != q
            ),
        }


def _concurrency_for(host: SidekiqHost, queue_count: int) -> int:
    s = host.settings
    return process_concurrency(
        queue_count,
        min_concurrency=s.get("sidekiq_min_concurrency"),
        max_concurrency=s.get("sidekiq_max_concurrency"),
        concurrency=s.get("sidekiq_concurrency"),
        gitlab_version=host.gitlab_version,
    )


def plan_migration(fleet: Fleet, target: MigrationTarget) -> MigrationPlan:
    """Compute the safe phases; raises ``FleetError`` for unusable target rules."""
    old = fleet.router
    catalog: Catalog = fleet.catalog
    ref = fleet.reference_host
    strict = ref.flag("sidekiq_query_strict", fleet.source) if ref else True
    try:
        new = Router.from_rules(target.rules, catalog, strict=strict, source=target.source)
    except FleetError as exc:
        raise exc.located(file=target.source) from None
    old_routes = old.resolve()
    new_routes = new.resolve()
    # queue (old) -> new queues of the workers routed there
    follows: dict[tuple[str, str | None], list[str]] = {}
    for key, route in old_routes.items():
        dest = new_routes[key].queue
        bucket = follows.setdefault((route.queue, route.shard), [])
        if dest != route.queue and dest not in bucket:
            bucket.append(dest)
    new_dests = {(r.queue, r.shard) for r in new_routes.values()}
    current: dict[str, HostPhase] = {}
    both: dict[str, HostPhase] = {}
    final: dict[str, HostPhase] = {}
    for sk in fleet.sidekiq_hosts():
        current[sk.name] = HostPhase(sk.name, sk.processes)
        procs_both = []
        for proc in sk.processes:
            queues = list(proc.queues)
            for q in proc.weights:
                for dest in follows.get((q, sk.shard), []):
                    if dest not in queues:
                        queues.append(dest)
            procs_both.append(
                Process(proc.index, proc.group, tuple(queues), _concurrency_for(sk, len(queues)),
                        fetch_order=proc.fetch_order)
            )
        both[sk.name] = HostPhase(sk.name, procs_both)
        if sk.name in target.queue_groups:
            s = sk.settings
            try:
                procs_final = expand_queue_groups(
                    target.queue_groups[sk.name],
                    catalog,
                    selector=s.flag("sidekiq_queue_selector", fleet.source),
                    negate=s.flag("sidekiq_negate", fleet.source),
                    min_concurrency=s.get("sidekiq_min_concurrency"),
                    max_concurrency=s.get("sidekiq_max_concurrency"),
                    concurrency=s.get("sidekiq_concurrency"),
                    strict=strict,
                    fetch_order=s.get("sidekiq_fetch_order"),
                    source=target.source,
                    gitlab_version=sk.gitlab_version,
                    # GitLab 17+: `*` is the queues of the target's rules.
                    wildcard_queues=new.wildcard_queues(),
                )
            except FleetError as exc:
                raise exc.located(rule=f"host {sk.name}") from None
        else:
            procs_final = []
            for proc in procs_both:
                queues = [q for q in proc.queues if (q, sk.shard) in new_dests]
                if queues:
                    procs_final.append(
                        Process(
                            len(procs_final),
                            proc.group,
                            tuple(queues),
                            _concurrency_for(sk, len(queues)),
                            fetch_order=proc.fetch_order,
                        )
                    )
        final[sk.name] = HostPhase(sk.name, procs_final)
    old_dests = {(r.queue, r.shard) for r in old_routes.values()}
    return MigrationPlan(
        old=old,
        new=new,
        producers=list(fleet.groups["rails"]),
        current=current,
        both=both,
        final=final,
        mapping={k: r.queue for k, r in new_routes.items()},
        retired_queues=sorted({q for q, s in old_dests - new_dests}),
        added_queues=sorted({q for q, s in new_dests - old_dests}),
    )


def uncovered(
    state: dict[str, HostPhase], router: Router, shards: dict[str, str | None]
) -> list[str]:
    """Destinations of ``router`` that no process in ``state`` listens to (would strand jobs)."""
    listening = {
        (q, shards.get(h)) for h, hp in state.items() for p in hp.processes for q in p.weights
    }
    return sorted(q for (q, s) in router.destinations() if (q, s) not in listening)


def plan_problems(fleet: Fleet, plan: MigrationPlan) -> list[str]:
    """Every phase must have a listener for every destination producers can use then."""
    shards = {sk.name: sk.shard for sk in fleet.sidekiq_hosts()}
    problems = []
    for phase, state, routers in (
        ("listen-both", plan.both, (plan.old, plan.new)),
        ("stop-old", plan.final, (plan.new,)),
    ):
        for router in routers:
            for queue in uncovered(state, router, shards):
                problems.append(f"{phase}: queue '{queue}' has no listener")
    return problems
