"""Tail models judged on the tail: extended zfit fits above a threshold, tail checks, closure.

A distribution x (a residual, a balance, a depth) has a core and a tail on its signal
side. The level beyond the cut is not read off a core model continued outwards: the
tail alone is fitted above a threshold t0 (:func:`fit_tail_model`; the likelihood:
:class:`_TailLoss`), for every tail shape (:data:`SHAPES`; the physics of each:
:func:`shape_density`). Entry points: :func:`scan_tail` (every fit, its checks, the
envelope), :func:`closure_split`, :func:`survival`. Method: docs/tail-extrapolation.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from bkg.errors import FitError

__all__ = [
    "SHAPES",
    "Core",
    "TailModelFit",
    "TailScan",
    "closure_split",
    "fit_core",
    "fit_tail_model",
    "poisson_two_sided",
    "scan_tail",
    "survival",
    "tail_checks",
]

#: tail shapes: name -> (parameter, what it is)
SHAPES: dict[str, tuple[str, str]] = {
    "rutherford_ff": ("q", "d^-3 exp(-d^2/q^2): single scattering with a nuclear form factor"),
    "power": ("n", "d^-n: single scattering on a point-like target (no form factor)"),
    "exp": ("s", "exp(-d/s): attenuation / radiative losses"),
}

#: a fit passes when every tail check and its deviance have p >= this
P_MIN = 0.01
#: toys of the deviance p-value (each refitted), a batch: more batches while p is small
N_TOYS = 20
#: bins of the tail's binned deviance (log-spaced in d from t0 to the cut)
N_DEV_BINS = 12
#: nodes of the normalisation integral (Simpson in ln d) inside the fit
_N_NODES = 257


def poisson_two_sided(observed: int, predicted: float) -> float:
    """Two-sided Poisson p-value: 2 min(P(N <= k), P(N >= k)), at most 1.

    Example:
        >>> round(poisson_two_sided(0, 1.0), 4)
        0.7358
        >>> poisson_two_sided(5, 5.0)
        1.0
    """
    k, mu = int(observed), max(float(predicted), 1e-300)
    lower = float(stats.poisson.cdf(k, mu))
    upper = float(stats.poisson.sf(k - 1, mu))
    return float(min(1.0, 2.0 * min(lower, upper)))


# ---------------------------------------------------------------------------------------
# closed forms (numpy) of the shapes: density and the integral from d to infinity
# ---------------------------------------------------------------------------------------


def _log_gamma_m1(u: np.ndarray) -> np.ndarray:
    """ln Gamma(-1, u) for u > 0 without cancellation (series beyond u = 50)."""
    u = np.asarray(u, dtype=float)
    out = np.empty_like(u)
    small = u <= 50.0
    us = u[small]
    # Gamma(-1, u) = e^-u / u - E1(u) = e^-u (1/u - e^u E1(u))
    h = 1.0 / us - special.exp1(us) * np.exp(us)
    out[small] = -us + np.log(np.maximum(h, 1e-300))
    ub = u[~small]
    # e^u Gamma(-1, u) ~ 1/u^2 - 2/u^3 + 6/u^4 - 24/u^5 + 120/u^6
    series = 1 / ub**2 - 2 / ub**3 + 6 / ub**4 - 24 / ub**5 + 120 / ub**6
    out[~small] = -ub + np.log(series)
    return out


def shape_density(d: np.ndarray, shape: str, theta: float) -> np.ndarray:
    """Unnormalised density f(d) of a tail shape (d > 0).

    The shapes (:data:`SHAPES`) follow the processes that populate the tails (the
    sample's ``process`` branch, docs/tail-extrapolation.md):

    * ``rutherford_ff``: single large-angle scattering, d^-3 exp(-d^2 / q^2): the
      Rutherford law of the kink angle, cut off by the nuclear form factor
      exp(-q^2 <r^2> / 3) (Gaussian in the momentum transfer, which the residual is
      proportional to);
    * ``power``: d^-n, n free: the same scattering without a form factor (a point-like
      target), the hardest shape the processes allow;
    * ``exp``: exp(-d / s): an attenuation (a hadron shower's start, escape through an
      absorber) or radiative losses.
    """
    d = np.asarray(d, dtype=float)
    if shape == "exp":
        return np.exp(-d / theta)
    if shape == "power":
        return d ** (-theta)
    if shape == "rutherford_ff":
        return d**-3.0 * np.exp(-((d / theta) ** 2))
    raise ValueError(f"unknown tail shape {shape!r} (known: {', '.join(SHAPES)})")


def log_shape_survival(d: float | np.ndarray, shape: str, theta: float | np.ndarray) -> np.ndarray:
    """ln of int_d^inf f: closed forms, finite far out (ln, not the value: 1e-300 and below)."""
    d = np.asarray(d, dtype=float)
    if shape == "exp":
        return np.log(theta) - d / theta
    if shape == "power":
        if np.ndim(theta) == 0 and theta <= 1.0:  # an array of theta: all > 1 (the caller's)
            return np.full(np.shape(d), np.inf)
        return (1.0 - theta) * np.log(d) - np.log(theta - 1.0)
    if shape == "rutherford_ff":
        # int d^-3 exp(-d^2/q^2) dd = Gamma(-1, d^2/q^2) / (2 q^2)
        return _log_gamma_m1((d / theta) ** 2) - np.log(2.0 * theta * theta)
    raise ValueError(f"unknown tail shape {shape!r} (known: {', '.join(SHAPES)})")


def shape_integral(a: float, b: float, shape: str, theta: float) -> float:
    """int_a^b f (a < b; b may be inf)."""
    la = float(log_shape_survival(a, shape, theta))
    if math.isinf(b):
        return math.exp(la) if la < 700 else math.inf
    if shape == "power" and theta <= 1.0:  # finite on a finite range, divergent beyond
        return (
            (b ** (1 - theta) - a ** (1 - theta)) / (1 - theta) if theta != 1.0 else math.log(b / a)
        )
    lb = float(log_shape_survival(b, shape, theta))
    return math.exp(la) * -math.expm1(lb - la) if la < 700 else math.inf


def log_shape_integral(a: float, b: float, shape: str, theta: float) -> float:
    """ln int_a^b f (a < b), in log space: finite where the integral underflows a float."""
    la = float(log_shape_survival(a, shape, theta))
    if math.isinf(b):
        return la
    if shape == "power" and theta <= 1.0:
        value = shape_integral(a, b, shape, theta)
        return math.log(value) if value > 0 else -math.inf
    lb = float(log_shape_survival(b, shape, theta))
    if not lb < la:
        return -math.inf
    return la + math.log(-math.expm1(lb - la))


def survival(x: float | np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Expected events of a fitted model at or beyond x (x >= its t0), to infinity.

    ``params``: the ``model`` dict of a :class:`TailModelFit` (shape, theta, n_tail, t0,
    cut, x_ref and the core's mu, sigma, n_core).
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    shape, theta = params["shape"], float(params["theta"])
    ref = float(params["x_ref"])
    d0, dc = float(params["t0"]) - ref, float(params["cut"]) - ref
    log_norm = log_shape_integral(d0, dc, shape, theta)
    lt = log_shape_survival(np.maximum(x - ref, d0), shape, theta)
    if not math.isfinite(log_norm):  # a shape with no weight in the window: no tail
        tail = np.zeros_like(x)
    else:
        tail = float(params["n_tail"]) * np.exp(lt - log_norm)
    return tail + _core_survival(x, params)


def _core_survival(x: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    n_core = float(params.get("n_core", 0.0))
    if n_core <= 0:
        return np.zeros_like(x)
    z = (x - float(params["mu"])) / float(params["sigma"])
    return n_core * 0.5 * special.erfc(z / math.sqrt(2.0))


def expected_between(lo: float, hi: float, params: Mapping[str, Any]) -> float:
    """Expected events in [lo, hi) of a fitted model (lo >= its t0)."""
    s = survival(np.array([lo, hi]), params)
    return float(max(s[0] - s[1], 0.0))


# ---------------------------------------------------------------------------------------
# the core
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Core:
    """Gaussian core of a distribution: mean, width, events it holds (all of it)."""

    mu: float
    sigma: float
    n: float

    def edge(self, k: float) -> float:
        """mu + k sigma."""
        return self.mu + k * self.sigma

    def between(self, a: float, b: float) -> float:
        """Events of the core in [a, b)."""
        za, zb = (a - self.mu) / self.sigma, (b - self.mu) / self.sigma
        return self.n * 0.5 * (special.erfc(za / math.sqrt(2)) - special.erfc(zb / math.sqrt(2)))

    def to_dict(self) -> dict[str, float]:
        return {"mu": self.mu, "sigma": self.sigma, "n_core": self.n}


def fit_core(
    counts: np.ndarray, edges: np.ndarray, *, source: str, half_sigmas: float = 2.5
) -> Core:
    """Gaussian core from the histogram's centre, |x - mu| < 2.5 sigma (zfit binned fit).

    Start from the truncated moments, fit a Gaussian (zfit, Poisson binned likelihood) to
    the bins within ``half_sigmas`` of the mean, and scale its events in that range to the
    whole Gaussian.
    """
    from bkg.fit.tailfit import fit_tail

    counts = np.asarray(counts, float)
    edges = np.asarray(edges, float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    if counts.sum() < 50:
        raise FitError(f"{source}: {counts.sum():.0f} events in the window, too few for a core")
    mu = float(np.average(centres, weights=counts))
    sigma = float(np.sqrt(np.average((centres - mu) ** 2, weights=counts)))
    for _ in range(2):  # truncated moments: the tails pull the plain rms out
        sel = np.abs(centres - mu) < 2.5 * sigma
        if counts[sel].sum() < 50 or not sigma > 0:
            raise FitError(f"{source}: no Gaussian core in the window (all events in one bin?)")
        mu = float(np.average(centres[sel], weights=counts[sel]))
        sigma = float(np.sqrt(np.average((centres[sel] - mu) ** 2, weights=counts[sel]))) / 0.8617
    a = int(np.searchsorted(edges, mu - half_sigmas * sigma))
    b = int(np.searchsorted(edges, mu + half_sigmas * sigma))
    a, b = max(a, 0), min(b, len(counts))
    fit = fit_tail(counts[a:b], edges[a : b + 1], n_total=int(counts.sum()), model="gauss",
                   source=source)  # fmt: skip
    mu, sigma = float(fit.params["mu"]), float(fit.params["sigma"])
    lo, hi = float(edges[a]), float(edges[b])
    inside = 0.5 * (
        special.erf((hi - mu) / sigma / math.sqrt(2))
        - special.erf((lo - mu) / sigma / math.sqrt(2))
    )
    return Core(mu, sigma, float(counts[a:b].sum()) / float(inside))


# ---------------------------------------------------------------------------------------
# the extended zfit fit of the tail above t0
# ---------------------------------------------------------------------------------------


def _simpson_nodes(d0: float, d1: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes u = d / d0 over [1, d1/d0] and their weights (Simpson in ln u, times u) for the
    normalisation integral of a tail shape: int f(u) du = sum weights * f(nodes)."""
    s = np.linspace(0.0, math.log(d1 / d0), _N_NODES)
    w = np.ones(_N_NODES)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return np.exp(s), w * (s[1] - s[0]) / 3.0 * np.exp(s)


#: the code of each shape in the one zfit loss (:class:`_TailLoss`)
_SHAPE_CODE = {"exp": 0, "power": 1, "rutherford_ff": 2}


class _TailLoss:
    """zfit loss of the tail shapes: extended unbinned NLL above t0, data in TF variables.

    The tail alone is fitted above t0 (the caller scans t0 from the core's edge
    outwards) with an extended unbinned likelihood (zfit,
    :class:`bkg.fit.compiled.CompiledMinuit`). Above t0 the expected density is

        nu(x) = G(x) + N_t f(d; theta) / int_{t0}^{cut} f,    d = x - x_ref,

    with G the Gaussian core fitted to the window's centre (fixed: millions of events),
    or zero for a distribution without one (the punch-through depth), and N_t, theta
    free. One graph for every shape (its code in a variable selects it): traced once,
    not once per shape. Each shape's value is computed by its own operations and
    selected, so the floats are those of a graph of that shape alone.
    """

    def __init__(self) -> None:
        from bkg.fit._zfit import load_zfit

        load_zfit()
        # isort: off
        import zfit
        import tensorflow as tf

        # isort: on
        from bkg.fit.compiled import CompiledMinuit

        uid = f"tail_{id(self)}"
        # fitted in canonical units: d / d0 (d0 = t0 - x_ref), tail counts free
        self.theta = zfit.Parameter(f"theta_{uid}", 1.0, 1e-4, 1e4)
        self.n_tail = zfit.Parameter(f"ntail_{uid}", 10.0, 0.0, 1e9)
        f64 = tf.float64
        self.data = tf.Variable(
            np.ones(1), dtype=f64, shape=tf.TensorShape([None]), trainable=False
        )
        self.nodes = tf.Variable(np.ones(_N_NODES), dtype=f64, trainable=False)  # d/d0 nodes
        self.weights = tf.Variable(np.ones(_N_NODES), dtype=f64, trainable=False)  # Simpson x d
        self.core_data = tf.Variable(
            np.ones(1), dtype=f64, shape=tf.TensorShape([None]), trainable=False
        )
        self.core_total = tf.Variable(0.0, dtype=f64, trainable=False)
        self.code = tf.Variable(0, dtype=tf.int32, trainable=False)
        data, nodes, weights, core_data, core_total, code = (
            self.data, self.nodes, self.weights, self.core_data, self.core_total, self.code
        )  # fmt: skip
        theta, n_tail = self.theta, self.n_tail

        def f(u: Any) -> Any:
            exp = tf.exp(-(u - 1.0) / theta)
            power = tf.exp(-theta * tf.math.log(u))
            rutherford = tf.exp(-3.0 * tf.math.log(u) - (u * u - 1.0) / (theta * theta))
            return tf.where(code == 0, exp, tf.where(code == 1, power, rutherford))

        def nll() -> Any:
            norm = tf.reduce_sum(weights * f(nodes))
            dens = core_data + n_tail * f(data) / norm
            return core_total + n_tail - tf.reduce_sum(tf.math.log(tf.maximum(dens, 1e-300)))

        graph = tf.function(nll, autograph=False)
        self.loss = zfit.loss.SimpleLoss(lambda params=None: graph(), params=[self.theta, self.n_tail],
                                         errordef=0.5, jit=False)  # fmt: skip
        self.minimizer = CompiledMinuit(gradient=True, tol=1e-4)
        self.minimizer.compile_loss(self.loss, graph)

    def set_shape(self, shape: str) -> None:
        self.code.assign(_SHAPE_CODE[shape])

    def set_range(self, d0: float, dc: float) -> None:
        """Integration nodes of the normalisation over [1, dc/d0] (Simpson in ln u)."""
        nodes, weights = _simpson_nodes(d0, dc)
        self.nodes.assign(nodes)
        self.weights.assign(weights)

    def set_data(self, u: np.ndarray, core_density: np.ndarray, core_total: float) -> None:
        self.data.assign(np.asarray(u, float))
        self.core_data.assign(np.asarray(core_density, float))
        self.core_total.assign(float(core_total))

    def minimise(self, start: Sequence[tuple[float, float]]) -> tuple[Any, str]:
        reason = "not run"
        for theta0, n0 in start:
            self.theta.set_value(theta0)
            self.n_tail.set_value(n0)
            try:
                result = self.minimizer.minimize(self.loss)
            except Exception as exc:  # the minimiser's own failure
                reason = f"{type(exc).__name__}: {exc}"
                continue
            if result.valid and result.converged:
                return result, ""
            reason = f"valid={result.valid}, converged={result.converged}"
        return None, reason


_LOSSES: list[_TailLoss] = []


def _loss_for(shape: str) -> _TailLoss:
    if shape not in SHAPES:
        raise ValueError(f"unknown tail shape {shape!r} (known: {', '.join(SHAPES)})")
    if not _LOSSES:
        _LOSSES.append(_TailLoss())
    _LOSSES[0].set_shape(shape)
    return _LOSSES[0]


#: start values of theta in units of d0 (q, n, s)
_STARTS = {"rutherford_ff": (1.0, 0.5, 2.0), "power": (5.0, 3.0, 10.0), "exp": (0.3, 0.1, 1.0)}


@dataclass
class TailModelFit:
    """One extended fit of a tail shape above t0, with its checks and its extrapolation."""

    shape: str
    t0: float
    model: dict[str, Any]
    covariance: list[list[float]]
    n_fit: int
    level: float
    stat_up: float
    stat_down: float
    tail_checks: list[dict[str, float]] = field(default_factory=list)
    deviance: dict[str, float] = field(default_factory=dict)
    passed: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "t0": self.t0,
            # a fit that failed (its reason says why) has no parameters
            "parameters": {
                SHAPES[self.shape][0]: self.model["theta"],
                "n_tail": self.model["n_tail"],
            }
            if self.model
            else {},
            "model": self.model,
            "covariance": self.covariance,
            "n_fit": self.n_fit,
            "level": self.level if math.isfinite(self.level) else None,  # None: not fitted
            "stat_up": self.stat_up,
            "stat_down": self.stat_down,
            "tail_checks": self.tail_checks,
            "deviance": self.deviance,
            "passed": self.passed,
            "reason": self.reason,
        }


