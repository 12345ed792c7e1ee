"""monitoring/prometheus.yml.j2 rendered by ansible-core (playbooks/monitoring.yml, the same
template the prometheus role installs) for a small fake inventory: the jobs and targets it
scrapes, the alert rules it loads, and `promtool check config` on the result when Debian's
promtool is installed. The rules the playbook writes come from the same inventory as
`fleetsim alerts -i INVENTORY` and are identical to its rules, fleet_alert_settings included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = ROOT / "playbooks" / "monitoring.yml"
PROMTOOL = Path("/usr/bin/promtool")

INVENTORY = {
    "all": {
        "children": {
            "sidekiq": {"hosts": {
                # Metrics on the node's address (scraped there).
                "sk1": {"fleet_internal_address": "192.0.2.21",
                        "sidekiq_exporter_metrics_listen_address": "192.0.2.21"},
                # Metrics on loopback (the default): scraped at fleet_internal_address.
                "sk2": {"fleet_internal_address": "192.0.2.22"},
                # HTTPS metrics: the sidekiq-tls job.
                "sk3": {"fleet_internal_address": "192.0.2.23",
                        "sidekiq_exporter_tls_enabled": True,
                        "sidekiq_exporter_metrics_listen_address": "192.0.2.23"},
            }},
            "redis": {"hosts": {
                "redis1": {"fleet_internal_address": "192.0.2.31",
                           "redis_exporter_listen_address": "192.0.2.31"},
                # GitLab's package runs its own exporters: not scraped.
                "omnibus1": {"fleet_internal_address": "192.0.2.41",
                             "sidekiq_fleet_flavor": "omnibus"},
            }},
            "postgresql": {"hosts": {"pg1": {"fleet_internal_address": "192.0.2.32",
                                             "fleet_postgresql_exporter_port": 9300}}},
            "monitoring": {"hosts": {"mon1": {"fleet_internal_address": "192.0.2.50"}}},
        },
        "vars": {
            "sidekiq_routing_rules": [["urgency=high", "urgent"], ["*", "default"]],
            "sidekiq_queue_groups": ["urgent", "default,mailers"],
            "fleet_alert_settings": {"process_down_for": "45s"},
        },
    }
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The playbook's output directory for the fake inventory."""
    tmp = tmp_path_factory.mktemp("monitoring")
    inventory = tmp / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump(INVENTORY))
    out = tmp / "out"
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    playbook = Path(sys.executable).with_name("ansible-playbook")
    result = subprocess.run(
        [str(playbook), "-i", str(inventory), str(PLAYBOOK), "-e", f"monitoring_output_dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _config(rendered: Path) -> dict:
    return yaml.safe_load((rendered / "prometheus.yml").read_text())


def _targets(config: dict) -> dict[str, list[tuple[str, str]]]:
    return {
        job["job_name"]: [(target, sc["labels"]["instance"])
                          for sc in job["static_configs"] for target in sc["targets"]]
        for job in config["scrape_configs"]
    }


def test_every_exporter_of_the_inventory_is_scraped_at_a_reachable_address(rendered):
    assert _targets(_config(rendered)) == {
        "sidekiq": [("192.0.2.21:8082", "sk1"), ("192.0.2.22:8082", "sk2")],
        "sidekiq-tls": [("192.0.2.23:8082", "sk3")],
        "redis": [("192.0.2.31:9121", "redis1")],
        "postgresql": [("192.0.2.32:9300", "pg1")],
    }


def test_health_port_is_not_a_scrape_target(rendered):
    text = (rendered / "prometheus.yml").read_text()
    assert ":8092" not in text


def test_alert_rules_are_loaded_and_come_from_the_same_inventory(rendered, tmp_path):
    config = _config(rendered)
    assert config["rule_files"] == ["sidekiq-fleet-alerts.yml"]
    written = yaml.safe_load((rendered / "sidekiq-fleet-alerts.yml").read_text())
    cli = tmp_path / "alerts.yml"
    subprocess.run(
        [sys.executable, "-m", "simulator", "alerts", "-i",
         str(rendered.parent / "inventory"), "-o", str(cli)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    assert written == yaml.safe_load(cli.read_text())
    down = [r for g in written["groups"] for r in g["rules"]
            if r.get("alert") == "SidekiqProcessDown"]
    assert [r["for"] for r in down] == ["45s"]  # fleet_alert_settings


@pytest.mark.skipif(not PROMTOOL.exists(),
                    reason="promtool (Debian's prometheus package) is not installed at "
                           "/usr/bin/promtool; scripts/hostdeps.sh installs it")
def test_promtool_accepts_the_config_and_its_rules(rendered):
    # The TLS job names a CA file, which promtool wants to exist.
    config = _config(rendered)
    ca = rendered / "ca.pem"
    ca.write_text("")
    for job in config["scrape_configs"]:
        if "tls_config" in job:
            job["tls_config"]["ca_file"] = str(ca)
    checked = rendered / "checked.yml"
    checked.write_text(yaml.safe_dump(config))
    result = subprocess.run([str(PROMTOOL), "check", "config", str(checked)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_refuses_a_broken_config(rendered, tmp_path):
    """The role's validate: would stop a broken file: promtool really checks."""
    if not shutil.which(str(PROMTOOL)):
        pytest.skip("promtool is not installed at /usr/bin/promtool (Debian's prometheus)")
    broken = tmp_path / "broken.yml"
    broken.write_text("global:\n  scrape_interval: often\n")
    result = subprocess.run([str(PROMTOOL), "check", "config", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
