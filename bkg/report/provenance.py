"""Provenance of a run: versions, platform, the effective config and every file's sha256."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bkg import __version__
from bkg.config import Config
from bkg.ntuple import sha256_file

__all__ = ["DEPENDENCIES", "collect_provenance", "file_hashes", "git_commit"]

DEPENDENCIES = (
    "numpy", "scipy", "pandas", "uproot", "awkward", "zfit", "tensorflow", "pyhf",
    "matplotlib", "mplhep", "hist", "iminuit", "particle", "click", "jsonschema",
    "PyYAML", "hepdata_lib",
)  # fmt: skip

#: The one field of provenance.json that changes between identical runs.
TIMESTAMP_KEY = "created_utc"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(path: str | Path = ".") -> str | None:
    """The git commit of the working tree at ``path`` (with ``-dirty``), or None."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=path, capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def file_hashes(root: str | Path, *, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file below ``root`` (relative POSIX paths, sorted)."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.relative_to(root).as_posix() not in exclude
        and not p.name.startswith(".")
    }


def collect_provenance(
    cfg: Config,
    *,
    inputs: dict[str, str],
    outputs: dict[str, str],
    seeds: dict[str, Any],
    stages: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a reviewer needs to reproduce a report.

    Args:
        cfg: the effective configuration (stored whole, with its hash).
        inputs: sha256 of each input file (samples, fit JSONs), by path.
        outputs: sha256 of each output file, by path relative to the report.
        seeds: the seeds used (root seed, per-sample spawn keys, toy seeds).
        stages: per stage, whether it ran or was reused and its cache key.
    """
    return {
        "package": {"name": "na64mu-bkg", "version": __version__},
        "dependencies": {d: _version(d) for d in DEPENDENCIES},
        "python": sys.version.split()[0],
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "release": platform.release(),
        },
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "config": cfg.to_dict(),
        "config_hash": cfg.hash,
        "seeds": seeds,
        "stages": stages or {},
        "inputs_sha256": dict(sorted(inputs.items())),
        "outputs_sha256": dict(sorted(outputs.items())),
        TIMESTAMP_KEY: _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
