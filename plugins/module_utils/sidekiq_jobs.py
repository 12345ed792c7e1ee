"""Moving waiting Sidekiq jobs after a routing change, without ever losing or duplicating one.

GitLab's ``gitlab:sidekiq:migrate_jobs`` tasks pop a job and push it elsewhere: a crash between
the two loses the job, and a job whose class is unknown or whose JSON is unreadable is dropped.
Here every move is one server-side Lua script (remove the exact payload, add the rewritten one),
so a crash or a concurrent Sidekiq fetch can only make a move not happen, never half happen.
Each script checks the types of the keys it writes before its first write: a Redis error raised
inside a script does not undo the writes made before it, so a late error could lose a job.

Only jobs of *retired* queues (queues nothing listens to after the routing change, the plan's
``retired_queues``) are ever touched: the ``queue:<retired>`` lists, and the retry/schedule
members whose ``queue`` is retired. A job of a live queue stays byte for byte, whatever its class.
A retired-queue payload that cannot be read, or whose class is not in the mapping, stays where
it is or goes (unchanged, atomically) to a quarantine list that is reported. An unreadable
retry/schedule member always stays: its queue cannot be read, so it may belong to a live queue.

Used by the Ansible module ``sidekiq_migrate_jobs`` (runs on one node, needs redis-py there).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Sidekiq's ActiveJob wrapper: the real class is in ``wrapped``.
JOB_WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
DEFAULT_QUARANTINE = "sidekiq-fleet:quarantine"

#: Script results: moved, job gone meanwhile (a concurrent fetch or retry: not lost), and the
#: rewritten member already in the set (a move would merge two jobs into one: nothing done).
MOVED, GONE, CONFLICT = 1, 0, -1

# Raises WRONGTYPE unless KEYS[i] is missing or of the given type; every script calls it for the
# keys it writes BEFORE its first write (an error in a script does not undo earlier writes).
_EXPECT = """
local function expect(key, kind)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= kind then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', not a ' .. kind)
  end
end
"""
# KEYS[1] sorted set; ARGV: old member, new member. Same score, only if the old one is still
# there and the new one is not (ZADD of an existing member would merge two jobs into one).
_ZSET_MOVE = (
    _EXPECT
    + """
local bad = expect(KEYS[1], 'zset')
if bad then return bad end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return -1 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[2])
return 1
"""
)
# KEYS[1] sorted set, KEYS[2] quarantine list; ARGV[1] member.
_ZSET_TO_LIST = (
    _EXPECT
    + """
