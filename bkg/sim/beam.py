"""The M2 muon beam at the ECAL front: momentum spectrum, spot, divergence, halo.

Core: Gaussian momentum (mean E0, rms ``momentum_spread_rel`` E0), Gaussian
spot (sigma_x, sigma_y) and divergence. Halo (``halo_fraction`` of the
intensity): momenta between ``halo_energy_min_gev`` and E0 with density
rising towards E0 (p = E_min + (E0 - E_min) u^0.7), uniform over a disc of
``halo_radius_cm``.
"""

from __future__ import annotations

import numpy as np

from bkg.config import Config
from bkg.sim import detector

__all__ = ["generate_beam_muons", "incoming_beam", "simulate_beam"]


def incoming_beam(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw n beam muons: ``p`` (GeV), ``x``, ``y`` (cm), ``tx``, ``ty`` (rad), ``halo`` (bool)."""
    b = cfg.beam
    halo = rng.random(n) < b.halo_fraction
    p = b.energy_gev * (1.0 + b.momentum_spread_rel * rng.standard_normal(n))
    x = b.spot_sigma_x_cm * rng.standard_normal(n)
    y = b.spot_sigma_y_cm * rng.standard_normal(n)
    tx = 1e-3 * b.divergence_x_mrad * rng.standard_normal(n)
    ty = 1e-3 * b.divergence_y_mrad * rng.standard_normal(n)
    k = np.nonzero(halo)[0]
    if k.size:
        p[k] = (
            b.halo_energy_min_gev
            + (b.energy_gev - b.halo_energy_min_gev) * rng.random(k.size) ** 0.7
        )
        r = b.halo_radius_cm * np.sqrt(rng.random(k.size))
        phi = 2 * np.pi * rng.random(k.size)
        x[k] = r * np.cos(phi)
        y[k] = r * np.sin(phi)
    return {"p": p, "x": x, "y": y, "tx": tx, "ty": ty, "halo": halo}


def simulate_beam(
    cfg: Config, rng: np.random.Generator, inc: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Detector response of muons entering the ECAL (dict as from :func:`incoming_beam`)."""
    ec = detector.muon_through_ecal(cfg, rng, inc["p"])
    return detector.respond(
        cfg,
        rng,
        p_in_true=inc["p"],
        x_cm=inc["x"],
        y_cm=inc["y"],
        tx_out=inc["tx"] + ec["tx_ms"],
        ty_out=inc["ty"] + ec["ty_ms"],
        p_out_true=ec["e_out"],
        e_ecal=ec["e_ecal"],
        e_leak_em=ec["e_leak_em"],
        e_leak_had=ec["e_leak_had"],
        process=ec["process"],
        e_transfer=ec["e_transfer"],
    )


def generate_beam_muons(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One chunk of the ``beam`` sample: n muons, every branch of SCHEMAS['beam']."""
    inc = incoming_beam(cfg, rng, n)
    out = simulate_beam(cfg, rng, inc)
    out["halo"] = inc["halo"]
    return out
