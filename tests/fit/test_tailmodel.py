"""Tail models judged on the tail (bkg.fit.tailmodel): closed forms, checks, scan, split closure."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from bkg.fit import tailmodel as tm


@pytest.mark.parametrize(
    ("shape", "theta", "d"),
    [
        ("exp", 0.05, 0.2),
        ("power", 4.5, 0.15),
        ("rutherford_ff", 0.2, 0.12),
        ("rutherford_ff", 0.1, 0.9),
    ],
)
def test_shape_survival_matches_quadrature(shape, theta, d):
    # the closed forms (Gamma(-1, u) for the form-factor law) against adaptive quadrature
    # of the density; tolerance 1e-7 relative: quad's own accuracy on these smooth tails
    num = integrate.quad(lambda t: float(tm.shape_density(np.array(t), shape, theta)), d, np.inf,
                         epsabs=0, epsrel=1e-10, limit=200)[0]  # fmt: skip
    assert math.exp(float(tm.log_shape_survival(d, shape, theta))) == pytest.approx(num, rel=1e-7)


def test_form_factor_tail_keeps_its_digits_far_out():
    # at u = d^2/q^2 = 400 the value is e^-400 / 400^2 (1 - 2/u + ...): the series, not a
    # difference of nearly equal numbers; the leading term alone is within 2/u = 0.5%
    u = 400.0
    ln = float(tm.log_shape_survival(20.0, "rutherford_ff", 1.0))
    assert ln == pytest.approx(-u - 2 * math.log(u) - math.log(2.0), abs=0.006)


def test_two_sided_poisson_p_value_is_twice_the_smaller_tail():
    # independent: the smaller of P(N <= 3) and P(N >= 3) for a mean of 9, doubled
    assert tm.poisson_two_sided(3, 9.0) == pytest.approx(2 * stats.poisson.cdf(3, 9.0))
    assert tm.poisson_two_sided(15, 9.0) == pytest.approx(2 * stats.poisson.sf(14, 9.0))
    assert tm.poisson_two_sided(9, 9.0) == 1.0


def _sample(rng, n_core, n_tail, scale, *, sigma=0.03):
    """A Gaussian core of n_core and an exponential tail from 3.5 sigma of n_tail events."""
    core = rng.normal(0.0, sigma, n_core)
    tail = 3.5 * sigma + rng.exponential(scale, n_tail)
    return np.concatenate([core, tail])


@pytest.fixture(scope="module")
def exp_tail_scan():
    rng = np.random.default_rng(11)
    x = _sample(rng, 2_000_000, 400, 0.03)
    edges = np.linspace(-0.3, 0.3, 301)
    core = tm.fit_core(np.histogram(x, edges)[0], edges, source="toy")
    far = x[x > core.edge(3.0)]
    scan = tm.scan_tail(far, n_total=x.size, cut=0.6, shapes=("exp", "rutherford_ff"),
                        thresholds=[core.edge(k) for k in (3.5, 4.5)], x_ref=core.mu, core=core,
                        source="toy", n_toys=10)  # fmt: skip
    return x, core, scan


@pytest.mark.slow
def test_scan_recovers_an_exponential_tail_beyond_the_cut(exp_tail_scan):
    # truth: 400 events of exp(-(x - 0.105)/0.03) beyond 0.105, so beyond 0.6:
    # 400 exp(-0.495/0.03) per 2.0004e6 events; tolerance: 3 of the nominal's stat errors
    x, _, scan = exp_tail_scan
    truth = 400 * math.exp(-(0.6 - 0.105) / 0.03) / x.size
    nominal = next(f for f in scan.fits if f.shape == "exp" and f.passed)
    err = nominal.stat_up if nominal.level < truth else nominal.stat_down
    assert abs(nominal.level - truth) < 3 * err
    assert len(nominal.tail_checks) >= 4
    assert all(c["p_value"] >= 0.01 for c in nominal.tail_checks)


@pytest.mark.slow
def test_a_tail_the_shape_cannot_follow_fails_its_checks():
    # a flat population (a knock-on-like plateau, 60 events uniform in 0.3-0.9) beside a
    # steep exponential tail: the exponential fitted from 3.5 sigma follows the steep part
    # and predicts far fewer than the 60 events beyond 0.3, so its checks must fail there
    rng = np.random.default_rng(3)
    x = np.concatenate([_sample(rng, 1_000_000, 300, 0.015), rng.uniform(0.3, 0.9, 60)])
    core = tm.Core(0.0, 0.03, 1_000_000)
    fit_exp = tm.scan_tail(x[x > 0.09], n_total=x.size, cut=1.0, shapes=("exp",),
                           thresholds=[0.105], x_ref=0.0, core=core, source="toy", n_toys=10)  # fmt: skip
    assert not fit_exp.fits[0].passed and fit_exp.level is None
    assert min(c["p_value"] for c in fit_exp.fits[0].tail_checks) < 0.01


@pytest.mark.slow
def test_split_closure_predicts_the_rest(exp_tail_scan):
    x, _, _ = exp_tail_scan
    tag = np.arange(x.size) % 10 == 0
    edges = np.linspace(-0.3, 0.3, 301)
    core10 = tm.fit_core(np.histogram(x[tag], edges)[0], edges, source="toy")
    far = x > 0.09
    out = tm.closure_split(x[far], tag[far], fraction=0.1, t0=0.105, t1_list=[0.13, 0.16],
                           cut=0.6, shape="exp", x_ref=core10.mu, core_fit=core10, source="toy")  # fmt: skip
    assert [o["threshold"] for o in out] == [0.13, 0.16]
    for o in out:
        # truth for the 90%: 360 exp(-(t1 - 0.105)/0.03) + the Gaussian beyond t1
        gauss = 0.9 * 2e6 * stats.norm.sf(o["threshold"] / 0.03)
        truth = 360 * math.exp(-(o["threshold"] - 0.105) / 0.03) + gauss
        assert o["p_value"] >= 0.01
        assert o["predicted_band"][0] < truth * 1.5 and o["predicted_band"][1] > truth / 1.5


@pytest.mark.slow
def test_split_closure_rejects_a_rest_the_window_cannot_predict(exp_tail_scan):
    # the same sample with the rest's (90%) events beyond 0.16 removed: the 10% window
    # [0.105, 0.16) is unchanged and predicts ~56 there (truth 360 e^-1.83 = 58); 0 observed
    # is far below any exponential the window allows, so the likelihood ratio rejects it
    # (measured p = 1.2e-4; the unchanged sample gives p = 0.93 at the same t1)
    x, _, _ = exp_tail_scan
    tag = np.arange(x.size) % 10 == 0
    keep = tag | (x < 0.16)
    xs, ts = x[keep], tag[keep]
    edges = np.linspace(-0.3, 0.3, 301)
    core10 = tm.fit_core(np.histogram(xs[ts], edges)[0], edges, source="toy")
    far = xs > 0.09
    bad = tm.closure_split(xs[far], ts[far], fraction=0.1, t0=0.105, t1_list=[0.16], cut=0.6,
                           shape="exp", x_ref=core10.mu, core_fit=core10, source="toy")[0]  # fmt: skip
    assert bad["observed"] == 0 and bad["predicted_band"][0] > 10
    assert bad["p_value"] < 0.01


def test_a_failed_fit_serialises_with_its_reason():
    # a shape that could not be fitted (its model is empty) must not break the JSON of
    # the scan: on a 2e5-MOT sample that raised KeyError: 'theta' in bkg fit
    from bkg.fit.tailmodel import TailModelFit

    fit = TailModelFit("exp", 0.2, {}, [], 0, float("nan"), 0, 0, reason="too few events")
    data = fit.to_dict()
    assert data["parameters"] == {} and data["reason"] == "too few events"
    import json

    json.dumps(data, allow_nan=False)  # strict JSON, as fits/<source>.json is written


@pytest.mark.parametrize("shape", ["exp", "power", "rutherford_ff"])
def test_numpy_refit_is_the_zfit_fit(shape):
    # the toy and bootstrap refits minimise the zfit fit's likelihood with iminuit on numpy
    # arrays: the same minimum to 1e-6 relative (measured 1e-11; the two minimisers stop
    # at EDM < 1e-4, far below the parameters' statistical errors of ~5%)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0.0, 0.3, 200_000), 1.0 + rng.exponential(0.4, 300)])
    core = tm.Core(0.0, 0.3, 200_000.0)
    kw = dict(shape=shape, t0=1.0, cut=5.0, x_ref=0.0, core=core, hesse=False)
    ref, _, _ = tm.fit_tail_model(x, **kw)
    fast, cov, result = tm.fit_tail_model(x, engine="numpy", **kw)
    assert result is None and not cov.any()
    assert fast["theta"] == pytest.approx(ref["theta"], rel=1e-6)
    assert fast["n_tail"] == pytest.approx(ref["n_tail"], rel=1e-6)


@pytest.mark.parametrize("shape", ["exp", "power", "rutherford_ff"])
def test_level_draws_at_once_are_the_floats_of_one_at_a_time(shape):
    # the 1000 covariance draws of a fit's level are evaluated as arrays: the same floats
    # as survival() of each draw (bitwise: fits/*.json keep their bytes), also where the
    # normalisation's squares come from scalars (pow) and the survival's from arrays
    rng = np.random.default_rng(11)
    for k in range(40):
        d0 = 0.2 + rng.random()
        theta = {"exp": 0.5, "power": 3.0, "rutherford_ff": 1.0}[shape]
        theta *= 10 ** rng.uniform(-0.5, 0.5)
        model = {"shape": shape, "theta": theta * (1.0 if shape == "power" else d0),
                 "n_tail": 10 ** rng.uniform(0, 3), "t0": d0 + 0.01, "cut": d0 + 4.0, "x_ref": 0.01}  # fmt: skip
        if k % 2:
            model.update(mu=0.0, sigma=d0 / 4, n_core=1e6)
        thetas = model["theta"] * rng.uniform(0.3, 3.0, 200)
        if shape == "power":
            thetas = np.maximum(thetas, 1.0 + 1e-3)
        n_tails = model["n_tail"] * rng.uniform(0.0, 2.0, 200)
        one_by_one = [
            float(tm.survival(model["cut"], dict(model, theta=float(t), n_tail=float(n)))[0])
            for t, n in zip(thetas, n_tails, strict=True)
        ]
        assert tm._levels_at_cut(model, thetas, n_tails).tolist() == one_by_one


def test_deviance_toys_skip_a_refit_with_an_infinite_survival(monkeypatch):
    # a toy refit whose survival is infinite (a degenerate power law) gives NaN expected
    # counts: it must be dropped like a failed fit, not counted as a toy below the data
    # (and no "invalid value" RuntimeWarning reaches the user)
    model = {"shape": "exp", "t0": 1.0, "cut": 10.0, "x_ref": 0.0, "n_core": 0,
             "n_tail": 50.0, "theta": 2.0}  # fmt: skip
    real = tm.survival

    def survival(x, params):
        return np.full(np.shape(x), np.inf) if params.get("degenerate") else real(x, params)

    monkeypatch.setattr(tm, "survival", survival)
    monkeypatch.setattr(tm, "_sample_model", lambda m, rng, table=None: np.array([1.5, 2.0, 3.0]))
    monkeypatch.setattr(
        tm, "_refit_toys", lambda samples, m, core: [{**model, "degenerate": True}] * len(samples)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = tm.deviance_test(
            np.array([1.5, 2.0, 3.0]), model, source="t", rng=np.random.default_rng(1), n_toys=5
        )
    assert out["toys"] == 0
    assert out["p_value"] == 0.0


def _migrad_refit(xs, model, core):
    """The toy refit as it was: fit_tail_model(engine="numpy"), Migrad from every start."""
    try:
        return tm.fit_tail_model(xs, shape=model["shape"], t0=model["t0"], cut=model["cut"],
                                 x_ref=model["x_ref"], core=core, hesse=False,
                                 engine="numpy")[0]  # fmt: skip
    except tm.FitError:
        return None


@pytest.mark.parametrize("shape", ["exp", "power", "rutherford_ff"])
@pytest.mark.parametrize("with_core", [False, True])
def test_batched_toy_refits_find_migrads_minimum(shape, with_core):
    # the deviance toys are refitted together by damped Newton steps on the exact gradient
    # and Hessian (_BatchFit) instead of one Migrad per toy on numerical derivatives. Same
    # likelihood, so the same minimum: the batch's NLL is never above Migrad's by more
    # than 1e-6 (Migrad stops at EDM < 1e-4, the batch at 1e-10, so the batch is the
    # lower), and the parameters agree within 0.05 of their errors (Migrad's Hesse). An
    # EDM of 1e-4 at errordef 0.5 leaves Migrad sqrt(1e-4 / 0.5) = 0.014 sigma from the
    # minimum (measured: at most 0.014); 0.05 allows its EDM estimate to be 10x optimistic.
    from iminuit import Minuit

    rng = np.random.default_rng(5)
    theta = {"exp": 0.4, "power": 4.0, "rutherford_ff": 1.5}[shape]
    core = tm.Core(0.0, 0.3, 200_000.0) if with_core else None
    model = {"shape": shape, "theta": theta, "n_tail": 300.0, "t0": 1.0, "cut": 5.0,
             "x_ref": 0.0, **(core.to_dict() if core else {})}  # fmt: skip
    table = tm._sampling_table(model)
    samples = [tm._sample_model(model, rng, table) for _ in range(25)]
    fast = tm._refit_toys(samples, model, core)
    core_in = 0.0 if core is None else float(core.between(1.0, 5.0))
    for xs, got in zip(samples, fast, strict=True):
        like = tm._WindowLikelihood(shape, xs, tm._core_density(xs, core), core_in,
                                    *tm._simpson_nodes(1.0, 5.0))  # fmt: skip

        def nll(theta, n_tail):
            with np.errstate(all="ignore"):
                return like.nll(like.normalised(theta), n_tail)  # noqa: B023 (used at once)

        ref = _migrad_refit(xs, model, core)
        m = Minuit(nll, theta=ref["theta"], n_tail=ref["n_tail"])
        m.errordef = Minuit.LIKELIHOOD
        m.hesse()
        assert nll(got["theta"], got["n_tail"]) <= nll(ref["theta"], ref["n_tail"]) + 1e-6
        assert abs(got["theta"] - ref["theta"]) < 0.05 * m.errors["theta"]
        assert abs(got["n_tail"] - ref["n_tail"]) < 0.05 * m.errors["n_tail"]


def test_deviance_test_draws_and_judges_the_toys_as_one_migrad_at_a_time(monkeypatch):
    # the batched refits change neither which toys are drawn (the same rng calls in the
    # same order: the rng's state after the test is the same) nor, here, the p-value.
    # Each toy's deviance moves with its refit's minimum: the minima agree within 0.05
    # of the errors (test above) and a deviance moves by O(1) per error of a parameter
    # (a 1-sigma shift of the model moves the 12 bins' expectations by ~1 sigma of their
    # counts), so within 0.05 (measured: at most 0.004), against a spread of ~5 (the
    # deviance of 12 bins: chi^2-like, sd ~ sqrt(24))
    core = tm.Core(0.0, 0.3, 200_000.0)
    model = {"shape": "exp", "theta": 0.4, "n_tail": 200.0, "t0": 1.0, "cut": 5.0,
             "x_ref": 0.0, **core.to_dict()}  # fmt: skip
    rng = np.random.default_rng(2)
    data = tm._sample_model(model, rng)
    edges = tm._dev_edges(model)
    got_rng, ref_rng = np.random.default_rng(9), np.random.default_rng(9)
    fast = tm.deviance_test(data, model, source="t", rng=got_rng, n_toys=10)
    fast_devs, slow_devs = [], []
    real = tm._refit_toys

    def batched(samples, m, c):
        out = real(samples, m, c)
        for xs, r in zip(samples, out, strict=True):
            fast_devs.append(tm.deviance(np.histogram(xs, edges)[0], tm._binned_expected(r, edges)))
        return out

    def one_at_a_time(samples, m, c):
        out = [_migrad_refit(xs, m, c) for xs in samples]
        for xs, r in zip(samples, out, strict=True):
            slow_devs.append(tm.deviance(np.histogram(xs, edges)[0], tm._binned_expected(r, edges)))
        return out

    monkeypatch.setattr(tm, "_refit_toys", one_at_a_time)
    slow = tm.deviance_test(data, model, source="t", rng=ref_rng, n_toys=10)
    monkeypatch.setattr(tm, "_refit_toys", batched)
    again = tm.deviance_test(data, model, source="t", rng=np.random.default_rng(9), n_toys=10)
    assert again == fast
    assert fast == slow
    assert got_rng.random() == ref_rng.random()
    assert len(fast_devs) == len(slow_devs) >= 10
    assert np.max(np.abs(np.array(fast_devs) - np.array(slow_devs))) < 0.05


@pytest.mark.parametrize("observed", [None, 3, 40])
def test_split_profile_over_n_tail_is_brents_minimum(exp_tail_scan, observed):
    # the split closure's profile minimises over n_tail for every theta at once (Newton in
    # a bracket); an independent minimiser, bounded Brent at xatol 1e-9, finds the same:
    # NLL within 1e-9 (the Newton stop at a step of 1e-10 (1 + n)) and n within 1e-6
    from scipy import optimize

    x, core, scan = exp_tail_scan
    t0 = scan.nominal.t0
    sel = np.arange(x.size) % 10 == 0
    fit_x = x[sel & (x < 0.3)]
    like = tm._SplitLikelihood(fit_x, shape="exp", t0=t0, t1=0.3, cut=0.6, x_ref=core.mu,
                               core=core, scale=9.0)  # fmt: skip
    grid = tm._PROFILE_GRID["exp"][::10]
    for theta_u, (v, n, pred) in zip(grid, like.profiles(grid.tolist(), observed), strict=True):
        f_u, ratio = like._parts(theta_u)

        def nll(nt, f_u=f_u, ratio=ratio):
            with np.errstate(all="ignore"):
                out = like.like.nll(f_u, nt)
            if observed is not None:
                mu = max((nt * ratio + like.core_beyond) * like.scale, 1e-300)
                out += mu - observed * math.log(mu)
            return out

        res = optimize.minimize_scalar(nll, bounds=(0.0, 10.0 * like.n_win + 10.0),
                                       method="bounded", options={"xatol": 1e-9})  # fmt: skip
        assert v == pytest.approx(nll(n), abs=1e-12)
        assert v <= res.fun + 1e-9
        assert n == pytest.approx(res.x, rel=1e-6, abs=1e-6)
        assert pred == pytest.approx((n * ratio + like.core_beyond) * 9.0, rel=1e-12)


def test_a_toy_the_batch_leaves_unconverged_is_refitted_by_migrad(monkeypatch):
    # no Newton iteration allowed: every toy goes to Migrad from every start, the refit
    # as it was, so the models are exactly those of fit_tail_model(engine="numpy")
    monkeypatch.setattr(tm._BatchFit, "MAX_ITER", 0)
    rng = np.random.default_rng(4)
    core = tm.Core(0.0, 0.3, 200_000.0)
    model = {"shape": "power", "theta": 4.0, "n_tail": 150.0, "t0": 1.0, "cut": 5.0,
             "x_ref": 0.0, **core.to_dict()}  # fmt: skip
    samples = [tm._sample_model(model, rng) for _ in range(4)] + [np.array([1.5, 2.0])]
    got = tm._refit_toys(samples, model, core)
    assert got[-1] is None  # 2 events: too few, fit_tail_model's FitError
    assert got[:-1] == [_migrad_refit(xs, model, core) for xs in samples[:-1]]