def _core_density(x: np.ndarray, core: Core | None) -> np.ndarray:
    if core is None:
        return np.zeros_like(x)
    z = (x - core.mu) / core.sigma
    return core.n * np.exp(-0.5 * z * z) / (core.sigma * math.sqrt(2 * math.pi))


def _model_dict(shape: str, theta: float, n_tail: float, t0: float, cut: float, x_ref: float,
                core: Core | None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"shape": shape, "theta": theta, "n_tail": n_tail, "t0": t0, "cut": cut,
                           "x_ref": x_ref}  # fmt: skip
    if core is not None:
        out.update(core.to_dict())
    return out


class _Shape:
    """The tail shape f(u; theta) of :class:`_TailLoss` in numpy at fixed points u >= 1.

    The parts without theta are computed once (a fit evaluates f at hundreds of theta);
    the operations left per theta are those of the whole expression, so the floats are
    the same as evaluating it at once.
    """

    def __init__(self, shape: str, u: np.ndarray) -> None:
        self.shape = shape
        if shape == "exp":  # exp(-(u - 1) / theta)
            self.a = -(u - 1.0)
        elif shape == "power":  # exp(-theta ln u)
            self.a = np.log(u)
        else:  # exp(-3 ln u - (u^2 - 1) / theta^2)
            self.a, self.b = -3.0 * np.log(u), u * u - 1.0

    def __call__(self, theta: float) -> np.ndarray:
        if self.shape == "exp":
            return np.exp(self.a / theta)
        if self.shape == "power":
            return np.exp(-theta * self.a)
        return np.exp(self.a - self.b / (theta * theta))


