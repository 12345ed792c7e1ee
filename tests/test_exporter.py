"""The Sidekiq metrics and health servers (roles/sidekiq_exporter/files/sidekiq_exporter.py)
against a real redis-server holding the keys Sidekiq 6.4.1 writes (queues, stats, sets,
heartbeats)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import jinja2
import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis_helpers import free_port as _free_port
from redis_helpers import redis_server as start_redis

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "roles" / "sidekiq_exporter" / "files" / "sidekiq_exporter.py"
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


def test_metrics_endpoint_serves_prometheus_text(client, redis_server, running):
    populated(client, time.time())
    metrics_port, _ = running.ports
    status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200
    r = f'redis="127.0.0.1:{redis_server[0]}/0"'  # which Redis (shard) the cluster is
    assert f'sidekiq_cluster_queue_size{{queue="default",{r}}} 3.0' in text
    assert f'sidekiq_cluster_queue_latency_seconds{{queue="default",{r}}}' in text
    assert f"sidekiq_cluster_jobs_processed_total{{{r}}} 1234.0" in text
    assert f"sidekiq_cluster_jobs_failed_total{{{r}}} 7.0" in text
    assert f"sidekiq_cluster_retry_set_size{{{r}}} 2.0" in text
    assert f"sidekiq_cluster_scheduled_set_size{{{r}}} 1.0" in text
    assert f"sidekiq_cluster_dead_set_size{{{r}}} 3.0" in text
    assert f"sidekiq_cluster_processes{{{r}}} 3.0" in text
    assert (
        f'sidekiq_process_busy_threads{{hostname="{HOST}",pid="101",'
        f'process="{HOST}:101:abcdef101",tag="sidekiq@0"}} 3.0'
    ) in text
    assert f'sidekiq_process_rss_bytes{{hostname="{HOST}",pid="101",' in text
    assert f'sidekiq_process_up{{hostname="{HOST}",tag="sidekiq@1"}} 1.0' in text
    assert 'pid="201"' not in text  # another host's process is not this node's
    assert "sidekiq_exporter_redis_up 1.0" in text
    assert _get(f"http://127.0.0.1:{metrics_port}/readiness")[0] == 404


def scrape(conn: redis.Redis, redis_server, host: str) -> dict[str, dict[tuple, float]]:
    """One scrape of the exporter of node ``host``: {metric: {sorted label pairs: value}}."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter.SidekiqCollector(conn, settings(redis_server, hostname=host)))
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_each_node_exports_its_own_processes_and_the_cluster_once_per_name(client, redis_server):
    """Issue 14 item 6: two nodes on one Redis. Per-process series come from the node whose
    processes they are, so their sum over the nodes is the fleet's; Sidekiq's stat:processed and
    stat:failed are cluster-wide, so both nodes export them as sidekiq_cluster_*, never under a
    name that reads as the node's own."""
    now = time.time()
    populated(client, now)
    sidekiq_process(client, "worker-2", "sidekiq@1", 202, beat=now - 1, busy=4)
    client.hset("worker-2:201:abcdef201", "busy", 2)
    nodes = {host: scrape(client, redis_server, host) for host in (HOST, "worker-2")}

    busy_in_redis = sum(
        int(client.hget(identity, "busy")) for identity in client.smembers("processes")
    )
    busy_exported = sum(
        value for node in nodes.values() for value in node["sidekiq_process_busy_threads"].values()
    )
    assert busy_in_redis == busy_exported == 3 + 0 + 2 + 4
    for host, node in nodes.items():
        for name in (
            "sidekiq_process_busy_threads",
            "sidekiq_process_concurrency",
            "sidekiq_process_heartbeat_age_seconds",
            "sidekiq_process_quiet",
            "sidekiq_process_rss_bytes",
            "sidekiq_process_up",
        ):
            assert node[name], name
            assert {dict(labels)["hostname"] for labels in node[name]} == {host}, name
        processes = {dict(labels)["process"] for labels in node["sidekiq_process_busy_threads"]}
        in_redis = {i.decode() for i in client.smembers("processes")}
        assert processes == {i for i in in_redis if i.startswith(f"{host}:")}
    assert (
        nodes["worker-2"]["sidekiq_process_rss_bytes"][
            (
                ("hostname", "worker-2"),
                ("pid", "202"),
                ("process", "worker-2:202:abcdef202"),
                ("tag", "sidekiq@1"),
            )
        ]
        == 51200 * 1024
    )

    cluster = {name for name in nodes[HOST] if name.startswith("sidekiq_cluster_")}
    assert cluster == {
        "sidekiq_cluster_queue_size",
        "sidekiq_cluster_queue_latency_seconds",
        "sidekiq_cluster_jobs_processed_total",
        "sidekiq_cluster_jobs_failed_total",
        "sidekiq_cluster_retry_set_size",
        "sidekiq_cluster_scheduled_set_size",
        "sidekiq_cluster_dead_set_size",
        "sidekiq_cluster_processes",
    }
    for name in cluster - {"sidekiq_cluster_queue_latency_seconds"}:  # latency: now moves
        assert nodes[HOST][name] == nodes["worker-2"][name], name
    port = redis_server[0]
    assert nodes[HOST]["sidekiq_cluster_jobs_processed_total"] == {
        (("redis", f"127.0.0.1:{port}/0"),): 1234
    }
    for node in nodes.values():  # the old names, which read as the node's own, are gone
        assert not {n for n in node if n.startswith("sidekiq_jobs_")}
        assert not {n for n in node if n.startswith(("sidekiq_queue_", "sidekiq_retry_"))}


