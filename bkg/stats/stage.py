"""The statistics stage: Table I + signal yields -> limits, tables, figures, workspace."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkg.atomic import write_json, write_text
from bkg.errors import LimitError
from bkg.stats.limits import PRESETS, EventLimit, event_limit, map_to_masses
from bkg.stats.model import Table1, read_table1
from bkg.stats.workspace import build_patchset, build_workspace, write_workspace

__all__ = ["LimitResults", "run_limits", "run_workspace", "write_limit_tables"]

SIGMAS = (-2, -1, 0, 1, 2)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LimitResults:
    """Limits versus mass.

    Attributes:
        masses_gev: Z' masses (M,), GeV.
        n_mot: muons on target.
        background_events: expected background events.
        signal_events_ref: signal events at g'_ref (M,).
        g_prime_ref: reference coupling.
        event_limit: the limit in signal events (expected band, observed).
        mu_expected: (M, 5) expected mu_up at -2..+2 sigma.
        mu_observed: (M,) observed mu_up (NaN without an observation).
        g_expected: (M, 5) expected g'_90.
        g_observed: (M,) observed g'_90.
        observed_events: the observed count or None.
    """

    masses_gev: np.ndarray
    n_mot: float
    background_events: float
    signal_events_ref: np.ndarray
    g_prime_ref: float
    event_limit: EventLimit
    mu_expected: np.ndarray
    mu_observed: np.ndarray
    g_expected: np.ndarray
    g_observed: np.ndarray
    observed_events: float | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON) of the results; NaN becomes None."""

        def clean(a: Any) -> Any:
            arr = np.asarray(a, float)
            return (
                np.where(np.isfinite(arr), arr, np.nan).tolist()
                if arr.ndim
                else (float(arr) if np.isfinite(arr) else None)
            )

        def nan_none(x: Any) -> Any:
            if isinstance(x, list):
                return [nan_none(v) for v in x]
            return None if isinstance(x, float) and not np.isfinite(x) else x

        return {
            "confidence_level": self.event_limit.confidence_level,
            "calculator": self.event_limit.calculator,
            "n_mot": self.n_mot,
            "background_events": self.background_events,
            "g_prime_ref": self.g_prime_ref,
            "observed_events": self.observed_events,
            "warnings": list(self.warnings),
            "signal_events_limit": {
                "expected": nan_none(clean(self.event_limit.expected)),
                "observed": nan_none(clean(self.event_limit.observed)),
            },
            "masses_gev": clean(self.masses_gev),
            "signal_events_ref": nan_none(clean(self.signal_events_ref)),
            "mu_expected": nan_none(clean(self.mu_expected)),
            "mu_observed": nan_none(clean(self.mu_observed)),
            "g_expected": nan_none(clean(self.g_expected)),
            "g_observed": nan_none(clean(self.g_observed)),
            # the band by name, as the report, the HEPData record and plotting scripts read it
            **{
                f"g_prime_{label}": nan_none(clean(self.g_expected[:, k]))
                for k, label in enumerate(("minus2", "minus1", "expected", "plus1", "plus2"))
            },
            "g_prime_observed": (
                nan_none(clean(self.g_observed)) if np.isfinite(self.g_observed).any() else None
            ),
        }

    def summary(self) -> str:
        """A few lines for the terminal: the event limit and g'_90 at each mass."""
        ev = self.event_limit
        lines = [
            f"{100 * ev.confidence_level:.0f}% CL CLs ({ev.calculator}), {self.n_mot:.3g} MOT, "
            f"background {self.background_events:.3g} events: "
            f"expected limit {ev.expected[2]:.3g} signal events "
            f"(+-1 sigma {ev.expected[1]:.3g}..{ev.expected[3]:.3g})"
            + (f", observed {ev.observed:.3g}" if np.isfinite(ev.observed) else ""),
        ]
        observed = np.isfinite(np.asarray(self.g_observed, float)).any()
        head = "m_Z' [MeV]   g'_90 expected   -1 sigma   +1 sigma"
        lines.append(head + ("   g'_90 observed" if observed else ""))
        for i, m in enumerate(self.masses_gev):
            g = self.g_expected[i]
            row = f"{1e3 * m:10.4g}   {g[2]:14.3e}   {g[1]:8.2e}   {g[3]:8.2e}"
            lines.append(row + (f"   {self.g_observed[i]:14.3e}" if observed else ""))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _resolve(
    cfg: Any, n_mot: float | None, observed: float | None, preset: str | None
) -> tuple[float, float | None]:
    if preset is not None:
        if observed is not None or n_mot is not None:
            raise LimitError(
                f"--preset {preset} sets N_MOT and the observed count itself; leave out --observed"
            )
        if preset not in PRESETS:
            raise LimitError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        return PRESETS[preset]["n_mot"], PRESETS[preset]["observed"]
    return float(cfg.n_mot if n_mot is None else n_mot), observed


