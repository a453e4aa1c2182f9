"""The trigger, the selection cuts (i)-(iv) and the signal box (paper Sec. II).

Functions of a chunk of events (a dict of numpy arrays with the branches of
:mod:`bkg.ntuple`) returning boolean masks. Used identically by the signal
efficiency and by every background source, so that all of them see one
definition of "an event that passes".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bkg.config import Config

__all__ = [
    "BRANCHES",
    "E_CAL_BRANCHES",
    "balance_cut",
    "cut_flow",
    "e_cal",
    "good_track",
    "hcal_one_mip",
    "in_signal_box",
    "next_station_on_same_side",
    "no_vhcal_deposit",
    "passes_selection",
    "passes_trigger",
    "residual_cut",
    "single_track",
]

TRACKERS = tuple(f"hits_mm{i}" for i in range(1, 7))


def next_station_on_same_side(station: np.ndarray | int, n_stations: int) -> np.ndarray:
    """Whether the MS2 station after ``station`` (0-based) exists on the same side of the magnet.

    The magnet sits between stations n/2 - 1 and n/2 (0-based): MM3 and MM4 of six.
    """
    nxt = np.asarray(station) + 1
    return (nxt < n_stations) & (nxt != n_stations // 2)


#: Branches the functions of this module read.
BRANCHES = (
    "p_in_rec", "p_out_rec", "e_ecal", "e_vhcal", "e_hcal1", "e_hcal2",
    "s0", "s1", "s_mu", "s4", "v1", "vm", *TRACKERS, "track_chi2",
)  # fmt: skip

Chunk = Mapping[str, np.ndarray]


def passes_trigger(ev: Chunk, cfg: Config) -> np.ndarray:
    """The trigger of the paper's Sec. II.

    S0 and S1 and S_mu and the off-axis S4, no hit in the vetoes V1, Vm1,2, and
    a BMS momentum inside ``beam.momentum_window_gev``: the paper's trigger
    "selects the well-defined primary muon beam ... and momentum spread by using
    scintillator counters, the BMS stations and the trackers next to it", which
    is what removes the low-energy halo muons that cross S0 and S1.
    """
    lo, hi = cfg.beam.momentum_window_gev
    bms = (ev["p_in_rec"] >= lo) & (ev["p_in_rec"] <= hi)
    return ev["s0"] & ev["s1"] & ev["s_mu"] & ev["s4"] & ~ev["v1"] & ~ev["vm"] & bms


#: the branches :func:`e_cal` sums
E_CAL_BRANCHES = ("e_ecal", "e_vhcal", "e_hcal1", "e_hcal2")


def e_cal(ev: Chunk) -> np.ndarray:
    """Total calorimeter energy E_CAL = E_ECAL + E_VHCAL + E_HCAL (GeV), as in Fig. 5."""
    return ev["e_ecal"] + ev["e_vhcal"] + ev["e_hcal1"] + ev["e_hcal2"]


def single_track(ev: Chunk) -> np.ndarray:
    """Exactly one hit in every MS2 Micromegas station."""
    ok = np.ones(len(ev["p_out_rec"]), dtype=bool)
    for name in TRACKERS:
        ok &= ev[name] == 1
    return ok


def good_track(ev: Chunk, cfg: Config) -> np.ndarray:
    """The MS2 track fit's chi2 at most ``selection.track_chi2_max`` (part of cut (ii))."""
    return ev["track_chi2"] <= cfg.selection.track_chi2_max


def no_vhcal_deposit(ev: Chunk, cfg: Config) -> np.ndarray:
    """Cut (iii): no energy deposit in the veto HCAL."""
    return ev["e_vhcal"] < cfg.selection.vhcal_max_gev


def hcal_one_mip(ev: Chunk, cfg: Config) -> np.ndarray:
    """Cut (iv): total HCAL deposit compatible with one MIP."""
    hlo, hhi = cfg.selection.hcal_mip_window_gev
    e_hcal = ev["e_hcal1"] + ev["e_hcal2"]
    return (e_hcal >= hlo) & (e_hcal <= hhi)


def cut_flow(ev: Chunk, cfg: Config) -> dict[str, np.ndarray]:
    """Cumulative masks after the trigger and after each of the cuts (i)-(iv).

    Cut (ii): a track below p_out_max, single-track (one hit per station) and with the
    fit's chi2 at most ``track_chi2_max`` (:func:`good_track`).

    Returns:
        dict with keys ``trigger``, ``i``, ``ii``, ``iii``, ``iv`` (boolean arrays,
        each including the previous ones).
    """
    sel = cfg.selection
    lo, hi = sel.p_in_window_gev
    trig = passes_trigger(ev, cfg)
    c1 = trig & (ev["p_in_rec"] >= lo) & (ev["p_in_rec"] <= hi)
    track = (ev["p_out_rec"] > 0) & (ev["p_out_rec"] < sel.p_out_max_gev)
    if sel.single_track:
        track &= single_track(ev)
    track &= good_track(ev, cfg)
    c2 = c1 & track
    c3 = c2 & no_vhcal_deposit(ev, cfg)
    c4 = c3 & hcal_one_mip(ev, cfg)
    return {"trigger": trig, "i": c1, "ii": c2, "iii": c3, "iv": c4}


def passes_selection(ev: Chunk, cfg: Config) -> np.ndarray:
    """Trigger and all cuts (i)-(iv)."""
    return cut_flow(ev, cfg)["iv"]


def in_signal_box(ev: Chunk, cfg: Config) -> np.ndarray:
    """Signal box: E_CAL <= 20 GeV and E'_mu <= 80 GeV (defaults), on top of nothing else."""
    box = cfg.signal_box
    return (e_cal(ev) <= box.e_cal_max_gev) & (ev["p_out_rec"] <= box.e_mu_out_max_gev)


def residual_cut(cfg: Config) -> float:
    """r = p_out_true / p_out_rec - 1 at which a muon of E0 is reconstructed at p_out_max (1.0 by default)."""
    return cfg.beam.energy_gev / cfg.selection.p_out_max_gev - 1.0


def balance_cut(cfg: Config) -> float:
    """Inverse energy balance p_in / (E'_mu + E_CAL) - 1 at the edge of region D.

    Region D is E_CAL <= 20 and E'_mu <= 80 GeV: the balance above E0 / (80 + 20) - 1.
    """
    box = cfg.signal_box
    return cfg.beam.energy_gev / (box.e_mu_out_max_gev + box.e_cal_max_gev) - 1.0
