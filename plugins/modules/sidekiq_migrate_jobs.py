#!/usr/bin/python
"""Ansible module: move waiting Sidekiq jobs to the queues of new routing rules, losing none."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sidekiq_migrate_jobs
short_description: Move waiting Sidekiq jobs after a routing change without losing any
description:
  - Rewrites the C(queue) of jobs in the retry and schedule sets (same score, every other byte
    kept) and drains every C(queue:*) list that is no longer a routing destination, oldest
    first, onto the newest end of each job's new queue.
  - Each move is one server-side Lua script, so a crash or a concurrent Sidekiq fetch cannot
    lose or duplicate a job. A payload that cannot be read, or whose class is not in
    O(mapping), stays where it is or goes unchanged to a reported quarantine list.
  - The mapping comes from the controller's routing engine
    (C(sidekiq_routing_rules | sidekiq_routing_map(catalog))).
  - Supports check mode (reports what would move) and is idempotent.
version_added: "0.1.0"
author: sidekiq-fleet
requirements: [redis (redis-py) on the host that runs it]
options:
  mapping:
    description: Worker class to queue, under the new routing rules (mailers included).
    type: dict
    required: true
  redis_host:
    description: Redis host.
    type: str
    default: 127.0.0.1
  redis_port:
    description: Redis port.
    type: int
    default: 6379
  redis_username:
    description: Redis ACL user (omit for requirepass).
    type: str
  redis_password:
    description: Redis password (any characters; never logged).
    type: str
  redis_db:
    description: Redis database number.
    type: int
    default: 0
  key_prefix:
    description: Prefix of Sidekiq's keys (a redis-namespace, for example C(resque:gitlab:)).
    type: str
    default: ""
  unknown:
    description: What happens to unreadable payloads and classes not in O(mapping).
    type: str
    choices: [leave, quarantine]
    default: leave
  quarantine_key:
    description: List that receives quarantined payloads (prefixed by O(key_prefix)).
    type: str
    default: sidekiq-fleet:quarantine
"""

EXAMPLES = r"""
- name: Waiting jobs are on the queues of the new routing rules
  sidekiq_migrate_jobs:
    mapping: "{{ new_rules | sidekiq_routing_map(sidekiq_worker_catalog) }}"
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
left_in_place:
  description: Jobs left where they are, per "source, reason".
  type: dict
  returned: always
forgotten_queues:
  description: Emptied old queues removed from Sidekiq's C(queues) set.
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import redis

    HAS_REDIS = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_REDIS = False

from ansible.module_utils.sidekiq_jobs import JobMigrator


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mapping": {"type": "dict", "required": True},
            "redis_host": {"type": "str", "default": "127.0.0.1"},
            "redis_port": {"type": "int", "default": 6379},
            "redis_username": {"type": "str"},
            "redis_password": {"type": "str", "no_log": True},
            "redis_db": {"type": "int", "default": 0},
            "key_prefix": {"type": "str", "default": ""},
            "unknown": {"type": "str", "choices": ["leave", "quarantine"], "default": "leave"},
            "quarantine_key": {"type": "str", "default": "sidekiq-fleet:quarantine"},
        },
        supports_check_mode=True,
    )
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis (python3-redis)"))
    p = module.params
    client = redis.Redis(
        host=p["redis_host"],
        port=p["redis_port"],
        username=p["redis_username"],
        password=p["redis_password"],
        db=p["redis_db"],
    )
    try:
        report = JobMigrator(
            client,
            {str(k): str(v) for k, v in p["mapping"].items()},
            prefix=p["key_prefix"],
            unknown=p["unknown"],
            quarantine=p["quarantine_key"],
            check=module.check_mode,
        ).run()
    except redis.RedisError as exc:
        module.fail_json(msg=f"Redis refused the migration: {exc}")
    module.exit_json(changed=report.changed, **report.to_dict())


if __name__ == "__main__":
    main()
