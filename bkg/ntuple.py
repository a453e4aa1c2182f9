"""The ntuple contract between the samples stage and everything after it.

Every sample is one ROOT file with one TTree named ``events``; the branches of
each sample kind are listed in :data:`SCHEMAS` (name -> dtype, unit, meaning).
The fast simulation writes exactly these; a user's GEANT4 ntuple that has them
(checked with ``bkg samples check``) replaces it. ``samples/README.md`` is the
human-readable copy of this module (a test keeps the two in sync). Each file is
described in ``samples/MANIFEST.json`` (:func:`read_manifest`; its keys and
``norm_per_mot``: :func:`_norm_problem`). Entry points: :func:`iterate`,
:class:`NtupleWriter`, :func:`check_file`.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import functools
import hashlib
import logging
import math
import os
import types
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkg.errors import SampleError, one_line
from bkg.memory import heap_policy

TREE = "events"
log = logging.getLogger(__name__)

__all__ = [
    "SCHEMAS",
    "TREE",
    "VALID",
    "Branch",
    "NtupleWriter",
    "check_file",
    "iterate",
    "sample_paths",
    "sha256_file",
]


@dataclass(frozen=True)
class Branch:
    """One branch of the contract."""

    dtype: str
    unit: str
    meaning: str


def _b(dtype: str, unit: str, meaning: str) -> Branch:
    return Branch(dtype, unit, meaning)


# Branches every sample carries: the outgoing muon as the detector sees it.
RESPONSE: dict[str, Branch] = {
    "p_in_true": _b(
        "float32", "GeV", "true momentum of the incoming particle at the target entrance"
    ),
    "p_in_rec": _b("float32", "GeV", "incoming momentum reconstructed by MS1 (BMS + Micromegas)"),
    "x_cm": _b("float32", "cm", "x of the incoming particle at the ECAL front face"),
    "y_cm": _b("float32", "cm", "y of the incoming particle at the ECAL front face"),
    "p_out_true": _b(
        "float32", "GeV", "true momentum of the leading outgoing muon behind the ECAL (0: none)"
    ),
    "p_out_rec": _b("float32", "GeV", "outgoing momentum reconstructed by MS2 (0: no track)"),
    "e_ecal": _b("float32", "GeV", "visible energy in the ECAL (active target)"),
    "e_vhcal": _b("float32", "GeV", "visible energy in the veto HCAL"),
    "e_hcal1": _b("float32", "GeV", "visible energy in HCAL module 1"),
    "e_hcal2": _b("float32", "GeV", "visible energy in HCAL module 2"),
    "hits_mm1": _b("uint8", "1", "hits in MS2 Micromegas station 1 (upstream of the magnet)"),
    "hits_mm2": _b("uint8", "1", "hits in MS2 Micromegas station 2 (upstream of the magnet)"),
    "hits_mm3": _b("uint8", "1", "hits in MS2 Micromegas station 3 (upstream of the magnet)"),
    "hits_mm4": _b("uint8", "1", "hits in MS2 Micromegas station 4 (downstream of the magnet)"),
    "hits_mm5": _b("uint8", "1", "hits in MS2 Micromegas station 5 (downstream of the magnet)"),
    "hits_mm6": _b("uint8", "1", "hits in MS2 Micromegas station 6 (downstream of the magnet)"),
    "s0": _b("bool", "1", "beam counter S0 fired"),
    "s1": _b("bool", "1", "beam counter S1 fired"),
    "s_mu": _b("bool", "1", "muon counter S_mu at the end of the setup fired"),
    "s4": _b("bool", "1", "off-axis counter S4 in front of the HCAL fired (deflected muon)"),
    "v1": _b(
        "bool", "1", "veto V1 in front of the HCAL fired (undeflected muon or charged secondary)"
    ),
    "vm": _b("bool", "1", "veto Vm1,2 inside MS2 fired"),
    "track_chi2": _b(
        "float32",
        "1",
        "chi2 of the MS2 track fit (line per arm meeting at the magnet, ndf 7; 0: no track)",
    ),
    "process": _b(
        "int8",
        "1",
        "truth: 0 none, 1 brems, 2 pair, 3 photonuclear, 4 knock-on (ECAL), 5 knock-on (tracker), 6 large-angle scattering (tracker), 7 Z' emission, 8 hadron decay, 9 quasi-elastic scattering (tracker)",
    ),
    "e_transfer": _b(
        "float32", "GeV", "truth: energy transferred in the largest single interaction"
    ),
}

SCHEMAS: dict[str, dict[str, Branch]] = {
    "beam": {
        **RESPONSE,
        "halo": _b("bool", "1", "truth: muon from the low-energy halo"),
        "p_out_rec_ko": _b(
            "float32",
            "GeV",
            "MS2 momentum when the fit takes a tracker knock-on electron's hit in place of the muon's in the station where the electron leaves a second hit, as it does when the muon's hit there is lost (0: no such hit)",
        ),
        "track_chi2_ko": _b(
            "float32",
            "1",
            "chi2 of the MS2 fit that takes the knock-on electron's hit (with p_out_rec_ko; 0: none)",
        ),
        "escape": _b(
            "int8",
            "1",
            "truth: path by which most of the unseen energy left: 0 none, 1 HCAL back, 2 HCAL sides, 3 VHCAL hole, 4 dead material, 5 e+- through the hole swept beside the HCAL, 6 muon from a hadron decay",
        ),
        "e_escape": _b("float32", "GeV", "truth: energy that left the calorimeters unseen"),
    },
    "hadrons": {
        **RESPONSE,
        "pdg": _b("int32", "1", "PDG id of the beam hadron (-211, -321, 130)"),
        "e_hadron": _b("float32", "GeV", "energy of the hadron at the end of the BMS"),
        "decayed": _b("bool", "1", "truth: the hadron decayed before the target"),
        "z_decay_m": _b("float32", "m", "truth: decay distance from the end of the BMS (-1: none)"),
        "e_mu_decay": _b("float32", "GeV", "truth: energy of the decay muon (0: no muon)"),
        "decay_channel": _b(
            "int8", "1", "truth: 0 no decay muon, 1 two-body h -> mu nu, 2 K -> pi mu nu"
        ),
    },
    "leading_hadrons": {
        **RESPONSE,
        "e_hadron": _b("float32", "GeV", "truth: energy of the leading hadron from mu N -> mu h X"),
        "hadron_charged": _b("bool", "1", "truth: the leading hadron is charged"),
        "e_hcal3": _b(
            "float32", "GeV", "visible energy in a third HCAL module (extrapolation study)"
        ),
        "e_hcal4": _b(
            "float32", "GeV", "visible energy in a fourth HCAL module (extrapolation study)"
        ),
        "depth_lambda": _b(
            "float32",
            "lambda_I",
            "truth: depth behind the ECAL where the hadron shower exceeds a MIP-compatible HCAL deposit",
        ),
    },
    "dimuons": {
        **RESPONSE,
        "e_gamma": _b(
            "float32", "GeV", "truth: energy of the (real or virtual) photon converting to mu+ mu-"
        ),
        "e_mu_plus": _b("float32", "GeV", "truth: mu+ energy"),
        "e_mu_minus": _b("float32", "GeV", "truth: mu- energy of the pair"),
        "n_mu_hcal": _b("int8", "1", "truth: number of muons reaching the HCAL"),
        "trident": _b("bool", "1", "truth: trident (virtual photon) rather than Bethe-Heitler"),
    },
    "signal": {
        **RESPONSE,
        "m_zprime_gev": _b("float32", "GeV", "Z' mass of the sample point"),
        "x_zprime": _b("float32", "1", "truth: Z' energy fraction x = E_Z'/E_mu"),
        "theta_zprime": _b("float32", "rad", "truth: Z' emission angle"),
        "e_mu_emit": _b("float32", "GeV", "truth: muon energy at the emission point"),
    },
}


@dataclass(frozen=True)
class Valid:
    """The values a branch may hold: the closed range [lo, hi] plus ``extra`` values, or
    (with ``codes``) only those codes."""

    lo: float = -math.inf
    hi: float = math.inf
    codes: tuple[int, ...] = ()
    extra: tuple[float, ...] = ()

    def describe(self, unit: str = "1") -> str:
        """The valid values in words (as samples/README.md states them)."""
        if self.codes:
            return "one of " + ", ".join(str(c) for c in self.codes)
        text = f"[{self.lo:g}, {self.hi:g}]" + ("" if unit == "1" else f" {unit}")
        return text + "".join(f" or {v:g}" for v in self.extra)

    def outside(self, values: np.ndarray) -> np.ndarray:
        """Mask of the values that are not valid (NaN counts as not valid)."""
        if self.codes:
            return ~np.isin(values, self.codes)
        good = (values >= self.lo) & (values <= self.hi)
        for v in self.extra:
            good |= values == v
        return ~good


#: Largest energy or momentum in any ntuple (GeV): the M2 muons come from the SPS's
#: 400 GeV protons; a value above this cannot be an NA64mu event.
E_MAX_GEV = 1000.0
_ENERGY = Valid(0.0, E_MAX_GEV)
#: Value ranges and codes of the branches (``bkg samples check`` checks them); a branch
#: not listed may hold any finite value of its dtype.
VALID: dict[str, Valid] = {
    **{k: _ENERGY for k in ("p_in_true", "p_in_rec", "p_out_true")},
    # a measured momentum: the track fit caps a straight track's at 1e4 GeV (a bend of
    # 1e-4 of a 1 GeV muon's), as it does for a knock-on electron's hit taken on the axis
    **{k: Valid(0.0, 1e4) for k in ("p_out_rec", "p_out_rec_ko")},
    **{k: _ENERGY for k in ("e_ecal", "e_vhcal", "e_hcal1", "e_hcal2", "e_hcal3", "e_hcal4")},
    **{k: _ENERGY for k in ("e_transfer", "e_hadron", "e_mu_decay", "e_gamma")},
    **{k: _ENERGY for k in ("e_mu_plus", "e_mu_minus", "e_mu_emit", "e_escape")},
    "x_cm": Valid(-1000.0, 1000.0),  # the experimental hall is a few metres wide
    "y_cm": Valid(-1000.0, 1000.0),
    "process": Valid(codes=tuple(range(10))),  # 0-9 as the branch's description lists them
    "escape": Valid(codes=tuple(range(7))),  # 0 none, 1-6 the escape paths
    "track_chi2": Valid(0.0, 1e12),  # a chi2 is never negative
    "track_chi2_ko": Valid(0.0, 1e12),
    "pdg": Valid(codes=(-211, -321, 130)),
    "decay_channel": Valid(codes=(0, 1, 2)),
    "n_mu_hcal": Valid(codes=(0, 1, 2, 3)),  # the scattered muon and the pair at most
    "z_decay_m": Valid(0.0, 1000.0, extra=(-1.0,)),
    # visibility depth; a hadron too soft ever to leave the MIP window is put at 1000
    # lambda_I (bkg.sim.calorimeters.NEVER_VISIBLE_LAMBDA) from its interaction point
    "depth_lambda": Valid(0.0, 1000.0),
    "m_zprime_gev": Valid(0.0, E_MAX_GEV),
    "x_zprime": Valid(0.0, 1.0),
    "theta_zprime": Valid(0.0, math.pi),
}


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    _refuse_special(Path(path))
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as exc:  # a folder, no permission, an I/O error: the user's to fix
        raise SampleError(f"{path}: cannot read it ({_os_reason(exc)})") from None
    return digest.hexdigest()


def _refuse_special(path: Path) -> None:
    """A FIFO, socket or device is never opened: reading it would wait or never end."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return  # the caller's open says what is wrong
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise SampleError(f"{path}: not a regular file (a FIFO or a device); give a ROOT file")


