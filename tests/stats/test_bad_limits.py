"""Limits on bad input (issue 8): no crash on a zero signal yield, a clear error when
no bracket exists, and a bracket at very large backgrounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bkg.errors import LimitError
from bkg.stats.limits import _solve, event_limit, poi_upper_bound
from bkg.stats.stage import run_limits
from tests.stats.conftest import one_source

pytestmark = pytest.mark.bad_input


def test_zero_signal_yield_at_a_mass_is_skipped_with_a_warning(
    default_config, table1_path, signal_grid, tmp_path
):
    masses, y = signal_grid
    y = y.copy()
    y[3] = 0.0
    cfg = dataclasses.replace(
        default_config,
        statistics=dataclasses.replace(default_config.statistics, calculator="asymptotic"),
    )
    res = run_limits(
        cfg, table1_path=table1_path, masses_gev=masses, signal_per_mot_ref=y,
        out_dir=tmp_path, figures=False,
    )  # fmt: skip
    data = res.to_dict()
    assert data["g_prime_expected"][3] is None  # skipped, not inf or a crash
    assert all(v is not None for i, v in enumerate(data["g_prime_expected"]) if i != 3)
    assert len(data["warnings"]) == 1 and "skipped" in data["warnings"][0]
    assert f"{1e3 * masses[3]:.4g} MeV" in data["warnings"][0]


def test_no_bracket_names_the_band():
    with pytest.raises(LimitError, match=r"expected \+2 sigma limit: CLs does not cross"):
        _solve(lambda mu: 1.0, 1e-6, 10.0, "expected +2 sigma", (1e-8, 1e-6))


def test_huge_background_still_brackets():
    # 1e5 background events with a 50 % uncertainty: the +2 sigma limit is ~1e5
    # signal events, far above the old fixed scan end of 1000 events
    b = 1e5
    assert poi_upper_bound(b) > 2 * b
    lim = event_limit(
        one_source(b, syst=0.5), n_mot=1.0, confidence_level=0.9, mot_uncertainty=0.0,
        signal_efficiency_uncertainty=0.0, calculator="asymptotic",
    )  # fmt: skip
    assert np.all(np.isfinite(lim.expected))
    assert np.all(np.diff(lim.expected) > 0)


def test_a_failed_pyhf_fit_is_one_line_not_a_traceback(monkeypatch):
    # a pyhf FailedMinimization (scipy's "Inequality constraints incompatible", seen on a
    # small report with pi_per_mu = 3e-6) reached the user as a traceback; now a LimitError
    import pyhf

    def failing(*args, **kwargs):
        raise pyhf.exceptions.FailedMinimization(
            type("R", (), {"message": "Inequality constraints incompatible"})()
        )

    monkeypatch.setattr(pyhf.infer, "hypotest", failing)
    with pytest.raises(LimitError, match=r"pyhf's fit failed at mu = .*--calculator toys") as err:
        event_limit(
            one_source(6.0, syst=0.3), n_mot=1.0, confidence_level=0.9, mot_uncertainty=0.0,
            signal_efficiency_uncertainty=0.0, calculator="asymptotic",
        )  # fmt: skip
    assert "\n" not in str(err.value)
