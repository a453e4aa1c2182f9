"""Leading hadrons from mu N -> mu h X (photonuclear) in the ECAL, E_h >= 80 GeV.

The transfer nu = v E follows the ``nucl`` spectrum of :mod:`bkg.sim.ecal`; the leading
hadron takes a fraction z of nu (:func:`sample_z`), showers through the rest of the ECAL
and four HCAL modules (:func:`generate_leading_hadrons`); the rest, nu (1 - z), showers
in the ECAL.
"""

from __future__ import annotations

import numpy as np

from bkg.config import Config
from bkg.sim import beam, calorimeters, detector, ecal

__all__ = [
    "E_MIN_GEV", "generate_leading_hadrons", "leading_fraction_probability",
    "leading_hadron_probability", "sample_z",
]  # fmt: skip

E_MIN_GEV = 80.0
#: power a of the fragmentation density (1 - z)^a / z (counting rules: 2 for a meson)
FRAG_POWER = 2.0
#: smallest leading-hadron fraction sampled (E_h >= 80 GeV needs z > 0.44 at 180 GeV)
Z_MIN = 0.4


def _frag_integral(z: np.ndarray) -> np.ndarray:
    """int_z^1 (a + 1) (1 - z')^a / z' dz' for a = 2, in closed form."""
    a = FRAG_POWER
    assert a == 2.0
    return (a + 1) * (-np.log(z) - 2.0 * (1.0 - z) + 0.5 * (1.0 - z * z))


def leading_fraction_probability() -> float:
    """P(the leading hadron carries z >= Z_MIN of nu)."""
    return float(_frag_integral(np.asarray(Z_MIN)))


def sample_z(n: int, rng: np.random.Generator) -> np.ndarray:
    """n leading-hadron fractions z >= Z_MIN from D(z) (inverse CDF on a fine grid).

    D(z) = (a + 1) (1 - z)^a / z, a = 2: the quark-counting-rule power of a meson near
    z -> 1, normalised by the momentum sum rule int z D(z) dz = 1. Above z = 1/2 at
    most one hadron fits, so int_zt^1 D(z) dz is the probability that the leading hadron
    carries more than zt; E_h >= 80 GeV of a <= 180 GeV muon needs z > 0.44, so only
    z >= Z_MIN = 0.4 is sampled and its probability enters the per-MOT rate.
    """
    grid = np.linspace(Z_MIN, 1.0, 4001)
    tail = _frag_integral(grid)  # decreasing from P(z >= Z_MIN) to 0
    cdf = 1.0 - tail / tail[0]
    return np.interp(rng.random(n), cdf, grid)


def leading_hadron_probability(cfg: Config, *, n_draws: int = 2_000_000, seed: int = 0) -> float:
    """P(mu N -> mu h X with E_h >= 80 GeV in the ECAL) per muon of the beam core (MC integral)."""
    rng = np.random.default_rng(seed)
    e = cfg.beam.energy_gev * (1 + cfg.beam.momentum_spread_rel * rng.standard_normal(n_draws))
    vc = float(np.clip(E_MIN_GEV / cfg.beam.energy_gev / 1.3, ecal.V_CUT, 0.999))
    v = ecal.sample_v("nucl", n_draws, rng, v_cut=vc)
    z = sample_z(n_draws, rng)
    ok = v * z * e >= E_MIN_GEV
    lam = ecal.lambda_catastrophic_cm2_g("nucl", cfg.beam.energy_gev, v_cut=vc)
    core = 1.0 - cfg.beam.halo_fraction
    p_z = leading_fraction_probability()
    return float(core * lam * detector.ECAL_DEPTH_G_CM2 * p_z * ok.mean())


