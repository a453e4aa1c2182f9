"""Calorimeter response: ECAL sampling resolution, VHCAL (with its hole), HCAL modules.

Hadronic showers use a longitudinal profile in interaction lengths lambda_I:
the first interaction at a depth t0 ~ Exp(lambda_h) (lambda_h = 1.2 lambda_I for
pions), then a Gamma(a, beta) profile in t - t0 (a = 1 + 0.25 ln(E/GeV),
beta = 1 lambda_I; Bock et al., NIM 186 (1981) 533, simplified). Before t0 the
hadron is a MIP. Punch-through of n modules therefore needs a late first
interaction and/or a shower tail: rare but possible.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["ecal_visible", "hadron_shower", "muon_mip", "vhcal_response"]

#: visible MIP of a muon per lambda_I of HCAL iron (2.3 GeV for 2 x 7.5 lambda_I).
HCAL_MIP_PER_LAMBDA_GEV = 2.3 / 15.0
VHCAL_MIP_GEV = 0.4


def ecal_visible(
    e_dep: np.ndarray, rng: np.random.Generator, *, stochastic: float, constant: float
) -> np.ndarray:
    """Smear deposited ECAL energy with sigma/E = stochastic/sqrt(E) (+) constant (GeV)."""
    e = np.maximum(e_dep, 0.0)
    sigma = np.sqrt(stochastic**2 * e + (constant * e) ** 2)
    return np.maximum(e + sigma * rng.standard_normal(e.size), 0.0)


def muon_mip(
    n: int, rng: np.random.Generator, *, mean_gev: float, rel_width: float = 0.15
) -> np.ndarray:
    """MIP deposit of a muon (Landau-like: Moyal with a relative width), mean ``mean_gev``."""
    g = np.maximum(np.abs(rng.standard_normal(n)), 1e-6)
    moyal = np.minimum(-2.0 * np.log(g), 30.0)  # mean 1.27, mode 0
    return np.maximum(mean_gev * (1.0 + rel_width * (moyal - 1.27)), 0.05 * mean_gev)


def hadron_shower(
    e_h: np.ndarray,
    rng: np.random.Generator,
    *,
    boundaries_lambda: np.ndarray,
    resolution: float,
    interaction_scale: float = 1.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Visible energy of a hadron shower in consecutive slabs.

    Args:
        e_h: hadron energies (GeV), shape (n,).
        rng: random generator.
        boundaries_lambda: slab edges in lambda_I, shape (k+1,), starting at 0.
        resolution: stochastic term a of sigma/E = a/sqrt(E).
        interaction_scale: hadron interaction length in units of lambda_I.

    Returns:
        (deposits (n, k) in GeV, depth of the shower end (n,) in lambda_I, taken as t0 + 3 t_max).
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
    return dep, t0 + (a - 1.0) * beta * 3.0


def vhcal_response(
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    rng: np.random.Generator,
    *,
    hole_cm: tuple[float, float],
    size_cm: tuple[float, float],
) -> np.ndarray:
    """MIP deposit in the VHCAL of a muon at (x, y) behind the ECAL: 0 inside the hole or outside the module."""
    inside_hole = (np.abs(x_cm) < hole_cm[0] / 2) & (np.abs(y_cm) < hole_cm[1] / 2)
    inside = (np.abs(x_cm) < size_cm[0] / 2) & (np.abs(y_cm) < size_cm[1] / 2)
    hit = inside & ~inside_hole
    out = np.zeros(x_cm.size)
    k = int(hit.sum())
    if k:
        out[hit] = muon_mip(k, rng, mean_gev=VHCAL_MIP_GEV)
    return out
