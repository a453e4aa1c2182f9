"""The detector chain shared by every sample: ECAL -> VHCAL -> MS2 -> S4, V1 -> HCAL -> S_mu.

Every sample generator produces the particle entering the ECAL (and, for
signal and dimuons, what happens inside it); :func:`respond` turns that into
the ntuple branches of :data:`bkg.ntuple.RESPONSE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from bkg.config import Config
from bkg.sim import calorimeters, counters, ecal, tracking
from bkg.sim.draws import normal32

__all__ = ["ECAL_DEPTH_G_CM2", "ECAL_LAMBDA", "em_leakage_fraction", "muon_through_ecal", "respond"]

ECAL_DEPTH_G_CM2 = 40 * ecal.LEAD_X0_G_CM2
#: interaction lengths of the ECAL (lead: lambda_I = 199.6 g/cm2)
ECAL_LAMBDA = ECAL_DEPTH_G_CM2 / 199.6
#: visible fraction of hadronic energy in the ECAL (e/h of a lead calorimeter)
ECAL_HAD_VISIBLE = 0.6
#: HCAL depth (lambda_I) a muon needs to reach S_mu, as a minimal momentum (GeV)
P_RANGE_GEV = 3.0


def em_leakage_fraction(e_gev: np.ndarray, t_remaining_x0: np.ndarray) -> np.ndarray:
    """Fraction of an EM shower of energy E started t_remaining X0 before the ECAL end that leaks out.

    Longitudinal profile dE/dt ~ Gamma(a, b=0.5) with t_max = (a - 1)/b = ln(E/E_c) - 0.5, E_c(Pb) = 7.4 MeV
    (PDG review "Passage of particles through matter", eq. 34.36).
    """
    b = 0.5
    tmax = np.maximum(np.log(np.maximum(e_gev, 0.01) / 0.0074) - 0.5, 0.1)
    a = tmax * b + 1.0
    return 1.0 - special.gammainc(a, b * np.maximum(t_remaining_x0, 0.0))


def highland_factor(depth_g_cm2: np.ndarray | float) -> np.ndarray | np.float32:
    """p * theta0 (GeV rad) of the Highland formula for ``depth_g_cm2`` of the ECAL (0 for none)."""
    x = np.maximum(np.asarray(depth_g_cm2, dtype=np.float64) / ecal.LEAD_X0_G_CM2, 0.0)
    safe = np.maximum(x, 1e-3)
    f = np.where(x > 0, 0.0136 * np.sqrt(x) * (1 + 0.038 * np.log(safe)), 0.0)
    return f.astype(np.float32) if f.ndim else np.float32(f)


def muon_through_ecal(
    cfg: Config,
    rng: np.random.Generator,
    p_in: np.ndarray,
    *,
    depth_g_cm2: np.ndarray | float = ECAL_DEPTH_G_CM2,
    escape_at: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Energy loss and deposits of muons crossing ``depth_g_cm2`` of the ECAL (see :func:`bkg.sim.ecal.pass_ecal`).

    Adds ``e_leak_em`` and ``e_leak_had`` (GeV leaving the ECAL) and the visible parts
    (``e_ecal`` and the scattering slopes ``tx_ms``, ``ty_ms`` are float32).

    With ``escape_at`` = (x, y, tx, ty) of the muons (the beam sample), the leading hadron
    of each muon whose largest interaction is photonuclear is drawn and followed through
    the calorimeters (:func:`bkg.sim.escape.hadronic_escape`); the ECAL's own hadronic
    leak loses its part in the dead material behind the ECAL. The result is in
    ``escape`` (deposits and losses by path) for :func:`respond`.
    """
    p_in = np.asarray(p_in, dtype=np.float64)
    out = ecal.pass_ecal(
        p_in, rng, depth_g_cm2=depth_g_cm2, mip_visible_gev=cfg.detector.ecal.mip_gev
    )
    n = p_in.size
    esc: dict[str, np.ndarray] | None = None
    if escape_at is not None:
        from bkg.sim import escape

        esc = escape.beam_escape(cfg, rng, out, *escape_at)
        out["e_had"] = np.maximum(out["e_had"] - esc["e_split"], 0.0)
    leak_em, leak_had, e_in_ecal = _ecal_leaks(rng, out, depth_g_cm2, esc)
    if esc is not None:
        from bkg.sim import escape

        escape.add_dead_leak(cfg, esc)
        e_in_ecal += esc["e_ecal"]
        out["escape"] = esc  # type: ignore[assignment]
    out["e_leak_em"] = leak_em
    out["e_leak_had"] = leak_had
    out["e_ecal"] = (
        calorimeters.ecal_visible(
            e_in_ecal,
            rng,
            stochastic=cfg.detector.ecal.sampling_resolution,
            constant=cfg.detector.ecal.constant_term,
        )
        + out["e_dep_ion"]
    )
    # multiple scattering in the traversed depth (Highland), slopes per projection
    p_ms2 = np.maximum(p_in * out["e_out"], 1e-4).astype(np.float32)
    theta0 = highland_factor(depth_g_cm2) / np.sqrt(p_ms2)
    g = normal32(rng, 2 * n)
    out["tx_ms"] = theta0 * g[:n]
    out["ty_ms"] = theta0 * g[n:]
    return out


