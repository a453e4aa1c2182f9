"""Binned (default) or unbinned zfit fits of a tail model and their extrapolation.

A distribution is fitted in a window that excludes the extrapolation region;
the level is (events in window / all events) x (model integral beyond the cut)
/ (model integral over the window), with the tail integral in closed form
(:mod:`bkg.fit.shapes`). The statistical uncertainty is the linear propagation
J C J^T, checked against sampling the parameters from the covariance (the
sampled 16/84% quantiles give the asymmetric interval); the model systematic is
the envelope of the alternative tail shape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bkg.errors import FitError, one_line
from bkg.fit import shapes

log = logging.getLogger(__name__)

__all__ = [
    "Extrapolation",
    "TailFit",
    "extrapolate",
    "fit_tail",
    "fit_tail_iminuit",
    "upper_bound_90",
]

#: ``gradient`` option of zfit's Minuit: True = iminuit's numerical gradient, "zfit" = autodiff.
MINUIT_GRADIENT: bool | str = True

#: Poisson 90% CL upper limit on a mean when zero events are seen.
POISSON_90CL_ZERO = 2.302585092994046


@dataclass(frozen=True)
class TailFit:
    """Result of one tail fit.

    Attributes:
        model: shape name (a key of :data:`bkg.fit.shapes.MODELS`).
        window: (lo, hi) of the fit, in the fitted variable's units.
        params: best-fit parameters.
        covariance: covariance matrix (list of lists, parameter order of ``MODELS``).
        quality: fmin, edm, valid, converged, chi2/ndf, ndf, binned, retries.
        n_window: events inside the window.
        n_total: events in the whole sample (the denominator of the level).
        counts: histogram counts in the window (for figures).
        edges: bin edges.
    """

    model: str
    window: tuple[float, float]
    params: dict[str, float]
    covariance: list[list[float]]
    quality: dict[str, Any]
    n_window: int
    n_total: int
    counts: np.ndarray = field(repr=False)
    edges: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data summary (JSON-serialisable)."""
        return {
            "model": self.model,
            "window": list(self.window),
            "parameters": dict(self.params),
            "parameter_order": list(shapes.MODELS[self.model]),
            "covariance": self.covariance,
            "quality": self.quality,
            "n_window": self.n_window,
            "n_total": self.n_total,
        }


@dataclass(frozen=True)
class Extrapolation:
    """A fitted tail integrated into the signal region.

    Attributes:
        level: probability per event of the fitted sample beyond the cut.
        stat_up, stat_down: 68% interval half-widths from the parameter covariance (absolute).
        stat_linear: sqrt(J C J^T) (absolute), the linear propagation.
        syst_up, syst_down: model systematic (envelope of the alternative shape; absolute).
        alternative: the level of the alternative model (or None).
    """

    level: float
    stat_up: float
    stat_down: float
    stat_linear: float
    syst_up: float = 0.0
    syst_down: float = 0.0
    alternative: float | None = None


def upper_bound_90(n_total: float) -> float:
    """90% CL upper bound on a probability when 0 of n_total events pass.

    Example:
        >>> round(upper_bound_90(1e6) * 1e6, 3)
        2.303
    """
    if not n_total > 0:
        raise FitError(f"no events to bound a probability with (n_total={n_total})")
    return POISSON_90CL_ZERO / float(n_total)


def _start_values(
    counts: np.ndarray, edges: np.ndarray, model: str, attempt: int
) -> dict[str, float]:
    centers = 0.5 * (edges[1:] + edges[:-1])
    width = edges[-1] - edges[0]
    peak = int(np.argmax(counts))
    mu = float(centers[peak])
    half = counts >= counts[peak] / 2.0
    fwhm = float(centers[half].max() - centers[half].min()) if half.sum() > 1 else width / 20
    if model == "exponential":
        # log-slope between the first and the last populated bins
        full = np.nonzero(counts > 0)[0]
        i, j = (full[0], full[-1]) if full.size > 1 else (0, len(counts) - 1)
        slope = math.log(max(counts[j], 0.5) / max(counts[i], 0.5)) / max(
            centers[j] - centers[i], 1e-12
        )
        return {"lam": slope * (1.0, 0.7, 1.4)[attempt % 3]}
    sigma = max(fwhm / 2.355, (edges[1] - edges[0]) / 2.0) * (1.0, 1.6, 0.7)[attempt % 3]
    alpha = (1.5, 2.5, 1.0)[attempt % 3]
    if model == "gauss":
        return {"mu": mu, "sigma": sigma}
    if model == "gauss_exp":
        return {"mu": mu, "sigmal": sigma, "alphal": alpha, "sigmar": sigma, "alphar": alpha}
    return {"mu": mu, "sigma": sigma, "alphal": alpha, "nl": 3.0, "alphar": alpha, "nr": 3.0}


