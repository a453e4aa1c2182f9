"""Figures of the statistics stage: the sensitivity (paper Fig. 6) and the reach versus N_MOT.

The figures only draw: every limit they show comes in a results object
(:class:`bkg.stats.stage.LimitResults`, :class:`bkg.stats.reach.ReachVsMot`,
:class:`bkg.stats.overlays.Curve`). The one-bin limit is solved once in signal
events and mapped to the masses of the grid; the curves are drawn on a fine mass
grid by interpolating log g' in log m (monotone cubic), which is exact to drawing
precision because g' goes as the inverse square root of the smooth signal yield.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "draw_g2_band",
    "draw_overlays",
    "fine_masses",
    "in_mass_range",
    "legend_below",
    "log_interp",
    "mot_label",
    "plot_reach",
    "plot_reach_vs_mot",
    "set_coupling_range",
    "style_mass_axes",
]

#: points of the fine mass grid the curves are drawn on
FINE_POINTS = 400
#: the g-2 bands, in the order of the references drawn (hatched, with an outline)
G2_COLOURS = ("#2ca02c", "#9467bd")
#: colours of the overlay curves (the project's own computed limits are black)
OVERLAY_COLOURS = ("#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


def _save(fig: Any, out_dir: str | Path | None, stem: str) -> list[Path]:
    """PNG + PDF with no timestamps (reproducible bytes); the figure stays open for the caller."""
    if out_dir is None:
        return []
    from bkg.plotting import save_figure

    return save_figure(fig, out_dir, stem, close=False)


def fine_masses(masses_gev: ArrayLike, points: int = FINE_POINTS) -> np.ndarray:
    """A log-spaced grid over the range of ``masses_gev``."""
    m = np.asarray(masses_gev, float)
    m = m[np.isfinite(m) & (m > 0)]
    return np.geomspace(m.min(), m.max(), points) if m.size else m


def log_interp(x_new: np.ndarray, x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """``y(x_new)``: monotone cubic (PCHIP) in log y versus log x through the finite, positive
    points; NaN outside them (a mass without a limit stays without one)."""
    from scipy.interpolate import PchipInterpolator

    xa, ya = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(xa) & np.isfinite(ya) & (xa > 0) & (ya > 0)
    out = np.full(np.shape(x_new), np.nan)
    if ok.sum() < 2:
        return out
    lx, ly = np.log(xa[ok]), np.log(ya[ok])
    inside = (x_new >= xa[ok].min()) & (x_new <= xa[ok].max())
    out[inside] = np.exp(PchipInterpolator(lx, ly)(np.log(x_new[inside])))
    return out


def draw_g2_band(
    ax: Any,
    masses_gev: np.ndarray,
    cfg: Any,
    *,
    reference: str | None = None,
    colour: str = G2_COLOURS[0],
) -> bool:
    """The (g-2)_mu band of ``reference`` as a hatched band with an outline and its central line.

    Hatched and not filled, under the expected bands, with its edges drawn over them: no
    band hides another or changes its colour. An
    edge at g' = 0 (Delta a_mu within band_sigmas of zero) cannot be drawn on a log axis:
    the band is drawn down to the bottom of the axes (call :func:`set_coupling_range`
    first) and the function returns True so the caller can say so.
    """
    from bkg.stats.reach import g2_band

    low, central, high = g2_band(masses_gev, cfg, reference=reference)
    name = reference or cfg.g_minus_2.reference
    clipped = bool(np.any(low <= 0))
    bottom = ax.get_ylim()[0]
    edge = np.where(low > 0, low, bottom)
    label = rf"$(g-2)_\mu$ {name}, $\pm${cfg.g_minus_2.band_sigmas:g}$\sigma$"
    if clipped:
        label += r" (to $g'$ = 0)"
    # the hatching under the expected bands (which stay whole), the outline over them
    ax.fill_between(
        masses_gev, edge, high, facecolor="none", edgecolor=colour, hatch="//", lw=0.0,
        label=label, zorder=0.5,
    )  # fmt: skip
    ax.plot(masses_gev, high, color=colour, lw=1.2, zorder=3)
    if not clipped:
        ax.plot(masses_gev, low, color=colour, lw=1.2, zorder=3)
    if np.all(central > 0):
        ax.plot(masses_gev, central, color=colour, lw=0.8, ls=":", zorder=3)
    return clipped


def draw_overlays(ax: Any, curves: Sequence[Any]) -> None:
    """Curves from other results (user CSV, drawn as given) and limits computed here
    (black, solid; on the fine mass grid, like the projection)."""
    user = 0
    for curve in curves:
        if curve.computed:
            mf = fine_masses(curve.masses_gev)
            g = log_interp(mf, curve.masses_gev, curve.g_prime)
            ax.plot(mf, g, color="black", lw=2.0, label=curve.legend, zorder=4)
        else:
            colour = OVERLAY_COLOURS[user % len(OVERLAY_COLOURS)]
            user += 1
            ax.plot(curve.masses_gev, curve.g_prime, color=colour, lw=1.6, ls="-.", label=curve.legend, zorder=4)  # fmt: skip


def set_coupling_range(ax: Any, values: Sequence[np.ndarray]) -> None:
    """A y range from half the smallest to twice the largest positive, finite value drawn
    (limits, band edges, overlays within the mass range): no decades of empty axes."""
    flat = (
        np.concatenate([np.ravel(np.asarray(v, float)) for v in values]) if values else np.array([])
    )
    flat = flat[np.isfinite(flat) & (flat > 0)]
    if flat.size:
        ax.set_ylim(0.5 * flat.min(), 2.0 * flat.max())


def mot_label(n_mot: float) -> str:
    """N_MOT for a figure: 1e11 as $10^{11}$, 1.98e10 as $1.98\\times10^{10}$."""
    mantissa, exponent = (
        f"{n_mot:.3g}".split("e") if "e" in f"{n_mot:.3g}" else (f"{n_mot:.3g}", "0")
    )
    if exponent == "0":
        return mantissa
    power = f"10^{{{int(exponent)}}}"
    return f"${power}$" if float(mantissa) == 1.0 else f"${mantissa}\\times{power}$"


def in_mass_range(curve: Any, lo: float, hi: float) -> np.ndarray:
    m = np.asarray(curve.masses_gev)
    return np.asarray(curve.g_prime)[(m >= lo) & (m <= hi)]


def style_mass_axes(ax: Any, *, ylabel: str = r"coupling $g'$") -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{Z'}$ [GeV]")
    ax.set_ylabel(ylabel, loc="center")


def legend_below(fig: Any, ax: Any, notes: Sequence[str] = ()) -> None:
    """The legend (and notes) under the axes, in two columns: the curves stay visible."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
        fontsize=14, frameon=False,
    )  # fmt: skip
    for i, note in enumerate(notes):
        ax.text(0.02, 0.03 + 0.06 * i, note, transform=ax.transAxes, fontsize=11, color="0.25",
                ha="left", va="bottom", zorder=6,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})  # fmt: skip


