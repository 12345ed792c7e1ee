"""Firewalls: the worker reaches the data tier, the outsider reaches nothing."""

from __future__ import annotations

import os
import subprocess

import pytest
import testinfra
from conftest import host_spec, tcp_probe

testinfra_hosts = [host_spec("mol-outsider")]

SERVICES = [("172.28.51.11", 6379), ("172.28.51.12", 5432), ("172.28.51.13", 8075)]


@pytest.mark.parametrize(("address", "port"), SERVICES)
def test_outsider_cannot_open_tcp(host, address, port):
    assert tcp_probe(host, address, port) == "timeout"


@pytest.mark.parametrize(("address", "port"), SERVICES)
def test_worker_gets_through_the_firewall(worker, address, port):
    # Gitaly has no binary in the lab: a refused connection proves the firewall let it through.
    assert tcp_probe(worker, address, port) in ({"open"} if port != 8075 else {"refused", "open"})


def test_rules_are_default_deny(host):
    ruleset = host.check_output("nft list table inet sidekiq_fleet")
    assert "policy drop" in ruleset


def test_ssh_is_closed_without_admin_cidrs(host):
    ruleset = host.check_output("nft list table inet sidekiq_fleet")
    assert "dport 22" not in ruleset


def test_ssh_allowed_only_from_the_session_that_applied_the_rules():
    """The gitaly node's firewall was applied over SSH (sudo drops SSH_CONNECTION): port 22
    stays open to the controller's address on the lab network, and to nothing else."""
    gitaly = testinfra.get_host(host_spec("mol-gitaly"))
    ruleset = gitaly.check_output("nft list table inet sidekiq_fleet")
    ssh_rules = [line.strip() for line in ruleset.splitlines() if "dport 22 " in line]
    assert len(ssh_rules) == 1 and "ip saddr 172.28.51.1 " in ssh_rules[0], ruleset


def test_outsider_cannot_reach_ssh(host):
    assert tcp_probe(host, "172.28.51.13", 22) == "timeout"


def test_controller_opens_a_new_ssh_session():
    key = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "fleetadmin_ed25519")
    result = subprocess.run(
        [
            "ssh",
            "-i",
            key,
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "fleetadmin@172.28.51.13",
            "sudo",
            "-n",
            "nft",
            "list",
            "table",
            "inet",
            "sidekiq_fleet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "policy drop" in result.stdout, result.stderr


def test_fleet_table_is_loaded_by_its_own_unit_not_nftables_service(host):
    unit = host.service("sidekiq-fleet-firewall")
    assert unit.is_enabled
    assert not host.file("/etc/nftables.conf").contains("sidekiq-fleet")


def test_operator_nftables_table_survives_the_fleet_firewall():
    """The fleet's table is replaced on its own: a table the operator loaded before converge (and
    its counter, which has been counting since) is still there after two converges."""
    redis = testinfra.get_host(host_spec("mol-redis"))
    guard = redis.run("nft list table inet operator_guard")
    assert guard.rc == 0 and "counter packets" in guard.stdout, guard.stderr
    assert redis.run("nft list table inet sidekiq_fleet").rc == 0


def test_ufw_backend_holds_the_fleet_rules_and_the_operators_own():
    postgresql = testinfra.get_host(host_spec("mol-postgresql"))
    status = postgresql.check_output("ufw status verbose")
    assert "Status: active" in status and "deny (incoming)" in status, status
    added = postgresql.check_output("ufw show added")
    assert "comment 'operator: postgres exporter'" in added, added
    fleet = [line for line in added.splitlines() if "comment 'sidekiq-fleet " in line]
    # Only the workers (172.28.51.21, and the omnibus node 172.28.51.22) reach PostgreSQL; the
    # stale rule for the outsider is gone.
    assert sorted(line for line in fleet if "port 5432 " in line) == [
        f"ufw allow from 172.28.51.{host} to any port 5432 proto tcp "
        "comment 'sidekiq-fleet postgresql from rails, sidekiq'"
        for host in (21, 22)
    ], added
    # No nftables table of the fleet on a ufw host (two firewalls would be one too many).
    assert postgresql.run("nft list table inet sidekiq_fleet").rc != 0


def test_operators_ufw_rule_still_lets_its_source_in(host):
    """The outsider is the source of the operator's own rule for 9187: nothing listens there, so
    the connection is refused (answered) rather than dropped, unlike 5432 from the same host."""
    assert tcp_probe(host, "172.28.51.12", 9187) == "refused"


def test_worker_output_policy_allows_only_the_fleet_services(worker):
    ruleset = worker.check_output("nft list table inet sidekiq_fleet")
    assert "chain output" in ruleset and "policy drop" in ruleset.split("chain output")[1]
    # The outsider runs nothing on port 9: the kernel would answer "refused" if the packet left.
    assert tcp_probe(worker, "172.28.51.99", 9) == "timeout"
