"""sidekiq-cluster's queue groups: one Sidekiq process per entry, its queues, weights, threads.

Semantics (docs/behaviour.md §4, §10), for the GitLab release the fleet runs
(``sidekiq_gitlab_version``, :mod:`simulator.routing.versions`): an entry is comma-separated
queue names (a name also pulls in its namespace: ``cronjob`` pulls ``cronjob:*``). ``*`` alone is
every queue before 17.0, and from 17.0 the queues of the routing rules plus ``mailers``. Before
17.0, with ``queue_selector`` an entry is a worker matching query selecting generated queue
names, and with ``negate`` each group becomes every queue minus the group; 17.0 removed both.
A queue listed w times has weight w. Concurrency: before 17.0 GitLab derives it from the number
of queues (min/max formula, max 20 unless set); from 16.9 a positive fixed ``concurrency``
overrides it, and from 17.0 it is the only model (default 20, min/max removed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FleetError, QueueGroupError, excerpt
from .catalog import Catalog

# GitLab 17+ threads per process and GitLab's fetch order: one table.
from .defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_FETCH_ORDER,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_QUEUE_GROUPS,
    FETCH_ORDERS,
)
from .query import parse_query
from .queue_names import QUEUE_NAME_HINT, check_queue_name
from .versions import GitLabVersion, parse_gitlab_version, removal_error, removals

#: What ``*`` means from 17.0 with no routing rules (GitLab's default ``[['*', 'default']]``).
DEFAULT_WILDCARD_QUEUES: tuple[str, ...] = tuple(DEFAULT_QUEUE_GROUPS[0].split(","))


def queue_weights(queues: Sequence[str]) -> dict[str, int]:
    """Queue -> weight (times listed), in first-listed order."""
    out: dict[str, int] = {}
    for queue in queues:
        out[queue] = out.get(queue, 0) + 1
    return out


def is_strict(queues: Sequence[str]) -> bool:
    """True when no queue is listed twice, so the list can be fetched in strict order (a queue
    with a weight above 1 always makes Sidekiq shuffle)."""
    return all(w == 1 for w in queue_weights(queues).values())


@dataclass(frozen=True)
class Process:
    """One Sidekiq process of a node (``sidekiq@<index>``).

    The one process type: queue-group expansion makes them (``node`` still empty), the fleet
    places them on hosts, and the simulator runs them (:meth:`placed`).
    """

    index: int
    group: str
    #: Queues in fetch order; a queue repeated w times has weight w.
    queues: tuple[str, ...]
    concurrency: int
    #: The host that runs it ("" until placed on one).
    node: str = ""
    #: The name reports use (default ``<short host>/<index>``).
    label: str = ""
    #: ``weighted`` (``-q NAME,WEIGHT``, GitLab's) or ``strict`` (``-q NAME``); a queue listed
    #: twice makes any order weighted (:attr:`strict`).
    fetch_order: str = DEFAULT_FETCH_ORDER

    def __post_init__(self) -> None:
        if self.fetch_order not in FETCH_ORDERS:
            raise ValueError(f"fetch_order must be one of {FETCH_ORDERS}, not {self.fetch_order!r}")

    @classmethod
    def placed(cls, label: str, node: str, queues: tuple[str, ...], concurrency: int,
               group: str = "", index: int = 0, *,
               fetch_order: str = DEFAULT_FETCH_ORDER) -> Process:
        """A process on ``node`` named ``label`` in simulator reports."""
        return cls(index, group, tuple(queues), concurrency, node, label, fetch_order)

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return f"{self.node.split('.')[0]}/{self.index}" if self.node else f"sidekiq@{self.index}"

    @property
    def weights(self) -> dict[str, int]:
        return queue_weights(self.queues)

    @property
    def strict(self) -> bool:
        """Fetches in strict order: asked for, and no queue carries a weight above 1."""
        return self.fetch_order == "strict" and is_strict(self.queues)

    def sidekiq_args(self) -> list[str]:
        """Arguments for ``sidekiq``: ``-c N`` then per queue ``-q queue`` (strict order) or
        ``-q queue,weight`` (weighted random order, as sidekiq-cluster starts GitLab's)."""
        args = ["-c", str(self.concurrency)]
        for queue, weight in self.weights.items():
            args += ["-q", queue if self.strict else f"{queue},{weight}"]
        return args

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "group": self.group,
            "queues": list(self.weights),
            "weights": self.weights,
            "strict": self.strict,
            "fetch_order": "strict" if self.strict else "weighted",
            "concurrency": self.concurrency,
            "sidekiq_args": self.sidekiq_args(),
        }


