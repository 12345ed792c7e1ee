"""The fidelity comparison's arithmetic: what is measured from log lines, the targets."""

from __future__ import annotations

import json

import pytest

from simulator.sim.fidelity import Row, compare, markdown_table, measure, predicted

T0 = 1_800_000_000.0


def _line(status, t, queue="fidelity", latency=None):
    data = {"severity": "INFO", "time": t, "class": "FidelityWorker", "queue": queue,
            "job_status": status}
    if latency is not None:
        data["scheduling_latency_s"] = latency
    return "Dec 02 host sidekiq[1]: " + json.dumps(data)


def test_measure_counts_the_window_only():
    lines = [_line("start", T0 - 1, latency=9.0),  # before the window
             _line("start", T0 + 1, latency=0.1), _line("done", T0 + 2),
             _line("start", T0 + 3, latency=0.3), _line("fail", T0 + 4),
             _line("start", T0 + 5, queue="other", latency=5.0),
             _line("start", T0 + 11, latency=7.0), _line("done", T0 + 12),  # after it
             "not json", '{"job_status": "start"']
    got = measure(lines, ["fidelity"], T0, 10.0)["fidelity"]
    assert (got.started, got.finished) == (2, 2)
    figures = got.figures(10.0)
    assert figures["throughput_per_s"] == 0.2
    assert figures["p50_s"] == pytest.approx(0.2)
    assert figures["p99_s"] == pytest.approx(0.298)


def test_predicted_is_the_mean_over_seeds():
    runs = [{"duration_s": 10.0, "by_queue": {"q": {"executed": e, "queueing": {
        "p50_s": p, "p95_s": 2 * p, "p99_s": 3 * p}}}} for e, p in ((100, 0.1), (120, 0.3))]
    got = predicted(runs, "q")
    assert got == pytest.approx({"throughput_per_s": 11.0, "p50_s": 0.2, "p95_s": 0.4,
                                 "p99_s": 0.6})
    with pytest.raises(KeyError, match="no process listens"):
        predicted(runs, "missing")


@pytest.mark.parametrize(("figure", "measured", "predicted_", "within"), [
    ("throughput_per_s", 100.0, 109.0, True),
    ("throughput_per_s", 100.0, 111.0, False),
    ("p95_s", 1.0, 1.19, True),
    ("p95_s", 1.0, 0.79, False),
    ("p99_s", 0.2, 0.24, True),  # both under 250 ms: 40 ms apart is within 50 ms
    ("p99_s", 0.2, 0.26, False),  # 260 ms is over 250 ms: the relative target, +30 %
    ("p99_s", 0.01, 0.055, True),
    ("p99_s", 0.01, 0.065, False),
    ("p95_s", None, 0.1, False),
])
def test_targets(figure, measured, predicted_, within):
    assert Row("w", "q", figure, measured, predicted_, True).within is within


def test_p50_is_shown_not_judged_and_the_table_marks_misses():
    rows = compare("io", "fidelity", {"throughput_per_s": 10.0, "p50_s": 0.001, "p95_s": 1.0,
                                      "p99_s": 2.0},
                   {"throughput_per_s": 10.5, "p50_s": 0.5, "p95_s": 1.5, "p99_s": 2.1})
    assert [r.within for r in rows] == [True, True, False, True]
    table = markdown_table(rows)
    assert "| io | fidelity | p95 | 1000 ms | 1500 ms | +50.0% |" in table
    assert table.count("**outside**") == 1


def test_a_known_gap_is_shown_and_marked_not_judged():
    rows = compare("cpu", "q", {"throughput_per_s": 10.0, "p50_s": 0.005, "p95_s": 0.08,
                                "p99_s": 0.1},
                   {"throughput_per_s": 10.1, "p50_s": 0.001, "p95_s": 0.002, "p99_s": 0.002},
                   known_gaps=("p95_s", "p99_s"))
    assert [(r.judged, r.known_gap, r.within) for r in rows] == [
        (True, False, True), (False, False, True), (False, True, True), (False, True, True)]
    table = markdown_table(rows)
    assert table.count("| known gap |") == 2 and "**outside**" not in table