def _os_reason(exc: OSError) -> str:
    """The reason of an OSError without its path (``Permission denied``, ``Is a directory``)."""
    return exc.strerror or type(exc).__name__


def _open_tree(path: Path) -> Any:
    import uproot

    if not path.exists():
        raise SampleError(
            f"{path}: file not found (run `bkg samples` or give the path of a ROOT ntuple)"
        )
    _refuse_special(path)
    try:
        handle = uproot.open(path)
    except Exception as exc:
        raise SampleError(
            f"{path}: not a readable ROOT file ({type(exc).__name__}: {one_line(exc)})"
        ) from None
    try:
        tree = handle[TREE]
    except Exception:
        keys = ", ".join(k.split(";")[0] for k in handle.keys()) or "none"
        raise SampleError(f"{path}: no TTree '{TREE}' (keys: {keys})") from None
    classname = str(getattr(tree, "classname", ""))
    if "RNTuple" in classname:  # uproot >= 5.7 writes one for file["events"] = {...}
        raise SampleError(
            f"{path}: '{TREE}' is an RNTuple; expected a TTree (with uproot, write it with "
            f"file.mktree('{TREE}', ...) and extend)"
        )
    if not hasattr(tree, "arrays") or not hasattr(tree, "num_entries"):
        raise SampleError(f"{path}: '{TREE}' is not a TTree")
    return tree


