"""Every default the engine gives an inventory variable left unset: one table, used by fleetsim
(inventory reading, plan, simulate, capacity, migrate) and by the Ansible filters the roles render
their processes with, so what fleetsim plans is what ``site.yml`` deploys.

Routing and processes follow GitLab's current (17+) defaults:

* ``sidekiq_routing_rules``: ``[['*', 'default']]`` (an empty list means the same);
* ``sidekiq_queue_groups``: ``['default,mailers']``, one process listening to ``default`` and
  ``mailers`` (GitLab 16.10+ with no routing rules; ``*``, every queue, was the default before);
* threads per process (:func:`threads_model`): ``sidekiq_concurrency`` when it is set (a positive
  number); otherwise GitLab 13-16's formula when ``sidekiq_min_concurrency`` or
  ``sidekiq_max_concurrency`` is set; otherwise 20 (GitLab 17's ``concurrency``). A role default
  of ``sidekiq_concurrency: 20`` would silently override min/max, so the variable's default is
  *unset* (null) and the 20 comes from here.
* ``sidekiq_fetch_order``: ``weighted``, as GitLab's sidekiq-cluster starts every process
  (``-q NAME,1``: the queues are shuffled, weighted, before each fetch); ``strict`` (``-q NAME``:
  a later queue is served only when the earlier ones are empty) only when an inventory asks for
  it, and only for a process that lists no queue twice (:data:`FETCH_ORDERS`).

The data tier's limits that the fleet checks compare the fleet with (connections, clients) have
their defaults here too, equal to what the roles configure when the variable is unset.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

__all__ = [
    "DEFAULTS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_FETCH_ORDER",
    "DEFAULT_QUEUE_GROUPS",
    "DEFAULT_ROUTING_RULES",
    "FETCH_ORDERS",
    "SIDEKIQ_DEFAULTS",
    "default",
    "threads_model",
]

#: GitLab 17+ threads per process (Omnibus ``sidekiq['concurrency']``, the chart's default).
DEFAULT_CONCURRENCY = 20
#: GitLab 16.10+: with no routing rules, one process on ``default`` and ``mailers``.
DEFAULT_QUEUE_GROUPS: tuple[str, ...] = ("default,mailers",)
#: GitLab: nil or ``[]`` routing rules mean this.
DEFAULT_ROUTING_RULES: tuple[tuple[str, str], ...] = (("*", "default"),)

#: How a process orders its queues: ``weighted`` (``-q NAME,WEIGHT``: before every fetch the
#: list is shuffled, weighted; GitLab's sidekiq-cluster) or ``strict`` (``-q NAME``: a later queue
#: is served only when the earlier ones are empty).
FETCH_ORDERS: tuple[str, ...] = ("weighted", "strict")
#: GitLab's: sidekiq-cluster passes every queue as ``-q NAME,COUNT``.
DEFAULT_FETCH_ORDER = "weighted"

#: Routing and process variables of the sidekiq and rails hosts (None: unset, no default value:
#: the engine decides, e.g. the concurrency model).
SIDEKIQ_DEFAULTS: dict[str, Any] = {
    "sidekiq_routing_rules": [list(r) for r in DEFAULT_ROUTING_RULES],
    "sidekiq_queue_groups": list(DEFAULT_QUEUE_GROUPS),
    "sidekiq_queue_selector": False,
    "sidekiq_negate": False,
    "sidekiq_min_concurrency": None,
    "sidekiq_max_concurrency": None,
    "sidekiq_concurrency": None,
    "sidekiq_worker_catalog": None,
    "sidekiq_redis_shard": None,
    "sidekiq_query_strict": True,
    "sidekiq_fetch_order": DEFAULT_FETCH_ORDER,
}

#: The data tier and the producers, for the connection checks (simulator.fleet.checks).
DATA_TIER_DEFAULTS: dict[str, Any] = {
    # postgresql hosts: the role's default (roles/postgresql, ``max_connections``).
    "postgresql_max_connections": 200,
    # PostgreSQL's own default: connections only a superuser may use.
    "postgresql_superuser_reserved_connections": 3,
    # redis hosts: Redis' own default ``maxclients``.
    "redis_maxclients": 10000,
    # rails hosts: database connections the host's producers may hold at once, every process
    # together. GitLab sizes a Puma worker's pool by ``Gitlab::Runtime.max_threads``: 1 main
    # thread + 4 request threads (Omnibus ``puma['max_threads']``) + 4 Action Cable workers = 9;
    # 4 Puma workers (one per core of a 4-core node) give 36.
    "rails_db_pool": 36,
    # rails hosts: Redis connections of the host's producers (Sidekiq 7's client pool holds up
    # to 10 per process; 4 Puma workers).
    "rails_redis_pool": 40,
}

#: Every variable with a default, by name.
DEFAULTS: dict[str, Any] = {**SIDEKIQ_DEFAULTS, **DATA_TIER_DEFAULTS}


def default(name: str) -> Any:
    """The default of variable ``name`` (a fresh copy: callers may change lists)."""
    if name not in DEFAULTS:
        raise KeyError(name)
    return copy.deepcopy(DEFAULTS[name])


ThreadsModel = Literal["fixed", "formula", "default"]


def threads_model(
    *,
    min_concurrency: int | None,
    max_concurrency: int | None,
    concurrency: int | None,
) -> ThreadsModel:
    """Which rule sets the threads of a process: ``fixed`` (a positive ``sidekiq_concurrency``,
    GitLab 16.9+), ``formula`` (GitLab 13-16: min and/or max set, concurrency unset) or
    ``default`` (nothing set: :data:`DEFAULT_CONCURRENCY`)."""
    if concurrency:
        return "fixed"
    if min_concurrency is None and max_concurrency is None:
        return "default"
    return "formula"
