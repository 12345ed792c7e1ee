"""The fidelity stage (docs/fidelity.md): fleetsim's predictions against this converged fleet.

It runs last in the scenario (the file name sorts after the others) because it reshapes the two
workers' processes. For each of three layouts it writes an inventory (this scenario's, plus the
layout), applies it with stages/fidelity_layout.yml (the sidekiq role's processes and the health
server, as site.yml renders them; code and settings stay as converged), checks that `fleetsim plan`
gives exactly the process arguments the role rendered (one variant per layout: min/max only,
a set concurrency, every variable unset, strict order, a selector, negate), then drives the
layout's workloads with Poisson arrivals (bin/sample-load on the producer), reads the workers'
own JSON logs, builds each workload with `fleetsim workload from-logs --service-time demand`,
simulates the same inventory for the same time with three seeds, and compares throughput and
queueing p50/p95/p99 of the jobs that started in the window. The test fails when a judged
figure is outside its target; out/fleet-fidelity.json and out/fleet-fidelity.md keep the table.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from conftest import APP_ENV, WORKERS, rendered_args, with_app_env

from simulator.sim.fidelity import Row, compare, markdown_table, measure, predicted

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "out"
APP_DIR = "/opt/sidekiq-fleet/app"
SEEDS = (1, 2, 3)
S1, S2 = WORKERS

#: Routing for the stage: each fidelity class on its own queue, before the scenario's rules.
STAGE_RULES = [["worker_name=FidelityWorker", "fidelity"],
               ["worker_name=FidelityBulkWorker", "fidelity_bulk"]]
#: Every layout variable, removed from a worker's host_vars before the layout's are added.
LAYOUT_KEYS = ("sidekiq_queue_groups", "sidekiq_concurrency", "sidekiq_min_concurrency",
               "sidekiq_max_concurrency", "sidekiq_queue_selector", "sidekiq_negate",
               "sidekiq_fetch_order", "sidekiq_gitlab_version")


@dataclass(frozen=True)
class Stream:
    klass: str
    queue: str
    rate: float  # jobs a second (Poisson)
    cpu_s: float  # mean CPU per job (exponential)
    wait_s: float  # mean wait per job (exponential)

    def spec(self) -> str:
        return f"{self.klass}:{self.queue}:{self.rate:g}:{self.cpu_s:g}:{self.wait_s:g}:exp"


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    node: str
    streams: tuple[Stream, ...]
    seconds: float


# Three layouts; within one, the workloads run one after another. The workers share the lab
# machine's cores, so a workload loads one worker at a time.
LAYOUTS: list[tuple[str, dict[str, dict], list[Workload]]] = [
    (
        "A",
        {
            # 1 process x 20 threads from min/max alone (no sidekiq_concurrency; GitLab 16.x,
            # where min/max still exist)
            S1: {"sidekiq_queue_groups": ["fidelity"], "sidekiq_concurrency": None,
                 "sidekiq_min_concurrency": 20, "sidekiq_max_concurrency": 20,
                 "sidekiq_gitlab_version": "16.11"},
            # 4 processes x 5 threads (the scenario's sidekiq_concurrency: 5)
            S2: {"sidekiq_queue_groups": ["fidelity_bulk"] * 4},
        },
        [
            Workload("io-many-threads", "IO-bound, 1 x 20 threads, rho 0.5", S1,
                     (Stream("FidelityWorker", "fidelity", 100, 0.0, 0.1),), 30),
            Workload("near-saturation", "IO-bound, 1 x 20 threads, rho 0.87", S1,
                     (Stream("FidelityWorker", "fidelity", 175, 0.0, 0.1),), 45),
            Workload("cpu-1x20", "CPU-bound, 1 process x 20 threads (one GVL)", S1,
                     (Stream("FidelityWorker", "fidelity", 70, 0.02, 0.0),), 30),
            Workload("cpu-4x5", "CPU-bound, 4 processes x 5 threads", S2,
                     (Stream("FidelityBulkWorker", "fidelity_bulk", 70, 0.02, 0.0),), 30),
        ],
    ),
    (
        "B",
        {
            # strict order: fidelity first, fidelity_bulk only when fidelity is empty
            S1: {"sidekiq_queue_groups": ["fidelity,fidelity_bulk"], "sidekiq_concurrency": 10,
                 "sidekiq_fetch_order": "strict"},
            # every layout variable unset: default,mailers and 20 threads
            S2: {"sidekiq_concurrency": None},
        },
        [
            # 130 jobs/s offered to 100 jobs/s of threads: fidelity (50/s) is served first, the
            # bulk queue gets what is left.
            Workload("strict-order", "two queues over capacity, strict order, 1 x 10", S1,
                     (Stream("FidelityWorker", "fidelity", 50, 0.0, 0.1),
                      Stream("FidelityBulkWorker", "fidelity_bulk", 80, 0.0, 0.1)), 30),
        ],
    ),
    (
        "C",
        {
            # weighted order (GitLab's -q NAME,1) from a queue selector (GitLab 16.x)
            S1: {"sidekiq_queue_groups": ["worker_name=FidelityWorker,FidelityBulkWorker"],
                 "sidekiq_queue_selector": True, "sidekiq_concurrency": 10,
                 "sidekiq_gitlab_version": "16.11"},
            # negate: every queue but the fidelity ones
            S2: {"sidekiq_queue_groups": ["fidelity,fidelity_bulk"], "sidekiq_negate": True,
                 "sidekiq_gitlab_version": "16.11"},
        },
        [
            # 130 jobs/s offered to 100 jobs/s of threads, 65/s each: both queues served alike.
            Workload("weighted-order", "two queues over capacity, weighted order, 1 x 10", S1,
                     (Stream("FidelityWorker", "fidelity", 65, 0.0, 0.1),
                      Stream("FidelityBulkWorker", "fidelity_bulk", 65, 0.0, 0.1)), 30),
        ],
    ),
]

#: Figures shown but not judged, because the model leaves out what drives them (docs/fidelity.md,
#: "What the model leaves out"); none today.  The last one went when the model took up Ruby's
#: GVL hand-over (first come, first served, 100 ms slices; a job starts when its thread first
#: holds the GVL): `cpu-4x5` p95/p99, measured 80/104 ms, had been predicted 1 ms.
KNOWN_GAPS: dict[tuple[str, str], tuple[str, ...]] = {}


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               PYTHONPATH=str(ROOT))
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _inventory(base: Path, layout: dict[str, dict]) -> Path:
    """This scenario's inventory with the stage's routing and the layout, in a new directory."""
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    if base.exists():
        shutil.rmtree(base)
    shutil.copytree(source, base, symlinks=False)
    routing = base / "group_vars" / "all" / "routing.yml"
    data = yaml.safe_load(routing.read_text())
    data["sidekiq_routing_rules"] = STAGE_RULES + data["sidekiq_routing_rules"]
    routing.write_text(yaml.safe_dump(data, sort_keys=False))
    for host, settings in layout.items():
        path = base / "host_vars" / f"{host}.yml"
        hv = {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items()
              if k not in LAYOUT_KEYS}
        # The lab's workers see the machine's two cores (nproc); fleetsim must plan with them.
        hv.update({"sidekiq_cpus": 2, **settings})
        path.write_text(yaml.safe_dump(hv, sort_keys=False))
    return base


def _apply_and_check_plan(inventory: Path, workers) -> float:
    """The sidekiq role's processes on the workers with the layout; then fleetsim plans exactly the
    processes the role rendered. Returns the playbook's seconds."""
    started = time.monotonic()
    layout_playbook = Path(__file__).resolve().parents[1] / "stages" / "fidelity_layout.yml"
    play = _run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                 str(layout_playbook)], timeout=900)
    seconds = time.monotonic() - started
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
    plan = _run([sys.executable, "-m", "simulator", "plan", "--json", "-i", str(inventory)],
                timeout=300)
    assert plan.returncode in (0, 1), plan.stderr
    planned = {h["host"]: h["processes"] for h in json.loads(plan.stdout)["hosts"]}
    for name, worker in workers.items():
        rendered = rendered_args(worker)
        # The role stops the instances of a previous layout's extra groups but leaves their
        # env files: compare the instances that run.
        running = worker.check_output(
            "systemctl list-units --plain --no-legend --state=active 'sidekiq@*.service' "
            "| awk '{print $1}'").split()
        live = {int(u.removeprefix("sidekiq@").removesuffix(".service")) for u in running}
        expected = {p["index"]: p["sidekiq_args"] for p in planned[name]}
        assert {i: a for i, a in rendered.items() if i in live} == expected, name
    return seconds


