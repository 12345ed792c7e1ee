"""GitLab's worker matching query (routing rules and queue selectors), reproduced exactly.

Grammar as GitLab parses it (docs/behaviour.md §1): the whole query stripped equal to ``*``
matches everything; otherwise split on ``|`` (OR), each piece on ``&`` (AND), each term matched
by ``^(\\w+)(!?=)([\\w:,]+)`` (Ruby: ``^`` is a line start, the end is not anchored) and its values
split on ``,``. Ruby's ``split`` drops trailing empty pieces and keeps leading and middle ones.

``parse_query(text, strict=False)`` (``--gitlab-compat``) gives GitLab's answer for every query
GitLab accepts, and GitLab's errors (``Invalid term: …``, ``Unknown predicate: …``) for the rest.
``strict=True`` (the default) additionally rejects what GitLab silently misreads; each such
finding is a ``Note`` with a 1-based character position and what GitLab would do instead.
In compat mode the same notes are kept on ``Query.notes`` as warnings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import QueryError, caret_excerpt, excerpt

if TYPE_CHECKING:
    from .catalog import Catalog, Worker

TERM_RE = re.compile(r"^(\w+)(!?=)([\w:,]+)", re.MULTILINE | re.ASCII)
SYMBOL_PREDICATES = ("feature_category", "resource_boundary", "tags", "urgency", "queue_namespace")
STRING_PREDICATES = ("name", "worker_name")
PREDICATES = (*SYMBOL_PREDICATES, *STRING_PREDICATES, "has_external_dependencies")


#: What a :class:`Note` is about: GitLab reads the text differently from how it looks
#: (``misread``), or a value no worker in the catalog has (``no-match``).
MISREAD = "misread"
NO_MATCH = "no-match"


@dataclass(frozen=True)
class Note:
    """Something a query does that it does not seem to say. ``position`` is 1-based."""

    position: int
    message: str
    kind: str = MISREAD
    #: What the note means, for a warning's first words (:attr:`lead`).
    summary: str | None = None

    @property
    def lead(self) -> str:
        """``GitLab reads this query differently`` for a misreading; for a value no worker has,
        what the term really does (``feature_category=hooks matches no worker``)."""
        return self.summary or "GitLab reads this query differently"

    def render(self, text: str, *, with_position: bool = True) -> str:
        head = f"position {self.position}: " if with_position else ""
        return f"{head}{self.message}\n{caret_excerpt(text, self.position - 1)}"

    def describe(self, text: str, *, with_position: bool = True) -> str:
        """:meth:`render`, led by what the term does for a value no worker has (an error's
        text; a warning leads with :attr:`lead` itself)."""
        head = f"{self.summary}: " if self.kind == NO_MATCH and self.summary else ""
        if with_position:
            return f"position {self.position}: {head}{self.render(text, with_position=False)}"
        return head + self.render(text, with_position=False)


def closest(value: str, known: Collection[str], n: int = 3) -> list[str]:
    """The names in ``known`` closest to ``value`` (difflib), best first; [] when none is."""
    return difflib.get_close_matches(value, sorted(known), n=n, cutoff=0.6)


def did_you_mean(value: str, known: Collection[str]) -> str:
    """``did you mean webhooks?`` (or ``webhooks or web_ide?``), or "" when nothing is close."""
    names = closest(value, known)
    return f"did you mean {' or '.join(names)}?" if names else ""


@dataclass(frozen=True)
class Term:
    predicate: str
    negated: bool
    values: tuple[object, ...]
    text: str
    position: int

    def matches(self, attrs: dict[str, frozenset[object]]) -> bool:
        hit = not attrs[self.predicate].isdisjoint(self.values)
        return not hit if self.negated else hit


def worker_attributes(worker: Worker) -> dict[str, frozenset[object]]:
    """A worker's attributes as GitLab's matcher sees them (``Array(value).to_set``)."""
    attrs: dict[str, frozenset[object]] = {}
    for predicate in SYMBOL_PREDICATES:
        value = getattr(worker, predicate)
        if predicate in worker.string_valued and predicate != "tags":
            attrs[predicate] = frozenset()  # a Ruby String never equals a Symbol
        elif predicate == "tags":
            attrs[predicate] = frozenset(value)
        else:
            attrs[predicate] = frozenset() if value is None else frozenset([value])
    for predicate in STRING_PREDICATES:
        value = getattr(worker, predicate)
        attrs[predicate] = frozenset() if value is None else frozenset([value])
    dep = worker.has_external_dependencies
    attrs["has_external_dependencies"] = frozenset() if dep is None else frozenset([dep])
    return attrs


def ruby_split(text: str, sep: str, offset: int = 0) -> list[tuple[str, int]]:
    """Ruby's ``String#split(sep)``: pieces with their 0-based offsets, trailing empties dropped."""
    pieces: list[tuple[str, int]] = []
    start = 0
    for piece in text.split(sep):
        pieces.append((piece, offset + start))
        start += len(piece) + len(sep)
    while pieces and pieces[-1][0] == "":
        pieces.pop()
    return pieces


