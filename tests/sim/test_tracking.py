"""MS2 tracking: the knock-on electron that replaces a lost muon hit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bkg.sim import tracking

M_E = 0.00051099895
M_MU = 0.1056583755
RES = 0.03


def test_knock_on_angle_from_momentum_conservation():
    # independent: with E' = E - T and p'^2 = p^2 + p_e^2 - 2 p p_e cos(theta_e) (momentum
    # conservation), cos(theta_e) = (p^2 + p_e^2 - p'^2) / (2 p p_e); tolerance 1e-9 rad
    p = np.array([160.0, 160.0, 50.0, 160.0])
    t = np.array([0.5, 5.0, 2.0, float(tracking.t_max_gev(160.0))])
    e = np.sqrt(p**2 + M_MU**2)
    p_e = np.sqrt(t * (t + 2 * M_E))
    p2 = np.sqrt((e - t) ** 2 - M_MU**2)
    expected = np.arccos(np.clip((p**2 + p_e**2 - p2**2) / (2 * p * p_e), -1, 1))
    got = tracking.knock_on_angle(p, t)
    assert np.allclose(got, expected, rtol=0, atol=1e-9)
    assert got[0] == pytest.approx(np.sqrt(2 * M_E / 0.5), rel=0.01)  # small-angle form
    assert got[-1] < 1e-6  # the largest transfer goes forward


def _measure(n, inefficiency, seed, station_x0=0.03):
    # stations thicker than the default (0.003 X0) for more knock-ons: 10x by default
    return tracking.measure_p_out(
        np.full(n, 160.0),
        np.random.default_rng(seed),
        field_tm=1.4,
        resolution_rel=RES,
        station_x0=station_x0,
        inefficiency=inefficiency,
    )


def test_no_knock_on_mismeasurement_without_a_lost_hit():
    # with every muon hit seen, two hits stand in the electron's station and the fit keeps
    # the muon: no knock-on muon is reconstructed below 80 GeV
    out = _measure(400_000, 0.0, 1)
    knock = out["process"] == 5
    assert knock.sum() > 50
    assert not np.any(knock & (out["p_rec"] <= 80.0) & (out["p_after"] > 150.0))
    # the electron adds exactly one hit, in the station after its origin
    assert out["hits"][knock].max() == 2


def test_knock_on_mismeasurement_rate_matches_the_kink_integral():
    # muon hits lost at a Poisson mean of 1 per station (probability 1 - e^-1): a
    # knock-on with a next station on its side of the magnet (origins 1, 2, 4, 5 of 6;
    # next-station levers 0.6, 1.0, 0.6, 0.3) whose muon hit there is lost is taken by the
    # fit, 1/p_rec = (1/160 + w theta_e(T) cos(phi) / 0.42) (1 + 0.03 xi). Expected,
    # independently: the rate K/2 Z/A t / T^2 (T from 0.5 to 10 GeV, where the muon keeps
    # more than 150 GeV) times P(p_rec <= 80 GeV), integrated over T, phi and the Gaussian
    # xi. Tolerance: 4 Poisson sigma of the expected count plus 5% for the rare
    # single-scattering kinks the test does not integrate.
    n = 4_000_000
    out = _measure(n, 1.0, 2)
    soft = (out["process"] == 5) & (out["p_after"] > 150.0)
    got = int(np.count_nonzero(soft & (out["p_rec"] <= 80.0)))
    k = 0.307075e-3 / 2 * (29.0 / 63.55) * 0.03 * 12.86  # GeV, per station
    kappa = 0.3 * 1.4

    def p_low(t, phi, w):
        theta = float(tracking.knock_on_angle(np.array([160.0]), np.array([t]))[0])
        inv = 1 / 160.0 + w * theta * np.cos(phi) / kappa
        return 0.0 if inv <= 0 else float(stats.norm.sf((1 / 80.0 - inv) / (RES * inv)))

    expected = 0.0
    for w in (0.6, 1.0, 0.6, 0.3):
        inner = integrate.dblquad(
            lambda phi, t, w=w: k / t**2 * p_low(t, phi, w) / np.pi,
            tracking.T_KNOCK_MIN_GEV,
            10.0,
            0.0,
            np.pi,
            epsrel=1e-4,
        )[0]
        expected += n * inner * (1 - np.exp(-1.0))
    assert expected > 200
    assert abs(got - expected) < 4 * np.sqrt(expected) + 0.05 * expected, (got, expected)


def _single_but_one(hits):
    return np.all((hits == 1) | (hits == 2), axis=1) & ((hits == 2).sum(axis=1) <= 1)


def test_would_be_momentum_of_knock_ons_predicts_the_lost_hit_count():
    # p_rec_ko is the fit that takes the electron's hit whether or not the muon's was
    # lost. Every knock-on event whose p_rec_ko is at most 80 GeV (and single-track once
    # the muon's hit beside the electron's is gone) becomes a mismeasured muon with the
    # probability eps that the muon's hit is lost, so eps x their number predicts the muon
    # count the simulation actually mismeasures. 100x thicker stations and eps = 1/6
    # (largest eps (1 - eps)^5) give ~270 expected; tolerance 4 Poisson sigma.
    eps = 1 / 6
    out = _measure(4_000_000, eps, 3, station_x0=0.3)
    kept = out["p_after"] > 80.0
    ko = out["p_rec_ko"]
    cand = kept & (ko > 0) & (ko <= 80.0) & _single_but_one(out["hits"])
    single = np.all(out["hits"] == 1, axis=1)
    direct = kept & (out["process"] == 5) & (out["p_rec"] <= 80.0) & single
    expected = eps * np.count_nonzero(cand)
    got = np.count_nonzero(direct)
    assert expected > 200
    print(f"lost-hit muons {got}, eps x candidates {expected:.1f}")
    assert abs(got - expected) < 4 * np.sqrt(expected), (got, expected)
    # the mismeasured muons are candidates whose fit already took the electron's hit
    assert np.all(cand[direct])
    assert np.array_equal(ko[direct], out["p_rec"][direct])
    # no electron hit, no would-be momentum
    assert np.all(ko[(out["process"] != 5) & single] == 0.0)
    assert np.count_nonzero(ko) > 0


def test_knock_on_electrons_behind_the_magnet_reach_s4_and_v1_vetoes_the_muon():
    # An electron from a station behind MS2 flies on to S4's plane. Toward the bend side it
    # can fire S4 by itself while its 160 GeV muon goes on undeflected, and the paper's V1
    # ("before the HCAL ... to veto undeflected beam muons", Sec. II) must then veto the
    # event. Stations 100x thicker give ~50 such events in 1e6 muons.
    import dataclasses

    from bkg.config import load_config
    from bkg.selection import passes_trigger
    from bkg.sim import beam

    cfg = load_config()
    sp = cfg.detector.spectrometers
    ms2 = dataclasses.replace(sp.ms2, tracker_material_x0=100 * sp.ms2.tracker_material_x0)
    det = dataclasses.replace(cfg.detector, spectrometers=dataclasses.replace(sp, ms2=ms2))
    cfg = cfg.replace(detector=det)
    ev = beam.generate_beam_muons(cfg, np.random.default_rng(5), 1_000_000)
    core = ev["s0"] & ev["s1"] & (ev["p_out_true"] > 150.0)
    ko = ev["process"] == 5
    by_electron = core & ko & ev["s4"]
    assert by_electron.sum() >= 20
    # without an electron such a muon reaches S4 only through its own scattering: 3e-4,
    # against 2.4e-2 with one (measured); ask for a factor 10
    assert ev["s4"][core & ko].mean() > 10 * ev["s4"][core & ~ko].mean()
    assert np.all(ev["v1"][by_electron])
    assert not np.any(passes_trigger(ev, cfg)[by_electron])
    # the electron (T >= 0.5 GeV) showers in HCAL1, which spans S4
    assert np.all(ev["e_hcal1"][by_electron] >= tracking.T_KNOCK_MIN_GEV)
    # only the stations behind the magnet (3 of 6) send electrons on: about half the
    # muons with a knock-on have one (4 Poisson sigma)
    out = _measure(400_000, 0.02, 8, station_x0=0.3)
    n_ko = np.count_nonzero(out["p_after"] < 160.0)
    n_el = np.unique(out["electrons"]["event"]).size
    assert n_ko > 1000
    assert abs(n_el - 0.5 * n_ko) < 4 * np.sqrt(0.25 * n_ko)
    angle = np.hypot(out["electrons"]["tx"], out["electrons"]["ty"])
    assert np.allclose(angle, tracking.knock_on_angle(160.0, out["electrons"]["t_gev"]), rtol=1e-6)
