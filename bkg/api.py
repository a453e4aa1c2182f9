"""The Python API: each stage of the analysis is one call on objects.

``import bkg`` exposes these names; the command line composes the same calls.
Every result has ``to_dict()`` and, where it makes files, a ``write(folder)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bkg.config import Config
from bkg.config import load_config as _load_config

if TYPE_CHECKING:
    from bkg.report.pipeline import ReportResult
    from bkg.report.sensitivity import SensitivityResult
    from bkg.sources.base import SourceEstimate
    from bkg.stats.model import Table1 as Table1Model
    from bkg.stats.stage import LimitResults

__all__ = [
    "Backgrounds",
    "Samples",
    "Table1",
    "Workspace",
    "estimate_backgrounds",
    "limits",
    "load_config",
    "report",
    "sensitivity",
    "simulate",
    "table1",
    "workspace",
]


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """The effective configuration: the built-in default, a YAML file's changes, overrides.

    Args:
        path: a YAML file that lists what it changes (None: the default alone).
        **overrides: top-level keys to replace, e.g. ``n_mot=1e11``.

    Raises:
        ConfigError: one message per problem, each with its key path.
    """
    return _load_config(path, **overrides)


@dataclass(frozen=True)
class Samples:
    """A samples folder: ROOT ntuples and their MANIFEST (as written by :func:`simulate`)."""

    folder: Path
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "manifest": self.manifest}


def simulate(
    cfg: Config,
    *,
    folder: str | Path | None = None,
    n_mot: float | None = None,
    only: Sequence[str] | None = None,
    workers: int | None = 1,
) -> Samples:
    """Run the fast simulation into ``folder`` (default: ``cfg.samples.folder``).

    Args:
        cfg: the configuration (seed, sizes, beam, detector).
        folder: where the ROOT files and MANIFEST.json go.
        n_mot: beam muons (default ``cfg.samples.n_mot``).
        only: a subset of the samples (default: all).
        workers: worker processes (1: in this process; 0: all cores).
    """
    from bkg.sim import run_samples

    out = Path(folder or cfg.samples.folder)
    manifest = run_samples(cfg, out_dir=out, only=only, n_mot=n_mot, workers=workers)
    return Samples(folder=out, manifest=manifest)


@dataclass(frozen=True)
class Backgrounds:
    """The estimate of every background source, by name."""

    estimates: dict[str, SourceEstimate]

    def __getitem__(self, name: str) -> SourceEstimate:
        return self.estimates[name]

    def to_dict(self) -> dict[str, Any]:
        return {name: est.to_dict() for name, est in self.estimates.items()}


def estimate_backgrounds(
    cfg: Config,
    samples: Samples | str | Path,
    *,
    fits_folder: str | Path | None = None,
    only: Sequence[str] | None = None,
    closure: bool = True,
) -> Backgrounds:
    """Fit and extrapolate every background source of Table I, as `bkg fit` does.

    Args:
        cfg: the configuration.
        samples: the result of :func:`simulate`, or a folder with a MANIFEST.json.
        fits_folder: also write fits/<source>.json and figures there (default: nothing kept).
        only: a subset of the sources (default: all registered).
        closure: measure each extrapolated tail at its cut by biased simulation and let
            the level follow the closure (Table I's rule; docs/tail-extrapolation.md).
    """
    folder = samples.folder if isinstance(samples, Samples) else Path(samples)
    if fits_folder is not None:
        est = _fit(cfg, folder, Path(fits_folder), only=only, closure=closure, figures=True)
    else:
        with tempfile.TemporaryDirectory(prefix="bkg-fits-") as tmp:
            est = _fit(cfg, folder, Path(tmp), only=only, closure=closure, figures=False)
    return Backgrounds(estimates=est)


def _fit(
    cfg: Config,
    samples_dir: Path,
    fits_dir: Path,
    *,
    only: Sequence[str] | None,
    closure: bool,
    figures: bool,
) -> dict[str, SourceEstimate]:
    import json

    from bkg.sources import record_fits, run_fits
    from bkg.sources.base import SourceEstimate
    from bkg.sources.closure import run_closure

    est = dict(
        run_fits(cfg, samples_dir=samples_dir, out_dir=fits_dir, only=only, figures=figures,
                 closure_follows=closure)
    )  # fmt: skip
    if closure:
        for name in run_closure(cfg, fits_dir, only=list(only) if only else None):
            est[name] = SourceEstimate.from_dict(
                json.loads((fits_dir / f"{name}.json").read_text(encoding="utf-8"))
            )
        record_fits(cfg, samples_dir, fits_dir)  # the closure rewrote estimates
    return est


@dataclass(frozen=True)
class Table1:
    """Table I: level per MOT of every source and the total, at ``cfg.n_mot``."""

    data: dict[str, Any]
    estimates: Mapping[str, SourceEstimate] = field(repr=False)
    cfg: Config = field(repr=False)

    @property
    def model(self) -> Table1Model:
        """The statistics layer's view of the table (levels and uncertainties)."""
        from bkg.stats.model import read_table1

        return read_table1(self.data)

    @property
    def total_per_mot(self) -> float:
        return float(self.data["total"]["level_per_mot"])

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def write(self, folder: str | Path) -> dict[str, Any]:
        """table1.md, table1.tex, table1.csv and table1.json in ``folder``."""
        from bkg.sources.table import write_table

        return write_table(self.estimates, self.cfg, out_dir=Path(folder))


def table1(cfg: Config, backgrounds: Backgrounds | Mapping[str, SourceEstimate]) -> Table1:
    """Table I from the source estimates (no I/O)."""
    from bkg.sources.table import table_data

    est = backgrounds.estimates if isinstance(backgrounds, Backgrounds) else dict(backgrounds)
    return Table1(data=table_data(est, cfg), estimates=est, cfg=cfg)


def sensitivity(cfg: Config, samples: Samples | str | Path | None = None) -> SensitivityResult:
    """Background-free 90% CL reach g'_90(m) and the g-2 band.

    With ``samples`` the signal efficiency comes from the signal sample; without, the
    configuration's constant efficiency is used.
    """
    from bkg.report.pipeline import efficiency_function
    from bkg.report.sensitivity import compute_sensitivity

    efficiency = None
    if samples is not None:
        folder = samples.folder if isinstance(samples, Samples) else Path(samples)
        efficiency, _ = efficiency_function(folder, cfg)
    return compute_sensitivity(cfg, efficiency=efficiency)


@dataclass(frozen=True)
class Workspace:
    """The pyhf likelihood: background-only workspace and one patch per Z' mass."""

    bkg_only: dict[str, Any]
    patchset: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"bkg_only": self.bkg_only, "patchset": self.patchset}

    def write(self, folder: str | Path, *, mass: float | None = None) -> dict[str, Path]:
        """BkgOnly.json, patchset.json (and one full workspace at ``mass``), validated."""
        from bkg.stats.workspace import write_workspace

        return write_workspace(folder, bkg_only=self.bkg_only, patchset=self.patchset, mass=mass)


