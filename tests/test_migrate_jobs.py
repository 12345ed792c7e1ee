"""The job migration against a real redis-server: nothing lost, nothing duplicated, atomic moves."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from redis_helpers import redis_server as start_redis

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location(
    "sidekiq_jobs", ROOT / "plugins/module_utils/sidekiq_jobs.py"
)
sidekiq_jobs = importlib.util.module_from_spec(spec)
sys.modules["sidekiq_jobs"] = sidekiq_jobs
spec.loader.exec_module(sidekiq_jobs)
JobMigrator, rewrite_queue = sidekiq_jobs.JobMigrator, sidekiq_jobs.rewrite_queue


@pytest.fixture(scope="module")
def redis_server():
    with start_redis() as port:
        yield port


@pytest.fixture
def r(redis_server):
    client = redis.Redis(port=redis_server)
    client.flushall()
    return client


def job(jid: str, cls: str, queue: str, **extra) -> str:
    # Sidekiq's own JSON (Ruby's to_json): compact, float timestamps with many digits.
    data = {
        "retry": True,
        "queue": queue,
        "class": cls,
        "args": [1, {"queue": "nested"}],
        "jid": jid,
        "created_at": 1732350000.1234567,
        "enqueued_at": 1732350001.7654321,
    }
    data.update(extra)
    return json.dumps(data, separators=(",", ":"))


MAPPING = {"A": "fast", "B": "slow", "ActionMailer::MailDeliveryJob": "mailers"}


def test_rewrite_queue_keeps_every_other_byte():
    payload = job("1", "A", "old")
    out = rewrite_queue(payload, "new")
    assert out == payload.replace('"queue":"old"', '"queue":"new"', 1)
    assert '"queue":"nested"' in out and "1732350000.1234567" in out
    assert json.loads(rewrite_queue('{"class":"A"}', "q"))["queue"] == "q"
    spaced = '{ "args" : ["queue"], "queue" : "x" , "b": {"queue": 1} }'
    assert rewrite_queue(spaced, "y") == spaced.replace('"queue" : "x"', '"queue" : "y"')


def test_queued_lists_drain_oldest_first_and_keep_order(r):
    for i in range(5):  # Sidekiq LPUSHes; job 0 is the oldest (at the tail)
        r.lpush("queue:a_worker", job(f"a{i}", "A", "a_worker"))
    r.lpush("queue:fast", job("f0", "A", "fast"))
    r.sadd("queues", "a_worker", "fast")
    report = JobMigrator(r, MAPPING).run()
    assert report.moved == {"queue:a_worker -> queue:fast": 5}
    jids = [json.loads(x)["jid"] for x in reversed(r.lrange("queue:fast", 0, -1))]
    assert jids == ["f0", "a0", "a1", "a2", "a3", "a4"]  # oldest first, appended at newest end
    assert all(json.loads(x)["queue"] == "fast" for x in r.lrange("queue:fast", 0, -1))
    assert r.llen("queue:a_worker") == 0
    assert report.forgotten_queues == ["a_worker"] and r.smembers("queues") == {b"fast"}


def test_retry_and_schedule_keep_score_and_fields(r):
    r.zadd("retry", {job("r1", "B", "b_worker", retry_count=3, error_message="boom"): 1700.5})
    r.zadd("schedule", {job("s1", "A", "a_worker"): 1800.25, job("s2", "A", "fast"): 1900})
    report = JobMigrator(r, MAPPING).run()
    assert report.moved == {"retry: b_worker -> slow": 1, "schedule: a_worker -> fast": 1}
    ((member, score),) = r.zrange("retry", 0, -1, withscores=True)
    data = json.loads(member)
    assert score == 1700.5 and data["queue"] == "slow" and data["retry_count"] == 3
    assert data["error_message"] == "boom" and data["enqueued_at"] == 1732350001.7654321
    assert {json.loads(m)["queue"] for m in r.zrange("schedule", 0, -1)} == {"fast"}


def test_unknown_and_unreadable_jobs_are_never_lost(r):
    r.lpush(
        "queue:old",
        job("k1", "A", "old"),
        job("u1", "Unknown", "old"),
        "{not json",
        job("k2", "A", "old"),
    )
    r.zadd("retry", {job("u2", "Nope", "x"): 5, "garbage": 6})
    report = JobMigrator(r, MAPPING).run()
    assert report.moved == {"queue:old -> queue:fast": 2}
    assert sorted(r.lrange("queue:old", 0, -1)) == sorted(
        [b"{not json", job("u1", "Unknown", "old").encode()]
    )
    assert report.left == {
        "queue:old: unreadable payload": 1,
        "queue:old: class Unknown not in the mapping": 1,
        "retry: class Nope not in the mapping": 1,
        "retry: unreadable payload": 1,
    }
    assert r.zcard("retry") == 2 and report.forgotten_queues == []
    # quarantine mode moves them, unchanged, to the reported list
    report = JobMigrator(r, MAPPING, unknown="quarantine").run()
    assert report.quarantined == {"queue:old": 2, "retry": 2}
    assert r.llen("queue:old") == 0 and r.zcard("retry") == 0
    assert set(r.lrange("sidekiq-fleet:quarantine", 0, -1)) == {
        b"{not json",
        b"garbage",
        job("u1", "Unknown", "old").encode(),
        job("u2", "Nope", "x").encode(),
    }


def test_check_mode_reports_and_changes_nothing_and_runs_are_idempotent(r):
    for i in range(3):
        r.lpush("queue:old", job(f"j{i}", "B", "old"))
    r.zadd("retry", {job("r", "A", "old"): 1})
    before = {k: r.dump(k) for k in r.scan_iter()}
    report = JobMigrator(r, MAPPING, check=True).run()
    assert report.moved == {"retry: old -> fast": 1, "queue:old -> queue:slow": 3}
    assert {k: r.dump(k) for k in r.scan_iter()} == before
    assert JobMigrator(r, MAPPING).run().changed
    again = JobMigrator(r, MAPPING).run()
    assert not again.changed and again.moved == {}


def test_wrapped_activejob_mailers(r):
    wrapper = sidekiq_jobs.JOB_WRAPPER
    r.lpush("queue:default", job("m1", wrapper, "default", wrapped="ActionMailer::MailDeliveryJob"))
    report = JobMigrator(r, MAPPING).run()
    assert report.moved == {"queue:default -> queue:mailers": 1}


def test_concurrent_fetchers_and_producers_lose_and_duplicate_nothing(r, redis_server):
    """Sidekiq threads BRPOP the old and new queues while the migration runs; a producer still
    pushes to the old queue. Every job ends up fetched exactly once or still queued."""
    total = 3000
    for i in range(total):
        r.lpush("queue:old", job(f"j{i}", "A" if i % 2 else "B", "old"))
    fetched: list[bytes] = []
    stop = threading.Event()

    def fetcher():
        c = redis.Redis(port=redis_server)
        while not stop.is_set():
            item = c.brpop(["queue:fast", "queue:old", "queue:slow"], timeout=0.1)
            if item:
                fetched.append(item[1])

    def producer():
        c = redis.Redis(port=redis_server)
        for i in range(500):
            c.lpush("queue:old", job(f"p{i}", "A", "old"))

    threads = [threading.Thread(target=fetcher) for _ in range(4)] + [
        threading.Thread(target=producer)
    ]
    for t in threads:
        t.start()
    migrator = JobMigrator(r, MAPPING, batch=50)
    migrator.run()
    threads[-1].join()
    JobMigrator(r, MAPPING, batch=50).run()  # producers are switched; a second run sweeps
    time.sleep(0.3)
    stop.set()
    for t in threads[:-1]:
        t.join()
    remaining = [x for q in ("queue:old", "queue:fast", "queue:slow") for x in r.lrange(q, 0, -1)]
    jids = [json.loads(x)["jid"] for x in fetched + remaining]
    assert len(jids) == total + 500
    assert len(set(jids)) == len(jids)


def test_ansible_module_check_mode_then_real_run(r, redis_server):
    r.lpush("queue:old", job("x1", "A", "old"), job("x2", "Gone", "old"))
    exe = Path(sys.executable).parent / "ansible"
    args = json.dumps({"mapping": MAPPING, "redis_port": redis_server, "unknown": "quarantine"})
    env = {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": str(exe.parent) + ":/usr/bin:/bin",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }

    def run(*extra):
        out = subprocess.run(
            [
                str(exe),
                "localhost",
                "-c",
                "local",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
                "-m",
                "sidekiq_migrate_jobs",
                "-a",
                args,
                *extra,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        # profile_tasks (ansible.cfg) prints a timing line before the JSON document
        doc, _ = json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{") :])
        return doc["plays"][0]["tasks"][0]["hosts"]["localhost"]

    checked = run("--check")
    assert checked["changed"] and checked["moved_total"] == 1 and checked["quarantined_total"] == 1
    assert r.llen("queue:old") == 2
    done = run()
    assert done["moved"] == {"queue:old -> queue:fast": 1} and r.llen("queue:old") == 0
    assert run()["changed"] is False
