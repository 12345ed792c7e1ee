"""A throwaway real redis-server on a random loopback port, for the tests that need one."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence

import pytest
import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(extra_args: Sequence[str] = (), **client_kwargs) -> Iterator[int]:
    """Start redis-server (no persistence) and yield its port once it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed (apt-get install -y redis-server, which `make test` "
            "does through scripts/hostdeps.sh); these tests need a real one"
        )
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            *extra_args,
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port, socket_timeout=2, **client_kwargs)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode}")
            client.ping()
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)
