"""Vectorised toys for the one-bin signal-box model (qmu-tilde, CLs).

The toys fit the model the exported workspace defines (:class:`OneBinModel`, the
likelihood; pyhf's normsys code 4, :func:`code4_coefficients`). All toys are fitted
at once (:func:`fit`); the toys of one scan are coupled across mu (common random
numbers, :func:`_sample`), so CLs(mu) is smooth and the limit has one root per band.
Entry points: :func:`toy_cls`, :func:`qmu_tilde`, :func:`one_bin_model`.
Method: docs/statistics.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from bkg.errors import LimitError

__all__ = [
    "NORMAL_QUANTILES",
    "OneBinModel",
    "ToyCLs",
    "expected_events",
    "fit",
    "one_bin_model",
    "qmu_tilde",
    "toy_cls",
]

NORMAL_QUANTILES = np.array([2.27501319, 15.86552539, 50.0, 84.13447461, 97.72498681]) / 100.0
_NU_FLOOR = 1e-300
#: Lower bound of the staterror gamma in the fits (pyhf's bounds start at 1e-10).
GAMMA_FLOOR = 1e-6


@dataclass(frozen=True)
class OneBinModel:
    """Numbers of a one-bin model: signal at mu = 1, backgrounds and their modifiers.

    The one-bin likelihood is Pois(n | nu) * prod_j N(a_j | theta_j, 1) * N(a_g | gamma,
    sigma_g) with nu = mu s prod_{j in sig} f_j(theta_j) + gamma sum_i b_i f_i(theta_i)
    and pyhf's default normsys interpolation, code 4: f = hi^theta for theta >= 1,
    lo^-theta for theta <= -1, and in between a degree-6 polynomial that meets them in
    value and slope (:func:`code4_coefficients`), so f is smooth at theta = 0, where
    code 1 has a kink.

    Attributes:
        s: signal events at mu = 1.
        sig_hi, sig_lo: normsys factors of the signal (one entry per modifier).
        b: background events per sample.
        b_hi, b_lo: normsys factors per background sample.
        gamma_sigma: relative staterror (0: no staterror).
        b_const: background events without a normsys (scaled by the staterror
            gamma only); :func:`fit` moves the inert normsys backgrounds here.
    """

    s: float
    sig_hi: np.ndarray
    sig_lo: np.ndarray
    b: np.ndarray
    b_hi: np.ndarray
    b_lo: np.ndarray
    gamma_sigma: float
    b_const: float = 0.0
    sig_poly: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    b_poly: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    code4: _Code4 = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sig_poly", code4_coefficients(self.sig_hi, self.sig_lo))
        object.__setattr__(self, "b_poly", code4_coefficients(self.b_hi, self.b_lo))
        object.__setattr__(
            self,
            "code4",
            _Code4.of(
                np.r_[self.sig_hi, self.b_hi],
                np.r_[self.sig_lo, self.b_lo],
                np.concatenate([self.sig_poly, self.b_poly]),
            ),
        )

    @property
    def n_pars(self) -> int:
        """mu, signal thetas, background thetas, gamma."""
        return 1 + len(self.sig_hi) + len(self.b) + 1


#: Rows: value, slope and curvature of sum_k c_k theta^k (k = 1..6) at theta = 1 and -1.
_CODE4_MATRIX = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [-1, 1, -1, 1, -1, 1],
        [1, 2, 3, 4, 5, 6],
        [1, -2, 3, -4, 5, -6],
        [0, 2, 6, 12, 20, 30],
        [0, -2, 6, -12, 20, -30],
    ],
    dtype=float,
)


def code4_coefficients(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """c_1..c_6 (one row per modifier) of the code-4 polynomial between theta = -1 and 1.

    It matches hi^theta at theta = 1 and lo^-theta at theta = -1: f(1) - 1 = hi - 1,
    f(-1) - 1 = lo - 1, f'(1) = hi ln hi, f'(-1) = -lo ln lo, f''(1) = hi ln^2 hi, and
    f''(-1) = -lo ln^2 lo. The last condition is pyhf's (0.7, after ROOT's HistFactory):
    the exponential's curvature at -1 is +lo ln^2 lo, so f'' jumps there. Kept so that
    the toys fit the very model the exported workspace defines (checked against
    ``pyhf.interpolators.code4`` in the tests).
    """
    hi = np.asarray(hi, dtype=float)
    lo = np.asarray(lo, dtype=float)
    lhi, llo = np.log(hi), np.log(lo)
    rhs = np.stack([hi - 1, lo - 1, hi * lhi, -lo * llo, hi * lhi**2, -lo * llo**2], axis=-1)
    return np.linalg.solve(_CODE4_MATRIX, rhs.reshape(-1, 6).T).T.reshape((*hi.shape, 6))


def one_bin_model(spec: dict[str, Any]) -> OneBinModel:
    """Extract the numbers of a one-bin workspace spec built by :func:`bkg.stats.model.model_spec`."""
    (channel,) = spec["channels"]
    s = 0.0
    sig_hi: list[float] = []
    sig_lo: list[float] = []
    b, b_hi, b_lo = [], [], []
    stat2 = 0.0
    for sample in channel["samples"]:
        if len(sample["data"]) != 1:
            raise LimitError("vectorised toys need the one-bin model")
        mods = {m["type"]: m for m in sample["modifiers"] if m["type"] != "normsys"}
        norms = [m for m in sample["modifiers"] if m["type"] == "normsys"]
        if "normfactor" in mods:
            s = float(sample["data"][0])
            sig_hi += [m["data"]["hi"] for m in norms]
            sig_lo += [m["data"]["lo"] for m in norms]
        else:
            if len(norms) != 1:
                raise LimitError("vectorised toys need one normsys per background")
            b.append(float(sample["data"][0]))
            b_hi.append(norms[0]["data"]["hi"])
            b_lo.append(norms[0]["data"]["lo"])
            if "staterror" in mods:
                stat2 += float(mods["staterror"]["data"][0]) ** 2
    btot = sum(b)
    return OneBinModel(
        s=s,
        sig_hi=np.asarray(sig_hi, float),
        sig_lo=np.asarray(sig_lo, float),
        b=np.asarray(b, float),
        b_hi=np.asarray(b_hi, float),
        b_lo=np.asarray(b_lo, float),
        gamma_sigma=float(np.sqrt(stat2) / btot) if btot > 0 and stat2 > 0 else 0.0,
    )


@dataclass(frozen=True)
class _Code4:
    """Code-4 normsys of K modifiers, ready for evaluation: the polynomial's
    coefficients c_1..c_6 and those of its first and second derivative (each a (K,) row,
    lowest order first), and the slopes of log f outside |theta| < 1."""

    c: tuple[np.ndarray, ...]
    c1: tuple[np.ndarray, ...]
    c2: tuple[np.ndarray, ...]
    log_hi: np.ndarray
    minus_log_lo: np.ndarray

    @staticmethod
    def of(hi: np.ndarray, lo: np.ndarray, poly: np.ndarray) -> _Code4:
        hi = np.asarray(hi, dtype=float)
        lo = np.asarray(lo, dtype=float)
        c = tuple(np.ascontiguousarray(poly[..., k]) for k in range(6))
        return _Code4(
            c=c,
            c1=tuple((k + 1) * c[k] for k in range(6)),
            c2=tuple((k + 2) * (k + 1) * c[k + 1] for k in range(5)),
            log_hi=np.log(hi),
            minus_log_lo=-np.log(lo),
        )

    def evaluate(
        self, theta: np.ndarray, derivatives: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """log f(theta) and (``derivatives``) its first and second derivative, theta (N, K).

        Inside |theta| < 1 the polynomial 1 + sum_k c_k theta^k (Horner), outside the
        exponential's theta log hi (theta >= 1) or -theta log lo (theta <= -1).
        """
        t = np.minimum(np.maximum(theta, -1.0), 1.0)
        f = self.c[5] * t
        for k in (4, 3, 2, 1, 0):
            f += self.c[k]
            f *= t
        f += 1.0
        np.maximum(f, _NU_FLOOR, out=f)
        inner = np.abs(theta) < 1.0
        slope = np.where(theta >= 0, self.log_hi, self.minus_log_lo)
        logf = np.where(inner, np.log(f), theta * slope)
        if not derivatives:
            return logf, None, None
        f1 = self.c1[5] * t
        for k in (4, 3, 2, 1):
            f1 += self.c1[k]
            f1 *= t
        f1 += self.c1[0]
        f2 = self.c2[4] * t
        for k in (3, 2, 1):
            f2 += self.c2[k]
            f2 *= t
        f2 += self.c2[0]
        f1 /= f  # d log f = f' / f
        f2 /= f
        f2 -= f1 * f1  # d2 log f = f'' / f - (f' / f)^2
        return logf, np.where(inner, f1, slope), np.where(inner, f2, 0.0)


def _log_f(theta: np.ndarray, hi: np.ndarray, lo: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """log f(theta) of normsys code 4; theta (N, K), hi and lo (K,), poly (K, 6)."""
    return _Code4.of(hi, lo, poly).evaluate(theta, derivatives=False)[0]


def _interp(
    theta: np.ndarray, hi: np.ndarray, lo: np.ndarray, poly: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log f(theta) and its first and second derivative for normsys code 4.

    theta (N, K); hi, lo (K,); poly (K, 6) from :func:`code4_coefficients`.
    """
    logf, d1, d2 = _Code4.of(hi, lo, poly).evaluate(theta)
    assert d1 is not None and d2 is not None
    return logf, d1, d2


