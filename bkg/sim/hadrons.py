"""Hadron admixture of the beam: pi-, K-, K_L decaying in flight before the target.

Masses and lifetimes from the ``particle`` package (PDG, :func:`hadron_properties`),
branching ratios of the channels with a muon in :data:`CHANNELS`; the decays (their
kinematics and the decay point) are :func:`decay_muons`, the rate of each species
(absorber included) :func:`species_norms`. Entry points: :func:`generate_hadrons` (the
sample: what each hadron leaves in the detector), :func:`region_acceptance`.
Physics and tests: docs/physics-simulation.md.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from scipy import special

from bkg.config import Config
from bkg.sim import calorimeters, detector, tracking

__all__ = [
    "SPECIES",
    "absorber_survival",
    "decay_probability",
    "generate_hadrons",
    "hadron_properties",
    "muon_region_gev",
    "region_acceptance",
    "species_norms",
]

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


def muon_branching(pdg: int) -> float:
    """Sum of the branching ratios of the channels with a mu- (:data:`CHANNELS`).

    PDG 2022: pi- -> mu- nu (0.99988), K- -> mu- nu (0.6356), K- -> pi0 mu- nu (K_mu3,
    0.0335), K_L -> pi+- mu-+ nu (K_mu3, 0.2704; half of them give a mu-).
    """
    return float(sum(br for _, br in CHANNELS[pdg]))


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
    """Per-MOT rate of each hadron species at the end of the BMS (after the absorber).

    An absorber of L interaction lengths scales the admixture by e^-L (recorded in the
    manifest norm).
    """
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rest-frame K -> pi mu nu with flat Dalitz density (accept-reject).

    Returns:
        (E*_mu, p*_mu, E*_pi, cos of the mu-pi opening angle), the angle from momentum
        conservation: p_nu^2 = p_mu^2 + p_pi^2 + 2 p_mu p_pi cos.
    """
    e_mu_max = (m_parent**2 + M_MU**2 - m_pi**2) / (2 * m_parent)
    e_pi_max = (m_parent**2 + m_pi**2 - M_MU**2) / (2 * m_parent)
    mus, pis = np.empty(0), np.empty(0)
    while mus.size < n:
        m = 3 * (n - mus.size) + 16
        e_mu = M_MU + (e_mu_max - M_MU) * rng.random(m)
        e_pi = m_pi + (e_pi_max - m_pi) * rng.random(m)
        e_nu = m_parent - e_mu - e_pi
        p_mu = np.sqrt(np.maximum(e_mu**2 - M_MU**2, 0))
        p_pi = np.sqrt(np.maximum(e_pi**2 - m_pi**2, 0))
        ok = (e_nu >= 0) & (np.abs(p_mu - p_pi) <= e_nu) & (e_nu <= p_mu + p_pi)
        mus = np.concatenate([mus, e_mu[ok]])
        pis = np.concatenate([pis, e_pi[ok]])
    e, e_pi = mus[:n], pis[:n]
    p, p_pi = np.sqrt(np.maximum(e * e - M_MU**2, 0)), np.sqrt(np.maximum(e_pi**2 - m_pi**2, 0))
    e_nu = m_parent - e - e_pi
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip((e_nu**2 - p * p - p_pi**2) / (2 * p * p_pi), -1.0, 1.0)
    return e, p, e_pi, np.nan_to_num(cos)


def decay_probability(pdg: int, e_h: np.ndarray | float, length_m: float) -> np.ndarray:
    """Probability that a hadron of energy e_h decays within ``length_m``: 1 - exp(-L / (beta gamma c tau))."""
    m, ctau = hadron_properties(pdg)
    p = np.sqrt(np.maximum(np.asarray(e_h, dtype=float) ** 2 - m * m, 1e-9))
    return -np.expm1(-length_m / (p / m * ctau))


