"""Tail shapes, zfit fits, extrapolation and its uncertainty."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from bkg.errors import FitError
from bkg.fit import extrapolate, fit_tail, fit_tail_iminuit, shapes, upper_bound_90
from bkg.fit.tailfit import _level
from bkg.fit.toys import binned_toy, tail_probability

TRUE = {"mu": 0.002, "sigmal": 0.03, "alphal": 1.6, "sigmar": 0.028, "alphar": 1.8}
EDGES = np.linspace(-0.3, 0.3, 301)
CUT = -0.5


def test_tail_integral_at_1e13_matches_quadrature():
    # expected value: numerical quadrature of the density itself (scipy.quad, independent of
    # the closed form); tolerance 1e-8 relative at a tail probability of ~1e-13
    p = {"mu": 0.0, "sigmal": 1.0, "alphal": 2.0, "sigmar": 1.0, "alphar": 2.0}
    total = shapes.lower_tail(0.0, p, model="gauss_exp") * 2
    # left tail: exp(alpha^2/2 + alpha x) / alpha; solve for a normalised level of 1e-13
    x = (math.log(1e-13 * total * 2.0) - 2.0) / 2.0
    level = shapes.lower_tail(x, p, model="gauss_exp") / total
    assert 1e-14 < level < 1e-12
    quad = (
        integrate.quad(
            lambda t: shapes.pdf_unnorm(np.array([t]), p, model="gauss_exp")[0],
            -np.inf,
            x,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        / total
    )
    assert level == pytest.approx(quad, rel=1e-8, abs=0.0)
    # the same number as 1 - cdf loses about 3 of its 16 digits: survival form is needed
    naive = 1.0 - (total - shapes.lower_tail(x, p, model="gauss_exp")) / total
    assert abs(naive - level) / level > 1e-6


def test_double_cb_tail_matches_quadrature():
    # expected: scipy.quad of the power-law density; tolerance 1e-8 relative
    p = {"mu": 0.0, "sigma": 1.0, "alphal": 1.5, "nl": 5.0, "alphar": 1.5, "nr": 5.0}
    val = shapes.lower_tail(-40.0, p, model="double_cb")
    quad = integrate.quad(
        lambda t: shapes.pdf_unnorm(np.array([t]), p, model="double_cb")[0],
        -np.inf,
        -40.0,
        epsrel=1e-12,
    )[0]
    assert val == pytest.approx(quad, rel=1e-8, abs=0.0)


@pytest.mark.parametrize("s", [7.5, 8.0, 9.0])
def test_tail_from_inside_the_gaussian_core_keeps_its_digits(s):
    # a cut s sigma out but still inside the core (alpha = 10): the core piece is
    # sqrt(pi/2) [erfc(s/sqrt2) - erfc(alpha/sqrt2)], each term from scipy's norm.sf
    # (independent of the module); tolerance 1e-10 relative. erf(alpha) - erf(s) loses
    # everything at s = 9 (-100%).
    from scipy import stats

    p = {"mu": 0.0, "sigmal": 1.0, "alphal": 10.0, "sigmar": 1.0, "alphar": 10.0}
    sq2pi = math.sqrt(2.0 * math.pi)
    core = sq2pi * (stats.norm.sf(s) - stats.norm.sf(10.0))
    tail = math.exp(10.0**2 / 2.0 - 10.0 * 10.0) / 10.0
    assert shapes.upper_tail(s, p, model="gauss_exp") == pytest.approx(
        core + tail, rel=1e-10, abs=0.0
    )


def test_shapes_equal_zfit_pdfs():
    # expected: zfit's own GeneralizedGaussExpTail / DoubleCB normalised densities (rel 1e-9)
    import zfit

    obs = zfit.Space("x", limits=(-3, 2))
    x = np.array([-2.5, -0.5, 0.0, 0.5, 1.5])
    for model, cls, p in (
        (
            "gauss_exp",
            zfit.pdf.GeneralizedGaussExpTail,
            dict(mu=0.1, sigmal=0.3, alphal=1.2, sigmar=0.5, alphar=1.5),
        ),
        (
            "double_cb",
            zfit.pdf.DoubleCB,
            dict(mu=0.1, sigma=0.3, alphal=1.2, nl=3.0, alphar=1.5, nr=4.0),
        ),
        ("exponential", zfit.pdf.Exponential, dict(lam=-0.8)),
    ):
        ref = cls(obs=obs, **p).pdf(x).numpy()
        mine = shapes.pdf_unnorm(x, p, model=model) / shapes.integral(-3, 2, p, model=model)
        np.testing.assert_allclose(mine, ref, rtol=1e-9)


@pytest.fixture(scope="module")
def toy_fit():
    rng = np.random.default_rng(11)
    counts, _outside = binned_toy(EDGES, TRUE, n=1_000_000, model="gauss_exp", rng=rng)
    fit = fit_tail(counts, EDGES, n_total=1_000_000, source="toy")
    return counts, fit


def test_zfit_and_iminuit_agree_within_1_percent(toy_fit):
    # expected: the same binned likelihood minimised by iminuit directly; tolerance 1% (issue 4)
    counts, fit = toy_fit
    pi = fit_tail_iminuit(counts, EDGES)
    frac = fit.n_window / fit.n_total
    lz = _level(fit.params, "gauss_exp", fit.window, CUT, "lower", frac)
    li = _level(pi, "gauss_exp", fit.window, CUT, "lower", frac)
    assert lz == pytest.approx(li, rel=0.01, abs=0.0)


def test_exponential_attenuation_fit_and_its_tail_at_1e13():
    # expected: a falling exponential exp(-x / 1.2) sampled in [2, 13] (the punch-through
    # depth window); zfit and iminuit give the same slope (1%), the slope is the true one
    # within 4 sigma, and the extrapolated P(x > 35.5) is the closed form
    # exp(-35.5 / 1.2) = 1.4e-13 within the uncertainty the slope propagates there.
    rng = np.random.default_rng(5)
    n_total = 2_000_000
    x = rng.exponential(1.2, n_total)
    edges = np.linspace(2.0, 13.0, 221)
    counts = np.histogram(x, bins=edges)[0].astype(float)
    fit = fit_tail(counts, edges, n_total=n_total, model="exponential", source="toy")
    lam, sig = fit.params["lam"], math.sqrt(fit.covariance[0][0])
    assert lam == pytest.approx(
        fit_tail_iminuit(counts, edges, model="exponential")["lam"], rel=0.01
    )
    assert abs(lam + 1 / 1.2) < 4 * sig
    ext = extrapolate(fit, cut=35.5, side="upper")
    truth = math.exp(-35.5 / 1.2)
    assert truth == pytest.approx(1.4e-13, rel=0.05, abs=0.0)
    assert abs(ext.level - truth) < 3 * max(ext.stat_up, ext.stat_down)
    assert ext.stat_up > 0 and ext.stat_down > 0


def test_linear_propagation_matches_sampling(toy_fit):
    # expected: J C J^T against the spread of levels sampled from the covariance; 30% (the
    # level is log-normal-like, so the sampled interval is asymmetric)
    _, fit = toy_fit
    ext = extrapolate(fit, cut=CUT, n_samples=4000)
    assert ext.level > 0 and ext.stat_linear > 0
    sampled = 0.5 * (ext.stat_up + ext.stat_down)
    assert ext.stat_linear == pytest.approx(sampled, rel=0.3, abs=0.0)


def test_single_toy_close_to_truth(toy_fit):
    # expected: the known tail probability of the generating model; within 3 sigma
    _, fit = toy_fit
    truth = tail_probability(CUT, TRUE, model="gauss_exp")
    ext = extrapolate(fit, cut=CUT)
    sigma = ext.stat_up if truth > ext.level else ext.stat_down
    assert abs(ext.level - truth) < 3 * sigma


def test_alternative_model_gives_systematic(toy_fit):
    counts, fit = toy_fit
    alt = fit_tail(counts, EDGES, n_total=fit.n_total, model="double_cb", source="toy")
    ext = extrapolate(fit, cut=CUT, alternative=alt)
    assert ext.alternative is not None and ext.alternative > 0
    assert ext.syst_up + ext.syst_down == pytest.approx(abs(ext.alternative - ext.level), abs=0.0)


def test_upper_bound_is_poisson_90cl():
    # expected: -ln(0.1) = 2.3026 events for zero observed (Poisson, 90% CL)
    assert upper_bound_90(1e7) == pytest.approx(2.302585e-7, rel=1e-6, abs=0.0)
    with pytest.raises(FitError):
        upper_bound_90(0)


@pytest.mark.bad_input
def test_too_few_events_raise_fit_error():
    counts = np.zeros(300)
    counts[150] = 5
    with pytest.raises(FitError, match="mysource: gauss_exp"):
        fit_tail(counts, EDGES, n_total=10, source="mysource")


@pytest.mark.bad_input
def test_nonfinite_counts_raise_fit_error():
    counts = np.full(300, np.nan)
    with pytest.raises(FitError, match="non-finite"):
        fit_tail(counts, EDGES, n_total=10, source="s")


@pytest.mark.slow
def test_closure_68_percent_coverage():
    # expected: the truth lies inside the 68% stat interval in ~68% of toys; with 40 toys the
    # binomial spread is +-7.4%, so accept 0.45..0.90
    rng = np.random.default_rng(2022)
    truth = tail_probability(CUT, TRUE, model="gauss_exp")
    inside = 0
    n_toys = 40
    for _ in range(n_toys):
        counts, _ = binned_toy(EDGES, TRUE, n=300_000, model="gauss_exp", rng=rng)
        fit = fit_tail(counts, EDGES, n_total=300_000, source="closure")
        ext = extrapolate(fit, cut=CUT, n_samples=1000)
        lo, hi = ext.level - ext.stat_down, ext.level + ext.stat_up
        inside += lo <= truth <= hi
    assert 0.45 <= inside / n_toys <= 0.90


class _FailingMinimizer:
    """Stands in for zfit's Minuit: every start ends not converged (as on a bad sample)."""

    calls = 0

    def minimize(self, loss):
        type(self).calls += 1

        class Result:
            valid = False
            converged = False

            def __init__(self) -> None:
                self.info = {"original": "FMin(is_valid=False, edm above goal)"}

        return Result()


