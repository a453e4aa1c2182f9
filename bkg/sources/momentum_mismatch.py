"""Momentum mismatch: a beam muon reconstructed by MS2 below p_out_max (paper III.C)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.errors import FitError
from bkg.selection import BRANCHES, cut_flow, in_signal_box
from bkg.sources.base import (
    Source,
    SourceEstimate,
    count_estimate,
    register,
    sample_entries,
    sha256s,
    stream,
)
from bkg.sources.tailsource import fit_and_extrapolate, fit_record

NBINS = 300
HALF_WIDTH_SIGMAS = 10.0


def residual_window(cfg: Config) -> tuple[float, float]:
    """Fit window of r = p_out_rec / p_out_true - 1: +-10 dp/p, clipped above the cut."""
    half = HALF_WIDTH_SIGMAS * cfg.detector.spectrometers.ms2.resolution_rel
    cut = cfg.selection.p_out_max_gev / cfg.beam.energy_gev - 1.0
    return max(-half, cut + 0.05), half


def _knock_on(
    counts: np.ndarray,
    edges: np.ndarray,
    k: int,
    n_knock: int,
    *,
    n_mot: int,
    cut: float,
    factor: float,
    source: str,
) -> tuple[float, float, float, bool, Any]:
    """Knock-on part per MOT: direct count if any event reaches the cut, else the fitted tail
    of the knock-on residuals, else a 90% CL bound (not added to the level)."""
    if k > 0 or counts.sum() < 200:
        lv, up, dn, ub = count_estimate(k, n_mot, factor)
        # a 90% CL bound at zero counts is kept in the inputs, not added to the level
        return (0.0 if ub else lv), (0.0 if ub else up), (0.0 if ub else dn), ub, None
    try:
        nominal, _alt, ext = fit_and_extrapolate(
            counts, edges, n_total=n_mot, cut=cut, side="lower", source=f"{source} (knock-on)"
        )
    except FitError:
        return 0.0, 0.0, 0.0, True, None
    return (
        factor * ext.level,
        factor * np.hypot(ext.stat_up, ext.syst_up),
        factor * np.hypot(ext.stat_down, ext.syst_down),
        False,
        nominal.to_dict(),
    )


@register
class MomentumMismatch(Source):
    """Residuals of p_out_rec vs p_out_true; core + exponential tails; plus knock-on."""

    name = "momentum_mismatch"
    label = "Momentum mismatch"
    samples = ("beam",)

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        entries = sample_entries(manifest, "beam")
        e0 = cfg.beam.energy_gev
        cut = cfg.selection.p_out_max_gev / e0 - 1.0
        lo, hi = residual_window(cfg)
        edges = np.linspace(lo, hi, NBINS + 1)
        counts = np.zeros(NBINS)
        n_mot = 0
        n_muon = 0
        n_knock = 0
        k_edges = np.linspace(cut + 0.05, 0.5, 91)
        k_counts = np.zeros(90)
        n_knock_all = 0
        values: list[np.ndarray] = []
        mm = [f"hits_mm{i}" for i in (4, 5, 6)]
        plo, phi = cfg.selection.p_in_window_gev
        loose = dataclasses.replace(
            cfg, selection=dataclasses.replace(cfg.selection, single_track=False)
        )
        for ev in stream(
            cfg,
            samples_dir,
            entries,
            "beam",
            [*BRANCHES, "p_out_true", "process"],
        ):
            n_mot += len(ev["p_in_rec"])
            ok = (ev["p_out_true"] > cfg.selection.p_out_max_gev) & (ev["p_out_rec"] > 0)
            ok &= (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
            r = ev["p_out_rec"][ok].astype(float) / ev["p_out_true"][ok] - 1.0
            n_muon += int(ok.sum())
            counts += np.histogram(r, bins=edges)[0]
            if unbinned:
                values.append(r[(r >= lo) & (r <= hi)])
            extra = np.zeros(len(ok), dtype=bool)
            for name in mm:
                extra |= ev[name] > 1
            # the event passes everything but the single-track cut (the extra hit)
            flow = cut_flow(ev, loose)
            knock = (ev["process"] == 5) & extra & (ev["p_out_true"] > 0)
            knock &= flow["iv"] & in_signal_box(ev, cfg)
            n_knock_all += int(knock.sum())
            n_knock += int(
                np.count_nonzero(
                    knock & (ev["p_out_rec"] > 0) & (ev["p_out_rec"] <= cfg.selection.p_out_max_gev)
                )
            )
            rk = ev["p_out_rec"][knock].astype(float) / ev["p_out_true"][knock] - 1.0
            k_counts += np.histogram(rk, bins=k_edges)[0]
        shas = sha256s(entries)
        nominal, alt, ext = fit_and_extrapolate(
            counts,
            edges,
            n_total=n_mot,
            cut=cut,
            side="lower",
            source=self.name,
            values=np.concatenate(values) if unbinned else None,
        )
        # the fitted tail is per muon with a track; n_total = n_mot makes it per MOT already
        sp = cfg.detector.spectrometers
        factor = sp.micromegas_inefficiency ** (1 + sp.extra_trackers)
        k_level, k_up, k_down, k_bound, k_fit = _knock_on(
            k_counts,
            k_edges,
            n_knock,
            n_knock_all,
            n_mot=n_mot,
            cut=cut,
            factor=factor,
            source=self.name,
        )
        level = ext.level + k_level
        fit = fit_record(
            nominal, alt, ext, cut=cut, side="lower", variable="p_out_rec/p_out_true - 1", shas=shas
        )
        inputs = {
            "n_mot": n_mot,
            "n_muons": n_muon,
            "tail_level": ext.level,
            "knock_on_events": n_knock,
            "knock_on_level": k_level,
            # the knock-on part per MOT: the estimate, or its 90% CL bound when no event is left
            "knock_on_per_mot": count_estimate(0, n_mot, factor)[0] if k_bound else k_level,
            "knock_on_upper_bound": k_bound,
            "knock_on_bound_90cl": count_estimate(0, n_mot, factor)[0] if k_bound else None,
            "knock_on_fit": k_fit,
            "knock_on_with_extra_hit": n_knock_all,
            "micromegas_factor": factor,
            "cut_residual": cut,
        }
        return SourceEstimate(
            self.name,
            self.label,
            level,
            float(np.hypot(ext.stat_up, k_up)),
            float(np.hypot(ext.stat_down, k_down)),
            ext.syst_up,
            ext.syst_down,
            False,
            "Gauss+exp tail fit of MS2 residuals to p<=80 GeV + knock-on x MM ineff^n",
            inputs,
            fit,
        )
