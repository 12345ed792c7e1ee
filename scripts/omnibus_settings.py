#!/usr/bin/env python3
"""Write simulator/omnibus/data/omnibus_settings.yml: which gitlab.rb settings exist in which
GitLab release, read from a clone of omnibus-gitlab (https://gitlab.com/gitlab-org/omnibus-gitlab).

    python scripts/omnibus_settings.py --repo PATH/TO/omnibus-gitlab [--out FILE]

For every release tag X.Y.0+ce.0 from 15.0 on, it reads (with `git show`, nothing is checked out):

- files/gitlab-cookbooks/package/libraries/config/gitlab.rb: the top-level names gitlab.rb may
  use (``attribute('sidekiq')``, ``external_url``, ...) and the roles (``role('sidekiq')`` is
  ``sidekiq_role``);
- files/gitlab-config-template/gitlab.rb.template: the documented settings
  (``# sidekiq['x'] = ...``);
- files/gitlab-cookbooks/*/attributes/*.rb: the settings with a default
  (``default['gitlab']['sidekiq']['x']``);
- files/gitlab-cookbooks/*/libraries/*.rb: settings the cookbooks read without a default
  (``Gitlab['registry']['internal_key']``);
- files/gitlab-cookbooks/package/libraries/deprecations.rb: the removals ``gitlab-ctl
  reconfigure`` aborts on, with GitLab's own notes.

Only the top-level names in TOPS get their keys listed (the ones the gitlab_omnibus role renders
and GitLab's external-Sidekiq page uses). The output is data, not code: facts about each release.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "simulator" / "omnibus" / "data" / "omnibus_settings.yml"
FIRST = (15, 0)
TOPS = ("sidekiq", "gitlab_rails", "postgresql", "redis", "gitaly", "registry", "user",
        "web_server", "node_exporter")
TEMPLATE = "files/gitlab-config-template/gitlab.rb.template"
COOKBOOKS = "files/gitlab-cookbooks/"
CONFIG = "files/gitlab-cookbooks/package/libraries/config/gitlab.rb"
DEPRECATIONS = "files/gitlab-cookbooks/package/libraries/deprecations.rb"

TEMPLATE_KEY = re.compile(r"^[ \t]*#*[ \t]*([a-z_]+)\['([A-Za-z0-9_]+)'\]", re.M)
ATTRIBUTE_KEY = re.compile(
    r"^\s*default\['([a-z_-]+)'\]\['([a-z0-9_-]+)'\](?:\['([A-Za-z0-9_]+)'\])?", re.M)
LIBRARY_KEY = re.compile(r"Gitlab\['([a-z_]+)'\]\['([a-z0-9_]+)'\]")
TOP_ATTRIBUTE = re.compile(r"^\s*(?:ee_)?attribute\('([a-z_]+)'", re.M)
TOP_MIXLIB = re.compile(r"^\s{2}([a-z_]+) (?:ConfigMash\.new|nil|:ce)\s*$", re.M)
ROLE = re.compile(r"^\s*role\('([a-z_]+)'", re.M)
REMOVAL = re.compile(
    r"config_keys:\s*%w\(([^)]*)\),\s*deprecation:\s*'([\d.]+)',\s*removal:\s*'([\d.]+)',"
    r"(?:[^\n]*\n\s*note:\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'))?", re.S)
BULK = re.compile(
    r"def (\w+_deprecations)\s*\n\s*\[(.*?)\]\.map do \|key\|\s*\{\s*config_keys:\s*(.*?),\s*"
    r"deprecation:\s*'([\d.]+)',\s*removal:\s*'([\d.]+)',[^\n]*\n\s*note:\s*(\"(?:[^\"\\]|\\.)*\")",
    re.S)


def git(repo: Path, *args: str) -> str | None:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


def release_tags(repo: Path) -> list[tuple[str, str]]:
    tags = []
    for tag in (git(repo, "tag") or "").split():
        m = re.fullmatch(r"(\d+)\.(\d+)\.0\+ce\.0", tag)
        if m and (int(m.group(1)), int(m.group(2))) >= FIRST:
            tags.append(((int(m.group(1)), int(m.group(2))), tag))
    return [(f"{v[0]}.{v[1]}", tag) for v, tag in sorted(tags)]


def scan(repo: Path, tag: str) -> dict[str, Any]:
    files = (git(repo, "ls-tree", "-r", "--name-only", tag, "files/gitlab-cookbooks") or "").split()
    # kind -> (top, key) -> the file it is in
    found: dict[str, dict[tuple[str, str], str]] = {"template": {}, "attributes": {},
                                                    "libraries": {}}
    for top_key in TEMPLATE_KEY.findall(git(repo, "show", f"{tag}:{TEMPLATE}") or ""):
        found["template"].setdefault(top_key, TEMPLATE)
    for path in files:
        if not path.endswith(".rb"):
            continue
        if "/attributes/" in path:
            for a, b, c in ATTRIBUTE_KEY.findall(git(repo, "show", f"{tag}:{path}") or ""):
                if a in ("gitlab", "monitoring"):
                    if c:
                        found["attributes"].setdefault((b.replace("-", "_"), c), path)
                else:
                    found["attributes"].setdefault((a.replace("-", "_"), b), path)
        elif "/libraries/" in path:
            for top_key in LIBRARY_KEY.findall(git(repo, "show", f"{tag}:{path}") or ""):
                found["libraries"].setdefault(top_key, path)
    config = git(repo, "show", f"{tag}:{CONFIG}") or ""
    tops = set(TOP_ATTRIBUTE.findall(config)) | set(TOP_MIXLIB.findall(config))
    roles = {f"{r}_role" for r in ROLE.findall(config)}
    return {"found": found, "tops": tops - {"node", "edition"}, "roles": roles,
            "deprecations": git(repo, "show", f"{tag}:{DEPRECATIONS}") or ""}


def ruby_string(text: str) -> str:
    text = text[1:-1]
    return re.sub(r"\\(.)", r"\1", text)


def removals(source: str) -> list[dict[str, Any]]:
    out = []
    for keys, deprecated, removed, note in REMOVAL.findall(source):
        out.append({"keys": keys.split(), "deprecated": deprecated, "removed": removed,
                    "note": ruby_string(note) if note else ""})
    for _name, listed, prefix, deprecated, removed, note in BULK.findall(source):
        base = re.findall(r"'([a-z_]+)'|%w\(([^)]*)\)", prefix)
        parts: list[str] = []
        for quoted, words in base:
            parts += [quoted] if quoted else words.split()
        for key in re.findall(r"'([a-z_]+)'", listed):
            out.append({"keys": [*parts, key], "deprecated": deprecated, "removed": removed,
                        "note": ruby_string(note)})
    if "remove_git_data_dirs" in source:
        m = re.search(r"remove_git_data_dirs\([^)]*'([\d.]+)', '([\d.]+)'\)", source)
        if m:
            out.append({"keys": ["gitlab", "git_data_dirs"], "deprecated": m.group(1),
                        "removed": m.group(2),
                        "note": "See https://docs.gitlab.com/omnibus/settings/configuration.html"
                                "#migrating-from-git_data_dirs for migration instructions."})
    return out


def gitlab_rb_name(keys: list[str]) -> tuple[str, ...]:
    """deprecations.rb's node path -> the gitlab.rb path (``gitlab sidekiq x`` -> sidekiq, x)."""
    if keys and keys[0] in ("gitlab", "monitoring"):
        keys = keys[1:]
    return tuple(k.replace("-", "_") for k in keys)


