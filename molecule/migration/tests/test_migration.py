"""After the live migration (side_effect.yml): no job lost or run twice, no queue without a
listener, no request to a drained producer, planted payloads kept, latency vs the simulator.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from conftest import LB, PRODUCERS, host_spec, wait_for

testinfra_hosts = [host_spec(LB)]

NEW_QUEUES = {"high-urgency", "default"}
OUT = Path(__file__).resolve().parents[3] / "out"


def _jids(log: list[dict]) -> list[str]:
    return [jid for entry in log for jid in entry.get("jids") or []]


def _set_jids(state: dict, name: str) -> set[str]:
    jids = set()
    for raw in state["sets"][name]:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            jids.add(json.loads(raw)["jid"])
    return jids


def test_producer_ran_through_the_whole_migration_without_errors(lab):
    log = lab.producer_log()
    assert len(log) > 100, f"the producer sent only {len(log)} requests"
    failed = [e for e in log if e.get("status") != 200]
    assert not failed, f"{len(failed)} enqueue requests failed through HAProxy: {failed[:3]}"
    queues = {e["queue"] for e in log}
    # Old routing (one queue per worker) first, new routing at the end.
    assert "audit_event" in queues and "default" in queues, queues
    assert log[-1]["queue"] in NEW_QUEUES


def _set_jobs(state: dict, name: str) -> dict[str, str]:
    """jid -> class of the jobs in a sorted set."""
    jobs = {}
    for raw in state["sets"][name]:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            job = json.loads(raw)
            jobs[job["jid"]] = job["class"]
    return jobs


# The only class the producer sends that fails on purpose (first attempt): its jobs may still wait
# in the retry set when the scenario ends. Every other job must have run.
FLAKY = "FlakyImportWorker"


def test_every_job_ran_exactly_once_or_waits_in_retry_or_dead(lab):
    jids = _jids(lab.producer_log())
    assert len(jids) == len(set(jids)), "the producer got a job id twice"

    def settled():
        # sample_job_runs is insert-only: one row per execution, so a job run twice has two.
        rows = lab.sql(
            "SELECT jid, count(*) FROM sample_job_runs WHERE batch = 'migration' GROUP BY jid"
        )
        runs = {jid: int(n) for jid, n in rows}
        state = lab.redis_state()
        parked = _set_jobs(state, "retry") | _set_jobs(state, "dead")
        missing = [j for j in jids if j not in runs and j not in parked]
        return (runs, parked, missing) if not missing else None

    runs, parked, _ = wait_for(
        "every logged job id in PostgreSQL or the retry/dead sets", settled, timeout=120
    )
    twice = {jid: n for jid, n in runs.items() if n != 1}
    assert not twice, f"jobs run more than once: {dict(list(twice.items())[:5])}"
    waiting = {jid: cls for jid, cls in parked.items() if jid in set(jids) and jid not in runs}
    not_flaky = {jid: cls for jid, cls in waiting.items() if cls != FLAKY}
    assert not not_flaky, f"jobs of reliable classes never ran: {dict(list(not_flaky.items())[:5])}"
    extra = set(runs) - set(jids)
    assert not extra, f"rows for job ids the producer never logged: {sorted(extra)[:5]}"
    print(
        f"\n{len(jids)} jobs enqueued through HAProxy: {len(set(jids) & set(runs))} ran once, "
        f"0 ran twice, {len(waiting)} {FLAKY} jobs wait in the retry/dead sets, 0 lost"
    )


# planted by files/plant.py in a queue no routing ever named: not the migration's to move.
FOREIGN_QUEUE = "legacy_export"


def test_no_queue_holds_jobs_without_a_listener(lab):
    state = lab.redis_state()
    listening = {q for queues in state["processes"].values() for q in queues}
    assert listening >= NEW_QUEUES, listening
    stranded = {
        q: len(jobs)
        for q, jobs in state["queues"].items()
        if jobs and q not in listening and q != FOREIGN_QUEUE
    }
    assert not stranded, f"jobs in queues nothing listens to: {stranded}"
    old = {"audit_event", "checksum", "flaky_import", "repository_probe", "urgent_notification"}
    assert not (listening & old), f"processes still listen to retired queues: {listening & old}"


def test_haproxy_never_sent_a_request_to_a_drained_producer(lab):
    samples = lab.haproxy_samples()
    assert samples, "the sampler recorded nothing"
    for server in PRODUCERS:
        rows = [s for s in samples if s[1] == server]
        # A drain window: from the first DRAIN sample until HAProxy reports the server UP again
        # (it may be DOWN meanwhile, while its service restarts).
        windows, current = [], []
        for row in rows:
            if current and row[2].upper().startswith("UP"):
                windows.append(current)
                current = []
            elif current or "DRAIN" in row[2].upper():
                current.append(row)
        if current:
            windows.append(current)
        assert windows, f"{server} was never seen in DRAIN"
        for window in windows:
            first, last = window[0], window[-1]
            assert last[3] == first[3], (
                f"{server}: HAProxy sent {last[3] - first[3]} sessions while it was drained "
                f"({last[0] - first[0]:.1f} s window)"
            )
        longest = max(w[-1][0] - w[0][0] for w in windows)
        print(
            f"\n{server}: drained {longest:.1f} s, sessions total stayed at {windows[0][0][3]}; "
            f"{len(rows)} samples"
        )
        # It served before and after its drain.
        assert rows[-1][3] > windows[0][0][3], f"{server} got no request after it was put back"


def test_planted_payloads_are_left_alone_or_quarantined(lab):
    """A queue the migration does not retire is left exactly as it was; a job of a retired queue
    whose class no longer exists goes to the quarantine list, unchanged."""
    state = lab.redis_state()
    planted = state["planted"]
    assert len(planted) == 3
    for item in planted:
        where, payload = item["where"], item["payload"]
        quarantined = payload in state["quarantine"]
        if where == f"queue:{FOREIGN_QUEUE}":
            assert payload in state["queues"].get(FOREIGN_QUEUE, []) and not quarantined, (
                f"a payload of a queue the migration does not own was touched: {payload[:60]}"
            )
        else:  # the schedule set, queue audit_event (retired), class RemovedAuditWorker
            assert quarantined and payload not in state["sets"][where], payload[:60]
    print(f"\nquarantine holds {len(state['quarantine'])} payloads")


def test_longest_wait_next_to_the_simulators_prediction(lab):
    rows = lab.sql(
        "SELECT coalesce(max(extract(epoch FROM finished_at - enqueued_at)), 0), count(*) "
        "FROM sample_jobs WHERE batch = 'migration' AND attempt = 1"
    )
    measured, count = float(rows[0][0]), int(rows[0][1])
    report_path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "fleetsim-migrate.json"
    report = json.loads(report_path.read_text())
    figures = {"measured": {"longest_wait_s": round(measured, 3), "jobs": count}, "simulated": {}}
    for order in ("safe", "naive"):
        phases = report["orders"][order]["phases"]
        figures["simulated"][order] = {
            "longest_wait_s": max(p["longest_wait_s"] for p in phases),
            "stranded_max": max(p["stranded_max"] for p in phases),
        }
    OUT.mkdir(exist_ok=True)
    (OUT / "migration-lab.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"\nlongest queueing wait measured (first attempts, enqueued_at -> finished_at): "
        f"{measured:.3f} s over {count} jobs; fleetsim migrate predicted: "
        f"{json.dumps(figures['simulated'])}"
    )
    assert count > 0
