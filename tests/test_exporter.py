"""The Sidekiq metrics and health servers (roles/sidekiq/files/sidekiq_exporter.py) against a
real redis-server holding the keys Sidekiq 6.4.1 writes (queues, stats, sets, heartbeats)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_helpers import free_port as _free_port
from redis_helpers import redis_server as start_redis

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "roles" / "sidekiq" / "files" / "sidekiq_exporter.py"
HOST = "worker-1"

_spec = importlib.util.spec_from_file_location("sidekiq_exporter", SOURCE)
assert _spec and _spec.loader
exporter = importlib.util.module_from_spec(_spec)
sys.modules["sidekiq_exporter"] = exporter
_spec.loader.exec_module(exporter)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[tuple[int, str]]:
    """A throwaway redis-server on a random loopback port, with an ACL user like the lab's."""
    password = "p@ss:w/rd#%?&+=!"
    acl = ["--user", "gitlab", "on", f">{password}", "~*", "&*", "+@all"]
    with start_redis(acl, username="gitlab", password=password) as port:
        yield port, password


@pytest.fixture
def client(redis_server: tuple[int, str]) -> Iterator[redis.Redis]:
    port, password = redis_server
    conn = redis.Redis(port=port, username="gitlab", password=password)
    conn.flushall()
    yield conn
    conn.close()


def settings(redis_server: tuple[int, str], **overrides) -> exporter.Settings:
    port, password = redis_server
    values = {
        "redis_url": f"redis://127.0.0.1:{port}/0",
        "redis_username": "gitlab",
        "redis_password": password,
        "hostname": HOST,
        "expected_tags": ("sidekiq@0", "sidekiq@1"),
        "heartbeat_max_age": 20.0,
        "metrics_port": 0,
        "health_port": 0,
    }
    values.update(overrides)
    return exporter.Settings(**values)


def sidekiq_process(
    conn: redis.Redis,
    host: str,
    tag: str,
    pid: int,
    *,
    beat: float,
    busy: int = 0,
    queues: tuple[str, ...] = ("default",),
    quiet: bool = False,
) -> str:
    """Write a heartbeat exactly as Sidekiq 6.4.1's Launcher#❤ does."""
    identity = f"{host}:{pid}:abcdef{pid}"
    info = {
        "hostname": host,
        "started_at": beat - 60,
        "pid": pid,
        "tag": tag,
        "concurrency": 5,
        "queues": list(queues),
        "labels": [],
        "identity": identity,
    }
    conn.sadd("processes", identity)
    conn.hset(
        identity,
        mapping={
            "info": json.dumps(info),
            "busy": busy,
            "beat": beat,
            "rtt_us": 120,
            "quiet": str(quiet).lower(),
            "rss": 51200,
        },
    )
    conn.expire(identity, 60)
    return identity


def enqueue(conn: redis.Redis, queue: str, enqueued_at: float, n: int = 1) -> None:
    """Sidekiq::Client: SADD queues, LPUSH queue:<name> (workers BRPOP from the right)."""
    conn.sadd("queues", queue)
    for i in range(n):
        job = {
            "class": "AuditEventWorker",
            "queue": queue,
            "jid": f"{queue}{i}",
            "args": [],
            "created_at": enqueued_at,
            "enqueued_at": enqueued_at + i,
        }
        conn.lpush(f"queue:{queue}", json.dumps(job))


def populated(conn: redis.Redis, now: float) -> None:
    enqueue(conn, "default", now - 30, n=3)
    enqueue(conn, "high-urgency", now - 2)
    conn.sadd("queues", "mailers")  # known queue, currently empty
    conn.set("stat:processed", 1234)
    conn.set("stat:failed", 7)
    conn.zadd("retry", {"r1": now + 10, "r2": now + 20})
    conn.zadd("schedule", {"s1": now + 60})
    conn.zadd("dead", {"d1": now - 100, "d2": now - 50, "d3": now - 10})
    sidekiq_process(conn, HOST, "sidekiq@0", 101, beat=now - 1, busy=3, queues=("high-urgency",))
    sidekiq_process(conn, HOST, "sidekiq@1", 102, beat=now - 2, queues=("default", "mailers"))
    sidekiq_process(conn, "worker-2", "sidekiq@0", 201, beat=now - 1)


def test_snapshot_reads_queues_stats_sets_and_heartbeats(client, redis_server):
    now = time.time()
    populated(client, now)
    snap = exporter.read_snapshot(client, now=now)
    assert snap.queue_sizes == {"default": 3, "high-urgency": 1, "mailers": 0}
    assert snap.queue_latencies["default"] == pytest.approx(30, abs=0.01)  # oldest job, not newest
    assert snap.queue_latencies["mailers"] == 0
    assert (snap.processed, snap.failed) == (1234, 7)
    assert (snap.retry_size, snap.scheduled_size, snap.dead_size) == (2, 1, 3)
    local = {p.tag: p for p in snap.local_processes(HOST)}
    assert set(local) == {"sidekiq@0", "sidekiq@1"}
    assert local["sidekiq@0"].busy == 3 and local["sidekiq@1"].queues == ("default", "mailers")


def test_sidekiq_8_millisecond_timestamps_give_the_same_latency(client):
    now = time.time()
    client.sadd("queues", "default")
    client.lpush("queue:default", json.dumps({"class": "X", "enqueued_at": int((now - 12) * 1000)}))
    assert exporter.read_snapshot(client, now=now).queue_latencies["default"] == pytest.approx(
        12, abs=0.01
    )


def test_ready_when_every_expected_local_process_heartbeats(client, redis_server):
    now = time.time()
    populated(client, now)
    state = exporter.readiness(exporter.read_snapshot(client, now=now), settings(redis_server))
    assert state.ready, state.reason
    assert state.processes["sidekiq@0"]["pid"] == 101


