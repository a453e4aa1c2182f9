"""Figures of the physics projection: Z' energy spectra (Fig. 4) and the reach (Fig. 6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bkg.config import Config
from bkg.plotting import figure_style, save_figure

if TYPE_CHECKING:
    from bkg.report.sensitivity import SensitivityResult

__all__ = ["ZprimeSpectra", "plot_reach", "plot_zprime_spectra", "zprime_spectra"]

FIG4_MASSES_GEV = (0.01, 0.05, 0.1, 0.5, 1.0)


@dataclass(frozen=True)
class ZprimeSpectra:
    """Normalised Z' energy spectra (1/sigma dsigma/dE_Z', GeV^-1) at one beam energy."""

    beam_energy_gev: float
    masses_gev: tuple[float, ...]
    energies_gev: list[np.ndarray]
    density: list[np.ndarray]


def zprime_spectra(
    cfg: Config, *, masses_gev: tuple[float, ...] = FIG4_MASSES_GEV, n_x: int = 120
) -> ZprimeSpectra:
    """The spectra of Fig. 4 (WW cross section on lead at the beam energy)."""
    from bkg.physics.crosssection import dsigma_dx_ww_pb

    e0 = cfg.beam.energy_gev
    energies, density = [], []
    for m in masses_gev:
        x = np.linspace(max(m / e0, 1e-4) * 1.001, 1 - 0.1056583755 / e0 * 1.001, n_x)
        d = np.asarray(dsigma_dx_ww_pb(x, e0, m), dtype=float)
        energies.append(x * e0)
        density.append(d / np.trapezoid(d, x * e0))
    return ZprimeSpectra(e0, tuple(masses_gev), energies, density)


def plot_zprime_spectra(spectra: ZprimeSpectra, *, out_dir: str | Path) -> list[Path]:
    """Paper Fig. 4: normalised Z' energy spectra (1/sigma dsigma/dE_Z') at the beam energy."""
    e0 = spectra.beam_energy_gev
    with figure_style() as plt:
        fig, ax = plt.subplots()
        for m, e, d in zip(spectra.masses_gev, spectra.energies_gev, spectra.density, strict=True):
            ax.plot(e, d, label=f"$m_{{Z'}}$ = {1e3 * m:.0f} MeV")
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
    overlays: Sequence[Any] = (),
) -> list[Path]:
    """First paper Fig. 6: background-free reach versus the 2-sigma (g-2)_mu band, log-log,
    drawn on a fine mass grid (log g'_90 interpolated in log m), with ``overlays``."""
    from bkg.stats.figures import (
        draw_g2_band,
        draw_overlays,
        fine_masses,
        in_mass_range,
        legend_below,
        log_interp,
        mot_label,
        set_coupling_range,
        style_mass_axes,
    )

    mf = fine_masses(result.masses_gev)
    g90 = log_interp(mf, result.masses_gev, result.g_prime_90)
    with figure_style() as plt:
        fig, ax = plt.subplots(figsize=(9, 7.5))
        style_mass_axes(ax)
        ax.plot(
            mf, g90, color="tab:blue", lw=2,
            label=f"NA64$\\mu$ {mot_label(result.n_mot)} MOT, background free ({100 * (1 - np.exp(-result.n_signal_90)):.0f}% CL)",
        )  # fmt: skip
        draw_overlays(ax, overlays)
        from bkg.stats.reach import g2_band

        lo, _, hi = g2_band(mf, cfg)
        set_coupling_range(
            ax, [g90, lo, hi, *(in_mass_range(c, mf.min(), mf.max()) for c in overlays)]
        )
        notes = []
        if draw_g2_band(ax, mf, cfg):
            notes.append(
                f"(g-2) {result.g2_reference} band: lower edge at g' = 0, cut at the bottom of the axes"
            )
        ax.set_xlim(mf.min(), mf.max())
        legend_below(fig, ax, notes)
        return save_figure(fig, out_dir, stem)
