from __future__ import annotations

import pytest

from simulator.catalog import catalog_from_entries, load_catalog
from simulator.errors import CatalogError


def test_ce_catalog_loads_with_symbols_stripped(catalog):
    assert len(catalog) == 574
    worker = catalog.get("AuthorizedProjectsWorker")
    assert worker is not None
    assert worker.urgency == "high"
    assert worker.queue_namespace is None
    assert catalog.get("default").is_placeholder
    assert catalog.get("ActionMailer::MailDeliveryJob").name == "mailers"
    assert len(catalog.real_workers()) == 572


def test_mailers_urgency_is_a_ruby_string_and_reported(catalog):
    mailers = catalog.get("ActionMailer::MailDeliveryJob")
    assert mailers.urgency == "low"
    assert "urgency" in mailers.string_valued
    assert any("ActionMailer::MailDeliveryJob" in n for n in catalog.notes())


def test_plain_style_catalog_for_other_apps(tmp_path):
    path = tmp_path / "workers.yml"
    path.write_text(
        "- worker_name: HardWorker\n  urgency: high\n  feature_category: billing\n"
        "- worker_name: Reports::NightlyWorker\n  queue_namespace: cronjob\n"
    )
    catalog = load_catalog(path)
    assert catalog.get("HardWorker").name == "hard"
    assert catalog.get("HardWorker").string_valued == frozenset()
    assert catalog.get("Reports::NightlyWorker").name == "cronjob:reports_nightly"
    assert catalog.get("Reports::NightlyWorker").urgency is None


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([["not", "a", "mapping"]], "expected a mapping"),
        ([{":urgncy": ":high", ":worker_name": "A"}], "unknown attribute ':urgncy'"),
        ([{":worker_name": "A", ":urgency": ":urgent"}], "urgency 'urgent' is not one of"),
        ([{":feature_category": ":x"}], "needs a name (queue) or a worker_name"),
        ([{":worker_name": "A", ":weight": 0}], "weight must be a positive integer"),
        ([{":worker_name": "A", ":tags": ":x"}], "tags must be a list"),
        ([{":worker_name": "A", ":idempotent": "yes"}], "idempotent must be true or false"),
        ([{":worker_name": "A"}, {":worker_name": "A"}], "listed twice"),
    ],
)
def test_malformed_entries_name_the_entry(entries, fragment):
    with pytest.raises(CatalogError) as err:
        catalog_from_entries(entries, "my.yml")
    text = str(err.value)
    assert fragment in text
    assert "my.yml" in text and "entry " in text


def test_unreadable_and_non_list_files(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1,\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
    bad.write_text("a: 1\n")
    with pytest.raises(CatalogError, match="YAML list"):
        load_catalog(bad)