def check_file(path: str | Path, sample: str) -> list[str]:
    """Every way in which ``path`` does not meet the contract of ``sample``.

    Returns:
        A list of one-line problems (empty: the file is valid).
    """
    path = Path(path)
    if not path.exists():
        return [f"{path}: no such file"]
    if sample not in SCHEMAS:
        return [f"{path}: unknown sample kind {sample!r} (known: {', '.join(SCHEMAS)})"]
    try:
        tree = _open_tree(path)
    except SampleError as exc:
        return [str(exc)]
    problems = _branch_problems(path, tree, SCHEMAS[sample])
    if problems:
        return problems
    try:
        return _value_problems(path, tree, SCHEMAS[sample])
    except Exception as exc:
        return [
            f"{path}: cannot read the baskets ({type(exc).__name__}: {one_line(exc)}); the file may be truncated"
        ]


def _branch_problems(path: Path, tree: Any, schema: Mapping[str, Branch]) -> list[str]:
    """The contract's branches that ``tree`` lacks or holds with another dtype."""
    problems = []
    for name, branch in schema.items():
        if name not in tree.keys():
            problems.append(
                f"{path}: branch '{name}' missing (expected {branch.dtype} in {branch.unit}: {branch.meaning})"
            )
            continue
        interpretation = tree[name].interpretation
        got = np.dtype(interpretation.to_dtype).name if hasattr(interpretation, "to_dtype") else "?"
        if got != np.dtype(branch.dtype).name:
            problems.append(f"{path}: branch '{name}' has dtype {got}, expected {branch.dtype}")
    return problems


