"""The GitLab version the engine plans for (sidekiq_gitlab_version), one test per boundary of
docs/behaviour.md §10: 15.9 (selector/negate deprecated), 16.9 (fixed concurrency), 16.10
(default queue groups), 17.0 (`*`, removed settings, the threads model)."""

from __future__ import annotations

import pytest

from simulator.errors import QueueGroupError, VersionError
from simulator.routing.defaults import DEFAULT_GITLAB_VERSION, default, threads_model
from simulator.routing.queue_groups import expand_queue_groups, process_concurrency
from simulator.routing.rules import Router
from simulator.routing.versions import (
    CURRENT,
    GitLabVersion,
    deprecations,
    parse_gitlab_version,
    removals,
)

# The scalability issue's example of 17.0's `*` (gitlab-com/gl-infra/scalability#2220).
ISSUE_RULES = [
    ["resource_boundary=cpu&urgency=high", "urgent_cpu_bound"],
    ["resource_boundary=memory", "memory_bound"],
    ["*", "default"],
]


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("17.5", (17, 5)), ("17.10", (17, 10)), (" 16.11 ", (16, 11)), ("17.5.2", (17, 5)),
    ("17.5.2-ee.0", (17, 5)), ("16.10.1-ce.0", (16, 10)), ("v18.0", (18, 0)), ("13.0", (13, 0)),
])
def test_versions_parse_major_and_minor(text, expected):
    version = parse_gitlab_version(text)
    assert version == expected and str(version) == f"{expected[0]}.{expected[1]}"


def test_unset_means_the_current_release():
    assert parse_gitlab_version(None) == CURRENT
    assert str(CURRENT) == DEFAULT_GITLAB_VERSION == default("sidekiq_gitlab_version")
    assert CURRENT >= (17, 0)


@pytest.mark.parametrize(("value", "words"), [
    (17.10, ["quoted string", "the number 17.1", "17.10 becomes 17.1", '"17.10"']),
    (17, ["quoted string", "the number 17"]),
    ("17", ["'17' is not a GitLab version", "MAJOR.MINOR"]),
    ("seventeen", ["is not a GitLab version"]),
    ("17.x", ["is not a GitLab version"]),
    ("", ["is not a GitLab version"]),
    (["17.0"], ["version string", "list"]),
    (True, ["version string", "bool"]),
    ("12.10", ["older than GitLab 13.0", "oldest version"]),
])
def test_a_bad_version_names_the_file_and_the_variable(value, words):
    with pytest.raises(VersionError) as info:
        parse_gitlab_version(value, file="inv/group_vars/all.yml:3",
                             rule="host sk1, sidekiq_gitlab_version")
    text = str(info.value)
    assert text.startswith("inv/group_vars/all.yml:3, host sk1, sidekiq_gitlab_version: ")
    assert "fix:" in text
    for word in words:
        assert word in text, (word, text)


# -- 16.10: the default queue groups -----------------------------------------------------------


@pytest.mark.parametrize(("version", "groups"), [
    ((13, 0), ["*"]), ((16, 9), ["*"]), ((16, 10), ["default,mailers"]),
    ((17, 0), ["default,mailers"]), (None, ["default,mailers"]),
])
def test_default_queue_groups_changed_in_16_10(version, groups):
    assert default("sidekiq_queue_groups", version) == groups


def test_other_defaults_do_not_depend_on_the_version():
    assert default("sidekiq_routing_rules", (15, 0)) == [["*", "default"]]
    assert default("sidekiq_concurrency", (16, 0)) is None


# -- 17.0: what `*` means --------------------------------------------------------------------


def test_star_is_every_queue_before_17(catalog):
    (proc,) = expand_queue_groups(["*"], catalog, gitlab_version="16.11",
                                  wildcard_queues=["ignored"])
    assert len(proc.queues) == len(catalog.queue_names()) == 574


def test_star_is_the_rules_queues_plus_mailers_from_17(catalog):
    router = Router.from_rules(ISSUE_RULES, catalog)
    assert router.wildcard_queues() == ["urgent_cpu_bound", "memory_bound", "default", "mailers"]
    (proc,) = expand_queue_groups(["*"], catalog, gitlab_version="17.0",
                                  wildcard_queues=router.wildcard_queues())
    assert proc.queues == ("urgent_cpu_bound", "memory_bound", "default", "mailers")


def test_star_from_17_without_rules_is_gitlabs_default_rules(catalog):
    (proc,) = expand_queue_groups(["*"], catalog)  # the current release, no rules given
    assert proc.queues == ("default", "mailers")
    assert Router.from_rules(None, catalog).wildcard_queues() == ["default", "mailers"]


