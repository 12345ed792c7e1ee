"""Redis failover under load (issue 13), after the migration's own checks on the same fleet.

Three data nodes (mig-redis, mig-redis2, mig-redis3), a sentinel on each, quorum 2; every client
goes through the sentinels. A producer on the load balancer enqueues through HAProxy at a steady
rate; mig-rails1 uses durable enqueue (WAIT for one replica, push again when unconfirmed),
mig-rails2 does not, and HAProxy alternates between them, so every fault is measured with and
without it at once. The faults, in turn:

(a) ``kill -9`` of the primary's redis-server (systemd brings it back after
    redis_sentinel_restart_delay_s, by then as a replica);
(b) the next primary cut off from every other host by a firewall table while it keeps running:
    it must stop accepting writes (min-replicas-to-write 1, min-replicas-max-lag 10);
(c) the cut-off node comes back and rejoins as a replica.

Measured per fault: seconds until the sentinels name a new primary, until a job enqueued after
the fault has run, until the old primary is a replica again; jobs acknowledged to the producer
(HTTP 200 with its job id) against jobs run, lost and run twice, per producer. Target: no
acknowledged job lost with durable enqueue; losses without it are reported, not failed.
The figures go to out/failover.json and the test output; docs/failover.md has the table.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import testinfra
from conftest import LB, PRODUCERS, WORKERS, host_spec, wait_for, with_app_env

testinfra_hosts = [host_spec(LB)]

OUT = Path(__file__).resolve().parents[3] / "out"
REDIS_NODES = {
    "172.28.53.11": "mig-redis",
    "172.28.53.13": "mig-redis2",
    "172.28.53.14": "mig-redis3",
}
LOG = "/var/log/sidekiq-fleet-migration/failover.jsonl"
STOP = "/var/log/sidekiq-fleet-migration/failover-stop"
# One batch name per run, so a verify run again on the same lab counts only its own jobs.
BATCH = f"failover-{int(time.time())}"
CLASSES = "UrgentNotificationWorker,ChecksumWorker,AuditEventWorker"
RATE = 8.0  # requests per second, one job each
CUT_TABLE = "sidekiq_fleet_failover_cut"

# Waiting jobs of the batch on the current primary (queues, retry and schedule sets).
PENDING_SCRIPT = r"""
import json, os, redis
from redis.sentinel import Sentinel
env = os.environ
hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]))
         for h in env["SIDEKIQ_REDIS_SENTINELS"].split(",")]
s = Sentinel(hosts,
             sentinel_kwargs={"password": env.get("SIDEKIQ_REDIS_SENTINEL_PASSWORD") or None},
             socket_timeout=2)
r = s.master_for(env["SIDEKIQ_REDIS_SENTINEL_MASTER"], username=env["SIDEKIQ_REDIS_USERNAME"],
                 password=env["SIDEKIQ_REDIS_PASSWORD"], decode_responses=True)
jids = {}
def add(raw, where):
    # The migration's planted payloads are not all JSON: only jobs with a jid count.
    try:
        job = json.loads(raw)
        jids[job["jid"]] = where
    except (ValueError, KeyError, TypeError):
        pass
for key in r.scan_iter(match="queue:*"):
    for raw in r.lrange(key, 0, -1):
        add(raw, key)
for name in ("retry", "schedule", "dead"):
    for raw in r.zrange(name, 0, -1):
        add(raw, name)
