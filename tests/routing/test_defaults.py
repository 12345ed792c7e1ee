"""One source of defaults: fleetsim (inventory reading, plan) and the Ansible filter the roles
render their processes with apply the same defaults to a variable left unset, GitLab's current
ones: queue groups ``default,mailers``, 20 threads, min/max only when set and concurrency not."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from simulator.fleet.inventory import SIDEKIQ_VARS, load_fleet
from simulator.fleet.plan import build_plan
from simulator.routing import defaults, queue_groups
from simulator.routing.defaults import DEFAULTS, threads_model

ROOT = Path(__file__).resolve().parents[2]

#: Role defaults that still disagree with the engine's (none: keep it that way).
ROLE_CHANGES_PENDING: set[str] = set()


def _plugin():
    spec = importlib.util.spec_from_file_location(
        "sidekiq_fleet_filter_defaults", ROOT / "plugins" / "filter" / "sidekiq_fleet.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inventory(tmp_path: Path, sidekiq_vars: dict) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "sidekiq": {"hosts": {"sk1": {}}}, "rails": {"hosts": {"web1": {}}}}}}))
    if sidekiq_vars:
        (inv / "group_vars" / "sidekiq.yml").write_text(yaml.safe_dump(sidekiq_vars))
    return inv


OLD = {"sidekiq_gitlab_version": "16.11"}

CASES = {
    "every variable unset": ({}, [("default", "mailers")], [20], "default"),
    "only min/max (16.11)": ({**OLD, "sidekiq_min_concurrency": 5, "sidekiq_max_concurrency": 10},
                             [("default", "mailers")], [5], "formula"),
    "only max (16.11, formula: queues + 1)": ({**OLD, "sidekiq_max_concurrency": 10},
                                              [("default", "mailers")], [3], "formula"),
    "concurrency with min/max (16.11): concurrency wins": (
        {**OLD, "sidekiq_concurrency": 7, "sidekiq_min_concurrency": 5,
         "sidekiq_max_concurrency": 10},
        [("default", "mailers")], [7], "fixed"),
    "groups set, threads unset": ({"sidekiq_queue_groups": ["mailers", "default"]},
                                  [("mailers",), ("default",)], [20, 20], "default"),
    # GitLab's defaults by version (docs/behaviour.md §10).
    "16.11, nothing set: default,mailers, formula with max 20": (
        OLD, [("default", "mailers")], [3], "formula"),
    "17.0, nothing set: default,mailers, 20 threads": (
        {"sidekiq_gitlab_version": "17.0"}, [("default", "mailers")], [20], "default"),
    "17.0, `*`: the default rules' queues plus mailers": (
        {"sidekiq_gitlab_version": "17.0", "sidekiq_queue_groups": ["*"]},
        [("default", "mailers")], [20], "default"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fleetsim_plans_the_defaults_for_unset_variables(tmp_path, case):
    variables, queues, threads, model = CASES[case]
    plan = build_plan(load_fleet(_inventory(tmp_path, variables)))
    (host,) = plan["hosts"]
    assert [tuple(p["queues"]) for p in host["processes"]] == queues
    assert [p["concurrency"] for p in host["processes"]] == threads
    assert host["threads_model"] == model


@pytest.mark.parametrize("case", list(CASES))
def test_the_filter_renders_what_fleetsim_plans_when_the_role_passes_nulls(tmp_path, case):
    """The role may pass every variable it leaves unset as null (its defaults null)."""
    variables, _, _, _ = CASES[case]
    plan = build_plan(load_fleet(_inventory(tmp_path, variables)))
    rendered = _plugin().sidekiq_processes(
        variables.get("sidekiq_queue_groups"), None, None, None,
        variables.get("sidekiq_min_concurrency"), variables.get("sidekiq_max_concurrency"),
        variables.get("sidekiq_concurrency"), None, None, variables.get("sidekiq_gitlab_version"))
    planned = plan["hosts"][0]["processes"]
    assert [p["sidekiq_args"] for p in rendered] == [p["sidekiq_args"] for p in planned]


def test_the_filter_with_no_argument_at_all_gives_one_default_mailers_process():
    (proc,) = _plugin().sidekiq_processes()
    assert proc["queues"] == ["default", "mailers"] and proc["concurrency"] == 20


def test_the_routing_map_filter_takes_null_rules_and_strictness():
    mapping = _plugin().sidekiq_routing_map(None, None, None)
    assert set(mapping.values()) == {"default", "mailers"}


def test_default_filter_returns_the_engines_defaults_and_refuses_unknown_names():
    plugin = _plugin()
    assert plugin.sidekiq_fleet_default("sidekiq_queue_groups") == ["default,mailers"]
    assert plugin.sidekiq_fleet_default("sidekiq_concurrency") is None
    assert plugin.sidekiq_fleet_default("postgresql_max_connections") == 200
    assert "sidekiq_fleet_default" in plugin.FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match="no default for 'sidekiq_threads'"):
        plugin.sidekiq_fleet_default("sidekiq_threads")


def test_defaults_are_copies():
    groups = defaults.default("sidekiq_queue_groups")
    groups.append("x")
    assert defaults.default("sidekiq_queue_groups") == ["default,mailers"]


def test_one_table_one_concurrency():
    assert SIDEKIQ_VARS is defaults.SIDEKIQ_DEFAULTS
    assert queue_groups.DEFAULT_CONCURRENCY == defaults.DEFAULT_CONCURRENCY == 20
    assert queue_groups.process_concurrency(3) == defaults.DEFAULT_CONCURRENCY
    assert threads_model(min_concurrency=None, max_concurrency=None, concurrency=0) == "default"


def _role_defaults() -> dict[str, tuple[str, object]]:
    out: dict[str, tuple[str, object]] = {}
    for path in sorted((ROOT / "roles").glob("*/defaults/main.yml")):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            out[name] = (str(path.relative_to(ROOT)), value)
    return out


def test_role_defaults_leave_the_choice_to_the_engine_or_agree_with_it():
    """A role default of a variable the engine reads is null (the engine decides) or equal to
    the engine's default; an empty string counts as unset."""
    disagree = []
    for name, (path, value) in _role_defaults().items():
        if name not in DEFAULTS or name in ROLE_CHANGES_PENDING:
            continue
        if isinstance(value, str) and "{{" in value:
            continue  # a template: not a literal default
        ours = DEFAULTS[name]
        if value is None or value == ours or (value == "" and ours is None):
            continue
        if isinstance(value, list) and isinstance(ours, list) and \
                [list(v) if isinstance(v, (list, tuple)) else v for v in value] == ours:
            continue
        disagree.append(f"{path}: {name}: {value!r} (engine: {ours!r})")
    assert not disagree, disagree


