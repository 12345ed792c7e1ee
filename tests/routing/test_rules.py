from __future__ import annotations

import pytest

from simulator.errors import QueryError, RoutingError
from simulator.routing.rules import MAILERS_QUEUE, Router, parse_rules, ruby_inspect

GITLAB_EXAMPLE = [
    ["resource_boundary!=cpu&urgency=high", "high-urgency"],
    ["feature_category=database,gitaly,global_search&urgency=throttled", "throttled"],
    ["has_external_dependencies=true|feature_category=webhooks", "network-intensive"],
    ["feature_category=importers", None],
    ["*", "default"],
]


def test_default_rules_route_everything_to_default_except_mailers(catalog):
    for rules in (None, []):
        resolved = Router.from_rules(rules, catalog).resolve()
        assert resolved.pop("ActionMailer::MailDeliveryJob").queue == MAILERS_QUEUE
        assert {r.queue for r in resolved.values()} == {"default"}
        assert len(resolved) == 572  # every real worker; the `default` placeholder is no worker


def test_gitlab_detailed_example(catalog):
    router = Router.from_rules(GITLAB_EXAMPLE, catalog)
    post_receive = router.route_key("PostReceive")  # high urgency, cpu-bound
    assert post_receive.queue == "default" and post_receive.rule_index == 5
    assert router.route_key("AuthorizedProjectsWorker").queue == "default"  # cpu-bound
    assert router.route_key("AuthorizedKeysWorker").queue == "high-urgency"
    assert router.route_key("WebHookWorker").queue == "network-intensive"
    jira = router.route_key("Gitlab::JiraImport::Stage::ImportIssuesWorker")
    assert jira.queue == "jira_importer:jira_import_stage_import_issues"  # generated name
    assert jira.rule_index == 4
    assert router.route_key("ActionMailer::MailDeliveryJob") == router.route(
        catalog.get("ActionMailer::MailDeliveryJob")
    )
    assert router.route_key("ActionMailer::MailDeliveryJob").queue == "mailers"


def test_first_match_wins_and_blank_queue_means_generated_name(catalog):
    router = Router.from_rules(
        [["urgency=high", "  "], ["urgency=high", "never"], ["*", ""]], catalog
    )
    assert router.route_key("AuthorizedProjectsWorker").queue == "authorized_projects"
    assert router.route_key("PostReceive").rule_index == 1
    assert (
        router.route_key("Ci::DeleteObjectsWorker").queue
        == catalog.get("Ci::DeleteObjectsWorker").name
    )


def test_no_match_means_generated_name(catalog):
    router = Router.from_rules([["urgency=high", "urgent"]], catalog)
    route = router.route_key("Ci::DeleteObjectsWorker")
    assert route.queue == catalog.get("Ci::DeleteObjectsWorker").name
    assert route.rule_index is None


def test_third_element_is_the_redis_shard(catalog):
    router = Router.from_rules(
        [["urgency=high", "urgent", "queues_shard_1"], ["*", "default"]], catalog
    )
    assert router.route_key("AuthorizedProjectsWorker").shard == "queues_shard_1"
    assert router.route_key("PostReceive").shard == "queues_shard_1"
    assert router.route_key("Ci::DeleteObjectsWorker").shard is None


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("*", "The set of routing rule must be an array"),
        ({"*": "default"}, "The set of routing rule must be an array"),
        ([["*"]], 'Routing rule `["*"]` is invalid'),
        (
            [["*", "default", "shard", "x"]],
            'Routing rule `["*", "default", "shard", "x"]` is invalid',
        ),
        (["*"], 'Routing rule `"*"` is invalid'),
        ([[1, "default"]], 'Routing rule `[1, "default"]` is invalid'),
        ([["*", ["a"]]], 'Routing rule `["*", ["a"]]` is invalid'),
    ],
)
def test_gitlab_validation_messages(rules, message, catalog):
    with pytest.raises(RoutingError) as err:
        Router.from_rules(rules, catalog, source="rules.yml")
    assert message in str(err.value)
    assert "rules.yml" in str(err.value)


def test_bad_query_names_file_rule_and_position(catalog):
    with pytest.raises(QueryError) as err:
        parse_rules([["*", "default"], ["urgency=high|*", "x"]], catalog, source="r.yml")
    text = str(err.value)
    assert text.startswith('r.yml, rule 2 ["urgency=high|*", "x"], position 14: Invalid term: *')


def test_ruby_inspect():
    assert ruby_inspect(["a", None, True, 1, {"k": "v"}]) == '["a", nil, true, 1, {"k"=>"v"}]'
