"""MS1 and MS2 momentum measurement with physical non-Gaussian tails.

MS2 measures p from the bend phi = 0.3 B L / p of a track fitted to the hits of six
Micromegas stations (:func:`fit_tracks`: the fit and its chi^2); every kink of the muon
in a station shifts the fitted bend and adds to the chi^2 (:func:`kink_chi2_per_rad2`).
Tails: single large-angle scattering (:func:`_single_scatters`), quasi-elastic scattering
on a nucleon (:func:`_quasi_elastic`), knock-on electrons (:func:`_knock_ons`).
Entry points: :func:`measure_p_out` (hits per station: :class:`_Tracks`),
:func:`measure_p_in`. Method and numbers: docs/hermeticity-and-tracking.md (section 2),
docs/momentum-mismatch.md.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, cast

import numpy as np

from bkg.selection import next_station_on_same_side
from bkg.sim.draws import normal32

__all__ = [
    "knock_on_angle",
    "measure_p_in",
    "measure_p_out",
    "nuclear_form_factor2",
    "quasi_elastic_kink_probability",
    "t_max_gev",
]

M_MU = 0.1056583755
M_E = 0.00051099895
# station material: copper-equivalent (Z=29, A=63.55, X0 = 12.86 g/cm2)
_Z, _A, _X0 = 29.0, 63.55, 12.86
_HBARC_GEV_FM = 0.1973
T_KNOCK_MIN_GEV = 0.5
#: z of the MS2 stations from the magnet's bending plane (m): three in front, three behind
STATION_Z_M = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
#: ndf of the track fit: 6 x-hits - 3 (line + bend), 6 y-hits - 2 (line)
TRACK_NDF = 7
#: smallest momentum transfer of the simulated quasi-elastic scattering (GeV)
Q_QE_MIN_GEV = 0.15


def _design() -> tuple[np.ndarray, np.ndarray]:
    """Design matrices of the fit: x = a + b z + phi z [z > 0], y = c + d z."""
    z = STATION_Z_M
    ax = np.stack([np.ones_like(z), z, np.where(z > 0, z, 0.0)], axis=1)
    ay = np.stack([np.ones_like(z), z], axis=1)
    return ax, ay


def _fit_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of the bend estimate, residual makers I - H for x and y)."""
    ax, ay = _design()
    px = np.linalg.pinv(ax)
    rx = np.eye(len(STATION_Z_M)) - ax @ px
    ry = np.eye(len(STATION_Z_M)) - ay @ np.linalg.pinv(ay)
    return px[2], rx, ry


BEND_ROW, RESID_X, RESID_Y = _fit_matrices()


def kink_displacement(station: int) -> np.ndarray:
    """Displacement of every station's hit per radian of a kink in ``station`` (m/rad)."""
    z = STATION_Z_M
    return np.where(np.arange(z.size) > station, z - z[station], 0.0)


#: hit displacements (m) per kink (rad): column j for a kink in station j
_DISPLACE = np.stack([kink_displacement(j) for j in range(STATION_Z_M.size)], axis=1)

#: lever arm of a kink in station j on the fitted bend (d phi_fit / d theta_x)
LEVER = np.round([float(BEND_ROW @ kink_displacement(j)) for j in range(STATION_Z_M.size)], 12)


def _residual_basis(design: np.ndarray) -> np.ndarray:
    """Orthonormal basis (n_stations, n_stations - parameters) of the fit's residual space."""
    q = np.linalg.qr(design, mode="complete")[0]
    return q[:, design.shape[1] :]