def test_the_redis_label_names_the_server_and_never_the_credentials():
    assert exporter.redis_label("redis://gitlab:s3cret@10.0.0.5:6380/2") == "10.0.0.5:6380/2"
    assert exporter.redis_label("rediss://redis.internal/0") == "redis.internal:6379/0"
    assert exporter.redis_label("redis://[::1]:6379") == "[::1]:6379/0"
    assert exporter.redis_label("unix:///run/redis/redis.sock?db=3") == "/run/redis/redis.sock/3"


def test_a_garbage_rss_leaves_the_process_in_without_rss(client, redis_server):
    now = time.time()
    identity = sidekiq_process(client, HOST, "sidekiq@0", 101, beat=now)
    client.hset(identity, "rss", "lots")
    metrics = scrape(client, redis_server, HOST)
    assert len(metrics["sidekiq_process_busy_threads"]) == 1
    assert metrics.get("sidekiq_process_rss_bytes", {}) == {}
    assert metrics["sidekiq_exporter_bad_heartbeats"] == {(): 0}


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


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
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
    return cert, key


def _trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    return context


def test_metrics_over_tls_only(client, redis_server, tmp_path):
    cert, key = _self_signed(tmp_path)
    server = exporter.Exporter(settings(redis_server, tls_cert=str(cert), tls_key=str(key)))
    server.start()
    try:
        metrics_port, _ = server.ports
        with urllib.request.urlopen(
            f"https://127.0.0.1:{metrics_port}/metrics", context=_trusting(cert), timeout=5
        ) as r:
            assert r.status == 200 and b"sidekiq_exporter_redis_up 1.0" in r.read()
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    finally:
        server.stop()


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True when the server closes (EOF or reset) the connection within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_silent_client_does_not_block_tls_scrapes(client, redis_server, tmp_path):
    """Issue 9 item 8.1: the handshake runs per connection, with a timeout, off the accept loop."""
    cert, key = _self_signed(tmp_path)
    server = exporter.Exporter(
        settings(redis_server, tls_cert=str(cert), tls_key=str(key), handshake_timeout=1.0)
    )
    server.start()
    try:
        metrics_port, _ = server.ports
        silent = socket.create_connection(("127.0.0.1", metrics_port), timeout=5)
        try:
            time.sleep(0.2)  # the server has accepted it and waits for a ClientHello
            started = time.monotonic()
            with urllib.request.urlopen(
                f"https://127.0.0.1:{metrics_port}/metrics", context=_trusting(cert), timeout=3
            ) as r:
                assert r.status == 200 and b"sidekiq_exporter_redis_up 1.0" in r.read()
            assert time.monotonic() - started < 3
            # ... and the silent client is dropped once its handshake time is up.
            assert _closed_by_peer(silent, within=4)
        finally:
            silent.close()
    finally:
        server.stop()


