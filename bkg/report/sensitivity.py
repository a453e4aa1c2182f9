"""The background-free reach g'_90(m) and the (g-2)_mu band (paper Sec. IV, Fig. 4, Fig. 6).

g'_90(m) is the coupling at which the expected signal of eq. 6 equals the
Poisson 90% CL upper limit for zero observed events and zero background,
-ln(1 - CL) = 2.30 events. The signal yield scales with g'^2, so
g'_90 = g'_ref * sqrt(N_90 / N(g'_ref)).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bkg.atomic import dumps_json, write_texts
from bkg.config import Config
from bkg.stats.reach import g2_band

log = logging.getLogger(__name__)

__all__ = [
    "SensitivityResult",
    "beam_spectrum",
    "compute_sensitivity",
    "g2_band",
    "run_sensitivity",
]


@dataclass(frozen=True)
class SensitivityResult:
    """Background-free reach on a mass grid (all arrays of shape (n_masses,))."""

    masses_gev: np.ndarray
    yield_per_mot_ref: np.ndarray  # signal events per MOT at g'_ref
    g_prime_90: np.ndarray
    g2_low: np.ndarray  # lower edge of the g-2 band in g'
    g2_central: np.ndarray
    g2_high: np.ndarray
    efficiency: np.ndarray
    n_mot: float
    n_signal_90: float
    g_prime_ref: float
    g2_reference: str
    files: list[Path] = field(default_factory=list)

    @property
    def band_reaches_zero(self) -> bool:
        """True when the band's lower edge is g' = 0 (Delta a_mu within band_sigmas of 0)."""
        return bool(np.any(self.g2_low <= 0))

    def ratio_to_band(self, mass_gev: float) -> float:
        """g'_90 / g'_band,low at ``mass_gev`` (log-log interpolation); < 1 means covered."""
        if self.band_reaches_zero:
            return float("inf")
        lm = np.log(self.masses_gev)
        r = np.log(self.g_prime_90 / self.g2_low)
        return float(np.exp(np.interp(np.log(mass_gev), lm, r)))

    def covered_up_to_gev(self) -> float:
        """Largest mass of the grid below which the whole band's lower edge is covered (0: none)."""
        ok = self.g_prime_90 < self.g2_low
        if not ok[0]:
            return 0.0
        first_bad = np.argmin(ok) if not ok.all() else len(ok)
        return float(self.masses_gev[first_bad - 1])

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"background-free {100 * (1 - np.exp(-self.n_signal_90)):.0f}% CL reach "
            f"(N = {self.n_signal_90:.2f} events) at N_MOT = {self.n_mot:.3g}",
            f"{'m_Zprime [MeV]':>15} {'g_90':>10} {'g2 band low':>12} {'ratio':>7}",
        ]
        for m in (0.01, 0.1, 0.2):
            if self.masses_gev[0] <= m <= self.masses_gev[-1]:
                lm, g = np.log(self.masses_gev), np.log(self.g_prime_90)
                g90 = np.exp(np.interp(np.log(m), lm, g))
                low = (
                    0.0
                    if self.band_reaches_zero
                    else np.exp(np.interp(np.log(m), lm, np.log(self.g2_low)))
                )
                lines.append(
                    f"{1e3 * m:>15.0f} {g90:>10.3e} {low:>12.3e} {self.ratio_to_band(m):>7.3f}"
                )
        if self.band_reaches_zero:
            lines.append(
                f"the {self.g2_reference} g-2 band reaches g' = 0 (Delta a_mu is within "
                "band_sigmas of 0): no limit covers the whole band"
            )
        else:
            lines.append(
                f"the {self.g2_reference} g-2 band is covered up to m_Zprime = "
                f"{1e3 * self.covered_up_to_gev():.0f} MeV"
            )
        return "\n".join(lines)


