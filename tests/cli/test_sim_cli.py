"""fleetsim simulate / capacity end to end, and workload errors that name file, entry and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli.main import main
from simulator.errors import WorkloadError
from simulator.inputs import parse_duration
from simulator.sim.capacity import Candidate, apply_candidate, cheapest, search
from simulator.sim.model import JobClass, Process, Scenario, ServiceTime
from simulator.sim.workload import load_workload

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "inventories" / "example")
EXAMPLE = str(ROOT / "examples" / "workloads" / "example.yml")


def _workload(tmp_path: Path, text: str) -> str:
    path = tmp_path / "workload.yml"
    path.write_text(text)
    return str(path)


def test_simulate_json_reports_every_urgency_queue_and_process(capsys, tmp_path):
    rc = main(["simulate", "-i", INVENTORY, "--workload", EXAMPLE, "--duration", "2m",
               "--json", "--plots", str(tmp_path / "plots")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["slo"]["met"]
    assert set(out["by_urgency"]) == {"high", "low", "throttled"}
    assert {"high-urgency", "default", "network-intensive", "throttled", "mailers"} <= set(
        out["by_queue"])
    assert len(out["by_process"]) == 9
    assert out["redis"]["default"]["cpu_mean"] > 0
    c = out["counters"]
    assert c["arrived"] == (c["succeeded"] + c["dead"] + c["in_queues"] + c["running"]
                            + c["retrying"] + c["lost"])
    for name in ("latency", "backlog", "utilisation", "redis"):
        png = tmp_path / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replications_give_confidence_intervals(capsys):
    rc = main(["simulate", "-i", INVENTORY, "--workload", EXAMPLE, "--duration", "1m",
               "--replications", "3", "--workers", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["replications"] == 3 and out["seeds"] == [1, 2, 3]
    assert out["ci95"]["by_urgency"]["high"]["throughput_per_s"] > 0


def test_overloaded_fleet_misses_the_slo_with_exit_1(capsys, tmp_path):
    path = _workload(tmp_path, """
segments:
  - match: "resource_boundary!=cpu&urgency=high"
    rate_per_s: 200
    service: {distribution: exponential, mean_s: 1}