def _drive(producer, workload: Workload, seed: int) -> tuple[float, dict]:
    """Start the load on the producer; return the epoch time it started and its report."""
    streams = " ".join(f"--stream {s.spec()}" for s in workload.streams)
    command = (f"cd {APP_DIR} && runuser -u git -- /usr/bin/ruby bin/sample-load "
               f"--duration {workload.seconds:g} --seed {seed} --batch fidelity-{workload.name} "
               f"{streams}")
    t0 = time.time()
    out = producer.check_output(with_app_env(command))
    return t0, json.loads(out.strip().splitlines()[-1])


def _drained(fleet_redis, queues) -> bool:
    return all(int(fleet_redis("LLEN", f"queue:{q}") or 0) == 0 for q in queues)


def _process_cpu_s(worker) -> float:
    """CPU seconds the node's running Sidekiq processes have used (utime + stime of each
    unit's main process; systemd's own CPU accounting is off in the lab's containers)."""
    out = worker.check_output(
        "for u in $(systemctl list-units --plain --no-legend --state=active 'sidekiq@*.service'"
        " | awk '{print $1}'); do p=$(systemctl show -p MainPID --value $u); "
        "awk '{print $14 + $15}' /proc/$p/stat; done; getconf CLK_TCK")
    *ticks, hz = out.split()
    return sum(int(t) for t in ticks) / int(hz)


