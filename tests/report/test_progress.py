"""Terminal progress: every stage that announces itself closes with "done (x s)"."""

from __future__ import annotations

import re

from bkg.config import load_config
from bkg.report import pipeline
from bkg.report.progress import ProgressDisplay


def test_samples_and_fits_stages_close_with_done(tmp_path, monkeypatch):
    import bkg.sim
    import bkg.sources

    calls: list[tuple[str, str]] = []
    steps: list[tuple[str, int, int]] = []

    def fake_samples(cfg, *, out_dir, workers, scheduler, progress):
        for i in (1, 2):
            progress("beam", i, 2)
        return {"files": []}

    def fake_fits(cfg, *, samples_dir, out_dir, progress, closure_follows=False):
        progress("fits", 1, 1)
        return {}

    monkeypatch.setattr(bkg.sim, "run_samples", fake_samples)
    monkeypatch.setattr(bkg.sources, "run_fits", fake_fits)
    monkeypatch.setattr(pipeline, "mark_samples_done", lambda *a, **k: None)
    monkeypatch.setattr(pipeline, "mark_fits_done", lambda *a, **k: None)
    cfg = load_config(None)
    kw = {
        "progress": lambda s, state: calls.append((s, state)),
        "advance": lambda *a: steps.append(a),
    }
    assert pipeline.run_samples_stage(cfg, samples_dir=tmp_path / "s", **kw)[0] == "ran"
    assert pipeline.run_fits_stage(cfg, samples_dir=tmp_path / "s", fits_dir=tmp_path / "f", **kw)[0] == "ran"  # fmt: skip
    # the fits stage runs the closure (direct estimates) inside it, with its own lines
    assert [c[0] for c in calls] == ["samples", "samples", "fits", "closure", "closure", "fits"]
    assert calls[0][1] == "running" and calls[2][1] == "running" and calls[3][1] == "running"
    done = r"done \(\d+\.\d s\)"
    assert all(re.fullmatch(done, calls[i][1]) for i in (1, 4, 5)), calls
    assert steps == [("beam", 1, 2), ("beam", 2, 2), ("fits", 1, 1)]


def test_display_prints_stage_lines_and_a_line_per_finished_task(capsys):
    display = ProgressDisplay(force_terminal=False)
    with display.bars:
        display.stage("samples", "running")
        display.advance("beam", 1, 2)
        display.advance("beam", 2, 2)
        display.stage("samples", "done (1.0 s)")
        display.stage("table", "running")  # short: no start line
        display.stage("table", "done (0.0 s)")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "samples running ..."
    assert re.fullmatch(r"  beam +2/2 in \d+\.\d s \((\S+/s|-)\)", err[1]), err
    assert err[2:] == ["samples done (1.0 s)", "table done (0.0 s)"]
