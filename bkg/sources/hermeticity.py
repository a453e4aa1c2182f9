"""Detector non-hermeticity: beam muons reaching region D of the (E'_mu, E_CAL) plane."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.selection import e_cal
from bkg.sources.base import Source, SourceEstimate, register, sample_entries, sha256s, stream
from bkg.sources.tailsource import fit_and_extrapolate, fit_record

NBINS = 300


@register
class Hermeticity(Source):
    """Energy balance u = (E'_mu + E_CAL)/p_in - 1 of muons with E_CAL <= 20 GeV; tail to D."""

    name = "hermeticity"
    label = "Detector non-hermeticity"
    samples = ("beam",)

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        entries = sample_entries(manifest, "beam")
        box = cfg.signal_box
        e0 = cfg.beam.energy_gev
        # region D: E_CAL <= 20 and E'_mu <= 80 -> energy balance below (80 + 20)/E0 - 1
        cut = (box.e_mu_out_max_gev + box.e_cal_max_gev) / e0 - 1.0
        half = 10.0 * np.hypot(
            cfg.detector.spectrometers.ms2.resolution_rel,
            cfg.detector.spectrometers.ms1.resolution_rel,
        )
        lo, hi = max(-half, cut + 0.05), half
        edges = np.linspace(lo, hi, NBINS + 1)
        counts = np.zeros(NBINS)
        n_mot = 0
        n_slice = 0
        values: list[np.ndarray] = []
        plo, phi = cfg.selection.p_in_window_gev
        for ev in stream(
            cfg,
            samples_dir,
            entries,
            "beam",
            ["p_in_rec", "p_out_rec", "e_ecal", "e_vhcal", "e_hcal1", "e_hcal2"],
        ):
            n_mot += len(ev["p_in_rec"])
            ecal = e_cal(ev)
            ok = (ecal <= box.e_cal_max_gev) & (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
            ok &= ev["p_out_rec"] > 0
            u = (ev["p_out_rec"][ok].astype(float) + ecal[ok]) / ev["p_in_rec"][ok] - 1.0
            n_slice += int(ok.sum())
            counts += np.histogram(u, bins=edges)[0]
            if unbinned:
                values.append(u[(u >= lo) & (u <= hi)])
        nominal, alt, ext = fit_and_extrapolate(
            counts,
            edges,
            n_total=n_mot,
            cut=cut,
            side="lower",
            source=self.name,
            values=np.concatenate(values) if unbinned else None,
        )
        fit = fit_record(
            nominal,
            alt,
            ext,
            cut=cut,
            side="lower",
            variable="(p_out_rec + E_CAL)/p_in_rec - 1 at E_CAL <= 20 GeV",
            shas=sha256s(entries),
        )
        return SourceEstimate(
            self.name,
            self.label,
            ext.level,
            ext.stat_up,
            ext.stat_down,
            ext.syst_up,
            ext.syst_down,
            False,
            "Gauss+exp tail fit of the energy balance at E_CAL<=20 GeV into region D",
            {"n_mot": n_mot, "n_e_cal_slice": n_slice, "cut_balance": cut},
            fit,
        )
