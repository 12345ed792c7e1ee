"""Reading operator input safely: text files, YAML, output directories, and the limits.

Every file fleetsim reads (workload, routing rules, worker catalog, ``--to`` target, trace)
goes through :func:`read_text`, and every YAML one through :func:`load_yaml_file`; a problem is
the caller's :class:`~.errors.FleetError` subclass naming the file, the place and the fix.

Limits (docs/simulator.md, "Input limits"):

* files must be UTF-8 text (no NUL byte), at most :data:`MAX_FILE_BYTES`;
* YAML aliases may not expand a document beyond :data:`MAX_YAML_NODES` nodes (a "billion
  laughs" file is refused in milliseconds), nor refer to themselves, nor nest deeper than
  Python's recursion allows;
* simulated time (``--duration``, ``--phase-gap``, event times) is at most
  :data:`MAX_SIMULATED_S` (30 days);
* ``--seed`` is a whole number from 0 to :data:`MAX_SEED`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import FleetError, WorkloadError, excerpt

__all__ = ["MAX_FILE_BYTES", "MAX_SEED", "MAX_SIMULATED_S", "MAX_YAML_NODES",
           "cache_dir", "check_output_dir", "load_yaml_file", "load_yaml_text",
           "parse_duration", "read_text"]

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_YAML_NODES = 1_000_000
MAX_SIMULATED_S = 30 * 86400.0
MAX_SEED = 2**32 - 1
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s|ms)")


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def read_text(path: str | os.PathLike[str], *, error: type[FleetError], what: str,
              hint: str | None = None) -> str:
    """The file's text; not readable, too big, binary or not UTF-8 is ``error``."""
    file = str(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise error(f"the {what} is {size:,} bytes, more than fleetsim reads "
                        f"({MAX_FILE_BYTES:,})", file=file,
                        hint=hint or f"check that this is the {what} you meant")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror}", file=file,
                    hint=hint or "check the path") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise error(f"the {what} is a binary file (a NUL byte at {_position(data, nul)}), "
                    "not YAML text", file=file,
                    hint=f"give the path of the {what} itself, a UTF-8 text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"the {what} is not UTF-8 text: byte 0x{data[exc.start]:02x} at "
                    f"{_position(data, exc.start)} is invalid", file=file,
                    hint="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)") from None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader; :func:`load_yaml_text` sizes the node graph before building it."""


# libyaml's parser reads a document about five times as fast as the pure-Python one (the
# 574-entry worker catalog: ~0.15 s instead of ~1 s). It has no recursion guard, so it only
# composes documents whose nesting :func:`_nesting_depth` has measured first; anything deeper,
# and any syntax error (for the same messages everywhere), goes through :class:`_Loader`.
_FastLoader: type[Any] | None = getattr(yaml, "CSafeLoader", None)
_FAST_MAX_DEPTH = 200
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _nesting_depth(loader: Any, limit: int) -> int:
    """The deepest list/mapping nesting in the event stream (stops counting past ``limit``)."""
    depth = deepest = 0
    while (event := loader.get_event()) is not None:
        if isinstance(event, _OPEN):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif isinstance(event, _CLOSE):
            depth -= 1
    return deepest


def _fast_node(text: str) -> tuple[Any, yaml.Node | None] | None:
    """(loader, root node) from libyaml, or None when the slow, guarded path must be taken."""
    if _FastLoader is None:
        return None
    try:
        probe = _FastLoader(text)
        try:
            if _nesting_depth(probe, _FAST_MAX_DEPTH) > _FAST_MAX_DEPTH:
                return None
        finally:
            probe.dispose()
        loader = _FastLoader(text)
        try:
            return loader, loader.get_single_node()
        except BaseException:
            loader.dispose()
            raise
    except yaml.YAMLError:
        return None  # the pure-Python loader reports it, with its position and wording


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded; refuses cycles and bombs early."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive(node)
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > MAX_YAML_NODES:
                    raise _TooBig(node)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > MAX_YAML_NODES:
                    raise _TooBig(node)
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


class _TooBig(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class _Recursive(_TooBig):
    pass


def load_yaml_text(text: str, *, file: str, error: type[FleetError], what: str,
                   hint: str | None = None) -> Any:
    """``yaml.safe_load`` with alias, recursion and nesting limits; errors are ``error``."""
    fast = _fast_node(text)
    loader: Any = fast[0] if fast else _Loader(text)
    try:
        node = fast[1] if fast else loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except _Recursive as exc:
        mark = exc.node.start_mark
        raise error(f"a YAML alias refers to the node that contains it (line {mark.line + 1})",
                    file=file, hint="replace the alias (*name) with the value it stands for"
                    ) from None
    except _TooBig as exc:
        mark = exc.node.start_mark
        raise error(f"YAML aliases expand the {what} beyond {MAX_YAML_NODES:,} values "
                    f"(from line {mark.line + 1}): refused as an alias bomb", file=file,
                    hint="write the values out, or use far fewer nested aliases (*name)"
                    ) from None
    except RecursionError:
        raise error(f"the {what} nests YAML lists or mappings too deeply", file=file,
                    hint="flatten the structure (a few levels are enough)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        rule = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"not valid YAML: {excerpt(problem, 200)[1:-1]}", file=file, rule=rule,
                    hint=hint or "fix the YAML syntax") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | os.PathLike[str], *, error: type[FleetError], what: str,
                   hint: str | None = None, cache: bool = False) -> Any:
    """Read a UTF-8 YAML (or JSON) file with :func:`read_text` and :func:`load_yaml_text`.

    ``cache=True`` (worker catalogs: large, read by every command) keeps the parsed document as
    JSON in the user's cache directory, keyed by the file's SHA-256, so the next run reads JSON
    instead of parsing YAML; a cache that cannot be read or written is simply not used.
    """
    text = read_text(path, error=error, what=what, hint=hint)
    if not cache or len(text) < CACHE_MIN_CHARS:
        return load_yaml_text(text, file=str(path), error=error, what=what)
    return cached_parse(text, "yaml",
                        lambda: load_yaml_text(text, file=str(path), error=error, what=what))


def cached_parse(text: str, kind: str, parse: Callable[[], Any]) -> Any:
    """``parse()``'s result for ``text``, from the user's cache when an earlier run stored it.

    The entry is keyed by ``kind`` (which parser: the same text parses differently with
    another loader) and the text's SHA-256; a result that does not survive a JSON round trip
    unchanged is not stored, and a cache that cannot be read or written is not used."""
    entry = _cache_entry(text, kind)
    if entry is not None:
        try:
            return json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    data = parse()
    if entry is not None:
        _store(entry, data)
    return data


#: Files shorter than this are parsed every time (their YAML is quicker than the cache).
CACHE_MIN_CHARS = 32 * 1024


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/fleetsim`` (``~/.cache/fleetsim``); ``FLEETSIM_CACHE=off`` disables."""
    if os.environ.get("FLEETSIM_CACHE", "").lower() in {"off", "0", "no"}:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fleetsim"