def _projections() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the track fit sees of Gaussian hit noise and Gaussian kinks.

    The fit is linear: the bend is BEND_ROW @ x and chi^2 sigma^2 = |Q_x^T x|^2 +
    |Q_y^T y|^2 (Q: orthonormal bases of the residual spaces, RESID = Q Q^T). Hit noise
    sigma g gives u_x = (BEND_ROW @ g, Q_x^T g) sigma with covariance sigma^2 S^2,
    S = diag(|BEND_ROW|, 1, 1, 1) (the bend row lies in the design's column space), and
    u_y = Q_y^T g sigma ~ N(0, sigma^2 1_4); kinks theta0 k in every station
    (k ~ N(0, 1_6)) give theta0 M_x D k, M_x = (BEND_ROW; Q_x^T), and theta0 Q_y^T D k,
    covariances theta0^2 K. Both covariances of a plane are diagonal in one basis
    (S^-1 K S^-1 = A diag(lam) A^T, A orthogonal): u = S A (sqrt(theta0^2 lam + sigma^2) z)
    with z ~ N(0, 1_4) has covariance theta0^2 K + sigma^2 S^2, the exact law of the fit's
    view of the Gaussian part, for any theta0: 4 normals per plane.

    With w = sqrt(theta0^2 lam + sigma^2) z, the bend is |BEND_ROW| A_0 . w_x and, A being
    orthogonal, chi^2 sigma^2 = |w_x|^2 - (A_0 . w_x)^2 + |w_y|^2: no residual vector is
    needed unless a rare kink or hit adds to it.

    Returns (Q_x^T, Q_y^T, A for x, lam for x, A for y, lam for y).
    """
    ax, ay = _design()
    qx, qy = _residual_basis(ax).T, _residual_basis(ay).T
    mx = np.vstack([BEND_ROW, qx]) @ _DISPLACE
    my = qy @ _DISPLACE
    s = np.array([np.sqrt(np.sum(BEND_ROW**2)), 1.0, 1.0, 1.0])
    lam_x, a_x = np.linalg.eigh((mx @ mx.T) / np.outer(s, s))
    lam_y, a_y = np.linalg.eigh(my @ my.T)
    return qx, qy, a_x, np.maximum(lam_x, 0.0), a_y, np.maximum(lam_y, 0.0)


_QX, _QY, _MIX_X, _LAM_X, _MIX_Y, _LAM_Y = _projections()
_BEND_NORM = float(np.sqrt(np.sum(BEND_ROW**2)))


def kink_chi2_per_rad2(station: int) -> tuple[float, float]:
    """chi^2 sigma_hit^2 (m^2) a kink of 1 rad in ``station`` adds, in x and in y (no noise)."""
    d = kink_displacement(station)
    return float(np.sum((RESID_X @ d) ** 2)), float(np.sum((RESID_Y @ d) ** 2))


def hit_sigma_m(resolution_rel: float, field_tm: float, p_ref_gev: float) -> float:
    """sigma_hit (m) for which the fitted bend has dp/p = ``resolution_rel`` at ``p_ref_gev``."""
    sigma_phi = resolution_rel * 0.3 * field_tm / p_ref_gev
    return sigma_phi / float(np.sqrt(np.sum(BEND_ROW**2)))


def resolved_kink_rad(station: int, *, chi2_max: float, sigma_m: float) -> float:
    """Bend-plane kink in ``station`` whose chi^2 alone reaches ``chi2_max`` (inf: never)."""
    cx = kink_chi2_per_rad2(station)[0]
    return float(np.sqrt(chi2_max / cx) * sigma_m) if cx > 0 else float("inf")


def fit_tracks(x_m: np.ndarray, y_m: np.ndarray, sigma_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(fitted bend phi in rad, chi^2) of hits ``x_m``, ``y_m`` (m), shape (n_stations, n).

    MS2 measures p from the bend phi = 0.3 B L / p (rad, GeV, T m). Each Micromegas
    station j (at z_j = -3, -2, -1, +1, +2, +3 m from the magnet's bending plane,
    :data:`STATION_Z_M`) records a hit (x_j, y_j) with a Gaussian resolution sigma_hit;
    the track fit is a straight line per spectrometer arm, the two arms meeting in the
    bending plane: x(z) = a + b z + phi z [z > 0] (3 parameters), y(z) = c + d z (2), by
    least squares, with chi^2 = sum of squared residuals / sigma_hit^2 over 12
    coordinates, ndf = 7. sigma_hit is set so that the fitted bend has
    dp/p = ``resolution_rel`` at the beam energy (79 um for 3% at 160 GeV with 1.4 T m,
    :func:`hit_sigma_m`): the error of 1/p is then the same at every momentum. Every kink
    of the muon in a station (Gaussian multiple scattering, single scattering,
    quasi-elastic scattering on a nucleon) moves the later hits by theta (z_k - z_j): it
    shifts the fitted bend by w_j theta_x (w_j = :data:`LEVER`, 0, 1/2, 1, 1, 1/2, 0 for
    this geometry) and adds theta^2 c_j / sigma_hit^2 to the chi^2
    (:func:`kink_chi2_per_rad2`), so the selection's chi^2 cut
    (``selection.track_chi2_max``) rejects kinks above the angle the resolution
    resolves, sqrt(cut / c_j) sigma_hit (:func:`resolved_kink_rad`).
    """
    phi = BEND_ROW @ x_m
    rx = RESID_X @ x_m
    ry = RESID_Y @ y_m
    chi2 = (np.sum(rx * rx, axis=0) + np.sum(ry * ry, axis=0)) / (sigma_m * sigma_m)
    return phi, chi2


def _sparse_positions(
    rng: np.random.Generator, n: int, n_stations: int, mu: float
) -> tuple[np.ndarray, np.ndarray]:
    """(event, station) of rare occurrences with mean ``mu`` per cell (Poisson total, uniform cells)."""
    k = int(rng.poisson(mu * n * n_stations)) if n and mu > 0 else 0
    cell = rng.integers(0, n * n_stations, size=k) if k else np.zeros(0, dtype=np.int64)
    return cell // n_stations, cell % n_stations


def t_max_gev(p_gev: np.ndarray | float) -> np.ndarray:
    """Largest kinetic energy a muon of momentum p gives to a free electron (GeV)."""
    p_gev = np.asarray(p_gev, dtype=np.float64)
    e = np.sqrt(p_gev**2 + M_MU**2)
    return 2 * M_E * p_gev**2 / (M_MU**2 + M_E**2 + 2 * M_E * e)


def nuclear_form_factor2(q_gev: np.ndarray) -> np.ndarray:
    """|F(q)|^2 of the station material's nucleus (copper): exp(-q^2 <r^2> / 3).

    The small-q (Gaussian) form with the rms charge radius sqrt(<r^2>) = 0.82 A^(1/3) +
    0.58 fm (3.85 fm for A = 63.55; electron scattering gives 3.88 fm for copper).
    """
    r_fm = 0.82 * _A ** (1 / 3) + 0.58
    return np.exp(-((np.asarray(q_gev) * r_fm / _HBARC_GEV_FM) ** 2) / 3)


#: nucleon mass, proton and neutron magnetic moments, dipole mass^2 (GeV, GeV^2)
_M_N, _MU_P, _MU_N, _LAMBDA2 = 0.9389, 2.7928, -1.9130, 0.71


def qe_dsigma_dq(q_gev: np.ndarray, station_x0: float) -> np.ndarray:
    """Quasi-elastic scatterings per muon per station per GeV of transverse momentum q.

    Per nucleon dsigma/dQ^2 = 4 pi alpha^2 / Q^4 (G_E^2 + tau G_M^2) / (1 + tau), dipole
    form factors (proton: G_E = G_D, G_M = 2.79 G_D; neutron: G_E = 0, G_M = -1.91 G_D),
    Q^2 = q^2; times the nucleons per cm^2 of the station; d/dq = 2 q d/dQ^2.
    """
    from bkg.physics.constants import ALPHA, GEV2_TO_PB, N_AVOGADRO

    nucleons = N_AVOGADRO * station_x0 * _X0  # per cm^2 (A nucleons per atom, A g per mole)
    n_p, n_n = nucleons * _Z / _A, nucleons * (_A - _Z) / _A
    q = np.asarray(q_gev, dtype=np.float64)
    q2 = q * q
    tau = q2 / (4 * _M_N**2)
    g_d2 = (1 + q2 / _LAMBDA2) ** -4
    f = (n_p * (1 + tau * _MU_P**2) + n_n * tau * _MU_N**2) * g_d2 / (1 + tau)
    return 4 * np.pi * ALPHA**2 / (q2 * q2) * f * 2 * q * (GEV2_TO_PB * 1e-36)


#: upper end of the quasi-elastic q range (GeV): the dipole form factors leave nothing beyond
_Q_QE_MAX_GEV = 50.0


@functools.lru_cache(maxsize=8)
def _qe_table(station_x0: float, q_min: float) -> tuple[np.ndarray, np.ndarray]:
    """(ln q grid, N(> q) per muon per station) of quasi-elastic scattering, q >= q_min."""
    log_q = np.linspace(np.log(q_min), np.log(_Q_QE_MAX_GEV), 6001)
    q = np.exp(log_q)
    dens = q * qe_dsigma_dq(q, station_x0)  # per unit ln q
    steps = 0.5 * (dens[1:] + dens[:-1]) * np.diff(log_q)
    above = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])
    return log_q, above


