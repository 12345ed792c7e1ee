"""fleetsim's pictures say what they show (simulator.report.plots): each latency panel gives
its urgency's verdict as the summary does, with the target and the windows that missed it;
titles count the series drawn; every process has its own colour; legends fit the picture."""

from __future__ import annotations

import math
import re

import pytest
from matplotlib.patches import Rectangle

from simulator.report.plots import (
    MAX_BACKLOG_QUEUES,
    backlog_figure,
    distinct_styles,
    latency_figure,
    redis_figure,
    utilisation_figure,
    write_plots,
)
from simulator.report.summary import summarize
from simulator.sim.engine import RunResult, simulate
from simulator.sim.model import (
    FleetEvent,
    JobClass,
    Process,
    Scenario,
    ServiceTime,
)
from simulator.sim.shares import floor_ratio


def _run(*, failover: bool, queues: int = 2, processes: int = 2,
         duration: float = 900.0) -> RunResult:
    """High and low urgency on their own queues (and ``queues`` - 2 more low ones), throttled
    work, ``processes`` processes; with ``failover`` Redis is down from 300 to 390 s and the
    producers push again afterwards: high urgency misses its target."""
    names = ["qh", "ql"] + [f"extra{i}" for i in range(queues - 2)]
    classes = [JobClass("HighWorker", "high", 8.0, ServiceTime("exponential", 0.2)),
               JobClass("LowWorker", "low", 4.0, ServiceTime("exponential", 0.5),
                        failure_probability=0.05),
               JobClass("SlowWorker", "throttled", 0.2, ServiceTime("exponential", 2.0))]
    routes = {"HighWorker": ("qh", None), "LowWorker": ("ql", None), "SlowWorker": ("ql", None)}
    for i, q in enumerate(names[2:]):
        classes.append(JobClass(f"Extra{i}Worker", "low", 0.5, ServiceTime("exponential", 1.0)))
        routes[f"Extra{i}Worker"] = (q, None)
    procs = [Process.placed(f"p{p}", f"n{p % 3}", tuple(names), 6) for p in range(processes)]
    events = (FleetEvent(300.0, "redis_failover", downtime_s=90.0, producer_retry=True),
              FleetEvent(600.0, "restart", node="n0", timeout_s=5.0, boot_s=5.0)) \
        if failover else ()
    return simulate(Scenario(classes=tuple(classes), processes=tuple(procs), routes=routes,
                             events=events), duration=duration, seed=2)


@pytest.fixture(scope="module")
def calm() -> RunResult:
    return _run(failover=False)


@pytest.fixture(scope="module")
def outage() -> RunResult:
    return _run(failover=True)


