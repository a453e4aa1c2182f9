"""Vectorised toys for the one-bin signal-box model (qmu-tilde, CLs).

The one-bin likelihood is Pois(n | nu) * prod_j N(a_j | theta_j, 1) * N(a_g | gamma, sigma_g)
with nu = mu s prod_{j in sig} f_j(theta_j) + gamma sum_i b_i f_i(theta_i) and pyhf's
default normsys interpolation, code 4: f = hi^theta for theta >= 1, lo^-theta for
theta <= -1, and in between a degree-6 polynomial that meets them in value and slope
(see :func:`code4_coefficients`), so f is smooth at theta = 0, where code 1 has a
kink. The toys thus fit the model the exported workspace defines. All toys are
fitted at once with a damped, projected Newton method on the exact gradient and
Hessian, so 1e4 toys cost a few batched small solves per iteration. The toys of
one scan are coupled across mu (common random numbers, :func:`_sample`), so CLs(mu)
is smooth and the limit has one root per band.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from bkg.errors import LimitError

__all__ = [
    "NORMAL_QUANTILES",
    "OneBinModel",
    "ToyCLs",
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "sig_poly", code4_coefficients(self.sig_hi, self.sig_lo))
        object.__setattr__(self, "b_poly", code4_coefficients(self.b_hi, self.b_lo))

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


def _code4_parts(
    theta: np.ndarray, hi: np.ndarray, lo: np.ndarray, poly: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What log f of normsys code 4 and its derivatives share, for theta (N, K).

    Returns [c_1, ..., c_6] (each (K,)), theta clipped to [-1, 1] (the polynomial is
    used only inside), f of the polynomial there (Horner), the mask |theta| < 1, and
    the slope of log f outside.
    """
    c = [poly[..., k] for k in range(6)]
    t = np.clip(theta, -1.0, 1.0)
    f = c[5] * t + c[4]
    for k in (3, 2, 1, 0):
        f = f * t + c[k]
    f = np.maximum(1.0 + f * t, _NU_FLOOR)
    slope = np.where(theta >= 0, np.log(hi), -np.log(lo))
    return c, t, f, np.abs(theta) < 1.0, slope


