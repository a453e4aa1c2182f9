"""ECAL passage and dimuon kinematics against closed forms (review of November 2026)."""

from __future__ import annotations

import numpy as np
import pytest

from bkg.config import load_config
from bkg.physics import energyloss
from bkg.sim import detector, dimuons, ecal


def test_repeated_interactions_conserve_energy() -> None:
    # 50x the ECAL depth: most muons interact several times in one process, where each
    # loss must come out of what the earlier ones left
    rng = np.random.default_rng(3)
    e_in = np.full(200_000, 160.0)
    out = ecal.pass_ecal(e_in, rng, depth_g_cm2=50 * 40 * ecal.LEAD_X0_G_CM2)
    radiated = out["e_dep_em"] + out["e_had"]
    assert np.all(out["e_out"] >= 0.0)
    assert np.all(radiated <= e_in * (1 + 1e-12))
    # nothing is lost or created beyond the (clipped) continuous ionisation
    assert np.all(radiated + out["e_out"] <= e_in * (1 + 1e-12))


@pytest.mark.parametrize("e_gev", [10.0, 20.0, 50.0, 400.0])
def test_radiative_b_follows_the_physics_module(e_gev: float) -> None:
    # the interpolated table against a direct evaluation: 1% covers the linear
    # interpolation on a 120-point ln E grid
    direct = sum(
        float(f(e_gev))
        for f in (
            energyloss.b_bremsstrahlung_cm2_g,
            energyloss.b_pair_cm2_g,
            energyloss.b_photonuclear_cm2_g,
        )
    )
    assert float(ecal.b_radiative_cm2_g(e_gev)) == pytest.approx(direct, rel=0.01)


@pytest.mark.parametrize("x0", [2.0, 20.0, 40.0])
def test_scattering_uses_the_depth_crossed(x0: float) -> None:
    # Highland for x0 radiation lengths at 20 GeV; 1% is 7 sigma of 2e5 draws' rms
    rng = np.random.default_rng(5)
    p = np.full(200_000, 20.0)
    out = detector.muon_through_ecal(load_config(), rng, p, depth_g_cm2=x0 * ecal.LEAD_X0_G_CM2)
    core = np.abs(out["tx_ms"]) < 5 * np.std(out["tx_ms"])
    p_mean = np.sqrt(20.0 * np.median(out["e_out"]))
    highland = 0.0136 / p_mean * np.sqrt(x0) * (1 + 0.038 * np.log(x0))
    assert float(np.std(out["tx_ms"][core])) == pytest.approx(highland, rel=0.01)


def test_trident_fractions_follow_their_rate_law() -> None:
    # (1 - v)/v^2 on [vmin, 1]: mean = (ln(1/vmin) - (1 - vmin)) / ((1/vmin - 1) + ln vmin)
    vmin = 0.5
    v = dimuons._draw_trident_v(np.random.default_rng(7), 400_000, vmin)
    norm = (1 / vmin - 1) + np.log(vmin)
    mean = (np.log(1 / vmin) - (1 - vmin)) / norm
    assert v.min() >= vmin
    assert float(v.mean()) == pytest.approx(mean, abs=4 * float(v.std()) / np.sqrt(v.size))
