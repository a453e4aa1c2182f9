"""Signal yield of Z' -> invisible per muon on target (paper eq. 6) and the background-free reach.

The yield is proportional to g'^2 (Br(invisible) does not depend on g'), so the 90% CL
background-free reach is g'_90 = g_ref sqrt(n_signal / (N_MOT * yield(g_ref))).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from bkg.physics.constants import ALPHA, LEAD, PB_TO_CM2, Material
from bkg.physics.crosssection import CrossSectionTable
from bkg.physics.energyloss import muon_path_steps
from bkg.physics.zprime import br_invisible

__all__ = ["THICKNESS_40X0_PB_G_CM2", "eps_from_g_prime", "reach_g_prime", "signal_yield_per_mot"]

# Lead-equivalent thickness of the 40 X0 ECAL (g/cm2).
THICKNESS_40X0_PB_G_CM2: float = 40.0 * LEAD.x0_g_cm2

Efficiency = float | Callable[[np.ndarray], ArrayLike]


def eps_from_g_prime(g_prime: ArrayLike) -> np.ndarray:
    """eps = g' / sqrt(4 pi alpha): the coupling in units of the electric charge."""
    return np.asarray(g_prime, dtype=float) / np.sqrt(4.0 * np.pi * ALPHA)


def signal_yield_per_mot(
    m_zprime_gev: ArrayLike,
    g_prime: ArrayLike,
    *,
    table: CrossSectionTable,
    beam_energies_gev: ArrayLike = (160.0,),
    beam_weights: ArrayLike | None = None,
    thickness_g_cm2: float = THICKNESS_40X0_PB_G_CM2,
    material: Material = LEAD,
    e_mu_out_max_gev: float = 80.0,
    efficiency: Efficiency = 0.3,
    n_steps: int = 40,
) -> np.ndarray:
    """Expected number of Z' -> invisible signal events per muon on target (paper eq. 6).

    N_Z'/N_MOT = (N_A/A) sum_i sigma_sig(E_i) dL_i[g/cm2] * Br(Z' -> nu nu) * eff, averaged
    over the beam energy spectrum. E_i is the mean muon energy in the i-th step of the
    target (:func:`bkg.physics.energyloss.muon_path_steps`); sigma_sig is the production
    cross section restricted to E'_mu = E_i (1 - x) <= ``e_mu_out_max_gev``, scaled from
    the table's eps = 1 by eps^2 = g'^2/(4 pi alpha). The paper's (rho N_A/A) dL[cm] is
    (N_A/A) dL[g/cm2] here. The target is the 40 X0 lead/scintillator ECAL taken as 40 X0
    of pure lead (254.8 g/cm2): the scintillator adds little Z^2-weighted material, and
    the Z' is produced on lead nuclei only.

    Args:
        m_zprime_gev: Z' masses (GeV), any shape M.
        g_prime: coupling g' (broadcast with the masses).
        table: a :class:`CrossSectionTable` for ``material`` whose energy range covers the
            beam energies and the energies along the path.
        beam_energies_gev: beam energies (GeV), shape (B,); a single 160 GeV line by default.
        beam_weights: relative weights of the beam energies (normalised here); uniform if None.
        thickness_g_cm2: target thickness in g/cm2 (default 40 X0 of lead).
        material: target element (must be the table's).
        e_mu_out_max_gev: signal requires the scattered muon energy E'_mu <= this (GeV).
        efficiency: signal efficiency, a number or a function of the mass array.
        n_steps: steps along the path.

    Returns:
        Signal events per MOT, broadcast shape of masses and g'.
    """
    if table.material != material:
        raise ValueError(
            f"cross-section table is for {table.material.name}, target is {material.name}"
        )
    m = np.asarray(m_zprime_gev, dtype=float)
    g = np.asarray(g_prime, dtype=float)
    e_beam = np.atleast_1d(np.asarray(beam_energies_gev, dtype=float))
    if e_beam.ndim != 1:
        raise ValueError("beam_energies_gev must be one-dimensional")
    w = (
        np.ones_like(e_beam)
        if beam_weights is None
        else np.atleast_1d(np.asarray(beam_weights, dtype=float))
    )
    if w.shape != e_beam.shape or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("beam_weights must be non-negative, not all zero, one per beam energy")
    w = w / w.sum()

    energies, steps = muon_path_steps(
        e_beam, thickness_g_cm2, n_steps=n_steps, material=material
    )  # (B, S)
    x_cut = 1.0 - e_mu_out_max_gev / energies
    mm = m.reshape((*m.shape, 1, 1))
    sig_pb = table.sigma_x_above_pb(energies, mm, x_cut)  # M + (B, S), eps = 1
    per_eps2 = material.atoms_per_gram * PB_TO_CM2 * np.sum(sig_pb * steps, axis=-1)  # M + (B,)
    per_eps2 = np.sum(per_eps2 * w, axis=-1)  # M
    eff = np.asarray(efficiency(m) if callable(efficiency) else efficiency, dtype=float)
    return eps_from_g_prime(g) ** 2 * per_eps2 * br_invisible(m) * eff


def reach_g_prime(
    m_zprime_gev: ArrayLike,
    *,
    n_mot: float,
    n_signal: float = 2.3,
    table: CrossSectionTable,
    beam_energies_gev: ArrayLike = (160.0,),
    beam_weights: ArrayLike | None = None,
    thickness_g_cm2: float = THICKNESS_40X0_PB_G_CM2,
    material: Material = LEAD,
    e_mu_out_max_gev: float = 80.0,
    efficiency: Efficiency = 0.3,
    n_steps: int = 40,
) -> np.ndarray:
    """Background-free 90% CL reach in g': the g' that gives ``n_signal`` events in ``n_mot`` MOT.

    g'_90 = g_ref sqrt(n_signal / (n_mot * yield(g_ref))) with yield from
    :func:`signal_yield_per_mot` (proportional to g'^2).

    Args:
        m_zprime_gev: Z' masses (GeV).
        n_mot: number of muons on target.
        n_signal: signal events to exclude (2.3 = 90% CL Poisson upper limit at zero background).
        table, beam_energies_gev, beam_weights, thickness_g_cm2, material,
        e_mu_out_max_gev, efficiency, n_steps: as for :func:`signal_yield_per_mot`.

    Returns:
        g'_90, same shape as the masses (inf where the yield is zero).
    """
    g_ref = 1.0
    y = signal_yield_per_mot(
        m_zprime_gev,
        g_ref,
        table=table,
        beam_energies_gev=beam_energies_gev,
        beam_weights=beam_weights,
        thickness_g_cm2=thickness_g_cm2,
        material=material,
        e_mu_out_max_gev=e_mu_out_max_gev,
        efficiency=efficiency,
        n_steps=n_steps,
    )
    with np.errstate(divide="ignore"):
        return np.where(
            y > 0, g_ref * np.sqrt(n_signal / (n_mot * np.where(y > 0, y, 1.0))), np.inf
        )
