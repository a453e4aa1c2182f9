"""Signal: mu N -> mu N Z' in the ECAL, Z' invisible, per Z' mass.

(x, theta) come from the WW d2sigma/(dx dtheta) (:func:`sample_x_theta`); the emission
depth is uniform along the ECAL and the muon recoils with the Z' transverse momentum
(:func:`generate_signal`).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from bkg.config import Config
from bkg.sim import beam, detector

__all__ = ["generate_signal", "sample_x_theta"]

log = logging.getLogger(__name__)
M_MU = 0.1056583755
THETA_MAX = 0.3


@lru_cache(maxsize=1)
def _chi_table():
    from bkg.physics.constants import LEAD
    from bkg.physics.crosssection import ChiTable

    return ChiTable.build(LEAD)


def _pdf(x: np.ndarray, th: np.ndarray, e0: float, m: float) -> np.ndarray:
    from bkg.physics.crosssection import d2sigma_dx_dtheta_pb

    f = d2sigma_dx_dtheta_pb(x, th, e0, m, chi_table=_chi_table())
    return np.nan_to_num(np.asarray(f, dtype=float), nan=0.0, posinf=0.0)


@lru_cache(maxsize=64)
def _grid(
    e0: float, m: float, nx: int = 120, nt: int = 120
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xlo, xhi = m / e0 * (1 + 1e-6), 1 - M_MU / e0 * (1 + 1e-6)
    lx = np.linspace(np.log(xlo / (1 - xlo)), np.log(xhi / (1 - xhi)), nx + 1)
    xe = 1 / (1 + np.exp(-lx))
    te = np.geomspace(1e-7, THETA_MAX, nt + 1)
    xc = 0.5 * (xe[1:] + xe[:-1])
    tc = np.sqrt(te[1:] * te[:-1])
    area = np.outer(np.diff(xe), np.diff(te))
    fc = _pdf(xc[:, None], tc[None, :], e0, m)
    fcorner = _pdf(xe[:, None], te[None, :], e0, m)
    bound = (
        np.maximum.reduce(
            [fcorner[:-1, :-1], fcorner[1:, :-1], fcorner[:-1, 1:], fcorner[1:, 1:], fc]
        )
        * 1.5
    )
    w = (bound * area).ravel()
    return xe, te, np.cumsum(w) / w.sum(), bound.ravel()


def sample_x_theta(
    e0: float, m: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n (x, theta) from the WW d2sigma/(dx dtheta) at muon energy e0 (GeV) and Z' mass m (GeV).

    The density is :func:`bkg.physics.crosssection.d2sigma_dx_dtheta_pb`. Cells of a
    (logit x, log theta) grid are chosen with probability f(centre) x cell area, then a
    point inside the cell is accepted with probability f(point) / (1.5 max(corners,
    centre)) (accept-reject; points above the bound are counted in the log).
    """
    xe, te, cdf, bound = _grid(float(e0), float(m))
    nt = te.size - 1
    xs, ts = [], []
    got = 0
    while got < n:
        k = 2 * (n - got) + 64
        cell = np.minimum(np.searchsorted(cdf, rng.random(k)), cdf.size - 1)
        i, j = cell // nt, cell % nt
        x = xe[i] + (xe[i + 1] - xe[i]) * rng.random(k)
        th = te[j] + (te[j + 1] - te[j]) * rng.random(k)
        f = _pdf(x, th, e0, m)
        over = int(np.count_nonzero(f > bound[cell]))
        if over:
            log.debug("signal sampling: %d points above the envelope", over)
        ok = rng.random(k) * bound[cell] < f
        xs.append(x[ok])
        ts.append(th[ok])
        got += int(ok.sum())
    return np.concatenate(xs)[:n], np.concatenate(ts)[:n]


def generate_signal(
    cfg: Config, rng: np.random.Generator, n: int, *, m_zprime_gev: float
) -> dict[str, np.ndarray]:
    """One chunk of the ``signal`` sample: n Z' emissions at mass ``m_zprime_gev``.

    The emission depth is uniform along the ECAL (sigma varies slowly with E); the muon
    reaches it with the energy left after the losses of :mod:`bkg.sim.ecal`, emits
    E_Z' = x E and recoils with the Z' transverse momentum (theta_mu = x theta / (1 - x)).
    """
    b = cfg.beam
    inc = beam.incoming_beam(cfg, rng, n)
    # signal from the beam core only (the trigger selects it anyway)
    inc["p"] = b.energy_gev * (1 + b.momentum_spread_rel * rng.standard_normal(n))
    inc["x"] = b.spot_sigma_x_cm * rng.standard_normal(n)
    inc["y"] = b.spot_sigma_y_cm * rng.standard_normal(n)
    x, th = sample_x_theta(b.energy_gev, m_zprime_gev, n, rng)
    depth1 = rng.random(n) * detector.ECAL_DEPTH_G_CM2
    p1 = detector.muon_through_ecal(cfg, rng, inc["p"], depth_g_cm2=depth1)
    e_emit = p1["e_out"]
    e_after = np.maximum(e_emit * (1 - x), 0.2)
    p2 = detector.muon_through_ecal(
        cfg, rng, e_after, depth_g_cm2=detector.ECAL_DEPTH_G_CM2 - depth1
    )
    phi = 2 * np.pi * rng.random(n)
    th_mu = x * th / np.maximum(1 - x, 1e-6)
    out = detector.respond(
        cfg,
        rng,
        p_in_true=inc["p"],
        x_cm=inc["x"],
        y_cm=inc["y"],
        tx_out=inc["tx"] + p1["tx_ms"] + p2["tx_ms"] - th_mu * np.cos(phi),
        ty_out=inc["ty"] + p1["ty_ms"] + p2["ty_ms"] - th_mu * np.sin(phi),
        p_out_true=p2["e_out"],
        e_ecal=p1["e_ecal"] + p2["e_ecal"],
        e_leak_em=p1["e_leak_em"] + p2["e_leak_em"],
        e_leak_had=p1["e_leak_had"] + p2["e_leak_had"],
        process=np.full(n, 7, dtype=np.int8),
        e_transfer=x * e_emit,
    )
    out.update(m_zprime_gev=np.full(n, m_zprime_gev), x_zprime=x, theta_zprime=th, e_mu_emit=e_emit)
    return out
