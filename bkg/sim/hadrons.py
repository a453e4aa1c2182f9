"""Hadron admixture of the beam: pi-, K-, K_L decaying in flight before the target.

Masses and lifetimes from the ``particle`` package (PDG). Branching ratios
(PDG 2022) of the channels with a muon: pi- -> mu- nu (0.99988),
K- -> mu- nu (0.6356), K- -> pi0 mu- nu (K_mu3, 0.0335),
K_L -> pi+- mu-+ nu (K_mu3, 0.2704; half of them give a mu-). Two-body decays
use exact kinematics (isotropic in the rest frame); K_mu3 uses flat
three-body phase space (unit matrix element: the stated approximation).
Decays without a muon and undecayed hadrons enter the ECAL as a hadronic
shower of the full energy (charged daughters and neutral pions together).
The decay point is exponential with decay length gamma beta c tau over
``decay_length_m``; an absorber of L interaction lengths scales the
admixture by e^-L (recorded in the manifest norm).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import special

from bkg.config import Config
from bkg.sim import calorimeters, detector, tracking

__all__ = ["SPECIES", "absorber_survival", "generate_hadrons", "hadron_properties", "species_norms"]

SPECIES = (-211, -321, 130)
M_MU = 0.1056583755
M_PI0 = 0.1349768
M_PI = 0.13957039
C_M_PER_NS = 0.299792458
#: ``decay_channel`` branch values: 0 no decay muon, 1 two-body h -> mu nu, 2 K_mu3.
DECAY_CHANNEL_ID = {"mu2": 1, "mu3": 2}
# (channel, branching ratio) for each species; "mu2" two-body, "mu3" K_mu3
CHANNELS = {
    -211: (("mu2", 0.99988),),
    -321: (("mu2", 0.6356), ("mu3", 0.0335)),
    130: (("mu3", 0.2704 / 2),),
}


@cache
def hadron_properties(pdg: int) -> tuple[float, float]:
    """(mass in GeV, c tau in m) of a hadron from the ``particle`` package."""
    from particle import Particle

    p = Particle.from_pdgid(pdg)
    assert p.mass is not None and p.lifetime is not None
    return float(p.mass) * 1e-3, float(p.lifetime) * C_M_PER_NS


def absorber_survival(lambda_i: float) -> float:
    """Fraction of hadrons that cross ``lambda_i`` interaction lengths without interacting."""
    return float(np.exp(-lambda_i))


def species_norms(cfg: Config) -> dict[int, float]:
    """Per-MOT rate of each hadron species at the end of the BMS (after the absorber)."""
    b = cfg.beam
    surv = absorber_survival(b.absorber_lambda)
    pi = b.pi_per_mu * surv
    k = pi * b.k_per_pi
    return {-211: pi, -321: k, 130: k * b.k_long_per_k}


def _two_body_star(m_parent: float) -> tuple[float, float]:
    e = (m_parent**2 + M_MU**2) / (2 * m_parent)
    return e, np.sqrt(e * e - M_MU**2)


def _kmu3_star(
    m_parent: float, m_pi: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame muon (E*, p*) in K -> pi mu nu with flat Dalitz density (accept-reject)."""
    e_mu_max = (m_parent**2 + M_MU**2 - m_pi**2) / (2 * m_parent)
    e_pi_max = (m_parent**2 + m_pi**2 - M_MU**2) / (2 * m_parent)
    out = np.empty(0)
    while out.size < n:
        m = 3 * (n - out.size) + 16
        e_mu = M_MU + (e_mu_max - M_MU) * rng.random(m)
        e_pi = m_pi + (e_pi_max - m_pi) * rng.random(m)
        e_nu = m_parent - e_mu - e_pi
        p_mu = np.sqrt(np.maximum(e_mu**2 - M_MU**2, 0))
        p_pi = np.sqrt(np.maximum(e_pi**2 - m_pi**2, 0))
        ok = (e_nu >= 0) & (np.abs(p_mu - p_pi) <= e_nu) & (e_nu <= p_mu + p_pi)
        out = np.concatenate([out, e_mu[ok]])
    e = out[:n]
    return e, np.sqrt(np.maximum(e * e - M_MU**2, 0))


def decay_muons(
    pdg: int, e_h: np.ndarray, rng: np.random.Generator, *, length_m: float
) -> dict[str, np.ndarray]:
    """Decay in flight over ``length_m``: decayed flag, z (m), muon energy (GeV, 0: none), muon angle (rad)."""
    m, ctau = hadron_properties(pdg)
    n = e_h.size
    p = np.sqrt(np.maximum(e_h**2 - m * m, 1e-9))
    lam = p / m * ctau
    z = rng.exponential(lam)
    decayed = z < length_m
    e_mu = np.zeros(n)
    theta = np.zeros(n)
    chan = np.zeros(n, dtype=np.int8)
    k = np.nonzero(decayed)[0]
    if k.size:
        u = rng.random(k.size)
        e_star = np.zeros(k.size)
        p_star = np.zeros(k.size)
        has = np.zeros(k.size, dtype=bool)
        chan_k = np.zeros(k.size, dtype=np.int8)
        cum = 0.0
        for channel, br in CHANNELS[pdg]:
            sel = (u >= cum) & (u < cum + br)
            cum += br
            if not sel.any():
                continue
            chan_k[sel] = DECAY_CHANNEL_ID[channel]
            if channel == "mu2":
                es, ps = _two_body_star(m)
                e_star[sel], p_star[sel] = es, ps
            else:
                m_pi = M_PI0 if pdg == -321 else M_PI
                e_star[sel], p_star[sel] = _kmu3_star(m, m_pi, int(sel.sum()), rng)
            has |= sel
        cos = 2 * rng.random(k.size) - 1
        gamma = e_h[k] / m
        bg = p[k] / m
        e_lab = gamma * e_star + bg * p_star * cos
        pt = p_star * np.sqrt(1 - cos * cos)
        pl = bg * e_star + gamma * p_star * cos
        e_mu[k] = np.where(has, e_lab, 0.0)
        theta[k] = np.where(has, np.arctan2(pt, np.maximum(pl, 1e-9)), 0.0)
        chan[k] = chan_k
    return {
        "decayed": decayed, "z_m": np.where(decayed, z, -1.0), "e_mu": e_mu, "theta": theta,
        "channel": chan,
    }  # fmt: skip