def _nu_derivs(
    m: OneBinModel, p: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nu (N,), gradient (N, P) and Hessian (N, P, P) of nu for parameters p (N, P)."""
    ns, nb = len(m.sig_hi), len(m.b)
    mu = p[:, 0]
    ts = p[:, 1 : 1 + ns]
    tb = p[:, 1 + ns : 1 + ns + nb]
    g = p[:, -1]
    ls, ds, d2s = _interp(ts, m.sig_hi, m.sig_lo, m.sig_poly)
    lb, db, d2b = _interp(tb, m.b_hi, m.b_lo, m.b_poly)
    es = np.exp(ls.sum(axis=1)) * m.s * scale  # signal at mu = 1
    eb = np.exp(lb) * m.b  # (N, nb) background without gamma
    csig = mu * es
    cb = g[:, None] * eb
    nu = csig + cb.sum(axis=1) + g * m.b_const
    n, npar = p.shape
    grad = np.zeros((n, npar))
    hess = np.zeros((n, npar, npar))
    grad[:, 0] = es
    grad[:, 1 : 1 + ns] = csig[:, None] * ds
    grad[:, 1 + ns : 1 + ns + nb] = cb * db
    grad[:, -1] = eb.sum(axis=1) + m.b_const
    si = slice(1, 1 + ns)
    hess[:, 0, si] = es[:, None] * ds
    hess[:, si, 0] = hess[:, 0, si]
    hess[:, si, si] = csig[:, None, None] * (
        ds[:, :, None] * ds[:, None, :] + d2s[:, :, None] * np.eye(ns)
    )
    idx = np.arange(1 + ns, 1 + ns + nb)
    hess[:, idx, idx] = cb * (db * db + d2b)
    hess[:, -1, idx] = eb * db
    hess[:, idx, -1] = eb * db
    return nu, grad, hess


def _nu(m: OneBinModel, p: np.ndarray, scale: float) -> np.ndarray:
    ns = len(m.sig_hi)
    logf = m.code4.evaluate(p[:, 1:-1], derivatives=False)[0]
    return p[:, 0] * m.s * scale * np.exp(logf[:, :ns].sum(axis=1)) + p[:, -1] * (
        np.exp(logf[:, ns:]) @ m.b + m.b_const
    )


def expected_events(m: OneBinModel, p: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The Poisson mean nu (N,) of the signal-box count at parameters ``p`` (N, P): the
    Asimov count of a fit (:func:`bkg.stats.limits.asymptotic_cls`)."""
    return _nu(m, p, scale)


def _nll(m: OneBinModel, p: np.ndarray, n: np.ndarray, aux: np.ndarray, scale: float) -> np.ndarray:
    nu = _nu(m, p, scale)
    nu = np.maximum(nu, _NU_FLOOR)
    val = nu - n * np.log(nu)
    val = val + 0.5 * np.sum((p[:, 1:-1] - aux[:, :-1]) ** 2, axis=1)
    if m.gamma_sigma > 0:
        val = val + 0.5 * ((p[:, -1] - aux[:, -1]) / m.gamma_sigma) ** 2
    return val


def _without_inert(m: OneBinModel) -> tuple[OneBinModel, np.ndarray]:
    """The model without the thetas of backgrounds whose normsys is 1 both ways, and the kept indices.

    Such a theta does not change nu: its estimate is its auxiliary datum in every fit
    and its constraint term is then zero, so it is left out of the Newton system
    (9 -> 6 parameters on the default, a third less work) and put back afterwards.
    """
    inert = (m.b_hi == 1.0) & (m.b_lo == 1.0)
    ns = len(m.sig_hi)
    keep = np.flatnonzero(np.r_[np.ones(1 + ns, bool), ~inert, True])
    if not inert.any():
        return m, keep
    reduced = dataclasses.replace(
        m,
        b=m.b[~inert],
        b_hi=m.b_hi[~inert],
        b_lo=m.b_lo[~inert],
        b_const=m.b_const + float(m.b[inert].sum()),
    )
    return reduced, keep


def fit(
    m: OneBinModel,
    n: np.ndarray,
    aux: np.ndarray,
    *,
    mu_fixed: float | None,
    scale: float = 1.0,
    iterations: int = 40,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood fit of every toy at once.

    A damped, projected Newton method on the exact gradient and Hessian
    (:func:`_fit_fixed`), so 1e4 toys cost a few batched small solves per iteration.

    Args:
        m: the model.
        n: observed counts (N,).
        aux: auxiliary data (N, P-1): normsys thetas then the staterror gamma.
        mu_fixed: fixed mu (conditional fit) or None (mu free in [0, inf)).
        scale: multiplies the signal (mu in units of 1/scale).
        iterations: Newton iterations (at most).
        start: starting parameters (N, P) of a conditional fit, e.g. the fit of the
            same toys at a neighbouring mu (default: every theta at its auxiliary datum).

    Returns:
        (parameters (N, P), NLL (N,)).
    """
    reduced, keep = _without_inert(m)
    if reduced is not m:
        p_r, nll = fit(
            reduced,
            n,
            aux[:, keep[1:] - 1],
            mu_fixed=mu_fixed,
            scale=scale,
            iterations=iterations,
            start=None if start is None else start[:, keep],
        )
        p_full = np.empty((len(n), m.n_pars))
        p_full[:, keep] = p_r
        inert = np.setdiff1d(np.arange(m.n_pars), keep)
        p_full[:, inert] = aux[:, inert - 1]
        return p_full, nll
    if mu_fixed is None:
        return _fit_free(m, n, aux, scale, iterations)
    return _fit_fixed(m, n, aux, float(mu_fixed), scale, iterations, start)


def _constraint_optimum(m: OneBinModel, aux: np.ndarray) -> np.ndarray:
    """Parameters (N, P) at the minimum of the constraint terms: every theta at its
    auxiliary datum, gamma at its own (not below its floor; 1 without staterror), mu 0."""
    p = np.empty((len(aux), m.n_pars))
    p[:, 0] = 0.0
    p[:, 1:-1] = aux[:, :-1]
    p[:, -1] = np.maximum(aux[:, -1], GAMMA_FLOOR) if m.gamma_sigma > 0 else 1.0
    return p


def _fit_free(
    m: OneBinModel, n: np.ndarray, aux: np.ndarray, scale: float, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """The unconditional fit (mu >= 0), in closed form where mu-hat >= 0.

    With every theta and gamma at the minimum of their constraint terms and mu such that
    nu = n, each term of the NLL is at its own minimum: that is the global minimum
    whenever this mu is >= 0. The other toys (n below the background) have mu-hat = 0:
    their fit is the conditional fit at mu = 0.
    """
    p = _constraint_optimum(m, aux)
    ns = len(m.sig_hi)
    logf = m.code4.evaluate(p[:, 1:-1], derivatives=False)[0]
    signal = m.s * scale * np.exp(logf[:, :ns].sum(axis=1))
    background = p[:, -1] * (np.exp(logf[:, ns:]) @ m.b + m.b_const)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu_hat = (n - background) / signal
    closed = (signal > 0) & (mu_hat >= 0)
    p[:, 0] = np.where(closed, mu_hat, 0.0)
    nll = _nll(m, p, n, aux, scale)
    at_zero = np.flatnonzero(~closed)
    if at_zero.size:
        p[at_zero], nll[at_zero] = _fit_fixed(
            m, n[at_zero], aux[at_zero], 0.0, scale, iterations, None
        )
    return p, nll


def _arrow_solve(
    d_b: np.ndarray, e: np.ndarray, d_g: np.ndarray, y_b: np.ndarray, y_g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve [[diag(d_b), e], [e^T, d_g]] [x_b; x_g] = [y_b; y_g] for every toy (Schur)."""
    ed = e / d_b
    x_g = (y_g - np.einsum("ij,ij->i", ed, y_b)) / (d_g - np.einsum("ij,ij->i", ed, e))
    return (y_b - e * x_g[:, None]) / d_b, x_g


@dataclass(frozen=True)
class _State:
    """The NLL of toys at parameters p and what its gradient and Hessian are made of."""

    p: np.ndarray
    dlog: np.ndarray  # d log f / d theta, (N, K)
    d2log: np.ndarray  # d2 log f / d theta2, (N, K)
    sig: np.ndarray  # signal events (N,)
    eb: np.ndarray  # background events per sample without gamma (N, nb)
    bkg: np.ndarray  # background events without gamma (N,)
    nu: np.ndarray  # expected events (N,), at least _NU_FLOOR
    nll: np.ndarray  # (N,)

    @staticmethod
    def at(m: OneBinModel, p: np.ndarray, n: np.ndarray, aux: np.ndarray, s_mu: float) -> _State:
        ns = len(m.sig_hi)
        theta = p[:, 1:-1]
        logf, d1, d2 = m.code4.evaluate(theta)
        assert d1 is not None and d2 is not None
        # a full Newton step of a rare toy can overshoot far enough that nu overflows;
        # its NLL is then inf or nan, never accepted, and the step is halved
        with np.errstate(over="ignore", invalid="ignore"):
            sig = s_mu * np.exp(logf[:, :ns].sum(axis=1))
            eb = np.exp(logf[:, ns:]) * m.b
            bkg = eb.sum(axis=1) + m.b_const
            nu = np.maximum(sig + p[:, -1] * bkg, _NU_FLOOR)
            nll = nu - n * np.log(nu)
            nll += 0.5 * np.einsum("ij,ij->i", theta - aux[:, :-1], theta - aux[:, :-1])
            if m.gamma_sigma > 0:
                nll += 0.5 * ((p[:, -1] - aux[:, -1]) / m.gamma_sigma) ** 2
        return _State(p, d1, d2, sig, eb, bkg, nu, nll)

    def take(self, rows: np.ndarray) -> _State:
        return _State(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))

    def put(self, rows: np.ndarray, other: _State) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name)[rows] = getattr(other, f.name)


