"""The lab's Prometheus (issue 14 items 3 and 4), on the monitoring host fleet-redis:

1. every scrape target (both Sidekiq exporters, the Redis and the PostgreSQL exporter) is up;
2. every PromQL expression of the Grafana dashboard and of the loaded alert rules finds data:
   the expression returns a series, or else every vector selector in it does, relaxed to its
   metric and label names when its values select nothing yet (simulator.report.promql says why;
   docs/monitoring.md);
3. stopping every Sidekiq process of one worker (the other keeps running) makes
   SidekiqProcessDown go pending and then firing for that node within its rule's for: plus two
   scrape/evaluation intervals and the stop itself; starting them again clears it.

Prometheus answers on 127.0.0.1:9090 of the monitoring host only: the tests ask it from there
(python3 is on every node). Each step prints its seconds; the module aims at under 3 minutes.
Named to run after test_hardening and before test_stage_fidelity, which must stay last.
"""

from __future__ import annotations

import json
import shlex
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import testinfra
from conftest import WORKERS, host_spec, record_step, wait_for

from simulator.report.promql import dashboard_problems, dashboard_queries, relaxed, vector_selectors

MONITORING = "fleet-redis"
PROMETHEUS = "http://127.0.0.1:9090"
ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "monitoring" / "grafana" / "sidekiq-fleet.json"
#: The scenario's intervals (group_vars/monitoring.yml: prometheus_scrape_interval).
INTERVAL_S = 5.0
#: sidekiq_exporter_heartbeat_max_age (its default): a process that died without removing its
#: heartbeat counts as down this long after its last beat at the latest.
HEARTBEAT_MAX_AGE_S = 20.0
#: Jobs the lab must scrape, with their number of targets (molecule.yml's groups).
JOBS = {"sidekiq": 2, "redis": 1, "postgresql": 1}
#: The worker whose processes are stopped (the last one: fleet-sidekiq2).
VICTIM = WORKERS[-1]
#: Series that exist only once their event happened; their selectors cannot be required.
#: redis_exporter exports redis_errors_total{err} per error type Redis has answered (INFO
#: errorstats); an OOM needs a Redis at maxmemory, which the lab does not provoke.
EVENT_ONLY = {"redis_errors_total": "exported per error type only after Redis answered one"}
#: Grafana's built-in interval variables, replaced before a dashboard query is run.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}

testinfra_hosts = [host_spec(MONITORING)]


class Step:
    """Prints how long a step took (the lead reads the stage's wall times from the log)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> Step:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        seconds = time.monotonic() - self.start
        record_step(f"monitoring: {self.name}", seconds)
        print(f"[monitoring] {self.name}: {seconds:.1f} s", flush=True)


@pytest.fixture(scope="module")
def monitoring() -> testinfra.host.Host:
    return testinfra.get_host(host_spec(MONITORING))


def api(host: testinfra.host.Host, path: str, **params: str) -> Any:
    """``data`` of a Prometheus API answer, asked on the monitoring host itself."""
    url = PROMETHEUS + path + ("?" + urllib.parse.urlencode(params) if params else "")
    script = (
        "import json, sys, urllib.request\n"
        f"print(urllib.request.urlopen({url!r}, timeout=10).read().decode())\n"
    )
    answer = json.loads(host.check_output(f"python3 -c {shlex.quote(script)}"))
    assert answer.get("status") == "success", answer
    return answer["data"]


#: Runs on the monitoring host: reads a JSON list of expressions on stdin, prints how many series
#: each returns (one command for many queries: each command through Ansible costs about a second).
_COUNT_SCRIPT = """
import json, sys, urllib.parse, urllib.request
counts = []
for expr in json.load(sys.stdin):
    url = "%s/api/v1/query?" % sys.argv[1] + urllib.parse.urlencode({"query": expr})
    data = json.load(urllib.request.urlopen(url, timeout=10))["data"]
    counts.append(1 if data["resultType"] in ("scalar", "string") else len(data["result"]))
