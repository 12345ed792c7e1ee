"""sidekiq_gitlab_version through an inventory: what fleetsim plan assumes and prints, errors that
name the file and the variable, and the roles' filter rendering what fleetsim plans."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from simulator.cli.main import main
from simulator.errors import FleetError, VersionError
from simulator.fleet.checks import check_fleet
from simulator.fleet.inventory import Fleet, load_fleet, value_origin
from simulator.fleet.plan import build_plan, render_plan
from simulator.routing.defaults import DEFAULT_GITLAB_VERSION

ROOT = Path(__file__).resolve().parents[2]
RULES = [
    ["resource_boundary=cpu&urgency=high", "urgent_cpu_bound"],
    ["resource_boundary=memory", "memory_bound"],
    ["*", "default"],
]


def _plugin():
    spec = importlib.util.spec_from_file_location(
        "sidekiq_fleet_filter_versions", ROOT / "plugins" / "filter" / "sidekiq_fleet.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inventory(tmp_path: Path, all_vars: dict | None = None, sidekiq_text: str = "") -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "sidekiq": {"hosts": {"sk1": {}, "sk2": {}}}, "rails": {"hosts": {"web1": {}}}}}}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(all_vars or {}))
    if sidekiq_text:
        (inv / "group_vars" / "sidekiq.yml").write_text(sidekiq_text)
    return inv


def test_plan_says_which_version_it_assumed(tmp_path, capsys):
    inv = _inventory(tmp_path)
    assert main(["plan", "-i", str(inv)]) == 0
    out = capsys.readouterr().out
    assert (f"GitLab {DEFAULT_GITLAB_VERSION} (assumed: sidekiq_gitlab_version unset, the current "
            "release)") in out.splitlines()[1]
    assert main(["plan", "-i", str(inv), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["gitlab_version"] == DEFAULT_GITLAB_VERSION and not plan["gitlab_version_set"]
    assert {h["gitlab_version"] for h in plan["hosts"]} == {DEFAULT_GITLAB_VERSION}


def test_plan_prints_the_inventorys_version(tmp_path, capsys):
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "16.11"})
    assert main(["plan", "-i", str(inv)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1] == "GitLab 16.11 (sidekiq_gitlab_version)"
    # 16.10+: default,mailers; before 17.0: GitLab's formula, max 20 -> 3 threads.
    assert "sidekiq@0: 3 threads (GitLab's formula: queues + 1 within min/max)" in out
    assert "default, mailers" in out


def test_a_host_on_another_version_is_shown(tmp_path):
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "17.0"})
    (inv / "host_vars").mkdir()
    (inv / "host_vars" / "sk2.yml").write_text("sidekiq_gitlab_version: '16.11'\n")
    plan = build_plan(load_fleet(inv))
    assert plan["gitlab_version"] == "17.0"
    assert [h["gitlab_version"] for h in plan["hosts"]] == ["17.0", "16.11"]
    text = render_plan(plan)
    assert "sk2 (GitLab 16.11): 1 Sidekiq process(es)" in text
    assert "sk1: 1 Sidekiq process(es)" in text


def test_an_unquoted_version_names_the_file_line_and_variable(tmp_path, capsys):
    inv = _inventory(tmp_path, sidekiq_text="---\nsidekiq_gitlab_version: 17.10\n")
    assert main(["plan", "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    where = f"{inv / 'group_vars' / 'sidekiq.yml'}:2, host sk1, sidekiq_gitlab_version"
    assert err.startswith(f"fleetsim: error: {where}: "), err
    assert "the number 17.1" in err and "fix:" in err and "Traceback" not in err


def test_a_version_that_is_no_version_names_the_file(tmp_path):
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "latest"})
    with pytest.raises(VersionError) as info:
        build_plan(load_fleet(inv))
    text = str(info.value)
    assert str(inv / "group_vars" / "all.yml") in text and "sidekiq_gitlab_version" in text
    assert "'latest' is not a GitLab version" in text


def test_origin_of_a_variable_is_read_from_ansible_core(tmp_path):
    """value_origin reaches into ansible-core's private Origin tags: pin that it still works."""
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "17.1"})
    host = load_fleet(inv).hosts["sk1"]
    assert host.origins["sidekiq_gitlab_version"] == f"{inv / 'group_vars' / 'all.yml'}:1"
    assert value_origin("a plain string") is None


def test_from_hostvars_without_origins_names_the_inventory():
    fleet = Fleet.from_hostvars({"sk1": {"sidekiq_gitlab_version": 17.1}}, {"sidekiq": ["sk1"]},
                                source="inv/hosts.yml")
    with pytest.raises(VersionError, match=r"^inv/hosts.yml, host sk1, sidekiq_gitlab_version: "):
        fleet.sidekiq_hosts()


