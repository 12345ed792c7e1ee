"""The fleet checks' registry and README.md's table of checks generated from it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.fleet.checks import CHECKS, ERROR, WARNING, Check, check, check_fleet
from simulator.fleet.inventory import Fleet

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "checks_table.py"


def _script():
    spec = importlib.util.spec_from_file_location("checks_table", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_of_checks_is_current():
    out = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_a_stale_table_is_found_and_rewritten(tmp_path, monkeypatch):
    module = _script()
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text().replace("| `unused-queue` |", "| `unused-q` |")
    readme.write_text(text)
    monkeypatch.setattr(module, "README", readme)
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0
    assert "| `unused-queue` | warning |" in readme.read_text()
    assert module.main(["--check"]) == 0


def test_every_check_has_an_id_a_severity_and_a_one_line_description():
    assert len(CHECKS) >= 9
    for c in CHECKS.values():
        assert isinstance(c, Check)
        assert c.severity in (ERROR, WARNING)
        assert c.description and "\n" not in c.description and "|" not in c.description
        assert c.scope in ("fleet", "host", "queue", "process")


def test_a_check_registered_twice_or_with_a_bad_severity_is_refused():
    with pytest.raises(ValueError, match="twice"):
        check("unused-queue", WARNING, "again")(lambda ctx: iter(()))
    with pytest.raises(ValueError, match="severity"):
        check("x-new", "fatal", "bad severity")
    assert "x-new" not in CHECKS


def test_a_registered_check_runs_and_names_its_code_and_severity(monkeypatch):
    monkeypatch.setattr("simulator.fleet.checks.CHECKS", dict(CHECKS))

    @check("every-host", WARNING, "a test check that fires on every sidekiq host", scope="host")
    def _every_host(ctx, sk):
        yield sk.name, "seen", "nothing to fix"

    fleet = Fleet.from_hostvars({"w1": {"sidekiq_queue_groups": ["default,mailers"]}},
                                {"sidekiq": ["w1"]})
    (finding,) = check_fleet(fleet)
    assert (finding.code, finding.severity, finding.host) == ("every-host", WARNING, "w1")