def beam_spectrum(cfg: Config, *, n_nodes: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Energies (GeV) and weights (sum 1) of the beam core after S0+S1 (Gauss-Hermite nodes).

    The halo is removed by S0+S1 and cut (i), so the signal sees the core only.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    e0 = cfg.beam.energy_gev
    energies = e0 * (1 + cfg.beam.momentum_spread_rel * nodes)
    return energies, weights / weights.sum()


def compute_sensitivity(
    cfg: Config,
    *,
    masses_gev: np.ndarray | None = None,
    efficiency: Callable[[np.ndarray], np.ndarray] | None = None,
    table: Any = None,
) -> SensitivityResult:
    """Background-free reach from eq. 6 with the configured beam, target and efficiency.

    Args:
        cfg: the run configuration (beam energy, N_MOT, CL, cross-section method).
        masses_gev: mass grid (default: the config's log grid).
        efficiency: signal efficiency versus mass (default: the config's constant).
        table: a prebuilt :class:`bkg.physics.crosssection.CrossSectionTable`.
    """
    from bkg.physics.constants import LEAD
    from bkg.physics.crosssection import CrossSectionTable
    from bkg.physics.signal import signal_yield_per_mot

    masses = np.asarray(
        cfg.signal.masses_gev.values() if masses_gev is None else masses_gev, dtype=float
    )
    energies, weights = beam_spectrum(cfg)
    if table is None:
        e_grid = np.geomspace(cfg.signal_box.e_mu_out_max_gev * 0.9, energies.max() * 1.02, 24)
        m_grid = np.geomspace(min(masses.min(), 1e-3) * 0.99, max(masses.max(), 1.0) * 1.01, 48)
        table = CrossSectionTable.build(
            energies_gev=e_grid,
            masses_gev=m_grid,
            method=cfg.signal.cross_section,  # type: ignore[arg-type]
        )
    eff = (
        np.full_like(masses, cfg.signal.efficiency)
        if efficiency is None
        else np.asarray(efficiency(masses), dtype=float)
    )
    g_ref = cfg.signal.g_prime_ref
    thickness = cfg.detector.ecal.thickness_x0 * LEAD.x0_g_cm2
    yields = (
        np.asarray(
            signal_yield_per_mot(
                masses,
                g_ref,
                table=table,
                beam_energies_gev=energies,
                beam_weights=weights,
                thickness_g_cm2=thickness,
                material=LEAD,
                e_mu_out_max_gev=cfg.signal_box.e_mu_out_max_gev,
                efficiency=1.0,
            )
        )
        * eff
    )
    n90 = -np.log(1.0 - cfg.statistics.confidence_level)
    with np.errstate(divide="ignore"):
        g90 = np.where(yields > 0, g_ref * np.sqrt(n90 / (cfg.n_mot * yields)), np.inf)
    low, central, high = g2_band(masses, cfg)
    return SensitivityResult(
        masses_gev=masses,
        yield_per_mot_ref=yields,
        g_prime_90=g90,
        g2_low=low,
        g2_central=central,
        g2_high=high,
        efficiency=eff,
        n_mot=cfg.n_mot,
        n_signal_90=float(n90),
        g_prime_ref=g_ref,
        g2_reference=cfg.g_minus_2.reference,
    )


def _csv(result: SensitivityResult) -> str:
    head = "m_zprime_gev,yield_per_mot_at_g_ref,efficiency,g_prime_90,g2_band_low,g2_band_central,g2_band_high"
    rows = [
        f"{m:.6e},{y:.6e},{e:.4f},{g:.6e},{lo:.6e},{c:.6e},{hi:.6e}"
        for m, y, e, g, lo, c, hi in zip(
            result.masses_gev, result.yield_per_mot_ref, result.efficiency, result.g_prime_90,
            result.g2_low, result.g2_central, result.g2_high, strict=True,
        )
    ]  # fmt: skip
    return "\n".join([head, *rows])


def _json(result: SensitivityResult, cfg: Config) -> dict[str, Any]:
    def r(a: np.ndarray) -> list[float | None]:
        # no reach (no signal at that mass) is null: JSON has no infinity
        return [float(f"{v:.6e}") if np.isfinite(v) else None for v in a]

    return {
        "n_mot": result.n_mot,
        "confidence_level": cfg.statistics.confidence_level,
        "n_signal_90": round(result.n_signal_90, 6),
        "g_prime_ref": result.g_prime_ref,
        "beam_energy_gev": cfg.beam.energy_gev,
        "cross_section": cfg.signal.cross_section,
        "g2_reference": result.g2_reference,
        "g2_band_sigmas": cfg.g_minus_2.band_sigmas,
        "covered_up_to_gev": result.covered_up_to_gev(),
        "masses_gev": r(result.masses_gev),
        "yield_per_mot_ref": r(result.yield_per_mot_ref),
        "efficiency": r(result.efficiency),
        "g_prime_90": r(result.g_prime_90),
        "g2_band_low": r(result.g2_low),
        "g2_band_central": r(result.g2_central),
        "g2_band_high": r(result.g2_high),
        "config_hash": cfg.hash,
    }


def run_sensitivity(
    cfg: Config,
    *,
    out_dir: str | Path,
    efficiency: Callable[[np.ndarray], np.ndarray] | None = None,
    overlays: Sequence[Any] = (),
) -> SensitivityResult:
    """Compute the reach and write ``sensitivity.csv``, ``sensitivity.json`` and figures.

    Figures (PNG + PDF in ``out_dir/figures``): ``fig4_zprime_spectra`` and
    ``fig6_reach_background_free`` (with ``overlays``, :class:`bkg.stats.overlays.Curve`).
    """
    from bkg.report.figures import plot_reach, plot_zprime_spectra, zprime_spectra

    out_dir = Path(out_dir)
    result = compute_sensitivity(cfg, efficiency=efficiency)
    files = write_texts(
        {
            out_dir / "sensitivity.csv": _csv(result),
            out_dir / "sensitivity.json": dumps_json(_json(result, cfg)),
        }
    )
    files += plot_zprime_spectra(zprime_spectra(cfg), out_dir=out_dir / "figures")
    files += plot_reach(result, cfg, out_dir=out_dir / "figures", overlays=overlays)
    return SensitivityResult(**{**result.__dict__, "files": files})
