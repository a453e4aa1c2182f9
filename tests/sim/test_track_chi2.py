"""MS2 track fit: hits, chi2, quasi-elastic kinks and the chi2 cut (bkg.sim.tracking)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bkg.sim import tracking

RES, FIELD = 0.03, 1.4
SIGMA = tracking.hit_sigma_m(RES, FIELD, 160.0)
CUT = 24.3


def _measure(p, n, x0, inefficiency, seed):
    return tracking.measure_p_out(
        np.full(n, p),
        np.random.default_rng(seed),
        field_tm=FIELD,
        resolution_rel=RES,
        station_x0=x0,
        inefficiency=inefficiency,
    )


def test_the_fit_reproduces_the_configured_resolution():
    # sigma_hit is set from dp/p = 3% at 160 GeV: the residual 160/p_rec - 1 has rms 0.03
    # (stations of 1e-12 X0: no scattering); 2e5 tracks, tolerance 2% of the rms (4 sigma
    # of the rms estimate is 0.6%)
    out = _measure(160.0, 200_000, 1e-12, 0.0, 1)
    assert np.std(160.0 / out["p_rec"] - 1) == pytest.approx(RES, rel=0.02)
    assert SIGMA == pytest.approx(78.75e-6, rel=1e-9)  # 3% of 0.42/160 rad over a 1 m lever


def test_chi2_of_unkinked_tracks_follows_chi2_with_7_ndf():
    # 6 x hits - 3 parameters + 6 y hits - 2 = 7 ndf. Without station material the chi2
    # is exactly chi2(7): KS p-value > 1e-3, and the fraction beyond the default cut 24.3
    # is P(chi2_7 > 24.3) = 1.0e-3 within 4 binomial sigma
    n = 200_000
    chi2 = _measure(160.0, n, 1e-12, 0.0, 2)["chi2"]
    assert stats.kstest(chi2, stats.chi2(tracking.TRACK_NDF).cdf).pvalue > 1e-3
    p = stats.chi2.sf(CUT, 7)
    assert p == pytest.approx(1.0e-3, rel=0.01)  # the reasoning of the config's value
    assert abs(np.mean(chi2 > CUT) - p) < 4 * np.sqrt(p / n)


def test_multiple_scattering_adds_its_closed_form_to_the_mean_chi2():
    # at 20 GeV the Gaussian scattering in each 0.003 X0 station (Highland theta0) adds
    # sum_j theta0^2 (c_x,j + c_y,j) / sigma^2 to the mean chi2 (a kink theta in station j
    # adds theta^2 c_j / sigma^2, c_j from the residual maker; computed here with lstsq).
    # Tracks without a rare interaction (process 0); tolerance 5 sigma of the mean (0.05)
    n = 200_000
    out = _measure(20.0, n, 0.003, 0.0, 3)
    chi2 = out["chi2"][out["process"] == 0]
    x0 = 0.003
    theta0 = 0.0136 / 20.0 * np.sqrt(x0) * (1 + 0.038 * np.log(x0))
    z = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    ax = np.stack([np.ones(6), z, np.where(z > 0, z, 0.0)], axis=1)
    ay = np.stack([np.ones(6), z], axis=1)
    extra = 0.0
    for j in range(6):
        d = np.where(np.arange(6) > j, z - z[j], 0.0)
        for a in (ax, ay):
            resid = d - a @ np.linalg.lstsq(a, d, rcond=None)[0]
            extra += theta0**2 * float(resid @ resid) / SIGMA**2
    assert extra > 0.3
    assert abs(chi2.mean() - (7.0 + extra)) < 5 * chi2.std() / np.sqrt(chi2.size)


def test_quasi_elastic_kink_rate_is_the_integral_of_the_cross_section():
    # Stations of 0.3 X0 (100x): the number of muons with a quasi-elastic kink (process 9,
    # q >= 0.15 GeV) is 6 n int dsigma/dq dq (scipy quad, independently of the sampler's
    # table): tolerance 4 Poisson sigma. The sampled q above 0.42 GeV (the kink that moves
    # 160 GeV to 80 GeV at the magnet) follows the ratio of the integrals: 4 binomial sigma.
    n = 2_000_000
    x0 = 0.3
    out = _measure(160.0, n, x0, 0.0, 4)

    def rate(q_lo):
        f = lambda lq: np.exp(lq) * float(tracking.qe_dsigma_dq(np.exp(lq), x0))  # noqa: E731
        return integrate.quad(f, np.log(q_lo), np.log(50.0), limit=200, epsrel=1e-8)[0]

    expected = 6 * n * rate(tracking.Q_QE_MIN_GEV)
    got = int(np.count_nonzero(out["process"] == 9))
    assert expected > 80
    assert abs(got - expected) < 4 * np.sqrt(expected), (got, expected)
    q = tracking.sample_qe_q(np.random.default_rng(5), 1_000_000, x0)
    frac = rate(0.42) / rate(tracking.Q_QE_MIN_GEV)
    assert abs(np.mean(q >= 0.42) - frac) < 4 * np.sqrt(frac * (1 - frac) / q.size)
    # every quasi-elastic kink that moves the curvature by more than 20 sigma (a kink of
    # >= 20 sigma_bend / w >= 1.9 theta_res: lambda >= 86) fails the chi2 cut
    far = (out["process"] == 9) & (np.abs(160.0 / out["p_rec"] - 1) > 20 * RES)
    assert far.sum() >= 5
    assert np.all(out["chi2"][far] > CUT)


@pytest.mark.parametrize("station", [1, 2, 3, 4])
def test_the_cut_removes_kinks_above_the_angle_the_resolution_resolves(station):
    # A bend-plane kink theta in station j moves the later hits by theta (z_k - z_j); its
    # chi2 without noise is theta^2 c_j / sigma^2, so the cut resolves theta_res =
    # sqrt(24.3 / c_j) sigma (0.76-0.84 mrad, ~10 sigma of the bend at 160 GeV). With the
    # hit noise, kinks of 2 theta_res fail the cut in >= 99.9% of 1e5 tracks (noncentral
    # chi2, lambda = 97: P(<= 24.3) ~ 1e-6), kinks of 0.3 theta_res pass in >= 97%
    # (lambda = 2.2: P(> 24.3) ~ 1%)
    rng = np.random.default_rng(6 + station)
    theta_res = tracking.resolved_kink_rad(station, chi2_max=CUT, sigma_m=SIGMA)
    assert 9 < theta_res / (RES * 0.42 / 160.0) < 11
    n = 100_000
    d = tracking.kink_displacement(station)[:, None]
    z = tracking.STATION_Z_M[:, None]
    for factor, removed_min, removed_max in ((2.0, 0.999, 1.0), (0.3, 0.0, 0.03)):
        x = np.maximum(z, 0) * 0.42 / 160.0 + d * factor * theta_res
        x = x + SIGMA * rng.standard_normal((6, n))
        y = SIGMA * rng.standard_normal((6, n))
        _, chi2 = tracking.fit_tracks(x, y, SIGMA)
        removed = np.mean(chi2 > CUT)
        assert removed_min <= removed <= removed_max, (factor, removed)
    # the first and the last station: a kink there neither moves the bend nor shows
    assert tracking.LEVER[0] == 0 and tracking.LEVER[5] == 0


def test_quasi_elastic_mismatch_after_the_cut_is_computed():
    # the level's quasi-elastic part: 2.2e-9 per muon before the cut (the README's
    # number), below 1e-30 after it (the needed 2.6 mrad kink is 3.4 theta_res: a
    # noncentral chi2 with lambda >= 230)
    got = tracking.quasi_elastic_kink_probability(
        160.0, station_x0=0.003, field_tm=FIELD, p_cut_gev=80.0, chi2_max=CUT, sigma_m=SIGMA
    )
    assert 1e-9 < got["total"] < 5e-9
    assert 0 <= got["total_after_chi2"] < 1e-30
    # a small kink (to 150 GeV) mostly survives: the cut only removes what it resolves
    small = tracking.quasi_elastic_kink_probability(
        160.0, station_x0=0.003, field_tm=FIELD, p_cut_gev=150.0, chi2_max=CUT, sigma_m=SIGMA
    )
    assert 0.3 < small["total_after_chi2"] / small["total"] < 1.0


def _hit_level(p, n, x0, seed):
    """The Gaussian part of MS2 made hit by hit (kinks in every station, resolution) and
    fitted with fit_tracks: the definition the simulation's projected draws must follow."""
    rng = np.random.default_rng(seed)
    theta0 = 0.0136 * np.sqrt(x0) * (1 + 0.038 * np.log(x0)) / p
    z = tracking.STATION_Z_M
    disp = np.stack([tracking.kink_displacement(j) for j in range(z.size)], axis=1)
    kx = theta0 * rng.standard_normal((z.size, n))
    ky = theta0 * rng.standard_normal((z.size, n))
    bend = 0.3 * FIELD / p
    x = disp @ kx + np.maximum(z, 0.0)[:, None] * bend + SIGMA * rng.standard_normal((z.size, n))
    y = disp @ ky + SIGMA * rng.standard_normal((z.size, n))
    phi, chi2 = tracking.fit_tracks(x, y, SIGMA)
    return 0.3 * FIELD / phi, chi2


