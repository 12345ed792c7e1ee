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
