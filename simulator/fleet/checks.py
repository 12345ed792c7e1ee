"""Fleet checks: what would leave a job hanging in a queue nobody listens to, and lesser sins.

Each finding is an error (the fleet must not be deployed) or a warning, names the host (or the
fleet) and says how to fix it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import FleetError
from ..routing.rules import MAILERS_QUEUE
from .inventory import Fleet

ERROR = "error"
WARNING = "warning"


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


def _sample(items: list[str], n: int = 3) -> str:
    head = ", ".join(items[:n])
    return head + (f" and {len(items) - n} more" if len(items) > n else "")


def check_fleet(fleet: Fleet) -> list[Finding]:
    """Run every check. Raises ``FleetError`` only for unusable input (bad query, bad catalog)."""
    findings: list[Finding] = []
    add = findings.append
    if not fleet.groups["sidekiq"]:
        add(
            Finding(
                ERROR,
                "no-sidekiq-hosts",
                "fleet",
                "the inventory has no host in group 'sidekiq', so nothing processes jobs",
                "add the worker nodes to the 'sidekiq' group",
            )
        )
        return findings

    # Routing rules must be the same on every Rails and Sidekiq host.
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
            add(
                Finding(
                    ERROR,
                    "routing-rules-differ",
                    ", ".join(sorted(names)),
                    f"sidekiq_routing_rules differ from those of {ref.name} ({fingerprint} vs "
                    f"{ref_print}); producers would enqueue where workers do not listen",
                    "define sidekiq_routing_rules once, in group_vars/all, "
                    "and remove host overrides",
                )
            )
    for name, host in fleet.hosts.items():
        if name != (fleet.reference_host.name if fleet.reference_host else None):
            fleet.router_for(host)  # a bad query on any host is unusable input

    router = fleet.router
    rules = router.rules
    for rule in rules[:-1]:
        if rule.query.is_wildcard:
            add(
                Finding(
                    WARNING,
                    "catch-all-not-last",
                    "fleet",
                    f"{rule.describe()} matches every worker, so the {len(rules) - rule.index} "
                    "rule(s) after it never match",
                    f"move rule {rule.index} to the end of sidekiq_routing_rules",
                )
            )
    if not any(rule.query.is_wildcard for rule in rules):
        unmatched = [
            w.key
            for w in router.routed_workers()
            if router.route(w).rule_index is None and w.name != MAILERS_QUEUE
        ]
        if unmatched:
            add(
                Finding(
                    WARNING,
                    "no-catch-all",
                    "fleet",
                    f"no rule matches {len(unmatched)} worker(s) ({_sample(unmatched)}); each goes "
                    "to its own generated queue name",
                    "end sidekiq_routing_rules with ['*', 'default']",
                )
            )

    # Who listens where: (queue, shard) -> ["host/sidekiq@i", ...]
    listeners: dict[tuple[str, str | None], list[str]] = {}
    for sk in fleet.sidekiq_hosts():
        s = sk.settings
        lo, hi = s.get("sidekiq_min_concurrency"), s.get("sidekiq_max_concurrency")
        if lo is not None and hi and lo > hi:
            add(
                Finding(
                    ERROR,
                    "min-above-max",
                    sk.name,
                    f"sidekiq_min_concurrency ({lo}) is above sidekiq_max_concurrency ({hi})",
                    "lower sidekiq_min_concurrency or raise sidekiq_max_concurrency",
                )
            )
        if s.get("sidekiq_concurrency") and (lo is not None or hi is not None):
            add(
                Finding(
                    WARNING,
                    "concurrency-overrides-min-max",
                    sk.name,
                    f"sidekiq_concurrency ({s.get('sidekiq_concurrency')}) overrides "
                    "sidekiq_min/max_concurrency (GitLab 17 rejects min/max)",
                    "remove sidekiq_min_concurrency and sidekiq_max_concurrency",
                )
            )
        for proc in sk.processes:
            for queue in proc.weights:
                listeners.setdefault((queue, sk.shard), []).append(
                    f"{sk.name}/sidekiq@{proc.index}"
                )

    destinations = router.destinations()
    workers_hosts = ", ".join(fleet.groups["sidekiq"])
    first = fleet.groups["sidekiq"][0]
    for (queue, shard), workers in sorted(
        destinations.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))
    ):
        if (queue, shard) in listeners:
            continue
        on = f" on Redis shard {shard!r}" if shard else ""
        if queue == MAILERS_QUEUE:
            add(
                Finding(
                    ERROR,
                    "no-mailers-listener",
                    workers_hosts,
                    f"no Sidekiq process listens to '{MAILERS_QUEUE}'{on}: "
                    "mail deliveries are never "
                    "routed and would wait forever",
                    f"add 'mailers' to a queue group of a sidekiq host, e.g. in {first}'s "
                    "sidekiq_queue_groups: [..., 'default,mailers']",
                )
            )
            continue
        add(
            Finding(
                ERROR,
                "no-listener",
                workers_hosts,
                f"queue '{queue}'{on} has {len(workers)} worker(s) routed to it "
                f"({_sample(workers)}) but no Sidekiq process listens to it",
                f"add '{queue}' to a queue group of a sidekiq host (e.g. {first}'s "
                "sidekiq_queue_groups), "
                "or route "
                "those workers to a queue that is listened to",
            )
        )

    routed = set(destinations)
    for sk in fleet.sidekiq_hosts():
        for proc in sk.processes:
            idle = [q for q in proc.weights if (q, sk.shard) not in routed]
            if idle:
                add(
                    Finding(
                        WARNING,
                        "unused-queue",
                        f"{sk.name}/sidekiq@{proc.index}",
                        f"listens to {len(idle)} queue(s) no worker is routed to "
                        f"({_sample(idle)}): "
                        "a wasted BRPOP key on every fetch",
                        "remove them from this queue group "
                        "(keep them only while a routing migration "
                        "drains them)",
                    )
                )
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


def safe_check(fleet: Fleet) -> tuple[list[Finding], FleetError | None]:
    try:
        return check_fleet(fleet), None
    except FleetError as exc:
        return [], exc
