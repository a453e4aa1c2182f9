"""The fast paths of the simulation draw the same laws as the straightforward code they replace.

Each test states the exact law (or the exact function) it compares with and its tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bkg import ntuple
from bkg.config import load_config
from bkg.physics import energyloss
from bkg.sim import beam, ecal, run, run_samples
from bkg.sim.draws import normal32


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def test_normal32_is_a_standard_normal():
    # Box-Muller: N(0, 1) exactly. 4e6 variates: mean and variance within 5 standard
    # errors, tails beyond 2, 3 and 4 sigma within 5 binomial sigmas, KS p > 1e-4.
    x = normal32(np.random.default_rng(1), 4_000_001).astype(float)
    assert x.size == 4_000_001
    n = x.size
    assert abs(x.mean()) < 5 / np.sqrt(n)
    assert abs(x.var() - 1.0) < 5 * np.sqrt(2.0 / n)
    for s in (2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(s)
        assert abs(np.mean(np.abs(x) > s) - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert stats.kstest(x[:500_000], "norm").pvalue > 1e-4
    assert normal32(np.random.default_rng(2), 0).size == 0


@pytest.mark.parametrize("process", list(ecal.PROCESS))
@pytest.mark.parametrize("v_cut", [ecal.V_CUT, 0.0123, 0.37])
def test_sample_v_is_the_interpolated_inverse_cdf(process, v_cut):
    # the guide table must give exactly np.interp's piecewise-linear inverse (bit for bit)
    cdf = ecal._inverse_table(process, v_cut)
    v = ecal.sample_v(process, 1_000_000, np.random.default_rng(7), v_cut=v_cut)
    target = np.random.default_rng(7).random(1_000_000) * cdf.n_cut
    np.testing.assert_array_equal(v, np.exp(np.interp(target, cdf.n_grid, cdf.log_v)))
    assert v.min() >= v_cut * (1 - 1e-12)


def test_rate_tables_are_the_cross_section_integrals():
    # _rate_table integrates dsigma/dv once over the v grid, cell by cell, and sums from the
    # top; it must equal N(v > v_i) of energyloss.sigma_v_above_cm2_g, which integrates each
    # v_i's range on its own (48 Gauss-Legendre nodes). Against 32 nodes per cell both are
    # within 6e-5 wherever N(v > v_i) exceeds 1e-7 of N(v > 1e-5): rtol 2e-4 allows both;
    # atol 1e-7 of the total covers the far end of the spectrum.
    for p in ecal.PROCESS:
        for node in (None, 0, 7, 15):
            above, grid, _ = ecal._rate_table(p, node)
            e = ecal._E_TABLE_GEV if node is None else float(ecal._E_NODES[node])
            direct = energyloss.sigma_v_above_cm2_g(e, grid, process=ecal._PHYSICS_NAME[p])
            np.testing.assert_allclose(above, direct, rtol=2e-4, atol=1e-7 * direct[0])


def test_knock_on_tables_follow_the_closed_forms():
    # the continuous loss subtracts the mean knock-on loss above the cut interpolated in
    # ln E (step 0.021, a node on the cut's kink at 100 GeV): within 2e-5 of the Bethe loss
    # a(E) from 0.2 GeV to 1 TeV (measured 1.2e-5, at the threshold near 0.2 GeV). The
    # thinning of _knock_ons needs its bound, 1% above the larger node of a cell, to bound
    # the closed-form rate inside the cell (exact thinning).
    e = np.geomspace(0.2, 1000.0, 200_001)
    rate, loss = ecal._knock_on_tables()
    i, f = ecal._knock_on_cell(np.log(e))
    err = np.abs(ecal._on_cells(loss, i, f) - ecal._knock_on_mean_loss(e))
    assert np.max(err / ecal.dedx_ionisation_gev_cm2_g(e)) < 2e-5
    bound = ecal._KO_RATE_MARGIN * np.maximum(rate[i], rate[i + 1])
    assert np.all(ecal._knock_on_rate(e) <= bound)


def test_catastrophic_rate_with_a_per_muon_depth():
    # one Poisson process thinned by depth: P(at least one catastrophic interaction) for
    # a depth d is 1 - exp(-Lambda d), Lambda the sum of the three radiative rates and the
    # knock-on rate above its cut (closed form, bkg.physics.energyloss) at 160 GeV. With
    # d uniform in [0, D] the mean is 1 - (1 - exp(-Lambda D)) / (Lambda D); 1e6 muons,
    # 5 binomial sigmas.
    n = 1_000_000
    depth_max = 40 * ecal.LEAD_X0_G_CM2
    rng = np.random.default_rng(3)
    depth = rng.random(n) * depth_max
    out = ecal.pass_ecal(np.full(n, 160.0), rng, depth_g_cm2=depth)
    lam = sum(ecal.lambda_catastrophic_cm2_g(p, 160.0) for p in ecal.PROCESS)
    lam += float(energyloss.knock_on_above_cm2_g(160.0, ecal.knock_on_t_cut_gev(160.0)))
    expected = 1 - (1 - np.exp(-lam * depth_max)) / (lam * depth_max)
    got = np.mean(out["process"] > 0)
    assert got == pytest.approx(expected, abs=5 * np.sqrt(expected * (1 - expected) / n))
    # deeper muons interact more: the rate in the last fifth vs the first fifth
    deep, shallow = depth > 0.8 * depth_max, depth < 0.2 * depth_max
    assert np.mean(out["process"][deep] > 0) > 3 * np.mean(out["process"][shallow] > 0)


def test_beam_chunk_is_a_function_of_seed_and_size(cfg):
    # blocks are drawn one after the other from the chunk's generator: same seed and size,
    # same arrays, whatever the block size; every branch has its schema dtype
    n = beam.BLOCK + 1234
    a = run.generate_chunk(cfg, "beam", (0, 5), n)
    b = run.generate_chunk(cfg, "beam", (0, 5), n)
    for name, branch in ntuple.SCHEMAS["beam"].items():
        assert a[name].dtype == np.dtype(branch.dtype)
        assert a[name].shape == (n,)
        np.testing.assert_array_equal(a[name], b[name])
    c = run.generate_chunk(cfg, "beam", (0, 6), n)
    assert not np.array_equal(a["p_in_true"], c["p_in_true"])


def test_hadron_chunk_in_blocks_keeps_its_schema(cfg):
    n = beam.BLOCK + 10
    h = run.generate_chunk(cfg, "hadrons", (1, 0), n)
    for name, branch in ntuple.SCHEMAS["hadrons"].items():
        assert h[name].dtype == np.dtype(branch.dtype) and h[name].shape == (n,)
    # equal thirds of the three species (5 binomial sigmas)
    for pdg in (-211, -321, 130):
        assert np.mean(h["pdg"] == pdg) == pytest.approx(1 / 3, abs=5 * np.sqrt(2 / 9 / n))


def test_stage_marker_uses_the_workers_hashes(cfg, tmp_path):
    # `bkg samples` records the MANIFEST's sha256 in the stage marker instead of re-reading
    # the files: they must be the files' true hashes, so the folder counts as fresh
    from bkg import cache
    from bkg.report.pipeline import mark_samples_done, samples_key

    small = cfg.replace(
        samples=cfg.samples.__class__(**{**cfg.samples.__dict__, "chunk_size": 10_000})
    )
    manifest = run_samples(small, out_dir=tmp_path, only=["beam"], n_mot=20_000, workers=1)
    mark_samples_done(small, tmp_path, manifest)
    recorded = cache.recorded_outputs(tmp_path)
    for entry in manifest["files"]:
        assert recorded[entry["file"]] == ntuple.sha256_file(tmp_path / entry["file"])
    assert recorded["MANIFEST.json"] == ntuple.sha256_file(tmp_path / "MANIFEST.json")
    assert cache.is_fresh(tmp_path, samples_key(small))


def _warm_without_integrating(tables):
    """In a spawned process: take ``tables``, refuse to integrate any, build every table."""
    from bkg.sim import ecal

    def refuse(*args, **kwargs):
        raise AssertionError("a rate table was integrated again")

    ecal.adopt_rate_tables(tables)
    ecal._above_on_grid = refuse
    ecal.warm_tables()
    return ecal._pass_constants(0.5, 40 * ecal.LEAD_X0_G_CM2), ecal._soft_b_nodes().tolist()


def test_a_spawned_process_takes_the_rate_tables_instead_of_integrating_them():
    # the report's side processes get the samples stage's tables (~0.9 s of CPU each)
    import multiprocessing

    ecal.warm_tables()
    tables = ecal.rate_tables()
    assert len(tables) == len(ecal.PROCESS) * (ecal._E_NODES.size + 1)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pool.apply(_warm_without_integrating, (tables,))
    here = ecal._pass_constants(0.5, 40 * ecal.LEAD_X0_G_CM2), ecal._soft_b_nodes().tolist()
    assert there == here


def test_signal_density_takes_the_tabulated_chi():
    # The signal sampler's density uses ChiTable (cubic Hermite antiderivatives) instead of
    # the 96-node quadrature per point. Where the density matters (above 1e-6 of its peak)
    # it equals the direct quadrature to the table's 1e-6 (2e-6 allowed), so that an
    # accept-reject decision flips for ~1e-6 of the draws; towards the kinematic edge,
    # tmin -> tmax, chi = (F(tmin) - F(tmax)) - tmin (H(tmin) - H(tmax)) loses digits, but
    # there the density is below 1e-7 of its peak and the absolute error below 1e-11.
    from bkg.physics.crosssection import d2sigma_dx_dtheta_pb
    from bkg.sim.signal import _pdf

    for e0, m in [(160.0, 0.01), (160.0, 1.0), (100.0, 0.1)]:
        x = np.linspace(m / e0 * 1.01, 0.99, 60)[:, None]
        th = np.geomspace(1e-7, 0.3, 60)[None, :]
        ref = d2sigma_dx_dtheta_pb(x, th, e0, m)
        got = _pdf(x, th, e0, m)
        peak = ref.max()
        big = ref > 1e-6 * peak
        assert big.sum() > 1000
        np.testing.assert_allclose(got[big], ref[big], rtol=2e-6)
        assert np.max(np.abs(got - ref)[~big]) <= 1e-11 * peak


def test_rate_tables_integrated_in_a_fork_are_those_made_here():
    # the samples stage integrates most pair-production rate tables in a forked process
    # while it imports the simulation; what it takes back (the first half of them here) is
    # bit-identical to what this process integrates
    import subprocess
    import sys

    code = """
import numpy as np
from bkg import pipes
from bkg.sim import ecal
assert pipes.fork_is_safe()
take = ecal.start_rate_tables("pair", share=0.5)
take()
got = dict(ecal._RATE_TABLES)
assert 1 <= len(got) < 17, len(got)
ecal._RATE_TABLES.clear()
for key, (above, grid, b) in got.items():
    ref = ecal._rate_table(*key)
    assert np.array_equal(above, ref[0]) and np.array_equal(grid, ref[1]) and b == ref[2], key
print("OK", len(got))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["OK", "8"]
