"""The GitLab version a fleet runs (``sidekiq_gitlab_version``) and what changed with it.

GitLab's Sidekiq semantics changed with versions (docs/behaviour.md §10), and the engine plans
for one of them; unset, the current release
(:data:`~simulator.routing.defaults.DEFAULT_GITLAB_VERSION`):

=========  ==================================================================================
< 16.9     threads per process only from GitLab's formula (queues + 1 clamped to
           [``min_concurrency``, ``max_concurrency``], Omnibus default max 20);
           ``sidekiq['concurrency']`` does not exist
15.9       ``queue_selector`` and ``negate`` deprecated (still work until 16.11)
16.9       a positive ``concurrency`` overrides the formula; ``min/max_concurrency`` deprecated
16.10      default ``queue_groups``: ``default,mailers`` (was ``*``)
17.0       ``queue_selector``, ``negate``, ``min_concurrency`` and ``max_concurrency`` removed
           (``gitlab-ctl reconfigure`` aborts on them); ``*`` in ``queue_groups`` means the
           queues of the routing rules plus ``mailers``, no longer every queue; threads: one
           fixed ``concurrency`` (default 20)
=========  ==================================================================================

A version is written ``MAJOR.MINOR`` (``"17.5"``), optionally with a patch and an Omnibus
edition suffix (``"17.5.2"``, ``"17.5.2-ee.0"``); only major and minor matter here. It must be a
string: YAML reads an unquoted ``17.10`` as the number 17.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import VersionError, excerpt
from .defaults import DEFAULT_GITLAB_VERSION

__all__ = [
    "CURRENT",
    "OLDEST",
    "REMOVALS",
    "VARIABLE",
    "GitLabVersion",
    "Removal",
    "deprecations",
    "parse_gitlab_version",
    "removal_error",
    "removals",
]

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?(?:-(?:ce|ee)(?:\.\d+)?)?")
VARIABLE = "sidekiq_gitlab_version"


class GitLabVersion(NamedTuple):
    """``major.minor``; compares as a tuple (``version >= (17, 0)``)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    # -- what the version has -------------------------------------------------------------

    @property
    def wildcard_means_routed_queues(self) -> bool:
        """17.0+: ``*`` in ``queue_groups`` is the routing rules' queues plus ``mailers``."""
        return self >= (17, 0)

    @property
    def has_fixed_concurrency(self) -> bool:
        """16.9+: ``sidekiq['concurrency']`` exists (and overrides min/max until 17.0)."""
        return self >= (16, 9)

    @property
    def has_min_max_concurrency(self) -> bool:
        """Before 17.0: ``min_concurrency``/``max_concurrency`` and GitLab's formula."""
        return self < (17, 0)

    @property
    def has_queue_selector(self) -> bool:
        """Before 17.0: ``queue_selector`` and ``negate``."""
        return self < (17, 0)


#: The oldest version the engine models: 13.0 made sidekiq-cluster (and its concurrency
#: formula) the way every Omnibus node runs Sidekiq.
OLDEST = GitLabVersion(13, 0)


def parse_gitlab_version(value: Any, *, file: str | None = None,
                         rule: str | None = VARIABLE) -> GitLabVersion:
    """``sidekiq_gitlab_version`` as a :class:`GitLabVersion`; None means the current release.

    Anything else than a version string is a :class:`VersionError` naming ``file`` and
    ``rule`` (the variable, and the host when the caller knows it)."""
    if value is None:
        return CURRENT
    if isinstance(value, GitLabVersion):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise VersionError(
            f"{VARIABLE} must be a quoted string such as \"17.10\", not the number {value}"
            + (" (YAML reads an unquoted MAJOR.MINOR as a number: 17.10 becomes 17.1)"
               if isinstance(value, float) else ""),
            file=file,
            rule=rule,
            hint=f"quote the version the fleet runs, e.g. {VARIABLE}: \"17.10\"",
        )
    if not isinstance(value, str):
        raise VersionError(
            f"{VARIABLE} must be a version string such as \"17.5\", not the "
            f"{type(value).__name__} {excerpt(value)}",
            file=file,
            rule=rule,
            hint=f"set {VARIABLE}: \"MAJOR.MINOR\" (the GitLab release the fleet runs), or "
            "remove it for the current release",
        )
    text = value.strip()
    match = _VERSION_RE.fullmatch(text.removeprefix("v"))
    if match is None:
        raise VersionError(
            f"{VARIABLE} {excerpt(value)} is not a GitLab version",
            file=file,
            rule=rule,
            hint=f"write MAJOR.MINOR, e.g. {VARIABLE}: \"17.5\" (a patch and an Omnibus suffix "
            "such as \"17.5.2-ee.0\" are accepted and ignored)",
        )
    version = GitLabVersion(int(match.group(1)), int(match.group(2)))
    if version < OLDEST:
        raise VersionError(
            f"{VARIABLE} {excerpt(value)} is older than GitLab {OLDEST}, the oldest version "
            "fleetsim models (13.0 made sidekiq-cluster the way Omnibus runs Sidekiq)",
            file=file,
            rule=rule,
            hint=f"plan with {VARIABLE}: \"{OLDEST}\" or later",
        )
    return version


