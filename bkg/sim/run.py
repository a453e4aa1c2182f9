"""The samples stage: generate every sample in seeded chunks and write the ntuples + MANIFEST.json.

Chunk k of sample s is generated from ``SeedSequence(cfg.seed, spawn_key=(i_s, k))``
(i_s the index of s in :data:`SAMPLES`, k the chunk index; for the signal the
mass index m gives ``(i_s, m, k)``), so the output does not depend on the
number of workers. Workers are processes (``concurrent.futures``) or a Dask
distributed ``Client(scheduler)``; the parent writes the chunks in order.
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bkg import ntuple
from bkg.atomic import write_json
from bkg.config import Config
from bkg.errors import SampleError

__all__ = [
    "SAMPLES", "check_samples", "generate_chunk", "run_samples", "signal_efficiency",
    "trigger_efficiency",
]  # fmt: skip

log = logging.getLogger(__name__)
SAMPLES = ("beam", "hadrons", "leading_hadrons", "dimuons", "signal")


def _seed(cfg: Config, key: tuple[int, ...]) -> np.random.SeedSequence:
    return np.random.SeedSequence(cfg.seed, spawn_key=key)


def generate_chunk(
    cfg: Config, sample: str, key: tuple[int, ...], n: int, mass: float | None = None
) -> dict[str, np.ndarray]:
    """Generate one chunk (pure function of cfg, sample, seed key and size), cast to the schema dtypes."""
    from bkg.sim import beam, dimuons, hadrons, leading_hadrons, signal

    rng = np.random.default_rng(_seed(cfg, key))
    if sample == "beam":
        out = beam.generate_beam_muons(cfg, rng, n)
    elif sample == "hadrons":
        out = hadrons.generate_hadrons(cfg, rng, n)
    elif sample == "leading_hadrons":
        out = leading_hadrons.generate_leading_hadrons(cfg, rng, n)
    elif sample == "dimuons":
        out = dimuons.generate_dimuons(cfg, rng, n)
    elif sample == "signal":
        assert mass is not None
        out = signal.generate_signal(cfg, rng, n, m_zprime_gev=mass)
    else:
        raise SampleError(f"unknown sample {sample!r} (known: {', '.join(SAMPLES)})")
    schema = ntuple.SCHEMAS[sample]
    return {k: np.ascontiguousarray(out[k], dtype=b.dtype) for k, b in schema.items()}


def _tasks(
    cfg: Config, sample: str, n_mot: float
) -> list[tuple[tuple[int, ...], int, float | None]]:
    s = cfg.samples
    i = SAMPLES.index(sample)
    size = {
        "beam": int(n_mot),
        "hadrons": s.hadron_events,
        "leading_hadrons": s.leading_hadron_events,
        "dimuons": s.dimuon_events,
    }.get(sample)
    tasks: list[tuple[tuple[int, ...], int, float | None]] = []
    if sample == "signal":
        for m_i, m in enumerate(s.signal_masses_gev):
            n = s.signal_events_per_mass
            for k in range(math.ceil(n / s.chunk_size)):
                tasks.append(((i, m_i, k), min(s.chunk_size, n - k * s.chunk_size), float(m)))
        return tasks
    assert size is not None
    for k in range(math.ceil(size / s.chunk_size)):
        tasks.append(((i, k), min(s.chunk_size, size - k * s.chunk_size), None))
    return tasks


def _in_order(submit: Callable[[Any], Any], args: Sequence[Any], *, ahead: int) -> Iterator[Any]:
    """Results of ``submit(a)`` for each a, in order, with at most ``ahead`` chunks in flight.

    Executor.map/Client.map submit every chunk at once, and chunks finished before the
    writer takes them pile up in memory; a bounded window keeps the memory of a
    1e8-MOT production that of a few chunks.
    """
    window: deque[Any] = deque()
    for a in args:
        window.append(submit(a))
        if len(window) > ahead:
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


def _norms(cfg: Config, sample: str) -> dict[str, Any]:
    from bkg.sim import dimuons, hadrons, leading_hadrons

    if sample == "beam":
        return {"norm_per_mot": 1.0}
    if sample == "hadrons":
        per = hadrons.species_norms(cfg)
        return {
            "norm_per_mot": float(sum(per.values())),
            "norm_per_mot_by_pdg": {str(k): v for k, v in per.items()},
            "species_fraction_generated": {str(k): 1.0 / len(per) for k in per},
        }
    if sample == "leading_hadrons":
        return {"norm_per_mot": leading_hadrons.leading_hadron_probability(cfg, seed=cfg.seed)}
    if sample == "dimuons":
        y = dimuons.dimuon_yields(cfg, seed=cfg.seed)
        return {
            "norm_per_mot": float(y["total"]),
            "yields_per_mot": {k: float(v) for k, v in y.items()},
        }
    return {
        "norm_per_mot": 1.0,
        "note": "signal: per generated emission; the yield comes from bkg.physics",
    }


def run_samples(
    cfg: Config,
    *,
    out_dir: Path,
    only: Sequence[str] | None = None,
    n_mot: float | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate the samples: ``out_dir/<sample>_<chunk>.root`` and ``out_dir/MANIFEST.json``.

    One ROOT file per chunk, written by the worker that generated it; the
    MANIFEST lists every file with its sample, events, seed key and sha256.

    Args:
        cfg: configuration (seed, sizes, detector).
        out_dir: output folder.
        only: subset of :data:`SAMPLES` (default: all).
        n_mot: beam muons to simulate (default ``cfg.samples.n_mot``).
        workers: worker processes (default ``cfg.run.workers``, 0: all cores; 1: in process).
        scheduler: Dask scheduler address; when given, chunks run on that cluster.
        progress: called as ``progress(sample, chunks_done, chunks_total)``.

    Returns:
        The manifest (dict) also written to MANIFEST.json.
    """
    import os

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(only) if only else list(SAMPLES)
    for name in names:
        if name not in SAMPLES:
            raise SampleError(f"unknown sample {name!r} (known: {', '.join(SAMPLES)})")
    n_mot = float(cfg.samples.n_mot if n_mot is None else n_mot)
    scheduler = scheduler if scheduler is not None else cfg.run.scheduler
    if workers is None:
        workers = cfg.run.workers
    if not workers:
        workers = os.cpu_count() or 1
    manifest_path = out_dir / "MANIFEST.json"
    entries: dict[str, list[dict[str, Any]]] = {}
    if manifest_path.exists():
        try:
            for e in ntuple.read_manifest(out_dir, check_hashes=False)["files"]:
                entries.setdefault(e["sample"], []).append(e)
        except SampleError:
            entries = {}
    client = None
    pool = None
    if scheduler:
        from dask.distributed import Client

        client = Client(scheduler)
    elif workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
    try:
        for name in names:
            tasks = _tasks(cfg, name, n_mot)
            args = [
                (cfg, name, key, n, m, out_dir / chunk_file(name, i))
                for i, (key, n, m) in enumerate(tasks)
            ]
            for old in entries.pop(name, []):  # the previous production of this sample
                (out_dir / old["file"]).unlink(missing_ok=True)
            _write_manifest(manifest_path, cfg, entries)
            results: Iterable[dict[str, Any]]
            if client is not None:
                slots = max(sum(client.nthreads().values()), 1)
                results = _in_order(lambda a: client.submit(write_chunk, *a, pure=False),
                                    args, ahead=2 * slots)  # fmt: skip
            elif pool is not None:
                results = _in_order(lambda a: pool.submit(write_chunk, *a), args,
                                    ahead=2 * workers)  # fmt: skip
            else:
                results = (write_chunk(*a) for a in args)
            written = []
            for done, chunk_entry in enumerate(results, 1):
                written.append(chunk_entry)
                if progress is not None:
                    progress(name, done, len(tasks))
            norms = _norms(cfg, name)
            entries[name] = [_entry(cfg, name, e, norms) for e in written]
            log.info("wrote %s: %d files", name, len(written))
            # after every sample: the folder is consistent even if the run stops here
            _write_manifest(manifest_path, cfg, entries)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if client is not None:
            client.close()
    return _write_manifest(manifest_path, cfg, entries)


