"""Gitaly: config parses, listens on TCP with the worker's token, storages owned by git 9000."""

from __future__ import annotations

import json

from conftest import host_spec

testinfra_hosts = [host_spec("mol-gitaly")]

PARSE = (
    "import json, tomllib; c = tomllib.load(open('/etc/gitaly/config.toml', 'rb')); "
    "print(json.dumps({'listen_addr': c.get('listen_addr'), "
    "'tls_listen_addr': c.get('tls_listen_addr'), 'tls': c.get('tls'), "
    "'token': c['auth']['token'], 'storage': c['storage']}))"
)


def gitaly_config(host) -> dict:
    return json.loads(host.check_output(f'python3 -c "{PARSE}"'))


def test_config_parses_and_listens_on_tcp(host):
    config = gitaly_config(host)
    # TLS only (GitLab's tls_listen_addr), with the pki role's certificate; no plain listener.
    assert config["listen_addr"] is None and config["tls_listen_addr"] == "0.0.0.0:8075"
    assert config["tls"] == {
        "certificate_path": "/etc/ssl/sidekiq-fleet/node.crt",
        "key_path": "/etc/ssl/sidekiq-fleet/private/node.key",
    }
    assert config["storage"] == [
        {"name": "default", "path": "/var/opt/gitlab/git-data/repositories"}
    ]


def test_token_equals_the_one_the_worker_gets(host, worker_env):
    token = gitaly_config(host)["token"]
    assert len(token) >= 32
    assert token == worker_env["GITALY_TOKEN"]
    assert worker_env["GITALY_ADDRESS"] == "tls://172.28.51.13:8075"


def test_config_is_readable_by_git_only(host):
    config = host.file("/etc/gitaly/config.toml")
    assert config.user == "root"
    assert config.group == "git"
    assert config.mode == 0o640


def test_storage_is_owned_by_the_pinned_git_user(host):
    storage = host.file("/var/opt/gitlab/git-data/repositories")
    assert storage.is_directory
    assert storage.uid == 9000
    assert storage.gid == 9000


def test_service_is_not_started_without_a_binary(host):
    assert not host.file("/usr/local/bin/gitaly").exists
    assert host.file("/etc/systemd/system/gitaly.service").exists
    assert not host.service("gitaly").is_running