# -- fetch order: weighted (GitLab's) unless an inventory asks for strict ------------------


def test_fetch_order_default_is_gitlabs_weighted():
    assert defaults.default("sidekiq_fetch_order") == "weighted"
    assert queue_groups.DEFAULT_FETCH_ORDER == defaults.DEFAULT_FETCH_ORDER


@pytest.mark.parametrize(("order", "args"), [
    (None, ["-q", "a,1", "-q", "b,1"]),
    ("weighted", ["-q", "a,1", "-q", "b,1"]),
    ("strict", ["-q", "a", "-q", "b"]),
])
def test_the_filter_renders_the_fetch_order(order, args):
    (proc,) = _plugin().sidekiq_processes(
        ["a,b"], None, None, None, None, None, 5, None, order)
    assert proc["sidekiq_args"] == ["-c", "5", *args]
    assert proc["fetch_order"] == (order or "weighted")


def test_the_filter_keeps_a_repeated_queue_weighted_even_when_strict_is_asked():
    (proc,) = _plugin().sidekiq_processes(["a,a,b"], None, None, None, None, None, 5, None,
                                          "strict")
    assert proc["sidekiq_args"] == ["-c", "5", "-q", "a,2", "-q", "b,1"]
    assert proc["fetch_order"] == "weighted"


@pytest.mark.parametrize("order", ["fifo", "", "Strict", True])
def test_the_filter_refuses_another_fetch_order(order):
    with pytest.raises(AnsibleFilterError, match=r"sidekiq_fetch_order.*weighted or strict"):
        _plugin().sidekiq_processes(["a,b"], None, None, None, None, None, 5, None, order)


@pytest.mark.parametrize("order", [None, "weighted", "strict"])
def test_fleetsim_plans_the_fetch_order_the_filter_renders(tmp_path, order):
    variables = {"sidekiq_queue_groups": ["default,mailers", "mailers"]}
    if order:
        variables["sidekiq_fetch_order"] = order
    plan = build_plan(load_fleet(_inventory(tmp_path, variables)))
    planned = plan["hosts"][0]["processes"]
    assert {p["fetch_order"] for p in planned} == {order or "weighted"}
    rendered = _plugin().sidekiq_processes(
        variables["sidekiq_queue_groups"], None, None, None, None, None, None, None, order)
    assert [p["sidekiq_args"] for p in rendered] == [p["sidekiq_args"] for p in planned]


def test_fleetsim_plan_cli_with_strict_and_with_a_bad_fetch_order(tmp_path, capsys):
    from simulator.cli.main import main

    inv = _inventory(tmp_path, {"sidekiq_fetch_order": "strict"})
    assert main(["plan", "-i", str(inv), "--json"]) == 0
    out = capsys.readouterr().out
    (host,) = json.loads(out)["hosts"]
    (proc,) = host["processes"]
    assert proc["strict"] and proc["fetch_order"] == "strict"
    assert proc["sidekiq_args"] == ["-c", "20", "-q", "default", "-q", "mailers"]

    (inv / "group_vars" / "sidekiq.yml").write_text("sidekiq_fetch_order: fifo\n")
    assert main(["plan", "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for part in (str(inv), "host sk1", "sidekiq_fetch_order", "'fifo'", "weighted or strict",
                 "fix:"):
        assert part in err, (part, err)


def test_the_role_default_and_argument_spec_leave_the_fetch_order_to_the_engine():
    role = ROOT / "roles" / "sidekiq"
    assert yaml.safe_load((role / "defaults" / "main.yml").read_text())[
        "sidekiq_fetch_order"] is None
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    option = spec["argument_specs"]["main"]["options"]["sidekiq_fetch_order"]
    # choices would refuse the null default, so the role asserts the value instead.
    assert option["type"] == "str" and "choices" not in option
    assert "sidekiq_fetch_order" in (role / "tasks" / "assert.yml").read_text()
    assert "sidekiq_fetch_order, sidekiq_gitlab_version" in (role / "vars" / "main.yml").read_text()
