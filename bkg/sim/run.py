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

import contextlib
import functools
import json
import logging
import math
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bkg import ntuple, sizes
from bkg.atomic import inside, write_json
from bkg.config import Config
from bkg.errors import BkgError, SampleError
from bkg.memory import heap_policy

__all__ = [
    "SAMPLES", "check_samples", "chunk_plan", "generate_chunk", "run_samples", "signal_efficiency",
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


def _size(cfg: Config, sample: str, n_mot: float) -> int:
    """Events of one sample (per mass for the signal)."""
    s = cfg.samples
    if sample == "signal":
        return int(s.signal_events_per_mass)
    return int(
        {
            "beam": int(n_mot),
            "hadrons": s.hadron_events,
            "leading_hadrons": s.leading_hadron_events,
            "dimuons": s.dimuon_events,
        }[sample]
    )


def _n_tasks(cfg: Config, sample: str, n_mot: float) -> int:
    """How many chunks (files) :func:`chunk_plan` yields, without making them."""
    per = -(-_size(cfg, sample, n_mot) // cfg.samples.chunk_size)  # exact for any size
    return per * len(cfg.samples.signal_masses_gev) if sample == "signal" else per


def chunk_plan(
    cfg: Config, sample: str, n_mot: float
) -> Iterator[tuple[tuple[int, ...], int, float | None]]:
    """The chunk plan of a sample, one (seed key, events, mass) at a time.

    A generator: a huge ``n_mot`` never builds the plan in memory (the maxima on the
    counts are checked before any work starts).
    """
    s = cfg.samples
    i = SAMPLES.index(sample)
    size = _size(cfg, sample, n_mot)
    n_chunks = -(-size // s.chunk_size)
    if sample == "signal":
        for m_i, m in enumerate(s.signal_masses_gev):
            for k in range(n_chunks):
                yield (i, m_i, k), min(s.chunk_size, size - k * s.chunk_size), float(m)
        return
    for k in range(n_chunks):
        yield (i, k), min(s.chunk_size, size - k * s.chunk_size), None


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
    import and integrate :mod:`bkg.physics`, ~0.8 s), so none of them repeats it; most
    of the pair-production tables are integrated by a fork meanwhile
    (:func:`bkg.sim.ecal.start_rate_tables`).
    """
    import bkg.physics.energyloss  # what the rate tables integrate, before the fork
    from bkg.sim import ecal

    # on the other core meanwhile: 12 of the 17 pair tables (~0.5 s), the imports below here
    take_pair_tables = ecal.start_rate_tables("pair", share=0.7)
    import uproot  # noqa: F401

    import bkg.physics.crosssection  # noqa: F401
    from bkg.sim import dimuons, hadrons, leading_hadrons, signal  # noqa: F401

    take_pair_tables()
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


#: the record of the files `bkg samples` wrote in a folder: the only files it ever deletes
WRITTEN = ".written.json"
_CHUNK_NAME = re.compile(r"^(?:" + "|".join(SAMPLES) + r")_\d{4,}\.root$")


def _stat_entry(path: Path) -> dict[str, int] | None:
    """Size and mtime of a regular file (not a symbolic link), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


class _Record:
    """What ``bkg samples`` wrote in a folder (``.written.json``), never trusted blindly.

    ``files`` maps a chunk file name to the size and mtime it had when written: a file
    is the tool's own only while it is a regular file with that size and mtime.
    ``pending`` maps a sample to the number of chunk files a run is writing; a run that
    dies leaves them, and the next run (holding the folder's lock) removes them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, dict[str, int]] = {}
        self.pending: dict[str, int] = {}
        self.known = False
        try:
            raw = json.loads((folder / WRITTEN).read_text())
        except (OSError, ValueError):
            return
        if not isinstance(raw, dict):
            return
        self.known = True
        files = raw.get("files")
        pending = raw.get("pending")
        for name, st in (files if isinstance(files, dict) else {}).items():
            if (
                isinstance(name, str)
                and _CHUNK_NAME.match(name)
                and isinstance(st, dict)
                and all(isinstance(st.get(k), int) for k in ("size", "mtime_ns"))
            ):
                self.files[name] = {"size": st["size"], "mtime_ns": st["mtime_ns"]}
        for sample, n in (pending if isinstance(pending, dict) else {}).items():
            if sample in SAMPLES and isinstance(n, int) and n > 0:
                self.pending[sample] = n

    def adopt(self, entries: dict[str, list[dict[str, Any]]]) -> None:
        """A folder from before the record: its MANIFEST's chunk files whose sha256 matches."""
        for e in (e for es in entries.values() for e in es):
            name = e.get("file")
            if isinstance(name, str) and _CHUNK_NAME.match(name):
                path = self.folder / name
                st = _stat_entry(path)
                if st is not None and ntuple.sha256_file(path) == e.get("sha256"):
                    self.files[name] = st

    def owns(self, name: str) -> bool:
        """Whether ``name`` is a file this tool wrote here and nobody changed since."""
        st = _stat_entry(self.folder / name)
        return st is not None and self.files.get(name) == st

    def remove(self, name: str) -> bool:
        """Delete ``name`` if the tool wrote it (see :meth:`owns`); forget it either way."""
        mine = self.owns(name)
        self.files.pop(name, None)
        if mine:
            (self.folder / name).unlink(missing_ok=True)
        return mine

    def add(self, name: str) -> None:
        st = _stat_entry(self.folder / name)
        if st is not None:
            self.files[name] = st

    def save(self) -> None:
        write_json(
            self.folder / WRITTEN,
            {
                "note": "files `bkg samples` wrote here: the only ones it deletes",
                "files": dict(sorted(self.files.items())),
                "pending": dict(sorted(self.pending.items())),
            },
        )

    def clean_pending(self) -> None:
        """Remove the chunk files a run that died was writing (not yet in ``files``)."""
        for sample, n in self.pending.items():
            for i in range(n):
                name = chunk_file(sample, i)
                if name not in self.files and _stat_entry(self.folder / name) is not None:
                    (self.folder / name).unlink(missing_ok=True)
        self.pending = {}


def _manifest_paths_inside(out_dir: Path) -> None:
    """Refuse a MANIFEST whose ``file`` entries lead out of the folder (before any deletion)."""
    path = out_dir / "MANIFEST.json"
    try:
        files = json.loads(path.read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return
    for i, e in enumerate(files if isinstance(files, list) else []):
        if isinstance(e, dict) and "file" in e:
            inside(out_dir, e["file"], what=f"{path}: files[{i}] key 'file'", error=SampleError)


def run_samples(
    cfg: Config,
    *,
    out_dir: Path,
    only: Sequence[str] | None = None,
    n_mot: float | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    locked: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Generate the samples: ``out_dir/<sample>_<chunk>.root`` and ``out_dir/MANIFEST.json``.

    One ROOT file per chunk, written by the worker that generated it; the
    MANIFEST lists every file with its sample, events, seed key and sha256. The
    previous files of the requested samples are removed first; a sample enters the
    MANIFEST when all its files are written, so the folder is consistent at any time.

    Only files this function wrote in ``out_dir`` (its record ``.written.json``, never the
    MANIFEST) are ever deleted or overwritten; the folder is locked for the run
    (:mod:`bkg.locks`), and the worker processes die with the process that started them.

    Args:
        cfg: configuration (seed, sizes, detector).
        out_dir: output folder.
        only: subset of :data:`SAMPLES` (default: all).
        n_mot: beam muons to simulate (default ``cfg.samples.n_mot``).
        workers: worker processes (default ``cfg.run.workers``, 0: all cores; 1: in process).
        scheduler: Dask scheduler address; when given, chunks run on that cluster.
        progress: called as ``progress(sample, chunks_done, chunks_total)``.
        locked: called with the manifest before the folder's lock is released (to record
            the stage in the folder while no other run can write it).

    Returns:
        The manifest (dict) also written to MANIFEST.json.
    """
    out_dir = Path(out_dir)
    names, n_mot = _check_request(cfg, only, n_mot)
    scheduler = scheduler if scheduler is not None else cfg.run.scheduler
    if workers is None:
        workers = cfg.run.workers
    if not workers:
        workers = os.cpu_count() or 1
    _check_folder(out_dir)
    totals = {name: _n_tasks(cfg, name, n_mot) for name in names}
    # a worker per chunk at most, and no more than the cores (--workers 1000 forked 975)
    workers = max(1, min(workers, os.cpu_count() or 1, sum(totals.values())))
    client = _dask_client(scheduler) if scheduler else None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if client is not None:
            client.close()
        raise SampleError(f"{out_dir}: cannot create the samples folder ({exc.strerror})") from None
    from bkg import locks

    try:
        with locks.hold([locks.Lock(out_dir)]):
            manifest = _run_locked(cfg, out_dir, names, n_mot, totals, workers, client, progress)
            if locked is not None:
                locked(manifest)
            return manifest
    finally:
        if client is not None:
            client.close()


def _check_request(
    cfg: Config, only: Sequence[str] | None, n_mot: float | None
) -> tuple[list[str], float]:
    """The samples asked for (each once, in the MANIFEST's order) and the beam muons."""
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
    return names, n_mot


def _check_folder(out_dir: Path) -> None:
    """Everything about the folder that can fail on the user's input, before a file is touched."""
    if out_dir.is_dir() and external_samples(out_dir):
        raise SampleError(
            f"{out_dir}: holds samples that `bkg samples` did not write (MANIFEST.json "
            "generator is not bkg.sim); they are not overwritten: choose another --out"
        )
    if out_dir.is_dir():
        _manifest_paths_inside(out_dir)


def _run_locked(
    cfg: Config,
    out_dir: Path,
    names: list[str],
    n_mot: float,
    totals: dict[str, int],
    workers: int,
    client: Any,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, Any]:
    """:func:`run_samples` once the folder's lock is held."""
    from bkg import locks

    locks.clean_stale(out_dir)  # the .<chunk>.root.tmp of a killed run
    manifest_path = out_dir / "MANIFEST.json"
    entries = _listed_entries(out_dir, manifest_path)
    record = _Record(out_dir)
    if not record.known:
        record.adopt(entries)
    record.clean_pending()
    _check_targets(out_dir, names, totals, record)
    _retire_previous(cfg, manifest_path, names, entries, record)
    record.pending = dict(totals)
    record.save()
    recorder = _ManifestRecorder(cfg, manifest_path, entries, record)
    pool, submit, workers = _executor(client, workers, totals)
    try:
        if submit is None:
            _run_serial(cfg, out_dir, names, n_mot, totals, progress, recorder.add)
        else:
            window = max(2 * workers, 4)
            _run_queue(
                cfg, out_dir, names, n_mot, totals, submit, client, window, progress, recorder.add
            )
    except BaseException as exc:
        # interrupted or failed: let the running chunks finish, then remove the files of
        # every sample that did not enter the MANIFEST, so that none is left unlisted
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None
        _remove_incomplete(out_dir, names, totals, recorder.completed, record)
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(exc, BrokenProcessPool):
            raise SampleError(
                f"{out_dir}: a worker process died (killed, or out of memory); the samples "
                "it was making were removed: rerun, with fewer --workers if memory is short"
            ) from None
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _write_manifest(manifest_path, cfg, entries)


def _listed_entries(out_dir: Path, manifest_path: Path) -> dict[str, list[dict[str, Any]]]:
    """The MANIFEST's file entries by sample (none when there is no readable MANIFEST)."""
    entries: dict[str, list[dict[str, Any]]] = {}
    if manifest_path.exists():
        try:
            for e in ntuple.read_manifest(out_dir, check_hashes=False)["files"]:
                entries.setdefault(e["sample"], []).append(e)
        except SampleError:
            entries = {}
    return entries


def _check_targets(
    out_dir: Path, names: list[str], totals: dict[str, int], record: _Record
) -> None:
    """A file where a chunk goes that this tool did not write here is never overwritten."""
    for name in names:
        for i in range(totals[name]):
            target = chunk_file(name, i)
            if os.path.lexists(out_dir / target) and not record.owns(target):
                raise SampleError(
                    f"{out_dir / target}: not written by `bkg samples` in this folder (not in "
                    f"its {WRITTEN}); it is not overwritten: move it, or choose another --out"
                )


def _retire_previous(
    cfg: Config,
    manifest_path: Path,
    names: list[str],
    entries: dict[str, list[dict[str, Any]]],
    record: _Record,
) -> None:
    """The previous production of the requested samples: out of the MANIFEST, then deleted."""
    old_names = {e["file"] for name in names for e in entries.get(name, [])}
    for name in names:
        entries.pop(name, None)
    _write_manifest(manifest_path, cfg, entries)
    kept = [n for n in sorted(old_names) if not record.remove(n)]
    if kept:
        log.warning(
            "%s: %d file(s) of the previous MANIFEST left in place (not written by "
            "`bkg samples` here, or changed since), e.g. %s",
            manifest_path.parent, len(kept), kept[0],
        )  # fmt: skip


class _ManifestRecorder:
    """Lists a finished sample: its files into the record first, then into the MANIFEST."""

    def __init__(
        self,
        cfg: Config,
        manifest_path: Path,
        entries: dict[str, list[dict[str, Any]]],
        record: _Record,
    ) -> None:
        self.cfg = cfg
        self.manifest_path = manifest_path
        self.entries = entries
        self.record = record
        self.completed: set[str] = set()

    def add(self, name: str, written: list[dict[str, Any]], norms: dict[str, Any]) -> None:
        """Record the sample ``name`` (its written chunk entries and its normalisations)."""
        for e in written:
            self.record.add(e["file"])
        self.record.pending.pop(name, None)
        self.record.save()  # recorded before it is listed: whatever is listed can be deleted
        _add_sample(self.manifest_path, self.cfg, self.entries, name, written, norms)
        self.completed.add(name)


def _executor(
    client: Any, workers: int, totals: dict[str, int]
) -> tuple[ProcessPoolExecutor | None, Callable[..., Any] | None, int]:
    """Where the tasks run: (process pool or None, its ``submit`` or None to run here, workers).

    A Dask client submits to its cluster; more than one worker, to a process pool (warmed
    up before the fork); otherwise ``submit`` is None and the chunks run in this process.
    """
    if client is not None:
        return None, functools.partial(client.submit, pure=False), workers
    if workers <= 1:
        return None, None, workers
    warm_up()  # before the fork: the workers inherit it
    workers = min(workers, sum(totals.values()) + len(_NORM_COST_S))
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),)
    )
    return pool, pool.submit, workers


def _run_serial(
    cfg: Config,
    out_dir: Path,
    names: list[str],
    n_mot: float,
    totals: dict[str, int],
    progress: Callable[[str, int, int], None] | None,
    add: Callable[[str, list[dict[str, Any]], dict[str, Any]], None],
) -> None:
    """Every chunk and normalisation in this process, sample after sample."""
    for name in names:
        written = []
        for i, (key, n, m) in enumerate(chunk_plan(cfg, name, n_mot)):
            written.append(write_chunk(cfg, name, key, n, m, out_dir / chunk_file(name, i)))
            if progress is not None:
                progress(name, i + 1, totals[name])
        add(name, written, _norms(cfg, name))


def _remove_incomplete(
    out_dir: Path, names: list[str], totals: dict[str, int], completed: set[str], record: _Record
) -> None:
    """Remove the chunk files of every requested sample that did not enter the MANIFEST."""
    for name in names:
        if name not in completed:
            for i in range(totals[name]):  # no other file there: checked above
                (out_dir / chunk_file(name, i)).unlink(missing_ok=True)
            record.pending.pop(name, None)
    with contextlib.suppress(BkgError):
        record.save()


def _run_queue(
    cfg: Config,
    out_dir: Path,
    names: list[str],
    n_mot: float,
    totals: dict[str, int],
    submit: Callable[..., Any],
    client: Any,
    window: int,
    progress: Callable[[str, int, int], None] | None,
    add: Callable[[str, list[dict[str, Any]], dict[str, Any]], None],
) -> None:
    """Run the chunks and normalisations on the workers, at most ``window`` at a time.

    One queue, the slowest tasks first (the samples whose chunks cost most, and the slow
    normalisations among them), so that no worker idles while another finishes a sample;
    the plan is consumed as a generator (the results are small: the workers write the files).
    """
    from concurrent.futures import wait as futures_wait

    wait: Callable[..., Any] = futures_wait
    if client is not None:
        from distributed import wait as dask_wait

        wait = dask_wait
    groups: list[tuple[float, str, bool]] = [
        (_COST_PER_EVENT_S[name] * min(cfg.samples.chunk_size, _size(cfg, name, n_mot)), name, False)
        for name in names
    ]  # fmt: skip
    groups += [(_NORM_COST_S[name], name, True) for name in names if name in _NORM_COST_S]

    def jobs() -> Iterator[tuple[str, int, Callable[[], Any]]]:
        for _, name, is_norm in sorted(groups, key=lambda g: -g[0]):
            if is_norm:
                yield name, -1, functools.partial(submit, _norms, cfg, name)
                continue
            for i, (key, n, m) in enumerate(chunk_plan(cfg, name, n_mot)):
                path = out_dir / chunk_file(name, i)
                yield name, i, functools.partial(submit, write_chunk, cfg, name, key, n, m, path)

    queue = jobs()
    running: dict[Any, tuple[str, int]] = {}
    results: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in names}
    norms: dict[str, dict[str, Any]] = {}
    left = True
    while left or running:
        while left and len(running) < window:
            job = next(queue, None)
            if job is None:
                left = False
                break
            running[job[2]()] = (job[0], job[1])
        if not running:
            break
        done, _ = wait(list(running), return_when="FIRST_COMPLETED")
        for future in done:
            name, i = running.pop(future)
            if i < 0:
                norms[name] = future.result()
            else:
                results[name][i] = future.result()
                if progress is not None:
                    progress(name, len(results[name]), totals[name])
            complete = len(results[name]) == totals[name]
            if complete and (name in norms or name not in _NORM_COST_S):
                got = results.pop(name)
                norm = norms[name] if name in norms else _norms(cfg, name)
                add(name, [got[k] for k in range(totals[name])], norm)


def _worker_init(parent: int) -> None:
    """Make a worker process die with the process that started it (kill -9 included).

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``);
    elsewhere, and in case the parent died before that was set, a thread checks the
    parent every second. SIGTERM goes back to its default: the parent handles it.
    """
    import signal
    import threading

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="bkg-parent-watch", daemon=True).start()


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
    except BaseException as exc:
        # whatever interrupted the writer (Ctrl-C at any instruction), no partial file
        writer.temporary_path().unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, a folder made read-only: one line
            from bkg.atomic import explain_os_error

            raise explain_os_error(path, exc) from None
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