print(json.dumps(jids))
"""


def docker(container: str, command: str, stdin: str | None = None, check: bool = True) -> str:
    """Run a shell command in a lab container (docker exec; stdin never shows in a process list)."""
    done = subprocess.run(
        ["docker", "exec", "-i", container, "bash", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{container}: {command!r} exited {done.returncode}: {done.stderr.strip()[:400]}"
        )
    return done.stdout


class Fleet:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.worker = lab.worker

    def secrets(self) -> tuple[str, str]:
        """The app user's and the sentinels' passwords, read once from a worker's app.env; they
        reach the data nodes on stdin only."""
        if not hasattr(self, "_secrets"):
            text = self.worker.check_output(
                with_app_env(
                    'printf "%s\\n%s" "$SIDEKIQ_REDIS_PASSWORD" "$SIDEKIQ_REDIS_SENTINEL_PASSWORD"'
                )
            )
            app, sentinel = text.split("\n", 1)
            self._secrets = (app, sentinel)
        return self._secrets

    def node(self, container: str) -> dict[str, Any]:
        """One data node as it sees itself and as its own sentinel sees the primary, over the
        loopback (which a firewall cut leaves alone)."""
        app, sentinel = self.secrets()
        out = docker(
            container,
            "read -r app; read -r sentinel; "
            'REDISCLI_AUTH="$sentinel" timeout 5 redis-cli --no-auth-warning -p 26379 '
            "SENTINEL get-master-addr-by-name gitlab-redis | head -1; echo ---; "
            'REDISCLI_AUTH="$app" timeout 5 redis-cli --no-auth-warning --user gitlab '
            "INFO replication",
            stdin=f"{app}\n{sentinel}\n",
            check=False,
        )
        head, _, info = out.partition("---")
        fields = dict(line.strip().split(":", 1) for line in info.splitlines() if ":" in line)
        return {
            "sentinel_says": head.strip() or None,
            "role": fields.get("role"),
            "master_host": fields.get("master_host"),
            "link": fields.get("master_link_status"),
        }

    def primary(self, exclude: str | None = None, among: tuple[str, ...] = ()) -> str | None:
        """The address at least two sentinels name (those of `among`, default all), or None."""
        nodes = among or tuple(REDIS_NODES.values())
        answers = [self.node(c)["sentinel_says"] for c in nodes]
        answers = [a for a in answers if a in REDIS_NODES]
        if not answers:
            return None
        address, votes = Counter(answers).most_common(1)[0]
        if votes < 2 or address == exclude:
            return None
        return address

    def pending(self) -> dict[str, str]:
        out = self.worker.check_output(with_app_env(f"python3 -c {shlex.quote(PENDING_SCRIPT)}"))
        return json.loads(out)

    def runs(self) -> dict[str, int]:
        rows = self.lab.sql(
            f"SELECT jid, count(*) FROM sample_job_runs WHERE batch = '{BATCH}' GROUP BY jid"
        )
        return {jid: int(n) for jid, n in rows}

    def write_answer(self, container: str) -> str:
        """Try a write on the node itself (its network may be cut); return Redis' answer."""
        return docker(
            container,
            'read -r p; REDISCLI_AUTH="$p" timeout 5 redis-cli --no-auth-warning --user gitlab '
            "SET sidekiq-fleet:split-brain-probe 1 2>&1",
            stdin=self.secrets()[0] + "\n",
            check=False,
        ).strip()

    def processing_gap(self, start: float, end: float) -> tuple[float, float]:
        """The longest pause between two job completions in [start, end] (epoch seconds):
        (last completion before it, first completion after it)."""
        rows = self.lab.sql(
            "SELECT extract(epoch FROM finished_at) FROM sample_job_runs "
            f"WHERE batch = '{BATCH}' AND finished_at BETWEEN to_timestamp({start}) "
            f"AND to_timestamp({end}) ORDER BY finished_at"
        )
        times = [float(r[0]) for r in rows]
        if len(times) < 2:
            return (start, end)
        gaps = sorted(itertools.pairwise(times), key=lambda pair: pair[1] - pair[0])
        return gaps[-1]


def _rejoined(fleet: Fleet, address: str, primary: str) -> bool:
    node = fleet.node(REDIS_NODES[address])
    return node["role"] == "slave" and node["master_host"] == primary and node["link"] == "up"


