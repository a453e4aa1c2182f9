"""`bkg limits` variants write into their own folder; overlays are read before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bkg.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "tests" / "data" / "reference.yaml")  # name: reference


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no samples/ here: the config's signal efficiency is used
    reports = tmp_path / "reports"
    (reports / "reference").mkdir(parents=True)
    shutil.copy(ROOT / "reports" / "reference" / "table1.json", reports / "reference")
    (reports / "reference" / "limits.json").write_text('{"default": "report"}\n')
    return reports


@pytest.mark.slow
def test_a_calculator_variant_writes_its_own_folder_never_the_default(reports, capsys):
    before = _snapshot(reports / "reference")
    curves = reports.parent / "curves.csv"
    curves.write_text(
        "m_gev,g_prime,label,citation\n0.2,1e-3,BaBar,PRD 94 011102\n0.9,9e-4,BaBar,PRD 94 011102\n"
    )
    code, _, err = _run(
        ["limits", "--config", CONFIG, "--calculator", "asymptotic", "--out", str(reports),
         "--overlay", str(curves)], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert _snapshot(reports / "reference") == before  # the default report is untouched
    variant = reports / "reference-asymptotic"
    limits = json.loads((variant / "limits.json").read_text())
    # one vocabulary: the CLI's --calculator asymptotic is what limits.json says
    assert limits["calculator"] == "asymptotic"
    for name in ("sensitivity.png", "reach_vs_mot.png", "table1.json"):
        assert (variant / name).is_file(), name
    assert (variant / "table1.json").read_bytes() == before["table1.json"]
    assert "reference-asymptotic" in err  # the written line names the folder
    # --name names the variant's folder; Table I still comes from the config's report
    code, _, err = _run(
        ["limits", "--config", CONFIG, "--observed", "2", "--calculator", "asymptotic",
         "--name", "mine", "--out", str(reports)], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((reports / "mine" / "limits.json").read_text())["observed_events"] == 2
    assert _snapshot(reports / "reference") == before


def test_a_bad_overlay_stops_before_anything_is_written(reports, capsys):
    before = _snapshot(reports)
    bad = reports.parent / "bad.csv"
    bad.write_text("m_gev,g_prime,label,citation\n0.1,abc,X,Y\n")
    code, _, err = _run(
        ["limits", "--config", CONFIG, "--preset", "na64mu-2022", "--out", str(reports),
         "--overlay", str(bad)], capsys,
    )  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "bad.csv:2" in lines[0] and "must be numbers" in lines[0]
    assert _snapshot(reports) == before
    assert not (reports / "reference-na64mu-2022").exists()
