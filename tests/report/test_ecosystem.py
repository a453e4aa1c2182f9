"""Other tools read what the report exports: hepdata-validator the HEPData submission,
cabinetry the pyhf likelihood (with the same limit as the project's)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "reports" / "reference"


def _validate(**kwargs: str) -> dict:
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    validator = FullSubmissionValidator()
    ok = validator.validate(**kwargs)
    messages = {f: [m.message for m in ms] for f, ms in validator.get_messages().items() if ms}
    validator.clear_all()
    return {"valid": ok, "messages": messages}


def _report_hepdata(tmp_path: Path) -> Path:
    """A report's hepdata/ and hepdata.tar.gz, written from the reference's JSON as
    `bkg report` writes them (pipeline._hepdata), with the likelihood files attached."""
    from bkg.report.hepdata import write_hepdata

    sens = json.loads((REFERENCE / "sensitivity.json").read_text())
    band = {
        "delta_a_mu": 251e-11, "sigma": 59e-11, "reference": sens["g2_reference"],
        "band_sigmas": sens["g2_band_sigmas"], "masses_gev": sens["masses_gev"],
        "low": sens["g2_band_low"], "central": sens["g2_band_central"], "high": sens["g2_band_high"],
    }  # fmt: skip
    ws = tmp_path / "workspace"
    shutil.copytree(REFERENCE / "workspace", ws)
    return write_hepdata(
        tmp_path / "hepdata",
        table1=json.loads((REFERENCE / "table1.json").read_text()),
        limits=json.loads((REFERENCE / "limits.json").read_text()),
        g2_band=band,
        beam_energy_gev=sens["beam_energy_gev"],
        workspace_files=[ws / "BkgOnly.json", ws / "patchset.json"],
    )


@pytest.mark.parametrize("where", ["written", "committed"])
def test_hepdata_validator_accepts_folder_and_archive_without_a_message(tmp_path, where):
    folder = _report_hepdata(tmp_path) if where == "written" else REFERENCE / "hepdata"
    archive = folder.parent / "hepdata.tar.gz"
    assert folder.is_dir() and archive.is_file()
    for kwargs in ({"directory": str(folder)}, {"archive": str(archive)}):
        result = _validate(**kwargs)
        # any message (a warning too) fails: a reviewer sees the validator's output clean
        assert result == {"valid": True, "messages": {}}, (kwargs, result)


def _patched(patch_name: str | None = None) -> tuple[dict, dict]:
    import pyhf

    bkg_only = json.loads((REFERENCE / "workspace" / "BkgOnly.json").read_text())
    patchset = pyhf.PatchSet(json.loads((REFERENCE / "workspace" / "patchset.json").read_text()))
    patch = next(
        p for p in patchset.patches if patch_name is None or p.name == patch_name
    ) if patch_name else patchset.patches[len(patchset.patches) // 2]  # fmt: skip
    ws = pyhf.Workspace(bkg_only)
    return dict(patch.apply(ws)), patch.metadata


def test_cabinetry_reads_a_patched_workspace_and_finds_the_projects_asymptotic_limit():
    cabinetry = pytest.importorskip("cabinetry")
    from bkg.config import load_config
    from bkg.stats.limits import event_limit
    from bkg.stats.model import read_table1

    spec, meta = _patched()
    model, data = cabinetry.model_utils.model_and_data(spec)
    assert model.config.poi_name == "mu"
    # poi_tolerance: brentq's absolute xtol on mu (cabinetry's default 0.01 is ~0.5% here)
    res = cabinetry.fit.limit(model, data, confidence_level=0.9, poi_tolerance=1e-6)
    # the project's asymptotic limit from Table I (the signal of this patch: its events at g'_ref)
    provenance = json.loads((REFERENCE / "provenance.json").read_text())
    cfg = load_config(None)
    st = cfg.statistics
    n_mot = float(provenance["config"]["n_mot"])
    signal = next(s for s in spec["channels"][0]["samples"] if s["name"] == "signal")
    s_ref = float(signal["data"][0])
    ours = event_limit(
        read_table1(REFERENCE / "table1.json"), n_mot=n_mot,
        confidence_level=0.9, mot_uncertainty=st.mot_uncertainty,
        signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
        calculator="asymptotic", toys_below_background=st.toys_below_background,
        toy_nuisance=st.toy_nuisance, n_toys=st.n_toys, seed=cfg.seed,
    )  # fmt: skip
    assert ours.calculator == "asymptotic"  # the CLI's word, also in limits.json
    mu_ours = np.asarray(ours.expected) / s_ref
    # pyhf's own root finder on the same workspace is the exact reference for ours (1e-6)
    import pyhf

    ws = pyhf.Workspace(spec)
    exact = pyhf.infer.intervals.upper_limits.toms748_scan(
        ws.data(ws.model()), ws.model(), 0.05, 10, level=0.1, atol=1e-8, rtol=1e-8
    )[1]
    np.testing.assert_allclose(mu_ours[2], exact[2], rtol=1e-6)
    # cabinetry solves CLs(mu) = 0.1 with the same asymptotics (Minuit fits, brentq on mu):
    # measured within 1.5e-5 of ours for all five band members; the issue asks 1e-3
    np.testing.assert_allclose(res.expected_limit, mu_ours, rtol=1e-3)
    assert meta["values"][1] == pytest.approx(1e-4)  # g'_90 = g'_ref sqrt(mu)


def test_pyhf_inspect_runs_on_a_patched_workspace_as_docs_say(tmp_path):
    """docs/likelihood.md: BkgOnly.json declares the POI only a patch adds (pyhf issue 514)."""
    import pyhf
    from click.testing import CliRunner
    from pyhf.cli import cli as pyhf_cli  # the `pyhf` command group

    bkg_only = json.loads((REFERENCE / "workspace" / "BkgOnly.json").read_text())
    assert bkg_only["measurements"][0]["config"]["poi"] == "mu"
    with pytest.raises(pyhf.exceptions.InvalidModel, match="parameter of interest 'mu'"):
        pyhf.Workspace(bkg_only).model()
    spec, _ = _patched()
    (tmp_path / "ws.json").write_text(json.dumps(spec))
    out = CliRunner().invoke(pyhf_cli, ["inspect", str(tmp_path / "ws.json")])
    assert out.exit_code == 0, out.output
    assert "signal_box" in out.output and "mu" in out.output
    docs = (Path(__file__).resolve().parents[2] / "docs" / "likelihood.md").read_text()
    assert "pyhf inspect ws.json" in docs and "514" in docs
