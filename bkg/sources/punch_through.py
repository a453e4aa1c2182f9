"""Hadron punch-through: a leading hadron from mu N -> mu h X leaking through the HCAL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bkg.config import Config
from bkg.errors import FitError
from bkg.fit import extrapolate
from bkg.selection import BRANCHES, cut_flow
from bkg.sim.calorimeters import NEVER_VISIBLE_LAMBDA
from bkg.sources.base import (
    Source,
    SourceEstimate,
    count_estimate,
    register,
    sample_entries,
    sha256s,
    stream,
)
from bkg.sources.tailsource import (
    TailCollector,
    fit_and_extrapolate,
    fit_record,
    tail_analysis,
    tail_inputs,
    tail_json,
    tail_level,
)

MODULES = (1, 2, 3, 4)

#: Fit window of the visibility depth (lambda_I): beyond the ECAL's own showers (< 2) the
#: depth falls as exp(-t / lambda_h); the default sample runs out near 13.
DEPTH_WINDOW = (2.0, 13.0)
#: Start of the alternative fit (the far half of the window): a bend of the attenuation
#: with depth shows up as a different slope there (model systematic).
ALT_FROM_LAMBDA = 6.0
#: thresholds of the tail fits (lambda_I): from the end of the ECAL's own showers outwards
PT_THRESHOLDS = (2.0, 3.0, 4.0, 5.0)
#: tail shapes of the depth, the preferred first: the exponential attenuation of the first
#: interaction point (lambda_h = 1.2 lambda_I) that the deep showers follow, and a power law
PT_SHAPES = ("exp", "power")


class _Depths(NamedTuple):
    """The leading hadrons' visibility depths and the counts beyond one and two modules."""

    n: int
    n_deep: int
    n_mu_deep: int
    n_two: int
    n_never: int
    counts: np.ndarray
    tails: TailCollector


def _count_depths(
    cfg: Config, samples_dir: Path, entries: list[Mapping[str, Any]], edges: np.ndarray
) -> _Depths:
    """One pass over the leading-hadron sample: the depth histogram, its tail and counts."""
    mod_lambda = cfg.detector.hcal.module_lambda
    counts = np.zeros(len(edges) - 1)
    n = n_deep = n_mu_deep = n_two = n_never = 0
    # the depths beyond 1.5 lambda_I for the tail fits; a hadron too soft ever to become
    # visible (NEVER_VISIBLE_LAMBDA) is not in the depth's tail: counted, not extrapolated
    tails = TailCollector(edges, 1.5)
    for ev in stream(cfg, samples_dir, entries, "leading_hadrons", [*BRANCHES, "depth_lambda"]):
        n += len(ev["p_out_rec"])
        counts += np.histogram(ev["depth_lambda"], bins=edges)[0]
        never = ev["depth_lambda"] >= NEVER_VISIBLE_LAMBDA
        n_never += int(never.sum())
        tails.add(ev["depth_lambda"][~never])
        # muon side (trigger, (i), (ii), ECAL part of the box) among hadrons that reach
        # beyond one module: keeps the correlation between the two sides
        deep = ev["depth_lambda"] > mod_lambda
        mu_side = cut_flow(ev, cfg)["ii"] & (ev["e_ecal"] <= cfg.signal_box.e_cal_max_gev)
        n_deep += int(deep.sum())
        n_two += int(np.count_nonzero(ev["depth_lambda"] > 2 * mod_lambda))
        n_mu_deep += int((deep & mu_side).sum())
    if n == 0:
        raise FitError("punch_through: the leading_hadrons sample is empty")
    return _Depths(n, n_deep, n_mu_deep, n_two, n_never, counts, tails)


def _pt_probability(
    nominal: Any, scan: Any, mod_lambda: float, n: int, p_never: float
) -> dict[str, float]:
    """Punch-through probability beyond 1, 2 and 4 modules: the nominal tail fit where one
    passes, else the exponential window fit; plus the never-visible hadrons."""
    pt = {str(k): extrapolate(nominal, cut=k * mod_lambda, side="upper").level + p_never
          for k in (1, 2, 4)}  # fmt: skip
    if scan.nominal is not None:  # the nominal tail fit where one passes
        from bkg.fit.tailmodel import survival

        pt = {str(k): float(survival(k * mod_lambda, scan.nominal.model)[0]) / n + p_never
              for k in (1, 2, 4)}  # fmt: skip
    return pt


