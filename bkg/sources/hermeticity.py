"""Detector non-hermeticity: beam muons reaching region D of the (E'_mu, E_CAL) plane.

The variable is the inverse energy balance w = p_in_rec / (p_out_rec + E_CAL) - 1 of
the muons with E_CAL <= 20 GeV: its core is Gaussian (the MS2 error is Gaussian in
1/p_out), so the Gaussian-core model describes it (chi2/ndf about 1 on 1e7 MOT,
against about 7 for the direct balance (p_out_rec + E_CAL) / p_in_rec - 1).
Region D, E'_mu <= 80 and E_CAL <= 20 GeV, lies at w >= E0 / 100 GeV - 1.
The model systematic is a fit-range variation, as for the momentum mismatch
(see :mod:`bkg.sources.momentum_mismatch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.selection import e_cal
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


@register
class Hermeticity(StreamingSource[_Sums]):
    """Inverse balance w = p_in/(E'_mu + E_CAL) - 1 of muons with E_CAL <= 20 GeV; tail to D."""

    name = "hermeticity"
    label = "Detector non-hermeticity"
    samples = ("beam",)
    reducer_type = _Sums

    def branches(self, cfg: Config) -> list[str]:
        return ["p_in_rec", "p_out_rec", "e_ecal", "e_vhcal", "e_hcal1", "e_hcal2"]

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
        level, up, down, s_up, s_down, supported = tail_level(analysis)
        fit = core_record(analysis, counts, edges, cut=cut,
                          variable="p_in_rec/(p_out_rec + E_CAL) - 1 at E_CAL <= 20 GeV",
                          shas=sha256s(entries))  # fmt: skip
        return SourceEstimate(
            self.name,
            self.label,
            level,
            up,
            down,
            s_up,
            s_down,
            False,
            "tail fit of the inverse energy balance at E_CAL<=20 GeV into region D",
            {
                "n_mot": n_mot,
                "n_e_cal_slice": n_slice,
                "cut_balance": cut,
                "tail_level_supported": supported,
                **tail_inputs(level, up, down, s_up, s_down),
            },
            fit,
            tail_json(analysis),
        )
