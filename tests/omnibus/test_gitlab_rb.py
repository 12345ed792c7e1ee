"""What each kind of Omnibus node gets from the inventory, per GitLab release, and that the
Ruby text records back exactly as built (secrets with any character included)."""

from __future__ import annotations

import hashlib

import pytest
from omnibus_helpers import DB_PASSWORD, GITALY_TOKEN, REDIS_PASSWORD, inputs, recorded

from simulator.omnibus.gitlab_rb import build_gitlab_rb, ruby_literal
from simulator.omnibus.known import OmnibusError
from simulator.omnibus.validate import check, errors

DATA = ["postgresql", "redis", "gitaly"]


def settings(rb) -> dict:
    return {s.path: s.value for s in rb.settings()}


def test_the_data_node_opens_postgresql_to_the_rails_and_sidekiq_hosts_only():
    got = settings(build_gitlab_rb(inputs(DATA)))
    assert got[("roles",)] == ["postgres_role", "redis_master_role", "gitaly_role"]
    assert got[("postgresql", "listen_address")] == "10.0.0.10"
    assert got[("postgresql", "md5_auth_cidr_addresses")] == [
        "10.0.0.31/32", "10.0.0.21/32", "10.0.0.22/32"]
    assert got[("postgresql", "trust_auth_cidr_addresses")] == []
    # gitlab-ctl pg-password-md5: md5(password + user)
    assert got[("postgresql", "sql_user_password")] == hashlib.md5(
        (DB_PASSWORD + "gitlab").encode()).hexdigest()
    assert got[("redis", "bind")] == "10.0.0.10"
    assert got[("redis", "password")] == REDIS_PASSWORD
    assert got[("gitaly", "configuration")]["listen_addr"] == "10.0.0.10:8075"
    assert got[("gitaly", "configuration")]["auth"] == {"token": GITALY_TOKEN}
    assert got[("gitlab_rails", "gitaly_token")] == GITALY_TOKEN
    assert got[("gitlab_rails", "auto_migrate")] is False


def test_ipv6_clients_get_a_one_host_prefix_and_a_hostname_is_refused():
    got = settings(build_gitlab_rb(inputs(DATA, gitlab_omnibus_client_addresses=["fd00::21"])))
    assert got[("postgresql", "md5_auth_cidr_addresses")] == ["fd00::21/128"]
    with pytest.raises(OmnibusError, match="not an IP address"):
        build_gitlab_rb(inputs(DATA, gitlab_omnibus_client_addresses=["sidekiq1.internal"]))
    with pytest.raises(OmnibusError, match=r"md5_auth_cidr_addresses.* empty"):
        build_gitlab_rb(inputs(DATA, gitlab_omnibus_client_addresses=[]))


def test_a_sidekiq_node_runs_only_sidekiq_with_the_fleets_routing():
    got = settings(build_gitlab_rb(inputs(["sidekiq"])))
    assert got[("roles",)] == ["sidekiq_role"]
    assert got[("external_url",)] == "https://gitlab.example.com"
    assert got[("sidekiq", "routing_rules")] == [
        ["resource_boundary!=cpu&urgency=high", "high-urgency"], ["*", "default"]]
    assert got[("sidekiq", "queue_groups")] == ["high-urgency", "default,mailers"]
    assert got[("sidekiq", "concurrency")] == 20
    assert got[("sidekiq", "listen_port")] == 8082
    assert got[("sidekiq", "health_checks_listen_port")] == 8092
    assert got[("user", "uid")] == 9000 and got[("registry", "gid")] == 9002
    assert got[("gitlab_rails", "repositories_storages")] == {
        "default": {"gitaly_address": "tcp://10.0.0.10:8075"}}
    for removed in ("queue_selector", "negate", "min_concurrency", "max_concurrency"):
        assert ("sidekiq", removed) not in got


def test_a_rails_node_has_the_same_routing_rules_and_no_sidekiq_or_gitaly():
    sidekiq = settings(build_gitlab_rb(inputs(["sidekiq"])))
    rails = settings(build_gitlab_rb(inputs(["rails"], gitlab_omnibus_auto_migrate=True)))
    assert rails[("roles",)] == ["application_role"]
    assert rails[("sidekiq", "enable")] is False and rails[("gitaly", "enable")] is False
    assert rails[("sidekiq", "routing_rules")] == sidekiq[("sidekiq", "routing_rules")]
    assert rails[("gitlab_rails", "auto_migrate")] is True
    assert not any(path[0] == "sidekiq" and path[1] not in ("enable", "routing_rules")
                   for path in rails)


def test_unset_queue_groups_and_threads_are_left_to_gitlabs_defaults():
    got = settings(build_gitlab_rb(inputs(["sidekiq"], sidekiq_queue_groups=None,
                                          sidekiq_concurrency=None)))
    assert ("sidekiq", "queue_groups") not in got
    assert ("sidekiq", "concurrency") not in got


