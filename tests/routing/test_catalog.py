from __future__ import annotations

import pytest

from simulator.errors import CatalogError
from simulator.routing.catalog import catalog_from_entries, load_catalog


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


def test_catalog_parse_cache_gives_the_same_catalog(tmp_path, monkeypatch):
    from simulator.inputs import cache_dir
    from simulator.routing.catalog import DEFAULT_CATALOG_PATH

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    copy = tmp_path / "all_queues.yml"
    copy.write_bytes(DEFAULT_CATALOG_PATH.read_bytes())
    parsed = load_catalog(copy)
    entries = list(cache_dir().glob("yaml-*.json"))
    assert len(entries) == 1
    assert load_catalog(copy) == parsed  # from the cache
    entries[0].write_text("{not json")  # a damaged cache entry is ignored
    assert load_catalog(copy) == parsed
    monkeypatch.setenv("FLEETSIM_CACHE", "off")
    assert cache_dir() is None
    assert load_catalog(copy) == parsed


def test_libyaml_and_pure_python_loaders_agree(raw_catalog):
    import yaml

    from simulator.errors import FleetError
    from simulator.inputs import load_yaml_text
    from simulator.routing.catalog import DEFAULT_CATALOG_PATH

    text = DEFAULT_CATALOG_PATH.read_text()
    assert load_yaml_text(text, file="ce", error=FleetError, what="catalog") == raw_catalog
    assert yaml.load(text, Loader=yaml.SafeLoader) == raw_catalog
