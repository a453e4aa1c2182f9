"""Non-hermeticity: the energy that leaves the calorimeters unseen, by escape path.

A beam muon reaches region D (E_CAL <= 20 GeV, E'_mu <= 80 GeV) only if the energy it
lost in the ECAL (>= 60 GeV) escapes, by one of six paths (:data:`PATHS`; each path, the
inputs, the numbers: docs/hermeticity-and-tracking.md, section 1). The leading hadron:
:func:`hadronic_escape` (its rates; a switch per path in ``detector.escape.paths``). Entry
points: :func:`beam_escape` (beam sample), :func:`forced_sample` and :func:`direct_estimate`:
region D measured with a forced photonuclear interaction (v >= ``v_min``), an escaping
leading hadron (z >= Z_MIN), biased depths, transverse momenta, z and decays, each event
weighted with w = p_true / p_biased (GEANT4's generic biasing).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy import special

from bkg.config import Config
from bkg.config.model import Escape

__all__ = [
    "PATHS",
    "closure_direct",
    "direct_estimate",
    "forced_sample",
    "keep_direct_estimate",
    "lateral_inside",
    "path_of",
]

#: escape path -> code of the ``escape`` branch (0: nothing escaped)
PATHS = {
    "hcal_back": 1,
    "hcal_side": 2,
    "vhcal_hole": 3,
    "dead_material": 4,
    "em_gap": 5,
    "shower_muon": 6,
}
N_PATHS = len(PATHS)
#: lambda_I (cm) of lead and iron (199.6 and 132.1 g/cm2, PDG), copper (137.3 g/cm2)
LAMBDA_PB_CM = 199.6 / 11.35
LAMBDA_FE_CM = 132.1 / 7.874
#: Moliere radius of lead (cm, PDG)
R_MOLIERE_PB_CM = 1.60
#: interaction length of the species in units of lambda_I (nucleon: 1; kaon, pion: 1.2)
INTERACTION_SCALE = {"k_long": 1.2, "neutron": 1.0, "pion": 1.2, "kaon": 1.2}
#: m (GeV), c tau (cm), BR(mu nu) of the charged leading hadrons
DECAY = {"pion": (0.13957, 780.45, 0.9999), "kaon": (0.49368, 371.2, 0.6356)}
M_MU = 0.1056583755
#: the leading hadron's species (index in the biased draws)
SPECIES = ("k_long", "neutron", "pion", "kaon")
#: species shares of the forced simulation (k_long, neutron, pion, kaon)
BIASED_SPECIES_SHARES = np.array([0.4, 0.4, 0.1, 0.1])
#: an escaped energy below this (GeV) is not called an escape in the ``escape`` branch
E_ESCAPE_MIN_GEV = 0.1
#: the ECAL's hadronic visible fraction (as :data:`bkg.sim.detector.ECAL_HAD_VISIBLE`)
ECAL_HAD_VISIBLE = 0.6
#: VHCAL plane behind the ECAL front (cm): where :mod:`bkg.sim.detector` puts it
VHCAL_Z_CM = 100.0


def species_probabilities(ec: Escape) -> np.ndarray:
    """P(species) of a leading hadron (k_long, neutron, pi+-, K+-); the rest (pi0, ...) escapes nothing.

    Charged: 2/3 of the leading hadrons (isospin), ``charged_kaon_fraction`` of them kaons.
    """
    charged = 2.0 / 3.0
    kf = ec.charged_kaon_fraction
    return np.array(
        [ec.leading_k_long_fraction, ec.leading_neutron_fraction, charged * (1 - kf), charged * kf]
    )


def lateral_inside(centre: np.ndarray, lo: float, hi: float, scale: float) -> np.ndarray:
    """Fraction of a 1D profile exp(-|u - centre|/scale)/(2 scale) inside [lo, hi]."""

    def cdf(u: np.ndarray) -> np.ndarray:
        half_tail = 0.5 * np.exp(-np.abs(u) / scale)  # one exp for both sides
        return np.where(u < 0, half_tail, 1 - half_tail)

    return np.clip(cdf(hi - centre) - cdf(lo - centre), 0.0, 1.0)


def _profile(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Fraction of a hadron shower (Gamma(a, 1) in lambda_I after its first interaction) before t."""
    return special.gammainc(a, np.maximum(t, 0.0))


