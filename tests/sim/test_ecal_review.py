"""ECAL passage and dimuon kinematics against closed forms (review of November 2026)."""

from __future__ import annotations

import numpy as np
import pytest

from bkg.config import load_config
from bkg.physics import energyloss
from bkg.sim import detector, dimuons, ecal


def test_repeated_interactions_conserve_energy() -> None:
    # 50x the ECAL depth: most muons interact several times in one process, where each
    # loss must come out of what the earlier ones left. Every GeV is accounted for: the
    # muon's energy = what it keeps + ionisation + radiated (soft and catastrophic), to
    # the float32 precision of the stored ionisation (muons that stopped are left out:
    # their ionisation is clipped)
    rng = np.random.default_rng(3)
    e_in = np.full(200_000, 160.0)
    out = ecal.pass_ecal(e_in, rng, depth_g_cm2=50 * 40 * ecal.LEAD_X0_G_CM2)
    ion = out["e_dep_ion"].astype(np.float64) / ecal._pass_constants(0.5, 40 * ecal.LEAD_X0_G_CM2)
    radiated = out["e_dep_em"] + out["e_had"]
    alive = out["e_out"] > 0
    assert np.all(out["e_out"] >= 0.0)
    assert alive.mean() > 0.99
    balance = e_in - (out["e_out"] + ion + radiated)
    assert np.max(np.abs(balance[alive])) < 1e-4 * 160.0
    assert np.all(radiated <= e_in * (1 + 1e-12))


def test_the_largest_interaction_is_reported(monkeypatch) -> None:
    # every catastrophic interaction takes v = 0.3 of what is left, so a muon's first
    # (bremsstrahlung, the first process) is its largest; a muon hit several times must
    # report that one, not its last
    monkeypatch.setattr(ecal, "sample_v", lambda p, n, rng, **kw: np.full(n, 0.3))
    rng = np.random.default_rng(8)
    e_in = np.full(100_000, 160.0)
    depth = 20 * 40 * ecal.LEAD_X0_G_CM2
    out = ecal.pass_ecal(e_in, rng, depth_g_cm2=depth)
    ion = out["e_dep_ion"].astype(np.float64) / ecal._pass_constants(0.5, 40 * ecal.LEAD_X0_G_CM2)
    soft = ecal._soft_b_at(np.log(e_in)) * e_in * depth
    brems = out["process"] == ecal.PROCESS["brems"]
    assert brems.mean() > 0.2  # ~0.3 brems per muon: thousands of them are hit twice or more
    first = 0.3 * (e_in - ion - soft)
    np.testing.assert_allclose(out["e_transfer"][brems], first[brems], rtol=1e-4)


def test_mean_radiative_loss_follows_b_at_low_energy() -> None:
    # 10 GeV muons (the v spectra are drawn at the muon's energy, not at 160 GeV) through
    # 40 g/cm2: mean energy into showers = b(E) E X + the knock-on electrons above the cut
    # (the part of the Bethe loss above T_cut, closed form). Tolerance: 4 standard errors
    # of the heavy-tailed sample mean plus 1% for the interpolation between the energy nodes
    rng = np.random.default_rng(12)
    e, x = 10.0, 40.0
    out = ecal.pass_ecal(np.full(2_000_000, e), rng, depth_g_cm2=x)
    radiated = out["e_dep_em"] + out["e_had"]
    knock = float(energyloss.knock_on_loss_above_gev_cm2_g(e, ecal.knock_on_t_cut_gev(e))) * x
    expected = float(energyloss.b_radiative_cm2_g(e)) * e * x + knock
    se = float(radiated.std()) / np.sqrt(radiated.size)
    assert abs(float(radiated.mean()) - expected) < 4 * se + 0.01 * expected


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