def quasi_elastic_rate(station_x0: float, q_min: float = Q_QE_MIN_GEV) -> float:
    """Quasi-elastic scatterings with q >= q_min per muon per station."""
    return float(_qe_table(float(station_x0), float(q_min))[1][0])


def sample_qe_q(
    rng: np.random.Generator, n: int, station_x0: float, q_min: float = Q_QE_MIN_GEV
) -> np.ndarray:
    """n transverse momenta (GeV) of quasi-elastic scatterings above q_min (inverse of N(> q))."""
    log_q, above = _qe_table(float(station_x0), float(q_min))
    u = rng.random(n) * above[0]
    return np.exp(np.interp(u, above[::-1], log_q[::-1]))


def quasi_elastic_kink_probability(
    p_gev: float,
    *,
    station_x0: float,
    field_tm: float,
    p_cut_gev: float,
    chi2_max: float | None = None,
    sigma_m: float | None = None,
) -> dict[str, Any]:
    """Probability per muon that quasi-elastic scattering on one nucleon of the MS2
    stations kinks the track enough for p_rec <= ``p_cut_gev``, without the track chi^2
    (``total``) and, given ``chi2_max`` and the hit resolution ``sigma_m``, with it
    (``total_after_chi2``).

    The simulation's single scattering is coherent (Z(Z+1), nuclear form factor): at the
    q = w^-1 * 0.3 B L * p (1/p_cut - 1/p) ~ 0.4 GeV needed, exp(-q^2 <r^2>/3) ~ e^-22
    kills it. Scattering on single nucleons is only suppressed by their own form factors:
    dsigma/dQ^2 = 4 pi alpha^2 / Q^4 (G_E^2 + tau G_M^2) / (1 + tau) per nucleon (forward
    limit, Pauli blocking neglected: an upper estimate), dipole G_D = (1 + Q^2/0.71)^-2,
    G_E^p = G_D, G_M = mu G_D, G_E^n = 0. A kink q at station j with azimuth phi moves
    1/p_rec by w_j q cos(phi) / (p 0.3 B L) (the simulation's lever arms ``LEVER``).

    Such a kink moves the later hits by millimetres (2.6 mrad over a metre is 33 sigma of
    a Micromegas): with the chi^2 the probability is the same integral weighted with the
    probability that the fit's chi^2 stays at or below ``chi2_max``, a noncentral chi^2
    with ndf :data:`TRACK_NDF` and noncentrality (q/p)^2 (c_x cos^2 phi + c_y sin^2 phi) /
    sigma_hit^2 (:func:`kink_chi2_per_rad2`; the bend and the residuals of a linear fit
    are independent).

    Returns:
        ``{"total": P, "per_station": [...], "q_needed_gev": [...]}``, plus
        ``total_after_chi2`` and ``per_station_after_chi2`` when ``chi2_max`` is given.
    """
    kappa = 0.3 * field_tm
    dp = kappa * (1 / p_cut_gev - 1 / p_gev)  # the bend the kink must add (rad)
    need = [p_gev * dp / w if w > 0 else float("inf") for w in LEVER]
    per = [_qe_kink_integral(p_gev, q_min, station_x0) for q_min in need]
    out: dict[str, Any] = {"total": float(sum(per)), "per_station": per, "q_needed_gev": need}
    if chi2_max is None or sigma_m is None:
        return out
    after = [
        _qe_kink_kept(p_gev, j, q_min, station_x0, chi2_max, sigma_m)
        for j, q_min in enumerate(need)
    ]
    out["per_station_after_chi2"] = after
    out["total_after_chi2"] = float(sum(after))
    return out


