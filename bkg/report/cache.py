"""Stage caching: a stage is skipped when its config slice and input hashes are unchanged.

A stage that completes writes ``.stage.json`` into its output folder with its
key (sha256 of the config slice and the inputs' sha256) and the sha256 of every
file it wrote. On the next run the stage is reused only if the key is the same
and every recorded output still has its recorded hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bkg.atomic import write_json
from bkg.ntuple import sha256_file

__all__ = [
    "code_digest",
    "config_slice",
    "is_fresh",
    "mark_done",
    "recorded_config",
    "stage_key",
]

MARKER = ".stage.json"


def config_slice(
    raw: Mapping[str, Any], *, drop: Iterable[str] = (), keep: Iterable[str] | None = None
) -> dict[str, Any]:
    """The part of the config a stage depends on (top-level keys kept or dropped)."""
    keys = set(raw) if keep is None else set(keep)
    return {k: raw[k] for k in sorted(keys - set(drop)) if k in raw}


def code_digest(*modules: str) -> str:
    """sha256 of the source files of the given ``bkg`` subpackages/modules.

    Part of a stage's key, so that a changed simulation or fit code never reuses
    outputs made by the old code (the package version alone does not change
    between commits).
    """
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in modules:
        path = root / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        for f in files:
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
    for name, digest in record.get("outputs", {}).items():
        from bkg.atomic import inside
        from bkg.errors import BkgError

        try:  # a name that leads out of the folder is never read: the stage runs again
            path = inside(folder, name, what=str(marker))
        except BkgError:
            return False
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


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