def _limits(name: str, lo: float, hi: float) -> tuple[float, float]:
    width = hi - lo
    if name == "mu":
        return lo, hi
    if name.startswith("sigma"):
        return width * 1e-5, width
    if name.startswith("alpha"):
        return 0.05, 10.0
    if name == "lam":  # exp(lam x): at most e^120 across the window
        return -120.0 / width, 120.0 / width
    return 1.05, 60.0  # n of the power law (finite integral)


class _ZfitModel:
    """One zfit model, its parameters and its loss per (model, binning): built once.

    Every fit is done in the canonical variable u = (x - c) / h that maps the fit
    window onto [-1, 1], so one model and one compiled loss serve every source
    and every toy; the binned data live in a TensorFlow variable that is
    assigned, not rebuilt (no retracing, no growing graph).
    """

    def __init__(self, model: str, nbins: int, *, binned: bool) -> None:
        from bkg.fit._zfit import load_zfit

        # zfit first, guarded (bkg/fit/_zfit.py); before TensorFlow: it silences TF's start-up lines
        load_zfit()
        # isort: off
        import zfit
        import tensorflow as tf

        # isort: on
        from bkg.fit.compiled import CompiledMinuit

        self.obs = zfit.Space("u", limits=(-1.0, 1.0))
        self.params: dict[str, Any] = {}
        uid = f"{model}_{nbins}_{'b' if binned else 'u'}_{id(self)}"
        for name in shapes.MODELS[model]:
            plo, phi = _limits(name, -1.0, 1.0)
            self.params[name] = zfit.Parameter(f"{name}_{uid}", 0.5 * (plo + phi), plo, phi)
        cls = {
            "gauss_exp": zfit.pdf.GeneralizedGaussExpTail,
            "double_cb": zfit.pdf.DoubleCB,
            "exponential": zfit.pdf.Exponential,
            "gauss": zfit.pdf.Gauss,
        }[model]
        self.pdf = cls(obs=self.obs, **self.params)
        self.binned = binned
        # Minuit's own numerical gradient: zfit's autodiff gradient through the binned
        # analytic integrals cost 0.3 s per call here (10x slower fits), see bench_fit.py
        self.minimizer = CompiledMinuit(gradient=MINUIT_GRADIENT, tol=1e-3)
        if not binned:
            return
        binning = zfit.binned.RegularBinning(nbins, -1.0, 1.0, name="u")
        self.bpdf = zfit.pdf.BinnedFromUnbinnedPDF(self.pdf, space=zfit.Space("u", binning=binning))
        self.counts = tf.Variable(np.zeros(nbins), dtype=tf.float64, trainable=False)
        counts = self.counts
        bpdf = self.bpdf

        def binned_nll() -> Any:
            # Poisson binned NLL relative to the saturated model (Baker-Cousins), total fixed
            expected = tf.reduce_sum(counts) * bpdf.rel_counts()
            expected = tf.maximum(expected, 1e-300)
            safe = tf.where(counts > 0, counts, tf.ones_like(counts))
            term = tf.where(
                counts > 0, counts * tf.math.log(safe / expected), tf.zeros_like(counts)
            )
            return tf.reduce_sum(expected - counts + term)

        # one graph of the parameters' variables, traced once and shared by zfit's loss
        # (FitResult evaluates it) and the minimiser's compiled evaluation (bkg.fit.compiled)
        graph = tf.function(binned_nll, autograph=False)

        def nll(params: Any = None) -> Any:
            return graph()

        self.loss = zfit.loss.SimpleLoss(
            nll, params=list(self.params.values()), errordef=0.5, jit=True
        )
        self.minimizer.compile_loss(self.loss, graph)

    def set_data(self, counts: np.ndarray | None, values: np.ndarray | None) -> Any:
        """The loss for these data (binned: the same loss object with new counts)."""
        import zfit

        if self.binned:
            self.counts.assign(np.asarray(counts, dtype=float))
            return self.loss
        data = zfit.Data.from_numpy(obs=self.obs, array=np.asarray(values, dtype=float))
        return zfit.loss.UnbinnedNLL(self.pdf, data)


_CACHE: dict[tuple[Any, ...], _ZfitModel] = {}


