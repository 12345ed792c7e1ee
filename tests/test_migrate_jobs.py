"""The job migration against a real redis-server: nothing lost, nothing duplicated, atomic moves."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import yaml
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
#: queues nothing routes to or listens to after the routing change (the plan's retired_queues)
RETIRED = ["a_worker", "b_worker", "old", "x"]


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
    report = JobMigrator(r, MAPPING, retired=["a_worker"]).run()
    assert report.moved == {"queue:a_worker -> queue:fast": 5}
    jids = [json.loads(x)["jid"] for x in reversed(r.lrange("queue:fast", 0, -1))]
    assert jids == ["f0", "a0", "a1", "a2", "a3", "a4"]  # oldest first, appended at newest end
    assert all(json.loads(x)["queue"] == "fast" for x in r.lrange("queue:fast", 0, -1))
    assert r.llen("queue:a_worker") == 0
    assert report.forgotten_queues == ["a_worker"] and r.smembers("queues") == {b"fast"}


def test_retry_and_schedule_keep_score_and_fields(r):
    r.zadd("retry", {job("r1", "B", "b_worker", retry_count=3, error_message="boom"): 1700.5})
    r.zadd("schedule", {job("s1", "A", "a_worker"): 1800.25, job("s2", "A", "fast"): 1900})
    report = JobMigrator(r, MAPPING, retired=RETIRED).run()
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
    report = JobMigrator(r, MAPPING, retired=RETIRED).run()
    assert report.moved == {"queue:old -> queue:fast": 2}
    assert sorted(r.lrange("queue:old", 0, -1)) == sorted(
        [b"{not json", job("u1", "Unknown", "old").encode()]
    )
    assert report.left == {
        "queue:old: unreadable payload": 1,
        "queue:old: class Unknown not in the mapping": 1,
        "retry: class Nope not in the mapping": 1,
        "retry: unreadable payload, queue unknown": 1,
    }
    assert r.zcard("retry") == 2 and report.forgotten_queues == []
    # quarantine mode moves them, unchanged, to the reported list; an unreadable retry/schedule
    # member stays: its queue cannot be read, so it may be a live queue's job
    report = JobMigrator(r, MAPPING, retired=RETIRED, unknown="quarantine").run()
    assert report.quarantined == {"queue:old": 2, "retry": 1}
    assert r.llen("queue:old") == 0 and r.zrange("retry", 0, -1) == [b"garbage"]
    assert set(r.lrange("sidekiq-fleet:quarantine", 0, -1)) == {
        b"{not json",
        job("u1", "Unknown", "old").encode(),
        job("u2", "Nope", "x").encode(),
    }


def test_check_mode_reports_and_changes_nothing_and_runs_are_idempotent(r):
    for i in range(3):
        r.lpush("queue:old", job(f"j{i}", "B", "old"))
    r.zadd("retry", {job("r", "A", "old"): 1})
    before = {k: r.dump(k) for k in r.scan_iter()}
    report = JobMigrator(r, MAPPING, retired=["old"], check=True).run()
    assert report.moved == {"retry: old -> fast": 1, "queue:old -> queue:slow": 3}
    assert {k: r.dump(k) for k in r.scan_iter()} == before
    assert JobMigrator(r, MAPPING, retired=["old"]).run().changed
    again = JobMigrator(r, MAPPING, retired=["old"]).run()
    assert not again.changed and again.moved == {}


def test_wrapped_activejob_mailers(r):
    wrapper = sidekiq_jobs.JOB_WRAPPER
    r.lpush("queue:default", job("m1", wrapper, "default", wrapped="ActionMailer::MailDeliveryJob"))
    report = JobMigrator(r, MAPPING, retired=["default"]).run()
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
    migrator = JobMigrator(r, MAPPING, retired=["old"], batch=50)
    migrator.run()
    threads[-1].join()
    # producers are switched; a second run sweeps
    JobMigrator(r, MAPPING, retired=["old"], batch=50).run()
    time.sleep(0.3)
    stop.set()
    for t in threads[:-1]:
        t.join()
    remaining = [x for q in ("queue:old", "queue:fast", "queue:slow") for x in r.lrange(q, 0, -1)]
    jids = [json.loads(x)["jid"] for x in fetched + remaining]
    assert len(jids) == total + 500
    assert len(set(jids)) == len(jids)


def run_module(args: dict, *extra: str, ok: bool = True) -> dict:
    """Run the module through `ansible localhost -m` (ansible.posix.json callback): its result."""
    exe = Path(sys.executable).parent / "ansible"
    env = {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": str(exe.parent) + ":/usr/bin:/bin",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }
    out = subprocess.run(
        [
            str(exe),
            "localhost",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-m",
            "sidekiq_fleet.fleet.sidekiq_migrate_jobs",
            "-a",
            json.dumps(args),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (out.returncode == 0) == ok, out.stdout + out.stderr
    # profile_tasks (ansible.cfg) prints a timing line before the JSON document
    doc, _ = json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{") :])
    result = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert bool(result.get("failed")) != ok, result
    return result


def test_ansible_module_check_mode_then_real_run(r, redis_server):
    r.lpush("queue:old", job("x1", "A", "old"), job("x2", "Gone", "old"))
    args = {
        "mapping": MAPPING,
        "retired_queues": ["old"],
        "redis_port": redis_server,
        "unknown": "quarantine",
    }
    checked = run_module(args, "--check")
    assert checked["changed"] and checked["moved_total"] == 1 and checked["quarantined_total"] == 1
    assert r.llen("queue:old") == 2
    done = run_module(args)
    assert done["moved"] == {"queue:old -> queue:fast": 1} and r.llen("queue:old") == 0
    assert run_module(args)["changed"] is False


# -- security review, issue 9 item 6: never pull a live job -------------------------------------


def snapshot(r) -> dict:
    return {k: r.dump(k) for k in r.scan_iter()}


def test_jobs_of_live_queues_stay_exactly_as_they_are_whatever_their_class(r):
    """Only retired queues are touched: a retry/scheduled job (or a queued one) whose queue is
    still listened to stays byte for byte, even when its class maps elsewhere or nowhere."""
    live = {
        "retry": {job("r1", "A", "default"): 1, job("r2", "Unknown", "default"): 2},
        "schedule": {job("s1", "Gone", "fast"): 3, job("s2", "B", "default"): 4},
    }
    for key, members in live.items():
        r.zadd(key, members)
    r.lpush("queue:default", job("d1", "A", "default"), job("d2", "Unknown", "default"), "{bad")
    r.sadd("queues", "default", "old")
    before = snapshot(r)
    r.zadd("retry", {job("r3", "Unknown", "old"): 5, job("r4", "A", "old"): 6})
    r.zadd("schedule", {job("s3", "Gone", "old"): 7})
    report = JobMigrator(r, MAPPING, retired=["old"], unknown="quarantine").run()
    assert report.moved == {"retry: old -> fast": 1}
    assert report.quarantined == {"retry": 1, "schedule": 1}
    for key, members in live.items():  # same members, same scores
        assert set(r.zrange(key, 0, -1, withscores=True)) >= {
            (m.encode(), float(s)) for m, s in members.items()
        }
    assert r.zcard("retry") == 3 and r.zcard("schedule") == 2
    assert r.dump("queue:default") == before[b"queue:default"]
    assert set(r.lrange("sidekiq-fleet:quarantine", 0, -1)) == {
        job("r3", "Unknown", "old").encode(),
        job("s3", "Gone", "old").encode(),
    }
    assert r.smembers("queues") == {b"default"}  # the retired, empty queue is forgotten


def test_a_retired_queue_that_is_still_a_routing_destination_is_not_drained(r):
    r.lpush("queue:fast", job("f1", "B", "fast"))
    r.lpush("queue:old", job("o1", "B", "old"))
    report = JobMigrator(r, MAPPING, retired=["old", "fast"]).run()
    assert report.retired_but_routed == ["fast"]
    assert report.moved == {"queue:old -> queue:slow": 1}
    assert r.lrange("queue:fast", 0, -1) == [job("f1", "B", "fast").encode()]


def test_empty_mapping_is_refused_and_nothing_is_touched(r, redis_server):
    r.lpush("queue:old", job("o1", "A", "old"))
    r.zadd("retry", {job("r1", "A", "old"): 1})
    before = snapshot(r)
    with pytest.raises(ValueError, match="mapping is empty"):
        JobMigrator(r, {}, retired=["old"], unknown="quarantine")
    args = {"mapping": {}, "retired_queues": ["old"], "redis_port": redis_server}
    result = run_module({**args, "unknown": "quarantine"}, ok=False)
    assert "mapping is empty" in result["msg"]
    assert snapshot(r) == before


def deep_job(jid: str, queue: str, depth: int = 100_000) -> str:
    return job(jid, "A", queue).replace('"args":[1,', '"args":[' + "[" * depth + "]" * depth + ",")


def test_deeply_nested_payload_is_unreadable_not_a_crash(r):
    deep = deep_job("deep1", "old")
    with pytest.raises(RecursionError):
        json.loads(deep)
    assert sidekiq_jobs.job_class(deep) is None
    r.lpush("queue:old", deep, job("o1", "A", "old"))
    r.zadd("retry", {deep_job("deep2", "old"): 1})
    report = JobMigrator(r, MAPPING, retired=["old"]).run()
    assert report.moved == {"queue:old -> queue:fast": 1}
    assert report.left == {
        "queue:old: unreadable payload": 1,
        "retry: unreadable payload, queue unknown": 1,
    }
    report = JobMigrator(r, MAPPING, retired=["old"], unknown="quarantine").run()
    assert report.quarantined == {"queue:old": 1}
    assert r.lrange("sidekiq-fleet:quarantine", 0, -1) == [deep.encode()]
    assert r.zrange("retry", 0, -1) == [deep_job("deep2", "old").encode()]


def test_rewritten_member_already_in_the_set_is_a_conflict_not_a_merge(r):
    """Rewriting the queue of a retry/schedule member changes the member; if that member is
    already there, a ZADD would merge two jobs into one. The original stays, reported."""
    original, rewritten = job("j1", "A", "old"), job("j1", "A", "fast")
    assert rewrite_queue(original, "fast") == rewritten
    r.zadd("retry", {original: 10, rewritten: 20, job("j2", "A", "old"): 30})
    checked = JobMigrator(r, MAPPING, retired=["old"], check=True).run()
    assert checked.conflicts == {"retry: old -> fast": 1}
    assert checked.moved == {"retry: old -> fast": 1}
    report = JobMigrator(r, MAPPING, retired=["old"], unknown="quarantine").run()
    assert report.conflicts == {"retry: old -> fast": 1}
    assert report.moved == {"retry: old -> fast": 1}  # j2
    assert report.left == {"retry: rewritten payload already in the set": 1}
    assert report.quarantined == {} and r.llen("sidekiq-fleet:quarantine") == 0
    assert dict(r.zrange("retry", 0, -1, withscores=True)) == {
        original.encode(): 10.0,
        rewritten.encode(): 20.0,
        job("j2", "A", "fast").encode(): 30.0,
    }


def test_redis_error_midway_leaves_every_job_and_reports_what_moved(r):
    """WRONGTYPE on the 2nd retired queue's destination: the script checks before it writes, so
    the job stays in its queue (a Lua error does not roll back earlier writes), and the report
    of the run so far says what already moved."""
    r.lpush("queue:a_old", job("a1", "A", "a_old"), job("a2", "A", "a_old"))
    r.lpush("queue:b_old", job("b1", "B", "b_old"), job("b2", "B", "b_old"))
    r.set("queue:slow", "not a list")
    migrator = JobMigrator(r, MAPPING, retired=["a_old", "b_old"])
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        migrator.run()
    assert migrator.report.moved == {"queue:a_old -> queue:fast": 2}
    assert migrator.report.touched_keys == {"queue:a_old", "queue:fast", "queues"}
    assert migrator.report.failed_key == "queue:b_old"
    assert r.llen("queue:b_old") == 2 and r.get("queue:slow") == b"not a list"


def test_quarantine_key_of_the_wrong_type_loses_nothing(r):
    r.zadd("schedule", {job("s1", "Gone", "old"): 1})
    r.lpush("queue:old", job("o1", "Gone", "old"))
    r.set("sidekiq-fleet:quarantine", "oops")
    migrator = JobMigrator(r, MAPPING, retired=["old"], unknown="quarantine")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        migrator.run()
    assert migrator.report.failed_key == "schedule" and r.zcard("schedule") == 1
    r.delete("schedule")
    migrator = JobMigrator(r, MAPPING, retired=["old"], unknown="quarantine")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        migrator.run()
    assert migrator.report.failed_key == "queue:old" and r.llen("queue:old") == 1


def test_ansible_module_fails_midway_with_the_partial_report(r, redis_server):
    r.lpush("queue:a_old", job("a1", "A", "a_old"), job("a2", "A", "a_old"))
    r.lpush("queue:b_old", job("b1", "B", "b_old"))
    r.set("queue:slow", "not a list")
    args = {"mapping": MAPPING, "retired_queues": ["a_old", "b_old"], "redis_port": redis_server}
    result = run_module(args, ok=False)
    assert "queue:b_old" in result["msg"] and "WRONGTYPE" in result["msg"]
    assert result["changed"] is True
    assert result["moved"] == {"queue:a_old -> queue:fast": 2} and result["moved_total"] == 2
    assert result["touched_keys"] == ["queue:a_old", "queue:fast", "queues"]
    assert r.llen("queue:b_old") == 1 and r.llen("queue:fast") == 2


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_ansible_module_times_out_on_a_redis_that_does_not_answer(silent_server):
    args = {
        "mapping": MAPPING,
        "retired_queues": ["old"],
        "redis_port": silent_server,
        "socket_timeout": 1,
    }
    started = time.monotonic()
    result = run_module(args, ok=False)
    assert "timeout" in result["msg"].lower(), result["msg"]
    assert result["moved"] == {} and result["changed"] is False
    assert time.monotonic() - started < 60


MODULE_UTILS = "ansible_collections.sidekiq_fleet.fleet.plugins.module_utils.sidekiq_jobs"


def load_module_file():
    sys.modules[MODULE_UTILS] = sidekiq_jobs
    try:
        spec = importlib.util.spec_from_file_location(
            "sidekiq_migrate_jobs_module", ROOT / "plugins/modules/sidekiq_migrate_jobs.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        del sys.modules[MODULE_UTILS]


def test_documentation_matches_the_argument_spec_and_timeouts_have_defaults():
    module = load_module_file()
    options = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = module.ARGUMENT_SPEC
    assert set(options) == set(spec)
    for name, doc in options.items():
        for attr in ("type", "default", "required", "choices", "elements"):
            assert doc.get(attr) == spec[name].get(attr), (name, attr)
    assert spec["redis_password"]["no_log"] is True
    assert spec["retired_queues"] == {"type": "list", "elements": "str", "required": True}
    assert spec["socket_connect_timeout"]["default"] == 5.0
    assert spec["socket_timeout"]["default"] == 30.0
    for section in ("EXAMPLES", "RETURN"):
        assert yaml.safe_load(getattr(module, section))
    assert "retired_queues" in module.EXAMPLES


# -- through Redis Sentinel: the master is asked of the Sentinels, a failover is followed ------


class FakeSentinel:
    """Stands in for redis.sentinel.Sentinel: records its arguments, hands out a client."""

    def __init__(self, sentinels, sentinel_kwargs=None, **connection_kwargs):
        self.sentinels = sentinels
        self.sentinel_kwargs = sentinel_kwargs
        self.connection_kwargs = connection_kwargs
        self.master = None

    def master_for(self, service_name, **kwargs):
        self.master = (service_name, kwargs)
        return self


def module_params(**overrides) -> dict:
    module = load_module_file()
    params = {name: spec.get("default") for name, spec in module.ARGUMENT_SPEC.items()}
    params.update(mapping=MAPPING, retired_queues=["old"], redis_username="gitlab")
    params.update(overrides)
    return params


def test_sentinels_resolve_the_master_with_the_acl_user_and_the_sentinel_password():
    params = module_params(
        redis_sentinels=[{"host": "10.0.0.1", "port": 26379}, {"host": "10.0.0.2", "port": 26380}],
        redis_sentinel_master_name="gitlab-redis",
        redis_sentinel_password="sentinel-pw",
        redis_password="data-pw",
        redis_db=2,
        redis_tls=True,
        redis_ca_file="/etc/ssl/sidekiq-fleet/ca.crt",
    )
    sentinel = sidekiq_jobs.redis_client(params, sentinel_class=FakeSentinel)
    assert sentinel.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert sentinel.sentinel_kwargs["password"] == "sentinel-pw"
    assert "username" not in sentinel.sentinel_kwargs
    assert sentinel.sentinel_kwargs["ssl"] is True
    assert sentinel.sentinel_kwargs["ssl_ca_certs"] == "/etc/ssl/sidekiq-fleet/ca.crt"
    name, kwargs = sentinel.master
    assert name == "gitlab-redis"
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("gitlab", "data-pw", 2)
    assert kwargs["ssl"] is True and kwargs["socket_timeout"] == 30.0


def test_sentinels_without_password_or_tls():
    params = module_params(redis_sentinels=[{"host": "s1", "port": None}])
    sentinel = sidekiq_jobs.redis_client(params, sentinel_class=FakeSentinel)
    assert sentinel.sentinels == [("s1", 26379)]
    assert "password" not in sentinel.sentinel_kwargs and "ssl" not in sentinel.sentinel_kwargs


def test_without_sentinels_the_client_connects_to_redis_host_as_before(redis_server):
    client = sidekiq_jobs.redis_client(module_params(redis_port=redis_server, redis_username=None))
    assert isinstance(client, redis.Redis) and client.ping()
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", redis_server, 0)


def test_the_sentinel_password_is_no_log_and_documented():
    spec = load_module_file().ARGUMENT_SPEC
    assert spec["redis_sentinel_password"]["no_log"] is True
    assert spec["redis_sentinels"]["default"] == []
    assert spec["redis_sentinel_master_name"]["default"] == "gitlab-redis"


def test_the_playbook_passes_the_sentinels_and_keeps_passwords_off_the_command_line():
    plays = yaml.safe_load((ROOT / "playbooks" / "migrate_routing.yml").read_text())
    calls = [
        (play, task)
        for play in plays
        for task in play.get("tasks", [])
        if "sidekiq_fleet.fleet.sidekiq_migrate_jobs" in task
    ]
    assert len(calls) == 3
    for _, task in calls:
        args = task["sidekiq_fleet.fleet.sidekiq_migrate_jobs"]
        assert "fleet_redis_sentinels" in args["redis_sentinels"]
        assert "fleet_redis_sentinel_master_name" in args["redis_sentinel_master_name"]
        assert "fleet_redis_sentinel_password" in args["redis_sentinel_password"]
        assert "fleet_redis_database" in args["redis_db"]
    (play,) = [p for p in plays if "migrate_llen_script" in p.get("vars", {})]
    (count,) = [t for t in play["tasks"] if "ansible.builtin.command" in t]
    argv = count["ansible.builtin.command"]["argv"]
    assert "password" not in argv
    assert "fleet_redis_password" in count["ansible.builtin.command"]["stdin"]
    assert "fleet_redis_sentinel_password" in count["ansible.builtin.command"]["stdin"]
    assert "fleet_redis_sentinels" in str(count["environment"])
    assert count["no_log"] is True


def _llen_script_run(monkeypatch, env: dict, argv: list[str], stdin: str, fake_sentinel=None):
    """Run the playbook's inline counting script in-process with redis-py stand-ins."""
    plays = yaml.safe_load((ROOT / "playbooks" / "migrate_routing.yml").read_text())
    (play,) = [p for p in plays if "migrate_llen_script" in p.get("vars", {})]
    source = play["vars"]["migrate_llen_script"]
    import io

    import redis.sentinel

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["-c", *argv])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    if fake_sentinel is not None:
        monkeypatch.setattr(redis.sentinel, "Sentinel", fake_sentinel)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    exec(compile(source, "migrate_llen_script", "exec"), {"__name__": "__main__"})
    return out.getvalue()


