"""Worker catalogs in GitLab's ``all_queues.yml`` format.

GitLab writes the file from Ruby, so keys and most values are Ruby symbols (``:urgency: :high``).
A non-GitLab Sidekiq app can describe its workers in the same format, with or without the colons.

One subtlety is kept on purpose: in a symbol-style file a value written *without* a colon in a
symbol-typed field is a Ruby String, and GitLab's query compares Symbols, so it never matches
(GitLab's own ``mailers`` entry has ``:urgency: low``, so ``urgency=low`` does not select it).
Such attributes are recorded in ``Worker.string_valued`` and reported by ``Catalog.notes``.

GitLab Enterprise Edition splits its catalog in two (``app/workers/all_queues.yml`` and
``ee/app/workers/all_queues.yml``, both read by sidekiq-cluster); :func:`cached_catalog` takes
a list of files and merges them (:func:`merge_catalogs`), refusing a worker class listed in two.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CatalogError, clip, excerpt
from ..inputs import load_yaml_file
from .queue_names import QUEUE_NAME_HINT, check_queue_name, generated_queue_name

DEFAULT_CATALOG_PATH = Path(__file__).parent / "data" / "all_queues_ce.yml"
#: One catalog file, several (GitLab EE: CE's and ee/'s all_queues.yml), or None/"" for CE's.
CatalogSource = str | Path | Sequence[str | Path] | None

#: Fields whose values GitLab stores as Ruby symbols.
SYMBOL_FIELDS = ("feature_category", "urgency", "resource_boundary", "queue_namespace")
FIELDS = (
    "name",
    "worker_name",
    "feature_category",
    "has_external_dependencies",
    "urgency",
    "resource_boundary",
    "weight",
    "idempotent",
    "tags",
    "queue_namespace",
)
URGENCIES = ("high", "low", "throttled")
#: Queues that exist in every GitLab catalog but are not derived from a worker class.
PLACEHOLDER_QUEUES = ("default", "mailers")


@dataclass(frozen=True)
class Worker:
    """One catalog entry. ``name`` is the worker's generated queue name."""

    name: str
    worker_name: str | None = None
    feature_category: str | None = None
    has_external_dependencies: bool | None = None
    urgency: str | None = None
    resource_boundary: str | None = None
    weight: int = 1
    idempotent: bool | None = None
    tags: tuple[str, ...] = ()
    queue_namespace: str | None = None
    #: Symbol-typed attributes that the file wrote as strings (GitLab never matches them).
    string_valued: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def key(self) -> str:
        """How the CLI and the routing map name this entry: worker class, else queue name."""
        return self.worker_name or self.name

    @property
    def is_placeholder(self) -> bool:
        """True for GitLab's ``default`` and ``mailers`` entries (not routed like workers)."""
        return self.worker_name is None or self.name in PLACEHOLDER_QUEUES

    def to_dict(self) -> dict[str, Any]:
        return {f: (list(self.tags) if f == "tags" else getattr(self, f)) for f in FIELDS}


@dataclass(frozen=True)
class Catalog:
    workers: tuple[Worker, ...]
    path: str = "<catalog>"

    def __post_init__(self) -> None:
        index: dict[str, Worker] = {}
        for worker in self.workers:
            index.setdefault(worker.key, worker)
        object.__setattr__(self, "_index", index)

    def __iter__(self) -> Iterator[Worker]:
        return iter(self.workers)

    def __len__(self) -> int:
        return len(self.workers)

    def get(self, key: str) -> Worker | None:
        return self._index.get(key)  # type: ignore[attr-defined]

    def real_workers(self) -> list[Worker]:
        """Entries that are worker classes (not the ``default``/``mailers`` placeholders)."""
        return [w for w in self.workers if not w.is_placeholder]

    def queue_names(self) -> list[str]:
        """Every queue name in catalog order (sidekiq-cluster's ``all_queues``)."""
        seen: dict[str, None] = {}
        for worker in self.workers:
            seen.setdefault(worker.name, None)
        return list(seen)

    def values(self, attribute: str) -> set[str]:
        """Every value an attribute takes in this catalog (for strict query checks)."""
        out: set[str] = set()
        for worker in self.workers:
            value = getattr(worker, attribute)
            if attribute == "tags":
                out.update(value)
            elif value is not None:
                out.add(str(value).lower() if isinstance(value, bool) else str(value))
        return out

    def notes(self) -> list[str]:
        """Entries whose symbol fields are strings, which GitLab's queries never match."""
        return [
            f"{self.path}: entry {w.key!r}: {', '.join(sorted(w.string_valued))} written "
            "without ':' (a Ruby String); GitLab queries compare Symbols and never select it"
            for w in self.workers
            if w.string_valued
        ]