def test_a_malformed_heartbeat_is_skipped_and_counted(client, running):
    """Issue 9 item 8.2: one bad process hash must not break metrics or readiness of any node."""
    now = time.time()
    populated(client, now)
    garbage = {
        "worker-9:1:bad-json": {"info": "{not json", "busy": 0, "beat": now},
        "worker-9:2:bad-busy": {
            "info": json.dumps({"hostname": "worker-9", "pid": 2}),
            "busy": "lots",
            "beat": now,
        },
        "worker-9:3:bad-beat": {
            "info": json.dumps({"hostname": "worker-9", "pid": 3}),
            "busy": 1,
            "beat": "yesterday",
        },
        "worker-9:4:no-beat": {"info": json.dumps({"hostname": "worker-9", "pid": 4}), "busy": 1},
        "worker-9:5:list-info": {"info": "[1, 2]", "busy": 0, "beat": now},
        "worker-9:6:no-host": {"info": json.dumps({"pid": 6, "concurrency": "x"}), "beat": now},
        f"{HOST}:7:bad-queues": {
            "info": json.dumps({"hostname": HOST, "pid": 7, "tag": "sidekiq@0", "queues": 5}),
            "beat": now,
        },
        b"worker-9:8:\xff\xfe": {"info": b"\xff\xfe", "beat": now},
    }
    for identity, fields in garbage.items():
        client.sadd("processes", identity)
        client.hset(identity, mapping=fields)

    snap = exporter.read_snapshot(client, now=now)
    assert snap.bad_heartbeats == len(garbage)
    assert {p.pid for p in snap.processes} == {101, 102, 201}

    metrics_port, health_port = running.ports
    status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200, text
    assert f"sidekiq_exporter_bad_heartbeats {float(len(garbage))}" in text
    assert f'sidekiq_process_up{{hostname="{HOST}",tag="sidekiq@0"}} 1.0' in text
    status, body = _get(f"http://127.0.0.1:{health_port}/readiness")
    assert status == 200 and json.loads(body)["status"] == "ok", body


def test_unexpected_errors_give_a_generic_500(client, running, monkeypatch):
    """Issue 9 item 8.2: the exception text stays in the log, never in the response."""

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail from deep inside")

    monkeypatch.setattr(exporter, "read_snapshot", broken)
    metrics_port, health_port = running.ports
    for url in (
        f"http://127.0.0.1:{metrics_port}/metrics",
        f"http://127.0.0.1:{health_port}/readiness",
    ):
        status, body = _get(url)
        assert status == 500, (url, body)
        assert body == "internal error\n"
    assert _get(f"http://127.0.0.1:{health_port}/liveness")[0] == 200


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_listen_addresses(client, redis_server):
    """Issue 9 item 8.3: the address family follows the address; brackets are accepted."""
    populated(client, time.time())
    parsed = exporter.Settings.from_env(
        {"SIDEKIQ_METRICS_ADDRESS": "[::1]", "SIDEKIQ_HEALTH_CHECKS_ADDRESS": "::1"}
    )
    assert parsed.metrics_address in ("::1", "[::1]")
    server = exporter.Exporter(
        settings(redis_server, metrics_address="[::1]", health_address="::1")
    )
    server.start()
    try:
        metrics_port, health_port = server.ports
        status, text = _get(f"http://[::1]:{metrics_port}/metrics")
        assert status == 200 and "sidekiq_exporter_redis_up 1.0" in text
        assert _get(f"http://[::1]:{health_port}/readiness")[0] == 200
    finally:
        server.stop()
    with pytest.raises(ValueError, match="different ports"):
        exporter.Settings.from_env(
            {
                "SIDEKIQ_METRICS_ADDRESS": "[::]",
                "SIDEKIQ_HEALTH_CHECKS_ADDRESS": "::1",
                "SIDEKIQ_METRICS_PORT": "8082",
                "SIDEKIQ_HEALTH_CHECKS_PORT": "8082",
            }
        )