@pytest.mark.bad_input
def test_fit_that_never_converges_retries_then_names_source_model_and_reason(toy_fit, monkeypatch):
    from bkg.fit import tailfit

    counts, _ = toy_fit
    real = tailfit._model_for

    def model_for(*args, **kwargs):
        zm = real(*args, **kwargs)
        monkeypatch.setattr(zm, "minimizer", _FailingMinimizer())
        return zm

    monkeypatch.setattr(tailfit, "_model_for", model_for)
    _FailingMinimizer.calls = 0
    with pytest.raises(
        FitError, match=r"hermeticity: gauss_exp fit failed after 3 starts: valid=False"
    ) as info:
        fit_tail(counts, EDGES, n_total=1_000_000, source="hermeticity", retries=2)
    assert "\n" not in str(info.value)  # one line for the CLI
    assert "edm above goal" in str(info.value)  # the minimiser's own reason
    assert _FailingMinimizer.calls == 3  # one start and two retries from other start values


@pytest.mark.bad_input
def test_covariance_not_positive_definite_is_a_fit_error():
    from bkg.fit.tailfit import _check_cov

    with pytest.raises(
        FitError, match="punch_through: gauss_exp fit covariance is not positive definite"
    ):
        _check_cov(np.array([[1.0, 2.0], [2.0, 1.0]]), "punch_through", "gauss_exp")
    with pytest.raises(FitError, match="NaN/inf"):
        _check_cov(np.array([[np.nan, 0.0], [0.0, 1.0]]), "dimuon", "gauss_exp")


