"""What a PromQL expression reads, and the Grafana dashboard's queries: for the lab's check that
every query of the dashboard and of the alert rules finds data in a live Prometheus.

An alert expression is empty while the fleet is healthy (``sidekiq_process_up == 0``), so "the
expression returns a series" cannot be the check for it. The rule the lab applies instead
(molecule/fleet/tests/test_monitoring.py, docs/monitoring.md):

1. the expression itself returns at least one series; or else
2. every **vector selector** in it (``metric{matchers}``, with or without a range) returns at
   least one series; a selector that does not is relaxed to the same metric with the same
   label *names* and any values (``metric{queue!=""}``), which must.

Step 2's relaxation accepts a queue that has never held a job (its series do not exist yet)
but still catches a misspelt metric or label name. The selectors are found by a small
tokenizer, not Prometheus' parser (promtool has no parse command): string literals, label
matchers ``{...}`` and ranges ``[...]`` are read as whole tokens, identifiers followed by ``(``
are functions or aggregations, the label lists after ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right`` are skipped, and PromQL's keywords are not metrics.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AGGREGATIONS",
    "KEYWORDS",
    "Selector",
    "dashboard_problems",
    "dashboard_queries",
    "relaxed",
    "vector_selectors",
]

_STRING = r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'
_TOKEN = re.compile(
    rf"(?P<string>{_STRING})"
    rf"|(?P<matchers>\{{(?:{_STRING}|[^{{}}\"'`])*\}})"
    r"|(?P<range>\[[^\]]*\])"
    r"|(?P<number>(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)(?:ms|[smhdwy])*"
    r"|\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"|(?P<space>\s+|#[^\n]*)"
    r"|(?P<other>.)",
    re.S,
)
_MATCHER = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*({_STRING})")
#: Words that are never metric names.
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
     "group_left", "group_right", "atan2", "inf", "nan", "start", "end"}
)
#: Aggregations, which may put ``by (...)``/``without (...)`` between their name and ``(``.
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
     "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
#: Keywords followed by a parenthesised list of label names (not selectors).
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


@dataclass(frozen=True)
class Selector:
    """One vector selector: ``metric`` (may be empty) and its ``{...}`` text (may be empty)."""

    metric: str
    matchers: str = ""

    def __str__(self) -> str:
        return f"{self.metric}{self.matchers}" or "{}"

    @property
    def label_names(self) -> tuple[str, ...]:
        """The label names its matchers use, in order, without repeats."""
        names = [m.group(1) for m in _MATCHER.finditer(self.matchers)]
        return tuple(dict.fromkeys(n for n in names if n != "__name__"))


def _tokens(expr: str) -> list[tuple[str, str]]:
    return [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(expr)
            if m.lastgroup != "space"]


def vector_selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr`` (in order, without repeats)."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in _LABEL_LISTS and following[1] == "(":
            i += 2  # skip the label list up to its ")"
            while i < len(tokens) and tokens[i][1] != ")":
                i += 1
        elif kind == "ident" and text in AGGREGATIONS and following[1] in _LABEL_LISTS:
            pass  # an aggregation; its label list is skipped next
        elif kind == "ident" and text not in KEYWORDS and following[1] != "(":
            if following[0] == "matchers":
                found.append(Selector(text, following[1]))
                i += 1
            else:
                found.append(Selector(text))
        elif kind == "matchers":
            found.append(Selector("", text))
        i += 1
    return list(dict.fromkeys(found))


def relaxed(selector: Selector) -> str:
    """The selector with its label values relaxed: same metric, same label names, any value."""
    names = selector.label_names
    if not names:
        return str(selector)
    return selector.metric + "{" + ", ".join(f'{n}!=""' for n in names) + "}"


def _panels(panels: list[Any]) -> list[dict[str, Any]]:
    """Panels, with the panels nested in rows."""
    out: list[dict[str, Any]] = []
    for panel in panels:
        if isinstance(panel, dict):
            out.append(panel)
            out.extend(_panels(panel.get("panels") or []))
    return out


def dashboard_queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title and target refId, expression) of every target of the dashboard."""
    out = []
    for panel in _panels(document.get("panels") or []):
        for target in panel.get("targets") or []:
            where = f"{panel.get('title', '?')} / {target.get('refId', '?')}"
            out.append((where, str(target.get("expr") or "")))
    return out


def dashboard_problems(text: str) -> list[str]:
    """What is wrong with a Grafana dashboard's JSON: not JSON, a target without ``expr``, a
    panel or target whose Prometheus datasource is not the dashboard's datasource variable."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"not valid JSON: {exc}"]
    if not isinstance(document, dict):
        return ["not a dashboard: the top level is not an object"]
    problems: list[str] = []
    variables = [v for v in (document.get("templating") or {}).get("list") or []
                 if isinstance(v, dict) and v.get("type") == "datasource"]
    names = {v.get("name") for v in variables if v.get("query") == "prometheus"}
    if len(names) != 1:
        problems.append("the dashboard needs exactly one datasource variable of type prometheus "
                        f"(templating.list), found {sorted(map(str, names))}")
    wanted = {f"${{{n}}}" for n in names} | {f"${n}" for n in names}
    panels = _panels(document.get("panels") or [])
    if not panels:
        problems.append("the dashboard has no panels")
    for panel in panels:
        title = panel.get("title", "?")
        if panel.get("type") == "row":
            continue
        sources = [("panel", panel.get("datasource"))] + [
            (f"target {t.get('refId', '?')}", t.get("datasource"))
            for t in panel.get("targets") or [] if t.get("datasource") is not None]
        for what, source in sources:
            uid = source.get("uid") if isinstance(source, dict) else source
            kind = source.get("type") if isinstance(source, dict) else None
            if uid not in wanted or kind not in (None, "prometheus"):
                problems.append(f"panel {title!r}, {what}: datasource {source!r} is not the "
                                f"variable {' or '.join(sorted(wanted)) or '(none)'}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"panel {title!r} has no targets")
        for target in targets:
            if not str(target.get("expr") or "").strip():
                problems.append(f"panel {title!r}, target {target.get('refId', '?')}: no expr")
    return problems
