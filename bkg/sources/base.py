"""The common interface of the background sources, their registry and helpers."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bkg.config import Config
from bkg.errors import SampleError
from bkg.ntuple import iterate

log = logging.getLogger(__name__)

__all__ = ["REGISTRY", "Source", "SourceEstimate", "register", "sample_entries", "stream"]


@dataclass(frozen=True)
class SourceEstimate:
    """The background level of one source per muon on target (MOT).

    Uncertainties are absolute and positive (per MOT).
    """

    name: str
    label: str
    level_per_mot: float
    stat_up: float
    stat_down: float
    syst_up: float
    syst_down: float
    upper_bound: bool
    method: str
    inputs: dict[str, Any] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        return {
            "name": self.name, "label": self.label, "level_per_mot": self.level_per_mot,
            "stat_up": self.stat_up, "stat_down": self.stat_down, "syst_up": self.syst_up,
            "syst_down": self.syst_down, "upper_bound": self.upper_bound, "method": self.method,
            "inputs": self.inputs, "fit": self.fit,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceEstimate:
        """Inverse of :meth:`to_dict`."""
        keys = ("name", "label", "level_per_mot", "stat_up", "stat_down", "syst_up",
                "syst_down", "upper_bound", "method")  # fmt: skip
        return cls(
            **{k: data[k] for k in keys},
            inputs=dict(data.get("inputs", {})),
            fit=dict(data.get("fit", {})),
        )


class Source:
    """Base of a background source: subclass, set the attributes, implement ``estimate``.

    Attributes:
        name: registry key and the stem of fits/<name>.json.
        label: the row label of Table I.
        samples: the sample kinds ``estimate`` reads (run_fits checks their files' sha256).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    samples: ClassVar[tuple[str, ...]] = ()

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        """Compute the level per MOT from the samples."""
        raise NotImplementedError


REGISTRY: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    """Class decorator adding a source to :data:`REGISTRY` under its ``name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"source name {cls.name!r} empty or registered twice")
    REGISTRY[cls.name] = cls
    return cls


def sample_entries(manifest: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """MANIFEST entries of one sample kind.

    Raises:
        SampleError: no entry of this kind.
    """
    entries = [e for e in manifest.get("files", []) if e.get("sample") == kind]
    if not entries:
        raise SampleError(f"MANIFEST.json lists no '{kind}' sample (run `bkg samples`)")
    return entries


def stream(
    cfg: Config,
    samples_dir: Path,
    entries: Sequence[Mapping[str, Any]],
    kind: str,
    branches: Sequence[str],
) -> Iterator[dict[str, np.ndarray]]:
    """Chunks of the given branches over all files of a sample kind."""
    paths = [Path(samples_dir) / e["file"] for e in entries]
    yield from iterate(
        paths,
        kind,
        sorted(set(branches)),
        step_size=cfg.samples.chunk_size,
        nonfinite=cfg.samples.nonfinite,
        workers=2,
    )


def sha256s(entries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """file -> sha256 of the entries."""
    return {str(e["file"]): str(e["sha256"]) for e in entries}


def poisson_interval(k: int) -> tuple[float, float]:
    """Central 68.3% Poisson interval (Garwood) half-widths (down, up) for k counts."""
    from scipy import stats

    lo = 0.0 if k == 0 else float(stats.chi2.ppf(0.158655, 2 * k) / 2)
    hi = float(stats.chi2.ppf(0.841345, 2 * k + 2) / 2)
    return k - lo, hi - k


def count_estimate(k: int, n: float, scale: float) -> tuple[float, float, float, bool]:
    """(level, up, down, upper_bound) of scale * k / n: Poisson, or 90% CL bound if k == 0."""
    from bkg.fit import upper_bound_90

    if k == 0:
        return scale * upper_bound_90(n), 0.0, 0.0, True
    down, up = poisson_interval(k)
    return scale * k / n, scale * up / n, scale * down / n, False


Estimator = Callable[..., SourceEstimate]

_ = math