def _qe_kink_integral(p_gev: float, q_min: float, station_x0: float) -> float:
    """Quasi-elastic kinks per muon in one station with q cos(phi) >= q_min (0 for q_min = inf).

    The integral over ln q (q^-3 spans decades) of dN/dq times the azimuth's share
    arccos(q_min/q)/pi.
    """
    from scipy import integrate

    if not np.isfinite(q_min):  # a kink there does not move the fitted bend
        return 0.0

    def integrand(log_q: float) -> float:
        q = float(np.exp(log_q))
        dsigma = float(qe_dsigma_dq(np.asarray(q), station_x0))
        return q * dsigma * np.arccos(min(q_min / q, 1.0)) / np.pi

    val = integrate.quad(integrand, np.log(q_min), np.log(50.0), limit=200, epsrel=1e-6)[0]
    return float(val)


def _qe_kink_kept(
    p_gev: float, station: int, q_min: float, station_x0: float, chi2_max: float, sigma_m: float
) -> float:
    """:func:`_qe_kink_integral` weighted with P(chi^2 <= chi2_max) of the kinked track."""
    from scipy import integrate, stats

    if not np.isfinite(q_min):
        return 0.0
    cx, cy = kink_chi2_per_rad2(station)

    def kept(log_q: float) -> float:
        q = float(np.exp(log_q))
        top = float(np.arccos(min(q_min / q, 1.0)))
        phi = np.linspace(0.0, top, 65)
        lam = (q / p_gev) ** 2 * (cx * np.cos(phi) ** 2 + cy * np.sin(phi) ** 2) / sigma_m**2
        surv = stats.ncx2.cdf(chi2_max, TRACK_NDF, lam)
        dsigma = float(qe_dsigma_dq(np.asarray(q), station_x0))
        return q * dsigma * float(integrate.trapezoid(surv, phi)) / np.pi

    return float(integrate.quad(kept, np.log(q_min), np.log(50.0), limit=200)[0])


def measure_p_in(
    p_true: np.ndarray, rng: np.random.Generator, *, resolution_rel: float
) -> np.ndarray:
    """MS1 (BMS) measurement: Gaussian dp/p (GeV)."""
    return p_true * (1.0 + resolution_rel * normal32(rng, p_true.size))


def knock_on_angle(p_gev: np.ndarray, t_gev: np.ndarray) -> np.ndarray:
    """Polar angle (rad) of a knock-on electron of kinetic energy T from a muon of momentum p.

    Two-body kinematics of mu e -> mu e on an electron at rest:
    cos(theta_e) = (T / p_e) (E_mu + m_e) / p_mu, p_e = sqrt(T (T + 2 m_e)).
    """
    e_mu = np.sqrt(p_gev * p_gev + M_MU * M_MU)
    p_e = np.sqrt(t_gev * (t_gev + 2 * M_E))
    return np.arccos(np.clip(t_gev / p_e * (e_mu + M_E) / p_gev, -1.0, 1.0))


