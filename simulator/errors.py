"""Errors a user can act on: what is wrong, where (file, rule, position) and how to fix it."""

from __future__ import annotations


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
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  fix: {self.hint}"
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
