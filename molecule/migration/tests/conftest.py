"""Helpers for the migration scenario: hosts by name, the app's settings, Redis and SQL."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable
from typing import Any

import pytest
import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
APP_ENV = "/etc/sidekiq-fleet/app.env"
WORKERS = ("mig-sidekiq1", "mig-sidekiq2")
PRODUCERS = ("mig-rails1", "mig-rails2")
LB = "mig-lb"
LOG_DIR = "/var/log/sidekiq-fleet-migration"


def host_spec(name: str) -> str:
    return f"ansible://{name}?ansible_inventory={INVENTORY}"


def with_app_env(command: str) -> str:
    return f"bash -c {shlex.quote(f'set -a; . {APP_ENV}; set +a; {command}')}"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")


REDIS_SCRIPT = r"""
import json, os, sys, redis
env = os.environ
url = env["SIDEKIQ_REDIS_URL"]
host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
r = redis.Redis(host=host, port=int(port), username=env.get("SIDEKIQ_REDIS_USERNAME") or None,
                password=env.get("SIDEKIQ_REDIS_PASSWORD") or None, decode_responses=True)
out = {"queues": {}, "sets": {}, "quarantine": r.lrange("sidekiq-fleet:quarantine", 0, -1),
       "known_queues": sorted(r.smembers("queues")), "processes": {},
       "planted": json.loads(r.get("sidekiq-fleet:planted") or "[]")}
for key in r.scan_iter(match="queue:*"):
    out["queues"][key[6:]] = r.lrange(key, 0, -1)
for name in ("retry", "dead", "schedule"):
    out["sets"][name] = r.zrange(name, 0, -1)
for p in r.smembers("processes"):
    info = r.hget(p, "info")
    if info:
        out["processes"][p] = json.loads(info).get("queues", [])
print(json.dumps(out))
"""


class Lab:
    def __init__(self) -> None:
        self.worker = testinfra.get_host(host_spec(WORKERS[0]))
        self.producer = testinfra.get_host(host_spec(PRODUCERS[0]))
        self.lb = testinfra.get_host(host_spec(LB))

    def redis_state(self) -> dict[str, Any]:
        out = self.worker.check_output(with_app_env(f"python3 -c {shlex.quote(REDIS_SCRIPT)}"))
        return json.loads(out)

    def sql(self, statement: str) -> list[list[str]]:
        out = self.producer.check_output(
            with_app_env(f"psql -XAt -F '|' -c {shlex.quote(statement)}")
        )
        return [line.split("|") for line in out.splitlines() if line]

    def producer_log(self) -> list[dict[str, Any]]:
        text = self.lb.file(f"{LOG_DIR}/producer.jsonl").content_string
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def haproxy_samples(self) -> list[tuple[float, str, str, int, int]]:
        text = self.lb.file(f"{LOG_DIR}/haproxy-stat.csv").content_string
        rows = []
        for line in text.splitlines():
            t, server, status, stot, scur = line.split(",")
            rows.append((float(t), server, status, int(stot or 0), int(scur or 0)))
        return rows


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab()
