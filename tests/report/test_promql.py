"""simulator.report.promql: the vector selectors of PromQL expressions (the lab's rule for alert
expressions that are empty while healthy) and the Grafana dashboard's lint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from simulator.report.promql import (
    Selector,
    dashboard_problems,
    dashboard_queries,
    relaxed,
    vector_selectors,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "sidekiq-fleet.json"
RULES = ROOT / "monitoring" / "alerts.yml"


@pytest.mark.parametrize(("expr", "selectors"), [
    ("sidekiq_process_up == 0", ["sidekiq_process_up"]),
    ('absent(up{fleet_role="sidekiq"})', ['up{fleet_role="sidekiq"}']),
    ("max(delta(sidekiq_dead_set_size[30m])) > 0", ["sidekiq_dead_set_size"]),
    ("redis_memory_used_bytes / (redis_memory_max_bytes > 0) > 0.9",
     ["redis_memory_used_bytes", "redis_memory_max_bytes"]),
    ('count by (instance) (sidekiq_process_up{instance="a"}) != 2',
     ['sidekiq_process_up{instance="a"}']),
    ("sum without (pid) (a) * on(instance) group_left(tag) b", ["a", "b"]),
    ('(sum(x{tag="s@0"} or x{tag="s@1"}) or on() vector(0)) < 1', ['x{tag="s@0"}', 'x{tag="s@1"}']),
    ("avg_over_time(urgency:late:bool[5m]) offset 1h", ["urgency:late:bool"]),
    ('rate(jobs_total{queue=~"a|b}c"}[5m]) > bool 1e3', ['jobs_total{queue=~"a|b}c"}']),
    ('{__name__="up", job="x"}', ['{__name__="up", job="x"}']),
    ("vector(1)", []),
    ("topk(3, sum by (queue) (q)) and ignoring(queue) up", ["q", "up"]),
])
def test_vector_selectors(expr, selectors):
    assert [str(s) for s in vector_selectors(expr)] == selectors


def test_selectors_repeat_once():
    found = vector_selectors("a + a + a{x='1'} + a{x='1'}")
    assert found == [Selector("a"), Selector("a", "{x='1'}")]


def test_relaxed_keeps_metric_and_label_names_not_values():
    selector = vector_selectors('m{queue=~"a|b", tag!="x", __name__="m"}')[0]
    assert selector.label_names == ("queue", "tag")
    assert relaxed(selector) == 'm{queue!="", tag!=""}'
    assert relaxed(Selector("up")) == "up"


def test_every_generated_rule_reads_some_metric_or_is_a_constant():
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            found = vector_selectors(rule["expr"])
            assert found or rule["expr"].strip() == "vector(1)", rule


def test_repository_dashboard_is_clean_and_every_target_has_a_query():
    text = DASHBOARD.read_text()
    assert dashboard_problems(text) == []
    queries = dashboard_queries(json.loads(text))
    assert queries and all(expr for _, expr in queries)
    assert all(vector_selectors(expr) for _, expr in queries)


def _dashboard(**panel_changes) -> dict:
    panel = {"type": "timeseries", "title": "P",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "targets": [{"refId": "A", "expr": "up"}]}
    panel.update(panel_changes)
    return {"templating": {"list": [{"name": "datasource", "type": "datasource",
                                     "query": "prometheus"}]},
            "panels": [panel]}


def test_a_clean_dashboard_passes():
    assert dashboard_problems(json.dumps(_dashboard())) == []


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "not valid JSON"),
    (json.dumps(_dashboard(targets=[{"refId": "A", "expr": ""}])), "target A: no expr"),
    (json.dumps(_dashboard(targets=[])), "has no targets"),
    (json.dumps(_dashboard(datasource={"type": "prometheus", "uid": "abc123"})),
     "is not the variable"),
    (json.dumps(_dashboard(targets=[{"refId": "B", "expr": "up",
                                     "datasource": {"uid": "${other}"}}])),
     "target B: datasource"),
    (json.dumps({**_dashboard(), "templating": {"list": []}}),
     "exactly one datasource variable"),
])
def test_dashboard_problems_are_found(text, problem):
    problems = dashboard_problems(text)
    assert any(problem in p for p in problems), problems
