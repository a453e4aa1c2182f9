"""No function of bkg/ is more complex than radon's grade C (issue 24)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_rank, cc_visit

import bkg

#: radon's grade C ends at a cyclomatic complexity of 20; D (21-30) and worse are refused
MAX_COMPLEXITY = 20


def _too_complex(package: Path) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if block.complexity > MAX_COMPLEXITY:
                rel = path.relative_to(package.parent).as_posix()
                out.append(
                    f"{rel}:{block.lineno} {block.name} {cc_rank(block.complexity)} ({block.complexity})"
                )
    return out


def test_the_finder_sees_a_function_of_grade_d(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(20))
    (pkg / "a.py").write_text(f"def twenty_one(x):\n{branches}    return -1\n")
    (pkg / "b.py").write_text(
        f"def twenty(x):\n{branches[: branches.rfind('    if')]}    return -1\n"
    )
    assert _too_complex(pkg) == ["pkg/a.py:1 twenty_one D (21)"]


def test_no_function_of_bkg_is_worse_than_grade_c() -> None:
    assert _too_complex(Path(bkg.__file__).parent) == []