class _WindowLikelihood:
    """Extended NLL of the window above t0 (as :class:`_TailLoss`): the fixed core plus
    n_tail f(u; theta) / int f, in numpy, for the refits of toys and the split closure."""

    def __init__(self, shape: str, u: np.ndarray, core_u: np.ndarray, core_total: float,
                 nodes: np.ndarray, weights: np.ndarray) -> None:  # fmt: skip
        self.f_u, self.f_nodes = _Shape(shape, u), _Shape(shape, nodes)
        self.weights, self.core_u, self.core_total = weights, core_u, core_total

    # both called inside np.errstate(all="ignore"), set once per minimisation, not per
    # call (a few microseconds each, on calls of tens): overflow, underflow, log(0) and
    # 0/0 give inf, 0, -inf and nan (a shape far outside its range), which the fits handle

    def normalised(self, theta: float) -> np.ndarray:
        """f(u; theta) / int f over the window (nodes, weights of :func:`_simpson_nodes`)."""
        norm = float(np.sum(self.weights * self.f_nodes(theta)))
        return self.f_u(theta) / norm

    def nll(self, f_u: np.ndarray, n_tail: float) -> float:
        """The NLL at n_tail of the window's normalised shape ``f_u`` (:meth:`normalised`)."""
        dens = np.maximum(self.core_u + n_tail * f_u, 1e-300)
        return self.core_total + n_tail - float(np.sum(np.log(dens)))


def _minimise_numpy(shape: str, u: np.ndarray, core_u: np.ndarray, core_total: float,
                    d0: float, dc: float, n0: float) -> tuple[float, float] | None:  # fmt: skip
    """The same extended NLL as :class:`_TailLoss`, minimised by iminuit on numpy arrays.

    For refits without covariance (``fit_tail_model(engine="numpy")``, and the toys that
    :class:`_BatchFit` leaves unconverged): the same likelihood, normalisation nodes and
    start values as the zfit fit, without TensorFlow's per-call cost (about 20x faster
    on a few hundred events). Returns (theta in units of d0, n_tail), or None when no
    start converges.
    """
    from iminuit import Minuit

    like = _WindowLikelihood(shape, u, core_u, core_total, *_simpson_nodes(d0, dc))

    def nll(theta: float, n_tail: float) -> float:
        value = like.nll(like.normalised(theta), n_tail)
        return value if math.isfinite(value) else 1e300

    for theta0 in _STARTS[shape]:
        m = Minuit(nll, theta=theta0, n_tail=n0)
        m.errordef = Minuit.LIKELIHOOD
        m.limits = [(1e-4, 1e4), (0.0, 1e9)]
        with np.errstate(all="ignore"):
            m.migrad()
        if m.valid:
            return float(m.values["theta"]), float(m.values["n_tail"])
    return None