def chunk_file(sample: str, index: int) -> str:
    """File name of chunk ``index`` of a sample (one ROOT file per chunk)."""
    return f"{sample}_{index:04d}.root"


def write_chunk(
    cfg: Config, sample: str, key: tuple[int, ...], n: int, mass: float | None, path: Path
) -> dict[str, Any]:
    """Generate one chunk and write it to its own file (runs in a worker).

    Every worker writes (and compresses) its own files, so writing is parallel too.

    Returns:
        The file's MANIFEST fields: file, events, sha256 and the chunk's seed key.
    """
    chunk = generate_chunk(cfg, sample, key, n, mass)
    writer = ntuple.NtupleWriter(path, sample)
    try:
        with writer:
            writer.extend(chunk)
    except BaseException:
        # whatever interrupted the writer (Ctrl-C at any instruction), no partial file
        writer.temporary_path().unlink(missing_ok=True)
        raise
    return {
        "file": path.name,
        "events": writer.events,
        "sha256": ntuple.sha256_file(path),
        "spawn_key": list(key),
        "mass": mass,
    }


def _entry(
    cfg: Config, sample: str, chunk: dict[str, Any], norms: dict[str, Any]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "file": chunk["file"],
        "sample": sample,
        "events": chunk["events"],
        "seed": {"entropy": int(cfg.seed), "spawn_keys": [chunk["spawn_key"]]},
        "config_hash": cfg.hash,
        "sha256": chunk["sha256"],
        "generator": "bkg.sim",
        "chunk_size": cfg.samples.chunk_size,
        **norms,
    }
    if sample == "beam":
        entry["n_mot"] = float(chunk["events"])  # one beam muon per MOT
    if sample == "signal":
        entry["masses_gev"] = [chunk["mass"]]
        entry["beam_energy_gev"] = cfg.beam.energy_gev
    return entry


