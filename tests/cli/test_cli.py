"""fleetsim's route and plan commands, and site.yml's preflight, run as an operator would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulator.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_route_match_sorted_lines_and_json(capsys):
    code, out, _ = run(capsys, "route", "match", "urgency=high&resource_boundary=cpu")
    lines = out.split()
    assert code == 0 and lines == sorted(lines) and "PostReceive" in lines and len(lines) == 22
    code, out, _ = run(capsys, "route", "match", "feature_category=not_owned", "--json")
    assert "default" in json.loads(out)  # placeholder named by `name`


def test_route_match_strict_vs_compat(capsys):
    code, out, err = run(capsys, "route", "match", "urgency=high!")
    assert code == 2 and out == "" and "position 13" in err and "Traceback" not in err
    code, out, err = run(capsys, "route", "match", "urgency=high!", "--gitlab-compat")
    assert code == 0 and len(out.split()) == 51 and "warning" in err


def test_route_resolve(tmp_path, capsys):
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump([["urgency=high", "urgent"], ["*", "default"]]))
    code, out, _ = run(capsys, "route", "resolve", "--rules", str(rules), "--json")
    data = json.loads(out)
    assert code == 0 and data["ActionMailer::MailDeliveryJob"] == "mailers"
    assert data["PostReceive"] == "urgent" and len(data) == 573
    rules.write_text(json.dumps([["urgency=high", "urgent", "shard_a"]]))
    code, out, _ = run(capsys, "route", "resolve", "--rules", str(rules), "--json")
    assert json.loads(out)["PostReceive"] == {"queue": "urgent", "redis_shard": "shard_a"}
    rules.write_text("'*'\n")
    code, _, err = run(capsys, "route", "resolve", "--rules", str(rules))
    assert code == 2 and "The set of routing rule must be an array" in err and "rules.yml" in err


def test_plan_example_and_broken_copy(tmp_path, capsys):
    code, out, _ = run(capsys, "plan", "-i", str(EXAMPLE))
    assert code == 0 and "0 error(s)" in out and "sidekiq@1: 20 threads" in out
    code, out, _ = run(capsys, "plan", "-i", str(EXAMPLE), "--json")
    plan = json.loads(out)
    assert plan["errors"] == 0 and len(plan["hosts"]) == 3
    broken = tmp_path / "inv"
    shutil.copytree(EXAMPLE, broken)
    for rel in ("group_vars/sidekiq.yml", "host_vars/sidekiq2.example.com.yml"):
        path = broken / rel
        path.write_text(path.read_text().replace("default,mailers", "default"))
    code, out, _ = run(capsys, "plan", "-i", str(broken))
    assert code == 1 and "no-mailers-listener" in out and "sidekiq1.example.com" in out
    code, _, err = run(capsys, "plan", "-i", str(tmp_path / "nope"))
    assert code == 2 and "no such inventory" in err


def _ansible_playbook() -> str:
    exe = Path(sys.executable).parent / "ansible-playbook"
    if not exe.exists():
        pytest.fail("ansible-playbook is not installed next to this Python (run `make setup`)")
    return str(exe)


def _run_playbook(inventory, playbook) -> subprocess.CompletedProcess[str]:
    """ansible-playbook with the project's ansible.cfg, output captured without colours."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [_ansible_playbook(), "-i", str(inventory), str(playbook)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_site_preflight_stops_before_any_host(tmp_path):
    broken = tmp_path / "inv"
    shutil.copytree(EXAMPLE, broken)
    path = broken / "group_vars/all.yml"
    path.write_text(
        path.read_text()
        .replace('"urgency=throttled"', '"urgency=throttled!"')
        .replace("&urgency=throttled", "&urgency=throttled!")
    )
    result = _run_playbook(broken, ROOT / "site.yml")
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "position 65" in out and "read as 'urgency=throttled'" in out
    assert "rule 2" in out
    # Nothing ran on a fleet host: the only host in the recap is the controller.
    recap = out[out.index("PLAY RECAP") :]
    assert "localhost" in recap and "example.com" not in recap


def test_site_preflight_passes_on_the_example():
    result = _run_playbook(EXAMPLE, ROOT / "playbooks/preflight.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_plan_refuses_a_queue_group_that_smuggles_sidekiq_flags(tmp_path, capsys):
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    path = inv / "host_vars" / "sidekiq2.example.com.yml"
    data = yaml.safe_load(path.read_text())
    data["sidekiq_queue_groups"].append("de fault -r ./evil.rb")
    path.write_text(yaml.safe_dump(data))
    code, out, err = run(capsys, "plan", "-i", str(inv))
    assert code == 2 and out == "" and "Traceback" not in err
    assert str(inv) in err and "sidekiq2.example.com" in err
    assert "sidekiq_queue_groups entry 5" in err and "position 3" in err and "fix:" in err
    assert "evil" not in out


def test_plan_refuses_a_quoted_boolean(tmp_path, capsys):
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    path = inv / "group_vars" / "sidekiq.yml"
    path.write_text(path.read_text() + 'sidekiq_negate: "false"\n')
    code, out, err = run(capsys, "plan", "-i", str(inv))
    assert code == 2 and "sidekiq_negate" in err and "unquoted true or false" in err
    assert "Traceback" not in err and out == ""


def test_the_command_runs_exit_handlers_and_keeps_its_exit_code(tmp_path):
    """``fleetsim`` (``run``) exits without tearing the interpreter down, but only after the
    exit handlers (ansible-core removes its temporary directory in one) and with main's code."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handler ran', flush=True))\n"
        "sys.argv = ['fleetsim'] + sys.argv[1:]\n"
        "from simulator.cli import run\n"
        "run()\n"
    )
    ok = subprocess.run([sys.executable, "-c", script, "plan", "-i", "inventories/example"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("exit handler ran")
    bad = subprocess.run([sys.executable, "-c", script, "plan", "-i", str(tmp_path / "none")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "no such inventory" in bad.stderr and "exit handler ran" in bad.stdout
    # A reader that stops early (`| head -1`): no traceback, no "Exception ignored".
    head = subprocess.run(f"{sys.executable} -m simulator route match '*' | head -1",
                          shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert head.stdout.count("\n") == 1 and head.stderr == ""
