"""Expected and observed CLs upper limits on mu = (g'/g'_ref)^2.

For the one-bin model the background does not depend on the mass: the limit is
solved once in signal events (signal = 1 event at mu = 1) and mapped to every
mass, mu_up(m) = s_up / s_ref(m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bkg.errors import LimitError, one_line
from bkg.stats.model import Table1, model_spec, numpy_backend

__all__ = [
    "PRESETS",
    "EventLimit",
    "asymptotic_cls",
    "event_limit",
    "event_limit_asymptotic",
    "event_limit_asymptotic_fast",
    "event_limit_toys",
]

#: Named observed results: N_MOT and observed events.
PRESETS: dict[str, dict[str, float]] = {
    # NA64mu 2022 run, PRL 132, 211803 (2024): 1.98e10 MOT, no event in the signal box
    "na64mu-2022": {"n_mot": 1.98e10, "observed": 0.0},
}


@dataclass(frozen=True)
class EventLimit:
    """Upper limit on the number of signal events.

    Attributes:
        expected: expected limits at -2, -1, 0, +1, +2 sigma (signal events).
        observed: observed limit (signal events) or NaN.
        calculator: "asymptotic" (the CLI's name), "toys" or "toys (hybrid)".
        confidence_level: CL used.
    """

    expected: np.ndarray
    observed: float
    calculator: str
    confidence_level: float


def _spec_events(
    table1: Table1, *, n_mot: float, mot_unc: float, eff_unc: float, poi_upper: float
) -> dict[str, Any]:
    return model_spec(
        table1,
        n_mot=n_mot,
        signal_events=[1.0],
        mot_uncertainty=mot_unc,
        signal_efficiency_uncertainty=eff_unc,
        poi_upper=poi_upper,
    )


#: Names of the expected band members, in the order pyhf returns them.
BANDS = ("expected -2 sigma", "expected -1 sigma", "expected median", "expected +1 sigma",
         "expected +2 sigma")  # fmt: skip


def _solve(f: Any, lo: float, hi: float, band: str, tol: tuple[float, float]) -> float:
    """The root of CLs(mu) - alpha in [lo, hi] (tol: xtol, rtol); LimitError naming the band."""
    from scipy.optimize import brentq  # here: a report whose limits are reused never needs it

    try:
        return float(brentq(f, lo, hi, xtol=tol[0], rtol=tol[1]))
    except ValueError:
        raise LimitError(
            f"{band} limit: CLs does not cross the CL between {lo:.3g} and {hi:.3g} signal events"
        ) from None


def poi_upper_bound(background_events: float) -> float:
    """An upper end for the signal-event scan that brackets every band at this background.

    The +2 sigma limit grows like the background when its relative uncertainty is of
    order one; 20 (b + 3 sqrt(b) + 3) leaves a wide margin (and 1000 at least).
    """
    b = max(float(background_events), 0.0)
    return max(1000.0, 20.0 * (b + 3.0 * np.sqrt(b) + 3.0))


def _asymptotic_roots(
    cls: Any, alpha: float, hi: float, bands: tuple[int, ...], observed: bool
) -> tuple[np.ndarray, float]:
    """The signal events where the asymptotic CLs of ``cls(mu) -> (observed, expected[5])``
    crosses ``alpha``: the ``bands`` asked for (the others NaN) and, if ``observed``, the
    observed limit (else NaN)."""
    lo = 1e-6
    exp_lim = np.full(5, np.nan)
    for k in bands:
        exp_lim[k] = _solve(lambda mu, k=k: cls(mu)[1][k] - alpha, lo, hi, BANDS[k], (1e-8, 1e-6))
    obs_lim = float("nan")
    if observed:
        obs_lim = _solve(lambda mu: cls(mu)[0] - alpha, lo, hi, "observed", (1e-8, 1e-6))
    return exp_lim, obs_lim


def event_limit_asymptotic(
    spec: dict[str, Any],
    *,
    confidence_level: float,
    observed: float | None = None,
    bands: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> EventLimit:
    """Asymptotic qmu-tilde CLs limit with pyhf (root finding per band).

    ``bands`` picks the expected band members to solve (indices into :data:`BANDS`);
    the others are NaN. Each costs about as much as the whole limit over five.
    """
    alpha = 1.0 - confidence_level
    with numpy_backend() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model()
        n_data = spec["observations"][0]["data"] if observed is None else [float(observed)]
        data = list(n_data) + model.config.auxdata
        hi = model.config.suggested_bounds()[model.config.poi_index][1]

        def cls(mu: float) -> tuple[float, np.ndarray]:
            # at a tiny mu both q_mu and its Asimov value are ~0 and pyhf's CLs is 0/0:
            # no sensitivity there, i.e. CLs = 1
            with np.errstate(divide="ignore", invalid="ignore"):
                try:
                    obs, exp = pyhf.infer.hypotest(
                        mu, data, model, test_stat="qtilde", return_expected_set=True
                    )
                except pyhf.exceptions.FailedMinimization as exc:
                    # scipy's SLSQP can stop on a model whose constraints it cannot meet
                    # (seen with a large background and large source uncertainties)
                    raise LimitError(
                        f"pyhf's fit failed at mu = {mu:.4g} ({one_line(exc)}); the "
                        "asymptotic limit cannot be computed for this model: try "
                        "--calculator toys"
                    ) from None
            values = np.nan_to_num(np.array([obs, *np.ravel(exp)], dtype=float), nan=1.0)
            return float(values[0]), values[1:]

        exp_lim, obs_lim = _asymptotic_roots(cls, alpha, hi, bands, observed is not None)
    solved = exp_lim[np.isfinite(exp_lim)]
    if np.any(np.diff(solved) <= 0):
        # pyhf's fits can fail at very large backgrounds (~1e6 events) and CLs then has
        # spurious roots
        raise LimitError(
            "asymptotic expected limits are not increasing from -2 to +2 sigma "
            f"({', '.join(f'{v:.4g}' for v in solved)} signal events): the fits are unreliable "
            "at this background"
        )
    return EventLimit(
        expected=exp_lim,
        observed=obs_lim,
        calculator="asymptotic",
        confidence_level=confidence_level,
    )


def asymptotic_cls(spec: dict[str, Any], *, observed: float | None = None) -> Any:
    """CLs(mu) of pyhf's asymptotic calculator (``qtilde``) with the vectorised fits of
    :mod:`bkg.stats.toys` instead of pyhf's scipy fits: ``cls(mu)`` -> (observed CLs,
    the expected CLs at -2..+2 sigma).

    The formulae are pyhf's (AsymptoticCalculator, Cowan et al. EPJC 71, 1554): the
    Asimov data are the expected data of the mu = 0 fit to the data (with their
    auxiliary data at the fitted nuisance parameters); with s = sqrt(q~_mu,A), the band
    member n sigma (n = 2..-2) has t = max(n, -s) and CLs = Phi(-(t + s)) / Phi(-t);
    the observed one t = sqrt(q~_mu) - s if sqrt(q~_mu) <= s, else (q~_mu - s^2) / (2 s).
    The test statistic agrees with pyhf's to 2e-6 (tests/stats/test_toys.py), so the
    limits do to the root finder's tolerance, at ~1 ms per mu instead of ~0.1 s.
    """
    from scipy.special import ndtr

    from bkg.stats.toys import expected_events, fit, one_bin_model, qmu_tilde

    m = one_bin_model(spec)
    n_data = np.array([m.b.sum() + m.b_const if observed is None else float(observed)])
    aux_data = np.zeros((1, m.n_pars - 1))
    aux_data[0, -1] = 1.0
    p0, _ = fit(m, n_data, aux_data, mu_fixed=0.0)
    n_asimov = expected_events(m, p0)
    aux_asimov = p0[:, 1:].copy()
    if m.gamma_sigma <= 0:  # no staterror: its auxiliary datum stays 1
        aux_asimov[:, -1] = 1.0
    free_a = fit(m, n_asimov, aux_asimov, mu_fixed=None)
    free_d = fit(m, n_data, aux_data, mu_fixed=None) if observed is not None else None
    n_sigma = np.array([2.0, 1.0, 0.0, -1.0, -2.0])  # pyhf's order: -2 sigma limit first
    memo: dict[float, tuple[float, np.ndarray]] = {}

    def cls(mu: float) -> tuple[float, np.ndarray]:
        if mu in memo:
            return memo[mu]
        q_a = float(qmu_tilde(m, mu, n_asimov, aux_asimov, free=free_a)[0])
        sa = np.sqrt(max(q_a, 0.0))
        t = np.maximum(n_sigma, -sa)
        with np.errstate(divide="ignore", invalid="ignore"):
            exp = np.nan_to_num(ndtr(-(t + sa)) / ndtr(-t), nan=1.0)
        obs = float("nan")
        if free_d is not None:
            q = max(float(qmu_tilde(m, mu, n_data, aux_data, free=free_d)[0]), 0.0)
            sq = np.sqrt(q)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_obs = sq - sa if sq <= sa else (q - sa * sa) / (2.0 * sa)
                obs = float(np.nan_to_num(ndtr(-(t_obs + sa)) / ndtr(-t_obs), nan=1.0))
        memo[mu] = (obs, exp)
        return memo[mu]

    return cls


def event_limit_asymptotic_fast(
    spec: dict[str, Any],
    *,
    confidence_level: float,
    observed: float | None = None,
    bands: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> EventLimit:
    """:func:`event_limit_asymptotic` with :func:`asymptotic_cls` (no pyhf fits): the same
    limits (to the root finder's tolerance) ~100x faster, for the figures' many limits."""
    alpha = 1.0 - confidence_level
    cls = asymptotic_cls(spec, observed=observed)
    hi = float(spec["measurements"][0]["config"]["parameters"][0]["bounds"][0][1])
    exp_lim, obs_lim = _asymptotic_roots(cls, alpha, hi, bands, observed is not None)
    return EventLimit(
        expected=exp_lim, observed=obs_lim, calculator="asymptotic",
        confidence_level=confidence_level,
    )  # fmt: skip


def _toy_root(
    f: Any, cache: dict[float, Any], value: Any, alpha: float, lo: float, hi: float, band: str
) -> float:
    """The mu where a toy CLs band crosses alpha, from as few toy evaluations as it takes.

    The coupled toys make CLs(mu) fall monotonically (toy_cls), so every mu evaluated so
    far, for any band, narrows this band's bracket. Inside it the root is found by
    regula falsi on log CLs - log alpha with the Illinois modification (an end kept
    k > 1 times in a row has its value halved k - 1 times, so both ends move). Once the bracket is within four
    tolerances, one point on either side of the interpolated root closes it (a
    bisection follows where it did not, or where one end stayed three times). Stops when
    the bracket is below 4e-3 mu, returns the interpolated root inside it: CLs is above
    alpha 0.4 % below the returned mu and below it 0.4 % above. With 1e4 toys the
    limit's own statistical error is ~1 %, and CLs(mu) has steps of ~0.3 % in mu
    (the toys' discrete counts), so a finer tolerance would chase those steps.
    """
    from scipy.interpolate import PchipInterpolator
    from scipy.optimize import brentq

    log_alpha = float(np.log(alpha))

    def g(mu: float) -> float:
        return float(np.log(max(value(cache[mu]), 1e-300))) - log_alpha if mu in cache else 0.0

    straddled = False
    for _ in range(60):
        pts = sorted(mu for mu in cache if lo <= mu <= hi)
        above = [mu for mu in pts if value(cache[mu]) > alpha]
        below = [mu for mu in pts if value(cache[mu]) <= alpha]
        a, b = max(above, default=lo), min(below, default=hi)
        if not a < b:  # not monotone on the evaluated points: the whole range, bisected
            return _solve(lambda mu: f(mu) - alpha, lo, hi, band, (1e-3, 1e-3))
        if pts[0] > lo:  # CLs = 1 at mu -> 0
            pts = [lo, *pts]
        curve = PchipInterpolator(pts, [g(mu) if mu in cache else -log_alpha for mu in pts])
        x = float(brentq(curve, a, b, xtol=1e-9)) if curve(a) > 0 >= curve(b) else 0.5 * (a + b)
        width, tol = b - a, 8e-3 * b
        if width <= tol:  # the root is within 0.5 % of the returned mu either way
            return min(max(x, b / 1.005), a / 0.995)
        if straddled:  # the last straddle missed the root: bisect
            f(0.5 * (a + b))
            straddled = False
        elif width <= 4.0 * tol:
            # near: one point on either side of the estimate closes the bracket
            for y in (x - 0.45 * tol, x + 0.45 * tol):
                f(min(max(y, a + 0.01 * width), b - 0.01 * width))
            straddled = True
        else:  # just past the estimate, towards the farther end
            x += tol / 3 if b - x > x - a else -tol / 3
            f(min(max(x, a + 0.01 * width), b - 0.01 * width))
    # the interpolation did not close the bracket (a CLs with large steps, e.g. a few
    # toy counts): the whole range, bisected, as for a non-monotone curve
    return _solve(lambda mu: f(mu) - alpha, lo, hi, band, (1e-3, 1e-3))


def event_limit_toys(
    spec: dict[str, Any],
    *,
    confidence_level: float,
    n_toys: int,
    seed: int | np.random.SeedSequence,
    observed: float | None = None,
    nuisance: str = "frequentist",
    bands: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> EventLimit:
    """Toy-based (vectorised) qmu-tilde CLs limit; the same seed at every mu.

    ``nuisance``: how the toys treat the nuisance parameters (:func:`bkg.stats.toys.toy_cls`).
    ``bands``: the expected band members solved (indices into :data:`BANDS`; the others
    are NaN): each root costs a few toy evaluations of its own.
    """
    from bkg.stats.toys import one_bin_model, toy_cls

    alpha = 1.0 - confidence_level
    m = one_bin_model(spec)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    entropy = ss.entropy
    cache: dict[float, Any] = {}
    memo: dict[str, Any] = {}  # the background-only toys, the same at every mu

    def at(mu: float) -> Any:
        if mu not in cache:
            cache[mu] = toy_cls(
                m,
                mu,
                n_toys=n_toys,
                seed=np.random.SeedSequence(entropy),
                observed=observed,
                memo=memo,
                nuisance=nuisance,
            )
        return cache[mu]

    hi = 2.0
    while at(hi).cls_exp.max() > alpha or (observed is not None and at(hi).cls_obs > alpha):
        hi *= 2.0
        if hi > 1e4:
            raise LimitError(
                "toy-based limit: CLs stays above the CL up to 1e4 signal events "
                "(use the asymptotic calculator at this background)"
            )
    lo = 1e-3

    def solve(value: Any, band: str) -> float:
        return _toy_root(lambda mu: value(at(mu)), cache, value, alpha, lo, hi, band)

    exp_lim = np.full(5, np.nan)
    for k in (2, 1, 3, 0, 4):  # the median first, then outwards
        if k in bands:
            exp_lim[k] = solve(lambda r, k=k: r.cls_exp[k], BANDS[k])
    obs_lim = float("nan")
    if observed is not None:
        obs_lim = solve(lambda r: r.cls_obs, "observed")
    return EventLimit(
        expected=exp_lim,
        observed=obs_lim,
        calculator="toys" if nuisance == "frequentist" else f"toys ({nuisance})",
        confidence_level=confidence_level,
    )


def event_limit(
    table1: Table1,
    *,
    n_mot: float,
    confidence_level: float,
    mot_uncertainty: float,
    signal_efficiency_uncertainty: float,
    calculator: str = "auto",
    toys_below_background: float = 5.0,
    n_toys: int = 10000,
    seed: int = 0,
    observed: float | None = None,
    bands: tuple[int, ...] = (0, 1, 2, 3, 4),
    toy_nuisance: str = "frequentist",
    asymptotic_fits: str = "pyhf",
) -> EventLimit:
    """The one-bin limit in signal events (solved once for every mass).

    ``bands``: the expected band members solved (the others are NaN). ``toy_nuisance``: "frequentist" (pyhf's toys) or
    "hybrid" (Cousins-Highland), :func:`bkg.stats.toys.toy_cls`. ``asymptotic_fits``:
    "pyhf" (pyhf's hypotest) or "vectorised" (:func:`event_limit_asymptotic_fast`, the
    same formulae on the toys' fits).
    """
    b = table1.total_per_mot() * n_mot
    spec = _spec_events(
        table1,
        n_mot=n_mot,
        mot_unc=mot_uncertainty,
        eff_unc=signal_efficiency_uncertainty,
        poi_upper=poi_upper_bound(b),
    )
    if calculator == "auto":
        calculator = "toys" if b < toys_below_background else "asymptotic"
    if calculator == "toys":
        return event_limit_toys(
            spec,
            confidence_level=confidence_level,
            n_toys=n_toys,
            seed=seed,
            observed=observed,
            nuisance=toy_nuisance,
            bands=bands,
        )
    if calculator in ("asymptotics", "asymptotic"):
        solve = (
            event_limit_asymptotic_fast
            if asymptotic_fits == "vectorised"
            else event_limit_asymptotic
        )
        return solve(spec, confidence_level=confidence_level, observed=observed, bands=bands)
    raise LimitError(f"statistics.calculator: unknown calculator {calculator!r}")


def map_to_masses(
    limit: EventLimit, signal_events_ref: ArrayLike, g_prime_ref: float
) -> dict[str, np.ndarray]:
    """mu_up and g'_90 per mass from a limit in signal events.

    Args:
        limit: the limit in signal events.
        signal_events_ref: expected signal events at g'_ref per mass.
        g_prime_ref: reference coupling.

    Returns:
        dict with mu_expected (M, 5), mu_observed (M,), g_expected (M, 5), g_observed (M,).
    """
    s = np.asarray(signal_events_ref, float)
    with np.errstate(divide="ignore"):
        mu_exp = limit.expected[None, :] / s[:, None]
        mu_obs = limit.observed / s
    return {
        "mu_expected": mu_exp,
        "mu_observed": mu_obs,
        "g_expected": g_prime_ref * np.sqrt(mu_exp),
        "g_observed": g_prime_ref * np.sqrt(mu_obs),
    }
