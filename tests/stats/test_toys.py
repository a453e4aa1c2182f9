"""Vectorised toys against pyhf's ToyCalculator on the same model."""

from __future__ import annotations

import numpy as np
import pytest

from bkg.stats.model import model_spec, numpy_backend
from bkg.stats.toys import fit, one_bin_model, qmu_tilde, toy_cls
from tests.stats.conftest import one_source


def _pyhf_qmu_tilde(pyhf, model, mu, counts, aux):
    """pyhf's own qmu-tilde (scipy fits) for each count with the auxiliary data aux."""
    cfg = model.config
    return [
        float(
            pyhf.infer.test_statistics.qmu_tilde(
                mu,
                [k, *aux],
                model,
                cfg.suggested_init(),
                cfg.suggested_bounds(),
                cfg.suggested_fixed(),
            )
        )
        for k in counts
    ]


def _spec(b=2.0, *, table=None):
    """The one-bin workspace of one background of b events (30% syst, 10% stat), or of table."""
    return model_spec(
        table if table is not None else one_source(b, syst=0.3, stat=0.1),
        n_mot=1.0,
        signal_events=[1.0],
        mot_uncertainty=0.01,
        signal_efficiency_uncertainty=0.1,
        poi_upper=50.0,
    )


def test_normsys_interpolation_is_pyhf_code4():
    # the toys' normsys factor equals pyhf's code-4 interpolator (pyhf's default) inside and
    # outside |theta| < 1, for symmetric, one-sided and strongly asymmetric modifiers
    # (seen: 3e-15 relative; asserted 1e-12), and the Newton fit's first and second
    # derivatives of log f equal central differences (h = 1e-6; asserted 1e-7 relative)
    from pyhf.interpolators import code4

    from bkg.stats.toys import _interp, _log_f, code4_coefficients

    hi = np.array([1.3, 1.0, 7.4, 1.1, 1.01])
    lo = np.array([0.7, 0.0413, 1.0, 0.9, 0.99])
    poly = code4_coefficients(hi, lo)
    alphas = np.linspace(-2.0, 2.0, 41)
    with numpy_backend() as pyhf:
        for i in range(len(hi)):
            ref = code4([[[[lo[i]], [1.0], [hi[i]]]]])(pyhf.tensorlib.astensor([alphas]))
            ours = np.exp(_log_f(alphas[:, None], hi[i : i + 1], lo[i : i + 1], poly[i : i + 1]))
            np.testing.assert_allclose(ours.ravel(), np.ravel(ref), rtol=1e-12)
    theta = np.random.default_rng(0).uniform(-2.5, 2.5, (400, len(hi)))
    h = 1e-6
    logf, d1, d2 = _interp(theta, hi, lo, poly)
    up, d1_up, _ = _interp(theta + h, hi, lo, poly)
    down, d1_down, _ = _interp(theta - h, hi, lo, poly)
    np.testing.assert_array_equal(logf, _log_f(theta, hi, lo, poly))
    np.testing.assert_allclose((up - down) / (2 * h), d1, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose((d1_up - d1_down) / (2 * h), d2, rtol=1e-7, atol=1e-7)


def test_qmu_tilde_matches_pyhf_fit():
    # our profiled test statistic vs pyhf's qmu_tilde (scipy MLE fits) on the same model
    # (normsys code 4, pyhf's default): seen to agree to 7.5e-8; asserted to 2e-6, a
    # margin over the precision of pyhf's SLSQP fits (~5e-7, next test)
    spec = _spec()
    m = one_bin_model(spec)
    n = np.array([0.0, 1.0, 2.0, 5.0])
    with numpy_backend() as pyhf:
        model = pyhf.Workspace(spec).model()
        aux = np.array(model.config.auxdata)
        ours = qmu_tilde(m, 3.0, n, np.tile(aux, (len(n), 1)))
        ref = _pyhf_qmu_tilde(pyhf, model, 3.0, n, aux)
    np.testing.assert_allclose(ours, ref, atol=2e-6, rtol=0.0)


def test_qmu_tilde_matches_pyhf_with_seven_nuisance_parameters():
    # the model of bench/bench_limits.py (five backgrounds, 1.41 events, two signal normsys:
    # 7 thetas and the staterror gamma) with every auxiliary datum fluctuated as a toy's:
    # q~ against pyhf's own fits at mu = 3 events; bench_limits prints the largest
    # difference over 40 such toys (seen 7.6e-7, pyhf's SLSQP precision); asserted 2e-6
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "bench_limits.py"
    spec = importlib.util.spec_from_file_location("bench_limits", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.qmu_agreement(n_toys=12) < 2e-6


def test_inert_background_theta_is_left_out_exactly():
    # a background without systematic (normsys 1 both ways) is fitted as a constant: its theta
    # equals its auxiliary datum and q is unchanged. Against pyhf with that theta in the fit,
    # also for shifted auxiliary data of every theta: same 1e-5 as above.
    from bkg.stats.model import BackgroundSource, Table1

    table = Table1(
        n_mot=1.0,
        sources=(
            BackgroundSource("flat", "flat", 1.5, 0.1, 0.1, 0.0, 0.0, False, ""),
            BackgroundSource("tail", "tail", 1.0, 0.1, 0.1, 0.3, 0.3, False, ""),
        ),
    )
    spec = _spec(table=table)
    m = one_bin_model(spec)
    assert list(m.b_hi) == [1.0, 1.3] and list(m.b_lo) == [1.0, 0.7]
    with numpy_backend() as pyhf:
        model = pyhf.Workspace(spec).model()
        nominal = np.array(model.config.auxdata)
        shifted = nominal + np.r_[0.4, -0.3, 0.8, 0.5, 0.05][: len(nominal)]
        assert len(nominal) == 5
        for aux in (nominal, shifted):
            n = np.array([0.0, 2.0, 6.0])
            by_name = dict(zip(model.config.auxdata_order, aux, strict=True))
            # ours: signal normsys, background normsys (sample order), then the staterror gamma
            order = ["mot_norm", "signal_eff", "syst_flat", "syst_tail", "staterror_box"]
            ours_aux = np.array([by_name[k] for k in order])
            ours = qmu_tilde(m, 3.0, n, np.tile(ours_aux, (len(n), 1)))
            ref = _pyhf_qmu_tilde(pyhf, model, 3.0, n, aux)
            np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)
            # parameters: mu, the two signal thetas, theta_flat, theta_tail, gamma
            pars, _ = fit(m, n, np.tile(ours_aux, (len(n), 1)), mu_fixed=None)
            assert pars.shape == (len(n), 6)
            np.testing.assert_array_equal(pars[:, 3], ours_aux[2])


def test_staterror_gamma_at_its_bound_matches_pyhf():
    # a 60 % staterror and auxiliary gamma data of 0.2 and -0.5 (as toys draw them) push the
    # fitted gamma to its lower bound; the fit keeps it there (active set) and q still
    # equals pyhf's (seen: 2.2e-6; asserted 1e-5)
    spec = _spec(table=one_source(3.0, syst=0.3, stat=0.6))
    m = one_bin_model(spec)
    n = np.array([0.0, 2.0, 6.0])
    with numpy_backend() as pyhf:
        model = pyhf.Workspace(spec).model()
        assert model.config.auxdata_order == ["syst_bkg", "mot_norm", "signal_eff", "staterror_box"]
        for gamma_aux in (0.2, -0.5):
            aux = [0.0, 0.0, 0.0, gamma_aux]
            ours_aux = np.array([aux[1], aux[2], aux[0], aux[3]])  # signal thetas first
            pars, _ = fit(m, n, np.tile(ours_aux, (len(n), 1)), mu_fixed=3.0)
            assert pars[1, -1] == pytest.approx(1e-6)  # at the floor for n = 2
            ours = qmu_tilde(m, 3.0, n, np.tile(ours_aux, (len(n), 1)))
            ref = _pyhf_qmu_tilde(pyhf, model, 3.0, n, aux)
            np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_toy_cls_matches_pyhf_toycalculator():
    # pyhf ToyCalculator (300 toys, Python loop) vs ours (20000 toys): expected CLs band within
    # toy statistics (binomial error of 300 toys ~ 0.03 at CLs ~ 0.2; tolerance 0.06 absolute)
    spec = _spec()
    with numpy_backend() as pyhf:
        model = pyhf.Workspace(spec).model()
        data = spec["observations"][0]["data"] + model.config.auxdata
        np.random.seed(3)  # noqa: NPY002 (pyhf's ToyCalculator uses the global RNG)
        _, exp = pyhf.infer.hypotest(
            3.0,
            data,
            model,
            test_stat="qtilde",
            calctype="toybased",
            ntoys=300,
            return_expected_set=True,
            track_progress=False,
        )
    ours = toy_cls(one_bin_model(spec), 3.0, n_toys=20000, seed=5)
    np.testing.assert_allclose(ours.cls_exp[1:4], np.ravel(exp)[1:4], atol=0.06)


def test_poisson_quantile_is_scipys_inverse_cdf():
    # the toys' main count is the exact Poisson quantile of a uniform: scipy's ppf, exactly
    # (both are the least n with CDF(n) >= u); at u = 0 it is 0 (scipy returns its -1 there)
    from scipy import stats

    from bkg.stats.toys import _poisson_quantile

    u = np.concatenate([[1e-12, 0.5, 1 - 1e-12], np.random.default_rng(1).random(5000)])
    for nu in (1e-6, 0.3, 3.4, 40.0, 900.0):
        np.testing.assert_array_equal(_poisson_quantile(u, nu), stats.poisson.ppf(u, nu))
        assert _poisson_quantile(np.zeros(1), nu)[0] == 0.0
    # at large nu the CDF is tabulated around nu only (a small table); there u = 1 - 1e-12
    # (7 sigma) is left out: the two incomplete-gamma evaluations differ by ~1e-13 that far
    np.testing.assert_array_equal(_poisson_quantile(u[3:], 2.5e7), stats.poisson.ppf(u[3:], 2.5e7))


def test_toy_cls_is_smooth_in_mu():
    # one seed for a scan: the toys at neighbouring mu are coupled (common random numbers),
    # so the expected CLs falls with mu and crosses 0.1 once. With independently drawn toys
    # (rng.poisson at each mu) 8 of 24 steps of 0.025 events rose, by up to 0.005, near the
    # median's 0.1 on the default model, and the median crossed 0.1 four times. Allowed here:
    # rises below 1e-3 (the band is a quantile over toys whose order can change with mu).
    m = one_bin_model(_spec(3.4))
    memo: dict = {}
    mus = np.arange(1.5, 12.0, 0.1)
    cls = np.array(
        [
            toy_cls(m, mu, n_toys=4000, seed=np.random.SeedSequence(2), memo=memo).cls_exp
            for mu in mus
        ]
    )
    assert np.diff(cls, axis=0).max() < 1e-3
    crossings = (np.diff(np.sign(cls - 0.1), axis=0) != 0).sum(axis=0)
    np.testing.assert_array_equal(crossings, [1, 1, 1, 1, 1])


def _b_zero_spec(eff_unc: float):
    return model_spec(
        one_source(1e-3, syst=0.3, stat=0.1),
        n_mot=1.0,
        signal_events=[1.0],
        mot_uncertainty=0.0,
        signal_efficiency_uncertainty=eff_unc,
        poi_upper=50.0,
    )


@pytest.mark.slow
def test_hybrid_toys_never_fall_below_the_limit_without_uncertainties():
    # Background-free counting: the observed limit for n = 0 is ln 10 = 2.303 signal events
    # without uncertainties. Cousins-Highland smearing can only raise it (Jensen: the mean
    # of exp(-s f) over f is above exp(-s)); the frequentist toys, whose auxiliary data
    # fluctuate, fall below it (the README's "toy limits fall a little below 2.30").
    # 4e3 toys: the binomial error of CLs ~ 0.1 is ~5e-3 (5%), about 0.05 events.
    from bkg.stats.limits import event_limit_toys

    lims = {}
    for unc in (0.0, 0.1, 0.3):
        for nuisance in ("frequentist", "hybrid"):
            lims[unc, nuisance] = event_limit_toys(
                _b_zero_spec(unc),
                confidence_level=0.9,
                n_toys=4000,
                seed=11,
                observed=0.0,
                nuisance=nuisance,
            ).observed
    assert lims[0.0, "hybrid"] == pytest.approx(np.log(10), abs=0.08)
    assert lims[0.1, "hybrid"] >= np.log(10) - 0.08
    assert lims[0.3, "hybrid"] > lims[0.1, "hybrid"] > lims[0.0, "hybrid"] - 0.02
    assert lims[0.3, "frequentist"] < lims[0.0, "frequentist"]


def test_poisson_quantile_each_is_scipys_inverse_cdf():
    from scipy import stats

    from bkg.stats.toys import _poisson_quantile_each

    rng = np.random.default_rng(2)
    u = rng.random(5000)
    # up to means where exp(-nu) underflows (a hybrid toy's background b hi^theta gets there)
    nu = np.concatenate([rng.uniform(0.0, 30.0, 4000), rng.uniform(700.0, 5e4, 1000)])
    got = _poisson_quantile_each(u, nu)
    np.testing.assert_array_equal(got, stats.poisson.ppf(u, nu))
    # the definition: P(N <= n - 1) < u <= P(N <= n)
    assert np.all(stats.poisson.cdf(got, nu) >= u)
    assert np.all(stats.poisson.cdf(got - 1, nu) < u)
