"""PostgreSQL: SCRAM over TCP from the worker only, never trust over TCP."""

from __future__ import annotations

import shlex

from conftest import host_spec, with_worker_env

testinfra_hosts = [host_spec("mol-postgresql")]


def psql_as_postgres(host, sql: str) -> str:
    return host.check_output(f"runuser -u postgres -- psql -XAtq -c {shlex.quote(sql)}")


def test_pg_hba_has_no_trust_line_for_tcp(host):
    rules = psql_as_postgres(host, "SELECT type || ' ' || auth_method FROM pg_hba_file_rules")
    tcp = [r for r in rules.splitlines() if r.split()[0].startswith("host")]
    assert tcp, "pg_hba has no TCP rule at all"
    assert not [r for r in tcp if r.endswith(" trust")]
    # The file PostgreSQL itself reads (15 on bookworm, 17 on trixie).
    hba_path = psql_as_postgres(host, "SHOW hba_file").strip()
    hba = host.file(hba_path).content_string
    assert not [
        line
        for line in hba.splitlines()
        if line.split() and line.split()[0].startswith("host") and "trust" in line.split()
    ]


def test_app_database_is_open_to_the_worker_address_only(host):
    rules = psql_as_postgres(
        host,
        "SELECT address || ' ' || auth_method FROM pg_hba_file_rules "
        "WHERE type = 'hostssl' AND 'gitlabhq_production' = ANY(database)",
    )
    # The standalone worker and the omnibus-flavour Sidekiq node.
    assert sorted(rules.split("\n")) == ["172.28.51.21 scram-sha-256", "172.28.51.22 scram-sha-256"]


def test_passwords_are_stored_as_scram(host):
    assert psql_as_postgres(host, "SHOW password_encryption") == "scram-sha-256"
    stored = psql_as_postgres(host, "SELECT rolpassword FROM pg_authid WHERE rolname = 'gitlab'")
    assert stored.startswith("SCRAM-SHA-256$")


def test_postgresql_listens_on_the_inventory_addresses(host):
    assert psql_as_postgres(host, "SHOW listen_addresses") == "127.0.0.1,172.28.51.12"


def test_worker_connects_with_scram(worker):
    out = worker.check_output(
        with_worker_env(
            "psql -XAtq -c \"SELECT current_user || ' ' || current_database() || ' ' || "
            '(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"'
        )
    )
    assert out.strip() == "gitlab gitlabhq_production true"  # over TLS (sslmode=verify-full)


def test_worker_is_refused_with_a_wrong_password(worker):
    out = worker.run(with_worker_env("PGPASSWORD=wrong-password psql -XAtq -c 'SELECT 1'"))
    assert out.rc != 0
    assert 'password authentication failed for user "gitlab"' in out.stderr


def test_plain_text_client_is_refused(worker):
    out = worker.run(with_worker_env("psql 'sslmode=disable' -XAtq -c 'SELECT 1'"))
    assert out.rc != 0 and "no encryption" in out.stderr, out.stderr


def test_client_with_another_ca_is_refused(worker):
    worker.check_output(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=another-ca -keyout /tmp/other-ca.key -out /tmp/other-ca.crt 2>/dev/null"
    )
    out = worker.run(with_worker_env("PGSSLROOTCERT=/tmp/other-ca.crt psql -XAtq -c 'SELECT 1'"))
    assert out.rc != 0 and "certificate verify failed" in out.stderr, out.stderr


def test_pg_hba_tcp_lines_are_hostssl_only(host):
    types = psql_as_postgres(host, "SELECT DISTINCT type FROM pg_hba_file_rules").split()
    assert "host" not in types and "hostssl" in types, types
