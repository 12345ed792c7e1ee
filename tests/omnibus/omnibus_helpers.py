"""Helpers of the Omnibus tests: a node's inputs as the gitlab_omnibus role passes them, and the
Ruby side (``ruby -c`` and the recording harness), which must be on the test machine
(scripts/hostdeps.sh installs it; conftest.py fails the tests with that advice when it is not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.omnibus.gitlab_rb import GitlabRb
from simulator.omnibus.validate import record, syntax_check

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "roles" / "gitlab_omnibus" / "files" / "record_settings.rb"
DOCS = Path(__file__).resolve().parent / "docs_examples"

#: Secrets with every character that breaks careless quoting (Ruby interpolation included).
DB_PASSWORD = "pg@:/#%?&+=!'\"\\pw#{`id`}x"
REDIS_PASSWORD = "r3d!s@:/#%'\"\\x#{1+1}"
GITALY_TOKEN = "gT0k3n" * 8


def inputs(groups: list[str], **overrides: Any) -> dict[str, Any]:
    """A node of a small fleet: data node 10.0.0.10, sidekiq 10.0.0.21/22, rails 10.0.0.31."""
    values: dict[str, Any] = {
        "inventory_hostname": "node1",
        "group_names": groups,
        "sidekiq_gitlab_version": "17.11",
        "fleet_internal_address": "10.0.0.10",
        "gitlab_omnibus_client_addresses": ["10.0.0.31", "10.0.0.21", "10.0.0.22"],
        "fleet_tls_enabled": False,
        "fleet_tls_ca_path": "/etc/ssl/sidekiq-fleet/ca.crt",
        "fleet_tls_cert_path": "/etc/ssl/sidekiq-fleet/node.crt",
        "fleet_tls_key_path": "/etc/ssl/sidekiq-fleet/private/node.key",
        "fleet_git_uid": 9000, "fleet_git_gid": 9000,
        "common_web_server_uid": 9001, "common_web_server_gid": 9001,
        "common_registry_uid": 9002, "common_registry_gid": 9002,
        "fleet_redis_host": "10.0.0.10", "fleet_redis_port": 6379, "fleet_redis_database": 0,
        "fleet_redis_password": REDIS_PASSWORD,
        "fleet_db_host": "10.0.0.10", "fleet_db_port": 5432, "fleet_db_user": "gitlab",
        "fleet_db_name": "gitlabhq_production", "fleet_db_password": DB_PASSWORD,
        "fleet_gitaly_port": 8075, "fleet_gitaly_address": "tcp://10.0.0.10:8075",
        "fleet_gitaly_token": GITALY_TOKEN,
        "fleet_sidekiq_metrics_port": 8082, "fleet_sidekiq_health_checks_port": 8092,
        "sidekiq_routing_rules": [["resource_boundary!=cpu&urgency=high", "high-urgency"],
                                  ["*", "default"]],
        "sidekiq_queue_groups": ["high-urgency", "default,mailers"],
        "sidekiq_queue_selector": False, "sidekiq_negate": False,
        "sidekiq_concurrency": 20, "sidekiq_min_concurrency": None,
        "sidekiq_max_concurrency": None, "sidekiq_timeout": 25,
        "sidekiq_exporter_metrics_enabled": True,
        "sidekiq_exporter_metrics_listen_address": "127.0.0.1",
        "sidekiq_exporter_tls_enabled": False, "sidekiq_exporter_tls_cert_path": "",
        "sidekiq_exporter_tls_key_path": "",
        "sidekiq_exporter_health_checks_enabled": True,
        "sidekiq_exporter_health_checks_listen_address": "127.0.0.1",
        "sidekiq_app_registry_api_url": "", "sidekiq_app_ldap_enabled": False,
        "sidekiq_app_ldap_servers": {}, "sidekiq_app_ldap_sync_worker_cron": "30 1,13 * * *",
        "sidekiq_app_ldap_group_sync_worker_cron": "0 * * * *",
        "gitlab_omnibus_external_url": "https://gitlab.example.com",
        "gitlab_omnibus_internal_api_url": "", "gitlab_omnibus_auto_migrate": False,
        "gitlab_omnibus_postgresql_listen_address": "", "gitlab_omnibus_redis_bind": "",
        "gitlab_omnibus_gitaly_listen_host": "",
        "gitlab_omnibus_gitaly_storages": [{"name": "default",
                                            "path": "/var/opt/gitlab/git-data/repositories"}],
        "gitlab_omnibus_sidekiq_exporter_log_enabled": False,
        "gitlab_omnibus_registry_key_path": "/var/opt/gitlab/gitlab-rails/etc/gitlab-registry.key",
        "gitlab_omnibus_omniauth_providers": [],
        "gitlab_omnibus_omniauth_allow_single_sign_on": [],
    }
    values.update(overrides)
    return values


def recorded_text(text: str, tmp_path: Path, name: str = "gitlab.rb") -> dict[str, Any]:
    """``text`` written to a file, checked with ``ruby -c`` and evaluated by the harness."""
    path = tmp_path / name
    path.write_text(text)
    syntax_check(path)
    return record(path, harness=HARNESS)


def recorded(rb: GitlabRb, tmp_path: Path, *, redacted: bool = False) -> dict[str, Any]:
    return recorded_text(rb.render(redacted=redacted), tmp_path)