def _sample_transfers(
    cfg: Config, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Muon energy, photonuclear v and hadron fraction z of n events with E_h >= 80 GeV."""
    b = cfg.beam
    e_list, v_list, z_list = [], [], []
    got = 0
    while got < n:
        m = 3 * (n - got) + 64
        e = b.energy_gev * (1 + b.momentum_spread_rel * rng.standard_normal(m))
        vmin = E_MIN_GEV / b.energy_gev / 1.3
        v = ecal.sample_v("nucl", m, rng, v_cut=float(np.clip(vmin, ecal.V_CUT, 0.999)))
        z = sample_z(m, rng)
        ok = v * z * e >= E_MIN_GEV
        e_list.append(e[ok])
        v_list.append(v[ok])
        z_list.append(z[ok])
        got += int(ok.sum())
    return np.concatenate(e_list)[:n], np.concatenate(v_list)[:n], np.concatenate(z_list)[:n]


def _hadron_showers(
    cfg: Config, rng: np.random.Generator, e_h: np.ndarray, rem_lambda: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Deposits (n, 5: rest of the ECAL, HCAL modules 1-4) and visibility depth of the showers.

    ``hadron_shower`` takes common slab edges, so the events are grouped by the remaining
    ECAL depth (0.01 lambda). The visibility threshold is the shower energy that still
    leaves the HCAL deposit inside the MIP window of cut (iv).
    """
    hcal = cfg.detector.hcal
    mod = hcal.module_lambda
    thr = max(cfg.selection.hcal_mip_window_gev[1] - hcal.mip_gev, 0.1)
    dep = np.zeros((len(e_h), 5))
    t_end = np.zeros(len(e_h))
    for lo in np.unique(np.round(rem_lambda, 2)):
        k = np.nonzero(np.round(rem_lambda, 2) == lo)[0]
        d, te = calorimeters.hadron_shower(
            e_h[k],
            rng,
            boundaries_lambda=np.array([0.0, lo] + [lo + j * mod for j in range(1, 5)]),
            resolution=hcal.resolution,
            visible_threshold_gev=thr,
        )
        dep[k] = d
        t_end[k] = te - lo
    return dep, t_end


def generate_leading_hadrons(
    cfg: Config, rng: np.random.Generator, n: int
) -> dict[str, np.ndarray]:
    """One chunk of the ``leading_hadrons`` sample: n events with E_h >= 80 GeV.

    The hadron is charged with probability 2/3. Its shower starts after an exponential
    path (lambda_h = 1.2 lambda_I) and follows :func:`bkg.sim.calorimeters.hadron_shower`
    through the remaining ECAL and four HCAL modules of 7.5 lambda_I (it goes through the
    VHCAL hole). ``depth_lambda`` is the depth behind the ECAL at which the shower has
    deposited more than the MIP window of cut (iv) leaves room for (upper edge minus the
    muon MIP): n modules shorter than it are punched through.
    """
    b = cfg.beam
    e_mu, v, z = _sample_transfers(cfg, rng, n)
    inc = beam.incoming_beam(cfg, rng, n)
    inc["p"] = e_mu
    inc["x"] = b.spot_sigma_x_cm * rng.standard_normal(n)
    inc["y"] = b.spot_sigma_y_cm * rng.standard_normal(n)
    depth1 = rng.random(n) * detector.ECAL_DEPTH_G_CM2
    pass1 = detector.muon_through_ecal(cfg, rng, e_mu, depth_g_cm2=depth1)
    e_at = pass1["e_out"]
    nu = v * e_at
    e_h = z * nu
    e_after = e_at - nu
    pass2 = detector.muon_through_ecal(
        cfg, rng, np.maximum(e_after, 0.2), depth_g_cm2=detector.ECAL_DEPTH_G_CM2 - depth1
    )
    rem_lambda = (detector.ECAL_DEPTH_G_CM2 - depth1) / 199.6
    dep, t_end = _hadron_showers(cfg, rng, e_h, rem_lambda)
    rest_vis = calorimeters.ecal_visible(
        detector.ECAL_HAD_VISIBLE * (nu - e_h), rng, stochastic=0.3, constant=0.02
    )
    e_ecal = pass1["e_ecal"] + pass2["e_ecal"] + detector.ECAL_HAD_VISIBLE * dep[:, 0] + rest_vis
    out = detector.respond(
        cfg,
        rng,
        p_in_true=e_mu,
        x_cm=inc["x"],
        y_cm=inc["y"],
        tx_out=inc["tx"] + pass1["tx_ms"] + pass2["tx_ms"],
        ty_out=inc["ty"] + pass1["ty_ms"] + pass2["ty_ms"],
        p_out_true=np.where(e_after > 0.2, pass2["e_out"], 0.0),
        e_ecal=e_ecal,
        e_leak_em=pass2["e_leak_em"],
        e_leak_had=pass2["e_leak_had"],
        process=np.full(n, 3, dtype=np.int8),
        e_transfer=nu,
    )
    charged = rng.random(n) < 2.0 / 3.0
    out["e_hcal1"] = out["e_hcal1"] + dep[:, 1]
    out["e_hcal2"] = out["e_hcal2"] + dep[:, 2]
    out.update(
        e_hadron=e_h,
        hadron_charged=charged,
        e_hcal3=dep[:, 3],
        e_hcal4=dep[:, 4],
        depth_lambda=np.maximum(t_end, 0.0),
    )
    return out