def measure_p_out(
    p_true: np.ndarray,
    rng: np.random.Generator,
    *,
    field_tm: float,
    resolution_rel: float,
    station_x0: float,
    inefficiency: float,
    n_stations: int = 6,
    extra_tracks: np.ndarray | None = None,
    p_ref_gev: float = 160.0,
) -> dict[str, Any]:
    """MS2 reconstruction of the outgoing muon: hits in every station and the track fit.

    The fitted bend and 1/p are float64 (the relative residual p_rec / p_true - 1 is
    extrapolated far into its tails); its Gaussian part is drawn in float32 where the fit
    sees it (:func:`_fit_hits`), chi^2 in float32 (the branch's dtype).

    Args:
        p_true: true momentum behind the ECAL (GeV), 0 when there is no muon.
        rng: random generator.
        field_tm: integral B L (T m).
        resolution_rel: dp/p of the fit at ``p_ref_gev`` (sets sigma_hit, :func:`hit_sigma_m`).
        station_x0: thickness of one station in X0.
        inefficiency: probability that a station misses the muon hit.
        n_stations: Micromegas stations (6: :data:`STATION_Z_M`).
        extra_tracks: extra charged tracks through all stations (n,), or None.
        p_ref_gev: the momentum at which the fit has ``resolution_rel`` (the beam's).

    Returns:
        dict with ``p_rec`` (GeV, 0 without a muon), ``chi2`` (the fit's, ndf
        :data:`TRACK_NDF`; 0 without a muon), ``p_rec_ko`` and ``chi2_ko`` (the fit had it
        taken the knock-on electron's hit in place of the muon's; 0 without such a
        hit), ``hits`` (uint8, (n, n_stations); a view of a station-major array, so
        ``hits[:, j]`` is contiguous), ``p_after`` (true momentum after knock-on losses),
        ``p_bend`` (true momentum in the magnet: after the losses in the stations in
        front of it), ``process`` (int8: 5 knock-on, 6 large-angle scattering, 9
        quasi-elastic scattering, 0 none), ``e_transfer`` (GeV) and ``electrons``: the
        knock-on electrons, which fly on toward S4, V1 and the HCAL (dict of ``event``
        index, ``station`` of origin (0-based), slopes ``tx``, ``ty`` relative to the
        muon's behind the magnet, rad, and kinetic energy ``t_gev``).
    """
    if n_stations != STATION_Z_M.size:
        raise ValueError(f"MS2 has {STATION_Z_M.size} stations in this model, not {n_stations}")
    p_true = np.asarray(p_true, dtype=np.float64)
    n = p_true.size
    has = p_true > 0.05
    tr = _new_tracks(p_true, n_stations)
    lost_ev, lost_st = _sparse_positions(rng, n, n_stations, inefficiency)
    tr.hits[lost_st, lost_ev] = 0
    t_gcm2 = station_x0 * _X0
    _single_scatters(rng, tr, t_gcm2, resolution_rel * 0.3 * field_tm)
    _quasi_elastic(rng, tr, station_x0)
    ev, st, t = _knock_ons(rng, tr, p_true, t_gcm2)
    ko = _knock_on_fits(rng, tr, ev, st, t, 0.3 * field_tm)
    if extra_tracks is not None:
        extra = np.minimum(extra_tracks, 250).astype(np.uint8)
        np.add(tr.hits, extra, out=tr.hits)
    fit = _fit_hits(rng, tr, ko, station_x0, field_tm, resolution_rel, p_ref_gev)
    if extra_tracks is None:
        np.multiply(tr.hits, has, out=tr.hits)
    else:
        np.copyto(tr.hits, extra, where=~has)
    return {
        **fit,
        "hits": tr.hits.T,
        "p_after": np.maximum(tr.p_after, 0.0),
        "p_bend": np.maximum(tr.p_bend, 0.0),
        "process": tr.process,
        "e_transfer": tr.e_transfer,
        "electrons": ko["electrons"],
    }


class _Tracks(NamedTuple):
    """The arrays of :func:`measure_p_out`, updated in place (station-major (6, n) or (n,)).

    Hits per station: 1 for the muon, 0 when it is lost (inefficiency), +1 per knock-on
    electron coming from the station before and per extra charged track.
    """

    p: np.ndarray
    has: np.ndarray
    process: np.ndarray
    e_transfer: np.ndarray
    hits: np.ndarray
    p_after: np.ndarray
    p_bend: np.ndarray
    #: rare kinks beside the Gaussian scattering: (event, station, theta_x, theta_y) arrays
    kinks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    #: rare hit displacements (m, electron hits taken for lost muon hits): (event, station, dx, dy)
    shifts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    @property
    def n_stations(self) -> int:
        return int(self.hits.shape[0])


def _new_tracks(p_true: np.ndarray, n_stations: int) -> _Tracks:
    """Tracks without kinks, losses or lost hits (one hit per station)."""
    n = p_true.size
    has = p_true > 0.05
    return _Tracks(
        p=np.where(has, p_true, 1.0),
        has=has,
        process=np.zeros(n, dtype=np.int8),
        e_transfer=np.zeros(n),
        hits=np.ones((n_stations, n), dtype=np.uint8),  # station-major: hits[j] is contiguous
        p_after=p_true.copy(),
        p_bend=p_true.copy(),
        kinks=[],
        shifts=[],
    )


def _add_kinks(
    rng: np.random.Generator,
    tr: _Tracks,
    ev: np.ndarray,
    st: np.ndarray,
    theta: np.ndarray,
    process: int,
) -> None:
    """Kinks of polar angle ``theta`` at a uniform azimuth in (station ``st``, event ``ev``)."""
    phi = 2 * np.pi * rng.random(ev.size)
    tr.kinks.append((ev, st, theta * np.cos(phi), theta * np.sin(phi)))
    tr.process[ev] = process
    tr.e_transfer[ev] = 0.0


