"""Ruby source read without running it: tokens, statements and literal values.

Enough of Ruby's lexical grammar to find every statement of a configuration file written in
Ruby, such as Omnibus GitLab's ``/etc/gitlab/gitlab.rb``, and to read the values that are
literals: strings (single and double quoted, with escapes; adjacent ones joined), heredocs,
symbols, integers, floats, ``true``/``false``/``nil``, arrays, hashes (``=>`` and ``key:``
pairs), ``%w[]``/``%i[]`` word lists, and one operation on literals, ``[...] * N`` (GitLab's
reference architectures write ``sidekiq['queue_groups'] = ['*'] * 4``).

Nothing is evaluated. Whatever is not a literal (string interpolation ``"#{...}"``, a method
call, backticks, a constant, ``ENV[...]``, a variable, an operator, a condition) is read as an
:class:`Opaque` value that says what it is and where; the caller decides whether it needed it.
A file that is not well-formed (an unterminated string, an unclosed bracket, an ``if`` without
its ``end``) is a :class:`~simulator.errors.FleetError` naming the line.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import FleetError, caret_excerpt, clip

__all__ = [
    "Opaque",
    "Source",
    "Statement",
    "Token",
    "find_opaque",
    "literal_value",
    "split_arguments",
    "statements",
    "tokenize",
]

KEYWORDS = frozenset([
    "alias", "and", "begin", "break", "case", "class", "def", "defined?", "do", "else", "elsif",
    "end", "ensure", "false", "for", "if", "in", "module", "next", "nil", "not", "or", "redo",
    "rescue", "retry", "return", "self", "super", "then", "true", "undef", "unless", "until",
    "when", "while", "yield", "__FILE__", "__LINE__", "__ENCODING__"
])
#: Keywords after which an expression (a value) starts.
_VALUE_KEYWORDS = KEYWORDS - {"end", "self", "true", "false", "nil", "__FILE__", "__LINE__",
                              "__ENCODING__"}
#: Longest first, so ``**=`` is read before ``**`` and ``*``.
_OPERATORS = sorted([
    "**=", "<=>", "===", "...", "<<=", ">>=", "&&=", "||=", "**", "==", "!=", ">=", "<=", "&&",
    "||", "<<", ">>", "=~", "!~", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "::", "..",
    "=>", "->", "&.", "+", "-", "*", "/", "%", "=", "<", ">", "!", "&", "|", "^", "~", "?", ":",
    ",", ".", ";", "(", ")", "[", "]", "{", "}"
], key=len, reverse=True)
_IDENT = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|0[bB][01](?:_?[01])*|0[oO]?[0-7](?:_?[0-7])*"
    r"|\d(?:_?\d)*(?:\.\d(?:_?\d)*)?(?:[eE][+-]?\d+)?"
)
_HEREDOC = re.compile(r"<<([~-]?)(?:(['\"`])([^'\"`\n]+)\2|([A-Za-z_][A-Za-z0-9_]*))")
_PERCENT = re.compile(r"%([qQwWiIrsx]?)([^A-Za-z0-9\s])")
_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "s": " ", "r": "\r", "0": "\0", "e": "\x1b",
                   "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


@dataclass(slots=True)
class Token:
    """One token. ``kind``: ``str`` (also heredocs and ``?c``), ``xstr`` (backticks, ``%x``),
    ``sym``, ``int``, ``float``, ``words`` (``%w``/``%i``), ``regex``, ``ident``, ``const``,
    ``var`` (``@x``, ``$x``), ``label`` (``key:``), ``kw``, ``op`` or ``nl``."""

    kind: str
    text: str
    value: Any
    pos: int
    line: int
    col: int
    interpolated: bool = False
    space_before: bool = False
    #: The file the token was read from (for messages naming its line).
    source: Source | None = field(default=None, repr=False, compare=False)

    def error(self, message: str, hint: str | None = None) -> FleetError:
        """A FleetError naming this token's file and line, with a caret under it."""
        if self.source is None:
            return FleetError(message, rule=f"line {self.line}", hint=hint)
        return self.source.error(message, self.pos, hint)


@dataclass(frozen=True)
class Opaque:
    """A value that is not a literal: ``reason`` says what it is (``a method call
    (ENV.fetch)``); ``token`` is where it starts."""

    reason: str
    token: Token = field(compare=False)


@dataclass
class Statement:
    """The tokens of one statement (no newlines), and the keyword of the outermost ``if``,
    ``do``, ``def``, ... block it lies in (None at the top level of the file)."""

    tokens: list[Token]
    block: Token | None = None

    @property
    def line(self) -> int:
        return self.tokens[0].line


