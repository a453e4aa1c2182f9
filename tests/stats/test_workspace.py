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