def _strip_symbol(value: Any, *, symbol_style: bool, where: str, key: str) -> tuple[Any, bool]:
    """Return (value without the leading ':', was_string_in_symbol_style_file)."""
    if value is None:
        return None, False
    if not isinstance(value, str):
        raise CatalogError(
            f"{key} must be a string or symbol, not {type(value).__name__} ({excerpt(value)})",
            rule=where,
            hint=f"write it as `:{key}: :value`",
        )
    if value.startswith(":"):
        return value[1:], False
    return value, symbol_style


def _parse_entry(raw: Any, index: int, path: str) -> Worker:
    where = f"entry {index + 1}"
    if not isinstance(raw, Mapping):
        raise CatalogError(
            f"expected a mapping of worker attributes, got {type(raw).__name__}",
            file=path,
            rule=where,
            hint="each list item needs keys like `:name:` and `:worker_name:`",
        )
    symbol_style = any(isinstance(k, str) and k.startswith(":") for k in raw)
    entry: dict[str, Any] = {}
    for key, value in raw.items():
        name = key[1:] if isinstance(key, str) and key.startswith(":") else key
        if name not in FIELDS:
            raise CatalogError(
                f"unknown attribute {excerpt(key)}",
                file=path,
                rule=where,
                hint="known attributes: " + ", ".join(FIELDS),
            )
        entry[name] = value
    worker_name = entry.get("worker_name")
    label = f"{where} ({clip(str(worker_name or entry.get('name') or 'unnamed'))})"
    if worker_name is not None and (not isinstance(worker_name, str) or not worker_name.strip()):
        raise CatalogError("worker_name must be a class name", file=path, rule=label)
    strings: set[str] = set()
    attrs: dict[str, Any] = {}
    for key in SYMBOL_FIELDS:
        value, was_string = _strip_symbol(
            entry.get(key), symbol_style=symbol_style, where=label, key=key
        )
        if was_string:
            strings.add(key)
        attrs[key] = value
    if attrs["urgency"] is not None and attrs["urgency"] not in URGENCIES:
        raise CatalogError(
            f"urgency {excerpt(attrs['urgency'])} is not one of {', '.join(URGENCIES)}",
            file=path,
            rule=label,
            hint="use :high, :low or :throttled",
        )
    tags_raw = entry.get("tags") or []
    if not isinstance(tags_raw, list):
        raise CatalogError("tags must be a list", file=path, rule=label, hint="write `:tags: []`")
    tags = []
    for tag in tags_raw:
        value, was_string = _strip_symbol(tag, symbol_style=symbol_style, where=label, key="tags")
        if was_string:
            strings.add("tags")
        else:
            tags.append(value)
    for key in ("has_external_dependencies", "idempotent"):
        if entry.get(key) is not None and not isinstance(entry[key], bool):
            raise CatalogError(
                f"{key} must be true or false, not {excerpt(entry[key])}", file=path, rule=label
            )
    weight = entry.get("weight", 1)
    if weight is None:
        weight = 1
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
        raise CatalogError(
            f"weight must be a positive integer, not {excerpt(weight)}", file=path, rule=label
        )
    name = entry.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        if worker_name is None:
            raise CatalogError(
                "an entry needs a name (queue) or a worker_name (class)",
                file=path,
                rule=where,
                hint="add `:worker_name: MyWorker`; the queue name is then generated",
            )
        name = generated_queue_name(worker_name, attrs["queue_namespace"])
    if not isinstance(name, str):
        raise CatalogError(f"name must be a string, not {excerpt(name)}", file=path, rule=label)
    check_queue_name(
        name,
        error=CatalogError,
        file=path,
        rule=label,
        what=f"queue name {excerpt(name)}"
        + ("" if entry.get("name") else f" (generated from {excerpt(worker_name)})"),
        hint=QUEUE_NAME_HINT + "; fix :name:, :queue_namespace: or :worker_name:",
    )
    return Worker(
        name=name,
        worker_name=worker_name,
        feature_category=attrs["feature_category"],
        has_external_dependencies=entry.get("has_external_dependencies"),
        urgency=attrs["urgency"],
        resource_boundary=attrs["resource_boundary"],
        weight=weight,
        idempotent=entry.get("idempotent"),
        tags=tuple(tags),
        queue_namespace=attrs["queue_namespace"],
        string_valued=frozenset(strings),
    )


