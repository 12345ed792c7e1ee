#!/usr/bin/env python3
"""Sidekiq metrics and health servers for one worker node (sidekiq-fleet).

Reads Sidekiq's own bookkeeping in Redis (the keys Sidekiq 6-8 maintain) and serves:

- metrics (default 127.0.0.1:8082, ``/metrics``, Prometheus text format, optionally HTTPS only),
  of two scopes:

  * ``sidekiq_process_*``: this node's own Sidekiq processes (the heartbeats whose hostname is
    this host's), labelled ``hostname``, ``tag`` (sidekiq@N), ``pid`` and ``process`` (Sidekiq's
    identity): busy threads, concurrency, heartbeat age, quiet, RSS; and ``sidekiq_process_up``
    per expected tag. Each process appears on one exporter only, so sums across nodes are right.
  * ``sidekiq_cluster_*``: what Sidekiq keeps for the whole Redis: queue sizes and latencies,
    the processed/failed counters (``stat:processed``, ``stat:failed``), the retry, scheduled
    and dead sets, the heartbeating processes, labelled ``redis`` (``host:port/db``, or
    ``sentinel:MASTER/db`` through Sentinel, the same before and after a failover). Every
    exporter of one Redis reads the same keys and exports the same values (so the alerts do not
    go blind when one node does): aggregate with ``max by (redis)``, then ``sum`` over Redis
    shards, never ``sum`` over nodes.

  Sidekiq keeps no per-process or per-node processed/failed counts in Redis (each process adds
  its counts to the cluster-wide ``stat:*`` keys at every heartbeat): this exporter has none;
- health (default 127.0.0.1:8092): ``/liveness`` (200 while this server runs) and
  ``/readiness`` (200 when every expected local process heartbeats, 503 otherwise).

Each connection gets its own thread, at most ``max_connections`` per server at once (more are
closed at once); the TLS handshake runs on that thread with a timeout and the request must
arrive within ``request_timeout``, so silent or idle clients cannot hold the server. A malformed
heartbeat in Redis is skipped and counted (``sidekiq_exporter_bad_heartbeats``); an unexpected
error answers 500 ``internal error`` and goes to the log only. Listen addresses may be IPv4,
IPv6 (``::1`` or ``[::1]``) or names.

With ``SIDEKIQ_REDIS_SENTINELS`` set (``host:port,host:port``), the exporter asks those
Sentinels for the master ``SIDEKIQ_REDIS_SENTINEL_MASTER`` (password
``SIDEKIQ_REDIS_SENTINEL_PASSWORD``) and follows it through a failover; the host and port of
``SIDEKIQ_REDIS_URL`` are then not used (its scheme still says whether TLS is on).

Settings come from the environment (see ``Settings.from_env``); the role renders them.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import logging
import math
import os
import signal
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis
import redis.sentinel
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

LOG = logging.getLogger("sidekiq-exporter")


_WILDCARDS = {"", "0.0.0.0", "::"}


def listen_host(address: str) -> str:
    """The host part of a listen address: IPv6 literals may come in brackets ([::1])."""
    address = address.strip()
    if address.startswith("[") and address.endswith("]"):
        return address[1:-1]
    return address


def address_family(host: str) -> socket.AddressFamily:
    """AF_INET6 for IPv6 literals (and names that resolve to IPv6 only), AF_INET otherwise."""
    try:
        return (
            socket.AF_INET6
            if ipaddress.ip_address(host.split("%", 1)[0]).version == 6
            else socket.AF_INET
        )
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return socket.AF_INET  # bind() will report the bad name
    families = [info[0] for info in infos]
    return socket.AF_INET if socket.AF_INET in families or not families else families[0]


def redis_label(url: str) -> str:
    """Which Redis the cluster-wide series describe (``host:port/db``, never the credentials):
    nodes on different Redis shards export different clusters, told apart by this label."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "unix":
        db = urllib.parse.parse_qs(parsed.query).get("db", ["0"])[0]
        return f"{parsed.path}/{db}"
    host = parsed.hostname or "127.0.0.1"
    try:
        port = parsed.port or 6379
    except ValueError:
        port = 6379
    db = parsed.path.strip("/") or urllib.parse.parse_qs(parsed.query).get("db", ["0"])[0]
    return f"{'[' + host + ']' if ':' in host else host}:{port}/{db}"


