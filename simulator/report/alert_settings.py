"""The inventory's overrides of :class:`~simulator.report.alerts.AlertSettings`.

``fleet_alert_settings`` (group_vars/all, read on the first sidekiq host, or rails host, like the
routing rules) is a mapping from a setting's name to its value, for the thresholds that are not
SLOs: how long a process may be down before ``SidekiqProcessDown`` fires, and the like. A
production inventory rarely sets it; a lab sets shorter waits so an alert can be provoked and
observed in minutes::

    fleet_alert_settings:
      process_down_for: 30s

``fleetsim alerts`` and the filter ``sidekiq_fleet_alert_rules`` (the prometheus role) read it
the same way; an unset variable keeps every default.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InventoryError, excerpt
from ..fleet.inventory import Fleet
from .alerts import AlertSettings

__all__ = ["VARIABLE", "alert_settings", "settings_from_mapping"]

#: The inventory variable.
VARIABLE = "fleet_alert_settings"

#: A Prometheus duration the rules generator understands: a number and one unit.
_DURATION = re.compile(r"[1-9][0-9]*[smhd]")
#: Settings an inventory may change (``windows`` is the SRE workbook's table, not a knob).
_KNOBS = {f.name: f for f in dataclasses.fields(AlertSettings) if f.name != "windows"}


def _value(name: str, value: Any, default: Any, where: str | None) -> Any:
    def error(expected: str) -> InventoryError:
        return InventoryError(
            f"{VARIABLE}.{name} must be {expected}, not {excerpt(value)}",
            file=where,
            rule=f"{VARIABLE}.{name}",
            hint=f"write for example `{name}: {default}` (the default)",
        )

    if isinstance(default, str):
        if not isinstance(value, str) or not _DURATION.fullmatch(value):
            raise error("a duration: a whole number and one unit s, m, h or d (30s, 5m)")
        return value
    if isinstance(value, bool):
        raise error("a number")
    if isinstance(default, int):
        if not isinstance(value, int) or value < 1:
            raise error("a whole number of at least 1")
        return value
    if not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise error("a share between 0 and 1")
    return float(value)


def settings_from_mapping(values: Any, where: str | None = None) -> AlertSettings:
    """``AlertSettings`` with ``values`` (the variable's value; None: every default) applied."""
    defaults = AlertSettings()
    if values is None:
        return defaults
    if not isinstance(values, Mapping):
        raise InventoryError(
            f"{VARIABLE} must be a mapping of setting: value, not {excerpt(values)}",
            file=where,
            rule=VARIABLE,
            hint=f"write `{VARIABLE}: {{process_down_for: 30s}}`, or remove it",
        )
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name not in _KNOBS:
            raise InventoryError(
                f"{VARIABLE} has no setting {excerpt(name)}",
                file=where,
                rule=VARIABLE,
                hint="use one of " + ", ".join(sorted(_KNOBS)) + " (docs/alerts.md)",
            )
        changes[name] = _value(name, value, getattr(defaults, name), where)
    return dataclasses.replace(defaults, **changes)


def alert_settings(fleet: Fleet) -> AlertSettings:
    """The settings of ``fleet``'s inventory: its reference host's ``fleet_alert_settings``."""
    host = fleet.reference_host
    if host is None:
        return AlertSettings()
    return settings_from_mapping(host.vars.get(VARIABLE), host.where(VARIABLE))