def _model_for(model: str, nbins: int, binned: bool) -> _ZfitModel:
    key = (model, binned, nbins if binned else 0)
    if key not in _CACHE:
        _CACHE[key] = _ZfitModel(model, nbins, binned=binned)
    return _CACHE[key]


def _to_canonical(p: Mapping[str, float], c: float, h: float) -> dict[str, float]:
    """Parameters in u = (x - c) / h (a location moves, a length scales, a rate scales inversely)."""
    return {n: ((v - c) / h if n == "mu" else v / _scale(n, h)) for n, v in p.items()}


def _scale(name: str, h: float) -> float:
    """Factor from the canonical to the fitted variable's units (lengths h, rates 1/h)."""
    if name == "mu" or name.startswith("sigma"):
        return h
    return 1.0 / h if name == "lam" else 1.0


def _scale_vector(names: Sequence[str], h: float) -> np.ndarray:
    return np.array([_scale(n, h) for n in names])


def _check_cov(cov: np.ndarray, source: str, model: str) -> None:
    if not np.all(np.isfinite(cov)):
        raise FitError(f"{source}: {model} fit covariance has NaN/inf entries")
    try:
        np.linalg.cholesky(cov + np.eye(len(cov)) * 1e-300)
    except np.linalg.LinAlgError:
        raise FitError(
            f"{source}: {model} fit covariance is not positive definite "
            "(a parameter at its limit or a degenerate tail; widen the window)"
        ) from None


#: iminuit FMin flags that say why a minimisation is not valid
_FMIN_FLAGS = ("is_above_max_edm", "has_reached_call_limit", "has_parameters_at_limit")


def _minimizer_reason(result: Any) -> str:
    """One line on why a minimisation is not valid (iminuit's FMin flags where present)."""
    fmin = result.info.get("original") if isinstance(result.info, Mapping) else None
    flags = [n.replace("_", " ") for n in _FMIN_FLAGS if getattr(fmin, n, False) is True]
    if getattr(fmin, "hesse_failed", False) is True:
        flags.append("Hesse failed")
    if isinstance(fmin, str):
        flags.append(one_line(fmin)[:200])
    edm = getattr(result, "edm", None)
    return (
        f"valid={result.valid}, converged={result.converged}"
        + (f", edm={float(edm):.3g}" if edm is not None else "")
        + (f" ({', '.join(flags)})" if flags else "")
    )


def fit_tail(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    n_total: int,
    model: str = "gauss_exp",
    source: str = "fit",
    values: np.ndarray | None = None,
    retries: int = 2,
) -> TailFit:
    """Fit a tail model to a histogram (or to ``values``, unbinned) in the histogram's range.

    Args:
        counts: events per bin inside the window (shape (nbins,)).
        edges: bin edges (shape (nbins + 1,)), same units as the fitted variable.
        n_total: events of the whole sample (inside and outside the window).
        model: ``"gauss_exp"`` (default), ``"double_cb"`` or ``"exponential"``.
        source: name used in error messages.
        values: if given, an unbinned fit to these values (inside the window).
        retries: extra starts after a failed fit.

    Returns:
        The :class:`TailFit`.

    Raises:
        FitError: too few events, or no valid converged fit after the retries
            (the message names the source, the model and the minimiser's reason).
    """
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    binned = values is None
    _check_histogram(counts, edges, binned=binned, source=source, model=model)
    c, h = 0.5 * (edges[0] + edges[-1]), 0.5 * (edges[-1] - edges[0])
    zm = _model_for(model, len(counts), binned)
    loss = zm.set_data(counts, None if binned else (np.asarray(values, float) - c) / h)
    reason = "not run"
    for attempt in range(retries + 1):
        _set_start(zm, _to_canonical(_start_values(counts, edges, model, attempt), c, h))
        outcome = _minimise(zm, loss, model, source=source, attempt=attempt)
        if isinstance(outcome, str):
            reason = outcome
            continue
        result, ucov = outcome
        return _tail_fit(zm, result, ucov, counts, edges, model, n_total, attempt)
    raise FitError(f"{source}: {model} fit failed after {retries + 1} starts: {reason}")


def _check_histogram(
    counts: np.ndarray, edges: np.ndarray, *, binned: bool, source: str, model: str
) -> None:
    """Raise FitError unless the histogram can be fitted (matching, finite, >= 20 events)."""
    if counts.ndim != 1 or len(edges) != len(counts) + 1 or not np.all(np.diff(edges) > 0):
        raise FitError(f"{source}: {model}: histogram edges/counts do not match")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise FitError(f"{source}: {model}: histogram has negative or non-finite counts")
    n_window = round(counts.sum())
    if n_window < 20:
        raise FitError(f"{source}: {model}: only {n_window} events in the fit window (need >= 20)")
    widths = np.diff(edges)
    if binned and not np.allclose(widths, widths[0], rtol=1e-6):
        raise FitError(f"{source}: {model}: the fit needs regular bins")