def _jobs_cpu_s(lines: list[str], queues: list[str]) -> tuple[int, float]:
    """Executions finished and the sum of their own cpu_s, from the log lines."""
    jobs, cpu = 0, 0.0
    for line in lines:
        if '"job_status"' not in line or line.find("{") < 0:
            continue
        data = json.loads(line[line.find("{"):])
        if data.get("queue") in queues and data.get("job_status") in ("done", "fail"):
            jobs += 1
            cpu += float(data.get("cpu_s") or 0.0)
    return jobs, cpu


def _logs(worker, since: float, path: Path) -> Path:
    text = worker.check_output(f"journalctl -u 'sidekiq@*' -o cat --since @{since:.0f}")
    path.write_text(text + "\n")
    return path


def _simulate(inventory: Path, workload_file: Path, seconds: float) -> list[dict]:
    runs = []
    for seed in SEEDS:
        sim = _run([sys.executable, "-m", "simulator", "simulate", "-i", str(inventory),
                    "--workload", str(workload_file), "--duration", f"{seconds:g}s",
                    "--seed", str(seed), "--json"], timeout=600)
        assert sim.returncode in (0, 1), sim.stderr[-3000:]
        runs.append(json.loads(sim.stdout))
    return runs


def _measure_workload(wl: Workload, layout: str, inventory: Path, producer, workers, fleet,
                      seed: int, tmp_path: Path) -> tuple[list[Row], dict]:
    """Drive one workload, build it from the workers' logs, simulate it; its rows and record."""
    queues = sorted({s.queue for s in wl.streams})
    cpu_before = _process_cpu_s(workers[wl.node])
    t0, driver = _drive(producer, wl, seed)
    # The window is the arrivals'; wait for the last jobs so their lines are written.
    deadline = time.monotonic() + 120
    while not _drained(fleet.redis, queues) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(3)
    process_cpu = _process_cpu_s(workers[wl.node]) - cpu_before
    log = _logs(workers[wl.node], t0 - 5, tmp_path / f"{wl.name}-{seed}.log")
    jobs, jobs_cpu = _jobs_cpu_s(log.read_text().splitlines(), queues)
    built = tmp_path / f"{wl.name}-{seed}.yml"
    make = _run([sys.executable, "-m", "simulator", "workload", "from-logs", str(log),
                 "-o", str(built), "-i", str(inventory), "--service-time", "demand"],
                timeout=300)
    assert make.returncode == 0, make.stderr[-3000:]
    document = yaml.safe_load(built.read_text())
    window = driver["duration_s"]
    measured = measure(log.read_text().splitlines(), queues, t0, window)
    runs = _simulate(inventory, built, window)
    rows: list[Row] = []
    for queue in queues:
        rows += compare(wl.name, queue, measured[queue].figures(window),
                        predicted(runs, queue), KNOWN_GAPS.get((wl.name, queue), ()))
    record = {
        "what": wl.what, "layout": layout, "node": wl.node, "window_s": window, "seed": seed,
        "driver": driver, "streams": [s.spec() for s in wl.streams],
        "built": {s["name"]: {"rate_per_s": s["rate_per_s"],
                              "cpu_share": s["service"].get("cpu_share")}
                  for s in document["segments"]},
        "measured": {q: {"started": m.started, "finished": m.finished}
                     for q, m in measured.items()},
        # Sidekiq's own CPU per job outside perform (overheads.dispatch_cpu_s): the
        # processes' CPU time less the jobs' cpu_s, over the executions.
        "process_cpu_s": round(process_cpu, 3), "jobs_cpu_s": round(jobs_cpu, 3),
        "executions": jobs,
        "sidekiq_cpu_per_job_s": round((process_cpu - jobs_cpu) / jobs, 5) if jobs else None,
    }
    return rows, record


