"""Dimuon production: mu N -> mu N mu+ mu- with the extra muons missed."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.errors import SampleError
from bkg.selection import BRANCHES, cut_flow, in_signal_box
from bkg.sim.dimuons import pair_energy_min_gev
from bkg.sources.base import (
    Source,
    SourceEstimate,
    count_estimate,
    register,
    sample_entries,
    sha256s,
    stream,
)


@register
class Dimuon(Source):
    """Yield per MOT x P(multi-MIP HCAL signature fails) x P(tracker multiplicity fails)."""

    name = "dimuon"
    fits = False  # counting only: may run in the side process
    label = "Dimuon production"
    samples = ("dimuons",)

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        entries = sample_entries(manifest, "dimuons")
        ineff = cfg.detector.spectrometers.micromegas_inefficiency
        loose = dataclasses.replace(
            cfg, selection=dataclasses.replace(cfg.selection, single_track=False)
        )
        n = n_cand = n_direct = n_bh = n_bh_hard = 0
        w_sum = w2_sum = 0.0
        k_box = pair_energy_min_gev(cfg)
        for ev in stream(cfg, samples_dir, entries, "dimuons", [*BRANCHES, "e_gamma", "trident"]):
            n += len(ev["p_out_rec"])
            bh = ~ev["trident"].astype(bool)
            n_bh += int(bh.sum())
            n_bh_hard += int((bh & (ev["e_gamma"] >= k_box)).sum())
            # every cut but the track multiplicity: the multi-MIP HCAL signature is tested here
            cand = cut_flow(ev, loose)["iv"] & in_signal_box(ev, cfg)
            hits = np.stack([ev[f"hits_mm{i}"].astype(np.int64) for i in range(1, 7)])
            extra = np.maximum(hits - 1, 0).sum(axis=0)
            # multiplicity fails when every extra Micromegas hit is lost: ineff^(extra hits)
            w = np.power(ineff, extra[cand].astype(float))
            n_cand += int(cand.sum())
            n_direct += int((cand & (extra == 0)).sum())
            w_sum += float(w.sum())
            w2_sum += float((w * w).sum())
        norm = float(sum(float(e["norm_per_mot"]) for e in entries) / len(entries))
        if n == 0:
            raise SampleError("dimuon: the dimuons sample is empty")
        if n_cand == 0:
            level, up, down, ub = count_estimate(0, n, norm)
            how = "90% CL bound: no event passes the HCAL multi-MIP rejection"
        else:
            level = norm * w_sum / n
            rel = max(np.sqrt(w2_sum) / w_sum, 1.0 / np.sqrt(n_cand))
            up, down, ub = level * rel, level * min(rel, 1.0), False
            how = "HCAL passes counted x MM ineff^(extra hits) per event"
        return SourceEstimate(
            self.name,
            self.label,
            level,
            float(up),
            float(down),
            0.0,
            0.0,
            ub,
            f"dimuon yield x P(multi-MIP HCAL and multiplicity fail) ({how})",
            {
                "n_events": n,
                "yield_per_mot": norm,
                # the sample's Bethe-Heitler pairs: every energy (the paper's ~1e-7 per
                # MOT) and those that can put the muon into the box (k >= E0 - E'_max)
                "bethe_heitler_per_mot": norm * n_bh / n,
                "bethe_heitler_hard_per_mot": norm * n_bh_hard / n,
                "bethe_heitler_per_beam_muon": norm * n_bh / n / (1.0 - cfg.beam.halo_fraction),
                "trident_per_mot": norm * (n - n_bh) / n,
                "pass_hcal_in_box": n_cand,
                "single_track_among_them": n_direct,
                "micromegas_inefficiency": ineff,
            },
            {"model": how, "sample_sha256": sha256s(entries)},
        )