def workspace(cfg: Config, table: Table1, reach: SensitivityResult) -> Workspace:
    """The pyhf background-only workspace and the signal patchset (HEPData format)."""
    import numpy as np

    from bkg.stats.workspace import build_patchset, build_workspace

    st = cfg.statistics
    n = float(cfg.n_mot)
    bkg_only = build_workspace(
        table.model,
        n_mot=n,
        mot_uncertainty=st.mot_uncertainty,
        signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
    )
    patchset = build_patchset(
        bkg_only,
        masses_gev=reach.masses_gev,
        signal_events_ref=np.asarray(reach.yield_per_mot_ref, float) * n,
        g_prime_ref=cfg.signal.g_prime_ref,
        mot_uncertainty=st.mot_uncertainty,
        signal_efficiency_uncertainty=st.signal_efficiency_uncertainty,
        hepdata_record=st.hepdata_record,
    )
    return Workspace(bkg_only=bkg_only, patchset=patchset)


def limits(
    cfg: Config,
    table: Table1,
    reach: SensitivityResult,
    *,
    observed: float | None = None,
    preset: str | None = None,
    calculator: str | None = None,
    n_mot: float | None = None,
) -> LimitResults:
    """CLs limits on g' versus mass (expected band; observed with a count or a preset)."""
    from bkg.stats.stage import compute_limits

    return compute_limits(
        cfg,
        table.model,
        masses_gev=reach.masses_gev.tolist(),
        signal_per_mot_ref=reach.yield_per_mot_ref.tolist(),
        n_mot=n_mot,
        observed=observed,
        preset=preset,
        calculator=calculator,
    )


def report(
    cfg: Config,
    *,
    name: str | None = None,
    reports_folder: str | Path = "reports",
    samples_folder: str | Path | None = None,
    fits_folder: str | Path = "fits",
    workers: int | None = None,
) -> ReportResult:
    """Every stage, written to ``reports_folder/<name>/`` (index.html, tables, HEPData)."""
    from bkg.report.pipeline import run_report

    return run_report(
        cfg,
        name=name,
        out_root=reports_folder,
        samples_dir=samples_folder,
        fits_dir=fits_folder,
        workers=workers,
    )