def _cache_entry(text: str, kind: str) -> Path | None:
    where = cache_dir()
    if where is None:
        return None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return where / f"{kind}-{digest}.json"


def _store(entry: Path, data: Any) -> None:
    """Write ``data`` as JSON if it survives the round trip unchanged (no dates, int keys)."""
    try:
        dumped = json.dumps(data, separators=(",", ":"))
        if json.loads(dumped) != data:
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=entry.parent,
                                         prefix=".tmp-", delete=False) as fh:
            fh.write(dumped)
        os.replace(fh.name, entry)
    except (OSError, TypeError, ValueError):
        pass


def check_output_dir(path: str, *, option: str) -> None:
    """Create ``path`` if needed and prove a file can be written there (before any work)."""
    hint = f"give {option} a directory you can write to (it is created if missing)"
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".fleetsim-write-test-"):
            pass
    except FileExistsError:
        raise FleetError(f"{option}: {path} exists and is not a directory", file=path,
                         hint=hint) from None
    except OSError as exc:
        raise FleetError(f"{option}: cannot write to {path}: {exc.strerror}", file=path,
                         hint=hint) from None


def parse_duration(value: Any, *, what: str = "duration", file: str | None = None,
                   rule: str | None = None) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``: 0 to 30 days.

    Infinity, NaN and anything above :data:`MAX_SIMULATED_S` are refused.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise WorkloadError(
                    f"{what} {excerpt(value)} is not a duration", file=file, rule=rule,
                    hint="write seconds (90) or a number with a unit: 90s, 15m, 1h30m, 2d",
                ) from None
            unit = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
            seconds = sum(float(n) * unit[u] for n, u in parts)
    else:
        raise WorkloadError(f"{what} {excerpt(value)} is not a duration", file=file, rule=rule,
                            hint="write seconds (90) or a number with a unit: 90s, 15m, 1h")
    if math.isnan(seconds):
        raise WorkloadError(f"{what} {excerpt(value)} is not a number", file=file, rule=rule,
                            hint="write seconds (90) or a number with a unit: 90s, 15m, 1h")
    if seconds < 0:
        raise WorkloadError(f"{what} {excerpt(value)} is negative", file=file, rule=rule,
                            hint="use a duration of 0 or more")
    if seconds > MAX_SIMULATED_S:
        raise WorkloadError(
            f"{what} {excerpt(value)} is longer than fleetsim simulates "
            f"({MAX_SIMULATED_S / 86400:g} days)", file=file, rule=rule,
            hint=f"use at most {MAX_SIMULATED_S / 86400:g}d (simulate a representative day "
                 "or week; shape: gives the daily pattern)")
    return seconds