def sentinel_label(master: str, db: int) -> str:
    """The ``redis`` label through Sentinel: the master's name, not its address, so the series
    stay the same series when Sentinel promotes a replica."""
    return f"sentinel:{master}/{db}"


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` (IPv6 as ``[::1]:26379``; port 26379 when left out)."""
    sentinels: list[tuple[str, int]] = []
    for item in value.replace(" ", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":")
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        else:  # a bare host name or an IPv6 literal without brackets
            host, port = item, ""
        if not host:
            raise ValueError(f"SIDEKIQ_REDIS_SENTINELS: {item!r} has no host")
        try:
            number = int(port) if port else 26379
        except ValueError:
            raise ValueError(f"SIDEKIQ_REDIS_SENTINELS: {item!r} has no valid port") from None
        if not 0 < number < 65536:
            raise ValueError(f"SIDEKIQ_REDIS_SENTINELS: {item!r} has no valid port")
        sentinels.append((host, number))
    return tuple(sentinels)


def _url_db(url: str) -> int:
    parsed = urllib.parse.urlsplit(url)
    db = parsed.path.strip("/") if parsed.scheme != "unix" else ""
    db = db or urllib.parse.parse_qs(parsed.query).get("db", ["0"])[0]
    try:
        return int(db)
    except ValueError:
        return 0


def _url_host(address: str) -> str:
    host = listen_host(address)
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Settings:
    """What the exporter needs to know; every field has an environment variable."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_username: str | None = None
    redis_password: str | None = None
    redis_ca_file: str | None = None
    # Sentinel mode when non-empty: (host, port) of each Sentinel; the master is asked of them.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "gitlab-redis"
    redis_sentinel_password: str | None = None
    # The database through Sentinel; None: the one in redis_url (0 when it names none). Without
    # Sentinel the URL's database is used, as before.
    redis_db: int | None = None
    hostname: str = field(default_factory=socket.gethostname)
    # Tags of the Sidekiq processes that must run here (sidekiq@0, sidekiq@1, ...); empty means
    # "whatever runs here, at least one".
    expected_tags: tuple[str, ...] = ()
    heartbeat_max_age: float = 20.0
    metrics_enabled: bool = True
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 8082
    tls_cert: str | None = None
    tls_key: str | None = None
    health_enabled: bool = True
    health_address: str = "127.0.0.1"
    health_port: int = 8092
    # Connections served at once, per server; further ones are closed at once.
    max_connections: int = 32
    # Seconds a client gets for the TLS handshake, and then to send its whole request.
    handshake_timeout: float = 5.0
    request_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def flag(name: str, default: bool) -> bool:
            value = env.get(name, "").strip().lower()
            return default if not value else value in {"1", "true", "yes", "on"}

        tags = tuple(
            t for t in env.get("SIDEKIQ_EXPORTER_EXPECTED_TAGS", "").replace(",", " ").split() if t
        )
        settings = cls(
            redis_url=env.get("SIDEKIQ_REDIS_URL", cls.redis_url),
            redis_username=env.get("SIDEKIQ_REDIS_USERNAME") or None,
            redis_password=env.get("SIDEKIQ_REDIS_PASSWORD") or None,
            redis_ca_file=env.get("SIDEKIQ_REDIS_CA_FILE") or None,
            redis_sentinels=parse_sentinels(env.get("SIDEKIQ_REDIS_SENTINELS", "")),
            redis_sentinel_master=(
                env.get("SIDEKIQ_REDIS_SENTINEL_MASTER") or cls.redis_sentinel_master
            ),
            redis_sentinel_password=env.get("SIDEKIQ_REDIS_SENTINEL_PASSWORD") or None,
            redis_db=int(env["SIDEKIQ_REDIS_DB"]) if env.get("SIDEKIQ_REDIS_DB") else None,
            hostname=env.get("SIDEKIQ_EXPORTER_HOSTNAME") or socket.gethostname(),
            expected_tags=tags,
            heartbeat_max_age=float(
                env.get("SIDEKIQ_HEALTH_HEARTBEAT_MAX_AGE", cls.heartbeat_max_age)
            ),
            metrics_enabled=flag("SIDEKIQ_METRICS_ENABLED", True),
            metrics_address=env.get("SIDEKIQ_METRICS_ADDRESS", cls.metrics_address),
            metrics_port=int(env.get("SIDEKIQ_METRICS_PORT", cls.metrics_port)),
            tls_cert=env.get("SIDEKIQ_EXPORTER_TLS_CERT") or None,
            tls_key=env.get("SIDEKIQ_EXPORTER_TLS_KEY") or None,
            health_enabled=flag("SIDEKIQ_HEALTH_CHECKS_ENABLED", True),
            health_address=env.get("SIDEKIQ_HEALTH_CHECKS_ADDRESS", cls.health_address),
            health_port=int(env.get("SIDEKIQ_HEALTH_CHECKS_PORT", cls.health_port)),
            max_connections=int(env.get("SIDEKIQ_EXPORTER_MAX_CONNECTIONS") or cls.max_connections),
            handshake_timeout=float(
                env.get("SIDEKIQ_EXPORTER_TLS_HANDSHAKE_TIMEOUT") or cls.handshake_timeout
            ),
            request_timeout=float(
                env.get("SIDEKIQ_EXPORTER_REQUEST_TIMEOUT") or cls.request_timeout
            ),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError(
                "TLS needs both SIDEKIQ_EXPORTER_TLS_CERT and SIDEKIQ_EXPORTER_TLS_KEY "
                "(role: sidekiq_exporter_tls_cert_path and sidekiq_exporter_tls_key_path)"
            )
        if self.max_connections < 1:
            raise ValueError("SIDEKIQ_EXPORTER_MAX_CONNECTIONS must be at least 1")
        if self.handshake_timeout <= 0 or self.request_timeout <= 0:
            raise ValueError(
                "SIDEKIQ_EXPORTER_TLS_HANDSHAKE_TIMEOUT and SIDEKIQ_EXPORTER_REQUEST_TIMEOUT "
                "must be positive"
            )
        metrics_host = listen_host(self.metrics_address)
        health_host = listen_host(self.health_address)
        if (
            self.metrics_enabled
            and self.health_enabled
            and self.metrics_port == self.health_port
            and (metrics_host == health_host or {metrics_host, health_host} & _WILDCARDS)
        ):
            raise ValueError(
                f"metrics and health servers both want port {self.metrics_port}; give them "
                "different ports (fleet_sidekiq_metrics_port, fleet_sidekiq_health_checks_port)"
            )

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def database(self) -> int:
        return self.redis_db if self.redis_db is not None else _url_db(self.redis_url)

    @property
    def redis_tls(self) -> bool:
        """TLS to Redis (and to Sentinel): a rediss:// URL, or a CA file to verify against."""
        return self.redis_url.startswith("rediss://") or bool(self.redis_ca_file)

    @property
    def redis_label(self) -> str:
        if self.redis_sentinels:
            return sentinel_label(self.redis_sentinel_master, self.database)
        return redis_label(self.redis_url)


def redis_client(
    settings: Settings, sentinel_class: Callable[..., Any] | None = None
) -> redis.Redis:
    """The Redis client of these settings: straight to the URL, or to the master that the
    Sentinels name (redis-py asks them again after a connection error: a failover is followed).
    """
    timeouts: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}
    verify: dict[str, Any] = {"ssl_ca_certs": settings.redis_ca_file, "ssl_cert_reqs": "required"}
    if not settings.redis_sentinels:
        return redis.Redis.from_url(
            settings.redis_url,
            username=settings.redis_username,
            password=settings.redis_password,
            **timeouts,
            **(verify if settings.redis_url.startswith("rediss://") else {}),
        )
    tls: dict[str, Any] = {"ssl": True, **verify} if settings.redis_tls else {}
    sentinel_kwargs: dict[str, Any] = {**timeouts, **tls}
    if settings.redis_sentinel_password:
        # Sentinel's default user: a password, no username.
        sentinel_kwargs["password"] = settings.redis_sentinel_password
    sentinel = (sentinel_class or redis.sentinel.Sentinel)(
        list(settings.redis_sentinels), sentinel_kwargs=sentinel_kwargs, **timeouts
    )
    return sentinel.master_for(
        settings.redis_sentinel_master,
        username=settings.redis_username,
        password=settings.redis_password,
        db=settings.database,
        **timeouts,
        **tls,
    )


@dataclass(frozen=True)
class ProcessState:
    """One Sidekiq process as its heartbeat in Redis describes it."""

    identity: str
    hostname: str
    pid: int
    tag: str
    queues: tuple[str, ...]
    concurrency: int
    busy: int
    beat: float
    quiet: bool
    # Resident memory in KiB as the process last reported it (VmRSS); None when not reported.
    rss_kb: int | None = None

    def heartbeat_age(self, now: float) -> float:
        return max(0.0, now - self.beat)


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape reads from Redis."""

    queue_sizes: dict[str, int]
    queue_latencies: dict[str, float]
    processed: int | None  # None when the stat key holds garbage
    failed: int | None
    retry_size: int
    scheduled_size: int
    dead_size: int
    processes: tuple[ProcessState, ...]
    taken_at: float
    # Process hashes in Redis that could not be read (garbage fields); skipped.
    bad_heartbeats: int = 0

    def local_processes(self, hostname: str) -> list[ProcessState]:
        return [p for p in self.processes if p.hostname == hostname]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _count(name: str, value: Any) -> int | None:
    """A Sidekiq stat counter; None (metric left out) when the key holds garbage."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        LOG.warning("Redis key %s holds %r, not a number; leaving it out", name, value[:40])
        return None


def _process_state(
    identity: str, info: Any, busy: Any, beat: Any, quiet: Any, rss: Any = None
) -> ProcessState:
    """One heartbeat hash as Sidekiq writes it; ValueError/TypeError when it is malformed."""
    if info is None or beat is None:
        raise ValueError("info or beat missing")
    data = json.loads(info)
    if not isinstance(data, dict):
        raise ValueError("info is not a JSON object")
    if "hostname" not in data or "pid" not in data:
        raise ValueError("info has no hostname or pid")
    queues = data.get("queues") or []
    if not isinstance(queues, list):
        raise ValueError("info's queues is not a list")
    beat_at = float(beat)
    if not math.isfinite(beat_at):
        raise ValueError("beat is not a finite number")
    return ProcessState(
        identity=identity,
        hostname=str(data["hostname"]),
        pid=int(data["pid"]),
        tag=str(data.get("tag") or ""),
        queues=tuple(dict.fromkeys(str(q) for q in queues)),
        concurrency=int(data.get("concurrency") or 0),
        busy=int(busy or 0),
        beat=beat_at,
        quiet=_text(quiet or "false") == "true",
        rss_kb=_rss_kb(rss),
    )


def _rss_kb(value: Any) -> int | None:
    """The heartbeat's rss field (KiB); None when missing or not a number (the process counts)."""
    try:
        return None if value is None else max(0, int(value))
    except (TypeError, ValueError):
        return None


# Identities already reported as malformed (each is logged once, not on every scrape).
_reported_bad: set[str] = set()


def _enqueued_at_seconds(value: Any) -> float | None:
    """Sidekiq < 8 stores seconds (float); Sidekiq 8 stores milliseconds (integer)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1000.0 if number > 1e11 else number


def read_snapshot(client: redis.Redis, now: float | None = None) -> Snapshot:
    """Read queues, stats, sets and process heartbeats with two round trips."""
    now = time.time() if now is None else now
    queues = sorted(_text(q) for q in client.smembers("queues"))
    # Keys are looked up as Redis returned them (bytes): a name that is not UTF-8 still works.
    raw_identities = sorted(client.smembers("processes"))

    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(f"queue:{queue}")
        pipe.lrange(f"queue:{queue}", -1, -1)  # oldest job: Sidekiq pushes left, fetches right
    pipe.get("stat:processed")
    pipe.get("stat:failed")
    pipe.zcard("retry")
    pipe.zcard("schedule")
    pipe.zcard("dead")
    for raw in raw_identities:
        pipe.hmget(raw, "info", "busy", "beat", "quiet", "rss")
    results = pipe.execute()

    sizes: dict[str, int] = {}
    latencies: dict[str, float] = {}
    for i, queue in enumerate(queues):
        sizes[queue] = int(results[2 * i])
        oldest = results[2 * i + 1]
        latency = 0.0
        if oldest:
            try:
                enqueued = _enqueued_at_seconds(json.loads(oldest[0]).get("enqueued_at"))
            except (ValueError, AttributeError):
                enqueued = None
            if enqueued is not None:
                latency = max(0.0, now - enqueued)
        latencies[queue] = latency
    offset = 2 * len(queues)
    processed, failed, retry_size, scheduled_size, dead_size = results[offset : offset + 5]

    processes: list[ProcessState] = []
    bad = 0
    for raw, (info, busy, beat, quiet, rss) in zip(
        raw_identities, results[offset + 5 :], strict=True
    ):
        identity = _text(raw)
        if info is None and beat is None:
            continue  # heartbeat expired (process gone); Sidekiq prunes the set later
        try:
            processes.append(_process_state(identity, info, busy, beat, quiet, rss))
        except (ValueError, TypeError, OverflowError) as exc:
            bad += 1
            if identity not in _reported_bad:
                if len(_reported_bad) > 1000:
                    _reported_bad.clear()
                _reported_bad.add(identity)
                LOG.warning("skipping malformed Sidekiq heartbeat %r: %s", identity[:200], exc)
    return Snapshot(
        queue_sizes=sizes,
        queue_latencies=latencies,
        processed=_count("stat:processed", processed),
        failed=_count("stat:failed", failed),
        retry_size=int(retry_size),
        scheduled_size=int(scheduled_size),
        dead_size=int(dead_size),
        processes=tuple(processes),
        taken_at=now,
        bad_heartbeats=bad,
    )


@dataclass(frozen=True)
class Readiness:
    ready: bool
    processes: dict[str, dict[str, Any]]
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ready else "failed",
            "reason": self.reason,
            "processes": self.processes,
        }


def readiness(snapshot: Snapshot, settings: Settings) -> Readiness:
    """Ready when every expected local process (by tag) has a fresh heartbeat.

    Several heartbeats may carry the same tag for a while (a process killed with SIGKILL leaves
    its last heartbeat for up to 60 s): the freshest one counts.
    """
    now = snapshot.taken_at
    freshest: dict[str, ProcessState] = {}
    for process in snapshot.local_processes(settings.hostname):
        best = freshest.get(process.tag)
        if best is None or process.beat > best.beat:
            freshest[process.tag] = process
    tags = list(settings.expected_tags) or sorted(freshest)
    report: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for tag in tags:
        found = freshest.get(tag)
        if found is None:
            report[tag] = {"status": "missing"}
            problems.append(f"{tag or 'untagged process'}: no heartbeat")
            continue
        age = found.heartbeat_age(now)
        fresh = age <= settings.heartbeat_max_age
        report[tag] = {
            "status": "ok" if fresh else "stale",
            "pid": found.pid,
            "heartbeat_age_seconds": round(age, 3),
            "busy": found.busy,
            "quiet": found.quiet,
        }
        if not fresh:
            problems.append(
                f"{tag}: last heartbeat {age:.1f} s ago (limit {settings.heartbeat_max_age:g} s)"
            )
    if not tags:
        problems.append(f"no Sidekiq process heartbeats from {settings.hostname}")
    return Readiness(ready=not problems, processes=report, reason="; ".join(problems))


class SidekiqCollector:
    """prometheus_client collector: one Redis snapshot per scrape."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.redis = settings.redis_label

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up = GaugeMetricFamily("sidekiq_exporter_redis_up", "1 when the exporter could read Redis.")
        try:
            snapshot = read_snapshot(self.client)
        except redis.RedisError as exc:
            LOG.warning("reading Sidekiq's state from Redis failed: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._cluster(snapshot)
        yield from self._processes(snapshot)
        yield GaugeMetricFamily(
            "sidekiq_exporter_bad_heartbeats",
            "Sidekiq process heartbeats in Redis the exporter could not read (skipped).",
            value=snapshot.bad_heartbeats,
        )
        duration = GaugeMetricFamily(
            "sidekiq_exporter_scrape_duration_seconds", "Time the exporter took to read Redis."
        )
        duration.add_metric([], time.monotonic() - started)
        yield duration

    def describe(self) -> list[Metric]:
        return []  # collected fresh on every scrape

    def _cluster(self, snapshot: Snapshot) -> Iterator[Metric]:
        """Sidekiq's state of the whole Redis: the same on every exporter of that Redis."""
        same = (
            " Cluster-wide: every exporter of this Redis exports the same value;"
            " aggregate with max by (redis), then sum over redis."
        )
        redis_ = [self.redis]
        size = GaugeMetricFamily(
            "sidekiq_cluster_queue_size",
            "Jobs waiting in the queue." + same,
            labels=["redis", "queue"],
        )
        latency = GaugeMetricFamily(
            "sidekiq_cluster_queue_latency_seconds",
            "Age of the oldest job waiting in the queue (0 when empty)." + same,
            labels=["redis", "queue"],
        )
        for queue in sorted(snapshot.queue_sizes):
            size.add_metric([*redis_, queue], snapshot.queue_sizes[queue])
            latency.add_metric([*redis_, queue], snapshot.queue_latencies[queue])
        yield size
        yield latency
        if snapshot.processed is not None:
            processed = CounterMetricFamily(
                "sidekiq_cluster_jobs_processed",
                "Jobs processed by all Sidekiq processes of this Redis (stat:processed)." + same,
                labels=["redis"],
            )
            processed.add_metric(redis_, snapshot.processed)
            yield processed
        if snapshot.failed is not None:
            failed = CounterMetricFamily(
                "sidekiq_cluster_jobs_failed",
                "Job executions that raised, all processes of this Redis (stat:failed)." + same,
                labels=["redis"],
            )
            failed.add_metric(redis_, snapshot.failed)
            yield failed
        for name, value, text in (
            ("sidekiq_cluster_retry_set_size", snapshot.retry_size, "Jobs waiting for a retry."),
            (
                "sidekiq_cluster_scheduled_set_size",
                snapshot.scheduled_size,
                "Jobs scheduled for later.",
            ),
            ("sidekiq_cluster_dead_set_size", snapshot.dead_size, "Jobs that ran out of retries."),
            (
                "sidekiq_cluster_processes",
                len(snapshot.processes),
                "Sidekiq processes heartbeating, on every node.",
            ),
        ):
            gauge = GaugeMetricFamily(name, text + same, labels=["redis"])
            gauge.add_metric(redis_, value)
            yield gauge

    def _processes(self, snapshot: Snapshot) -> Iterator[Metric]:
        """This node's own processes: each one is exported by one exporter only."""
        labels = ["hostname", "tag", "pid", "process"]
        busy = GaugeMetricFamily(
            "sidekiq_process_busy_threads",
            "Threads of this node's process running a job.",
            labels=labels,
        )
        concurrency = GaugeMetricFamily(
            "sidekiq_process_concurrency", "Threads of this node's process.", labels=labels
        )
        age = GaugeMetricFamily(
            "sidekiq_process_heartbeat_age_seconds",
            "Seconds since this node's process last heartbeat.",
            labels=labels,
        )
        quiet = GaugeMetricFamily(
            "sidekiq_process_quiet", "1 when this node's process is quiet (TSTP).", labels=labels
        )
        rss = GaugeMetricFamily(
            "sidekiq_process_rss_bytes",
            "Resident memory of this node's process at its last heartbeat.",
            labels=labels,
        )
        for process in sorted(
            snapshot.local_processes(self.settings.hostname), key=lambda p: (p.tag, p.pid)
        ):
            key = [process.hostname, process.tag, str(process.pid), process.identity]
            busy.add_metric(key, process.busy)
            concurrency.add_metric(key, process.concurrency)
            age.add_metric(key, process.heartbeat_age(snapshot.taken_at))
            quiet.add_metric(key, 1 if process.quiet else 0)
            if process.rss_kb is not None:
                rss.add_metric(key, process.rss_kb * 1024)
        yield from (busy, concurrency, age, quiet, rss)
        state = readiness(snapshot, self.settings)
        up = GaugeMetricFamily(
            "sidekiq_process_up",
            "1 when the expected process of this node heartbeats in time.",
            labels=["hostname", "tag"],
        )
        for tag, report in sorted(state.processes.items()):
            up.add_metric([self.settings.hostname, tag], 1 if report["status"] == "ok" else 0)
        yield up


class _DeadlineReader(io.RawIOBase):
    """Reads from a socket until a deadline: a client dripping bytes cannot hold a thread."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


def _handler(
    routes: dict[str, Callable[[], tuple[int, str, bytes]]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sidekiq-exporter"
        server: _Server

        def setup(self) -> None:
            super().setup()
            deadline = time.monotonic() + self.server.request_timeout
            self.rfile.close()  # an open makefile() would keep the socket from closing
            self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))

        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                status, content_type, body = 404, "text/plain", b"not found\n"
            else:
                try:
                    status, content_type, body = route()
                except Exception:  # a scrape must never kill the server, nor show internals
                    LOG.exception("request %s failed", self.path)
                    status, content_type, body = 500, "text/plain", b"internal error\n"
            self.connection.settimeout(self.server.request_timeout)  # for the answer
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug("%s " + format, self.address_string(), *args)

    return Handler


class _Server(ThreadingHTTPServer):
    """One listener: IPv4 or IPv6 by its address, TLS per connection, bounded threads."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: str,
        port: int,
        handler: type[BaseHTTPRequestHandler],
        *,
        tls_context: ssl.SSLContext | None,
        max_connections: int,
        handshake_timeout: float,
        request_timeout: float,
    ) -> None:
        host = listen_host(address)
        self.address_family = address_family(host)
        self.tls_context = tls_context
        self.handshake_timeout = handshake_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0  # connections closed at the limit since the last warning
        self.refused_logged_at = -math.inf
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also asks DNS for the address's name, which nothing here uses.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def process_request(self, request: Any, client_address: Any) -> None:
        """Runs in the accept loop: must never block. Beyond the cap, close at once."""
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            self.refused += 1
            now = time.monotonic()
            if now - self.refused_logged_at >= 60:  # a flood must not flood the journal too
                LOG.warning(
                    "port %s: %s connections open (the limit), closed %s more (last from %s)",
                    self.server_port,
                    self.max_connections,
                    self.refused,
                    client_address[0],
                )
                self.refused, self.refused_logged_at = 0, now
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Runs on the connection's thread: TLS handshake (bounded), then the request."""
        connection = request
        try:
            connection.settimeout(self.handshake_timeout)
            if self.tls_context is not None:
                connection = self.tls_context.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                connection.do_handshake()
            connection.settimeout(self.request_timeout)
            self.finish_request(connection, client_address)
        except (OSError, ssl.SSLError) as exc:  # timeouts, resets, bad handshakes, scanners
            LOG.debug("connection from %s dropped: %s", client_address[0], exc)
        except Exception:
            LOG.exception("connection from %s failed", client_address[0])
        finally:
            try:
                self.shutdown_request(connection)
            finally:
                self.slots.release()


class Exporter:
    """Both servers of one node; start() runs them on threads, stop() shuts them down."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or redis_client(settings)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SidekiqCollector(self.client, settings))
        self.servers: list[_Server] = []

    def metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def liveness(self) -> tuple[int, str, bytes]:
        return 200, "application/json", b'{"status": "ok"}\n'

    def readiness(self) -> tuple[int, str, bytes]:
        try:
            state = readiness(read_snapshot(self.client), self.settings)
        except redis.RedisError as exc:  # the details (addresses) go to the log only
            LOG.warning("readiness: reading Sidekiq's state from Redis failed: %s", exc)
            reason = f"Redis: {type(exc).__name__} (details in the exporter's log)"
            body = {"status": "failed", "reason": reason, "processes": {}}
            return 503, "application/json", (json.dumps(body) + "\n").encode()
        return (
            (200 if state.ready else 503),
            "application/json",
            (json.dumps(state.to_dict()) + "\n").encode(),
        )

    def _server(
        self,
        address: str,
        port: int,
        routes: dict[str, Callable[[], tuple[int, str, bytes]]],
        tls_context: ssl.SSLContext | None = None,
    ) -> _Server:
        return _Server(
            address,
            port,
            _handler(routes),
            tls_context=tls_context,
            max_connections=self.settings.max_connections,
            handshake_timeout=self.settings.handshake_timeout,
            request_timeout=self.settings.request_timeout,
        )

    def start(self) -> None:
        if self.settings.metrics_enabled:
            context = None
            if self.settings.tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(self.settings.tls_cert or "", self.settings.tls_key or "")
            self.servers.append(
                self._server(
                    self.settings.metrics_address,
                    self.settings.metrics_port,
                    {"/metrics": self.metrics},
                    context,
                )
            )
        if self.settings.health_enabled:
            self.servers.append(
                self._server(
                    self.settings.health_address,
                    self.settings.health_port,
                    {"/liveness": self.liveness, "/readiness": self.readiness},
                )
            )
        for server in self.servers:
            threading.Thread(
                target=server.serve_forever, name=f"http-{server.server_port}", daemon=True
            ).start()

    @property
    def ports(self) -> list[int]:
        return [server.server_port for server in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default=os.environ.get("SIDEKIQ_EXPORTER_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(message)s")
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as exc:
        LOG.error("%s", exc)
        return 2
    exporter = Exporter(settings)
    exporter.start()
    LOG.info(
        "metrics on %s://%s:%s/metrics, health on http://%s:%s/{liveness,readiness}, expecting %s",
        "https" if settings.tls else "http",
        _url_host(settings.metrics_address),
        settings.metrics_port,
        _url_host(settings.health_address),
        settings.health_port,
        ", ".join(settings.expected_tags) or "any local process",
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    exporter.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