def _set_start(zm: _ZfitModel, start: Mapping[str, float]) -> None:
    """Set the canonical start values, kept just inside each parameter's limits."""
    for name, value in start.items():
        p = zm.params[name]
        p.set_value(float(np.clip(value, p.lower + 1e-9, p.upper - 1e-9)))


def _minimise(
    zm: _ZfitModel, loss: Any, model: str, *, source: str, attempt: int
) -> tuple[Any, np.ndarray] | str:
    """One minimisation: (result, canonical covariance), or the one-line reason it failed
    (an exception, not valid or not converged, a failed Hesse or a bad covariance)."""
    try:
        result = zm.minimizer.minimize(loss)
    except Exception as exc:  # the minimiser's own failure (NaN in the loss, ...)
        return f"{type(exc).__name__}: {one_line(exc)}"
    if not (result.valid and result.converged):
        reason = _minimizer_reason(result)
        log.info("%s: %s fit attempt %d failed: %s", source, model, attempt, reason)
        return reason
    plist = [zm.params[n] for n in shapes.MODELS[model]]
    try:
        ucov = np.asarray(result.covariance(params=plist), dtype=float)
    except Exception as exc:
        return f"Hesse failed ({type(exc).__name__}: {exc})"
    try:
        _check_cov(ucov, source, model)
    except FitError as exc:
        return str(exc)
    return result, ucov


def _tail_fit(
    zm: _ZfitModel,
    result: Any,
    ucov: np.ndarray,
    counts: np.ndarray,
    edges: np.ndarray,
    model: str,
    n_total: int,
    attempt: int,
) -> TailFit:
    """The :class:`TailFit` of a good minimisation, back in the fitted variable's units."""
    names = shapes.MODELS[model]
    c, h = 0.5 * (edges[0] + edges[-1]), 0.5 * (edges[-1] - edges[0])
    scale = _scale_vector(names, h)
    cov = ucov * np.outer(scale, scale)
    uparams = {n: float(zm.params[n].value()) for n in names}
    params = {n: (c + h * v if n == "mu" else _scale(n, h) * v) for n, v in uparams.items()}
    at_limit = [
        n
        for n in names
        if min(abs(uparams[n] - zm.params[n].lower), abs(uparams[n] - zm.params[n].upper)) < 1e-6
    ]
    quality = {
        "fmin": float(result.fmin),
        "edm": float(result.edm),
        "valid": bool(result.valid),
        "converged": bool(result.converged),
        "binned": zm.binned,
        "attempts": attempt + 1,
        "at_limit": at_limit,
        **_chi2(counts, edges, params, model),
    }
    return TailFit(
        model,
        (float(edges[0]), float(edges[-1])),
        params,
        cov.tolist(),
        quality,
        round(counts.sum()),
        int(n_total),
        counts,
        edges,
    )


def expected_counts(
    edges: np.ndarray, params: Mapping[str, float], model: str, n: float
) -> np.ndarray:
    """Expected events per bin of the normalised model scaled to n events in the window."""
    lo, hi = float(edges[0]), float(edges[-1])
    norm = shapes.integral(lo, hi, params, model=model)
    cum = np.array([shapes.antiderivative(float(e), params, model=model) for e in edges])
    # bin contents as differences only in the window (not tiny); tails use closed forms elsewhere
    return n * np.diff(cum) / norm


def _chi2(
    counts: np.ndarray, edges: np.ndarray, params: Mapping[str, float], model: str
) -> dict[str, float]:
    mu = expected_counts(edges, params, model, counts.sum())
    ok = mu > 0
    chi2 = float(np.sum((counts[ok] - mu[ok]) ** 2 / np.maximum(mu[ok], 1.0)))
    ndf = int(ok.sum() - len(params))
    return {"chi2": chi2, "ndf": ndf, "chi2_ndf": chi2 / max(ndf, 1)}


def _level(
    params: Mapping[str, float],
    model: str,
    window: tuple[float, float],
    cut: float,
    side: str,
    frac: float,
) -> float:
    tail = (shapes.lower_tail if side == "lower" else shapes.upper_tail)(cut, params, model=model)
    return frac * tail / shapes.integral(window[0], window[1], params, model=model)


