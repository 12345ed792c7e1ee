"""Errors a user can act on: what is wrong, where (file, rule, position) and how to fix it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

#: Most characters of an input value an error message repeats (the rest is elided).
EXCERPT_CHARS = 80
_MESSAGE_CHARS = 1500
_LONG_RUN = re.compile(r"\S{201,}|[ \t]{201,}")


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long the original was."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[: limit - 10]) + f"... ({len(value):,} characters)"
    text = repr(value)
    if len(text) > limit:
        return text[: limit - 10] + f"... ({len(text):,} characters)"
    return text


def clip(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[: limit - 10] + f"... ({len(text):,} characters)"


def caret_excerpt(text: str, offset: int, width: int = EXCERPT_CHARS) -> str:
    """Two lines: at most ``width`` characters of ``text`` around ``offset``, and a caret."""
    start = max(0, min(offset - width // 2, len(text) - width))
    piece = text[start : start + width]
    lead = "..." if start else ""
    tail = "..." if start + width < len(text) else ""
    shown = (lead + piece + tail).replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return f"  {shown}\n  {' ' * (len(lead) + offset - start)}^"


def _bounded(text: str) -> str:
    """A safety net: no long run of one token or of spaces, and no endless message."""
    text = _LONG_RUN.sub(lambda m: m.group(0)[:60] + f"... ({len(m.group(0)):,} characters)",
                         text)
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS] + f"... ({len(text):,} characters in all)"
    return text


class FleetError(Exception):
    """Bad input. ``str()`` names the place, the problem and the fix; never a traceback."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        rule: str | None = None,
        position: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.rule = rule
        self.position = position
        self.hint = hint

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.rule:
            parts.append(self.rule)
        if self.position is not None:
            parts.append(f"position {self.position}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = _bounded(self.where())
        message = _bounded(self.message)
        text = f"{where}: {message}" if where else message
        if self.hint:
            text += f"\n  fix: {_bounded(self.hint)}"
        return text

    def located(self, *, file: str | None = None, rule: str | None = None) -> FleetError:
        """Return the same error with an outer location filled in (file, then rule)."""
        if file and not self.file:
            self.file = file
        if rule:
            self.rule = f"{rule}, {self.rule}" if self.rule else rule
        return self


class CatalogError(FleetError):
    """A worker catalog (all_queues.yml format) is malformed."""


class QueryError(FleetError):
    """A worker matching query is invalid, or (strict mode) GitLab would misread it."""


class RoutingError(FleetError):
    """Routing rules are malformed."""


class QueueGroupError(FleetError):
    """Queue groups, selectors or concurrency settings are malformed."""


class InventoryError(FleetError):
    """An Ansible inventory cannot be used."""


class VersionError(FleetError):
    """``sidekiq_gitlab_version`` is not a version, or a setting that GitLab version lacks."""


#: Most errors one :class:`FleetErrors` lists in full (the rest are counted).
LISTED_ERRORS = 25


class FleetErrors(RoutingError):
    """Several errors found in one pass (every bad rule of a rule set), each with its own place
    and fix. ``str()`` lists them all (up to :data:`LISTED_ERRORS`), numbered; one error alone
    is raised as itself (:func:`raise_all`)."""

    errors: list[FleetError]

    def __init__(self, errors: Sequence[FleetError], what: str = "problems") -> None:
        flat: list[FleetError] = []
        for error in errors:
            flat += error.errors if isinstance(error, FleetErrors) else [error]
        self.errors = flat
        self.what = what
        files = {e.file for e in flat}
        super().__init__(f"{len(flat)} {what}", file=files.pop() if len(files) == 1 else None)

    def located(self, *, file: str | None = None, rule: str | None = None) -> FleetError:
        for error in self.errors:
            error.located(file=file, rule=rule)
        if file and not self.file:
            self.file = file
        return self

    def __str__(self) -> str:
        head = f"{self.file}: " if self.file else ""
        count = len(self.errors)
        listed = "all of them" if count <= LISTED_ERRORS else f"the first {LISTED_ERRORS}"
        lines = [f"{head}{count} {self.what} ({listed}, in order):"]
        for number, error in enumerate(self.errors[:LISTED_ERRORS], start=1):
            text = str(error).replace("\n", "\n     ")
            lines.append(f"  {number:>2}. {text}")
        if len(self.errors) > LISTED_ERRORS:
            lines.append(f"  ... and {len(self.errors) - LISTED_ERRORS} more")
        return "\n".join(lines)


def raise_all(errors: Sequence[FleetError], what: str = "problems") -> None:
    """Raise nothing, the one error, or a :class:`FleetErrors` of them all."""
    if len(errors) == 1 and not isinstance(errors[0], FleetErrors):
        raise errors[0]
    if errors:
        raise FleetErrors(errors, what)


class WorkloadError(FleetError):
    """A simulator workload file is malformed."""
