"""Capacity an operator can trust: a utilisation ceiling and N+1 (the recommendation still meets
the queueing targets with its busiest node lost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli.main import main
from simulator.errors import FleetError
from simulator.sim.capacity import (
    Candidate,
    Policy,
    apply_candidate,
    busiest_node,
    cheapest,
    search,
    without_node,
)
from simulator.sim.model import FleetEvent, JobClass, Process, Scenario, ServiceTime
from simulator.sim.shares import floor_ratio, floor_share, late_text, percent_floor

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "inventories" / "example")
EXAMPLE = str(ROOT / "examples" / "workloads" / "example.yml")
SEARCH = dict(duration=1800.0, seeds=(1,), max_processes=2, concurrency=(5, 10), workers=1)


def _scenario(nodes: tuple[str, ...] = ("n1", "n2")) -> Scenario:
    # 6 jobs/s of 1 s each on one queue (6 Erlang): 5 threads cannot carry it, 10 can.
    urgent = tuple(Process.placed(f"{n}/0", n, ("urgent",), 5, "urgent") for n in nodes)
    return Scenario(
        classes=(JobClass("UrgentWorker", "high", 6.0, ServiceTime("exponential", 1.0)),),
        processes=(*urgent, Process.placed("n1/1", "n1", ("other",), 5, "other")),
        routes={"UrgentWorker": ("urgent", None)},
    )


def _by_shape(results):
    return {(r.candidate.processes, r.candidate.concurrency): r for r in results}


def test_without_a_policy_the_cheapest_meeting_the_targets_wins():
    results = search(_scenario(), "urgent", **SEARCH)
    best = cheapest(results)
    assert best is not None and (best.candidate.processes, best.candidate.concurrency) == (1, 10)
    assert best.node_loss is None and best.survives_node_loss is None
    assert 0.55 < best.utilisation < 0.65  # 6 Erlang on 10 threads


def test_n_plus_one_needs_the_targets_met_with_the_busiest_node_lost():
    results = _by_shape(search(_scenario(), "urgent", policy=Policy(n_plus_one=True), **SEARCH))
    # 1 x 10 runs on n1 only: losing n1 stops the group.
    one = results[(1, 10)]
    assert one.met and one.node_loss is not None and one.node_loss.node == "n1"
    assert one.survives_node_loss is False and not one.passes
    assert one.node_loss.worst_share < 0.5
    # 2 x 5: 5 threads left, 6 Erlang: fails too; 2 x 10: 10 threads left: passes.
    assert results[(2, 5)].survives_node_loss is False
    best = cheapest(list(results.values()))
    assert best is not None and (best.candidate.processes, best.candidate.concurrency) == (2, 10)
    assert best.node_loss is not None and best.node_loss.met
    # A candidate that misses the targets with every node up is not re-run.
    assert results[(1, 5)].node_loss is None and not results[(1, 5)].passes


def test_the_utilisation_ceiling_refuses_busy_candidates():
    results = _by_shape(search(_scenario(), "urgent", policy=Policy(max_utilisation=0.5),
                               **SEARCH))
    assert results[(1, 10)].met and not results[(1, 10)].within_ceiling
    best = cheapest(list(results.values()))
    assert best is not None and best.candidate.threads == 20 and best.utilisation <= 0.5


def test_n_plus_one_on_a_group_of_one_node_says_what_to_do():
    with pytest.raises(FleetError, match="runs on one node only") as info:
        search(_scenario(("n1",)), "urgent", policy=Policy(n_plus_one=True), **SEARCH)
    assert "second sidekiq host" in (info.value.hint or "")


def test_the_busiest_node_is_the_one_with_most_of_the_groups_threads():
    sc = apply_candidate(_scenario(), Candidate("urgent", 3, 4, ("n1", "n2")))
    assert busiest_node(sc, Candidate("urgent", 3, 4, ("n1", "n2"))) == "n1"
    # A tie goes to the node with more threads of any group (n1 also runs 'other').
    sc = apply_candidate(_scenario(), Candidate("urgent", 2, 4, ("n2", "n1")))
    assert busiest_node(sc, Candidate("urgent", 2, 4, ("n2", "n1"))) == "n1"
    events = (FleetEvent(60.0, "restart", "n1"), FleetEvent(90.0, "restart", "n2"))
    lost = without_node(Scenario(**{**_scenario().__dict__, "events": events}), "n1")
    assert {p.node for p in lost.processes} == {"n2"}
    assert [e.node for e in lost.events] == ["n2"]


def test_policy_says_what_it_checked_and_what_not():
    checked, unchecked = Policy().describe()
    assert checked == ["every queueing target (apdex) with all nodes up"]
    assert unchecked == ["a utilisation ceiling (--max-utilisation)",
                         "losing a node (--n-plus-one)"]
    checked, unchecked = Policy(max_utilisation=0.7, n_plus_one=True).describe()
    assert len(checked) == 3 and "70%" in checked[1] and unchecked == []


def test_capacity_cli_with_n_plus_one_and_a_ceiling(capsys):
    rc = main(["capacity", "-i", INVENTORY, "--workload", EXAMPLE, "--group", "high-urgency",
               "--duration", "2m", "--concurrency", "2,20", "--max-processes", "2",
               "--workers", "1", "--n-plus-one", "--max-utilisation", "70%", "--json"])
    out = json.loads(capsys.readouterr().out)["high-urgency"]
    assert rc == 0
    assert out["policy"]["n_plus_one"] and out["policy"]["max_utilisation"] == 0.7
    assert out["policy"]["not_checked"] == []
    best = out["cheapest"]
    assert best["utilisation"] <= 0.7 and best["without_busiest_node"]["met"]
    assert best["processes"] == 2  # one process cannot survive losing its node
    for c in out["candidates"]:
        assert c["passes"] == (c["met"] and c["within_ceiling"]
                               and bool(c["without_busiest_node"]
                                        and c["without_busiest_node"]["met"]))


def test_capacity_tables_say_what_was_not_checked(capsys):
    rc = main(["capacity", "-i", INVENTORY, "--workload", EXAMPLE, "--group", "high-urgency",
               "--duration", "2m", "--concurrency", "20", "--max-processes", "1",
               "--workers", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "checked: every queueing target (apdex) with all nodes up" in out
    assert "not checked: a utilisation ceiling (--max-utilisation); losing a node" in out


@pytest.mark.parametrize("value", ["0", "1.5", "abc", "-10%"])
def test_a_bad_ceiling_is_refused_before_simulating(capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["capacity", "-i", INVENTORY, "--workload", EXAMPLE, "--group", "high-urgency",
              "--max-utilisation", value])
    assert info.value.code == 2
    assert "--max-utilisation" in capsys.readouterr().err


def test_shares_are_rounded_down_so_late_jobs_show():
    assert percent_floor(9_999_999, 10_000_000) == "99.99%"
    assert percent_floor(45_121, 45_123) == "99.99%"
    assert percent_floor(7, 7) == "100%" and percent_floor(0, 0) == "100%"
    assert floor_share(999_999_999, 1_000_000_000) == 0.999999
    assert floor_share(3, 3) == 1.0
    assert floor_ratio(0.9999996) == 0.999999 and floor_ratio(0.999) == 0.999
    assert late_text(2, 45_123) == "2 of 45,123 late (99.99% on time)"


def test_simulate_tables_round_shares_within_target_down():
    from simulator.report.tables import _within

    assert _within(0.99996) == "99.99%" and _within(1.0) == "100.00%" and _within(None) == "-"
