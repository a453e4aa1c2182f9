"""Dimuon production in the ECAL: mu N -> mu N gamma, gamma -> mu+ mu- (Bethe-Heitler), and trident.

Bethe-Heitler: a bremsstrahlung photon converts in the lead behind its emission point
(:func:`_bethe_heitler_vertices`, :func:`mu_pair_probability`, :func:`sigma_mumu_cm2_g`);
trident mu N -> mu mu+ mu- N: :func:`_trident_vertices`; the pair's energy split:
:func:`_draw_x`. Entry point: :func:`generate_dimuons` (what the sample holds), with
:func:`dimuon_yields`. Model, what it was before December 2026, tests and numbers:
docs/physics-simulation.md ("Bethe-Heitler dimuons").
"""

from __future__ import annotations

import math

import numpy as np

from bkg.config import Config
from bkg.physics.constants import ALPHA, LEAD, N_AVOGADRO, R_E_CM
from bkg.sim import detector, ecal

__all__ = [
    "dimuon_yields",
    "generate_dimuons",
    "mu_pair_probability",
    "pair_energy_min_gev",
    "sigma_mumu_cm2_g",
]

M_MU = 0.1056583755
M_E = 0.00051099895
R_MASS = (M_E / M_MU) ** 2
#: threshold of gamma -> mu+ mu- (GeV)
K_THRESHOLD_GEV = 4 * M_MU
#: e+e- conversion of a high-energy photon in lead, per g/cm2 (complete screening)
SIGMA_EE_CM2_G = 7.0 / (9.0 * ecal.LEAD_X0_G_CM2)


def sigma_mumu_cm2_g(k_gev: np.ndarray | float) -> np.ndarray:
    """gamma -> mu+ mu- cross section in lead per g/cm2 (N_A/A sigma), k the photon energy (GeV).

    The parametrisation of H. Burkhardt, S. Kelner, R. Kokoulin (Geant4's
    G4GammaConversionToMuons): sigma = 7/9 4 alpha Z^2 (r_e m_e/m_mu)^2
    ln(1 + W_M C(k) E_g(k)), with W_M = 1/(4 D_n sqrt(e) m_mu), C = 1 + 0.04 ln(1 + E_c/k),
    E_c = -18 MeV + 4347 MeV/(B Z^-1/3), E_g = (1 - 4 m_mu/k)^(1.479 + 0.00799 D_n)
    (W_sat^-0.88 + k^-0.88)^(-1/0.88), W_sat = W_inf/W_M, W_inf = B Z^-1/3 m_mu/(D_n m_e),
    B = 183, D_n = 1.54 A^0.27. Zero at and below 4 m_mu.
    """
    k = np.asarray(k_gev, dtype=float)
    z, a = float(LEAD.z), float(LEAD.a_g_mol)
    b, dn = 183.0, 1.54 * a**0.27
    z3 = z ** (-1.0 / 3.0)
    w_inf = b * z3 * M_MU / (dn * M_E)
    w_m = 1.0 / (4.0 * dn * math.sqrt(math.e) * M_MU)  # 1/GeV
    w_sat = w_inf / w_m  # GeV
    e_cor = 1e-3 * (-18.0 + 4347.0 / (b * z3))  # GeV
    power = 1.479 + 0.00799 * dn
    above = k > K_THRESHOLD_GEV
    ks = np.where(above, k, 1.0)
    corr = 1.0 + 0.04 * np.log(1.0 + e_cor / ks)
    thresh = np.clip(1.0 - K_THRESHOLD_GEV / ks, 0.0, None) ** power
    e_g = thresh * (w_sat**-0.88 + ks**-0.88) ** (-1.0 / 0.88)
    sigma_atom = 7.0 / 9.0 * 4.0 * ALPHA * z * z * (R_E_CM * M_E / M_MU) ** 2
    sigma = sigma_atom * np.log1p(w_m * corr * e_g) * N_AVOGADRO / a
    return np.where(above, sigma, 0.0)


