"""The layering rules of docs/architecture.md, checked on the source itself (an AST walk, no imports executed).

Layers, lowest first; a module may import its own layer and the ones below it, never one above.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "slurmdag"
LAYERS = ["model", "compiler", "porting", "backends", "state", "policy", "runs", "views", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else None  # top-level modules (__init__, __main__) sit above every layer


def _imports(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every `import x` / `from x import y`, also inside functions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def _targets(module: str, names: list[str]) -> list[str]:
    """The slurmdag layers an import reaches: `from slurmdag import compiler` reaches compiler too."""
    parts = module.split(".")
    if parts[0] != "slurmdag":
        return []
    if len(parts) > 1:
        return [parts[1]]
    return [n for n in names if n in RANK]


def test_every_module_sits_in_a_layer():
    stray = [str(p.relative_to(PACKAGE)) for p in _modules() if _layer(p) is None]
    assert sorted(stray) == ["__init__.py", "__main__.py"], "put new modules in one of the layer folders"
    assert {p.relative_to(PACKAGE).parts[0] for p in _modules() if _layer(p)} <= set(RANK) | {"templates"}


def test_imports_only_point_down():
    upward = []
    for path in _modules():
        layer = _layer(path)
        if layer is None:
            continue
        for line, module, names in _imports(ast.parse(path.read_text())):
            for target in _targets(module, names):
                if target in RANK and RANK[target] > RANK[layer]:
                    upward.append(f"{path.relative_to(PACKAGE)}:{line}: {layer}/ imports {target}/ ({module})")
    assert upward == []


def test_no_private_names_imported_across_modules():
    private = []
    for path in _modules():
        for line, module, names in _imports(ast.parse(path.read_text())):
            if module.startswith("slurmdag"):
                hidden = [n for n in names if n.startswith("_") and not n.startswith("__")]
                private += [f"{path.relative_to(PACKAGE)}:{line}: {module}.{n}" for n in hidden]
    assert private == []


@pytest.mark.parametrize(
    "needle, allowed",
    [
        (r"\bsubprocess\b", {"backends/runner.py"}),
        # The pyslurm probe is a separate program run in a child process: its stdout is its answer to the parent.
        (r"\bprint\(", {"cli", "backends/pyslurm_probe.py"}),
        (r"\becho\(", {"cli"}),
        (r"\bsys\.std(out|err)\b", {"cli"}),
    ],
)
def test_one_place_for_each_side_effect(needle, allowed):
    """Only the runner starts processes; only cli/ writes to the terminal."""
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in allowed or rel.split("/")[0] in allowed:
            continue
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if re.search(needle, text):
                offenders.append(f"{rel}:{number}: {text.strip()}")
    assert offenders == []


# The importer runs bash symbolically: these unwind its interpreter like `return`/`break` do, they are not errors.
CONTROL_FLOW_SIGNALS = {"_Stop", "_Return", "_Break", "_Continue"}


def test_every_exception_is_named_an_error():
    misnamed = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or node.name in CONTROL_FLOW_SIGNALS:
                continue
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if any(b.endswith(("Error", "Exception")) for b in bases) and not node.name.endswith("Error"):
                misnamed.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.name}")
    assert misnamed == []
