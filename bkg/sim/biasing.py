"""Direct estimates of far tails by biased simulation (weights w = p_true / p_biased).

The tail fits extrapolate a distribution to the cut; here the rare process that makes
each tail is forced and every event carries the ratio of its true to its biased
probability density, as GEANT4's generic biasing does, so that the probability beyond
the real cut is measured. Estimators (:data:`DIRECT`): :func:`mismatch_direct`,
:func:`punch_through_direct`; non-hermeticity is measured by the forced escape paths of
:mod:`bkg.sim.escape`, inside its own source (its closure compares them with the tail
extrapolation). Each returns a :class:`DirectEstimate`. Method: docs/tail-extrapolation.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from bkg.config import Config

__all__ = ["DIRECT", "DirectEstimate", "register_direct", "weighted_fraction"]

#: residual the forced scattering starts from at unit lever arm (q_b = R_BIAS 0.3 B L)
R_BIAS = 0.1
#: start of the form-factor component, in units of the transfer the cut needs (r_cut 0.3 B L):
#: below 1, for the muons whose Gaussian error already carries part of the way
Q_C_FRACTION = 0.75
#: biased interaction length of the hadron's first interaction (lambda_I)
LAMBDA_BIAS = 5.0
#: the physical one (bkg.sim.calorimeters.hadron_shower's interaction_scale)
LAMBDA_TRUE = 1.2


@dataclass
class DirectEstimate:
    """P(x >= cut) per event of the source's fitted sample, measured by biased simulation.

    In the units of the source's fitted tail (per MOT, or per leading hadron), with the
    effective number of events (sum w)^2 / sum w^2 of those beyond the cut, and, with
    none beyond it, the 90% CL bound 2.3 w_mean / N its statistics allow.
    """

    source: str
    cut: float
    direct: float
    direct_stat: float
    effective_events: float
    n_generated: int
    n_beyond: int
    bound_90: float | None
    points: list[dict[str, float]] = field(default_factory=list)
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Estimator = Callable[[Config, int, int], DirectEstimate]
#: source name -> direct estimator(cfg, n_events, seed)
DIRECT: dict[str, Estimator] = {}


def register_direct(name: str) -> Callable[[Estimator], Estimator]:
    """Decorator: the direct estimator of a source (a later registration replaces it)."""

    def put(func: Estimator) -> Estimator:
        DIRECT[name] = func
        return func

    return put


def weighted_fraction(
    weights: np.ndarray, passed: np.ndarray, n: float
) -> tuple[float, float, float]:
    """(sum w over passed / n, its standard error, effective events (sum w)^2 / sum w^2)."""
    w = np.asarray(weights, float)[np.asarray(passed, bool)]
    if w.size == 0:
        return 0.0, 0.0, 0.0
    s1, s2 = float(w.sum()), float((w * w).sum())
    return s1 / n, math.sqrt(s2) / n, s1 * s1 / s2


def _bound(weights: np.ndarray, n: float, n_beyond: int) -> float | None:
    """90% CL bound with no event beyond the cut: 2.303 mean weight / n."""
    if n_beyond:
        return None
    return 2.302585 * float(np.mean(weights)) / n if weights.size else None


def _beam_population(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Beam muons of the real simulation: their branches (n MOT)."""
    from bkg.sim.beam import generate_beam_muons

    return generate_beam_muons(cfg, rng, n)


