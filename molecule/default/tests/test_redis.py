"""Redis: authenticated over TCP from the worker, never evicts, persists with AOF."""

from __future__ import annotations

import re

from conftest import host_spec, with_worker_env

testinfra_hosts = [host_spec("mol-redis")]


def test_redis_listens_on_loopback_and_the_worker_network_only(host):
    listeners = {
        s.split("://", 1)[1]
        for s in (str(x) for x in host.socket.get_listening_sockets())
        if ":6379" in s
    }
    assert "0.0.0.0:6379" not in listeners
    assert "127.0.0.1:6379" in listeners
    assert "172.28.51.11:6379" in listeners


def test_redis_never_evicts_and_appends_every_second(host):
    conf = host.file("/etc/redis/redis.conf").content_string
    assert "\nmaxmemory-policy noeviction\n" in conf
    assert "\nappendonly yes\n" in conf
    assert "\nappendfsync everysec\n" in conf
    assert "\nprotected-mode yes\n" in conf
    assert host.file("/var/lib/redis/appendonlydir").is_directory


def test_redis_config_keeps_no_clear_text_password(host):
    conf = host.file("/etc/redis/redis.conf")
    assert conf.mode == 0o640
    assert ">" not in "".join(
        line for line in conf.content_string.splitlines() if line.startswith("user ")
    )


def test_redis_unit_keeps_debian_hardening(host):
    unit = host.check_output(
        "systemctl show redis-server -p ProtectSystem -p NoNewPrivileges -p PrivateUsers"
    )
    assert "ProtectSystem=strict" in unit
    assert "NoNewPrivileges=yes" in unit
    assert host.service("redis-server").is_running


def test_worker_gets_pong_with_the_password_from_its_url(worker, worker_env):
    assert any(c in worker_env["REDIS_PASSWORD"] for c in "@:/#%?&+=!"), (
        "the test password must hold URL-unsafe characters"
    )
    out = worker.check_output(
        with_worker_env('redis-cli $REDIS_TLS --no-auth-warning -u "$REDIS_URL" ping')
    )
    assert out.strip() == "PONG"


def test_worker_is_refused_without_the_password(worker):
    out = worker.run(with_worker_env('redis-cli $REDIS_TLS -h "$REDIS_HOST" ping'))
    assert "NOAUTH" in out.stdout + out.stderr
    wrong = worker.run(
        with_worker_env(
            'redis-cli $REDIS_TLS --no-auth-warning -h "$REDIS_HOST" --user "$REDIS_USERNAME" '
            "--pass wrong-password ping"
        )
    )
    assert "WRONGPASS" in wrong.stdout + wrong.stderr


def test_live_server_runs_noeviction_and_aof(worker):
    # CONFIG is denied to the app user; INFO is not.
    info = worker.check_output(
        with_worker_env('redis-cli $REDIS_TLS --no-auth-warning -u "$REDIS_URL" info')
    )
    assert "maxmemory_policy:noeviction" in info
    assert "aof_enabled:1" in info


def test_app_user_may_not_run_dangerous_commands(worker):
    commands = (
        "FLUSHALL",
        "FLUSHDB",
        "CONFIG GET maxmemory-policy",
        "KEYS '*'",
        "ACL SETUSER gitlab +flushall",
        "SHUTDOWN",
    )
    for command in commands:
        out = worker.run(
            with_worker_env(f'redis-cli $REDIS_TLS --no-auth-warning -u "$REDIS_URL" {command}')
        )
        assert "NOPERM" in out.stdout + out.stderr, (
            f"{command} was not refused: {out.stdout}{out.stderr}"
        )
    # DEBUG is refused twice over: the ACL, and Redis 7's enable-debug-command (checked first).
    out = worker.run(
        with_worker_env('redis-cli $REDIS_TLS --no-auth-warning -u "$REDIS_URL" DEBUG SLEEP 0')
    )
    assert (
        "NOPERM" in out.stdout + out.stderr
        or "DEBUG command not allowed" in out.stdout + out.stderr
    )
    # and the app user can do what Sidekiq does
    push = worker.check_output(
        with_worker_env(
            'redis-cli $REDIS_TLS --no-auth-warning -u "$REDIS_URL" LPUSH queue:molecule job'
        )
    )
    assert int(push) >= 1


def test_plain_text_client_is_refused(worker):
    """TLS only: the plain-text port is closed, a client without TLS gets no answer."""
    plain = 'redis-cli --no-auth-warning -u "${REDIS_URL/rediss:/redis:}" ping'
    out = worker.run(with_worker_env(plain))
    said = out.stdout + out.stderr
    assert "PONG" not in out.stdout and (out.rc != 0 or "error" in said.lower()), said


def test_client_with_another_ca_is_refused(worker):
    worker.check_output(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=another-ca -keyout /tmp/other-ca.key -out /tmp/other-ca.crt 2>/dev/null"
    )
    out = worker.run(
        with_worker_env(
            'redis-cli --tls --cacert /tmp/other-ca.crt --no-auth-warning -u "$REDIS_URL" ping'
        )
    )
    assert "PONG" not in out.stdout
    assert "certificate verify failed" in (out.stdout + out.stderr).lower(), out.stdout + out.stderr


def test_redis_serves_tls_only(host):
    config = host.file("/etc/redis/redis.conf").content_string
    assert re.search(r"^port 0$", config, re.M) and re.search(r"^tls-port 6379$", config, re.M)
