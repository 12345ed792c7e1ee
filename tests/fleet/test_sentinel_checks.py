"""`fleetsim plan` checks that every Redis client and sentinel agrees on Redis Sentinel:
the same sentinels, master name and password everywhere, enough sentinels, a sane quorum."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from inventory_edits import edit_yaml as _set

from simulator.cli.main import main
from simulator.fleet.checks import check_fleet
from simulator.fleet.inventory import Fleet, load_fleet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
SENTINELS = [
    {"host": "10.10.0.31", "port": 26379},
    {"host": "10.10.0.34", "port": 26379},
    {"host": "10.10.0.35", "port": 26379},
]
PASSWORD = "sentinel-Secret-42"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """The example fleet with three redis hosts and Sentinel configured in group_vars/all."""
    dest = tmp_path / "inv"
    shutil.copytree(EXAMPLE, dest)
    hosts = yaml.safe_load((dest / "hosts.yml").read_text())
    hosts["all"]["children"]["redis"]["hosts"].update(
        {"redis2.example.com": {"ansible_host": "10.10.0.34"},
         "redis3.example.com": {"ansible_host": "10.10.0.35"}}
    )
    (dest / "hosts.yml").write_text(yaml.safe_dump(hosts))
    _set(dest / "group_vars" / "all.yml", fleet_redis_sentinels=SENTINELS,
         fleet_redis_sentinel_master_name="gitlab-redis", fleet_redis_sentinel_password=PASSWORD)
    return dest




def _findings(inv: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in check_fleet(load_fleet(inv)):
        out.setdefault(f.code, []).append(f)
    return {code: fs for code, fs in out.items() if "sentinel" in code}


def test_the_same_sentinels_everywhere_pass(inventory):
    assert _findings(inventory) == {}


def test_the_example_without_sentinel_passes():
    assert _findings(EXAMPLE) == {}


def test_a_host_with_other_sentinels_is_an_error_naming_host_file_and_variable(inventory):
    _set(inventory / "host_vars" / "sidekiq2.example.com.yml",
         fleet_redis_sentinels=[*SENTINELS[:2], {"host": "10.10.0.99", "port": 26379}])
    (finding,) = _findings(inventory)["redis-sentinel-settings-differ"]
    assert finding.severity == "error"
    assert finding.host == "sidekiq2.example.com"
    assert "fleet_redis_sentinels is [10.10.0.31:26379, 10.10.0.34:26379, 10.10.0.99:26379]" \
        in finding.message
    assert "host_vars/sidekiq2.example.com.yml" in finding.message
    assert "group_vars/all" in finding.fix


def test_the_order_of_the_sentinels_does_not_matter(inventory):
    _set(inventory / "host_vars" / "sidekiq2.example.com.yml",
         fleet_redis_sentinels=list(reversed(SENTINELS)))
    assert _findings(inventory) == {}


def test_a_redis_host_with_another_master_name(inventory):
    _set(inventory / "group_vars" / "redis.yml", fleet_redis_sentinel_master_name="mymaster")
    (finding,) = _findings(inventory)["redis-sentinel-settings-differ"]
    assert finding.host == "redis1.example.com, redis2.example.com, redis3.example.com"
    assert "fleet_redis_sentinel_master_name is 'mymaster' here but 'gitlab-redis'" \
        in finding.message


def test_the_sentinel_password_is_compared_and_never_shown(inventory, capsys):
    _set(inventory / "group_vars" / "sidekiq.yml", fleet_redis_sentinel_password="other-Pass-7")
    _set(inventory / "host_vars" / "sidekiq3.example.com.yml", fleet_redis_sentinel_password="")
    found = _findings(inventory)["redis-sentinel-settings-differ"]
    messages = {f.host: f.message for f in found}
    (other,) = [m for h, m in messages.items() if h.startswith("rails1.example.com")]
    assert "another password than sidekiq1.example.com's (values not shown)" in other
    assert "is empty here but set on sidekiq1.example.com" in messages["sidekiq3.example.com"]
    assert main(["plan", "-i", str(inventory)]) != 0
    out = capsys.readouterr()
    for secret in (PASSWORD, "other-Pass-7"):
        assert secret not in out.out + out.err
        assert all(secret not in f.message + f.fix for f in found)
    # A Fleet never holds the password itself, only a digest.
    fleet = load_fleet(inventory)
    assert all(PASSWORD not in str(h.vars) for h in [*fleet.hosts.values(),
                                                      *fleet.data_hosts.values()])


def test_one_sentinel_is_an_error_two_a_warning(inventory):
    _set(inventory / "group_vars" / "all.yml", fleet_redis_sentinels=SENTINELS[:1])
    (finding,) = _findings(inventory)["redis-sentinels-too-few"]
    assert finding.severity == "error" and "one sentinel (10.10.0.31:26379)" in finding.message
    _set(inventory / "group_vars" / "all.yml", fleet_redis_sentinels=SENTINELS[:2])
    found = _findings(inventory)
    assert "redis-sentinels-too-few" not in found
    (warning,) = found["redis-sentinels-fewer-than-3"]
    assert warning.severity == "warning"


@pytest.mark.parametrize("quorum", [0, 4, "lots"])
def test_a_quorum_outside_1_to_n_is_an_error(inventory, quorum):
    _set(inventory / "group_vars" / "redis.yml", redis_sentinel_quorum=quorum)
    found = _findings(inventory)["redis-sentinel-quorum"]
    assert {f.host for f in found} == {"redis1.example.com", "redis2.example.com",
                                       "redis3.example.com"}
    assert all(f.severity == "error" and "not a whole number from 1 to 3" in f.message
               and "group_vars/redis.yml" in f.message for f in found)
    assert "redis_sentinel_quorum once, in group_vars/redis, to 2" in found[0].fix


def test_a_quorum_that_differs_between_redis_hosts_is_an_error(inventory):
    _set(inventory / "host_vars" / "redis3.example.com.yml", redis_sentinel_quorum=3)
    (finding,) = _findings(inventory)["redis-sentinel-quorum"]
    assert "differs between redis hosts (2 on redis1.example.com, redis2.example.com; " \
        "3 on redis3.example.com)" in finding.message


def test_a_minority_quorum_is_a_warning(inventory):
    _set(inventory / "group_vars" / "redis.yml", redis_sentinel_quorum=1)
    found = _findings(inventory)
    assert "redis-sentinel-quorum" not in found
    (warning,) = found["redis-sentinel-quorum-minority"]
    assert warning.severity == "warning" and "redis_sentinel_quorum: 2" in warning.fix


def test_from_hostvars_the_filter_plugin_path_digests_the_password():
    hostvars = {
        "a": {"fleet_redis_sentinels": SENTINELS, "fleet_redis_sentinel_password": PASSWORD},
        "r1": {"fleet_redis_sentinels": SENTINELS, "fleet_redis_sentinel_password": PASSWORD,
               "redis_sentinel_quorum": "2"},
    }
    fleet = Fleet.from_hostvars(hostvars, {"sidekiq": ["a"], "redis": ["r1"]})
    assert fleet.hosts["a"].vars["fleet_redis_sentinel_password"].startswith("sha256:")
    assert PASSWORD not in str(fleet.hosts["a"].vars)
    assert not [f for f in check_fleet(fleet) if "sentinel" in f.code]


def test_a_vaulted_password_without_the_vault_password_does_not_stop_the_plan(inventory):
    _set(inventory / "group_vars" / "all.yml",
         fleet_redis_sentinel_password="{{ vault_redis_sentinel_password }}")
    assert _findings(inventory) == {}


def _durable_findings(inv: Path) -> list:
    return [f for f in check_fleet(load_fleet(inv)) if f.code == "redis-durable-enqueue-replicas"]


def test_durable_enqueue_within_the_replicas_passes(inventory):
    _set(inventory / "group_vars" / "all.yml", fleet_redis_durable_enqueue_replicas=2)
    assert _durable_findings(inventory) == []


def test_durable_enqueue_asking_more_replicas_than_exist_is_an_error(inventory):
    _set(inventory / "group_vars" / "all.yml", fleet_redis_durable_enqueue_replicas=3)
    found = _durable_findings(inventory)
    assert found, "3 replicas asked of a redis group with 2 replicas"
    text = " ".join(f"{f.message} {f.fix}" for f in found)
    assert "2 replica(s)" in text and "from 0 (off) to 2" in text


def test_durable_enqueue_on_a_single_redis_is_an_error(tmp_path):
    # The example inventory has one Redis host: no replica can ever confirm a push.
    assert _durable_findings(EXAMPLE) == []  # off by default
    dest = tmp_path / "single"
    shutil.copytree(EXAMPLE, dest)
    _set(dest / "group_vars" / "all.yml", fleet_redis_durable_enqueue_replicas=1)
    found = _durable_findings(dest)
    assert found and "0 replica(s)" in found[0].message


def test_replicas_without_sentinels_is_a_warning(inventory):
    codes = {f.code for f in check_fleet(load_fleet(inventory))}
    assert "redis-replicas-without-sentinels" not in codes
    _set(inventory / "group_vars" / "all.yml", fleet_redis_sentinels=None)
    found = [f for f in check_fleet(load_fleet(inventory))
             if f.code == "redis-replicas-without-sentinels"]
    assert found and "3 hosts" in found[0].message
