"""Reviewer reproducibility (issue 6): the same config gives the same bytes, and
`bkg verify` accepts the committed reference run and rejects a perturbed one.

The reference (``reports/reference/``) was made with ``tests/data/reference.yaml``
(1e6 MOT, three signal masses, 12 reach masses); re-making it here costs about a
minute, so these tests are marked slow (they run in CI).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bkg.cli import cli
from bkg.config import load_config
from bkg.report.pipeline import run_report
from bkg.report.provenance import TIMESTAMP_KEY
from bkg.report.verify import verify

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reports" / "reference"
CONFIG = ROOT / "tests" / "data" / "reference.yaml"

#: Outputs that must be byte-identical between two runs (issue 6).
IDENTICAL = ("table1.md", "table1.tex", "table1.csv", "table1.json", "limits.csv", "limits.json",
             "workspace/BkgOnly.json", "workspace/patchset.json", "results.json", "claims.json",
             "sensitivity.json", "signal_efficiency.json")  # fmt: skip


def _run(where: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where.mkdir()
    monkeypatch.chdir(where)  # relative samples/ and fits/ folders, as on a fresh clone
    cfg = load_config(CONFIG)
    return run_report(cfg, out_root="reports").folder.resolve()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("repro")
    with pytest.MonkeyPatch.context() as mp:
        return _run(base / "a", mp), _run(base / "b", mp)


@pytest.mark.slow
def test_two_runs_give_identical_bytes(two_runs):
    a, b = two_runs
    for name in IDENTICAL:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pa, pb = (json.loads((d / "provenance.json").read_text()) for d in (a, b))
    pa.pop(TIMESTAMP_KEY)
    pb.pop(TIMESTAMP_KEY)
    assert pa == pb
    # the provenance hashes cover the sample files, which are byte-reproducible too
    assert any(key.endswith(".root") for key in pa["inputs_sha256"])


@pytest.mark.slow
def test_report_is_complete_and_its_page_references_existing_files(two_runs):
    from html.parser import HTMLParser

    folder = two_runs[0]
    refs: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            refs.extend(v for k, v in attrs if k in ("src", "href") and v and "://" not in v)

    Links().feed((folder / "index.html").read_text())
    images = [r for r in refs if r.endswith(".png")]
    assert len(images) >= 8
    missing = [r for r in refs if not r.startswith("#") and not (folder / r).exists()]
    assert missing == []
    for name in ("hepdata/submission.yaml", "hepdata.tar.gz", "provenance.json"):
        assert (folder / name).is_file(), name
    # every file name is portable (no ':', quotes or '%' from a table title)
    names = [p.name for p in (folder / "hepdata").iterdir()]
    assert names and all(re.fullmatch(r"[A-Za-z0-9_.-]+", n) for n in names), names


@pytest.mark.slow
def test_index_html_shows_every_png_the_report_writes(two_runs):
    from test_html import assert_every_png_shown  # tests/report is on the path (no package)

    page = assert_every_png_shown(two_runs[0])
    assert {"sensitivity.png", "reach_vs_mot.png"} <= set(page.images)


@pytest.mark.slow
def test_stage_commands_use_the_measured_efficiency_as_the_report_does(two_runs, tmp_path):
    # `bkg sensitivity` and `bkg workspace` on the report's samples give the report's numbers
    report = two_runs[0]
    samples = report.parents[1] / "samples"
    runner = CliRunner()
    common = ["--config", str(CONFIG), "--samples", str(samples), "--out", str(tmp_path)]
    res = runner.invoke(cli, ["sensitivity", *common])
    assert res.exit_code == 0, res.output
    mine, theirs = (
        json.loads((d / "sensitivity.json").read_text()) for d in (tmp_path / "reference", report)
    )
    assert mine["g_prime_90"] == theirs["g_prime_90"]
    shutil.copy(report / "table1.json", tmp_path / "reference" / "table1.json")
    res = runner.invoke(cli, ["workspace", *common])
    assert res.exit_code == 0, res.output
    printed = res.output.split()
    assert printed == [
        str(tmp_path / "reference" / "workspace" / f) for f in ("BkgOnly.json", "patchset.json")
    ]
    for f in ("BkgOnly.json", "patchset.json"):
        assert (tmp_path / "reference" / "workspace" / f).read_bytes() == (
            report / "workspace" / f
        ).read_bytes()


@pytest.mark.slow
def test_verify_accepts_the_committed_reference(two_runs):
    # a fresh run of the reference config agrees with the committed reference
    lines: list[str] = []
    assert verify(REFERENCE, run_dir=two_runs[0], echo=lines.append), "\n".join(lines)


def test_verify_cli_rejects_a_perturbed_reference(tmp_path):
    # perturb one Table I number of the committed reference by 1e-3 (far above the
    # 1e-6 tolerance): `bkg verify` must name it and exit 1
    ref = tmp_path / "reference"
    shutil.copytree(REFERENCE, ref)
    table = json.loads((ref / "table1.json").read_text())
    table["sources"][0]["level_per_mot"] *= 1.001
    (ref / "table1.json").write_text(json.dumps(table))
    result = CliRunner().invoke(cli, ["verify", str(ref), "--run", str(REFERENCE)])
    assert result.exit_code == 1, result.output
    assert "level_per_mot" in result.output
    same = tmp_path / "same"
    shutil.copytree(REFERENCE, same)
    ok = CliRunner().invoke(cli, ["verify", str(REFERENCE), "--run", str(same)])
    assert ok.exit_code == 0, ok.output
