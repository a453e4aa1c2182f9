"""The samples stage: generate every sample in seeded chunks and write the ntuples + MANIFEST.json.

Chunk k of sample s is generated from ``SeedSequence(cfg.seed, spawn_key=(i_s, k))``
(i_s the index of s in :data:`SAMPLES`, k the chunk index; for the signal the
mass index m gives ``(i_s, m, k)``), so the output does not depend on the
number of workers. Workers are processes (``concurrent.futures``) or a Dask
distributed ``Client(scheduler)``; each worker writes and hashes the files of
its chunks. The chunks of all requested samples (and the samples'
normalisations) form one queue, longest first, so that no worker waits for the
last chunk of one sample before the next sample starts.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bkg import ntuple, sizes
from bkg.atomic import write_json
from bkg.config import Config
from bkg.errors import SampleError
from bkg.memory import heap_policy

__all__ = [
    "SAMPLES", "check_samples", "generate_chunk", "run_samples", "signal_efficiency",
    "trigger_efficiency", "warm_up",
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
        out = beam.in_blocks(lambda m: hadrons.generate_hadrons(cfg, rng, m), n, sample)
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


#: rough cost of one event (s, generation + write) and of the normalisation of each sample
#: on the reference machine: only to start the longest tasks first (results never depend on it)
_COST_PER_EVENT_S = {
    "beam": 0.35e-6,
    "hadrons": 0.6e-6,
    "leading_hadrons": 3.8e-6,
    "dimuons": 0.7e-6,
    "signal": 35e-6,  # 0.3-0.9 s per 2e4 events: mostly the cross-section grid of the mass
}
_NORM_COST_S = {"leading_hadrons": 0.22, "dimuons": 0.08}


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


def warm_up() -> None:
    """Import and tabulate, once, what every chunk needs (call before forking workers).

    Forked workers inherit the modules and the cached tables (the ECAL rate tables
    import and integrate :mod:`bkg.physics`, ~0.5 s), so none of them repeats it.
    """
    import uproot  # noqa: F401

    import bkg.physics.crosssection  # noqa: F401
    from bkg.sim import dimuons, ecal, hadrons, leading_hadrons, signal  # noqa: F401

    ecal.warm_tables()
    for pdg in hadrons.SPECIES:
        hadrons.hadron_properties(pdg)


def external_samples(samples_dir: Path) -> bool:
    """Whether ``samples_dir`` holds a production that ``bkg samples`` did not write.

    Raises:
        SampleError: ROOT files without a MANIFEST.json (nothing says what they are, and
            generating into the folder could overwrite them).
    """
    manifest = samples_dir / "MANIFEST.json"
    has_root = any(samples_dir.glob("*.root"))
    if not manifest.is_file():
        if has_root:
            raise SampleError(
                f"{samples_dir}: ROOT files but no MANIFEST.json; add one (samples/README.md) "
                "or choose an empty folder for `bkg samples`"
            )
        return False
    try:
        generator = json.loads(manifest.read_text()).get("generator")
    except (OSError, ValueError, AttributeError) as exc:
        if has_root:  # nothing says who wrote these files: never write over them
            raise SampleError(
                f"{manifest}: not a readable MANIFEST ({exc}); the ROOT files beside it are not "
                "overwritten: fix it, or delete the folder to make new samples"
            ) from None
        return False
    return generator != "bkg.sim"


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
    MANIFEST lists every file with its sample, events, seed key and sha256. The
    previous files of the requested samples are removed first; a sample enters the
    MANIFEST when all its files are written, so the folder is consistent at any time.

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
    names = list(only) if only else list(SAMPLES)
    for name in names:
        if name not in SAMPLES:
            raise SampleError(f"unknown sample {name!r} (known: {', '.join(SAMPLES)})")
    names = [s for s in SAMPLES if s in names]  # each once, in the MANIFEST's order
    n_mot = float(cfg.samples.n_mot if n_mot is None else n_mot)
    if not (math.isfinite(n_mot) and n_mot >= 1):
        raise SampleError(f"--n-mot {n_mot:g}: expected a finite number of beam muons, at least 1")
    if n_mot > sizes.MAX_SIMULATED_MOT:  # checked before the chunk plan is made
        raise SampleError(
            f"--n-mot {n_mot:g}: at most {sizes.MAX_SIMULATED_MOT:g} beam muons per production"
        )
    scheduler = scheduler if scheduler is not None else cfg.run.scheduler
    if workers is None:
        workers = cfg.run.workers
    if not workers:
        workers = os.cpu_count() or 1
    # everything that can fail on the user's input fails here, before a file is touched
    if out_dir.is_dir() and external_samples(out_dir):
        raise SampleError(
            f"{out_dir}: holds samples that `bkg samples` did not write (MANIFEST.json "
            "generator is not bkg.sim); they are not overwritten: choose another --out"
        )
    args = {
        name: [
            (cfg, name, key, n, m, out_dir / chunk_file(name, i))
            for i, (key, n, m) in enumerate(_tasks(cfg, name, n_mot))
        ]
        for name in names
    }
    # a worker per chunk at most, and no more than the cores (--workers 1000 forked 975)
    workers = max(1, min(workers, os.cpu_count() or 1, sum(map(len, args.values()))))
    client = _dask_client(scheduler) if scheduler else None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if client is not None:
            client.close()
        raise SampleError(f"{out_dir}: cannot create the samples folder ({exc.strerror})") from None
    manifest_path = out_dir / "MANIFEST.json"
    entries: dict[str, list[dict[str, Any]]] = {}
    if manifest_path.exists():
        try:
            for e in ntuple.read_manifest(out_dir, check_hashes=False)["files"]:
                entries.setdefault(e["sample"], []).append(e)
        except SampleError:
            entries = {}
    # the previous production of the requested samples: out of the MANIFEST, then deleted
    old = [e for name in names for e in entries.pop(name, [])]
    _write_manifest(manifest_path, cfg, entries)
    for e in old:
        (out_dir / e["file"]).unlink(missing_ok=True)
    pool = None
    submit: Callable[..., Any] | None = None
    if client is not None:
        submit = functools.partial(client.submit, pure=False)
    elif workers > 1:
        warm_up()  # before the fork: the workers inherit it
        pool = ProcessPoolExecutor(max_workers=workers)
        submit = pool.submit
    try:
        if submit is None:
            for name in names:
                written = []
                for done, a in enumerate(args[name], 1):
                    written.append(write_chunk(*a))
                    if progress is not None:
                        progress(name, done, len(args[name]))
                _add_sample(manifest_path, cfg, entries, name, written, _norms(cfg, name))
        else:
            # one queue, the longest tasks first: a worker never idles while another
            # finishes a sample (the results are small: the files are written by the workers)
            jobs: list[tuple[float, str, int]] = [
                (_COST_PER_EVENT_S[name] * a[3], name, i)
                for name in names
                for i, a in enumerate(args[name])
            ]
            # the slow normalisations are tasks too; the others take no time
            jobs += [(_NORM_COST_S[name], name, -1) for name in names if name in _NORM_COST_S]
            futures: dict[tuple[str, int], Any] = {}
            for _, name, i in sorted(jobs, key=lambda j: -j[0]):
                if i < 0:
                    futures[name, i] = submit(_norms, cfg, name)
                else:
                    futures[name, i] = submit(write_chunk, *args[name][i])
            for name in names:
                written = []
                for done in range(1, len(args[name]) + 1):
                    written.append(futures[name, done - 1].result())
                    if progress is not None:
                        progress(name, done, len(args[name]))
                norms = futures[name, -1].result() if (name, -1) in futures else _norms(cfg, name)
                _add_sample(manifest_path, cfg, entries, name, written, norms)
    except BaseException:
        # interrupted or failed: let the running chunks finish, then remove the files of
        # every sample that did not enter the MANIFEST, so that none is left unlisted
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None
        for name in names:
            if name not in entries:
                for a in args[name]:
                    a[-1].unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if client is not None:
            client.close()
    return _write_manifest(manifest_path, cfg, entries)


def _dask_client(scheduler: str) -> Any:
    """A Dask client of ``scheduler``, or a one-line error when it cannot be reached."""
    from dask.distributed import Client

    try:
        return Client(scheduler, timeout="10s")
    except (OSError, ValueError, TimeoutError) as exc:
        raise SampleError(
            f"--scheduler {scheduler}: cannot connect to a Dask scheduler ({exc})"
        ) from None


def _add_sample(
    manifest_path: Path,
    cfg: Config,
    entries: dict[str, list[dict[str, Any]]],
    name: str,
    written: list[dict[str, Any]],
    norms: dict[str, Any],
) -> None:
    """Enter a completely written sample into the MANIFEST (rewritten after every sample)."""
    entries[name] = [_entry(cfg, name, e, norms) for e in written]
    log.info("wrote %s: %d files", name, len(written))
    _write_manifest(manifest_path, cfg, entries)


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
    heap_policy("keep")
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


def _binomial(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.maximum(n, 1.0)
    f = k / n
    return f, np.sqrt(np.clip(f * (1 - f), 0.0, None) / n)


def signal_fractions(
    samples_dir: str | Path, cfg: Config
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The signal sample's fractions per Z' mass, from one read of ``signal.root``.

    Returns:
        (masses in GeV, {name: (fraction, binomial standard error)}) with

        - ``selection``: events passing the trigger, cuts (i)-(iv) and the signal box,
          all reconstructed, over the events whose true E'_mu is inside the box. The
          yield of eq. (6) already keeps only E'_mu <= 80 GeV (x >= 1/2), so this is
          the factor that multiplies it (dividing by all events would count the
          kinematic fraction twice); migration across the box edge is included.
        - ``trigger``: events passing the trigger over all events (the paper's Fig. 2).
        - ``box``: events whose true E'_mu is inside the box over all events: the
          largest trigger efficiency that a trigger keeping only the box can have.
    """
    masses, c = _signal_counts(samples_dir, cfg)
    return masses, {
        "selection": _binomial(c["selected"], c["true_box"]),
        "trigger": _binomial(c["trigger"], c["all"]),
        "box": _binomial(c["true_box"], c["all"]),
    }


def signal_efficiency(
    samples_dir: str | Path, cfg: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selection efficiency of the signal per Z' mass (``selection`` of :func:`signal_fractions`).

    Returns:
        (masses in GeV, efficiency, binomial standard error), each of shape (n_masses,).
    """
    masses, f = signal_fractions(samples_dir, cfg)
    return masses, *f["selection"]


def trigger_efficiency(
    samples_dir: str | Path, cfg: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's Fig. 2: fraction of all signal events passing the trigger, per Z' mass.

    Returns:
        (masses in GeV, efficiency, binomial standard error).
    """
    masses, f = signal_fractions(samples_dir, cfg)
    return masses, *f["trigger"]


def check_samples(paths: Sequence[str | Path], sample: str | None = None) -> list[str]:
    """Problems of user ntuples against the contract; the sample kind defaults to the file stem."""
    problems: list[str] = []
    for p in paths:
        kind = sample or re.sub(r"_\d+$", "", Path(p).stem)  # beam_0003.root -> beam
        problems += ntuple.check_file(p, kind)
    return problems
