"""The Ansible filter plugin hands inventory values to the routing engine unchanged, so the engine's
checks (strict booleans, queue names) hold in the roles too, not only in fleetsim."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[1]
CATALOG = str(ROOT / "apps" / "sample" / "all_queues.yml")


def _plugin():
    spec = importlib.util.spec_from_file_location(
        "sidekiq_fleet_filter", ROOT / "plugins" / "filter" / "sidekiq_fleet.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flag", ["selector", "negate", "strict"])
@pytest.mark.parametrize("value", ["false", "no", "", 0])
def test_quoted_booleans_are_refused_not_flipped(flag, value):
    kwargs = {"selector": False, "negate": False, "strict": True, flag: value}
    with pytest.raises(AnsibleFilterError):
        _plugin().sidekiq_processes(
            ["default,mailers"],
            CATALOG,
            kwargs["selector"],
            kwargs["negate"],
            None,
            None,
            5,
            kwargs["strict"],
        )


def test_real_booleans_work_and_negate_false_keeps_the_group():
    processes = _plugin().sidekiq_processes(
        ["default,mailers"], CATALOG, False, False, None, None, 5
    )
    assert [sorted(p["queues"]) for p in processes] == [["default", "mailers"]]


def test_queue_group_smuggling_flags_is_refused():
    with pytest.raises(AnsibleFilterError, match="position"):
        _plugin().sidekiq_processes(["de fault -r ./evil.rb"], CATALOG, False, False, None, None, 5)


@pytest.mark.parametrize(
    ("address", "wildcard", "loopback"),
    [
        ("0.0.0.0", True, False),
        ("0.0.0.0:8075", True, False),
        ("::", True, False),
        ("[::]:8082", True, False),
        ("*", True, False),
        ("", True, False),
        ("127.0.0.1", False, True),
        ("127.0.0.2:3211", False, True),
        ("::1", False, True),
        ("[::1]:3211", False, True),
        ("localhost", False, True),
        ("10.0.0.5", False, False),
        ("10.0.0.5:6379", False, False),
        ("fe80::1", False, False),
    ],
)
def test_one_bind_check_for_every_role(address, wildcard, loopback):
    plugin = _plugin()
    assert plugin.sidekiq_fleet_wildcard(address) is wildcard
    assert plugin.sidekiq_fleet_loopback(address) is loopback


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("gitlab", True),
        ("deploy-user", True),
        ("rails1.example.com", True),
        ("-u", False),
        ("a b", False),
        ("x\nALL=(ALL) NOPASSWD: ALL", False),
        ("us$er", False),
        ("o'brien", False),
        ("a" * 65, False),
        (7, False),
    ],
)
def test_names_rendered_into_configs_are_checked(name, safe):
    assert _plugin().sidekiq_fleet_safe_name(name) is safe
