#!/usr/bin/env python3
"""Sidekiq metrics and health servers for one worker node (sidekiq-fleet).

Reads Sidekiq's own bookkeeping in Redis (the keys Sidekiq 6-8 maintain) and serves:

- metrics (default 127.0.0.1:8082, ``/metrics``, Prometheus text format, optionally HTTPS only):
  per-queue size and latency, processed/failed totals, retry/scheduled/dead set sizes, and
  for each Sidekiq process of this host its busy threads, concurrency and heartbeat age;
- health (default 127.0.0.1:8092): ``/liveness`` (200 while this server runs) and
  ``/readiness`` (200 when every expected local process heartbeats, 503 otherwise).

Settings come from the environment (see ``Settings.from_env``); the role renders them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

LOG = logging.getLogger("sidekiq-exporter")


@dataclass(frozen=True)
class Settings:
    """What the exporter needs to know; every field has an environment variable."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_username: str | None = None
    redis_password: str | None = None
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
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError(
                "TLS needs both SIDEKIQ_EXPORTER_TLS_CERT and SIDEKIQ_EXPORTER_TLS_KEY "
                "(role: sidekiq_exporter_tls_cert_path and sidekiq_exporter_tls_key_path)"
            )
        if (
            self.metrics_enabled
            and self.health_enabled
            and self.metrics_port == self.health_port
            and (
                self.metrics_address == self.health_address
                or "0.0.0.0" in (self.metrics_address, self.health_address)
            )
        ):
            raise ValueError(
                f"metrics and health servers both want port {self.metrics_port}; give them "
                "different ports (role: sidekiq_metrics_port, sidekiq_health_checks_port)"
            )

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)


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

    def heartbeat_age(self, now: float) -> float:
        return max(0.0, now - self.beat)


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape reads from Redis."""

    queue_sizes: dict[str, int]
    queue_latencies: dict[str, float]
    processed: int
    failed: int
    retry_size: int
    scheduled_size: int
    dead_size: int
    processes: tuple[ProcessState, ...]
    taken_at: float

    def local_processes(self, hostname: str) -> list[ProcessState]:
        return [p for p in self.processes if p.hostname == hostname]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
    identities = sorted(_text(i) for i in client.smembers("processes"))

    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(f"queue:{queue}")
        pipe.lrange(f"queue:{queue}", -1, -1)  # oldest job: Sidekiq pushes left, fetches right
    pipe.get("stat:processed")
    pipe.get("stat:failed")
    pipe.zcard("retry")
    pipe.zcard("schedule")
    pipe.zcard("dead")
    for identity in identities:
        pipe.hmget(identity, "info", "busy", "beat", "quiet")
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
    for identity, (info, busy, beat, quiet) in zip(identities, results[offset + 5 :], strict=True):
        if not info or beat is None:
            continue  # heartbeat expired (process gone); Sidekiq prunes the set later
        data = json.loads(info)
        processes.append(
            ProcessState(
                identity=identity,
                hostname=str(data.get("hostname", "")),
                pid=int(data.get("pid", 0)),
                tag=str(data.get("tag") or ""),
                queues=tuple(dict.fromkeys(data.get("queues", []))),
                concurrency=int(data.get("concurrency", 0)),
                busy=int(busy or 0),
                beat=float(beat),
                quiet=_text(quiet or "false") == "true",
            )
        )
    return Snapshot(
        queue_sizes=sizes,
        queue_latencies=latencies,
        processed=int(processed or 0),
        failed=int(failed or 0),
        retry_size=int(retry_size),
        scheduled_size=int(scheduled_size),
        dead_size=int(dead_size),
        processes=tuple(processes),
        taken_at=now,
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
        process = freshest.get(tag)
        if process is None:
            report[tag] = {"status": "missing"}
            problems.append(f"{tag or 'untagged process'}: no heartbeat")
            continue
        age = process.heartbeat_age(now)
        fresh = age <= settings.heartbeat_max_age
        report[tag] = {
            "status": "ok" if fresh else "stale",
            "pid": process.pid,
            "heartbeat_age_seconds": round(age, 3),
            "busy": process.busy,
            "quiet": process.quiet,
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
        yield from self._queues(snapshot)
        yield from self._totals(snapshot)
        yield from self._processes(snapshot)
        duration = GaugeMetricFamily(
            "sidekiq_exporter_scrape_duration_seconds", "Time the exporter took to read Redis."
        )
        duration.add_metric([], time.monotonic() - started)
        yield duration

    def describe(self) -> list[Metric]:
        return []  # collected fresh on every scrape

    @staticmethod
    def _queues(snapshot: Snapshot) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            "sidekiq_queue_size", "Jobs waiting in the queue.", labels=["queue"]
        )
        latency = GaugeMetricFamily(
            "sidekiq_queue_latency_seconds",
            "Age of the oldest job waiting in the queue (0 when empty).",
            labels=["queue"],
        )
        for queue in sorted(snapshot.queue_sizes):
            size.add_metric([queue], snapshot.queue_sizes[queue])
            latency.add_metric([queue], snapshot.queue_latencies[queue])
        yield size
        yield latency

    @staticmethod
    def _totals(snapshot: Snapshot) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "sidekiq_jobs_processed",
            "Jobs processed by the whole cluster (Sidekiq stat:processed).",
            value=snapshot.processed,
        )
        yield CounterMetricFamily(
            "sidekiq_jobs_failed",
            "Job executions that raised, cluster-wide (Sidekiq stat:failed).",
            value=snapshot.failed,
        )
        for name, value, text in (
            ("sidekiq_retry_set_size", snapshot.retry_size, "Jobs waiting for a retry."),
            ("sidekiq_scheduled_set_size", snapshot.scheduled_size, "Jobs scheduled for later."),
            ("sidekiq_dead_set_size", snapshot.dead_size, "Jobs that ran out of retries."),
            (
                "sidekiq_cluster_processes",
                len(snapshot.processes),
                "Sidekiq processes heartbeating.",
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)

    def _processes(self, snapshot: Snapshot) -> Iterator[Metric]:
        labels = ["tag", "pid"]
        busy = GaugeMetricFamily(
            "sidekiq_process_busy_threads", "Threads running a job.", labels=labels
        )
        concurrency = GaugeMetricFamily(
            "sidekiq_process_concurrency", "Threads of the process.", labels=labels
        )
        age = GaugeMetricFamily(
            "sidekiq_process_heartbeat_age_seconds",
            "Seconds since the process last heartbeat.",
            labels=labels,
        )
        quiet = GaugeMetricFamily(
            "sidekiq_process_quiet", "1 when the process is quiet (TSTP).", labels=labels
        )
        for process in sorted(
            snapshot.local_processes(self.settings.hostname), key=lambda p: (p.tag, p.pid)
        ):
            key = [process.tag, str(process.pid)]
            busy.add_metric(key, process.busy)
            concurrency.add_metric(key, process.concurrency)
            age.add_metric(key, process.heartbeat_age(snapshot.taken_at))
            quiet.add_metric(key, 1 if process.quiet else 0)
        yield from (busy, concurrency, age, quiet)
        state = readiness(snapshot, self.settings)
        up = GaugeMetricFamily(
            "sidekiq_process_up",
            "1 when the expected local process heartbeats in time.",
            labels=["tag"],
        )
        for tag, report in sorted(state.processes.items()):
            up.add_metric([tag], 1 if report["status"] == "ok" else 0)
        yield up


def _handler(
    routes: dict[str, Callable[[], tuple[int, str, bytes]]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sidekiq-exporter"

        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                status, content_type, body = 404, "text/plain", b"not found\n"
            else:
                try:
                    status, content_type, body = route()
                except Exception as exc:  # a scrape must never kill the server
                    LOG.exception("request %s failed", self.path)
                    status, content_type, body = 500, "text/plain", f"{exc}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug("%s " + format, self.address_string(), *args)

    return Handler


class Exporter:
    """Both servers of one node; start() runs them on threads, stop() shuts them down."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or redis.Redis.from_url(
            settings.redis_url,
            username=settings.redis_username,
            password=settings.redis_password,
            socket_timeout=5,
            socket_connect_timeout=5,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SidekiqCollector(self.client, settings))
        self.servers: list[ThreadingHTTPServer] = []

    def metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def liveness(self) -> tuple[int, str, bytes]:
        return 200, "application/json", b'{"status": "ok"}\n'

    def readiness(self) -> tuple[int, str, bytes]:
        try:
            state = readiness(read_snapshot(self.client), self.settings)
        except redis.RedisError as exc:
            body = {"status": "failed", "reason": f"Redis: {exc}", "processes": {}}
            return 503, "application/json", (json.dumps(body) + "\n").encode()
        return (
            (200 if state.ready else 503),
            "application/json",
            (json.dumps(state.to_dict()) + "\n").encode(),
        )

    def start(self) -> None:
        if self.settings.metrics_enabled:
            server = ThreadingHTTPServer(
                (self.settings.metrics_address, self.settings.metrics_port),
                _handler({"/metrics": self.metrics}),
            )
            if self.settings.tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(self.settings.tls_cert or "", self.settings.tls_key or "")
                server.socket = context.wrap_socket(server.socket, server_side=True)
            self.servers.append(server)
        if self.settings.health_enabled:
            self.servers.append(
                ThreadingHTTPServer(
                    (self.settings.health_address, self.settings.health_port),
                    _handler({"/liveness": self.liveness, "/readiness": self.readiness}),
                )
            )
        for server in self.servers:
            server.daemon_threads = True
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
        settings.metrics_address,
        settings.metrics_port,
        settings.health_address,
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
