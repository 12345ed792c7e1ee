"""Prometheus alerting rules for a fleet (``fleetsim alerts``), from its inventory and the SLOs
the simulator checks.

* **Queueing SLO burn, per urgency.** The targets are :class:`~simulator.sim.model.SloTargets`
  (the simulator's defaults, or a workload's ``slo:``): a job of urgency U should start within
  ``queueing[U]`` seconds for a share ``queueing_apdex`` of jobs. The exporter has no per-job
  queueing histogram, only ``sidekiq_cluster_queue_latency_seconds{queue}`` (the age of each
  queue's oldest waiting job; cluster-wide, the same on every node's exporter, so the rules take
  the ``max``), so the rules measure *time slices*: a slice is late for U when a queue
  that the routing rules send U's workers to has its oldest job waiting longer than U's target
  (``urgency:sidekiq_queueing_late:bool``). The late share of each window is burnt budget;
  the alerts are the SRE workbook's multi-window, multi-burn-rate pairs (:data:`BURN_WINDOWS`).
* **Queues without a listener.** The routing engine knows where jobs go and which processes
  listen there; a queue whose listeners all report no fresh heartbeat
  (``sidekiq_process_up``) has nobody to take its jobs. The exporter exports no per-queue
  listener count, so the listeners come from the inventory, grouped by identical listener sets.
* **Processes per node** (the inventory's plan), **stale heartbeats**, **dead and retry set
  growth**, **Redis** (Debian's ``prometheus-redis-exporter``: memory near ``maxmemory``,
  writes refused with OOM, connections refused) and **exporters down**.

Every alert carries ``severity`` and a ``summary``, ``description`` and ``runbook_url``
(``docs/alerts.md#<alert name in lower case>``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..fleet.inventory import Fleet
from ..routing.catalog import Worker
from ..sim.model import SloTargets

__all__ = [
    "BURN_WINDOWS",
    "RUNBOOK",
    "AlertSettings",
    "BurnWindow",
    "ListenerGroup",
    "alert_rules",
    "listener_groups",
    "render_rules",
    "urgency_queues",
]

#: Where each alert's runbook lives: ``runbook_url`` is this plus ``#<alert name, lower case>``.
RUNBOOK = "docs/alerts.md"

#: The urgency a catalog entry without one has (as the simulator reads it).
DEFAULT_URGENCY = "low"


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window, multi-burn-rate alert: both windows burn faster than ``burn``."""

    long: str
    short: str
    #: How many times faster than the budget allows (1 spends the 30-day budget in 30 days).
    burn: float
    severity: str
    #: Share of the 30-day error budget spent by the time the long window alone fires.
    budget_spent: float


#: The SRE workbook's recommendation ("Alerting on SLOs", table 5-8): page at 2 % of a 30-day
#: budget in 1 h or 5 % in 6 h, ticket at 10 % in 3 days.
BURN_WINDOWS = (
    BurnWindow("1h", "5m", 14.4, "critical", 0.02),
    BurnWindow("6h", "30m", 6.0, "critical", 0.05),
    BurnWindow("3d", "6h", 1.0, "warning", 0.10),
)


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds that are not SLOs; each one is explained in docs/alerts.md."""

    #: A dead set that grew in this window (any job that ran out of retries).
    dead_set_window: str = "30m"
    #: Jobs the retry set may grow by in an hour before it is a problem...
    retry_set_growth_per_hour: int = 100
    #: ... for this long.
    retry_set_for: str = "15m"
    #: Share of Redis' maxmemory in use that warns (noeviction refuses writes at 100 %).
    redis_memory_share: float = 0.9
    #: A process without a fresh heartbeat, a queue without a listener, an exporter down: how
    #: long before it alerts (a rolling restart takes a node's processes down for seconds).
    process_down_for: str = "5m"
    no_listener_for: str = "2m"
    exporter_down_for: str = "5m"
    #: A node whose exporter watches another number of processes than the inventory plans.
    not_as_planned_for: str = "30m"
    #: Characters of queue names per line of a rule's regular expression (short lines).
    regex_width: int = 90
    windows: tuple[BurnWindow, ...] = field(default=BURN_WINDOWS)


# -- what the inventory says ----------------------------------------------------------------


def _urgency(worker: Worker) -> str:
    return worker.urgency or DEFAULT_URGENCY


def urgency_queues(fleet: Fleet) -> dict[str, tuple[str, ...]]:
    """Each urgency's queues: where the routing rules send at least one worker of it."""
    router = fleet.router
    out: dict[str, set[str]] = {}
    for worker in router.routed_workers():
        out.setdefault(_urgency(worker), set()).add(router.route(worker).queue)
    return {u: tuple(sorted(qs)) for u, qs in sorted(out.items())}


