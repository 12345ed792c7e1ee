"""Firewalls: the worker reaches the data tier, the outsider reaches nothing."""

from __future__ import annotations

import pytest
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
