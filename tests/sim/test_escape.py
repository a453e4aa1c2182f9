"""Non-hermeticity escape paths (bkg.sim.escape): closed forms, weights, path switches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

from bkg.config import from_dict, load_config
from bkg.sim import escape


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def test_lateral_profile_matches_its_closed_form():
    # exp(-|u|/s)/(2s) inside [lo, hi]: the integral by quadrature, tolerance 1e-9
    s = 5.6
    for c, lo, hi in (
        (0.0, -30.0, 30.0),
        (25.0, -30.0, 30.0),
        (45.0, -40.0, 80.0),
        (-50.0, -40.0, 80.0),
    ):
        expected = integrate.quad(
            lambda u, c=c: np.exp(-abs(u - c) / s) / (2 * s), lo, hi, points=[c]
        )[0]
        got = float(escape.lateral_inside(np.array([c]), lo, hi, s)[0])
        assert got == pytest.approx(expected, abs=1e-9)


def test_back_leakage_of_a_neutron_follows_the_shower_profile(cfg):
    # A 60 GeV neutron straight down the axis (through the VHCAL hole, onto the HCAL) from
    # the ECAL's end: the mean fraction leaving the HCAL's back is, independently,
    # int_0^inf e^-t0 (1 - P(a, T - t0)) dt0 with T = dead + 15 lambda_I and
    # a = 1 + 0.25 ln 60; the lateral containment at the HCAL (beam axis 40 cm from its
    # edge, s = 5.6 cm) multiplies it by 1 - 0.5 e^(-40/5.6) (the other edges farther).
    # 4e6 draws: the integrand is dominated by t0 > 10 (weight e^-10): tolerance 5 sigma
    # of the Monte Carlo mean.
    ec = cfg.detector.escape
    n = 4_000_000
    rng = np.random.default_rng(11)
    e = np.full(n, 60.0)
    zero = np.zeros(n)
    t0 = rng.exponential(1.0, n)
    out = escape.neutral_hadron(
        cfg, ec, rng, e_h=e, rem_ecal_lambda=zero, x=zero, y=zero, tx=zero, ty=zero, t0=t0
    )
    back = out["lost"][:, escape.PATHS["hcal_back"] - 1] / 60.0
    a = 1 + 0.25 * np.log(60.0)
    depth = ec.dead_material_lambda + 15.0
    expected = integrate.quad(
        lambda t: np.exp(-t) * (1 - special.gammainc(a, max(depth - t, 0.0))),
        0,
        60,
        points=[depth],
        limit=200,
    )[0]
    expected *= escape.lateral_inside(np.array([0.0]), -40.0, 80.0, escape.LAMBDA_FE_CM / 3)[0]
    expected *= escape.lateral_inside(np.array([0.0]), -30.0, 30.0, escape.LAMBDA_FE_CM / 3)[0]
    assert expected > 1e-7
    sigma = back.std() / np.sqrt(n)
    assert abs(back.mean() - expected) < 5 * sigma + 1e-3 * expected, (back.mean(), expected, sigma)
    # energy is conserved: deposits + losses = E
    total = (
        out["e_ecal"] / escape.ECAL_HAD_VISIBLE + out["e_vhcal"] + out["e_hcal1"] + out["e_hcal2"]
    )
    assert np.allclose(total + out["lost"].sum(axis=1), 60.0, rtol=1e-9)


def test_decay_probability_is_the_decay_law():
    # P = BR (1 - exp(-L m / (E c tau))): a 50 GeV pi+ flying 1500 cm, a 20 GeV K+ 30 cm
    e = np.array([50.0, 20.0])
    species = np.array([2, 3])
    rem = np.array([0.0, 10.0])
    t0 = np.array([5.0, 30.0 / escape.LAMBDA_PB_CM])
    got = escape.decay_probability(e, species, rem, t0, 1500.0)
    expected = [
        0.9999 * (1 - np.exp(-1500 * 0.13957 / (50 * 780.45))),
        0.6356 * (1 - np.exp(-30 * 0.49368 / (20 * 371.2))),
    ]
    assert np.allclose(got, expected, rtol=1e-9)


def test_biased_and_unbiased_runs_agree_where_both_have_events(cfg):
    # the same configuration forced with and without the biasing (species, z, p_T, first
    # interaction, forced decays): per MOT, the probability of each escape path with more
    # than 1 GeV escaping. Compared where the unbiased run has >= 40 events, tolerance 4
    # combined sigma. em_gap (5) is left out: the biased run only draws events with an
    # escaping leading hadron, whose loss outranks an EM leak as the event's path.
    n = 60_000
    runs = {}
    for biased, seed in ((False, 6), (True, 5)):
        f = escape.forced_sample(cfg, np.random.default_rng(seed), n, biased=biased)
        runs[biased] = f
    compared = 0
    for code in (1, 2, 3, 4, 6):
        vals = []
        for biased in (False, True):
            f = runs[biased]
            m = (f["escape"] == code) & (f["e_escape"] > 1.0)
            w = f["weight"][m]
            vals.append((m.sum(), w.sum() / n, np.sqrt((w * w).sum()) / n))
        (k0, a, sa), (k1, b, sb) = vals
        if k0 < 40 or k1 < 40:
            continue
        compared += 1
        assert abs(a - b) < 4 * np.hypot(sa, sb), (code, a, sa, b, sb)
    assert compared >= 3


def _direct(paths: dict[str, bool], n: int = 40_000):
    cfg = from_dict({"detector": {"escape": {"paths": paths, "forced_events": n}}})
    return escape.direct_estimate(cfg)


def test_switching_a_path_off_removes_its_contribution():
    # same seed and draws: with a path off its region-D level is 0, every other path keeps
    # at least what it had (its events are untouched; events of the switched path whose
    # other losses still reach region D join them), and the total falls.
    on = _direct({})
    for path in ("shower_muon", "hcal_back"):
        before = on["region_d"]["by_path"][path]["level"]
        assert before > 0, path
        off = _direct({path: False})
        assert off["region_d"]["by_path"][path]["level"] == 0.0
        assert off["selected"]["by_path"][path]["level"] == 0.0
        for other in escape.PATHS:
            if other != path:
                assert (
                    off["region_d"]["by_path"][other]["level"]
                    >= 0.999 * on["region_d"]["by_path"][other]["level"]
                )
        drop = on["region_d"]["total"]["level"] - off["region_d"]["total"]["level"]
        assert drop > 0.5 * before, (path, drop, before)


def test_beam_sample_records_the_escape_path(cfg):
    # the beam sample carries the path code, consistent with the escaped energy
    from bkg.sim import beam

    out = beam.generate_beam_muons(cfg, np.random.default_rng(3), 300_000)
    code, e = out["escape"], out["e_escape"]
    assert set(np.unique(code)) <= set(range(7))
    assert np.all(e[code == 0] < escape.E_ESCAPE_MIN_GEV)
    assert np.all(e[code > 0] >= escape.E_ESCAPE_MIN_GEV)
    # photonuclear interactions make the hadronic paths, nothing else does
    had = np.isin(code, (1, 2, 3, 6))
    assert had.any() and np.mean(out["process"][had] == 3) > 0.95
