"""Detector non-hermeticity: beam muons reaching region D of the (E'_mu, E_CAL) plane.

The level is the forced simulation of the escape paths (:mod:`bkg.sim.escape`) into the
signal box, by path; the tail of the inverse energy balance (:func:`balance_window`)
extrapolated into region D is its check (:func:`_closure`). Entry point:
:class:`Hermeticity` (what fits/hermeticity.json holds). Method and numbers:
docs/hermeticity-and-tracking.md (section 1), docs/tail-extrapolation.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.selection import BRANCHES, balance_cut, e_cal
from bkg.sim import escape
from bkg.sources import side
from bkg.sources.base import SourceEstimate, StreamingSource, register, sha256s
from bkg.sources.tailsource import (
    TailCollector,
    core_record,
    tail_analysis,
    tail_inputs,
    tail_json,
    tail_level,
)

NBINS = 300
#: tail shapes of the inverse balance, the preferred first (docs/tail-extrapolation.md): the
#: tail beyond 4 sigma is MS2 single scattering (process 6), so that law with the form
#: factor; an exponential (escape through an absorber); a power law (the hardest)
HERMETICITY_SHAPES = ("rutherford_ff", "exp", "power")


def balance_window(cfg: Config) -> tuple[float, float, float]:
    """(cut, lo, hi) of the inverse balance: the cut into region D and the fit window.

    The variable is the inverse energy balance w = p_in_rec / (p_out_rec + E_CAL) - 1 of
    the muons with E_CAL <= 20 GeV: its core is Gaussian (the MS2 error is Gaussian in
    1/p_out), so the Gaussian-core model describes it (chi2/ndf about 1 on 1e7 MOT,
    against about 7 for the direct balance (p_out_rec + E_CAL) / p_in_rec - 1).
    Region D, E'_mu <= 80 and E_CAL <= 20 GeV, lies at w >= E0 / 100 GeV - 1.
    """
    cut = balance_cut(cfg)
    half = 10.0 * np.hypot(
        cfg.detector.spectrometers.ms2.resolution_rel,
        cfg.detector.spectrometers.ms1.resolution_rel,
    )
    return cut, -half, min(half, cut - 0.05)


class _Sums:
    """The inverse-balance histogram of the E_CAL slice, summed over the chunks."""

    def __init__(self, cfg: Config, *, unbinned: bool) -> None:
        self.cfg = cfg
        self.unbinned = unbinned
        _, self.lo, self.hi = balance_window(cfg)
        self.edges = np.linspace(self.lo, self.hi, NBINS + 1)
        self.counts = np.zeros(NBINS)
        self.n_mot = 0
        self.n_slice = 0
        self.values: list[np.ndarray] = []
        # region-D events of the beam sample and escapes (e_escape > 1 GeV), by escape code
        self.region_d_by_code = np.zeros(len(escape.PATHS) + 1, dtype=np.int64)
        self.escapes_by_code = np.zeros(len(escape.PATHS) + 1, dtype=np.int64)
        self.tails = TailCollector(self.edges, 0.25 * self.hi)  # beyond 2.5 sigma

    def add(self, ev: Mapping[str, np.ndarray]) -> None:
        box = self.cfg.signal_box
        plo, phi = self.cfg.selection.p_in_window_gev
        self.n_mot += len(ev["p_in_rec"])
        ecal = e_cal(ev)
        ok = (ecal <= box.e_cal_max_gev) & (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
        ok &= ev["p_out_rec"] > 0
        u = ev["p_in_rec"][ok].astype(float) / (ev["p_out_rec"][ok] + ecal[ok]) - 1.0
        self.n_slice += int(ok.sum())
        self.counts += np.histogram(u, bins=self.edges)[0]
        self.tails.add(u)
        if self.unbinned:
            self.values.append(u[(u >= self.lo) & (u <= self.hi)])
        size = len(escape.PATHS) + 1
        code = ev["escape"].astype(np.intp)
        d = escape.region_d(dict(ev), self.cfg)
        self.region_d_by_code += np.bincount(code[d], minlength=size)
        self.escapes_by_code += np.bincount(code[ev["e_escape"] > 1.0], minlength=size)


@register
class Hermeticity(StreamingSource[_Sums]):
    """Inverse balance w = p_in/(E'_mu + E_CAL) - 1 of muons with E_CAL <= 20 GeV; tail to D.

    The level comes from the escape paths (:mod:`bkg.sim.escape`): a forced simulation
    (every muon with a photonuclear interaction v >= 0.25 and an escaping leading hadron,
    weights w = p_true / p_biased) measures the probability per MOT of the selected
    events in the signal box by escape path (``by_path``) and of region D as the tail
    variable reaches it (``closure``: ``direct``, ``direct_stat``, ``effective_events``,
    beside the tail fit's ``extrapolated``, their ``ratio`` and ``pull``). The beam
    sample's own region-D events are counted by path too (``beam_sample_region_d_events``
    in ``by_path``, ``beam_sample_region_d_by_code`` in the inputs).
    The systematic: the neutral leading-hadron fractions (config inputs) known to a
    factor 2, to which the neutral paths are proportional. The tail's model systematic
    is the envelope of its passing tail fits over fit ranges (thresholds) and shapes, as
    for the momentum mismatch (see :mod:`bkg.sources.momentum_mismatch`).
    """

    name = "hermeticity"
    label = "Detector non-hermeticity"
    samples = ("beam",)
    reducer_type = _Sums

    def branches(self, cfg: Config) -> list[str]:
        return [*BRANCHES, "escape", "e_escape"]

    def finish(
        self,
        cfg: Config,
        reduced: _Sums,
        entries: Sequence[Mapping[str, Any]],
        *,
        unbinned: bool,
    ) -> SourceEstimate:
        cut, _, _ = balance_window(cfg)
        counts, edges = reduced.counts, reduced.edges
        n_mot, n_slice = reduced.n_mot, reduced.n_slice
        analysis = tail_analysis(reduced.tails, counts, n_total=n_mot, cut=cut,
                                 shapes=HERMETICITY_SHAPES, source=self.name, seed=cfg.seed)  # fmt: skip
        t_level, t_up, t_down, t_sup, t_sdown, supported = tail_level(analysis)
        fit = core_record(analysis, counts, edges, cut=cut,
                          variable="p_in_rec/(p_out_rec + E_CAL) - 1 at E_CAL <= 20 GeV",
                          shas=sha256s(entries))  # fmt: skip
        direct = side.escape_direct(cfg)  # made on a second core while the fits ran
        sel, reg = direct["selected"], direct["region_d"]
        names = ["none", *escape.PATHS]
        by_path = {
            name: {
                "level": sel["by_path"][name]["level"],
                "stat": sel["by_path"][name]["stat"],
                "effective_events": sel["by_path"][name]["effective_events"],
                "events": sel["by_path"][name]["events"],
                "region_d": reg["by_path"][name]["level"],
                "region_d_stat": reg["by_path"][name]["stat"],
                "beam_sample_region_d_events": int(reduced.region_d_by_code[i]),
                "beam_sample_escapes_above_1_gev": int(reduced.escapes_by_code[i]),
            }
            for i, name in enumerate(names)
            if name != "none"
        }
        total = sel["total"]
        bound = total["events"] == 0
        level = total["level"]
        stat = total["stat"]
        if bound:
            # no forced event passes: 2.3 events at the forced sample's mean weight per event
            level = float(-np.log(0.1)) * reg["total"]["level"] / max(reg["total"]["events"], 1)
            stat = 0.0
        neutral = sum(by_path[p]["level"] for p in ("hcal_back", "hcal_side", "vhcal_hole"))
        closure, choice = _closure(
            reg["total"], cut, t_level, t_up, t_down, t_sup, t_sdown, supported
        )
        return SourceEstimate(
            self.name,
            self.label,
            level,
            stat,
            min(stat, level),
            neutral,
            0.5 * neutral,
            bound,
            "escape paths (n, K_L through HCAL back, sides, VHCAL hole; dead material; e+- "
            "through the hole; decay muons) by forced simulation into the signal box",
            {
                "n_mot": n_mot,
                "n_e_cal_slice": n_slice,
                "cut_balance": cut,
                # the tail analysis of the balance into region D: the check of the level
                "tail_level_supported": supported,
                **tail_inputs(t_level, t_up, t_down, t_sup, t_sdown),
                "forced_events": direct["n_forced"],
                "region_d_direct": reg["total"]["level"],
                "region_d_direct_stat": reg["total"]["stat"],
                "beam_sample_region_d_by_code": reduced.region_d_by_code.tolist(),
            },
            fit,
            {**tail_json(analysis), "by_path": by_path, "closure": closure, "level_choice": choice},
        )


def _closure(
    region_d: Mapping[str, Any],
    cut: float,
    ext: float,
    up: float,
    down: float,
    s_up: float,
    s_down: float,
    supported: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tail extrapolation into region D against the forced simulation of the escapes.

    The row itself is always the forced simulation through the whole selection (the
    escape paths are simulated, not extrapolated); the closure says whether the tail
    model of the balance, fitted on the unbiased beam sample, reaches the same region-D
    probability.
    """
    d, ds = float(region_d["level"]), float(region_d["stat"])
    ext_up, ext_down = float(np.hypot(up, s_up)), float(np.hypot(down, s_down))
    pull = ratio = None
    if region_d["events"] > 0:
        sig = float(np.hypot(ext_up if d > ext else ext_down, ds))
        pull = (ext - d) / sig if sig > 0 else None
        ratio = ext / d if d > 0 else None
    closure = {
        "direct": d, "direct_stat": ds, "effective_events": region_d["effective_events"],
        "extrapolated": ext, "extrapolated_up": ext_up, "extrapolated_down": ext_down,
        "ratio": ratio, "pull": pull, "n_beyond": int(region_d["events"]), "cut": cut,
        "method": "escape paths forced (bkg.sim.escape), region D of the balance",
    }  # fmt: skip
    agrees = pull is not None and abs(pull) <= 2 and supported
    choice = {
        "method": "direct (escape paths)",
        "reason": "the escape paths are simulated with forcing through the whole selection; "
        + (
            "the tail extrapolation agrees with the forced region-D probability"
            if agrees
            else "the tail extrapolation does not reproduce the forced region-D probability"
        ),
        "extrapolated": ext,
        "direct": d,
        "agreement": pull,
    }
    return closure, choice