def process_concurrency(
    queue_count: int,
    *,
    min_concurrency: int | None = None,
    max_concurrency: int | None = None,
    concurrency: int | None = None,
    gitlab_version: GitLabVersion | str | None = None,
) -> int:
    """Threads of one process on a GitLab release (None: the current one).

    From 16.9 a positive ``concurrency`` is used as is; from 17.0 it is the only model, 20 when
    unset. Before 17.0, otherwise, GitLab's formula: N = queues + 1; max = ``max_concurrency``
    (Omnibus' default 20 when unset); hi = max if max > 0 else N; lo = min(``min_concurrency``
    (0 when unset), hi); N clamped to [lo, hi]. Settings a release does not have are refused by
    :func:`expand_queue_groups`, not here.
    """
    version = parse_gitlab_version(gitlab_version)
    if concurrency and version.has_fixed_concurrency:
        return concurrency
    if not version.has_min_max_concurrency:
        return concurrency or DEFAULT_CONCURRENCY
    n = queue_count + 1
    top = DEFAULT_MAX_CONCURRENCY if max_concurrency is None else max_concurrency
    hi = top if top > 0 else n
    lo = min(min_concurrency or 0, hi)
    return max(lo, min(n, hi))


def _expand_names(names: list[str], all_queues: list[str]) -> list[str]:
    """sidekiq-cluster's ``expand_queues``: each name plus the queues of its namespace."""
    out: list[str] = []
    for name in names:
        out.append(name)
        prefix = f"{name}:"
        out.extend(q for q in all_queues if q.startswith(prefix))
    return out


def _group_names(entry: str, where: str, source: str | None) -> list[str]:
    """The queue names of a non-selector group, each checked where the operator wrote it."""
    names = []
    pos = 0
    for part in entry.split(","):
        name = part.strip()
        if not name:
            raise QueueGroupError(
                f"empty queue name in {excerpt(entry)}",
                file=source,
                rule=where,
                position=pos + 1,
                hint="remove the doubled or dangling comma",
            )
        check_queue_name(
            name,
            error=QueueGroupError,
            file=source,
            rule=where,
            offset=pos + len(part) - len(part.lstrip()),
            what=f"queue name {excerpt(name)}",
            hint=QUEUE_NAME_HINT + "; '*' (every queue) must be the whole entry",
        )
        names.append(name)
        pos += len(part) + 1
    return names


