"""Species the hadron sample cannot populate (issue 23, item 3).

pi- -> mu- nu gives a muon of at least (m_mu/m_pi)^2 = 0.57 of the pion's energy, so in a
sample of beam-energy pions almost none can reach the box; their acceptance is computed
over the decays that can (a mu- below E'_max + E_CAL,max), not bounded by a sample that
holds none of them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from particle import Particle

from bkg.config import load_config
from bkg.sim import hadrons
from bkg.sim.run import run_samples
from bkg.sources import run_fits


@pytest.fixture(scope="module")
def cfg():
    return load_config(None)


def _pion_region_closed_form(e0: float, spread: float, length_m: float, e_max: float) -> float:
    # written out from scratch: BR x P_decay(E) x P(E_mu <= e_max | E), E_mu uniform between
    # the backward and forward two-body muon, integrated over the Gaussian spectrum by
    # Gauss-Hermite (200 nodes; the kink of the clip makes it good to ~1e-4)
    pi = Particle.from_pdgid(-211)
    m, ctau = pi.mass * 1e-3, pi.lifetime * 0.299792458
    m_mu = Particle.from_pdgid(13).mass * 1e-3
    e_star = (m * m + m_mu * m_mu) / (2 * m)
    p_star = (m * m - m_mu * m_mu) / (2 * m)
    x, w = np.polynomial.hermite_e.hermegauss(200)
    e = e0 * (1 + spread * x)
    gamma = e / m
    bg = np.sqrt(gamma**2 - 1)
    lo, hi = gamma * e_star - bg * p_star, gamma * e_star + bg * p_star
    below = np.clip((e_max - lo) / (hi - lo), 0, 1)
    p_decay = 1 - np.exp(-length_m / (bg * ctau))
    return float(0.99988 * np.sum(w * p_decay * below) / np.sqrt(2 * np.pi))


@pytest.mark.parametrize("e_max", [60.0, 95.0, 100.0, 130.0, 1e9])
def test_pion_region_acceptance_matches_a_closed_form(cfg, e_max) -> None:
    # 1% tolerance: the trapezoid over 1601 points and the Gauss-Hermite sum of the check
    # both resolve the clip's kink to a few 1e-4 (relative)
    b = cfg.beam
    expected = _pion_region_closed_form(b.energy_gev, b.momentum_spread_rel, 36.0, e_max)
    got = hadrons.region_acceptance(cfg, -211, e_mu_max_gev=e_max)
    assert got == pytest.approx(expected, rel=0.01, abs=1e-12)
    if e_max == 60.0:  # below (m_mu/m_pi)^2 of the lowest pion: nothing
        assert got == 0.0


@pytest.mark.parametrize("pdg", [-321, 130])
def test_kaon_region_acceptance_matches_the_decay_sampler(cfg, pdg) -> None:
    # K_mu3 by its flat-Dalitz E*_mu density in closed form, against the accept-reject
    # sampler of decay_muons on 3e6 beam kaons; tolerance 4 standard errors of the count
    b = cfg.beam
    rng = np.random.default_rng(11)
    e = b.energy_gev * (1 + b.momentum_spread_rel * rng.standard_normal(3_000_000))
    d = hadrons.decay_muons(pdg, e, rng, length_m=b.decay_length_m)
    k = int(((d["e_mu"] > 0) & (d["e_mu"] <= 100.0)).sum())
    got = hadrons.region_acceptance(cfg, pdg, e_mu_max_gev=100.0)
    assert got * e.size == pytest.approx(k, abs=4 * np.sqrt(k))


def test_forced_decays_follow_the_region_law(cfg) -> None:
    # the forced, region-restricted pions: every one decayed within the decay region to a
    # muon below the region edge, and carries its decay probability as weight
    ev = hadrons.generate_hadrons(cfg, np.random.default_rng(5), 20_000, region=-211)
    edge = hadrons.muon_region_gev(cfg)
    assert np.all(ev["decayed"]) and np.all(ev["e_mu_decay"] > 0)
    assert np.all(ev["e_mu_decay"] <= edge)
    assert np.all((ev["z_decay_m"] >= 0) & (ev["z_decay_m"] <= cfg.beam.decay_length_m))
    # exponential decay point truncated to 36 m of a ~8 km decay length: nearly uniform
    assert float(np.mean(ev["z_decay_m"])) == pytest.approx(18.0, rel=0.02)
    p_dec = hadrons.decay_probability(-211, ev["e_hadron"], cfg.beam.decay_length_m)
    np.testing.assert_allclose(ev["decay_weight"], p_dec)


def test_no_species_bound_exceeds_its_acceptance(cfg, tmp_path) -> None:
    # a small hadron sample (2e4 per species): the species with no passing event get a
    # bound no larger than norm x region acceptance (the old bound, 2.3/n x norm, was
    # 2.3e-12 per MOT for the pi- of the default and the whole upward systematic), and the
    # systematic says what it is made of
    small = dataclasses.replace(cfg.samples, hadron_events=60_000)
    c = dataclasses.replace(cfg, samples=small)
    run_samples(c, out_dir=tmp_path / "s", only=["hadrons"], workers=1)
    est = run_fits(c, samples_dir=tmp_path / "s", out_dir=tmp_path / "f", only=["hadron_decay"])
    e = est["hadron_decay"]
    species = e.inputs["species"]
    assert species["pi-"]["passing"] == 0  # the sample holds none that pass
    for s in species.values():
        if "upper_bound" in s:
            assert s["upper_bound"] <= s["norm_per_mot"] * s["region_acceptance"]
            assert s["upper_bound"] < s["sample_bound_90cl"]
    bounded = [name for name, s in species.items() if "upper_bound" in s]
    made_of = e.inputs["syst_up_made_of"]
    assert all(name in made_of for name in bounded)
    expected = np.sqrt(sum(species[name]["upper_bound"] ** 2 for name in bounded))
    assert e.syst_up == pytest.approx(expected, rel=1e-12)
