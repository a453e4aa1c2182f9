"""Export: BkgOnly.json + patchset.json load in pyhf (python API and command line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyhf
import pytest

from bkg.stats.model import read_table1
from bkg.stats.stage import compute_limits, run_workspace


def test_patchset_applies_for_every_mass(default_config, table1_path, signal_grid, tmp_path):
    masses, y = signal_grid
    paths = run_workspace(
        default_config,
        table1_path=table1_path,
        masses_gev=masses,
        signal_per_mot_ref=y,
        out_dir=tmp_path,
        mass=0.1,
    )
    ws = pyhf.Workspace(json.loads(paths["bkg_only"].read_text()))
    ps = pyhf.PatchSet(json.loads(paths["patchset"].read_text()))
    assert len(ps.patches) == len(masses)
    for patch, m in zip(ps.patches, masses, strict=True):
        assert patch.values[0] == pytest.approx(m)
        assert patch.values[1] == default_config.signal.g_prime_ref
        model = ps.apply(ws, patch.values).model()
        assert "signal" in model.config.samples
    assert paths["workspace"].exists()


@pytest.mark.slow
def test_pyhf_cli_cls_at_mu_up(default_config, table1_path, signal_grid, tmp_path):
    # pyhf cls (asymptotic) at our asymptotic expected median mu_up on the Asimov data must give
    # CLs = 1 - CL = 0.10 within 0.01 (issue 5 acceptance)
    masses, y = signal_grid
    run_workspace(
        default_config,
        table1_path=table1_path,
        masses_gev=masses,
        signal_per_mot_ref=y,
        out_dir=tmp_path,
    )
    res = compute_limits(
        default_config,
        read_table1(table1_path),
        masses_gev=masses,
        signal_per_mot_ref=y,
        calculator="asymptotics",
    )
    pyhf_exe = str(Path(sys.executable).with_name("pyhf"))
    for i in (0, len(masses) - 1):
        name = pyhf.PatchSet(json.loads((tmp_path / "patchset.json").read_text())).patches[i].name
        full = tmp_path / f"full_{i}.json"
        subprocess.run(
            [
                pyhf_exe,
                "patchset",
                "apply",
                str(tmp_path / "BkgOnly.json"),
                str(tmp_path / "patchset.json"),
                "--name",
                name,
                "--output-file",
                str(full),
            ],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [
                pyhf_exe,
                "cls",
                str(full),
                "--test-poi",
                repr(float(res.mu_expected[i, 2])),
                "--test-stat",
                "qtilde",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        cls = json.loads(out.stdout)
        assert cls["CLs_obs"] == pytest.approx(0.10, abs=0.01)


def test_patch_bounds_follow_the_background_and_massless_signal_is_skipped(caplog):
    # at 1e4 background events with 30% systematics the +2 sigma limit is ~7.6e3 signal
    # events (asymptotic); the exported POI range must reach it (a fixed 1e3 events did not,
    # and pyhf's toms748 scan then failed). A mass whose signal yield is 0 gets no patch.
    from bkg.stats.limits import event_limit
    from bkg.stats.model import BackgroundSource, Table1
    from bkg.stats.workspace import build_patchset, build_workspace

    src = BackgroundSource("b", "b", 1e4, 0.0, 0.0, 3e3, 3e3, False, "")
    table = Table1(n_mot=1.0, sources=(src,))
    kw = {"mot_uncertainty": 0.01, "signal_efficiency_uncertainty": 0.1}
    bkg_only = build_workspace(table, n_mot=1.0, **kw)
    ps = build_patchset(
        bkg_only, masses_gev=[0.01, 0.1, 2.0], signal_events_ref=[3.0, 1.0, 0.0],
        g_prime_ref=1e-4, **kw,
    )  # fmt: skip
    assert [p["metadata"]["values"][0] for p in ps["patches"]] == [0.01, 0.1]
    assert "2" in caplog.text and "no patch" in caplog.text
    top = event_limit(table, n_mot=1.0, confidence_level=0.9, calculator="asymptotics", **kw)
    for patch, s in zip(ps["patches"], (3.0, 1.0), strict=True):
        mu_max = patch["patch"][1]["value"][0][1]
        assert mu_max * s > top.expected[4]