def _forced_kinks(
    cfg: Config, rng: np.random.Generator, p: np.ndarray, *, r_cut: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kink added to 1/p (1/GeV), weight, chi^2 the kink adds) of one forced scattering.

    The chi^2 of a kink theta in station j without hit noise is theta_x^2 c_x + theta_y^2 c_y
    over sigma_hit^2 (:func:`bkg.sim.tracking.kink_chi2_per_rad2`).

    q = p theta is drawn from an equal mixture of 2 q_b^2 / q^3 above q_b (the whole tail)
    and of the form factor's own fall-off above q_c = 0.75 r_cut 0.3 B L (the transfers
    that reach the cut: q^2 - q_c^2 exponential with the form factor's scale 3 / <r^2>),
    so that the events beyond the cut carry nearly equal weights. The true density per
    station is 2 chi_c^2 |F(q)|^2 / q^3; the weight is 6 stations x true / biased.
    """
    from bkg.sim import tracking

    sp = cfg.detector.spectrometers
    kappa = 0.3 * sp.ms2.field_tm
    t_gcm2 = sp.ms2.tracker_material_x0 * tracking._X0
    chi2_p2 = 0.157 * tracking._Z * (tracking._Z + 1) / tracking._A * t_gcm2 * 1e-6  # GeV^2
    r_fm = 0.82 * tracking._A ** (1 / 3) + 0.58
    ff_scale = 3.0 * (tracking._HBARC_GEV_FM / r_fm) ** 2  # GeV^2: |F|^2 = exp(-q^2 / ff_scale)
    q_b = R_BIAS * kappa
    q_c = max(Q_C_FRACTION * r_cut * kappa, q_b)
    station = rng.integers(0, 6, p.size)
    first = rng.random(p.size) < 0.5
    u = rng.random(p.size)
    q = np.where(first, q_b / np.sqrt(u), np.sqrt(q_c * q_c - ff_scale * np.log(u)))
    phi = 2 * np.pi * rng.random(p.size)
    kink = (q / p) * np.cos(phi) * tracking.LEVER[station % tracking.LEVER.size] / kappa
    g1 = np.where(q >= q_b, 2 * q_b * q_b / q**3, 0.0)
    g2 = np.where(q >= q_c, 2 * q / ff_scale * np.exp(-(q * q - q_c * q_c) / ff_scale), 0.0)
    true = 2 * chi2_p2 / q**3 * tracking.nuclear_form_factor2(q)
    weight = 6.0 * true / (0.5 * g1 + 0.5 * g2)
    sigma_m = tracking.hit_sigma_m(sp.ms2.resolution_rel, sp.ms2.field_tm, cfg.beam.energy_gev)
    c = np.array([tracking.kink_chi2_per_rad2(j) for j in range(tracking.LEVER.size)])
    j = station % tracking.LEVER.size
    theta2 = (q / p) ** 2
    chi2 = theta2 * (np.cos(phi) ** 2 * c[j, 0] + np.sin(phi) ** 2 * c[j, 1]) / sigma_m**2
    return kink, weight, chi2


def _scattering_direct(
    cfg: Config, n_events: int, seed: int, *, source: str, variable: str
) -> DirectEstimate:
    """Forced tracker scattering on the real simulation's population of ``source``."""
    from bkg.selection import balance_cut, e_cal, good_track, residual_cut, single_track

    rng = np.random.default_rng([seed, 22, 1 if source == "momentum_mismatch" else 2])
    sel = cfg.selection
    plo, phi = sel.p_in_window_gev
    res = cfg.detector.spectrometers.ms2.resolution_rel
    # the population from the real simulation; each muon is rescattered k times
    n_mot = min(max(n_events // 20, 20_000), 2_000_000)
    ev = _beam_population(cfg, rng, n_mot)
    base = (ev["p_out_rec"] > 0) & (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
    if source == "momentum_mismatch":
        base &= (ev["p_out_true"] > sel.p_out_max_gev) & (ev["p_out_rec_ko"] == 0)
        if sel.single_track:
            base &= single_track(ev)
        base &= good_track(ev, cfg)  # as the fitted residuals (cut (ii))
        cut = residual_cut(cfg)
    else:
        base &= e_cal(ev) <= cfg.signal_box.e_cal_max_gev
        cut = balance_cut(cfg)
    idx = np.flatnonzero(base)
    k = max(n_events // max(idx.size, 1), 1)
    idx = np.repeat(idx, k)
    p_true = ev["p_out_true"][idx].astype(float)
    p_rec = ev["p_out_rec"][idx].astype(float)
    kink, w, chi2_kink = _forced_kinks(cfg, rng, p_true, r_cut=cut)
    kept = np.ones(idx.size, bool)
    if source == "momentum_mismatch":
        # the track's chi^2 with the kink: its own (noise) + the kink's + the cross term,
        # 2 r_noise . r_kink ~ N(0, 4 chi2_kink) for Gaussian hit noise; then cut (ii)
        own = ev["track_chi2"][idx].astype(float)
        chi2 = own + chi2_kink + 2.0 * np.sqrt(chi2_kink) * rng.standard_normal(idx.size)
        kept = chi2 <= sel.track_chi2_max
    # the simulation's own measurement (its Gaussian draw) with the forced kink added:
    # 1/p_rec' = (1/p + kink) smear, smear = p / p_rec for a muon without a kink of its own
    inv = 1.0 / p_rec + kink * (p_true / p_rec)
    p_new = 1.0 / np.maximum(inv, 1e-4)
    if source == "momentum_mismatch":
        x = p_true / p_new - 1.0
        gauss = lambda t: stats.norm.sf(t / res)  # noqa: E731 (the core's own tail, closed form)
    else:
        ecal = e_cal(ev)[idx].astype(float)
        x = ev["p_in_rec"][idx].astype(float) / (p_new + ecal) - 1.0
        x_base = (
            ev["p_in_rec"][base].astype(float) / (ev["p_out_rec"][base] + e_cal(ev)[base]) - 1.0
        )

        def gauss(t: float) -> float:  # the slice's own events beyond t (all of them)
            return float(np.count_nonzero(x_base >= t)) / max(int(base.sum()), 1)

    f_pop = float(base.sum()) / n_mot  # the population per MOT
    n = float(idx.size)
    direct, stat, n_eff = weighted_fraction(w, (x >= cut) & kept, n)
    thresholds = (
        [0.15, 0.2, 0.3, 0.45, 0.7, cut]
        if source == "momentum_mismatch"
        else [0.15, 0.2, 0.3, 0.45, cut]
    )
    points = []
    for t in sorted(set(thresholds)):
        v, e, ne = weighted_fraction(w, (x >= t) & kept, n)
        points.append({"x": float(t), "per_event": f_pop * (v + float(gauss(t))), "stat": f_pop * e,
                       "effective_events": ne})  # fmt: skip
    n_beyond = int(np.count_nonzero((x >= cut) & kept))
    bound = _bound(w, n, n_beyond)
    if n_beyond == 0 and np.any((x >= cut) & ~kept):
        # events reach the cut but none passes the chi^2: bound the fraction that would,
        # P(beyond, kept) < P(beyond) x 2.303 / (effective events beyond), 90% CL
        d_all, _, n_eff_all = weighted_fraction(w, x >= cut, n)
        bound = d_all * min(1.0, 2.302585 / max(n_eff_all, 1.0))
    return DirectEstimate(
        source, float(cut), f_pop * (direct + float(gauss(cut))), f_pop * stat, n_eff, int(n), n_beyond,
        None if bound is None else f_pop * bound, points,
        f"forced single scattering in an MS2 station (w = 6 chi_c^2 |F(q)|^2 / q_b^2), {variable}",
    )  # fmt: skip


@register_direct("momentum_mismatch")
def mismatch_direct(cfg: Config, n_events: int, seed: int) -> DirectEstimate:
    """P(residual >= cut) per MOT of the single-track residuals (knock-on part excluded).

    A large-angle single scattering forced in one MS2 station (uniform among the six) at
    a transfer q = p theta drawn from a mixture of 2 q_b^2 / q^3 above q_b (the transfer
    giving a residual of 0.1 at unit lever arm) and of the form factor's fall-off above
    the transfer the cut needs (:func:`_forced_kinks`), on muons of the real simulation's
    single-track population. The true density per station is that of
    :func:`bkg.sim.tracking.measure_p_out`: 2 chi_c^2 |F(q)|^2 / q^3, and w = 6 x true /
    biased density. Below q_b the muon keeps the simulation's own measurement (Gaussian
    core and small kinks; beyond r = 0.15 their part is the Gaussian tail, added in
    closed form).
    """
    return _scattering_direct(cfg, n_events, seed, source="momentum_mismatch",
                              variable="p_out_true/p_out_rec - 1")  # fmt: skip


def visible_shower_length(cfg: Config, e_h: np.ndarray) -> np.ndarray:
    """Depth from the first interaction to visibility, as :func:`bkg.sim.calorimeters.hadron_shower`.

    gammaincinv(a, threshold / E_h) with a = 1 + 0.25 ln E_h and the MIP window's room as
    threshold; inf for a hadron too soft ever to be seen.
    """
    hcal = cfg.detector.hcal
    thr = max(cfg.selection.hcal_mip_window_gev[1] - hcal.mip_gev, 0.1)
    a = 1.0 + 0.25 * np.log(np.maximum(e_h, 1.0))
    frac = np.clip(thr / np.maximum(e_h, 1e-9), 0.0, 1.0)
    return np.where(frac < 1.0, special.gammaincinv(a, np.minimum(frac, 1 - 1e-12)), np.inf)


@register_direct("punch_through")
def punch_through_direct(
    cfg: Config, n_events: int, seed: int, *, lambda_bias: float = LAMBDA_BIAS
) -> DirectEstimate:
    """P(visibility depth >= modules x module_lambda) per leading hadron, deep showers forced.

    The hadrons (energies) come from the real ``leading_hadrons`` generator; the remaining
    ECAL depth is uniform over the ECAL (the generator's interaction point), the first
    interaction drawn from exp(-t / lambda_bias), w = (e^{-t/1.2}/1.2) / (e^{-t/lb}/lb):
    lambda_bias = 5 lambda_I instead of the physical 1.2 lambda_I, w the ratio of the two
    exponential densities. The shower's own length is that of
    :func:`bkg.sim.calorimeters.hadron_shower` (:func:`visible_shower_length`).
    """
    from bkg.sim import detector
    from bkg.sim.leading_hadrons import generate_leading_hadrons

    rng = np.random.default_rng([seed, 22, 3])
    n_had = min(max(n_events // 20, 5_000), 200_000)
    had = generate_leading_hadrons(cfg, rng, n_had)
    g = visible_shower_length(cfg, np.asarray(had["e_hadron"], float))
    visible = np.isfinite(g)
    k = max(n_events // n_had, 1)
    g = np.repeat(g[visible], k)
    n = float(n_had * k)  # per leading hadron: the invisible ones count in the denominator
    ecal_lambda = detector.ECAL_DEPTH_G_CM2 / 199.6
    lo = rng.random(g.size) * ecal_lambda
    t0 = rng.exponential(lambda_bias, g.size)
    w = (np.exp(-t0 / LAMBDA_TRUE) / LAMBDA_TRUE) / (np.exp(-t0 / lambda_bias) / lambda_bias)
    depth = t0 + g - lo
    cut = cfg.detector.hcal.modules * cfg.detector.hcal.module_lambda
    direct, stat, n_eff = weighted_fraction(w, depth >= cut, n)
    points = []
    for t in (4.0, 6.0, 8.0, 10.0, 12.0, cut):
        v, e, ne = weighted_fraction(w, depth >= t, n)
        points.append({"x": float(t), "per_event": v, "stat": e, "effective_events": ne})
    n_beyond = int(np.count_nonzero(depth >= cut))
    return DirectEstimate(
        "punch_through", float(cut), direct, stat, n_eff, int(g.size), n_beyond, _bound(w, n, n_beyond),
        points,
        f"first hadronic interaction forced deep (lambda {lambda_bias:g} instead of {LAMBDA_TRUE:g} lambda_I)",
    )  # fmt: skip
