"""Closed forms of the tail models: unnormalised densities and their integrals.

Four shapes (:data:`MODELS`): ``exponential``, ``gauss_exp``, ``double_cb`` and
``gauss``, a plain Gaussian, the core of :mod:`bkg.fit.tailmodel`; their formulas
are in :func:`pdf_unnorm`. Entry points: :func:`pdf_unnorm`, :func:`lower_tail`,
:func:`upper_tail`, :func:`integral`, :func:`antiderivative`. Integrals of the tails
are evaluated directly (an exponential or a power of the distance from the cut),
never as differences of cumulative values, so probabilities down to 1e-300 keep
full relative precision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import special

__all__ = ["MODELS", "antiderivative", "integral", "lower_tail", "pdf_unnorm", "upper_tail"]

#: Parameter names per model (order used in covariances).
MODELS: dict[str, tuple[str, ...]] = {
    "gauss_exp": ("mu", "sigmal", "alphal", "sigmar", "alphar"),
    "double_cb": ("mu", "sigma", "alphal", "nl", "alphar", "nr"),
    "exponential": ("lam",),
    "gauss": ("mu", "sigma"),
}

_SQ2 = math.sqrt(2.0)
_GAUSS_ALPHA = 40.0
_SQPI2 = math.sqrt(math.pi / 2.0)


def _side(p: Mapping[str, float], model: str, left: bool) -> tuple[float, float, float]:
    """(sigma, alpha, n) of one side; n = 0 for the exponential tail."""
    if model == "gauss_exp":
        return (p["sigmal"], p["alphal"], 0.0) if left else (p["sigmar"], p["alphar"], 0.0)
    if model == "double_cb":
        return (p["sigma"], p["alphal"], p["nl"]) if left else (p["sigma"], p["alphar"], p["nr"])
    if model == "gauss":  # a Gaussian: an exponential tail beyond 40 sigma weighs e^-800 = 0
        return (p["sigma"], _GAUSS_ALPHA, 0.0)
    raise ValueError(f"unknown model {model!r} (known: {', '.join(MODELS)})")


def _tail_from_inf(s: float, sigma: float, alpha: float, n: float) -> float:
    """Integral over x of the tail from infinity to standardised distance s >= alpha (units of x)."""
    if n == 0.0:
        return sigma / alpha * math.exp(alpha * alpha / 2.0 - alpha * s)
    # A (B + s)^(1-n) with A = (n/alpha)^n exp(-alpha^2/2), B = n/alpha - alpha, written so
    # that (n/alpha)^n cannot overflow: exp(-alpha^2/2) n/alpha (1 + alpha (s - alpha)/n)^(1-n)
    b = n / alpha - alpha
    try:
        a = (n / alpha) ** n * math.exp(-alpha * alpha / 2.0)
    except OverflowError:
        ratio = math.exp((1.0 - n) * math.log1p(alpha * (s - alpha) / n))
        return sigma / (n - 1.0) * math.exp(-alpha * alpha / 2.0) * (n / alpha) * ratio
    return sigma * a / (n - 1.0) * (b + s) ** (1.0 - n)


def _half_integral(s: float, sigma: float, alpha: float, n: float) -> float:
    """Integral of one side from infinity to standardised distance s >= 0 from mu (units of x)."""
    if s >= alpha:
        return _tail_from_inf(s, sigma, alpha, n)
    tail = _tail_from_inf(alpha, sigma, alpha, n)
    # erfc, not erf: far out in the core erf(alpha) - erf(s) cancels (-100% at s = 9 sigma)
    core = sigma * _SQPI2 * (special.erfc(s / _SQ2) - special.erfc(alpha / _SQ2))
    return tail + float(core)


def _exp_integral(lo: float, hi: float, lam: float) -> float:
    """int_lo^hi exp(lam x) dx without cancellation (expm1), for finite or infinite ends."""
    if lam == 0.0:
        return hi - lo
    if math.isinf(hi):
        return math.exp(lam * lo) / -lam if lam < 0 else math.inf
    if math.isinf(lo):
        return math.exp(lam * hi) / lam if lam > 0 else math.inf
    return math.exp(lam * lo) * math.expm1(lam * (hi - lo)) / lam


def antiderivative(x: float, params: Mapping[str, float], *, model: str) -> float:
    """An antiderivative of the unnormalised density (for bin contents as differences).

    Equal to :func:`lower_tail` where that is finite; for a falling exponential it is
    exp(lam x) / lam (the integral from -inf diverges).
    """
    if model == "exponential":
        lam = params["lam"]
        return x if lam == 0.0 else math.exp(lam * x) / lam
    return lower_tail(x, params, model=model)


def lower_tail(x: float, params: Mapping[str, float], *, model: str) -> float:
    """Unnormalised integral of the density from -inf to x (units of x).

    Example:
        >>> p = dict(mu=0.0, sigmal=1.0, alphal=2.0, sigmar=1.0, alphar=2.0)
        >>> round(lower_tail(-5.0, p, model="gauss_exp") / math.exp(2 - 10) * 2, 12)
        1.0
    """
    if model == "exponential":
        return _exp_integral(-math.inf, x, params["lam"])
    mu = params["mu"]
    sl, al, nl = _side(params, model, True)
    if x <= mu:
        return _half_integral((mu - x) / sl, sl, al, nl)
    sr, ar, nr = _side(params, model, False)
    total_left = _half_integral(0.0, sl, al, nl)
    return total_left + _half_integral(0.0, sr, ar, nr) - _half_integral((x - mu) / sr, sr, ar, nr)


def upper_tail(x: float, params: Mapping[str, float], *, model: str) -> float:
    """Unnormalised integral of the density from x to +inf (units of x)."""
    if model == "exponential":
        return _exp_integral(x, math.inf, params["lam"])
    mu = params["mu"]
    sr, ar, nr = _side(params, model, False)
    if x >= mu:
        return _half_integral((x - mu) / sr, sr, ar, nr)
    sl, al, nl = _side(params, model, True)
    return (
        _half_integral(0.0, sr, ar, nr)
        + _half_integral(0.0, sl, al, nl)
        - _half_integral((mu - x) / sl, sl, al, nl)
    )


def integral(lo: float, hi: float, params: Mapping[str, float], *, model: str) -> float:
    """Unnormalised integral over [lo, hi] (units of x); for windows, not for tiny tails."""
    if model == "exponential":
        return _exp_integral(lo, hi, params["lam"])
    mu = params["mu"]
    if hi <= mu:
        return lower_tail(lo, params, model=model) * -1.0 + lower_tail(hi, params, model=model)
    if lo >= mu:
        return upper_tail(lo, params, model=model) - upper_tail(hi, params, model=model)
    return (lower_tail(mu, params, model=model) - lower_tail(lo, params, model=model)) + (
        upper_tail(mu, params, model=model) - upper_tail(hi, params, model=model)
    )


def pdf_unnorm(x: np.ndarray, params: Mapping[str, float], *, model: str) -> np.ndarray:
    """Unnormalised density at x (array), 1 at the peak (exponential: at x = 0).

    ``exponential`` (zfit ``Exponential``): exp(lam x), the attenuation law of a depth
    distribution beyond its core (punch-through). The other two are written in the
    standardised variable t = (x - mu) / sigma_side:

    * ``gauss_exp``: Gaussian core with exponential tails (zfit
      ``GeneralizedGaussExpTail``): exp(-t^2/2) for -alpha_l <= t <= alpha_r,
      exp(alpha^2/2 - alpha |t|) beyond.
    * ``double_cb``: Gaussian core with power-law tails (zfit ``DoubleCB``):
      A (B - |t|)^-n beyond alpha, A = (n/alpha)^n exp(-alpha^2/2), B = n/alpha - alpha.
    """
    x = np.asarray(x, dtype=float)
    if model == "exponential":
        with np.errstate(over="ignore"):  # a rising exponential far out is inf, said no warning
            return np.exp(params["lam"] * x)
    mu = params["mu"]
    out = np.empty_like(x)
    for left, sel in ((True, x < mu), (False, x >= mu)):
        sigma, alpha, n = _side(params, model, left)
        s = np.abs(x[sel] - mu) / sigma
        # each piece only where it applies, in a form that cannot overflow: the tail
        # exp(alpha^2/2 - alpha s) computed in the core overflowed ("overflow encountered
        # in exp" on stderr) for a large alpha; A (B + s)^-n = exp(-alpha^2/2) (1 + alpha
        # (s - alpha) / n)^-n, with A = (n/alpha)^n exp(-alpha^2/2), B = n/alpha - alpha
        core = s < alpha
        dens = np.empty_like(s)
        dens[core] = np.exp(-0.5 * s[core] ** 2)
        tail = s[~core]  # >= alpha: the exponent alpha^2/2 - alpha s is <= -alpha^2/2
        if n == 0.0:
            dens[~core] = np.exp(alpha * alpha / 2.0 - alpha * tail)
        else:
            try:  # A (B + s)^-n as the fits always computed it (the same rounding) ...
                a = (n / alpha) ** n * math.exp(-alpha * alpha / 2.0)
                dens[~core] = a * (n / alpha - alpha + tail) ** (-n)
            except OverflowError:  # ... or, where A overflows, in logarithms
                dens[~core] = np.exp(
                    -0.5 * alpha * alpha - n * np.log1p(alpha * (tail - alpha) / n)
                )
        out[sel] = dens
    return out
