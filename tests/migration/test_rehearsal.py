"""Rolling routing migrations in the simulator: the engine's share/listen/move_jobs events and
the stranded measurement, then ``fleetsim migrate`` end to end (safe vs naive order)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_ledger import _Observed, _trace_jobs, _write_trace, assert_every_job_accounted_for

from simulator.sim import engine
from simulator.sim.engine import simulate
from simulator.sim.jobs import ProcState
from simulator.sim.model import FleetEvent, JobClass, Process, Scenario, ServiceTime

ROOT = Path(__file__).resolve().parents[2]


def _conserved(c: dict[str, int]) -> bool:
    return c["arrived"] == (c["succeeded"] + c["dead"] + c["in_queues"] + c["running"]
                            + c["retrying"] + c["lost"])


def _two_queue_scenario(events: tuple[FleetEvent, ...], *, rate: float = 4.0,
                        failure: float = 0.0) -> Scenario:
    """One class routed to ``old``; one process on ``old`` on node n0, one idle on n1."""
    return Scenario(
        classes=(JobClass("AWorker", "low", rate, ServiceTime("exponential", 0.2),
                          failure_probability=failure),),
        processes=(Process.placed("p0", "n0", ("old",), 4),
                   Process.placed("p1", "n1", ("other",), 2)),
        routes={"AWorker": ("old", None)},
        events=events,
        stranded_sample_s=1.0,
    )


NEW = {"AWorker": ("new", None)}


def test_routing_share_sends_that_share_of_arrivals_to_the_new_routes():
    both = (Process.placed("p0", "n0", ("old", "new"), 8),)
    scenario = Scenario(
        classes=(JobClass("AWorker", "low", 20.0, ServiceTime("exponential", 0.1)),),
        processes=both, routes={"AWorker": ("old", None)},
        events=(FleetEvent(100.0, "routing", routes=NEW, share=0.25),
                FleetEvent(600.0, "routing", routes=NEW, share=1.0)),
    )
    run = simulate(scenario, duration=700.0, seed=3)
    q = run.recorder.n_qu.sum(axis=1)
    new = int(q[run.queues.index("new")])
    old = int(q[run.queues.index("old")])
    # 100 s all old, 500 s a quarter new, 100 s all new: 20/s * (125 + 100) = 4500 new.
    assert new == pytest.approx(4500, rel=0.06)
    assert old + new == run.counters["arrived"]
    assert run.stranded_max == 0


def test_listen_restarts_the_node_gracefully_with_its_new_queue_list():
    # Producers switch to `new` at 50 s with nobody listening: jobs strand until the node
    # listens to `new` (at 100 s, back after boot_s = 10 s).
    events = (FleetEvent(50.0, "routing", routes=NEW),
              FleetEvent(100.0, "listen", node="n0", boot_s=10.0,
                         processes=(Process.placed("p0 new", "n0", ("new",), 4),)))
    run = simulate(_two_queue_scenario(events), duration=300.0, seed=1)
    before = [s for t, s, _ in run.stranded if 60 <= t < 100]
    assert min(before) > 0
    assert max(s for t, s, _ in run.stranded if t >= 115) == 0
    # while n0 restarts (100-110 s) nothing listens up, though the configuration does
    assert any(s > 0 and u == 0 for t, s, u in run.stranded if 101 <= t < 110)
    assert max(u for t, _, u in run.stranded if t < 100) > 0
    # the stranded jobs' wait counts in their queueing latency
    assert run.recorder.wait_mom_u.max[1] >= 50.0
    assert _conserved(run.counters) and run.counters["lost"] == 0
    assert run.counters["in_queues"] == 0


def test_listen_pushes_back_jobs_that_outlast_the_timeout():
    scenario = Scenario(
        classes=(JobClass("SlowWorker", "low", 1.0, ServiceTime("deterministic", 60.0)),),
        processes=(Process.placed("p0", "n0", ("q",), 2),),
        routes={"SlowWorker": ("q", None)},
        events=(FleetEvent(30.0, "listen", node="n0", timeout_s=5.0, boot_s=2.0,
                           processes=(Process.placed("p0b", "n0", ("q",), 3),)),),
    )
    run = simulate(scenario, duration=200.0, seed=2)
    assert run.counters["pushed_back"] == 2
    assert _conserved(run.counters)
    # the new slot ran jobs, the old one stopped at 35 s
    executed = run.recorder.exec_mom_p.n
    assert executed[1] > 0


def test_move_jobs_moves_known_classes_and_never_drops_an_unknown_one():
    # Two classes queued on `old` with no listener; the new routes name only AWorker.
    scenario = Scenario(
        classes=(JobClass("AWorker", "low", 2.0, ServiceTime("exponential", 0.2)),
                 JobClass("Unknown", "low", 1.0, ServiceTime("exponential", 0.2))),
        processes=(Process.placed("p0", "n0", ("new",), 4),),
        routes={"AWorker": ("old", None), "Unknown": ("old", None)},
        events=(FleetEvent(100.0, "move_jobs", routes={"AWorker": ("new", None)}),),
        stranded_sample_s=5.0,
    )
    model = engine._Model(scenario, duration=100.5, seed=4, bin_width=None)
    run = model.run()
    c = run.counters
    assert c["moved"] > 100 and c["kept_unknown"] > 50
    old = model.queues[model.queue_index["old"]]
    unknown_left = [job for job in old if job.enqueued < 100.0]  # arrived before the move
    assert len(unknown_left) == c["kept_unknown"]
    assert {model.classes[job.cls].key for job in unknown_left} == {"Unknown"}
    assert _conserved(c)
    assert run.stranded_final == len(old)


def test_move_jobs_rewrites_the_queue_of_jobs_in_the_retry_set():
    # Every execution fails: after the move, retries come back to `new`, not `old`.
    events = (FleetEvent(100.0, "listen", node="n0",
                         processes=(Process.placed("p0 both", "n0", ("old", "new"), 4),)),
              FleetEvent(200.0, "routing", routes=NEW),
              FleetEvent(205.0, "move_jobs"),
              FleetEvent(300.0, "listen", node="n0",
                         processes=(Process.placed("p0 new", "n0", ("new",), 4),)))
    run = simulate(_two_queue_scenario(events, rate=0.5, failure=1.0), duration=900.0, seed=5)
    c = run.counters
    assert c["moved_retries"] > 0
    assert _conserved(c)
    assert max(u for _, _, u in run.stranded) == 0
    assert run.in_queues.get("old", 0) == 0


def test_move_while_fetchers_are_blocked_and_busy_hands_over_and_queues_every_job():
    # At 60 s, 118 jobs wait on `old`, which nobody listens to; p0 listens to `new` with three
    # threads: two run long jobs (J0, J1), the third is blocked in its fetch.  The move hands
    # the oldest job straight to the blocked fetcher and queues the rest behind it; J2-J4, which
    # the move's routes do not name, stay on `old`.  Every job is then found exactly once.
    rows = [(0.5 * i, 100.0 if i < 2 else 0.5,
             JobClass(f"J{i}Worker", "low", 0.0, ServiceTime("deterministic", 0.5)))
            for i in range(120)]
    routes = {cls.key: ("new" if i < 2 else "old", None) for i, (_, _, cls) in enumerate(rows)}
    moved_to = {cls.key: ("new", None) for i, (_, _, cls) in enumerate(rows) if not 2 <= i <= 4}
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Scenario(classes=tuple(cls for _, _, cls in rows),
                            processes=(Process.placed("p0", "n0", ("new",), 3),),
                            routes=routes, trace=_write_trace(tmp, rows),
                            events=(FleetEvent(60.0, "move_jobs", routes=moved_to),))
        model = _Observed(scenario, duration=200.0, seed=7, bin_width=None)
        run = model.run()
    [move] = model.moves
    assert move["blocked_before"] == 1 and move["handed"] == 1  # the race: a fetch was waiting
    assert move["waiting_off"] == 118 and move["moved"] == 115 and move["kept"] == 3
    assert sorted(move["left_off"]) == ["J2Worker", "J3Worker", "J4Worker"]
    assert_every_job_accounted_for(model, run, rows, 200.0)
    assert run.counters["succeeded"] == 117 and run.in_queues == {"old": 3}


@st.composite
def _migration_scenarios(draw):
    """A fleet fed by a trace of jobs (``rows``), with migration events;
    ``build(trace)`` makes the scenario."""
    rows = draw(_trace_jobs())
    queues = ["a", "b", "c"]
    classes = tuple(cls for _, _, cls in rows)

    def routes(partial=False):  # a move's mapping may leave classes out (unknown to it)
        return {c.key: (draw(st.sampled_from(queues)), None) for c in classes
                if not partial or draw(st.booleans())}

    def procs(node):
        return tuple(Process.placed(f"{node}/{i}", node,
                                 tuple(draw(st.lists(st.sampled_from(queues), min_size=1,
                                                     max_size=3))),
                                 draw(st.integers(1, 3)))
                     for i in range(draw(st.integers(0, 2))))

    # Most classes start on `old`, which no process listens to: jobs wait there until a move
    # (there is always one, with its own routes) takes them away while the fleet runs.
    initial = {c.key: (draw(st.sampled_from(["old", "old", *queues])), None) for c in classes}
    processes = procs("n0") + procs("n1") or (Process.placed("n0/0", "n0", ("a",), 1),)
    events = [FleetEvent(draw(st.floats(0.0, 300.0)), "move_jobs", routes=routes(partial=True))]
    for _ in range(draw(st.integers(0, 5))):
        action = draw(st.sampled_from(["routing", "listen", "move_jobs", "node_down",
                                       "node_up", "restart"]))
        at = draw(st.floats(0.0, 300.0))
        node = draw(st.sampled_from(["n0", "n1"]))
        if action == "routing":
            events.append(FleetEvent(at, action, routes=routes(),
                                     share=draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))))
        elif action == "listen":
            events.append(FleetEvent(at, action, node=node, processes=procs(node),
                                     timeout_s=draw(st.sampled_from([0.5, 25.0])),
                                     boot_s=draw(st.sampled_from([0.0, 10.0]))))
        elif action == "move_jobs":
            mapping = draw(st.none() | st.just(routes(partial=True)))
            events.append(FleetEvent(at, action, routes=mapping))
        else:
            events.append(FleetEvent(at, action, node=node, timeout_s=5.0, boot_s=3.0))
    nodes = {p.node for p in processes} | {e.node for e in events if e.action == "listen"}
    events = [e for e in events if e.node is None or e.node in nodes]
    max_retries = draw(st.integers(0, 3))
    stranded_sample_s = draw(st.sampled_from([None, 7.0]))

    def build(trace):
        return Scenario(classes=classes, processes=processes, routes=initial,
                        events=tuple(events), max_retries=max_retries,
                        stranded_sample_s=stranded_sample_s, trace=trace)

    return rows, build


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_migration_scenarios(), st.integers(0, 2**16), st.floats(1.0, 400.0))
def test_listen_move_and_share_events_neither_lose_nor_duplicate_a_job(drawn, seed,
                                                                       duration):
    rows, build = drawn
    with tempfile.TemporaryDirectory() as tmp:
        model = _Observed(build(_write_trace(tmp, rows)), duration=duration, seed=seed,
                          bin_width=None)
        run = model.run()
    c = run.counters
    assert_every_job_accounted_for(model, run, rows, duration)
    assert c["failed_executions"] == c["retried"] + c["dead"]
    # Each move with its own routes emptied the queues that are no destination of them,
    # except for the classes those routes do not name; what left went somewhere.
    for move in model.moves:
        if move["named"] is None:
            continue
        assert move["moved"] + move["kept"] == move["waiting_off"]
        assert len(move["left_off"]) == move["kept"]
        assert not set(move["left_off"]) & move["named"]
        assert 0 <= move["handed"] <= min(move["moved"], move["blocked_before"])
    # the listener counts the stranded measure uses agree with the process states
    for q in range(len(model.queue_names)):
        up = sum(1 for p in range(len(model.procs))
                 if model.p_state[p] == ProcState.UP and q in model.p_pos[p])
        assert model.up_listeners[q] == up
        cfg = sum(1 for ps in model.node_procs.values() for p in ps if q in model.p_pos[p])
        assert model.cfg_listeners[q] == cfg
    for _, stranded, unlistened in run.stranded:
        assert 0 <= unlistened <= stranded


# ----------------------------------------------------------------------------- fleetsim migrate
PRE_15_4 = str(ROOT / "examples" / "migrations" / "pre-15.4")
TO_FEW = str(ROOT / "examples" / "migrations" / "to-few-queues.yml")
WORKLOAD = str(ROOT / "examples" / "workloads" / "pre-15.4.yml")


def _migrate(capsys, *extra: str, to: str = TO_FEW) -> tuple[int, dict | None, str]:
    from simulator.cli.main import main

    rc = main(["migrate", "-i", PRE_15_4, "--to", to, "--workload", WORKLOAD,
               "--phase-gap", "1m", "--seed", "3", *extra])
    captured = capsys.readouterr()
    data = json.loads(captured.out) if "--json" in extra and rc != 2 else None
    return rc, data, captured.err


def test_migrate_safe_order_strands_nothing_and_naive_order_strands_jobs(capsys, tmp_path):
    rc, out, _ = _migrate(capsys, "--json", "--plots", str(tmp_path))
    verdict = out["verdict"]
    assert rc == 0 and verdict["ok"] and verdict["reasons"] == [] and verdict["order"] == "safe"
    assert [(j["check"], j["passed"]) for j in verdict["checked"]] == [
        ("configured listeners", True), ("restart windows", True), ("no job lost", True),
        ("plan and fleet checks", True)]
    assert verdict["not_checked"][0].startswith("waits and queueing targets (reported, not "
                                                "judged): longest wait")
    safe, naive = out["orders"]["safe"], out["orders"]["naive"]
    assert safe["run"]["stranded_max"] == 0 and safe["run"]["unlistened_max"] == 0
    # Producers switched first: high-urgency and throttled have no listener until stop-old.
    switch = next(p for p in naive["phases"] if p["phase"] == "switch-producers")
    assert switch["stranded_end"] > 0 and switch["unlistened_max"] > 0
    # Stranded high-urgency jobs wait minutes; in the safe order none misses its 10 s.
    assert naive["run"]["longest_wait_s"] > safe["run"]["longest_wait_s"]
    assert naive["run"]["slo"]["high"]["late"] > 0 and not naive["run"]["slo"]["high"]["met"]
    assert safe["run"]["slo"]["high"]["late"] == 0
    for order in (safe, naive):
        run = order["run"]
        assert run["lost"] == 0 and run["conserved"]
        assert order["phases"][0]["phase"] == "warm-up"
        assert order["phases"][-1]["phase"] == "settle"
    assert [s["phase"] for s in safe["steps"]] == (
        ["listen-both"] * 2 + ["switch-producers"] * 2 + ["move-jobs"] + ["stop-old"] * 3)
    assert [s["phase"] for s in naive["steps"]] == (
        ["switch-producers"] * 2 + ["stop-old"] * 2 + ["move-jobs"])
    assert out["plan"]["added_queues"] == ["default", "high-urgency", "throttled"]
    assert out["plan"]["problems"] == [] and out["fleet_errors"] == []
    assert {Path(p).name for p in out["plots"]} == {"stranded.png", "latency.png"}
    assert all(Path(p).stat().st_size > 10_000 for p in out["plots"])


def test_migrate_prints_a_table_per_phase_and_order(capsys):
    from simulator.cli.main import main

    rc = main(["migrate", "-i", PRE_15_4, "--to", TO_FEW, "--workload", WORKLOAD,
               "--phase-gap", "1m", "--duration", "12m"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "switch-producers" in out and "naive" in out
    assert "Verdict on the safe order (the exit code):" in out
    assert "passed restart windows: jobs stranded while nodes restarted" in out
    assert "not checked: waits and queueing targets" in out
    assert "strands no job" not in out


def test_migrate_exit_1_when_the_plan_leaves_a_queue_without_listener(capsys, tmp_path):
    to = tmp_path / "to.yml"
    to.write_text('sidekiq_routing_rules: [["urgency=high", "urgent"], ["*", "default"]]\n'
                  'sidekiq_queue_groups: ["urgent,default"]\n')  # mailers: no listener
    rc, out, _ = _migrate(capsys, "--json", to=str(to))
    assert rc == 1
    assert "stop-old: queue 'mailers' has no listener" in out["plan"]["problems"]
    assert not out["verdict"]["ok"]


@pytest.mark.parametrize("text, expect", [
    ('sidekiq_routing_rules: [["urgncy=high", "x"], ["*", "default"]]\n', "Unknown predicate"),
    ("sidekiq_routing_rules: [[\n", "not valid YAML"),
    ("queue: default\n", "needs sidekiq_routing_rules"),
])
def test_migrate_bad_target_file_is_exit_2_naming_the_file(capsys, tmp_path, text, expect):
    to = tmp_path / "bad-target.yml"
    to.write_text(text)
    rc, _, err = _migrate(capsys, "--json", to=str(to))
    assert rc == 2
    assert "bad-target.yml" in err and expect in err and "Traceback" not in err


def test_migrate_duration_shorter_than_the_migration_is_exit_2(capsys):
    rc, _, err = _migrate(capsys, "--duration", "5m")
    assert rc == 2 and "--duration" in err and "fix:" in err
