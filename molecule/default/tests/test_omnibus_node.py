"""The omnibus-flavour Sidekiq node (mol-omnibus): GitLab's managed gitlab.rb settings, no GitLab.

There is no GitLab package in the lab, so `gitlab-ctl reconfigure` never runs: these tests prove
what can be proven without it, on the node itself. The managed file and gitlab.rb are root-only,
gitlab.rb keeps the operator's own lines and loads the managed file once, both are valid Ruby,
the recording harness (roles/gitlab_omnibus/files/record_settings.rb) records exactly what the
inventory asks, no secret is in a world-readable file or in the play's output, and the firewall
opens the Sidekiq metrics and health ports to the monitoring host only. Molecule's idempotence
step covers the role's second run.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml
from conftest import INVENTORY, host_spec, tcp_probe

testinfra_hosts = [host_spec("mol-omnibus")]

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or SCENARIO.parents[1])
HARNESS = PROJECT / "roles" / "gitlab_omnibus" / "files" / "record_settings.rb"
MANAGED = "/etc/gitlab/sidekiq-fleet.rb"
GITLAB_RB = "/etc/gitlab/gitlab.rb"
# The operator's own lines, written by prepare.yml before the first converge.
OPERATOR_LINES = [
    "external_url 'https://gitlab.example.com'",
    "gitlab_rails['time_zone'] = 'Europe/Berlin'",
]
# The managed file's secrets (gitlab_rails[...]).
SECRET_KEYS = ("db_password", "redis_password", "gitaly_token")
# The monitoring host of host_vars/mol-omnibus.yml (firewall_monitoring_cidrs): the controller.
MONITORING = "172.28.51.1"


def inventory(path: str) -> dict[str, Any]:
    """A group_vars or host_vars file of this scenario, as written (templates stay text)."""
    return yaml.safe_load((SCENARIO / path).read_text())


def address(name: str) -> str:
    return inventory(f"host_vars/{name}.yml")["fleet_internal_address"]


def record(host: testinfra.host.Host, path: str) -> dict[str, Any]:
    """The recording harness run on the node with the node's Ruby (sent in the command line)."""
    code = base64.b64encode(HARNESS.read_bytes()).decode()
    out = host.check_output(f'ruby -e "$(printf %s {code} | base64 -d)" -- {shlex.quote(path)}')
    return json.loads(out)


@pytest.fixture(scope="module")
def secrets(worker_env: dict[str, str]) -> dict[str, str]:
    """The inventory's secrets, as the standalone worker got them (the same Vault values)."""
    values = {
        "db_password": worker_env["PGPASSWORD"],
        "redis_password": worker_env["REDIS_PASSWORD"],
        "gitaly_token": worker_env["GITALY_TOKEN"],
    }
    assert all(len(value) >= 16 for value in values.values()), "the lab's secrets are long"
    return values


@pytest.fixture(scope="module")
def expected(secrets: dict[str, str]) -> dict[str, Any]:
    """Every setting the inventory asks of this node (and nothing else), as the harness records
    it. Values the inventory templates (addresses) are written out; the rest is read from it."""
    fleet = inventory("group_vars/all/main.yml")
    node = inventory("host_vars/mol-omnibus.yml")
    own = address("mol-omnibus")
    return {
        "roles": ["sidekiq_role"],
        "external_url": node["gitlab_omnibus_external_url"],
        "gitlab_rails": {
            "auto_migrate": False,
            "db_host": address("mol-postgresql"),
            "db_port": fleet["fleet_db_port"],
            "db_username": fleet["fleet_db_user"],
            "db_password": secrets["db_password"],
            "db_database": fleet["fleet_db_name"],
            # fleet_tls_enabled: libpq verifies the server against the fleet CA.
            "db_sslmode": "verify-full",
            "db_sslrootcert": fleet["fleet_tls_ca_path"],
            "redis_host": address("mol-redis"),
            "redis_port": fleet["fleet_redis_port"],
            "redis_database": 0,
            "redis_password": secrets["redis_password"],
            "redis_ssl": fleet["fleet_tls_enabled"],
            "gitaly_token": secrets["gitaly_token"],
            "repositories_storages": {
                "default": {
                    "gitaly_address": f"tls://{address('mol-gitaly')}:{fleet['fleet_gitaly_port']}"
                }
            },
        },
        "sidekiq": {
            "routing_rules": fleet["sidekiq_routing_rules"],
            "queue_groups": node["sidekiq_queue_groups"],
            "concurrency": node["sidekiq_concurrency"],
            "shutdown_timeout": 25,
            "metrics_enabled": True,
            "listen_address": own,
            "listen_port": 8082,
            "exporter_log_enabled": False,
            "health_checks_enabled": True,
            "health_checks_listen_address": own,
            "health_checks_listen_port": 8092,
        },
        # The common role's pinned IDs (test_common.py checks the same users on this node).
        "user": {"uid": 9000, "gid": 9000},
        "web_server": {"uid": 9001, "gid": 9001},
        "registry": {"uid": 9002, "gid": 9002},
    }


