"""The worker matching query: GitLab's answers, GitLab's errors, and strict-mode diagnostics."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import QueryError
from simulator.routing.query import parse_query


def ruby_split(text: str, sep: str) -> list[str]:
    pieces = text.split(sep)
    while pieces and pieces[-1] == "":
        pieces.pop()
    return pieces


SYMBOLS = {"feature_category", "resource_boundary", "tags", "urgency", "queue_namespace"}
KNOWN = SYMBOLS | {"name", "worker_name", "has_external_dependencies"}


def oracle(query: str, raw_catalog: list[dict]) -> list[str] | str:
    """A literal transcription of GitLab's WorkerMatcher over the raw YAML (symbols as ':x')."""
    if query.strip() == "*":
        return sorted(e[":worker_name"] or e[":name"] for e in raw_catalog)
    clauses = []
    for or_piece in ruby_split(query, "|"):
        terms = []
        for term in ruby_split(or_piece, "&"):
            m = re.search(r"^(\w+)(!?=)([\w:,]+)", term, re.M | re.A)
            if not m:
                return f"Invalid term: {term}"
            lhs, op, rhs = m.groups()
            if lhs not in KNOWN:
                return f"Unknown predicate: {lhs}"
            values = ruby_split(rhs, ",")
            if lhs in SYMBOLS:
                values = {":" + v for v in values}
            elif lhs == "has_external_dependencies":
                values = {v == "true" for v in values}
            else:
                values = set(values)
            terms.append((":" + lhs, op, values))
        clauses.append(terms)

    def attr(entry, key):
        value = entry[key]
        if value is None:
            return set()
        return set(value) if isinstance(value, list) else {value}

    def hit(entry):
        return any(
            all((not values.isdisjoint(attr(entry, key))) == (op == "=") for key, op, values in c)
            for c in clauses
        )

    return sorted(e[":worker_name"] or e[":name"] for e in raw_catalog if hit(e))


def engine(query: str, catalog, *, strict: bool) -> list[str] | str:
    try:
        q = parse_query(query, strict=strict, catalog=catalog)
    except QueryError as exc:
        return exc.message.split("\n")[0]
    return sorted(w.key for w in q.select(catalog.workers))


# Examples from GitLab's "Processing specific job classes" / queue selector documentation.
DOCUMENTED = [
    "resource_boundary=cpu",
    "resource_boundary=memory",
    "urgency=high",
    "urgency=high|urgency=low",
    "feature_category=continuous_integration",
    "feature_category=continuous_integration,pages",
    "feature_category!=continuous_integration",
    "has_external_dependencies=true",
    "has_external_dependencies=true|feature_category=webhooks",
    "resource_boundary!=cpu&urgency=high",
    "feature_category=database,gitaly,global_search&urgency=throttled",
    "feature_category=importers",
    "worker_name=AuthorizedProjectsWorker",
    "name=post_receive",
    "queue_namespace=cronjob",
    "tags=cronjob_child",
    "urgency=high&resource_boundary=cpu|feature_category=pages",
    "feature_category=source_code_management&urgency!=high",
    "*",
    " * ",
]

MISREAD = [
    "urgency=high!",
    "|urgency=high",
    "urgency=high||urgency=low",
    "&",
    "",
    "|",
    "urgency=high&",
    "urgency=high,",
    "urgency=,high",
    "urgency=high ",
    "has_external_dependencies=yes",
    "feature_category=add-on_provisioning",
    "urgency=hihg",
    "worker_name=NoSuchWorker",
    "bogus\nurgency=high",
]

REJECTED = [
    "&urgency=high",
    "urgency=high|*",
    " urgency=high",
    "a=b||c=d",
    "urgency==high",
    "Urgency=high",
    "weight=1",
    "idempotent=true",
    "urgency",
]


@pytest.mark.parametrize("query", DOCUMENTED)
def test_documented_queries_give_gitlabs_answer_in_both_modes(query, catalog, raw_catalog):
    expected = oracle(query, raw_catalog)
    assert isinstance(expected, list) and expected
    assert engine(query, catalog, strict=False) == expected
    assert engine(query, catalog, strict=True) == expected


@pytest.mark.parametrize("query", MISREAD)
def test_misread_queries_are_gitlabs_answer_in_compat_and_rejected_in_strict(
    query, catalog, raw_catalog
):
    assert engine(query, catalog, strict=False) == oracle(query, raw_catalog)
    with pytest.raises(QueryError) as err:
        parse_query(query, strict=True, catalog=catalog)
    assert err.value.position is not None and err.value.position >= 1
    assert "--gitlab-compat" in str(err.value)


