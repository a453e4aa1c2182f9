"""Imports run only downward through the package's layers (and there is no cycle).

The layers, bottom to top (CONTRIBUTING.md): a module may import a module of its own
layer or of a lower one, never of a higher one. Function-level imports count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bkg"

#: bottom to top; each entry is a layer, the names are the first component under bkg
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "atomic", "interrupt", "memory", "locks", "sizes"}),
    frozenset({"physics", "config"}),
    frozenset({"ntuple", "fit", "plotting", "selection", "cache"}),
    frozenset({"sim"}),
    frozenset({"sources"}),
    frozenset({"stats"}),
    frozenset({"report", "stages", "trigger_scan"}),
    frozenset({"api"}),
    frozenset({"cli", "__main__"}),
)


def _layer(unit: str) -> int:
    for i, names in enumerate(LAYERS):
        if unit in names:
            return i
    raise AssertionError(f"bkg.{unit} is in no layer: add it to LAYERS and CONTRIBUTING.md")


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "bkg" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        unit = rel.parts[0].removesuffix(".py")
        if unit == "__init__":
            continue
        here = _layer(unit)
        for line, module in _imports(path):
            target = _unit(module)
            if (
                target is None
                or target == unit
                or (not (PACKAGE / target).exists() and not (PACKAGE / f"{target}.py").exists())
            ):
                continue
            if _layer(target) > here:
                bad.append(f"bkg/{rel}:{line} imports {module} (layer {target} above {unit})")
    return sorted(set(bad))


def test_imports_only_run_down_the_layers():
    assert _violations() == []


def test_no_module_imports_another_modules_private_name():
    # a name with a leading underscore is its module's own: another module that needs it
    # gets a public name for it (the private names of bkg's own package are checked here)
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bkg"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        rel = path.relative_to(PACKAGE)
                        bad.append(f"bkg/{rel}:{node.lineno} imports {node.module}.{alias.name}")
    assert bad == []