@pytest.mark.parametrize("path", [MANAGED, GITLAB_RB])
def test_settings_files_are_root_only(host, path):
    """The managed file holds the secrets, and gitlab.rb (world-readable as the operator left it
    in prepare.yml) loads it: both end up 0600 root, as GitLab keeps gitlab.rb."""
    f = host.file(path)
    assert f.is_file
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


def test_gitlab_rb_loads_the_managed_file_once_and_keeps_the_operators_lines(host):
    lines = host.file(GITLAB_RB).content_string.splitlines()
    loads = [line.strip() for line in lines if re.match(r"\s*from_file\b", line)]
    assert loads == [f'from_file "{MANAGED}"'], lines
    # The operator's lines are there, unchanged, above the block (the managed settings win).
    block = next(i for i, line in enumerate(lines) if "BEGIN sidekiq-fleet" in line)
    assert all(line in lines[:block] for line in OPERATOR_LINES), lines
    assert "END sidekiq-fleet" in lines[-1], lines


@pytest.mark.parametrize("path", [MANAGED, GITLAB_RB])
def test_files_are_valid_ruby_on_the_node(host, path):
    assert host.check_output(f"ruby -c {path}").strip() == "Syntax OK"


def _apart(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings with each secret replaced by a mark, and the secrets (kept out of pytest's
    assertion messages: a failing comparison shows the settings, never the secrets)."""
    rails = dict(settings.get("gitlab_rails") or {})
    secrets = {key: rails.pop(key, None) for key in SECRET_KEYS}
    return {
        **settings,
        "gitlab_rails": {**rails, **dict.fromkeys(SECRET_KEYS, "[secret]")},
    }, secrets


def test_managed_file_records_exactly_what_the_inventory_asks(host, expected):
    recorded = record(host, MANAGED)
    assert recorded["files"] == [MANAGED]
    settings, secrets = _apart(recorded["settings"])
    wanted, wanted_secrets = _apart(expected)
    assert settings == wanted
    different = [key for key in SECRET_KEYS if secrets[key] != wanted_secrets[key]]
    assert not different, f"secrets that differ from the inventory's: {different}"


def test_gitlab_rb_adds_the_managed_settings_to_the_operators(host, expected):
    """What GitLab would evaluate: gitlab.rb, then the managed file it loads (last one wins)."""
    recorded = record(host, GITLAB_RB)
    assert recorded["files"] == [GITLAB_RB, MANAGED]
    settings = recorded["settings"]
    assert settings["gitlab_rails"]["time_zone"] == "Europe/Berlin"
    assert settings["external_url"] == expected["external_url"]
    assert settings["sidekiq"] == expected["sidekiq"]


def test_no_secret_in_a_world_readable_file_or_the_journal(host, secrets):
    """World-readable files, and the journal, where Ansible logs module arguments (those of
    no_log tasks are not). The secrets reach the node base64-encoded, as grep patterns in a
    root-only file, so this test's own command line does not put them in the journal."""
    encoded = base64.b64encode("\n".join(secrets.values()).encode()).decode()
    found = host.run(
        f'p=$(mktemp) && printf %s {encoded} | base64 -d > "$p"; '
        "find /etc /opt /srv /tmp /var -xdev -type f -perm -o=r -print0 2>/dev/null"
        ' | xargs -0 -r grep -lF -f "$p"; '
        'journalctl -q --no-pager -o cat 2>/dev/null | grep -qF -f "$p" && echo journal; '
        'rm -f "$p"'
    )
    assert found.stdout.strip() == "", found.stdout


def _accepts(ruleset: str) -> dict[int, set[str]]:
    """The inbound chain's accept rules: {port: sources} (single-address sets printed bare)."""
    accepts: dict[int, set[str]] = {}
    for line in ruleset.split("chain input", 1)[1].split("chain ", 1)[0].splitlines():
        port = re.search(r"\btcp dport (\d+)\b", line)
        if port and " accept" in line:
            source = re.search(r"\bip6? saddr (\{[^}]*\}|\S+)", line)
            names = source.group(1).strip("{} ").split(",") if source else ["any"]
            accepts.setdefault(int(port.group(1)), set()).update(
                name.strip().removesuffix("/32") for name in names
            )
    return accepts


def test_firewall_opens_the_sidekiq_ports_to_the_monitoring_host_only(host):
    ruleset = host.check_output("nft list table inet sidekiq_fleet")
    # Default-deny inbound: a packet this table drops is dropped whatever other tables say.
    assert "policy drop" in ruleset.split("chain input", 1)[1].split("}", 1)[0]
    # A Sidekiq node serves no data-tier port and no SSH (no admin CIDRs over docker): only the
    # metrics (8082) and health (8092) ports, to firewall_monitoring_cidrs.
    assert _accepts(ruleset) == {8082: {MONITORING}, 8092: {MONITORING}}, ruleset


def test_monitoring_host_gets_through_the_firewall_a_fleet_node_does_not():
    # Nothing listens without GitLab: "refused" means the packet got in, "timeout" it was dropped.
    assert tcp_probe(testinfra.get_host("local://"), "172.28.51.22", 8082) == "refused"
    redis = testinfra.get_host(host_spec("mol-redis"))
    assert tcp_probe(redis, "172.28.51.22", 8082) == "timeout"


def _task_sections(output: str) -> list[tuple[str, str]]:
    """(task name, what the callback printed under it) for every task and handler."""
    parts = re.split(r"^(?:TASK|RUNNING HANDLER) \[(.*?)\] \**.*$", output, flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_changed_routing_rule_changes_the_managed_file_only_and_shows_no_secret(secrets):
    """playbooks/gitlab_omnibus.yml again with another routing rule, in --check --diff (nothing is
    written, so the other tests keep the converged node): only the managed file would change,
    its content is not shown, the play says reconfigure is not run, and no secret is printed."""
    assert INVENTORY, "run by molecule (MOLECULE_INVENTORY_FILE)"
    rules = [["urgency=high", "high-urgency"], ["*", "default"]]
    binary = Path(sys.executable).with_name("ansible-playbook")
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
    }
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(PROJECT / "collections"))
    env.setdefault("ANSIBLE_VAULT_PASSWORD_FILE", str(PROJECT / "scripts" / "vault-password.sh"))
    result = subprocess.run(
        [
            str(binary) if binary.exists() else "ansible-playbook",
            "-i",
            str(Path(INVENTORY).parent),
            str(PROJECT / "playbooks" / "gitlab_omnibus.yml"),
            "--limit",
            "mol-omnibus",
            "--check",
            "--diff",
            "-e",
            json.dumps({"sidekiq_routing_rules": rules}),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=PROJECT,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output[-4000:]
    changed = [name for name, body in _task_sections(output) if "changed: [mol-omnibus]" in body]
    assert len(changed) == 1 and "Managed settings file is in place" in changed[0], changed
    assert re.search(r"mol-omnibus\s+: ok=\d+\s+changed=1\s", output), output[-2000:]
    assert "gitlab-ctl reconfigure is not run" in output
    assert not [name for name, value in secrets.items() if value in output]
    # The controller's copy with the real secrets was validated in a private directory, removed.
    checked = re.findall(r"Managed file is rendered on the controller \((\S+)/gitlab\.rb\)", output)
    assert checked and not any(Path(directory).exists() for directory in checked), checked