def _value_problems(path: Path, tree: Any, schema: Mapping[str, Branch]) -> list[str]:
    """No events, NaN/inf in a float branch, values outside a branch's valid range."""
    if int(tree.num_entries) == 0:
        return [f"{path}: the tree '{TREE}' is empty (0 events)"]
    floats = [k for k, b in schema.items() if b.dtype.startswith("float")]
    ranged = [k for k in schema if k in VALID]
    nonfinite = dict.fromkeys(floats, 0)
    outside: dict[str, list[Any]] = {k: [0, None] for k in ranged}
    for chunk in tree.iterate(
        list(dict.fromkeys([*floats, *ranged])), step_size=1_000_000, library="np"
    ):
        for name in floats:
            nonfinite[name] += int(np.count_nonzero(~np.isfinite(chunk[name])))
        for name in ranged:
            values = chunk[name]
            bad = VALID[name].outside(values) & np.isfinite(values)
            if bad.any():
                outside[name][0] += int(bad.sum())
                outside[name][1] = values[bad][0] if outside[name][1] is None else outside[name][1]
    problems = [f"{path}: branch '{k}' has {n} NaN/inf values" for k, n in nonfinite.items() if n]
    for name, (count, example) in outside.items():
        if count:
            valid = VALID[name].describe(schema[name].unit)
            problems.append(
                f"{path}: branch '{name}' has {count} values outside {valid} "
                f"(e.g. {example:.6g}; samples/README.md, Valid values)"
            )
    return problems