local bad = expect(KEYS[1], 'zset') or expect(KEYS[2], 'list')
if bad then return bad end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""
)
# KEYS[1] source list, KEYS[2] destination list, KEYS[3] the `queues` set;
# ARGV: old payload, new payload, destination queue name ('' for a non-queue list).
# Removes the OLDEST copy (from the tail) and pushes onto the destination's newest end.
_LIST_MOVE = (
    _EXPECT
    + """
local bad = expect(KEYS[1], 'list') or expect(KEYS[2], 'list')
if not bad and ARGV[3] ~= '' then bad = expect(KEYS[3], 'set') end
if bad then return bad end
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then redis.call('SADD', KEYS[3], ARGV[3]) end
return 1
"""
)
# KEYS[1] list, KEYS[2] queues set; ARGV[1] queue name: forget an emptied queue.
_FORGET_EMPTY = """
if redis.call('LLEN', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """Index just past the JSON string starting at ``text[i] == '"'``."""
    i += 1
    while True:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        else:
            i += 1


def _value_end(text: str, i: int) -> int:
    """Index just past the JSON value starting at i (payload already validated by json)."""
    c = text[i]
    if c == '"':
        return _string_end(text, i)
    if c in "{[":
        depth = 0
        while True:
            c = text[i]
            if c == '"':
                i = _string_end(text, i)
                continue
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while i < len(text) and text[i] not in ",}] \t\r\n":
        i += 1
    return i


def rewrite_queue(payload: str, queue: str) -> str:
    """The same payload with only its top-level ``queue`` value replaced, byte for byte."""
    i = _skip_ws(payload, 0)
    if payload[i] != "{":
        raise ValueError("not a JSON object")
    i += 1
    while True:
        i = _skip_ws(payload, i)
        if payload[i] == "}":
            break
        key_end = _string_end(payload, i)
        key = json.loads(payload[i:key_end])
        i = _skip_ws(payload, key_end)
        i = _skip_ws(payload, i + 1)  # past ':'
        end = _value_end(payload, i)
        if key == "queue":
            return payload[:i] + json.dumps(queue) + payload[end:]
        i = _skip_ws(payload, end)
        if payload[i] == ",":
            i += 1
    # no queue field: add one at the front, every other byte kept
    start = _skip_ws(payload, 0) + 1
    sep = "" if payload[_skip_ws(payload, start)] == "}" else ","
    return payload[:start] + f'"queue":{json.dumps(queue)}{sep}' + payload[start:]


def parse_job(payload: str) -> dict[str, Any] | None:
    """The payload as a dict, or None when it cannot be read (not JSON, not an object, or
    nested too deeply for the parser: json raises RecursionError then)."""
    try:
        job = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        return None
    return job if isinstance(job, dict) else None


def job_class(payload: str | dict[str, Any] | None) -> str | None:
    """The worker class of a Sidekiq payload (text or parsed), or None when it cannot be read."""
    job = parse_job(payload) if isinstance(payload, str) else payload
    if not isinstance(job, dict):
        return None
    cls = job.get("wrapped") if job.get("class") == JOB_WRAPPER else job.get("class")
    if isinstance(cls, dict):  # ActiveJob may store the wrapped class as a hash
        cls = cls.get("name")
    return cls if isinstance(cls, str) else None


@dataclass
class MigrationReport:
    moved: dict[str, int] = field(default_factory=dict)  # "source -> destination": count
    quarantined: dict[str, int] = field(default_factory=dict)  # source: count
    left: dict[str, int] = field(default_factory=dict)  # "source: reason": count
    forgotten_queues: list[str] = field(default_factory=list)
    raced: int = 0  # moves that found the job already gone (fetched meanwhile): not lost
    #: retry/schedule moves not done because the rewritten member already was in the set
    #: ("set: old -> new": count); the original stays where it is (also in ``left``)
    conflicts: dict[str, int] = field(default_factory=dict)
    #: retired queues that are also routing destinations: treated as live, never drained
    retired_but_routed: list[str] = field(default_factory=list)
    #: Redis keys written so far (with the key prefix)
    touched_keys: set[str] = field(default_factory=set)
    #: the key (with the prefix) being migrated when a Redis error stopped the run
    failed_key: str | None = None

    def count(self, bucket: dict[str, int], key: str) -> None:
        bucket[key] = bucket.get(key, 0) + 1

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.quarantined or self.forgotten_queues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "moved": self.moved,
            "moved_total": sum(self.moved.values()),
            "quarantined": self.quarantined,
            "quarantined_total": sum(self.quarantined.values()),
            "left_in_place": self.left,
            "forgotten_queues": self.forgotten_queues,
            "raced": self.raced,
            "conflicts": self.conflicts,
            "retired_but_routed": self.retired_but_routed,
            "touched_keys": sorted(self.touched_keys),
        }


class JobMigrator:
    """Move the jobs of the ``retired`` queues according to ``mapping`` (worker class -> queue)
    on one Redis. Jobs of any other queue are never touched.

    ``unknown`` is ``"leave"`` (default) or ``"quarantine"``; ``check`` only reports. An empty
    mapping is refused (ValueError): it would make every job "unknown". A retired queue that is
    also a destination of ``mapping`` is treated as live (reported in ``retired_but_routed``).
    When a Redis error stops ``run()``, ``report`` holds what was done until then and
    ``report.failed_key`` the key being migrated.
    """

    def __init__(
        self,
        client: Any,
        mapping: dict[str, str],
        *,
        retired: Iterable[str],
        prefix: str = "",
        unknown: str = "leave",
        quarantine: str = DEFAULT_QUARANTINE,
        check: bool = False,
        batch: int = 500,
        max_passes: int = 10,
    ) -> None:
        if unknown not in ("leave", "quarantine"):
            raise ValueError("unknown must be 'leave' or 'quarantine'")
        if not mapping:
            raise ValueError(
                "the mapping is empty: every job would be of an unknown class; "
                "pass the new routing map (worker class -> queue)"
            )
        bad = sorted(str(k) for k, v in mapping.items() if not isinstance(v, str) or not v)
        if bad:
            raise ValueError(f"the mapping has no queue for: {', '.join(bad[:10])}")
        if isinstance(retired, str):
            raise ValueError("retired must be a list of queue names, not a string")
        self.r = client
        self.mapping = dict(mapping)
        self.destinations = set(self.mapping.values())
        self.prefix = prefix
        self.unknown = unknown
        self.quarantine_key = prefix + quarantine
        self.check = check
        self.batch = batch
        self.max_passes = max_passes
        self.report = MigrationReport()
        retired_set = {str(q) for q in retired if q}
        self.report.retired_but_routed = sorted(retired_set & self.destinations)
        self.retired = retired_set - self.destinations
        self._zset_move = client.register_script(_ZSET_MOVE)
        self._zset_to_list = client.register_script(_ZSET_TO_LIST)
        self._list_move = client.register_script(_LIST_MOVE)
        self._forget = client.register_script(_FORGET_EMPTY)

    def _decode(self, value: Any) -> str:
        return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value

    def _encode(self, value: str) -> bytes:
        return value.encode("utf-8", "surrogateescape")

    def _target(self, job: dict[str, Any] | None) -> tuple[str | None, str | None]:
        """(destination queue, None) or (None, reason to leave it)."""
        cls = job_class(job)
        if cls is None:
            return None, "unreadable payload"
        queue = self.mapping.get(cls)
        if queue is None:
            return None, f"class {cls} not in the mapping"
        return queue, None

    def _unknown(self, source: str, reason: str, move_to_quarantine: Any, keys: list[str]) -> None:
        """A retired-queue job that cannot be moved: left, or quarantined per ``unknown``."""
        if self.unknown == "quarantine":
            if self.check:
                self.report.count(self.report.quarantined, source)
            elif move_to_quarantine():
                self.report.count(self.report.quarantined, source)
                self.report.touched_keys.update(keys)
            else:
                self.report.raced += 1
        else:
            self.report.count(self.report.left, f"{source}: {reason}")

    # -- retry and schedule sets ---------------------------------------------------------
    def migrate_set(self, name: str) -> None:
        """Rewrite the queue of the members whose queue is retired (same score)."""
        key = self.prefix + name
        for raw, _score in self.r.zscan_iter(key, count=self.batch):
            payload = self._decode(raw)
            job = parse_job(payload)
            if job is None:  # its queue cannot be read: it may be a live queue's job
                self.report.count(self.report.left, f"{name}: unreadable payload, queue unknown")
                continue
            current = job.get("queue")
            if not isinstance(current, str) or current not in self.retired:
                continue  # a live queue's job (or none at all): never touched
            queue, reason = self._target(job)
            if queue is None:
                self._unknown(
                    name,
                    reason or "",
                    lambda raw=raw: self._zset_to_list(keys=[key, self.quarantine_key], args=[raw]),
                    [key, self.quarantine_key],
                )
                continue
            label = f"{name}: {current} -> {queue}"
            new = self._encode(rewrite_queue(payload, queue))
            if self.check:
                if self.r.zscore(key, new) is None:
                    self.report.count(self.report.moved, label)
                else:
                    self._conflict(name, label)
                continue
            result = self._zset_move(keys=[key], args=[raw, new])
            if result == MOVED:
                self.report.count(self.report.moved, label)
                self.report.touched_keys.add(key)
            elif result == CONFLICT:
                self._conflict(name, label)
            else:
                self.report.raced += 1

    def _conflict(self, name: str, label: str) -> None:
        """The rewritten member is already in the set: moving would merge two jobs into one.
        The original stays untouched (on its retired queue) and is reported; once it runs
        out of the set, a later run moves it from the ``queue:`` list (lists keep both)."""
        self.report.count(self.report.conflicts, label)
        self.report.count(self.report.left, f"{name}: rewritten payload already in the set")

    # -- queued lists --------------------------------------------------------------------
    def stale_queues(self) -> list[str]:
        """The retired queues (never a routing destination), in a stable order."""
        return sorted(self.retired)

    def migrate_queue(self, queue: str) -> None:
        """Drain ``queue:<queue>`` oldest first onto each job's destination's newest end.

        Walks the list from the tail (Sidekiq LPUSHes and BRPOPs, so the oldest job is last)
        in batches. Each move removes that exact payload (its oldest copy) and pushes the
        rewritten one in one Lua call, so indices only guide the walk: an index shifted by a
        concurrent fetch can make a pass miss a job, never lose one, and the next pass (until
        one moves nothing) picks it up.
        """
        src = f"{self.prefix}queue:{queue}"
        label_src = f"queue:{queue}"
        queues_key = self.prefix + "queues"
        for _ in range(1 if self.check else self.max_passes):
            left: dict[str, int] = {}
            moved_before = sum(self.report.moved.values()) + sum(self.report.quarantined.values())
            index = -1
            while True:
                chunk = self.r.lrange(src, index - self.batch + 1, index)
                removed = 0
                for raw in reversed(chunk):
                    payload = self._decode(raw)
                    target, reason = self._target(parse_job(payload))
                    if target is None:
                        if self.unknown == "leave":
                            key = f"{label_src}: {reason}"
                            left[key] = left.get(key, 0) + 1
                            continue

                        def to_quarantine(raw: Any = raw) -> Any:
                            return self._list_move(
                                keys=[src, self.quarantine_key, queues_key], args=[raw, raw, ""]
                            )

                        before = sum(self.report.quarantined.values())
                        self._unknown(
                            label_src,
                            reason or "",
                            to_quarantine,
                            [src, self.quarantine_key],
                        )
                        removed += sum(self.report.quarantined.values()) - before
                        continue
                    if target == queue:
                        continue
                    label = f"{label_src} -> queue:{target}"
                    if self.check:
                        self.report.count(self.report.moved, label)
                        continue
                    new = self._encode(rewrite_queue(payload, target))
                    dst = f"{self.prefix}queue:{target}"
                    if self._list_move(keys=[src, dst, queues_key], args=[raw, new, target]):
                        self.report.count(self.report.moved, label)
                        self.report.touched_keys.update((src, dst, queues_key))
                        removed += 1
                    else:
                        self.report.raced += 1
                if len(chunk) < self.batch:
                    break
                index = index - len(chunk) + (0 if self.check else removed)
            for key, n in left.items():
                self.report.left[key] = n
            moved_now = sum(self.report.moved.values()) + sum(self.report.quarantined.values())
            if moved_now == moved_before:
                break
        if not self.check and self._forget(keys=[src, queues_key], args=[queue]):
            self.report.forgotten_queues.append(queue)
            self.report.touched_keys.add(queues_key)

    def run(self) -> MigrationReport:
        """Migrate the retry and schedule sets, then each retired queue. On a Redis error the
        exception propagates; ``self.report`` then says what already moved and where it stopped.
        """
        for name in ("retry", "schedule"):
            self.report.failed_key = self.prefix + name
            self.migrate_set(name)
        for queue in self.stale_queues():
            self.report.failed_key = f"{self.prefix}queue:{queue}"
            self.migrate_queue(queue)
        self.report.failed_key = None
        return self.report


def redis_client(params: dict[str, Any], sentinel_class: Any = None) -> Any:
    """The redis-py client of the module's parameters (it connects on its first command).

    With ``redis_sentinels`` (a list of ``{host, port}``) the master named
    ``redis_sentinel_master_name`` is asked of those Sentinels (with
    ``redis_sentinel_password``, Sentinel's default user: no username) and asked again after a
    connection error, so a failover during the migration is followed; ``redis_host`` and
    ``redis_port`` are then not used. TLS (``redis_tls``, ``redis_ca_file``) applies to the
    Sentinels and to the data nodes alike.
    """
    import redis  # the module reports a missing redis-py before calling this

    timeouts = {
        "socket_connect_timeout": params["socket_connect_timeout"],
        "socket_timeout": params["socket_timeout"],
    }
    tls: dict[str, Any] = {}
    if params["redis_tls"]:
        tls = {
            "ssl": True,
            "ssl_ca_certs": params["redis_ca_file"],
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
        }
    sentinels = params.get("redis_sentinels") or []
    if not sentinels:
        return redis.Redis(
            host=params["redis_host"],
            port=params["redis_port"],
            username=params["redis_username"],
            password=params["redis_password"],
            db=params["redis_db"],
            **timeouts,
            **(tls or {"ssl": False, "ssl_cert_reqs": "required"}),
        )
    if sentinel_class is None:
        from redis.sentinel import Sentinel as sentinel_class
    sentinel_kwargs: dict[str, Any] = {**timeouts, **tls}
    if params.get("redis_sentinel_password"):
        sentinel_kwargs["password"] = params["redis_sentinel_password"]
    addresses = [(str(s["host"]), int(s.get("port") or 26379)) for s in sentinels]
    sentinel = sentinel_class(addresses, sentinel_kwargs=sentinel_kwargs, **timeouts)
    return sentinel.master_for(
        params.get("redis_sentinel_master_name") or "gitlab-redis",
        username=params["redis_username"],
        password=params["redis_password"],
        db=params["redis_db"],
        **timeouts,
        **tls,
    )
