"""Omnibus rails and sidekiq nodes reach Redis through Sentinel when fleet_redis_sentinels is set:
GitLab's own settings (redis['master_name'], ['master_password'], gitlab_rails['redis_sentinels'],
and from the releases that have them the sentinels' password and TLS), never redis_host/port."""

from __future__ import annotations

import pytest
from omnibus_helpers import REDIS_PASSWORD, inputs, recorded

from simulator.omnibus.gitlab_rb import build_gitlab_rb
from simulator.omnibus.known import OmnibusError
from simulator.omnibus.validate import check, errors

SENTINELS = [{"host": "10.0.0.11", "port": 26379}, {"host": "10.0.0.12", "port": 26380},
             {"host": "10.0.0.13"}]
SENTINEL_PASSWORD = "s3nt!nel'\"#{x}"


def settings(rb) -> dict:
    return {s.path: s.value for s in rb.settings()}


def sentinel_inputs(groups, **overrides):
    if overrides.get("sidekiq_gitlab_version", "99") < "16.9":  # threads: min/max before 16.9
        overrides.update(sidekiq_concurrency=None, sidekiq_min_concurrency=10,
                         sidekiq_max_concurrency=20)
    values = {"fleet_redis_sentinels": SENTINELS,
              "fleet_redis_sentinel_master_name": "gitlab-redis",
              "fleet_redis_sentinel_password": SENTINEL_PASSWORD}
    return inputs(groups, **(values | overrides))


@pytest.mark.parametrize("groups", [["sidekiq"], ["rails"]])
def test_clients_get_the_sentinels_instead_of_redis_host(groups):
    got = settings(build_gitlab_rb(sentinel_inputs(groups)))
    assert ("gitlab_rails", "redis_host") not in got
    assert ("gitlab_rails", "redis_port") not in got
    assert got[("redis", "master_name")] == "gitlab-redis"
    assert got[("redis", "master_password")] == REDIS_PASSWORD
    assert got[("gitlab_rails", "redis_sentinels")] == [
        {"host": "10.0.0.11", "port": 26379},
        {"host": "10.0.0.12", "port": 26380},
        {"host": "10.0.0.13", "port": 26379},
    ]
    assert got[("gitlab_rails", "redis_sentinels_password")] == SENTINEL_PASSWORD  # 17.11
    assert got[("gitlab_rails", "redis_database")] == 0


def test_without_sentinels_nothing_changes():
    got = settings(build_gitlab_rb(inputs(["sidekiq"], fleet_redis_sentinels=[])))
    assert got[("gitlab_rails", "redis_host")] == "10.0.0.10"
    assert not [p for p in got if "sentinel" in "".join(p) or p[-1].startswith("master_")]


def test_the_sentinel_password_only_where_the_release_has_it():
    old = settings(build_gitlab_rb(sentinel_inputs(["sidekiq"], sidekiq_gitlab_version="16.0")))
    assert ("gitlab_rails", "redis_sentinels_password") not in old  # since 16.1
    assert ("gitlab_rails", "redis_sentinels") in old
    new = settings(build_gitlab_rb(sentinel_inputs(["sidekiq"], sidekiq_gitlab_version="16.1")))
    assert new[("gitlab_rails", "redis_sentinels_password")] == SENTINEL_PASSWORD
    none = settings(build_gitlab_rb(sentinel_inputs(["sidekiq"],
                                                    fleet_redis_sentinel_password="")))
    assert ("gitlab_rails", "redis_sentinels_password") not in none


def test_tls_to_the_sentinels_only_where_the_release_has_it():
    tls = {"fleet_tls_enabled": True}
    before = settings(build_gitlab_rb(sentinel_inputs(["sidekiq"], sidekiq_gitlab_version="18.7",
                                                      **tls)))
    assert ("gitlab_rails", "redis_sentinels_ssl") not in before
    assert before[("gitlab_rails", "redis_ssl")] is True
    after = settings(build_gitlab_rb(sentinel_inputs(["sidekiq"], sidekiq_gitlab_version="18.8",
                                                     **tls)))
    assert after[("gitlab_rails", "redis_sentinels_ssl")] is True


def test_the_review_copy_names_the_secrets():
    text = build_gitlab_rb(sentinel_inputs(["sidekiq"])).render(redacted=True)
    assert SENTINEL_PASSWORD not in text and REDIS_PASSWORD not in text
    assert "gitlab_rails['redis_sentinels_password'] = '[secret: fleet_redis_sentinel_password]'" \
        in text
    assert "redis['master_password'] = '[secret: fleet_redis_password]'" in text


@pytest.mark.parametrize("bad", ["10.0.0.11:26379", [{"port": 26379}],
                                 [{"host": "x", "port": "many"}]])
def test_a_malformed_sentinel_list_is_refused(bad):
    with pytest.raises(OmnibusError, match="fleet_redis_sentinels"):
        build_gitlab_rb(sentinel_inputs(["sidekiq"]) | {"fleet_redis_sentinels": bad})


@pytest.mark.parametrize("version", ["16.0", "17.11", "18.8"])
def test_the_text_records_back_and_every_setting_is_known(version, tmp_path):
    rb = build_gitlab_rb(sentinel_inputs(["sidekiq"], sidekiq_gitlab_version=version,
                                         fleet_tls_enabled=True))
    findings = check(recorded(rb, tmp_path), expected=rb)
    assert not errors(findings), [f.render() for f in findings]
