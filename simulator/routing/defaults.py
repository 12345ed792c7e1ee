"""Every default the engine gives an inventory variable left unset: one table, used by fleetsim
(inventory reading, plan, simulate, capacity, migrate) and by the Ansible filters the roles render
their processes with, so what fleetsim plans is what ``site.yml`` deploys.

Routing and processes follow the defaults of the GitLab release the fleet runs,
``sidekiq_gitlab_version`` (unset: :data:`DEFAULT_GITLAB_VERSION`, the current release; what
changed when: :mod:`simulator.routing.versions`). For the current release:

* ``sidekiq_routing_rules``: ``[['*', 'default']]`` (an empty list means the same);
* ``sidekiq_queue_groups``: ``['default,mailers']``, one process listening to ``default`` and
  ``mailers`` (GitLab 16.10+; ``['*']`` before: :data:`VERSIONED_DEFAULTS`);
* threads per process (:func:`threads_model`): GitLab 17+: ``sidekiq_concurrency`` when it is
  set (a positive number), otherwise 20 (GitLab 17's ``concurrency``). Before 17.0, GitLab's
  formula (queues + 1 within ``sidekiq_min_concurrency``/``sidekiq_max_concurrency``, the maximum
  20 unless set), which a positive ``sidekiq_concurrency`` overrides from 16.9. The variable's
  default is *unset* (null) and the 20 comes from here.
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
    "DEFAULT_GITLAB_VERSION",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_QUEUE_GROUPS",
    "DEFAULT_ROUTING_RULES",
    "FETCH_ORDERS",
    "SIDEKIQ_DEFAULTS",
    "VERSIONED_DEFAULTS",
    "default",
    "threads_model",
]

#: The GitLab release a fleet runs when ``sidekiq_gitlab_version`` is unset: the current one,
#: the last release before the shipped CE catalog (``routing/data``: 19.3.0-pre).
DEFAULT_GITLAB_VERSION = "19.2"
#: GitLab 17+ threads per process (Omnibus ``sidekiq['concurrency']``, the chart's default).
DEFAULT_CONCURRENCY = 20
#: Before 17.0: Omnibus ``sidekiq['max_concurrency']`` (``min_concurrency`` nil, i.e. 0).
DEFAULT_MAX_CONCURRENCY = 20
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
    "sidekiq_gitlab_version": DEFAULT_GITLAB_VERSION,
}

#: Defaults that changed with GitLab versions: per variable, (first version, value), oldest
#: first. ``SIDEKIQ_DEFAULTS`` holds the current release's value.
VERSIONED_DEFAULTS: dict[str, tuple[tuple[tuple[int, int], Any], ...]] = {
    # Omnibus ['*'] (every queue) before 16.10, then default,mailers.
    "sidekiq_queue_groups": (((13, 0), ["*"]), ((16, 10), list(DEFAULT_QUEUE_GROUPS))),
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


_CURRENT = tuple(int(part) for part in DEFAULT_GITLAB_VERSION.split("."))


def default(name: str, gitlab_version: tuple[int, int] | None = None) -> Any:
    """The default of variable ``name`` for a GitLab release (``(major, minor)``; None: the
    current one), as a fresh copy: callers may change lists."""
    if name not in DEFAULTS:
        raise KeyError(name)
    value = DEFAULTS[name]
    if gitlab_version is not None and name in VERSIONED_DEFAULTS:
        for since, versioned in VERSIONED_DEFAULTS[name]:
            if tuple(gitlab_version) >= since:
                value = versioned
    return copy.deepcopy(value)


ThreadsModel = Literal["fixed", "formula", "default"]


def threads_model(
    *,
    min_concurrency: int | None,
    max_concurrency: int | None,
    concurrency: int | None,
    gitlab_version: tuple[int, int] | None = None,
) -> ThreadsModel:
    """Which rule sets the threads of a process on a GitLab release (None: the current one):
    ``fixed`` (a positive ``sidekiq_concurrency``, GitLab 16.9+), ``formula`` (before 17.0,
    concurrency unset: queues + 1 within min/max, the maximum 20 unless set) or ``default``
    (17.0+, nothing set: :data:`DEFAULT_CONCURRENCY`). Settings a release does not have are
    refused before this is asked (:mod:`simulator.routing.versions`)."""
    version = _CURRENT if gitlab_version is None else tuple(gitlab_version)
    if concurrency and version >= (16, 9):
        return "fixed"
    if version < (17, 0):
        return "formula"
    return "default"