print(json.dumps(counts))
"""


def series_counts(host: testinfra.host.Host, exprs: list[str]) -> dict[str, int]:
    """How many series each expression returns now (instant queries)."""
    exprs = list(dict.fromkeys(exprs))
    if not exprs:
        return {}
    out = host.check_output(
        f"echo {shlex.quote(json.dumps(exprs))} | python3 -c {shlex.quote(_COUNT_SCRIPT)} "
        f"{PROMETHEUS}")
    return dict(zip(exprs, json.loads(out), strict=True))


def test_every_scrape_target_is_up(monitoring):
    def targets_up():
        active = api(monitoring, "/api/v1/targets", state="active")["activeTargets"]
        per_job: dict[str, int] = {}
        for target in active:
            if target["health"] == "up":
                per_job[target["labels"]["job"]] = per_job.get(target["labels"]["job"], 0) + 1
        down = [(t["labels"]["instance"], t["labels"]["job"], t.get("lastError"))
                for t in active if t["health"] != "up"]
        return (per_job == JOBS and not down) or None

    with Step("every scrape target up"):
        wait_for(f"Prometheus' targets {JOBS} all up", targets_up, timeout=90, every=2)


def test_dashboard_json_is_clean():
    assert dashboard_problems(DASHBOARD.read_text()) == []


def without_data(host: testinfra.host.Host, exprs: list[str]) -> dict[str, str]:
    """The expressions that find no data by the rule of simulator.report.promql, with why:
    the expression returns a series, or else each of its vector selectors does, or else the
    selector relaxed to its metric and label names does. Three batched rounds of queries."""
    counts = series_counts(host, exprs)
    empty = [e for e in exprs if not counts[e]]
    selectors = {e: vector_selectors(e) for e in empty}
    counts.update(series_counts(host, [str(s) for ss in selectors.values() for s in ss]))
    counts.update(series_counts(host, [relaxed(s) for ss in selectors.values() for s in ss
                                       if not counts[str(s)]]))
    failures = {}
    for expr, found in selectors.items():
        missing = []
        for selector in found:
            if counts[str(selector)] or counts[relaxed(selector)]:
                continue
            if selector.metric in EVENT_ONLY:
                print(f"[monitoring] not required: {selector} ({EVENT_ONLY[selector.metric]})")
                continue
            missing.append(relaxed(selector))
        if missing or not found:
            failures[expr] = "no series, not even for " + (
                ", ".join(dict.fromkeys(missing)) or "the expression (it has no selector)")
    return failures


def _rule_queries(host: testinfra.host.Host) -> list[tuple[str, str]]:
    groups = api(host, "/api/v1/rules")["groups"]
    return [(f"{g['name']} / {r['name']}", r["query"]) for g in groups for r in g["rules"]]


def test_every_dashboard_and_alert_query_finds_data(monitoring):
    with Step("dashboard and rule queries"):
        text = json.loads(DASHBOARD.read_text())
        queries = []
        for where, expr in dashboard_queries(text):
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((f"dashboard: {where}", expr))
        rules = _rule_queries(monitoring)
        assert rules, "Prometheus loaded no rules (rule_files in /etc/prometheus/prometheus.yml)"
        queries += [(f"rule: {where}", expr) for where, expr in rules]
        # The recording rules need one evaluation first; the rates need two scrapes.
        time.sleep(2 * INTERVAL_S)
        problems = without_data(monitoring, [expr for _, expr in queries])
        failures = [f"{where}: {problems[expr]}\n    {expr}" for where, expr in queries
                    if expr in problems]
        print(f"[monitoring] {len(queries)} queries, {len(failures)} without data")
    assert not failures, "queries without data:\n" + "\n".join(failures)


def _rule(host: testinfra.host.Host, name: str) -> dict[str, Any]:
    for group in api(host, "/api/v1/rules", type="alert")["groups"]:
        for rule in group["rules"]:
            if rule["name"] == name:
                return rule
    pytest.fail(f"no alert rule {name} is loaded")


def _state(host: testinfra.host.Host, name: str, instance: str) -> str | None:
    """pending/firing of alert ``name`` for ``instance``, None when it is not active."""
    states = {a["state"] for a in api(host, "/api/v1/alerts")["alerts"]
              if a["labels"].get("alertname") == name and a["labels"].get("instance") == instance}
    return "firing" if "firing" in states else ("pending" if states else None)


def test_stopped_node_fires_process_down_and_recovery_clears_it(monitoring):
    worker = testinfra.get_host(host_spec(VICTIM))
    name = "SidekiqProcessDown"
    rule = _rule(monitoring, name)
    hold = float(rule.get("duration", 0))
    assert hold <= 60, f"{name} holds {hold:g} s: set fleet_alert_settings.process_down_for"
    assert _state(monitoring, name, VICTIM) is None, f"{name} is active before the test"
    units = worker.check_output(
        "systemctl list-units --plain --no-legend --state=active 'sidekiq@*.service'"
        " | awk '{print $1}'").split()
    assert units, f"no sidekiq@ unit runs on {VICTIM}"
    try:
        with Step(f"stop {len(units)} Sidekiq unit(s) on {VICTIM}"):
            worker.check_output("systemctl stop " + " ".join(map(shlex.quote, units)))
        stopped = time.monotonic()
        # A stopped Sidekiq removes its heartbeat: down on the next scrape, pending at the next
        # evaluation (a stale heartbeat would take up to HEARTBEAT_MAX_AGE_S more).
        with Step(f"{name} pending"):
            wait_for(f"{name} pending for {VICTIM}",
                     lambda: _state(monitoring, name, VICTIM),
                     timeout=HEARTBEAT_MAX_AGE_S + 3 * INTERVAL_S + 5)
        with Step(f"{name} firing (for: {hold:g} s)"):
            wait_for(f"{name} firing for {VICTIM}",
                     lambda: _state(monitoring, name, VICTIM) == "firing",
                     timeout=hold + 3 * INTERVAL_S + 5)
        print(f"[monitoring] {name} fired {time.monotonic() - stopped:.1f} s after the stop "
              f"(rule: for {hold:g} s, interval {INTERVAL_S:g} s)")
        others = [w for w in WORKERS if w != VICTIM]
        assert all(_state(monitoring, name, w) is None for w in others), \
            f"{name} is active on a worker that kept running"
    finally:
        with Step(f"start the unit(s) on {VICTIM} again"):
            worker.check_output("systemctl start " + " ".join(map(shlex.quote, units)))
    with Step(f"{name} cleared"):
        wait_for(f"{name} cleared for {VICTIM}",
                 lambda: _state(monitoring, name, VICTIM) is None, timeout=60, every=2)
    # Leave the fleet as found for the modules after this one.
    assert all(worker.service(unit).is_running for unit in units)