def decay_muons(
    pdg: int, e_h: np.ndarray, rng: np.random.Generator, *, length_m: float, force: bool = False
) -> dict[str, np.ndarray]:
    """Decay in flight over ``length_m``: decayed flag, z (m), muon energy (GeV, 0: none), muon angle (rad).

    Two-body decays use exact kinematics (isotropic in the rest frame); K_mu3 uses flat
    three-body phase space (unit matrix element: the stated approximation). The decay
    point is exponential with decay length gamma beta c tau over ``length_m`` (the
    sample: ``beam.decay_length_m``).

    With ``force`` every hadron decays within ``length_m`` (z from the truncated
    exponential) into one of its channels with a muon (chosen by their branching
    ratios): the conditional law, whose weight is decay probability x sum of BR.
    """
    m, ctau = hadron_properties(pdg)
    n = e_h.size
    p = np.sqrt(np.maximum(e_h**2 - m * m, 1e-9))
    lam = p / m * ctau
    if force:
        z = -lam * np.log1p(rng.random(n) * np.expm1(-length_m / lam))
    else:
        z = rng.exponential(lam)
    decayed = z < length_m
    e_mu = np.zeros(n)
    theta = np.zeros(n)
    chan = np.zeros(n, dtype=np.int8)
    pi_e, pi_theta, pi_dphi = np.zeros(n), np.zeros(n), np.zeros(n)
    k = np.nonzero(decayed)[0]
    if k.size:
        u = rng.random(k.size) * (muon_branching(pdg) if force else 1.0)
        e_star = np.zeros(k.size)
        p_star = np.zeros(k.size)
        has = np.zeros(k.size, dtype=bool)
        chan_k = np.zeros(k.size, dtype=np.int8)
        three = np.zeros(k.size, dtype=bool)
        e_pi_star, cos_mu_pi = np.zeros(k.size), np.zeros(k.size)
        m_pi = M_PI0 if pdg == -321 else M_PI
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
                e_star[sel], p_star[sel], e_pi_star[sel], cos_mu_pi[sel] = _kmu3_star(
                    m, m_pi, int(sel.sum()), rng
                )
                three |= sel
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
        j = np.flatnonzero(three)
        if j.size:  # the K_mu3 pion: it enters the calorimeters beside the muon
            e_pi, th_pi, dphi = _kmu3_pion_lab(
                cos[j], e_pi_star[j], cos_mu_pi[j], m_pi, gamma[j], bg[j], rng
            )
            pi_e[k[j]], pi_theta[k[j]], pi_dphi[k[j]] = e_pi, th_pi, dphi
    return {
        "decayed": decayed, "z_m": np.where(decayed, z, -1.0), "e_mu": e_mu, "theta": theta,
        "channel": chan, "pi_e": pi_e, "pi_theta": pi_theta, "pi_dphi": pi_dphi,
    }  # fmt: skip


