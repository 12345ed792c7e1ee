"""Workloads from GitLab's structured Sidekiq logs: what the aggregates and the document say.

The logs are synthetic (tests/sidekiq_logs.py): every figure below is known exactly, so rates,
shares and failure probabilities are compared with tight tolerances; quantiles within one bin
of the sketch (100 per decade: 2.3 %).
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from sidekiq_logs import T0, Job, render, write

from simulator.sim import logs as logs_module
from simulator.sim.logs import LogError, build_workload, parse_time, read_logs
from simulator.sim.sketch import BATCH, LogSketch

HIGH = "AuthorizedProjectsWorker"  # urgency high in GitLab CE's catalog
LOW = "ProjectExportWorker"  # urgency low
BIN = 10 ** (1 / 100)  # one sketch bin: 2.33 %


def _document(catalog, paths, **kwargs):
    return build_workload(read_logs([str(p) for p in paths]), catalog, **kwargs).document


def _segment(document, name):
    return next(s for s in document["segments"] if s["name"] == name)


# --- timestamps and the sketch ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-06T10:00:00.123Z", T0 + 0.123),
    ("2024-05-06T10:00:00Z", T0),
    ("2024-05-06T10:00:00.123456+00:00", T0 + 0.123456),
    ("2024-05-06T12:00:00.5+02:00", T0 + 0.5),
    ("2024-05-06T10:00:00", T0),  # no zone: UTC
    (T0 + 0.25, T0 + 0.25),  # epoch seconds (Sidekiq 6/7 job fields)
    (int(T0 * 1000) + 250, T0 + 0.25),  # epoch milliseconds (Sidekiq 8)
    ("1714989600.5", T0 + 0.5),
    ("yesterday", None), (None, None), (True, None), (-1, None), (float("nan"), None),
    ("2024-05-06T10:00:00.12xZ", None),
])
def test_timestamps_iso_strings_and_epoch_numbers(value, expected):
    got = parse_time(value)
    assert got == pytest.approx(expected, abs=1e-6) if expected is not None else got is None


def test_sketch_quantiles_within_one_bin_and_exact_mean():
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.lognormal(-2, 1.5, 20_000), np.zeros(50)])
    sketch = LogSketch()
    for v in values:
        sketch.add(float(v))
    assert sketch.n == len(values)
    assert sketch.mean == pytest.approx(values.mean(), rel=1e-12)
    assert sketch.max == values.max()
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = np.quantile(values, q, method="inverted_cdf")
        assert exact / BIN <= sketch.quantile(q) <= exact * BIN, q
    slices = sketch.bin_means(100)
    assert len(slices) == 100 and slices == sorted(slices)
    assert np.mean(slices) == pytest.approx(values.mean(), rel=1e-9)
    for q in (0.25, 0.5, 0.75):  # the slices keep the shape, not only the mean
        assert np.quantile(slices, q) == pytest.approx(np.quantile(values, q), rel=0.05)


def test_sketch_merge_small_counts_and_bounded_memory():
    a, b, both = LogSketch(), LogSketch(), LogSketch()
    for i in range(3 * BATCH + 7):
        v = 0.001 * (i % 997) + 1e-7 * i
        (a if i % 2 else b).add(v)
        both.add(v)
    merged = LogSketch.merged([a, b])
    assert merged.counts == both.counts and merged.n == both.n
    assert merged.total == pytest.approx(both.total)
    # memory: the bins, not the values (and a buffer below BATCH)
    assert len(both.counts) < 400 and len(both._buf) < BATCH
    few = LogSketch()
    for v in (0.2, 0.4):
        few.add(v)
    assert few.bin_means(100) == pytest.approx([0.2, 0.4])
    assert LogSketch().quantile(0.5) is None and LogSketch().bin_means(5) == []


# --- rates, shares, failure probabilities ---------------------------------------------------


def test_hourly_rates_come_from_first_attempts_per_covered_hour(tmp_path, catalog):
    jobs = [Job(HIGH, T0 + 10 * i) for i in range(360)]  # hour 10: 0.1/s
    jobs += [Job(HIGH, T0 + 3600 + 5 * i) for i in range(720)]  # hour 11: 0.2/s
    # a retry's line just past noon: not an arrival; it closes hour 11 (covered to its end)
    jobs.append(Job(HIGH, T0 + 7230, latency=0, duration=0, retry_count=0))
    # a line from a host whose clock says 1970: its hour is too short to count, and the window
    # does not stretch back to it
    stray = Job(HIGH, 5.0, latency=0, duration=0, retry_count=0, start_line=False)
    path = write(tmp_path / "current", [*render(jobs), *render([stray])])
    doc = _document(catalog, [path])
    seg = _segment(doc, HIGH)
    covered = (3600 - 0.01) + 3600  # the first line is 10:00:00.010; hour 12 is too short
    assert doc["observed"]["window"]["covered_s"] == pytest.approx(covered, abs=1e-3)
    mean = 1080 / covered
    assert seg["rate_per_s"] == pytest.approx(mean, rel=1e-5)
    hourly = seg["shape"]["hourly"]
    assert hourly[10] == pytest.approx((360 / (3600 - 0.01)) / mean, abs=1e-4)
    assert hourly[11] == pytest.approx(0.2 / mean, abs=1e-4)
    assert [m for h, m in enumerate(hourly) if h not in (10, 11)] == [1.0] * 22
    assert doc["start_hour"] == 10.0
    assert doc["observed"]["window"]["first"] == "2024-05-06T10:00:00Z"
    assert doc["observed"]["window"]["hours_of_day"] == [10, 11]
    assert doc["observed"]["classes"][HIGH]["jobs"] == 1080


def test_failure_probability_counts_every_execution_and_skips_interrupted(tmp_path, catalog):
    jobs = [Job(LOW, T0 + i, status="fail" if i < 20 else "done") for i in range(100)]
    jobs += [Job(LOW, T0 + 200 + i, retry_count=0, status="fail" if i < 5 else "done")
             for i in range(20)]
    jobs += [Job(LOW, T0 + 300 + i, retry_count=1) for i in range(5)]
    # interrupted by a shutdown: pushed back, it runs again (and is counted then)
    jobs += [Job(LOW, T0 + 400, status="fail", error_class="Sidekiq::Shutdown")]
    doc = _document(catalog, [write(tmp_path / "current", render(jobs))])
    seg = _segment(doc, LOW)
    assert seg["failure_probability"] == pytest.approx(25 / 125)
    observed = doc["observed"]["classes"][LOW]
    assert (observed["jobs"], observed["executed"], observed["failed"],
            observed["interrupted"]) == (100, 125, 25, 1)


def test_cpu_share_is_cpu_over_duration_clipped(tmp_path, catalog):
    rng = np.random.default_rng(3)
    durations = rng.lognormal(-1, 1, 2000)
    jobs = [Job(HIGH, T0 + i, duration=float(d), cpu=0.3 * float(d))
            for i, d in enumerate(durations)]
    jobs += [Job(LOW, T0 + i, duration=0.5, cpu=0.9) for i in range(10)]  # cpu_s > duration_s
    jobs += [Job("EmailReceiverWorker", T0 + i) for i in range(10)]  # no cpu_s
    doc = _document(catalog, [write(tmp_path / "current", render(jobs))])
    classes = doc["observed"]["classes"]
    assert classes[HIGH]["cpu_share"] == pytest.approx(0.3, abs=1e-4)
    assert classes[LOW]["cpu_share"] == 1.0
    assert classes["EmailReceiverWorker"]["cpu_share"] is None
    assert classes[HIGH]["db_share"] == 0.0
    assert _segment(doc, HIGH)["service"]["cpu_share"] == classes[HIGH]["cpu_share"]
    assert "cpu_share" not in _segment(doc, "EmailReceiverWorker")["service"]


def test_empirical_service_keeps_the_mean_and_the_tail(tmp_path, catalog):
    rng = np.random.default_rng(5)
    durations = np.round(rng.lognormal(-1, 1.2, 5000), 6)
    jobs = [Job(HIGH, T0 + i * 0.5, duration=float(d)) for i, d in enumerate(durations)]
    doc = _document(catalog, [write(tmp_path / "current", render(jobs))])
    service = _segment(doc, HIGH)["service"]
    assert service["distribution"] == "empirical" and len(service["samples"]) == 100
    assert np.mean(service["samples"]) == pytest.approx(durations.mean(), rel=1e-5)
    execution = doc["observed"]["classes"][HIGH]["execution"]
    exact = np.quantile(durations, 0.99, method="inverted_cdf")
    assert exact / BIN <= execution["p99_s"] <= exact * BIN * 1.001


def test_lognormal_fit_where_it_fits_else_empirical(tmp_path, catalog):
    rng = np.random.default_rng(11)
    narrow = rng.lognormal(-1, 0.5, 3000)  # p99/mean ~ 2.8
    wide = np.concatenate([np.full(2970, 0.01), np.full(30, 20.0)])  # p99/mean ~ 97
    jobs = [Job(HIGH, T0 + i, duration=float(d)) for i, d in enumerate(narrow)]
    jobs += [Job(LOW, T0 + i, duration=float(d)) for i, d in enumerate(wide)]
    built = build_workload(read_logs([str(write(tmp_path / "current", render(jobs)))]),
                           catalog, service="lognormal")
    fitted = _segment(built.document, HIGH)["service"]
    assert fitted["distribution"] == "lognormal"
    assert fitted["mean_s"] == pytest.approx(narrow.mean(), rel=1e-5)
    assert fitted["p99_s"] == pytest.approx(np.quantile(narrow, 0.99), rel=0.03)
    assert _segment(built.document, LOW)["service"]["distribution"] == "empirical"
    assert any("lognormal does not fit" in n for n in built.notes)


def test_queueing_per_urgency_from_start_lines(tmp_path, catalog):
    rng = np.random.default_rng(9)
    high = rng.exponential(0.2, 4000)
    low = rng.exponential(5.0, 3000)
    jobs = [Job(HIGH, T0 + i, latency=float(x), latency_on_end=999.0)
            for i, x in enumerate(high)]
    jobs += [Job(LOW, T0 + i, latency=float(x)) for i, x in enumerate(low)]
    # a class whose log has no start lines: the latency comes from its done lines
    jobs += [Job("Cells::ClaimsVerificationWorker", T0 + i, latency=2.0, start_line=False)
             for i in range(50)]
    doc = _document(catalog, [write(tmp_path / "current", render(jobs))])
    by_urgency = doc["observed"]["by_urgency"]
    assert list(by_urgency) == ["high", "low", "throttled"]
    for urgency, values in (("high", np.round(high, 6)), ("low", np.round(low, 6))):
        queueing = by_urgency[urgency]["queueing"]
        assert queueing["samples"] == len(values)
        for key, q in (("p50_s", 0.5), ("p95_s", 0.95), ("p99_s", 0.99)):
            exact = np.quantile(values, q, method="inverted_cdf")
            assert exact / BIN * 0.999 <= queueing[key] <= exact * BIN * 1.001, (urgency, key)
    throttled = by_urgency["throttled"]["queueing"]
    assert throttled["samples"] == 50 and throttled["p50_s"] == pytest.approx(2.0, rel=0.025)
    assert by_urgency["high"]["jobs"] == 4000


# --- formats: epoch numbers, gzip, svlogd names, garbage ---------------------------------------


def _jobs():
    rng = np.random.default_rng(1)
    return ([Job(HIGH, T0 + float(t), duration=0.05, cpu=0.01)
             for t in np.sort(rng.uniform(0, 5400, 900))]
            + [Job(LOW, T0 + float(t), duration=2.0, status="fail" if i % 10 == 0 else "done")
               for i, t in enumerate(np.sort(rng.uniform(0, 5400, 300)))])


def _comparable(doc):
    """The document without what names the files, figures to 4 significant digits (ISO times
    have milliseconds, the epoch ones microseconds)."""
    def rounded(x):
        if isinstance(x, float):
            return float(f"{x:.4g}")
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x

    kept = {k: v for k, v in doc.items() if k not in ("observed", "description")}
    return rounded(kept), rounded(doc["observed"]["by_urgency"])


def test_epoch_timestamps_read_like_iso_ones(tmp_path, catalog):
    iso_doc = _document(catalog, [write(tmp_path / "iso", render(_jobs()))])
    epoch_doc = _document(catalog, [write(tmp_path / "epoch", render(_jobs(), epoch=True))])
    assert _comparable(iso_doc) == _comparable(epoch_doc)


def test_gzipped_rotated_files_read_like_one_plain_file(tmp_path, catalog):
    lines = render(_jobs())
    whole = _document(catalog, [write(tmp_path / "all", lines)])
    half = len(lines) // 2
    rotated = write(tmp_path / "@400000006638a7b6123456ab.s", lines[:half], gz=True)
    current = write(tmp_path / "current", lines[half:])
    split = _document(catalog, [current, rotated])  # any order
    assert _comparable(split) == _comparable(whole)
    files = {f["path"]: f for f in split["observed"]["files"]}
    assert files[str(rotated)]["gzip"] and not files[str(current)]["gzip"]
    assert files[str(rotated)]["job_lines"] == half


def test_lines_that_are_not_json_are_counted_and_skipped(tmp_path, catalog, monkeypatch):
    monkeypatch.setattr(logs_module, "MAX_LINE_BYTES", 4096)
    good = render([Job(HIGH, T0 + i) for i in range(10)])
    garbage: list[str | bytes] = [
        "Booting Sidekiq 7.3.2 with Sidekiq::RedisConnection::RedisAdapter options {}",
        '{"job_status":"done","class":"Cut',  # cut short
        '[1, 2, "job_status"]',  # JSON, but not an object: counted with the lines not JSON
        '{"severity":"INFO","message":"Starting processing, hit Ctrl-C to stop"}',
        "",
        b'\xff\xfe"job_status" \x00\x01',
        '{"job_status":"done","time":"2024-05-06T10:00:01Z"}',  # no class
        '{"job_status":"done","class":"' + HIGH + '","time":"yesterday"}',
        '{"job_status":"queued","class":"' + HIGH + '","time":"2024-05-06T10:00:01Z"}',
        '{"job_status":"done","class":"' + HIGH + '"} trailing words',
        '{"message":"' + "x" * 9000 + '"}',  # longer than MAX_LINE_BYTES
    ]
    prefixed = ["2024-05-06_10:00:00.12345 " + good[0],  # svlogd -tt
                "May 06 10:00:00 node sidekiq@0[812]: " + good[1]]  # journalctl
    path = write(tmp_path / "current", [*garbage, *prefixed, *good[2:]])
    logs = read_logs([str(path)])
    (report,) = logs.files
    assert report.lines == len(garbage) + len(good)
    assert report.job_lines == len(good)
    assert report.not_json == 5  # boot text, the cut one, the array, binary, trailing words
    assert report.other_json == 2  # the boot message, the unknown job_status
    assert report.unusable == 2 and report.too_long == 1
    assert logs.classes[HIGH].first_attempts == 10


def test_classes_outside_the_catalog_are_observed_not_simulated(tmp_path, catalog):
    jobs = [Job("Acme::CustomWorker", T0 + i) for i in range(30)] + [Job(HIGH, T0)]
    built = build_workload(read_logs([str(write(tmp_path / "current", render(jobs)))]),
                           catalog)
    assert [s["name"] for s in built.document["segments"]] == [HIGH]
    assert built.document["observed"]["classes"]["Acme::CustomWorker"]["in_catalog"] is False
    assert any("Acme::CustomWorker" in n and "--catalog" in n for n in built.notes)


# --- bad files -------------------------------------------------------------------------------


def test_bad_files_name_the_file_and_line(tmp_path):
    with pytest.raises(LogError) as missing:
        read_logs([str(tmp_path / "nope")])
    assert str(tmp_path / "nope") in str(missing.value)
    with pytest.raises(LogError, match="is a directory"):
        read_logs([str(tmp_path)])

    lines = render([Job(HIGH, T0 + i) for i in range(2000)])
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "@4000000066389c2a.s"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(LogError) as truncated:
        read_logs([str(cut)])
    text = str(truncated.value)
    assert str(cut) in text and "ends early" in text and "gzip -t" in text
    line = int(text.split(", line ")[1].split(":")[0])
    assert 1 < line < len(lines)

    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(data[:100] + bytes(b ^ 0x55 for b in data[100:400]) + data[400:])
    with pytest.raises(LogError, match=r"corrupt\.gz, line \d+"):
        read_logs([str(corrupt)])

    text_only = write(tmp_path / "boot.log", ["Booting Sidekiq", "{}", "more"])
    with pytest.raises(LogError) as nothing:
        read_logs([str(text_only)])
    assert f"{text_only}, line 1:" in str(nothing.value)
    assert "3 lines, 2 not JSON" in str(nothing.value)


def test_memory_does_not_grow_with_the_lines(tmp_path):
    """The aggregates hold bins and hours, never the lines: ten times the lines, same size."""
    def footprint(n):
        jobs = [Job(HIGH, T0 + i * 3600 / n, duration=0.001 + (i % 500) * 0.002,
                    latency=(i % 300) * 0.01) for i in range(n)]
        logs = read_logs([str(write(tmp_path / f"l{n}", render(jobs)))])
        stats = logs.classes[HIGH]
        return (len(stats.duration.counts), len(stats.latency_start.counts),
                len(stats.arrivals), len(logs.hours))

    small, large = footprint(1000), footprint(10_000)
    assert large[0] <= small[0] + 5 and large[1] <= small[1] + 5
    assert large[2] == small[2] == 1 and large[3] <= 2 and small[3] <= 2


def test_demand_service_leaves_out_the_time_spent_waiting_for_the_gvl(tmp_path, catalog):
    """Jobs of 10 ms CPU and 40 ms of logged waiting that took 200 ms (they waited for the GVL):
    --service-time demand gives a 50 ms service with cpu_share 0.2; the default keeps 200 ms."""
    jobs = [Job(LOW, T0 + i, duration=0.2, cpu=0.01,
                extra={"db_duration_s": 0.015, "external_http_duration_s": 0.025})
            for i in range(500)]
    jobs += [Job(HIGH, T0 + i, duration=0.1) for i in range(50)]  # no cpu_s: keeps duration
    path = write(tmp_path / "current", render(jobs))
    built = build_workload(read_logs([str(path)]), catalog, service_time="demand")
    seg = _segment(built.document, LOW)
    assert np.mean(seg["service"]["samples"]) == pytest.approx(0.05, rel=1e-3)
    assert seg["service"]["cpu_share"] == pytest.approx(0.2, abs=1e-3)
    assert built.document["observed"]["classes"][LOW]["external_http_share"] == pytest.approx(
        0.125, abs=1e-3)
    assert np.mean(_segment(built.document, HIGH)["service"]["samples"]) == pytest.approx(0.1)
    assert any("without cpu_s keep their logged durations" in n and HIGH in n
               for n in built.notes)
    default = _segment(_document(catalog, [path]), LOW)
    assert np.mean(default["service"]["samples"]) == pytest.approx(0.2, rel=1e-3)
    assert default["service"]["cpu_share"] == pytest.approx(0.05, abs=1e-3)


def test_a_short_run_across_a_clock_hour_keeps_both_parts(tmp_path, catalog):
    """A 90-second test run from 10:59:15 to 11:00:45: both 45-second parts count (a log of
    less than an hour in all has no hour it only touches), and the rate is over the span of
    the arrivals, not diluted by the lines of the last jobs draining."""
    start = T0 + 3600 - 45
    jobs = [Job(LOW, start + i * 0.5, latency=0.0, duration=0.0) for i in range(180)]
    doc = _document(catalog, [write(tmp_path / "current", render(jobs))])
    assert doc["observed"]["window"]["covered_s"] == pytest.approx(89.5, abs=0.01)
    assert _segment(doc, LOW)["rate_per_s"] == pytest.approx(180 / 89.5, rel=1e-4)


def test_a_short_run_rates_over_the_arrivals_not_the_drain(tmp_path, catalog):
    """60 s of arrivals at 2/s whose last jobs finish 30 s later: 2/s, not 120 / 90."""
    jobs = [Job(LOW, T0 + 100 + i * 0.5, latency=0.0, duration=0.0) for i in range(120)]
    jobs.append(Job(LOW, T0 + 159.5, latency=30.0, duration=0.0))  # drained at the end
    built = build_workload(read_logs([str(write(tmp_path / "current", render(jobs)))]), catalog)
    assert _segment(built.document, LOW)["rate_per_s"] == pytest.approx(121 / 59.5, rel=1e-4)
    assert any("from the first to the last arrival" in n for n in built.notes)