def test_idle_connections_are_capped_and_dropped(client, redis_server):
    """Issue 9 item 8.4: at most max_connections handler threads; idle clients time out; excess
    connections are closed at once; a scrape gets through once the idle ones are gone."""
    populated(client, time.time())
    cap = 3
    parsed = exporter.Settings.from_env({"SIDEKIQ_EXPORTER_MAX_CONNECTIONS": "7"})
    assert parsed.max_connections == 7
    assert exporter.Settings.from_env({}).max_connections == 32
    server = exporter.Exporter(settings(redis_server, max_connections=cap, request_timeout=2.0))
    server.start()
    idle: list[socket.socket] = []
    try:
        metrics_port, health_port = server.ports
        for _ in range(cap):
            idle.append(socket.create_connection(("127.0.0.1", metrics_port), timeout=5))
        time.sleep(0.3)  # accepted: every slot is taken
        excess = [
            socket.create_connection(("127.0.0.1", metrics_port), timeout=5) for _ in range(3)
        ]
        idle.extend(excess)
        started = time.monotonic()
        for sock in excess:
            assert _closed_by_peer(sock, within=1.0)
        assert time.monotonic() - started < 1.5
        # The health server has its own slots.
        assert _get(f"http://127.0.0.1:{health_port}/liveness")[0] == 200
        # The idle ones are dropped after request_timeout; then scrapes are served again.
        for sock in idle[:cap]:
            assert _closed_by_peer(sock, within=4)
        deadline = time.monotonic() + 5
        while True:
            try:
                status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200 and "sidekiq_exporter_redis_up 1.0" in text
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_a_slow_drip_request_is_dropped_at_the_deadline(client, redis_server):
    """A client that sends a byte now and then cannot hold a slot past request_timeout."""
    server = exporter.Exporter(settings(redis_server, request_timeout=1.5))
    server.start()
    try:
        metrics_port, _ = server.ports
        with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
            started = time.monotonic()
            closed = False
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 40:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                sock.settimeout(0.3)
                try:
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed = True
                    break
            assert closed, "the server kept the dripping connection open"
            assert time.monotonic() - started < 4
    finally:
        server.stop()


# --- the exporter's environment file and unit (issue 9 item 8.5) ---------------------------------

TEMPLATES = ROOT / "roles" / "sidekiq_exporter" / "templates"
SECRET_NAMES = ("PGPASSWORD", "DB_PASSWORD", "GITALY_TOKEN", "vault_postgresql", "PGUSER")


def _render(name: str, **extra) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["bool"] = lambda v: (
        v if isinstance(v, bool) else str(v).lower() in {"1", "true", "yes", "on"}
    )
    values = {
        "ansible_managed": "Ansible managed",
        "inventory_hostname": "worker-1",
        "sidekiq_exporter_metrics_enabled": True,
        "sidekiq_exporter_metrics_listen_address": "0.0.0.0",
        "fleet_sidekiq_metrics_port": 8082,
        "sidekiq_exporter_tls_enabled": False,
        "sidekiq_exporter_tls_cert_path": "",
        "sidekiq_exporter_tls_key_path": "",
        "sidekiq_exporter_health_checks_enabled": True,
        "sidekiq_exporter_health_checks_listen_address": "127.0.0.1",
        "fleet_sidekiq_health_checks_port": 8092,
        "sidekiq_exporter_heartbeat_max_age": 20,
        "sidekiq_exporter_expected_processes": ["sidekiq@0", "sidekiq@1"],
        "_sidekiq_exporter_redis_url": "redis://10.0.0.5:6379/0",
        "_sidekiq_exporter_redis_sentinels": "",
        "fleet_redis_database": 0,
        "sidekiq_exporter_env_file": "/etc/sidekiq-fleet/exporter.env",
        "fleet_redis_username": "gitlab",
        "fleet_redis_password": 'r3dis"$`\\pw',
        "sidekiq_exporter_redis_tls": True,
        "fleet_tls_ca_path": "/etc/ssl/sidekiq-fleet/ca.crt",
        "sidekiq_app_config_dir": "/etc/sidekiq-fleet",
        "sidekiq_exporter_dir": "/opt/sidekiq-fleet/exporter",
        "fleet_git_user": "git",
        # What app.env holds and the exporter must not see.
        "fleet_db_password": "db-secret",
        "fleet_gitaly_token": "gitaly-secret",
        "fleet_db_user": "gitlab",
    }
    values.update(extra)
    return env.get_template(name).render(values)


