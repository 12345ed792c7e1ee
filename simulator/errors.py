"""Errors a user can act on: what is wrong, where (file, rule, position) and how to fix it."""

from __future__ import annotations

import re
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


class WorkloadError(FleetError):
    """A simulator workload file is malformed."""