def compute_limits(
    cfg: Any,
    table1: Table1,
    *,
    masses_gev: Sequence[float],
    signal_per_mot_ref: Sequence[float],
    n_mot: float | None = None,
    observed: float | None = None,
    preset: str | None = None,
    calculator: str | None = None,
    confidence_level: float | None = None,
    bands: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> LimitResults:
    """Limits versus mass for the one-bin model (no I/O); ``bands``: the expected band
    members solved (:func:`bkg.stats.limits.event_limit`; the others are NaN)."""
    n_mot_v, obs = _resolve(cfg, n_mot, observed, preset)
    st = cfg.statistics
    if st.bins != 1:
        raise LimitError("statistics.bins > 1: the binned model is not implemented yet")
    cl = st.confidence_level if confidence_level is None else confidence_level
    lim = event_limit(
        table1,
        n_mot=n_mot_v,
        confidence_level=cl,
        mot_uncertainty=st.mot_uncertainty,
        signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
        calculator=calculator or st.calculator,
        toys_below_background=st.toys_below_background,
        toy_nuisance=st.toy_nuisance,
        n_toys=st.n_toys,
        seed=cfg.seed,
        observed=obs,
        bands=bands,
    )
    s_ref = np.asarray(signal_per_mot_ref, float) * n_mot_v
    masses = np.asarray(masses_gev, float)
    notes = [
        f"m_Z' = {1e3 * m:.4g} MeV skipped: expected signal yield {y:.3g} (no limit without signal)"
        for m, y in zip(masses, s_ref, strict=True)
        if not (np.isfinite(y) and y > 0)
    ]
    for note in notes:
        log.warning(note)
    with np.errstate(invalid="ignore"):
        mapped = map_to_masses(lim, np.where(s_ref > 0, s_ref, np.nan), cfg.signal.g_prime_ref)
    return LimitResults(
        warnings=tuple(notes),
        masses_gev=masses,
        n_mot=n_mot_v,
        background_events=table1.total_per_mot() * n_mot_v,
        signal_events_ref=s_ref,
        g_prime_ref=cfg.signal.g_prime_ref,
        event_limit=lim,
        observed_events=obs,
        **mapped,
    )


def write_limit_tables(results: LimitResults, out_dir: str | Path) -> dict[str, Path]:
    """Write limits.csv and limits.json (mu, signal events and g' per mass)."""
    out = Path(out_dir)
    buf = io.StringIO()
    w = csv.writer(buf)
    head = ["m_zprime_gev", "signal_events_ref"]
    for q in ("mu", "events", "g_prime"):
        head += [*(f"{q}_exp_{s:+d}sigma" for s in SIGMAS), f"{q}_obs"]
    w.writerow(head)
    ev = results.event_limit
    for i, m in enumerate(results.masses_gev):
        row = [m, results.signal_events_ref[i]]
        row += [*results.mu_expected[i], results.mu_observed[i]]
        row += [*ev.expected, ev.observed]
        row += [*results.g_expected[i], results.g_observed[i]]
        w.writerow([f"{float(v):.6g}" for v in row])
    return {
        "csv": write_text(out / "limits.csv", buf.getvalue()),
        "json": write_json(out / "limits.json", results.to_dict()),
    }


def run_limits(
    cfg: Any,
    *,
    table1_path: str | Path,
    masses_gev: Sequence[float],
    signal_per_mot_ref: Sequence[float],
    out_dir: str | Path,
    observed: float | None = None,
    preset: str | None = None,
    calculator: str | None = None,
    n_mot: float | None = None,
    figures: bool = True,
    overlays: Sequence[Any] = (),
    compare_presets: Sequence[str] = (),
) -> LimitResults:
    """The ``bkg limits`` stage: compute, then write limits.csv/json and the figures.

    ``overlays`` (:class:`bkg.stats.overlays.Curve`) are drawn beside the projection;
    ``compare_presets`` names published runs whose observed limit is computed here (with
    this setup's signal yields) and drawn beside it too.
    """
    table1 = read_table1(table1_path)
    res = compute_limits(
        cfg,
        table1,
        masses_gev=masses_gev,
        signal_per_mot_ref=signal_per_mot_ref,
        n_mot=n_mot,
        observed=observed,
        preset=preset,
        calculator=calculator,
    )
    write_limit_tables(res, out_dir)
    if figures:
        from bkg.stats.figures import plot_reach, plot_reach_vs_mot
        from bkg.stats.reach import preset_curve, reach_vs_mot

        computed = [
            preset_curve(cfg, table1, masses_gev=masses_gev, signal_per_mot_ref=signal_per_mot_ref, preset=p)
            for p in compare_presets
            if p != preset  # the run itself is the observed curve of the figure
        ]  # fmt: skip
        plot_reach(res, cfg, out_dir=out_dir, overlays=[*computed, *overlays])
        reach = reach_vs_mot(
            cfg,
            table1,
            masses_gev=masses_gev,
            signal_per_mot_ref=signal_per_mot_ref,
            # the expected band with an observed count is post-fit: reuse only the pre-fit one
            calculator=calculator,
            known_medians=(
                {res.n_mot: float(res.event_limit.expected[2])}
                if res.observed_events is None
                else None
            ),
        )
        plot_reach_vs_mot(reach, out_dir=out_dir)
    return res


def run_workspace(
    cfg: Any,
    *,
    table1_path: str | Path,
    masses_gev: Sequence[float],
    signal_per_mot_ref: Sequence[float],
    out_dir: str | Path,
    mass: float | None = None,
    n_mot: float | None = None,
) -> dict[str, Path]:
    """The ``bkg workspace`` stage: BkgOnly.json, patchset.json and optionally one full workspace."""
    table1 = read_table1(table1_path)
    n = float(cfg.n_mot if n_mot is None else n_mot)
    st = cfg.statistics
    bkg_only = build_workspace(
        table1,
        n_mot=n,
        mot_uncertainty=st.mot_uncertainty,
        signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
    )
    ps = build_patchset(
        bkg_only,
        masses_gev=masses_gev,
        signal_events_ref=np.asarray(signal_per_mot_ref, float) * n,
        g_prime_ref=cfg.signal.g_prime_ref,
        mot_uncertainty=st.mot_uncertainty,
        signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
        hepdata_record=st.hepdata_record,
    )
    return write_workspace(out_dir, bkg_only=bkg_only, patchset=ps, mass=mass)