def _fit_fixed(
    m: OneBinModel,
    n: np.ndarray,
    aux: np.ndarray,
    mu: float,
    scale: float,
    iterations: int,
    start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional fit at mu of every toy at once: damped, projected Newton.

    The Hessian of the NLL in (signal thetas, background thetas, gamma) is a diagonal,
    plus gamma's row and column (it multiplies every background: an arrow), plus two
    rank-one terms (the signal thetas share the signal's factor; every parameter shares
    nu in n / nu^2 grad nu grad nu^T). The Newton step is solved in closed form from that
    structure (Woodbury with a 2 x 2 system per toy) in O(P) per toy instead of a
    general P x P solve. The code-4 interpolation at the step's end serves both its
    line search and the next step.
    """
    ns, nb = len(m.sig_hi), len(m.b)
    s_mu = mu * m.s * scale
    p, inv_var = _start_point(m, aux, mu, start)
    st = _State.at(m, p, n, aux, s_mu)
    cur = st.nll.copy()
    act = np.arange(len(n))  # toys still moving
    for _ in range(iterations):
        if act.size == 0:
            break
        na, aa, ca = n[act], aux[act], cur[act]
        gr = _gradient(st, na, aa, ns, nb, inv_var)
        step, decrement, climbs = _newton_step(st, gr, ns, nb, inv_var)
        tol = 1e-12 * (1.0 + np.abs(ca))
        # a Newton step from where the predicted gain (half the decrement) is below
        # 5e-8 leaves an error orders of magnitude below that (quadratic convergence;
        # q then differs by < 1e-12 from a fit iterated to the end): the last step, for
        # which only the NLL at its end is needed, not the derivatives
        last = ~climbs & (decrement < 1e-7)
        done = np.flatnonzero(last)
        if done.size:
            p_end = st.p[done] + step[done]
            p_end[:, -1] = np.maximum(p_end[:, -1], GAMMA_FLOOR)
            with np.errstate(over="ignore", invalid="ignore"):
                nll_end = _nll(m, p_end, na[done], aa[done], scale)
            lower = nll_end <= ca[done] + tol[done]
            p[act[done[lower]]] = p_end[lower]
            cur[act[done[lower]]] = nll_end[lower]
        moving = np.flatnonzero(~last)
        if moving.size == 0:
            break
        act, st, step, na, aa, ca, tol = (
            act[moving], st.take(moving), step[moving], na[moving], aa[moving], ca[moving],
            tol[moving],
        )  # fmt: skip
        trial = _line_search(m, st, step, na, aa, ca, s_mu)
        better = trial.nll <= ca + tol
        gain = np.where(better, ca - trial.nll, 0.0)
        rows = np.flatnonzero(better)
        p[act[rows]] = trial.p[rows]
        cur[act[rows]] = trial.nll[rows]
        keep = np.flatnonzero(gain > 1e-10)
        act = act[keep]
        st = trial.take(keep)
    return p, cur


def _start_point(
    m: OneBinModel, aux: np.ndarray, mu: float, start: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """The fits' start (mu fixed, gamma at or above its floor) and gamma's inverse variance."""
    p = _constraint_optimum(m, aux) if start is None else np.array(start, dtype=float)
    p[:, 0] = mu
    if m.gamma_sigma > 0:
        p[:, -1] = np.maximum(p[:, -1], GAMMA_FLOOR)
        inv_var = 1.0 / m.gamma_sigma**2
    else:
        p[:, -1] = 1.0
        inv_var = 0.0
    return p, inv_var


class _Gradient(NamedTuple):
    """The NLL's gradient at a state (per toy) and the terms its Hessian shares with it."""

    #: d NLL / d p: 0 for mu and for a gamma held at its floor
    grad: np.ndarray
    #: gamma's component of ``grad``
    grad_g: np.ndarray
    #: 1 - n / nu
    r: np.ndarray
    #: n / nu^2 (0 where n = 0)
    w: np.ndarray
    #: r x signal
    rs: np.ndarray
    #: gamma x each background
    c_b: np.ndarray
    #: d nu / d theta_b
    cdb: np.ndarray
    #: gamma not held at its floor
    free_g: np.ndarray
    #: d nu / d gamma of the free gamma
    v_g: np.ndarray


def _gradient(
    st: _State, na: np.ndarray, aa: np.ndarray, ns: int, nb: int, inv_var: float
) -> _Gradient:
    """The gradient of the NLL in (signal thetas, background thetas, gamma) at ``st``."""
    pa = st.p
    ts, tb, g = pa[:, 1 : 1 + ns], pa[:, 1 + ns : 1 + ns + nb], pa[:, -1]
    ds, db = st.dlog[:, :ns], st.dlog[:, ns:]
    sig, eb, bkg, nu = st.sig, st.eb, st.bkg, st.nu
    c_b = g[:, None] * eb
    r = 1.0 - na / nu
    # n / nu^2 is 0 where n = 0 (nu may be exactly 0 there: no background)
    w = np.where(na > 0, na / nu / nu, 0.0)
    rs = r * sig
    cdb = c_b * db  # d nu / d theta_b
    grad = np.empty_like(pa)
    grad[:, 0] = 0.0
    grad_s = grad[:, 1 : 1 + ns]
    np.multiply(rs[:, None], ds, out=grad_s)
    grad_s += ts - aa[:, :ns]
    grad_b = grad[:, 1 + ns : 1 + ns + nb]
    np.multiply(r[:, None], cdb, out=grad_b)
    grad_b += tb - aa[:, ns : ns + nb]
    if inv_var > 0:
        grad_g = r * bkg + (g - aa[:, -1]) * inv_var
        # gamma at its floor with the gradient pushing outwards stays there (active
        # set): a toy's auxiliary gamma far below 1 (large sigma) takes it there
        free_g = ~((g <= GAMMA_FLOOR) & (grad_g > 0.0))
    else:
        grad_g = np.zeros_like(g)
        free_g = np.zeros(g.shape, bool)
    grad_g = np.where(free_g, grad_g, 0.0)
    grad[:, -1] = grad_g
    v_g = np.where(free_g, bkg, 0.0)  # d nu / d gamma of the free gamma
    return _Gradient(grad, grad_g, r, w, rs, c_b, cdb, free_g, v_g)


def _newton_step(
    st: _State, gr: _Gradient, ns: int, nb: int, inv_var: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(step, Newton decrement, where the Newton step would climb) of every toy.

    The Hessian is the diagonal K (+1e-9 as a floor), gamma's arrow e, and the two
    rank-one terms V M V^T with V = [(ds, 0, 0), (0, cdb, v_g)], M = [[a, w sig], [w sig, w]];
    solved by Woodbury with a 2 x 2 system per toy. Where it is not positive definite the
    step is the diagonally scaled gradient instead (always downhill).
    """
    ds, d2s = st.dlog[:, :ns], st.d2log[:, :ns]
    db, d2b = st.dlog[:, ns:], st.d2log[:, ns:]
    sig, eb = st.sig, st.eb
    r, w, rs, cdb, free_g, v_g = gr.r, gr.w, gr.rs, gr.cdb, gr.free_g, gr.v_g
    grad_s, grad_b = gr.grad[:, 1 : 1 + ns], gr.grad[:, 1 + ns : 1 + ns + nb]
    k_s = 1.0 + rs[:, None] * d2s + 1e-9
    k_b = 1.0 + r[:, None] * gr.c_b * (db * db + d2b) + 1e-9
    k_g = np.where(free_g, inv_var + 1e-9, 1.0)
    e = np.where(free_g[:, None], r[:, None] * eb * db, 0.0)
    a = rs + w * sig * sig
    ws = w * sig
    z_s = -grad_s / k_s
    z1 = ds / k_s
    (z_b, z_g), (z2_b, z2_g) = (
        _arrow_solve(k_b, e, k_g, y_b, y_g) for y_b, y_g in ((-grad_b, -gr.grad_g), (cdb, v_g))
    )
    q11 = np.einsum("ij,ij->i", ds, z1)
    q22 = np.einsum("ij,ij->i", cdb, z2_b) + v_g * z2_g
    c1 = np.einsum("ij,ij->i", ds, z_s)
    c2 = np.einsum("ij,ij->i", cdb, z_b) + v_g * z_g
    mc1, mc2 = a * c1 + ws * c2, ws * c1 + w * c2
    a11, a12, a21, a22 = 1.0 + a * q11, ws * q22, ws * q11, 1.0 + w * q22
    with np.errstate(divide="ignore", invalid="ignore"):
        det = a11 * a22 - a12 * a21
        t1 = (a22 * mc1 - a12 * mc2) / det
        t2 = (a11 * mc2 - a21 * mc1) / det
    step = np.empty_like(st.p)
    step[:, 0] = 0.0
    step[:, 1 : 1 + ns] = z_s - z1 * t1[:, None]
    step[:, 1 + ns : 1 + ns + nb] = z_b - z2_b * t2[:, None]
    step[:, -1] = z_g - z2_g * t2
    decrement = -np.einsum("ij,ij->i", gr.grad, step)
    climbs = ~(decrement > 0.0)
    if climbs.any():
        diag = np.empty_like(st.p)
        diag[:, 0] = 1.0
        diag[:, 1 : 1 + ns] = k_s + a[:, None] * ds * ds
        diag[:, 1 + ns : 1 + ns + nb] = k_b + w[:, None] * cdb * cdb
        diag[:, -1] = k_g + w * v_g * v_g
        fallback = -gr.grad / np.maximum(np.abs(diag), 1e-9)
        step = np.where(climbs[:, None], fallback, step)
    return step, decrement, climbs


def _line_search(
    m: OneBinModel,
    st: _State,
    step: np.ndarray,
    na: np.ndarray,
    aa: np.ndarray,
    ca: np.ndarray,
    s_mu: float,
) -> _State:
    """The state at the step's end, halved up to 12 times for the toys whose NLL it does
    not lower (the last halving where none was lower)."""
    tol = 1e-12 * (1.0 + np.abs(ca))
    trial = st.p + step
    trial[:, -1] = np.maximum(trial[:, -1], GAMMA_FLOOR)
    new = _State.at(m, trial, na, aa, s_mu)
    worse = np.flatnonzero(~(new.nll <= ca + tol))
    t = 1.0
    for _half in range(12):
        if worse.size == 0:
            break
        t *= 0.5
        tw = st.p[worse] + t * step[worse]
        tw[:, -1] = np.maximum(tw[:, -1], GAMMA_FLOOR)
        sw = _State.at(m, tw, na[worse], aa[worse], s_mu)
        new.put(worse, sw)
        worse = worse[~(sw.nll <= ca[worse] + tol[worse])]
    return new


def qmu_tilde(
    m: OneBinModel,
    mu: float,
    n: np.ndarray,
    aux: np.ndarray,
    *,
    scale: float = 1.0,
    free: tuple[np.ndarray, np.ndarray] | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The qmu-tilde test statistic (pyhf's ``qtilde``) for every toy, shape (N,).

    ``free``: the unconditional fit of these toys, ``fit(m, n, aux, mu_fixed=None)``,
    when the caller already has it (it does not depend on mu). ``start``: starting
    parameters of the conditional fit (:func:`fit`).
    """
    return _qmu_and_fit(m, mu, n, aux, scale=scale, free=free, start=start)[0]


def _qmu_and_fit(
    m: OneBinModel,
    mu: float,
    n: np.ndarray,
    aux: np.ndarray,
    *,
    scale: float,
    free: tuple[np.ndarray, np.ndarray] | None,
    start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """qmu-tilde and the conditional fit's parameters (N, P).

    q is 0 where mu-hat > mu: those toys are not fitted at mu (their parameters are
    left at ``start`` or the constraints' minimum).
    """
    p_free, nll_free = fit(m, n, aux, mu_fixed=None, scale=scale) if free is None else free
    p_cond = _constraint_optimum(m, aux) if start is None else np.array(start, dtype=float)
    p_cond[:, 0] = mu
    q = np.zeros(len(n))
    need = np.flatnonzero(~(p_free[:, 0] > mu))
    if need.size:
        p_cond[need], nll_cond = fit(
            m, n[need], aux[need], mu_fixed=mu, scale=scale, start=p_cond[need]
        )
        q[need] = np.maximum(2.0 * (nll_cond - nll_free[need]), 0.0)
    return q, p_cond


def _poisson_quantile(u: np.ndarray, nu: float) -> np.ndarray:
    """Inverse Poisson CDF: the least n with P(N <= n; nu) >= u, for u in [0, 1).

    The CDF is tabulated over nu +- (40 sqrt(nu) + 40), outside which it is 0 or 1 in
    double precision, so the table stays small at any nu.
    """
    half = 40.0 * np.sqrt(nu) + 40.0
    k = np.arange(max(0, int(nu - half)), int(nu + half) + 1)
    cdf = special.pdtr(k, nu)
    return k[np.minimum(np.searchsorted(cdf, u, side="left"), k.size - 1)].astype(float)


def _sample(
    m: OneBinModel, pars: np.ndarray, n_toys: int, rng: np.random.Generator, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Toys at ``pars``: main count and auxiliary data, by inversion of common random numbers.

    The generator always yields the same uniforms and normals whatever ``pars`` is, and
    each toy is their quantile at ``pars``. So toy i at mu and at mu + d differ only by
    the shift in the means: the ensembles of a scan are coupled (common random numbers)
    and CLs(mu) has no toy-to-toy noise between neighbouring mu.
    """
    nu, _, _ = _nu_derivs(m, pars[None, :], scale)
    n = _poisson_quantile(rng.random(n_toys), float(nu[0]))
    ns = m.n_pars - 2
    z = rng.standard_normal((n_toys, ns + 1))
    aux = np.empty((n_toys, ns + 1))
    aux[:, :ns] = pars[1:-1] + z[:, :ns]
    aux[:, ns] = pars[-1] + m.gamma_sigma * z[:, ns] if m.gamma_sigma > 0 else 1.0
    return n, aux


def _sample_hybrid(
    m: OneBinModel, mu: float, n_toys: int, rng: np.random.Generator, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hybrid (Cousins-Highland) toys at ``mu``: the nuisance parameters of each toy are
    drawn from their constraints around the observed auxiliary data, the count from the
    Poisson mean they give, and the auxiliary data stay the observed ones.

    The same uniforms and normals at every mu (common random numbers, as :func:`_sample`).
    """
    u = rng.random(n_toys)
    ns = m.n_pars - 2
    z = rng.standard_normal((n_toys, ns + 1))
    pars = np.empty((n_toys, m.n_pars))
    pars[:, 0] = mu
    pars[:, 1:-1] = z[:, :ns]
    pars[:, -1] = np.maximum(1.0 + m.gamma_sigma * z[:, ns], 0.0) if m.gamma_sigma > 0 else 1.0
    nu = np.maximum(_nu(m, pars, scale), 0.0)
    n = _poisson_quantile_each(u, nu)
    aux = np.zeros((n_toys, ns + 1))
    aux[:, ns] = 1.0
    return n, aux


def _poisson_quantile_each(u: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Inverse Poisson CDF with a mean per toy: the least n with P(N <= n; nu_i) >= u_i."""
    from scipy import stats

    return np.maximum(stats.poisson.ppf(u, nu), 0.0)


@dataclass(frozen=True)
class ToyCLs:
    """CLs at one mu: observed (if data were given) and the expected band (-2..+2 sigma)."""

    mu: float
    cls_obs: float
    cls_exp: np.ndarray


def toy_cls(
    m: OneBinModel,
    mu: float,
    *,
    n_toys: int,
    seed: int | np.random.SeedSequence,
    observed: float | None = None,
    scale: float = 1.0,
    memo: dict[str, Any] | None = None,
    nuisance: str = "frequentist",
) -> ToyCLs:
    """CLs from toys at one mu, like pyhf's ToyCalculator with ``qtilde``.

    ``nuisance="frequentist"`` (pyhf's): toys are thrown at the conditional fit to the
    data (mu and mu = 0) and their auxiliary data fluctuate; without observed data the
    nominal background (the Asimov background-only data) is used.
    ``nuisance="hybrid"`` (Cousins-Highland): each toy's nuisance parameters are drawn
    from their constraints and the auxiliary data stay the observed ones
    (:func:`_sample_hybrid`); the test statistic is the same.
    The same seed gives the same toys for every mu (smooth root finding). The
    background-only toys and their unconditional fit are then the same at every mu:
    pass one ``memo`` dict to the calls of one scan (same model, seed, toys, data)
    and they are made once.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng_sb, rng_b = (np.random.default_rng(s) for s in ss.spawn(2))
    n_data = m.b.sum() if observed is None else float(observed)
    aux_data = np.zeros((1, m.n_pars - 1))
    aux_data[0, -1] = 1.0
    n_arr = np.array([n_data])
    if nuisance not in ("frequentist", "hybrid"):
        raise LimitError(f"statistics.toy_nuisance: unknown choice {nuisance!r}")
    hybrid = nuisance == "hybrid"
    if hybrid:
        n_sb, a_sb = _sample_hybrid(m, mu, n_toys, rng_sb, scale)
    else:
        p_sb, _ = fit(m, n_arr, aux_data, mu_fixed=mu, scale=scale)
        n_sb, a_sb = _sample(m, p_sb[0], n_toys, rng_sb, scale)
    if memo is None or "b_toys" not in memo:
        if hybrid:
            n_b, a_b = _sample_hybrid(m, 0.0, n_toys, rng_b, scale)
        else:
            p_b, _ = fit(m, n_arr, aux_data, mu_fixed=0.0, scale=scale)  # the same at every mu
            n_b, a_b = _sample(m, p_b[0], n_toys, rng_b, scale)
        b_toys = (n_b, a_b, fit(m, n_b, a_b, mu_fixed=None, scale=scale))
        if memo is not None:
            memo["b_toys"] = b_toys
    else:
        b_toys = memo["b_toys"]
    n_b, a_b, free_b = b_toys
    # the conditional fits of the same toys at the nearest mu of this scan start the
    # fits at this mu (the toys are coupled across mu: a few Newton steps fewer)
    starts = None if memo is None else memo.setdefault("conditional", {"sb": {}, "b": {}})
    q_sb, p_sb_cond = _qmu_and_fit(
        m, mu, n_sb, a_sb, scale=scale, free=None, start=_nearest(starts, "sb", mu)
    )
    q_b, p_b_cond = _qmu_and_fit(
        m, mu, n_b, a_b, scale=scale, free=free_b, start=_nearest(starts, "b", mu)
    )
    if starts is not None:
        starts["sb"][mu], starts["b"][mu] = p_sb_cond, p_b_cond
    q_sb.sort()
    q_b.sort()
    tol = 1e-7

    def cls_of(q: np.ndarray) -> np.ndarray:
        clsb = 1.0 - np.searchsorted(q_sb, q - tol, side="left") / n_toys
        clb = 1.0 - np.searchsorted(q_b, q - tol, side="left") / n_toys
        return np.divide(clsb, clb, out=np.ones_like(clsb), where=clb > 0)

    cls_b = cls_of(q_b)
    cls_exp = np.quantile(cls_b, NORMAL_QUANTILES)
    cls_obs = float("nan")
    if observed is not None:
        q_obs = qmu_tilde(m, mu, n_arr, aux_data, scale=scale)
        cls_obs = float(cls_of(q_obs)[0])
    return ToyCLs(mu=mu, cls_obs=cls_obs, cls_exp=cls_exp)


def _nearest(
    starts: dict[str, dict[float, np.ndarray]] | None, kind: str, mu: float
) -> np.ndarray | None:
    """The conditional fit of a scan's toys at the mu nearest to ``mu`` (None: none yet)."""
    if not starts or not starts[kind]:
        return None
    return starts[kind][min(starts[kind], key=lambda x: abs(x - mu))]