def path_of(lost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(escape code, total escaped GeV) from the energies lost by path, shape (n, N_PATHS)."""
    total = lost[:, 0].copy()  # the columns one after the other: the order of sum(axis=1),
    for j in range(1, lost.shape[1]):  # without its slow reduction over rows of 6
        total += lost[:, j]
    code = np.zeros(total.size, dtype=np.int8)
    rows = np.flatnonzero(total >= E_ESCAPE_MIN_GEV)  # rare: the argmax only there
    code[rows] = np.argmax(lost[rows], axis=1) + 1
    return code, total


def _hcal_geometry(cfg: Config) -> tuple[float, float, float, float, float]:
    """(z of the HCAL face from the ECAL, x lo, x hi, y half, depth in lambda_I)."""
    det = cfg.detector
    ct = det.counters
    centre = ct.s4.offset_cm + ct.s4.size_cm[0] / 2
    w, h = det.hcal.size_cm
    return (
        100.0 * ct.s4.z_from_ms2_m,
        centre - w / 2,
        centre + w / 2,
        h / 2,
        det.hcal.modules * det.hcal.module_lambda,
    )


def neutral_hadron(
    cfg: Config,
    ec: Escape,
    rng: np.random.Generator,
    *,
    e_h: np.ndarray,
    rem_ecal_lambda: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    t0: np.ndarray,
) -> dict[str, np.ndarray]:
    """Where the energy of a neutral hadron (no MIP) goes: deposits and losses by path.

    ``t0`` is its first interaction depth in lambda_I counted from its origin in the ECAL
    (the species' interaction scale already in it); the shower follows Gamma(a, 1 lambda_I),
    a = 1 + 0.25 ln E, through the rest of the ECAL, the dead material, the VHCAL when it
    hits it outside the hole, and the HCAL when it reaches its face.
    """
    n = e_h.size
    det = cfg.detector
    a = 1.0 + 0.25 * np.log(np.maximum(e_h, 1.0))
    t_ecal = rem_ecal_lambda
    t_dead = t_ecal + ec.dead_material_lambda
    xv, yv = x + VHCAL_Z_CM * tx, y + VHCAL_Z_CM * ty
    hole = (np.abs(xv) < det.vhcal.hole_cm[0] / 2) & (np.abs(yv) < det.vhcal.hole_cm[1] / 2)
    on_vh = (
        (np.abs(xv) < det.vhcal.size_cm[0] / 2) & (np.abs(yv) < det.vhcal.size_cm[1] / 2) & ~hole
    )
    t_vh = t_dead + np.where(on_vh, det.vhcal.thickness_lambda, 0.0)
    z_h, xlo, xhi, yhalf, depth = _hcal_geometry(cfg)
    xh, yh = x + z_h * tx, y + z_h * ty
    t_end = t_vh + depth
    t = t0
    f_ecal = _profile(a, t_ecal - t)
    f_dead = _profile(a, t_dead - t)
    f_vh = _profile(a, t_vh - t)
    f_end = _profile(a, t_end - t)
    s = LAMBDA_FE_CM / 3.0
    inside = lateral_inside(xh, xlo, xhi, s) * lateral_inside(yh, -yhalf, yhalf, s)
    e_hcal_all = e_h * (f_end - f_vh)
    lateral = e_hcal_all * (1.0 - inside)
    lost = np.zeros((n, N_PATHS))
    lost[:, PATHS["dead_material"] - 1] = e_h * (f_dead - f_ecal)
    lost[:, PATHS["hcal_back"] - 1] = e_h * (1.0 - f_end) * inside
    # the hadron's axis misses the HCAL face after crossing the VHCAL hole: the hole path
    miss = ~((xh > xlo) & (xh < xhi) & (np.abs(yh) < yhalf))
    back_out = e_h * (1.0 - f_end) * (1.0 - inside)
    side = lateral + back_out
    lost[:, PATHS["vhcal_hole"] - 1] = np.where(hole & miss, side, 0.0)
    lost[:, PATHS["hcal_side"] - 1] = np.where(hole & miss, 0.0, side)
    e_hcal = e_hcal_all * inside
    frac_mod1 = np.where(
        f_end > f_vh,
        (_profile(a, t_vh + det.hcal.module_lambda - t) - f_vh) / np.maximum(f_end - f_vh, 1e-300),
        1.0,
    )
    return {
        "e_ecal": ECAL_HAD_VISIBLE * e_h * f_ecal,
        "e_vhcal": e_h * (f_vh - f_dead),
        "e_hcal1": e_hcal * frac_mod1,
        "e_hcal2": e_hcal * (1.0 - frac_mod1),
        "lost": lost,
    }


def decay_probability(
    e_h: np.ndarray,
    species: np.ndarray,
    rem_ecal_lambda: np.ndarray,
    t0: np.ndarray,
    flight_cm: float,
) -> np.ndarray:
    """P(a charged leading hadron decays to mu nu before its first interaction).

    Path before the interaction: t0 lambda_I of lead when it interacts in the ECAL, else the
    rest of the ECAL plus ``flight_cm`` (to the calorimeter it meets); decay length E/m c tau.
    """
    m = np.where(species == 3, DECAY["kaon"][0], DECAY["pion"][0])
    ctau = np.where(species == 3, DECAY["kaon"][1], DECAY["pion"][1])
    br = np.where(species == 3, DECAY["kaon"][2], DECAY["pion"][2])
    path = np.where(
        t0 < rem_ecal_lambda, t0 * LAMBDA_PB_CM, rem_ecal_lambda * LAMBDA_PB_CM + flight_cm
    )
    return br * -np.expm1(-path * m / (np.maximum(e_h, 1e-3) * ctau))


def draw_leading(
    ec: Escape, rng: np.random.Generator, n: int, *, biased: bool
) -> dict[str, np.ndarray]:
    """Leading hadron of n photonuclear interactions: species (-1 none/pi0, else index of SPECIES), z, weight.

    Unbiased: P(z >= Z_MIN) from D(z), the species by :func:`species_probabilities`, weight 1.
    Biased: every event has z >= Z_MIN (z uniform) and an escaping species (shares
    :data:`BIASED_SPECIES_SHARES`: mostly the neutral ones, whose paths reach the signal
    box), weight = p_true / p_biased.
    """
    from bkg.sim.leading_hadrons import Z_MIN, leading_fraction_probability, sample_z

    probs = species_probabilities(ec)
    p_lead = leading_fraction_probability()
    if not biased:
        u = rng.random(n)
        cum = np.cumsum(probs) * p_lead
        species = np.searchsorted(cum, u, side="right")
        species = np.where(species >= len(SPECIES), -1, species).astype(np.int64)
        z = sample_z(n, rng)
        return {"species": species, "z": z, "weight": np.ones(n)}
    species = np.searchsorted(np.cumsum(BIASED_SPECIES_SHARES), rng.random(n), side="right")
    species = np.minimum(species, len(SPECIES) - 1)
    z = Z_MIN + (1 - Z_MIN) * rng.random(n)
    d_z = 3.0 * (1 - z) ** 2 / z  # D(z) = (a + 1)(1 - z)^a / z, a = 2
    w = probs[species] / BIASED_SPECIES_SHARES[species] * d_z * (1 - Z_MIN)
    return {"species": species, "z": z, "weight": w}


def hadronic_escape(
    cfg: Config,
    ec: Escape,
    rng: np.random.Generator,
    *,
    nu: np.ndarray,
    depth_g_cm2: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    biased: bool = False,
    leading: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The leading hadron of photonuclear transfers ``nu`` at ``depth_g_cm2`` of the ECAL.

    Returns ``e_split`` (GeV taken out of the ECAL's hadronic system: the neutral hadron,
    the decaying charged one), the deposits ``e_ecal`` (visible), ``e_vhcal``, ``e_hcal1``,
    ``e_hcal2``, ``lost`` (n, N_PATHS) and ``weight`` (1 unbiased). Switched-off paths
    (``ec.paths``, the config's ``detector.escape.paths``) deposit their energy in the next
    calorimeter (HCAL module 2 for the back, module 1 otherwise) instead; the draws do not
    depend on the switches, so a run with a path off sees the same events.

    The rates come from physics: the photonuclear rate and spectrum of :mod:`bkg.sim.ecal`,
    the leading-hadron fraction z of :mod:`bkg.sim.leading_hadrons`, the species fractions
    of the config (inputs), dN/dp_T ~ p_T exp(-2 p_T/<p_T>), the longitudinal profile
    Gamma(a, 1 lambda_I) after an exponential first interaction (as
    :func:`bkg.sim.calorimeters.hadron_shower`), a lateral profile exp(-|u|/s) in 1D
    (s = lambda_I/3 for hadrons, 95% within one lambda_I; s = R_M/2 for EM showers in
    lead) and the config's geometry (VHCAL hole and size, HCAL face and depth, S4's plane).
    """
    from bkg.sim import detector

    n = nu.size
    lead = leading if leading is not None else draw_leading(ec, rng, n, biased=biased)
    species, z, w = lead["species"], lead["z"], lead["weight"].copy()
    e_h = z * nu
    rem = (detector.ECAL_DEPTH_G_CM2 - depth_g_cm2) / 199.6
    txh, tyh = _hadron_direction(ec, rng, e_h, tx, ty, w, biased)
    neutral = (species == 0) | (species == 1)
    t0 = _first_interaction(rng, species, neutral, w, biased)
    out: dict[str, Any] = {
        k: np.zeros(n) for k in ("e_split", "e_ecal", "e_vhcal", "e_hcal1", "e_hcal2")
    }
    lost = np.zeros((n, N_PATHS))
    k = np.flatnonzero(neutral)
    if k.size:
        nh = neutral_hadron(
            cfg,
            ec,
            rng,
            e_h=e_h[k],
            rem_ecal_lambda=rem[k],
            x=x[k],
            y=y[k],
            tx=txh[k],
            ty=tyh[k],
            t0=t0[k],
        )
        out["e_split"][k] = e_h[k]
        for key in ("e_ecal", "e_vhcal", "e_hcal1", "e_hcal2"):
            out[key][k] = nh[key]
        lost[k] = nh["lost"]
    _charged_decays(cfg, ec, rng, out, lost, e_h, species, rem, t0, w, biased)
    # switched-off paths: deposited where the energy would have gone
    for name, code in PATHS.items():
        if getattr(ec.paths, name) or name in ("em_gap", "shower_muon"):
            continue
        back = name == "hcal_back"
        out["e_hcal2" if back else "e_hcal1"] += lost[:, code - 1]
        lost[:, code - 1] = 0.0
    out["lost"] = lost
    out["weight"] = w
    out["species"] = species
    return out


def _hadron_direction(
    ec: Escape,
    rng: np.random.Generator,
    e_h: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    w: np.ndarray,
    biased: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Slopes of the leading hadron: the muon's, plus p_T / E_h at a uniform azimuth.

    dN/dpT ~ pT exp(-b pT). Biased: a defensive mixture, half from the true law and half
    from one 3x harder, so that the weight p / (p/2 + q/2) stays below 2 (``w`` in place).
    """
    n = e_h.size
    b = 2.0 / ec.pt_mean_gev
    hard = rng.random(n) < 0.5 if biased else np.zeros(n, dtype=bool)
    pt = rng.gamma(2.0, 1.0 / np.where(hard, b / 3.0, b), n)
    if biased:
        q_over_p = np.exp(2.0 * b / 3.0 * pt) / 9.0  # (b/3)^2 e^(-b pT/3) / (b^2 e^(-b pT))
        w /= 0.5 + 0.5 * q_over_p
    phi = 2 * np.pi * rng.random(n)
    txh = tx + pt * np.cos(phi) / np.maximum(e_h, 1e-3)
    tyh = ty + pt * np.sin(phi) / np.maximum(e_h, 1e-3)
    return txh, tyh


def _first_interaction(
    rng: np.random.Generator,
    species: np.ndarray,
    neutral: np.ndarray,
    w: np.ndarray,
    biased: bool,
) -> np.ndarray:
    """First interaction depth (lambda_I): Exp(scale of the species).

    Biased for the neutral ones (punch-through): a mixture of the true law and one 5x
    longer, weight p / (p/2 + q/2) <= 2 (``w`` in place).
    """
    n = species.size
    scale = np.array([INTERACTION_SCALE[s] for s in SPECIES])[np.maximum(species, 0)]
    long_draw = neutral & (rng.random(n) < 0.5) if biased else np.zeros(n, dtype=bool)
    t0 = rng.exponential(1.0, n) * scale * np.where(long_draw, 5.0, 1.0)
    if biased:
        q_over_p = np.exp(t0 / scale - t0 / (5.0 * scale)) / 5.0
        w /= np.where(neutral, 0.5 + 0.5 * q_over_p, 1.0)
    return t0


def _charged_decays(
    cfg: Config,
    ec: Escape,
    rng: np.random.Generator,
    out: dict[str, Any],
    lost: np.ndarray,
    e_h: np.ndarray,
    species: np.ndarray,
    rem: np.ndarray,
    t0: np.ndarray,
    w: np.ndarray,
    biased: bool,
) -> None:
    """Charged leading hadrons decaying to mu nu before they interact (``out``, ``lost``, ``w`` in place).

    Biased: the decay is forced, with the weight P(decay).
    """
    n = e_h.size
    c = np.flatnonzero((species == 2) | (species == 3))
    u = rng.random(n)
    if not c.size:
        return
    z_h = _hcal_geometry(cfg)[0]
    p_dec = decay_probability(e_h[c], species[c], rem[c], t0[c], z_h)
    if biased:  # forced decay, weight P(decay)
        dec = np.ones(c.size, dtype=bool)
        w[c] *= p_dec
    else:
        dec = u[c] < p_dec
    cd = c[dec]
    if ec.paths.shower_muon:
        out["e_split"][cd] = e_h[cd]
        lost[cd, PATHS["shower_muon"] - 1] = e_h[cd]
        # the decay muon leaves the ECAL forward (its energy >= (m_mu/m_h)^2 E_h) and
        # crosses MS2 beside the beam muon: one more track
        out["extra_tracks"] = np.zeros(n, dtype=np.int64)
        out["extra_tracks"][cd] = 1


def em_gap(
    cfg: Config,
    ec: Escape,
    rng: np.random.Generator,
    *,
    leak_em: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(EM leak through the VHCAL hole, of it the energy swept beside the HCAL) in GeV.

    The leak out of the ECAL's back is centred on the muon (x, y) with the lateral scale
    R_M/2 of lead: the share inside the hole goes on to MS2. A fraction
    ``em_pair_fraction`` of such leaks is a converted pair sharing the energy uniformly
    (u, 1 - u); MS2 bends each lepton by 0.3 B L / E (the e+ like the muon, the e- the
    other way) and the one that lands beside the HCAL face escapes. Draws for every event.
    """
    n = leak_em.size
    hx, hy = cfg.detector.vhcal.hole_cm
    s = R_MOLIERE_PB_CM / 2
    share = lateral_inside(x, -hx / 2, hx / 2, s) * lateral_inside(y, -hy / 2, hy / 2, s)
    through = leak_em * share
    pair = rng.random(n) < ec.em_pair_fraction
    u = rng.random(n)
    z_h, xlo, xhi, _, _ = _hcal_geometry(cfg)
    kappa = 0.3 * cfg.detector.spectrometers.ms2.field_tm
    e_pos, e_neg = u * through, (1 - u) * through
    x_pos = x + z_h * kappa / np.maximum(e_pos, 1e-6)
    x_neg = x - z_h * kappa / np.maximum(e_neg, 1e-6)
    swept = np.where(x_pos > xhi, e_pos, 0.0) + np.where(x_neg < xlo, e_neg, 0.0)
    lost = np.where(pair, swept, 0.0)
    if not ec.paths.em_gap:
        lost = np.zeros(n)
    return through, lost


def forced_sample(
    cfg: Config, rng: np.random.Generator, n: int, *, biased: bool = True, v_min: float = 0.25
) -> dict[str, np.ndarray]:
    """n beam muons each with a photonuclear interaction v >= ``v_min`` and its leading hadron.

    Weight per MOT: P(v >= v_min in the ECAL | E) x the leading-hadron and biasing weights
    (:func:`hadronic_escape`); unbiased (``biased=False``) only the first factor. Returns
    every branch of the beam sample (from :func:`bkg.sim.detector.respond`) plus ``weight``,
    ``species`` and ``nu``.
    """
    from bkg.sim import beam, detector, ecal

    ec = cfg.detector.escape
    inc = beam.incoming_beam(cfg, rng, n)
    e_mu = inc["p"]
    depth1 = rng.random(n) * detector.ECAL_DEPTH_G_CM2
    pass1 = detector.muon_through_ecal(cfg, rng, e_mu, depth_g_cm2=depth1)
    e_at = pass1["e_out"]
    # the muon energy at the interaction sets both the rate and the spectrum's node
    v = np.empty(n)
    log_e = np.log(np.maximum(e_at, 0.2))
    node = ecal._node_of(log_e, rng)
    for k in np.unique(node):
        at = np.flatnonzero(node == k)
        v[at] = ecal.sample_v("nucl", at.size, rng, v_cut=v_min, node=int(k))
    rate = _rates(e_at, v_min)
    nu = v * e_at
    e_after = e_at - nu
    pass2 = detector.muon_through_ecal(
        cfg, rng, np.maximum(e_after, 0.2), depth_g_cm2=detector.ECAL_DEPTH_G_CM2 - depth1
    )
    tx = inc["tx"] + pass1["tx_ms"]
    ty = inc["ty"] + pass1["ty_ms"]
    had = hadronic_escape(
        cfg, ec, rng, nu=nu, depth_g_cm2=depth1, x=inc["x"], y=inc["y"], tx=tx, ty=ty, biased=biased
    )
    # the rest of the hadronic system showers in the ECAL (its leak as the ECAL's own)
    rest = nu - had["e_split"]
    from bkg.sim import calorimeters

    # pass1 ends inside the ECAL: what it calls a leak stays in the ECAL (visible)
    e_ecal = (
        pass1["e_ecal"]
        + pass1["e_leak_em"]
        + ECAL_HAD_VISIBLE * pass1["e_leak_had"]
        + pass2["e_ecal"]
        + had["e_ecal"]
        + calorimeters.ecal_visible(ECAL_HAD_VISIBLE * rest, rng, stochastic=0.3, constant=0.02)
    )
    out = detector.respond(
        cfg,
        rng,
        p_in_true=e_mu,
        x_cm=inc["x"],
        y_cm=inc["y"],
        tx_out=tx + pass2["tx_ms"],
        ty_out=ty + pass2["ty_ms"],
        p_out_true=np.where(e_after > 0.2, pass2["e_out"], 0.0),
        e_ecal=e_ecal,
        e_leak_em=pass2["e_leak_em"],
        e_leak_had=pass2["e_leak_had"],
        process=np.full(n, 3, dtype=np.int8),
        e_transfer=nu,
        escape=had,
    )
    out["weight"] = rate * detector.ECAL_DEPTH_G_CM2 * had["weight"]
    out["species"] = had["species"]
    out["nu"] = nu
    return out


def _rates(e_gev: np.ndarray, v_min: float) -> np.ndarray:
    """Photonuclear interactions with v >= v_min per g/cm2 at each muon energy (cm2/g)."""
    from bkg.sim import ecal

    grid = np.linspace(
        max(float(e_gev.min(initial=1.0)), 1.0) - 1.0, float(e_gev.max(initial=1.0)) + 1.0, 64
    )
    vals = np.array(
        [ecal.lambda_catastrophic_cm2_g("nucl", max(float(g), 1.0), v_cut=v_min) for g in grid]
    )
    return np.interp(e_gev, grid, vals)


#: smallest photonuclear transfer (GeV) whose leading hadron the beam sample follows
NU_MIN_GEV = 1.0


def beam_escape(
    cfg: Config,
    rng: np.random.Generator,
    ecal_out: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
) -> dict[str, Any]:
    """:func:`hadronic_escape` for the muons of :func:`bkg.ecal.pass_ecal` whose largest interaction is photonuclear.

    Returns arrays over all muons (zeros elsewhere) and ``dead_lambda``; ``dead_ecal`` is
    filled by :func:`bkg.sim.detector.muon_through_ecal` (the ECAL's own leak).
    """
    ec = cfg.detector.escape
    n = ecal_out["e_out"].size
    out: dict[str, Any] = {
        k: np.zeros(n) for k in ("e_split", "e_ecal", "e_vhcal", "e_hcal1", "e_hcal2", "dead_ecal")
    }
    out["lost"] = np.zeros((n, N_PATHS))
    out["dead_lambda"] = ec.dead_material_lambda
    k = np.flatnonzero((ecal_out["process"] == 3) & (ecal_out["e_transfer"] >= NU_MIN_GEV))
    out["touched"] = np.zeros(n, dtype=bool)
    out["touched"][k] = True
    if k.size:
        had = hadronic_escape(
            cfg,
            ec,
            rng,
            nu=ecal_out["e_transfer"][k],
            depth_g_cm2=np.maximum(ecal_out["depth_int"][k], 0.0),
            x=np.asarray(x, dtype=np.float64)[k],
            y=np.asarray(y, dtype=np.float64)[k],
            tx=np.asarray(tx, dtype=np.float64)[k],
            ty=np.asarray(ty, dtype=np.float64)[k],
        )
        for key in ("e_split", "e_ecal", "e_vhcal", "e_hcal1", "e_hcal2"):
            out[key][k] = had[key]
        out["lost"][k] = had["lost"]
        if "extra_tracks" in had:
            out["extra_tracks"] = np.zeros(n, dtype=np.int64)
            out["extra_tracks"][k] = had["extra_tracks"]
    return out


def add_dead_leak(cfg: Config, esc: dict[str, Any]) -> None:
    """Book the ECAL leak's dead-material part: lost, or (path off) deposited in HCAL module 1."""
    ec = cfg.detector.escape
    j = np.flatnonzero(esc["dead_ecal"])  # the few muons whose ECAL leak reached it
    esc["touched"][j] = True
    if ec.paths.dead_material:
        esc["lost"][j, PATHS["dead_material"] - 1] += esc["dead_ecal"][j]
    else:
        esc["e_hcal1"][j] += esc["dead_ecal"][j]


#: spawn key of the forced simulation's generator under the config's seed
FORCED_SPAWN_KEY = (0xE5C, 1)


def region_d(ev: dict[str, np.ndarray], cfg: Config) -> np.ndarray:
    """Region D as the hermeticity source's tail variable reaches it.

    BMS momentum in the window of cut (i), a track, E_CAL <= 20 GeV and the inverse
    balance p_in / (p_out + E_CAL) - 1 at or beyond the cut into E'_mu <= 80 GeV.
    """
    from bkg.selection import e_cal

    box = cfg.signal_box
    plo, phi = cfg.selection.p_in_window_gev
    ecal = e_cal(ev)
    ok = (ecal <= box.e_cal_max_gev) & (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
    ok &= ev["p_out_rec"] > 0
    cut = cfg.beam.energy_gev / (box.e_mu_out_max_gev + box.e_cal_max_gev) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        w = ev["p_in_rec"].astype(float) / (ev["p_out_rec"] + ecal) - 1.0
    return ok & (w >= cut)


def direct_estimate(cfg: Config, *, n: int | None = None, biased: bool = True) -> dict[str, Any]:
    """Region D measured with the forced simulation, per MOT, total and by escape path.

    ``region_d``: :func:`region_d` (the tail variable's region); ``selected``: the
    trigger, cuts (i)-(iv) and the signal box. Each as ``{"level", "stat",
    "effective_events", "events"}`` (stat = sqrt(sum w^2) / N, effective events
    (sum w)^2 / sum w^2). Seeded from the config (:data:`FORCED_SPAWN_KEY`).
    """
    from bkg.config import config_hash

    ec = cfg.detector.escape
    n = ec.forced_events if n is None else int(n)
    key = (config_hash(cfg.raw), n, biased)
    if key not in _DIRECT_CACHE:
        _DIRECT_CACHE.clear()  # one configuration at a time
        _DIRECT_CACHE[key] = _direct_estimate(cfg, n, biased)
    return copy.deepcopy(_DIRECT_CACHE[key])


#: the last :func:`direct_estimate` (a pure function of the configuration, n and biased)
_DIRECT_CACHE: dict[tuple[str, int, bool], dict[str, Any]] = {}


def keep_direct_estimate(
    cfg: Config, value: dict[str, Any], *, n: int | None = None, biased: bool = True
) -> None:
    """Keep ``value``, the :func:`direct_estimate` of these arguments made elsewhere (a
    side process, :mod:`bkg.sources.side`), as the one :func:`direct_estimate` returns."""
    from bkg.config import config_hash

    n = cfg.detector.escape.forced_events if n is None else int(n)
    _DIRECT_CACHE.clear()  # one configuration at a time
    _DIRECT_CACHE[(config_hash(cfg.raw), n, biased)] = copy.deepcopy(value)


def _direct_estimate(cfg: Config, n: int, biased: bool) -> dict[str, Any]:
    from bkg.selection import cut_flow, in_signal_box

    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=FORCED_SPAWN_KEY))
    keys = ("region_d", "selected")
    sums = {k: np.zeros((N_PATHS + 1, 3)) for k in keys}  # (path 0..6) x (sum w, sum w^2, count)
    block = 1 << 16
    for start in range(0, n, block):
        m = min(block, n - start)
        ev = forced_sample(cfg, rng, m, biased=biased)
        w = ev["weight"]
        masks = {
            "region_d": region_d(ev, cfg),
            "selected": cut_flow(ev, cfg)["iv"] & in_signal_box(ev, cfg),
        }
        for k, mask in masks.items():
            code = ev["escape"][mask].astype(np.intp)
            ww = w[mask]
            np.add.at(sums[k][:, 0], code, ww)
            np.add.at(sums[k][:, 1], code, ww * ww)
            np.add.at(sums[k][:, 2], code, 1.0)

    def record(row: np.ndarray) -> dict[str, float]:
        s, s2, c = (float(v) for v in row)
        return {
            "level": s / n,
            "stat": float(np.sqrt(s2)) / n,
            "effective_events": s * s / s2 if s2 > 0 else 0.0,
            "events": int(c),
        }

    names = ["none", *PATHS]
    out: dict[str, Any] = {"n_forced": n, "biased": biased}
    for k in keys:
        out[k] = {"total": record(sums[k].sum(axis=0))}
        out[k]["by_path"] = {names[i]: record(sums[k][i]) for i in range(N_PATHS + 1)}
    return out


def closure_direct(cfg: Config, *, n: int | None = None) -> dict[str, float]:
    """The direct estimate of region D for the closure: ``{direct, direct_stat, effective_events}`` per MOT."""
    total = direct_estimate(cfg, n=n)["region_d"]["total"]
    return {
        "direct": total["level"],
        "direct_stat": total["stat"],
        "effective_events": total["effective_events"],
    }
