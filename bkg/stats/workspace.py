"""Export of the likelihood: background-only workspace plus a pyhf PatchSet (one patch per mass)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bkg.atomic import write_json
from bkg.errors import LimitError
from bkg.stats.limits import poi_upper_bound
from bkg.stats.model import Table1, model_spec, numpy_backend, signal_sample

log = logging.getLogger(__name__)

__all__ = ["build_patchset", "build_workspace", "write_workspace"]


def build_workspace(
    table1: Table1,
    *,
    n_mot: float,
    mot_uncertainty: float,
    signal_efficiency_uncertainty: float,
    signal_events: Sequence[float] | None = None,
    poi_upper: float = 100.0,
) -> dict[str, Any]:
    """A pyhf workspace dict: background only (signal_events None) or with the signal."""
    return model_spec(
        table1,
        n_mot=n_mot,
        signal_events=signal_events,
        mot_uncertainty=mot_uncertainty,
        signal_efficiency_uncertainty=signal_efficiency_uncertainty,
        poi_upper=poi_upper,
        include_signal=signal_events is not None,
    )


def _poi_upper(signal_events: float, background_events: float) -> float:
    """Upper bound of mu: the signal-event range the limits scan at this background."""
    return float(max(10.0, poi_upper_bound(background_events) / signal_events))


def build_patchset(
    bkg_only: dict[str, Any],
    *,
    masses_gev: ArrayLike,
    signal_events_ref: ArrayLike,
    g_prime_ref: float,
    mot_uncertainty: float,
    signal_efficiency_uncertainty: float,
    hepdata_record: str = "ins0000000",
) -> dict[str, Any]:
    """A pyhf PatchSet with one patch per mass: adds the signal sample and sets the POI bounds.

    ``hepdata_record`` is the INSPIRE id the schema requires in ``references``
    (``statistics.hepdata_record``; ins0000000 until the likelihood has a record).

    A mass without signal (yield 0, e.g. beyond the kinematic reach) gets no patch, as it
    gets no limit; a warning names it.
    """
    masses = np.asarray(masses_gev, float)
    ev = np.asarray(signal_events_ref, float)
    if masses.shape != ev.shape:
        raise LimitError("masses_gev and the signal yields must have the same length")
    digest = _digest(bkg_only)
    b = float(sum(sum(o["data"]) for o in bkg_only["observations"]))
    patches = []
    for m, s in zip(masses, ev, strict=True):
        if not (np.isfinite(s) and s > 0):
            log.warning("no signal at m_Z' = %.4g GeV: no patch for it in the patchset", m)
            continue
        sample = signal_sample([float(s)], 1, mot_uncertainty, signal_efficiency_uncertainty)
        patches.append(
            {
                "metadata": {
                    "name": "zprime_m"
                    + f"{m * 1e3:.6g}".replace(".", "p").replace("-", "m").replace("+", "")
                    + "MeV",
                    "values": [float(m), float(g_prime_ref)],
                },
                "patch": [
                    {"op": "add", "path": "/channels/0/samples/-", "value": sample},
                    {
                        "op": "replace",
                        "path": "/measurements/0/config/parameters/0/bounds",
                        "value": [[0.0, _poi_upper(float(s), b)]],
                    },
                ],
            }
        )
    if not patches:
        raise LimitError(
            "no mass has a signal yield: the patchset would be empty (the signal "
            "efficiency is 0 at every mass; do the samples belong to this config?)"
        )
    return {
        "metadata": {
            "name": "na64mu_zprime_lmu_ltau",
            "description": "NA64mu missing-momentum search (projection): L_mu - L_tau Z' signal "
            "per mass, mu = (g'/g'_ref)^2. The observations of the background-only workspace are "
            "the expected background (Asimov), not data. The report's limits.json names the "
            "qmu-tilde CLs calculator (toys or asymptotic) behind its limits",
            "digests": {"sha256": digest},
            "labels": ["m_zprime_gev", "g_prime_ref"],
            "references": {"hepdata": hepdata_record},
        },
        "patches": patches,
        "version": "1.0.0",
    }


def _digest(spec: dict[str, Any]) -> str:
    with numpy_backend() as pyhf:
        return pyhf.utils.digest(spec)


def write_workspace(
    out_dir: str | Path,
    *,
    bkg_only: dict[str, Any],
    patchset: dict[str, Any],
    mass: float | None = None,
) -> dict[str, Path]:
    """Validate and write BkgOnly.json, patchset.json and optionally workspace_m<M>.json.

    Args:
        out_dir: output folder.
        bkg_only: background-only workspace.
        patchset: the PatchSet.
        mass: a mass (GeV) for one full workspace (the nearest patch).

    Returns:
        The written paths by role ("bkg_only", "patchset", "workspace").
    """
    out = Path(out_dir)
    with numpy_backend() as pyhf:
        ws = pyhf.Workspace(bkg_only)  # validates
        ps = pyhf.PatchSet(patchset)  # validates
        paths = {
            "bkg_only": write_json(out / "BkgOnly.json", bkg_only),
            "patchset": write_json(out / "patchset.json", patchset),
        }
        if mass is not None:
            if not mass > 0:
                raise LimitError(f"--mass {mass}: expected a Z' mass above 0 (GeV)")
            vals = [p["metadata"]["values"][0] for p in patchset["patches"]]
            if not min(vals) * (1 - 1e-3) <= mass <= max(vals) * (1 + 1e-3):
                raise LimitError(
                    f"--mass {mass:g}: outside the masses of the patchset "
                    f"({min(vals):g}-{max(vals):g} GeV)"
                )
            idx = int(np.argmin(np.abs(np.log(np.asarray(vals)) - np.log(mass))))
            if not np.isclose(vals[idx], mass, rtol=1e-3):
                log.warning(
                    "--mass %g: no patch at that mass; the nearest one, %.4g GeV, is written",
                    mass,
                    vals[idx],
                )
            full = ps.apply(ws, ps.patches[idx].values)
            pyhf.Workspace(dict(full))
            paths["workspace"] = write_json(out / f"workspace_m{vals[idx]:.6g}GeV.json", dict(full))
    return paths
