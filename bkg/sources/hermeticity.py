"""Detector non-hermeticity: beam muons reaching region D of the (E'_mu, E_CAL) plane.

The variable is the inverse energy balance w = p_in_rec / (p_out_rec + E_CAL) - 1 of
the muons with E_CAL <= 20 GeV: its core is Gaussian (the MS2 error is Gaussian in
1/p_out), so the Gaussian-core model describes it (chi2/ndf about 1 on 1e7 MOT,
against about 7 for the direct balance (p_out_rec + E_CAL) / p_in_rec - 1).
Region D, E'_mu <= 80 and E_CAL <= 20 GeV, lies at w >= E0 / 100 GeV - 1.
The model systematic is a fit-range variation, as for the momentum mismatch
(see :mod:`bkg.sources.momentum_mismatch`).

The level comes from the escape paths (:mod:`bkg.sim.escape`): a forced simulation
(every muon with a photonuclear interaction v >= 0.25 and an escaping leading hadron,
weights w = p_true / p_biased) measures the probability per MOT of the selected events
in the signal box by escape path (``by_path``) and of region D as the tail variable
reaches it (``closure``: ``direct``, ``direct_stat``, ``effective_events``, beside the
tail fit's ``extrapolated``, their ``ratio`` and ``pull``). The beam sample's own
region-D events are counted by path too (``beam_region_d_by_path``). The systematic:
the neutral leading-hadron fractions (config inputs) known to a factor 2, to which
the neutral paths are proportional.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.selection import BRANCHES, e_cal
from bkg.sim import escape
from bkg.sources.base import SourceEstimate, StreamingSource, register, sha256s
from bkg.sources.tailsource import fit_and_extrapolate, fit_record, power_law_level

NBINS = 300


def balance_window(cfg: Config) -> tuple[float, float, float]:
    """(cut, lo, hi) of the inverse balance: the cut into region D and the fit window."""
    box = cfg.signal_box
    e0 = cfg.beam.energy_gev
    # region D: E_CAL <= 20 and E'_mu <= 80 -> inverse balance above E0/(80 + 20) - 1
    cut = e0 / (box.e_mu_out_max_gev + box.e_cal_max_gev) - 1.0
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
        if self.unbinned:
            self.values.append(u[(u >= self.lo) & (u <= self.hi)])
        size = len(escape.PATHS) + 1
        code = ev["escape"].astype(np.intp)
        d = escape.region_d(dict(ev), self.cfg)
        self.region_d_by_code += np.bincount(code[d], minlength=size)
        self.escapes_by_code += np.bincount(code[ev["e_escape"] > 1.0], minlength=size)


@register
class Hermeticity(StreamingSource[_Sums]):
    """Inverse balance w = p_in/(E'_mu + E_CAL) - 1 of muons with E_CAL <= 20 GeV; tail to D."""

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
        counts, edges, values = reduced.counts, reduced.edges, reduced.values
        n_mot, n_slice = reduced.n_mot, reduced.n_slice
        nominal, alt, ext = fit_and_extrapolate(
            counts,
            edges,
            n_total=n_mot,
            cut=cut,
            side="upper",
            source=self.name,
            alt_model=None,  # the fit-range variation: see the module docstring
            values=np.concatenate(values) if unbinned else None,
        )
        fit = fit_record(
            nominal,
            alt,
            ext,
            cut=cut,
            side="upper",
            variable="p_in_rec/(p_out_rec + E_CAL) - 1 at E_CAL <= 20 GeV",
            shas=sha256s(entries),
        )
        direct = escape.direct_estimate(cfg)
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
        direct_d = escape.closure_direct(cfg)
        d, ds = direct_d["direct"], direct_d["direct_stat"]
        closure = {
            **direct_d,
            "extrapolated": ext.level,
            "ratio": ext.level / d if d > 0 else None,
            "pull": (ext.level - d) / float(np.hypot(ds, ext.stat_up)) if ds > 0 else None,
        }
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
                # the same window with a power-law tail instead (not an uncertainty: README)
                "power_law_tail_level": power_law_level(
                    counts, edges, n_total=n_mot, cut=cut, side="upper", source=self.name
                ),
                # the tail fit's extrapolation into region D (the level until the escape paths)
                "tail_level": ext.level,
                "forced_events": direct["n_forced"],
                "region_d_direct": d,
                "region_d_direct_stat": ds,
                "beam_sample_region_d_by_code": reduced.region_d_by_code.tolist(),
            },
            fit,
            {"by_path": by_path, "closure": closure},
        )