@pytest.mark.parametrize("query", REJECTED)
def test_gitlab_errors_are_reproduced_in_both_modes(query, catalog, raw_catalog):
    expected = oracle(query, raw_catalog)
    assert isinstance(expected, str)
    assert engine(query, catalog, strict=False) == expected
    assert engine(query, catalog, strict=True) == expected


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("|urgency=high", 574),
        ("a=b||c=d", None),
        ("urgency=high||urgency=low", 574),
        ("&", 574),
        ("", 0),
        ("|", 0),
        ("has_external_dependencies=yes", 490),
    ],
)
def test_semantics_doc_surprises(query, count, catalog):
    if count is None:
        with pytest.raises(QueryError, match="Unknown predicate: a"):
            parse_query(query, strict=False)
        return
    assert len(parse_query(query, strict=False).select(catalog.workers)) == count


def test_truncation_is_reported_with_position_and_gitlabs_reading(catalog):
    with pytest.raises(QueryError) as err:
        parse_query("urgency=high!", catalog=catalog)
    assert err.value.position == 13
    assert "read as 'urgency=high'" in str(err.value)
    compat = parse_query("urgency=high!", strict=False)
    assert [n.position for n in compat.notes] == [13]


def test_empty_alternative_is_reported_as_matching_everything():
    with pytest.raises(QueryError, match="EVERY worker") as err:
        parse_query("a=b||c=d".replace("a=b", "urgency=high").replace("c=d", "urgency=low"))
    assert err.value.position == 14


def test_unknown_value_needs_the_catalog(catalog):
    parse_query("urgency=hihg")  # no catalog: nothing to compare with
    with pytest.raises(QueryError, match=r"no worker in .* has urgency 'hihg'"):
        parse_query("urgency=hihg", catalog=catalog)
    with pytest.raises(QueryError, match="matches EVERY worker"):
        parse_query("urgency!=hihg", catalog=catalog)


def test_mailers_string_urgency_is_not_matched_like_gitlab(catalog):
    keys = {w.key for w in parse_query("urgency=low").select(catalog.workers)}
    assert "ActionMailer::MailDeliveryJob" not in keys
    assert "ActionMailer::MailDeliveryJob" in {
        w.key for w in parse_query("feature_category=not_owned").select(catalog.workers)
    }


def test_non_string_query_is_rejected():
    with pytest.raises(QueryError, match="must be a string"):
        parse_query(["urgency=high"])  # type: ignore[arg-type]


# --- property: strict and compat agree on every query strict accepts -------------------------

PREDICATE_VALUES = {
    "urgency": ["high", "low", "throttled"],
    "resource_boundary": ["cpu", "memory", "unknown"],
    "feature_category": ["importers", "webhooks", "pages", "gitaly", "not_owned"],
    "has_external_dependencies": ["true", "false"],
    "queue_namespace": ["cronjob", "github_importer"],
    "tags": ["cronjob_child", "clickhouse"],
    "worker_name": ["PostReceive", "AuthorizedProjectsWorker"],
    "name": ["post_receive", "default", "mailers"],
}
JUNK = ["", "!", "-", " ", ",", "*", "x"]

term = st.builds(
    lambda p, neg, vals, junk: f"{p}{'!=' if neg else '='}{','.join(vals)}{junk}",
    st.sampled_from(sorted(PREDICATE_VALUES)),
    st.booleans(),
    st.sampled_from(sorted(PREDICATE_VALUES)).flatmap(
        lambda p: st.lists(st.sampled_from(PREDICATE_VALUES[p]), min_size=1, max_size=3)
    ),
    st.sampled_from(JUNK),
)
conjunction = st.lists(st.one_of(term, st.just("")), min_size=1, max_size=3).map("&".join)
query_strategy = st.lists(st.one_of(conjunction, st.just("")), min_size=1, max_size=3).map("|".join)


@settings(max_examples=400, deadline=None)
@given(query=query_strategy)
def test_strict_and_compat_agree_and_compat_is_gitlab(query, catalog, raw_catalog):
    compat = engine(query, catalog, strict=False)
    assert compat == oracle(query, raw_catalog)
    try:
        strict = parse_query(query, strict=True, catalog=catalog)
    except QueryError:
        return  # a footgun or a GitLab error: strict refuses it
    assert sorted(w.key for w in strict.select(catalog.workers)) == compat
    assert not parse_query(query, strict=False, catalog=catalog).notes