def test_selector_on_17_is_refused_naming_the_host(tmp_path, capsys):
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "17.0"},
                     "sidekiq_queue_selector: true\nsidekiq_queue_groups: ['urgency=high']\n")
    assert main(["plan", "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    assert f"{inv}, host sk1: Removed configurations found in gitlab.rb." in err
    assert "sidekiq['queue_selector'] (sidekiq_queue_selector) has been deprecated since 15.9 " \
           "and was removed in 17.0." in err


def test_deprecated_settings_are_a_warning_before_17(tmp_path):
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "16.11"},
                     "sidekiq_queue_selector: true\nsidekiq_queue_groups: ['urgency=high', '*']\n"
                     "sidekiq_max_concurrency: 10\n")
    found = [f for f in check_fleet(load_fleet(inv)) if f.code == "deprecated-setting"]
    assert {f.host for f in found} == {"sk1", "sk2"} and found[0].severity == "warning"
    assert "sidekiq_queue_selector" in found[0].message
    assert "sidekiq_max_concurrency" in found[0].message
    assert "cannot upgrade to 17.0" in found[0].message


def test_star_from_17_follows_the_fleets_routing_rules(tmp_path):
    inv = _inventory(tmp_path, {"sidekiq_gitlab_version": "17.0", "sidekiq_routing_rules": RULES},
                     "sidekiq_queue_groups: ['*']\n")
    plan = build_plan(load_fleet(inv))
    (proc,) = plan["hosts"][0]["processes"]
    assert proc["queues"] == ["urgent_cpu_bound", "memory_bound", "default", "mailers"]
    assert proc["concurrency"] == 20
    old = _inventory(tmp_path / "old", {"sidekiq_gitlab_version": "16.11",
                                        "sidekiq_routing_rules": RULES},
                     "sidekiq_queue_groups: ['*']\n")
    (proc,) = build_plan(load_fleet(old))["hosts"][0]["processes"]
    assert len(proc["queues"]) == 574 and proc["concurrency"] == 20


@pytest.mark.parametrize(("version", "groups"), [
    ("15.3", None), ("16.9", None), ("16.10", None), ("16.11", ["*"]), ("17.0", ["*"]),
    ("17.0", None), (None, ["*", "default,mailers"]),
])
def test_the_roles_filter_renders_what_fleetsim_plans(tmp_path, version, groups):
    all_vars = {"sidekiq_routing_rules": RULES}
    if version:
        all_vars["sidekiq_gitlab_version"] = version
    inv = _inventory(tmp_path, all_vars,
                     yaml.safe_dump({"sidekiq_queue_groups": groups}) if groups else "")
    planned = build_plan(load_fleet(inv))["hosts"][0]["processes"]
    rendered = _plugin().sidekiq_processes(groups, None, None, None, None, None, None, None,
                                           None, version, RULES)
    assert [p["sidekiq_args"] for p in rendered] == [p["sidekiq_args"] for p in planned]


def test_the_default_filter_takes_a_version():
    plugin = _plugin()
    assert plugin.sidekiq_fleet_default("sidekiq_gitlab_version") == DEFAULT_GITLAB_VERSION
    assert plugin.sidekiq_fleet_default("sidekiq_queue_groups", "16.9") == ["*"]
    assert plugin.sidekiq_fleet_default("sidekiq_queue_groups", "16.10") == ["default,mailers"]
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="not a GitLab version"):
        plugin.sidekiq_fleet_default("sidekiq_queue_groups", "sixteen")


def test_the_filter_refuses_removed_settings_like_fleetsim():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match=r"Removed configurations found in gitlab\.rb"):
        _plugin().sidekiq_processes(["urgency=high"], None, True, None, None, None, None, None,
                                    None, "17.0")
    (proc,) = _plugin().sidekiq_processes(["urgency=high"], None, True, None, None, None, None,
                                          None, None, "16.11")
    assert len(proc["queues"]) > 20


def test_role_and_engine_share_the_version_default():
    fleet_defaults = yaml.safe_load((ROOT / "roles/fleet/defaults/main.yml").read_text())
    assert fleet_defaults["sidekiq_gitlab_version"] == DEFAULT_GITLAB_VERSION
    spec = yaml.safe_load((ROOT / "roles/fleet/meta/argument_specs.yml").read_text())
    option = spec["argument_specs"]["main"]["options"]["sidekiq_gitlab_version"]
    assert option["type"] == "str" and option["default"] == DEFAULT_GITLAB_VERSION
    sidekiq_vars = (ROOT / "roles/sidekiq/vars/main.yml").read_text()
    assert "sidekiq_gitlab_version, sidekiq_routing_rules)" in sidekiq_vars
    with pytest.raises(FleetError):
        Fleet.from_hostvars({"sk1": {"sidekiq_gitlab_version": "x"}},
                            {"sidekiq": ["sk1"]}).sidekiq_hosts()