@dataclass(frozen=True)
class ListenerGroup:
    """Routed-to queues that the same processes listen to."""

    #: (queue, Redis shard) the routing rules send jobs to.
    queues: tuple[tuple[str, str | None], ...]
    #: (host, Sidekiq tag ``sidekiq@N``) of every process listening to them; empty when none.
    listeners: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        """A short, unique name for the alert's ``queues`` label."""
        names = [q if shard is None else f"{q}@{shard}" for q, shard in self.queues]
        shown = ", ".join(names[:3])
        return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"


def listener_groups(fleet: Fleet) -> list[ListenerGroup]:
    """Every routed-to queue, grouped by who listens to it (the inventory's processes)."""
    listeners: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for host in fleet.sidekiq_hosts():
        for process in host.processes:
            for queue in process.weights:
                listeners.setdefault((queue, host.shard), []).append(
                    (host.name, f"sidekiq@{process.index}"))
    groups: dict[tuple[tuple[str, str], ...], list[tuple[str, str | None]]] = {}
    for destination in fleet.router.destinations():
        key = tuple(sorted(set(listeners.get(destination, []))))
        groups.setdefault(key, []).append(destination)
    out = [ListenerGroup(tuple(sorted(qs, key=lambda d: (d[0], d[1] or ""))), key)
           for key, qs in groups.items()]
    return sorted(out, key=lambda g: (len(g.listeners) > 0, g.queues))


# -- PromQL ---------------------------------------------------------------------------------


