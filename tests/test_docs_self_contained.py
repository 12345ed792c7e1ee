"""The documentation is self-contained: no tracked file users get points at files outside the
repository (the developers' internal notes, see FORBIDDEN below); the behaviour reference is
``docs/behaviour.md`` (issue 10, item 6)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Paths whose tracked files must not refer outside the repository (the code cites
#: ``docs/behaviour.md §N`` instead).
CHECKED = [
    "docs",
    "README.md",
    "plugins",
    "roles",
    "playbooks",
    "scripts",
    "molecule",
    "simulator",
    "benchmarks",
    "apps",
    "Makefile",
    "galaxy.yml",
]

FORBIDDEN = re.compile(r"semantics\.md|\.\./shared")

#: The sections code and tests cite as ``docs/behaviour.md §N``.
SECTIONS = 13


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *CHECKED],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_the_checked_paths_are_tracked():
    files = tracked_files()
    assert any(f.name == "README.md" for f in files)
    assert any(f.parent.name == "docs" for f in files)
    assert any("roles" in f.relative_to(ROOT).parts for f in files)


def test_no_reference_outside_the_repository():
    hits = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary, or deleted in the working tree
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, (
        "references to files users do not have; cite docs/behaviour.md §N (or another file "
        "of the repository) instead:\n" + "\n".join(hits)
    )


@pytest.mark.parametrize("number", range(1, SECTIONS + 1))
def test_behaviour_reference_has_every_cited_section_with_sources(number):
    text = (ROOT / "docs" / "behaviour.md").read_text(encoding="utf-8")
    sections = re.split(r"^## (?=\d+\. )", text, flags=re.MULTILINE)[1:]
    assert [int(s.split(".", 1)[0]) for s in sections] == list(range(1, SECTIONS + 1))
    section = sections[number - 1]
    assert "Sources:" in section, f"§{number} lists no sources"
    assert re.search(r"<https://[^>\s]+>", section.split("Sources:", 1)[1]), (
        f"§{number}: its sources carry no public URL"
    )


def test_the_test_files_the_docs_name_exist():
    # The unit tests moved into tests/<area>/ and the docs kept naming tests/test_X.py for a
    # while; a reader following "Checked by:" found nothing.
    named = re.compile(r"(?<![\w/.-])((?:molecule/\w+/)?tests/[\w/]*test_\w+\.py)")
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = sorted({f"{doc.relative_to(ROOT)}: {m[1]}" for doc in docs
                      for m in named.finditer(doc.read_text()) if not (ROOT / m[1]).exists()})
    assert missing == []