def _hadron_in_ecal(e_h: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(energy deposited in the ECAL, energy leaking out) of a hadron shower starting in the ECAL (GeV)."""
    t0 = rng.exponential(1.2, e_h.size)
    a = 1.0 + 0.25 * np.log(np.maximum(e_h, 1.0))
    contained = np.where(
        t0 < detector.ECAL_LAMBDA,
        special.gammainc(a, np.clip(detector.ECAL_LAMBDA - t0, 0, None)),
        0.0,
    )
    return e_h * contained, e_h * (1 - contained)


def generate_hadrons(cfg: Config, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One chunk of the ``hadrons`` sample: n hadrons, species in equal thirds (weights in the manifest)."""
    b = cfg.beam
    pdg = np.array(SPECIES, dtype=np.int32)[rng.integers(0, len(SPECIES), n)]
    e_h = b.energy_gev * (1.0 + b.momentum_spread_rel * rng.standard_normal(n))
    x = b.spot_sigma_x_cm * rng.standard_normal(n)
    y = b.spot_sigma_y_cm * rng.standard_normal(n)
    tx = 1e-3 * b.divergence_x_mrad * rng.standard_normal(n)
    ty = 1e-3 * b.divergence_y_mrad * rng.standard_normal(n)
    decayed = np.zeros(n, dtype=bool)
    channel = np.zeros(n, dtype=np.int8)
    z = np.full(n, -1.0)
    e_mu = np.zeros(n)
    theta = np.zeros(n)
    for s in SPECIES:
        k = np.nonzero(pdg == s)[0]
        d = decay_muons(s, e_h[k], rng, length_m=b.decay_length_m)
        decayed[k], z[k], e_mu[k], theta[k] = d["decayed"], d["z_m"], d["e_mu"], d["theta"]
        channel[k] = d["channel"]
    # decay muon: displaced at the target by its angle over the remaining path
    phi = 2 * np.pi * rng.random(n)
    drift_cm = 100.0 * np.where(decayed, b.decay_length_m - z, 0.0)
    x = x + drift_cm * theta * np.cos(phi)
    y = y + drift_cm * theta * np.sin(phi)
    tx = tx + theta * np.cos(phi)
    ty = ty + theta * np.sin(phi)
    is_mu = e_mu > 0
    p_in = np.where(is_mu, e_mu, e_h)
    ec = detector.muon_through_ecal(cfg, rng, np.where(is_mu, p_in, 1.0))
    had_dep, had_leak = _hadron_in_ecal(e_h, rng)
    had_vis = calorimeters.ecal_visible(
        detector.ECAL_HAD_VISIBLE * had_dep, rng, stochastic=0.3, constant=0.02
    )
    out = detector.respond(
        cfg,
        rng,
        p_in_true=p_in,
        x_cm=x,
        y_cm=y,
        tx_out=tx + ec["tx_ms"],
        ty_out=ty + ec["ty_ms"],
        p_out_true=np.where(is_mu, ec["e_out"], 0.0),
        e_ecal=np.where(is_mu, ec["e_ecal"], had_vis),
        e_leak_em=np.where(is_mu, ec["e_leak_em"], 0.0),
        e_leak_had=np.where(is_mu, ec["e_leak_had"], had_leak),
        process=np.where(is_mu, np.where(ec["process"] > 0, ec["process"], 8), 0).astype(np.int8),
        e_transfer=np.where(is_mu, ec["e_transfer"], 0.0),
    )
    # the BMS measured the hadron upstream of the decay region (misidentification through momentum)
    out["p_in_rec"] = tracking.measure_p_in(
        e_h, rng, resolution_rel=cfg.detector.spectrometers.ms1.resolution_rel
    )
    out["p_in_rec"] = np.where(
        pdg == 130, out["p_in_rec"] * 0.0, out["p_in_rec"]
    )  # K_L: no BMS track
    # neutral K_L that did not decay leaves no signal in S0/S1
    neutral = (pdg == 130) & ~is_mu
    out["s0"] = out["s0"] & ~neutral
    out["s1"] = out["s1"] & ~neutral
    out.update(
        pdg=pdg, e_hadron=e_h, decayed=decayed, z_decay_m=z, e_mu_decay=e_mu, decay_channel=channel
    )
    return out