def _row_record(r: Row) -> dict:
    return {"workload": r.workload, "queue": r.queue, "figure": r.figure,
            "measured": r.measured, "predicted": r.predicted, "error": r.error,
            "within": r.within, "judged": r.judged, "known_gap": r.known_gap}


#: A workload whose first measurement has a judged figure outside its target is measured once
#: more, with new arrivals, and the second measurement is judged. The lab shares two cores with
#: whatever else the machine runs, and one noisy half-minute should not fail the stage; a real
#: model error fails both. Both measurements are kept in out/fleet-fidelity.json.
ATTEMPTS = 2


def test_fleetsim_predicts_the_lab_fleet(producer, workers, fleet, tmp_path):
    # Not under pytest's temporary directory, which another pytest on the machine may prune.
    if os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY"):
        tmp_path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "fidelity"
        tmp_path.mkdir(exist_ok=True)
    rows: list[Row] = []
    report: dict = {"layouts": {}, "workloads": {}}
    stage_started = time.monotonic()
    for index, (name, layout, workloads) in enumerate(LAYOUTS):
        inventory = _inventory(tmp_path / f"inventory-{name}", layout)
        report["layouts"][name] = {"playbook_s": round(_apply_and_check_plan(inventory, workers),
                                                       1), "hosts": layout}
        for seed, wl in enumerate(workloads, start=10 * index + 1):
            attempts = []
            for attempt in range(ATTEMPTS):
                wl_rows, record = _measure_workload(wl, name, inventory, producer, workers,
                                                    fleet, seed + 100 * attempt, tmp_path)
                record["rows"] = [_row_record(r) for r in wl_rows]
                attempts.append(record)
                if all(r.within for r in wl_rows):
                    break
                print(f"{wl.name}: attempt {attempt + 1} outside its targets:\n"
                      + markdown_table(wl_rows))
            rows += wl_rows
            report["workloads"][wl.name] = {**record, "attempts": len(attempts),
                                            "earlier_attempts": attempts[:-1]}
    report["stage_s"] = round(time.monotonic() - stage_started, 1)
    report["rows"] = [_row_record(r) for r in rows]
    OUT.mkdir(exist_ok=True)
    (OUT / "fleet-fidelity.json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown_table(rows)
    (OUT / "fleet-fidelity.md").write_text(table)
    print(table)
    retried = [w for w, r in report["workloads"].items() if r["attempts"] > 1]
    print(f"fidelity stage: {report['stage_s']} s; measured twice: {', '.join(retried) or 'none'}")
    outside = [r for r in rows if not r.within]
    assert not outside, ("fleetsim's prediction is outside the fidelity targets (each workload "
                         "measured up to twice):\n" + table)


def test_sample_load_refuses_a_bad_stream(producer):
    """The load driver's input check: a bad --stream names itself (no job is pushed)."""
    bad = producer.run(with_app_env(
        f"cd {APP_DIR} && runuser -u git -- /usr/bin/ruby bin/sample-load --duration 1 "
        f"--stream {shlex.quote('FidelityWorker:fidelity:-1:0:0')}"))
    assert bad.rc != 0 and "want CLASS:QUEUE:RATE" in bad.stderr, bad.stderr
    assert APP_ENV  # the environment file the commands read
