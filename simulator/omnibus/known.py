"""Which ``gitlab.rb`` settings exist in which GitLab release, and which were removed.

The facts live in ``data/omnibus_settings.yml`` (written by ``scripts/omnibus_settings.py`` from
omnibus-gitlab's release tags, each entry with the file and tag it came from). This module
answers questions about them:

- :meth:`KnownSettings.top_level` / :meth:`KnownSettings.role`: is ``sidekiq`` (a top-level name
  of gitlab.rb) or ``sidekiq_role`` there in a release;
- :meth:`KnownSettings.setting`: is ``sidekiq['queue_selector']`` there, removed (with GitLab's
  note and the release that removed it), not yet there, or unknown in every release checked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml

from ..errors import FleetError
from ..routing.versions import parse_gitlab_version

__all__ = [
    "KnownSettings",
    "OmnibusError",
    "Presence",
    "Removal",
    "Version",
    "known_settings",
    "parse_version",
]

Version = tuple[int, int]


class OmnibusError(FleetError):
    """An Omnibus node's settings cannot be rendered or checked."""


def parse_version(value: Any, *, variable: str = "sidekiq_gitlab_version") -> Version:
    """``"17.5"``, ``"17.5.2"`` or ``"17.5.2-ee.0"`` as ``(17, 5)``: the routing engine's
    reading of ``sidekiq_gitlab_version`` (:func:`simulator.routing.versions.parse_gitlab_version`,
    which refuses an unquoted number and anything else that is not a version)."""
    if isinstance(value, tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    if value is None:
        raise OmnibusError(f"{variable} is not set", rule=variable,
                           hint=f"set {variable}: \"MAJOR.MINOR\", the release the node runs")
    version = parse_gitlab_version(value, rule=variable)
    return version.major, version.minor


def show(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class Presence:
    """Where a name was found: the first and last release checked that have it."""

    since: Version
    until: Version | None
    missing_in: tuple[Version, ...]
    where: str
    documented: bool = True

    def has(self, version: Version) -> bool:
        return (self.since <= version and (self.until is None or version <= self.until)
                and version not in self.missing_in)


@dataclass(frozen=True)
class Removal:
    """A setting ``gitlab-ctl reconfigure`` refuses from ``removed`` on (deprecations.rb)."""

    path: tuple[str, ...]
    deprecated: Version
    removed: Version
    note: str
    where: str

    def label(self) -> str:
        return label(self.path)

    def message(self) -> str:
        """GitLab's own line (``Gitlab::Deprecations.check_config``)."""
        text = (f"* {self.label()} has been deprecated since {show(self.deprecated)} and was "
                f"removed in {show(self.removed)}.")
        return f"{text} {self.note}" if self.note else text

    def deprecation_message(self) -> str:
        text = (f"* {self.label()} has been deprecated since {show(self.deprecated)} and will be "
                f"removed in {show(self.removed)}.")
        return f"{text} {self.note}" if self.note else text


def label(path: tuple[str, ...] | list[str]) -> str:
    """``('sidekiq', 'routing_rules')`` as gitlab.rb writes it: ``sidekiq['routing_rules']``."""
    head, *rest = path
    return head + "".join(f"['{key}']" for key in rest)


SettingState = Literal["present", "removed", "not-yet", "gone", "unknown", "unchecked"]


@dataclass(frozen=True)
class SettingStatus:
    state: SettingState
    presence: Presence | None = None
    removal: Removal | None = None


def _presence(entry: dict[str, Any]) -> Presence:
    return Presence(
        since=parse_version(entry["since"]),
        until=parse_version(entry["until"]) if entry.get("until") else None,
        missing_in=tuple(parse_version(v) for v in entry.get("missing_in") or ()),
        where=entry["where"],
        documented="template" in (entry.get("in") or ["template"]),
    )


class KnownSettings:
    """The data file, read once."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.source = data["source"]
        self.versions: tuple[Version, ...] = tuple(parse_version(v) for v in data["versions"])
        self.top_levels = {k: _presence(v) for k, v in data["top_level"].items()}
        self.roles = {k: _presence(v) for k, v in data["roles"].items()}
        self.settings = {top: {k: _presence(v) for k, v in keys.items()}
                         for top, keys in data["settings"].items()}
        self.removals = tuple(
            Removal(tuple(r["setting"]), parse_version(r["deprecated"]),
                    parse_version(r["removed"]), r.get("note") or "", r["where"])
            for r in data["removals"])

    @property
    def first(self) -> Version:
        return self.versions[0]

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def covers(self, version: Version) -> bool:
        return self.first <= version <= self.latest

    def checked(self, version: Version) -> Version:
        """The release whose data answers for ``version``: itself, or the latest checked one
        for a newer release. Older than the first checked release is an error."""
        if version < self.first:
            raise OmnibusError(
                f"GitLab {show(version)} is older than {show(self.first)}, the first release "
                "whose gitlab.rb settings this project knows",
                rule="sidekiq_gitlab_version",
                hint=f"run GitLab {show(self.first)} or later, or add older tags with "
                     "scripts/omnibus_settings.py")
        if version > self.latest:
            return self.latest
        return max(v for v in self.versions if v <= version)

    def top_level(self, name: str, version: Version) -> bool:
        presence = self.top_levels.get(name)
        return presence is not None and presence.has(self.checked(version))

    def role(self, name: str, version: Version) -> Presence | None:
        presence = self.roles.get(name)
        return presence if presence is not None and presence.has(self.checked(version)) else None

    def removal(self, path: tuple[str, ...], version: Version) -> Removal | None:
        """The removal that covers ``path`` (or a setting above it) in ``version``."""
        for removal in self.removals:
            if removal.removed <= version and path[: len(removal.path)] == removal.path:
                return removal
        return None

    def deprecation(self, path: tuple[str, ...], version: Version) -> Removal | None:
        for removal in self.removals:
            if removal.deprecated <= version < removal.removed and \
                    path[: len(removal.path)] == removal.path:
                return removal
        return None

    def setting(self, top: str, key: str, version: Version) -> SettingStatus:
        """The status of ``top[key]`` in ``version``."""
        removal = self.removal((top, key), version)
        if removal is not None:
            return SettingStatus("removed", removal=removal)
        keys = self.settings.get(top)
        if keys is None:
            return SettingStatus("unchecked")
        presence = keys.get(key)
        if presence is None:
            return SettingStatus("unknown")
        checked = self.checked(version)
        if presence.has(checked):
            return SettingStatus("present", presence)
        if checked < presence.since:
            return SettingStatus("not-yet", presence)
        return SettingStatus("gone", presence)


@functools.cache
def known_settings() -> KnownSettings:
    """The data shipped with the package (``simulator/omnibus/data/omnibus_settings.yml``)."""
    text = resources.files(__package__).joinpath("data/omnibus_settings.yml").read_text()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return KnownSettings(yaml.load(text, Loader=loader))
