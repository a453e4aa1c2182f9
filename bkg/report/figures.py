"""Figures of the physics projection: Z' energy spectra (Fig. 4) and the reach (Fig. 6)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bkg.config import Config
from bkg.report.style import figure_style, save_figure
from bkg.stats.figures import band_for_log_axis

if TYPE_CHECKING:
    from bkg.report.sensitivity import SensitivityResult

__all__ = ["plot_reach", "plot_zprime_spectra"]

FIG4_MASSES_GEV = (0.01, 0.05, 0.1, 0.5, 1.0)


def plot_zprime_spectra(
    cfg: Config,
    *,
    out_dir: str | Path,
    masses_gev: tuple[float, ...] = FIG4_MASSES_GEV,
    n_x: int = 120,
) -> list[Path]:
    """Paper Fig. 4: normalised Z' energy spectra (1/sigma dsigma/dE_Z') at the beam energy."""
    from bkg.physics.crosssection import dsigma_dx_ww_pb

    e0 = cfg.beam.energy_gev
    with figure_style() as plt:
        fig, ax = plt.subplots()
        for m in masses_gev:
            x = np.linspace(max(m / e0, 1e-4) * 1.001, 1 - 0.1056583755 / e0 * 1.001, n_x)
            d = np.asarray(dsigma_dx_ww_pb(x, e0, m), dtype=float)
            norm = np.trapezoid(d, x * e0)
            label = f"$m_{{Z'}}$ = {1e3 * m:.0f} MeV"
            ax.plot(x * e0, d / norm, label=label)
        ax.set_xlabel(r"$E_{Z'}$ [GeV]")
        ax.set_ylabel(r"$\frac{1}{\sigma}\,\frac{d\sigma}{dE_{Z'}}$ [GeV$^{-1}$]")
        ax.set_yscale("log")
        ax.set_xlim(0, e0)
        ax.legend(fontsize="small", title=f"WW, Pb, $E_0$ = {e0:.0f} GeV")
        return save_figure(fig, out_dir, "fig4_zprime_spectra")


def plot_reach(
    result: SensitivityResult,
    cfg: Config,
    *,
    out_dir: str | Path,
    stem: str = "fig6_reach_background_free",
) -> list[Path]:
    """First paper Fig. 6: background-free reach versus the 2-sigma (g-2)_mu band, log-log."""
    m_gev = result.masses_gev
    with figure_style() as plt:
        fig, ax = plt.subplots()
        low = band_for_log_axis(
            result.g2_low, result.g2_high, 0.1 * float(np.min(result.g_prime_90))
        )
        ax.fill_between(
            m_gev, low, result.g2_high, color="tab:green", alpha=0.35,
            label=rf"$(g-2)_\mu$ {result.g2_reference}, $\pm${cfg.g_minus_2.band_sigmas:g}$\sigma$",
        )  # fmt: skip
        ax.plot(m_gev, result.g2_central, color="tab:green", lw=1)
        ax.plot(
            m_gev, result.g_prime_90, color="tab:blue", lw=2,
            label=f"NA64$\\mu$ {result.n_mot:.0e} MOT, background free",
        )  # fmt: skip
        _style_reach_axes(ax)
        return save_figure(fig, out_dir, stem)


def _style_reach_axes(ax: Any) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{Z'}$ [GeV]")
    ax.set_ylabel(r"$g'$")
    ax.set_ylim(1e-5, 1e-2)
    ax.legend(fontsize="small", loc="lower right")