def iterate(
    paths: str | Path | Sequence[str | Path],
    sample: str,
    branches: Sequence[str],
    *,
    step_size: int = 1_000_000,
    nonfinite: str = "reject",
    workers: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Stream the given branches of a sample in chunks of at most ``step_size`` events.

    Args:
        paths: one file or several (processed in the given order).
        sample: the sample kind (a key of :data:`SCHEMAS`).
        branches: the branch names to read.
        step_size: events per chunk (memory is bounded by it).
        nonfinite: ``"reject"`` raises :class:`SampleError` on NaN/inf in a
            float branch, ``"drop"`` removes those events (the count is in the
            chunk's ``"_dropped"`` entry).
        workers: read (decompress, screen) the next chunks in this many threads while
            the caller works on the current one; uproot's decompression releases the
            GIL. At most ``workers + 1`` chunks are in memory. The chunks, their order
            and the errors are those of ``workers=0`` (everything in the caller's thread).

    Yields:
        dicts of numpy arrays (one entry per branch, plus ``"_dropped"``: int array of shape ()).

    Raises:
        SampleError: missing file/tree/branch, wrong dtype, NaN/inf with ``reject``,
            or a truncated file.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    # while the pass reads, freed chunks go back to the kernel: memory bounded by the chunk
    # size (the process's own policy again after the pass)
    previous = heap_policy("return")
    try:
        jobs = _chunk_jobs([Path(p) for p in paths], sample, list(branches), step_size, nonfinite)
        tagged = (functools.partial(_with_path, job) for job in jobs)
        results = (job() for job in tagged) if workers <= 0 else _run_ahead(tagged, workers)
        current: Path | None = None
        read = dropped = 0
        for path, chunk in results:
            if path != current:
                _say_dropped(current, dropped, read)
                current, read, dropped = path, 0, 0
            n_dropped = int(chunk["_dropped"])
            dropped += n_dropped
            read += n_dropped + (len(next(iter(chunk.values()))) if len(chunk) > 1 else 0)
            yield chunk
        _say_dropped(current, dropped, read)
    finally:
        heap_policy(previous)


def _with_path(job: Callable[[], dict[str, np.ndarray]]) -> tuple[Path, Any]:
    """(the file a chunk job reads, the chunk); jobs are partials of :func:`_read_chunk`."""
    assert isinstance(job, functools.partial)
    return job.args[0], job()


def _say_dropped(path: Path | None, dropped: int, read: int) -> None:
    """Warn, per file, how many events ``samples.nonfinite: drop`` removed."""
    if path is not None and dropped:
        log.warning(
            "%s: dropped %d of %d events with NaN/inf values (samples.nonfinite: drop)",
            path,
            dropped,
            read,
        )


def _chunk_jobs(
    paths: Sequence[Path], sample: str, branches: list[str], step_size: int, nonfinite: str
) -> Iterator[Callable[[], dict[str, np.ndarray]]]:
    """One job per chunk, in order; each file is opened and its branches checked when reached."""
    schema = SCHEMAS[sample]
    for path in paths:
        tree = _open_tree(path)
        try:
            n = _checked_entries(tree, path, schema, branches)
        finally:
            tree.file.close()  # the chunks are read by _read_chunk, which opens the file again
        for start in range(0, n, step_size):
            stop = min(start + step_size, n)
            yield functools.partial(_read_chunk, path, branches, start, stop, nonfinite)


def _checked_entries(tree: Any, path: Path, schema: dict[str, Branch], branches: list[str]) -> int:
    """Entries of ``tree`` after checking that it has ``branches`` with the schema's dtypes."""
    names = set(tree.keys())
    for name in branches:
        if name not in names:
            exp = schema.get(name)
            what = f" (expected {exp.dtype} in {exp.unit}: {exp.meaning})" if exp else ""
            raise SampleError(f"{path}: branch '{name}' missing{what}")
        if name in schema:
            try:
                got = np.dtype(tree[name].interpretation.to_dtype).name
            except Exception:
                got = "not a flat numeric array"
            if got != np.dtype(schema[name].dtype).name:
                raise SampleError(
                    f"{path}: branch '{name}' has dtype {got}, expected {schema[name].dtype}"
                )
    try:
        return int(tree.num_entries)
    except Exception as exc:
        raise SampleError(_truncated(path, exc)) from None


def _truncated(path: Path, exc: BaseException) -> str:
    return f"{path}: cannot read the baskets ({type(exc).__name__}); the file may be truncated"


def _read_chunk(
    path: Path, branches: list[str], start: int, stop: int, nonfinite: str
) -> dict[str, np.ndarray]:
    """Entries [start, stop) of the branches, screened; the file is opened by the reading thread."""
    import uproot

    try:
        # no caches: uproot's file objects hold reference cycles, so a cached chunk stayed
        # in memory until the cycle collector ran (+300 MB over a 1e8-MOT pass)
        with uproot.open(path, array_cache=None, object_cache=None) as handle:
            chunk = handle[TREE].arrays(branches, entry_start=start, entry_stop=stop, library="np")
    except Exception as exc:
        raise SampleError(_truncated(path, exc)) from None
    return _screen(chunk, path, nonfinite)


def _run_ahead(jobs: Iterator[Callable[[], Any]], workers: int) -> Iterator[Any]:
    """The results of ``jobs`` in order, up to ``workers`` of them computed ahead in threads.

    An error in taking the next job (a missing file, ...) is raised only after the
    results of the jobs before it, as it would be without threads.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    pool = ThreadPoolExecutor(workers, thread_name_prefix="bkg-read")
    pending: collections.deque[Future[Any]] = collections.deque()
    try:
        while True:
            try:
                job = next(jobs)
            except StopIteration:
                break
            except Exception as exc:
                failed: Future[Any] = Future()
                failed.set_exception(exc)
                pending.append(failed)
                break
            pending.append(pool.submit(job))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)  # reads in progress end before the caller goes on


def _screen(chunk: dict[str, np.ndarray], path: Path, nonfinite: str) -> dict[str, np.ndarray]:
    n = len(next(iter(chunk.values()))) if chunk else 0
    good = np.ones(n, dtype=bool)
    for name, values in chunk.items():
        if values.dtype.kind == "f":
            finite = np.isfinite(values)
            if not finite.all():
                if nonfinite == "reject":
                    raise SampleError(
                        f"{path}: branch '{name}' has {int((~finite).sum())} NaN/inf values "
                        "(set samples.nonfinite: drop to drop those events)"
                    )
                good &= finite
    out = {k: v[good] for k, v in chunk.items()} if not good.all() else dict(chunk)
    out["_dropped"] = np.asarray(int(n - good.sum()))
    return out


#: The creation/modification time written into every sample file (ROOT's TDatime).
ROOT_FILE_TIME = datetime.datetime(2022, 3, 22)


@contextlib.contextmanager
def _frozen_root_clock() -> Iterator[None]:
    """Make uproot stamp files with :data:`ROOT_FILE_TIME` instead of the wall clock.

    uproot 5 reads ``datetime.datetime.now()`` through the ``datetime`` module
    global of its writing modules; those globals are swapped for a clock that
    always answers the fixed time, and restored on exit. If a future uproot
    moves them, the files are still correct, only not byte-reproducible.
    """
    import importlib

    class _Fixed(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return ROOT_FILE_TIME

    clock = types.SimpleNamespace(datetime=_Fixed)
    saved = []
    for name in (
        "uproot.writing._cascade",
        "uproot.writing._cascadetree",
        "uproot.writing.writable",
    ):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "datetime"):
            saved.append((module, module.datetime))
            module.datetime = clock  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in saved:
            module.datetime = original  # type: ignore[attr-defined]


class NtupleWriter:
    """Write one sample file chunk by chunk; the file appears only when complete.

    Writes to a temporary file in the target folder (LZ4(1) compression, a
    TTree made with ``mktree``/``extend``) and renames it into place on a clean
    exit; on an exception the temporary file is removed.

    LZ4(1) rather than ZSTD(1), measured on 1e6 beam events (25 branches) on the
    2-core reference machine: write 0.08 s instead of 0.13 s, read back 0.06 s
    instead of 0.10 s, 43 MB instead of 36 MB (+21%). Since uproot 5.3 both codecs
    come from ``cramjam``; LZ4 also needs ``xxhash`` for its checksum.

    Example::

        with NtupleWriter("samples/beam.root", "beam") as out:
            out.extend(chunk)   # dict of arrays with every branch of the schema
    """

    def __init__(self, path: str | Path, sample: str) -> None:
        self.path = Path(path)
        self.sample = sample
        self.schema = SCHEMAS[sample]
        self.events = 0
        self._file: Any = None
        self._tmp: Path | None = None
        self._clock: Any = None

    def __enter__(self) -> NtupleWriter:
        import uproot

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A fixed temporary name (the TFile records it) and fixed UUID/clock below: the
        # same events give the same bytes, so sample hashes are reproducible.
        self._tmp = self.temporary_path()
        self._clock = _frozen_root_clock()
        self._clock.__enter__()
        file_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"na64mu-bkg/{self.path.name}")
        try:
            self._file = uproot.recreate(
                self._tmp, compression=uproot.LZ4(1), uuid_function=lambda: file_uuid
            )
            self._file.mktree(TREE, {k: np.dtype(b.dtype) for k, b in self.schema.items()})
        except BaseException:  # Ctrl-C or an error before the with-block starts
            self._clock.__exit__(None, None, None)
            self.temporary_path().unlink(missing_ok=True)
            raise
        return self

    def temporary_path(self) -> Path:
        """The file being written; it is renamed to ``path`` only when complete."""
        return self.path.parent / f".{self.path.name}.tmp"

    def extend(self, chunk: Mapping[str, np.ndarray]) -> None:
        """Append a chunk: a dict with every branch of the schema (cast to its dtype)."""
        missing = [k for k in self.schema if k not in chunk]
        if missing:
            raise ValueError(f"chunk for {self.sample} lacks branches {missing}")
        data = {k: np.ascontiguousarray(chunk[k], dtype=b.dtype) for k, b in self.schema.items()}
        self._file[TREE].extend(data)
        self.events += len(next(iter(data.values())))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._tmp is not None
        try:
            self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)  # only a completely written file
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        finally:
            self._clock.__exit__(None, None, None)
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)


def sample_paths(samples_dir: str | Path, sample: str) -> list[Path]:
    """The files of one sample kind, in MANIFEST order (or ``<sample>.root`` without one).

    Raises:
        SampleError: the MANIFEST lists no file of this kind and there is no single file.
    """
    folder = Path(samples_dir)
    if (folder / "MANIFEST.json").exists():
        listed = [
            folder / e["file"]
            for e in read_manifest(folder, check_hashes=False)["files"]
            if e["sample"] == sample
        ]
        if listed:
            return listed
    single = folder / f"{sample}.root"
    if single.exists():
        return [single]
    raise SampleError(
        f"{folder}: no '{sample}' sample (MANIFEST.json lists none; run `bkg samples`)"
    )


def read_manifest(
    samples_dir: str | Path,
    *,
    check_hashes: bool = True,
    kinds: Collection[str] | None = None,
    verified: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read ``MANIFEST.json`` of a samples folder and check each file's sha256.

    Args:
        samples_dir: the samples folder.
        check_hashes: check that each listed file exists and has its recorded sha256.
        kinds: check only the files of these sample kinds (default: every file); the
            manifest returned still lists every file.
        verified: sha256 by file name of files known unchanged since they were hashed
            (:func:`bkg.cache.unchanged_outputs`); a file listed with the same sha256
            is not read again.

    Raises:
        SampleError: the manifest is missing or malformed, a listed file is
            missing, or its sha256 differs from the recorded one.
    """
    import json
    import stat

    folder = Path(samples_dir)
    path = folder / "MANIFEST.json"
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_MANIFEST_BYTES:
            raise SampleError(
                f"{path}: {info.st_size / 1e6:.0f} MB, larger than the {MAX_MANIFEST_BYTES / 1e6:.0f} MB "
                "a MANIFEST of 100000 files needs"
            )
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            raise SampleError(f"{path}: not a regular file")  # a FIFO or a device: never read
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise SampleError(
            f"{path}: not found (run `bkg samples` first, or write a MANIFEST for your ntuples)"
        ) from None
    except OSError as exc:
        raise SampleError(f"{path}: cannot read it ({_os_reason(exc)})") from None
    except ValueError as exc:
        raise SampleError(f"{path}: not valid JSON ({one_line(exc)})") from None
    except RecursionError:
        raise SampleError(f"{path}: not a MANIFEST (nested too deep to read)") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        raise SampleError(f"{path}: expected a key 'files' with a list of entries")
    for i, entry in enumerate(files):
        _check_entry(path, i, entry)
    _check_schema(path, manifest)
    _check_duplicates(path, files)
    for entry in files:
        if not check_hashes or (kinds is not None and entry["sample"] not in kinds):
            continue
        sample_path = folder / entry["file"]
        if not sample_path.exists():
            raise SampleError(f"{sample_path}: listed in MANIFEST.json but missing")
        digest = (verified or {}).get(entry["file"], "")
        if digest != entry["sha256"]:
            digest = sha256_file(sample_path)
        if digest != entry["sha256"]:
            raise SampleError(
                f"{sample_path}: sha256 {digest[:12]}... does not match MANIFEST.json ({entry['sha256'][:12]}...); "
                "the file changed since it was generated: regenerate it or update the manifest"
            )
        _check_events(sample_path, entry)
    return manifest


#: Largest MANIFEST.json read: 100000 entries of ~600 bytes.
MAX_MANIFEST_BYTES = 64_000_000


@functools.lru_cache(maxsize=1)
def manifest_validator() -> Any:
    """The JSON Schema validator of MANIFEST.json (``bkg/config/manifest.schema.json``)."""
    import json
    from importlib import resources

    import jsonschema

    text = resources.files("bkg.config").joinpath("manifest.schema.json").read_text("utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def _check_schema(path: Path, manifest: Mapping[str, Any]) -> None:
    """Raise :class:`SampleError` with the first violation of the MANIFEST schema, located."""
    errors = sorted(
        manifest_validator().iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if not errors:
        return
    err = errors[0]
    parts = list(err.absolute_path)
    where = f"{path}:"
    if len(parts) >= 2 and parts[0] == "files" and isinstance(parts[1], int):
        entry = manifest["files"][parts[1]]
        where += f" files[{parts[1]}] ({entry.get('file')})"
        parts = parts[2:]
    key = ".".join(str(p) for p in parts)
    detail = err.message if len(err.message) <= 200 else err.message[:200] + "..."
    if err.validator == "anyOf":
        detail = f"{err.instance!r} is not a probability in [0, 1] (or one per species)"
    raise SampleError(f"{where}" + (f" key '{key}'" if key else "") + f": {one_line(detail)}")


def _check_duplicates(path: Path, files: list[dict[str, Any]]) -> None:
    """No file listed twice (by name, or by content: the same sha256 under two names)."""
    by_name: dict[str, int] = {}
    by_hash: dict[str, int] = {}
    for i, entry in enumerate(files):
        name = os.path.normpath(entry["file"])
        if name in by_name:
            j = by_name[name]
            raise SampleError(
                f"{path}: files[{j}] and files[{i}] both list {entry['file']!r}; each file "
                "once (a file listed twice would count its events twice)"
            )
        by_name[name] = i
        digest = entry["sha256"].lower()
        if digest in by_hash:
            j = by_hash[digest]
            raise SampleError(
                f"{path}: files[{j}] ({files[j]['file']}) and files[{i}] ({entry['file']}) have "
                "the same sha256: the same events listed twice would be counted twice"
            )
        by_hash[digest] = i


def _check_events(sample_path: Path, entry: Mapping[str, Any]) -> None:
    """The MANIFEST's ``events`` of a file is the number of entries of its tree."""
    tree = _open_tree(sample_path)
    try:
        n = int(tree.num_entries)
    except Exception as exc:
        raise SampleError(_truncated(sample_path, exc)) from None
    finally:
        tree.file.close()
    if n != int(entry["events"]):
        raise SampleError(
            f"{sample_path}: the tree '{TREE}' has {n} events, MANIFEST.json says "
            f"{int(entry['events'])}; the per-event weights norm_per_mot / events would be "
            "wrong: correct the MANIFEST's events"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_probability_map(value: Any, *, zero: bool = True) -> bool:
    """A mapping of numbers in [0, 1] (``zero=False``: in (0, 1])."""
    return isinstance(value, dict) and all(
        _is_number(v) and (v >= 0 if zero else v > 0) and v <= 1 for v in value.values()
    )


def _norm_problem(norm: Any, entry: Mapping[str, Any]) -> str | None:
    """What ``norm_per_mot`` should be if it is not: a probability per MOT in (0, 1].

    ``norm_per_mot`` (one of the keys every MANIFEST entry has, with ``file``,
    ``sample``, ``events``, ``seed``, ``config_hash`` and ``sha256``) is the expected
    number of events of this sample per muon on target represented by one generated
    event times the number generated, i.e. the per-MOT probability that the generated
    process happens at all (1 for the beam sample; P(leading hadron) for the
    leading-hadron sample, ...).

    The hadrons source takes its per-species rates from the config, and
    ``beam.pi_per_mu: 0`` writes a rate of 0: there a non-negative number (or one per
    species) is enough (``norm_per_mot: 1e300`` once gave a level of 5.6e287).
    """
    hadrons = entry["sample"] == "hadrons"
    norms = list(norm.values()) if hadrons and isinstance(norm, dict) else [norm]
    if all(_is_number(v) and (v > 0 or (hadrons and v == 0)) and v <= 1 for v in norms):
        return None
    return "a probability per MOT in " + ("[0, 1]" if hadrons else "(0, 1] (1 for the beam)")


def _rule(ok: Callable[[Any], bool], expected: str) -> Callable[[Any, Any], str | None]:
    """A check of one value: None if ``ok(value)``, else what was ``expected``."""
    return lambda value, entry: None if ok(value) else expected


def _fractions_sum_to_one(fractions: Any) -> bool:
    return not fractions or math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6)


#: (key, optional, check) of a MANIFEST entry's keys after ``file``, in the order they
#: are checked; a check of (value, entry) says what was expected, or None if it is fine
_ENTRY_RULES: tuple[tuple[str, bool, Callable[[Any, Any], str | None]], ...] = (
    ("sample", False, _rule(lambda v: isinstance(v, str) and v in SCHEMAS, f"one of {', '.join(SCHEMAS)}")),
    ("sha256", False, _rule(lambda v: isinstance(v, str), "the hex digest of the file (a string)")),
    ("events", False, _rule(lambda v: _is_number(v) and float(v).is_integer() and v >= 1,
                            "the number of events in the file (an integer >= 1)")),
    ("n_mot", True, _rule(lambda v: _is_number(v) and v > 0,
                          "the muons on target simulated (a finite number > 0)")),
    ("norm_per_mot", False, _norm_problem),
    ("norm_per_mot_by_pdg", True, _rule(_is_probability_map, "a probability per MOT in [0, 1] per species")),
    ("species_fraction_generated", True, _rule(lambda v: _is_probability_map(v, zero=False),
                                               "a fraction in (0, 1] per species")),
    ("species_fraction_generated", True, _rule(_fractions_sum_to_one,
                                               "fractions of the generated events that sum to 1")),
    ("yields_per_mot", True, _rule(_is_probability_map, "a probability per MOT in [0, 1] per process")),
)  # fmt: skip


def _check_entry(path: Path, i: int, entry: Any) -> None:
    """Raise :class:`SampleError` naming ``path``, ``files[i]`` and the key if an entry is bad."""
    if not isinstance(entry, dict):
        raise SampleError(f"{path}: files[{i}] is a {type(entry).__name__}; expected an object")
    for key in ("file", "sample", "events", "sha256", "norm_per_mot"):
        if key not in entry:
            raise SampleError(f"{path}: files[{i}] lacks the key '{key}'")
    name = entry["file"]
    where = f"{path}: files[{i}]" + (f" ({name})" if isinstance(name, str) and name else "")

    def bad(key: str, expected: str) -> SampleError:
        return SampleError(f"{where} key '{key}': expected {expected}, got {entry[key]!r}")

    if not isinstance(name, str) or not name.strip():
        raise bad("file", "the file name of the ntuple (a non-empty string)")
    from bkg.atomic import inside

    inside(path.parent, name, what=f"{path}: files[{i}] key 'file'", error=SampleError)
    for key, optional, check in _ENTRY_RULES:
        expected = None if optional and key not in entry else check(entry[key], entry)
        if expected is not None:
            raise bad(key, expected)
