"""MS1 and MS2 momentum measurement with physical non-Gaussian tails.

MS2 measures p from the bend phi = 0.3 B L / p (rad, GeV, T m) with a Gaussian
core dp/p = ``resolution_rel``. Tails:

* single large-angle scattering in one Micromegas station: Rutherford tail
  P(theta > theta') = chi_c^2 / theta'^2 with Moliere's chi_c^2 =
  0.157 Z(Z+1)/A * t / p^2 (MeV^2, g/cm2), suppressed by the nuclear form
  factor |F|^2 = exp(-q^2 <r^2> / 3), q = p theta, with the charge radius
  sqrt(<r^2>) = 0.82 A^(1/3) + 0.58 fm (3.85 fm for copper, measured 3.88);
  the kink adds w_j * theta_x to the measured bend, w_j the lever arm of station j;
* knock-on electrons mu e -> mu e in a station: dN/dT = K/2 (Z/A) t / T^2
  (1 - beta^2 T/T_max + T^2/2E^2) up to T_max. The electron starts on the muon's
  track, so in its own station the two make one cluster; it leaves a second hit in
  the next station on the same side of the magnet (the field sweeps a T << p
  electron out of the acceptance), displaced by its angle theta_e
  (:func:`knock_on_angle`). Every electron flies on to the counters and the HCAL,
  one from a station in front of the magnet bent by 0.3 B L / p_e (returned in
  ``electrons``: :mod:`bkg.sim.detector` lets it fire S4 or V1 and shower in the
  HCAL). The muon's energy loss to the electron is in the measured momentum when
  it happens in front of the magnet (``p_bend``), not when it happens behind it.
  When the muon's hit in that station j is lost (the Micromegas
  inefficiency), the station still shows one hit and the fit takes the
  electron's, which acts as a kink theta_e cos(phi) at station j:
  1/p_rec = 1/p + w_j theta_e cos(phi) / (0.3 B L)
  (the paper's "more than one hit in the second tracker" with a poorly
  detected muon). A knock-on in the last station before the magnet or in the
  last station of all leaves no second hit and no mismeasurement. Beside the
  measured p_rec, ``p_rec_ko`` is what the fit returns when it takes the
  electron's hit whether or not the muon's was lost (same Gaussian draw): the
  would-be momentum of every knock-on event, so that the source can weight all
  of them with the inefficiency instead of counting the few whose hit was lost.

Hits per station: 1 for the muon, 0 when it is lost (inefficiency), +1 per
knock-on electron coming from the station before and per extra charged track.
"""

from __future__ import annotations

from typing import Any, cast

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
#: lever arm of a kink in station j on the measured bend (stations 1-3 before, 4-6 after the magnet)
LEVER = np.array([0.3, 0.6, 1.0, 1.0, 0.6, 0.3])
T_KNOCK_MIN_GEV = 0.5


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


