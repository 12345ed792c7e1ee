"""Shared helpers for the data-tier scenario: hosts by inventory group, the worker's settings."""

from __future__ import annotations

import os
import shlex

import pytest
import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
ENV_FILE = "/etc/sidekiq-fleet-data-tier.env"


def host_spec(name: str) -> str:
    """testinfra host spec for one molecule instance, through molecule's inventory."""
    return f"ansible://{name}?ansible_inventory={INVENTORY}"


def with_worker_env(command: str) -> str:
    """Run a shell command on the worker with its data-tier settings exported."""
    return f"bash -c {shlex.quote(f'set -a; . {ENV_FILE}; set +a; {command}')}"


@pytest.fixture(scope="session")
def worker() -> testinfra.host.Host:
    return testinfra.get_host(host_spec("mol-sidekiq"))


@pytest.fixture(scope="session")
def outsider() -> testinfra.host.Host:
    return testinfra.get_host(host_spec("mol-outsider"))


@pytest.fixture(scope="session")
def worker_env(worker: testinfra.host.Host) -> dict[str, str]:
    """The settings the worker node got, as its shell sees them."""
    out = worker.check_output(with_worker_env("env -0"))
    pairs = (item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def tcp_probe(host: testinfra.host.Host, address: str, port: int, timeout: float = 3.0) -> str:
    """Open a TCP connection from `host`.

    Returns 'open', 'refused' (a host answered) or 'timeout' (dropped).
    """
    script = (
        "import socket, sys\n"
        f"s = socket.socket(); s.settimeout({timeout})\n"
        "try:\n"
        f"    s.connect(({address!r}, {port})); print('open')\n"
        "except ConnectionRefusedError:\n"
        "    print('refused')\n"
        "except (socket.timeout, TimeoutError):\n"
        "    print('timeout')\n"
    )
    return host.check_output(f"python3 -c {shlex.quote(script)}").strip()
