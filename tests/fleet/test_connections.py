"""Database connections and Redis clients against the data tier's limits, and a worker catalog
placed where Ansible reads it as an inventory source."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from inventory_edits import edit_yaml as _set

from simulator.cli.main import main
from simulator.errors import InventoryError
from simulator.fleet.checks import check_fleet
from simulator.fleet.connections import database_connections, redis_clients
from simulator.fleet.inventory import Fleet, load_fleet
from simulator.fleet.plan import build_plan, render_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
CATALOG = ROOT / "apps" / "sample" / "all_queues.yml"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest)
    return dest




def _codes(inv: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in check_fleet(load_fleet(inv)):
        out.setdefault(f.code, []).append(f)
    return out


def test_example_fits_postgresql_with_its_max_connections():
    fleet = load_fleet(EXAMPLE)
    db = database_connections(fleet)
    assert db is not None
    # 9 processes x (20 + 3) + 3 rails hosts x 36
    assert (db.total, db.limit, db.reserved, db.needed_setting) == (315, 397, 3, 318)
    (redis,) = redis_clients(fleet)
    assert (redis.total, redis.limit) == (9 * 30 + 3 * 40, 10000)
    plan = build_plan(fleet)
    assert plan["connections"]["postgresql"]["total"] == 315
    text = render_plan(plan)
    assert "PostgreSQL: 315 of 397" in text and "Redis: 390 of 10,000" in text


def test_role_default_max_connections_is_too_small_for_the_example(inventory):
    (inventory / "group_vars" / "postgresql.yml").unlink()  # the role's default: 200
    (finding,) = _codes(inventory)["db-connections"]
    assert finding.severity == "error"
    assert "315 PostgreSQL connections, more than the 197 available" in finding.message
    assert "postgresql_max_connections 200 - postgresql_superuser_reserved_connections 3" \
        in finding.message
    assert "69 sidekiq1.example.com (3 process(es) x (20 threads + 3))" in finding.message
    assert "36 rails1.example.com (rails_db_pool)" in finding.message
    assert "raise postgresql_max_connections to at least 318" in finding.fix


def test_producers_pools_and_the_superuser_reserve_count(inventory):
    _set(inventory / "group_vars" / "rails.yml", rails_db_pool=10)
    _set(inventory / "group_vars" / "postgresql.yml", postgresql_max_connections=240,
         postgresql_superuser_reserved_connections=3)
    assert database_connections(load_fleet(inventory)).total == 207 + 30
    assert "db-connections" not in _codes(inventory)  # 237 of 237
    _set(inventory / "group_vars" / "postgresql.yml", postgresql_superuser_reserved_connections=4)
    assert "db-connections" in _codes(inventory)


def test_redis_clients_over_maxclients_is_an_error(inventory):
    _set(inventory / "group_vars" / "redis.yml", redis_maxclients=300)
    (finding,) = _codes(inventory)["redis-clients"]
    assert "390 Redis clients, more than the 300 available (redis_maxclients 300" \
        in finding.message
    assert "raise redis_maxclients to at least 390" in finding.fix


def test_redis_shards_are_counted_apart():
    hostvars = {
        "a": {"sidekiq_queue_groups": ["default,mailers"]},
        "b": {"sidekiq_queue_groups": ["default,mailers"], "sidekiq_redis_shard": "s2"},
        "web": {"rails_redis_pool": 5},
        "r1": {"redis_maxclients": 100},
    }
    fleet = Fleet.from_hostvars(hostvars, {"sidekiq": ["a", "b"], "rails": ["web"],
                                           "redis": ["r1"]})
    main_, s2 = redis_clients(fleet)
    assert (main_.shard, main_.total) == (None, 30 + 5)
    assert (s2.shard, s2.total) == ("s2", 30 + 5)


def test_without_data_hosts_nothing_is_compared():
    fleet = Fleet.from_hostvars({"a": {}}, {"sidekiq": ["a"]})
    assert database_connections(fleet) is None and redis_clients(fleet) == []
    assert "not checked" in render_plan(build_plan(fleet))


@pytest.mark.parametrize("value", ["lots", -1, True, 1.5])
def test_a_bad_limit_names_host_variable_and_fix(inventory, value, capsys):
    _set(inventory / "group_vars" / "postgresql.yml", postgresql_max_connections=value)
    assert main(["plan", "-i", str(inventory)]) == 2
    err = capsys.readouterr().err
    assert "host postgresql1.example.com, postgresql_max_connections" in err
    assert "must be a whole number" in err and "fix: set postgresql_max_connections: 200" in err
    assert "Traceback" not in err


# -- a worker catalog in the inventory directory ---------------------------------------------


def test_catalog_in_the_inventory_directory_is_refused_with_where_to_put_it(inventory, capsys):
    shutil.copy(CATALOG, inventory / "all_queues.yml")
    assert main(["plan", "-i", str(inventory)]) == 2
    err = capsys.readouterr().err
    assert f"{inventory}/all_queues.yml: the worker catalog all_queues.yml lies in the " \
           f"inventory directory {inventory}" in err
    assert "inventory source" in err and ".catalog/all_queues.yml" in err
    assert "Traceback" not in err


def test_a_hidden_directory_of_the_inventory_is_not_read_by_ansible(inventory):
    (inventory / ".catalog").mkdir()
    shutil.copy(CATALOG, inventory / ".catalog" / "all_queues.yml")
    _set(inventory / "group_vars" / "all.yml", sidekiq_worker_catalog=".catalog/all_queues.yml",
         sidekiq_routing_rules=[["urgency=high", "urgent"], ["*", "default"]])
    _set(inventory / "group_vars" / "sidekiq.yml",
         sidekiq_queue_groups=["urgent", "default,mailers"])
    for host in ("sidekiq2.example.com", "sidekiq3.example.com"):
        (inventory / "host_vars" / f"{host}.yml").unlink()
    fleet = load_fleet(inventory)
    assert fleet.catalog.path.endswith(".catalog/all_queues.yml")
    assert "catalog-in-inventory" not in {f.code for f in check_fleet(fleet)}


def _hostvars(inv: Path, catalog: str) -> dict:
    return {"sk1": {"sidekiq_worker_catalog": catalog, "inventory_dir": str(inv),
                    "sidekiq_queue_groups": ["default,mailers"]}}


def test_the_preflight_filter_finds_a_catalog_among_the_inventory_sources(tmp_path):
    inv = tmp_path / "inv"
    (inv / "files").mkdir(parents=True)
    shutil.copy(CATALOG, inv / "files" / "all_queues.yml")
    spec = importlib.util.spec_from_file_location(
        "sidekiq_fleet_filter_catalog", ROOT / "plugins" / "filter" / "sidekiq_fleet.py")
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    groups = {"sidekiq": ["sk1"]}
    # A subdirectory is read too (Ansible recurses into it): refused.
    findings = plugin.sidekiq_fleet_findings(_hostvars(inv, "files/all_queues.yml"), groups,
                                             str(inv))
    (found,) = [f for f in findings if f["code"] == "catalog-in-inventory"]
    assert found["severity"] == "error"
    assert "files/all_queues.yml (sidekiq_worker_catalog of sk1)" in found["message"]
    # The whole ansible_inventory_sources list works as well.
    findings = plugin.sidekiq_fleet_findings(_hostvars(inv, "files/all_queues.yml"), groups,
                                             [str(inv), "/nonexistent"])
    assert "catalog-in-inventory" in {f["code"] for f in findings}
    # Next to the inventory: fine. A single-file inventory source: its directory is not read.
    shutil.copy(CATALOG, tmp_path / "all_queues.yml")
    for catalog, source in (("../all_queues.yml", str(inv)),
                            ("files/all_queues.yml", str(inv / "hosts.yml"))):
        (inv / "hosts.yml").write_text("all: {}\n")
        findings = plugin.sidekiq_fleet_findings(_hostvars(inv, catalog), groups, source)
        assert "catalog-in-inventory" not in {f["code"] for f in findings}, (catalog, source)


def test_a_broken_inventory_file_that_is_no_catalog_keeps_its_own_message(inventory, capsys):
    (inventory / "extra.yml").write_text("- just\n- a list\n")
    assert main(["plan", "-i", str(inventory)]) == 2
    err = capsys.readouterr().err
    assert "Ansible cannot parse this inventory file" in err and "worker catalog" not in err


def test_inventory_error_type_for_a_catalog_in_the_inventory(inventory):
    shutil.copy(CATALOG, inventory / "all_queues.yml")
    with pytest.raises(InventoryError, match="a catalog is not an inventory file"):
        load_fleet(inventory)