def test_not_ready_when_a_local_process_stops_heartbeating(client, redis_server):
    now = time.time()
    populated(client, now)
    sidekiq_process(client, HOST, "sidekiq@1", 102, beat=now - 45)  # stale beat of the same process
    state = exporter.readiness(exporter.read_snapshot(client, now=now), settings(redis_server))
    assert not state.ready
    assert state.processes["sidekiq@1"]["status"] == "stale"
    assert "sidekiq@1" in state.reason


def test_not_ready_when_an_expected_process_is_missing_even_if_another_host_has_it(
    client, redis_server
):
    now = time.time()
    sidekiq_process(client, HOST, "sidekiq@0", 101, beat=now)
    sidekiq_process(client, "worker-2", "sidekiq@1", 201, beat=now)
    state = exporter.readiness(exporter.read_snapshot(client, now=now), settings(redis_server))
    assert not state.ready and state.processes["sidekiq@1"] == {"status": "missing"}


def test_a_restarted_process_counts_even_while_the_killed_ones_heartbeat_lingers(
    client, redis_server
):
    now = time.time()
    sidekiq_process(client, HOST, "sidekiq@0", 101, beat=now)
    sidekiq_process(client, HOST, "sidekiq@1", 102, beat=now - 40)  # killed with SIGKILL
    sidekiq_process(client, HOST, "sidekiq@1", 150, beat=now - 1)  # its replacement
    state = exporter.readiness(exporter.read_snapshot(client, now=now), settings(redis_server))
    assert state.ready, state.reason
    assert state.processes["sidekiq@1"]["pid"] == 150


def test_expired_heartbeats_are_ignored(client, redis_server):
    client.sadd("processes", f"{HOST}:999:gone")  # set entry left behind, hash expired
    assert exporter.read_snapshot(client).processes == ()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def running(client, redis_server) -> Iterator[exporter.Exporter]:
    server = exporter.Exporter(settings(redis_server))
    server.start()
    yield server
    server.stop()


def test_metrics_endpoint_serves_prometheus_text(client, running):
    populated(client, time.time())
    metrics_port, _ = running.ports
    status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200
    assert 'sidekiq_queue_size{queue="default"} 3.0' in text
    assert 'sidekiq_queue_latency_seconds{queue="default"}' in text
    assert "sidekiq_jobs_processed_total 1234.0" in text
    assert "sidekiq_jobs_failed_total 7.0" in text
    assert "sidekiq_retry_set_size 2.0" in text and "sidekiq_scheduled_set_size 1.0" in text
    assert "sidekiq_dead_set_size 3.0" in text
    assert 'sidekiq_process_busy_threads{pid="101",tag="sidekiq@0"} 3.0' in text
    assert 'sidekiq_process_up{tag="sidekiq@1"} 1.0' in text
    assert 'pid="201"' not in text  # another host's process is not this node's
    assert "sidekiq_exporter_redis_up 1.0" in text
    assert _get(f"http://127.0.0.1:{metrics_port}/readiness")[0] == 404


def test_health_endpoints_follow_the_heartbeats(client, running):
    now = time.time()
    populated(client, now)
    _, health_port = running.ports
    assert _get(f"http://127.0.0.1:{health_port}/liveness")[0] == 200
    status, body = _get(f"http://127.0.0.1:{health_port}/readiness")
    assert status == 200 and json.loads(body)["status"] == "ok"
    client.delete(client.smembers("processes").pop())  # one heartbeat disappears
    for identity in list(client.smembers("processes")):
        client.hset(identity, "beat", now - 300)
    status, body = _get(f"http://127.0.0.1:{health_port}/readiness")
    assert status == 503 and json.loads(body)["status"] == "failed"


def test_redis_down_gives_503_and_redis_up_0(redis_server):
    dead = settings(redis_server, redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    server = exporter.Exporter(dead)
    server.start()
    try:
        metrics_port, health_port = server.ports
        assert (
            "sidekiq_exporter_redis_up 0.0" in _get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
        )
        assert _get(f"http://127.0.0.1:{health_port}/readiness")[0] == 503
        assert _get(f"http://127.0.0.1:{health_port}/liveness")[0] == 200
    finally:
        server.stop()


def test_settings_reject_same_port_and_half_tls():
    with pytest.raises(ValueError, match="different ports"):
        exporter.Settings.from_env(
            {"SIDEKIQ_METRICS_PORT": "8082", "SIDEKIQ_HEALTH_CHECKS_PORT": "8082"}
        )
    with pytest.raises(ValueError, match="TLS needs both"):
        exporter.Settings.from_env({"SIDEKIQ_EXPORTER_TLS_CERT": "/etc/ssl/cert.pem"})
    parsed = exporter.Settings.from_env(
        {
            "SIDEKIQ_EXPORTER_EXPECTED_TAGS": "sidekiq@0 sidekiq@1",
            "SIDEKIQ_METRICS_ENABLED": "false",
        }
    )
    assert parsed.expected_tags == ("sidekiq@0", "sidekiq@1") and not parsed.metrics_enabled


def test_metrics_over_tls_only(client, redis_server, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = exporter.Exporter(settings(redis_server, tls_cert=str(cert), tls_key=str(key)))
    server.start()
    try:
        metrics_port, _ = server.ports
        import ssl

        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with urllib.request.urlopen(
            f"https://127.0.0.1:{metrics_port}/metrics", context=context, timeout=5
        ) as r:
            assert r.status == 200 and b"sidekiq_exporter_redis_up 1.0" in r.read()
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    finally:
        server.stop()
