"""Imports run only downward through the package's layers (and there is no cycle).

The layers, bottom to top (CONTRIBUTING.md): a module may import a module of its own
layer or of a lower one, never of a higher one. Function-level imports count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bkg"

#: bottom to top; each entry is a layer, the names are the first component under bkg
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "atomic", "interrupt", "memory", "locks", "pipes", "sizes"}),
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


#: Longest a function of bkg/ may be, in lines from its ``def`` to its end (docstring
#: included): issue 24, a function that long does more than one thing
MAX_FUNCTION_LINES = 80


def _long_functions(package: Path, limit: int) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    rel = path.relative_to(package.parent).as_posix()
                    out.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_long_function_finder_counts_def_to_end(tmp_path):
    # the finder itself, on a made-up package: def + docstring + 79 lines (81) is one too
    # many, def + 79 lines (80) is allowed, and methods and nested functions count too
    pkg = tmp_path / "pkg"
    pkg.mkdir()

    def statements(n: int, indent: int) -> list[str]:
        return [" " * indent + f"x{i} = {i}" for i in range(n)]

    lines = ["def long():", '    """Doc."""', *statements(79, 4)]  # lines 1-81
    lines += ["def fits():", *statements(79, 4)]  # lines 82-161
    lines += ["class C:", "    def m(self):", "        def inner():"]  # lines 162-164
    lines += statements(79, 12)  # inner: 164-243 (80 lines), m: 163-243 (81)
    (pkg / "a.py").write_text("\n".join(lines) + "\n")
    assert _long_functions(pkg, MAX_FUNCTION_LINES) == [
        "pkg/a.py:1 long (81 lines)",
        "pkg/a.py:163 m (81 lines)",
    ]


def test_no_function_over_80_lines():
    long = _long_functions(PACKAGE, MAX_FUNCTION_LINES)
    assert not long, f"over {MAX_FUNCTION_LINES} lines, split them:\n" + "\n".join(long)


#: Longest a module docstring of bkg/ may be, in lines of :func:`ast.get_docstring`
#: (issue 24): what the module is for, its entry points and where its method is
#: documented; the theory goes into the function that implements it or into docs/
MAX_MODULE_DOCSTRING_LINES = 10
#: generated from bkg/config/schema.json, not written by hand
GENERATED = ("config/model.py",)


def _long_module_docstrings(package: Path, limit: int) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel in GENERATED:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        lines = len(doc.splitlines()) if doc else 0
        if lines > limit:
            out.append(f"{package.name}/{rel} ({lines} lines)")
    return out


def test_long_module_docstring_finder(tmp_path):
    # the finder itself, on a made-up package: 11 lines is one too many, 10 are allowed,
    # a module without a docstring and the generated config/model.py are not counted
    pkg = tmp_path / "pkg"
    (pkg / "config").mkdir(parents=True)

    def module(n: int) -> str:
        return '"""' + "\n".join(f"line {i}" for i in range(n)) + '\n"""\n\nx = 1\n'

    (pkg / "long.py").write_text(module(11))
    (pkg / "fits.py").write_text(module(10))
    (pkg / "bare.py").write_text("x = 1\n")
    (pkg / "config" / "model.py").write_text(module(40))
    assert _long_module_docstrings(pkg, MAX_MODULE_DOCSTRING_LINES) == ["pkg/long.py (11 lines)"]


def test_module_docstrings_are_short():
    long = _long_module_docstrings(PACKAGE, MAX_MODULE_DOCSTRING_LINES)
    assert not long, (
        f"module docstrings over {MAX_MODULE_DOCSTRING_LINES} lines: keep what the module is "
        "for, its entry points and where the method is documented; move the theory into "
        "the function that implements it or into docs/:\n" + "\n".join(long)
    )


ROOT = PACKAGE.parent
#: a docs/<name>.md path in text (not the tail of e.g. mkdocs/<name>.md)
DOCS_PATH = re.compile(r"(?<![\w-])docs/([\w.-]+(?:/[\w.-]+)*\.md)\b")


def _missing_docs(root: Path) -> list[str]:
    texts = [*sorted((root / "bkg").rglob("*.py")), *sorted((root / "docs").glob("*.md"))]
    texts += [root / name for name in ("README.md", "CONTRIBUTING.md") if (root / name).exists()]
    out = []
    for path in texts:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in DOCS_PATH.finditer(line):
                if not (root / "docs" / match.group(1)).is_file():
                    rel = path.relative_to(root).as_posix()
                    out.append(f"{rel}:{number} names docs/{match.group(1)}")
    return out


def test_missing_docs_finder(tmp_path):
    # the finder itself: a named page that is missing is reported with file and line, one
    # that exists is not, and neither is mkdocs/<name>.md or a placeholder docs/<topic>.md
    (tmp_path / "bkg").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("See docs/gone.md and docs/here.md.\n")
    (tmp_path / "bkg" / "m.py").write_text('"""Method: docs/here.md, mkdocs/x.md."""\n')
    (tmp_path / "README.md").write_text("one\n(docs/gone.md), docs/<topic>.md\n")
    assert _missing_docs(tmp_path) == [
        "docs/here.md:1 names docs/gone.md",
        "README.md:2 names docs/gone.md",
    ]


def test_every_named_docs_page_exists():
    missing = _missing_docs(ROOT)
    assert not missing, "docs pages named but missing:\n" + "\n".join(missing)
