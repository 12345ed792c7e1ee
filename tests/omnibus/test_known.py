"""The settings data (simulator/omnibus/data/omnibus_settings.yml): facts read from
omnibus-gitlab's release tags, each with the file and tag it came from."""

from __future__ import annotations

import re

import pytest

from simulator.errors import FleetError
from simulator.omnibus.known import OmnibusError, known_settings, parse_version

KNOWN = known_settings()


def test_the_data_covers_15_0_to_the_newest_release_checked():
    assert KNOWN.first == (15, 0)
    assert KNOWN.latest >= (19, 3)
    assert KNOWN.versions == tuple(sorted(KNOWN.versions))
    assert KNOWN.source["repository"].endswith("omnibus-gitlab")


def test_every_entry_says_where_it_was_found():
    where = re.compile(r"[\w./-]+@\d+\.\d+\.0\+ce\.0")
    for top, keys in KNOWN.settings.items():
        for key, presence in keys.items():
            assert where.fullmatch(presence.where), (top, key, presence.where)
    for removal in KNOWN.removals:
        assert where.fullmatch(removal.where), removal


@pytest.mark.parametrize("key", ["queue_selector", "negate", "min_concurrency",
                                 "max_concurrency"])
def test_17_0_removed_the_selector_negate_and_min_max(key):
    assert KNOWN.setting("sidekiq", key, (16, 11)).state == "present"
    status = KNOWN.setting("sidekiq", key, (17, 0))
    assert status.state == "removed"
    assert status.removal is not None
    assert status.removal.removed == (17, 0)
    assert status.removal.message().startswith(
        f"* sidekiq['{key}'] has been deprecated since ")
    assert "was removed in 17.0." in status.removal.message()
    assert KNOWN.deprecation(("sidekiq", key), (16, 10)) is not None


def test_the_settings_the_role_writes_exist_from_where_the_data_says():
    assert KNOWN.setting("sidekiq", "routing_rules", (15, 0)).state == "present"
    assert KNOWN.setting("sidekiq", "exporter_tls_enabled", (15, 1)).state == "not-yet"
    assert KNOWN.setting("sidekiq", "exporter_tls_enabled", (15, 2)).state == "present"
    assert KNOWN.setting("gitaly", "configuration", (15, 9)).state == "not-yet"
    assert KNOWN.setting("gitaly", "configuration", (15, 10)).state == "present"
    assert KNOWN.setting("gitaly", "listen_addr", (16, 0)).state == "removed"
    assert KNOWN.setting("postgresql", "md5_auth_cidr_addresses", (17, 11)).state == "present"
    assert KNOWN.setting("registry", "internal_key", (17, 11)).state == "present"
    assert KNOWN.setting("sidekiq", "concurency", (17, 11)).state == "unknown"
    assert KNOWN.role("gitaly_role", (17, 5)) is None
    assert KNOWN.role("gitaly_role", (17, 6)) is not None
    assert KNOWN.removal(("git_data_dirs",), (18, 0)) is not None
    assert KNOWN.removal(("git_data_dirs",), (17, 11)) is None


def test_a_release_after_the_data_is_answered_by_the_newest_one_checked():
    assert KNOWN.checked((99, 0)) == KNOWN.latest
    assert KNOWN.checked((17, 11)) == (17, 11)
    with pytest.raises(OmnibusError, match=r"older than 15\.0"):
        KNOWN.checked((14, 10))


@pytest.mark.parametrize(("text", "version"), [
    ("17.5", (17, 5)), ("17.10", (17, 10)), ("17.5.2", (17, 5)), ("17.5.2-ee.0", (17, 5)),
    ("v16.11.1", (16, 11)),
])
def test_versions_are_read_as_major_minor(text, version):
    assert parse_version(text) == version


@pytest.mark.parametrize("bad", [17.1, "seventeen", "17", None])
def test_a_version_that_is_not_a_quoted_string_is_refused(bad):
    """The routing engine's reading of sidekiq_gitlab_version (one implementation)."""
    with pytest.raises(FleetError, match="sidekiq_gitlab_version"):
        parse_version(bad)
