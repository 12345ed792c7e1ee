#!/usr/bin/env python3
"""Plant payloads that no worker can run, before the migration (stdin: the Redis password).

- queue:legacy_export (a queue no routing, old or new, names: not the migration's to move):
  a job of a class that no longer exists, and a payload that is not JSON;
- the schedule set: a job of an unknown class due in a day, on the old queue audit_event.
Prints the planted payloads as JSON: [{"where": KEY, "payload": TEXT}, ...].
"""

import json
import sys
import time

import redis

host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = redis.Redis(
    host=host, port=port, username=user or None, password=sys.stdin.read().strip() or None
)
now = time.time()
unknown = json.dumps(
    {
        "class": "LegacyExportWorker",
        "queue": "legacy_export",
        "args": [42],
        "jid": "planted0unknown01",
        "retry": True,
        "created_at": now,
        "enqueued_at": now,
    }
)
unreadable = "{not json: planted0unreadable"
scheduled = json.dumps(
    {
        "class": "RemovedAuditWorker",
        "queue": "audit_event",
        "args": [7],
        "jid": "planted0scheduled",
        "retry": True,
        "created_at": now,
    }
)
planted = [
    {"where": "queue:legacy_export", "payload": unknown},
    {"where": "queue:legacy_export", "payload": unreadable},
    {"where": "schedule", "payload": scheduled},
]
if not r.exists("sidekiq-fleet:planted"):
    r.sadd("queues", "legacy_export")
    r.lpush("queue:legacy_export", unknown, unreadable)
    r.zadd("schedule", {scheduled: now + 86400})
    r.set("sidekiq-fleet:planted", json.dumps(planted))
print(json.dumps(planted))
