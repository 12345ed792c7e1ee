"""Ansible filters: thin wrappers around the sidekiq-fleet routing engine (package ``simulator``).

- ``queue_groups | sidekiq_processes(...)``: this host's Sidekiq processes (queues, weights,
  concurrency, sidekiq arguments), from the same code ``fleetsim plan`` uses; a null argument
  takes fleetsim's default for its variable (``simulator.routing.defaults``), for the host's
  GitLab release (``sidekiq_gitlab_version``).
- ``'VARIABLE' | sidekiq_fleet_default(version)``: that default (null: the engine decides, e.g.
  threads), for a GitLab release (omitted: the current one).
- ``rules | sidekiq_routing_map(catalog)``: worker class -> queue, for producers and workers.
- ``hostvars | sidekiq_fleet_findings(groups)``: the fleet checks, for the preflight play.
- ``hostvars | sidekiq_migration_plan(groups, target)``: the phases of a routing migration
  (``simulator.migration.plan.plan_migration``), for playbooks/migrate_routing.yml.
- ``hostvars | sidekiq_fleet_alert_rules(groups)``: the Prometheus alerting rules ``fleetsim
  alerts`` writes for the same inventory (with its ``fleet_alert_settings``), for the prometheus
  role.
Bad input raises an error with the engine's message (file, rule, position and fix).
"""

from __future__ import annotations

import ipaddress
import os
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
from simulator.report.alert_settings import alert_settings
from simulator.report.alerts import RUNBOOK, alert_rules, render_rules
from simulator.routing.catalog import cached_catalog
from simulator.routing.defaults import DEFAULTS, default
from simulator.routing.queue_groups import expand_queue_groups
from simulator.routing.rules import Router
from simulator.routing.versions import GitLabVersion, parse_gitlab_version


def _catalog(path: Any) -> Any:
    """One catalog file, a list of them (GitLab EE: CE's and EE's, merged), or ''/null."""
    path = plain_value(path)
    return cached_catalog(path or None)


def _or_default(value: Any, name: str, version: GitLabVersion | None = None) -> Any:
    """``value`` as plain data, or the engine's default for variable ``name`` (for GitLab
    ``version``) when it is null (simulator.routing.defaults: the same table fleetsim applies
    to an unset variable)."""
    value = plain_value(value)
    return default(name, version) if value is None else value


def sidekiq_processes(
    queue_groups: Any = None,
    catalog: Any = None,
    selector: Any = None,
    negate: Any = None,
    min_concurrency: Any = None,
    max_concurrency: Any = None,
    concurrency: Any = None,
    strict: Any = None,
    fetch_order: Any = None,
    gitlab_version: Any = None,
    routing_rules: Any = None,
) -> list[dict[str, Any]]:
    """This host's processes on its GitLab release (``gitlab_version``; null: the current one).
    A null argument takes fleetsim's default for its variable: queue groups
    ``['default,mailers']`` (16.10+; ``['*']`` before); threads ``concurrency`` when set, else 20
    (17+) or GitLab's formula (before 17.0); fetch order ``weighted`` (``-q NAME,1``, GitLab's),
    ``strict`` (``-q NAME``) only when asked. From 17.0 ``*`` means the queues of
    ``routing_rules`` (null: GitLab's default rules) plus ``mailers``."""
    try:
        version = parse_gitlab_version(plain_value(gitlab_version))
        strict_queries = _or_default(strict, "sidekiq_query_strict")
        wildcard = None
        if version.wildcard_means_routed_queues:
            wildcard = Router.from_rules(
                _or_default(routing_rules, "sidekiq_routing_rules"), _catalog(catalog),
                strict=strict_queries,
            ).wildcard_queues()
        processes = expand_queue_groups(
            _or_default(queue_groups, "sidekiq_queue_groups", version),
            _catalog(catalog),
            selector=_or_default(selector, "sidekiq_queue_selector"),
            negate=_or_default(negate, "sidekiq_negate"),
            min_concurrency=plain_value(min_concurrency),
            max_concurrency=plain_value(max_concurrency),
            concurrency=plain_value(concurrency),
            strict=strict_queries,
            fetch_order=_or_default(fetch_order, "sidekiq_fetch_order"),
            gitlab_version=version,
            wildcard_queues=wildcard,
        )
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_processes: {exc}") from None
    return [p.to_dict() for p in processes]


