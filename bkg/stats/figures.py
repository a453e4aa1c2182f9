"""Figures of the statistics stage: the sensitivity (paper Fig. 6) and the reach versus N_MOT."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bkg.stats.model import Table1

__all__ = ["band_for_log_axis", "plot_reach", "plot_reach_vs_mot", "read_constraint_csv"]

#: toys per median limit of the reach-versus-N_MOT figure (limits.json uses statistics.n_toys)
FIGURE_TOYS = 2000


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    return plt


def _save(fig: Any, out_dir: str | Path | None, stem: str) -> None:
    """PNG + PDF with no timestamps (reproducible bytes); the figure stays open for the caller."""
    if out_dir is None:
        return
    from bkg.report.style import save_figure

    save_figure(fig, out_dir, stem, close=False)


def band_for_log_axis(low: np.ndarray, high: np.ndarray, floor: float) -> np.ndarray:
    """The lower edge of a band to draw on a log axis: an edge at g' = 0 is drawn at ``floor``."""
    return np.where(low > 0, low, np.minimum(floor, 0.1 * np.min(high)))


def read_constraint_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A constraint curve: CSV with columns mass (GeV), g' (header lines starting with # or text skipped)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            continue
    arr = np.asarray(rows, float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def plot_reach(
    results: Any,
    cfg: Any,
    *,
    out_dir: str | Path | None = None,
    constraints: dict[str, str | Path] | None = None,
    g2_references: Sequence[str] | None = None,
) -> Any:
    """Paper Fig. 6: expected g'_90 versus m_Z' with +-1/2 sigma bands and the g-2 band.

    Args:
        results: a :class:`bkg.stats.stage.LimitResults`.
        cfg: the configuration (g-2 references).
        out_dir: folder for sensitivity.png/.pdf (None: do not write).
        constraints: label -> CSV path (mass GeV, g').
        g2_references: g-2 references to draw (default: the configured one).

    Returns:
        The matplotlib Figure.
    """
    from bkg.report.sensitivity import g2_band

    plt = _pyplot()
    m = np.asarray(results.masses_gev)
    g = np.asarray(results.g_expected)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.fill_between(m, g[:, 0], g[:, 4], color="#FFDF7F", label=r"Expected $\pm 2\sigma$")
    ax.fill_between(m, g[:, 1], g[:, 3], color="#85D1FB", label=r"Expected $\pm 1\sigma$")
    ax.plot(m, g[:, 2], "k--", label=f"Expected {results.event_limit.confidence_level:.0%} CL")
    if np.any(np.isfinite(results.g_observed)):
        ax.plot(m, results.g_observed, "k-", label="Observed")
    colours = ["#2ca02c", "#9467bd"]
    for i, name in enumerate(g2_references or [cfg.g_minus_2.reference.name]):
        lo, _, hi = g2_band(m, cfg, reference=name)
        lo = band_for_log_axis(lo, hi, 0.1 * float(np.nanmin(g[:, 0])))
        ax.fill_between(m, lo, hi, color=colours[i % 2], alpha=0.4, label=f"$(g-2)_\\mu$ {name}")
    for label, path in (constraints or {}).items():
        cm, cg = read_constraint_csv(path)
        ax.plot(cm, cg, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{Z'}$ [GeV]")
    ax.set_ylabel(r"$g'$")
    ax.legend(fontsize="small", loc="upper left")
    ev = results.event_limit
    ax.set_title(
        f"NA64$\\mu$, {results.n_mot:.3g} MOT, background {results.background_events:.3g} "
        f"events, CLs ({ev.calculator})",
        fontsize=13,
    )
    fig.tight_layout()
    _save(fig, out_dir, "sensitivity")
    return fig


def plot_reach_vs_mot(
    cfg: Any,
    table1: Table1,
    *,
    masses_gev: Sequence[float],
    signal_per_mot_ref: Sequence[float],
    n_mot_grid: Sequence[float] | None = None,
    picks_gev: Sequence[float] = (0.01, 0.1, 1.0),
    known_medians: Mapping[float, float] | None = None,
    calculator: str | None = None,
    out_dir: str | Path | None = None,
) -> Any:
    """Expected g'_90 versus N_MOT (1e9..1e13) at a few masses.

    The median limit at each N_MOT comes from ``calculator`` (default: the configured
    one, toys where the background is below ``statistics.toys_below_background``), as
    for limits.json (with at most :data:`FIGURE_TOYS` toys), so the curve passes through
    the limits' own median;
    ``known_medians`` (N_MOT -> median limit in signal events) reuses limits already
    computed. Vertical lines mark the N_MOT at which the expected background reaches
    0.1 and 1 events.

    Returns:
        The matplotlib Figure.
    """
    from bkg.stats.limits import event_limit

    plt = _pyplot()
    grid = np.geomspace(1e9, 1e13, 5) if n_mot_grid is None else np.asarray(n_mot_grid, float)
    st = cfg.statistics
    known = dict(known_medians or {})

    def median(n: float) -> float:
        for n_known, value in known.items():
            if math.isclose(n, n_known, rel_tol=1e-9):
                return float(value)
        return float(
            event_limit(
                table1,
                n_mot=n,
                confidence_level=st.confidence_level,
                mot_uncertainty=st.mot_uncertainty,
                signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
                calculator=calculator or st.calculator,
                toys_below_background=st.toys_below_background,
                toy_nuisance=st.toy_nuisance,
                # a median for a figure: 2e3 toys hold it to ~5% in events, ~3% in g' (docs/statistics.md),
                # at a fifth of the cost
                n_toys=min(st.n_toys, FIGURE_TOYS),
                seed=cfg.seed,
                bands=(2,),  # the median only: the figure draws no band
            ).expected[2]
        )

    med = np.array([median(n) for n in grid])
    m = np.asarray(masses_gev, float)
    y = np.asarray(signal_per_mot_ref, float)
    fig, ax = plt.subplots(figsize=(8, 6))
    for mp in picks_gev:
        yp = float(np.exp(np.interp(np.log(mp), np.log(m), np.log(y))))
        ax.plot(
            grid,
            cfg.signal.g_prime_ref * np.sqrt(med / (yp * grid)),
            label=f"$m_{{Z'}}$ = {mp * 1e3:g} MeV",
        )
    total = table1.total_per_mot()
    for nb, style in ((0.1, ":"), (1.0, "-.")):
        if total > 0:
            ax.axvline(
                nb / total, color="grey", ls=style, label=f"$b$ = {nb:g} event{'s' * (nb != 1)}"
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$N_{MOT}$")
    ax.set_ylabel(r"Expected $g'_{90}$")
    ax.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    _save(fig, out_dir, "reach_vs_mot")
    return fig


def n_mot_for_background(table1: Table1, events: float) -> float:
    """N_MOT at which the expected background reaches ``events``."""
    total = table1.total_per_mot()
    return float(events / total) if total > 0 else float("inf")