def _single_scatters(
    rng: np.random.Generator, tr: _Tracks, t_gcm2: float, theta_c_p: float
) -> None:
    """Single large-angle scattering (process 6): only angles above the core-equivalent cut
    theta_c = ``theta_c_p`` / p, Rutherford thinned by the nuclear form factor.

    Single large-angle scattering in one Micromegas station: Rutherford tail
    P(theta > theta') = chi_c^2 / theta'^2 with Moliere's chi_c^2 =
    0.157 Z(Z+1)/A * t / p^2 (MeV^2, g/cm2), suppressed by the nuclear form factor
    |F|^2 = exp(-q^2 <r^2> / 3), q = p theta, with the charge radius
    sqrt(<r^2>) = 0.82 A^(1/3) + 0.58 fm (3.85 fm for copper, measured 3.88)
    (:func:`nuclear_form_factor2`); a kink in station j.
    """
    n_stations, n = tr.hits.shape
    chi2_p2 = 0.157 * _Z * (_Z + 1) / _A * t_gcm2 * 1e-6  # GeV^2 rad^2
    mu = chi2_p2 / theta_c_p**2
    ev, st = _sparse_positions(rng, n, n_stations, mu)
    keep = tr.has[ev]
    ev, st = ev[keep], st[keep]
    if ev.size:
        p = tr.p
        theta = theta_c_p / p[ev] / np.sqrt(rng.random(ev.size))
        ok = rng.random(ev.size) < nuclear_form_factor2(p[ev] * theta)
        _add_kinks(rng, tr, ev[ok], st[ok], theta[ok], 6)


def _quasi_elastic(rng: np.random.Generator, tr: _Tracks, station_x0: float) -> None:
    """Quasi-elastic scattering on one nucleon, q >= Q_QE_MIN_GEV (process 9).

    q >= :data:`Q_QE_MIN_GEV`, where the coherent form factor has fallen below 6%:
    dsigma/dQ^2 per nucleon with dipole form factors (:func:`qe_dsigma_dq`,
    :func:`quasi_elastic_kink_probability`), drawn by inverting its integral
    (:func:`sample_qe_q`).
    """
    n_stations, n = tr.hits.shape
    ev, st = _sparse_positions(rng, n, n_stations, quasi_elastic_rate(station_x0))
    keep = tr.has[ev]
    ev, st = ev[keep], st[keep]
    if ev.size:
        theta = sample_qe_q(rng, ev.size, station_x0) / tr.p[ev]
        _add_kinks(rng, tr, ev, st, theta, 9)


