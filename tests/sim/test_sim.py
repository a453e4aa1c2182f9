"""Acceptance tests of the fast simulation (issue 3). Each states its source and tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bkg import ntuple, selection
from bkg.config import load_config
from bkg.sim import (
    beam,
    check_samples,
    detector,
    ecal,
    hadrons,
    run_samples,
    signal_efficiency,
    trigger_efficiency,
)
from bkg.sim.contract_doc import render_samples_readme
from bkg.sim.run import generate_chunk


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def beam_chunk(cfg):
    return beam.generate_beam_muons(cfg, np.random.default_rng(11), 200_000)


def test_k_to_mu_probability():
    # paper Sec. III.C: P(K- -> mu- nu within 36 m) ~= 0.018, and 0.011 with E_mu < 100 GeV.
    # Independent estimate: (1 - exp(-36 m / (beta gamma c tau))) x Br(K -> mu nu) = 0.0188 and,
    # the two-body spectrum being flat in [(m_mu/m_K)^2 E, E], x (100 - 7.3)/(160 - 7.3) = 0.0114.
    # Tolerance 5% (the issue's); 1e6 kaons give 0.7% statistical precision.
    rng = np.random.default_rng(1)
    d = hadrons.decay_muons(-321, np.full(1_000_000, 160.0), rng, length_m=36.0)
    mu2 = (d["channel"] == 1) & (d["e_mu"] > 0)
    assert mu2.mean() == pytest.approx(0.018, rel=0.05)
    assert (mu2 & (d["e_mu"] < 100.0)).mean() == pytest.approx(0.011, rel=0.05)
    # K_mu3 muons are there too, and never above the two-body energy
    mu3 = d["channel"] == 2
    assert 0.02 < mu3.sum() / max(mu2.sum(), 1) < 0.1  # Br 3.35% / 63.56% = 0.053
    assert d["e_mu"][mu3].max() < 160.0


def test_kmu3_pion_conserves_four_momentum_and_is_seen():
    # K- -> pi0 mu- nu at 160 GeV: with the muon at azimuth 0 and the pion at its relative
    # azimuth, the missing four-momentum p_K - p_mu - p_pi is the neutrino's, massless:
    # |m_nu^2| below 1e-6 GeV^2 (float64 angles; m_K^2 = 0.24 GeV^2). Independent of how
    # the code builds the pion: only energies and lab angles enter.
    from bkg.sim.hadrons import M_MU, M_PI0, hadron_properties

    m_k = hadron_properties(-321)[0]
    d = hadrons.decay_muons(-321, np.full(400_000, 160.0), np.random.default_rng(5), length_m=36.0)
    k = np.flatnonzero(d["channel"] == 2)
    assert k.size > 200
    e_mu, th_mu = d["e_mu"][k], d["theta"][k]
    e_pi, th_pi, dphi = d["pi_e"][k], d["pi_theta"][k], d["pi_dphi"][k]
    p_mu, p_pi = np.sqrt(e_mu**2 - M_MU**2), np.sqrt(e_pi**2 - M_PI0**2)
    p_k = np.sqrt(160.0**2 - m_k**2)
    e_nu = 160.0 - e_mu - e_pi
    px = -p_mu * np.sin(th_mu) - p_pi * np.sin(th_pi) * np.cos(dphi)
    py = -p_pi * np.sin(th_pi) * np.sin(dphi)
    pz = p_k - p_mu * np.cos(th_mu) - p_pi * np.cos(th_pi)
    assert np.all(e_nu >= 0)
    assert np.max(np.abs(e_nu**2 - px**2 - py**2 - pz**2)) < 1e-6
    # in the detector the pi0 showers in the ECAL: K_mu3 decays of the last 5 m (where the
    # pion lands on the ECAL's face) deposit the pion's energy there, so E_CAL is far
    # above a muon's 0.5 GeV (median above 10 GeV)
    cfg = load_config()
    ev = hadrons.generate_hadrons(cfg, np.random.default_rng(6), 900_000)
    late = (ev["pdg"] == -321) & (ev["decay_channel"] == 2) & (ev["z_decay_m"] > 31.0)
    assert late.sum() > 30
    assert np.median(ev["e_ecal"][late]) > 10.0


def test_a_muon_outside_the_vhcal_hole_is_vetoed():
    # a muon crossing 5 lambda_I of copper loses 0.97 GeV; with the HCAL's visible-to-lost
    # ratio (2.3 GeV visible of 15 lambda_I iron) it shows 0.77 GeV, by hand from the PDG
    # minimum ionisation (Cu 1.403, Fe 1.451 MeV cm2/g) and lambda_I (137.3, 132.1 g/cm2):
    # 5 x 2.3/15 x (137.3 x 1.403) / (132.1 x 1.451) = 0.7705 GeV (tolerance 2%: the code
    # takes the loss at 150 GeV, where the relativistic rise differs by ~1%). Cut (iii)
    # at 0.5 GeV then vetoes all but the low tail of the deposit: E = MIP (1 + 0.15
    # (M - 1.27)) with M = -2 ln|g|, g normal, is below 0.5 GeV when |g| > exp(-c/2),
    # c = 1.27 - (1 - 0.5/MIP)/0.15: 8.2% (4 sigma of 1e5 draws: 0.0035).
    from bkg.sim import calorimeters

    mip = calorimeters.vhcal_mip_gev(5.0)
    assert mip == pytest.approx(0.7705, rel=0.02)
    x = np.full(100_000, 10.0)  # outside the 6 x 6 cm hole, inside the 50 x 50 cm module
    e = calorimeters.vhcal_response(
        x, np.zeros_like(x), np.random.default_rng(7), hole_cm=(6.0, 6.0), size_cm=(50.0, 50.0),
        mip_gev=mip,
    )  # fmt: skip
    from scipy import stats

    c = 1.27 - (1 - 0.5 / mip) / 0.15
    expected = 1 - 2 * stats.norm.sf(np.exp(-c / 2))
    assert expected > 0.9
    assert (e >= 0.5).mean() == pytest.approx(expected, abs=0.0035)


def test_pion_decay_has_no_soft_muon():
    # kinematics: E_mu >= (m_mu/m_pi)^2 * 160 GeV = 91.5 GeV for pi- -> mu- nu
    d = hadrons.decay_muons(
        -211, np.full(2_000_000, 160.0), np.random.default_rng(2), length_m=36.0
    )
    e = d["e_mu"][d["e_mu"] > 0]
    assert e.size > 1000
    assert e.min() >= 80.0
    assert e.min() == pytest.approx(91.5, abs=0.5)


def test_beam_fractions(cfg, beam_chunk):
    # paper Sec. III.A: halo ~20% of the intensity; after S0+S1 78% of the full intensity with E >= 100 GeV (+-3%)
    ev = beam_chunk
    assert ev["halo"].mean() == pytest.approx(0.20, abs=0.01)
    kept = ev["s0"] & ev["s1"] & (ev["p_in_true"] >= 100)
    assert kept.mean() == pytest.approx(0.78, abs=0.03)


def test_mip_deposits(cfg, beam_chunk):
    # paper Sec. III.C: E_ECAL ~ 0.5 GeV, E_HCAL ~ 2.3 GeV for a MIP muon (median of the core, +-20%)
    ev = beam_chunk
    core = ~ev["halo"] & (ev["process"] == 0)
    assert np.median(ev["e_ecal"][core]) == pytest.approx(0.5, rel=0.2)
    e_h = ev["e_hcal1"] + ev["e_hcal2"]
    assert np.median(e_h[core]) == pytest.approx(2.3, rel=0.2)


def test_mean_energy_loss(cfg):
    # -dE/dX = a(E) + b(E) E; mean loss in 40 X0 of lead within 10%
    e0 = np.full(400_000, 160.0)
    out = ecal.pass_ecal(e0, np.random.default_rng(3), depth_g_cm2=detector.ECAL_DEPTH_G_CM2)
    sim = float(np.mean(e0 - out["e_out"]))
    try:
        from bkg.physics import energyloss

        a_fn, b_fn = energyloss.dedx_ionisation_gev_cm2_g, energyloss.b_radiative_cm2_g
    except ImportError:
        a_fn, b_fn = ecal.dedx_ionisation_gev_cm2_g, ecal.b_radiative_cm2_g
    e, steps = 160.0, 200
    dx = detector.ECAL_DEPTH_G_CM2 / steps
    for _ in range(steps):
        e -= (float(a_fn(e)) + float(b_fn(e)) * e) * dx
    assert sim == pytest.approx(160.0 - e, rel=0.10)
    # b(160 GeV) for lead ~ 14e-6 cm2/g (Groom et al. 2001)
    assert float(ecal.b_radiative_cm2_g(160.0)) == pytest.approx(14e-6, rel=0.05)


def test_trigger_rate(cfg, beam_chunk):
    # paper Sec. V: the trigger keeps the primary beam below 0.1%; 2e5 muons -> ~80
    # triggers (11% stat), so "below 1e-3 and not negligible" is a 5-sigma test either way.
    rate = selection.passes_trigger(beam_chunk, cfg).mean()
    assert 1e-4 < rate < 1e-3


def test_samples_run_and_signal_efficiency(cfg, tmp_path):
    # paper Fig. 2: signal efficiency rises with mass (up to ~0.3 GeV) and lies in ~5-40% (loose band)
    small = cfg.replace(
        samples=cfg.samples.__class__(
            **{
                **cfg.samples.__dict__,
                "chunk_size": 20_000,
                "hadron_events": 20_000,
                "leading_hadron_events": 5_000,
                "dimuon_events": 5_000,
                "signal_events_per_mass": 10_000,
            }
        )
    )
    manifest = run_samples(small, out_dir=tmp_path, n_mot=40_000, workers=1)
    # one file per chunk: 2 beam chunks of 20k, one file for each other sample, one per mass
    kinds = [f["sample"] for f in manifest["files"]]
    assert kinds == ["beam", "beam", "hadrons", "leading_hadrons", "dimuons"] + ["signal"] * len(
        small.samples.signal_masses_gev
    )
    for f in manifest["files"]:
        assert f["sha256"] == ntuple.sha256_file(tmp_path / f["file"])
        assert f["config_hash"] == small.hash
    assert check_samples(sorted(tmp_path.glob("*.root"))) == []
    # paper Fig. 2: the trigger efficiency of all signal events is lowest at small masses and
    # lies in ~15-35%. The default S4 (inner edge at 10 cm, README "S4 position") gives
    # 0.09 at 10 MeV: the price of the paper's Table I knock-on level, which an edge close
    # enough for 15% multiplies by 30 (the claims table reports the disagreement). With
    # 1e4 events per mass (0.3% precision at 0.09) we ask for 8-40%. The upper end is also
    # test_signal_trigger_efficiency_plateau.
    _, trig, trig_err = trigger_efficiency(tmp_path, small)
    assert np.all((trig > 0.08) & (trig < 0.40))
    assert trig[0] + 3 * trig_err[0] < trig[1:].min()
    # the efficiency that multiplies the x >= 1/2 yield is conditional on the true box:
    # larger than the trigger efficiency where much of the spectrum is outside the box
    _, eff, err = signal_efficiency(tmp_path, small)
    # (after all cuts; 1 GeV, where most muons are softer than S4's ~27 GeV edge, is ~0.13)
    assert np.all((eff > 0.10) & (eff < 0.8))
    assert eff[0] > trig[0] + 3 * (err[0] + trig_err[0])


def test_signal_trigger_efficiency_plateau(cfg):
    # paper Fig. 2 / Sec. V: at most 35% over 10 MeV - 1 GeV. 1e4 events per mass (0.5%
    # precision); 0.40 leaves 5 points for the difference of the fast simulation's S4
    # acceptance (0.36 at 300 MeV) from GEANT4
    n = 10_000
    effs = []
    for i, m in enumerate(cfg.samples.signal_masses_gev):
        chunk = generate_chunk(cfg, "signal", (4, i, 0), n, m)
        effs.append(selection.passes_trigger(chunk, cfg).mean())
    assert max(effs) <= 0.40


def _arrays(folder: Path, sample: str) -> dict[str, np.ndarray]:
    """Every branch of a sample over all its chunk files, concatenated."""
    paths = ntuple.sample_paths(folder, sample)
    chunks = list(ntuple.iterate(paths, sample, list(ntuple.SCHEMAS[sample]), step_size=10**8))
    return {k: np.concatenate([np.atleast_1d(c[k]) for c in chunks]) for k in chunks[0]}


def test_workers_reproducible(cfg, tmp_path):
    # issue 7: identical arrays for 1 and 2 workers with the same seed; different seeds differ
    small = cfg.replace(
        samples=cfg.samples.__class__(**{**cfg.samples.__dict__, "chunk_size": 10_000})
    )
    run_samples(small, out_dir=tmp_path / "w1", only=["beam"], n_mot=30_000, workers=1)
    run_samples(small, out_dir=tmp_path / "w2", only=["beam"], n_mot=30_000, workers=2)
    a = _arrays(tmp_path / "w1", "beam")
    b = _arrays(tmp_path / "w2", "beam")
    for k in a:
        if k != "_dropped":
            np.testing.assert_array_equal(a[k], b[k])
    other = small.replace(seed=small.seed + 1)
    run_samples(other, out_dir=tmp_path / "s2", only=["beam"], n_mot=30_000, workers=1)
    c = _arrays(tmp_path / "s2", "beam")
    assert not np.array_equal(a["p_in_true"], c["p_in_true"])


def test_readme_matches_schemas():
    readme = Path(__file__).resolve().parents[2] / "samples" / "README.md"
    assert readme.read_text() == render_samples_readme()


def test_figures(cfg, tmp_path):
    from bkg.sim import figures

    run_samples(cfg, out_dir=tmp_path / "s", only=["beam"], n_mot=20_000, workers=1)
    hists = figures.beam_histograms(tmp_path / "s", cfg, n=15_000)
    # the sample's first 15k muons, all of them in the momentum histogram (0-200 GeV),
    # fewer after the trigger
    assert hists.energy_all.sum() == 15_000
    assert hists.energy_triggered.sum() < 15_000
    fig = figures.fig3_beam(hists, tmp_path)
    assert (
        fig is not None
        and (tmp_path / "fig3_beam.png").exists()
        and (tmp_path / "fig3_beam.pdf").exists()
    )
    curves = figures.fig2_curves(cfg, masses_gev=np.array([0.01, 0.3]), n_per_mass=500)
    figures.fig2_trigger_efficiency(cfg, tmp_path, curves=curves)
    assert (tmp_path / "fig2_trigger_efficiency.pdf").exists()
    plane = figures.hermeticity_plane(tmp_path / "s", cfg)
    figures.fig5_hermeticity_plane(plane, cfg, tmp_path)
    assert (tmp_path / "fig5_hermeticity_plane.png").exists()
    # the plane's counts (boost-histogram) are numpy's histogram of the same events
    from bkg import ntuple, selection

    branches = ["p_out_rec", *selection.E_CAL_BRANCHES]
    chunks = list(ntuple.iterate(ntuple.sample_paths(tmp_path / "s", "beam"), "beam", branches))
    ev = {k: np.concatenate([c[k] for c in chunks]) for k in branches}
    edges = np.linspace(0, 240, 121)
    counts = np.histogram2d(ev["p_out_rec"], selection.e_cal(ev), bins=[edges, edges])[0]
    assert counts.sum() > 19_000 and np.array_equal(plane.counts, counts)
    assert np.array_equal(plane.e_mu_edges_gev, edges)


def test_lower_beam_energy_triggers_more_at_small_mass(cfg):
    # paper Fig. 2: at 100 GeV the scattered muon is deflected more, so the trigger
    # efficiency at small masses is higher than at 160 GeV. 4000 events per point:
    # binomial errors ~0.007, the paper's difference is ~0.1.
    from bkg.sim.figures import trigger_efficiency_curve

    m = np.array([0.01, 0.03])
    e160 = trigger_efficiency_curve(cfg, m, 160.0, n_per_mass=4000)
    e100 = trigger_efficiency_curve(cfg, m, 100.0, n_per_mass=4000)
    assert np.all(e100 > e160 + 0.05)
