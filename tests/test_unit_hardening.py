"""The systemd units the roles install stay hardened: `systemd-analyze security` rates each
rendered unit at an exposure level of 2.0 or below, and `systemd-analyze verify` finds nothing
wrong in them (security review, issue 9 item 9).

The templates are rendered with plain Jinja2 from the roles' defaults (the values that are
Jinja expressions in defaults/ or vars/ are given here as the strings Ansible would make of
them), into a temporary directory, and analysed offline: no unit is loaded into this
machine's systemd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MAX_EXPOSURE = 2.0

# template -> the unit name it is installed as (an instance for a template unit).
UNITS = {
    "roles/sidekiq/templates/sidekiq@.service.j2": "sidekiq@0.service",
    "roles/sidekiq/templates/sidekiq-web.service.j2": "sidekiq-web.service",
    "roles/sidekiq_exporter/templates/sidekiq-exporter.service.j2": "sidekiq-exporter.service",
    "roles/rails/templates/rails-app.service.j2": "rails-app.service",
    "roles/gitaly/templates/gitaly.service.j2": "gitaly.service",
}

# What Ansible makes of the defaults and vars that are expressions (common role's git user).
DERIVED = {
    "ansible_managed": "Ansible managed",
    "sidekiq_app_boot_file": "/opt/sidekiq-fleet/boot/sidekiq_fleet_boot.rb",
    "sidekiq_app_sidekiq_command": ["/usr/bin/sidekiq"],
    "_gitaly_binary": "/usr/local/bin/gitaly",
    "_gitaly_config_file": "/etc/gitaly/config.toml",
}

EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)")
# `verify` checks that ExecStart= exists on this machine; the services' binaries (Ruby,
# rackup, Sidekiq, Gitaly) are not installed here, which says nothing about the unit itself.
MISSING_BINARY = re.compile(r"Command \S+ is not executable: No such file or directory")

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _defaults() -> dict:
    """The roles' defaults that are plain values, plus DERIVED for the expressions."""
    variables: dict = {}
    for role in ("fleet", "sidekiq_app", "sidekiq_exporter", "sidekiq", "rails", "gitaly"):
        data = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
        for key, value in data.items():
            if not (isinstance(value, str) and "{{" in value):
                variables[key] = value
    variables.update(DERIVED)
    return variables


def render(template: str, **overrides) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["dirname"] = os.path.dirname
    # Ansible's bool filter, for the switches the templates read (true/false, yes/no, 1/0, on/off).
    env.filters["bool"] = lambda value: str(value).strip().lower() in {"true", "yes", "1", "on"}
    return env.from_string((ROOT / template).read_text()).render({**_defaults(), **overrides})


@pytest.fixture(scope="module")
def units(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("units")
    paths = {}
    for template, name in UNITS.items():
        path = directory / name
        path.write_text(render(template))
        paths[name] = path
    return paths


def _analyze(*args: str) -> subprocess.CompletedProcess:
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (package systemd): cannot rate the units")
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""},
        check=False,
    )


@pytest.mark.parametrize("name", UNITS.values())
def test_unit_exposure_is_at_most_2(units, name):
    result = _analyze("security", "--offline=true", "--no-pager", str(units[name]))
    match = EXPOSURE.search(result.stdout)
    assert match, f"no exposure level for {name}:\n{result.stdout}\n{result.stderr}"
    assert match.group(1) == name
    level = float(match.group(2))
    print(f"{name}: exposure {level}")
    failing = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert level <= MAX_EXPOSURE, f"{name} rates {level} > {MAX_EXPOSURE}:\n" + "\n".join(failing)


@pytest.mark.parametrize("name", UNITS.values())
def test_unit_verifies(units, name):
    result = _analyze("verify", "--man=no", "--recursive-errors=no", str(units[name]))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    missing = [line for line in lines if MISSING_BINARY.search(line)]
    if missing:
        print(
            f"{name}: ExecStart= binary absent on this machine, not held against the unit: "
            + "; ".join(missing)
        )
    problems = [line for line in lines if not MISSING_BINARY.search(line)]
    assert not problems, f"systemd-analyze verify {name}:\n" + "\n".join(problems)
    assert result.returncode == 0 or missing, result


@pytest.mark.parametrize("name", UNITS.values())
def test_unit_runs_unprivileged_without_capabilities(units, name):
    text = units[name].read_text()
    for setting in (
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "AmbientCapabilities=\n",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
    ):
        assert setting in text, f"{name} lacks {setting.strip()}"
    # IPAddressDeny=/IPAddressAllow= need cgroup BPF, which the lab containers lack.
    assert not re.search(r"^IPAddress(Deny|Allow)=", text, re.M), name
    assert re.search(r"^User=git$", text, re.M), name


def test_ruby_units_leave_memory_deny_write_execute_off(units):
    # YJIT maps its code W+X; the two Ruby services that are not Sidekiq keep it possible.
    for name in ("sidekiq-web.service", "rails-app.service"):
        assert "MemoryDenyWriteExecute=yes" not in units[name].read_text(), name
    assert "MemoryDenyWriteExecute=yes" in units["sidekiq-exporter.service"].read_text()


def test_gitaly_writes_exactly_its_storages_runtime_and_log_dirs():
    storages = [
        {"name": "default", "path": "/var/opt/gitlab/git-data/repositories"},
        {"name": "second", "path": "/srv/gitaly/second"},
    ]
    text = render("roles/gitaly/templates/gitaly.service.j2", gitaly_storages=storages)
    paths = re.search(r"^ReadWritePaths=(.*)$", text, re.M).group(1).split()
    assert paths == [
        "/var/lib/gitaly/run",
        "/var/log/gitaly",
        "/var/opt/gitlab/git-data/repositories",
        "/srv/gitaly/second",
    ]


@pytest.mark.parametrize("setting", [True, False, "false"])
def test_sidekiq_memory_deny_write_execute_follows_its_variable(tmp_path, setting):
    # On by default (the roles' defaults); sidekiq_memory_deny_write_execute: false, for YJIT,
    # leaves the setting out of the unit, and the unit stays within MAX_EXPOSURE either way.
    text = render(
        "roles/sidekiq/templates/sidekiq@.service.j2", sidekiq_memory_deny_write_execute=setting
    )
    wanted = str(setting).lower() == "true"
    settings = re.findall(r"^MemoryDenyWriteExecute=.*$", text, re.M)
    assert settings == (["MemoryDenyWriteExecute=yes"] if wanted else [])
    path = tmp_path / "sidekiq@0.service"
    path.write_text(text)
    result = _analyze("security", "--offline=true", "--no-pager", str(path))
    match = EXPOSURE.search(result.stdout)
    assert match, result.stdout + result.stderr
    print(f"sidekiq_memory_deny_write_execute={setting!r}: exposure {match.group(2)}")
    assert float(match.group(2)) <= MAX_EXPOSURE


def test_sidekiq_memory_deny_write_execute_is_on_by_default(units):
    assert _defaults()["sidekiq_memory_deny_write_execute"] is True
    assert "\nMemoryDenyWriteExecute=yes\n" in units["sidekiq@0.service"].read_text()