@register
class PunchThrough(Source):
    """P(leading hadron) x P_PT(modules): attenuation with the number of modules, extrapolated."""

    name = "punch_through"
    label = "Hadron punch-through"
    samples = ("leading_hadrons",)

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        entries = sample_entries(manifest, "leading_hadrons")
        mod_lambda = cfg.detector.hcal.module_lambda
        edges = np.linspace(DEPTH_WINDOW[0], DEPTH_WINDOW[1], 301)
        depths = _count_depths(cfg, samples_dir, entries, edges)
        n, n_deep, n_mu_deep, n_two, n_never, counts, tails = depths
        norm = float(sum(float(e["norm_per_mot"]) for e in entries) / len(entries))
        m = cfg.detector.hcal.modules
        f_mu, f_up, f_dn, mu_bound = count_estimate(n_mu_deep, max(n_deep, 1), 1.0)
        nominal, alt, ext = fit_and_extrapolate(
            counts, edges, n_total=n, cut=m * mod_lambda, side="upper", source=self.name,
            model="exponential", alt_model="exponential", alt_from=ALT_FROM_LAMBDA,
        )  # fmt: skip
        # the level: the tail fits above 2-5 lambda_I judged on the tail (bkg.fit.tailmodel),
        # plus the never-visible hadrons, counted
        cut = m * mod_lambda
        analysis = tail_analysis(tails, counts, n_total=n, cut=cut, shapes=PT_SHAPES,
                                 source=self.name, core=False, thresholds=PT_THRESHOLDS,
                                 x_ref=0.0, seed=cfg.seed)  # fmt: skip
        t_level, t_up, t_down, t_sup, t_sdown, supported = tail_level(analysis)
        p_never = n_never / n
        p_level = t_level + p_never
        scan = analysis["scan"]
        pt = _pt_probability(nominal, scan, mod_lambda, n, p_never)
        scale = norm * f_mu
        rel_mu = (0.0, 0.0) if mu_bound else (f_up / f_mu, f_dn / f_mu)
        level = scale * p_level
        up = level * float(np.hypot(t_up / p_level, rel_mu[0]))
        down = min(level * float(np.hypot(t_down / p_level, rel_mu[1])), level)
        fit = fit_record(
            nominal, alt, ext, cut=m * mod_lambda, side="upper",
            variable="hadron visibility depth behind the ECAL (lambda_I)", shas=sha256s(entries),
        )  # fmt: skip
        # the depths beyond the first threshold (6 digits: ~3e4 of them): the figure's data
        fit["tail_values"] = sorted(float(f"{v:.6g}") for v in analysis["values"])
        inputs: dict[str, Any] = {
            "n_events": n,
            "leading_hadron_per_mot": norm,
            "n_beyond_one_module": n_deep,
            "muon_side_given_punch_through": f_mu,
            "muon_side_upper_bound": mu_bound,
            "module_lambda": mod_lambda,
            "modules": m,
            "pt_probability": pt,
            # counted on every event (the fit's histogram ends at 13 lambda_I)
            "pt_direct": {"1": n_deep / n, "2": n_two / n},
            # hadrons too soft ever to show a shower: in the level as counted, per hadron
            "never_visible": n_never,
            **tail_inputs(t_level, t_up, t_down, t_sup, t_sdown, scale=scale),
            "tail_level_supported": supported,
            # the exponential window fit's own extrapolation (the attenuation's record)
            "window_fit_level": ext.level,
        }  # fmt: skip
        return SourceEstimate(
            self.name,
            self.label,
            level,
            up,
            down,
            scale * t_sup,
            scale * t_sdown,
            mu_bound,
            "P(leading h) x P(mu side) x PT from tail fits of the visibility depth + never-visible hadrons (counted)",
            inputs,
            fit,
            tail_json(analysis),
        )
