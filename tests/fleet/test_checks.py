"""Fleet checks over real Ansible inventories (copies of inventories/example, broken on purpose)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from inventory_edits import edit_yaml as edit

from simulator.errors import FleetError, QueryError
from simulator.fleet.checks import check_fleet
from simulator.fleet.inventory import Fleet, load_fleet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest)
    return dest




def codes(inv: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in check_fleet(load_fleet(inv)):
        out.setdefault(f.code, []).append(f)
    return out


def test_example_inventory_is_clean():
    assert check_fleet(load_fleet(EXAMPLE)) == []


def test_example_processes(inventory):
    fleet = load_fleet(inventory)
    hosts = {h.name: h for h in fleet.sidekiq_hosts()}
    assert [p.queues for p in hosts["sidekiq1.example.com"].processes] == [
        ("high-urgency",),
        ("high-urgency",),
        ("default", "mailers"),
    ]
    assert all(p.concurrency == 20 for h in hosts.values() for p in h.processes)
    assert len(hosts["sidekiq3.example.com"].processes[0].queues) == 66


def test_missing_mailers_listener_names_hosts_and_fix(inventory):
    for path in (
        inventory / "group_vars/sidekiq.yml",
        inventory / "host_vars/sidekiq2.example.com.yml",
    ):
        groups = yaml.safe_load(path.read_text())["sidekiq_queue_groups"]
        edit(path, sidekiq_queue_groups=[g.replace("default,mailers", "default") for g in groups])
    (finding,) = codes(inventory)["no-mailers-listener"]
    assert finding.severity == "error"
    assert "sidekiq1.example.com" in finding.host
    assert "'default,mailers'" in finding.fix


def test_routed_queue_without_listener(inventory):
    edit(
        inventory / "host_vars/sidekiq2.example.com.yml",
        sidekiq_queue_groups=["high-urgency", "network-intensive", "default,mailers"],
    )
    (finding,) = codes(inventory)["no-listener"]
    assert "'throttled'" in finding.message and finding.severity == "error"
    assert "sidekiq_queue_groups" in finding.fix


def test_rules_differ_between_hosts(inventory):
    (inventory / "host_vars/rails2.example.com.yml").write_text(
        yaml.safe_dump({"sidekiq_routing_rules": [["*", "default"]]})
    )
    (finding,) = codes(inventory)["routing-rules-differ"]
    assert finding.host == "rails2.example.com" and finding.severity == "error"
    assert "group_vars/all" in finding.fix


def test_catch_all_not_last_and_missing(inventory):
    rules = yaml.safe_load((inventory / "group_vars/all.yml").read_text())["sidekiq_routing_rules"]
    edit(inventory / "group_vars/all.yml", sidekiq_routing_rules=[rules[-1], *rules[:-1]])
    found = codes(inventory)
    assert found["catch-all-not-last"][0].severity == "warning"
    edit(inventory / "group_vars/all.yml", sidekiq_routing_rules=rules[:-1])
    found = codes(inventory)
    assert found["no-catch-all"][0].severity == "warning"
    assert "no-listener" in found  # the unmatched workers' generated queues


def test_unused_queue_and_min_above_max(inventory):
    edit(inventory / "group_vars/all.yml", sidekiq_gitlab_version="16.11")  # min/max exist
    edit(
        inventory / "group_vars/sidekiq.yml",
        sidekiq_concurrency=None,
        sidekiq_min_concurrency=30,
        sidekiq_max_concurrency=10,
        sidekiq_queue_groups=["high-urgency", "default,mailers,nobody_routes_here"],
    )
    found = codes(inventory)
    (unused,) = found["unused-queue"]
    assert unused.severity == "warning" and "nobody_routes_here" in unused.message
    assert unused.host == "sidekiq1.example.com/sidekiq@1"
    assert {f.host for f in found["min-above-max"]} == {
        "sidekiq1.example.com",
        "sidekiq2.example.com",
        "sidekiq3.example.com",
    }


def test_bad_query_is_unusable_input_with_position(inventory):
    rules = yaml.safe_load((inventory / "group_vars/all.yml").read_text())["sidekiq_routing_rules"]
    rules[1][0] = "feature_category=database&urgency=throttled!"
    edit(inventory / "group_vars/all.yml", sidekiq_routing_rules=rules)
    with pytest.raises(QueryError) as err:
        check_fleet(load_fleet(inventory))
    text = str(err.value)
    assert "rule 2" in text and "position 44" in text and str(inventory) in text


def test_gitlab_compat_per_inventory(inventory):
    rules = yaml.safe_load((inventory / "group_vars/all.yml").read_text())["sidekiq_routing_rules"]
    rules[1][0] = "feature_category=database&urgency=throttled!"
    edit(inventory / "group_vars/all.yml", sidekiq_routing_rules=rules, sidekiq_query_strict=False)
    assert [f for f in check_fleet(load_fleet(inventory)) if f.severity == "error"] == []


def test_from_hostvars_matches_load_fleet():
    fleet = Fleet.from_hostvars(
        {"w1": {"sidekiq_queue_groups": ["default,mailers"]}, "r1": {}},
        {"sidekiq": ["w1"], "rails": ["r1"]},
    )
    assert check_fleet(fleet) == []
    with pytest.raises(FleetError):
        Fleet.from_hostvars(
            {"w1": {"sidekiq_queue_groups": "x"}}, {"sidekiq": ["w1"]}
        ).sidekiq_hosts()


def test_no_sidekiq_hosts_is_an_error():
    (finding,) = check_fleet(Fleet.from_hostvars({}, {"rails": []}))
    assert finding.code == "no-sidekiq-hosts"


# -- booleans are parsed strictly (issue 9 item 7) ------------------------------------------------


def _two_queue_fleet(**extra) -> Fleet:
    hv = {"sidekiq_queue_groups": ["default,mailers"], **extra}
    return Fleet.from_hostvars({"sk1": hv}, {"sidekiq": ["sk1"]}, source="inv/hosts.yml")


@pytest.mark.parametrize(
    "var", ["sidekiq_negate", "sidekiq_queue_selector", "sidekiq_query_strict"]
)
@pytest.mark.parametrize("value", ["false", "no", "true", "yes", "", 0, 1, "False"])
def test_boolean_variables_reject_strings_and_numbers(var, value):
    fleet = _two_queue_fleet(**{var: value})
    with pytest.raises(FleetError) as info:
        check_fleet(fleet)
    text = str(info.value)
    assert var in text and "sk1" in text and "inv/hosts.yml" in text
    assert "unquoted true or false" in text


def test_negate_string_false_never_flips_to_every_queue():
    fleet = _two_queue_fleet(sidekiq_negate="false")
    with pytest.raises(FleetError):
        fleet.sidekiq_hosts()
    fleet = _two_queue_fleet(sidekiq_negate=False)
    assert len(fleet.sidekiq_hosts()[0].processes[0].queues) == 2
    fleet = _two_queue_fleet(sidekiq_negate=True, sidekiq_gitlab_version="16.11")
    assert len(fleet.sidekiq_hosts()[0].processes[0].queues) > 500


def test_expand_queue_groups_rejects_non_boolean_flags(catalog):
    from simulator.errors import QueueGroupError
    from simulator.routing.queue_groups import expand_queue_groups

    for flag in ("selector", "negate", "strict"):
        with pytest.raises(QueueGroupError) as info:
            expand_queue_groups(["default"], catalog, **{flag: "false"})
        assert "true or false" in str(info.value)


def test_quoted_false_in_an_inventory_is_unusable_input(inventory):
    edit(inventory / "group_vars" / "sidekiq.yml", sidekiq_negate="false")
    with pytest.raises(FleetError) as info:
        check_fleet(load_fleet(inventory))
    assert "sidekiq_negate" in str(info.value) and "sidekiq1.example.com" in str(info.value)
