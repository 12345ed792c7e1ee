"""scripts/vault-password.sh: never an empty password, and a warning outside the lab."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "scripts" / "vault-password.sh"


def _call(password_file: Path, *parent_args: str,
          command: str = "ansible-playbook") -> subprocess.CompletedProcess:
    # The client reads the calling command's arguments: a bash that stays the parent stands in
    # for ansible-playbook here (`; exit $?` keeps bash from exec-ing the client).
    env = dict(os.environ, SIDEKIQ_FLEET_VAULT_PASSWORD_FILE=str(password_file))
    return subprocess.run(
        ["bash", "-c", f"sh {CLIENT}; exit $?", command, *parent_args],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )


def test_blank_password_file_is_refused(tmp_path):
    password_file = tmp_path / "vault-password"
    password_file.write_text("\n  \n")
    result = _call(password_file)
    assert result.returncode != 0 and result.stdout == ""
    assert "holds no password" in result.stderr and str(password_file) in result.stderr


def test_new_password_is_made_once_and_is_strong(tmp_path):
    password_file = tmp_path / "sub" / "vault-password"
    first = _call(password_file, "-i", "inventories/lab", "site.yml")
    second = _call(password_file, "-i", "inventories/lab", "site.yml")
    assert first.returncode == 0 and first.stdout == second.stdout
    assert len(first.stdout.strip()) >= 48
    assert first.stderr == ""
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"


def test_warns_when_the_lab_password_meets_another_inventory(tmp_path):
    password_file = tmp_path / "vault-password"
    password_file.write_text("lab-password\n")
    for args in (("-i", "inventories/example"), ("--inventory=/srv/prod",), ("-i/srv/prod",)):
        result = _call(password_file, *args, "site.yml")
        assert result.returncode == 0 and result.stdout == "lab-password\n"
        assert "is not the lab's" in result.stderr, args
    for lab in ("molecule/fleet/inventory", "/root/.ansible/tmp/molecule.DW5A.default/inventory"):
        result = _call(password_file, "-i", lab, "converge.yml")
        assert result.stderr == "", lab


def test_fleetsim_reading_another_inventory_is_not_warned_about(tmp_path):
    # fleetsim plan/simulate read inventories (through ansible-core, which calls the client)
    # but never deploy: the warning would be noise on every plan of inventories/example.
    password_file = tmp_path / "vault-password"
    password_file.write_text("lab-password\n")
    for command in ("fleetsim", "/work/.venv/bin/fleetsim"):
        result = _call(password_file, "plan", "-i", "inventories/example", command=command)
        assert result.returncode == 0 and result.stdout == "lab-password\n"
        assert result.stderr == "", command
    for args in (("-i", "inventories/example"), ("-i", "ansible-hosts")):
        result = _call(password_file, *args, "site.yml", command="/usr/local/bin/ansible-playbook")
        assert "is not the lab's" in result.stderr, args
