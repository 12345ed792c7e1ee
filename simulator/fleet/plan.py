"""The fleet plan: each Sidekiq host's processes, the routing table and the findings."""

from __future__ import annotations

from typing import Any

from ..routing.versions import VARIABLE as VERSION_VAR
from .checks import ERROR, check_fleet
from .connections import database_connections, redis_clients
from .inventory import Fleet


def build_plan(fleet: Fleet) -> dict[str, Any]:
    """Everything ``fleetsim plan`` shows, as plain data (also its ``--json`` output)."""
    router = fleet.router
    sidekiq = fleet.sidekiq_hosts()
    listeners: dict[tuple[str, str | None], list[str]] = {}
    for sk in sidekiq:
        for proc in sk.processes:
            for queue in proc.weights:
                listeners.setdefault((queue, sk.shard), []).append(
                    f"{sk.name}/sidekiq@{proc.index}"
                )
    table = []
    destinations = router.destinations()
    for (queue, shard), workers in sorted(
        destinations.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))
    ):
        table.append(
            {
                "queue": queue,
                "redis_shard": shard,
                "workers": sorted(workers),
                "listeners": listeners.get((queue, shard), []),
            }
        )
    findings = check_fleet(fleet)
    database = database_connections(fleet)
    ref = fleet.reference_host
    return {
        "inventory": fleet.source,
        # The GitLab release the plan assumes, and whether the inventory said so.
        "gitlab_version": str(fleet.gitlab_version),
        "gitlab_version_set": bool(ref and ref.vars.get(VERSION_VAR) is not None),
        "catalog": fleet.catalog.path,
        "routing_rules": router.rules_as_data(),
        "hosts": [sk.to_dict() for sk in sidekiq],
        "routing": table,
        "connections": {
            "postgresql": None if database is None else database.to_dict(),
            "redis": [b.to_dict() for b in redis_clients(fleet)],
        },
        "findings": [f.to_dict() for f in findings],
        "errors": sum(1 for f in findings if f.severity == ERROR),
    }


#: How the plan names what set a process's threads.
_THREADS_FROM = {
    "default": " (default: sidekiq_concurrency unset)",
    "formula": " (GitLab's formula: queues + 1 within min/max)",
    "fixed": "",
}


def _version_line(plan: dict[str, Any]) -> str:
    version = plan.get("gitlab_version", "")
    if plan.get("gitlab_version_set"):
        return f"GitLab {version} ({VERSION_VAR})"
    return f"GitLab {version} (assumed: {VERSION_VAR} unset, the current release)"


def _render_connections(connections: dict[str, Any]) -> list[str]:
    out = ["Connections (see the db-connections and redis-clients checks):"]
    db = connections.get("postgresql")
    if db is None:
        out.append("  PostgreSQL: no postgresql host in the inventory, not checked")
    else:
        out.append(f"  PostgreSQL: {db['total']:,} of {db['limit']:,} ({db['limit_source']})")
    for b in connections.get("redis") or []:
        shard = f" shard {b['shard']}" if b["shard"] else ""
        out.append(f"  Redis{shard}: {b['total']:,} of {b['limit']:,} ({b['limit_source']})")
    if not connections.get("redis"):
        out.append("  Redis: no redis host in the inventory, not checked")
    return out


def render_plan(plan: dict[str, Any]) -> str:
    out = [f"Fleet plan for {plan['inventory']} (catalog {plan['catalog']})",
           _version_line(plan), ""]
    out.append("Routing rules (first match wins):")
    for i, rule in enumerate(plan["routing_rules"], start=1):
        out.append(f"  {i}. {rule}")
    out.append("")
    for host in plan["hosts"]:
        shard = f" (Redis shard {host['redis_shard']})" if host["redis_shard"] else ""
        version = host.get("gitlab_version")
        other = f" (GitLab {version})" if version and version != plan.get("gitlab_version") else ""
        out.append(f"{host['host']}{shard}{other}: {len(host['processes'])} Sidekiq process(es)")
        model = _THREADS_FROM.get(host.get("threads_model", ""), "")
        for proc in host["processes"]:
            queues = proc["weights"]
            shown = ", ".join(q if w == 1 else f"{q}*{w}" for q, w in list(queues.items())[:8]) + (
                f", … ({len(queues)} queues)" if len(queues) > 8 else ""
            )
            order = "strict" if proc["strict"] else "weighted"
            out.append(
                f"  sidekiq@{proc['index']}: {proc['concurrency']} threads{model}, "
                f"{order}: {shown}"
            )
    out.append("")
    out.append("Routing table (queue <- workers routed | listeners):")
    # Queues of one worker each with the same listeners (generated names) share one line.
    singles: dict[tuple[str, ...], list[str]] = {}
    for row in plan["routing"]:
        if len(row["workers"]) == 1 and not row["redis_shard"] and row["queue"] != "mailers":
            singles.setdefault(tuple(row["listeners"]), []).append(row["queue"])
    for row in plan["routing"]:
        listen = ", ".join(row["listeners"]) or "NOBODY"
        group = singles.get(tuple(row["listeners"]), [])
        if row["queue"] in group and len(group) > 3:
            if row["queue"] == group[0]:
                out.append(
                    f"  {len(group)} queues of one worker each ({', '.join(group[:3])}, …) "
                    f"| {listen}"
                )
            continue
        shard = f" [{row['redis_shard']}]" if row["redis_shard"] else ""
        out.append(f"  {row['queue']}{shard} <- {len(row['workers'])} worker(s) | {listen}")
    out.append("")
    out += _render_connections(plan.get("connections") or {})
    out.append("")
    if plan["findings"]:
        out.append("Findings:")
        for f in plan["findings"]:
            out.append(f"  {f['severity'].upper()} [{f['code']}] {f['host']}: {f['message']}")
            out.append(f"    fix: {f['fix']}")
    else:
        out.append("Findings: none")
    warnings = len(plan["findings"]) - plan["errors"]
    out.append(f"\n{plan['errors']} error(s), {warnings} warning(s)")
    return "\n".join(out)
