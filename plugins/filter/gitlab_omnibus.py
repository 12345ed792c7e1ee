"""Ansible filters of the gitlab_omnibus role: thin wrappers around ``simulator.omnibus``.

- ``inputs | gitlab_omnibus_rb(redacted=False)``: the Ruby text of the node's managed file
  (``/etc/gitlab/sidekiq-fleet.rb``), from the host's variables (``inputs``: a mapping of the
  inventory variables the role passes, see roles/gitlab_omnibus/vars/main.yml); ``redacted``
  writes the name of the variable a secret comes from instead of the secret (the review copy).
- ``recorded | gitlab_omnibus_check(inputs, redacted=False)``: what the recording harness
  (files/record_settings.rb) reported, checked against the inventory and the settings of the
  node's GitLab release; a list of findings (``severity``, ``code``, ``host``, ``message``,
  ``fix``, ``text``). Secret values never appear in them.
Bad input raises an error with the engine's message (host, variable, fix).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

try:
    import simulator  # noqa: F401  (the Python package sidekiq-fleet, on the controller)
except ImportError:
    raise AnsibleFilterError(
        "sidekiq_fleet.fleet filters need the Python package sidekiq-fleet on the controller: "
        "run `pip install sidekiq-fleet` (or the project's wheel) in the Python that runs Ansible"
    ) from None

from simulator.errors import FleetError
from simulator.fleet.inventory import plain_value
from simulator.omnibus.gitlab_rb import GitlabRb, build_gitlab_rb
from simulator.omnibus.validate import check


def _build(inputs: Any) -> GitlabRb:
    values = plain_value(inputs)
    if not isinstance(values, dict):
        raise AnsibleFilterError("gitlab_omnibus: the inputs must be a mapping of variables")
    try:
        return build_gitlab_rb(values)
    except FleetError as exc:
        raise AnsibleFilterError(f"gitlab_omnibus: {exc}") from None


def gitlab_omnibus_rb(inputs: Any, redacted: Any = False) -> str:
    return _build(inputs).render(redacted=bool(plain_value(redacted)))


def gitlab_omnibus_check(recorded: Any, inputs: Any, redacted: Any = False) -> list[dict]:
    expected = _build(inputs)
    recorded = plain_value(recorded)
    if not isinstance(recorded, dict) or "settings" not in recorded:
        raise AnsibleFilterError("gitlab_omnibus_check: give it the JSON record_settings.rb "
                                 "printed (files, assignments, settings)")
    try:
        findings = check(recorded, expected=expected, redacted=bool(plain_value(redacted)))
    except FleetError as exc:
        raise AnsibleFilterError(f"gitlab_omnibus_check: {exc}") from None
    return [{**f.to_dict(), "text": f.render()} for f in findings]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "gitlab_omnibus_rb": gitlab_omnibus_rb,
            "gitlab_omnibus_check": gitlab_omnibus_check,
        }
