"""The pyhf model of the signal box: Table I backgrounds plus the Z' signal.

Choices: every background carries a ``normsys`` from its extrapolation
(systematic) uncertainty, asymmetric (hi = 1 + up/level, lo = 1 - down/level,
lo clipped to [0.01, 1] and hi to [1, 100]; hi = lo = 1 is inert), and one shared
``staterror`` (Gaussian, Barlow-Beeston lite) from the samples' statistical
uncertainty. A source that is a 90% CL upper bound enters at its bound with a
one-sided normsys (hi = 1, lo = 0.01) and no staterror: the data may pull it
anywhere between about zero and the bound, never above it. The signal has a ``normfactor`` mu = (g'/g'_ref)^2 and normsys
modifiers for the MOT count and the signal efficiency.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkg.errors import LimitError

__all__ = [
    "CHANNEL",
    "POI_NAME",
    "BackgroundSource",
    "Table1",
    "model_spec",
    "numpy_backend",
    "read_table1",
    "signal_sample",
]

POI_NAME = "mu"
CHANNEL = "signal_box"
_REQUIRED = ("name", "level_per_mot", "stat_up", "stat_down", "syst_up", "syst_down")


@dataclass(frozen=True)
class BackgroundSource:
    """One row of Table I (levels and absolute uncertainties per MOT)."""

    name: str
    label: str
    level_per_mot: float
    stat_up: float
    stat_down: float
    syst_up: float
    syst_down: float
    upper_bound: bool
    method: str


@dataclass(frozen=True)
class Table1:
    """Table I as written by the fit stage."""

    n_mot: float
    sources: tuple[BackgroundSource, ...]

    def total_per_mot(self) -> float:
        """Sum of the background levels per MOT."""
        return float(sum(s.level_per_mot for s in self.sources))


def read_table1(source: str | Path | dict[str, Any]) -> Table1:
    """Read the fit stage's Table I JSON (a path or the parsed dict).

    Raises:
        LimitError: missing keys or negative numbers.
    """
    if isinstance(source, dict):
        raw = source
        where = "table1"
    else:
        where = str(source)
        if not Path(source).exists():
            raise LimitError(
                f"{where}: no Table I there; write it first with `bkg table` (same --name "
                "and --out) or `bkg report`"
            )
        try:
            raw = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise LimitError(f"{where}: cannot read Table I ({exc})") from None
    if not isinstance(raw, dict) or "sources" not in raw or "n_mot" not in raw:
        raise LimitError(f"{where}: Table I needs the keys 'n_mot' and 'sources'")
    rows = []
    for i, row in enumerate(raw["sources"]):
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise LimitError(f"{where}: sources[{i}] lacks {', '.join(missing)}")
        vals = {k: float(row[k]) for k in _REQUIRED[1:]}
        if any(not np.isfinite(v) or v < 0 for v in vals.values()):
            raise LimitError(
                f"{where}: sources[{i}] ({row['name']}): values must be finite and >= 0"
            )
        rows.append(
            BackgroundSource(
                name=str(row["name"]),
                label=str(row.get("label", row["name"])),
                upper_bound=bool(row.get("upper_bound", False)),
                method=str(row.get("method", "")),
                **vals,
            )
        )
    if not rows:
        raise LimitError(f"{where}: Table I has no sources")
    return Table1(n_mot=float(raw["n_mot"]), sources=tuple(rows))


@contextlib.contextmanager
def numpy_backend() -> Iterator[Any]:
    """Use pyhf's numpy backend inside the block and restore the previous one."""
    import pyhf

    previous = pyhf.get_backend()
    pyhf.set_backend("numpy")
    try:
        yield pyhf
    finally:
        pyhf.set_backend(*previous)


def normsys_factors(level: float, up: float, down: float) -> tuple[float, float]:
    """(hi, lo) of a normsys from absolute uncertainties, clipped to a sane range."""
    if level <= 0:
        return 1.0, 1.0
    hi = float(np.clip(1.0 + up / level, 1.0, 100.0))
    lo = float(np.clip(1.0 - down / level, 0.01, 1.0))
    return hi, lo


def model_spec(
    table1: Table1,
    *,
    n_mot: float,
    signal_events: Sequence[float] | float | None,
    mot_uncertainty: float,
    signal_efficiency_uncertainty: float,
    bins: int = 1,
    background_shape: Sequence[float] | None = None,
    poi_upper: float = 100.0,
    include_signal: bool = True,
) -> dict[str, Any]:
    """A pyhf workspace specification (dict) of the signal box.

    Args:
        table1: the backgrounds.
        n_mot: muons on target of the projection.
        signal_events: expected signal events at mu = 1 per bin (or a total for 1 bin).
        mot_uncertainty: relative uncertainty on N_MOT (signal normsys).
        signal_efficiency_uncertainty: relative uncertainty on the signal efficiency.
        bins: number of E'_mu bins.
        background_shape: fractions of every background per bin (uniform if None).
        poi_upper: upper bound of mu.
        include_signal: False gives the background-only workspace.

    Returns:
        A workspace dict (channels, observations = expected background, measurements).
    """
    shape = (
        np.full(bins, 1.0 / bins)
        if background_shape is None
        else np.asarray(background_shape, float)
    )
    if shape.shape != (bins,) or not np.isclose(shape.sum(), 1.0):
        raise LimitError("background_shape must have one fraction per bin summing to 1")
    samples = []
    total = np.zeros(bins)
    for src in table1.sources:
        counts = src.level_per_mot * n_mot * shape
        total += counts
        if src.upper_bound:
            hi, lo = 1.0, 0.01
            stat = np.zeros(bins)
        else:
            hi, lo = normsys_factors(src.level_per_mot, src.syst_up, src.syst_down)
            stat = 0.5 * (src.stat_up + src.stat_down) * n_mot * shape
        samples.append(
            {
                "name": src.name,
                "data": counts.tolist(),
                "modifiers": [
                    {"name": f"syst_{src.name}", "type": "normsys", "data": {"hi": hi, "lo": lo}},
                    {"name": "staterror_box", "type": "staterror", "data": stat.tolist()},
                ],
            }
        )
    if include_signal:
        samples.append(
            signal_sample(signal_events, bins, mot_uncertainty, signal_efficiency_uncertainty)
        )
    return {
        "channels": [{"name": CHANNEL, "samples": samples}],
        "observations": [{"name": CHANNEL, "data": total.tolist()}],
        "measurements": [
            {
                "name": "na64mu",
                "config": {
                    "poi": POI_NAME,
                    "parameters": [{"name": POI_NAME, "bounds": [[0.0, float(poi_upper)]]}],
                },
            }
        ],
        "version": "1.0.0",
    }


def signal_sample(
    signal_events: Sequence[float] | float | None, bins: int, mot_unc: float, eff_unc: float
) -> dict[str, Any]:
    data = np.atleast_1d(np.asarray(signal_events, dtype=float))
    if data.shape != (bins,) or np.any(data < 0) or not np.all(np.isfinite(data)):
        raise LimitError(f"signal: need {bins} finite non-negative yields, got {data.tolist()}")
    return {
        "name": "signal",
        "data": data.tolist(),
        "modifiers": [
            {"name": POI_NAME, "type": "normfactor", "data": None},
            {"name": "mot_norm", "type": "normsys", "data": {"hi": 1 + mot_unc, "lo": 1 - mot_unc}},
            {
                "name": "signal_eff",
                "type": "normsys",
                "data": {"hi": 1 + eff_unc, "lo": 1 - eff_unc},
            },
        ],
    }
