"""Shared helpers for the fleet scenario: hosts by name, the app's settings, Redis and SQL."""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Callable
from typing import Any

import pytest
import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
APP_ENV = "/etc/sidekiq-fleet/app.env"
WORKERS = ("fleet-sidekiq1", "fleet-sidekiq2")
PRODUCER = "fleet-rails"
PRODUCER_URL = "http://172.28.52.31:8080"
CLASSES = (
    "UrgentNotificationWorker",
    "ChecksumWorker",
    "RepositoryProbeWorker",
    "FlakyImportWorker",
    "AuditEventWorker",
)


def host_spec(name: str) -> str:
    return f"ansible://{name}?ansible_inventory={INVENTORY}"


def with_app_env(command: str) -> str:
    """A shell command run with the app's environment (Redis, PostgreSQL) exported."""
    return f"bash -c {shlex.quote(f'set -a; . {APP_ENV}; set +a; {command}')}"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 1.0) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")


@pytest.fixture(scope="session")
def producer() -> testinfra.host.Host:
    return testinfra.get_host(host_spec(PRODUCER))


@pytest.fixture(scope="session")
def workers() -> dict[str, testinfra.host.Host]:
    return {name: testinfra.get_host(host_spec(name)) for name in WORKERS}


class Fleet:
    """What the tests do through the producer node: enqueue, query PostgreSQL and Redis."""

    def __init__(self, producer: testinfra.host.Host) -> None:
        self.producer = producer

    def enqueue(self, worker_class: str, count: int, batch: str, fail: int | None = None) -> dict:
        query = f"class={worker_class}&n={count}&batch={batch}" + (
            f"&fail={fail}" if fail is not None else ""
        )
        out = self.producer.check_output(f"curl -sf -X POST -d '' '{PRODUCER_URL}/enqueue?{query}'")
        return json.loads(out)

    def sql(self, statement: str) -> list[list[str]]:
        out = self.producer.check_output(
            with_app_env(f"psql -XAt -F '|' -c {shlex.quote(statement)}")
        )
        return [line.split("|") for line in out.splitlines() if line]

    def redis(self, *args: str) -> str:
        command = (
            'REDISCLI_AUTH="$SIDEKIQ_REDIS_PASSWORD" redis-cli --no-auth-warning '
            '-h "$PGHOST_REDIS" '
            '--user "$SIDEKIQ_REDIS_USERNAME" ' + " ".join(shlex.quote(a) for a in args)
        )
        # The Redis host is in SIDEKIQ_REDIS_URL (redis://host:port/db).
        prefix = 'PGHOST_REDIS=$(echo "$SIDEKIQ_REDIS_URL" | sed -E "s#redis://([^:/]+).*#\\1#"); '
        return self.producer.check_output(with_app_env(prefix + command))

    def rows(self, batch: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM sample_jobs WHERE batch = '{batch}'")[0][0])


@pytest.fixture(scope="session")
def fleet(producer: testinfra.host.Host) -> Fleet:
    return Fleet(producer)


def rendered_args(worker: testinfra.host.Host) -> dict[int, list[str]]:
    """The Sidekiq arguments the role rendered on a worker, per process index."""
    rendered = {}
    for path in worker.check_output(
        "ls /etc/sidekiq-fleet/ | grep -E '^sidekiq@[0-9]+\\.env$'"
    ).split():
        text = worker.file(f"/etc/sidekiq-fleet/{path}").content_string
        index = int(path.removeprefix("sidekiq@").removesuffix(".env"))
        rendered[index] = re.search(r'^SIDEKIQ_ARGS="(.*)"$', text, re.M).group(1).split()
    return rendered


def http_status(host: testinfra.host.Host, url: str, auth: str | None = None) -> int:
    """HTTP status of a GET from `host` (python3 is on every node; curl only on the producer)."""
    script = (
        "import base64, sys, urllib.request, urllib.error\n"
        f"req = urllib.request.Request({url!r})\n"
        + (
            "req.add_header('Authorization', 'Basic ' + "
            f"base64.b64encode({auth!r}.encode()).decode())\n"
            if auth
            else ""
        )
        + "try:\n"
        "    print(urllib.request.urlopen(req, timeout=5).status)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
        "except OSError:\n"
        "    print(0)\n"
    )
    return int(host.check_output(f"python3 -c {shlex.quote(script)}"))


def http_body(host: testinfra.host.Host, url: str) -> str:
    script = (
        f"import urllib.request\nprint(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    )
    return host.check_output(f"python3 -c {shlex.quote(script)}")


# -- wall times of record ---------------------------------------------------------------------
# Every test's seconds (setup + call + teardown) and the steps a module times itself
# (record_step) go to out/fleet-verify-times.json at the end of verify, so the docs' stage times
# come from a run, not from a terminal that molecule may not show.
_TIMES: dict[str, dict[str, float]] = {"tests": {}, "steps": {}}
_TIMES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "out",
                           "fleet-verify-times.json")


def record_step(name: str, seconds: float) -> None:
    """A step's wall time, kept for out/fleet-verify-times.json."""
    _TIMES["steps"][name] = round(seconds, 1)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tests = _TIMES["tests"]
    tests[report.nodeid] = round(tests.get(report.nodeid, 0.0) + report.duration, 1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    os.makedirs(os.path.dirname(_TIMES_FILE), exist_ok=True)
    with open(_TIMES_FILE, "w", encoding="utf-8") as out:
        json.dump(_TIMES, out, indent=1)
        out.write("\n")
