"""fleet_alert_settings: an inventory's overrides of the alert thresholds that are not SLOs (a lab's
shorter waits), read the same way by `fleetsim alerts` and the prometheus role's filter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.cli.main import main
from simulator.errors import InventoryError
from simulator.fleet.inventory import Fleet
from simulator.report.alert_settings import alert_settings, settings_from_mapping
from simulator.report.alerts import AlertSettings, alert_rules


def _fleet(settings=None) -> Fleet:
    common = {"sidekiq_routing_rules": [["*", "default"]], "sidekiq_queue_groups": ["default"]}
    if settings is not None:
        common["fleet_alert_settings"] = settings
    return Fleet.from_hostvars({"sk1": dict(common)}, {"sidekiq": ["sk1"]})


def _for(document: dict, alert: str) -> list[str]:
    return [r.get("for") for g in document["groups"] for r in g["rules"]
            if r.get("alert") == alert]


def test_unset_keeps_every_default():
    assert alert_settings(_fleet()) == AlertSettings()
    assert settings_from_mapping(None) == AlertSettings()


def test_an_override_changes_that_setting_only():
    fleet = _fleet({"process_down_for": "30s", "redis_memory_share": 0.8})
    settings = alert_settings(fleet)
    assert settings.process_down_for == "30s"
    assert settings.redis_memory_share == 0.8
    assert settings.no_listener_for == AlertSettings().no_listener_for
    assert _for(alert_rules(fleet, settings=settings), "SidekiqProcessDown") == ["30s"]


@pytest.mark.parametrize(("values", "message"), [
    ("30s", "must be a mapping"),
    ({"process_down": "30s"}, "has no setting"),
    ({"windows": []}, "has no setting"),
    ({"process_down_for": "30"}, "must be a duration"),
    ({"process_down_for": "1h30m"}, "must be a duration"),
    ({"retry_set_growth_per_hour": 0}, "whole number of at least 1"),
    ({"retry_set_growth_per_hour": True}, "must be a number"),
    ({"redis_memory_share": 1.5}, "share between 0 and 1"),
])
def test_bad_values_name_the_setting_and_the_fix(values, message):
    with pytest.raises(InventoryError) as caught:
        settings_from_mapping(values, "group_vars/all.yml")
    assert message in str(caught.value)
    assert caught.value.hint


def test_cli_reads_it_from_the_inventory(tmp_path: Path, capsys):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "children": {"sidekiq": {"hosts": {"sk1": {}}}},
        "vars": {"sidekiq_routing_rules": [["*", "default"]],
                 "sidekiq_queue_groups": ["default"],
                 "fleet_alert_settings": {"process_down_for": "20s"}}}}))
    out = tmp_path / "alerts.yml"
    assert main(["alerts", "-i", str(inventory), "-o", str(out)]) == 0
    assert _for(yaml.safe_load(out.read_text()), "SidekiqProcessDown") == ["20s"]


def test_cli_refuses_a_bad_value_with_exit_2(tmp_path: Path, capsys):
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "children": {"sidekiq": {"hosts": {"sk1": {}}}},
        "vars": {"fleet_alert_settings": {"process_down_for": "soon"}}}}))
    assert main(["alerts", "-i", str(inventory), "-o", str(tmp_path / "a.yml")]) == 2
    assert "process_down_for" in capsys.readouterr().err