class Source:
    """The text, its file name and line starts, for positions and error messages."""

    def __init__(self, text: str, file: str | None) -> None:
        self.text = text
        self.file = file
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def line_col(self, pos: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, pos) - 1
        return index + 1, pos - self.starts[index]

    def line_text(self, line: int) -> str:
        start = self.starts[line - 1]
        end = self.starts[line] - 1 if line < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def error(self, message: str, pos: int, hint: str | None = None) -> FleetError:
        line, col = self.line_col(pos)
        return FleetError(
            f"{message}\n{caret_excerpt(self.line_text(line), col)}",
            file=self.file,
            rule=f"line {line}",
            hint=hint or "fix the line (gitlab-ctl reconfigure would stop on it too), or "
            "remove it",
        )


class _Lexer:
    def __init__(self, source: Source) -> None:
        self.src = source
        self.text = source.text
        self.pos = 0
        self.tokens: list[Token] = []
        self.heredocs: list[tuple[Token, str, str, bool]] = []  # token, id, flavour, raw

    # -- helpers ---------------------------------------------------------------------------
    def emit(self, kind: str, start: int, value: Any = None, *, text: str | None = None,
             interpolated: bool = False) -> Token:
        line, col = self.src.line_col(start)
        space = start > 0 and self.text[start - 1] in " \t\\"
        token = Token(kind, self.text[start:self.pos] if text is None else text, value, start,
                      line, col, interpolated, space, self.src)
        self.tokens.append(token)
        return token

    def value_position(self, start: int) -> bool:
        """True where Ruby expects a value: after an operator, a keyword, a newline, or an
        identifier followed by a space (``roles %w[a b]``), not after a value (``x % 2``)."""
        prev = self.tokens[-1] if self.tokens else None
        if prev is None or prev.kind in ("nl", "label"):
            return True
        if prev.kind == "op":
            return prev.text not in (")", "]", "}")
        if prev.kind == "kw":
            return prev.text in _VALUE_KEYWORDS
        if prev.kind == "ident":
            after = self.text[start + 1: start + 2]
            return self.text[start - 1: start] in (" ", "\t") and after not in (" ", "\t", "=")
        return False

    # -- the main loop ---------------------------------------------------------------------
    def run(self) -> list[Token]:
        text = self.text
        n = len(text)
        while self.pos < n:
            c = text[self.pos]
            at_line_start = self.pos == 0 or text[self.pos - 1] == "\n"
            if at_line_start and text.startswith("=begin", self.pos) and (
                    self.pos + 6 == n or text[self.pos + 6].isspace()):
                self.skip_block_comment()
                continue
            if at_line_start and text.startswith("__END__", self.pos) and text[
                    self.pos + 7: self.pos + 8] in ("", "\n", "\r"):
                break
            if c in " \t\r\f\v":
                self.pos += 1
            elif c == "\\" and text[self.pos + 1: self.pos + 2] == "\n":
                self.pos += 2
            elif c == "\\" and text[self.pos + 1: self.pos + 3] == "\r\n":
                self.pos += 3
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif c == "\n":
                start = self.pos
                self.pos += 1
                self.emit("nl", start, text="\n")
                if self.heredocs:
                    self.read_heredoc_bodies()
            elif c.isdigit():
                self.number()
            elif c == "_" or c.isalpha() or ord(c) > 127:
                self.identifier()
            elif c in "\"'":
                self.string(c)
            elif c == "`":
                start = self.pos
                value, interpolated = self.delimited(self.pos + 1, "`", "`", raw=False)
                self.emit("xstr", start, value, interpolated=interpolated)
            elif c == ":":
                self.colon()
            elif c in "@$":
                self.variable()
            elif c == "%" and self.value_position(self.pos) and _PERCENT.match(text, self.pos):
                self.percent()
            elif c == "/" and self.value_position(self.pos):
                start = self.pos
                value, interpolated = self.delimited(self.pos + 1, "/", "/", raw=True)
                while self.pos < n and text[self.pos] in "imxounse":
                    self.pos += 1
                self.emit("regex", start, value, interpolated=interpolated)
            elif c == "<" and self.value_position(self.pos) and _HEREDOC.match(text, self.pos):
                self.heredoc_start()
            elif c == "?" and self.value_position(self.pos) and self.char_literal():
                pass
            else:
                self.operator()
        if self.heredocs:
            token, ident, _, _ = self.heredocs[0]
            raise self.src.error(f"the heredoc {token.text} is never closed (no line "
                                 f"{ident!r} after it)", token.pos)
        return self.tokens

    def skip_block_comment(self) -> None:
        match = re.compile(r"^=end(?:\s|$)", re.M).search(self.text, self.pos + 6)
        if match is None:
            raise self.src.error("=begin without =end: the comment never ends", self.pos)
        end = self.text.find("\n", match.start())
        self.pos = len(self.text) if end < 0 else end

    def number(self) -> None:
        start = self.pos
        match = _NUMBER.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()
        raw = match.group(0).replace("_", "")
        lower = raw.lower()
        if lower.startswith("0x"):
            self.emit("int", start, int(raw[2:], 16))
        elif lower.startswith("0b"):
            self.emit("int", start, int(raw[2:], 2))
        elif lower.startswith("0o"):
            self.emit("int", start, int(raw[2:], 8))
        elif "." in raw or "e" in lower:
            self.emit("float", start, float(raw))
        elif len(raw) > 1 and raw.startswith("0"):
            try:
                self.emit("int", start, int(raw, 8))
            except ValueError:
                raise self.src.error(f"{raw} is not a number (a leading 0 makes it octal)",
                                     start) from None
        else:
            self.emit("int", start, int(raw))

    def identifier(self) -> None:
        start = self.pos
        match = _IDENT.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()
        nxt = self.text[self.pos: self.pos + 1]
        if nxt in ("?", "!") and self.text[self.pos + 1: self.pos + 2] != "=":
            self.pos += 1
        name = self.text[start: self.pos]
        prev = self.tokens[-1] if self.tokens else None
        method = prev is not None and prev.kind == "op" and prev.text in (".", "&.", "::")
        if (self.text[self.pos: self.pos + 1] == ":" and self.text[self.pos + 1: self.pos + 2]
                != ":" and not method and name[-1] not in "?!"):
            self.pos += 1
            self.emit("label", start, name)
        elif name in KEYWORDS and not method:
            value = {"true": True, "false": False}.get(name)
            self.emit("kw", start, value)
        elif name[0].isupper():
            self.emit("const", start, name)
        else:
            self.emit("ident", start, name)

    def string(self, quote: str) -> None:
        start = self.pos
        value, interpolated = self.delimited(self.pos + 1, quote, quote, raw=quote == "'")
        # "key": value in a hash or argument list is a label (a symbol key)
        if (self.text[self.pos: self.pos + 1] == ":" and self.text[self.pos + 1: self.pos + 2]
                not in (":", "") and not self.text[self.pos + 1].isalnum()):
            prev = self.tokens[-1] if self.tokens else None
            if prev is None or prev.kind != "op" or prev.text != "?":
                self.pos += 1
                self.emit("label", start, value, interpolated=interpolated)
                return
        self.emit("str", start, value, interpolated=interpolated)

    def colon(self) -> None:
        text = self.text
        start = self.pos
        nxt = text[self.pos + 1: self.pos + 2]
        if nxt == ":":
            self.pos += 2
            self.emit("op", start)
        elif nxt in ("\"", "'"):
            value, interpolated = self.delimited(self.pos + 2, nxt, nxt, raw=nxt == "'")
            self.emit("sym", start, value, interpolated=interpolated)
        elif nxt and (nxt == "_" or nxt.isalpha() or ord(nxt) > 127):
            match = _IDENT.match(text, self.pos + 1)
            assert match is not None
            self.pos = match.end()
            tail = text[self.pos: self.pos + 1]
            if tail in ("?", "!") or (tail == "=" and text[self.pos + 1: self.pos + 2]
                                      not in (">", "=", "~")):
                self.pos += 1
            self.emit("sym", start, text[start + 1: self.pos])
        elif nxt == "@" or nxt == "$":
            self.pos += 1
            self.variable()
            token = self.tokens.pop()
            self.emit("sym", start, token.text)
        else:
            if self.value_position(start) and nxt and nxt not in " \t\n":
                for op in _OPERATORS:
                    if op not in ",;()]{}" and text.startswith(op, self.pos + 1):
                        self.pos += 1 + len(op)
                        self.emit("sym", start, op)
                        return
            self.pos += 1
            self.emit("op", start)

    def variable(self) -> None:
        start = self.pos
        self.pos += 2 if self.text.startswith("@@", self.pos) else 1
        match = _IDENT.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()
        elif self.pos < len(self.text) and self.text[start] == "$":
            self.pos += 1  # $!, $0, $:, ...
        else:
            raise self.src.error(f"{self.text[start:self.pos]!r} is not a variable name", start)
        self.emit("var", start, self.text[start:self.pos])

    def percent(self) -> None:
        start = self.pos
        match = _PERCENT.match(self.text, self.pos)
        assert match is not None
        kind, open_ = match.group(1), match.group(2)
        close = _PAIRS.get(open_, open_)
        raw = kind in ("q", "w", "i", "s")
        value, interpolated = self.delimited(match.end(), open_, close, raw=raw,
                                             words=kind in ("w", "W", "i", "I"))
        if kind in ("w", "W", "i", "I"):
            self.emit("words", start, value, interpolated=interpolated)
        elif kind == "x":
            self.emit("xstr", start, value, interpolated=interpolated)
        elif kind == "r":
            while self.pos < len(self.text) and self.text[self.pos] in "imxounse":
                self.pos += 1
            self.emit("regex", start, value, interpolated=interpolated)
        elif kind == "s":
            self.emit("sym", start, value)
        else:
            self.emit("str", start, value, interpolated=interpolated)

    def char_literal(self) -> bool:
        """``?a`` (a one-character string) where a value is expected."""
        text = self.text
        ch = text[self.pos + 1: self.pos + 2]
        if not ch or ch.isspace():
            return False
        end = self.pos + 2
        if ch == "\\":
            end = self.pos + 3
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            return False
        start = self.pos
        self.pos = end
        self.emit("str", start, text[start + 1: end].replace("\\", "", 1) or ch)
        return True

    def operator(self) -> None:
        start = self.pos
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                self.emit("op", start)
                return
        raise self.src.error(f"{self.text[start]!r} is not Ruby here", start)

    # -- strings ---------------------------------------------------------------------------
    def delimited(self, pos: int, open_: str, close: str, *, raw: bool,
                  words: bool = False) -> tuple[Any, bool]:
        """Read from ``pos`` to the closing delimiter; sets ``self.pos`` after it. Returns the
        value (a list of words for ``%w``) and whether it interpolates code."""
        text = self.text
        n = len(text)
        start = pos - 1
        depth = 0
        out: list[str] = []
        items: list[str] = []
        interpolated = False
        while True:
            if pos >= n:
                raise self.src.error("this string never ends (no closing "
                                     f"{close!r})", start)
            c = text[pos]
            if c == "\\":
                nxt = text[pos + 1: pos + 2]
                if raw:
                    if nxt in ("\\", open_, close) or (words and nxt.isspace() and nxt):
                        out.append(nxt)
                        pos += 2
                    else:
                        out.append(c)
                        pos += 1
                    continue
                if words and nxt.isspace() and nxt:
                    out.append(nxt)
                    pos += 2
                    continue
                char, pos = self.escape(pos)
                out.append(char)
                continue
            if c == "#" and not raw and text[pos + 1: pos + 2] == "{":
                interpolated = True
                pos = self.skip_interpolation(pos + 2)
                out.append(text[pos - 1: pos])  # keep something: the value is unused anyway
                continue
            if c == "#" and not raw and text[pos + 1: pos + 2] in ("@", "$"):
                interpolated = True
            if open_ != close and c == open_:
                depth += 1
            elif c == close:
                if depth == 0:
                    break
                depth -= 1
            if words and c.isspace():
                if out:
                    items.append("".join(out))
                    out = []
                pos += 1
                continue
            out.append(c)
            pos += 1
        self.pos = pos + 1
        if words:
            if out:
                items.append("".join(out))
            return items, interpolated
        return "".join(out), interpolated

    def escape(self, pos: int) -> tuple[str, int]:
        """A backslash escape of a double-quoted string at ``pos``: (character, next pos)."""
        text = self.text
        nxt = text[pos + 1: pos + 2]
        if nxt in _SIMPLE_ESCAPES and not (nxt == "0" and text[pos + 2: pos + 3].isdigit()):
            return _SIMPLE_ESCAPES[nxt], pos + 2
        if nxt == "u":
            if text[pos + 2: pos + 3] == "{":
                end = text.find("}", pos + 3)
                if end < 0:
                    raise self.src.error("\\u{...} is never closed", pos)
                try:
                    chars = "".join(chr(int(h, 16)) for h in text[pos + 3: end].split())
                except ValueError:
                    raise self.src.error("invalid \\u{...} escape", pos) from None
                return chars, end + 1
            digits = text[pos + 2: pos + 6]
            if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                raise self.src.error("invalid \\u escape (four hex digits expected)", pos)
            return chr(int(digits, 16)), pos + 6
        if nxt == "x":
            match = re.compile(r"[0-9a-fA-F]{1,2}").match(text, pos + 2)
            if match is None:
                raise self.src.error("invalid \\x escape", pos)
            return chr(int(match.group(0), 16)), match.end()
        if nxt and nxt in "01234567":
            match = re.compile(r"[0-7]{1,3}").match(text, pos + 1)
            assert match is not None
            return chr(int(match.group(0), 8)), match.end()
        if nxt == "\n":
            return "", pos + 2  # a line continuation inside the string
        if not nxt:
            raise self.src.error("the file ends inside a string", pos)
        return nxt, pos + 2

    def skip_interpolation(self, pos: int) -> int:
        """From just after ``#{`` to just after its ``}`` (nested braces and strings)."""
        text = self.text
        depth = 0
        start = pos - 2
        while pos < len(text):
            c = text[pos]
            if c in "\"'`":
                self.pos = pos
                self.delimited(pos + 1, c, c, raw=c == "'")
                pos = self.pos
                continue
            if c == "\\":
                pos += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                if depth == 0:
                    return pos + 1
                depth -= 1
            pos += 1
        raise self.src.error("#{ is never closed in this string", start)

    def heredoc_start(self) -> None:
        start = self.pos
        match = _HEREDOC.match(self.text, self.pos)
        assert match is not None
        flavour, quote, quoted, bare = match.groups()
        ident = quoted if quoted is not None else bare
        self.pos = match.end()
        token = self.emit("xstr" if quote == "`" else "str", start, "")
        self.heredocs.append((token, ident, flavour, quote == "'"))

    def read_heredoc_bodies(self) -> None:
        """After the newline of a line that opened heredocs: read each body in order."""
        text = self.text
        for token, ident, flavour, raw in self.heredocs:
            lines: list[str] = []
            pos = self.pos
            while True:
                if pos >= len(text):
                    raise self.src.error(f"the heredoc {token.text} is never closed (no line "
                                         f"{ident!r} after it)", token.pos)
                end = text.find("\n", pos)
                line = text[pos:] if end < 0 else text[pos:end + 1]
                pos = len(text) if end < 0 else end + 1
                bare = line.rstrip("\r\n")
                if (bare.strip() if flavour else bare) == ident:
                    break
                lines.append(line)
            if flavour == "~":
                indents = [len(x) - len(x.lstrip(" \t")) for x in lines if x.strip()]
                cut = min(indents, default=0)
                lines = [x[cut:] if x.strip() else x.lstrip(" \t") for x in lines]
            body = "".join(lines)
            token.value = body
            if not raw and ("#{" in body or "#@" in body or "#$" in body):
                token.interpolated = True
            self.pos = pos
        self.heredocs = []