def test_a_blank_queue_rule_adds_the_generated_names_it_routes_to(catalog):
    router = Router.from_rules([["feature_category=webhooks", ""],
                                ["urgency=high", "urgent"], ["*", "default"]], catalog)
    star = router.wildcard_queues()
    generated = [w.name for w in catalog.real_workers() if w.feature_category == "webhooks"]
    assert len(generated) == 3 and star == [*generated, "urgent", "default", "mailers"]


def test_without_a_catch_all_unmatched_workers_are_not_in_star(catalog):
    router = Router.from_rules([["urgency=high", "urgent"]], catalog)
    assert router.wildcard_queues() == ["urgent", "mailers"]


# -- 17.0: settings GitLab removed (15.9 and 16.9 deprecated them) ------------------------------


@pytest.mark.parametrize(("kwargs", "gitlab_name"), [
    ({"selector": True}, "sidekiq['queue_selector']"),
    ({"negate": True}, "sidekiq['negate']"),
    ({"min_concurrency": 5}, "sidekiq['min_concurrency']"),
    ({"max_concurrency": 30}, "sidekiq['max_concurrency']"),
])
def test_removed_settings_are_refused_from_17_with_gitlabs_message(catalog, kwargs, gitlab_name):
    groups = ["urgency=high"] if kwargs.get("selector") else ["default"]
    expand_queue_groups(groups, catalog, gitlab_version="16.11", **kwargs)  # still there
    with pytest.raises(VersionError) as info:
        expand_queue_groups(groups, catalog, gitlab_version="17.0", source="inv", **kwargs)
    text = str(info.value)
    assert text.startswith("inv: Removed configurations found in gitlab.rb. Aborting reconfigure.")
    assert f"* {gitlab_name} (" in text and "was removed in 17.0." in text
    assert "GitLab 17.0" in text and "fix:" in text


def test_every_removed_setting_is_named_at_once(catalog):
    with pytest.raises(VersionError) as info:
        expand_queue_groups(["urgency=high"], catalog, selector=True, negate=True,
                            min_concurrency=1, max_concurrency=2)
    text = str(info.value)
    for name in ("queue_selector", "negate", "min_concurrency", "max_concurrency"):
        assert f"sidekiq['{name}']" in text
    assert f"GitLab {DEFAULT_GITLAB_VERSION}" in text


def test_false_and_unset_are_not_removed_settings():
    settings = {"sidekiq_queue_selector": False, "sidekiq_negate": False,
                "sidekiq_min_concurrency": None}
    assert removals(settings, GitLabVersion(17, 0)) == []


@pytest.mark.parametrize(("version", "deprecated"), [
    ((15, 8), []),
    ((15, 9), ["sidekiq_queue_selector"]),
    ((16, 9), ["sidekiq_queue_selector", "sidekiq_max_concurrency"]),
    ((16, 11), ["sidekiq_queue_selector", "sidekiq_max_concurrency"]),
    ((17, 0), []),  # removed: refused, not deprecated
])
def test_deprecated_between_15_9_16_9_and_17_0(version, deprecated):
    settings = {"sidekiq_queue_selector": True, "sidekiq_max_concurrency": 20}
    found = deprecations(settings, GitLabVersion(*version))
    assert [r.variable for r in found] == deprecated


# -- 16.9 and 17.0: threads per process ------------------------------------------------------


def test_fixed_concurrency_does_not_exist_before_16_9(catalog):
    (proc,) = expand_queue_groups(["default"], catalog, concurrency=7, gitlab_version="16.9")
    assert proc.concurrency == 7
    with pytest.raises(QueueGroupError) as info:
        expand_queue_groups(["default"], catalog, concurrency=7, gitlab_version="16.8")
    text = str(info.value)
    assert "does not exist before GitLab 16.9" in text and "GitLab 16.8" in text
    assert "sidekiq_min_concurrency" in text


@pytest.mark.parametrize(("version", "threads", "model"), [
    ("16.11", 3, "formula"),  # default,mailers: 2 queues + 1, Omnibus max 20
    ("17.0", 20, "default"),
])
def test_threads_with_nothing_set_change_at_17(catalog, version, threads, model):
    (proc,) = expand_queue_groups(["default,mailers"], catalog, gitlab_version=version)
    assert proc.concurrency == threads
    parsed = parse_gitlab_version(version)
    assert threads_model(min_concurrency=None, max_concurrency=None, concurrency=None,
                         gitlab_version=parsed) == model


def test_before_17_max_concurrency_defaults_to_omnibus_20(catalog):
    (every,) = expand_queue_groups(["*"], catalog, gitlab_version="15.0")
    assert every.concurrency == 20  # 575 clamped to [0, 20]
    assert process_concurrency(3, min_concurrency=10, gitlab_version="16.0") == 10
    assert process_concurrency(3, max_concurrency=0, gitlab_version="16.0") == 4  # 0: N
