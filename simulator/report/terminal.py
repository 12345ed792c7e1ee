"""The terminal (rich): consoles for tables, and progress bars on stderr (none in CI or a pipe)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["progress", "wide_console"]


def wide_console(width: int) -> Console:
    """A console for tables: a terminal's own width; at least ``width`` columns in a pipe."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, width))
    return console


@contextmanager
def progress(total: int, label: str, unit: str) -> Iterator[Callable[[], None]]:
    """``with progress(n, "capacity high-urgency", "candidates") as step:`` and ``step()``
    after each of the ``n`` pieces of work."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(unit), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
