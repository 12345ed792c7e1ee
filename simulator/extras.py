"""Optional features and the extra that installs each (``pip install 'sidekiq-fleet[plots]'``).

A command that needs a missing extra stops before any work with one line saying which
option needs which package and the command that installs it (exit 2, like any unusable input).
"""

from __future__ import annotations

from importlib.util import find_spec

from .errors import FleetError

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(FleetError):
    """An option needs an optional dependency that is not installed."""


def require(module: str, *, extra: str, option: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` can be imported (without importing it)."""
    try:
        found = find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError(
            f"{option} needs {module}, which is not installed; "
            f"install it with: pip install 'sidekiq-fleet[{extra}]'"
        )