def tokenize(text: str, file: str | None = None) -> tuple[list[Token], Source]:
    """The tokens of ``text`` (comments and blank space left out), and its source (for
    messages). A file that is not well-formed Ruby is a FleetError naming the line."""
    source = Source(text, file)
    return _Lexer(source).run(), source


# -- statements -----------------------------------------------------------------------------

_CLOSERS = {")": "(", "]": "[", "}": "{"}
#: Tokens after which a line goes on on the next one (``x = 1 +`` / ``roles [``).
_CONTINUES = {op for op in _OPERATORS if op not in (")", "]", "}", ";")}
_ALWAYS_OPEN = ("begin", "case", "class", "def", "module", "for")
_OPEN_AT_START = ("if", "unless", "while", "until")
#: Keywords after which ``if``/``unless``/``while``/``until`` are modifiers (``return if x``).
_BEFORE_MODIFIER = ("return", "break", "next", "redo", "retry", "super", "yield")


def _ends_value(token: Token) -> bool:
    """True when ``token`` can end an expression (so a following ``if`` is a modifier)."""
    if token.kind == "op":
        return token.text in (")", "]", "}")
    if token.kind == "kw":
        return token.text not in _VALUE_KEYWORDS or token.text in _BEFORE_MODIFIER
    return token.kind != "label"


