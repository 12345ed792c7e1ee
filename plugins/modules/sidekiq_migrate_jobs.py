#!/usr/bin/python
"""Ansible module: move waiting Sidekiq jobs to the queues of new routing rules, losing none."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sidekiq_migrate_jobs
short_description: Move waiting Sidekiq jobs after a routing change without losing any
description:
  - Touches only jobs of the O(retired_queues) (the queues nothing listens to after the
    routing change). It rewrites the C(queue) of the retry and schedule members whose queue
    is retired (same score, every other byte kept) and drains each C(queue:<retired>) list,
    oldest first, onto the newest end of each job's new queue.
  - A job of any other queue, in a list or in the retry/schedule sets, stays exactly as it
    is, whatever its class. A retired queue that is also a destination of O(mapping) is
    treated as live, with a warning.
  - Each move is one server-side Lua script, so a crash or a concurrent Sidekiq fetch cannot
    lose or duplicate a job; the script checks the types of the keys it writes before it
    writes. A retired-queue payload that cannot be read (including JSON nested too deeply to
    parse), or whose class is not in O(mapping), stays where it is or goes unchanged to a
    reported quarantine list (O(unknown)). An unreadable retry/schedule member always stays,
    because its queue cannot be read.
  - If the rewritten retry/schedule member already is in the set (moving would merge two jobs
    into one), the original is left untouched and reported in RV(conflicts) and
    RV(left_in_place).
  - An empty O(mapping) is refused. On a Redis error (including a socket timeout) the module
    fails with the partial report (RV(moved), RV(quarantined), RV(touched_keys)) of what was
    done before the error.
  - The mapping and the retired queues come from the controller's routing engine
    (C(hostvars | sidekiq_fleet.fleet.sidekiq_migration_plan(groups, target)), keys
    C(mapping) and C(retired_queues)).
  - Supports check mode (reports what would move) and is idempotent.
version_added: "0.1.0"
author: sidekiq-fleet
requirements: [redis (redis-py) on the host that runs it]
options:
  mapping:
    description: Worker class to queue, under the new routing rules (mailers included). Must
      not be empty.
    type: dict
    required: true
  retired_queues:
    description:
      - Queues nothing listens to after the routing change (the plan's C(retired_queues)).
        Only their jobs are moved or quarantined; an empty list moves nothing.
    type: list
    elements: str
    required: true
  redis_host:
    description: Redis host (not used with O(redis_sentinels)).
    type: str
    default: 127.0.0.1
  redis_port:
    description: Redis port (not used with O(redis_sentinels)).
    type: int
    default: 6379
  redis_sentinels:
    description:
      - Redis Sentinels (GitLab's C(gitlab_rails['redis_sentinels'])). When not empty, the
        master named O(redis_sentinel_master_name) is asked of them, and asked again after a
        connection error, so a failover during the migration is followed; O(redis_host) and
        O(redis_port) are then not used. O(redis_tls) applies to the Sentinels too.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Sentinel host.
        type: str
        required: true
      port:
        description: Sentinel port.
        type: int
        default: 26379
  redis_sentinel_master_name:
    description: Name the Sentinels monitor the master under (GitLab's C(redis['master_name'])).
    type: str
    default: gitlab-redis
  redis_sentinel_password:
    description: Password of the Sentinels' default user (no username; never logged). Omit for
      Sentinels without authentication.
    type: str
  redis_username:
    description: Redis ACL user (omit for requirepass).
    type: str
  redis_password:
    description: Redis password (any characters; never logged).
    type: str
  redis_tls:
    description: Connect with TLS and verify the server's certificate (chain and name).
    type: bool
    default: false
  redis_ca_file:
    description: CA certificate the server's certificate must chain to (the fleet CA); the
      system's trust store when omitted.
    type: path
  redis_db:
    description: Redis database number.
    type: int
    default: 0
  socket_connect_timeout:
    description: Seconds to wait for the connection to Redis.
    type: float
    default: 5.0
  socket_timeout:
    description: Seconds to wait for any Redis reply (a Lua move, a scan batch).
    type: float
    default: 30.0
  key_prefix:
    description: Prefix of Sidekiq's keys (a redis-namespace, for example C(resque:gitlab:)).
    type: str
    default: ""
  unknown:
    description: What happens to unreadable payloads and classes not in O(mapping), in the
      retired queues only.
    type: str
    choices: [leave, quarantine]
    default: leave
  quarantine_key:
    description: List that receives quarantined payloads (prefixed by O(key_prefix)).
    type: str
    default: sidekiq-fleet:quarantine
"""

