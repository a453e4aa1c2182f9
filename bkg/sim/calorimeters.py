"""Calorimeter response: ECAL sampling resolution, VHCAL (with its hole), HCAL modules.

Hadronic showers use a longitudinal profile in interaction lengths lambda_I:
the first interaction at a depth t0 ~ Exp(lambda_h) (lambda_h = 1.2 lambda_I for
pions), then a Gamma(a, beta) profile in t - t0 (a = 1 + 0.25 ln(E/GeV),
beta = 1 lambda_I; Bock et al., NIM 186 (1981) 533, simplified). Before t0 the
hadron is a MIP. Punch-through of n modules (a hadron whose deposit stays
compatible with a MIP) therefore needs a late first interaction: with
lambda_h = 1.2 lambda_I its probability falls by e^(-7.5/1.2) ~ 2e-3 per
7.5 lambda_I module.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bkg.sim.draws import normal32

__all__ = [
    "ecal_visible",
    "hadron_shower",
    "muon_mip",
    "on_vhcal",
    "vhcal_mip_gev",
    "vhcal_response",
]

#: visible MIP of a muon per lambda_I of HCAL iron (2.3 GeV for 2 x 7.5 lambda_I).
HCAL_MIP_PER_LAMBDA_GEV = 2.3 / 15.0
#: nuclear interaction lengths lambda_I (g/cm2, PDG atomic and nuclear properties)
LAMBDA_I_G_CM2 = {"Fe": 132.1, "Cu": 137.3}


def vhcal_mip_gev(thickness_lambda: float, *, p_gev: float = 150.0) -> float:
    """Visible MIP of a muon crossing ``thickness_lambda`` of the copper VHCAL (GeV).

    The HCAL's visible MIP per lambda_I of iron, scaled by the ionisation loss per
    lambda_I of copper against iron (same visible-to-lost ratio, 0.8 for the HCAL):
    0.77 GeV for 5 lambda_I, where 0.97 GeV is lost.
    """
    from bkg.physics.constants import COPPER, IRON, M_MU_GEV
    from bkg.physics.energyloss import dedx_ionisation_gev_cm2_g

    e = float(np.hypot(p_gev, M_MU_GEV))
    per_lambda = {
        m.name: LAMBDA_I_G_CM2[m.name] * float(dedx_ionisation_gev_cm2_g(e, material=m))
        for m in (COPPER, IRON)
    }
    return thickness_lambda * HCAL_MIP_PER_LAMBDA_GEV * per_lambda["Cu"] / per_lambda["Fe"]


#: visibility depth of a hadron too soft to ever exceed the threshold (finite for the ntuple)
NEVER_VISIBLE_LAMBDA = 1.0e3


def ecal_visible(
    e_dep: np.ndarray, rng: np.random.Generator, *, stochastic: float, constant: float
) -> np.ndarray:
    """Smear deposited ECAL energy with sigma/E = stochastic/sqrt(E) (+) constant (GeV, float32)."""
    e = np.maximum(e_dep, 0.0).astype(np.float32, copy=False)
    sigma = np.sqrt(e * (stochastic**2 + constant**2 * e))
    return np.maximum(e + sigma * normal32(rng, e.size), 0.0)


def muon_mip(
    n: int, rng: np.random.Generator, *, mean_gev: float, rel_width: float = 0.15
) -> np.ndarray:
    """MIP deposit of a muon (Landau-like: Moyal with a relative width), mean ``mean_gev`` (float32)."""
    g = np.maximum(np.abs(normal32(rng, n)), np.float32(1e-6))
    moyal = np.minimum(-2.0 * np.log(g), np.float32(30.0))  # mean 1.27, mode 0
    return np.maximum(mean_gev * (1.0 + rel_width * (moyal - 1.27)), np.float32(0.05 * mean_gev))


def hadron_shower(
    e_h: np.ndarray,
    rng: np.random.Generator,
    *,
    boundaries_lambda: np.ndarray,
    resolution: float,
    interaction_scale: float = 1.2,
    visible_threshold_gev: float = 2.7,
) -> tuple[np.ndarray, np.ndarray]:
    """Visible energy of a hadron shower in consecutive slabs.

    Args:
        e_h: hadron energies (GeV), shape (n,).
        rng: random generator.
        boundaries_lambda: slab edges in lambda_I, shape (k+1,), starting at 0.
        resolution: stochastic term a of sigma/E = a/sqrt(E).
        interaction_scale: hadron interaction length in units of lambda_I.
        visible_threshold_gev: shower energy above which the hadron is no longer
            compatible with a MIP.

    Returns:
        (deposits (n, k) in GeV, visibility depth (n,) in lambda_I). The visibility
        depth is where the shower has deposited ``visible_threshold_gev`` (the MIP
        part before t0 excluded): t0 + beta P^-1(a, threshold / E_h). A calorimeter
        shorter than it sees the hadron as a MIP (charged) or nothing (neutral), the
        punch-through of the paper's Sec. III.C.
    """
    n = e_h.size
    t0 = rng.exponential(interaction_scale, n)
    a = 1.0 + 0.25 * np.log(np.maximum(e_h, 1.0))
    beta = 1.0
    edges = np.asarray(boundaries_lambda, dtype=float)
    dt = np.clip(edges[None, :] - t0[:, None], 0.0, None)
    cdf = special.gammainc(a[:, None], dt / beta)
    frac = np.diff(cdf, axis=1)
    dep = e_h[:, None] * frac
    sigma = resolution * np.sqrt(np.maximum(dep, 1e-9))
    dep = np.maximum(dep + sigma * rng.standard_normal(dep.shape), 0.0)
    # MIP part before the first interaction
    mip_len = np.clip(np.minimum(edges[None, 1:], t0[:, None]) - edges[None, :-1], 0.0, None)
    dep += mip_len * HCAL_MIP_PER_LAMBDA_GEV
    frac_thr = np.clip(visible_threshold_gev / np.maximum(e_h, 1e-9), 0.0, 1.0)
    depth_vis = t0 + beta * special.gammaincinv(a, frac_thr)
    return dep, np.where(frac_thr < 1.0, depth_vis, NEVER_VISIBLE_LAMBDA)


def on_vhcal(
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    *,
    hole_cm: tuple[float, float],
    size_cm: tuple[float, float],
) -> np.ndarray:
    """True where (x, y) falls on the VHCAL module and outside its central hole."""
    inside_hole = (np.abs(x_cm) < hole_cm[0] / 2) & (np.abs(y_cm) < hole_cm[1] / 2)
    inside = (np.abs(x_cm) < size_cm[0] / 2) & (np.abs(y_cm) < size_cm[1] / 2)
    return inside & ~inside_hole


def vhcal_response(
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    rng: np.random.Generator,
    *,
    hole_cm: tuple[float, float],
    size_cm: tuple[float, float],
    mip_gev: float,
) -> np.ndarray:
    """MIP deposit in the VHCAL of a muon at (x, y) behind the ECAL: 0 inside the hole or outside the module."""
    k = np.flatnonzero(on_vhcal(x_cm, y_cm, hole_cm=hole_cm, size_cm=size_cm))
    out = np.zeros(x_cm.size, dtype=np.float32)
    if k.size:
        out[k] = muon_mip(k.size, rng, mean_gev=mip_gev)
    return out