def _dropped_separators(text: str, sep: str, offset: int) -> list[int]:
    """0-based offsets of separators whose trailing pieces Ruby's split silently drops."""
    stripped = text.rstrip(sep)
    if not stripped:
        return []  # nothing but separators: reported as a whole by the caller
    return [offset + i for i in range(len(stripped), len(text))]


@dataclass(frozen=True)
class Query:
    text: str
    #: OR of ANDs; ``None`` means the ``*`` query (every worker).
    clauses: tuple[tuple[Term, ...], ...] | None
    notes: tuple[Note, ...] = ()
    strict: bool = True

    @property
    def is_wildcard(self) -> bool:
        return self.clauses is None

    def matches_attributes(self, attrs: dict[str, frozenset[object]]) -> bool:
        if self.clauses is None:
            return True
        return any(all(t.matches(attrs) for t in clause) for clause in self.clauses)

    def matches(self, worker: Worker) -> bool:
        return self.matches_attributes(worker_attributes(worker))

    def select(self, workers: Iterable[Worker]) -> list[Worker]:
        return [w for w in workers if self.matches(w)]


def _convert(predicate: str, value: str) -> object:
    if predicate == "has_external_dependencies":
        return value == "true"
    return value


def parse_query(text: str, *, strict: bool = True, catalog: Catalog | None = None) -> Query:
    """Parse a worker matching query.

    Raises ``QueryError`` with GitLab's message for what GitLab rejects and, in strict mode,
    for what GitLab misreads (the first such place; all of them are listed in the message).
    """
    if not isinstance(text, str):
        raise QueryError(
            f"a worker matching query must be a string, not {type(text).__name__} "
            f"({excerpt(text)})",
            hint="quote the query, e.g. 'urgency=high'",
        )
    notes: list[Note] = []
    if text.strip() == "*":
        return Query(text, None, (), strict)

    def note(offset: int, message: str) -> None:
        notes.append(Note(offset + 1, message))

    def gitlab_error(message: str, offset: int, hint: str) -> QueryError:
        caret = "\n" + caret_excerpt(text, offset)
        return QueryError(message + caret, position=offset + 1, hint=hint)

    if not text.strip():
        note(0, "an empty query: GitLab matches NO worker with it")
    for off in _dropped_separators(text, "|", 0):
        note(off, "a dangling '|': GitLab ignores it")
    clauses: list[tuple[Term, ...]] = []
    values_seen: list[tuple[Term, str, int]] = []
    for piece, piece_off in ruby_split(text, "|"):
        if piece == "":
            note(
                piece_off,
                "an empty alternative ('|' with nothing on one side): GitLab "
                "matches EVERY worker with it",
            )
            clauses.append(())
            continue
        and_pieces = ruby_split(piece, "&", piece_off)
        for off in _dropped_separators(piece, "&", piece_off):
            note(off, "a dangling '&': GitLab ignores it")
        if not and_pieces:
            note(piece_off, "an alternative made only of '&': GitLab matches EVERY worker with it")
        terms: list[Term] = []
        for term_text, term_off in and_pieces:
            match = TERM_RE.search(term_text)
            if match is None:
                raise gitlab_error(
                    f"Invalid term: {term_text}",
                    term_off,
                    "a term is PREDICATE=VALUE[,VALUE...] or PREDICATE!=VALUE[,...], with "
                    "letters, digits, '_' and ':' in values; '*' is only valid as the whole query",
                )
            lhs, op, rhs = match.group(1), match.group(2), match.group(3)
            if lhs not in PREDICATES:
                suggestion = did_you_mean(lhs, PREDICATES)
                raise gitlab_error(
                    f"Unknown predicate: {lhs}",
                    term_off + match.start(1),
                    (f"{suggestion} " if suggestion else "")
                    + "use one of " + ", ".join(sorted(PREDICATES)) + " (case-sensitive)",
                )
            start, end = term_off + match.start(), term_off + match.end()
            if match.start() > 0:
                note(term_off, "GitLab skips to the next line and reads only "
                     f"{excerpt(match.group(0))}")
            if match.end() < len(term_text):
                rest = term_text[match.end() :]
                note(
                    end,
                    f"GitLab stops reading the value here: {excerpt(term_text)} is read as "
                    f"{excerpt(match.group(0))} and {excerpt(rest)} is ignored",
                )
            rhs_off = term_off + match.start(3)
            value_pieces = ruby_split(rhs, ",", rhs_off)
            for off in _dropped_separators(rhs, ",", rhs_off):
                note(off, "a dangling ',': GitLab ignores it")
            term = Term(
                predicate=lhs,
                negated=op == "!=",
                values=tuple(_convert(lhs, v) for v, _ in value_pieces),
                text=text[start:end],
                position=start + 1,
            )
            for value, value_off in value_pieces:
                if value == "":
                    note(value_off, "an empty value: it matches no worker")
                else:
                    values_seen.append((term, value, value_off))
            terms.append(term)
        clauses.append(tuple(terms))
    if not clauses and text.strip():
        note(0, "nothing but separators: GitLab matches NO worker with it")
    for term, value, off in values_seen:
        if term.predicate == "has_external_dependencies":
            if value not in ("true", "false"):
                note(
                    off,
                    f"GitLab reads has_external_dependencies value {excerpt(value)} as false "
                    "(only the exact string 'true' is true)",
                )
            continue
        if catalog is None:
            continue
        known = catalog.values(term.predicate)
        if value not in known:
            op = "!=" if term.negated else "="
            effect = "matches EVERY worker" if term.negated else "matches no worker"
            suggestion = did_you_mean(value, known)
            if suggestion:
                hint = suggestion
            else:
                hint = "known values include: " + ", ".join(sorted(known)[:8]) + (
                    ", ..." if len(known) > 8 else "")
            notes.append(Note(
                off + 1,
                f"no worker in {catalog.path} has {term.predicate} {excerpt(value)} ({hint})",
                NO_MATCH,
                f"{term.predicate}{op}{value} {effect}",
            ))
    notes.sort(key=lambda n: n.position)
    query = Query(text, tuple(clauses), tuple(notes), strict)
    if strict and notes:
        first = note_error(notes[0], text)
        more = "".join(f"\n  also {n.describe(text)}" for n in notes[1:4])
        if len(notes) > 4:
            more += f"\n  and {len(notes) - 4} more place(s)"
        first.message += more
        raise first
    return query


MISREAD_HINT = ("rewrite the query so it says exactly what it means, or pass --gitlab-compat "
                "(strict: false) to accept GitLab's reading")
NO_MATCH_HINT = ("use a value some worker of the catalog has (it must be your GitLab's: "
                 "sidekiq_worker_catalog, --catalog), or pass --gitlab-compat (strict: false) to "
                 "accept a term that matches nothing")


def note_error(note: Note, text: str) -> QueryError:
    """A strict-mode error for one note of query ``text``, at its position."""
    return QueryError(
        note.describe(text, with_position=False),
        position=note.position,
        hint=NO_MATCH_HINT if note.kind == NO_MATCH else MISREAD_HINT,
    )


def compile_selector(
    text: str, *, strict: bool = True, catalog: Catalog | None = None
) -> Callable[[Worker], bool]:
    return parse_query(text, strict=strict, catalog=catalog).matches