@pytest.mark.parametrize("model", ["gauss_exp", "double_cb", "exponential"])
def test_compiled_loss_evaluation_equals_zfit_loss_value(toy_fit, model):
    # expected: the minimiser's compiled evaluation (bkg.fit.compiled) returns exactly
    # zfit's own loss.value() at the same parameters, so Minuit takes the same steps
    from bkg.fit import tailfit

    counts, _ = toy_fit
    zm = tailfit._model_for(model, len(counts), True)
    loss = zm.set_data(counts, None)
    params = list(zm.params.values())
    evaluator = zm.minimizer.create_evaluator(loss, params)
    assert "_assign_and_value" in vars(evaluator)  # the compiled hook is in place
    rng = np.random.default_rng(3)
    for _ in range(5):
        values = np.array([rng.uniform(p.lower, p.upper) for p in params])
        fast = float(evaluator.value(values))
        for p, v in zip(params, values, strict=True):
            p.set_value(v)
        assert fast == float(loss.value())


def test_fast_call_is_the_concrete_functions_own_call():
    # expected: the direct call of the traced graph (bkg.fit.compiled._fast_call) returns
    # exactly what ConcreteFunction.__call__ returns, for the TensorFlow installed here
    import tensorflow as tf

    from bkg.fit.compiled import _fast_call

    weight = tf.Variable([1.5, -0.25, 3.0], dtype=tf.float64)
    concrete = tf.function(
        lambda x: tf.reduce_sum(tf.exp(x) * weight), autograph=False
    ).get_concrete_function(tf.TensorSpec([3], tf.float64))
    call = _fast_call(concrete)
    assert call.__name__ == "direct"  # not the fallback through the public call
    for values in ([0.1, 0.2, 0.3], [-5.0, 2.5, 1e-3]):
        assert call(np.array(values)) == float(concrete(tf.constant(values, tf.float64)))
