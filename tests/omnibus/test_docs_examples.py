"""GitLab's own gitlab.rb examples (docs_examples/, each naming its page): the harness records
them, they pass the check for the releases their page covers (and fail it where a setting is
newer or removed), and an inventory that asks for the same things renders the same settings."""

from __future__ import annotations

import pytest
from omnibus_helpers import DOCS, HARNESS, inputs, recorded

from simulator.omnibus.gitlab_rb import build_gitlab_rb
from simulator.omnibus.validate import check_known, errors, record

#: Each example, and the first release every setting in it exists in.
EXAMPLES = {
    "tcp_access.rb": "15.10",          # gitaly['configuration']
    "shared_storage_ids.rb": "15.0",
    "registry.rb": "15.0",
    "metrics.rb": "15.0",
    "metrics_https.rb": "15.2",        # sidekiq['exporter_tls_*']
    "health_checks.rb": "15.0",
    "ldap.rb": "15.0",
    "reference_sidekiq_node.rb": "15.0",
    "routing_rules.rb": "15.0",
}


def doc(name: str) -> dict:
    return record(DOCS / name, harness=HARNESS)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("version", ["17.11", "18.0", "19.3"])
def test_every_example_passes_the_current_releases(name, version):
    findings = check_known(doc(name), version)
    assert findings == [], [f.render() for f in findings]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_passes_from_its_first_release(name):
    assert not errors(check_known(doc(name), EXAMPLES[name]))


def test_examples_newer_than_a_release_are_refused_there():
    assert [f.code for f in check_known(doc("tcp_access.rb"), "15.9")] == [
        "omnibus-setting-too-new"]
    assert {f.code for f in check_known(doc("metrics_https.rb"), "15.1")} == {
        "omnibus-setting-too-new"}


def subset(part, whole) -> bool:
    """Every key of ``part`` in ``whole`` with the same value (recursively for hashes)."""
    if isinstance(part, dict) and isinstance(whole, dict):
        return all(k in whole and subset(v, whole[k]) for k, v in part.items())
    return part == whole


def rendered(tmp_path, groups, **overrides) -> dict:
    return recorded(build_gitlab_rb(inputs(groups, **overrides)), tmp_path)["settings"]


def test_the_data_node_renders_the_tcp_access_example(tmp_path):
    ours = rendered(tmp_path, ["postgresql", "redis", "gitaly"],
                    gitlab_omnibus_gitaly_listen_host="0.0.0.0",
                    fleet_gitaly_token="abc123secret")
    example = doc("tcp_access.rb")["settings"]
    # gitlab_rails['redis_password'] is for the Rails the page's instance runs; the data node
    # here runs none (the Rails and Sidekiq nodes get it).
    del example["gitlab_rails"]["redis_password"]
    assert subset(example, ours), (example, ours)


@pytest.mark.parametrize(("name", "overrides"), [
    ("shared_storage_ids.rb", {}),
    ("registry.rb", {"sidekiq_app_registry_api_url": "https://registry.example.com"}),
    ("metrics.rb", {"sidekiq_exporter_metrics_listen_address": "localhost",
                    "gitlab_omnibus_sidekiq_exporter_log_enabled": True}),
    ("metrics_https.rb", {"sidekiq_exporter_tls_enabled": True,
                          "sidekiq_exporter_tls_cert_path": "/path/to/certificate.pem",
                          "sidekiq_exporter_tls_key_path": "/path/to/private-key.pem"}),
    ("health_checks.rb", {"sidekiq_exporter_health_checks_listen_address": "localhost"}),
    ("routing_rules.rb", {
        "sidekiq_routing_rules": [
            ["resource_boundary!=cpu&urgency=high", "high-urgency"],
            ["feature_category=database,gitaly,global_search&urgency=throttled", "throttled"],
            ["has_external_dependencies=true|feature_category=hooks|tags=network",
             "network-intensive"],
            ["*", "default"]],
        "sidekiq_queue_groups": ["high-urgency", "high-urgency", "throttled,network-intensive",
                                 "default,mailers"]}),
])
def test_a_sidekiq_node_renders_the_example_its_inventory_asks_for(name, overrides, tmp_path):
    ours = rendered(tmp_path, ["sidekiq"], **overrides)
    example = doc(name)["settings"]
    assert subset(example, ours), (example, ours)


def test_a_sidekiq_node_renders_the_ldap_example(tmp_path):
    example = doc("ldap.rb")["settings"]["gitlab_rails"]
    ours = rendered(tmp_path, ["sidekiq"], sidekiq_app_ldap_enabled=True,
                    sidekiq_app_ldap_servers=example["ldap_servers"],
                    sidekiq_app_ldap_sync_worker_cron=example["ldap_sync_worker_cron"])
    asked = {k: v for k, v in example.items() if k != "prevent_ldap_sign_in"}
    assert subset(asked, ours["gitlab_rails"])
