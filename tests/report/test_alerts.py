"""``fleetsim alerts``: rules from the inventory and the simulator's SLOs, checked by promtool.

monitoring/alerts.yml must be what ``fleetsim alerts -i inventories/example`` writes today, and
monitoring/tests/alerts_test.yml (promtool unit tests, expected values worked out by hand in its
header) must pass on freshly generated rules; promtool is Debian's ``prometheus`` package, which
``make test`` installs through scripts/hostdeps.sh.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.cli.main import main
from simulator.fleet.inventory import Fleet, load_fleet
from simulator.report.alerts import (
    BURN_WINDOWS,
    alert_rules,
    listener_groups,
    render_rules,
    urgency_queues,
)
from simulator.sim.model import SloTargets

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "inventories/example"
COMMITTED = ROOT / "monitoring" / "alerts.yml"
UNIT_TESTS = ROOT / "monitoring" / "tests" / "alerts_test.yml"
RUNBOOKS = ROOT / "docs" / "alerts.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (apt-get install -y prometheus, which `make test` "
                    "does through scripts/hostdeps.sh); these tests need a real one")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=600)


def alerts(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in document["groups"] for r in g["rules"] if "alert" in r]


@pytest.fixture(scope="module")
def example_fleet() -> Fleet:
    return load_fleet(ROOT / EXAMPLE)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fleetsim alerts -i inventories/example`` run from the checkout, into a temporary
    directory laid out like monitoring/ (the unit tests name ``../alerts.yml``)."""
    out = tmp_path_factory.mktemp("monitoring")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        assert main(["alerts", "-i", EXAMPLE, "-o", str(out / "alerts.yml")]) == 0
    (out / "tests").mkdir()
    shutil.copy(UNIT_TESTS, out / "tests" / UNIT_TESTS.name)
    return out


def test_the_committed_rules_are_what_fleetsim_writes_for_the_example(generated: Path):
    assert (generated / "alerts.yml").read_text() == COMMITTED.read_text(), (
        "monitoring/alerts.yml is stale: run "
        "`fleetsim alerts -i inventories/example -o monitoring/alerts.yml` and commit it "
        "(then check monitoring/tests/alerts_test.yml with promtool test rules)")