def quasi_elastic_kink_probability(
    p_gev: float, *, station_x0: float, field_tm: float, p_cut_gev: float
) -> dict[str, Any]:
    """Probability per muon that quasi-elastic scattering on one nucleon of the MS2
    stations kinks the track enough for p_rec <= ``p_cut_gev`` (no track chi^2 applied).

    The simulation's single scattering is coherent (Z(Z+1), nuclear form factor): at the
    q = w^-1 * 0.3 B L * p (1/p_cut - 1/p) ~ 0.4 GeV needed, exp(-q^2 <r^2>/3) ~ e^-22
    kills it. Scattering on single nucleons is only suppressed by their own form factors:
    dsigma/dQ^2 = 4 pi alpha^2 / Q^4 (G_E^2 + tau G_M^2) / (1 + tau) per nucleon (forward
    limit, Pauli blocking neglected: an upper estimate), dipole G_D = (1 + Q^2/0.71)^-2,
    G_E^p = G_D, G_M = mu G_D, G_E^n = 0. A kink q at station j with azimuth phi moves
    1/p_rec by w_j q cos(phi) / (p 0.3 B L) (the simulation's lever arms ``LEVER``).

    The tool does not add these events to the momentum-mismatch level: such a kink moves
    the next hits by millimetres (4 mrad over a metre is 40 sigma of a Micromegas) and the
    track fit's chi^2 rejects it, which the lever-arm model of :func:`measure_p_out` does
    not describe. The number is reported so that the size of what the chi^2 must remove
    is on record.

    Returns:
        ``{"total": P, "per_station": [...], "q_needed_gev": [...]}``.
    """
    from scipy import integrate

    from bkg.physics.constants import ALPHA, GEV2_TO_PB, N_AVOGADRO

    kappa = 0.3 * field_tm
    t_gcm2 = station_x0 * _X0
    nucleons = N_AVOGADRO * t_gcm2  # per cm^2 (A nucleons per atom, A g per mole)
    n_p, n_n = nucleons * _Z / _A, nucleons * (_A - _Z) / _A
    to_cm2 = GEV2_TO_PB * 1e-36

    def dsigma_dq(q: float) -> float:  # per cm^2 of the station, d/dq (q = |q_T|)
        q2 = q * q
        tau = q2 / (4 * _M_N**2)
        g_d2 = (1 + q2 / _LAMBDA2) ** -4
        f = (n_p * (1 + tau * _MU_P**2) + n_n * tau * _MU_N**2) * g_d2 / (1 + tau)
        return 4 * np.pi * ALPHA**2 / q2**2 * f * 2 * q * to_cm2

    dp = kappa * (1 / p_cut_gev - 1 / p_gev)  # the bend the kink must add (rad)
    per, need = [], []
    for w in LEVER:
        q_min = p_gev * dp / w

        def integrand(log_q: float, q_min: float = q_min) -> float:  # over ln q: q^-3 spans decades
            q = float(np.exp(log_q))
            return q * dsigma_dq(q) * np.arccos(min(q_min / q, 1.0)) / np.pi

        val = integrate.quad(integrand, np.log(q_min), np.log(50.0), limit=200, epsrel=1e-6)[0]
        per.append(float(val))
        need.append(float(q_min))
    return {"total": float(sum(per)), "per_station": per, "q_needed_gev": need}


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
) -> dict[str, Any]:
    """MS2 reconstruction of the outgoing muon.

    The momentum chain (1/p, the Gaussian core and the tails) is float64: the relative
    residual p_rec / p_true - 1 is extrapolated far into its tails.

    Args:
        p_true: true momentum behind the ECAL (GeV), 0 when there is no muon.
        rng: random generator.
        field_tm: integral B L (T m).
        resolution_rel: core dp/p.
        station_x0: thickness of one station in X0.
        inefficiency: probability that a station misses the muon hit.
        n_stations: Micromegas stations.
        extra_tracks: extra charged tracks through all stations (n,), or None.

    Returns:
        dict with ``p_rec`` (GeV, 0 without a muon), ``p_rec_ko`` (GeV: p_rec had the
        fit taken the knock-on electron's hit in place of the muon's; 0 without such a
        hit), ``hits`` (uint8, (n, n_stations);
        a view of a station-major array, so ``hits[:, j]`` is contiguous),
        ``p_after`` (true momentum after knock-on losses), ``p_bend`` (true momentum in
        the magnet: after the losses in the stations in front of it), ``process`` (int8:
        5 knock-on, 6 large-angle scattering, 0 none), ``e_transfer`` (GeV) and
        ``electrons``: the knock-on electrons, which fly on toward S4, V1 and the HCAL
        (dict of ``event`` index, ``station`` of origin (0-based), slopes ``tx``, ``ty``
        relative to the muon's behind the magnet, rad, and kinetic energy ``t_gev``).
    """
    p_true = np.asarray(p_true, dtype=np.float64)
    n = p_true.size
    has = p_true > 0.05
    p = np.where(has, p_true, 1.0)
    kappa = 0.3 * field_tm
    inv = 1.0 / p
    t_gcm2 = station_x0 * _X0
    process = np.zeros(n, dtype=np.int8)
    e_transfer = np.zeros(n)
    hits = np.ones((n_stations, n), dtype=np.uint8)  # station-major: hits[j] is contiguous
    lost_ev, lost_st = _sparse_positions(rng, n, n_stations, inefficiency)
    hits[lost_st, lost_ev] = 0
    # single large-angle scattering: only angles above the core-equivalent cut theta_c
    chi2_p2 = 0.157 * _Z * (_Z + 1) / _A * t_gcm2 * 1e-6  # GeV^2 rad^2
    theta_c_p = resolution_rel * kappa  # GeV rad
    mu = chi2_p2 / theta_c_p**2
    ev, st = _sparse_positions(rng, n, n_stations, mu)
    keep = has[ev]
    ev, st = ev[keep], st[keep]
    if ev.size:
        theta = theta_c_p / p[ev] / np.sqrt(rng.random(ev.size))
        ok = rng.random(ev.size) < nuclear_form_factor2(p[ev] * theta)
        ev, st, theta = ev[ok], st[ok], theta[ok]
        kink = theta * np.cos(2 * np.pi * rng.random(ev.size)) * LEVER[st % LEVER.size]
        np.add.at(inv, ev, kink / kappa)
        process[ev] = 6
        e_transfer[ev] = 0.0
    # knock-on electrons above T_KNOCK_MIN_GEV: drawn at the largest rate (that of the
    # fastest muon, T_max rising with p), then thinned to each muon's own rate
    k_const = 0.307075e-3 / 2 * (_Z / _A) * t_gcm2  # GeV
    p_max = float(np.max(p_true, initial=0.0))
    mean_max = 0.0
    if p_max > 0.05:
        mean_max = k_const * max(1 / T_KNOCK_MIN_GEV - 1 / float(t_max_gev(p_max)), 0.0)
    ev, st = _sparse_positions(rng, n, n_stations, mean_max)
    tm = np.zeros(0)
    if ev.size:
        tm = t_max_gev(p[ev])
        mean = k_const * np.clip(1 / T_KNOCK_MIN_GEV - 1 / tm, 0, None) * has[ev]
        keep = rng.random(ev.size) * mean_max < mean  # thinning to the per-muon rate
        ev, st, tm = ev[keep], st[keep], tm[keep]
    p_after = p_true.copy()
    p_bend = p_true.copy()
    front_ev = np.zeros(0, dtype=np.intp)  # events with a knock-on loss in front of the magnet
    ko_ev, ko_extra = np.zeros(0, dtype=np.intp), np.zeros(0)
    electrons = {
        "event": np.zeros(0, dtype=np.intp),
        "station": np.zeros(0, dtype=np.intp),
        **{k: np.zeros(0) for k in ("tx", "ty", "t_gev")},
    }
    if ev.size:
        u = rng.random(ev.size)
        t = 1.0 / (1 / T_KNOCK_MIN_GEV - u * (1 / T_KNOCK_MIN_GEV - 1 / tm))
        # the spin-1/2 factor of mu e -> mu e, 1 - beta^2 T/T_max + T^2/(2 E^2) <= 1
        # (PDG, Passage of particles through matter, eq. 34.5), by thinning the 1/T^2 draws
        e_mu = np.sqrt(p[ev] ** 2 + M_MU**2)
        spin = 1.0 - (p[ev] / e_mu) ** 2 * t / tm + t * t / (2.0 * e_mu * e_mu)
        keep = rng.random(ev.size) < spin
        ev, st, tm, t = ev[keep], st[keep], tm[keep], t[keep]
    if ev.size:
        np.subtract.at(p_after, ev, t)
        # the magnet measures the momentum the muon has between MM3 and MM4: a loss in a
        # station in front of it is in the measured bend, one behind it is not
        front = st < n_stations // 2
        front_ev = np.unique(ev[front])
        np.subtract.at(p_bend, ev[front], t[front])
        # The electron starts on the muon's track (one merged cluster in station st) and
        # leaves its own hit, displaced by its angle theta_e, in the next station on the
        # same side of the magnet (the field sweeps a T << p electron away). Where the
        # muon's hit there was lost (inefficiency, drawn above) the fit takes the
        # electron's: a kink theta_e cos(phi) in the bend plane at that station.
        nxt = next_station_on_same_side(st, n_stations)
        e_ev, e_st = ev[nxt], st[nxt] + 1
        lost = hits[e_st, e_ev] == 0
        hits[e_st, e_ev] += 1
        theta_e = knock_on_angle(p[ev], t)
        phi = np.empty(ev.size)
        phi[nxt] = 2 * np.pi * rng.random(e_ev.size)
        kink = theta_e[nxt] * np.cos(phi[nxt])
        term = LEVER[e_st % LEVER.size] * kink / kappa
        np.add.at(inv, e_ev, np.where(lost, term, 0.0))
        # the fit that takes every electron hit, whether the muon's beside it was lost or not
        ko_ev, where = np.unique(e_ev, return_inverse=True)
        ko_extra = np.zeros(ko_ev.size)
        np.add.at(ko_extra, where, np.where(lost, 0.0, term))
        big = t > e_transfer[ev]
        process[ev[big]] = 5
        e_transfer[ev[big]] = t[big]
        # every electron flies on toward S4, V1 and the HCAL: from a station behind the
        # magnet straight, from one in front of it through the magnet, which bends it by
        # 0.3 B L / p_e against the muon's 0.3 B L / p (a hard one, T of tens of GeV,
        # lands in V1 or the HCAL; a soft one is swept far out). Those of the last station
        # on each side drew no azimuth above and take one from a child of the generator's
        # seed, so that the draws above are unchanged
        own = ~nxt
        if own.any():
            seq = cast(np.random.SeedSequence, rng.bit_generator.seed_seq)
            child = np.random.default_rng(seq.spawn(1)[0])
            phi[own] = 2 * np.pi * child.random(int(own.sum()))
        p_e = np.sqrt(t * (t + 2 * M_E))
        extra_bend = np.where(front, kappa / p_e - kappa / np.maximum(p_bend[ev], 0.05), 0.0)
        electrons = {
            "event": ev,
            "station": st,
            "tx": theta_e * np.cos(phi) + extra_bend,
            "ty": theta_e * np.sin(phi),
            "t_gev": t,
        }
    if extra_tracks is not None:
        extra = np.minimum(extra_tracks, 250).astype(np.uint8)
        hits += extra
    inv[front_ev] += 1.0 / np.maximum(p_bend[front_ev], 0.05) - 1.0 / p[front_ev]
    smear = 1.0 + resolution_rel * rng.standard_normal(n)
    p_rec = 1.0 / np.maximum(inv * smear, 1e-4)
    p_rec[~has] = 0.0
    p_rec_ko = np.zeros(n)  # knock-ons come only from muons (the thinning above)
    p_rec_ko[ko_ev] = 1.0 / np.maximum((inv[ko_ev] + ko_extra) * smear[ko_ev], 1e-4)
    if extra_tracks is None:
        hits *= has
    else:
        np.copyto(hits, extra, where=~has)
    return {
        "p_rec": p_rec,
        "p_rec_ko": p_rec_ko,
        "hits": hits.T,
        "p_after": np.maximum(p_after, 0.0),
        "p_bend": np.maximum(p_bend, 0.0),
        "process": process,
        "e_transfer": e_transfer,
        "electrons": electrons,
    }
