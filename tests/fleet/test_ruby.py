"""Ruby read without running it (simulator/fleet/ruby.py): literals, statements, what is not a
literal, and files that are not well-formed."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import FleetError
from simulator.fleet.ruby import Opaque, find_opaque, literal_value, statements, tokenize


def value_of(source: str):
    """The value assigned by the one statement ``x = <source>``."""
    tokens, src = tokenize(f"x = {source}\n", "t.rb")
    (statement,) = statements(tokens, src)
    assert statement.tokens[1].text == "="
    return literal_value(statement.tokens[2:])


def statement_lines(source: str) -> list[tuple[int, str | None, str]]:
    tokens, src = tokenize(source, "t.rb")
    return [(s.line, s.block.text if s.block else None, s.tokens[0].text)
            for s in statements(tokens, src)]


@pytest.mark.parametrize(("source", "expected"), [
    ("'single \\'quoted\\' \\\\ \\n'", "single 'quoted' \\ \\n"),
    ('"tab\\there\\n\\u00e9\\u{1F600}\\x41\\101\\s\\e"', "tab\there\né\U0001F600AA \x1b"),
    ('"no #interpolation # here"', "no #interpolation # here"),
    ("'a' \"b\" 'c'", "abc"),  # adjacent literals are one string
    (":symbol", "symbol"),
    (':"quoted symbol"', "quoted symbol"),
    ("%q(paren (nested) string)", "paren (nested) string"),
    ("%Q[brackets]", "brackets"),
    ("%w[a b\\ c  d]", ["a", "b c", "d"]),
    ("%i(x y)", ["x", "y"]),
    ("%w(10.6.0.11 10.6.0.12)", ["10.6.0.11", "10.6.0.12"]),
    ("1_000", 1000),
    ("0x1F", 31),
    ("0b101", 5),
    ("0755", 493),
    ("0o17", 15),
    ("-42", -42),
    ("1.5e3", 1500.0),
    ("-0.25", -0.25),
    ("true", True),
    ("false", False),
    ("nil", None),
    ("[]", []),
    ("{}", {}),
    ("['*'] * 4", ["*", "*", "*", "*"]),
    ("[['*', nil]]", [["*", None]]),
    ("{ 'a' => 1, :b => [2, 3], c: { d: 'e' }, 'f': false, }",
     {"a": 1, "b": [2, 3], "c": {"d": "e"}, "f": False}),
    ("[\n  # a comment\n  'x', # another\n  'y',\n]", ["x", "y"]),
    ("[ 'targets' => ['1.1.1.1:9187'], ]", [{"targets": ["1.1.1.1:9187"]}]),
    ("('parenthesised')", "parenthesised"),
])
def test_literals(source, expected):
    assert value_of(source) == expected


def test_heredocs_are_strings():
    text = ("x = <<~EOS\n    indented\n      more\n    EOS\ny = <<-'RAW'\n  #{not code}\n"
            "  RAW\nz = [<<A, <<B]\none\nA\ntwo\nB\n")
    tokens, src = tokenize(text, "t.rb")
    values = [literal_value(s.tokens[2:]) for s in statements(tokens, src)]
    assert values == ["indented\n  more\n", "  #{not code}\n", ["one\n", "two\n"]]


@pytest.mark.parametrize(("source", "reason"), [
    ('"#{node[\'fqdn\']}.example"', "a string with interpolation (#{...})"),
    ("[\"#{a}\", 'b']", "a string with interpolation (#{...})"),
    ("`nproc`", "a shell command in backticks"),
    ("%x(nproc).to_i", "a shell command in backticks"),
    ("ENV['DB_HOST']", "an environment variable (ENV[...])"),
    ("ENV.fetch('X', 20).to_i", "an environment variable (ENV.fetch)"),
    ("ROUTING_RULES", "a constant (ROUTING_RULES)"),
    ("Gitlab::Defaults::RULES", "a constant (Gitlab::Defaults::RULES)"),
    ("File.read('/x').strip", "a method call (File.read)"),
    ("threads_for(node)", "a method call (threads_for)"),
    ("node['cpu']", "a lookup (node[...])"),
    ("url", "a variable or method call (url)"),
    ("@threads", "a variable (@threads)"),
    ("10 + 10", "an expression (`+`)"),
    ("20 if big", "a condition (if ...)"),
    ("'x'.freeze", "a method call (.freeze)"),
    ("%w[a b].map(&:upcase)", "a method call (.map)"),
    ("!ENV['X']", "an expression (`!`)"),
    ("/regex/", "a regular expression"),
    ("-> { 1 }", "a lambda"),
])
def test_what_is_not_a_literal_says_what_it_is(source, reason):
    found = find_opaque(value_of(source))
    assert isinstance(found, Opaque) and found.reason == reason


def test_only_the_non_literal_part_of_a_container_is_opaque():
    value = value_of("{ listen_addr: '0.0.0.0:8075', auth: { token: ENV['T'] }, storage: "
                     "[{ path: \"#{dir}\" }], retry: 3 }")
    assert value["listen_addr"] == "0.0.0.0:8075" and value["retry"] == 3
    assert isinstance(value["auth"]["token"], Opaque)
    assert isinstance(value["storage"][0]["path"], Opaque)


def test_statements_blocks_and_continuations():
    source = (
        "a['x'] = 1; b['y'] = [\n  1,\n  2]\n"
        "c = foo\n  .bar\n"
        "d = 1 +\n  2\n"
        "if cond\n  e['z'] = 3\nend\n"
        "list.each do |item|\n  f['w'] = item\nend\n"
        "g['v'] = 4 if cond\n"
        "h = if cond then 1 else 2 end\n"
        "while busy do\n  sleep 1\nend\n"
        "return if done\n"
        "k = \\\n  5\n"
    )
    assert statement_lines(source) == [
        (1, None, "a"), (1, None, "b"), (4, None, "c"), (6, None, "d"),
        (8, "if", "if"), (9, "if", "e"), (10, None, "end"),
        (11, "do", "list"), (12, "do", "f"), (13, None, "end"),
        (14, None, "g"), (15, None, "h"),
        (16, "while", "while"), (17, "while", "sleep"), (18, None, "end"),
        (19, None, "return"), (20, None, "k"),
    ]


def test_comments_block_comments_and_end_marker_are_skipped():
    source = ("# x = 1\n=begin\ny = 2\n=end\nz = 'a # not a comment' # comment\n"
              "__END__\nanything = at all (\n")
    tokens, src = tokenize(source, "t.rb")
    (only,) = statements(tokens, src)
    assert only.line == 5 and literal_value(only.tokens[2:]) == "a # not a comment"


@pytest.mark.parametrize(("source", "line", "words"), [
    ("a = 1\nb = 'never ends\n", 2, "never ends"),
    ("a = [1,\n2\n", 1, "'[' is never closed"),
    ("a = 1)\n", 1, "')' closes nothing here"),
    ("if x\n  a = 1\n", 1, "`if` (line 1) is never closed with `end`"),
    ("a = 1\nend\n", 2, "`end` closes no block here"),
    ("x = <<~EOS\nbody\n", 1, "the heredoc <<~EOS is never closed"),
    ("a = 1\n=begin\nnotes\n", 2, "=begin without =end"),
    ("a = \"#{b\n", 1, "never"),
    ("a = 08\n", 1, "08 is not a number"),
])
def test_files_that_are_not_well_formed_name_the_line(source, line, words):
    with pytest.raises(FleetError) as info:
        tokens, src = tokenize(source, "bad.rb")
        statements(tokens, src)
    text = str(info.value)
    assert text.startswith(f"bad.rb, line {line}: ") and words in text and "fix:" in text


# -- property: any literal written as Ruby reads back as itself ------------------------------

_keys = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
_strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF),
                   max_size=12)
_scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
            | st.floats(allow_nan=False, allow_infinity=False, width=32) | _strings)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


def _ruby(value, draw) -> str:
    """``value`` as a Ruby literal, in one of the ways people write it."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, int):
        if value >= 0 and draw(st.booleans()):
            return hex(value)
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if draw(st.booleans()):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return json.dumps(value).replace("#", "\\#")  # JSON's escapes are Ruby's
    gap = draw(st.sampled_from([" ", "\n  ", "  # note\n  "]))
    if isinstance(value, list):
        body = ("," + gap).join(_ruby(v, draw) for v in value)
        return f"[{gap}{body}{',' if value and draw(st.booleans()) else ''}{gap}]"
    pairs = []
    for key, item in value.items():
        style = draw(st.sampled_from(["label", "arrow", "symbol"]))
        written = {"label": f"{key}:", "arrow": f"'{key}' =>", "symbol": f":{key} =>"}[style]
        pairs.append(f"{written} {_ruby(item, draw)}")
    return "{" + gap + ("," + gap).join(pairs) + gap + "}"


@settings(max_examples=200, deadline=None)
@given(value=_values, data=st.data())
def test_any_literal_reads_back(value, data):
    source = _ruby(value, data.draw)
    expected = json.loads(json.dumps(value))
    assert value_of(source) == expected, source
