"""Z' production by muons on nuclei, mu N -> mu N Z', in the Weizsaecker-Williams approximation.

The Z' couples to the muon with strength e*eps, g' = eps sqrt(4 pi alpha); cross sections
are in pb for the given ``eps`` (they scale as eps^2). WW (Kirpichnikov et al., PRD 104
(2021) 076012, as in DMG4, Comput. Phys. Commun. 269 (2021) 108129) is the default, IWW
(Bjorken et al., PRD 80 (2009) 075018) the fast alternative; each function's docstring
gives its formula and numerical method, docs/zprime-production.md the checks of the
magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from bkg.physics._quadrature import gauss_legendre, gauss_legendre_unit
from bkg.physics.constants import (
    ALPHA,
    GEV2_TO_PB,
    LEAD,
    M_E_GEV,
    M_MU_GEV,
    M_P_GEV,
    MU_P,
    Material,
)

__all__ = [
    "ChiTable",
    "CrossSectionTable",
    "d2sigma_dx_dtheta_pb",
    "dsigma_dx_iww_light_lepton_pb",
    "dsigma_dx_iww_pb",
    "dsigma_dx_pb",
    "dsigma_dx_ww_pb",
    "form_factor_chi",
    "form_factor_g2",
    "sigma_total_pb",
]

Method = Literal["ww", "iww"]

THETA_MAX_DEFAULT = 0.3  # rad, DMG4's ThetaMax for DarkZ
_N_CHI_QUAD = 96  # Gauss-Legendre nodes in ln t for the direct chi integral
_N_THETA = 20  # Gauss-Legendre nodes in w = ln(1+s) for the WW angular integral
_N_X_PANELS = 32  # logit(x) panels for the x integral
_N_X_PER_PANEL = 4  # Gauss-Legendre nodes per panel
_CHI_T_MIN = 1e-24  # GeV^2, lower end of the tabulated chi antiderivatives
_CHI_T_MAX = 1e4  # GeV^2, upper end
_CHI_DLNT = 0.04  # step in ln t of the tabulated antiderivatives
_CHUNK = 48  # (E0, m) pairs per vectorised block
_CHI_BLOCK = 256  # chi limits per block of form_factor_chi


# ---------------------------------------------------------------------------------------------
# Form factors


def _ff_constants(material: Material) -> tuple[float, float, float, float, float]:
    """(t_a, t_d, t_a', c_p, Z) of Tsai's form factors for a material (t in GeV^2)."""
    z = float(material.z)
    a_el = 111.0 * z ** (-1.0 / 3.0) / M_E_GEV  # GeV^-1, atomic screening (elastic)
    a_in = 773.0 * z ** (-2.0 / 3.0) / M_E_GEV  # GeV^-1, atomic screening (inelastic)
    d = 0.164 * material.a_g_mol ** (-2.0 / 3.0)  # GeV^2, nuclear size
    c_p = (MU_P**2 - 1.0) / (4.0 * M_P_GEV**2)  # GeV^-2, proton magnetic term
    return 1.0 / a_el**2, d, 1.0 / a_in**2, c_p, z


def form_factor_g2(t_gev2: ArrayLike, *, material: Material = LEAD) -> np.ndarray:
    """Tsai's combined form factor G2(t) = G2_el(t) + G2_in(t) (dimensionless).

    G2_el = Z^2 [a^2 t/(1 + a^2 t)]^2 [1/(1 + t/d)]^2, a = 111 Z^(-1/3)/m_e, d = 0.164 A^(-2/3) GeV^2;
    G2_in = Z [a'^2 t/(1 + a'^2 t)]^2 [(1 + t (mu_p^2 - 1)/(4 m_p^2))/(1 + t/0.71)^4]^2,
    a' = 773 Z^(-2/3)/m_e.

    Args:
        t_gev2: momentum transfer squared t (GeV^2), any shape.
        material: the target element.

    Returns:
        G2(t), same shape.
    """
    t = np.asarray(t_gev2, dtype=float)
    ta, td, ta_in, c_p, z = _ff_constants(material)
    el = z * z * (t / (t + ta)) ** 2 * (td / (td + t)) ** 2
    inel = z * (t / (t + ta_in)) ** 2 * ((1.0 + c_p * t) / (1.0 + t / 0.71) ** 4) ** 2
    return el + inel


def form_factor_chi(
    tmin_gev2: ArrayLike,
    tmax_gev2: ArrayLike,
    *,
    material: Material = LEAD,
    n_nodes: int = _N_CHI_QUAD,
) -> np.ndarray:
    """Effective photon flux chi = int_tmin^tmax (t - tmin)/t^2 G2(t) dt (dimensionless).

    Direct Gauss-Legendre quadrature in ln t (the integrand (1 - tmin/t) G2 is smooth in
    ln t), vectorised over any broadcast shape; zero where tmin >= tmax.

    Args:
        tmin_gev2: lower limit tmin > 0 (GeV^2).
        tmax_gev2: upper limit (GeV^2).
        material: the target element.
        n_nodes: number of quadrature nodes.

    Returns:
        chi, broadcast shape of the limits.
    """
    tmin, tmax = np.broadcast_arrays(
        np.asarray(tmin_gev2, dtype=float), np.asarray(tmax_gev2, dtype=float)
    )
    shape = tmin.shape
    tmin, tmax = tmin.ravel(), tmax.ravel()
    out = np.empty(tmin.size)
    # in blocks of limits whose (block, n_nodes) temporaries stay in the L2 cache: the
    # same operations on every element as one pass over all limits, ~3x less time
    for start in range(0, tmin.size, _CHI_BLOCK):
        sl = slice(start, start + _CHI_BLOCK)
        out[sl] = _chi_block(tmin[sl], tmax[sl], material, n_nodes)
    return out.reshape(shape)


def _chi_block(tmin: np.ndarray, tmax: np.ndarray, material: Material, n_nodes: int) -> np.ndarray:
    ok = (tmax > tmin) & (tmin > 0.0)
    lo = np.log(np.where(ok, tmin, 1.0))
    hi = np.log(np.where(ok, tmax, 1.0))
    tau, w = gauss_legendre(n_nodes, lo, hi)
    t = np.exp(tau)
    f = (1.0 - tmin[..., None] / t) * form_factor_g2(t, material=material)
    return np.where(ok, np.sum(f * w, axis=-1), 0.0)


@dataclass(frozen=True, eq=False)
class ChiTable:
    """Tabulated antiderivatives that make chi(tmin, tmax) a cheap lookup for one material.

    With Fbar(t) = int_t^inf G2/t' dt' and Hbar(t) = int_t^inf G2/t'^2 dt',
    chi = [Fbar(tmin) - Fbar(tmax)] - tmin [Hbar(tmin) - Hbar(tmax)].  Both are tabulated
    on a uniform grid in ln t (integrated from the top down, so that each value keeps its
    own relative precision) and interpolated with cubic Hermite polynomials using the exact
    derivatives -G2 and -G2/t.  Build it with :meth:`build`.

    Attributes:
        material: the target element.
        ln_t0: ln of the first grid point (GeV^2).
        dlnt: grid step in ln t.
        fbar: Fbar at the grid points.
        hbar: Hbar at the grid points.
        g2: G2 at the grid points.
    """

    material: Material
    ln_t0: float
    dlnt: float
    fbar: np.ndarray = field(repr=False)
    hbar: np.ndarray = field(repr=False)
    g2: np.ndarray = field(repr=False)

    @classmethod
    def build(
        cls,
        material: Material = LEAD,
        *,
        t_min_gev2: float = _CHI_T_MIN,
        t_max_gev2: float = _CHI_T_MAX,
        dlnt: float = _CHI_DLNT,
    ) -> ChiTable:
        """Tabulate the antiderivatives for ``material`` (about 2 ms)."""
        ln0, ln1 = np.log(t_min_gev2), np.log(t_max_gev2)
        n = int(np.ceil((ln1 - ln0) / dlnt))
        grid = ln0 + dlnt * np.arange(n + 1)
        tau, w = gauss_legendre(8, grid[:-1], grid[1:])
        t = np.exp(tau)
        g2 = form_factor_g2(t, material=material)
        cell_f = np.sum(g2 * w, axis=-1)  # dFbar/dln t = -G2
        cell_h = np.sum(g2 / t * w, axis=-1)  # dHbar/dln t = -G2/t
        fbar = np.concatenate([np.cumsum(cell_f[::-1])[::-1], [0.0]])
        hbar = np.concatenate([np.cumsum(cell_h[::-1])[::-1], [0.0]])
        g2_grid = form_factor_g2(np.exp(grid), material=material)
        for a in (fbar, hbar, g2_grid):
            a.setflags(write=False)
        return cls(material, float(ln0), float(dlnt), fbar, hbar, g2_grid)

    def _interp(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.fbar.size - 1
        ln_t = np.log(t)
        pos = np.clip((ln_t - self.ln_t0) / self.dlnt, 0.0, n - 1e-9)
        k = pos.astype(np.intp)
        u = pos - k
        u2 = u * u
        u3 = u2 * u
        h00 = 2 * u3 - 3 * u2 + 1
        h10 = u3 - 2 * u2 + u
        h01 = -2 * u3 + 3 * u2
        h11 = u3 - u2
        g0, g1 = self.g2[k], self.g2[k + 1]
        t0 = np.exp(self.ln_t0 + self.dlnt * k)
        t1 = t0 * np.exp(self.dlnt)
        d = self.dlnt
        f = h00 * self.fbar[k] - h10 * d * g0 + h01 * self.fbar[k + 1] - h11 * d * g1
        h = h00 * self.hbar[k] - h10 * d * g0 / t0 + h01 * self.hbar[k + 1] - h11 * d * g1 / t1
        return f, h

    def chi(self, tmin_gev2: ArrayLike, tmax_gev2: ArrayLike) -> np.ndarray:
        """chi(tmin, tmax) for this material, any broadcast shape; zero where tmin >= tmax."""
        tmin, tmax = np.broadcast_arrays(
            np.asarray(tmin_gev2, dtype=float), np.asarray(tmax_gev2, dtype=float)
        )
        ok = (tmax > tmin) & (tmin > 0.0)
        lo = np.where(ok, tmin, 1.0)
        hi = np.where(ok, tmax, 1.0)
        f_lo, h_lo = self._interp(lo)
        f_hi, h_hi = self._interp(hi)
        chi = (f_lo - f_hi) - lo * (h_lo - h_hi)
        return np.where(ok, np.maximum(chi, 0.0), 0.0)


# ---------------------------------------------------------------------------------------------
# Differential cross sections


def _kinematics(x: np.ndarray, e0: np.ndarray, m: np.ndarray, ml: float):
    """U0 = m^2 (1-x)/x + m_l^2 x, sqrt(x^2 - m^2/E0^2) and the valid-x mask."""
    ok = (x > m / e0) & (x < 1.0 - ml / e0) & (x > 0.0)
    xs = np.where(ok, x, 0.5)
    u0 = m * m * (1.0 - xs) / xs + ml * ml * xs
    beta = np.sqrt(np.clip(xs * xs - (m / e0) ** 2, 0.0, None))
    return xs, u0, beta, ok


def d2sigma_dx_dtheta_pb(
    x: ArrayLike,
    theta: ArrayLike,
    e0_gev: ArrayLike,
    m_zprime_gev: ArrayLike,
    *,
    material: Material = LEAD,
    eps: float = 1.0,
    m_lepton_gev: float = M_MU_GEV,
    chi_table: ChiTable | None = None,
) -> np.ndarray:
    """WW double-differential cross section d2sigma/(dx dtheta) in pb per radian.

    With x = E_Z'/E0 and theta the Z' polar angle::

        d2sigma/(dx dtheta) = 2 eps^2 alpha^3 E0^2 sin(theta) sqrt(x^2 - m^2/E0^2) (1-x)/u^2 |A|^2 chi
        u     = -x E0^2 theta^2 - m^2 (1-x)/x - m_mu^2 x
        |A|^2 = 2(2 - 2x + x^2)/(1-x) + 4 (m^2 + 2 m_mu^2)(u x + m^2 (1-x) + m_mu^2 x^2)/u^2
        chi   = int_tmin^tmax dt (t - tmin)/t^2 G2(t),  tmin = u^2/(4 E0^2 (1-x)^2),  tmax = m^2 + m_mu^2

    with Tsai's elastic (atomic screening + nuclear size) and inelastic (proton) form
    factors G2 = G2_el + G2_in. DMG4's C++ code takes tmax = E0^2; tmax enters only
    through the high-t tail of G2, which the nuclear form factor suppresses above
    d = 0.164 A^(-2/3) GeV^2: with tmax = E0^2, sigma_tot at 160 GeV rises by only 0.7%,
    0.5% and 2e-5 at m = 10, 100, 1000 MeV.

    Args:
        x: Z' energy fraction E_Z'/E0.
        theta: Z' polar angle (rad).
        e0_gev: incoming muon energy E0 (GeV).
        m_zprime_gev: Z' mass (GeV).
        material: the target element.
        eps: coupling e*eps (g' = eps sqrt(4 pi alpha)).
        m_lepton_gev: mass of the radiating lepton (muon by default).
        chi_table: a prebuilt :class:`ChiTable` for ``material`` (~15x faster, chi to
            1e-6); if None chi is the direct quadrature.

    Returns:
        d2sigma/(dx dtheta) in pb, broadcast shape of x, theta, e0, m; zero outside
        m/E0 < x < 1 - m_l/E0.
    """
    x, th, e0, m = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (x, theta, e0_gev, m_zprime_gev))
    )
    ml = float(m_lepton_gev)
    xs, u0, beta, ok = _kinematics(x, e0, m, ml)
    u = -xs * e0 * e0 * th * th - u0
    amp2 = 2.0 * (2.0 - 2.0 * xs + xs * xs) / (1.0 - xs) + 4.0 * (m * m + 2.0 * ml * ml) * (
        u * xs + m * m * (1.0 - xs) + ml * ml * xs * xs
    ) / (u * u)
    tmin = u * u / (4.0 * e0 * e0 * (1.0 - xs) ** 2)
    chi = _chi_function(material, chi_table)(tmin, m * m + ml * ml)
    val = 2.0 * eps**2 * ALPHA**3 * e0 * e0 * np.sin(th) * beta * (1.0 - xs) / (u * u) * amp2 * chi
    return np.where(ok & (th >= 0.0), val * GEV2_TO_PB, 0.0)


def _ww_angular_integral(
    xs: np.ndarray,
    e0: np.ndarray,
    m: np.ndarray,
    ml: float,
    u0: np.ndarray,
    chi_fn,
    theta_max: float,
    n_theta: int,
) -> np.ndarray:
    """int dy sin(theta)/theta |A|^2 chi over the WW angle, y = s/(1+s).

    For fixed x the angle is mapped to w = ln(1 + s) with s = x E0^2 theta^2 / U0,
    U0 = m^2 (1-x)/x + m_mu^2 x, so that theta dtheta / u^2 = e^(-w) dw / (2 x E0^2 U0)
    and the integrand is smooth in w; a fixed Gauss-Legendre rule integrates it up to
    min(theta_max, the angle where tmin reaches tmax, beyond which chi = 0).
    """
    tmax = m * m + ml * ml
    s_max = xs * e0 * e0 * theta_max**2 / u0
    s_cut = 2.0 * e0 * (1.0 - xs) * np.sqrt(tmax) / u0 - 1.0  # tmin = tmax here
    s_up = np.minimum(s_max, s_cut)
    live = s_up > 0.0
    w_up = np.log1p(np.where(live, s_up, 0.0))
    wn, ww = gauss_legendre(n_theta, 0.0, w_up)
    s = np.expm1(wn)
    xs_, e0_, m_, u0_ = (a[..., None] for a in (xs, e0, m, u0))
    u = -u0_ * (1.0 + s)
    amp2 = 2.0 * (2.0 - 2.0 * xs_ + xs_ * xs_) / (1.0 - xs_) + 4.0 * (m_ * m_ + 2.0 * ml * ml) * (
        u * xs_ + xs_ * u0_
    ) / (u * u)
    tmin = u * u / (4.0 * e0_ * e0_ * (1.0 - xs_) ** 2)
    chi = chi_fn(tmin, (m_ * m_ + ml * ml))
    theta = np.sqrt(s * u0_ / (xs_ * e0_ * e0_))
    sinc = np.sinc(theta / np.pi)
    return np.where(live, np.sum(ww * np.exp(-wn) * amp2 * chi * sinc, axis=-1), 0.0)


def _dsigma_dx_ww_gev2(
    x: np.ndarray,
    e0: np.ndarray,
    m: np.ndarray,
    ml: float,
    chi_fn,
    theta_max: float,
    n_theta: int,
) -> np.ndarray:
    """WW dsigma/dx in GeV^-2 for eps = 1 (broadcast arrays)."""
    xs, u0, beta, ok = _kinematics(x, e0, m, ml)
    ang = _ww_angular_integral(xs, e0, m, ml, u0, chi_fn, theta_max, n_theta)
    return np.where(ok, ALPHA**3 * beta * (1.0 - xs) / (xs * u0) * ang, 0.0)


def dsigma_dx_ww_pb(
    x: ArrayLike,
    e0_gev: ArrayLike,
    m_zprime_gev: ArrayLike,
    *,
    material: Material = LEAD,
    eps: float = 1.0,
    m_lepton_gev: float = M_MU_GEV,
    theta_max: float = THETA_MAX_DEFAULT,
    n_theta: int = _N_THETA,
    chi_table: ChiTable | None = None,
) -> np.ndarray:
    """WW single-differential cross section dsigma/dx in pb (theta integrated numerically).

    The angle runs from 0 to ``theta_max`` (DMG4's 0.3) and x from m/E0 to 1 - m_mu/E0;
    the angular integral is :func:`_ww_angular_integral`. chi comes from tabulated
    antiderivatives of G2/t and G2/t^2 (:class:`ChiTable`, cubic Hermite in ln t,
    relative accuracy ~1e-8), so a whole (E0, m) grid costs about a second.

    Args:
        x: Z' energy fraction.
        e0_gev: incoming muon energy (GeV).
        m_zprime_gev: Z' mass (GeV).
        material: the target element.
        eps: coupling e*eps.
        m_lepton_gev: radiating lepton mass (GeV).
        theta_max: upper limit of the Z' angle (rad); 0.3 as in DMG4.
        n_theta: Gauss-Legendre nodes of the angular integral.
        chi_table: a prebuilt :class:`ChiTable` for ``material`` (faster); if None chi is
            integrated directly.

    Returns:
        dsigma/dx in pb, broadcast shape of x, e0, m.
    """
    x, e0, m = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (x, e0_gev, m_zprime_gev)))
    chi_fn = _chi_function(material, chi_table)
    val = _dsigma_dx_ww_gev2(x, e0, m, float(m_lepton_gev), chi_fn, theta_max, n_theta)
    return eps**2 * GEV2_TO_PB * val


def _chi_iww(e0: np.ndarray, m: np.ndarray, ml: float, chi_fn) -> np.ndarray:
    return chi_fn(m**4 / (4.0 * e0 * e0), m * m + ml * ml)


def dsigma_dx_iww_pb(
    x: ArrayLike,
    e0_gev: ArrayLike,
    m_zprime_gev: ArrayLike,
    *,
    material: Material = LEAD,
    eps: float = 1.0,
    m_lepton_gev: float = M_MU_GEV,
    chi_table: ChiTable | None = None,
) -> np.ndarray:
    """IWW dsigma/dx in pb, massive radiating lepton (theta integrated analytically).

    dsigma/dx = eps^2 alpha^3 chi sqrt(x^2 - m^2/E0^2) 2 [2 U0 (3 - 3x + x^2)
    + m_l^2 x (x^2 + 2x - 2)] / (3 x U0^2), U0 = m^2 (1-x)/x + m_l^2 x, with chi at
    tmin = m^4/(4 E0^2), tmax = m^2 + m_l^2 (independent of x). Derived here from the WW
    double-differential form by taking chi out of the angular integral at that tmin and
    integrating the angle to infinity (the same expression as DMG4's
    ``DarkZ::CrossSectionDSDX_IWW``). IWW overestimates WW, the more the heavier the Z'
    (IWW/WW = 1.10, 1.22, 1.66, 1.73, 2.42 at 1, 10, 100, 200, 1000 MeV and 160 GeV):
    its tmin drops both the x dependence of WW's tmin and the muon mass.

    Args:
        x: Z' energy fraction.
        e0_gev: incoming lepton energy (GeV).
        m_zprime_gev: Z' mass (GeV).
        material: the target element.
        eps: coupling e*eps.
        m_lepton_gev: radiating lepton mass (GeV); -> 0 gives Bjorken et al.'s form.
        chi_table: optional prebuilt :class:`ChiTable`.

    Returns:
        dsigma/dx in pb, broadcast shape.
    """
    x, e0, m = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (x, e0_gev, m_zprime_gev)))
    ml = float(m_lepton_gev)
    chi = _chi_iww(e0, m, ml, _chi_function(material, chi_table))
    return eps**2 * GEV2_TO_PB * _dsigma_dx_iww_gev2_over_chi(x, e0, m, ml) * chi


def _dsigma_dx_iww_gev2_over_chi(
    x: np.ndarray, e0: np.ndarray, m: np.ndarray, ml: float
) -> np.ndarray:
    xs, u0, beta, ok = _kinematics(x, e0, m, ml)
    bracket = 2.0 * u0 * (3.0 - 3.0 * xs + xs * xs) + ml * ml * xs * (xs * xs + 2.0 * xs - 2.0)
    val = ALPHA**3 * beta * 2.0 * bracket / (3.0 * xs * u0 * u0)
    return np.where(ok, val, 0.0)


def dsigma_dx_iww_light_lepton_pb(
    x: ArrayLike,
    e0_gev: ArrayLike,
    m_zprime_gev: ArrayLike,
    *,
    material: Material = LEAD,
    eps: float = 1.0,
    tmax_gev2: ArrayLike | None = None,
) -> np.ndarray:
    """Bjorken-Essig-Schuster-Toro (2009) IWW spectrum for a massless radiating lepton, in pb.

    dsigma/dx = 4 eps^2 alpha^3 chi sqrt(1 - m^2/E0^2) x (1 + x^2/(3(1-x))) / m^2,
    chi at tmin = m^4/(4 E0^2) and tmax = m^2 (default).  This is the angular integral
    of their eq. (A11)-type double-differential rate; it is the m_l -> 0 limit of
    :func:`dsigma_dx_iww_pb` (up to sqrt(1 - m^2/E0^2) versus sqrt(1 - m^2/(x E0)^2)).

    Args:
        x: Z' energy fraction, 0 < x < 1.
        e0_gev: beam energy (GeV).
        m_zprime_gev: A'/Z' mass (GeV).
        material: the target element.
        eps: coupling e*eps.
        tmax_gev2: upper limit of the flux integral (default m^2).

    Returns:
        dsigma/dx in pb, broadcast shape.
    """
    x, e0, m = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (x, e0_gev, m_zprime_gev)))
    tmax = m * m if tmax_gev2 is None else np.asarray(tmax_gev2, dtype=float)
    chi = form_factor_chi(m**4 / (4.0 * e0 * e0), tmax, material=material)
    ok = (x > m / e0) & (x < 1.0) & (e0 > m)  # the Z' takes at least its mass
    xs = np.where(ok, x, 0.5)
    beta = np.sqrt(np.clip(1.0 - (m / e0) ** 2, 0.0, None))
    val = 4.0 * ALPHA**3 * chi * beta * xs * (1.0 + xs * xs / (3.0 * (1.0 - xs))) / (m * m)
    return np.where(ok, eps**2 * GEV2_TO_PB * val, 0.0)


def dsigma_dx_pb(
    x: ArrayLike,
    e0_gev: ArrayLike,
    m_zprime_gev: ArrayLike,
    *,
    method: Method = "ww",
    material: Material = LEAD,
    eps: float = 1.0,
    m_lepton_gev: float = M_MU_GEV,
) -> np.ndarray:
    """dsigma/dx in pb with ``method`` "ww" (default) or "iww"."""
    if method == "ww":
        return dsigma_dx_ww_pb(
            x, e0_gev, m_zprime_gev, material=material, eps=eps, m_lepton_gev=m_lepton_gev
        )
    if method == "iww":
        return dsigma_dx_iww_pb(
            x, e0_gev, m_zprime_gev, material=material, eps=eps, m_lepton_gev=m_lepton_gev
        )
    raise ValueError(f"unknown cross-section method {method!r}; use 'ww' or 'iww'")


def _chi_function(material: Material, chi_table: ChiTable | None):
    if chi_table is None:
        return lambda tmin, tmax: form_factor_chi(tmin, tmax, material=material)
    if chi_table.material != material:
        raise ValueError("chi_table was built for another material")
    return chi_table.chi


# ---------------------------------------------------------------------------------------------
# Integrated cross sections


def _logit(x: np.ndarray) -> np.ndarray:
    return np.log(x) - np.log1p(-x)


def _panel_integrals(
    e0: np.ndarray,
    m: np.ndarray,
    x_lo: np.ndarray,
    x_hi: np.ndarray,
    *,
    method: Method,
    ml: float,
    chi_table: ChiTable,
    theta_max: float,
    n_theta: int,
    n_panels: int,
    n_per_panel: int,
) -> np.ndarray:
    """Cross section (GeV^-2, eps = 1) in each of n_panels equal logit(x) panels over [x_lo, x_hi].

    Composite Gauss-Legendre panels in logit(x) = ln(x/(1-x)) resolve both the
    x -> m/E0 and the x -> 1 ends. All inputs are 1-d arrays of the same length N; returns shape (N, n_panels).
    """
    out = np.zeros((e0.size, n_panels))
    live = x_hi > x_lo
    if not np.any(live):
        return out
    u, w = gauss_legendre_unit(n_per_panel)
    for start in range(0, e0.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        lv = live[sl]
        if not np.any(lv):
            continue
        e, mm = e0[sl][lv], m[sl][lv]
        s_lo = _logit(x_lo[sl][lv])
        s_hi = _logit(x_hi[sl][lv])
        h = (s_hi - s_lo) / n_panels
        edges = s_lo[:, None] + h[:, None] * np.arange(n_panels)[None, :]
        s = edges[:, :, None] + h[:, None, None] * u[None, None, :]  # (n, P, q)
        x = 1.0 / (1.0 + np.exp(-s))
        jac = x * (1.0 - x) * h[:, None, None] * w[None, None, :]
        eb, mb = e[:, None, None], mm[:, None, None]
        if method == "ww":
            f = _dsigma_dx_ww_gev2(x, eb, mb, ml, chi_table.chi, theta_max, n_theta)
        elif method == "iww":
            f = _dsigma_dx_iww_gev2_over_chi(x, eb, mb, ml) * _chi_iww(eb, mb, ml, chi_table.chi)
        else:
            raise ValueError(f"unknown cross-section method {method!r}; use 'ww' or 'iww'")
        block = np.zeros((lv.size, n_panels))
        block[lv] = np.sum(f * jac, axis=-1)
        out[sl] = block
    return out


def sigma_total_pb(
    e0_gev: ArrayLike,
    m_zprime_gev: ArrayLike,
    *,
    method: Method = "ww",
    material: Material = LEAD,
    eps: float = 1.0,
    x_min: ArrayLike | None = None,
    x_max: ArrayLike | None = None,
    m_lepton_gev: float = M_MU_GEV,
    theta_max: float = THETA_MAX_DEFAULT,
    n_theta: int = _N_THETA,
    n_x_panels: int = _N_X_PANELS,
) -> np.ndarray:
    """Total (or x-restricted) cross section of mu N -> mu N Z' in pb.

    Integrates dsigma/dx over max(m/E0, x_min) < x < min(1 - m_l/E0, x_max).

    Args:
        e0_gev: muon energy (GeV), any shape.
        m_zprime_gev: Z' mass (GeV), broadcast with e0.
        method: "ww" (default, theta integrated numerically) or "iww".
        material: the target element.
        eps: coupling e*eps.
        x_min: optional lower limit on x = E_Z'/E0 (e.g. 1 - 80 GeV/E0 for the signal).
        x_max: optional upper limit on x.
        m_lepton_gev: radiating lepton mass (GeV).
        theta_max: WW angular cut (rad).
        n_theta: WW angular quadrature nodes.
        n_x_panels: logit(x) panels of 4 Gauss-Legendre nodes each.

    Returns:
        sigma in pb, broadcast shape of the inputs.
    """
    e0, m = np.broadcast_arrays(
        np.asarray(e0_gev, dtype=float), np.asarray(m_zprime_gev, dtype=float)
    )
    if np.any(~(m > 0)):
        raise ValueError("sigma_total_pb: the Z' mass must be above 0 (the flux diverges at 0)")
    ml = float(m_lepton_gev)
    x_lo = m / e0
    x_hi = 1.0 - ml / e0
    if x_min is not None:
        x_lo = np.maximum(x_lo, np.asarray(x_min, dtype=float))
    if x_max is not None:
        x_hi = np.minimum(x_hi, np.asarray(x_max, dtype=float))
    x_lo, x_hi = np.broadcast_arrays(x_lo, x_hi)
    shape = np.broadcast_shapes(e0.shape, x_lo.shape)
    e0f, mf, lof, hif = (np.broadcast_to(a, shape).ravel() for a in (e0, m, x_lo, x_hi))
    panels = _panel_integrals(
        e0f,
        mf,
        lof,
        hif,
        method=method,
        ml=ml,
        chi_table=ChiTable.build(material),
        theta_max=theta_max,
        n_theta=n_theta,
        n_panels=n_x_panels,
        n_per_panel=_N_X_PER_PANEL,
    )
    return (eps**2 * GEV2_TO_PB * panels.sum(axis=-1)).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Table


@dataclass(frozen=True, eq=False)
class CrossSectionTable:
    """sigma(E0, m) and its x-distribution on a grid, for fast signal-yield evaluation.

    Stores, for eps = 1, ln sigma_tot on a (log E0, log m) grid and, for each grid point,
    the fraction of the cross section with logit(x) above each of ``n_panels`` equal
    panel edges of [logit(m/E0), logit(1 - m_mu/E0)].  Queries interpolate bilinearly in
    (ln E0, ln m): ln sigma for the total, and the fraction above x_cut (linear in logit x
    between panel edges, evaluated at each corner with that corner's own x range).

    Attributes:
        energies_gev: the muon-energy grid (GeV, increasing).
        masses_gev: the Z' mass grid (GeV, increasing).
        method: "ww" or "iww".
        material: the target element.
        m_lepton_gev: radiating lepton mass (GeV).
        sigma_pb_grid: sigma_tot in pb at eps = 1, shape (n_E, n_m).
        frac_above: fraction of sigma with logit(x) above each panel edge, shape
            (n_E, n_m, n_panels + 1); frac_above[..., 0] = 1, frac_above[..., -1] = 0.
    """

    energies_gev: np.ndarray
    masses_gev: np.ndarray
    method: str
    material: Material
    m_lepton_gev: float
    sigma_pb_grid: np.ndarray = field(repr=False)
    frac_above: np.ndarray = field(repr=False)

    @classmethod
    def build(
        cls,
        *,
        energies_gev: ArrayLike | None = None,
        masses_gev: ArrayLike | None = None,
        method: Method = "ww",
        material: Material = LEAD,
        m_lepton_gev: float = M_MU_GEV,
        theta_max: float = THETA_MAX_DEFAULT,
        n_theta: int = _N_THETA,
        n_panels: int = _N_X_PANELS,
    ) -> CrossSectionTable:
        """Compute the table (about 1 s for 30 energies x 60 masses with WW).

        Args:
            energies_gev: muon energies (GeV); default 30 log-spaced from 10 to 200 GeV.
            masses_gev: Z' masses (GeV); default 60 log-spaced from 1 MeV to 3 GeV.
            method: "ww" or "iww".
            material: the target element.
            m_lepton_gev: radiating lepton mass (GeV).
            theta_max: WW angular cut (rad).
            n_theta: WW angular quadrature nodes.
            n_panels: number of logit(x) panels (also the x-resolution of the fractions).
        """
        if method not in ("ww", "iww"):
            raise ValueError(f"unknown cross-section method {method!r}; use 'ww' or 'iww'")
        e = (
            np.geomspace(10.0, 200.0, 30)
            if energies_gev is None
            else np.asarray(energies_gev, dtype=float)
        )
        ms = (
            np.geomspace(1e-3, 3.0, 60)
            if masses_gev is None
            else np.asarray(masses_gev, dtype=float)
        )
        e = np.unique(e)
        ms = np.unique(ms)
        if e.size < 2 or ms.size < 2 or e[0] <= 0 or ms[0] <= 0:
            raise ValueError("need at least two positive energies and two positive masses")
        ee, mm = np.meshgrid(e, ms, indexing="ij")
        ml = float(m_lepton_gev)
        x_lo = (mm / ee).ravel()
        x_hi = (1.0 - ml / ee).ravel()
        panels = _panel_integrals(
            ee.ravel(),
            mm.ravel(),
            x_lo,
            x_hi,
            method=method,
            ml=ml,
            chi_table=ChiTable.build(material),
            theta_max=theta_max,
            n_theta=n_theta,
            n_panels=n_panels,
            n_per_panel=_N_X_PER_PANEL,
        )
        total = panels.sum(axis=-1)
        above = np.concatenate(
            [np.cumsum(panels[:, ::-1], axis=-1)[:, ::-1], np.zeros((total.size, 1))], axis=-1
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(total[:, None] > 0, above / total[:, None], 0.0)
        sigma = (GEV2_TO_PB * total).reshape(ee.shape)
        frac = frac.reshape((*ee.shape, n_panels + 1))
        for a in (e, ms, sigma, frac):
            a.setflags(write=False)
        return cls(e, ms, method, material, ml, sigma, frac)

    # -- interpolation helpers ---------------------------------------------------------------

    @staticmethod
    def _locate(grid: np.ndarray, v: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        lg = np.log(grid)
        lv = np.log(v)
        tol = 1e-9
        if np.any(lv < lg[0] - tol) or np.any(lv > lg[-1] + tol):
            raise ValueError(
                f"{what} outside the cross-section table range [{grid[0]:.6g}, {grid[-1]:.6g}] GeV"
            )
        i = np.clip(np.searchsorted(lg, lv, side="right") - 1, 0, grid.size - 2)
        f = np.clip((lv - lg[i]) / (lg[i + 1] - lg[i]), 0.0, 1.0)
        return i, f

    def _corners(self, e_gev: ArrayLike, m_gev: ArrayLike):
        e, m = np.broadcast_arrays(np.asarray(e_gev, dtype=float), np.asarray(m_gev, dtype=float))
        i, fe = self._locate(self.energies_gev, e, "muon energy")
        j, fm = self._locate(self.masses_gev, m, "Z' mass")
        return e, m, i, fe, j, fm

    def sigma_pb(self, e_gev: ArrayLike, m_gev: ArrayLike, *, eps: float = 1.0) -> np.ndarray:
        """Total cross section in pb at (E0, m), interpolated in log space.

        Args:
            e_gev: muon energy (GeV), inside the table's energy range.
            m_gev: Z' mass (GeV), inside the table's mass range (broadcast with e_gev).
            eps: coupling e*eps (the table holds eps = 1; the result scales as eps^2).

        Returns:
            sigma in pb, broadcast shape.
        """
        _, _, i, fe, j, fm = self._corners(e_gev, m_gev)
        return eps**2 * self._interp_sigma(i, fe, j, fm)

    def _interp_sigma(self, i, fe, j, fm) -> np.ndarray:
        tiny = 1e-300
        ls = np.log(np.maximum(self.sigma_pb_grid, tiny))
        v = (
            (1 - fe) * (1 - fm) * ls[i, j]
            + fe * (1 - fm) * ls[i + 1, j]
            + (1 - fe) * fm * ls[i, j + 1]
            + fe * fm * ls[i + 1, j + 1]
        )
        out = np.exp(v)
        return np.where(out > 1e3 * tiny, out, 0.0)

    def _frac_corner(self, ii: np.ndarray, jj: np.ndarray, x_cut: np.ndarray) -> np.ndarray:
        e = self.energies_gev[ii]
        m = self.masses_gev[jj]
        x_lo = m / e
        x_hi = 1.0 - self.m_lepton_gev / e
        n_p = self.frac_above.shape[-1] - 1
        live = x_hi > x_lo
        xl = np.where(live, x_lo, 0.25)
        xh = np.where(live, x_hi, 0.75)
        xc = np.clip(x_cut, xl, xh)
        s_lo, s_hi, s_c = _logit(xl), _logit(xh), _logit(xc)
        pos = np.clip((s_c - s_lo) / (s_hi - s_lo) * n_p, 0.0, n_p)
        k = np.minimum(pos.astype(np.intp), n_p - 1)
        r = pos - k
        # Cubic Hermite in the panel index with centred-difference slopes (one-sided at the
        # ends): the cumulative is smooth, and this is ~10x more accurate than linear.
        c = self.frac_above[ii, jj]
        fa = np.take_along_axis(c, k[..., None], axis=-1)[..., 0]
        fb = np.take_along_axis(c, (k + 1)[..., None], axis=-1)[..., 0]
        km, kp = np.maximum(k - 1, 0), np.minimum(k + 2, n_p)
        fm = np.take_along_axis(c, km[..., None], axis=-1)[..., 0]
        fp = np.take_along_axis(c, kp[..., None], axis=-1)[..., 0]
        da = (fb - fm) / (k + 1 - km)
        db = (fp - fa) / (kp - k)
        r2, r3 = r * r, r * r * r
        val = (
            (2 * r3 - 3 * r2 + 1) * fa
            + (r3 - 2 * r2 + r) * da
            + (-2 * r3 + 3 * r2) * fb
            + (r3 - r2) * db
        )
        return np.where(live, np.clip(val, 0.0, 1.0), 0.0)

    def sigma_x_above_pb(
        self, e_gev: ArrayLike, m_gev: ArrayLike, x_cut: ArrayLike, *, eps: float = 1.0
    ) -> np.ndarray:
        """Cross section in pb for Z' energy fraction x >= x_cut at (E0, m).

        The signal definition E'_mu = E0 (1 - x) <= E_out_max is x_cut = 1 - E_out_max/E0
        (x_cut <= m/E0 returns the total cross section).

        Args:
            e_gev: muon energy (GeV).
            m_gev: Z' mass (GeV).
            x_cut: lower limit on x (broadcast with e and m).
            eps: coupling e*eps.

        Returns:
            sigma(x >= x_cut) in pb, broadcast shape.
        """
        e, m = np.broadcast_arrays(np.asarray(e_gev, dtype=float), np.asarray(m_gev, dtype=float))
        e, m, xc = np.broadcast_arrays(e, m, np.asarray(x_cut, dtype=float))
        _, _, i, fe, j, fm = self._corners(e, m)
        frac = (
            (1 - fe) * (1 - fm) * self._frac_corner(i, j, xc)
            + fe * (1 - fm) * self._frac_corner(i + 1, j, xc)
            + (1 - fe) * fm * self._frac_corner(i, j + 1, xc)
            + fe * fm * self._frac_corner(i + 1, j + 1, xc)
        )
        return eps**2 * self._interp_sigma(i, fe, j, fm) * frac