def _env_file(text: str) -> dict[str, str]:
    """Parse KEY=value / KEY="value" lines as systemd's EnvironmentFile= does."""
    parsed: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        name, _, value = line.partition("=")
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        parsed[name.strip()] = value
    return parsed


def test_exporter_env_holds_the_redis_settings_and_no_other_secret():
    text = _render("sidekiq-exporter.env.j2")
    values = _env_file(text)
    assert values["SIDEKIQ_REDIS_URL"] == "redis://10.0.0.5:6379/0"
    assert values["SIDEKIQ_REDIS_USERNAME"] == "gitlab"
    assert values["SIDEKIQ_REDIS_PASSWORD"] == 'r3dis"$`\\pw'
    assert values["SIDEKIQ_EXPORTER_EXPECTED_TAGS"] == "sidekiq@0 sidekiq@1"
    for name in SECRET_NAMES:
        assert name not in text
    assert "db-secret" not in text and "gitaly-secret" not in text
    # What the exporter reads from it is all it needs.
    parsed = exporter.Settings.from_env(values)
    assert parsed.redis_password == 'r3dis"$`\\pw' and parsed.metrics_address == "0.0.0.0"


def test_exporter_unit_loads_only_its_own_env_file():
    unit = _render("sidekiq-exporter.service.j2")
    files = re.findall(r"^EnvironmentFile=(.*)$", unit, re.M)
    assert files == ["/etc/sidekiq-fleet/exporter.env"]
    assert "app.env" not in unit


def test_exporter_env_file_is_private_and_not_logged():
    tasks = yaml.safe_load((ROOT / "roles" / "sidekiq_exporter" / "tasks" / "main.yml").read_text())
    (task,) = [
        t
        for t in tasks
        if t.get("ansible.builtin.template", {}).get("src") == "sidekiq-exporter.env.j2"
    ]
    module = task["ansible.builtin.template"]
    assert module["mode"] in ("0600", "0640")
    assert module["owner"] == "root"
    assert task.get("no_log") is True


# --- every metric name the dashboard, the rules and the docs use is one the exporter exports ----

DASHBOARD = ROOT / "monitoring" / "grafana" / "sidekiq-fleet.json"
RULES = ROOT / "monitoring" / "alerts.yml"
#: Names the exporter used before issue 14 item 6 (cluster-wide values under per-node names).
REMOVED = (
    "sidekiq_jobs_processed_total",
    "sidekiq_jobs_failed_total",
    "sidekiq_queue_size",
    "sidekiq_queue_latency_seconds",
    "sidekiq_retry_set_size",
    "sidekiq_scheduled_set_size",
    "sidekiq_dead_set_size",
)
NAMED_BY = (
    DASHBOARD,
    RULES,
    ROOT / "monitoring" / "tests" / "alerts_test.yml",
    ROOT / "simulator" / "report" / "alerts.py",
    ROOT / "molecule" / "fleet" / "tests" / "test_fleet.py",
    ROOT / "roles" / "sidekiq_exporter" / "README.md",
    ROOT / "roles" / "sidekiq_exporter" / "meta" / "argument_specs.yml",
    *sorted((ROOT / "docs").glob("*.md")),
)
METRIC = re.compile(r"(?<![\w:])sidekiq_(?:cluster|process)_[a-z_]+")


def _dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_the_dashboard_rules_and_docs_name_only_exported_metrics(client, redis_server):
    populated(client, time.time())
    exported = set(scrape(client, redis_server, HOST))
    problems = []
    for path in NAMED_BY:
        text = path.read_text()
        for name in sorted(set(METRIC.findall(text)) - exported):
            problems.append(f"{path.relative_to(ROOT)} names {name}, which is not exported")
        for name in REMOVED:
            if re.search(rf"(?<![\w:]){name}(?![\w])", text):
                problems.append(f"{path.relative_to(ROOT)} still names {name}")
    assert not problems, "\n".join(problems)


