"""Biased simulation (bkg.sim.biasing): weighted runs agree with unbiased ones where both have events."""

from __future__ import annotations

import numpy as np
import pytest

from bkg.config import from_dict
from bkg.sim import biasing


def test_weighted_fraction_and_effective_events():
    # two passing events of weights 1 and 3 among 10: (1 + 3)/10, sqrt(1 + 9)/10, 16/10
    v, e, n_eff = biasing.weighted_fraction(
        np.array([1.0, 3.0, 5.0]), np.array([1, 1, 0], bool), 10
    )
    assert (v, e, n_eff) == pytest.approx((0.4, np.sqrt(10) / 10, 1.6))


@pytest.mark.slow
def test_punch_through_biased_run_agrees_with_the_unbiased_one(default_config):
    # the same generator with lambda_bias = 1.2 lambda_I (w = 1: the physical shower start)
    # and with lambda_bias = 5: P(depth >= t) must agree within 4 combined standard errors
    # at every depth where the unbiased run has at least 20 events
    unb = biasing.punch_through_direct(default_config, 400_000, 1, lambda_bias=biasing.LAMBDA_TRUE)
    bia = biasing.punch_through_direct(default_config, 400_000, 2)
    compared = 0
    for pu, pb in zip(unb.points, bia.points, strict=True):
        assert pu["x"] == pb["x"]
        if pu["effective_events"] < 20:
            continue
        compared += 1
        assert abs(pu["per_event"] - pb["per_event"]) < 4 * np.hypot(pu["stat"], pb["stat"])
    assert compared >= 4
    # the biased run reaches the cut with far more events than the unbiased one
    assert bia.effective_events > 50 * max(unb.effective_events, 1)


@pytest.mark.slow
def test_forced_scattering_agrees_with_the_simulation_on_thick_stations(default_config):
    # stations 30 times thicker (0.09 X0): the real simulation (measure_p_out) then makes
    # enough single scatterings to count P(residual >= t) per MOT directly on 6e5 muons.
    # The forced scattering, with its weights, must agree within 4 combined standard errors
    # (Poisson for the count) wherever the simulation has at least 10 events
    from bkg.selection import single_track
    from bkg.sim.beam import generate_beam_muons

    cfg = from_dict({"detector": {"spectrometers": {"ms2": {"tracker_material_x0": 0.09}}}})
    n_mot = 600_000
    ev = generate_beam_muons(cfg, np.random.default_rng(5), n_mot)
    plo, phi = cfg.selection.p_in_window_gev
    ok = (ev["p_out_rec"] > 0) & (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
    ok &= (ev["p_out_true"] > cfg.selection.p_out_max_gev) & (ev["p_out_rec_ko"] == 0)
    ok &= single_track(ev)
    r = ev["p_out_true"][ok] / ev["p_out_rec"][ok] - 1.0
    direct = biasing.mismatch_direct(cfg, 2_000_000, 9)
    compared = 0
    for pt in direct.points:
        k = int(np.count_nonzero(r >= pt["x"]))
        if k < 10:
            continue
        compared += 1
        err = np.hypot(np.sqrt(k) / n_mot, pt["stat"])
        assert abs(k / n_mot - pt["per_event"]) < 4 * err, (pt, k)
    assert compared >= 2
