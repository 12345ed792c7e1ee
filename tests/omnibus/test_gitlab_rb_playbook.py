"""playbooks/gitlab_rb.yml on inventories/omnibus: every omnibus host's file rendered on the
controller (connection local, no host contacted), validated by the playbook itself, and read back
here with the harness: the settings the inventory asks for, none of its secrets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omnibus_helpers import HARNESS, ROOT

from simulator.omnibus.validate import check_known, errors, record, syntax_check

INVENTORY = ROOT / "inventories" / "omnibus"
HOSTS = ["data1.example.com", "sidekiq1.example.com", "sidekiq2.example.com",
         "rails1.example.com", "rails2.example.com"]
SECRETS = {
    "vault_redis_app_password": "r3d!s@:/#%?&+=p'w\"d\\x#{1}",
    "vault_postgresql_app_password": "pg@:/#%?&+=!'\"\\pw#{2}xyzw",
    "vault_gitaly_auth_token": "gitalytoken" * 6,
    "vault_ldap_bind_password": "ldap'bind\"pw#{3}",
    "vault_gitlab_registry_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIsecret\n-----END RSA "
                                 "PRIVATE KEY-----",
}


@pytest.fixture(scope="module")
def review(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("gitlab-rb")
    secrets = tmp / "secrets.yml"
    secrets.write_text(yaml.safe_dump(SECRETS))
    out = tmp / "review"
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
         str(ROOT / "playbooks" / "gitlab_rb.yml"), "-e", f"gitlab_rb_out={out}",
         "-e", f"@{secrets}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for secret in SECRETS.values():
        assert secret not in run.stdout and secret not in run.stderr
    return out


def settings(review: Path, host: str) -> dict:
    path = review / host / "gitlab.rb"
    syntax_check(path)
    return record(path, harness=HARNESS)["settings"]


def test_every_omnibus_host_gets_a_private_review_copy_without_secrets(review):
    assert sorted(p.name for p in review.iterdir()) == sorted(HOSTS)
    for host in HOSTS:
        path = review / host / "gitlab.rb"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        for secret in SECRETS.values():
            assert secret not in text, (host, secret)
        assert "[secret: fleet_db_password]" in text or host == "data1.example.com"


@pytest.mark.parametrize("host", HOSTS)
def test_each_file_has_only_settings_of_its_release(review, host):
    recorded = record(review / host / "gitlab.rb", harness=HARNESS)
    assert not errors(check_known(recorded, "17.11"))


def test_the_files_say_what_the_inventory_asks(review):
    data = settings(review, "data1.example.com")
    assert data["roles"] == ["postgres_role", "redis_master_role", "gitaly_role"]
    assert data["postgresql"]["md5_auth_cidr_addresses"] == [
        "10.20.0.31/32", "10.20.0.32/32", "10.20.0.21/32", "10.20.0.22/32"]
    assert data["postgresql"]["trust_auth_cidr_addresses"] == []
    assert data["redis"]["bind"] == "10.20.0.10"
    assert data["gitaly"]["configuration"]["listen_addr"] == "10.20.0.10:8075"

    routing = yaml.safe_load((INVENTORY / "group_vars" / "all" / "routing.yml").read_text())
    for host in HOSTS[1:]:
        node = settings(review, host)
        assert node["sidekiq"]["routing_rules"] == routing["sidekiq_routing_rules"], host
        assert node["gitlab_rails"]["db_host"] == "10.20.0.10"
        assert node["external_url"] == "https://gitlab.example.com"

    sidekiq1 = settings(review, "sidekiq1.example.com")
    host_vars = yaml.safe_load((INVENTORY / "host_vars" / "sidekiq1.example.com.yml").read_text())
    assert sidekiq1["roles"] == ["sidekiq_role"]
    assert sidekiq1["sidekiq"]["queue_groups"] == host_vars["sidekiq_queue_groups"]
    assert sidekiq1["sidekiq"]["concurrency"] == 20
    assert sidekiq1["sidekiq"]["listen_address"] == "10.20.0.21"
    assert sidekiq1["gitlab_rails"]["omniauth_providers"][0]["groups_attribute"] == "Groups"

    rails1 = settings(review, "rails1.example.com")
    assert rails1["roles"] == ["application_role"]
    assert rails1["gitlab_rails"]["auto_migrate"] is True
    assert settings(review, "rails2.example.com")["gitlab_rails"]["auto_migrate"] is False


def _plan(inventory: Path) -> dict:
    run = subprocess.run([sys.executable, "-m", "simulator", "plan", "--json", "-i",
                          str(inventory)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    return json.loads(run.stdout)


def test_render_import_plan_round_trip(review, tmp_path):
    """The rendered files read back with `fleetsim import gitlab-rb` give the plan of the
    inventory they came from: the same hosts, processes and Sidekiq arguments, and the same
    routing of every worker."""
    imported = tmp_path / "imported"
    run = subprocess.run(
        [sys.executable, "-m", "simulator", "import", "gitlab-rb", "-o", str(imported),
         "--gitlab-version", "17.11",
         *(f"{host}={review / host / 'gitlab.rb'}" for host in HOSTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    original, back = _plan(INVENTORY), _plan(imported)

    def processes(plan: dict) -> dict:
        return {h["host"]: [(p["index"], p["sidekiq_args"]) for p in h["processes"]]
                for h in plan["hosts"] if h["processes"]}

    assert processes(back) == processes(original)
    assert set(processes(original)) == {"sidekiq1.example.com", "sidekiq2.example.com"}
    for key in ("gitlab_version", "routing_rules", "routing"):
        assert back[key] == original[key], key