EXAMPLES = r"""
- name: Jobs of the retired queues are on the queues of the new routing rules
  sidekiq_fleet.fleet.sidekiq_migrate_jobs:
    mapping: "{{ migrate_plan.mapping }}"
    retired_queues: "{{ migrate_plan.retired_queues }}"
    redis_host: 127.0.0.1
    redis_password: "{{ vault_redis_app_password }}"
    redis_username: app
    unknown: quarantine
  no_log: false
"""

RETURN = r"""
moved:
  description: Jobs moved, per "source -> destination".
  type: dict
  returned: always
moved_total:
  description: Sum of O(moved).
  type: int
  returned: always
quarantined:
  description: Jobs moved unchanged to the quarantine list, per source.
  type: dict
  returned: always
quarantined_total:
  description: Sum of RV(quarantined).
  type: int
  returned: always
left_in_place:
  description: >-
    Jobs of retired queues (and unreadable retry/schedule members) left where they are, per
    "source: reason".
  type: dict
  returned: always
forgotten_queues:
  description: Emptied retired queues removed from Sidekiq's C(queues) set.
  type: list
  returned: always
raced:
  description: Moves that found the job gone already (fetched or retried meanwhile, not lost).
  type: int
  returned: always
conflicts:
  description: >-
    Retry/schedule moves not done because the rewritten member already was in the set, per
    "set: old -> new"; the original stays untouched.
  type: dict
  returned: always
retired_but_routed:
  description: Names in O(retired_queues) that are destinations of O(mapping), treated as live.
  type: list
  returned: always
touched_keys:
  description: >-
    Redis keys written (with O(key_prefix)); on failure, those written before the error.
  type: list
  returned: always
failed_key:
  description: The key being migrated when a Redis error stopped the module.
  type: str
  returned: failure
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import redis

    HAS_REDIS = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_REDIS = False

from ansible_collections.sidekiq_fleet.fleet.plugins.module_utils.sidekiq_jobs import (
    JobMigrator,
    redis_client,
)

ARGUMENT_SPEC = {
    "mapping": {"type": "dict", "required": True},
    "retired_queues": {"type": "list", "elements": "str", "required": True},
    "redis_host": {"type": "str", "default": "127.0.0.1"},
    "redis_port": {"type": "int", "default": 6379},
    "redis_sentinels": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "host": {"type": "str", "required": True},
            "port": {"type": "int", "default": 26379},
        },
    },
    "redis_sentinel_master_name": {"type": "str", "default": "gitlab-redis"},
    "redis_sentinel_password": {"type": "str", "no_log": True},
    "redis_username": {"type": "str"},
    "redis_password": {"type": "str", "no_log": True},
    "redis_tls": {"type": "bool", "default": False},
    "redis_ca_file": {"type": "path"},
    "redis_db": {"type": "int", "default": 0},
    "socket_connect_timeout": {"type": "float", "default": 5.0},
    "socket_timeout": {"type": "float", "default": 30.0},
    "key_prefix": {"type": "str", "default": ""},
    "unknown": {"type": "str", "choices": ["leave", "quarantine"], "default": "leave"},
    "quarantine_key": {"type": "str", "default": "sidekiq-fleet:quarantine"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis (python3-redis)"))
    p = module.params
    mapping = {str(k): v if v is None else str(v) for k, v in p["mapping"].items()}
    try:
        migrator = JobMigrator(
            redis_client(p),  # connects on its first command, after the checks
            mapping,
            retired=p["retired_queues"],
            prefix=p["key_prefix"],
            unknown=p["unknown"],
            quarantine=p["quarantine_key"],
            check=module.check_mode,
        )
    except ValueError as exc:
        module.fail_json(msg=f"sidekiq_migrate_jobs: {exc}; nothing was touched")
    for name in migrator.report.retired_but_routed:
        module.warn(
            f"retired queue {name!r} is a destination of the mapping: treated as live, not drained"
        )
    try:
        report = migrator.run()
    except redis.RedisError as exc:
        done = migrator.report
        module.fail_json(
            msg=(
                f"Redis error while migrating {done.failed_key}: {exc}. Done before the error: "
                f"{sum(done.moved.values())} moved, {sum(done.quarantined.values())} "
                f"quarantined (see moved, quarantined, touched_keys); every move is atomic, "
                "so no job is lost or half moved: fix the cause and run the module again"
            ),
            changed=done.changed,
            failed_key=done.failed_key,
            **done.to_dict(),
        )
    module.exit_json(changed=report.changed, **report.to_dict())


if __name__ == "__main__":
    main()
