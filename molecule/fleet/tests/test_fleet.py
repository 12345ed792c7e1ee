"""The fleet with real jobs: routing, processing, retries, metrics, health, restarts, sudo.

Tests run in file order: the later ones restart and kill processes. They take the `producer`
fixture rather than testinfra's parametrized `host`, which pytest would reorder to run first.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    CLASSES,
    INVENTORY,
    PRODUCER,
    WORKERS,
    host_spec,
    http_body,
    http_status,
    rendered_args,
    wait_for,
)

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
    # Sidekiq's stat:processed / stat:failed count the whole Redis: cluster-wide names, labelled
    # with the Redis they describe (issue 14 item 6); per-process series name their node.
    cluster = r'\{redis="[^"]+:\d+/\d+"\}'
    processed = float(
        re.search(rf"^sidekiq_cluster_jobs_processed_total{cluster} (\S+)$", text, re.M).group(1)
    )
    failed = float(
        re.search(rf"^sidekiq_cluster_jobs_failed_total{cluster} (\S+)$", text, re.M).group(1)
    )
    assert processed >= JOBS_PER_CLASS * len(CLASSES)
    assert failed >= JOBS_PER_CLASS  # every flaky job failed once
    assert not re.search(r"^sidekiq_jobs_", text, re.M)  # no cluster count under a node's name
    for queue in ("high-urgency", "default", "cpu-bound", "network-intensive", "flaky_import"):
        for name in ("sidekiq_cluster_queue_size", "sidekiq_cluster_queue_latency_seconds"):
            assert re.search(rf'^{name}\{{queue="{queue}",redis="[^"]+"\}}', text, re.M), name
    assert re.search(rf"^sidekiq_cluster_retry_set_size{cluster} ", text, re.M)
    assert re.search(rf"^sidekiq_cluster_dead_set_size{cluster} ", text, re.M)
    busy = re.findall(
        r'^sidekiq_process_busy_threads\{hostname="([^"]+)",pid="\d+",process="([^"]+)",'
        r'tag="sidekiq@1"\}',
        text,
        re.M,
    )
    assert busy and all(process.startswith(f"{host}:") for host, process in busy), busy
    assert re.search(r'^sidekiq_process_up\{hostname="[^"]+",tag="sidekiq@0"\} 1.0', text, re.M)
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


def _main_pids(workers) -> dict[str, int]:
    return {
        name: int(worker.check_output("systemctl show -p MainPID --value sidekiq@0.service"))
        for name, worker in workers.items()
    }


def _runs_per_jid(fleet, batch: str) -> dict[str, int]:
    rows = fleet.sql(
        f"SELECT jid, count(*) FROM sample_job_runs WHERE batch = '{batch}' GROUP BY jid"
    )
    return {jid: int(n) for jid, n in rows}


def _start_load(producer, batch: str, per_class: int, rate: int, classes, extra: str = "") -> None:
    for worker_class in classes:
        producer.check_output(
            f"nohup sidekiq-fleet-enqueue {worker_class} {per_class} --batch {batch} --rate {rate} "
            f"{extra} "
            f">/tmp/{batch}-{worker_class}.json 2>/tmp/{batch}-{worker_class}.err &"
        )


def _enqueued_jids(producer, batch: str, per_class: int, classes, timeout: float) -> list[str]:
    jids: list[str] = []
    for worker_class in classes:
        reply = wait_for(
            f"the {worker_class} producer to finish",
            lambda wc=worker_class: _json_or_none(
                producer.run(f"cat /tmp/{batch}-{wc}.json").stdout
            ),
            timeout=timeout,
        )
        assert reply["count"] == per_class and len(reply["jids"]) == per_class
        jids += reply["jids"]
    return jids


def _each_job_ran_once(fleet, batch: str, jids: list[str], timeout: float) -> None:
    """Every enqueued job ran exactly once: one execution row per jid (sample_job_runs is
    insert-only, so a job run twice shows up as two rows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(_runs_per_jid(fleet, batch).values()) >= len(jids):
            break
        time.sleep(1)
    time.sleep(3)  # a job run twice would record its second execution by now
    runs = _runs_per_jid(fleet, batch)
    lost = [jid for jid in jids if jid not in runs]
    twice = {jid: n for jid, n in runs.items() if n != 1}
    if lost or twice or set(runs) != set(jids):
        # Where the missing jobs are: still queued, in the retry/dead/schedule sets, or gone.
        wanted = set(lost)
        where = {}
        for key, command in (
            ("retry", "ZRANGE retry 0 -1"),
            ("dead", "ZRANGE dead 0 -1"),
            ("schedule", "ZRANGE schedule 0 -1"),
            ("queue:default", "LRANGE queue:default 0 -1"),
            ("queue:cpu-bound", "LRANGE queue:cpu-bound 0 -1"),
        ):
            found = [j for j in wanted if j in fleet.redis(*command.split())]
            if found:
                where[key] = len(found)
        pytest.fail(
            f"batch {batch}: {len(jids)} enqueued, {len(runs)} ran, {len(lost)} never ran "
            f"(found: {where or 'nowhere in Redis'}; e.g. {lost[:3]}), "
            f"{len(twice)} ran more than once (e.g. {dict(list(twice.items())[:3])})"
        )


def test_restarting_the_target_while_jobs_flow_loses_no_job(producer, fleet, workers):
    batch = _batch("restart")
    per_class = 150
    classes = ("AuditEventWorker", "ChecksumWorker")  # one on each node
    _start_load(producer, batch, per_class, 30, classes)
    wait_for("jobs of the batch running", lambda: sum(_runs_per_jid(fleet, batch).values()) > 20)
    before = _main_pids(workers)
    done_before = sum(_runs_per_jid(fleet, batch).values())
    for worker in workers.values():
        # As the deploy user, through the sudo rule: a graceful restart (TERM, then start).
        worker.check_output("runuser -u deploy -- sudo -n systemctl restart sidekiq.target")
    after = _main_pids(workers)
    assert all(after[name] not in (0, before[name]) for name in workers), (before, after)
    jids = _enqueued_jids(producer, batch, per_class, classes, timeout=60)
    # The restart happened while jobs flowed: some ran before it, the rest after it.
    assert 0 < done_before < len(jids)
    _each_job_ran_once(fleet, batch, jids, timeout=90)


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def test_deploy_user_restarts_without_password_and_nothing_else(workers):
    """sudo's own policy (sudo -l COMMAND), not whether the command would have worked."""
    worker = workers["fleet-sidekiq1"]

    def allowed(command: str) -> bool:
        result = worker.run(f"runuser -u deploy -- sudo -n -l {command}")
        assert "password is required" not in result.stderr, result.stderr
        return result.rc == 0

    for command in (
        "systemctl restart sidekiq@0.service",
        "systemctl reload sidekiq.target",
        "systemctl --no-pager status sidekiq.target",
        "systemctl restart sidekiq.target",
    ):
        assert allowed(command), command
    for forbidden in (
        "systemctl stop sidekiq.target",
        "systemctl restart sidekiq@0.service ssh.service",  # what sidekiq@* would allow
        "systemctl restart sidekiq@*",
        "systemctl restart sidekiq@9.service",  # no such queue group here
        "systemctl restart redis-server.service",
        "systemctl edit sidekiq@0.service",
        "/bin/sh -c id",
        "id",
        "-u git id",
    ):
        assert not allowed(forbidden), forbidden
    # And sudo itself refuses to run one, with its own message.
    refused = worker.run("runuser -u deploy -- sudo -n systemctl stop sidekiq.target")
    assert refused.rc == 1 and "sudo:" in refused.stderr, refused.stderr
    assert worker.service("sidekiq@0.service").is_running
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
    # The figure follows from its own inputs (first to last completion), and every job ran once.
    assert 0 < span <= elapsed and result["jobs_per_second"] == round(expected / span, 1)
    runs = _runs_per_jid(fleet, batch)
    assert len(runs) == expected and set(runs.values()) == {1}


def _unit_times(worker) -> tuple[float, float]:
    """(last stop, last start) of this node's sidekiq@0, as Unix times with microseconds."""
    out = worker.check_output(
        "systemctl show --timestamp=us+utc -p InactiveEnterTimestamp -p ExecMainStartTimestamp "
        "sidekiq@0.service"
    )
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def unix(text: str) -> float:
        # "Tue 2026-12-01 22:04:56.123456 UTC"
        found = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", text)
        assert found, f"not a timestamp: {text!r}"
        stamp = datetime.datetime.fromisoformat(found.group(0))
        return stamp.replace(tzinfo=datetime.UTC).timestamp()

    return unix(values["InactiveEnterTimestamp"]), unix(values["ExecMainStartTimestamp"])


def test_rolling_deploy_restarts_one_node_at_a_time_and_loses_no_job(
    producer, fleet, workers, tmp_path
):
    """playbooks/deploy.yml with new code under load: nodes restart one after the other, the
    other node keeps completing jobs meanwhile, every job runs exactly once (out/fleet-deploy.json
    holds the measured gaps)."""
    root = Path(__file__).resolve().parents[3]
    release = tmp_path / "release"
    shutil.copytree(root / "apps" / "sample", release)
    batch = _batch("deploy")
    (release / "REVISION").write_text(batch + "\n")
    # Cheap jobs on each node (queue default on sidekiq1, flaky_import on sidekiq2, told never to
    # fail), so the fleet keeps up with the load and a backlog cannot pass for a lost job.
    classes = ("AuditEventWorker", "FlakyImportWorker")
    # 240 s of load at 50 jobs/s per class: longer than the deploy (174 s measured), so both
    # restarts happen under load.
    per_class, rate = 12000, 50
    before = _main_pids(workers)
    _start_load(producer, batch, per_class, rate, classes, extra="--fail 0")
    wait_for("jobs of the batch running", lambda: sum(_runs_per_jid(fleet, batch).values()) > 20)
    env = dict(os.environ, ANSIBLE_CONFIG=str(root / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    started = time.time()
    deploy = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            INVENTORY,
            str(root / "playbooks" / "deploy.yml"),
            "-e",
            f"sidekiq_app_source={release}",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    deploy_seconds = time.time() - started
    assert deploy.returncode == 0, deploy.stdout[-4000:] + deploy.stderr[-2000:]
    after = _main_pids(workers)
    assert all(after[name] not in (0, before[name]) for name in workers), (before, after)
    (stop1, start1), (stop2, start2) = (_unit_times(workers[name]) for name in WORKERS)
    # Rolling: the second node went down only after the first was back.
    assert stop1 < start1 <= stop2 < start2, (stop1, start1, stop2, start2)

    jids = _enqueued_jids(producer, batch, per_class, classes, timeout=per_class / rate + 120)
    _each_job_ran_once(fleet, batch, jids, timeout=300)

    def longest_pause(host: str) -> tuple[float, float]:
        """The longest interval in which `host` completed no job of the batch (its restart)."""
        row = fleet.sql(
            "SELECT extract(epoch FROM prev), extract(epoch FROM finished_at) FROM ("
            "SELECT finished_at, lag(finished_at) OVER (ORDER BY finished_at) AS prev "
            f"FROM sample_job_runs WHERE batch = '{batch}' AND host = '{host}') g "
            "WHERE prev IS NOT NULL ORDER BY finished_at - prev DESC LIMIT 1"
        )[0]
        return float(row[0]), float(row[1])

    def completions_on(host: str, start: float, end: float) -> int:
        where = (
            f"batch = '{batch}' AND host = '{host}' "
            f"AND finished_at > to_timestamp({start}) AND finished_at < to_timestamp({end})"
        )
        return int(fleet.sql(f"SELECT count(*) FROM sample_job_runs WHERE {where}")[0][0])

    pauses = {name: longest_pause(name) for name in WORKERS}
    # Each node's longest pause is its restart (it contains the unit's stop and start) ...
    for name, (stop, start) in zip(WORKERS, ((stop1, start1), (stop2, start2)), strict=True):
        assert pauses[name][0] <= stop and start <= pauses[name][1], (name, pauses[name])
    # ... and meanwhile the other node kept completing jobs.
    other = {WORKERS[0]: WORKERS[1], WORKERS[1]: WORKERS[0]}
    during = {name: completions_on(other[name], *pauses[name]) for name in WORKERS}
    assert all(n > 0 for n in during.values()), during
    overall = fleet.sql(
        "SELECT coalesce(max(gap), 0) FROM (SELECT extract(epoch FROM finished_at - "
        "lag(finished_at) OVER (ORDER BY finished_at)) AS gap "
        f"FROM sample_job_runs WHERE batch = '{batch}') g"
    )[0][0]
    result = {
        "jobs": len(jids),
        "deploy_seconds": round(deploy_seconds, 1),
        "longest_pause_per_node_seconds": {n: round(b - a, 2) for n, (a, b) in pauses.items()},
        "jobs_completed_by_the_other_node_meanwhile": during,
        "longest_gap_fleet_seconds": round(float(overall), 2),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "fleet-deploy.json").write_text(json.dumps(result) + "\n")
    print(result)
    # The fleet as a whole never paused for as long as a node did.
    assert result["longest_gap_fleet_seconds"] < min(
        result["longest_pause_per_node_seconds"].values()
    )


def test_fleetsim_plans_the_process_arguments_the_role_rendered(workers):
    """`fleetsim plan --json` on this scenario's inventory gives, for every worker, exactly the
    processes and Sidekiq arguments the role rendered on the node (one source of defaults and
    of fetch order: weighted `-q NAME,1`, as GitLab's sidekiq-cluster starts them)."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    plan = subprocess.run(
        [sys.executable, "-m", "simulator", "plan", "--json", "-i", inventory],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert plan.returncode in (0, 1), plan.stderr
    planned = {h["host"]: h["processes"] for h in json.loads(plan.stdout)["hosts"]}
    for name, worker in workers.items():
        rendered = rendered_args(worker)
        expected = {p["index"]: p["sidekiq_args"] for p in planned[name]}
        assert rendered == expected, name
        assert all(
            arg.endswith(",1") for args in rendered.values() for i, arg in enumerate(args)
            if i and args[i - 1] == "-q"
        ), f"{name}: every queue carries a weight (weighted fetch order)"
