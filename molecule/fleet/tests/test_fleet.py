"""The fleet with real jobs: routing, processing, retries, metrics, health, restarts, sudo.

Tests run in file order: the later ones restart and kill processes. They take the `producer`
fixture rather than testinfra's parametrized `host`, which pytest would reorder to run first.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from pathlib import Path

from conftest import CLASSES, PRODUCER, WORKERS, host_spec, http_body, http_status, wait_for

testinfra_hosts = [host_spec(PRODUCER)]

JOBS_PER_CLASS = 40
OUT = Path(__file__).resolve().parents[3] / "out"


def _batch(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def listening_queues(worker) -> dict[str, set[str]]:
    """sidekiq@N -> queues, from the arguments the role rendered for each process."""
    result = {}
    for path in worker.check_output(
        "ls /etc/sidekiq-fleet/ | grep -E '^sidekiq@[0-9]+\\.env$'"
    ).split():
        text = worker.file(f"/etc/sidekiq-fleet/{path}").content_string
        args = re.search(r'^SIDEKIQ_ARGS="(.*)"$', text, re.M).group(1).split()
        queues = {args[i + 1].split(",")[0] for i, a in enumerate(args) if a == "-q"}
        result[path.removesuffix(".env")] = queues
    return result


def test_each_worker_runs_one_notify_unit_per_queue_group(workers):
    for name, worker in workers.items():
        assert worker.service("sidekiq.target").is_running, name
        for instance in ("sidekiq@0", "sidekiq@1"):
            show = worker.check_output(
                "systemctl show -p ActiveState -p Type -p NotifyAccess -p WatchdogUSec "
                f"-p StatusText {instance}"
            )
            assert "ActiveState=active" in show, (name, show)
            assert "Type=notify" in show and "WatchdogUSec=10s" in show, (name, show)
            # READY=1 and the status line come from Sidekiq itself (the role's boot file).
            assert "StatusText=processing" in show, (name, show)
    assert listening_queues(workers["fleet-sidekiq1"]) == {
        "sidekiq@0": {"high-urgency"},
        "sidekiq@1": {"default", "mailers"},
    }
    assert listening_queues(workers["fleet-sidekiq2"]) == {
        "sidekiq@0": {"cpu-bound"},
        "sidekiq@1": {"network-intensive", "flaky_import"},
    }


def test_environment_file_is_private_and_unit_stops_after_sidekiq_timeout(workers):
    for worker in workers.values():
        env = worker.file("/etc/sidekiq-fleet/app.env")
        assert (env.mode, env.user) == (0o600, "root")
        show = worker.check_output(
            "systemctl show -p TimeoutStopUSec -p KillSignal -p ExecReload sidekiq@0"
        )
        assert "TimeoutStopUSec=30s" in show and "KillSignal=15" in show and "-TSTP" in show


def test_producer_and_workers_share_one_routing_map(producer, workers):
    mine = producer.file("/etc/sidekiq-fleet/routing.yml").content_string
    for worker in workers.values():
        assert worker.file("/etc/sidekiq-fleet/routing.yml").content_string == mine
    assert "FlakyImportWorker: flaky_import" in mine and "ChecksumWorker: cpu-bound" in mine


def test_jobs_of_every_class_are_processed_on_nodes_listening_to_their_queue(fleet, workers):
    batch = _batch("classes")
    routes = {}
    for worker_class in CLASSES:
        fail = 1 if worker_class == "FlakyImportWorker" else 0
        reply = fleet.enqueue(worker_class, JOBS_PER_CLASS, batch, fail=fail)
        assert reply["count"] == JOBS_PER_CLASS
        routes[worker_class] = reply["queue"]

    # Every flaky job fails its first attempt: Sidekiq puts it in the retry set.
    wait_for(
        "failed FlakyImportWorker jobs in the retry set",
        lambda: int(fleet.redis("ZCARD", "retry")) >= 1,
        timeout=30,
        every=0.5,
    )
    retry_classes = fleet.redis("ZRANGE", "retry", "0", "-1")
    assert "FlakyImportWorker" in retry_classes and "AuditEventWorker" not in retry_classes

    expected = JOBS_PER_CLASS * len(CLASSES)
    wait_for(
        f"{expected} rows of batch {batch}", lambda: fleet.rows(batch) == expected, timeout=120
    )

    listeners = {name: listening_queues(worker) for name, worker in workers.items()}
    rows = fleet.sql(
        "SELECT worker_class, queue, host, process, attempt FROM sample_jobs "
        f"WHERE batch = '{batch}'"
    )
    assert len(rows) == expected
    for worker_class, queue, host, process, attempt in rows:
        assert queue == routes[worker_class], (worker_class, queue)
        assert host in listeners, host
        assert queue in listeners[host][process], (worker_class, queue, host, process)
        assert int(attempt) == (2 if worker_class == "FlakyImportWorker" else 1)
    hosts_used = {row[2] for row in rows}
    assert hosts_used == set(WORKERS)


def test_metrics_endpoint_shows_counts_and_readiness_is_200(producer, fleet, workers):
    text = http_body(producer, "http://172.28.52.21:8082/metrics")
    processed = float(re.search(r"^sidekiq_jobs_processed_total (\S+)$", text, re.M).group(1))
    failed = float(re.search(r"^sidekiq_jobs_failed_total (\S+)$", text, re.M).group(1))
    assert processed >= JOBS_PER_CLASS * len(CLASSES)
    assert failed >= JOBS_PER_CLASS  # every flaky job failed once
    for queue in ("high-urgency", "default", "cpu-bound", "network-intensive", "flaky_import"):
        assert f'sidekiq_queue_size{{queue="{queue}"}}' in text
        assert f'sidekiq_queue_latency_seconds{{queue="{queue}"}}' in text
    assert "sidekiq_retry_set_size" in text and "sidekiq_dead_set_size" in text
    assert re.search(r'^sidekiq_process_busy_threads\{pid="\d+",tag="sidekiq@1"\}', text, re.M)
    assert 'sidekiq_process_up{tag="sidekiq@0"} 1.0' in text
    for worker in workers.values():
        assert http_status(worker, "http://127.0.0.1:8092/liveness") == 200
        assert http_status(worker, "http://127.0.0.1:8092/readiness") == 200
    # Health listens on loopback only in this scenario: the producer cannot reach it.
    assert http_status(producer, "http://172.28.52.21:8092/readiness") == 0


def test_readiness_fails_while_a_local_process_is_stopped(workers):
    worker = workers["fleet-sidekiq1"]
    worker.check_output("systemctl stop sidekiq@1.service")
    try:
        wait_for(
            "readiness 503",
            lambda: http_status(worker, "http://127.0.0.1:8092/readiness") == 503,
            timeout=30,
        )
    finally:
        worker.check_output("systemctl start sidekiq@1.service")
    wait_for(
        "readiness 200",
        lambda: http_status(worker, "http://127.0.0.1:8092/readiness") == 200,
        timeout=30,
    )


def test_kill_9_is_restarted_by_systemd_and_readiness_recovers(workers):
    worker = workers["fleet-sidekiq2"]

    def main_pid() -> int:
        return int(worker.check_output("systemctl show -p MainPID --value sidekiq@0.service"))

    before = main_pid()
    restarts = int(worker.check_output("systemctl show -p NRestarts --value sidekiq@0.service"))
    worker.check_output(f"kill -9 {before}")
    wait_for(
        "a new sidekiq@0 process",
        lambda: main_pid() not in (0, before) and worker.service("sidekiq@0.service").is_running,
        timeout=30,
    )
    assert (
        int(worker.check_output("systemctl show -p NRestarts --value sidekiq@0.service"))
        == restarts + 1
    )
    wait_for(
        "readiness 200 after the restart",
        lambda: http_status(worker, "http://127.0.0.1:8092/readiness") == 200,
        timeout=40,
    )


def test_restarting_the_target_while_jobs_flow_loses_no_job(producer, fleet, workers):
    batch = _batch("restart")
    per_class = 150
    classes = ("AuditEventWorker", "ChecksumWorker")  # one on each node
    for worker_class in classes:
        producer.check_output(
            f"nohup sidekiq-fleet-enqueue {worker_class} {per_class} --batch {batch} --rate 30 "
            f">/tmp/{batch}-{worker_class}.json 2>/tmp/{batch}-{worker_class}.err &"
        )
    time.sleep(2)
    for worker in workers.values():
        # As the deploy user, through the sudo rule: a graceful restart (TERM, then start).
        worker.check_output("runuser -u deploy -- sudo -n systemctl restart sidekiq.target")
    for worker_class in classes:
        reply = wait_for(
            f"the {worker_class} producer to finish",
            lambda wc=worker_class: _json_or_none(
                producer.run(f"cat /tmp/{batch}-{wc}.json").stdout
            ),
            timeout=60,
        )
        assert reply["count"] == per_class
    expected = per_class * len(classes)
    wait_for(
        f"{expected} rows (jobs enqueued) of batch {batch}",
        lambda: fleet.rows(batch) == expected,
        timeout=90,
    )


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def test_deploy_user_restarts_without_password_and_nothing_else(workers):
    worker = workers["fleet-sidekiq1"]

    def sudo(command: str) -> int:
        return worker.run(f"runuser -u deploy -- sudo -n {command}").rc

    assert sudo("systemctl restart sidekiq@0.service") == 0
    assert sudo("systemctl reload sidekiq.target") == 0
    assert sudo("systemctl --no-pager status sidekiq.target") in (0, 3)
    worker.check_output("systemctl restart sidekiq.target")  # undo the quiet
    for forbidden in (
        "systemctl stop sidekiq.target",
        "systemctl restart sidekiq@0.service ssh.service",
        "systemctl restart sidekiq@9.service",
        "systemctl restart redis-server.service",
        "/bin/sh -c id",
        "id",
        "-u git id",
    ):
        assert sudo(forbidden) != 0, forbidden
    assert worker.run("visudo -cf /etc/sudoers.d/sidekiq-fleet-deploy").rc == 0


def test_processes_come_back_ready_after_the_restarts(workers):
    for worker in workers.values():
        wait_for(
            "readiness 200",
            lambda w=worker: http_status(w, "http://127.0.0.1:8092/readiness") == 200,
            timeout=40,
        )


def test_unit_hardening_exposure_is_low(workers):
    worker = workers["fleet-sidekiq1"]
    out = worker.check_output(
        "systemd-analyze security --no-pager sidekiq@0.service 2>&1 | tail -1"
    )
    score = float(re.search(r"exposure level for sidekiq@0.service: (\d+\.\d+)", out).group(1))
    OUT.mkdir(exist_ok=True)
    (OUT / "fleet-exposure.txt").write_text(out + "\n")
    assert score <= 3.0, out


def test_registry_key_is_copied_from_the_producer(producer, workers):
    source = producer.file("/var/opt/gitlab/gitlab-rails/etc/gitlab-registry.key")
    for worker in workers.values():
        key = worker.file("/etc/sidekiq-fleet/gitlab-registry.key")
        # root owns it, the app group reads it: the app user cannot rewrite the registry's key.
        assert (key.mode, key.user, key.group) == (0o440, "root", "git")
        assert key.sha256sum == source.sha256sum
        assert (
            "api_url: http://172.28.52.31:5000"
            in worker.file("/etc/sidekiq-fleet/app.yml").content_string
        )


def test_ldap_settings_and_sync_cron_are_rendered(workers):
    for worker in workers.values():
        ldap = worker.file("/etc/sidekiq-fleet/ldap.yml")
        assert (ldap.mode, ldap.user, ldap.group) == (0o640, "root", "git")
        assert "ldap.fleet.internal" in ldap.content_string
        assert "30 1,13 * * *" in worker.file("/etc/sidekiq-fleet/app.yml").content_string


def test_sidekiq_web_answers_on_loopback_with_basic_auth_only(producer, workers):
    worker = workers["fleet-sidekiq1"]
    wait_for(
        "Sidekiq Web",
        lambda: http_status(worker, "http://127.0.0.1:3211/") in (401, 200),
        timeout=30,
    )
    assert http_status(worker, "http://127.0.0.1:3211/") == 401
    assert http_status(worker, "http://127.0.0.1:3211/", auth="admin:wrong-password") == 401
    password = worker.check_output(
        "bash -c "
        + shlex.quote('. /etc/sidekiq-fleet/sidekiq-web.env; printf %s "$SIDEKIQ_WEB_PASSWORD"')
    )
    assert http_status(worker, "http://127.0.0.1:3211/", auth=f"admin:{password}") == 200
    assert worker.socket("tcp://127.0.0.1:3211").is_listening
    assert not worker.socket("tcp://0.0.0.0:3211").is_listening


def test_sidekiq_web_session_secret_is_random_per_node(workers):
    """The cookie secret is random and kept on the node, not derived from the shared password."""
    secrets = set()
    for worker in workers.values():
        path = "/etc/sidekiq-fleet/sidekiq-web-session.env"
        secret_file = worker.file(path)
        assert (secret_file.mode, secret_file.user) == (0o600, "root")
        secret = secret_file.content_string.strip().split("=", 1)[1]
        password = worker.check_output(
            "bash -c "
            + shlex.quote('. /etc/sidekiq-fleet/sidekiq-web.env; printf %s "$SIDEKIQ_WEB_PASSWORD"')
        )
        assert len(secret) == 64 and password not in secret
        web_env = worker.file("/etc/sidekiq-fleet/sidekiq-web.env").content_string
        assert "SESSION_SECRET" not in web_env
        secrets.add(secret)
    assert len(secrets) == len(workers)


def test_throughput_of_the_fleet(fleet):
    """Jobs per second the two worker nodes process (written to out/fleet-throughput.json)."""
    batch = _batch("throughput")
    count = 400
    started = time.monotonic()
    for worker_class in ("UrgentNotificationWorker", "AuditEventWorker", "RepositoryProbeWorker"):
        fleet.enqueue(worker_class, count, batch, fail=0)
    expected = 3 * count
    wait_for(f"{expected} rows", lambda: fleet.rows(batch) == expected, timeout=180, every=0.5)
    elapsed = time.monotonic() - started
    first, last = fleet.sql(
        f"SELECT extract(epoch FROM min(finished_at)), extract(epoch FROM max(finished_at)) "
        f"FROM sample_jobs WHERE batch = '{batch}'"
    )[0]
    span = max(float(last) - float(first), 1e-3)
    result = {
        "jobs": expected,
        "wall_seconds": round(elapsed, 2),
        "jobs_per_second": round(expected / span, 1),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "fleet-throughput.json").write_text(json.dumps(result) + "\n")
    print(result)
    assert result["jobs_per_second"] > 0
