"""Diagnostic figure per source: survival functions with tail fits and direct points, or counts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bkg.plotting import shared_mathtext_cache
from bkg.sources.base import SourceEstimate

#: Axis labels of the fitted variables (the JSON keeps the plain-text name).
VARIABLE_LABELS = {
    "p_out_true/p_out_rec - 1": r"MS2 curvature residual $p_\mathrm{true}/p_\mathrm{rec} - 1$",
    "p_in_rec/(p_out_rec + E_CAL) - 1 at E_CAL <= 20 GeV": (
        r"inverse energy balance $p_\mathrm{in}/(E'_\mu + E_\mathrm{CAL}) - 1$"
        r" ($E_\mathrm{CAL} \leq 20$ GeV)"
    ),
    "hadron visibility depth behind the ECAL (lambda_I)": (
        r"hadron visibility depth behind the ECAL [$\lambda_I$]"
    ),
}


def plot_source(est: SourceEstimate) -> Any:
    """Figure of a source's fit (or a summary panel for counting sources).

    Returns:
        matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from scipy import stats

    from bkg.fit.tailfit import expected_counts

    plt.style.use(mplhep.style.ROOT)
    fit = est.fit
    if "tail_models" in est.tails:
        fig = survival_figure(est, plt)
    elif "counts" in fit and "edges" in fit:
        counts = np.asarray(fit["counts"], float)
        edges = np.asarray(fit["edges"], float)
        fig, (ax, axp) = plt.subplots(
            2, 1, sharex=True, figsize=(8, 7), gridspec_kw={"height_ratios": [3, 1]}
        )
        centers = 0.5 * (edges[1:] + edges[:-1])
        # non-empty bins with Poisson 68% intervals (a symmetric sqrt(n) bar of a single
        # event reaches zero, which a log scale draws as a line to the bottom)
        nz = counts > 0
        c = counts[nz]
        lo = stats.chi2.ppf(0.15865, 2 * c) / 2
        hi = stats.chi2.ppf(0.84135, 2 * c + 2) / 2
        ax.errorbar(centers[nz], c, yerr=[c - lo, hi - c], fmt="k.", ms=2, label="sample")
        mu = expected_counts(edges, fit["parameters"], fit["model"], counts.sum())
        ax.stairs(mu, edges, color="C0", label=f"fit ({fit['model']})")
        # extrapolation: fitted density (per bin width) from the window across the cut
        cut = float(fit["cut"])
        span = edges[-1] - edges[0]
        if fit.get("side", "lower") == "upper":
            xs = np.linspace(edges[-1], cut + 0.05 * span, 200)
        else:
            xs = np.linspace(cut - 0.05 * span, edges[0], 200)
        dens = _density(xs, fit["parameters"], fit["model"], edges, counts.sum())
        lo_band, hi_band = _density_band(xs, fit, edges, counts.sum())
        ax.fill_between(
            xs, lo_band, hi_band, color="C1", alpha=0.4, label="extrapolation band (68%, stat)"
        )
        ax.axvline(cut, color="r", ls="--", label="signal region")
        ax.set_yscale("log")
        _tail_range(ax, c, xs, dens, lo_band, cut)
        ax.set_ylabel("events / bin")
        ax.legend(fontsize=10)
        title = f"{est.label}: {est.level_per_mot:.2g} per MOT"
        if "tail_level" in est.inputs:  # a level with a counted part besides the fitted tail
            title += f" (fitted tail {est.inputs['tail_level']:.2g})"
        ax.set_title(title, fontsize=12)
        pull = np.where(mu > 0, (counts - mu) / np.sqrt(np.maximum(mu, 1.0)), 0.0)
        axp.stairs(pull, edges, fill=True, color="C2")
        axp.set_ylabel("pull")
        variable = str(fit.get("variable", "x"))
        axp.set_xlabel(VARIABLE_LABELS.get(variable, variable), fontsize=16)
        axp.set_xlim(min(xs.min(), edges[0]), max(xs.max(), edges[-1]))
    elif "k_decays" in fit:
        fig = _decay_figure(est, plt)
    else:
        fig = _counting_figure(est, plt)
    return fig