def test_threads_follow_the_release():
    old = settings(build_gitlab_rb(inputs(["sidekiq"], sidekiq_gitlab_version="16.8",
                                          sidekiq_concurrency=None, sidekiq_min_concurrency=5,
                                          sidekiq_max_concurrency=10)))
    assert old[("sidekiq", "min_concurrency")] == 5 and old[("sidekiq", "max_concurrency")] == 10
    with pytest.raises(OmnibusError, match=r"sidekiq_concurrency needs GitLab 16\.9"):
        build_gitlab_rb(inputs(["sidekiq"], sidekiq_gitlab_version="16.8"))
    assert settings(build_gitlab_rb(inputs(["sidekiq"], sidekiq_gitlab_version="16.9")))[
        ("sidekiq", "concurrency")] == 20


def test_gitaly_and_storages_follow_the_release():
    v159 = settings(build_gitlab_rb(inputs(DATA, sidekiq_gitlab_version="15.9")))
    assert v159[("gitaly", "listen_addr")] == "10.0.0.10:8075"
    assert v159[("gitaly", "auth_token")] == GITALY_TOKEN
    assert v159[("gitaly", "enable")] is True and ("gitaly", "configuration") not in v159
    v175 = settings(build_gitlab_rb(inputs(DATA, sidekiq_gitlab_version="17.5")))
    assert "gitaly_role" not in v175[("roles",)] and v175[("gitaly", "enable")] is True
    client = settings(build_gitlab_rb(inputs(["sidekiq"], sidekiq_gitlab_version="17.7")))
    assert client[("git_data_dirs",)] == {"default": {"gitaly_address": "tcp://10.0.0.10:8075"}}
    assert ("gitlab_rails", "repositories_storages") not in client


def test_tls_on_every_hop_is_written_for_the_servers_and_their_clients():
    data = settings(build_gitlab_rb(inputs(DATA, fleet_tls_enabled=True)))
    assert data[("postgresql", "hostssl")] is True
    assert data[("postgresql", "ssl_key_file")] == "/etc/ssl/sidekiq-fleet/private/node.key"
    assert data[("redis", "port")] == 0 and data[("redis", "tls_port")] == 6379
    configuration = data[("gitaly", "configuration")]
    assert "listen_addr" not in configuration
    assert configuration["tls_listen_addr"] == "10.0.0.10:8075"
    client = settings(build_gitlab_rb(inputs(["sidekiq"], fleet_tls_enabled=True,
                                             fleet_gitaly_address="tls://10.0.0.10:8075")))
    assert client[("gitlab_rails", "db_sslmode")] == "verify-full"
    assert client[("gitlab_rails", "redis_ssl")] is True


def test_a_host_in_no_group_of_gitlab_and_a_missing_url_are_refused():
    with pytest.raises(OmnibusError, match="none of the groups"):
        build_gitlab_rb(inputs(["loadbalancer"]))
    with pytest.raises(OmnibusError, match="gitlab_omnibus_external_url is not set"):
        build_gitlab_rb(inputs(["sidekiq"], gitlab_omnibus_external_url=""))


@pytest.mark.parametrize("groups", [DATA, ["sidekiq"], ["rails"], ["rails", "sidekiq"],
                                    [*DATA, "sidekiq"]])
@pytest.mark.parametrize("redacted", [False, True])
def test_the_text_records_back_exactly_as_built(groups, redacted, tmp_path):
    rb = build_gitlab_rb(inputs(groups, sidekiq_app_ldap_enabled=True,
                                sidekiq_app_ldap_servers={"main": {"host": "ldap", "port": 636,
                                                                   "password": DB_PASSWORD}},
                                sidekiq_app_registry_api_url="https://registry.example.com"))
    findings = check(recorded(rb, tmp_path, redacted=redacted), expected=rb, redacted=redacted)
    assert not errors(findings), [f.render() for f in findings]


def test_the_review_copy_holds_no_secret():
    rb = build_gitlab_rb(inputs([*DATA, "sidekiq"], sidekiq_app_ldap_enabled=True,
                                sidekiq_app_ldap_servers={"main": {"password": "ldap-bind-pw"}}))
    text = rb.render(redacted=True)
    pg_hash = hashlib.md5((DB_PASSWORD + "gitlab").encode()).hexdigest()
    for secret in (DB_PASSWORD, REDIS_PASSWORD, GITALY_TOKEN, "ldap-bind-pw", pg_hash):
        assert secret not in text
    assert "[secret: fleet_db_password]" in text
    assert "[secret: sidekiq_app_ldap_servers]" in text
    assert GITALY_TOKEN in rb.render()


def test_ruby_literals_never_interpolate():
    assert ruby_literal("a#{b}'c\\") == "'a#{b}\\'c\\\\'"
    assert ruby_literal({"listen_addr": "x", "a-b": 1}, symbol_keys=True) == \
        "{ listen_addr: 'x', 'a-b' => 1 }"
    assert ruby_literal([None, True, 1.5]) == "[nil, true, 1.5]"
