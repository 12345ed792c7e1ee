"""`fleetsim import gitlab-rb` reads GitLab's Sentinel client settings back: the sentinels and the
master name become fleet_redis_sentinels and fleet_redis_sentinel_master_name; the passwords
are only named, with the Vault variable they belong in."""

from __future__ import annotations

import pytest
import yaml

from simulator.cli.main import main
from simulator.errors import FleetError
from simulator.fleet.gitlab_rb import import_host
from simulator.omnibus.gitlab_rb import build_gitlab_rb

SIDEKIQ_RB = """\
roles ['sidekiq_role']
external_url 'https://gitlab.example.com'
redis['master_name'] = 'gitlab-redis'
redis['master_password'] = 'redis-password-goes-here'
gitlab_rails['redis_sentinels'] = [
  {'host' => '10.0.0.1', 'port' => 26379},
  {host: '10.0.0.2', port: 26380},
  {'host' => '10.0.0.3'}
]
gitlab_rails['redis_sentinels_password'] = 'sentinel-secret-goes-here'
sidekiq['queue_groups'] = ['*']
"""
SENTINELS = [{"host": "10.0.0.1", "port": 26379}, {"host": "10.0.0.2", "port": 26380},
             {"host": "10.0.0.3", "port": 26379}]


def test_sentinels_and_master_name_are_imported_and_passwords_named(tmp_path):
    path = tmp_path / "gitlab.rb"
    path.write_text(SIDEKIQ_RB)
    host = import_host("sidekiq1", str(path))
    assert host.variables["fleet_redis_sentinels"] == SENTINELS
    assert host.variables["fleet_redis_sentinel_master_name"] == "gitlab-redis"
    assert "fleet_redis_host" not in host.variables
    assert any("redis_sentinels_password" in s and "fleet_redis_sentinel_password" in s
               for s in host.secrets)
    assert host.origins["fleet_redis_sentinels"] == \
        "gitlab_rails['redis_sentinels'] (gitlab.rb line 5)"


def test_the_import_writes_no_password_and_the_inventory_plans(tmp_path, capsys):
    path = tmp_path / "gitlab.rb"
    path.write_text(SIDEKIQ_RB)
    out = tmp_path / "inventory"
    assert main(["import", "gitlab-rb", "-o", str(out), f"sidekiq1={path}"]) == 0
    for file in out.rglob("*"):
        if file.is_file():
            text = file.read_text()
            assert "sentinel-secret-goes-here" not in text
            assert "redis-password-goes-here" not in text
    capsys.readouterr()
    assert main(["plan", "-i", str(out)]) == 0, capsys.readouterr()
    assert "redis-sentinel" not in capsys.readouterr().out


def test_what_the_role_renders_imports_back(tmp_path):
    """The round trip: the gitlab_omnibus role's settings for a sidekiq node, read back."""
    rb = build_gitlab_rb({
        "inventory_hostname": "sidekiq1", "group_names": ["sidekiq"],
        "gitlab_omnibus_external_url": "https://gitlab.example.com",
        "fleet_db_host": "10.0.0.9", "fleet_db_password": "x", "fleet_redis_password": "y",
        "fleet_redis_sentinels": SENTINELS, "fleet_redis_sentinel_master_name": "mymaster",
        "fleet_redis_sentinel_password": "z",
    })
    path = tmp_path / "sidekiq-fleet.rb"
    path.write_text(rb.render())
    host = import_host("sidekiq1", str(path))
    assert host.variables["fleet_redis_sentinels"] == SENTINELS
    assert host.variables["fleet_redis_sentinel_master_name"] == "mymaster"


@pytest.mark.parametrize("value", ["'10.0.0.1:26379'", "[{'port' => 26379}]",
                                   "[{'host' => 'a', 'port' => 'many'}]"])
def test_a_sentinel_list_that_is_not_hosts_and_ports_is_refused(tmp_path, value):
    path = tmp_path / "gitlab.rb"
    path.write_text(f"roles ['sidekiq_role']\ngitlab_rails['redis_sentinels'] = {value}\n")
    with pytest.raises(FleetError, match="redis_sentinels"):
        import_host("sidekiq1", str(path))


def test_hosts_yml_is_yaml(tmp_path):
    path = tmp_path / "gitlab.rb"
    path.write_text(SIDEKIQ_RB)
    out = tmp_path / "inventory"
    assert main(["import", "gitlab-rb", "-o", str(out), f"sidekiq1={path}"]) == 0
    values = {}
    for file in out.rglob("*.yml"):
        values.update(yaml.safe_load(file.read_text()) or {})
    assert values.get("fleet_redis_sentinels") == SENTINELS