def mu_pair_probability(
    k_gev: np.ndarray | float, t_g_cm2: np.ndarray | float = np.inf
) -> np.ndarray:
    """Probability that a photon of energy k converts to mu+ mu- within t g/cm2 of lead.

    sigma_mumu / sigma_tot x (1 - exp(-sigma_tot t)), sigma_tot = 7/(9 X0) + sigma_mumu:
    the e+e- conversion competes and takes nearly every photon within a few X0 (7/(9 X0) is
    the complete-screening pair production: the photon converts within about 9/7 X0), so
    sigma_mumu/sigma_tot ~ (m_e/m_mu)^2 above ~50 GeV. (Until December 2026 the
    probability was (7/9)(m_e/m_mu)^2 per X0 times the lead left, as if e+e- conversion
    did not compete: 17x too many pairs above 80 GeV.)
    """
    s_mm = sigma_mumu_cm2_g(k_gev)
    s_tot = SIGMA_EE_CM2_G + s_mm
    return s_mm / s_tot * -np.expm1(-s_tot * np.asarray(t_g_cm2, dtype=float))


def pair_energy_min_gev(cfg: Config) -> float:
    """Smallest pair energy that brings the scattered muon into the box: E0 - E'_max."""
    return max(cfg.beam.energy_gev - cfg.signal_box.e_mu_out_max_gev, K_THRESHOLD_GEV)


def _trident_lambda(e: float, k_min: float) -> float:
    vmin = max(4 * M_MU, k_min) / e
    norm = -np.log(4 * M_E / e) - 1.0
    count = (1 / vmin - 1) + np.log(vmin)
    return float(ecal.b_radiative_cm2_g(e, process="pair")) * R_MASS * count / norm


def _draw_trident_v(rng: np.random.Generator, n: int, vmin: float) -> np.ndarray:
    """n pair energy fractions from (1 - v)/v^2 on [vmin, 1] (the law of :func:`_trident_lambda`).

    Drawn from 1/v^2 by inversion and kept with probability (1 - v)/(1 - vmin).
    """
    out = np.empty(0)
    while out.size < n:
        k = 2 * (n - out.size) + 16
        v = 1.0 / (1.0 / vmin - rng.random(k) * (1.0 / vmin - 1.0))
        out = np.concatenate([out, v[rng.random(k) * (1.0 - vmin) < 1.0 - v]])
    return out[:n]


def _draw_x(rng: np.random.Generator, k: np.ndarray) -> np.ndarray:
    """mu+ energy fraction of a pair of energy k: 1 - 4/3 x (1 - x) on [x_min, x_max].

    The kinematic range: x_min, x_max = 1/2 -+ sqrt(1/4 - m_mu/k).
    """
    half = np.sqrt(np.clip(0.25 - M_MU / np.maximum(k, K_THRESHOLD_GEV), 0.0, None))
    out = np.empty(k.size)
    todo = np.arange(k.size)
    while todo.size:
        x = 0.5 - half[todo] + 2 * half[todo] * rng.random(todo.size)
        ok = rng.random(todo.size) < 1 - 4 / 3 * x * (1 - x)
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


def dimuon_yields(cfg: Config, *, n_draws: int = 2_000_000, seed: int = 0) -> dict[str, float]:
    """Per-MOT yields: Bethe-Heitler pairs of every energy, those with k >= E0 - E'_max,
    and the hard tridents (MC integral over the photon spectrum and the emission depth).

    ``total`` (Bethe-Heitler of every energy + hard tridents) is what the sample holds.
    """
    rng = np.random.default_rng(seed)
    e0 = cfg.beam.energy_gev
    v_lo = K_THRESHOLD_GEV / e0
    full = detector.ECAL_DEPTH_G_CM2
    lam_b = ecal.lambda_catastrophic_cm2_g("brems", e0, v_cut=v_lo)
    k = ecal.sample_v("brems", n_draws, rng, v_cut=v_lo) * e0
    p_mm = mu_pair_probability(k, full * rng.random(n_draws))
    core = 1.0 - cfg.beam.halo_fraction
    per_draw = core * lam_b * full / n_draws
    bh = per_draw * float(p_mm.sum())
    bh_hard = per_draw * float(p_mm[k >= pair_energy_min_gev(cfg)].sum())
    tri = core * _trident_lambda(e0, pair_energy_min_gev(cfg)) * full
    return {"bethe_heitler": bh, "bethe_heitler_hard": bh_hard, "trident": tri, "total": bh + tri}