def plot_reach(
    results: Any,
    cfg: Any,
    *,
    out_dir: str | Path | None = None,
    overlays: Sequence[Any] = (),
    g2_references: Sequence[str] | None = None,
) -> Any:
    """Paper Fig. 6: expected g'_90 versus m_Z' with +-1/2 sigma bands and the g-2 band.

    Args:
        results: a :class:`bkg.stats.stage.LimitResults` (the limits, computed).
        cfg: the configuration (g-2 references).
        out_dir: folder for sensitivity.png/.pdf (None: do not write).
        overlays: :class:`bkg.stats.overlays.Curve` to draw beside the projection.
        g2_references: g-2 references to draw (default: the configured one).

    Returns:
        The matplotlib Figure.
    """
    from bkg.plotting import figure_style

    m = np.asarray(results.masses_gev, float)
    g = np.asarray(results.g_expected, float)
    mf = fine_masses(m)
    band = np.stack([log_interp(mf, m, g[:, k]) for k in range(5)], axis=1)
    observed = log_interp(mf, m, np.asarray(results.g_observed, float))
    with figure_style() as plt:
        fig, ax = plt.subplots(figsize=(9, 7.5))
        style_mass_axes(ax)
        ax.fill_between(mf, band[:, 0], band[:, 4], color="#FFDF7F", lw=0, label=r"expected $\pm 2\sigma$")  # fmt: skip
        ax.fill_between(mf, band[:, 1], band[:, 3], color="#85D1FB", lw=0, label=r"expected $\pm 1\sigma$")  # fmt: skip
        ev = results.event_limit
        ax.plot(mf, band[:, 2], "k--", label=f"expected {ev.confidence_level:.0%} CL median")
        if np.any(np.isfinite(observed)):
            ax.plot(
                mf, observed, "k-", lw=2, label=f"observed ({results.observed_events:g} events)"
            )
        draw_overlays(ax, overlays)
        ranges = [band, observed] + [in_mass_range(c, mf.min(), mf.max()) for c in overlays]
        from bkg.stats.reach import g2_band

        refs = list(g2_references or [cfg.g_minus_2.reference])
        for name in refs:
            lo, _, hi = g2_band(mf, cfg, reference=name)
            ranges += [lo, hi]
        set_coupling_range(ax, ranges)
        notes = []
        for i, name in enumerate(refs):
            if draw_g2_band(ax, mf, cfg, reference=name, colour=G2_COLOURS[i % 2]):
                notes.append(
                    f"(g-2) {name} band: lower edge at g' = 0, cut at the bottom of the axes"
                )
        ax.set_xlim(mf.min(), mf.max())
        ax.set_title(
            f"NA64$\\mu$ projection, {mot_label(results.n_mot)} MOT, background "
            f"{results.background_events:.3g} events, CLs ({ev.calculator})",
            fontsize=13,
        )
        legend_below(fig, ax, notes)
        if _save(fig, out_dir, "sensitivity"):
            plt.close(fig)
        return fig


def plot_reach_vs_mot(reach: Any, *, out_dir: str | Path | None = None) -> Any:
    """Expected median g'_90 versus N_MOT at a few masses (from a :class:`ReachVsMot`);
    vertical lines where the expected background reaches 0.1 and 1 events.

    Returns:
        The matplotlib Figure.
    """
    from bkg.plotting import figure_style

    g = reach.g_prime
    with figure_style() as plt:
        fig, ax = plt.subplots(figsize=(8, 6))
        for k, mp in enumerate(reach.picks_gev):
            ax.plot(reach.n_mot, g[k], "o-", ms=4, label=f"$m_{{Z'}}$ = {mp * 1e3:g} MeV")
        for nb, style in ((0.1, ":"), (1.0, "-.")):
            n = reach.n_mot_at_background(nb)
            if reach.n_mot.min() <= n <= reach.n_mot.max():
                ax.axvline(n, color="grey", ls=style, label=f"background {nb:g} event{'s' * (nb != 1)}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$N_{MOT}$")
        ax.set_ylabel(r"expected median $g'_{90}$", loc="center")
        ax.set_title(f"CLs median ({reach.calculator})", fontsize=13)
        legend_below(fig, ax)
        if _save(fig, out_dir, "reach_vs_mot"):
            plt.close(fig)
        return fig