@pytest.mark.parametrize("p", [20.0, 160.0])
def test_projected_gaussian_draws_follow_the_hit_level_fit(p):
    # measure_p_out draws the fit's view of the Gaussian kinks and hit noise (8 normals),
    # not the 24 hits: the law of (1/p_rec, chi2) must be the hit-level one. Stations of
    # 0.1 X0 (scattering comparable to the resolution at 20 GeV, 4x below it at 160 GeV);
    # no inefficiency; the tracks with a single-scattering, quasi-elastic or knock-on
    # kink (``process`` != 0, independent of the Gaussian part) left out. P(X <= x_q) at
    # the hit-level deciles of 1/p_rec, of chi2, and of chi2 within the central 80% of
    # 1/p_rec (their joint law); 2e5 tracks per side, the difference of two proportions
    # within 5 of its sigma sqrt(q (1 - q) (1/n1 + 1/n2))
    n, x0 = 200_000, 0.1
    out = _measure(p, n, x0, 0.0, 11)
    ref_p, ref_c = _hit_level(p, n, x0, 12)
    plain = out["process"] == 0
    ours = {"inv_p": 1 / out["p_rec"][plain], "chi2": out["chi2"][plain]}
    ref = {"inv_p": 1 / ref_p, "chi2": ref_c}
    lo, hi = np.quantile(ref["inv_p"], [0.1, 0.9])
    ours["chi2_core"] = ours["chi2"][(ours["inv_p"] > lo) & (ours["inv_p"] < hi)]
    ref["chi2_core"] = ref["chi2"][(ref["inv_p"] > lo) & (ref["inv_p"] < hi)]
    for key in ours:
        for q in (0.1, 0.3, 0.5, 0.7, 0.9):
            x_q = np.quantile(ref[key], q)
            sigma = np.sqrt(q * (1 - q) * (1 / ours[key].size + 1 / ref[key].size))
            assert np.mean(ours[key] <= x_q) == pytest.approx(q, abs=5 * sigma), (key, q)
