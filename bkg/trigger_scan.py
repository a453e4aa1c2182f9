"""Scan of the S4 trigger counter's geometry: what each choice does to rate, signal and background.

The paper gives S4's purpose and two design targets (beam trigger rate < 0.1%, signal
trigger efficiency 15-35%) but not its position or size; the default was chosen with
this scan (docs/s4-study.md), which ``bkg trigger-scan`` reruns for any rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.errors import ConfigError

__all__ = [
    "DEFAULT_GEOMETRIES",
    "S4Geometry",
    "ScanRow",
    "expected_event_limit",
    "markdown",
    "parse_geometry",
    "reach_ratios",
    "scan_s4",
    "write_scan",
]

#: the paper's design targets (Sec. II, V)
RATE_TARGET = 1.0e-3
EFFICIENCY_TARGET = (0.15, 0.35)


@dataclass(frozen=True)
class S4Geometry:
    """S4 spans x in [offset, offset + width] on the bend side, |y| <= height / 2, z behind MS2."""

    offset_cm: float
    width_cm: float
    height_cm: float = 60.0
    z_m: float = 15.0

    @property
    def label(self) -> str:
        return f"{self.offset_cm:g} x {self.width_cm:g} (h {self.height_cm:g}), {self.z_m:g} m"

    def momentum_window_gev(self, field_tm: float) -> tuple[float, float]:
        """Outgoing momenta an on-axis muon must have to land on S4: 0.3 B L z / x."""
        kick = 0.3 * field_tm * 100.0 * self.z_m  # GeV cm
        hi = kick / self.offset_cm if self.offset_cm > 0 else math.inf
        return kick / (self.offset_cm + self.width_cm), hi

    @classmethod
    def of(cls, cfg: Config) -> S4Geometry:
        """The config's own S4."""
        ct = cfg.detector.counters
        return cls(ct.s4.offset_cm, *ct.s4.size_cm, ct.s4.z_from_ms2_m)

    def apply(self, cfg: Config) -> Config:
        """``cfg`` with S4 moved to this geometry."""
        s4 = dataclasses.replace(
            cfg.detector.counters.s4,
            offset_cm=self.offset_cm,
            size_cm=(self.width_cm, self.height_cm),
            z_from_ms2_m=self.z_m,
        )
        ct = dataclasses.replace(cfg.detector.counters, s4=s4)
        return cfg.replace(detector=dataclasses.replace(cfg.detector, counters=ct))


#: the rows of the scan behind the default geometry (docs/s4-study.md): the old
#: default, windows that move the inner edge or the width, two placed further
#: downstream, one as wide as the HCAL, and three with the inner edge at ~10 cm,
#: where the knock-on mismatch falls to the paper's Table I level
DEFAULT_GEOMETRIES = (
    S4Geometry(10.0, 40.0),
    S4Geometry(8.5, 40.0),
    S4Geometry(8.5, 15.0),
    S4Geometry(8.75, 15.0),
    S4Geometry(9.0, 12.0),
    S4Geometry(11.0, 20.0, z_m=20.0),
    S4Geometry(13.5, 30.0, z_m=25.0),
    S4Geometry(8.75, 110.0),
    S4Geometry(9.75, 25.0),
    S4Geometry(10.0, 20.0),
    S4Geometry(10.0, 15.0),
)


