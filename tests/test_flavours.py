"""playbooks/flavours.yml: hosts without sidekiq_fleet_flavor (every inventory before Omnibus
mode, molecule's among them) are standalone; an unknown flavour is refused by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _play(tmp_path: Path, hostvars: str) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    h1:\n      ansible_connection: local\n" + hostvars)
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
         str(ROOT / "playbooks" / "flavours.yml"),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_a_host_without_a_flavour_is_standalone(tmp_path):
    run = _play(tmp_path, "")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_an_unknown_flavour_is_refused_by_name(tmp_path):
    run = _play(tmp_path, "      sidekiq_fleet_flavor: snap\n")
    assert run.returncode != 0
    assert 'sidekiq_fleet_flavor is "snap"; use standalone' in run.stdout
