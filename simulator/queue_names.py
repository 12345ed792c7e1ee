"""Generated Sidekiq queue names, exactly as GitLab derives them from a worker class.

``name = [queue_namespace, base].compact.join(':')`` where ``base`` is the class name minus one
leading ``Gitlab::`` and one trailing ``Worker``, then ActiveSupport's ``underscore`` with GitLab's
acronyms, then ``/`` replaced by ``_`` (semantics.md section 2).
"""

from __future__ import annotations

import re
from functools import lru_cache

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
