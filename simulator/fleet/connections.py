"""The connections a fleet opens against the limits of its data tier.

**PostgreSQL.** Every Sidekiq thread may hold one database connection while it runs a job (Rails
checks one out per thread), and a GitLab Sidekiq process has
:data:`DB_CONNECTIONS_PER_PROCESS_OVERHEAD` more threads that may touch the database: the main
thread and two pollers (Sidekiq's scheduled-set poller and sidekiq-cron's), which is how GitLab
counts them (``Gitlab::Runtime.max_threads`` = concurrency + 3; the pool adds a headroom of 10
on top, but its connections open lazily, so the headroom is not counted). The producers (rails
hosts) add their own pools: ``rails_db_pool`` per host. The sum must stay within
``postgresql_max_connections`` minus ``postgresql_superuser_reserved_connections`` (the
connections only a superuser may open: PostgreSQL's default 3).

**Redis.** Sidekiq 7 gives each process a pool of ``concurrency`` connections for its job
threads (each fetching thread blocks one in ``BRPOP``) and an internal pool of up to
:data:`REDIS_CLIENTS_PER_PROCESS_OVERHEAD` (heartbeat, scheduled-set poller, stats; Sidekiq 6
reserved 5 instead). Producers add ``rails_redis_pool`` per host. The sum must stay within the
Redis server's ``maxclients`` (``redis_maxclients``; Redis' default 10000). Sidekiq processes with
a ``sidekiq_redis_shard`` connect to their shard only; producers connect to every shard.

With several postgresql (redis) hosts the smallest limit counts: any of them may be the one the
fleet connects to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InventoryError, excerpt
from ..routing.defaults import DATA_TIER_DEFAULTS
from .inventory import Fleet, HostSettings

__all__ = [
    "DB_CONNECTIONS_PER_PROCESS_OVERHEAD",
    "REDIS_CLIENTS_PER_PROCESS_OVERHEAD",
    "Budget",
    "database_connections",
    "redis_clients",
]

#: Threads of a GitLab Sidekiq process besides its job threads that may hold a database
#: connection: the main thread and two pollers (``Gitlab::Runtime.max_threads``).
DB_CONNECTIONS_PER_PROCESS_OVERHEAD = 3
#: Sidekiq 7's internal Redis pool per process, on top of one connection per job thread.
REDIS_CLIENTS_PER_PROCESS_OVERHEAD = 10


@dataclass(frozen=True)
class Budget:
    """Connections the fleet may open against one server's limit."""

    what: str  # "PostgreSQL connections"
    #: (who, how many, how counted), e.g. ("sidekiq1.example.com", 69, "3 processes x (20 + 3)").
    parts: tuple[tuple[str, int, str], ...]
    limit: int
    #: How the limit was found, e.g. "postgresql_max_connections 200 - 3 reserved (postgresql1)".
    limit_source: str
    #: The Redis shard the budget is for (None: the main Redis, or PostgreSQL).
    shard: str | None = None
    #: Connections of the server's limit the fleet cannot use (PostgreSQL's superuser reserve).
    reserved: int = 0

    @property
    def total(self) -> int:
        return sum(n for _, n, _ in self.parts)

    @property
    def needed_setting(self) -> int:
        """The smallest server setting (max_connections, maxclients) that fits the fleet."""
        return self.total + self.reserved

    @property
    def over(self) -> bool:
        return self.total > self.limit

    def breakdown(self) -> str:
        return " + ".join(f"{n:,} {who} ({how})" for who, n, how in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "shard": self.shard,
            "total": self.total,
            "limit": self.limit,
            "limit_source": self.limit_source,
            "needed_setting": self.needed_setting,
            "parts": [{"host": who, "connections": n, "counted": how}
                      for who, n, how in self.parts],
        }


def _count(fleet: Fleet, host: HostSettings, name: str, *, minimum: int = 0) -> int:
    """A whole-number variable of ``host`` (its default when unset)."""
    value = host.vars.get(name)
    if value is None:
        value = DATA_TIER_DEFAULTS[name]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InventoryError(
            f"{name} must be a whole number ({minimum} or more), not {excerpt(value)}",
            file=fleet.source,
            rule=f"host {host.name}, {name}",
            hint=f"set {name}: {DATA_TIER_DEFAULTS[name]} (the default), or remove it",
        )
    return value


def _processes_part(sk: Any, overhead: int) -> tuple[str, int, str]:
    procs = sk.processes
    threads = sum(p.concurrency for p in procs)
    sizes = sorted({p.concurrency for p in procs})
    each = (f"{len(procs)} process(es) x ({sizes[0]} threads + {overhead})" if len(sizes) == 1
            else f"{threads} threads in {len(procs)} processes + {len(procs)} x {overhead}")
    return sk.name, threads + overhead * len(procs), each


def database_connections(fleet: Fleet) -> Budget | None:
    """The fleet's PostgreSQL connections against the smallest limit of its postgresql hosts
    (None: the inventory has no postgresql host, so there is no limit to compare with)."""
    pg_hosts = [fleet.data_hosts[h] for h in fleet.groups["postgresql"] if h in fleet.data_hosts]
    if not pg_hosts:
        return None
    limits = []
    for host in pg_hosts:
        most = _count(fleet, host, "postgresql_max_connections", minimum=1)
        reserved = _count(fleet, host, "postgresql_superuser_reserved_connections")
        limits.append((most - reserved, most, reserved, host.name))
    limit, most, reserved, name = min(limits)
    parts = [_processes_part(sk, DB_CONNECTIONS_PER_PROCESS_OVERHEAD)
             for sk in fleet.sidekiq_hosts() if sk.processes]
    for host_name in fleet.groups["rails"]:
        host = fleet.hosts[host_name]
        parts.append((host_name, _count(fleet, host, "rails_db_pool"), "rails_db_pool"))
    return Budget(
        "PostgreSQL connections", tuple(parts), limit,
        f"postgresql_max_connections {most} - postgresql_superuser_reserved_connections "
        f"{reserved} on {name}", reserved=reserved)


def redis_clients(fleet: Fleet) -> list[Budget]:
    """Redis clients per shard (the main Redis first) against the smallest ``maxclients`` of the
    redis hosts (empty: the inventory has no redis host)."""
    redis_hosts = [fleet.data_hosts[h] for h in fleet.groups["redis"] if h in fleet.data_hosts]
    if not redis_hosts:
        return []
    limit, name = min((_count(fleet, h, "redis_maxclients", minimum=1), h.name)
                      for h in redis_hosts)
    producers = [(h, _count(fleet, fleet.hosts[h], "rails_redis_pool"), "rails_redis_pool")
                 for h in fleet.groups["rails"]]
    shards: dict[str | None, list[tuple[str, int, str]]] = {}
    for sk in fleet.sidekiq_hosts():
        if sk.processes:
            shards.setdefault(sk.shard, []).append(
                _processes_part(sk, REDIS_CLIENTS_PER_PROCESS_OVERHEAD))
    if not shards:
        shards[None] = []
    order = sorted(shards, key=lambda s: (s is not None, str(s)))
    return [Budget("Redis clients", tuple(shards[s] + producers), limit,
                   f"redis_maxclients {limit} on {name}", shard=s)
            for s in order]