@pytest.fixture(scope="module")
def failover(lab, host) -> dict[str, Any]:
    fleet = Fleet(lab)
    first = wait_for("the sentinels to agree on a primary", fleet.primary, 60, 1)
    assert first in REDIS_NODES, f"the sentinels name {first}, not a data node of the scenario"
    wait_for(
        "both replicas to be in sync",
        lambda: all(_rejoined(fleet, a, first) for a in REDIS_NODES if a != first),
        60,
        1,
    )
    host.run(f"rm -f {LOG} {STOP}")
    host.check_output(
        "systemd-run --unit=mig-failover-producer --collect --quiet python3 "
        "/usr/local/lib/sidekiq-fleet-migration/producer.py "
        f"--url=http://{host.ansible.get_variables()['fleet_internal_address']}:8080 "
        f"--batch={BATCH} --log={LOG} --stop-file={STOP} --rate={RATE} --jobs=1 "
        "--max-requests=4000 --max-seconds=420 "
        f"--classes={CLASSES}"
    )
    time.sleep(10)
    result: dict[str, Any] = {"faults": {}}

    # (a) kill -9 of the primary's redis-server.
    victim = REDIS_NODES[first]
    t0 = time.time()
    docker(
        victim,
        'pid=$(systemctl show -p MainPID --value redis-server); [ "$pid" -gt 0 ] && kill -9 "$pid"',
    )
    second = wait_for(
        "the sentinels to name a new primary", lambda: fleet.primary(exclude=first), 90, 0.5
    )
    t_failover = time.time()
    wait_for(
        f"{victim} to come back as a replica of {second}",
        lambda: _rejoined(fleet, first, second),
        120,
        1,
    )
    t_rejoin = time.time()
    last, resumed = fleet.processing_gap(t0 - 2, t_rejoin)
    result["faults"]["kill -9 of the primary"] = {
        "window": [t0, t_rejoin],
        "old_primary": victim,
        "new_primary": REDIS_NODES[second],
        "failover_s": round(t_failover - t0, 1),
        "no_processing_s": round(resumed - last, 1),
        "processing_resumed_s": round(resumed - t0, 1),
        "old_primary_rejoined_s": round(t_rejoin - t0, 1),
    }
    print(f"\nkill -9 of the primary: {result['faults']['kill -9 of the primary']}")
    time.sleep(10)

    # (b) the new primary cut off by a firewall table while it runs, then (c) back.
    cut = REDIS_NODES[second]
    others = tuple(c for c in REDIS_NODES.values() if c != cut)
    fleet.secrets()
    t1 = time.time()
    docker(
        cut,
        f"nft add table inet {CUT_TABLE} && "
        f"nft add chain inet {CUT_TABLE} input "
        "'{ type filter hook input priority -200; policy drop; }' && "
        f"nft add chain inet {CUT_TABLE} output "
        "'{ type filter hook output priority -200; policy drop; }' && "
        f"nft add rule inet {CUT_TABLE} input iif lo accept && "
        f"nft add rule inet {CUT_TABLE} output oif lo accept",
    )
    # Both milestones in one loop: the other sentinels' failover, and the cut node's refusal.
    third = t_failover = t_refused = None
    answer = ""
    while time.time() < t1 + 90 and (t_failover is None or t_refused is None):
        if t_failover is None:
            third = fleet.primary(exclude=second, among=others)
            if third:
                t_failover = time.time()
        if t_refused is None:
            answer = fleet.write_answer(cut)
            if "NOREPLICAS" in answer:
                t_refused = time.time()
        time.sleep(0.3)
    assert third and t_failover, f"no failover within 90 s of cutting off {cut}"
    time.sleep(max(0.0, t1 + 30 - time.time()))
    t2 = time.time()
    docker(cut, f"nft delete table inet {CUT_TABLE}")
    wait_for(
        f"{cut} to rejoin as a replica of {third}", lambda: _rejoined(fleet, second, third), 120, 1
    )
    t_rejoin = time.time()
    last, resumed = fleet.processing_gap(t1 - 2, t_rejoin)
    result["faults"]["primary cut off by the firewall"] = {
        "window": [t1, t_rejoin],
        "old_primary": cut,
        "new_primary": REDIS_NODES[third],
        "failover_s": round(t_failover - t1, 1),
        "no_processing_s": round(resumed - last, 1),
        "processing_resumed_s": round(resumed - t1, 1),
        "writes_refused_after_s": round(t_refused - t1, 1) if t_refused else None,
        "refusal": (answer.splitlines() or [""])[-1][:120],
        "cut_s": round(t2 - t1, 1),
        "old_primary_rejoined_after_heal_s": round(t_rejoin - t2, 1),
    }
    print(f"primary cut off: {result['faults']['primary cut off by the firewall']}")
    time.sleep(10)

    host.run(f"touch {STOP}")
    wait_for(
        "the failover producer to stop",
        lambda: (
            host.run("systemctl is-active mig-failover-producer.service").stdout.strip() != "active"
        ),
        60,
        1,
    )

    log = [json.loads(line) for line in host.file(LOG).content_string.splitlines() if line.strip()]
    acked = {}
    for entry in log:
        if entry.get("status") == 200:
            for jid in entry.get("jids") or []:
                acked[jid] = entry
    last: dict[str, int] = {}

    def drained() -> bool:
        nonlocal last
        runs = fleet.runs()
        pending = fleet.pending()
        stable = runs == last and not any(j in acked for j in pending)
        last = runs
        return stable

    wait_for("every acknowledged job to run or be accounted for", drained, 180, 5)
    runs = last
    pending = fleet.pending()
    result["requests"] = len(log)
    result["by_producer"] = {}
    for producer in PRODUCERS:
        mine = {jid: e for jid, e in acked.items() if e.get("producer") == producer}
        durable = bool(next((e.get("durable") for e in mine.values()), 0))
        per_fault = {}
        for name, fault in result["faults"].items():
            start, end = fault["window"]
            in_window = {j for j, e in mine.items() if start - 2 <= e["t"] <= end}
            per_fault[name] = {
                "acknowledged": len(in_window),
                "lost": sorted(j for j in in_window if runs.get(j, 0) == 0 and j not in pending),
                "run_twice": sorted(j for j in in_window if runs.get(j, 0) > 1),
            }
        # The cost of durable enqueue: request time outside the fault windows.
        steady = sorted(
            e["elapsed"]
            for e in mine.values()
            if "elapsed" in e
            and not any(
                f["window"][0] - 2 <= e["t"] <= f["window"][1] for f in result["faults"].values()
            )
        )
        result["by_producer"][producer] = {
            "durable_enqueue": durable,
            "steady_request_s": {
                "n": len(steady),
                "p50": round(steady[len(steady) // 2], 4) if steady else None,
                "p95": round(steady[int(len(steady) * 0.95)], 4) if steady else None,
            },
            "acknowledged": len(mine),
            "run": sum(1 for j in mine if runs.get(j, 0) > 0),
            "lost": sorted(j for j in mine if runs.get(j, 0) == 0 and j not in pending),
            "still_waiting": sorted(j for j in mine if runs.get(j, 0) == 0 and j in pending),
            "run_twice": sorted(j for j in mine if runs.get(j, 0) > 1),
            "per_fault": per_fault,
        }
    failed = [e for e in log if e.get("status") != 200]
    result["requests_failed"] = len(failed)
    result["unacknowledged_but_run"] = sum(1 for j in runs if j not in acked)

    OUT.mkdir(exist_ok=True)
    (OUT / "failover.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\nRedis failover under load (out/failover.json):")
    for name, fault in result["faults"].items():
        print(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in fault.items() if k != "window"))
    for producer, figures in result["by_producer"].items():
        print(
            f"  {producer} (durable enqueue {'on' if figures['durable_enqueue'] else 'off'}): "
            f"acknowledged {figures['acknowledged']}, run {figures['run']}, "
            f"lost {len(figures['lost'])}, "
            f"run twice {len(figures['run_twice'])}, "
            f"still waiting {len(figures['still_waiting'])}; "
            f"steady request p50/p95 {figures['steady_request_s']['p50']}/"
            f"{figures['steady_request_s']['p95']} s"
        )
    print(
        f"  requests {result['requests']}, failed {result['requests_failed']}, "
        f"run without acknowledgement {result['unacknowledged_but_run']}"
    )
    return result


def test_kill_9_of_the_primary_fails_over_and_jobs_flow_again(failover):
    fault = failover["faults"]["kill -9 of the primary"]
    assert fault["new_primary"] != fault["old_primary"]
    assert fault["processing_resumed_s"] < 60, fault


def test_a_cut_off_primary_stops_accepting_writes(failover):
    fault = failover["faults"]["primary cut off by the firewall"]
    assert "NOREPLICAS" in fault["refusal"], fault
    # min-replicas-max-lag is 10 s: the refusal comes within it plus Redis' once-a-second check.
    assert fault["writes_refused_after_s"] is not None and fault["writes_refused_after_s"] < 25, (
        fault
    )
    assert fault["processing_resumed_s"] < 60, fault


def test_old_primaries_rejoin_as_replicas(failover):
    # The fixture waited for each old primary to replicate the new one with its link up.
    for fault in failover["faults"].values():
        assert fault["old_primary"] != fault["new_primary"]


def test_no_acknowledged_job_is_lost_with_durable_enqueue(failover):
    durable = [f for f in failover["by_producer"].values() if f["durable_enqueue"]]
    plain = [f for f in failover["by_producer"].values() if not f["durable_enqueue"]]
    assert durable and plain, "one producer should use durable enqueue and the other not"
    for figures in durable:
        assert figures["acknowledged"] > 100, figures["acknowledged"]
        assert not figures["lost"], f"durable enqueue lost acknowledged jobs: {figures['lost'][:5]}"
        assert not figures["still_waiting"], figures["still_waiting"][:5]
    # Without it, whatever was lost is reported (out/failover.json, docs/failover.md), not failed.


def test_fleetsim_rehearses_the_measured_failover(failover, lab, tmp_path):
    """The kill -9 fault's measured outage, fed to fleetsim's redis_failover event with the
    producer's rate: refused requests and the longest wait, measured next to predicted
    (docs/fidelity.md). A comparison to read, not a target: only a run that fails to compare."""
    fault = failover["faults"]["kill -9 of the primary"]
    start, end = fault["window"]
    log = [
        json.loads(line)
        for line in lab.lb.file(LOG).content_string.splitlines()
        if line.strip() and start <= json.loads(line)["t"] <= end
    ]
    refused = sum(1 for e in log if e.get("status") != 200)
    rows = lab.sql(
        "SELECT coalesce(max(extract(epoch FROM finished_at - enqueued_at)), 0) FROM sample_jobs "
        f"WHERE batch = '{BATCH}' AND enqueued_at BETWEEN to_timestamp({start - 2}) "
        f"AND to_timestamp({end})"
    )
    measured_wait = float(rows[0][0])
    # The outage Sentinel measures (until it names the new primary): the clients' reconnection
    # after it is what the comparison of "processing resumed" shows.
    downtime = fault["failover_s"]
    rate = RATE / 3
    workload = {
        "description": "molecule/migration failover producer, with the measured kill -9 outage",
        "segments": [
            {
                "name": name,
                "match": f"worker_name={name}",
                "rate_per_s": round(rate, 4),
                "service": {"distribution": "exponential", "mean_s": 0.02},
            }
            for name in CLASSES.split(",")
        ],
        "events": [{"at": "60s", "action": "redis_failover", "downtime_s": downtime}],
    }
    path = tmp_path / "failover-workload.yml"
    path.write_text(json.dumps(workload))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "simulate",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--workload",
            str(path),
            "--duration",
            "180s",
            "--json",
            "--replications",
            "5",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    predicted = json.loads(done.stdout)["failovers"][0]
    comparison = {
        "downtime_s (failover measured, given to fleetsim)": downtime,
        "requests refused": {
            "measured": refused,
            "predicted": round(predicted["refused_pushes"], 1),
        },
        "longest wait s": {
            "measured": round(measured_wait, 3),
            "predicted": predicted["longest_wait_s"],
        },
        "processing resumed after s": {
            "measured": fault["processing_resumed_s"],
            "predicted": predicted["processing_resumed_after_s"],
        },
        "backlog peak (jobs)": predicted["backlog_peak"],
        "drained after s (predicted)": predicted["drained_after_s"],
    }
    failover["fleetsim"] = comparison
    (OUT / "failover.json").write_text(json.dumps(failover, indent=2) + "\n")
    print(f"\nkill -9 outage, measured vs fleetsim: {json.dumps(comparison)}")


def test_exporters_follow_the_primary_through_sentinel(failover, lab):
    """After both faults each worker's exporter reads the current primary again, under a label
    that names the sentinels' master, not an address a failover changes."""
    fetch = (
        'python3 -c "import urllib.request; '
        "print(urllib.request.urlopen('http://ADDRESS:8082/metrics', timeout=5)"
        '.read().decode())"'
    )
    for name in WORKERS:
        worker = testinfra.get_host(host_spec(name))
        address = worker.ansible.get_variables()["fleet_internal_address"]

        def metrics(worker=worker, address=address) -> str | None:
            text = worker.check_output(fetch.replace("ADDRESS", address))
            return text if re.search(r"^sidekiq_exporter_redis_up 1(\.0)?$", text, re.M) else None

        text = wait_for(f"{name}'s exporter to read Redis", metrics, 60, 2)
        assert 'redis="sentinel:gitlab-redis/0"' in text, [
            line for line in text.splitlines() if "redis=" in line
        ][:3]
