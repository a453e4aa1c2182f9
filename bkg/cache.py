"""Stage caching: a stage is skipped when its config slice and input hashes are unchanged.

A stage that completes writes ``.stage.json`` into its output folder with its
key (sha256 of the config slice and the inputs' sha256) and the sha256 of every
file it wrote. On the next run the stage is reused only if the key is the same
and every recorded output still has its recorded hash (re-hashed unless its size
and modification time are those recorded with the hash). The stages of the report
itself are reused the same way (:class:`StageCache`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bkg.atomic import write_json
from bkg.ntuple import sha256_file

__all__ = [
    "StageCache",
    "code_digest",
    "config_slice",
    "is_fresh",
    "mark_done",
    "recorded_config",
    "stage_key",
]

MARKER = ".stage.json"

T = TypeVar("T")


def config_slice(
    raw: Mapping[str, Any], *, drop: Iterable[str] = (), keep: Iterable[str] | None = None
) -> dict[str, Any]:
    """The part of the config a stage depends on (top-level keys kept or dropped).

    A dotted name in ``drop`` (``detector.escape.forced_events``) drops one nested key.
    """
    import copy

    drop = list(drop)
    keys = set(raw) if keep is None else set(keep)
    out = {k: copy.deepcopy(raw[k]) for k in sorted(keys - set(drop)) if k in raw}
    for name in (d for d in drop if "." in d):
        *parents, leaf = name.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def code_digest(*modules: str, exclude: tuple[str, ...] = ()) -> str:
    """sha256 of the source files of the given ``bkg`` subpackages/modules.

    Part of a stage's key, so that a changed simulation or fit code never reuses
    outputs made by the old code (the package version alone does not change
    between commits). ``exclude``: files (paths under ``bkg/``, e.g. "sim/figures.py")
    the stage does not run.
    """
    root = Path(__file__).resolve().parent  # the bkg package
    digest = hashlib.sha256()
    for name in modules:
        path = root / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        for f in files:
            if f.relative_to(root).as_posix() in exclude:
                continue
            digest.update(str(f.relative_to(root)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def stage_key(
    stage: str, config_part: Mapping[str, Any], inputs: Mapping[str, str] | None = None
) -> str:
    """sha256 of the stage name, its config slice and its inputs' hashes."""
    blob = json.dumps(
        {"stage": stage, "config": config_part, "inputs": dict(sorted((inputs or {}).items()))},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def is_fresh(folder: str | Path, key: str) -> bool:
    """True when ``folder`` holds the complete output of a run with ``key``."""
    marker = Path(folder) / MARKER
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if record.get("key") != key:
        return False
    stats = record.get("stat", {})
    for name, digest in record.get("outputs", {}).items():
        from bkg.atomic import inside
        from bkg.errors import BkgError

        try:  # a name that leads out of the folder is never read: the stage runs again
            path = inside(folder, name, what=str(marker))
        except BkgError:
            return False
        if not path.is_file():
            return False
        if stats.get(name) == _stat(path):
            continue  # not written since it was hashed (size and mtime as recorded)
        if sha256_file(path) != digest:
            return False
    return True


def unchanged_outputs(folder: str | Path) -> dict[str, str]:
    """sha256 by name of the outputs of ``folder``'s last completed stage that were not
    written since they were hashed (size and mtime as recorded): what a reader that
    checks hashes (:func:`bkg.ntuple.read_manifest`) need not read again."""
    folder = Path(folder)
    try:
        record = json.loads((folder / MARKER).read_text())
        outputs, stats = dict(record.get("outputs", {})), dict(record.get("stat", {}))
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
    out = {}
    for name, digest in outputs.items():
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", ".."):
            continue  # a record names files of its own folder only
        try:
            if stats.get(name) == _stat(folder / name):
                out[name] = str(digest)
        except OSError:
            continue
    return out


def _stat(path: Path) -> list[int]:
    """Size and modification time (ns) of a file: what changes when it is written."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def mark_done(
    folder: str | Path,
    key: str,
    outputs: Iterable[str | Path],
    *,
    known: Mapping[str, str] | None = None,
    config_key: str | None = None,
) -> dict[str, str]:
    """Record a completed stage; returns the outputs' sha256 by file name.

    ``known`` gives sha256 digests already computed by whoever wrote those files
    (the samples' MANIFEST); only the other outputs are read and hashed here.
    ``config_key`` records the part of the config the stage depends on by itself, so
    that a later command can tell outputs of another config (:func:`recorded_config`).
    """
    folder = Path(folder)
    known = known or {}
    hashes = {
        Path(p).name: known.get(Path(p).name) or sha256_file(folder / Path(p).name) for p in outputs
    }
    record: dict[str, Any] = {"key": key, "outputs": dict(sorted(hashes.items()))}
    # size and mtime of each output as hashed: a later check skips hashing the files not
    # written since (a 1e7-MOT samples folder is ~0.5 GB, seconds of sha256). Not for a
    # file written in the last second: a rewrite within the file system's timestamp
    # granularity (a few ms) would keep its mtime, so those are always hashed
    now = time.time_ns()
    stats = {name: _stat(folder / name) for name in sorted(hashes)}
    record["stat"] = {k: v for k, v in stats.items() if v[1] < now - 1_000_000_000}
    if config_key is not None:
        record["setup"] = config_key
    write_json(folder / MARKER, record)
    return hashes


def recorded_config(folder: str | Path) -> str | None:
    """The setup key recorded by the last run of the stage in ``folder`` (None: none)."""
    try:
        value = json.loads((Path(folder) / MARKER).read_text()).get("setup")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def recorded_outputs(folder: str | Path) -> dict[str, str]:
    """The outputs' sha256 recorded by the last completed run of the stage in ``folder``."""
    try:
        return dict(json.loads((Path(folder) / MARKER).read_text()).get("outputs", {}))
    except (OSError, ValueError):
        return {}


#: Record of the report's stages (key, outputs, value) inside the report folder.
STAGES_RECORD = ".stages.json"


class StageCache:
    """Reuse of the report's stages (table, limits, figures, ...) between runs.

    Each stage run through :meth:`run` has a key (its config, its input files' sha256,
    the code). After it runs, the files it wrote into the new report folder and its
    return value (pickled, ``.stage-<stage>.pkl``) are recorded in ``.stages.json``
    of that folder, which then replaces the previous report as a whole. On the next
    run a stage whose key equals the previous report's record, and whose recorded
    files are all there with their recorded sha256, is not run: its files are copied
    from the previous report (byte for byte what a run would write, the stages being
    deterministic) and its value is unpickled.
    """

    def __init__(self, previous: str | Path | None, folder: str | Path) -> None:
        self.previous = None if previous is None else Path(previous)
        self.folder = Path(folder)
        self.record: dict[str, Any] = {}
        self._old: dict[str, Any] = {}
        if self.previous is not None:
            try:
                old = json.loads((self.previous / STAGES_RECORD).read_text(encoding="utf-8"))
                self._old = old if isinstance(old, dict) else {}
            except (OSError, ValueError):
                self._old = {}

    def _files(self) -> dict[str, tuple[int, int]]:
        return {
            p.relative_to(self.folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in self.folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }

    def _reuse(self, stage: str, key: str) -> tuple[bool, Any]:
        import pickle
        import shutil

        old = self._old.get(stage)
        if self.previous is None or not isinstance(old, dict) or old.get("key") != key:
            return False, None
        files = dict(old.get("outputs", {}))
        pkl = f".stage-{stage}.pkl"
        files_and_value = {**files, pkl: old.get("value")}
        for rel, digest in files_and_value.items():
            src = self.previous / rel
            if not src.is_file() or sha256_file(src) != digest:
                return False, None
        try:
            value = pickle.loads((self.previous / pkl).read_bytes())
        except Exception:  # an unreadable record is a cache miss, not an error
            return False, None
        for rel in files_and_value:
            dst = self.folder / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.previous / rel, dst)
        self.record[stage] = old
        return True, value

    def reusable(self, stage: str, key: str) -> bool:
        """Whether :meth:`run` would reuse the stage (its record and files match)."""
        old = self._old.get(stage)
        if self.previous is None or not isinstance(old, dict) or old.get("key") != key:
            return False
        files = {**dict(old.get("outputs", {})), f".stage-{stage}.pkl": old.get("value")}
        return all(
            (self.previous / rel).is_file() and sha256_file(self.previous / rel) == digest
            for rel, digest in files.items()
        )

    def run(self, stage: str, key: str, func: Callable[[], T]) -> tuple[T, bool]:
        """``func()`` or its recorded value; (value, True when reused)."""
        import pickle

        reused, value = self._reuse(stage, key)
        if reused:
            return value, True
        before = self._files()
        value = func()
        after = self._files()
        outputs = sorted(rel for rel, stamp in after.items() if before.get(rel) != stamp)
        pkl = self.folder / f".stage-{stage}.pkl"
        pkl.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        self.record[stage] = {
            "key": key,
            "outputs": {rel: sha256_file(self.folder / rel) for rel in outputs},
            "value": sha256_file(pkl),
        }
        return value, False

    def save(self) -> None:
        """Write ``.stages.json`` into the new report folder."""
        write_json(self.folder / STAGES_RECORD, self.record)


# What each stage depends on, declared once: the config sections (top-level keys) that
# decide a stage's outputs, by what they leave out or by what they keep.

#: Config keys the samples do not depend on.
#: (the forced escape-path events are the fits stage's direct estimate, not a sample's)
SAMPLES_INDEPENDENT = ("name", "n_mot", "statistics", "g_minus_2", "run", "signal_box", "selection",
                       "detector.escape.forced_events")  # fmt: skip
#: Config keys the fits do not depend on.
FITS_INDEPENDENT = ("name", "n_mot", "statistics", "g_minus_2", "run", "signal")
#: Config sections that decide what a sample holds (sizes, seeds and folders aside).
SAMPLES_SETUP = ("beam", "detector")
#: Config sections that decide what a fit estimates from given samples.
FITS_SETUP = ("beam", "detector", "selection", "signal_box")


def samples_config_key(cfg: Any) -> str:
    """The setup the samples simulate (recorded beside the stage key; no sizes or seeds)."""
    setup = config_slice(cfg.to_dict(), keep=SAMPLES_SETUP, drop=SAMPLES_INDEPENDENT)
    return stage_key("samples-setup", setup)


def fits_config_key(cfg: Any) -> str:
    """The setup and selection the fits assume (recorded beside the stage key)."""
    return stage_key("fits-setup", config_slice(cfg.to_dict(), keep=FITS_SETUP))