def catalog_from_entries(entries: Iterable[Any], path: str = "<catalog>") -> Catalog:
    workers = [_parse_entry(raw, i, path) for i, raw in enumerate(entries)]
    seen: dict[str, int] = {}
    for i, worker in enumerate(workers):
        if worker.worker_name is None:
            continue
        if worker.worker_name in seen:
            raise CatalogError(
                f"worker {worker.worker_name} is listed twice "
                f"(entries {seen[worker.worker_name] + 1}"
                f" and {i + 1})",
                file=path,
                rule=f"entry {i + 1}",
                hint="keep one entry per worker class",
            )
        seen[worker.worker_name] = i
    return Catalog(tuple(workers), path)


def load_catalog(path: str | Path) -> Catalog:
    """Load a worker catalog file; every problem is a ``CatalogError`` naming file and entry."""
    path = Path(path)
    data = load_yaml_file(
        path,
        error=CatalogError,
        what="worker catalog",
        hint="pass an all_queues.yml-format file (sidekiq_worker_catalog / --catalog)",
        cache=True,
    )
    if not isinstance(data, list):
        raise CatalogError(
            "a worker catalog is a YAML list of worker entries",
            file=str(path),
            hint="start each entry with `- :name:` as in GitLab's app/workers/all_queues.yml",
        )
    return catalog_from_entries(data, str(path))


def catalog_paths(source: Any) -> tuple[str, ...]:
    """The files of a catalog source: () for None, "" or [] (GitLab CE's shipped catalog), one
    path, or a list of them (``sidekiq_worker_catalog: [CE, EE]``)."""
    if source is None or source == "":
        return ()
    if isinstance(source, (str, Path)):
        return (str(source),)
    if isinstance(source, Sequence) and all(
            isinstance(p, (str, Path)) and str(p).strip() for p in source):
        return tuple(str(p) for p in source)
    raise CatalogError(
        f"a worker catalog is a file or a list of files, not {excerpt(source)}",
        hint="sidekiq_worker_catalog: all_queues.yml, or a list such as "
        "[all_queues.yml, ee_all_queues.yml] for GitLab EE",
    )


def merge_catalogs(catalogs: Sequence[Catalog]) -> Catalog:
    """One catalog from several files (GitLab EE: CE's and ee/'s ``all_queues.yml``), in order.

    A worker class in two files is an error naming both; the ``default`` and ``mailers``
    placeholders are kept once."""
    if len(catalogs) == 1:
        return catalogs[0]
    owner: dict[str, str] = {}
    placeholders: set[str] = set()
    twice: dict[tuple[str, str], list[str]] = {}
    workers: list[Worker] = []
    for catalog in catalogs:
        for worker in catalog.workers:
            if worker.worker_name is None:
                if worker.name not in placeholders:
                    placeholders.add(worker.name)
                    workers.append(worker)
            elif worker.worker_name in owner:
                twice.setdefault((owner[worker.worker_name], catalog.path), []).append(
                    worker.worker_name)
            else:
                owner[worker.worker_name] = catalog.path
                workers.append(worker)
    if twice:
        (first, second), names = next(iter(twice.items()))
        also = "".join(f"; and {len(n)} in both {a} and {b}" for (a, b), n in
                       list(twice.items())[1:])
        raise CatalogError(
            f"{len(names)} worker class(es) are listed in both {first} and {second}: "
            f"{', '.join(names[:5])}" + (", ..." if len(names) > 5 else "") + also,
            file=second,
            hint="list each file once in sidekiq_worker_catalog (GitLab EE: the CE file "
            "app/workers/all_queues.yml and the EE file ee/app/workers/all_queues.yml), and "
            "keep one entry per worker class",
        )
    return Catalog(tuple(workers), " + ".join(c.path for c in catalogs))


@lru_cache(maxsize=16)
def _cached_catalog(path: str, mtime: float) -> Catalog:
    return load_catalog(path)


def _cached_one(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return load_catalog(path)  # raises a CatalogError naming the file
    return _cached_catalog(str(path), mtime)


def cached_catalog(source: CatalogSource = None) -> Catalog:
    """Load (and memoise while the files are unchanged) a catalog: one file, a list of files
    merged (:func:`merge_catalogs`), or None (GitLab CE's)."""
    paths = catalog_paths(source)
    if not paths:
        return _cached_one(DEFAULT_CATALOG_PATH)
    if len(paths) == 1:
        return _cached_one(paths[0])
    return _merged(tuple(_cached_one(p) for p in paths))


@lru_cache(maxsize=8)
def _merged(catalogs: tuple[Catalog, ...]) -> Catalog:
    return merge_catalogs(catalogs)


def default_catalog() -> Catalog:
    """GitLab Community Edition's catalog (574 workers), shipped with the package."""
    return cached_catalog(DEFAULT_CATALOG_PATH)
