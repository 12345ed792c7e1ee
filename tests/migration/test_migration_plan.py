"""The safe phase order of a routing migration, computed with the routing engine."""

from __future__ import annotations

import pytest

from simulator.errors import FleetError
from simulator.fleet.inventory import Fleet
from simulator.migration.plan import MigrationTarget, plan_migration, plan_problems, uncovered

NEW_RULES = [
    ["resource_boundary!=cpu&urgency=high", "high-urgency"],
    ["has_external_dependencies=true", "network-intensive"],
    ["*", "default"],
]


def pre_15_4_fleet() -> Fleet:
    """GitLab before 15.4: one queue per worker (generated names), processes on `*`."""
    old = {"sidekiq_routing_rules": [["*", ""]], "sidekiq_gitlab_version": "15.3"}
    hostvars = {
        "w1": {**old, "sidekiq_queue_groups": ["*", "*"]},
        "w2": {**old, "sidekiq_queue_groups": ["*"]},
        "r1": old,
        "r2": old,
    }
    return Fleet.from_hostvars(hostvars, {"sidekiq": ["w1", "w2"], "rails": ["r1", "r2"]})


def test_safe_phases_always_have_a_listener():
    fleet = pre_15_4_fleet()
    plan = plan_migration(fleet, MigrationTarget(NEW_RULES))
    assert plan_problems(fleet, plan) == []
    assert plan.added_queues == ["default", "high-urgency", "network-intensive"]
    assert "post_receive" in plan.retired_queues and "default" not in plan.retired_queues
    both = plan.both["w1"].processes[0]
    assert {"high-urgency", "network-intensive", "post_receive"} <= set(both.weights)
    final = {q for p in plan.final["w1"].processes for q in p.weights}
    assert final == {"default", "mailers", "high-urgency", "network-intensive"}
    assert plan.producers == ["r1", "r2"]
    assert plan.mapping["PostReceive"] == "default"
    assert plan.mapping["ActionMailer::MailDeliveryJob"] == "mailers"


def test_naive_order_strands_jobs():
    """Switching producers first: the new queues have no listener yet."""
    fleet = pre_15_4_fleet()
    plan = plan_migration(fleet, MigrationTarget(NEW_RULES))
    shards = {"w1": None, "w2": None}
    assert uncovered(plan.current, plan.new, shards) == ["high-urgency", "network-intensive"]
    assert uncovered(plan.both, plan.new, shards) == []


def test_explicit_final_queue_groups_are_checked():
    fleet = pre_15_4_fleet()
    target = MigrationTarget(NEW_RULES, {"w1": ["high-urgency", "default"], "w2": ["default"]})
    plan = plan_migration(fleet, target)
    problems = plan_problems(fleet, plan)
    assert problems == [
        "stop-old: queue 'mailers' has no listener",
        "stop-old: queue 'network-intensive' has no listener",
    ]


def test_bad_target_rules_are_unusable_input():
    with pytest.raises(FleetError, match="Invalid term"):
        plan_migration(
            pre_15_4_fleet(), MigrationTarget([["urgency=high|*", "x"]], source="to.yml")
        )