def _write_manifest(
    path: Path, cfg: Config, entries: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    manifest = {
        "generator": "bkg.sim",
        "config_hash": cfg.hash,
        "seed": int(cfg.seed),
        "files": [e for s in SAMPLES for e in entries.get(s, [])],
    }
    write_json(path, manifest)
    return manifest


def _signal_counts(
    samples_dir: str | Path, cfg: Config
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per Z' mass: all events, events with E'_mu(true) in the box, triggered, selected."""
    from bkg import selection

    paths = ntuple.sample_paths(samples_dir, "signal")
    branches = list(dict.fromkeys([*selection.BRANCHES, "m_zprime_gev", "p_out_true"]))
    counts: dict[float, np.ndarray] = {}
    for chunk in ntuple.iterate(paths, "signal", branches, nonfinite=cfg.samples.nonfinite):
        trig = selection.passes_trigger(chunk, cfg)
        sel = selection.passes_selection(chunk, cfg) & selection.in_signal_box(chunk, cfg)
        box = chunk["p_out_true"] <= cfg.signal_box.e_mu_out_max_gev
        m = chunk["m_zprime_gev"]
        for mass in np.unique(m):
            here = m == mass
            c = np.array([here.sum(), (here & box).sum(), (here & trig).sum(), (here & sel).sum()])
            counts[float(mass)] = counts.get(float(mass), np.zeros(4, dtype=np.int64)) + c
    masses = np.array(sorted(counts))
    table = np.array([counts[k] for k in masses], dtype=float).reshape(-1, 4)
    names = ("all", "true_box", "trigger", "selected")
    return masses, {name: table[:, i] for i, name in enumerate(names)}


def signal_efficiency(
    samples_dir: str | Path, cfg: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selection efficiency of the signal per Z' mass, from ``signal.root``.

    Defined as (events passing the trigger, cuts (i)-(iv) and the signal box, all
    reconstructed) / (events whose true E'_mu is inside the box). The yield of
    eq. (6) already keeps only E'_mu <= 80 GeV (x >= 1/2) of the cross section, so
    this is the factor that multiplies it: dividing by all events would count the
    kinematic fraction twice. Migration across the box edge is included.

    Returns:
        (masses in GeV, efficiency, binomial standard error), each of shape (n_masses,).
    """
    masses, c = _signal_counts(samples_dir, cfg)
    n = np.maximum(c["true_box"], 1.0)
    eff = c["selected"] / n
    return masses, eff, np.sqrt(np.clip(eff * (1 - eff), 0.0, None) / n)


def trigger_efficiency(
    samples_dir: str | Path, cfg: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's Fig. 2: fraction of all signal events passing the trigger, per Z' mass.

    Returns:
        (masses in GeV, efficiency, binomial standard error).
    """
    masses, c = _signal_counts(samples_dir, cfg)
    n = np.maximum(c["all"], 1.0)
    eff = c["trigger"] / n
    return masses, eff, np.sqrt(eff * (1 - eff) / n)


def check_samples(paths: Sequence[str | Path], sample: str | None = None) -> list[str]:
    """Problems of user ntuples against the contract; the sample kind defaults to the file stem."""
    problems: list[str] = []
    for p in paths:
        kind = sample or re.sub(r"_\d+$", "", Path(p).stem)  # beam_0003.root -> beam
        problems += ntuple.check_file(p, kind)
    return problems
