"""Generated queue names: GitLab's documented examples and every entry of the real CE catalog."""

from __future__ import annotations

import pytest

from simulator.errors import CatalogError, QueueGroupError, RoutingError
from simulator.routing.catalog import catalog_from_entries
from simulator.routing.queue_groups import expand_queue_groups
from simulator.routing.queue_names import check_queue_name, generated_queue_name, underscore
from simulator.routing.rules import parse_rules


@pytest.mark.parametrize(
    ("worker_class", "namespace", "expected"),
    [
        ("Gitlab::JiraImport::AdvanceStageWorker", None, "jira_import_advance_stage"),
        ("HTTPServerWorker", None, "http_server"),
        ("VSCodeSettingsSyncWorker", None, "vscode_settings_sync"),
        ("FooEEBarWorker", None, "foo_ee_bar"),
        ("PhDWorker", None, "ph_d"),
        ("X509IssuerCrlCheckWorker", "cronjob", "cronjob:x509_issuer_crl_check"),
        ("PostReceive", None, "post_receive"),
        ("Gitlab::GitlabWorker", None, "gitlab"),  # only one prefix and one suffix go
        ("WorkerWorker", None, "worker"),
        ("CDNPurgeWorker", None, "cdn_purge"),
        ("JHFipsWorker", None, "jh_fips"),
        ("Foo-BarWorker", None, "foo_bar"),
    ],
)
def test_documented_and_edge_examples(worker_class, namespace, expected):
    assert generated_queue_name(worker_class, namespace) == expected


def test_underscore_leaves_plain_words_alone():
    assert underscore("already_snake") == "already_snake"


def test_every_real_ce_catalog_entry_is_reproduced(raw_catalog):
    checked = 0
    for entry in raw_catalog:
        worker = entry[":worker_name"]
        if worker is None or entry[":name"] in ("default", "mailers"):
            continue  # placeholders, not derived from a class
        namespace = (entry[":queue_namespace"] or "").lstrip(":") or None
        assert generated_queue_name(worker, namespace) == entry[":name"], worker
        checked += 1
    assert checked == 572


# -- queue names from operators (issue 9 item 7): one check for rules, groups and catalogs -------



@pytest.mark.parametrize(
    "name", ["default", "mailers", "urgent_cpu_bound", "cronjob:foo_bar", "a.b-c", "Q1"]
)
def test_valid_queue_names_pass(name):
    check_queue_name(name)


@pytest.mark.parametrize(
    ("name", "position"),
    [
        ("de fault", 3),
        ("-r", 1),
        ("evil\nqueue", 5),
        ("a'b", 2),
        ('a"b', 2),
        ("a$b", 2),
        ("a`id`", 2),
        ("a;rm", 2),
        ("a|b", 2),
        ("a*", 2),
        ("", 1),
    ],
)
def test_bad_queue_names_name_the_position(name, position):
    with pytest.raises(QueueGroupError) as info:
        check_queue_name(name, error=QueueGroupError)
    assert info.value.position == position
    assert info.value.hint and "A-Z" in info.value.hint


def test_queue_group_with_sidekiq_flags_is_rejected(catalog):
    with pytest.raises(QueueGroupError) as info:
        expand_queue_groups(["default", "de fault -r ./evil.rb"], catalog, source="inv")
    text = str(info.value)
    assert "sidekiq_queue_groups entry 2" in text and "position 3" in text and "inv" in text
    assert "fix:" in text
    for group in (["-r ./evil.rb"], ["default,-r"], ["default;touch x"], ["a,$(id)"],
                  ["default,*"], ["mailers\n-r"]):
        with pytest.raises(QueueGroupError):
            expand_queue_groups(group, catalog)


def test_queue_group_syntax_still_accepted(catalog):
    procs = expand_queue_groups(["*", "default, mailers", "cronjob", "a.b-c"], catalog)
    assert len(procs) == 4 and "cronjob:admin_email" in procs[2].queues
    procs = expand_queue_groups(["urgency=high&resource_boundary=cpu"], catalog, selector=True,
                                gitlab_version="16.11")
    assert procs[0].queues


def test_routing_rule_queue_is_checked(catalog):
    with pytest.raises(RoutingError) as info:
        parse_rules([["*", "default"], ["urgency=high", "urgent -r ./evil.rb"]], catalog,
                    source="rules.yml")
    text = str(info.value)
    assert "rule 2" in text and "position 7" in text and "rules.yml" in text
    parse_rules([["urgency=high", "urgent_cpu_bound"], ["*", "cronjob:foo_bar"], ["*", None],
                 ["*", ""]], catalog)


def test_catalog_queue_names_are_checked():
    with pytest.raises(CatalogError) as info:
        catalog_from_entries([{":name": "ok", ":worker_name": "OkWorker"},
                              {":name": "bad name", ":worker_name": "BadWorker"}], "cat.yml")
    assert "entry 2" in str(info.value) and "position 4" in str(info.value)
    with pytest.raises(CatalogError):
        catalog_from_entries([{":worker_name": "Foo", ":queue_namespace": ":-r"}], "cat.yml")


def test_the_ce_catalog_names_are_valid(catalog):
    for name in catalog.queue_names():
        check_queue_name(name)
