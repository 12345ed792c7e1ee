"""Ansible filters: thin wrappers around the sidekiq-fleet routing engine (package ``simulator``).

- ``queue_groups | sidekiq_processes(...)``: this host's Sidekiq processes (queues, weights,
  concurrency, sidekiq arguments), from the same code ``fleetsim plan`` uses.
- ``rules | sidekiq_routing_map(catalog)``: worker class -> queue, for producers and workers.
- ``hostvars | sidekiq_fleet_findings(groups)``: the fleet checks, for the preflight play.
- ``hostvars | sidekiq_migration_plan(groups, target)``: the phases of a routing migration
  (``simulator.migration.plan.plan_migration``), for playbooks/migrate_routing.yml.
Bad input raises an error with the engine's message (file, rule, position and fix).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    import simulator  # noqa: F401  (the Python package sidekiq-fleet, on the controller)
except ImportError:
    raise AnsibleFilterError(
        "sidekiq_fleet.fleet filters need the Python package sidekiq-fleet on the controller: "
        "run `pip install sidekiq-fleet` (or the project's wheel) in the Python that runs Ansible"
    ) from None

from simulator.errors import FleetError
from simulator.fleet.checks import check_fleet
from simulator.fleet.inventory import Fleet, plain_value
from simulator.migration.plan import MigrationTarget, plan_migration, plan_problems
from simulator.routing.catalog import cached_catalog
from simulator.routing.queue_groups import expand_queue_groups
from simulator.routing.rules import Router


def _catalog(path: Any) -> Any:
    return cached_catalog(str(path) if path else None)


def sidekiq_processes(
    queue_groups: Any,
    catalog: Any = None,
    selector: bool = False,
    negate: bool = False,
    min_concurrency: Any = None,
    max_concurrency: Any = None,
    concurrency: Any = None,
    strict: bool = True,
) -> list[dict[str, Any]]:
    try:
        processes = expand_queue_groups(
            plain_value(queue_groups),
            _catalog(catalog),
            selector=plain_value(selector),
            negate=plain_value(negate),
            min_concurrency=plain_value(min_concurrency),
            max_concurrency=plain_value(max_concurrency),
            concurrency=plain_value(concurrency),
            strict=plain_value(strict),
        )
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_processes: {exc}") from None
    return [p.to_dict() for p in processes]


def sidekiq_routing_map(rules: Any, catalog: Any = None, strict: bool = True) -> dict[str, str]:
    try:
        router = Router.from_rules(
            plain_value(rules), _catalog(catalog), strict=plain_value(strict)
        )
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_routing_rules: {exc}") from None
    return {key: route.queue for key, route in router.resolve().items()}


def sidekiq_fleet_findings(hostvars: Any, groups: Any, source: str = "inventory") -> list[dict]:
    try:
        fleet = Fleet.from_hostvars(hostvars, groups, source=source)
        return [{**f.to_dict(), "text": f.render()} for f in check_fleet(fleet)]
    except FleetError as exc:
        raise AnsibleFilterError(f"preflight: {exc}") from None


def sidekiq_migration_plan(
    hostvars: Any, groups: Any, target: Any, source: str = "inventory"
) -> dict[str, Any]:
    """The migration plan as plain data: per sidekiq host its current, listen-both and final
    ``sidekiq_queue_groups``, the producers in switch order, the job mapping (worker class ->
    new queue), the retired and added queues and the plan's problems.

    ``target`` is what ``fleetsim migrate --to`` reads: ``{sidekiq_routing_rules: ...,
    sidekiq_queue_groups: [...], hosts: {HOST: {sidekiq_queue_groups: [...]}}}``.
    """
    target = plain_value(target) or {}
    if not isinstance(target, dict) or not target.get("sidekiq_routing_rules"):
        raise AnsibleFilterError("sidekiq_migration_plan: the target needs sidekiq_routing_rules")
    try:
        fleet = Fleet.from_hostvars(hostvars, groups, source=source)
        per_host: dict[str, list[str]] = {}
        if target.get("sidekiq_queue_groups") is not None:
            per_host = {h: target["sidekiq_queue_groups"] for h in fleet.groups["sidekiq"]}
        for host, hv in (target.get("hosts") or {}).items():
            if host not in fleet.groups["sidekiq"]:
                raise AnsibleFilterError(
                    f"sidekiq_migration_plan: host {host!r} is not in the sidekiq group"
                )
            if isinstance(hv, dict) and hv.get("sidekiq_queue_groups") is not None:
                per_host[host] = hv["sidekiq_queue_groups"]
        plan = plan_migration(
            fleet, MigrationTarget(target["sidekiq_routing_rules"], per_host, "target")
        )
        problems = plan_problems(fleet, plan)
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_migration_plan: {exc}") from None
    return {
        "current": {h: hp.queue_groups() for h, hp in plan.current.items()},
        "both": {h: hp.queue_groups() for h, hp in plan.both.items()},
        "final": {h: hp.queue_groups() for h, hp in plan.final.items()},
        "producers": list(plan.producers),
        "mapping": dict(plan.mapping),
        "retired_queues": list(plan.retired_queues),
        "added_queues": list(plan.added_queues),
        "problems": problems,
    }


# Addresses that mean "every interface": the same list for every role's bind checks.
_WILDCARDS = {"", "*", "0", "0.0.0.0", "::", "[::]", "::0", "0:0:0:0:0:0:0:0"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def _host_part(address: Any) -> str:
    """The host of 'HOST', 'HOST:PORT', '[V6]:PORT' or a bare IPv6 address."""
    text = str(address).strip()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def sidekiq_fleet_wildcard(address: Any) -> bool:
    """True when an address (optionally with a port) binds every interface."""
    return _host_part(address) in _WILDCARDS


def sidekiq_fleet_loopback(address: Any) -> bool:
    """True when an address (optionally with a port) is a loopback address or 'localhost'."""
    host = _host_part(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sidekiq_fleet_safe_name(value: Any) -> bool:
    """True for a name safe to render into Redis ACL lines, sudoers, HAProxy and shell commands:
    letters, digits, '_', '.', '-' (not first), at most 64 characters."""
    return isinstance(value, str) and _SAFE_NAME.fullmatch(value) is not None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sidekiq_processes": sidekiq_processes,
            "sidekiq_routing_map": sidekiq_routing_map,
            "sidekiq_fleet_findings": sidekiq_fleet_findings,
            "sidekiq_migration_plan": sidekiq_migration_plan,
            "sidekiq_fleet_wildcard": sidekiq_fleet_wildcard,
            "sidekiq_fleet_loopback": sidekiq_fleet_loopback,
            "sidekiq_fleet_safe_name": sidekiq_fleet_safe_name,
        }