def test_the_dashboard_never_sums_a_cluster_wide_series_over_nodes():
    """A sidekiq_cluster_* series is the same on every exporter of one Redis: a query reduces it
    to one per Redis (max by (redis, ...)) before anything else; per-process series are exported
    by one node each, so they may be summed as they are."""
    queries = _dashboard_queries()
    assert queries
    for expr in queries:
        for name in set(re.findall(r"sidekiq_cluster_\w+", expr)):
            assert re.search(rf"max by \(redis(, \w+)*\) \((rate\()?{name}\{{", expr), (
                f"{expr}: {name} must be reduced with max by (redis, ...) first"
            )
        assert "sidekiq_jobs_" not in expr
    assert any(e.startswith("sum by (instance) (sidekiq_process_busy_threads") for e in queries)


# --- through Sentinel: the master is asked of the Sentinels, the label names the master --------


class FakeSentinel:
    """Records what redis.sentinel.Sentinel would be given; master_for hands out a stand-in."""

    made: ClassVar[list[FakeSentinel]] = []

    def __init__(self, sentinels, sentinel_kwargs=None, **connection_kwargs) -> None:
        self.sentinels = sentinels
        self.sentinel_kwargs = sentinel_kwargs
        self.connection_kwargs = connection_kwargs
        self.master: tuple[str, dict] | None = None
        FakeSentinel.made.append(self)

    def master_for(self, service_name, **kwargs):
        self.master = (service_name, kwargs)
        return "client of " + service_name


SENTINEL_ENV = {
    "SIDEKIQ_REDIS_URL": "rediss://10.0.0.5:6379/0",
    "SIDEKIQ_REDIS_USERNAME": "gitlab",
    "SIDEKIQ_REDIS_PASSWORD": "data-pw",
    "SIDEKIQ_REDIS_CA_FILE": "/etc/ssl/sidekiq-fleet/ca.crt",
    "SIDEKIQ_REDIS_DB": "3",
    "SIDEKIQ_REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26380,[fd00::3]:26379",
    "SIDEKIQ_REDIS_SENTINEL_MASTER": "gitlab-redis",
    "SIDEKIQ_REDIS_SENTINEL_PASSWORD": "sentinel-pw",
}


def test_sentinel_settings_come_from_the_environment():
    parsed = exporter.Settings.from_env(SENTINEL_ENV)
    assert parsed.redis_sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("fd00::3", 26379))
    assert parsed.redis_sentinel_master == "gitlab-redis"
    assert parsed.redis_sentinel_password == "sentinel-pw"
    assert parsed.database == 3
    without = exporter.Settings.from_env({"SIDEKIQ_REDIS_URL": "redis://10.0.0.5:6379/2"})
    assert without.redis_sentinels == () and without.database == 2
    assert exporter.parse_sentinels("sentinel-1") == (("sentinel-1", 26379),)
    with pytest.raises(ValueError, match="SIDEKIQ_REDIS_SENTINELS"):
        exporter.parse_sentinels("10.0.0.1:notaport")


def test_through_sentinel_the_master_is_resolved_with_both_passwords_and_tls():
    FakeSentinel.made.clear()
    parsed = exporter.Settings.from_env(SENTINEL_ENV)
    assert exporter.redis_client(parsed, sentinel_class=FakeSentinel) == "client of gitlab-redis"
    (sentinel,) = FakeSentinel.made
    assert sentinel.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("fd00::3", 26379)]
    # Sentinel's default user: its password, no username, and the Redis ACL user never.
    assert sentinel.sentinel_kwargs["password"] == "sentinel-pw"
    assert "username" not in sentinel.sentinel_kwargs
    assert sentinel.sentinel_kwargs["ssl"] is True
    assert sentinel.sentinel_kwargs["ssl_ca_certs"] == "/etc/ssl/sidekiq-fleet/ca.crt"
    name, kwargs = sentinel.master
    assert name == "gitlab-redis"
    assert kwargs["username"] == "gitlab" and kwargs["password"] == "data-pw"
    assert kwargs["db"] == 3 and kwargs["ssl"] is True
    assert kwargs["ssl_cert_reqs"] == "required"


