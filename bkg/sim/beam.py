"""The M2 muon beam at the ECAL front: momentum spectrum, spot, divergence, halo.

The beam's laws (Gaussian core, halo) are in :func:`incoming_beam`, the detector
response in :func:`simulate_beam`. Entry point: :func:`generate_beam_muons`. A chunk is
simulated in blocks of :data:`BLOCK` muons, one after the other from the chunk's
generator (:func:`in_blocks`): the arrays of a block stay in the CPU cache, and the
output depends only on the generator's seed and n.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bkg import ntuple
from bkg.config import Config
from bkg.sim import detector
from bkg.sim.draws import normal32

__all__ = ["BLOCK", "generate_beam_muons", "in_blocks", "incoming_beam", "simulate_beam"]

#: muons simulated at a time inside a chunk
BLOCK = 1 << 16


def incoming_beam(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw n beam muons: ``p`` (GeV, float64), ``x``, ``y`` (cm), ``tx``, ``ty`` (rad), ``halo`` (bool).

    Positions and slopes are float32. Core: Gaussian momentum (mean E0, rms
    ``momentum_spread_rel`` E0), Gaussian spot (sigma_x, sigma_y) and divergence. Halo
    (``halo_fraction`` of the intensity): momenta between ``halo_energy_min_gev`` and E0
    with density rising towards E0 (p = E_min + (E0 - E_min) u^0.7), uniform over a disc
    of ``halo_radius_cm``.
    """
    b = cfg.beam
    halo = rng.random(n) < b.halo_fraction
    g = normal32(rng, 5 * n)
    p = b.energy_gev * (1.0 + b.momentum_spread_rel * g[:n].astype(np.float64))
    x = b.spot_sigma_x_cm * g[n : 2 * n]
    y = b.spot_sigma_y_cm * g[2 * n : 3 * n]
    tx = 1e-3 * b.divergence_x_mrad * g[3 * n : 4 * n]
    ty = 1e-3 * b.divergence_y_mrad * g[4 * n :]
    k = np.flatnonzero(halo)
    if k.size:
        p[k] = (
            b.halo_energy_min_gev
            + (b.energy_gev - b.halo_energy_min_gev) * rng.random(k.size) ** 0.7
        )
        r = b.halo_radius_cm * np.sqrt(rng.random(k.size, dtype=np.float32))
        phi = np.float32(2 * np.pi) * rng.random(k.size, dtype=np.float32)
        x[k] = r * np.cos(phi)
        y[k] = r * np.sin(phi)
    return {"p": p, "x": x, "y": y, "tx": tx, "ty": ty, "halo": halo}


def simulate_beam(
    cfg: Config, rng: np.random.Generator, inc: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Detector response of muons entering the ECAL (dict as from :func:`incoming_beam`)."""
    ec = detector.muon_through_ecal(
        cfg, rng, inc["p"], escape_at=(inc["x"], inc["y"], inc["tx"], inc["ty"])
    )
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
        escape=ec.get("escape"),  # type: ignore[arg-type]
    )


def in_blocks(
    generate: Callable[[int], dict[str, np.ndarray]], n: int, sample: str
) -> dict[str, np.ndarray]:
    """``generate(m)`` for consecutive blocks of at most :data:`BLOCK` events, in the schema dtypes.

    The blocks draw one after the other from the chunk's generator, so the chunk
    stays a pure function of its seed and size; their arrays stay in the CPU cache.
    """
    schema = ntuple.SCHEMAS[sample]
    out = {k: np.empty(n, dtype=b.dtype) for k, b in schema.items()}
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        block = generate(stop - start)
        for k, array in out.items():
            array[start:stop] = block[k]
    return out


def generate_beam_muons(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One chunk of the ``beam`` sample: n muons, every branch of SCHEMAS['beam'] in its dtype.

    Simulated in blocks of :data:`BLOCK` muons drawn one after the other from ``rng``.
    """

    def block(m: int) -> dict[str, np.ndarray]:
        inc = incoming_beam(cfg, rng, m)
        out = simulate_beam(cfg, rng, inc)
        out["halo"] = inc["halo"]
        return out

    return in_blocks(block, n, "beam")