def _check_int(name: str, value: Any, source: str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QueueGroupError(
            f"{name} must be a whole number of threads (0 or more), not {value!r}",
            file=source,
            hint=f"set {name}: 20, or remove it",
        )
    return value


def expand_queue_groups(
    groups: Any,
    catalog: Catalog,
    *,
    selector: bool = False,
    negate: bool = False,
    min_concurrency: int | None = None,
    max_concurrency: int | None = None,
    concurrency: int | None = None,
    strict: bool = True,
    fetch_order: str = DEFAULT_FETCH_ORDER,
    source: str | None = None,
    gitlab_version: GitLabVersion | str | None = None,
    wildcard_queues: Sequence[str] | None = None,
) -> list[Process]:
    """Turn ``sidekiq_queue_groups`` into processes; errors name the group and the fix.

    ``fetch_order`` is every process's queue order (``weighted``, GitLab's, or ``strict``).
    ``gitlab_version`` (None: the current release) decides what ``*`` means, which settings
    exist and the threads; from 17.0 ``*`` is ``wildcard_queues``, the routing rules' queues
    plus ``mailers`` (:meth:`simulator.routing.rules.Router.wildcard_queues`; None: those of
    GitLab's default rules, ``default`` and ``mailers``)."""
    version = parse_gitlab_version(gitlab_version, file=source)
    if not isinstance(fetch_order, str) or fetch_order not in FETCH_ORDERS:
        raise QueueGroupError(
            f"the fetch order must be weighted or strict, not {excerpt(fetch_order)}",
            file=source,
            rule="sidekiq_fetch_order",
            hint="remove sidekiq_fetch_order (weighted: every queue as -q NAME,1, as GitLab's "
            "sidekiq-cluster starts Sidekiq) or set `sidekiq_fetch_order: strict` (-q NAME: a "
            "later queue only when the earlier ones are empty)",
        )
    for name, flag in (("sidekiq_queue_selector", selector), ("sidekiq_negate", negate),
                       ("sidekiq_query_strict", strict)):
        if not isinstance(flag, bool):
            raise QueueGroupError(
                f"{name} must be true or false, not the {type(flag).__name__} {excerpt(flag)}",
                file=source,
                hint=f"write an unquoted true or false (`{name}: false`); a quoted \"false\" "
                "is a string, which reads as true",
            )
    min_concurrency = _check_int("sidekiq_min_concurrency", min_concurrency, source)
    max_concurrency = _check_int("sidekiq_max_concurrency", max_concurrency, source)
    concurrency = _check_int("sidekiq_concurrency", concurrency, source)
    removed = removals({"sidekiq_queue_selector": selector, "sidekiq_negate": negate,
                        "sidekiq_min_concurrency": min_concurrency,
                        "sidekiq_max_concurrency": max_concurrency}, version)
    if removed:
        raise removal_error(removed, version, file=source)
    if concurrency and not version.has_fixed_concurrency:
        raise QueueGroupError(
            f"sidekiq_concurrency ({concurrency}) does not exist before GitLab 16.9 "
            f"(sidekiq['concurrency']); GitLab {version} sizes each process with its formula, "
            "queues + 1 within sidekiq_min_concurrency and sidekiq_max_concurrency",
            file=source,
            rule="sidekiq_concurrency",
            hint="remove sidekiq_concurrency and set sidekiq_min_concurrency and "
            "sidekiq_max_concurrency to the threads you want (the same number gives every "
            "process exactly that), or set sidekiq_gitlab_version to the release the fleet runs",
        )
    if groups is None:
        groups = []
    if isinstance(groups, str) or not isinstance(groups, Sequence):
        raise QueueGroupError(
            "sidekiq_queue_groups must be a list, one entry per Sidekiq process",
            file=source,
            hint="e.g. sidekiq_queue_groups: ['urgent_cpu_bound', 'default,mailers']",
        )
    all_queues = catalog.queue_names()
    processes = []
    for index, entry in enumerate(groups):
        where = f"sidekiq_queue_groups entry {index + 1}"
        if isinstance(entry, (list, tuple)) and all(isinstance(e, str) for e in entry):
            entry = ",".join(entry)
        if not isinstance(entry, str) or not entry.strip():
            raise QueueGroupError(
                f"a queue group must be a non-empty string, not {excerpt(entry)}",
                file=source,
                rule=where,
                hint="list queue names separated by commas, or '*' alone (every queue; from "
                "GitLab 17.0 the routing rules' queues and mailers)",
            )
        if selector:
            try:
                query = parse_query(entry, strict=strict, catalog=catalog)
            except FleetError as exc:
                raise exc.located(file=source, rule=f"{where} ({excerpt(entry)})") from None
            queues = [w.name for w in catalog.workers if query.matches(w)]
        elif entry.strip() == "*":
            if version.wildcard_means_routed_queues:
                queues = list(DEFAULT_WILDCARD_QUEUES if wildcard_queues is None
                              else wildcard_queues)
            else:
                queues = list(all_queues)
        else:
            queues = _expand_names(_group_names(entry, where, source), all_queues)
        if negate:
            excluded = set(queues)
            queues = [q for q in all_queues if q not in excluded]
        if not queues:
            raise QueueGroupError(
                f"queue group {excerpt(entry)} names no queue"
                + (" (sidekiq_negate leaves nothing)" if negate else ""),
                file=source,
                rule=where,
                hint="check the query against the catalog with `fleetsim route match`",
            )
        processes.append(
            Process(
                index=index,
                group=entry,
                queues=tuple(queues),
                concurrency=process_concurrency(
                    len(queues),
                    min_concurrency=min_concurrency,
                    max_concurrency=max_concurrency,
                    concurrency=concurrency,
                    gitlab_version=version,
                ),
                fetch_order=fetch_order,
            )
        )
    return processes
