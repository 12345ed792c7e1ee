"""Generated queue names: GitLab's documented examples and every entry of the real CE catalog."""

from __future__ import annotations

import pytest

from simulator.queue_names import generated_queue_name, underscore


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