def _continues(current: Sequence[Token]) -> bool:
    """True when the statement so far cannot end at a newline: it ends with an operator
    (``x = 1 +``, ``roles [``) or ``and``/``or``/``not``, but not with closed block
    parameters (``do |x|``)."""
    last = current[-1]
    if last.kind == "kw":
        return last.text in ("and", "or", "not")
    if last.kind != "op" or last.text not in _CONTINUES:
        return False
    if last.text == "|":
        bars = 0
        for token in reversed(current):
            if (token.kind == "kw" and token.text == "do") or (token.kind == "op"
                                                              and token.text == "{"):
                return bars % 2 == 1
            bars += token.kind == "op" and token.text == "|"
    return True


def statements(tokens: Sequence[Token], source: Source) -> list[Statement]:
    """Group tokens into statements: a newline or ``;`` ends one unless a bracket is open or
    the line ends with an operator (or the next starts with ``.``). ``if``/``unless``/
    ``while``/``until`` at the start of an expression, ``begin``, ``case``, ``def``, ``do``,
    ... open blocks closed by ``end``; each statement knows the outermost block it is in."""
    out: list[Statement] = []
    current: list[Token] = []
    brackets: list[Token] = []
    blocks: list[Token] = []
    loop_do = False
    count = len(tokens)
    for i, token in enumerate(tokens):
        if token.kind == "nl" or (token.kind == "op" and token.text == ";"):
            if brackets:
                continue
            if token.kind == "nl":
                if current and _continues(current):
                    continue
                j = i + 1
                while j < count and tokens[j].kind == "nl":
                    j += 1
                if current and j < count and tokens[j].kind == "op" and tokens[j].text in (
                        ".", "&."):
                    continue
            if current:
                out.append(Statement(current, blocks[0] if blocks else None))
                current = []
            loop_do = False
            continue
        if token.kind == "op":
            if token.text in ("(", "[", "{"):
                brackets.append(token)
            elif token.text in _CLOSERS:
                if not brackets or brackets[-1].text != _CLOSERS[token.text]:
                    raise source.error(f"{token.text!r} closes nothing here", token.pos)
                brackets.pop()
        elif token.kind == "kw":
            prev = current[-1] if current else None
            if token.text in _ALWAYS_OPEN or (
                    token.text in _OPEN_AT_START and (prev is None or not _ends_value(prev))):
                # a `while x do`/`for x in y do` loop's `do` belongs to the loop
                blocks.append(token)
                loop_do = token.text in ("while", "until", "for")
            elif token.text == "do":
                if loop_do:
                    loop_do = False
                else:
                    blocks.append(token)
            elif token.text == "end":
                if not blocks:
                    raise source.error("`end` closes no block here", token.pos)
                blocks.pop()
        current.append(token)
    if brackets:
        raise source.error(f"{brackets[-1].text!r} is never closed", brackets[-1].pos)
    if blocks:
        raise source.error(f"`{blocks[-1].text}` (line {blocks[-1].line}) is never "
                           "closed with `end`", blocks[-1].pos)
    if current:
        out.append(Statement(current, blocks[0] if blocks else None))
    return out