CURRENT = parse_gitlab_version(DEFAULT_GITLAB_VERSION)


# -- settings GitLab deprecated and removed ---------------------------------------------------


@dataclass(frozen=True)
class Removal:
    """A setting GitLab deprecated in one version and removed in another."""

    variable: str  # this project's name
    gitlab: str  # Omnibus's name
    deprecated: GitLabVersion
    removed: GitLabVersion
    instead: str  # what to do now


#: Settings removed in 17.0 (omnibus-gitlab MR 7540 and MR 7549; docs/behaviour.md §10).
REMOVALS: tuple[Removal, ...] = (
    Removal("sidekiq_queue_selector", "sidekiq['queue_selector']", GitLabVersion(15, 9),
            GitLabVersion(17, 0),
            "route the workers with sidekiq_routing_rules ([query, queue]) and list those "
            "queues in sidekiq_queue_groups (GitLab: \"Migrating from queue selectors to routing "
            "rules\")"),
    Removal("sidekiq_negate", "sidekiq['negate']", GitLabVersion(15, 9), GitLabVersion(17, 0),
            "list the queues each process listens to in sidekiq_queue_groups, or route the "
            "workers you wanted to exclude to a queue of their own"),
    Removal("sidekiq_min_concurrency", "sidekiq['min_concurrency']", GitLabVersion(16, 9),
            GitLabVersion(17, 0), "set sidekiq_concurrency (threads per process) instead"),
    Removal("sidekiq_max_concurrency", "sidekiq['max_concurrency']", GitLabVersion(16, 9),
            GitLabVersion(17, 0), "set sidekiq_concurrency (threads per process) instead"),
)


def _in_use(settings: dict[str, Any], removal: Removal) -> bool:
    value = settings.get(removal.variable)
    return value is not None and value is not False


def removals(settings: dict[str, Any], version: GitLabVersion) -> list[Removal]:
    """The settings in use that ``version`` no longer has."""
    return [r for r in REMOVALS if version >= r.removed and _in_use(settings, r)]


def deprecations(settings: dict[str, Any], version: GitLabVersion) -> list[Removal]:
    """The settings in use that ``version`` has but deprecates (removed by a later one)."""
    return [r for r in REMOVALS if r.deprecated <= version < r.removed and _in_use(settings, r)]


def removal_error(found: list[Removal], version: GitLabVersion, *, file: str | None = None,
                  rule: str | None = None) -> VersionError:
    """GitLab's own message for removed settings (``gitlab-ctl reconfigure`` aborts with it)."""
    lines = "".join(
        f"\n  * {r.gitlab} ({r.variable}) has been deprecated since {r.deprecated} and was "
        f"removed in {r.removed}."
        for r in found
    )
    return VersionError(
        f"Removed configurations found in gitlab.rb. Aborting reconfigure. (GitLab {version}, "
        f"{VARIABLE}){lines}",
        file=file,
        rule=rule,
        hint="; ".join(f"{r.variable}: remove it and {r.instead}" for r in found)
        + f"; or, if the fleet runs an older GitLab, set {VARIABLE} to that release",
    )