class _BatchFit:
    """The numpy NLL of :func:`_minimise_numpy` for many samples at once, with its exact
    gradient and Hessian, minimised by damped Newton steps (Levenberg-Marquardt).

    The deviance test refits a batch of toys of one model: the same shape, window, core
    and normalisation nodes, different events. Their events are concatenated, toy after
    toy, and every iteration is one pass of numpy over all of them (one exp and one log
    per event): no Python call per toy and per NLL value, and about 7 Newton iterations
    instead of about 45 NLL values of Migrad's numerical derivatives per toy.

    The likelihood is that of :class:`_WindowLikelihood`. In each shape ln f is linear in
    two per-event constants, ln f = alpha(theta) a + beta(theta) b, and its derivatives in
    theta are k1(theta) v and k2(theta) v of one of them (v = a or b). With g = f / Z,
    h = d ln g / d theta = k1 v - Z'/Z, h' = k2 v - (ln Z)'', r = n g / (core + n g):

        dF/dn = 1 - sum r / n,                 dF/dtheta = -sum r h,
        d2F/dn2 = sum r^2 / n^2,               d2F/dn dtheta = -sum r (1 - r) h / n,
        d2F/dtheta2 = -sum [r h' + r (1 - r) h^2],

    so each toy needs six sums over its events. Without a core (r = 1) every sum is one of
    the toy's constants (its count, sum a, sum b): the events are not visited at all.

    A toy that does not converge (a minimum on a limit, a Hessian that stays indefinite)
    is left to :func:`_minimise_numpy` (Migrad) by the caller.
    """

    #: converged when the expected distance to the minimum (Migrad's EDM, g H^-1 g / 2)
    #: is below this: 1e6 times tighter than Migrad's own stop (EDM < 1e-4 at tol 0.1)
    EDM = 1e-10
    MAX_ITER = 100

    def __init__(self, shape: str, samples: Sequence[np.ndarray], core_u: Sequence[np.ndarray],
                 core_total: float, d0: float, dc: float) -> None:  # fmt: skip
        self.shape, self.core_total = shape, float(core_total)
        self.m = len(samples)
        self.counts = np.array([s.size for s in samples], dtype=np.intp)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.intp)
        u = np.concatenate(samples) if self.m else np.zeros(0)
        self.core = np.concatenate(core_u) if self.m else np.zeros(0)
        self.has_core = bool(np.any(self.core > 0))
        self.a, self.b = self._constants(u)
        self.v = self.b if shape == "rutherford_ff" else self.a
        nodes, self.w = _simpson_nodes(d0, dc)
        self.na, self.nb = self._constants(nodes)
        self.nv = self.nb if shape == "rutherford_ff" else self.na
        self.sum_a, self.sum_b = self._sum(self.a), self._sum(self.b)
        self.sum_v = self.sum_b if shape == "rutherford_ff" else self.sum_a

    def _sum(self, x: np.ndarray) -> np.ndarray:
        """Sum of a per-event array over each toy's events."""
        return np.add.reduceat(x, self.starts) if x.size else np.zeros(self.m)

    def _constants(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.shape == "exp":  # ln f = -(u - 1) / theta
            return -(u - 1.0), np.zeros_like(u)
        if self.shape == "power":  # ln f = -theta ln u
            return np.log(u), np.zeros_like(u)
        return -3.0 * np.log(u), u * u - 1.0  # ln f = -3 ln u - (u^2 - 1) / theta^2

    def _coefficients(self, t: np.ndarray) -> tuple[np.ndarray, ...]:
        """(alpha, beta, k1, k2) of each theta."""
        one = np.ones_like(t)
        if self.shape == "exp":
            return 1.0 / t, 0.0 * t, -1.0 / t**2, 2.0 / t**3
        if self.shape == "power":
            return -t, 0.0 * t, -one, 0.0 * t
        return one, -1.0 / t**2, 2.0 / t**3, -6.0 / t**4

    def evaluate(self, theta: np.ndarray, n: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """NLL (m,), gradient (m, 2) and Hessian (m, 2, 2) in (theta, n) of every toy."""
        al, be, k1, k2 = self._coefficients(theta)
        # normalisation Z over the nodes (toys x nodes): ln Z, (ln Z)', (ln Z)''
        ln_f = al[:, None] * self.na + be[:, None] * self.nb
        wf = self.w * np.exp(ln_f)
        z = wf.sum(axis=1)
        wfv = (wf * self.nv).sum(axis=1) / z
        dz = k1 * wfv
        ddz = k2 * wfv + k1 * k1 * (wf * self.nv * self.nv).sum(axis=1) / z - dz * dz
        count = self.counts.astype(float)
        if self.has_core:
            rep = np.repeat
            ln_ng = self.a * rep(al, self.counts) + self.b * rep(be, self.counts)
            ng = np.exp(ln_ng) * rep(n / z, self.counts)
            dens = np.maximum(self.core + ng, 1e-300)
            r = ng / dens
            q = r * (1.0 - r)
            qv = q * self.v
            s_ln = self._sum(np.log(dens))
            s_r, s_rv = self._sum(r), self._sum(r * self.v)
            s_q, s_qv, s_qvv = self._sum(q), self._sum(qv), self._sum(qv * self.v)
        else:  # r = 1: sums of the toy's constants
            with np.errstate(divide="ignore"):
                s_ln = count * (np.log(n) - np.log(z)) + al * self.sum_a + be * self.sum_b
            s_r, s_rv = count, self.sum_v
            s_q = s_qv = s_qvv = np.zeros(self.m)
        nll = self.core_total + n - s_ln
        grad = np.stack([-(k1 * s_rv - dz * s_r), 1.0 - s_r / n], axis=1)
        hess = np.empty((self.m, 2, 2))
        hess[:, 0, 0] = -(k2 * s_rv - ddz * s_r + k1 * k1 * s_qvv - 2.0 * k1 * dz * s_qv
                          + dz * dz * s_q)  # fmt: skip
        hess[:, 1, 1] = (s_r - s_q) / (n * n)
        hess[:, 0, 1] = hess[:, 1, 0] = -(k1 * s_qv - dz * s_q) / n
        return nll, grad, hess

    def minimise(self, theta0: np.ndarray, n0: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(theta, n_tail, converged) of every toy from its start (theta0, n0)."""
        theta, n = np.array(theta0, float), np.array(n0, float)
        with np.errstate(all="ignore"):
            f, g, hs = self.evaluate(theta, n)
            lam = np.full(self.m, 1e-6)
            done = np.zeros(self.m, bool)
            failed = ~np.isfinite(f)
            for _ in range(self.MAX_ITER):
                det = hs[:, 0, 0] * hs[:, 1, 1] - hs[:, 0, 1] ** 2
                pd = (hs[:, 0, 0] > 0) & (det > 0) & np.all(np.isfinite(g), axis=1)
                edm = 0.5 * (hs[:, 1, 1] * g[:, 0] ** 2 - 2 * hs[:, 0, 1] * g[:, 0] * g[:, 1]
                             + hs[:, 0, 0] * g[:, 1] ** 2) / det  # fmt: skip
                done |= pd & (edm < self.EDM) & ~failed
                active = ~done & ~failed
                if not active.any():
                    break
                # damped Newton: (H + lam diag|H|) step = -g
                a11 = hs[:, 0, 0] + lam * np.maximum(np.abs(hs[:, 0, 0]), 1e-300)
                a22 = hs[:, 1, 1] + lam * np.maximum(np.abs(hs[:, 1, 1]), 1e-300)
                a12 = hs[:, 0, 1]
                da = a11 * a22 - a12 * a12
                ok = active & (a11 > 0) & (da > 0)
                tt = theta - (a22 * g[:, 0] - a12 * g[:, 1]) / da
                tn = n - (a11 * g[:, 1] - a12 * g[:, 0]) / da
                ok &= (tt >= 1e-4) & (tt <= 1e4) & (tn > 0) & (tn <= 1e9)
                tt, tn = np.where(ok, tt, theta), np.where(ok, tn, n)
                ft, gt, ht = self.evaluate(tt, tn)
                better = ok & np.isfinite(ft) & (ft <= f)
                theta, n = np.where(better, tt, theta), np.where(better, tn, n)
                f = np.where(better, ft, f)
                g = np.where(better[:, None], gt, g)
                hs = np.where(better[:, None, None], ht, hs)
                lam = np.where(better, np.maximum(lam * 0.1, 1e-12), lam * 10.0)
                failed |= active & (lam > 1e12)
        return theta, n, done & ~failed


def fit_tail_model(
    values: np.ndarray,
    *,
    shape: str,
    t0: float,
    cut: float,
    x_ref: float,
    core: Core | None,
    source: str = "fit",
    hesse: bool = True,
    engine: str = "zfit",
) -> tuple[dict[str, Any], np.ndarray, Any]:
    """Extended unbinned zfit fit of ``shape`` (+ the fixed core) to the values in [t0, cut).

    ``engine="numpy"`` minimises the same likelihood with iminuit directly (no covariance,
    no zfit result): the refits of toys and bootstrap replicas.

    Returns:
        (model dict, covariance of (theta, n_tail) in the variable's units, zfit result).

    Raises:
        FitError: fewer than 3 events above t0, or no valid fit.
    """
    x = np.asarray(values, float)
    x = x[(x >= t0) & (x < cut)]
    if x.size < 3:
        raise FitError(
            f"{source}: {shape}: {x.size} events above t0 = {t0:.4g}, too few for a tail fit"
        )
    d0, dc = t0 - x_ref, cut - x_ref
    if not d0 > 0:
        raise FitError(f"{source}: t0 = {t0:.4g} is not beyond the reference {x_ref:.4g}")
    if shape not in SHAPES:
        raise ValueError(f"unknown tail shape {shape!r} (known: {', '.join(SHAPES)})")
    core_in = 0.0 if core is None else core.between(t0, cut)
    # canonical units: u = d / d0, densities per unit of u
    u, core_u = (x - x_ref) / d0, _core_density(x, core) * d0
    n0 = max(x.size - core_in, 1.0)
    scale = 1.0 if shape == "power" else d0  # q and s are lengths, n is a number
    if engine == "numpy":
        found = _minimise_numpy(shape, u, core_u, core_in, d0, dc, n0)
        if found is None:
            raise FitError(f"{source}: {shape} tail fit above {t0:.4g} failed (iminuit)")
        model = _model_dict(shape, found[0] * scale, found[1], t0, cut, x_ref, core)
        return model, np.zeros((2, 2)), None
    loss = _loss_for(shape)
    loss.set_range(d0, dc)
    loss.set_data(u, core_u, core_in)
    result, reason = loss.minimise([(s, n0) for s in _STARTS[shape]])
    if result is None:
        raise FitError(f"{source}: {shape} tail fit above {t0:.4g} failed: {reason}")
    cov = np.zeros((2, 2))
    if hesse:
        try:
            cov = np.asarray(result.covariance(params=[loss.theta, loss.n_tail]), float)
        except Exception as exc:
            raise FitError(f"{source}: {shape}: Hesse failed ({type(exc).__name__})") from None
        if not np.all(np.isfinite(cov)):
            raise FitError(f"{source}: {shape}: covariance not finite")
    theta_u, n_tail = float(loss.theta.value()), float(loss.n_tail.value())
    cov = cov * np.outer([scale, 1.0], [scale, 1.0])
    model = _model_dict(shape, theta_u * scale, n_tail, t0, cut, x_ref, core)
    return model, cov, result


def _level_draws(model: Mapping[str, Any], cov: np.ndarray, n_total: float, rng: np.random.Generator,
                 n: int = 1000) -> tuple[float, float]:  # fmt: skip
    """(up, down) 68% half-widths of the level from (theta, n_tail) drawn from the covariance."""
    p0 = np.array([model["theta"], model["n_tail"]])
    draws = rng.multivariate_normal(p0, cov, size=n, method="eigh")
    level = float(survival(model["cut"], model)[0]) / n_total
    theta, n_tail = draws[:, 0], draws[:, 1]
    ok = (theta > 0) & (n_tail >= 0)
    if model["shape"] == "power":
        ok &= theta > 1.0
    vals = _levels_at_cut(model, theta[ok], n_tail[ok]) / n_total
    vals = vals[np.isfinite(vals)]
    if len(vals) < 50:
        return level, level
    q16, q84 = np.quantile(vals, [0.15865, 0.84135])
    return max(float(q84) - level, 0.0), max(level - float(q16), 0.0)


def _levels_at_cut(model: Mapping[str, Any], theta: np.ndarray, n_tail: np.ndarray) -> np.ndarray:
    """``survival(cut, model)`` for many (theta, n_tail) at once (theta > 1 for ``power``).

    The same floats as :func:`survival` one draw at a time: the normalisation's ends as
    :func:`log_shape_integral` computes them (from scalars: a square by ``pow``), the
    survival at the cut as :func:`survival` does (from an array: a square by ``x * x``).
    """
    shape, ref = model["shape"], float(model["x_ref"])
    d0, dc = float(model["t0"]) - ref, float(model["cut"]) - ref
    x = np.atleast_1d(np.asarray(model["cut"], dtype=float))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        la = _log_survival_scalarwise(d0, shape, theta)
        lb = _log_survival_scalarwise(dc, shape, theta)
        lt = log_shape_survival(np.maximum(x - ref, d0), shape, theta)
        finite = lb < la
        log_norm = np.where(finite, la + np.log(-np.expm1(np.where(finite, lb - la, -1.0))), 0.0)
        tail = np.where(finite, n_tail * np.exp(lt - log_norm), 0.0)
    return tail + float(_core_survival(x, model)[0])


def _log_survival_scalarwise(d: float, shape: str, theta: np.ndarray) -> np.ndarray:
    """:func:`log_shape_survival` of a scalar d at each theta, as it is one theta at a time."""
    if shape != "rutherford_ff":
        return log_shape_survival(np.full(theta.shape, d), shape, theta)
    # (d / q)^2 of a scalar is pow(., 2), which can differ from the array's x * x by an ulp
    u = np.array([v**2 for v in (d / theta).tolist()])
    return _log_gamma_m1(u) - np.log(2.0 * theta * theta)


def check_thresholds(t0: float, x_last: float, n: int = 5) -> np.ndarray:
    """n thresholds from t0 to the last observed event (fewer when they coincide)."""
    if not x_last > t0:
        return np.array([t0])
    return np.linspace(t0, x_last, n)


def tail_checks(values: np.ndarray, model: Mapping[str, Any], thresholds: Sequence[float],
                *, cut: float) -> list[dict[str, float]]:  # fmt: skip
    """Observed and predicted events in [threshold, cut) and their two-sided Poisson p-value."""
    x = np.asarray(values, float)
    out = []
    for th in thresholds:
        obs = int(np.count_nonzero((x >= th) & (x < cut)))
        pred = expected_between(float(th), cut, model)
        out.append({"threshold": float(th), "observed": obs, "predicted": pred,
                    "p_value": poisson_two_sided(obs, pred)})  # fmt: skip
    return out


def _dev_edges(model: Mapping[str, Any]) -> np.ndarray:
    d0, dc = model["t0"] - model["x_ref"], model["cut"] - model["x_ref"]
    return model["x_ref"] + np.geomspace(d0, dc, N_DEV_BINS + 1)


def deviance(counts: np.ndarray, expected: np.ndarray) -> float:
    """Poisson deviance (saturated likelihood ratio) 2 sum(nu - n + n ln(n/nu))."""
    n = np.asarray(counts, float)
    nu = np.maximum(np.asarray(expected, float), 1e-300)
    term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / nu), 0.0)
    return float(2.0 * np.sum(nu - n + term))


def _binned_expected(model: Mapping[str, Any], edges: np.ndarray) -> np.ndarray:
    """Expected events per bin; NaN where the model's survival is not finite there."""
    s = survival(edges, model)
    with np.errstate(invalid="ignore"):  # inf - inf of a degenerate refit: NaN, told by the caller
        return np.maximum(-np.diff(s), 0.0)


def _sampling_table(model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(grid, cumulative expected events from t0) of a fitted model: its inverse CDF."""
    d0, dc = model["t0"] - model["x_ref"], model["cut"] - model["x_ref"]
    grid = model["x_ref"] + np.geomspace(d0, dc, 4001)
    s = survival(grid, model)
    return grid, s[0] - s


def _sample_model(
    model: Mapping[str, Any],
    rng: np.random.Generator,
    table: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Events of a fitted model in [t0, cut): Poisson count, inverse CDF on a fine grid.

    ``table``: the model's :func:`_sampling_table`, computed once for many toys.
    """
    grid, cum = _sampling_table(model) if table is None else table
    total = float(cum[-1])
    k = int(rng.poisson(total))
    u = rng.random(k) * total
    return np.interp(u, cum, grid)


def _refit_toys(samples: Sequence[np.ndarray], model: Mapping[str, Any], core: Core | None
                ) -> list[dict[str, Any] | None]:  # fmt: skip
    """``fit_tail_model(xs, engine="numpy")`` of every sample with the model's shape, window
    and core (None where that raises :class:`FitError`), all at once.

    The samples are minimised together by :class:`_BatchFit` from the first start value of
    the shape; one that does not converge there goes to :func:`_minimise_numpy` (Migrad,
    every start), as before. The minima are those of Migrad within its tolerance
    (tests/fit/test_tailmodel.py).
    """
    shape, t0, cut, x_ref = model["shape"], model["t0"], model["cut"], model["x_ref"]
    d0, dc = t0 - x_ref, cut - x_ref
    core_in = 0.0 if core is None else float(core.between(t0, cut))
    scale = 1.0 if shape == "power" else d0
    index, us, cores, starts = [], [], [], []
    for i, xs in enumerate(samples):
        x = np.asarray(xs, float)
        x = x[(x >= t0) & (x < cut)]
        if x.size < 3:  # fit_tail_model's FitError
            continue
        index.append(i)
        us.append((x - x_ref) / d0)
        cores.append(_core_density(x, core) * d0)
        starts.append(max(x.size - core_in, 1.0))
    out: list[dict[str, Any] | None] = [None] * len(samples)
    if not index:
        return out
    batch = _BatchFit(shape, us, cores, core_in, d0, dc)
    # from the model the toys were drawn from (their minima are near it), not _STARTS
    theta0 = np.full(len(index), float(model["theta"]) / scale)
    n_start = np.full(len(index), max(float(model["n_tail"]), 1.0))
    theta, n_tail, ok = batch.minimise(theta0, n_start)
    for k, i in enumerate(index):
        found = (
            (float(theta[k]), float(n_tail[k]))
            if ok[k]
            else _minimise_numpy(shape, us[k], cores[k], core_in, d0, dc, starts[k])
        )
        if found is not None:
            out[i] = _model_dict(shape, found[0] * scale, found[1], t0, cut, x_ref, core)
    return out


def deviance_test(values: np.ndarray, model: Mapping[str, Any], *, source: str,
                  rng: np.random.Generator, n_toys: int = N_TOYS) -> dict[str, float]:  # fmt: skip
    """Binned Poisson deviance of the tail in [t0, cut) and its p-value from refitted toys.

    The toys come in batches of ``n_toys``, drawn one after the other from ``rng`` and
    refitted together (:func:`_refit_toys`).
    """
    edges = _dev_edges(model)
    x = np.asarray(values, float)
    obs = np.histogram(x[(x >= model["t0"]) & (x < model["cut"])], bins=edges)[0]
    d_obs = deviance(obs, _binned_expected(model, edges))
    core = None
    if model.get("n_core", 0) > 0:
        core = Core(model["mu"], model["sigma"], model["n_core"])
    table = _sampling_table(model) if n_toys > 0 else None
    toys: list[float] = []
    # batches of n_toys, more while the p-value is small and poorly known (fewer than 3
    # toys above the data), up to 8 batches: p can then go below P_MIN = 0.01
    for batch in range(8 if n_toys > 0 else 0):
        if batch and sum(t >= d_obs for t in toys) >= 3:
            break
        samples = [_sample_model(model, rng, table) for _ in range(n_toys)]
        for xs, m in zip(samples, _refit_toys(samples, model, core), strict=True):
            if m is None:
                continue  # the refit failed (FitError)
            expected = _binned_expected(m, edges)
            if not np.all(np.isfinite(expected)):
                continue  # a refit whose survival is infinite describes nothing, as a failed fit
            toys.append(deviance(np.histogram(xs, bins=edges)[0], expected))
    p = (1 + sum(t >= d_obs for t in toys)) / (1 + len(toys)) if toys else 0.0
    return {"deviance": d_obs, "bins": N_DEV_BINS, "toys": len(toys), "p_value": float(p)}


# ---------------------------------------------------------------------------------------
# the scan over thresholds and shapes, the envelope
# ---------------------------------------------------------------------------------------


@dataclass
class TailScan:
    """Every (t0, shape) fit, the nominal one and the envelope of the passing ones."""

    fits: list[TailModelFit]
    nominal: TailModelFit | None
    level: float | None
    stat_up: float
    stat_down: float
    syst_up: float
    syst_down: float
    x_last: float
    n_total: float
    cut: float
    core: Core | None
    counted: float = 0.0  # events beyond the cut counted, not extrapolated (in the level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "stat_up": self.stat_up,
            "stat_down": self.stat_down,
            "syst_up": self.syst_up,
            "syst_down": self.syst_down,
            "nominal": (
                None
                if self.nominal is None
                else {"shape": self.nominal.shape, "t0": self.nominal.t0}
            ),
            "last_observed": self.x_last,
            "n_total": self.n_total,
            "cut": self.cut,
            "core": None if self.core is None else self.core.to_dict(),
            "models": [f.to_dict() for f in self.fits],
            "passing": sum(f.passed for f in self.fits),
        }


def scan_tail(
    values: np.ndarray,
    *,
    n_total: float,
    cut: float,
    shapes: Sequence[str],
    thresholds: Sequence[float],
    x_ref: float,
    core: Core | None,
    source: str,
    seed: int = 0,
    n_toys: int = N_TOYS,
) -> TailScan:
    """Fit every shape above every t0, check each on its tail, and take the envelope.

    The nominal fit is that of the first of ``shapes`` (the physically preferred) with a
    passing fit, from the lowest t0 where it passes (the most events); the model systematic is the
    envelope of the levels of every passing fit. No passing fit: ``level`` is None.

    Every fit is judged on its tail (:func:`tail_checks`: observed and predicted counts
    beyond thresholds from t0 to the last observed event, two-sided Poisson p-values) and
    by the Poisson deviance of its binned tail with a toy p-value (toys refitted,
    :func:`deviance_test`). The fits that pass make the level's envelope; a level that no
    passing fit supports is not given.
    """
    x = np.asarray(values, float)
    below = x[x < cut]
    x_last = float(below.max()) if below.size else float("nan")
    rng = np.random.default_rng(seed)
    fits: list[TailModelFit] = []
    for t0 in thresholds:
        for shape in shapes:
            try:
                model, cov, _ = fit_tail_model(x, shape=shape, t0=float(t0), cut=cut, x_ref=x_ref,
                                               core=core, source=source)  # fmt: skip
            except FitError as exc:
                fits.append(
                    TailModelFit(shape, float(t0), {}, [], 0, math.nan, 0, 0, reason=str(exc))
                )
                continue
            level = float(survival(cut, model)[0]) / n_total
            up, down = _level_draws(model, cov, n_total, rng)
            n_fit = int(np.count_nonzero((x >= t0) & (x < cut)))
            checks = tail_checks(x, model, check_thresholds(float(t0), x_last).tolist(), cut=cut)
            ok = all(c["p_value"] >= P_MIN for c in checks)
            # the toys only for a fit its checks have not rejected already
            dev = deviance_test(x, model, source=source, rng=rng, n_toys=n_toys if ok else 0)
            ok = ok and dev["p_value"] >= P_MIN
            ok = ok and math.isfinite(level)
            reason = (
                ""
                if ok
                else "a tail check or the deviance has p < 0.01"
                if math.isfinite(level)
                else "no finite level"
            )
            fits.append(TailModelFit(shape, float(t0), model, cov.tolist(), n_fit, level, up, down,
                                     checks, dev, ok, reason))  # fmt: skip
    passing = [f for f in fits if f.passed]
    if not passing:
        return TailScan(fits, None, None, 0.0, 0.0, 0.0, 0.0, x_last, n_total, cut, core)
    # the preferred shape (the first with any passing fit) from the lowest t0 where it passes
    shape = min((f.shape for f in passing), key=list(shapes).index)
    nominal = min((f for f in passing if f.shape == shape), key=lambda f: f.t0)
    levels = [f.level for f in passing]
    return TailScan(
        fits, nominal, nominal.level, nominal.stat_up, nominal.stat_down,
        max(max(levels) - nominal.level, 0.0), max(nominal.level - min(levels), 0.0),
        x_last, n_total, cut, core,
    )  # fmt: skip


#: grid of the shape parameter (canonical units, d / d0) for the split closure's profile
_PROFILE_GRID = {
    "rutherford_ff": np.geomspace(0.02, 500.0, 121),
    "exp": np.geomspace(0.005, 100.0, 121),
    "power": np.geomspace(0.05, 40.0, 121),
}


class _SplitLikelihood:
    """NLL of the fitted fraction's window [t0, t1) and of the rest's count beyond t1.

    The window's NLL is that of :func:`fit_tail_model` (canonical units, fixed core);
    the count beyond t1 in the rest is Poisson with mean
    (n_tail S(t1, cut) / S(t0, t1) + core beyond t1) (1 - f) / f.
    """

    def __init__(self, fit_x: np.ndarray, *, shape: str, t0: float, t1: float, cut: float,
                 x_ref: float, core: Core | None, scale: float) -> None:  # fmt: skip
        w = fit_x[(fit_x >= t0) & (fit_x < t1)]
        self.shape, self.scale, self.n_win = shape, scale, w.size
        self.d0, self.d1, self.dc = t0 - x_ref, t1 - x_ref, cut - x_ref
        self.u = (w - x_ref) / self.d0
        self.core_u = _core_density(w, core) * self.d0
        self.core_in = 0.0 if core is None else float(core.between(t0, t1))
        self.core_beyond = 0.0 if core is None else float(core.between(t1, cut))
        self.like = _WindowLikelihood(shape, self.u, self.core_u, self.core_in,
                                      *_simpson_nodes(self.d0, self.d1))  # fmt: skip

    def theta_value(self, theta_u: float) -> float:
        """The shape parameter in the variable's units (q and s are lengths, n a number)."""
        return theta_u if self.shape == "power" else theta_u * self.d0

    def _parts(self, theta_u: float) -> tuple[np.ndarray, float]:
        with np.errstate(all="ignore"):
            f_u = self.like.normalised(theta_u)
        tv = self.theta_value(theta_u)
        inside = shape_integral(self.d0, self.d1, self.shape, tv)
        ratio = shape_integral(self.d1, self.dc, self.shape, tv) / inside if inside > 0 else 0.0
        return f_u, ratio

    def profile(self, theta_u: float, observed: int | None) -> tuple[float, float, float]:
        """(NLL minimised over n_tail, that n_tail, the rest's prediction) at theta_u.

        ``observed`` None: the window alone; else the rest's count joins the likelihood.
        """
        return self.profiles([theta_u], observed)[0]

    def profiles(
        self, thetas: Sequence[float], observed: int | None
    ) -> list[tuple[float, float, float]]:
        """:meth:`profile` at every theta_u of ``thetas`` at once.

        The NLL is convex in n_tail at fixed theta (a sum of -ln(core + n g) and of the
        count's mu - k ln mu, mu linear in n), so its minimum over [0, 10 n_win + 10] is
        the root of its derivative there: Newton steps kept inside a shrinking bracket
        (bisection when a step leaves it or is slow), for every theta together, until the
        Newton decrement is below 1e-18. That is the minimum of the scalar minimiser used
        before (bounded Brent, xatol 1e-6), tighter.
        """
        k = len(thetas)
        parts = [self._parts(t) for t in thetas]
        good = np.array([bool(np.all(np.isfinite(f_u))) for f_u, _r in parts])
        out: list[tuple[float, float, float]] = [(math.inf, 0.0, math.nan)] * k
        if not good.any():
            return out
        rows = np.flatnonzero(good)
        g = np.array([parts[i][0] for i in rows]).reshape(rows.size, self.u.size)
        ratio = np.array([parts[i][1] for i in rows])
        rs = ratio * self.scale
        c = self.core_u[None, :]
        obs = 0.0 if observed is None else float(observed)

        def derivatives(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            gd = g / np.maximum(c + n[:, None] * g, 1e-300)
            d1, d2 = 1.0 - gd.sum(axis=1), (gd * gd).sum(axis=1)
            if observed is not None:
                mu = np.maximum(n * ratio * self.scale + self.core_beyond * self.scale, 1e-300)
                d1 = d1 + rs * (1.0 - obs / mu)
                d2 = d2 + obs * rs * rs / (mu * mu)
            return d1, d2

        with np.errstate(all="ignore"):
            lo = np.zeros(rows.size)
            hi = np.full(rows.size, 10.0 * self.n_win + 10.0)
            d1_lo, _ = derivatives(lo)
            d1_hi, _ = derivatives(hi)
            n = np.where(d1_lo >= 0, lo, hi)  # the minimum on a bound
            active = (d1_lo < 0) & (d1_hi > 0)
            start = float(self.n_win) - self.core_in
            n = np.where(active, start if 0 < start < hi[0] else 0.5 * hi[0], n)
            dx_old = hi - lo
            for _ in range(200):
                if not active.any():
                    break
                d1, d2 = derivatives(n)
                # converged: the Newton decrement d1^2 / d2 bounds the NLL above its
                # minimum (the NLL is self-concordant: a sum of -ln of linear functions
                # of n and of n); or the bracket is closed to rounding
                active &= (d1 * d1 >= 1e-18 * d2) & (hi - lo > 1e-13 * (1.0 + n))
                hi = np.where(active & (d1 > 0), n, hi)
                lo = np.where(active & (d1 <= 0), n, lo)
                step = n - d1 / d2
                # bisection when Newton leaves the bracket or shrinks it slower than
                # bisection would (rtsafe): far from the root on the steep side of ln n
                bisect = ~((step > lo) & (step < hi)) | (np.abs(2.0 * d1) > np.abs(dx_old * d2))
                new = np.where(bisect, 0.5 * (lo + hi), step)
                dx_old = np.where(active, np.abs(new - n), dx_old)
                n = np.where(active, new, n)
            dens = np.maximum(c + n[:, None] * g, 1e-300)
            nll = self.like.core_total + n - np.log(dens).sum(axis=1)
            pred = (n * ratio + self.core_beyond) * self.scale
            if observed is not None:
                mu = np.maximum(pred, 1e-300)
                nll = nll + mu - obs * np.log(mu)
        for j, i in enumerate(rows):
            v = float(nll[j])
            out[i] = (v if math.isfinite(v) else 1e300, float(n[j]), float(pred[j]))
        return out

    def scan(self, observed: int | None) -> list[tuple[float, float, float]]:
        """:meth:`profile` at every theta_u of the shape's grid (:data:`_PROFILE_GRID`)."""
        return self.profiles(_PROFILE_GRID[self.shape].tolist(), observed)

    def minimum(
        self, observed: int | None, scanned: list[tuple[float, float, float]] | None = None
    ) -> float:
        """min NLL over (theta, n_tail): the grid (``scanned`` if given), refined by Brent."""
        grid = _PROFILE_GRID[self.shape]
        vals = np.array([v for v, _n, _p in (scanned or self.scan(observed))])
        i = int(np.argmin(vals))
        lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, grid.size - 1)])
        res = optimize.minimize_scalar(lambda lt: self.profile(math.exp(lt), observed)[0],
                                       bounds=(lo, hi), method="bounded")  # fmt: skip
        return min(float(res.fun), float(vals[i]))


def closure_split(
    values: np.ndarray,
    in_fit: np.ndarray,
    *,
    fraction: float,
    t0: float,
    t1_list: Sequence[float],
    cut: float,
    shape: str,
    x_ref: float,
    core_fit: Core | None,
    source: str,
) -> list[dict[str, Any]]:
    """Fit the ``fraction`` of the events (``in_fit``) in [t0, t1), predict [t1, cut) in the rest.

    ``core_fit`` is the Gaussian core of the fitted fraction (its events in that part).
    ``predicted`` is the best fit's count beyond t1 in the rest, ``predicted_band`` the
    range of the predictions over the shape parameters whose profile likelihood is within
    0.5 of its minimum (68%). ``p_value`` is the likelihood-ratio test that one
    (theta, n_tail) describes both the fitted window and the rest's count beyond t1:
    T = 2 [min NLL(window + count) - min NLL(window) - NLL(count | its own mean)],
    chi^2 with 1 degree of freedom. A window too short to fix the shape (a flat profile)
    thus passes when some shape it allows predicts the rest, as it should.
    """
    x = np.asarray(values, float)
    sel = np.asarray(in_fit, bool)
    scale = (1.0 - fraction) / fraction
    out = []
    for t1 in t1_list:
        # the fit window ends at t1: its normalisation range [t0, t1)
        fit_x = x[sel & (x < t1)]
        model, _cov, _ = fit_tail_model(fit_x, shape=shape, t0=t0, cut=t1, x_ref=x_ref,
                                        core=core_fit, source=source, hesse=False)  # fmt: skip
        like = _SplitLikelihood(fit_x, shape=shape, t0=t0, t1=t1, cut=cut, x_ref=x_ref,
                                core=core_fit, scale=scale)  # fmt: skip
        theta_best = model["theta"] if shape == "power" else model["theta"] / like.d0
        obs = int(np.count_nonzero(~sel & (x >= t1) & (x < cut)))
        prof = like.scan(None)
        best_nll, _n, pred = like.profile(theta_best, None)
        nll_win = min(like.minimum(None, prof), best_nll)
        nll_joint = like.minimum(obs)
        sat = obs - obs * math.log(obs) if obs > 0 else 0.0  # NLL of the count at its own mean
        t_stat = max(2.0 * (nll_joint - nll_win - sat), 0.0)
        allowed = [p for v, _n, p in prof if v - nll_win <= 0.5 and math.isfinite(p)] or [pred]
        out.append({"fraction": fraction, "t0": t0, "threshold": float(t1), "shape": shape,
                    "predicted": float(pred),
                    "predicted_band": [float(min([*allowed, pred])), float(max([*allowed, pred]))],
                    "observed": obs, "lr_statistic": t_stat,
                    "p_value": float(stats.chi2.sf(t_stat, 1)),
                    "p_value_poisson": poisson_two_sided(obs, pred)})  # fmt: skip
    return out