def _knock_ons(
    rng: np.random.Generator, tr: _Tracks, p_true: np.ndarray, t_gcm2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event, station, T in GeV) of the knock-on electrons above T_KNOCK_MIN_GEV.

    Drawn at the largest rate (that of the fastest muon, T_max rising with p), thinned
    to each muon's own rate; T from 1/T^2 thinned by the spin-1/2 factor of mu e -> mu e,
    1 - beta^2 T/T_max + T^2/(2 E^2) <= 1 (PDG, Passage of particles through matter,
    eq. 34.5).

    Knock-on electrons mu e -> mu e in a station: dN/dT = K/2 (Z/A) t / T^2
    (1 - beta^2 T/T_max + T^2/2E^2) up to T_max. The electron starts on the muon's
    track, so in its own station the two make one cluster; it leaves a second hit in the
    next station on the same side of the magnet (the field sweeps a T << p electron out
    of the acceptance), displaced by its angle theta_e (:func:`knock_on_angle`). The
    muon's energy loss to the electron is in the measured momentum when it happens in
    front of the magnet (``p_bend``), not when it happens behind it. When the muon's hit
    in that station j is lost (the Micromegas inefficiency), the station still shows one
    hit and the fit takes the electron's, displaced by theta_e (z_j - z_(j-1))
    (cos phi, sin phi): the fitted bend moves by its least-squares weight and the chi^2
    sees the displaced hit (the paper's "more than one hit in the second tracker" with a
    poorly detected muon). A knock-on in the last station before the magnet or in the
    last station of all leaves no second hit and no mismeasurement
    (:func:`_knock_on_fits`).
    """
    n_stations, n = tr.hits.shape
    p = tr.p
    k_const = 0.307075e-3 / 2 * (_Z / _A) * t_gcm2  # GeV
    p_max = float(np.max(p_true, initial=0.0))
    mean_max = 0.0
    if p_max > 0.05:
        mean_max = k_const * max(1 / T_KNOCK_MIN_GEV - 1 / float(t_max_gev(p_max)), 0.0)
    ev, st = _sparse_positions(rng, n, n_stations, mean_max)
    if not ev.size:
        return ev, st, np.zeros(0)
    tm = t_max_gev(p[ev])
    mean = k_const * np.clip(1 / T_KNOCK_MIN_GEV - 1 / tm, 0, None) * tr.has[ev]
    keep = rng.random(ev.size) * mean_max < mean  # thinning to the per-muon rate
    ev, st, tm = ev[keep], st[keep], tm[keep]
    if not ev.size:
        return ev, st, np.zeros(0)
    u = rng.random(ev.size)
    t = 1.0 / (1 / T_KNOCK_MIN_GEV - u * (1 / T_KNOCK_MIN_GEV - 1 / tm))
    e_mu = np.sqrt(p[ev] ** 2 + M_MU**2)
    spin = 1.0 - (p[ev] / e_mu) ** 2 * t / tm + t * t / (2.0 * e_mu * e_mu)
    keep = rng.random(ev.size) < spin
    return ev[keep], st[keep], t[keep]


def _knock_on_fits(
    rng: np.random.Generator,
    tr: _Tracks,
    ev: np.ndarray,
    st: np.ndarray,
    t: np.ndarray,
    kappa: float,
) -> dict[str, Any]:
    """The knock-on electrons' losses, second hits and flight toward the counters.

    Updates ``tr`` in place (momenta, hits, the displacements of lost muon hits, truth);
    returns ``ko_ev`` (events with an electron hit), ``dx_ko``, ``dy_ko`` (the hit
    displacements of the fit that takes every electron hit, (n_stations, ko_ev.size))
    and ``electrons`` (see :func:`measure_p_out`).
    """
    n_stations = tr.n_stations
    electrons = {
        "event": np.zeros(0, dtype=np.intp),
        "station": np.zeros(0, dtype=np.intp),
        **{k: np.zeros(0) for k in ("tx", "ty", "t_gev")},
    }
    out: dict[str, Any] = {
        "ko_ev": np.zeros(0, dtype=np.intp),
        "dx_ko": np.zeros((n_stations, 0)),
        "dy_ko": np.zeros((n_stations, 0)),
        "electrons": electrons,
    }
    if not ev.size:
        return out
    z = STATION_Z_M
    p = tr.p
    np.subtract.at(tr.p_after, ev, t)
    # the magnet measures the momentum the muon has between MM3 and MM4: a loss in a
    # station in front of it is in the measured bend, one behind it is not
    front = st < n_stations // 2
    np.subtract.at(tr.p_bend, ev[front], t[front])
    # The electron starts on the muon's track (one merged cluster in station st) and
    # leaves its own hit, displaced by theta_e (z_next - z_st), in the next station on
    # the same side of the magnet (the field sweeps a T << p electron away). Where the
    # muon's hit there was lost (inefficiency, drawn above) the fit takes the electron's.
    nxt = next_station_on_same_side(st, n_stations)
    e_ev, e_st = ev[nxt], st[nxt] + 1
    lost = tr.hits[e_st, e_ev] == 0
    tr.hits[e_st, e_ev] += 1
    theta_e = knock_on_angle(p[ev], t)
    phi = np.empty(ev.size)
    phi[nxt] = 2 * np.pi * rng.random(e_ev.size)
    arm = z[e_st] - z[e_st - 1]
    ddx = theta_e[nxt] * np.cos(phi[nxt]) * arm
    ddy = theta_e[nxt] * np.sin(phi[nxt]) * arm
    tr.shifts.append((e_ev[lost], e_st[lost], ddx[lost], ddy[lost]))
    # the fit that takes every electron hit, whether the muon's beside it was lost or not
    ko_ev, where = np.unique(e_ev, return_inverse=True)
    dx_ko = np.zeros((n_stations, ko_ev.size))
    dy_ko = np.zeros((n_stations, ko_ev.size))
    np.add.at(dx_ko, (e_st, where), np.where(lost, 0.0, ddx))
    np.add.at(dy_ko, (e_st, where), np.where(lost, 0.0, ddy))
    big = t > tr.e_transfer[ev]
    tr.process[ev[big]] = 5
    tr.e_transfer[ev[big]] = t[big]
    out["electrons"] = _electron_flight(rng, tr, ev, st, t, theta_e, phi, nxt, kappa)
    out.update(ko_ev=ko_ev, dx_ko=dx_ko, dy_ko=dy_ko)
    return out


def _electron_flight(
    rng: np.random.Generator,
    tr: _Tracks,
    ev: np.ndarray,
    st: np.ndarray,
    t: np.ndarray,
    theta_e: np.ndarray,
    phi: np.ndarray,
    nxt: np.ndarray,
    kappa: float,
) -> dict[str, np.ndarray]:
    """The knock-on electrons flying on toward S4, V1 and the HCAL (``electrons``).

    Every electron flies on to the counters and the HCAL; :mod:`bkg.sim.detector` lets it
    fire S4 or V1 and shower in the HCAL.

    From a station behind the magnet straight, from one in front of it through the
    magnet, which bends it by 0.3 B L / p_e against the muon's 0.3 B L / p (a hard one,
    T of tens of GeV, lands in V1 or the HCAL; a soft one is swept far out). Those of
    the last station on each side drew no azimuth (``phi`` set where ``nxt``) and take
    one from a child of the generator's seed, so that the earlier draws are unchanged.
    """
    own = ~nxt
    if own.any():
        seq = cast(np.random.SeedSequence, rng.bit_generator.seed_seq)
        child = np.random.default_rng(seq.spawn(1)[0])
        phi[own] = 2 * np.pi * child.random(int(own.sum()))
    front = st < tr.n_stations // 2
    p_e = np.sqrt(t * (t + 2 * M_E))
    extra_bend = np.where(front, kappa / p_e - kappa / np.maximum(tr.p_bend[ev], 0.05), 0.0)
    return {
        "event": ev,
        "station": st,
        "tx": theta_e * np.cos(phi) + extra_bend,
        "ty": theta_e * np.sin(phi),
        "t_gev": t,
    }


def _fit_hits(
    rng: np.random.Generator,
    tr: _Tracks,
    ko: dict[str, Any],
    station_x0: float,
    field_tm: float,
    resolution_rel: float,
    p_ref_gev: float,
) -> dict[str, np.ndarray]:
    """The track fits: ``p_rec``, ``chi2``, ``p_rec_ko``, ``chi2_ko``.

    Beside the measured p_rec, ``p_rec_ko`` is what the fit returns when it takes the
    electron's hit whether or not the muon's was lost (same Gaussian draw): the
    would-be momentum of every knock-on event, so that the source can weight all of
    them with the inefficiency instead of counting the few whose hit was lost (with its
    chi^2, ``chi2_ko``).

    The hits are the bend kappa / p_bend behind the magnet, the displacements of the
    kinks (Gaussian multiple scattering in each station, Highland, and the rare ones),
    the electron hits and the resolution. The fit being linear, its Gaussian part is
    drawn where the fit sees it (:func:`_projections`): the fitted bend and the 3 + 4
    residual coordinates, 8 normals per track instead of 24 hit-level ones, with the
    same joint law of (bend, chi^2). The rare kinks and shifts are added to the few
    tracks that have them through the same projections.
    """
    n = tr.p.size
    kappa = 0.3 * field_tm
    sigma = hit_sigma_m(resolution_rel, field_tm, p_ref_gev)
    x0 = max(station_x0, 1e-6)
    theta0 = 0.0136 * np.sqrt(x0) * (1 + 0.038 * np.log(x0)) / tr.p
    g = normal32(rng, 8 * n).reshape(8, n)
    bend = kappa / np.maximum(tr.p_bend, 0.05) * tr.has
    t2 = (theta0 * theta0).astype(np.float32)
    s2 = np.float32(sigma * sigma)
    w = g  # z scaled to w = sqrt(theta0^2 lam + sigma^2) z, in place
    for i in range(4):
        w[i] *= np.sqrt(t2 * np.float32(_LAM_X[i]) + s2)
        w[4 + i] *= np.sqrt(t2 * np.float32(_LAM_Y[i]) + s2)
    c = _MIX_X[0].astype(np.float32) @ w[:4]
    phi_fit = bend + _BEND_NORM * c
    chi2 = np.einsum("ij,ij->j", w, w)
    chi2 -= c * c
    ev, dx, dy = _rare_displacements(tr, ko["ko_ev"])
    if ev.size:  # the few tracks whose residuals move: their residual vectors
        phi_fit[ev] += BEND_ROW @ dx
        rx = _MIX_X[1:] @ w[:4, ev] + _QX @ dx
        ry = _MIX_Y @ w[4:, ev] + _QY @ dy
        chi2[ev] = np.sum(rx * rx, axis=0) + np.sum(ry * ry, axis=0)
    np.maximum(chi2, 0.0, out=chi2)
    chi2 /= s2
    p_rec = kappa / np.maximum(phi_fit, kappa * 1e-4)
    p_rec[~tr.has] = 0.0
    chi2[~tr.has] = 0.0
    p_rec_ko = np.zeros(n)  # knock-ons come only from muons (the thinning above)
    chi2_ko = np.zeros(n, dtype=np.float32)
    ko_ev = ko["ko_ev"]
    if ko_ev.size:  # every ko event is among ev
        at = np.searchsorted(ev, ko_ev)
        phi_ko = phi_fit[ko_ev] + BEND_ROW @ ko["dx_ko"]
        rxk = rx[:, at] + _QX @ ko["dx_ko"]
        ryk = ry[:, at] + _QY @ ko["dy_ko"]
        p_rec_ko[ko_ev] = kappa / np.maximum(phi_ko, kappa * 1e-4)
        chi2_ko[ko_ev] = (np.sum(rxk * rxk, axis=0) + np.sum(ryk * ryk, axis=0)) / sigma**2
    return {"p_rec": p_rec, "chi2": chi2, "p_rec_ko": p_rec_ko, "chi2_ko": chi2_ko}


def _rare_displacements(tr: _Tracks, also: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(events, dx, dy): the hit displacements (m, (n_stations, events)) of the rare kinks
    and shifts, for the sorted events that have one or are in ``also``."""
    parts = [k[0] for k in tr.kinks] + [s[0] for s in tr.shifts] + [also]
    ev = np.unique(np.concatenate(parts))
    if not ev.size:
        return ev, np.zeros((tr.n_stations, 0)), np.zeros((tr.n_stations, 0))
    kx = np.zeros((tr.n_stations, ev.size))
    ky = np.zeros((tr.n_stations, ev.size))
    for e, st, tx, ty in tr.kinks:
        col = np.searchsorted(ev, e)
        np.add.at(kx, (st, col), tx)
        np.add.at(ky, (st, col), ty)
    dx = _DISPLACE @ kx
    dy = _DISPLACE @ ky
    for e, st, sx, sy in tr.shifts:
        col = np.searchsorted(ev, e)
        np.add.at(dx, (st, col), sx)
        np.add.at(dy, (st, col), sy)
    return ev, dx, dy
