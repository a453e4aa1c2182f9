"""HEPData record of Table I."""

from __future__ import annotations

import pytest

from bkg.report.hepdata import _table1


def test_table_i_marks_a_bound_and_gives_it_no_errors():
    row = {"stat_up": 1.0e-12, "stat_down": 5.0e-13, "syst_up": 2.0e-13, "syst_down": 1.0e-13}
    table1 = {
        "sources": [
            {"label": "Measured", "level_per_mot": 3.2e-11, "upper_bound": False, **row},
            {"label": "Bounded", "level_per_mot": 5.5e-10, "upper_bound": True, **row},
        ]
    }
    source, level = _table1(table1).variables
    assert source.values == ["Measured", "Bounded (90% CL upper limit)"]
    assert list(level.values) == [3.2e-11, 5.5e-10]
    stat, syst = level.uncertainties
    assert [tuple(v) for v in stat.values] == [(-5.0e-13, 1.0e-12), (0.0, 0.0)]
    assert [tuple(v) for v in syst.values] == [(-1.0e-13, 2.0e-13), (0.0, 0.0)]


def test_sqrt_s_is_the_muon_nucleon_centre_of_mass_energy():
    from bkg.report.hepdata import sqrt_s_gev

    # s = m_N^2 + m_mu^2 + 2 E m_N: sqrt(301.34) = 17.359 GeV at 160 GeV, sqrt(188.67) = 13.736 GeV at 100 GeV
    assert sqrt_s_gev(160.0) == pytest.approx(17.359, abs=1e-3)
    assert sqrt_s_gev(100.0) == pytest.approx(13.736, abs=1e-3)


def test_submission_folder_and_archive_both_validate(tmp_path):
    import yaml
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    from bkg.report.hepdata import write_hepdata

    row = {"stat_up": 1.0e-12, "stat_down": 5.0e-13, "syst_up": 2.0e-13, "syst_down": 1.0e-13}
    table1 = {"sources": [{"label": "A", "level_per_mot": 3.2e-11, "upper_bound": False, **row}]}
    masses = [0.01, 0.1, 1.0]
    limits = {
        "confidence_level": 0.9, "n_mot": 1e11, "calculator": "toys", "background_events": 3.2,
        "masses_gev": masses, "g_prime_expected": [2e-4, 3e-4, 9e-4],
        "g_prime_minus1": [1.5e-4, 2.5e-4, 8e-4], "g_prime_plus1": [2.5e-4, 3.5e-4, 1e-3],
        "g_prime_minus2": [1e-4, 2e-4, 7e-4], "g_prime_plus2": [3e-4, 4e-4, 1.1e-3],
        "g_prime_observed": None,
    }  # fmt: skip
    band = {
        "delta_a_mu": 251e-11, "sigma": 59e-11, "reference": "2021", "band_sigmas": 2.0,
        "masses_gev": masses, "low": [3e-4] * 3, "central": [4e-4] * 3, "high": [5e-4] * 3,
    }  # fmt: skip
    folder = write_hepdata(
        tmp_path / "hepdata", table1=table1, limits=limits, g2_band=band, beam_energy_gev=100.0
    )
    archive = tmp_path / "hepdata.tar.gz"
    assert archive.is_file() and not list(folder.glob("*.tar.gz"))
    for kwargs in ({"directory": str(folder)}, {"archive": str(archive)}):
        validator = FullSubmissionValidator()
        assert validator.validate(**kwargs), validator.get_messages()
    docs = list(yaml.safe_load_all((folder / "expected_limit_on_g-prime.yaml").read_text()))
    assert docs, "limit table missing"
    sub = list(yaml.safe_load_all((folder / "submission.yaml").read_text()))
    kw = next(d for d in sub if d.get("name") == "Expected limit on g-prime")["keywords"]
    assert [k["values"] for k in kw if k["name"] == "cmenergies"] == [[13.74]]