def _log_f(theta: np.ndarray, hi: np.ndarray, lo: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """log f(theta) of normsys code 4; theta (N, K), hi and lo (K,), poly (K, 6)."""
    _, _, f, inner, slope = _code4_parts(theta, hi, lo, poly)
    return np.where(inner, np.log(f), theta * slope)


def _interp(
    theta: np.ndarray, hi: np.ndarray, lo: np.ndarray, poly: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log f(theta) and its first and second derivative for normsys code 4.

    theta (N, K); hi, lo (K,); poly (K, 6) from :func:`code4_coefficients`.
    """
    c, t, f, inner, slope = _code4_parts(theta, hi, lo, poly)
    f1 = 6.0 * c[5] * t + 5.0 * c[4]
    f2 = 30.0 * c[5] * t + 20.0 * c[4]
    for k in (3, 2, 1, 0):  # c[k] is c_(k+1)
        f1 = f1 * t + (k + 1) * c[k]
        if k >= 1:
            f2 = f2 * t + (k + 1) * k * c[k]
    r1 = f1 / f
    logf = np.where(inner, np.log(f), theta * slope)
    d1 = np.where(inner, r1, slope)
    d2 = np.where(inner, f2 / f - r1 * r1, 0.0)
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
    ns, nb = len(m.sig_hi), len(m.b)
    ls = _log_f(p[:, 1 : 1 + ns], m.sig_hi, m.sig_lo, m.sig_poly)
    lb = _log_f(p[:, 1 + ns : 1 + ns + nb], m.b_hi, m.b_lo, m.b_poly)
    return p[:, 0] * m.s * scale * np.exp(ls.sum(axis=1)) + p[:, -1] * (
        np.exp(lb) @ m.b + m.b_const
    )


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
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood fit of every toy at once.

    Args:
        m: the model.
        n: observed counts (N,).
        aux: auxiliary data (N, P-1): normsys thetas then the staterror gamma.
        mu_fixed: fixed mu (conditional fit) or None (mu free in [0, inf)).
        scale: multiplies the signal (mu in units of 1/scale).
        iterations: Newton iterations.

    Returns:
        (parameters (N, P), NLL (N,)).
    """
    reduced, keep = _without_inert(m)
    if reduced is not m:
        p_r, nll = fit(
            reduced, n, aux[:, keep[1:] - 1], mu_fixed=mu_fixed, scale=scale, iterations=iterations
        )
        p_full = np.empty((len(n), m.n_pars))
        p_full[:, keep] = p_r
        inert = np.setdiff1d(np.arange(m.n_pars), keep)
        p_full[:, inert] = aux[:, inert - 1]
        return p_full, nll
    npts = len(n)
    npar = m.n_pars
    p = np.zeros((npts, npar))
    p[:, -1] = 1.0
    p[:, 0] = 0.0 if mu_fixed is None else mu_fixed
    if mu_fixed is None:  # start at the unconstrained estimate of mu
        b_total = m.b.sum() + m.b_const
        p[:, 0] = np.maximum(n - b_total, 0.0) / max(m.s * scale, 1e-300)
    free = np.ones(npar, bool)
    if mu_fixed is not None:
        free[0] = False
    if m.gamma_sigma <= 0:
        free[-1] = False
    cinv = np.zeros(npar)
    cinv[1:-1] = 1.0
    if m.gamma_sigma > 0:
        cinv[-1] = 1.0 / m.gamma_sigma**2
    cur = _nll(m, p, n, aux, scale)
    eye = np.eye(npar)
    act = np.arange(npts)  # toys still moving
    for _ in range(iterations):
        if act.size == 0:
            break
        pa, na, aa, ca = p[act], n[act], aux[act], cur[act]
        k = act.size
        nu, dnu, d2nu = _nu_derivs(m, pa, scale)
        nu = np.maximum(nu, _NU_FLOOR)
        r = 1.0 - na / nu
        grad = r[:, None] * dnu
        grad[:, 1:] += cinv[1:] * (pa[:, 1:] - aa)
        # n / nu^2 is 0 where n = 0 (nu may be exactly 0 there: no background)
        w2 = np.where(na > 0, na / nu / nu, 0.0)
        hess = r[:, None, None] * d2nu + w2[:, None, None] * dnu[:, :, None] * dnu[:, None, :]
        hess += np.diag(cinv)[None]
        # a parameter at its bound with the gradient pushing outwards stays there (active
        # set): mu at 0, and the staterror gamma at its floor, where a toy's auxiliary
        # gamma far below 1 (large sigma) takes it
        mask = np.broadcast_to(free, (k, npar)).copy()
        if mu_fixed is None:
            mask[:, 0] &= ~((pa[:, 0] <= 0.0) & (grad[:, 0] > 0.0))
        if m.gamma_sigma > 0:
            mask[:, -1] &= ~((pa[:, -1] <= GAMMA_FLOOR) & (grad[:, -1] > 0.0))
        g_m = np.where(mask, grad, 0.0)
        h_m = (
            np.where(mask[:, :, None] & mask[:, None, :], hess, 0.0)
            + eye * (~mask)[:, :, None]
            + eye * 1e-9
        )
        try:
            step = -np.linalg.solve(h_m, g_m[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -g_m
        # where the Hessian is not positive definite the Newton step may climb: take the
        # diagonally scaled gradient there instead (always downhill)
        climbs = ~(np.sum(g_m * step, axis=1) < 0.0)
        if climbs.any():
            diag = np.abs(np.diagonal(h_m, axis1=1, axis2=2))
            step = np.where(climbs[:, None], -g_m / np.maximum(diag, 1e-9), step)
        t = np.ones(k)
        tol = 1e-12 * (1.0 + np.abs(ca))
        for _half in range(12):
            trial = pa + t[:, None] * step
            trial[:, 0] = np.maximum(trial[:, 0], 0.0) if mu_fixed is None else mu_fixed
            trial[:, -1] = np.maximum(trial[:, -1], GAMMA_FLOOR)
            # a full Newton step of a rare toy can overshoot far enough that nu overflows;
            # its NLL is then inf or nan, not <= the current one, and the step is halved
            with np.errstate(over="ignore", invalid="ignore"):
                new = _nll(m, trial, na, aa, scale)
            worse = ~(new <= ca + tol)
            if not worse.any():
                break
            t = np.where(worse, t * 0.5, t)
        better = new <= ca + tol
        gain = np.where(better, ca - new, 0.0)
        p[act] = np.where(better[:, None], trial, pa)
        cur[act] = np.where(better, new, ca)
        act = act[gain > 1e-10]
    return p, cur


def qmu_tilde(
    m: OneBinModel,
    mu: float,
    n: np.ndarray,
    aux: np.ndarray,
    *,
    scale: float = 1.0,
    free: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The qmu-tilde test statistic (pyhf's ``qtilde``) for every toy, shape (N,).

    ``free``: the unconditional fit of these toys, ``fit(m, n, aux, mu_fixed=None)``,
    when the caller already has it (it does not depend on mu).
    """
    _, nll_cond = fit(m, n, aux, mu_fixed=mu, scale=scale)
    p_free, nll_free = fit(m, n, aux, mu_fixed=None, scale=scale) if free is None else free
    q = 2.0 * (nll_cond - nll_free)
    q = np.where(p_free[:, 0] > mu, 0.0, q)
    return np.maximum(q, 0.0)


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
    q_sb = np.sort(qmu_tilde(m, mu, n_sb, a_sb, scale=scale))
    q_b = np.sort(qmu_tilde(m, mu, n_b, a_b, scale=scale, free=free_b))
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
