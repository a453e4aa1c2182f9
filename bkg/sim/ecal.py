"""Muon passage through the lead ECAL (active target): energy loss and its truth.

Model (DESIGN.md, "Muon energy loss in lead"): -dE/dX = a(E) + b(E) E with
X in g/cm2. Ionisation is continuous with Landau-like fluctuations (a
Moyal-distributed deposit scaled to the Bethe mean). Radiative losses are
split into soft losses (v < ``V_CUT``, continuous) and catastrophic
interactions (v >= ``V_CUT``) whose number per muon is Poisson with the
integrated cross section; only the muons that have one are treated further.
Each process p has an energy-weighted spectrum v dsigma/dv = b_p f_p(v) with a
simplified, documented shape f_p normalised to int_0^1 f_p dv = 1:

* bremsstrahlung (Kelner-Kokoulin-Petrukhin): f ~ 4/3 (1 - v) + v^2 (the
  complete-screening shape),
* e+e- pair production (Kokoulin-Petrukhin): f ~ (1 - v)/v on [v_min, 1]
  with v_min = 4 m_e / E, i.e. dN/dv ~ 1/v^2 (mostly soft),
* photonuclear (Borog-Petrukhin): f ~ 1 - v + v^2/2.

b_p(160 GeV) for lead from Groom, Mokhov, Striganov, ADNDT 78 (2001) 183
(Pb: b_brems : b_pair : b_nucl about 0.38 : 0.56 : 0.06 of 14e-6 cm2/g),
with a slow (E/160 GeV)^0.06 rise.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "B_PB_160_CM2_G",
    "LEAD_X0_G_CM2",
    "PROCESS",
    "V_CUT",
    "b_radiative_cm2_g",
    "dedx_ionisation_gev_cm2_g",
    "pass_ecal",
    "sample_v",
]

M_MU = 0.1056583755
M_E = 0.00051099895
LEAD_X0_G_CM2 = 6.37
LEAD_Z_OVER_A = 82.0 / 207.2
LEAD_I_GEV = 823e-9
V_CUT = 1e-3
B_PB_160_CM2_G = {"brems": 0.38 * 14e-6, "pair": 0.56 * 14e-6, "nucl": 0.06 * 14e-6}
PROCESS = {"brems": 1, "pair": 2, "nucl": 3}


def dedx_ionisation_gev_cm2_g(e_gev: np.ndarray | float) -> np.ndarray:
    """Mean ionisation loss of a muon in lead, Bethe with a density-effect cap (GeV cm2/g).

    Args:
        e_gev: muon energy (GeV).
    """
    e = np.asarray(e_gev, dtype=float)
    gamma = e / M_MU
    bg2 = np.maximum(gamma * gamma - 1.0, 1e-12)
    beta2 = bg2 / (gamma * gamma)
    tmax = 2 * M_E * bg2 / (1 + 2 * gamma * M_E / M_MU + (M_E / M_MU) ** 2)
    k = 0.307075e-3  # GeV cm2/mol
    log_term = 0.5 * np.log(2 * M_E * bg2 * tmax / LEAD_I_GEV**2)
    # Sternheimer density effect for lead (x0=0.3776, x1=3.8073, C=6.2018, a=0.0936, k=3.1608)
    xx = 0.5 * np.log10(bg2)
    delta = np.where(
        xx > 3.8073,
        2 * np.log(10) * xx - 6.2018,
        np.where(
            xx > 0.3776,
            2 * np.log(10) * xx - 6.2018 + 0.0936 * np.clip(3.8073 - xx, 0.0, None) ** 3.1608,
            0.0,
        ),
    )
    return k * LEAD_Z_OVER_A / beta2 * (log_term - beta2 - 0.5 * delta + tmax**2 / (8 * e * e))


_LOG_E_GRID = np.linspace(np.log(0.2), np.log(1000.0), 400)


def b_radiative_cm2_g(e_gev: np.ndarray | float, *, process: str | None = None) -> np.ndarray:
    """Radiative loss coefficient b(E) of a muon in lead (cm2/g), total or one process."""
    e = np.asarray(e_gev, dtype=float)
    scale = (np.maximum(e, 1.0) / 160.0) ** 0.06
    if process is None:
        return sum(B_PB_160_CM2_G.values()) * scale
    return B_PB_160_CM2_G[process] * scale


_DEDX_GRID = dedx_ionisation_gev_cm2_g(np.exp(_LOG_E_GRID))  # tabulated Bethe, for speed


# Shape integrals: F_p = int_{v_lo}^1 f_p dv and N_p(v_cut) = int_{v_cut}^1 f_p/v dv.
def _norm(process: str, v_lo: float) -> float:
    if process == "brems":
        return 1.0
    if process == "pair":
        return -np.log(v_lo) - (1 - v_lo)
    return 1.0 - 0.5 + 1.0 / 6.0


def _count_integral(process: str, vc: float) -> float:
    if process == "brems":
        return 4 / 3 * (-np.log(vc)) - 4 / 3 * (1 - vc) + 0.5 * (1 - vc**2)
    if process == "pair":
        return (1 / vc - 1) + np.log(vc)
    return -np.log(vc) - (1 - vc) + 0.25 * (1 - vc**2)


def lambda_catastrophic_cm2_g(process: str, e_gev: float, *, v_cut: float = V_CUT) -> float:
    """Number of interactions with v >= v_cut per g/cm2 for one process (cm2/g)."""
    v_lo = 4 * M_E / e_gev if process == "pair" else 0.0
    vc = max(v_cut, v_lo)
    return (
        float(b_radiative_cm2_g(e_gev, process=process))
        * _count_integral(process, vc)
        / _norm(process, max(v_lo, 1e-9))
    )


def soft_fraction(process: str, e_gev: float, *, v_cut: float = V_CUT) -> float:
    """Fraction of b_p carried by interactions with v < v_cut (treated as continuous)."""
    v_lo = 4 * M_E / e_gev if process == "pair" else 0.0
    vc = max(v_cut, v_lo)
    if process == "brems":
        soft = 4 / 3 * vc - 2 / 3 * vc**2 + vc**3 / 3
    elif process == "pair":
        soft = -np.log(v_lo) + np.log(vc) - (vc - v_lo) if vc > v_lo else 0.0
        return float(soft / _norm(process, v_lo))
    else:
        soft = vc - vc**2 / 2 + vc**3 / 6
    return float(soft / _norm(process, 1e-9))


def sample_v(process: str, n: int, rng: np.random.Generator, *, v_cut: float = V_CUT) -> np.ndarray:
    """Draw n energy fractions v >= v_cut from dN/dv = f_p(v)/v (accept-reject, vectorised)."""
    out = np.empty(0)
    while out.size < n:
        m = max(2 * (n - out.size), 16)
        if process == "pair":
            # dN/dv ~ (1-v)/v^2: propose from 1/v^2 on [v_cut, 1], accept with (1 - v)
            u = rng.random(m)
            v = 1.0 / (1.0 / v_cut - u * (1.0 / v_cut - 1.0))
            acc = rng.random(m) < (1 - v)
        else:
            # propose from 1/v (log-uniform), accept with f(v)/f_max
            v = v_cut ** (1 - rng.random(m))
            f = 4 / 3 * (1 - v) + v * v if process == "brems" else 1 - v + 0.5 * v * v
            acc = rng.random(m) * (4 / 3 if process == "brems" else 1.0) < f
        out = np.concatenate([out, v[acc]])
    return out[:n]


def pass_ecal(
    e_in: np.ndarray,
    rng: np.random.Generator,
    *,
    depth_g_cm2: np.ndarray | float,
    mip_visible_gev: float = 0.5,
    total_depth_g_cm2: float = 40 * LEAD_X0_G_CM2,
) -> dict[str, np.ndarray]:
    """Propagate muons of energy e_in through ``depth_g_cm2`` of lead.

    Args:
        e_in: muon energies at entry (GeV), shape (n,).
        rng: random generator.
        depth_g_cm2: traversed thickness per muon (g/cm2), scalar or (n,).
        mip_visible_gev: mean visible ECAL signal of a 160 GeV muon without catastrophic loss (GeV).
        total_depth_g_cm2: full ECAL thickness (for the MIP calibration).

    Returns:
        dict with ``e_out`` (GeV), ``e_dep_ion`` (visible ionisation, GeV),
        ``e_dep_em`` (energy put into EM showers, GeV), ``e_had`` (energy given to
        the hadronic system by photonuclear interactions, GeV), ``process``
        (int8: 0 none, else the largest catastrophic interaction),
        ``e_transfer`` (GeV), ``depth_int`` (g/cm2 of the largest interaction).
    """
    n = e_in.size
    e_in = np.asarray(e_in, dtype=np.float64)
    depth = np.broadcast_to(np.asarray(depth_g_cm2, dtype=np.float64), (n,))
    # continuous part, evaluated at the entry energy (the loss is ~1%)
    a = np.interp(np.log(np.maximum(e_in, 0.2)), _LOG_E_GRID, _DEDX_GRID)
    mean_ion = a * depth
    # Landau-like fluctuation: Moyal variate with a width ~ 8% of the mean for 255 g/cm2
    xi = 0.0768e-3 * LEAD_Z_OVER_A * depth  # GeV, Landau width parameter (beta ~ 1)
    g = np.abs(rng.standard_normal(n).astype(np.float32))
    moyal = -2.0 * np.log(np.maximum(g, 1e-6)) - 0.0  # Moyal(0,1) via |N|: lambda = -2 ln|N|
    moyal = np.minimum(moyal, 40.0)
    ion = np.maximum(mean_ion + xi * (moyal - 1.27), 0.2 * mean_ion)
    soft = np.zeros(n)
    for p in B_PB_160_CM2_G:
        soft += soft_fraction(p, 160.0) * b_radiative_cm2_g(e_in, process=p) * e_in * depth
    e_out = e_in - ion - soft
    e_em = soft.copy()
    e_had = np.zeros(n)
    process = np.zeros(n, dtype=np.int8)
    e_transfer = np.zeros(n)
    depth_int = np.full(n, -1.0)
    emax = float(np.max(e_in)) if n else 160.0
    uniform_depth = bool(n) and bool(np.all(depth == depth[0]))
    for p, pid in PROCESS.items():
        lam = lambda_catastrophic_cm2_g(p, max(emax, 1.0))  # upper bound, thinned below
        if uniform_depth:
            # sparse: Poisson total over the chunk, muons drawn uniformly (same law, far fewer draws)
            idx = np.sort(rng.integers(0, n, size=int(rng.poisson(lam * depth[0] * n))))
        else:
            k = rng.poisson(lam * depth)
            idx = np.repeat(np.nonzero(k)[0], k[k > 0])
        if idx.size == 0:
            continue
        keep = rng.random(idx.size) < (
            b_radiative_cm2_g(e_in[idx], process=p) / b_radiative_cm2_g(emax, process=p)
        )
        idx = idx[keep]
        v = sample_v(p, idx.size, rng)
        z = rng.random(idx.size) * depth[idx]
        loss = v * np.maximum(e_out[idx], 0.0)
        np.subtract.at(e_out, idx, loss)
        if p == "nucl":
            np.add.at(e_had, idx, loss)
        else:
            np.add.at(e_em, idx, loss)
        big = loss > e_transfer[idx]
        process[idx[big]] = pid
        e_transfer[idx[big]] = loss[big]
        depth_int[idx[big]] = z[big]
    e_out = np.maximum(e_out, 0.0)
    # calibration: ionisation + soft radiative losses of a 160 GeV muon give mip_visible_gev in full depth
    full_ion = dedx_ionisation_gev_cm2_g(160.0) * total_depth_g_cm2
    full_soft = sum(
        soft_fraction(p, 160.0) * float(b_radiative_cm2_g(160.0, process=p)) for p in B_PB_160_CM2_G
    )
    ion_scale = (
        max(mip_visible_gev - full_soft * 160.0 * total_depth_g_cm2, 0.1 * mip_visible_gev)
        / full_ion
    )
    return {
        "e_out": e_out,
        "e_dep_ion": ion * ion_scale,
        "e_dep_em": e_em,
        "e_had": e_had,
        "process": process,
        "e_transfer": e_transfer,
        "depth_int": depth_int,
    }