def test_the_counting_script_goes_through_sentinel_when_configured(monkeypatch):
    made = []

    class Master:
        def llen(self, key):
            return {"queue:old": 2, "queue:x": 1}.get(key, 0)

    class Sentinel(FakeSentinel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def master_for(self, service_name, **kwargs):
            super().master_for(service_name, **kwargs)
            return Master()

    sentinels = [{"host": "10.0.0.1", "port": 26379}, {"host": "10.0.0.2", "port": 26379}]
    printed = _llen_script_run(
        monkeypatch,
        {
            "SIDEKIQ_MIGRATE_REDIS_SENTINELS": json.dumps(sentinels),
            "SIDEKIQ_MIGRATE_REDIS_SENTINEL_MASTER": "gitlab-redis",
        },
        ["10.0.0.9", "6379", "gitlab", "", "4", "old", "x"],
        "data-pw\nsentinel-pw\n",
        Sentinel,
    )
    assert printed.strip() == "3"
    (sentinel,) = made
    assert sentinel.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert sentinel.sentinel_kwargs["password"] == "sentinel-pw"
    name, kwargs = sentinel.master
    assert name == "gitlab-redis"
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("gitlab", "data-pw", 4)


def test_the_counting_script_without_sentinels_connects_directly(monkeypatch, r, redis_server):
    r.lpush("queue:old", "a", "b")
    printed = _llen_script_run(
        monkeypatch,
        {"SIDEKIQ_MIGRATE_REDIS_SENTINELS": "[]"},
        ["127.0.0.1", str(redis_server), "", "", "0", "old"],
        "\n\n",
    )
    assert printed.strip() == "2"
