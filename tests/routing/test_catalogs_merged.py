"""GitLab EE's catalog is two files (app/workers/all_queues.yml and ee/app/workers/all_queues.yml):
sidekiq_worker_catalog takes a list and merges them; a worker class in two files is an error
naming both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from simulator.cli.main import main
from simulator.errors import CatalogError, QueryError
from simulator.fleet.checks import check_fleet
from simulator.fleet.inventory import Fleet, load_fleet
from simulator.fleet.plan import build_plan
from simulator.routing.catalog import (
    DEFAULT_CATALOG_PATH,
    cached_catalog,
    catalog_paths,
    merge_catalogs,
)
from simulator.routing.rules import Router

# Two EE workers in GitLab's generated (symbol) format.
EE_TEXT = """\
---
- :name: elastic_commit_indexer
  :worker_name: ElasticCommitIndexerWorker
  :feature_category: :global_search
  :has_external_dependencies: false
  :urgency: :throttled
  :resource_boundary: :cpu
  :weight: 2
  :idempotent: true
  :tags: []
  :queue_namespace:
- :name: security_scans:security_store_scans
  :worker_name: Security::StoreScansWorker
  :feature_category: :vulnerability_management
  :has_external_dependencies: false
  :urgency: :low
  :resource_boundary: :unknown
  :weight: 1
  :idempotent: true
  :tags: []
  :queue_namespace: :security_scans
"""


@pytest.fixture
def ee(tmp_path: Path) -> Path:
    path = tmp_path / "ee_all_queues.yml"
    path.write_text(EE_TEXT)
    return path


def test_ce_and_ee_files_merge_in_order(catalog, ee):
    merged = cached_catalog([DEFAULT_CATALOG_PATH, ee])
    assert len(merged) == len(catalog) + 2
    assert merged.get("Security::StoreScansWorker").name == "security_scans:security_store_scans"
    assert merged.workers[: len(catalog)] == catalog.workers
    assert merged.path == f"{DEFAULT_CATALOG_PATH} + {ee}"
    assert cached_catalog([DEFAULT_CATALOG_PATH, ee]) is merged  # memoised
    rules = [["feature_category=vulnerability_management", "security"], ["*", "default"]]
    router = Router.from_rules(rules, merged)
    assert router.route_key("Security::StoreScansWorker").queue == "security"
    # Strict mode knows the EE values only with the EE file.
    with pytest.raises(QueryError, match="vulnerability_management"):
        Router.from_rules([["feature_category=vulnerability_management", "security"]], catalog)


def test_a_worker_in_two_files_is_an_error_naming_both(tmp_path, ee):
    again = tmp_path / "copy.yml"
    shutil.copy(ee, again)
    with pytest.raises(CatalogError) as info:
        cached_catalog([ee, again])
    text = str(info.value)
    assert f"listed in both {ee} and {again}" in text
    assert "ElasticCommitIndexerWorker, Security::StoreScansWorker" in text
    assert "2 worker class(es)" in text and "fix:" in text


def test_placeholders_are_kept_once(catalog, tmp_path):
    other = tmp_path / "app.yml"
    other.write_text("- :name: default\n- :name: mailers\n  :worker_name: "
                     "ActionMailer::OtherDeliveryJob\n- worker_name: HardWorker\n")
    merged = merge_catalogs([catalog, cached_catalog(other)])
    assert [w.name for w in merged.workers].count("default") == 1
    assert merged.get("HardWorker") is not None


@pytest.mark.parametrize(("source", "paths"), [
    (None, ()), ("", ()), ([], ()), ("a.yml", ("a.yml",)), (["a.yml", "b.yml"], ("a.yml", "b.yml")),
])
def test_catalog_sources(source, paths):
    assert catalog_paths(source) == paths


@pytest.mark.parametrize("source", [["a.yml", ""], ["a.yml", 3], {"a": 1}, 7])
def test_a_catalog_source_that_is_no_file_list_is_refused(source):
    with pytest.raises(CatalogError, match="a file or a list of files"):
        catalog_paths(source)


def _inventory(tmp_path: Path, catalogs: object) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / ".catalog").mkdir()
    shutil.copy(DEFAULT_CATALOG_PATH, inv / ".catalog" / "all_queues.yml")
    (inv / ".catalog" / "ee_all_queues.yml").write_text(EE_TEXT)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "sidekiq": {"hosts": {"sk1": {}}}, "rails": {"hosts": {"web1": {}}}}}}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "sidekiq_worker_catalog": catalogs,
        "sidekiq_routing_rules": [["feature_category=vulnerability_management", "security"],
                                  ["*", "default"]]}))
    (inv / "group_vars" / "sidekiq.yml").write_text(yaml.safe_dump({
        "sidekiq_queue_groups": ["security", "default,mailers"]}))
    return inv


def test_an_inventory_lists_the_ce_and_ee_files(tmp_path, capsys):
    inv = _inventory(tmp_path, [".catalog/all_queues.yml", ".catalog/ee_all_queues.yml"])
    plan = build_plan(load_fleet(inv))
    assert plan["catalog"].endswith("all_queues.yml + " + str(inv / ".catalog/ee_all_queues.yml"))
    security = next(r for r in plan["routing"] if r["queue"] == "security")
    assert security["workers"] == ["Security::StoreScansWorker"] and plan["errors"] == 0
    assert main(["plan", "-i", str(inv)]) == 0
    capsys.readouterr()


def test_without_the_ee_file_the_ee_rule_matches_nothing(tmp_path, capsys):
    inv = _inventory(tmp_path, ".catalog/all_queues.yml")
    assert main(["plan", "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "feature_category=vulnerability_management matches no worker" in err


def test_the_same_file_twice_in_an_inventory_names_host_and_variable(tmp_path, capsys):
    inv = _inventory(tmp_path, [".catalog/ee_all_queues.yml", ".catalog/ee_all_queues.yml"])
    assert main(["plan", "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "host sk1, sidekiq_worker_catalog" in err and "listed in both" in err


def test_each_listed_catalog_is_checked_for_lying_in_the_inventory(tmp_path):
    inv = _inventory(tmp_path, [".catalog/all_queues.yml", "ee_all_queues.yml"])
    (inv / ".catalog" / "ee_all_queues.yml").rename(inv / "ee_all_queues.yml")
    hostvars = {"sk1": {"sidekiq_worker_catalog": [".catalog/all_queues.yml",
                                                   "ee_all_queues.yml"],
                        "sidekiq_queue_groups": ["default,mailers"],
                        "inventory_dir": str(inv)}}
    fleet = Fleet.from_hostvars(hostvars, {"sidekiq": ["sk1"]}, source=str(inv),
                                sources=(str(inv),))
    found = [f for f in check_fleet(fleet) if f.code == "catalog-in-inventory"]
    assert len(found) == 1 and "ee_all_queues.yml" in found[0].message


def test_route_commands_take_several_catalogs(ee, capsys):
    assert main(["route", "match", "--catalog", str(DEFAULT_CATALOG_PATH), "--catalog", str(ee),
                 "feature_category=vulnerability_management"]) == 0
    assert capsys.readouterr().out.split() == ["Security::StoreScansWorker"]


def test_the_filters_take_a_list_of_catalogs(ee):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sidekiq_fleet_filter_catalogs",
        Path(__file__).resolve().parents[2] / "plugins" / "filter" / "sidekiq_fleet.py")
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    mapping = plugin.sidekiq_routing_map(
        [["feature_category=vulnerability_management", "security"], ["*", "default"]],
        [str(DEFAULT_CATALOG_PATH), str(ee)])
    assert mapping["Security::StoreScansWorker"] == "security"