# -- literal values -------------------------------------------------------------------------

_ELEMENT_END = (",", "]", "}", ")", "=>")


def _describe(tokens: Sequence[Token], i: int) -> str:
    """What the expression starting at ``tokens[i]`` is, in words, for a refusal."""
    t = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if t.kind == "xstr":
        return "a shell command in backticks"
    if t.interpolated:
        return "a string with interpolation (#{...})"
    if t.kind == "const":
        name = t.text
        j = i + 1
        while (j + 1 < len(tokens) and tokens[j].kind == "op" and tokens[j].text == "::"
               and tokens[j + 1].kind in ("const", "ident")):
            name += "::" + tokens[j + 1].text
            j += 2
        after = tokens[j] if j < len(tokens) else None
        if name == "ENV":
            if after is not None and after.kind == "op" and after.text in (".", "&.") and \
                    j + 1 < len(tokens):
                return f"an environment variable (ENV.{tokens[j + 1].text})"
            return "an environment variable (ENV[...])"
        if after is not None and after.kind == "op" and after.text in (".", "&."):
            method = tokens[j + 1].text if j + 1 < len(tokens) else ""
            return f"a method call ({name}.{method})"
        if after is not None and after.kind == "op" and after.text == "(" and not \
                after.space_before:
            return f"a method call ({name}(...))"
        return f"a constant ({name})"
    if t.kind == "ident":
        if nxt is not None and nxt.kind == "op" and nxt.text == "[" and not nxt.space_before:
            return f"a lookup ({t.text}[...])"
        if nxt is not None and nxt.kind == "op" and nxt.text in (".", "&.", "("):
            method = f".{tokens[i + 2].text}" if nxt.text != "(" and i + 2 < len(tokens) else ""
            return f"a method call ({t.text}{method})"
        if nxt is not None and nxt.kind not in ("op",):
            return f"a method call ({t.text} ...)"
        return f"a variable or method call ({t.text})"
    if t.kind == "var":
        return f"a variable ({t.text})"
    if t.kind == "regex":
        return "a regular expression"
    if t.kind == "kw":
        if t.text in ("if", "unless"):
            return f"a condition ({t.text} ...)"
        return f"Ruby code (`{t.text}`)"
    if t.kind == "op" and t.text == "->":
        return "a lambda"
    if t.kind == "op" and t.text in (".", "&."):
        method = tokens[i + 1].text if i + 1 < len(tokens) else ""
        return f"a method call (.{method})"
    if t.kind == "op":
        return f"an expression (`{t.text}`)"
    return f"an expression ({clip(t.text, 40)})"


