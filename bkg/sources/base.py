"""The common interface of the background sources, their registry and helpers."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from bkg.config import Config
from bkg.errors import SampleError
from bkg.ntuple import iterate

log = logging.getLogger(__name__)

__all__ = [
    "REGISTRY",
    "Reducer",
    "Source",
    "SourceEstimate",
    "StreamingSource",
    "reduce_together",
    "register",
    "sample_entries",
    "stream",
]


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
    #: the tail analysis, closure and escape paths of a source (keys :data:`TAIL_KEYS`, JSON top level)
    tails: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        return {
            "name": self.name, "label": self.label, "level_per_mot": self.level_per_mot,
            "stat_up": self.stat_up, "stat_down": self.stat_down, "syst_up": self.syst_up,
            "syst_down": self.syst_down, "upper_bound": self.upper_bound, "method": self.method,
            "inputs": self.inputs, "fit": self.fit,
            **{k: self.tails[k] for k in TAIL_KEYS if k in self.tails},
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> SourceEstimate:
        """Inverse of :meth:`to_dict`, checking every value.

        Raises:
            ValueError: ``data`` is not a mapping, or a key is missing or has a bad
                value (the message names the key).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got a {type(data).__name__}")
        for key, (what, valid) in _FIELDS.items():
            if key not in data:
                if key in ("inputs", "fit"):
                    continue
                raise ValueError(f"key '{key}' missing (expected {what})")
            if not valid(data[key]):
                raise ValueError(f"key '{key}': expected {what}, got {data[key]!r}")
        return cls(
            name=data["name"],
            label=data["label"],
            level_per_mot=float(data["level_per_mot"]),
            stat_up=float(data["stat_up"]),
            stat_down=float(data["stat_down"]),
            syst_up=float(data["syst_up"]),
            syst_down=float(data["syst_down"]),
            upper_bound=data["upper_bound"],
            method=data["method"],
            inputs=dict(data.get("inputs", {})),
            fit=dict(data.get("fit", {})),
            tails={k: data[k] for k in TAIL_KEYS if k in data},
        )


#: top-level keys of fits/<source>.json written by the tail analysis and the closure
TAIL_KEYS = (
    "tail_checks",
    "deviance",
    "tail_models",
    "closure_split",
    "closure",
    "level_choice",
    "by_path",
)


def _amount(value: Any) -> bool:
    """A level or an absolute uncertainty per MOT: a finite number >= 0."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and value >= 0


_AMOUNT = ("a finite number >= 0 (per MOT)", _amount)

#: key of fits/<source>.json -> (what it must be, its check); inputs and fit may be absent
_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "name": ("a non-empty string", lambda v: isinstance(v, str) and bool(v)),
    "label": ("a string", lambda v: isinstance(v, str)),
    "level_per_mot": _AMOUNT,
    "stat_up": _AMOUNT,
    "stat_down": _AMOUNT,
    "syst_up": _AMOUNT,
    "syst_down": _AMOUNT,
    "upper_bound": ("true or false", lambda v: isinstance(v, bool)),
    "method": ("a string", lambda v: isinstance(v, str)),
    "inputs": ("an object", lambda v: isinstance(v, Mapping)),
    "fit": ("an object", lambda v: isinstance(v, Mapping)),
}


class Source:
    """Base of a background source: subclass, set the attributes, implement ``estimate``.

    Attributes:
        name: registry key and the stem of fits/<name>.json.
        label: the row label of Table I.
        samples: the sample kinds ``estimate`` reads (run_fits checks their files' sha256).
        fits: whether ``estimate`` fits (zfit); one that only counts may run in the side
            process of `bkg fit` (:mod:`bkg.sources.side`) while the fits run.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    samples: ClassVar[tuple[str, ...]] = ()
    fits: ClassVar[bool] = True

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        """Compute the level per MOT from the samples."""
        raise NotImplementedError


class Reducer(Protocol):
    """What a :class:`StreamingSource` keeps of the chunks of its sample (sums, histograms)."""

    def add(self, ev: Mapping[str, np.ndarray]) -> None:
        """Take one chunk into account (a dict of branch arrays)."""


R = TypeVar("R", bound=Reducer)


class StreamingSource(Source, Generic[R]):
    """A source that reduces its one sample chunk by chunk, then estimates from the sums.

    Subclasses set ``reducer_type`` and implement ``branches`` and ``finish``. :func:`run_fits`
    reads a sample once for all the streaming sources that use it (the union of
    their branches) and hands every chunk to each one's reducer; ``estimate`` makes
    the same pass for this source alone. Memory is that of the chunks in flight.
    """

    def branches(self, cfg: Config) -> Sequence[str]:
        """The branches ``reducer(...).add`` reads."""
        raise NotImplementedError

    #: the reducer: ``reducer_type(cfg, unbinned=...)`` starts one pass over the sample
    reducer_type: Callable[..., R]

    def reducer(self, cfg: Config, *, unbinned: bool) -> R:
        """A fresh reducer for one pass over the sample."""
        return self.reducer_type(cfg, unbinned=unbinned)

    def finish(
        self,
        cfg: Config,
        reduced: R,
        entries: Sequence[Mapping[str, Any]],
        *,
        unbinned: bool,
    ) -> SourceEstimate:
        """The estimate from a reducer that has seen the whole sample (the MANIFEST ``entries``)."""
        raise NotImplementedError

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        """One pass over the sample for this source alone, then :meth:`finish`."""
        passes = reduce_together(cfg, samples_dir, manifest, [self], unbinned=unbinned)
        reduced, entries = passes[self.name]
        return self.finish(cfg, reduced, entries, unbinned=unbinned)


def reduce_together(
    cfg: Config,
    samples_dir: Path,
    manifest: Mapping[str, Any],
    sources: Sequence[StreamingSource[Any]],
    *,
    unbinned: bool,
) -> dict[str, tuple[Any, list[Mapping[str, Any]]]]:
    """One pass over a sample for several streaming sources that read it.

    Args:
        cfg: configuration.
        samples_dir: folder with the samples.
        manifest: its MANIFEST.json.
        sources: streaming sources of one and the same sample kind.
        unbinned: passed to each ``reducer``.

    Returns:
        name -> (its reducer after the whole sample, the MANIFEST entries read).

    Raises:
        SampleError: as :func:`stream`; ValueError if the sources read different kinds.
    """
    kinds = {tuple(source.samples) for source in sources}
    if len(kinds) != 1 or len(next(iter(kinds))) != 1:
        raise ValueError(f"one pass reads one sample kind, not {sorted(kinds)}")
    kind = sources[0].samples[0]
    entries = sample_entries(manifest, kind)
    reducers = [source.reducer(cfg, unbinned=unbinned) for source in sources]
    branches = [b for source in sources for b in source.branches(cfg)]
    for ev in stream(cfg, samples_dir, entries, kind, branches):
        for reduced in reducers:
            reduced.add(ev)
    return {s.name: (r, entries) for s, r in zip(sources, reducers, strict=True)}


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


#: Threads reading (decompressing, screening) sample chunks ahead of the analysis; uproot's
#: decompression releases the GIL. The beam pass of momentum_mismatch + hermeticity on 1e8
#: MOT takes 8.3 s with no thread, 6.9 s with one and 7.0 s with two; two hold one more
#: chunk (peak 320 MB instead of 230 MB).
READ_WORKERS = 1


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
        workers=READ_WORKERS,
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