def _spans(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


@pytest.mark.parametrize("which", ["calm", "outage"])
def test_each_latency_panel_gives_its_urgencys_verdict_as_the_summary_does(which, request):
    run = request.getfixturevalue(which)
    summary = summarize(run)
    fig = latency_figure(run)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert len(titles) == len(summary.by_urgency) == 3
    apdex = run.recorder.targets.queueing_apdex
    for title, (name, u) in zip(titles, summary.by_urgency.items(), strict=True):
        assert title.startswith(f"{name} urgency: ")
        if u.queueing_target_s is None:
            assert "no queueing target" in title
            continue
        met = u.within_queueing_target >= apdex
        assert ("target met" in title) == met and ("target MISSED" in title) == (not met)
        assert f"{floor_ratio(u.within_queueing_target, 4):.2%}" in title
        assert f"of {u.jobs:,.0f} jobs" in title
    if which == "outage":
        assert "MISSED" in titles[0] and "windows under target for" in titles[0]
    else:
        assert not any("MISSED" in t or "windows under" in t for t in titles)


def test_the_target_is_a_line_and_the_missed_windows_are_shaded(outage, calm):
    fig = latency_figure(outage)
    high, _, throttled = fig.axes
    labels = [line.get_label() for line in high.lines]
    assert labels[:3] == ["p95", "p99.9 (SLO: 99.9% within target)", "target 10 s"]
    target = high.lines[2]
    assert set(target.get_ydata()) == {10.0}  # seconds: the waits here are well under 5 min
    shaded = [p for p in _spans(high) if str(p.get_label()).startswith("window under")]
    assert len(shaded) == 1  # one legend entry for all the missed windows ...
    missed = [p for p in _spans(high) if p.get_facecolor() == shaded[0].get_facecolor()]
    minutes = float(re.search(r"windows under target for ([\d.]+) min",
                              high.get_title(loc="left")).group(1))
    # ... and one span per missed bin: the title's time is their total.
    bin_min = outage.recorder.bin_width / 60
    assert len(missed) * bin_min == pytest.approx(minutes, rel=0.01)
    # The waits drawn reach above the target during the outage, and the downtime is shaded.
    assert max(high.lines[1].get_ydata()) > 10.0
    assert any(p.get_label() == "Redis default down" for p in _spans(high))
    # No target for throttled work: no target line, and its quantile is not called the SLO's.
    assert [line.get_label() for line in throttled.lines][:2] == ["p95", "p99.9"]
    assert not any(line.get_label().startswith("target") for line in throttled.lines)
    calm_high = latency_figure(calm).axes[0]
    assert not _spans(calm_high) and max(calm_high.lines[1].get_ydata()) < 10.0


def test_the_rolling_quantile_never_exceeds_the_longest_wait(outage):
    rec = outage.recorder
    high = latency_figure(outage).axes[0]
    assert max(high.lines[1].get_ydata()) <= rec.wmax_bu[:, 0].max() + 1e-9


@pytest.mark.parametrize("queues", [2, 12])
def test_the_backlog_title_counts_the_queues_it_draws(queues):
    run = _run(failover=True, queues=queues, processes=1)
    ax = backlog_figure(run).axes[0]
    drawn = [line for line in ax.lines if "(peak " in line.get_label()]
    title = ax.get_title(loc="left")
    backlogged = int((run.recorder.backlog_matrix().max(axis=0) > 0).sum())
    assert len(drawn) == min(backlogged, MAX_BACKLOG_QUEUES)
    if backlogged > MAX_BACKLOG_QUEUES:
        assert f"the {len(drawn)} largest of the {backlogged} queues" in title
    else:
        count = "the only queue" if len(drawn) == 1 else f"the {len(drawn)} queues"
        assert f"Backlog: {count} that had jobs waiting" in title
    # Largest peak first, each line labelled with its own peak.
    peaks = [int(re.search(r"\(peak ([\d,]+)\)", line.get_label()).group(1).replace(",", ""))
             for line in drawn]
    assert peaks == sorted(peaks, reverse=True)
    assert [max(line.get_ydata()) for line in drawn] == peaks
    assert ("(and the retry set)" in title) == any(
        line.get_label().startswith("retry set") for line in ax.lines)


def test_a_run_without_backlog_says_so():
    quiet = simulate(Scenario(classes=(JobClass("AWorker", "high", 0.01,
                                                ServiceTime("deterministic", 0.1)),),
                              processes=(Process.placed("p", "n", ("a",), 5),),
                              routes={"AWorker": ("a", None)}), duration=300, seed=1)
    ax = backlog_figure(quiet).axes[0]
    assert ax.get_title(loc="left") == "Backlog: no queue had jobs waiting"
    assert not ax.lines and "no backlog" in ax.texts[0].get_text()


def test_every_process_has_its_own_colour_and_the_title_counts_them():
    run = _run(failover=False, processes=23, duration=120.0)
    ax = utilisation_figure(run).axes[0]
    drawn = [line for line in ax.lines if "thr)" in line.get_label()]
    assert len(drawn) == 23 and "of the 23 Sidekiq processes" in ax.get_title(loc="left")
    styles = {(line.get_color(), line.get_linestyle()) for line in drawn}
    assert len(styles) == 23
    # The first ten are ten different colours (tab20's strong ones), solid.
    assert len({line.get_color() for line in drawn[:10]}) == 10
    assert {line.get_linestyle() for line in drawn[:20]} == {"-"}
    assert len(set(distinct_styles(80))) == 80


def test_fleet_events_are_marked_and_named(outage):
    ax = latency_figure(outage).axes[0]
    assert [t.get_text() for t in ax.texts] == ["restart"]
    assert redis_figure(outage).axes[0].get_title(loc="left").startswith(
        "Redis CPU from BRPOP traffic, 1 shard")


@pytest.mark.parametrize("make", [latency_figure, backlog_figure, utilisation_figure,
                                  redis_figure])
def test_legends_fit_inside_the_picture(make, outage):
    fig = make(outage)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    for legend in legends:
        e = legend.get_window_extent(renderer)
        assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1, (e, box)
        assert box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1, (e, box)


def test_write_plots_writes_the_four_pictures(outage, tmp_path):
    paths = write_plots(outage, tmp_path / "plots")
    assert [p.name for p in paths] == ["latency.png", "backlog.png", "utilisation.png",
                                       "redis.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    assert math.isfinite(outage.duration)