def extrapolate(
    fit: TailFit,
    *,
    cut: float,
    side: str = "lower",
    alternative: TailFit | None = None,
    n_samples: int = 2000,
    seed: int = 0,
) -> Extrapolation:
    """Integrate the fitted tail beyond ``cut`` and propagate the uncertainty.

    Args:
        fit: the nominal fit.
        cut: boundary of the extrapolation region (fitted variable's units).
        side: ``"lower"`` (region x <= cut) or ``"upper"`` (x >= cut).
        alternative: fit of the alternative shape (model systematic, envelope).
        n_samples: parameter samples drawn from the covariance.
        seed: seed of those samples.

    Returns:
        :class:`Extrapolation` with the level per event of the fitted sample.
    """
    if side not in ("lower", "upper"):
        raise ValueError("side must be 'lower' or 'upper'")
    names = shapes.MODELS[fit.model]
    frac = fit.n_window / fit.n_total
    p0 = dict(fit.params)
    level = _level(p0, fit.model, fit.window, cut, side, frac)
    cov = np.asarray(fit.covariance)
    jac = np.zeros(len(names))
    for i, name in enumerate(names):
        h = 1e-4 * math.sqrt(max(cov[i, i], 1e-30))
        up, dn = dict(p0), dict(p0)
        up[name] += h
        dn[name] -= h
        jac[i] = (
            _level(up, fit.model, fit.window, cut, side, frac)
            - _level(dn, fit.model, fit.window, cut, side, frac)
        ) / (2 * h)
    lin = float(math.sqrt(max(jac @ cov @ jac, 0.0)))
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal([p0[n] for n in names], cov, size=n_samples, method="eigh")
    lows = {n: _limits(n, *fit.window)[0] for n in names}
    levels = []
    for row in draws:
        p = dict(zip(names, row, strict=True))
        if any(p[n] <= lows[n] for n in names if n != "mu"):
            continue
        value = _level(p, fit.model, fit.window, cut, side, frac)
        if math.isfinite(value):
            levels.append(value)
    if len(levels) > 50:
        q16, q84 = np.quantile(levels, [0.15865, 0.84135])
        stat_up, stat_down = max(q84 - level, 0.0), max(level - q16, 0.0)
    else:
        stat_up = stat_down = lin
    # the counting uncertainty of the window fraction (binomial), in quadrature
    rel_frac = math.sqrt(max(1.0 - frac, 0.0) / max(fit.n_window, 1))
    stat_up = math.hypot(stat_up, level * rel_frac)
    stat_down = min(math.hypot(stat_down, level * rel_frac), level)
    syst_up = syst_down = 0.0
    alt = None
    if alternative is not None:
        alt = _level(
            alternative.params,
            alternative.model,
            alternative.window,
            cut,
            side,
            alternative.n_window / alternative.n_total,
        )
        if alt > level:
            syst_up = alt - level
        else:
            syst_down = level - alt
    return Extrapolation(
        float(level), float(stat_up), float(stat_down), lin, float(syst_up), float(syst_down), alt
    )


def fit_tail_iminuit(
    counts: np.ndarray, edges: np.ndarray, *, model: str = "gauss_exp"
) -> dict[str, float]:
    """Cross-check: the same binned fit with iminuit's BinnedNLL on the closed-form CDF.

    Returns:
        Best-fit parameters.

    Raises:
        FitError: the fit is not valid.
    """
    from iminuit import Minuit
    from iminuit.cost import BinnedNLL

    names = shapes.MODELS[model]
    lo, hi = float(edges[0]), float(edges[-1])

    def cdf(x: np.ndarray, *par: float) -> np.ndarray:
        p = dict(zip(names, par, strict=True))
        norm = shapes.integral(lo, hi, p, model=model)
        return np.array([shapes.antiderivative(float(v), p, model=model) for v in x]) / norm

    cost = BinnedNLL(np.asarray(counts, float), np.asarray(edges, float), cdf)
    start = _start_values(np.asarray(counts, float), np.asarray(edges, float), model, 0)
    m = Minuit(cost, *[start[n] for n in names], name=names)
    for n in names:
        m.limits[n] = _limits(n, lo, hi)
    m.migrad()
    if not m.valid:
        raise FitError(f"iminuit cross-check: {model} fit not valid ({m.fmin})")
    return {n: float(m.values[n]) for n in names}


def histogram(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in ``edges`` (numpy; values outside are ignored)."""
    return np.histogram(np.asarray(values, dtype=float), bins=edges)[0].astype(float)
