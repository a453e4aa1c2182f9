"""The public names of ``import bkg`` (as pyhf's tests/test_public_api.py pins its own)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import bkg

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "Backgrounds",
    "Samples",
    "Table1",
    "Workspace",
    "__version__",
    "estimate_backgrounds",
    "limits",
    "load_config",
    "report",
    "sensitivity",
    "simulate",
    "table1",
    "workspace",
}


def test_public_names_are_pinned():
    # adding or removing a public name is a decision: change this set with it
    assert set(bkg.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(bkg, name) is not None
    assert set(dir(bkg)) == PUBLIC


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_stage"):
        bkg.no_such_stage  # noqa: B018


def test_import_bkg_loads_no_heavy_stack():
    # the API is lazy: importing bkg (and touching a name) must not import zfit or pyhf
    code = (
        "import sys, bkg; bkg.load_config; "
        "print(sorted(m for m in ('zfit', 'pyhf', 'tensorflow', 'uproot') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def _readme_python_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's 'Use from Python' section has no python block"
    return match.group(1)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    # the README's example, verbatim, in a fresh folder (its relative paths resolve there)
    code = _readme_python_example().replace(
        '"tests/data/reference.yaml"', repr(str(ROOT / "tests" / "data" / "reference.yaml"))
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    total = float(lines[0].split()[0])
    # the reference config's total is ~2e-11 per MOT (reports/reference/table1.json); a
    # 2e5-muon sample moves the statistics-driven rows, not the decade
    assert 1e-12 < total < 1e-9
    assert "expected limit" in lines[1]
    assert (tmp_path / "samples-small" / "MANIFEST.json").exists()