def _beam(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    b = cfg.beam
    return {
        "e": b.energy_gev * (1 + b.momentum_spread_rel * rng.standard_normal(n)),
        "x": b.spot_sigma_x_cm * rng.standard_normal(n),
        "y": b.spot_sigma_y_cm * rng.standard_normal(n),
        "tx": 1e-3 * b.divergence_x_mrad * rng.standard_normal(n),
        "ty": 1e-3 * b.divergence_y_mrad * rng.standard_normal(n),
    }


def _take(parts: list[dict[str, np.ndarray]], n: int) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts])[:n] for key in parts[0]}


def _bethe_heitler_vertices(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n Bethe-Heitler emissions that convert to mu+ mu-: the beam muon, the emission depth,
    the muon's passage to it and the photon, kept with probability P_mumu(k, lead left)
    (accept-reject against its largest value, that of a photon of twice the beam energy).

    The photon has the bremsstrahlung spectrum of :mod:`bkg.sim.ecal`, any energy k above
    the threshold 4 m_mu. The emission depth is uniform (the muon's brems rate), the
    conversion point exponential behind it.
    """
    full = detector.ECAL_DEPTH_G_CM2
    v_lo = K_THRESHOLD_GEV / cfg.beam.energy_gev
    p_max = float(mu_pair_probability(2.0 * cfg.beam.energy_gev))
    parts: list[dict[str, np.ndarray]] = []
    got = 0
    while got < n:
        m = 2 * (n - got) + 16
        cand = _beam(cfg, rng, m)
        depth1 = full * rng.random(m)
        p1 = detector.muon_through_ecal(cfg, rng, cand["e"], depth_g_cm2=depth1)
        k = ecal.sample_v("brems", m, rng, v_cut=v_lo) * p1["e_out"]
        ok = rng.random(m) * p_max < mu_pair_probability(k, full - depth1)
        cand.update(depth1=depth1, k=k, **{f"p1_{key}": val for key, val in p1.items()})
        parts.append({key: val[ok] for key, val in cand.items()})
        got += int(ok.sum())
    return _take(parts, n)


def _trident_vertices(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n hard tridents at a uniform depth, v from (1 - v)/v^2 above E0 - E'_max.

    Trident mu N -> mu mu+ mu- N: the e+e- pair-production spectrum of :mod:`bkg.sim.ecal`
    with m_e -> m_mu, i.e. b_trident = b_pair (m_e/m_mu)^2 and dN/dv ~ (1 - v)/v^2 above
    v_min = 4 m_mu / E (order-of-magnitude model), at a uniform depth, the pair starting
    at the vertex. Only tridents whose pair takes at least E0 - E'_max (80 GeV at 160 GeV,
    the signal box edge) are generated: softer pairs leave the scattered muon above the
    box, and the soft end of (1 - v)/v^2 would swamp the sample.
    """
    full = detector.ECAL_DEPTH_G_CM2
    out = _beam(cfg, rng, n)
    depth1 = full * rng.random(n)
    p1 = detector.muon_through_ecal(cfg, rng, out["e"], depth_g_cm2=depth1)
    vmin = pair_energy_min_gev(cfg) / cfg.beam.energy_gev
    out.update(depth1=depth1, k=_draw_trident_v(rng, n, vmin) * p1["e_out"])
    out.update({f"p1_{key}": val for key, val in p1.items()})
    return out


def generate_dimuons(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One chunk of the ``dimuons`` sample: n events, Bethe-Heitler (every energy) and hard
    trident pairs mixed by their yields.

    The sample holds every Bethe-Heitler pair (the paper's "dimuon production yield"
    ~1e-7 per MOT is this all-energy yield) and the hard tridents, mixed by their yields
    (:func:`dimuon_yields`); a pair below E0 - E'_max cannot put the muon into the box
    and only dilutes it (about 5 of 6 Bethe-Heitler pairs).
    """
    y = dimuon_yields(cfg, n_draws=200_000, seed=1)
    trident = rng.random(n) < y["trident"] / y["total"]
    nt = int(trident.sum())
    bh = _bethe_heitler_vertices(cfg, rng, n - nt)
    tri = _trident_vertices(cfg, rng, nt)
    ev = {key: np.empty(n, dtype=bh[key].dtype) for key in bh}
    for key in ev:
        ev[key][~trident] = bh[key]
        ev[key][trident] = tri[key]
    full = detector.ECAL_DEPTH_G_CM2
    e, k, depth1 = ev["e"], ev["k"], ev["depth1"]
    p1 = {key[3:]: val for key, val in ev.items() if key.startswith("p1_")}
    # a Bethe-Heitler photon converts at an exponential depth behind its emission (rate
    # sigma_tot, truncated to the lead left); a trident's pair starts at its vertex
    rate = SIGMA_EE_CM2_G + sigma_mumu_cm2_g(k)
    left = full - depth1
    u = rng.random(n)
    flight = -np.log1p(-u * -np.expm1(-rate * left)) / rate
    depth_conv = np.where(trident, depth1, np.minimum(depth1 + flight, full))
    e_mu_after = p1["e_out"] - k
    p2 = detector.muon_through_ecal(cfg, rng, np.maximum(e_mu_after, 0.2), depth_g_cm2=left)
    split = _draw_x(rng, k)
    e_plus = split * k
    e_minus = (1 - split) * k
    # pair muons lose their ionisation share in the rest of the ECAL (continuous, mean)
    rem = full - depth_conv
    loss = ecal.dedx_ionisation_gev_cm2_g(160.0) * rem
    e_plus = np.maximum(e_plus - loss, 0.0)
    e_minus = np.maximum(e_minus - loss, 0.0)
    reach = (e_plus > detector.P_RANGE_GEV).astype(np.int8) + (
        e_minus > detector.P_RANGE_GEV
    ).astype(np.int8)
    lead_ok = np.where(e_mu_after > 0.2, p2["e_out"], 0.0)
    n_hcal = reach + (lead_ok > detector.P_RANGE_GEV).astype(np.int8)
    extra_tracks = (e_plus > 1.0).astype(np.uint8) + (e_minus > 1.0).astype(np.uint8)
    extra_vm = ((e_plus > 0) & (e_plus <= 1.0)) | ((e_minus > 0) & (e_minus <= 1.0))
    mip = cfg.detector.hcal.mip_gev
    e_ecal = p1["e_ecal"] + p2["e_ecal"] + 2 * cfg.detector.ecal.mip_gev * rem / full
    out = detector.respond(
        cfg,
        rng,
        p_in_true=e,
        x_cm=ev["x"],
        y_cm=ev["y"],
        tx_out=ev["tx"] + p1["tx_ms"] + p2["tx_ms"],
        ty_out=ev["ty"] + p1["ty_ms"] + p2["ty_ms"],
        p_out_true=lead_ok,
        e_ecal=e_ecal,
        e_leak_em=p1["e_leak_em"] + p2["e_leak_em"],
        e_leak_had=p1["e_leak_had"] + p2["e_leak_had"],
        process=np.full(n, 2, dtype=np.int8),
        e_transfer=k,
        extra_tracks=extra_tracks,
        extra_hcal_gev=mip * reach,
        extra_vm=extra_vm,
    )
    out.update(e_gamma=k, e_mu_plus=e_plus, e_mu_minus=e_minus, n_mu_hcal=n_hcal, trident=trident)
    return out
