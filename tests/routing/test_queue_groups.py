from __future__ import annotations

import pytest

from simulator.errors import QueryError, QueueGroupError
from simulator.routing.queue_groups import expand_queue_groups, process_concurrency


@pytest.mark.parametrize(
    ("queues", "lo", "hi", "fixed", "version", "expected"),
    [
        (1, 0, 20, None, "16.11", 2),  # GitLab docs: 1 queue, min 0, max 20 -> 2
        (30, 0, 20, None, "16.11", 20),
        (3, 10, 20, None, "16.8", 10),
        (3, 0, 0, None, "16.8", 4),  # max 0: N
        (3, 30, 20, None, "15.0", 20),  # min above max: lo = min(min, hi)
        (3, None, 50, None, "16.11", 4),
        (3, 5, None, None, "16.11", 5),  # no max: Omnibus' 20, and lo = min(min, hi)
        (3, None, None, None, "16.11", 4),  # before 17.0, nothing set: N within [0, 20]
        (30, None, None, None, "13.0", 20),
        (3, None, None, None, "17.0", 20),  # GitLab 17 default
        (3, None, None, None, None, 20),  # the current release: 17's model
        (3, 0, 20, 7, "16.9", 7),  # positive concurrency overrides (16.9+)
        (3, 0, 20, 7, "16.8", 4),  # ... not before: it did not exist (refused by expand)
        (3, None, None, 7, "17.0", 7),
    ],
)
def test_concurrency_models(queues, lo, hi, fixed, version, expected):
    got = process_concurrency(queues, min_concurrency=lo, max_concurrency=hi, concurrency=fixed,
                              gitlab_version=version)
    assert got == expected


def test_names_namespaces_star_and_weights(catalog):
    procs = expand_queue_groups(
        ["default,mailers", "cronjob", "*", "urgent,urgent,default"],
        catalog,
        max_concurrency=50,
        min_concurrency=0,
        gitlab_version="16.11",
    )
    assert procs[0].queues == ("default", "mailers") and not procs[0].strict
    assert procs[0].concurrency == 3
    cron = procs[1].queues
    assert cron[0] == "cronjob" and all(q.startswith("cronjob:") for q in cron[1:])
    assert len(cron) == 1 + sum(1 for w in catalog if w.name.startswith("cronjob:"))
    assert len(procs[2].queues) == 574 and procs[2].concurrency == 50
    assert procs[3].weights == {"urgent": 2, "default": 1} and not procs[3].strict
    assert procs[3].sidekiq_args() == ["-c", "4", "-q", "urgent,2", "-q", "default,1"]
    # GitLab's sidekiq-cluster: -q NAME,COUNT for every queue (weighted random order).
    assert procs[0].sidekiq_args() == ["-c", "3", "-q", "default,1", "-q", "mailers,1"]


def test_fetch_order_strict_only_when_asked_and_no_queue_repeated(catalog):
    weighted = expand_queue_groups(["default,mailers"], catalog)
    assert weighted[0].fetch_order == "weighted" and not weighted[0].strict
    assert weighted[0].to_dict()["fetch_order"] == "weighted"
    strict = expand_queue_groups(["default,mailers", "urgent,urgent,default"], catalog,
                                 fetch_order="strict")
    assert strict[0].strict and strict[0].to_dict()["fetch_order"] == "strict"
    assert strict[0].sidekiq_args()[2:] == ["-q", "default", "-q", "mailers"]
    # A weight above 1 makes Sidekiq shuffle whatever was asked for.
    assert not strict[1].strict and strict[1].sidekiq_args()[2:] == [
        "-q", "urgent,2", "-q", "default,1"]
    with pytest.raises(QueueGroupError, match="weighted or strict"):
        expand_queue_groups(["default"], catalog, fetch_order="fifo")


def test_selector_selects_generated_names(catalog):
    (proc,) = expand_queue_groups(["urgency=high&resource_boundary=cpu"], catalog, selector=True,
                                  gitlab_version="16.11")
    assert "post_receive" in proc.queues and len(proc.queues) == 22
    (everything,) = expand_queue_groups(["*"], catalog, selector=True, gitlab_version="15.9")
    assert len(everything.queues) == 574


def test_negate(catalog):
    (proc,) = expand_queue_groups(["default,mailers"], catalog, negate=True,
                                  gitlab_version="16.11")
    assert "default" not in proc.queues and "mailers" not in proc.queues
    assert len(proc.queues) == 572
    (sel,) = expand_queue_groups(["urgency!=high"], catalog, selector=True, negate=True,
                                 gitlab_version="16.11")
    assert len(sel.queues) == 51


@pytest.mark.parametrize(
    ("groups", "kwargs", "error", "fragment"),
    [
        ("default", {}, QueueGroupError, "must be a list"),
        ([""], {}, QueueGroupError, "non-empty string"),
        (["a,,b"], {}, QueueGroupError, "empty queue name"),
        (["worker_name=Nope"], {"selector": True, "gitlab_version": "16.0"}, QueryError,
         "no worker"),
        (["*"], {"negate": True, "gitlab_version": "16.0"}, QueueGroupError, "names no queue"),
        (["default"], {"min_concurrency": -1}, QueueGroupError, "sidekiq_min_concurrency"),
        (["default"], {"concurrency": "20"}, QueueGroupError, "sidekiq_concurrency"),
    ],
)
def test_errors_name_the_group(groups, kwargs, error, fragment, catalog):
    with pytest.raises(error) as err:
        expand_queue_groups(groups, catalog, **kwargs)
    assert fragment in str(err.value)


def test_selector_that_matches_nothing_in_compat_mode_is_an_error(catalog):
    with pytest.raises(QueueGroupError, match="names no queue"):
        expand_queue_groups(["worker_name=Nope"], catalog, selector=True, strict=False,
                            gitlab_version="16.11")