def test_promtool_accepts_the_rules(generated: Path):
    result = promtool("check", "rules", str(generated / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 30 rules found" in result.stdout


def test_promtool_unit_tests_pass_on_the_generated_rules(generated: Path):
    result = promtool("test", "rules", str(generated / "tests" / UNIT_TESTS.name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_firing_and_a_quiet_case_in_the_unit_tests():
    rules = alerts(yaml.safe_load(COMMITTED.read_text()))
    cases = [case for group in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
             for case in group.get("alert_rule_test", [])]
    missing = []
    for rule in rules:
        fired = [a for c in cases if c["alertname"] == rule["alert"]
                 for a in c.get("exp_alerts") or []
                 if rule["labels"].items() <= a["exp_labels"].items()]
        if not fired:
            missing.append(f"{rule['alert']} {rule['labels']} never fires")
    for name in sorted({r["alert"] for r in rules}):
        if not any(c["alertname"] == name and not c.get("exp_alerts") for c in cases):
            missing.append(f"{name} is never checked not to fire")
    assert not missing, "\n".join(missing)


def test_every_alert_has_labels_annotations_and_a_runbook_section():
    document = yaml.safe_load(COMMITTED.read_text())
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)}
    for rule in alerts(document):
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/alerts.md" and anchor == rule["alert"].lower()
        assert anchor in headings, f"docs/alerts.md has no section {rule['alert']}"


def test_the_targets_are_the_simulators(example_fleet: Fleet):
    """Default targets come from SloTargets; other targets (and the throttled urgency, once it
    has one) change the rules accordingly."""
    default = SloTargets()
    text = render_rules(alert_rules(example_fleet), header="")
    assert f"> bool {default.queueing['high']:g}\n" in text
    assert f"> bool {default.queueing['low']:g}\n" in text
    budget = 1 - default.queueing_apdex
    for window in BURN_WINDOWS:
        assert f"ratio_{window.long}{{urgency=\"high\"}} > {window.burn * budget:.12g}" in text

    other = SloTargets(queueing={"high": 5.0, "low": 30.0, "throttled": 900.0},
                       queueing_apdex=0.99)
    document = alert_rules(example_fleet, other)
    records = {r["labels"]["urgency"]: r["expr"] for r in document["groups"][0]["rules"]
               if r.get("record") == "urgency:sidekiq_queueing_late:bool"}
    assert set(records) == {"high", "low", "throttled"}
    assert records["high"].endswith("> bool 5\n") and records["throttled"].endswith("> bool 900\n")
    assert 'ratio_1h{urgency="throttled"} > 0.144\n' in render_rules(document, header="")


def test_a_workloads_slo_section_sets_the_targets(tmp_path: Path, monkeypatch):
    workload = tmp_path / "w.yml"
    workload.write_text(yaml.safe_dump({
        "segments": [{"match": "*", "rate_per_s": 1,
                      "service": {"distribution": "exponential", "mean_s": 0.1}}],
        "slo": {"queueing_s": {"high": 3}, "queueing_apdex": 0.995},
    }))
    monkeypatch.chdir(ROOT)
    out = tmp_path / "alerts.yml"
    assert main(["alerts", "-i", EXAMPLE, "--workload", str(workload), "-o", str(out)]) == 0
    text = out.read_text()
    assert "> bool 3\n" in text and "> bool 60\n" in text  # low keeps the default
    assert "(queueing apdex 0.995)" in text and f"--workload {workload}" in text


def test_each_urgency_has_the_queues_the_routing_rules_send_its_workers_to(example_fleet):
    router = example_fleet.router
    expected: dict[str, set[str]] = {}
    for worker in router.routed_workers():
        expected.setdefault(worker.urgency or "low", set()).add(router.route(worker).queue)
    queues = urgency_queues(example_fleet)
    assert {u: set(qs) for u, qs in queues.items()} == expected
    # GitLab's example routes only non-CPU-bound high-urgency workers to high-urgency; the
    # CPU-bound ones land in default, which therefore counts against the 10 s target.
    assert queues["high"] == ("default", "high-urgency")
    assert "throttled" not in queues["high"] + queues["low"]


def test_listener_groups_of_the_example(example_fleet: Fleet):
    groups = {g.label: g.listeners for g in listener_groups(example_fleet)}
    s1, s2, s3 = (f"sidekiq{i}.example.com" for i in (1, 2, 3))
    assert groups == {
        "bitbucket_import_advance_stage, bitbucket_server_import_advance_stage, bulk_import "
        "and 63 more": ((s3, "sidekiq@0"), (s3, "sidekiq@1")),
        "default, mailers": ((s1, "sidekiq@2"), (s2, "sidekiq@3")),
        "high-urgency": ((s1, "sidekiq@0"), (s1, "sidekiq@1"), (s2, "sidekiq@0")),
        "network-intensive": ((s2, "sidekiq@1"), (s2, "sidekiq@2")),
        "throttled": ((s2, "sidekiq@1"),),
    }


def test_a_queue_nobody_listens_to_alerts_from_the_start(tmp_path: Path, capsys):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"sidekiq_routing_rules": [["urgency=high", "urgent"], ["*", "default"]]},
        "children": {"sidekiq": {"hosts": {"sk1": {"sidekiq_queue_groups": ["default,mailers"]}},
                                 }}}}))
    out = tmp_path / "alerts.yml"
    assert main(["alerts", "-i", str(inventory), "-o", str(out)]) == 0
    assert "no process listens to urgent" in capsys.readouterr().err
    document = yaml.safe_load(out.read_text())
    (orphan,) = [r for r in alerts(document) if r["labels"].get("queues") == "urgent"]
    assert orphan["expr"] == "vector(1)" and "no-listener" in orphan["annotations"]["description"]
    (planned,) = [r for r in alerts(document) if r["alert"] == "SidekiqProcessesNotAsPlanned"]
    assert planned["expr"].endswith('{instance="sk1"}) != 1')
    result = promtool("check", "rules", str(out))
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unwritable_output_is_unusable_input(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["alerts", "-i", EXAMPLE, "-o", str(tmp_path)]) == 2
    assert "-o: is a directory" in capsys.readouterr().err