#: the lowest y of a fit figure, below its smallest data point: enough for an
#: extrapolation to 1e-21 events per bin (non-hermeticity at 1e6 MOT) to reach its cut; one
#: further down (1e-40, momentum mismatch) is written on the figure instead
TAIL_DECADES = 24


def _tail_range(
    ax: Any, data: np.ndarray, xs: np.ndarray, dens: np.ndarray, lo_band: np.ndarray, cut: float
) -> None:
    """A y range from the data down to the extrapolation at the cut, but not more than
    :data:`TAIL_DECADES` below the smallest count: an extrapolation that reaches the cut
    further down (1e-40 events per bin) is noted with its value instead of forty empty
    decades."""
    at_cut = float(np.interp(cut, xs, dens))  # xs increases on either side of the window
    shown = [v for v in (at_cut, float(np.interp(cut, xs, lo_band)), 0.1) if v > 0]
    reach = min(shown)
    floor = (float(data.min()) if data.size else 1.0) * 10.0**-TAIL_DECADES
    top = 10 * float(data.max()) if data.size else 1.0
    ax.set_ylim(max(reach / 10, floor), top)
    if reach / 10 < floor:
        ax.text(0.98, 0.04, f"extrapolation at the cut: {at_cut:.1e} / bin (below the axis)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=10,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})  # fmt: skip


def _counting_figure(est: SourceEstimate, plt: Any) -> Any:
    """A counting source: its event counts as bars (log scale), the level in the title."""
    counts = {
        key.replace("_", " "): float(value)
        for key, value in est.inputs.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }
    fig, ax = plt.subplots(figsize=(9, 6))
    if counts:
        names = list(counts)
        # a zero count has no bar on a log axis: its "0" is written at the bottom instead
        values = [v if v > 0 else np.nan for v in counts.values()]
        ax.bar(range(len(names)), values, color="C0")
        for i, value in enumerate(counts.values()):
            ax.annotate(f"{value:.0f}", (i, value if value > 0 else 0.4), ha="center",
                        va="bottom", fontsize=12)  # fmt: skip
        ax.set_xticks(range(len(names)), names, rotation=15, ha="right", fontsize=12)
        ax.set_xlim(-0.6, len(names) - 0.4)  # a zero count's place too (it has no bar)
        ax.set_yscale("log")
        ax.set_ylim(0.3, 10 * max(max(counts.values()), 1.0))
        ax.set_ylabel("events")
    else:
        ax.axis("off")
    bound = " (90% CL upper bound)" if est.upper_bound else ""
    ax.set_title(f"{est.label}: {est.level_per_mot:.2g} per MOT{bound}", fontsize=13)
    # the method under the axes (below the tick labels), not over the bars or the frame
    fig.text(0.02, -0.02, "method: " + "\n".join(_wrap(est.method, 90)), va="top",
             fontsize=10, color="0.25")  # fmt: skip
    with shared_mathtext_cache():  # the log axes' labels, parsed for every figure once
        fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def _decay_figure(est: SourceEstimate, plt: Any) -> Any:
    """K- decays to a muon: where along the beam line they pass, and with which muon energy."""
    h = est.fit["k_decays"]
    z_edges, e_edges = np.asarray(h["z_edges"]), np.asarray(h["e_edges"])
    fig, (az, ae) = plt.subplots(1, 2, figsize=(12, 5))
    z_all, z_pass = np.asarray(h["z_all"]), np.asarray(h["z_pass"])
    eff = np.divide(z_pass, z_all, out=np.zeros_like(z_pass), where=z_all > 0)
    err = np.sqrt(np.clip(eff * (1 - eff), 0, None) / np.maximum(z_all, 1))
    centres = 0.5 * (z_edges[1:] + z_edges[:-1])
    az.errorbar(centres, eff, yerr=err, xerr=0.5 * np.diff(z_edges), fmt="k.", ms=3)
    az.set_xlabel(r"$K^-$ decay point from the BMS [m]", fontsize=14)
    az.set_ylabel("fraction passing trigger, cuts, box", fontsize=14)
    az.set_title(f"{est.label}: {est.level_per_mot:.2g} per MOT", fontsize=12)
    ae.stairs(np.asarray(h["e_all"]), e_edges, color="C0", label=r"$K^- \to \mu X$, all")
    ae.stairs(np.asarray(h["e_pass"]), e_edges, color="C1", fill=True, alpha=0.6,
              label="passing")  # fmt: skip
    ae.set_yscale("log")
    ae.set_xlabel("decay muon energy [GeV]", fontsize=14)
    ae.set_ylabel(r"$K^-$ decays / bin", fontsize=14)
    ae.legend(fontsize=10)
    return fig


def _density(
    xs: np.ndarray, params: dict[str, float], model: str, edges: np.ndarray, n: float
) -> np.ndarray:
    """Fitted events per bin width at xs, normalised to n events in the window."""
    from bkg.fit import shapes

    norm = shapes.integral(edges[0], edges[-1], params, model=model)
    return n * (edges[1] - edges[0]) * shapes.pdf_unnorm(xs, params, model=model) / norm


def _density_band(
    xs: np.ndarray, fit: dict[str, Any], edges: np.ndarray, n: float, draws: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """16% and 84% quantiles of the density at xs over parameters drawn from the covariance.

    Seeded, so that the figure is the same on every run; draws with a width or slope
    outside its physical side are skipped.
    """
    names = list(fit["parameter_order"])
    p0 = np.array([fit["parameters"][k] for k in names])
    rng = np.random.default_rng(0)
    rows = rng.multivariate_normal(p0, np.asarray(fit["covariance"]), size=draws, method="eigh")
    curves = []
    for row in rows:
        p = dict(zip(names, row.tolist(), strict=True))
        if any(p[k] <= 0 for k in names if k.startswith(("sigma", "alpha", "n"))):
            continue
        curves.append(_density(xs, p, fit["model"], edges, n))
    if len(curves) < 20:  # a covariance too wide to sample: no band rather than a wrong one
        d = _density(xs, fit["parameters"], fit["model"], edges, n)
        return d, d
    lo, hi = np.quantile(np.array(curves), [0.15865, 0.84135], axis=0)
    return lo, hi


def save_figure(fig: Any, out_dir: Path, name: str) -> list[Path]:
    """Write <name>.png (and <name>.pdf with ``--pdf all``: a diagnostic, not a figure of
    the paper, :mod:`bkg.plotting`) atomically (no timestamps) and close the figure.

    Returns:
        The paths written (the PNG alone unless PDFs are asked for).
    """
    from bkg import plotting as style

    return style.save_figure(fig, out_dir, name)


def survival_figure(est: SourceEstimate, plt: Any) -> Any:
    """N(> x) on a log scale: the sample with Poisson 68% bands, the nominal tail fit, the
    envelope of the passing fits carried out to the cut, and the direct points (closure).
    """
    from scipy import stats

    from bkg.fit.tailmodel import survival

    tails = est.tails["tail_models"]
    fit = est.fit
    cut = float(tails["cut"])
    n_total = float(tails["n_total"])
    values = np.sort(np.asarray(fit.get("tail_values", []), float))
    fig, ax = plt.subplots(figsize=(8.5, 6.5))
    if values.size:
        # N(> x) just at each event: a step down by one at every value; of tens of
        # thousands (the punch-through's depths), the steps where N falls by ~0.5%
        n_beyond = np.arange(values.size, 0, -1).astype(float)
        shown = np.arange(values.size)
        if values.size > 2000:
            ranks = np.unique(np.round(np.geomspace(1, values.size, 1500)).astype(int))
            shown = np.sort(values.size - ranks)
        xv, nv = values[shown], n_beyond[shown]
        lo = stats.chi2.ppf(0.15865, 2 * nv) / 2
        hi = stats.chi2.ppf(0.84135, 2 * nv + 2) / 2
        ax.fill_between(xv, lo, hi, step="post", color="0.8", label="sample, Poisson 68%")
        ax.step(xv, nv, where="post", color="k", lw=1.2, label="sample N(> x)")
    models = [m for m in tails["models"] if m.get("passed")]
    x0 = min((m["t0"] for m in models), default=float(values[0]) if values.size else cut / 2)
    xs = np.linspace(x0, cut * 1.05, 300)
    curves = []
    for m in models:
        mm = m["model"]
        ok = xs >= mm["t0"]
        y = np.full(xs.size, np.nan)
        y[ok] = survival(xs[ok], mm)
        curves.append(y)
    at_cut = []
    if curves:
        arr = np.array(curves)
        ax.fill_between(xs, np.nanmin(arr, axis=0), np.nanmax(arr, axis=0), color="C1", alpha=0.3,
                        label=f"envelope of {len(models)} passing tail fits")  # fmt: skip
        at_cut = [float(survival(cut, m["model"])[0]) for m in models]
    nominal = tails.get("nominal")
    if nominal is not None:
        nm = next(m for m in models if m["shape"] == nominal["shape"] and m["t0"] == nominal["t0"])
        ok = xs >= nm["t0"]
        ax.plot(xs[ok], survival(xs[ok], nm["model"]), color="C0", lw=2,
                label=f"nominal: {nm['shape']} above {nm['t0']:.3g}")  # fmt: skip
    closure = est.tails.get("closure") or {}
    for i, pt in enumerate(closure.get("points", [])):
        n_pred = pt["per_event"] * n_total
        err = pt["stat"] * n_total
        ax.errorbar([pt["x"]], [n_pred], yerr=[[min(err, 0.9 * n_pred)], [err]], fmt="s",
                    color="C3", ms=6, label="direct (biased simulation)" if i == 0 else None)  # fmt: skip
    ax.axvline(cut, color="r", ls="--", label=f"cut ({cut:.3g})")
    ax.set_yscale("log")
    _survival_axes(ax, values, x0, cut, at_cut, closure, n_total)
    if closure:
        _note_at_cut(ax, closure, n_total, est.tails.get("level_choice", {}).get("method", ""))
    ax.set_ylabel(f"events beyond x (of {n_total:.2g})", fontsize=14)
    variable = str(fit.get("variable", "x"))
    ax.set_xlabel(VARIABLE_LABELS.get(variable, variable), fontsize=14)
    title = f"{est.label}: {est.level_per_mot:.2g} per MOT"
    ax.set_title(title, fontsize=12)
    ax.legend(fontsize=9, loc="upper right")
    with shared_mathtext_cache():  # the log axes' labels, parsed for every figure once
        fig.tight_layout()
    return fig


def _survival_axes(ax: Any, values: np.ndarray, x0: float, cut: float, at_cut: list[float],
                   closure: Mapping[str, Any], n_total: float) -> None:  # fmt: skip
    """x from the data to just past the cut, y from the lowest shown level to the data."""
    # events stored far beyond the cut (a punch-through hadron never seen is at 1000
    # lambda_I) stay in N(> x) and are named instead of drawn
    left = min(x0, float(values[0])) if values.size else x0
    ax.set_xlim(left, cut + 0.08 * (cut - left))
    far = int(np.count_nonzero(values > cut * 1.05))
    if far:
        ax.annotate(f"{far} event(s) beyond the axis", (0.98, 0.5), xycoords="axes fraction",
                    ha="right", fontsize=9)  # fmt: skip
    top = 3.0 * max(float(values.size), 1.0)
    floor_candidates = [v for v in at_cut if v > 0]
    floor_candidates += [
        pt["per_event"] * n_total for pt in closure.get("points", []) if pt["per_event"] > 0
    ]
    bottom = max(min(floor_candidates, default=0.1) / 5.0, top * 1e-15)
    ax.set_ylim(bottom, top)
    hidden = [v for v in at_cut if v < bottom]
    if hidden:
        ax.annotate(f"{len(hidden)} fit(s) below the axis at the cut (down to {min(hidden):.1e} events)",
                    (0.02, 0.03), xycoords="axes fraction", fontsize=9)  # fmt: skip


def _note_at_cut(ax: Any, closure: Mapping[str, Any], n_total: float, method: str) -> None:
    """The direct and extrapolated counts at the cut, and which one Table I uses."""
    from bkg.sources.closure import direct_text

    ax.annotate(f"events at the cut: direct {direct_text(closure, n_total)}, extrapolated "
                f"{(closure['extrapolated'] or 0.0) * n_total:.2g}; Table I: {method}",
                (0.02, 0.08), xycoords="axes fraction", fontsize=9)  # fmt: skip
