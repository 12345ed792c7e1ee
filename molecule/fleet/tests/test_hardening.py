"""The fleet's other services are as hardened as the Sidekiq processes (security review, issue 9
item 9): on the live nodes, `systemd-analyze security` rates each unit at 2.0 or below, and
the unit still runs with its hardening.

The unit test tests/test_unit_hardening.py rates the rendered templates offline; this module
rates the units systemd actually loaded. Gitaly is not checked here: the fleet scenario gives
the gitaly role no binary, so its unit is installed but never started (the offline test
covers its template).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import testinfra
from conftest import PRODUCER, WORKERS, host_spec, wait_for

testinfra_hosts = [host_spec(PRODUCER)]

MAX_EXPOSURE = 2.0
OUT = Path(__file__).resolve().parents[3] / "out"
WORKER = WORKERS[0]  # fleet-sidekiq1: the one with Sidekiq Web in the assertions of test_fleet

UNITS = [
    (WORKER, "sidekiq-web.service"),
    (WORKER, "sidekiq-exporter.service"),
    (PRODUCER, "rails-app.service"),
]


@pytest.fixture(scope="module")
def exposure_log():
    """out/fleet-exposure-units.txt holds this run's ratings only (rewritten, not appended)."""
    OUT.mkdir(exist_ok=True)
    with (OUT / "fleet-exposure-units.txt").open("w") as out:
        yield out


@pytest.mark.parametrize(("name", "unit"), UNITS, ids=[f"{n}-{u}" for n, u in UNITS])
def test_live_unit_runs_and_exposure_is_at_most_2(name, unit, exposure_log):
    node = testinfra.get_host(host_spec(name))
    # Hardened too far, a service dies at start (or on its first request): it must be running.
    wait_for(f"{unit} active on {name}", lambda: node.service(unit).is_running, timeout=30)
    line = node.check_output(f"systemd-analyze security --no-pager {unit} 2>&1 | tail -1")
    exposure_log.write(f"{name}: {line}\n")
    exposure_log.flush()
    match = re.search(rf"exposure level for {re.escape(unit)}: (\d+(?:\.\d+)?)", line)
    assert match, line
    assert float(match.group(1)) <= MAX_EXPOSURE, line