def parse_geometry(text: str) -> S4Geometry:
    """``OFFSET,WIDTH[,HEIGHT[,Z]]`` in cm, cm, cm, m (height 60 cm and z 15 m if left out).

    Raises:
        ConfigError: not 2 to 4 numbers, or a width, height or z that is not positive.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if not 2 <= len(values) <= 4 or not all(map(math.isfinite, values)):
        raise ConfigError(
            f"--geometry {text!r}: expected OFFSET,WIDTH[,HEIGHT[,Z]] "
            "(numbers in cm, cm, cm, m; e.g. 8.75,15 or 8.75,15,60,15)",
            source="trigger-scan",
        )
    geo = S4Geometry(*values)
    if min(geo.offset_cm, geo.width_cm, geo.height_cm, geo.z_m) <= 0:
        raise ConfigError(
            f"--geometry {text!r}: offset, width, height and z must be > 0 (S4 sits off the "
            "beam axis, on the bend side)",
            source="trigger-scan",
        )
    if not 1.0 <= geo.z_m <= 100.0:
        raise ConfigError(
            f"--geometry {text!r}: z = {geo.z_m:g} m; S4 sits 1 to 100 m behind MS2",
            source="trigger-scan",
        )
    return geo


@dataclass(frozen=True)
class ScanRow:
    """What one S4 geometry gives.

    Attributes:
        geometry: the S4 geometry.
        beam_triggers, beam_events: beam muons passing the full trigger, and generated.
        signal_passing, signal_events: per mass, signal events passing the trigger, generated.
        hadron_level: hadron in-flight decay per MOT after all cuts and the box.
        hadron_passing: hadrons (all species) passing all cuts and the box.
        knock_on_level: knock-on part of the momentum mismatch per MOT (its estimator in
            :mod:`bkg.sources.momentum_mismatch`): the candidates do not depend on S4,
            the fraction of beam muons whose counters and calorimeters pass does.
        knock_on_candidates: its candidates among the beam muons.
    """

    geometry: S4Geometry
    beam_triggers: int
    beam_events: int
    signal_passing: tuple[int, ...]
    signal_events: int
    hadron_level: float
    hadron_passing: int
    knock_on_level: float
    knock_on_candidates: int

    @property
    def trigger_rate(self) -> float:
        return self.beam_triggers / self.beam_events

    @property
    def efficiency(self) -> np.ndarray:
        return np.asarray(self.signal_passing, dtype=float) / self.signal_events

    def background_events(self, n_mot: float) -> float:
        """Hadron decay plus knock-on mismatch at ``n_mot`` (the other sources add < 5e-13)."""
        return (self.hadron_level + self.knock_on_level) * n_mot

    def limit_over_efficiency(self, n_mot: float) -> np.ndarray:
        """Expected 90% CL event limit over the trigger efficiency, per mass: g'^2 reach.

        inf at a mass where no signal event passes the trigger (no reach).
        """
        with np.errstate(divide="ignore"):
            return expected_event_limit(self.background_events(n_mot)) / self.efficiency

    def meets_targets(self) -> dict[str, bool]:
        """The paper's targets: rate below 0.1%, efficiency in 15-35%, rising with the mass."""
        eff = self.efficiency
        lo, hi = EFFICIENCY_TARGET
        return {
            "rate": self.trigger_rate <= RATE_TARGET,
            "range": bool(eff.min() >= lo and eff.max() <= hi),
            "rises": bool(np.all(np.diff(eff) > 0)),
        }


def expected_event_limit(background: float, cl: float = 0.90) -> float:
    """Median expected CLs upper limit on signal events of a one-bin count with known background.

    The median experiment is taken as the Asimov count n = b, continued to non-integer n
    with the regularised gamma function: CLs(s) = P(N <= n | s + b) / P(N <= n | b),
    P(N <= n | mu) = Q(n + 1, mu). At b = 0 it is the familiar 2.30 events (90% CL).
    A figure of merit for comparing geometries, not the report's limit (pyhf, with
    the systematics).
    """
    from scipy import optimize, special

    b = max(float(background), 0.0)
    p_b = float(special.gammaincc(b + 1, b)) if b > 0 else 1.0

    def excess(s: float) -> float:
        return float(special.gammaincc(b + 1, s + b)) / p_b - (1 - cl)

    return float(optimize.brentq(excess, 0.0, 50.0 + 20.0 * b))


def _sized(
    cfg: Config, n_beam: int, n_signal: int, n_hadrons: int, masses: Sequence[float]
) -> Config:
    s = dataclasses.replace(
        cfg.samples,
        hadron_events=int(n_hadrons),
        signal_events_per_mass=int(n_signal),
        signal_masses_gev=tuple(float(m) for m in masses),
    )
    return cfg.replace(samples=s, n_mot=float(n_beam))