def _skip_expression(tokens: Sequence[Token], i: int) -> int:
    """From ``i`` to the end of an element: a ``,``/``=>``/closing bracket at depth 0."""
    depth = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "op":
            if t.text in ("(", "[", "{"):
                depth += 1
            elif t.text in (")", "]", "}"):
                if depth == 0:
                    return i
                depth -= 1
            elif t.text in (",", "=>") and depth == 0:
                return i
        i += 1
    return i


class _ValueReader:
    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens

    def at(self, i: int, *texts: str) -> bool:
        return (i < len(self.tokens) and self.tokens[i].kind == "op"
                and self.tokens[i].text in texts)

    def element(self, i: int) -> tuple[Any, int]:
        """A literal (or an Opaque) from ``i`` to the end of the element."""
        value, j = self.primary(i)
        if isinstance(value, list) and self.at(j, "*") and j + 1 < len(self.tokens) and \
                self.tokens[j + 1].kind == "int":
            times = self.tokens[j + 1].value
            value, j = value * max(times, 0), j + 2
        if j < len(self.tokens) and not self.at(j, *_ELEMENT_END):
            end = _skip_expression(self.tokens, j)
            what = Opaque(_describe(self.tokens, j), self.tokens[j])
            return what, end
        return value, j

    def primary(self, i: int) -> tuple[Any, int]:
        tokens = self.tokens
        if i >= len(tokens):
            return Opaque("nothing (the value is missing)", tokens[-1]), i
        t = tokens[i]
        if t.kind == "str":
            parts = [t]
            j = i + 1
            while j < len(tokens) and tokens[j].kind == "str":
                parts.append(tokens[j])
                j += 1
            for k, part in enumerate(parts, start=i):
                if part.interpolated:
                    return Opaque(_describe(tokens, k), part), j
            return "".join(p.value for p in parts), j
        if t.kind in ("sym", "words"):
            if t.interpolated:
                return Opaque(_describe(tokens, i), t), i + 1
            return (list(t.value) if t.kind == "words" else t.value), i + 1
        if t.kind in ("int", "float"):
            return t.value, i + 1
        if t.kind == "kw" and t.text in ("true", "false", "nil"):
            return t.value, i + 1
        if t.kind == "op" and t.text in ("-", "+") and i + 1 < len(tokens) and tokens[
                i + 1].kind in ("int", "float") and not tokens[i + 1].space_before:
            number = tokens[i + 1].value
            return (-number if t.text == "-" else number), i + 2
        if t.kind == "op" and t.text == "[":
            return self.array(i)
        if t.kind == "op" and t.text == "{":
            return self.hash(i)
        if t.kind == "op" and t.text == "(" and i + 1 < len(tokens):
            value, j = self.element(i + 1)
            if self.at(j, ")"):
                return value, j + 1
        end = _skip_expression(tokens, i)
        return Opaque(_describe(tokens, i), t), max(end, i + 1)

    def array(self, i: int) -> tuple[Any, int]:
        items: list[Any] = []
        j = i + 1
        while not self.at(j, "]"):
            if j >= len(self.tokens):
                return Opaque("an unclosed array", self.tokens[i]), j
            if self.tokens[j].kind == "op" and self.tokens[j].text == "*":
                end = _skip_expression(self.tokens, j)
                items.append(Opaque("a splat (`*`)", self.tokens[j]))
                j = end
            else:
                value, j = self.element(j)
                if self.at(j, "=>"):  # [a => b, c => d] is [{a => b, c => d}]
                    value, j = self.bare_hash(value, j)
                items.append(value)
            if self.at(j, ","):
                j += 1
            elif not self.at(j, "]") and j < len(self.tokens):
                items.append(Opaque(_describe(self.tokens, j), self.tokens[j]))
                j = _skip_expression(self.tokens, j + 1)
                if self.at(j, ","):
                    j += 1
        return items, j + 1

    def bare_hash(self, key: Any, j: int) -> tuple[Any, int]:
        """The pairs of a hash written without braces, from the first ``=>`` (at ``j``)."""
        items: dict[Any, Any] = {}
        while True:
            value, j = self.element(j + 1)
            if isinstance(key, Opaque):
                items[f"\0{len(items)}"] = key
            else:
                items[key if isinstance(key, (str, int, float, bool)) else repr(key)] = value
            if not (self.at(j, ",") and j + 1 < len(self.tokens)):
                return items, j
            start = j
            key, j = self.element(j + 1)
            if not self.at(j, "=>"):
                return items, start

    def hash(self, i: int) -> tuple[Any, int]:
        items: dict[Any, Any] = {}
        tokens = self.tokens
        j = i + 1

        def opaque_entry(value: Opaque) -> None:
            items[f"\0{len(items)}"] = value  # a key no setting has

        while not self.at(j, "}"):
            if j >= len(tokens):
                return Opaque("an unclosed hash", tokens[i]), j
            t = tokens[j]
            key: Any
            value: Any
            if t.kind == "label":
                key = Opaque(_describe(tokens, j), t) if t.interpolated else t.value
                j += 1
                if self.at(j, ",", "}"):  # `{name:}` shorthand: the value of a variable
                    value = Opaque(f"a variable ({t.value})", t)
                else:
                    value, j = self.element(j)
            elif t.kind == "op" and t.text == "**":
                key, value = None, Opaque("a double splat (`**`)", t)
                j = _skip_expression(tokens, j + 1)
            else:
                key, j = self.element(j)
                if self.at(j, "=>"):
                    value, j = self.element(j + 1)
                else:
                    at = min(j, len(tokens) - 1)
                    key, value = None, Opaque(_describe(tokens, at), tokens[at])
                    j = _skip_expression(tokens, j + 1)
            if isinstance(key, Opaque):
                opaque_entry(key)
            elif key is None:
                opaque_entry(value)
            else:
                items[key if isinstance(key, (str, int, float, bool)) else repr(key)] = value
            if self.at(j, ","):
                j += 1
            elif not self.at(j, "}") and j < len(tokens):
                opaque_entry(Opaque(_describe(tokens, j), tokens[j]))
                j = _skip_expression(tokens, j + 1)
                if self.at(j, ","):
                    j += 1
        return items, j + 1


