"""Each role's README.md is generated from its meta/argument_specs.yml and must be current; every
argument has a description that says more than its own name."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "role_docs.py"


def _role_docs():
    spec = importlib.util.spec_from_file_location("role_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_role_readme_is_current():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture
def lab_roles(tmp_path, monkeypatch):
    """A copy of the redis role in a roles/ directory of its own."""
    module = _role_docs()
    shutil.copytree(ROOT / "roles" / "redis", tmp_path / "roles" / "redis")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "ROLES", tmp_path / "roles")
    return module, tmp_path / "roles" / "redis"


def test_check_names_a_stale_readme(lab_roles, capsys):
    module, role = lab_roles
    specs = role / "meta" / "argument_specs.yml"
    text = specs.read_text()
    specs.write_text(text.replace("Keep Redis' protected mode on", "Keep protected mode on"))
    assert module.main(["--check"]) == 1
    assert "roles/redis/README.md is stale" in capsys.readouterr().err
    assert module.main([]) == 0
    assert "Keep protected mode on" in (role / "README.md").read_text()
    assert module.main(["--check"]) == 0


def test_check_refuses_a_description_that_is_the_name(lab_roles, capsys):
    module, role = lab_roles
    specs = role / "meta" / "argument_specs.yml"
    text = specs.read_text()
    start = text.index("      redis_protected_mode:\n")
    end = text.index("        type: bool", start)
    bare = "      redis_protected_mode:\n        description: redis_protected_mode\n"
    specs.write_text(text[:start] + bare + text[end:])
    assert module.main([]) == 1
    assert "main.redis_protected_mode needs a description" in capsys.readouterr().err


def test_readme_lists_every_option_with_its_default():
    readme = (ROOT / "roles" / "redis" / "README.md").read_text()
    assert "# sidekiq_fleet.fleet.redis" in readme
    assert "| `redis_protected_mode` | bool | `true` | no |" in readme
    fleet = (ROOT / "roles" / "fleet" / "README.md").read_text()
    assert "| `fleet_redis_port` | int | `6379` | no |" in fleet