def test_sentinel_without_tls_or_password():
    FakeSentinel.made.clear()
    env = {
        **SENTINEL_ENV,
        "SIDEKIQ_REDIS_URL": "redis://10.0.0.5:6379/0",
        "SIDEKIQ_REDIS_CA_FILE": "",
        "SIDEKIQ_REDIS_SENTINEL_PASSWORD": "",
    }
    exporter.redis_client(exporter.Settings.from_env(env), sentinel_class=FakeSentinel)
    (sentinel,) = FakeSentinel.made
    assert "password" not in sentinel.sentinel_kwargs and "ssl" not in sentinel.sentinel_kwargs
    assert "ssl" not in sentinel.master[1]


def test_the_sentinel_label_names_the_master_never_an_address_or_a_password():
    parsed = exporter.Settings.from_env(SENTINEL_ENV)
    assert parsed.redis_label == "sentinel:gitlab-redis/3"
    collector = exporter.SidekiqCollector(client=None, settings=parsed)  # type: ignore[arg-type]
    assert collector.redis == "sentinel:gitlab-redis/3"
    plain = exporter.Settings.from_env({"SIDEKIQ_REDIS_URL": "redis://u:pw@10.0.0.5:6379/2"})
    assert plain.redis_label == "10.0.0.5:6379/2"


def test_a_failover_keeps_the_series(client, redis_server):
    """The scrape after a failover (another master behind the same name) has the same labels."""
    port, password = redis_server
    populated(client, time.time())
    parsed = exporter.Settings(
        **{
            **settings(redis_server).__dict__,
            "redis_sentinels": (("10.0.0.1", 26379),),
            "redis_sentinel_master": "gitlab-redis",
        }
    )
    first = exporter.SidekiqCollector(client, parsed)
    # "After the failover": another connection object (the new master), same settings.
    second = exporter.SidekiqCollector(
        redis.Redis(port=port, username="gitlab", password=password), parsed
    )

    def labels(collector) -> set[tuple]:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        text = generate_latest(registry).decode()
        return {
            (s.name, tuple(sorted(s.labels.items())))
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if family.name.startswith("sidekiq_cluster_")
        }

    before, after = labels(first), labels(second)
    assert before and before == after
    assert all(dict(lab)["redis"] == "sentinel:gitlab-redis/0" for _, lab in before)


def test_exporter_env_carries_the_sentinels():
    sentinels = "10.0.0.1:26379,10.0.0.2:26379,[fd00::3]:26379"
    text = _render(
        "sidekiq-exporter.env.j2",
        fleet_redis_database=0,
        _sidekiq_exporter_redis_sentinels=sentinels,
        fleet_redis_sentinel_master_name="gitlab-redis",
        fleet_redis_sentinel_password='s3nt"inel',
    )
    values = _env_file(text)
    assert values["SIDEKIQ_REDIS_SENTINELS"] == sentinels
    assert values["SIDEKIQ_REDIS_SENTINEL_MASTER"] == "gitlab-redis"
    assert values["SIDEKIQ_REDIS_SENTINEL_PASSWORD"] == 's3nt"inel'
    parsed = exporter.Settings.from_env(values)
    assert parsed.redis_sentinels[2] == ("fd00::3", 26379)
    assert parsed.redis_sentinel_password == 's3nt"inel'


def test_the_role_joins_the_sentinel_list_as_the_exporter_reads_it():
    role_vars = ROOT / "roles" / "sidekiq_exporter" / "vars" / "main.yml"
    template = yaml.safe_load(role_vars.read_text())["_sidekiq_exporter_redis_sentinels"]
    render = jinja2.Environment().from_string(template).render
    listed = [{"host": "10.0.0.1", "port": 26379}, {"host": "fd00::3", "port": 26380}]
    joined = render(fleet_redis_sentinels=listed)
    assert joined == "10.0.0.1:26379,[fd00::3]:26380"
    assert exporter.parse_sentinels(joined) == (("10.0.0.1", 26379), ("fd00::3", 26380))
    assert render(fleet_redis_sentinels=[]) == ""