def _ecal_leaks(
    rng: np.random.Generator,
    out: dict[str, np.ndarray],
    depth_g_cm2: np.ndarray | float,
    esc: dict[str, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(EM leak, hadronic leak, energy left in the ECAL) of :func:`muon_through_ecal`, GeV.

    Only muons with a transfer above 0.5 GeV leak. With ``esc`` (the beam sample), the
    part of the hadronic leak absorbed by the dead material behind the ECAL goes to
    ``esc["dead_ecal"]`` instead.
    """
    n = out["e_out"].size
    leak_em = np.zeros(n)
    leak_had = np.zeros(n)
    e_in_ecal = out["e_dep_em"] + ECAL_HAD_VISIBLE * out["e_had"]
    sel = np.flatnonzero(out["e_transfer"] > 0.5)
    if not sel.size:
        return leak_em, leak_had, e_in_ecal
    depth = np.broadcast_to(np.asarray(depth_g_cm2, dtype=float), (n,))[sel]
    t_rem_x0 = (depth - out["depth_int"][sel]) / ecal.LEAD_X0_G_CM2
    leak_em[sel] = out["e_dep_em"][sel] * em_leakage_fraction(out["e_transfer"][sel], t_rem_x0)
    h = out["e_had"][sel]
    hs = h > 0
    if hs.any():
        t_rem_l = t_rem_x0[hs] * ecal.LEAD_X0_G_CM2 / 199.6
        # fraction of the hadronic cascade beyond the remaining ECAL depth
        a = 1.0 + 0.25 * np.log(np.maximum(h[hs], 1.0))
        t0 = rng.exponential(1.0, hs.sum())
        frac = 1.0 - special.gammainc(a, np.clip(t_rem_l - t0, 0.0, None))
        leak_had[sel[hs]] = h[hs] * frac
        if esc is not None and esc["dead_lambda"] > 0:
            # the part of the leaking cascade that the dead material behind the ECAL absorbs
            reach = np.clip(t_rem_l + esc["dead_lambda"] - t0, 0.0, None)
            dead = h[hs] * (special.gammainc(a, reach) - (1.0 - frac))
            dead = np.clip(dead, 0.0, leak_had[sel[hs]])
            leak_had[sel[hs]] -= dead
            esc["dead_ecal"][sel[hs]] = dead
    e_in_ecal[sel] -= leak_em[sel] + ECAL_HAD_VISIBLE * (
        leak_had[sel] + (0.0 if esc is None else esc["dead_ecal"][sel])
    )
    return leak_em, leak_had, e_in_ecal


def respond(
    cfg: Config,
    rng: np.random.Generator,
    *,
    p_in_true: np.ndarray,
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    tx_out: np.ndarray,
    ty_out: np.ndarray,
    p_out_true: np.ndarray,
    e_ecal: np.ndarray,
    e_leak_em: np.ndarray,
    e_leak_had: np.ndarray,
    process: np.ndarray,
    e_transfer: np.ndarray,
    extra_tracks: np.ndarray | None = None,
    extra_hcal_gev: np.ndarray | None = None,
    extra_vm: np.ndarray | None = None,
    escape: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Detector response behind the ECAL for one leading muon per event.

    Args:
        cfg: configuration.
        rng: random generator.
        p_in_true: momentum entering the ECAL (GeV).
        x_cm, y_cm: position at the ECAL front (cm).
        tx_out, ty_out: slopes of the outgoing muon (rad).
        p_out_true: outgoing muon momentum behind the ECAL (GeV, 0: none).
        e_ecal: visible ECAL energy (GeV).
        e_leak_em, e_leak_had: shower energy leaking out of the ECAL (GeV).
        process, e_transfer: truth of the largest interaction so far.
        extra_tracks: extra charged tracks through MS2 (dimuons).
        extra_hcal_gev: extra HCAL deposit (GeV), split evenly over the modules.
        extra_vm: extra charged particles hitting Vm.
        escape: the leading hadron's deposits and the losses by escape path
            (:mod:`bkg.sim.escape`); adds the branches ``escape`` and ``e_escape``.

    Returns:
        dict with every branch of :data:`bkg.ntuple.RESPONSE`: momenta and
        ``e_transfer`` float64, the other energies float32 (the ntuple's precision;
        positions and counters are computed in float32), flags bool.
    """
    det = cfg.detector
    sp = det.spectrometers
    ms1 = tracking.measure_p_in(p_in_true, rng, resolution_rel=sp.ms1.resolution_rel)
    if escape is not None and np.any(escape.get("extra_tracks", 0)):
        # a hadron decaying to a muon: the muon (and the hadron before it) cross MS2 too
        more = np.asarray(escape["extra_tracks"])
        extra_tracks = more if extra_tracks is None else extra_tracks + more
    trk = tracking.measure_p_out(
        p_out_true,
        rng,
        field_tm=sp.ms2.field_tm,
        resolution_rel=sp.ms2.resolution_rel,
        station_x0=sp.ms2.tracker_material_x0,
        inefficiency=sp.micromegas_inefficiency,
        n_stations=6,
        extra_tracks=extra_tracks,
        p_ref_gev=cfg.beam.energy_gev,
    )
    proc, etr = _merge_truth(process, e_transfer, trk)
    x32 = np.asarray(x_cm, dtype=np.float32)
    y32 = np.asarray(y_cm, dtype=np.float32)
    dep = _downstream(cfg, rng, x32, y32, tx_out, ty_out, trk, e_leak_had)
    lost = None if escape is None else _smear_escape(cfg, rng, escape, dep)
    dep["vm"] = _leak_deposits(cfg, rng, x_cm, y_cm, e_leak_em, e_leak_had, dep, lost)
    if extra_hcal_gev is not None:
        dep["e_hcal1"] += 0.5 * extra_hcal_gev
        dep["e_hcal2"] += 0.5 * extra_hcal_gev
    if extra_vm is not None:
        dep["vm"] |= extra_vm
    return _branches(p_in_true, ms1, x_cm, y_cm, e_ecal, trk, dep, proc, etr, lost)


def _branches(
    p_in_true: np.ndarray,
    ms1: np.ndarray,
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    e_ecal: np.ndarray,
    trk: dict[str, Any],
    dep: dict[str, np.ndarray],
    proc: np.ndarray,
    etr: np.ndarray,
    lost: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """The branches of :data:`bkg.ntuple.RESPONSE` (and ``escape``, ``e_escape``) of :func:`respond`."""
    has_mu = dep.pop("has_mu")
    out = {
        "p_in_true": p_in_true,
        "p_in_rec": ms1,
        "x_cm": x_cm,
        "y_cm": y_cm,
        "p_out_true": np.where(has_mu, trk["p_after"], 0.0),
        "p_out_rec": trk["p_rec"],
        "p_out_rec_ko": trk["p_rec_ko"],
        "track_chi2": trk["chi2"],
        "track_chi2_ko": trk["chi2_ko"],
        "e_ecal": e_ecal,
        **dep,
        "process": proc,
        "e_transfer": etr,
    }
    for i in range(6):
        out[f"hits_mm{i + 1}"] = trk["hits"][:, i]
    if lost is not None:
        from bkg.sim import escape as esc_mod

        out["escape"], out["e_escape"] = esc_mod.path_of(lost)
    else:
        out["escape"] = np.zeros(p_in_true.size, dtype=np.int8)
        out["e_escape"] = np.zeros(p_in_true.size)
    return out


def _merge_truth(
    process: np.ndarray, e_transfer: np.ndarray, trk: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(process, e_transfer) of the largest interaction, the tracker's truth included (rare)."""
    proc = np.array(process, dtype=np.int8)
    etr = np.array(e_transfer, dtype=np.float64)
    k = np.flatnonzero(trk["process"])
    if k.size:
        tp, te = trk["process"][k], trk["e_transfer"][k]
        upd = (te >= etr[k]) | ((tp == 6) & (proc[k] == 0))
        proc[k[upd]] = tp[upd]
        etr[k[upd]] = te[upd]
    return proc, etr


def _downstream(
    cfg: Config,
    rng: np.random.Generator,
    x32: np.ndarray,
    y32: np.ndarray,
    tx_out: np.ndarray,
    ty_out: np.ndarray,
    trk: dict[str, Any],
    e_leak_had: np.ndarray,
) -> dict[str, np.ndarray]:
    """Counters S0, S1, S4, V1, S_mu and the muon's MIPs in the VHCAL and HCAL modules.

    Returns the branches ``s0``, ``s1``, ``s4``, ``v1``, ``s_mu``, ``e_vhcal``, ``e_hcal1``,
    ``e_hcal2`` and ``has_mu`` (a muon leaves MS2).
    """
    det = cfg.detector
    ct = det.counters
    field = det.spectrometers.ms2.field_tm
    n = x32.size
    p_mu = trk["p_after"]
    has_mu = p_mu > 0.05
    tx32 = np.asarray(tx_out, dtype=np.float32)
    ty32 = np.asarray(ty_out, dtype=np.float32)
    s0 = counters.beam_counters(x32, y32, radius_cm=ct.s0.radius_cm)
    s1 = counters.beam_counters(x32, y32, radius_cm=ct.s1.radius_cm)
    p32 = trk["p_bend"].astype(np.float32)  # what the magnet bends: the counters' positions
    xs4, ys4 = counters.downstream_position(
        x32, y32, tx32, ty32, p32, z_m=ct.s4.z_from_ms2_m, field_tm=field
    )
    s4 = has_mu & counters.s4_hit(xs4, ys4, offset_cm=ct.s4.offset_cm, size_cm=ct.s4.size_cm)
    # V1, in S4's plane in front of the HCAL: the undeflected muon, or charged secondaries
    # of a hadronic leak. EM leakage out of the ECAL back (photons and soft e+-, the e+-
    # swept out by MS2's 0.42 GeV rad) does not fire it; a hadronic leak gives charged
    # hadrons, about one per 2 GeV leaked (the same law as Vm below).
    v1 = has_mu & counters.v1_hit(xs4, ys4, s4_offset_cm=ct.s4.offset_cm, size_cm=ct.v1.size_cm)
    k_had = np.flatnonzero(e_leak_had > 0.0)
    if k_had.size:
        v1[k_had] |= rng.random(k_had.size) < 1 - np.exp(-e_leak_had[k_had] / 2.0)
    centre = ct.s4.offset_cm + ct.s4.size_cm[0] / 2
    xmu, ymu = counters.downstream_position(
        x32, y32, tx32, ty32, p32, z_m=ct.s4.z_from_ms2_m + 3.0, field_tm=field
    )
    s_mu = (p_mu > P_RANGE_GEV) & counters.s_mu_hit(
        xmu, ymu, centre_x_cm=centre, size_cm=ct.s_mu.size_cm
    )
    in_hcal = has_mu & counters.s_mu_hit(xs4, ys4, centre_x_cm=centre, size_cm=det.hcal.size_cm)
    per_module = det.hcal.mip_gev / det.hcal.modules
    # a MIP in each module the muon crosses (the second one only above 1.5 GeV). Drawn
    # for every event and kept where the muon crosses, so that the random stream does
    # not depend on where the HCAL (centred on S4) is: every S4 geometry of a scan
    # sees the same events
    e_h1 = calorimeters.muon_mip(n, rng, mean_gev=per_module) * in_hcal
    e_h2 = calorimeters.muon_mip(n, rng, mean_gev=per_module) * (in_hcal & (p_mu > 1.5))
    _knock_on_hits(cfg, trk["electrons"], xs4, ys4, s4, v1, e_h1)
    # the muon crosses the VHCAL outside its hole when it leaves the spot (halo)
    e_vh = calorimeters.vhcal_response(
        x32 + 100 * tx32,
        y32 + 100 * ty32,
        rng,
        hole_cm=det.vhcal.hole_cm,
        size_cm=det.vhcal.size_cm,
        mip_gev=calorimeters.vhcal_mip_gev(det.vhcal.thickness_lambda),
    )
    return {
        "e_vhcal": e_vh,
        "e_hcal1": e_h1,
        "e_hcal2": e_h2,
        "s0": s0,
        "s1": s1,
        "s_mu": s_mu,
        "s4": s4,
        "v1": v1,
        "has_mu": has_mu,
    }


def _knock_on_hits(
    cfg: Config,
    el: dict[str, np.ndarray],
    xs4: np.ndarray,
    ys4: np.ndarray,
    s4: np.ndarray,
    v1: np.ndarray,
    e_h1: np.ndarray,
) -> None:
    """Tracker knock-on electrons fire S4 or V1 where they land, or shower in HCAL1 (in place).

    They fly on about S4's distance (the stations sit near the magnet).
    """
    if not el["event"].size:
        return
    det = cfg.detector
    ct = det.counters
    centre = ct.s4.offset_cm + ct.s4.size_cm[0] / 2
    i = el["event"]
    arm = np.float32(100.0 * ct.s4.z_from_ms2_m)
    xe = xs4[i] + arm * el["tx"].astype(np.float32)
    ye = ys4[i] + arm * el["ty"].astype(np.float32)
    s4[i[counters.s4_hit(xe, ye, offset_cm=ct.s4.offset_cm, size_cm=ct.s4.size_cm)]] = True
    v1[i[counters.v1_hit(xe, ye, s4_offset_cm=ct.s4.offset_cm, size_cm=ct.v1.size_cm)]] = True
    inside = counters.s_mu_hit(xe, ye, centre_x_cm=centre, size_cm=det.hcal.size_cm)
    np.add.at(e_h1, i[inside], el["t_gev"][inside].astype(np.float32))


def _smear_escape(
    cfg: Config, rng: np.random.Generator, escape: dict[str, np.ndarray], dep: dict[str, np.ndarray]
) -> np.ndarray:
    """Add the leading hadron's smeared deposits to ``dep`` (in place); its losses by path.

    Smeared where a leading hadron was followed or the ECAL leak lost to dead material:
    the same draws whichever paths are switched off.
    """
    res = cfg.detector.hcal.resolution
    lost = np.asarray(escape["lost"], dtype=np.float64)  # respond's own: filled in place
    n = lost.shape[0]
    touched = np.asarray(escape.get("touched", np.ones(n, dtype=bool)), dtype=bool)
    j = np.flatnonzero(touched)
    for key in ("e_vhcal", "e_hcal1", "e_hcal2"):
        e = np.asarray(escape[key], dtype=np.float64)
        if j.size:
            g = rng.standard_normal(j.size)
            sm = np.maximum(e[j] + res * np.sqrt(e[j]) * g, 0.0)
            dep[key][j] += sm.astype(np.float32)
    return lost


def _leak_deposits(
    cfg: Config,
    rng: np.random.Generator,
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    e_leak_em: np.ndarray,
    e_leak_had: np.ndarray,
    dep: dict[str, np.ndarray],
    lost: np.ndarray | None,
) -> np.ndarray:
    """The ECAL's leak into the VHCAL and HCAL1 (``dep``, in place); returns the Vm flag.

    70% of the leak is absorbed in the VHCAL, the rest crosses its hole into HCAL1; with
    ``lost`` (the beam sample) the EM leak whose e+- MS2 sweeps beside the HCAL is lost.
    """
    res_hcal = cfg.detector.hcal.resolution
    vm = np.zeros(e_leak_em.size, dtype=bool)
    k = np.flatnonzero((e_leak_em > 0.0) | (e_leak_had > 0.0))
    if not k.size:
        return vm
    lk = e_leak_em[k] + e_leak_had[k]
    if lost is not None:
        from bkg.sim import escape as esc_mod

        # the EM leak through the VHCAL hole whose e+- MS2 sweeps beside the HCAL
        _, gone = esc_mod.em_gap(
            cfg,
            cfg.detector.escape,
            rng,
            leak_em=e_leak_em[k],
            x=np.asarray(x_cm, dtype=np.float64)[k],
            y=np.asarray(y_cm, dtype=np.float64)[k],
        )
        lost[k, esc_mod.PATHS["em_gap"] - 1] = gone
        lk = lk - gone
    res = res_hcal * np.sqrt(lk)
    vis = np.maximum(lk + res * rng.standard_normal(k.size), 0.0)
    dep["e_vhcal"][k] += 0.7 * vis
    dep["e_hcal1"][k] += 0.3 * vis
    vm[k] = rng.random(k.size) < 1 - np.exp(-e_leak_had[k] / 2.0)
    return vm