def scan_s4(
    cfg: Config,
    geometries: Iterable[S4Geometry] = DEFAULT_GEOMETRIES,
    *,
    n_beam: int = 10_000_000,
    n_signal: int = 30_000,
    n_hadrons: int = 4_500_000,
    masses_gev: Sequence[float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ScanRow]:
    """Trigger rate, signal trigger efficiency per mass, hadron-decay and knock-on levels.

    The events are those of ``bkg samples`` with the same seed (same seed keys and chunk
    size), only fewer or more of them: ``n_beam`` beam muons, ``n_signal`` signal events
    per mass of ``masses_gev`` (default: the config's signal masses), ``n_hadrons``
    hadrons. A knock-on part without candidates or passing muons is its 90% CL bound,
    as in the source.

    Beam muons give the trigger rate and the knock-on part of the momentum mismatch,
    signal events the trigger efficiency (the paper's Fig. 2), hadrons the hadron-decay
    level after all cuts. No random number depends on S4's geometry (nor on the HCAL's
    and S_mu's, which follow S4's centre), so every row sees the same events: the
    differences between rows are the geometry's, not statistical fluctuations.
    """
    from bkg.selection import passes_trigger
    from bkg.sim.run import chunk_plan, generate_chunk
    from bkg.sources.hadron_decay import SPECIES, species_norm, tally_species
    from bkg.sources.momentum_mismatch import MomentumMismatch

    if min(n_beam, n_signal, n_hadrons) <= 0:
        raise ConfigError("--n-beam, --n-signal and --n-hadrons must be > 0", source="trigger-scan")
    masses = tuple(cfg.samples.signal_masses_gev if masses_gev is None else masses_gev)
    base = _sized(cfg, n_beam, n_signal, n_hadrons, masses)
    rows = []
    for geo in geometries:
        c = geo.apply(base)
        if progress is not None:
            progress(geo.label)
        triggers = 0
        sums = MomentumMismatch().reducer(c, unbinned=False)
        for key, n, _ in chunk_plan(c, "beam", n_beam):
            ev = generate_chunk(c, "beam", key, n)
            triggers += int(passes_trigger(ev, c).sum())
            sums.add(ev)
        knock_on = sums.knock_on()[0]
        passing = [0] * len(masses)
        for key, n, mass in chunk_plan(c, "signal", n_beam):
            ev = generate_chunk(c, "signal", key, n, mass)
            passing[key[1]] += int(passes_trigger(ev, c).sum())
        seen = {p: 0 for p in SPECIES}
        passed = {p: 0 for p in SPECIES}
        for key, n, _ in chunk_plan(c, "hadrons", n_beam):
            tally_species(generate_chunk(c, "hadrons", key, n), c, seen, passed)
        level = sum(species_norm(c, p) * passed[p] / seen[p] for p in SPECIES if seen[p])
        rows.append(
            ScanRow(
                geometry=geo,
                beam_triggers=triggers,
                beam_events=n_beam,
                signal_passing=tuple(passing),
                signal_events=n_signal,
                hadron_level=level,
                hadron_passing=sum(passed.values()),
                knock_on_level=knock_on,
                knock_on_candidates=sums.n_cand,
            )
        )
    return rows


def _record(rows: Sequence[ScanRow], cfg: Config, masses: Sequence[float]) -> dict[str, Any]:
    return {
        "config_hash": cfg.hash,
        "seed": cfg.seed,
        "masses_gev": list(masses),
        "targets": {"trigger_rate_max": RATE_TARGET, "efficiency_range": list(EFFICIENCY_TARGET)},
        "rows": [
            {
                **dataclasses.asdict(r.geometry),
                "p_window_gev": list(
                    r.geometry.momentum_window_gev(cfg.detector.spectrometers.ms2.field_tm)
                ),
                "beam_events": r.beam_events,
                "beam_triggers": r.beam_triggers,
                "trigger_rate": r.trigger_rate,
                "signal_events_per_mass": r.signal_events,
                "signal_passing": list(r.signal_passing),
                "trigger_efficiency": r.efficiency.tolist(),
                "hadron_decay_per_mot": r.hadron_level,
                "hadrons_passing": r.hadron_passing,
                "knock_on_per_mot": r.knock_on_level,
                "expected_signal_limit": expected_event_limit(r.background_events(cfg.n_mot)),
                # null where a row or the config keeps no signal at that mass
                "gprime_reach_vs_config": [float(g) if np.isfinite(g) else None for g in reach],
                "knock_on_candidates": r.knock_on_candidates,
                "meets": r.meets_targets(),
            }
            for r, reach in zip(rows, reach_ratios(rows, cfg), strict=True)
        ],
    }


def _reference(rows: Sequence[ScanRow], cfg: Config) -> ScanRow:
    """The row of the config's own S4 geometry, else the first row."""
    own = S4Geometry.of(cfg)
    return next((r for r in rows if r.geometry == own), rows[0])


def reach_ratios(rows: Sequence[ScanRow], cfg: Config) -> list[np.ndarray]:
    """Expected g'_90 of each row relative to the config's S4, per mass (below 1: further)."""
    ref = _reference(rows, cfg).limit_over_efficiency(cfg.n_mot)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [np.sqrt(r.limit_over_efficiency(cfg.n_mot) / ref) for r in rows]


def markdown(rows: Sequence[ScanRow], cfg: Config, masses: Sequence[float]) -> str:
    """The scan as a Markdown table (one row per geometry)."""
    field = cfg.detector.spectrometers.ms2.field_tm
    head = " … ".join(f"{m * 1e3:g}" for m in (masses[0], masses[-1]))
    lines = [
        "| S4 offset x width (h), z | p window (GeV) | beam rate "
        f"| trigger eff. {head} MeV | hadron decay per MOT | knock-on mismatch per MOT "
        f"| g'_90 vs config, {head} MeV | targets met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if not rows:
        return "\n".join(lines) + "\n"
    ref = _reference(rows, cfg)
    for r, reach in zip(rows, reach_ratios(rows, cfg), strict=True):
        lo, hi = r.geometry.momentum_window_gev(field)
        met = [k for k, ok in r.meets_targets().items() if ok]
        star = " (config)" if r is ref else ""
        lines.append(
            f"| {r.geometry.label}{star} | {lo:.0f}-{hi:.0f} | {r.trigger_rate:.2g} "
            f"| {', '.join(f'{e:.3f}' for e in r.efficiency)} | {r.hadron_level:.2g} "
            f"| {r.knock_on_level:.2g} | {', '.join(f'{g:.2f}' for g in reach)} "
            f"| {', '.join(met) or 'none'} |"
        )
    lines += [
        "",
        f"{ref.beam_events:.3g} beam muons ({ref.knock_on_candidates} knock-on candidates, "
        f"the same for every row), {ref.signal_events:.3g} signal events per mass, "
        f"seed {cfg.seed}. Targets (paper Sec. II, V): rate <= {RATE_TARGET:g}, "
        f"efficiency in {EFFICIENCY_TARGET[0]:g}-{EFFICIENCY_TARGET[1]:g}, rising with the mass. "
        f"g'_90 vs config: sqrt((s90 / eff) / (s90 / eff of the config's S4)), s90 the median "
        f"expected 90% CL limit on signal events with the row's hadron-decay and knock-on "
        f"background at {cfg.n_mot:.3g} MOT, eff the trigger efficiency; below 1 reaches "
        f"further.",
    ]
    return "\n".join(lines) + "\n"


def write_scan(
    rows: Sequence[ScanRow], cfg: Config, out_dir: Path, masses_gev: Sequence[float] | None = None
) -> list[Path]:
    """Write ``s4_scan.md``, ``s4_scan.csv`` and ``s4_scan.json`` to ``out_dir`` (atomically)."""
    from bkg.atomic import dumps_json, write_texts

    masses = tuple(cfg.samples.signal_masses_gev if masses_gev is None else masses_gev)
    record = _record(rows, cfg, masses)
    cols = ["offset_cm", "width_cm", "height_cm", "z_m", "trigger_rate", "hadron_decay_per_mot",
            "knock_on_per_mot"]  # fmt: skip
    csv = [",".join(cols + [f"eff_{m * 1e3:g}_mev" for m in masses])]
    for row in record["rows"]:
        csv.append(
            ",".join(
                [f"{row[c]:.6g}" for c in cols] + [f"{e:.6g}" for e in row["trigger_efficiency"]]
            )
        )
    out = Path(out_dir)
    return write_texts(
        {
            out / "s4_scan.md": markdown(rows, cfg, masses),
            out / "s4_scan.csv": "\n".join(csv),
            out / "s4_scan.json": dumps_json(record),
        }
    )