def literal_value(tokens: Sequence[Token]) -> Any:
    """The value of an expression: Python str/int/float/bool/None/list/dict for Ruby
    literals, an :class:`Opaque` for anything else (inside a container, only the part that
    is not a literal is Opaque). Ruby symbols and hash keys become strings."""
    if not tokens:
        raise ValueError("no tokens")
    reader = _ValueReader(tokens)
    value, j = reader.element(0)
    if j < len(tokens) and not isinstance(value, Opaque):
        return Opaque(_describe(tokens, j), tokens[j])
    return value


def split_arguments(tokens: Sequence[Token]) -> list[list[Token]]:
    """The comma-separated arguments of a method call (its tokens after the name, with or
    without parentheses)."""
    if not tokens:
        return []
    inner = list(tokens)
    if inner[0].kind == "op" and inner[0].text == "(" and not inner[0].space_before:
        end = _skip_expression(inner, 1)
        if end == len(inner) - 1 and inner[end].text == ")":
            inner = inner[1:end]
    args: list[list[Token]] = []
    i = 0
    while i < len(inner):
        end = _skip_expression(inner, i)
        while end < len(inner) and inner[end].kind == "op" and inner[end].text == "=>":
            end = _skip_expression(inner, end + 1)
        args.append(inner[i:end])
        i = end + 1
    return [a for a in args if a]


def find_opaque(value: Any) -> Opaque | None:
    """The first :class:`Opaque` inside ``value`` (itself included), or None."""
    if isinstance(value, Opaque):
        return value
    items: Iterator[Any]
    if isinstance(value, dict):
        items = iter(value.values())
    elif isinstance(value, list):
        items = iter(value)
    else:
        return None
    for item in items:
        found = find_opaque(item)
        if found is not None:
            return found
    return None
