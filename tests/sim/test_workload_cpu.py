"""What a workload and an inventory give the CPU model and the fetch order: ``service.cpu_share``
(default by resource boundary), ``sidekiq_cpus`` per node, GitLab's weighted fetch order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli.main import main
from simulator.errors import InventoryError, WorkloadError
from simulator.fleet.inventory import Fleet, load_fleet
from simulator.sim.model import DEFAULT_CPU_SHARE, DEFAULT_CPU_SHARE_CPU_BOUND
from simulator.sim.workload import build_scenario, load_workload

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "example"
PRE_15_4 = ROOT / "examples" / "migrations" / "pre-15.4"


def _workload(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workload.yml"
    path.write_text(text)
    return path


def _fleet(**sidekiq_vars) -> Fleet:
    hostvars = {"sk1": dict(sidekiq_vars), "sk2": {"sidekiq_queue_groups": ["default"] * 3}}
    return Fleet.from_hostvars(hostvars, {"sidekiq": ["sk1", "sk2"]})


def test_cpu_share_from_the_service_else_by_resource_boundary(tmp_path, catalog):
    path = _workload(tmp_path, """
segments:
  - match: "worker_name=PostReceive"
    rate_per_s: 1
    service: {distribution: exponential, mean_s: 0.5, cpu_share: 0.3}
  - match: "*"
    rate_per_s: 10
    service: {mean_s: 0.2}
""")
    scenario = build_scenario(load_workload(path), _fleet())
    share = {c.key: c.cpu_share for c in scenario.classes}
    assert share["PostReceive"] == 0.3
    bound = {w.key: w.resource_boundary for w in catalog.workers}
    cpu_bound = [k for k in share if k != "PostReceive" and bound.get(k) == "cpu"]
    others = [k for k in share if k != "PostReceive" and bound.get(k) != "cpu"]
    assert cpu_bound and others
    assert {share[k] for k in cpu_bound} == {DEFAULT_CPU_SHARE_CPU_BOUND}
    assert {share[k] for k in others} == {DEFAULT_CPU_SHARE}


@pytest.mark.parametrize("value", ["-0.1", "1.5", "lots", ".nan"])
def test_a_bad_cpu_share_names_file_entry_and_fix(tmp_path, value):
    path = _workload(tmp_path, "segments:\n  - match: '*'\n    rate_per_s: 1\n"
                     f"    service: {{mean_s: 1, cpu_share: {value}}}\n")
    with pytest.raises(WorkloadError) as err:
        load_workload(path)
    text = str(err.value)
    assert str(path) in text and "segments entry 1" in text and "cpu_share" in text
    assert "fix:" in text


def test_sidekiq_cpus_gives_the_nodes_cores_else_one_per_process(tmp_path):
    path = _workload(tmp_path, "segments:\n  - {match: '*', rate_per_s: 1, service: {mean_s: 1}}\n")
    workload = load_workload(path)
    unset = build_scenario(workload, _fleet(sidekiq_queue_groups=["default", "default"]))
    assert dict(unset.node_cpus) == {"sk1": 2.0, "sk2": 3.0}
    set_ = build_scenario(workload, _fleet(sidekiq_queue_groups=["default"] * 4, sidekiq_cpus=2))
    assert dict(set_.node_cpus) == {"sk1": 2.0, "sk2": 3.0}
    for bad in (0, "4", True, 2.5):
        with pytest.raises(InventoryError, match="sidekiq_cpus must be a whole number"):
            build_scenario(workload, _fleet(sidekiq_cpus=bad))


def test_sidekiq_cpus_is_read_from_an_inventory(tmp_path):
    inv = tmp_path / "inv"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  children:\n    sidekiq:\n      hosts:\n"
                                   "        sk1: {}\n        sk2: {}\n")
    (inv / "host_vars" / "sk1.yml").write_text("sidekiq_cpus: 8\n")
    hosts = {h.name: h.cpus for h in load_fleet(inv).sidekiq_hosts()}
    assert hosts == {"sk1": 8, "sk2": None}


def test_fleets_from_inventories_fetch_as_gitlab_does():
    # The roles deploy what the routing engine renders: every queue as -q NAME,1, so GitLab's
    # processes -- the example and the pre-15.4 fleet "as GitLab ran it" -- fetch in weighted
    # random order, and the simulator runs them that way.
    for inv in (INVENTORY, PRE_15_4):
        for host in load_fleet(inv).sidekiq_hosts():
            for proc in host.processes:
                assert proc.fetch_order == "weighted" and not proc.strict
                args = proc.sidekiq_args()
                assert all(a.endswith(",1") for a in args[3::2]), args


def test_simulate_reports_each_processs_gvl_load(capsys):
    rc = main(["simulate", "-i", str(INVENTORY), "--workload",
               str(ROOT / "examples" / "workloads" / "example.yml"), "--duration", "2m",
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    procs = out["by_process"]
    assert all(p["fetch"] == "weighted" for p in procs.values())
    assert all(0 < p["cpu"] <= 1 for p in procs.values())
