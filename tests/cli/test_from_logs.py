"""``fleetsim workload from-logs`` end to end: the file it writes loads and simulates; bad input
is one message naming the file (and line), exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from sidekiq_logs import T0, Job, render, write

from simulator.cli.main import main
from simulator.sim.workload import load_workload

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "inventories" / "example")
SAMPLE_CATALOG = str(ROOT / "apps" / "sample" / "all_queues.yml")


def _jobs() -> list[Job]:
    rng = np.random.default_rng(2)
    jobs = [Job("PostReceive", T0 + float(t), latency=float(rng.exponential(0.05)),
                duration=float(rng.lognormal(-2, 0.8)), cpu=0.02)
            for t in np.sort(rng.uniform(0, 7200, 1500))]
    jobs += [Job("ProjectExportWorker", T0 + float(t), duration=float(rng.lognormal(1, 0.5)),
                 status="fail" if i % 20 == 0 else "done")
             for i, t in enumerate(np.sort(rng.uniform(0, 7200, 100)))]
    jobs += [Job("ActionMailer::MailDeliveryJob", T0 + float(t), duration=0.03)
             for t in np.sort(rng.uniform(0, 7200, 400))]
    return jobs


_JOBS = _jobs()


def _logs(tmp_path: Path) -> list[str]:
    lines = ["Booting Sidekiq 7.3.2", *render(_JOBS), "garbage {"]
    half = len(lines) // 2
    return [str(write(tmp_path / "@4000000066389c2a1d2b3c4d.s", lines[:half], gz=True)),
            str(write(tmp_path / "current", lines[half:]))]


def test_the_workload_loads_and_simulates(tmp_path, capsys):
    out = tmp_path / "from-logs.yml"
    assert main(["workload", "from-logs", *_logs(tmp_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 not JSON" in printed and "3 segment(s)" in printed
    assert "simulate it: fleetsim simulate -i INVENTORY" in printed

    workload = load_workload(out)
    assert [s.name for s in workload.segments] == [
        "PostReceive", "ActionMailer::MailDeliveryJob", "ProjectExportWorker"]
    post = workload.segments[0]
    assert post.service.kind == "empirical" and post.shape is not None
    # cpu_s / duration_s into the CPU model; the mailer's lines have no cpu_s: the default
    durations = [j.duration for j in _JOBS if j.cls == "PostReceive"]
    assert post.cpu_share == pytest.approx(0.02 * len(durations) / sum(durations), rel=1e-3)
    assert workload.segments[1].cpu_share is None
    assert post.rate_per_s == pytest.approx(1500 / 7200, rel=0.01)
    assert workload.segments[2].failure_probability == pytest.approx(0.05)
    assert 10.0 <= workload.start_hour < 10.1  # where the first line is
    document = yaml.safe_load(out.read_text())
    assert document["observed"]["by_urgency"]["high"]["jobs"] == 1500
    assert document["observed"]["classes"]["PostReceive"]["cpu_share"] > 0

    rc = main(["simulate", "-i", INVENTORY, "--workload", str(out), "--duration", "20m",
               "--json"])
    result = json.loads(capsys.readouterr().out)
    assert rc in (0, 1)
    arrived = result["counters"]["arrived"]
    # about 0.21 + 0.056 + 0.014 jobs/s (less at the start of hour 10, a little) for 20 minutes
    assert 250 < arrived < 450
    assert result["by_urgency"]["high"]["jobs"] > 0


def test_lognormal_service_and_the_sample_apps_catalog(tmp_path, capsys):
    jobs = [Job("ChecksumWorker", T0 + i * 0.5, duration=0.03 + 0.001 * (i % 7), cpu=0.028)
            for i in range(2000)]
    jobs += [Job("UrgentNotificationWorker", T0 + i, duration=0.002) for i in range(500)]
    log = write(tmp_path / "sidekiq.log", render(jobs))
    out = tmp_path / "sample.yml"
    assert main(["workload", "from-logs", str(log), "-o", str(out), "--catalog", SAMPLE_CATALOG,
                 "--service", "lognormal", "--samples", "20"]) == 0
    capsys.readouterr()
    segments = {s.name: s for s in load_workload(out).segments}
    assert set(segments) == {"ChecksumWorker", "UrgentNotificationWorker"}
    assert segments["ChecksumWorker"].service.kind == "lognormal"
    assert segments["UrgentNotificationWorker"].service.kind == "empirical"  # all alike
    assert segments["ChecksumWorker"].cpu_share == pytest.approx(0.028 / 0.033, abs=0.01)
    classes = yaml.safe_load(out.read_text())["observed"]["classes"]
    assert classes["ChecksumWorker"]["cpu_share"] == pytest.approx(0.028 / 0.033, abs=0.01)


def test_the_sample_apps_own_lines_are_read(tmp_path, capsys):
    """Lines as apps/sample/lib/sample_app/json_log.rb writes them (Sidekiq 6.4 and 7.3)."""
    lines = [
        '{"severity":"INFO","time":"2024-05-06T10:00:00.120Z","pid":812,"tid":"owx3",'
        '"class":"ChecksumWorker","jid":"5b1c0a0e9b1f4a1b8d0e6c7a","queue":"default",'
        '"job_status":"start","enqueued_at":"2024-05-06T10:00:00.100Z",'
        '"created_at":"2024-05-06T10:00:00.100Z","scheduling_latency_s":0.02,'
        '"queue_duration_s":0.02,"message":"ChecksumWorker JID-5b1c0a0e9b1f4a1b8d0e6c7a: start"}',
        '{"severity":"INFO","time":"2024-05-06T10:00:00.160Z","pid":812,"tid":"owx3",'
        '"class":"ChecksumWorker","jid":"5b1c0a0e9b1f4a1b8d0e6c7a","queue":"default",'
        '"job_status":"done","enqueued_at":"2024-05-06T10:00:00.100Z",'
        '"created_at":"2024-05-06T10:00:00.100Z","scheduling_latency_s":0.02,'
        '"queue_duration_s":0.02,"duration_s":0.04,"cpu_s":0.035,"db_duration_s":0.002,'
        '"message":"ChecksumWorker JID-5b1c0a0e9b1f4a1b8d0e6c7a: done: 0.04 sec"}',
        '{"severity":"WARN","time":"2024-05-06T10:00:09.000Z","pid":812,"tid":"owx4",'
        '"class":"FlakyImportWorker","jid":"aa","queue":"default","retry_count":0,'
        '"job_status":"fail","enqueued_at":"2024-05-06T10:00:08.000Z",'
        '"created_at":"2024-05-06T10:00:00.000Z","scheduling_latency_s":0.5,'
        '"queue_duration_s":0.5,"duration_s":0.01,"cpu_s":0.001,'
        '"error_class":"FlakyImportWorker::RemoteUnavailable","error_message":"x",'
        '"message":"FlakyImportWorker JID-aa: fail: 0.01 sec"}',
    ]
    out = tmp_path / "lab.yml"
    assert main(["workload", "from-logs", str(write(tmp_path / "journal", lines)), "-o",
                 str(out), "--catalog", SAMPLE_CATALOG]) == 0
    capsys.readouterr()
    document = yaml.safe_load(out.read_text())
    classes = document["observed"]["classes"]
    assert classes["ChecksumWorker"]["cpu_share"] == pytest.approx(0.875)
    assert classes["ChecksumWorker"]["queueing"]["p50_s"] == pytest.approx(0.02, rel=0.025)
    assert classes["FlakyImportWorker"]["jobs"] == 0  # a retry is not an arrival
    assert classes["FlakyImportWorker"]["failed"] == 1


@pytest.mark.parametrize("case", ["missing", "directory", "truncated", "no-jobs", "output",
                                  "catalog"])
def test_bad_input_is_one_message_and_exit_2(tmp_path, capsys, case):
    log = write(tmp_path / "current", render([Job("PostReceive", T0 + i) for i in range(3000)]))
    out = tmp_path / "out.yml"
    args = [str(log), "-o", str(out)]
    expect = [str(log)]
    if case == "missing":
        args[0] = str(tmp_path / "nope")
        expect = [f"{tmp_path / 'nope'}: cannot read the log: No such file or directory"]
    elif case == "directory":
        args[0] = str(tmp_path)
        expect = [f"{tmp_path}: is a directory"]
    elif case == "truncated":
        data = (tmp_path / "current").read_bytes()
        import gzip

        cut = tmp_path / "@4000000066389c2a.s"
        cut.write_bytes(gzip.compress(data)[:5000])
        args[0] = str(cut)
        expect = [f"{cut}, line ", "gzip stream ends early"]
    elif case == "no-jobs":
        args[0] = str(write(tmp_path / "boot.log", ["Booting Sidekiq", "INFO: Running"]))
        expect = ["boot.log, line 1: no GitLab Sidekiq job line", "2 not JSON"]
    elif case == "output":
        args[2] = str(tmp_path / "no-such-dir" / "out.yml")
        expect = ["-o: cannot write: No such file or directory"]
    elif case == "catalog":
        args += ["--catalog", str(tmp_path / "nope.yml")]
        expect = ["nope.yml"]
    assert main(["workload", "from-logs", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fleetsim: error: ")
    assert "Traceback" not in err
    for text in expect:
        assert text in err
    assert not out.exists()
