"""Diagnostic figure per source: data, fit, extrapolation band into the signal region, pulls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bkg.sources.base import SourceEstimate


def plot_source(est: SourceEstimate) -> Any:
    """Figure of a source's fit (or a summary panel for counting sources).

    Returns:
        matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    from bkg.fit import shapes
    from bkg.fit.tailfit import expected_counts

    plt.style.use(mplhep.style.ROOT)
    fit = est.fit
    if "counts" in fit and "edges" in fit:
        counts = np.asarray(fit["counts"], float)
        edges = np.asarray(fit["edges"], float)
        fig, (ax, axp) = plt.subplots(
            2, 1, sharex=True, figsize=(8, 7), gridspec_kw={"height_ratios": [3, 1]}
        )
        centers = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(centers, counts, yerr=np.sqrt(counts), fmt="k.", ms=2, label="sample")
        mu = expected_counts(edges, fit["parameters"], fit["model"], counts.sum())
        ax.stairs(mu, edges, color="C0", label=f"fit ({fit['model']})")
        # extrapolation: fitted density (per bin width) from the cut to the window
        cut = float(fit["cut"])
        width = edges[1] - edges[0]
        span = edges[-1] - edges[0]
        if fit.get("side", "lower") == "upper":
            xs = np.linspace(edges[-1], cut + 0.1 * span, 200)
        else:
            xs = np.linspace(cut - 0.1 * span, edges[0], 200)
        norm = shapes.integral(edges[0], edges[-1], fit["parameters"], model=fit["model"])
        dens = (
            counts.sum()
            * width
            * shapes.pdf_unnorm(xs, fit["parameters"], model=fit["model"])
            / norm
        )
        rel = (est.stat_up + est.syst_up) / max(est.level_per_mot, 1e-300)
        ax.fill_between(
            xs,
            dens / (1 + rel),
            dens * (1 + rel),
            color="C1",
            alpha=0.4,
            label="extrapolation band",
        )
        ax.axvline(cut, color="r", ls="--", label="signal region")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(min(dens.min(), 0.1) / 10, 1e-12))
        ax.set_ylabel("events / bin")
        ax.legend(fontsize=10)
        ax.set_title(f"{est.label}: {est.level_per_mot:.2g} per MOT", fontsize=12)
        pull = np.where(mu > 0, (counts - mu) / np.sqrt(np.maximum(mu, 1.0)), 0.0)
        axp.stairs(pull, edges, fill=True, color="C2")
        axp.set_ylabel("pull")
        axp.set_xlabel(fit.get("variable", "x"), fontsize=11)
        axp.set_xlim(min(xs.min(), edges[0]), max(xs.max(), edges[-1]))
    else:
        fig, ax = plt.subplots(figsize=(8, 5))
        ax.axis("off")
        lines = [
            f"{est.label}",
            f"level per MOT: {est.level_per_mot:.3g}"
            + (" (90% CL upper bound)" if est.upper_bound else ""),
            est.method,
        ]
        lines += [f"{k}: {v}" for k, v in est.inputs.items()][:10]
        ax.text(0.02, 0.98, "\n".join(lines), va="top", fontsize=10, family="monospace")
    return fig


def save_figure(fig: Any, out_dir: Path, name: str) -> None:
    """Write <name>.png and <name>.pdf atomically (no timestamps) and close the figure."""
    from bkg.report import style

    style.save_figure(fig, out_dir, name)