def _kmu3_pion_lab(
    cos_mu: np.ndarray,
    e_pi_star: np.ndarray,
    cos_mu_pi: np.ndarray,
    m_pi: float,
    gamma: np.ndarray,
    bg: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lab energy, polar angle and azimuth relative to the muon's of the K_mu3 pion.

    In the rest frame the muon points along polar angle theta*_mu (azimuth 0) and the pion
    at the opening angle from it, at a uniform azimuth around it; both are boosted along
    the kaon's direction.
    """
    p_pi = np.sqrt(np.maximum(e_pi_star**2 - m_pi**2, 0.0))
    sin_mu = np.sqrt(np.maximum(1 - cos_mu**2, 0.0))
    sin_mp = np.sqrt(np.maximum(1 - cos_mu_pi**2, 0.0))
    psi = 2 * np.pi * rng.random(cos_mu.size)
    # muon along (sin_mu, 0, cos_mu); e1 = (cos_mu, 0, -sin_mu) and e2 = (0, 1, 0) span its normal
    px = p_pi * (cos_mu_pi * sin_mu + sin_mp * np.cos(psi) * cos_mu)
    py = p_pi * sin_mp * np.sin(psi)
    pz = p_pi * (cos_mu_pi * cos_mu - sin_mp * np.cos(psi) * sin_mu)
    e_lab = gamma * e_pi_star + bg * pz
    pz_lab = bg * e_pi_star + gamma * pz
    theta = np.arctan2(np.hypot(px, py), np.maximum(pz_lab, 1e-9))
    return e_lab, theta, np.arctan2(py, px)


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


def _hadron_visible_in_ecal(
    e_h: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(visible ECAL energy, energy leaking out) of a hadron showering in the ECAL (GeV).

    Decays without a muon and undecayed hadrons enter the ECAL as a hadronic shower of
    the full energy (charged daughters and neutral pions together); the K_mu3 pion goes
    on beside the muon (:func:`_kmu3_pion_deposits`).
    """
    dep, leak = _hadron_in_ecal(e_h, rng)
    visible = calorimeters.ecal_visible(
        detector.ECAL_HAD_VISIBLE * dep, rng, stochastic=0.3, constant=0.02
    )
    return visible, leak


def _kmu3_pion_deposits(
    cfg: Config,
    rng: np.random.Generator,
    pdg: np.ndarray,
    pi_e: np.ndarray,
    x_cm: np.ndarray,
    y_cm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(ECAL, VHCAL) visible energy of the K_mu3 pion, arriving at (x, y) in the target plane.

    On the ECAL's face it showers there: a pi0 (K-) as two photons, fully, with the ECAL's
    sampling resolution; a pi+- (K_L) hadronically, its visible part in the ECAL and the
    leak behind it in the VHCAL. Off the ECAL but on the VHCAL outside its hole, the VHCAL
    takes it (hadronic resolution); elsewhere it escapes. Arrays of the K_mu3 decays only
    (:func:`generate_hadrons` puts them back among the chunk's events).
    """
    det = cfg.detector
    half_x = det.ecal.cells[0] * det.ecal.cell_size_cm / 2
    half_y = det.ecal.cells[1] * det.ecal.cell_size_cm / 2
    on_ecal = (pi_e > 0) & (np.abs(x_cm) < half_x) & (np.abs(y_cm) < half_y)
    on_vhcal = (
        (pi_e > 0)
        & ~on_ecal
        & calorimeters.on_vhcal(x_cm, y_cm, hole_cm=det.vhcal.hole_cm, size_cm=det.vhcal.size_cm)
    )
    charged = pdg == 130
    em = calorimeters.ecal_visible(
        pi_e * (on_ecal & ~charged),
        rng,
        stochastic=det.ecal.sampling_resolution,
        constant=det.ecal.constant_term,
    )
    had, leak = _hadron_visible_in_ecal(np.where(on_ecal & charged, pi_e, 0.0), rng)
    vh_true = np.where(on_vhcal, pi_e, 0.0) + leak
    vh = np.maximum(
        vh_true + det.hcal.resolution * np.sqrt(vh_true) * rng.standard_normal(pi_e.size), 0.0
    )
    return (em + had).astype(np.float32), vh.astype(np.float32)


def _on_subset(k: np.ndarray, n: int, compute: Callable[[np.ndarray], Any]) -> Any:
    """``compute(k)`` for the events ``k`` of n, its arrays (a dict's or a tuple's) put back
    in arrays of n events, zero elsewhere, with their dtypes."""

    def full(a: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=a.dtype)
        out[k] = a
        return out

    got = compute(k)
    if isinstance(got, dict):
        return {key: full(v) for key, v in got.items() if isinstance(v, np.ndarray)}
    return tuple(full(v) for v in got)


def muon_region_gev(cfg: Config) -> float:
    """Largest decay-muon energy that can reach the signal box: E'_max + E_CAL,max.

    The box takes a measured E'_mu <= E'_max with at most E_CAL,max seen in the
    calorimeters, so a muon above E'_max + E_CAL,max gets in only through an invisible
    loss or a mismeasurement: the non-hermeticity and momentum-mismatch physics of the
    beam muons (<~1e-11 per muon), which a hadron admixture of 1e-6 makes negligible.
    """
    return float(cfg.signal_box.e_mu_out_max_gev + cfg.signal_box.e_cal_max_gev)


def _mu_below(
    pdg: int, e_h: np.ndarray, e_max: float, rest: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """P(E_mu <= e_max | E_h) of one channel: each rest-frame (E*, p*) boosted with an
    isotropic decay gives E_mu uniform in [gamma E* - beta gamma p*, gamma E* + beta gamma p*];
    ``rest`` = (E*, p*, weights summing to 1)."""
    m, _ = hadron_properties(pdg)
    es, ps, w = rest
    gamma = e_h[:, None] / m
    bg = np.sqrt(np.maximum(gamma * gamma - 1.0, 0.0))
    lo, hi = gamma * es - bg * ps, gamma * es + bg * ps
    return np.clip((e_max - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0) @ w


def _rest_frame_muon(
    m: float, channel: str, m_pi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E*, p*, weights) of the muon in the hadron's rest frame.

    Two-body: one line. K_mu3 with a flat Dalitz density: at fixed E*_mu the pion's
    energy spans p*_mu (1 - m_pi^2/m_23^2) (the pi-nu system of mass
    m_23^2 = M^2 + m_mu^2 - 2 M E*_mu, boosted), which is the E*_mu density; midpoints of
    400 bins.
    """
    if channel == "mu2":
        e2, p2 = _two_body_star(m)
        return np.array([e2]), np.array([p2]), np.array([1.0])
    e_hi = (m * m + M_MU**2 - m_pi**2) / (2 * m)
    edges = np.linspace(M_MU, e_hi, 401)
    es: np.ndarray = 0.5 * (edges[1:] + edges[:-1])
    ps = np.sqrt(np.maximum(es * es - M_MU**2, 0.0))
    m23 = m * m + M_MU**2 - 2 * m * es
    dens = ps * np.clip(1.0 - m_pi**2 / m23, 0.0, None)
    return es, ps, dens / dens.sum()


def region_acceptance(cfg: Config, pdg: int, *, e_mu_max_gev: float | None = None) -> float:
    """P(a hadron of species pdg decays before the target into a mu- of at most e_mu_max).

    Closed form over the beam's Gaussian momentum spectrum (a 1601-point grid over
    +-8 sigma): sum over channels of BR x P_decay(E) x P(E_mu <= e_mu_max | E), the
    two-body line or the K_mu3 rest-frame spectrum of :func:`_rest_frame_muon` boosted
    isotropically. ``e_mu_max_gev`` defaults to :func:`muon_region_gev`.
    """
    b = cfg.beam
    e_max = muon_region_gev(cfg) if e_mu_max_gev is None else float(e_mu_max_gev)
    m = hadron_properties(pdg)[0]
    sigma = b.energy_gev * b.momentum_spread_rel
    e = b.energy_gev + sigma * np.linspace(-8.0, 8.0, 1601)
    e = e[e > m * 1.001]
    g = np.exp(-0.5 * ((e - b.energy_gev) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    m_pi = M_PI0 if pdg == -321 else M_PI
    total = np.zeros(e.size)
    for channel, br in CHANNELS[pdg]:
        total += br * _mu_below(pdg, e, e_max, _rest_frame_muon(m, channel, m_pi))
    integrand = g * decay_probability(pdg, e, b.decay_length_m) * total
    return float(np.trapezoid(integrand, e))


def _region_decays(
    cfg: Config, rng: np.random.Generator, n: int, pdg: int, e_max: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n hadrons of species pdg from the beam spectrum, each decaying before the target into
    a mu- of at most e_max (forced decay and channel, accept-reject on E_mu)."""
    b = cfg.beam
    keep_e: list[np.ndarray] = []
    keep_d: list[dict[str, np.ndarray]] = []
    got = 0
    while got < n:
        m = 2 * (n - got) + 64
        e_h = b.energy_gev * (1.0 + b.momentum_spread_rel * rng.standard_normal(m))
        d = decay_muons(pdg, e_h, rng, length_m=b.decay_length_m, force=True)
        ok = d["e_mu"] <= e_max
        keep_e.append(e_h[ok])
        keep_d.append({key: val[ok] for key, val in d.items()})
        got += int(ok.sum())
    return np.concatenate(keep_e)[:n], {
        key: np.concatenate([d[key] for d in keep_d])[:n] for key in keep_d[0]
    }


def _species_decays(
    rng: np.random.Generator,
    pdg: np.ndarray,
    e_h: np.ndarray,
    length_m: float,
    region: int | None,
    forced: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The decays in flight of every hadron (:func:`decay_muons` per species; ``forced``
    for the species of ``region``), merged over species."""
    n = pdg.size
    out = {
        "decayed": np.zeros(n, dtype=bool),
        "channel": np.zeros(n, dtype=np.int8),
        "z_m": np.full(n, -1.0),
        **{k: np.zeros(n) for k in ("e_mu", "theta", "pi_e", "pi_theta", "pi_dphi")},
    }
    for s in SPECIES:
        k = np.nonzero(pdg == s)[0]
        d = forced if region == s else decay_muons(s, e_h[k], rng, length_m=length_m)
        for key, array in out.items():
            array[k] = d[key]
    return out


def generate_hadrons(
    cfg: Config, rng: np.random.Generator, n: int, *, region: int | None = None
) -> dict[str, np.ndarray]:
    """One chunk of the ``hadrons`` sample: n hadrons, species in equal thirds (weights in the manifest).

    With ``region`` = a pdg code: n hadrons of that species, every one decaying before
    the target into a mu- of at most :func:`muon_region_gev` (the only decays that can
    reach the signal box), for the acceptance of a species the sample cannot populate.
    Such events follow the true law up to the weight ``decay_weight`` = P_decay(E_h)
    (the decay was forced); the region's probability is :func:`region_acceptance`.
    """
    b = cfg.beam
    forced: dict[str, np.ndarray] = {}
    if region is None:
        pdg = np.array(SPECIES, dtype=np.int32)[rng.integers(0, len(SPECIES), n)]
        e_h = b.energy_gev * (1.0 + b.momentum_spread_rel * rng.standard_normal(n))
    else:
        pdg = np.full(n, region, dtype=np.int32)
        e_h, forced = _region_decays(cfg, rng, n, region, muon_region_gev(cfg))
    x = b.spot_sigma_x_cm * rng.standard_normal(n)
    y = b.spot_sigma_y_cm * rng.standard_normal(n)
    tx = 1e-3 * b.divergence_x_mrad * rng.standard_normal(n)
    ty = 1e-3 * b.divergence_y_mrad * rng.standard_normal(n)
    dec = _species_decays(rng, pdg, e_h, b.decay_length_m, region, forced)
    decayed, z, e_mu, theta = dec["decayed"], dec["z_m"], dec["e_mu"], dec["theta"]
    channel, pi_e, pi_theta, pi_dphi = dec["channel"], dec["pi_e"], dec["pi_theta"], dec["pi_dphi"]
    # decay muon: displaced at the target by its angle over the remaining path
    phi = 2 * np.pi * rng.random(n)
    drift_cm = 100.0 * np.where(decayed, b.decay_length_m - z, 0.0)
    x_pi = x + drift_cm * pi_theta * np.cos(phi + pi_dphi)
    y_pi = y + drift_cm * pi_theta * np.sin(phi + pi_dphi)
    x = x + drift_cm * theta * np.cos(phi)
    y = y + drift_cm * theta * np.sin(phi)
    tx = tx + theta * np.cos(phi)
    ty = ty + theta * np.sin(phi)
    is_mu = e_mu > 0
    p_in = np.where(is_mu, e_mu, e_h)
    # the ECAL passage of the decay muons only (1.4% of the hadrons at 36 m, 0.15% at 4 m):
    # an undecayed hadron showers, it takes no muon's energy loss or scattering
    ec = _on_subset(
        np.flatnonzero(is_mu), n, lambda k: detector.muon_through_ecal(cfg, rng, p_in[k])
    )
    had_vis, had_leak = _hadron_visible_in_ecal(e_h, rng)
    k_pi = np.flatnonzero(pi_e > 0)  # the K_mu3 decays
    pi_ecal, pi_vhcal = _on_subset(
        k_pi, n, lambda k: _kmu3_pion_deposits(cfg, rng, pdg[k], pi_e[k], x_pi[k], y_pi[k])
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
        e_ecal=np.where(is_mu, ec["e_ecal"] + pi_ecal, had_vis),
        e_leak_em=np.where(is_mu, ec["e_leak_em"], 0.0),
        e_leak_had=np.where(is_mu, ec["e_leak_had"], had_leak),
        process=np.where(is_mu, np.where(ec["process"] > 0, ec["process"], 8), 0).astype(np.int8),
        e_transfer=np.where(is_mu, ec["e_transfer"], 0.0),
    )
    out["e_vhcal"] = out["e_vhcal"] + pi_vhcal  # float32, as the branch
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
    if region is not None:
        out["decay_weight"] = decay_probability(region, e_h, b.decay_length_m)
    return out
