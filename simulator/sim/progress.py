"""How long work reports progress without knowing how it is shown (the CLI draws a bar)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["Progress", "no_progress"]

#: ``progress(total, label)``: a context manager giving the function to call after each of
#: ``total`` steps.
Progress = Callable[[int, str], AbstractContextManager[Callable[[], None]]]


@contextmanager
def no_progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    yield lambda: None