def sidekiq_fleet_default(name: Any, gitlab_version: Any = None) -> Any:
    """The engine's default of an inventory variable for a GitLab release (omitted or null: the
    current one): ``'sidekiq_queue_groups' | sidekiq_fleet.fleet.sidekiq_fleet_default`` ->
    ``['default,mailers']``, ``... | sidekiq_fleet_default('16.5')`` -> ``['*']``,
    ``'sidekiq_gitlab_version' | sidekiq_fleet_default`` -> the current release. Null for
    variables whose default is "unset" (``sidekiq_concurrency``: the engine then picks the
    threads)."""
    name = plain_value(name)
    if not isinstance(name, str) or name not in DEFAULTS:
        raise AnsibleFilterError(
            f"sidekiq_fleet_default: no default for {name!r}; known variables: "
            + ", ".join(sorted(DEFAULTS)))
    try:
        version = parse_gitlab_version(plain_value(gitlab_version))
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_fleet_default: {exc}") from None
    return default(name, version)


def sidekiq_routing_map(rules: Any = None, catalog: Any = None,
                        strict: Any = None) -> dict[str, str]:
    try:
        router = Router.from_rules(
            _or_default(rules, "sidekiq_routing_rules"), _catalog(catalog),
            strict=_or_default(strict, "sidekiq_query_strict"),
        )
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_routing_rules: {exc}") from None
    return {key: route.queue for key, route in router.resolve().items()}


def _sources(source: Any) -> tuple[str, tuple[str, ...]]:
    """The label for messages and the inventory sources on disk: ``source`` is one source (the
    preflight play passes ``ansible_inventory_sources | first``) or the whole list."""
    source = plain_value(source)
    given = [str(s) for s in source] if isinstance(source, list) else [str(source)]
    on_disk = tuple(s for s in given if os.path.exists(s))
    return (given[0] if given else "inventory"), on_disk


def sidekiq_fleet_findings(hostvars: Any, groups: Any, source: Any = "inventory") -> list[dict]:
    """The fleet checks. ``source``: the inventory source(s) (``ansible_inventory_sources``, or
    its first entry); with them the checks also find a worker catalog inside an inventory
    directory, which Ansible would read as an inventory source."""
    label, sources = _sources(source)
    try:
        fleet = Fleet.from_hostvars(hostvars, groups, source=label, sources=sources)
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


def sidekiq_fleet_alert_rules(
    hostvars: Any, groups: Any, source: Any = "inventory", runbook: str = RUNBOOK
) -> str:
    """The rule file ``fleetsim alerts -i INVENTORY`` writes, built from the play's inventory
    (``hostvars`` and ``groups``) with the simulator's default SLOs and the inventory's
    ``fleet_alert_settings``: one implementation for the CLI and the prometheus role."""
    label, sources = _sources(source)
    try:
        fleet = Fleet.from_hostvars(hostvars, groups, source=label, sources=sources)
        document = alert_rules(fleet, runbook=runbook, settings=alert_settings(fleet))
    except FleetError as exc:
        raise AnsibleFilterError(f"sidekiq_fleet_alert_rules: {exc}") from None
    header = (
        "Prometheus alerting rules for the Sidekiq fleet, generated by the prometheus role from\n"
        f"the inventory {label} (what `fleetsim alerts -i INVENTORY -o FILE` writes) and the\n"
        "simulator's default SLOs. Do not edit: the role rewrites it.\n"
        "What each alert means and what to do: docs/alerts.md."
    )
    return render_rules(document, header=header)


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
            "sidekiq_fleet_default": sidekiq_fleet_default,
            "sidekiq_routing_map": sidekiq_routing_map,
            "sidekiq_fleet_findings": sidekiq_fleet_findings,
            "sidekiq_migration_plan": sidekiq_migration_plan,
            "sidekiq_fleet_alert_rules": sidekiq_fleet_alert_rules,
            "sidekiq_fleet_wildcard": sidekiq_fleet_wildcard,
            "sidekiq_fleet_loopback": sidekiq_fleet_loopback,
            "sidekiq_fleet_safe_name": sidekiq_fleet_safe_name,
        }
