"""The package's layers: each imports only the ones before it, and no module imports itself back.

Every import is read with ``ast``, function-level ones included (a lazy import is still a
dependency), so an upward import or a cycle cannot hide inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simulator"

#: Bottom to top; a module may import its own layer and the ones listed before it.
LAYERS = ("base", "routing", "fleet", "omnibus", "sim", "migration", "report", "cli")
BASE = {"errors", "inputs", "extras", "__init__", "__main__"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    return parts[1]


def imports(path: Path) -> set[str]:
    """The simulator modules ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "simulator"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "simulator":
                continue
            for alias in node.names:  # `from . import x` may name a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    return {m for m in found if m != "simulator"}


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_every_package_module_is_in_a_known_layer():
    unknown = {m for m in MODULES if layer_of(m) not in LAYERS}
    assert not unknown, f"modules outside the layers {LAYERS}: {sorted(unknown)}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_upward_import(module):
    mine = LAYERS.index(layer_of(module))
    upward = sorted(t for t in GRAPH[module] if LAYERS.index(layer_of(t)) > mine
                    and module != "simulator.__main__")
    assert not upward, (f"{module} ({LAYERS[mine]}) imports {upward} from a later layer; "
                        f"layers in order: {' -> '.join(LAYERS)}")


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target):], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_the_checker_sees_an_upward_and_a_function_level_import(tmp_path):
    """The parser itself: a function-level upward import is found."""
    global PACKAGE
    fake = tmp_path / "simulator"
    (fake / "routing").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "routing" / "__init__.py").write_text("")
    (fake / "routing" / "x.py").write_text("def f():\n    from ..cli import main\n")
    saved = PACKAGE
    PACKAGE = fake
    try:
        found = imports(fake / "routing" / "x.py")
    finally:
        PACKAGE = saved
    assert {layer_of(m) for m in found} == {"cli"}