""")
    rc = main(["simulate", "-i", INVENTORY, "--workload", path, "--duration", "3m"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "SLO missed" in out and "high" in out


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('segments:\n  - {match: "urgncy=high", rate_per_s: 1, service: {mean_s: 1}}\n',
         "segments entry 1, match", "Unknown predicate"),
        ('segments:\n  - {match: "*", rate_per_s: 2, service: {mean_s: 1}}\n'
         '  - {match: "urgency=high", rate_per_s: -3}\n', "segments entry 2", "negative"),
        ('segments:\n  - match: "*"\n    rate_per_s: 1\n    service: {distribution: lognormal, '
         "mean_s: 2, p99_s: 1}\n", "segments entry 1", "p99_s (1) is not above mean_s (2)"),
        ('segments:\n  - {match: "feature_category=no_such_category", rate_per_s: 1, '
         "service: {mean_s: 1}}\n",
         "segments entry 1", "no_such_category"),
        ('segments:\n  - {match: "*", rate_per_s: 1, service: {mean_s: 1}}\nevents:\n'
         "  - {at: 5m, action: node_down, node: nosuch}\n", "events entry 1", "not a sidekiq host"),
    ],
)
def test_bad_workload_names_file_entry_and_fix_with_exit_2(capsys, tmp_path, text, where,
                                                           words):
    path = _workload(tmp_path, text)
    rc = main(["simulate", "-i", INVENTORY, "--workload", path, "--duration", "1m"])
    err = capsys.readouterr().err
    assert rc == 2
    assert path in err and where in err and words in err
    assert "fix:" in err and "Traceback" not in err


def test_queue_group_naming_nothing_is_an_inventory_error(capsys, tmp_path):
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  children:\n    sidekiq:\n      hosts:\n"
                                   "        sk1: {}\n")
    (inv / "group_vars" / "sidekiq.yml").write_text(
        "sidekiq_gitlab_version: '16.11'\nsidekiq_queue_selector: true\n"
        "sidekiq_queue_groups:\n  - 'urgency=high&urgency=low'\n")
    rc = main(["simulate", "-i", str(inv), "--workload", EXAMPLE, "--duration", "1m"])
    err = capsys.readouterr().err
    assert rc == 2 and "names no queue" in err and "fix:" in err and "Traceback" not in err


def test_durations_parse_like_an_operator_writes_them(tmp_path):
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    assert parse_duration("2d") == 172800
    with pytest.raises(WorkloadError):
        parse_duration("soon")
    trace = tmp_path / "t.csv"
    trace.write_text("time,worker_class,duration\n5,PostReceive,1\n3,PostReceive,1\n")
    path = _workload(tmp_path, "trace: {file: t.csv}\n")
    with pytest.raises(WorkloadError, match="line 3"):
        load_workload(path)


def _capacity_scenario() -> Scenario:
    # 6 jobs/s of 1 s each on one queue: needs more than 6 threads, 1 process of 5 fails.
    return Scenario(
        classes=(JobClass("UrgentWorker", "high", 6.0, ServiceTime("exponential", 1.0)),),
        processes=(Process.placed("n1/0", "n1", ("urgent",), 5, "urgent"),
                   Process.placed("n1/1", "n1", ("other",), 5, "other")),
        routes={"UrgentWorker": ("urgent", None)},
    )


def test_apply_candidate_replaces_only_the_group():
    sc = apply_candidate(_capacity_scenario(), Candidate("urgent", 3, 4, ("n1", "n2")))
    urgent = [p for p in sc.processes if p.group == "urgent"]
    assert [p.concurrency for p in urgent] == [4, 4, 4]
    assert [p.node for p in urgent] == ["n1", "n2", "n1"]
    assert [p.name for p in sc.processes if p.group == "other"] == ["n1/1"]


def test_capacity_search_on_a_local_dask_cluster_matches_the_local_pool():
    distributed = pytest.importorskip("distributed")
    kwargs = dict(duration=1800.0, seeds=(1,), max_processes=2, concurrency=(5, 10))
    local = search(_capacity_scenario(), "urgent", workers=1, **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = search(_capacity_scenario(), "urgent", scheduler=cluster.scheduler_address,
                        **kwargs)
    assert [(r.candidate, r.met, r.worst_share) for r in local] == [
        (r.candidate, r.met, r.worst_share) for r in remote]
    best = cheapest(local)
    assert best is not None and best.candidate.threads == 10  # 5 threads cannot carry 6 Erlang
    assert not local[0].met and local[0].candidate.threads == 5


def test_capacity_cli_reports_the_cheapest_candidate(capsys):
    rc = main(["capacity", "-i", INVENTORY, "--workload", EXAMPLE, "--group", "high-urgency",
               "--duration", "2m", "--concurrency", "2,20", "--max-processes", "2",
               "--workers", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    best = out["high-urgency"]["cheapest"]
    assert best["threads"] <= out["high-urgency"]["today"]["threads"]
    assert len(out["high-urgency"]["candidates"]) == 4


def test_workload_routing_event_with_a_bad_queue_name(capsys, tmp_path):
    path = _workload(tmp_path, 'segments:\n  - {match: "*", rate_per_s: 1, service: {mean_s: 1}}\n'
                     'events:\n  - {at: 1m, action: routing, rules: [["*", "de;fault"]]}\n')
    rc = main(["simulate", "-i", INVENTORY, "--workload", path, "--duration", "2m"])
    err = capsys.readouterr().err
    assert rc == 2 and "events entry 1, rules" in err and "position 3" in err and "fix:" in err
