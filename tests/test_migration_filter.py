"""The Ansible filter sidekiq_migration_plan: plain data from plan_migration for the playbook."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOG = str(ROOT / "apps" / "sample" / "all_queues.yml")
# GitLab 16.11: `*` is every queue of the catalog (from 17.0 it would be the rules' queues and
# mailers, docs/behaviour.md §10).
OLD = {"sidekiq_routing_rules": [["*", ""]], "sidekiq_worker_catalog": CATALOG,
       "sidekiq_gitlab_version": "16.11"}
HOSTVARS = {
    "w1": {**OLD, "sidekiq_queue_groups": ["*"], "sidekiq_concurrency": 5},
    "w2": {**OLD, "sidekiq_queue_groups": ["*"], "sidekiq_concurrency": 5},
    "r1": OLD,
    "r2": OLD,
}
GROUPS = {"sidekiq": ["w1", "w2"], "rails": ["r1", "r2"]}
TARGET = {
    "sidekiq_routing_rules": [
        ["resource_boundary!=cpu&urgency=high", "high-urgency"],
        ["*", "default"],
    ]
}


def _filters():
    spec = importlib.util.spec_from_file_location(
        "sidekiq_fleet_filters", ROOT / "plugins" / "filter" / "sidekiq_fleet.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_for_the_playbook():
    plan = _filters().sidekiq_migration_plan(HOSTVARS, GROUPS, TARGET)
    old = ["urgent_notification", "checksum", "repository_probe", "flaky_import", "audit_event",
           "fidelity", "fidelity_bulk"]
    assert plan["current"]["w1"] == [",".join(old)]
    assert plan["both"]["w1"] == [",".join([*old, "high-urgency", "default"])]
    assert plan["final"] == {"w1": ["high-urgency,default"], "w2": ["high-urgency,default"]}
    assert plan["producers"] == ["r1", "r2"]
    assert plan["mapping"]["UrgentNotificationWorker"] == "high-urgency"
    assert plan["mapping"]["ChecksumWorker"] == "default"
    assert plan["retired_queues"] == sorted(old)
    assert plan["added_queues"] == ["default", "high-urgency"]
    assert plan["problems"] == []


def test_target_queue_groups_per_host():
    target = {**TARGET, "hosts": {"w2": {"sidekiq_queue_groups": ["default"]}}}
    plan = _filters().sidekiq_migration_plan(HOSTVARS, GROUPS, target)
    assert plan["final"]["w2"] == ["default"]
    assert plan["final"]["w1"] == ["high-urgency,default"]


def test_bad_targets_fail_with_the_engines_message():
    from ansible.errors import AnsibleFilterError

    f = _filters()
    with pytest.raises(AnsibleFilterError, match="needs sidekiq_routing_rules"):
        f.sidekiq_migration_plan(HOSTVARS, GROUPS, {})
    with pytest.raises(AnsibleFilterError, match="not in the sidekiq group"):
        f.sidekiq_migration_plan(HOSTVARS, GROUPS, {**TARGET, "hosts": {"r1": {}}})
    with pytest.raises(AnsibleFilterError, match="sidekiq_migration_plan"):
        f.sidekiq_migration_plan(HOSTVARS, GROUPS, {"sidekiq_routing_rules": [["nope=1", "x"]]})