def _string(value: str) -> str:
    """A PromQL double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _regex(names: Iterable[str]) -> str:
    """Names as one anchored RE2 alternative (Prometheus anchors label regexes)."""
    return "|".join(re.sub(r"([\\.+*?()\[\]{}^$|])", r"\\\1", n) for n in names)


def _number(value: float) -> str:
    return format(round(value, 12), ".12g")


def _seconds(value: float) -> str:
    return f"{_number(value)} s"


def _queues_selector(metric: str, queues: Sequence[str], width: int) -> str:
    """``metric{queue=~"..."}`` joined with ``or``, each regex at most about ``width`` long."""
    chunks: list[list[str]] = [[]]
    for queue in queues:
        if chunks[-1] and len(_regex([*chunks[-1], queue])) > width:
            chunks.append([])
        chunks[-1].append(queue)
    parts = [f"{metric}{{queue=~{_string(_regex(chunk))}}}" for chunk in chunks]
    return "\n  or ".join(parts)


def _listeners_up(listeners: Sequence[tuple[str, str]]) -> str:
    selectors = [f"sidekiq_process_up{{instance={_string(host)}, tag={_string(tag)}}}"
                 for host, tag in listeners]
    return "\n    or ".join(selectors)


# -- the rules --------------------------------------------------------------------------------


def _annotations(name: str, summary: str, description: str, runbook: str) -> dict[str, str]:
    return {"summary": summary, "description": description,
            "runbook_url": f"{runbook}#{name.lower()}"}


def _alert(name: str, expr: str, severity: str, summary: str, description: str, runbook: str,
           *, for_: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = _annotations(name, summary, description, runbook)
    return rule


def _slo_group(fleet: Fleet, targets: SloTargets, settings: AlertSettings,
               runbook: str) -> dict[str, Any]:
    budget = 1.0 - targets.queueing_apdex
    rules: list[dict[str, Any]] = []
    checked: list[tuple[str, float]] = []
    for urgency, queues in urgency_queues(fleet).items():
        target = targets.queueing.get(urgency, math.inf)
        if not math.isfinite(target) or not queues:
            continue  # no queueing target (throttled by default): nothing to burn
        checked.append((urgency, target))
        selector = _queues_selector("sidekiq_cluster_queue_latency_seconds", queues,
                                    settings.regex_width)
        rules.append({
            "record": "urgency:sidekiq_queueing_late:bool",
            "expr": f"max(\n  {selector}\n) > bool {_number(target)}\n",
            "labels": {"urgency": urgency},
        })
    ranges = sorted({w for b in settings.windows for w in (b.long, b.short)}, key=_duration_s)
    for window in ranges:
        rules.append({
            "record": f"urgency:sidekiq_queueing_late:ratio_{window}",
            "expr": f"avg_over_time(urgency:sidekiq_queueing_late:bool[{window}])",
        })
    for urgency, target in checked:
        for w in settings.windows:
            threshold = _number(w.burn * budget)
            expr = (
                f'urgency:sidekiq_queueing_late:ratio_{w.long}{{urgency="{urgency}"}} > {threshold}'
                f"\nand\n"
                f'urgency:sidekiq_queueing_late:ratio_{w.short}{{urgency="{urgency}"}} > '
                f"{threshold}\n"
            )
            rules.append(_alert(
                "SidekiqQueueingSLOBurn", expr, w.severity,
                f"{urgency.capitalize()}-urgency jobs wait longer than {_seconds(target)} "
                f"too often ({w.long} window)",
                f"For {{{{ $value | humanizePercentage }}}} of the last {w.long}, and in the "
                f"last {w.short} too, a queue that {urgency}-urgency workers are routed to had a "
                f"job waiting longer than {_seconds(target)}. The SLO allows "
                f"{_number(budget * 100)} % (queueing apdex {_number(targets.queueing_apdex)}); "
                f"more than {_times(w.burn)} spends {_number(w.budget_spent * 100)} % "
                f"of the 30-day error budget in {w.long}.",
                runbook, labels={"urgency": urgency, "window": w.long}))
    return {"name": "sidekiq-fleet-queueing-slo", "rules": rules}


def _times(burn: float) -> str:
    return "that" if burn == 1 else f"{_number(burn)} times that"


def _duration_s(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]]


def _sidekiq_group(fleet: Fleet, settings: AlertSettings, runbook: str) -> dict[str, Any]:
    s = settings
    rules: list[dict[str, Any]] = [
        _alert(
            "SidekiqDeadSetGrowing",
            f"max(delta(sidekiq_cluster_dead_set_size[{s.dead_set_window}])) > 0",
            "warning", "Sidekiq jobs ran out of retries",
            f"The dead set grew by {{{{ $value | humanize }}}} job(s) in the last "
            f"{s.dead_set_window}: those jobs failed every retry and will not run again "
            "unless someone retries them.",
            runbook),
        _alert(
            "SidekiqRetrySetGrowing",
            "max(delta(sidekiq_cluster_retry_set_size[1h])) > "
            f"{s.retry_set_growth_per_hour}",
            "warning", "Sidekiq's retry set keeps growing",
            "The retry set grew by {{ $value | humanize }} jobs in the last hour (more than "
            f"{s.retry_set_growth_per_hour} for {s.retry_set_for}): jobs fail faster than "
            "their retries succeed.",
            runbook, for_=s.retry_set_for),
    ]
    for group in listener_groups(fleet):
        if group.listeners:
            names = ", ".join(f"{host}/{tag}" for host, tag in group.listeners)
            expr = (f"(\n  sum(\n    {_listeners_up(group.listeners)}\n  )\n"
                    f"  or on() vector(0)\n) < 1\n")
            why = (f"None of the processes that listen to them ({names}) reports a fresh "
                   "heartbeat (or their nodes' exporters are not scraped)")
        else:
            expr = "vector(1)"
            why = "No process of the inventory listens to them (fleetsim plan: no-listener)"
        queue_names = [q for q, _ in group.queues]
        rules.append(_alert(
            "SidekiqQueueWithoutListener", expr, "critical",
            f"Nobody takes jobs from {group.label}",
            f"The routing rules send jobs to {len(queue_names)} queue(s) "
            f"({_shorten(queue_names)}). {why}: their jobs wait until one comes back.",
            runbook, for_=s.no_listener_for, labels={"queues": group.label}))
    rules.append(_alert(
        "SidekiqProcessDown", "sidekiq_process_up == 0", "warning",
        "Sidekiq process {{ $labels.tag }} on {{ $labels.instance }} is down",
        "{{ $labels.tag }} on {{ $labels.instance }} has had no heartbeat younger than the "
        "exporter's limit (sidekiq_exporter_heartbeat_max_age) for "
        f"{s.process_down_for}: it is stopped, crashed or hung; its queues have one listener "
        "fewer.",
        runbook, for_=s.process_down_for))
    for host in fleet.sidekiq_hosts():
        planned = len(host.processes)
        rules.append(_alert(
            "SidekiqProcessesNotAsPlanned",
            f"count by (instance) (sidekiq_process_up{{instance={_string(host.name)}}}) "
            f"!= {planned}",
            "warning", f"{host.name} runs another set of Sidekiq processes than planned",
            f"The exporter on {host.name} watches {{{{ $value }}}} Sidekiq process(es); the "
            f"inventory plans {planned}. The node was not deployed since the inventory "
            "changed, or these rules are from another inventory.",
            runbook, for_=s.not_as_planned_for, labels={"instance": host.name}))
    return {"name": "sidekiq-fleet-sidekiq", "rules": rules}


def _shorten(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... {len(names) - limit} more"


def _redis_group(settings: AlertSettings, runbook: str) -> dict[str, Any]:
    share = settings.redis_memory_share
    return {"name": "sidekiq-fleet-redis", "rules": [
        _alert(
            "RedisMemoryNearMaxmemory",
            f"redis_memory_used_bytes / (redis_memory_max_bytes > 0) > {_number(share)}",
            "warning", "Redis on {{ $labels.instance }} is near maxmemory",
            "Redis uses {{ $value | humanizePercentage }} of its maxmemory. With noeviction "
            "(the fleet's policy) it refuses writes when full: producers cannot enqueue and "
            "Sidekiq cannot move jobs between its sets.",
            runbook, for_="5m"),
        _alert(
            "RedisRejectingWrites", 'increase(redis_errors_total{err="OOM"}[5m]) > 0',
            "critical", "Redis on {{ $labels.instance }} refuses writes (OOM)",
            "Redis answered {{ $value | humanize }} command(s) with OOM in the last 5 minutes: "
            "it is at maxmemory and refuses writes. Enqueues, retries and heartbeats fail.",
            runbook),
        _alert(
            "RedisRejectingConnections", "increase(redis_rejected_connections_total[5m]) > 0",
            "critical", "Redis on {{ $labels.instance }} refuses connections (maxclients)",
            "Redis refused {{ $value | humanize }} connection(s) in the last 5 minutes: it has "
            "maxclients clients. Sidekiq processes and producers that cannot connect fail.",
            runbook),
    ]}


def _exporter_group(settings: AlertSettings, runbook: str) -> dict[str, Any]:
    after = settings.exporter_down_for
    return {"name": "sidekiq-fleet-exporters", "rules": [
        _alert(
            "ExporterDown", "up == 0", "warning",
            "Prometheus cannot scrape {{ $labels.job }} on {{ $labels.instance }}",
            f"The scrape of {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) has failed "
            f"for {after}: the alerts that need its metrics cannot fire.",
            runbook, for_=after),
        _alert(
            "SidekiqExporterCannotReadRedis", "sidekiq_exporter_redis_up == 0", "warning",
            "The Sidekiq exporter on {{ $labels.instance }} cannot read Redis",
            f"The exporter answers but has not been able to read Sidekiq's keys in Redis for "
            f"{after}: it exports no queue, set or process metrics.",
            runbook, for_=after),
        _alert(
            "SidekiqMetricsAbsent", 'absent(up{fleet_role="sidekiq"})', "critical",
            "Prometheus scrapes no Sidekiq exporter",
            "No target with fleet_role=\"sidekiq\" exists: every Sidekiq alert is blind. The "
            "scrape configuration (playbooks/monitoring.yml) is missing or was replaced.",
            runbook, for_="10m"),
    ]}


def alert_rules(fleet: Fleet, targets: SloTargets | None = None, *,
                runbook: str = RUNBOOK, settings: AlertSettings | None = None) -> dict[str, Any]:
    """The rule file's document: ``{"groups": [...]}``."""
    targets = targets or SloTargets()
    settings = settings or AlertSettings()
    return {"groups": [
        _slo_group(fleet, targets, settings, runbook),
        _sidekiq_group(fleet, settings, runbook),
        _redis_group(settings, runbook),
        _exporter_group(settings, runbook),
    ]}


# -- YAML -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text; lists indented under their key (yamllint)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)
# Host names from ansible-core are str subclasses (AnsibleUnsafeText): represent them as str.
_Dumper.add_multi_representer(str, _str)


def render_rules(document: dict[str, Any], *, header: str) -> str:
    """The rule file: ``header`` as comments, then the document."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True, explicit_start=True)
    return comments + body
