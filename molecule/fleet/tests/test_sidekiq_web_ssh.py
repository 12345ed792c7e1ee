"""Sidekiq Web the way an operator reaches it (issue 14 item 5): through a real SSH tunnel.

docs/worker-nodes.md ("Sidekiq Web") tells operators to run `ssh -N -L ...:127.0.0.1:3211
deploy@WORKER` and open the forwarded port. Here the producer stands in for the operator's
machine: its account `operator` has an ed25519 key made in prepare.yml, whose public key the
sidekiq role authorized for each worker's deploy user (group_vars/all/operator.yml); the workers'
host keys are in its known_hosts. For each worker the test opens the tunnel in the background,
fetches the dashboard through it with curl (401 without the basic-auth password, 200 and a
Sidekiq Web page with it), closes the tunnel and checks that nothing is left listening or
running. Port 3211 itself answers to nobody on the network: the operator's machine cannot
connect to it (the firewall drops it, and nothing listens there anyway: the worker itself is
refused on its own network address).
"""

from __future__ import annotations

import re
import shlex
import time

import pytest
import testinfra
from conftest import PRODUCER, WORKERS, host_spec, wait_for

testinfra_hosts = [host_spec(PRODUCER)]

OPERATOR = "operator"
DEPLOY_USER = "deploy"
WEB_PORT = 3211
LOCAL_PORT = 13211  # the operator's side of the tunnel (any free local port)
ADDRESSES = {"fleet-sidekiq1": "172.28.52.21", "fleet-sidekiq2": "172.28.52.22"}
WEB_ENV = "/etc/sidekiq-fleet/sidekiq-web.env"
URL = f"http://127.0.0.1:{LOCAL_PORT}/"


@pytest.fixture(scope="module", autouse=True)
def wall_time(request):
    """The module's wall time, on the terminal (it adds to every verify of the scenario)."""
    started = time.monotonic()
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = f"test_sidekiq_web_ssh: {time.monotonic() - started:.1f} s wall time"
    if reporter is not None:
        reporter.write_line(f"\n{line}")
    else:
        print(line)


@pytest.fixture(scope="module")
def operator():
    return testinfra.get_host(host_spec(PRODUCER))


def tunnel_command(address: str) -> str:
    """The documented command, with the options a script needs: never prompt, and fail (exit)
    when the local port cannot be forwarded instead of running on without it."""
    return (
        "ssh -N -o BatchMode=yes -o ExitOnForwardFailure=yes -o StrictHostKeyChecking=yes "
        f"-o ConnectTimeout=5 -L 127.0.0.1:{LOCAL_PORT}:127.0.0.1:{WEB_PORT} "
        f"{DEPLOY_USER}@{address}"
    )


def curl(host: testinfra.host.Host, url: str, credentials: str | None = None) -> tuple[str, str]:
    """HTTP status ("000" when curl cannot connect) and body of a GET. The credentials go to curl
    only and are never part of a message or of a value an assertion shows (pytest prints the
    arguments of calls inside an assert, so callers assert on the returned strings only)."""
    auth = f"-u {shlex.quote(credentials)} " if credentials else ""
    result = host.run(f"curl -s --max-time 5 -w '\\n%{{http_code}}' {auth}{url}")
    body, _, status = result.stdout.rpartition("\n")
    return status.strip(), body


def alive(host: testinfra.host.Host, pid: int) -> bool:
    return host.run(f"kill -0 {pid}").rc == 0


@pytest.mark.parametrize("name", WORKERS)
def test_sidekiq_web_answers_through_an_ssh_tunnel_and_the_tunnel_closes_cleanly(operator, name):
    worker = testinfra.get_host(host_spec(name))
    address = ADDRESSES[name]
    keys = worker.run(f"cat ~{DEPLOY_USER}/.ssh/authorized_keys")
    public_key = operator.file(f"/home/{OPERATOR}/.ssh/id_ed25519.pub").content_string.split()
    assert keys.rc == 0 and public_key[1] in keys.stdout, (
        f"{name}: the operator's key is not authorized for {DEPLOY_USER}; prepare.yml makes it "
        "and converge authorizes it (run `molecule prepare --force`, then converge)"
    )
    assert not operator.socket(f"tcp://127.0.0.1:{LOCAL_PORT}").is_listening, "port taken"
    credentials = worker.check_output(
        "bash -c "
        + shlex.quote(f'. {WEB_ENV}; printf %s:%s "$SIDEKIQ_WEB_USERNAME" "$SIDEKIQ_WEB_PASSWORD"')
    )

    log = f"/home/{OPERATOR}/sidekiq-web-tunnel.log"
    started = operator.check_output(
        f"runuser -u {OPERATOR} -- sh -c "
        + shlex.quote(f"{tunnel_command(address)} </dev/null >/dev/null 2>{log} & echo $!")
    )
    pid = int(started)

    def forwarded() -> bool:
        if not alive(operator, pid):
            pytest.fail(f"ssh exited: {operator.run(f'cat {log}').stdout.strip()}")
        # Sidekiq Web may still be starting after the rolling deploy of test_fleet.
        return curl(operator, URL)[0] in ("401", "200")

    try:
        wait_for(f"the forward to {name}:{WEB_PORT}", forwarded, timeout=30, every=0.5)
        anonymous, _ = curl(operator, URL)
        assert anonymous == "401"
        username = credentials.split(":", 1)[0]
        wrong, _ = curl(operator, URL, f"{username}:wrong-password")
        assert wrong == "401"
        status, body = curl(operator, URL, credentials)
        assert status == "200"
        assert re.search(r"<title>[^<]*Sidekiq[^<]*</title>", body), body[:300]
        assert "Dashboard" in body, body[:300]
        assert 'id="redis_version"' in body, body[:300]  # it read Redis: the real dashboard
    finally:
        operator.run(f"kill {pid}")
    wait_for("ssh to exit", lambda: not alive(operator, pid), timeout=10, every=0.2)
    assert not operator.socket(f"tcp://127.0.0.1:{LOCAL_PORT}").is_listening
    assert operator.run(f"pgrep -u {OPERATOR} -x ssh").rc == 1, "an ssh of the operator is left"
    after, _ = curl(operator, URL)
    assert after == "000"
    # The worker's end of the session (sshd-session, or sshd before OpenSSH 9.8) is gone too.
    wait_for(
        f"the SSH session of {DEPLOY_USER} to end on {name}",
        lambda: worker.run(f"pgrep -f '^sshd(-session)?: {DEPLOY_USER}'").rc == 1,
        timeout=10,
        every=0.2,
    )


@pytest.mark.parametrize("name", WORKERS)
def test_sidekiq_web_port_is_unreachable_directly(operator, name):
    worker = testinfra.get_host(host_spec(name))
    address = ADDRESSES[name]
    # From the operator's machine: refused (7) or, with the firewall's drop, timed out (28).
    direct = operator.run(
        f"curl -s -o /dev/null --connect-timeout 3 --max-time 5 http://{address}:{WEB_PORT}/"
    )
    assert direct.rc in (7, 28), f"curl http://{address}:{WEB_PORT}/ exited {direct.rc}"
    # On the worker itself (loopback path, no firewall in the way): nothing listens there.
    probe = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {WEB_PORT}), timeout=3)\n"
        "    print('connected')\n"
        "except ConnectionRefusedError:\n"
        "    print('refused')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    assert worker.check_output(f"python3 -c {shlex.quote(probe)}") == "refused"
