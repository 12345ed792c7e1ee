"""Generated Sidekiq queue names, exactly as GitLab derives them from a worker class.

``name = [queue_namespace, base].compact.join(':')`` where ``base`` is the class name minus one
leading ``Gitlab::`` and one trailing ``Worker``, then ActiveSupport's ``underscore`` with GitLab's
acronyms, then ``/`` replaced by ``_`` (docs/behaviour.md §2).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..errors import FleetError, caret_excerpt

#: GitLab's inflection acronyms (config/initializers/inflections.rb), in definition order.
GITLAB_ACRONYMS: tuple[str, ...] = ("CDN", "EE", "JH", "CSP", "VSCode", "FIPS")

_ACRONYMS_UNDERSCORE = re.compile(
    r"(?:(?<=([A-Za-z\d]))|\b)(" + "|".join(GITLAB_ACRONYMS) + r")(?=\b|[^a-z])"
)
_CAMEL_BOUNDARY = re.compile(r"([A-Z]+)(?=[A-Z][a-z])|([a-z\d])(?=[A-Z])")
_NEEDS_WORK = re.compile(r"[A-Z-]|::")


def underscore(word: str) -> str:
    """ActiveSupport::Inflector#underscore with GitLab's acronyms."""
    if not _NEEDS_WORK.search(word):
        return word
    word = word.replace("::", "/")
    word = _ACRONYMS_UNDERSCORE.sub(
        lambda m: ("_" if m.group(1) else "") + m.group(2).lower(), word
    )
    word = _CAMEL_BOUNDARY.sub(lambda m: (m.group(1) or m.group(2)) + "_", word)
    return word.replace("-", "_").lower()


@lru_cache(maxsize=4096)
def generated_queue_name(worker_class: str, queue_namespace: str | None = None) -> str:
    """The queue GitLab generates for ``worker_class`` (with its namespace prefix, if any)."""
    base = worker_class.removeprefix("Gitlab::").removesuffix("Worker")
    base = underscore(base).replace("/", "_")
    return f"{queue_namespace}:{base}" if queue_namespace else base


# -- queue names written by operators ------------------------------------------------------------

#: What a queue name may contain (Sidekiq's and GitLab's names: ``default``, ``mailers``,
#: ``urgent_cpu_bound``, ``cronjob:foo_bar``, ``a.b-c``); it may not start with ``-``.
QUEUE_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"
)
#: Longest queue name accepted (GitLab's generated names stay well under 100 characters).
MAX_QUEUE_NAME = 255
QUEUE_NAME_HINT = (
    "a queue name uses only [A-Za-z0-9_.:-] and does not start with '-' "
    "(e.g. default, urgent_cpu_bound, cronjob:foo_bar); separate queues with commas"
)


def bad_queue_name_char(name: str) -> int | None:
    """0-based index of the first character not allowed in a queue name (None: valid)."""
    if not name:
        return 0
    if name[0] == "-":
        return 0
    for i, ch in enumerate(name):
        if ch not in QUEUE_NAME_CHARS:
            return i
    if len(name) > MAX_QUEUE_NAME:
        return MAX_QUEUE_NAME
    return None


def _describe(ch: str | None) -> str:
    names = {" ": "a space", "\n": "a newline", "\r": "a carriage return", "\t": "a tab",
             "-": "a leading '-' (it would read as a command-line flag)"}
    if ch is None:
        return "nothing (an empty name)"
    return names.get(ch, repr(ch))


def check_queue_name(
    name: str,
    *,
    error: type[FleetError] = FleetError,
    file: str | None = None,
    rule: str | None = None,
    offset: int = 0,
    what: str = "queue name",
    hint: str | None = None,
) -> None:
    """Raise ``error`` at the first character no Sidekiq queue name has (1-based position,
    counted from ``offset`` in the text the operator wrote)."""
    i = bad_queue_name_char(name)
    if i is None:
        return
    ch = name[i] if name else None
    problem = (f"is longer than {MAX_QUEUE_NAME} characters ({len(name):,})"
               if i == MAX_QUEUE_NAME and ch in QUEUE_NAME_CHARS
               else f"has {_describe(ch)}, which no queue name contains")
    raise error(
        f"{what} {problem}\n{caret_excerpt(name, i)}",
        file=file,
        rule=rule,
        position=offset + i + 1,
        hint=hint or QUEUE_NAME_HINT,
    )
