"""Common: pinned service users and the time zone on every node."""

from __future__ import annotations

import pytest
from conftest import host_spec

testinfra_hosts = [
    host_spec(name)
    for name in (
        "mol-redis",
        "mol-postgresql",
        "mol-gitaly",
        "mol-sidekiq",
        "mol-omnibus",
        "mol-outsider",
    )
]


@pytest.mark.parametrize(("name", "uid"), [("git", 9000), ("gitlab-www", 9001), ("registry", 9002)])
def test_service_users_have_pinned_ids(host, name, uid):
    user = host.user(name)
    assert user.uid == uid
    assert user.gid == uid


def test_time_zone_is_utc(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
    assert host.file("/etc/timezone").content_string == "Etc/UTC\n"
