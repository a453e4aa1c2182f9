"""Dimuon production in the ECAL: mu N -> mu N gamma, gamma -> mu+ mu- (Bethe-Heitler), and trident.

* Two-step (Bethe-Heitler): a bremsstrahlung photon (spectrum of
  :mod:`bkg.sim.ecal`, k >= :func:`pair_energy_min_gev`) converts into mu+ mu- in the
  remaining lead with probability (7/9)(m_e/m_mu)^2 per X0 times the threshold factor
  (1 - 4 m_mu / k)^(3/2) (an approximation of the exact Bethe-Heitler ramp; PDG eq.
  34.31 with m_e -> m_mu). Since that probability grows with the depth left, the
  emission depth has the density (D - z) and the conversion point is uniform behind it.
* Trident mu N -> mu mu+ mu- N: the e+e- pair-production spectrum of
  :mod:`bkg.sim.ecal` with m_e -> m_mu, i.e. b_trident = b_pair (m_e/m_mu)^2 and
  dN/dv ~ (1 - v)/v^2 above v_min = 4 m_mu / E (order-of-magnitude model), at a
  uniform depth, the pair starting at the vertex.
The pair energy is split with dsigma/dy ~ 1 - 4/3 y (1 - y).

Only dimuons that can mimic the signal are generated: the pair must take at
least E0 - E'_max (80 GeV at 160 GeV, the signal box edge), otherwise the
scattered muon stays above the box. This is the yield the paper quotes
(~1e-7 per MOT); softer pairs cannot enter the signal box.
"""

from __future__ import annotations

import numpy as np

from bkg.config import Config
from bkg.sim import detector, ecal

__all__ = ["dimuon_yields", "generate_dimuons", "pair_energy_min_gev"]

M_MU = 0.1056583755
M_E = 0.00051099895
R_MASS = (M_E / M_MU) ** 2


def _conv_per_x0(k: np.ndarray) -> np.ndarray:
    return 7.0 / 9.0 * R_MASS * np.clip(1.0 - 4 * M_MU / np.maximum(k, 1e-9), 0.0, None) ** 1.5


def pair_energy_min_gev(cfg: Config) -> float:
    """Smallest pair energy that brings the scattered muon into the box: E0 - E'_max."""
    return max(cfg.beam.energy_gev - cfg.signal_box.e_mu_out_max_gev, 4 * M_MU)


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


def _draw_y(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty(0)
    while out.size < n:
        y = rng.random(2 * n + 16)
        out = np.concatenate([out, y[rng.random(y.size) < 1 - 4 / 3 * y * (1 - y)]])
    return out[:n]


def dimuon_yields(cfg: Config, *, n_draws: int = 2_000_000, seed: int = 0) -> dict[str, float]:
    """Per-MOT yields of the two-step (Bethe-Heitler) and trident dimuons (MC integral over depth)."""
    rng = np.random.default_rng(seed)
    e0 = cfg.beam.energy_gev
    vc = pair_energy_min_gev(cfg) / e0
    lam_b = ecal.lambda_catastrophic_cm2_g("brems", e0, v_cut=vc)
    v = ecal.sample_v("brems", n_draws, rng, v_cut=vc)
    t_rem = 40.0 * rng.random(n_draws)
    p_conv = _conv_per_x0(v * e0) * t_rem
    core = 1.0 - cfg.beam.halo_fraction
    bh = core * lam_b * detector.ECAL_DEPTH_G_CM2 * float(p_conv.mean())
    tri = core * _trident_lambda(e0, pair_energy_min_gev(cfg)) * detector.ECAL_DEPTH_G_CM2
    return {"bethe_heitler": bh, "trident": tri, "total": bh + tri}


def generate_dimuons(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One chunk of the ``dimuons`` sample: n events, BH and trident mixed by their yields."""
    b = cfg.beam
    e0 = b.energy_gev
    y = dimuon_yields(cfg, n_draws=200_000, seed=1)
    trident = rng.random(n) < y["trident"] / y["total"]
    e = e0 * (1 + b.momentum_spread_rel * rng.standard_normal(n))
    x = b.spot_sigma_x_cm * rng.standard_normal(n)
    yy = b.spot_sigma_y_cm * rng.standard_normal(n)
    tx = 1e-3 * b.divergence_x_mrad * rng.standard_normal(n)
    ty = 1e-3 * b.divergence_y_mrad * rng.standard_normal(n)
    v = np.empty(n)
    nb = int((~trident).sum())
    # BH: photon spectrum weighted by the conversion probability (accept-reject on the threshold ramp)
    vb = np.empty(0)
    while vb.size < nb:
        cand = ecal.sample_v(
            "brems", 2 * (nb - vb.size) + 16, rng, v_cut=pair_energy_min_gev(cfg) / e0
        )
        vb = np.concatenate(
            [vb, cand[rng.random(cand.size) < _conv_per_x0(cand * e0) / (7 / 9 * R_MASS)]]
        )
    v[~trident] = vb[:nb]
    nt = n - nb
    vmin = max(4 * M_MU, pair_energy_min_gev(cfg)) / e0
    v[trident] = _draw_trident_v(rng, nt, vmin)
    # Bethe-Heitler: the photon converts with a probability proportional to the depth left,
    # so the emission density is (D - z) and the conversion point is uniform behind it;
    # a trident's pair starts at its vertex, at a uniform depth
    full = detector.ECAL_DEPTH_G_CM2
    u1, u2 = rng.random(n), rng.random(n)
    depth1 = np.where(trident, full * u1, full * (1.0 - np.sqrt(u1)))
    depth_conv = np.where(trident, depth1, depth1 + (full - depth1) * u2)
    p1 = detector.muon_through_ecal(cfg, rng, e, depth_g_cm2=depth1)
    k = v * p1["e_out"]
    e_mu_after = p1["e_out"] - k
    p2 = detector.muon_through_ecal(
        cfg, rng, np.maximum(e_mu_after, 0.2), depth_g_cm2=detector.ECAL_DEPTH_G_CM2 - depth1
    )
    split = _draw_y(rng, n)
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
    e_ecal = (
        p1["e_ecal"]
        + p2["e_ecal"]
        + 2 * cfg.detector.ecal.mip_gev * rem / detector.ECAL_DEPTH_G_CM2
    )
    out = detector.respond(
        cfg,
        rng,
        p_in_true=e,
        x_cm=x,
        y_cm=yy,
        tx_out=tx + p1["tx_ms"] + p2["tx_ms"],
        ty_out=ty + p1["ty_ms"] + p2["ty_ms"],
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
