"""Limits the figures draw besides limits.json, computed here so that figures only draw.

* :func:`reach_vs_mot`: the median expected limit at a few N_MOT (the reach versus
  N_MOT figure);
* :func:`preset_curve`: the observed limit of a published run (``--preset``) with this
  setup's signal yields, drawn beside the projection.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bkg.stats.model import Table1

__all__ = [
    "FIGURE_TOYS",
    "PRESET_CITATIONS",
    "ReachVsMot",
    "g2_band",
    "preset_curve",
    "reach_vs_mot",
]

#: toys per median limit of the reach-versus-N_MOT figure (limits.json uses statistics.n_toys)
FIGURE_TOYS = 2000

#: Where each preset's run is published.
PRESET_CITATIONS = {"na64mu-2022": "PRL 132, 211803 (2024)"}


@dataclass(frozen=True)
class ReachVsMot:
    """Median expected g'_90 versus N_MOT at a few masses.

    Attributes:
        n_mot: the N_MOT grid (N,).
        median_events: median expected limit in signal events at each N_MOT (N,).
        picks_gev: the masses drawn (P,).
        yield_per_mot_ref: signal events per MOT at g'_ref at each pick (P,).
        g_prime_ref: the reference coupling.
        background_per_mot: the total background per MOT (0.1 and 1 events are marked).
        calculator: how the medians were computed.
    """

    n_mot: np.ndarray
    median_events: np.ndarray
    picks_gev: tuple[float, ...]
    yield_per_mot_ref: np.ndarray
    g_prime_ref: float
    background_per_mot: float
    calculator: str

    @property
    def g_prime(self) -> np.ndarray:
        """(P, N) median expected g'_90: g'_ref sqrt(s_up / (yield N_MOT))."""
        return self.g_prime_ref * np.sqrt(
            self.median_events[None, :] / (self.yield_per_mot_ref[:, None] * self.n_mot[None, :])
        )

    def n_mot_at_background(self, events: float) -> float:
        """N_MOT at which the expected background reaches ``events`` (inf without background)."""
        return events / self.background_per_mot if self.background_per_mot > 0 else math.inf


def reach_vs_mot(
    cfg: Any,
    table1: Table1,
    *,
    masses_gev: Sequence[float],
    signal_per_mot_ref: Sequence[float],
    n_mot_grid: Sequence[float] | None = None,
    picks_gev: Sequence[float] = (0.01, 0.1, 1.0),
    known_medians: Mapping[float, float] | None = None,
    calculator: str | None = None,
) -> ReachVsMot:
    """The median expected limit at each N_MOT of the grid (default 1e9..1e13, 5 points).

    The median comes from ``calculator`` (default: the configured one) as for
    limits.json, with at most :data:`FIGURE_TOYS` toys (2e3 toys hold a median to ~5%
    in events, ~3% in g', at a fifth of the cost), so the curve passes through the
    limits' own median; ``known_medians`` (N_MOT -> median in signal events) reuses
    limits already computed.
    """
    from bkg.stats.limits import event_limit

    grid = np.geomspace(1e9, 1e13, 5) if n_mot_grid is None else np.asarray(n_mot_grid, float)
    st = cfg.statistics
    known = dict(known_medians or {})
    calc = calculator or st.calculator

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
                calculator=calc,
                toys_below_background=st.toys_below_background,
                toy_nuisance=st.toy_nuisance,
                n_toys=min(st.n_toys, FIGURE_TOYS),
                seed=cfg.seed,
                bands=(2,),  # the median only: the figure draws no band
                # pyhf's formulae on the vectorised fits: pyhf's median to < 1e-5
                # (tests/stats/test_limits.py) at a 50th of the cost
                asymptotic_fits="vectorised",
            ).expected[2]
        )

    m = np.log(np.asarray(masses_gev, float))
    y = np.log(np.asarray(signal_per_mot_ref, float))
    picks = tuple(float(p) for p in picks_gev)
    return ReachVsMot(
        n_mot=grid,
        median_events=np.array([median(n) for n in grid]),
        picks_gev=picks,
        yield_per_mot_ref=np.exp(np.interp(np.log(picks), m, y)),
        g_prime_ref=float(cfg.signal.g_prime_ref),
        background_per_mot=float(table1.total_per_mot()),
        calculator=calc,
    )


def preset_curve(
    cfg: Any,
    table1: Table1,
    *,
    masses_gev: Sequence[float],
    signal_per_mot_ref: Sequence[float],
    preset: str = "na64mu-2022",
) -> Any:
    """The observed limit of a published run (its N_MOT and count) with this setup's yields.

    A curve beside the projection: with toys, at most :data:`FIGURE_TOYS` of them (the
    observed limit of 0 events at 0.4 background events is held to a few per cent in g';
    ``bkg limits --preset`` computes it with statistics.n_toys).

    Returns:
        A :class:`bkg.stats.overlays.Curve` marked as computed by the project.
    """
    import dataclasses

    from bkg.stats.figures import mot_label
    from bkg.stats.limits import PRESETS
    from bkg.stats.overlays import Curve
    from bkg.stats.stage import compute_limits

    st = dataclasses.replace(cfg.statistics, n_toys=min(cfg.statistics.n_toys, FIGURE_TOYS))
    res = compute_limits(
        cfg.replace(statistics=st), table1, masses_gev=masses_gev,
        signal_per_mot_ref=signal_per_mot_ref, preset=preset,
        bands=(),  # the curve is the observed limit: no expected band solved
    )  # fmt: skip
    ok = np.isfinite(res.g_observed)
    p = PRESETS[preset]
    return Curve(
        label=(
            f"NA64$\\mu$ {preset.split('-')[-1]} observed (computed here):\n"
            f"{mot_label(p['n_mot'])} MOT, {p['observed']:.0f} events"
        ),
        citation=PRESET_CITATIONS.get(preset, ""),
        masses_gev=np.asarray(res.masses_gev)[ok],
        g_prime=np.asarray(res.g_observed)[ok],
        computed=True,
    )


def g2_band(
    masses_gev: np.ndarray, cfg: Any, *, reference: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g' that gives Delta a_mu at the reference value and at +- band_sigmas sigma.

    Returns:
        (low, central, high) arrays of g' (:func:`bkg.physics.zprime.g2_band_g_prime`:
        an edge at or below Delta a_mu = 0 is g' = 0).
    """
    from bkg.physics.zprime import g2_band_g_prime

    ref = cfg.g_minus_2.references[reference] if reference else cfg.g_minus_2.chosen()
    return g2_band_g_prime(ref.delta_a_mu, ref.sigma, cfg.g_minus_2.band_sigmas, masses_gev)