def version_key(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def presence(versions: list[str], present: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"since": present[0]}
    if present[-1] != versions[-1]:
        entry["until"] = present[-1]
    span = versions[versions.index(present[0]): versions.index(present[-1]) + 1]
    missing = [v for v in span if v not in present]
    if missing:
        entry["missing_in"] = missing
    return entry


def build(repo: Path) -> dict[str, Any]:
    releases = release_tags(repo)
    if not releases:
        raise SystemExit(
            f"omnibus_settings: no X.Y.0+ce.0 tags from {FIRST[0]}.{FIRST[1]} in {repo}")
    versions = [v for v, _ in releases]
    tag_of = dict(releases)
    scans = {}
    for version, tag in releases:
        print(f"omnibus_settings: reading {tag}", file=sys.stderr)
        scans[version] = scan(repo, tag)

    def where(path: str, version: str) -> str:
        """``path@tag``, short: the template by its name, cookbook files under
        files/gitlab-cookbooks/ (the header of the output says so)."""
        short = Path(path).name if path == TEMPLATE else path.removeprefix(COOKBOOKS)
        return f"{short}@{tag_of[version]}"

    top_level: dict[str, Any] = {}
    for name in sorted({t for s in scans.values() for t in s["tops"]}):
        present = [v for v in versions if name in scans[v]["tops"]]
        top_level[name] = {**presence(versions, present), "where": where(CONFIG, present[0])}
    roles: dict[str, Any] = {}
    for name in sorted({r for s in scans.values() for r in s["roles"]}):
        present = [v for v in versions if name in scans[v]["roles"]]
        roles[name] = {**presence(versions, present), "where": where(CONFIG, present[0])}

    settings: dict[str, dict[str, Any]] = {top: {} for top in TOPS}
    for top in TOPS:
        keys = {k for s in scans.values() for found in s["found"].values()
                for t, k in found if t == top}
        for key in sorted(keys):
            present = [v for v in versions
                       if any((top, key) in found for found in scans[v]["found"].values())]
            first = present[0]
            kinds = [k for k in ("template", "attributes", "libraries")
                     if any((top, key) in scans[v]["found"][k] for v in versions)]
            first_kind = next(k for k in kinds if (top, key) in scans[first]["found"][k])
            settings[top][key] = {**presence(versions, present), "in": kinds,
                                  "where": where(scans[first]["found"][first_kind][(top, key)],
                                                 first)}

    removed: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for version in versions:
        for entry in removals(scans[version]["deprecations"]):
            path = gitlab_rb_name(entry["keys"])
            if path in seen or version_key(entry["removed"]) < FIRST:
                continue
            seen.add(path)
            removed.append({"setting": list(path), "deprecated": entry["deprecated"],
                            "removed": entry["removed"], "note": entry["note"],
                            "where": f"{DEPRECATIONS.removeprefix(COOKBOOKS)}@{tag_of[version]}"})
    return {
        "source": {
            "repository": "https://gitlab.com/gitlab-org/omnibus-gitlab",
            "tags": [tag for _, tag in releases],
            "generated_by": "scripts/omnibus_settings.py",
        },
        "versions": versions,
        "top_level": top_level,
        "roles": roles,
        "settings": settings,
        "removals": removed,
    }


def flow(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    return f'"{value}"' if re.fullmatch(r"[\d.]+", str(value)) else str(value)


def dump(data: dict[str, Any]) -> str:
    import yaml

    lines = [
        "---",
        "# Which gitlab.rb settings exist in which GitLab release, and which were removed.",
        "# Generated by scripts/omnibus_settings.py from omnibus-gitlab's release tags (facts read",
        "# from files/gitlab-config-template/gitlab.rb.template, the cookbooks' attributes and",
        "# libraries, config/gitlab.rb and deprecations.rb); regenerate it, do not edit it.",
        "# since: the first release checked that has it (the first checked is "
        f"{data['versions'][0]}: \"since {data['versions'][0]}\" means",
        f"# \"{data['versions'][0]} or earlier\"); until: the last release that has it; "
        "missing_in: releases in between without it;",
        "# where: the file and tag it was first found in (gitlab.rb.template is",
        "# files/gitlab-config-template/gitlab.rb.template, other paths are under",
        "# files/gitlab-cookbooks/); in: template (documented in gitlab.rb.template), attributes",
        "# (has a default), libraries (read by the cookbooks' code). removals: what",
        "# `gitlab-ctl reconfigure` aborts on from the release `removed`, with GitLab's note.",
        "source:",
        f"  repository: {data['source']['repository']}",
        f"  generated_by: {data['source']['generated_by']}",
        "  tags:",
        *[f"    - \"{t}\"" for t in data["source"]["tags"]],
        "versions:",
        *[f"  - \"{v}\"" for v in data["versions"]],
        "top_level:",
        *[f"  {k}: {flow(v)}" for k, v in data["top_level"].items()],
        "roles:",
        *[f"  {k}: {flow(v)}" for k, v in data["roles"].items()],
        "settings:",
    ]
    for top, keys in data["settings"].items():
        lines.append(f"  {top}:")
        for key, entry in keys.items():
            line = f"    {key}: {flow(entry)}"
            if len(line) <= 150:
                lines.append(line)
            else:  # block style keeps every line under the linter's 160 columns
                lines.append(f"    {key}:")
                lines += [f"      {k}: {flow(v)}" for k, v in entry.items()]
    lines.append("removals:")
    for entry in data["removals"]:
        lines += [f"  - setting: {flow(entry['setting'])}",
                  f"    deprecated: \"{entry['deprecated']}\"",
                  f"    removed: \"{entry['removed']}\"",
                  f"    where: {entry['where']}"]
        if entry["note"]:
            lines.append("    note: >-")
            lines += ["      " + line for line in textwrap.wrap(
                " ".join(entry["note"].split()), 100, break_long_words=False,
                break_on_hyphens=False)]
    text = "\n".join(lines) + "\n"
    yaml.safe_load(text)  # the output must read back
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, type=Path,
                        help="a clone of omnibus-gitlab with its release tags")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = dump(build(args.repo))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"omnibus_settings: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
