"""Each role reads only its own variables, the fleet role's schema (fleet_* and the routing
settings) and the variables of roles it imports by name; no role reaches into another role's
defaults (with or without a default() fallback). Cross-role addresses, ports and secrets are
defined once, in roles/fleet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"
PROSE_KEYS = {"name", "fail_msg", "msg", "success_msg", "description", "comment"}
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
IDENT = re.compile(r"(?<![\w.'\"])([a-z][a-z0-9_]*)(?![\w'\"(])")
IMPORT = re.compile(r"name:\s*sidekiq_fleet\.fleet\.(\w+)")


def _public_variables(role: Path) -> set[str]:
    names: set[str] = set()
    for rel in ("defaults/main.yml", "vars/main.yml"):
        path = role / rel
        if path.exists():
            data = yaml.safe_load(path.read_text()) or {}
            names |= {k for k in data if not k.startswith("_")}
    return names


def _strings(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str) and key not in PROSE_KEYS:
        yield node


def _references(role: Path) -> set[str]:
    found: set[str] = set()
    for path in role.rglob("*"):
        if not path.is_file() or "meta" in path.parts or path.suffix not in {".yml", ".j2"}:
            continue
        text = path.read_text()
        if path.suffix == ".j2":
            chunks = JINJA.findall(text)
        else:
            chunks = list(_strings(yaml.safe_load(text)))
        for chunk in chunks:
            found |= set(IDENT.findall(chunk))
    return found


ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "meta" / "main.yml").exists())
OWNERS = {role.name: _public_variables(role) for role in ROLE_DIRS}


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_role_reads_only_its_own_the_fleet_schema_and_imported_roles(role: Path):
    imported = {"fleet"} | {
        m for path in (role / "tasks").glob("*.yml") for m in IMPORT.findall(path.read_text())
    }
    allowed = OWNERS[role.name].union(*(OWNERS.get(name, set()) for name in imported))
    foreign = {
        name: owner
        for owner, names in OWNERS.items()
        if owner != role.name
        for name in names
        if name not in allowed
    }
    reads = sorted(
        f"{name} (role {foreign[name]})" for name in _references(role) if name in foreign
    )
    assert not reads, (
        f"roles/{role.name} reads other roles' variables: {', '.join(reads)}. Move a setting "
        "that several roles need into roles/fleet (defaults and meta/argument_specs.yml), or "
        "import the owning role."
    )


def test_every_role_depends_on_the_fleet_schema():
    for role in ROLE_DIRS:
        if role.name == "fleet":
            continue
        deps = yaml.safe_load((role / "meta" / "main.yml").read_text()).get("dependencies") or []
        names = [d["role"] if isinstance(d, dict) else d for d in deps]
        assert "sidekiq_fleet.fleet.fleet" in names, f"roles/{role.name}/meta/main.yml"


def test_cross_role_values_are_defined_once():
    seen: dict[str, str] = {}
    for role, names in OWNERS.items():
        for name in names:
            assert name not in seen, f"{name} is defined by roles/{seen[name]} and roles/{role}"
            seen[name] = role
