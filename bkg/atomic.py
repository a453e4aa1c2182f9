"""Atomic writes: every output goes to a temporary path and is renamed into place.

An interrupted run (Ctrl-C, a full disk, a bug) therefore never leaves a
half-written file where a complete one is expected, and the previous version
stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bkg.errors import BkgError, OutputError

__all__ = ["atomic_dir", "atomic_path", "inside", "recover_dir", "write_json", "write_text"]


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process umask, read once (os.umask can only be read by setting it).
_UMASK = _read_umask()


def explain_os_error(path: str | Path, exc: OSError) -> OutputError:
    """The one-line error of a failed write of ``path`` (full disk, permission, ...)."""
    return _explain(Path(path), exc)


def _explain(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        why = "no space left on the device; free space or choose another output folder"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied; choose a writable output folder"
    else:
        why = exc.strerror or str(exc)
    return OutputError(f"{path}: cannot write ({why})")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    Raises:
        OutputError: the folder is not writable or the disk is full.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared files
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _explain(path, exc) from None
        raise
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8, newline at the end)."""
    if not text.endswith("\n"):
        text += "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_texts(files: Mapping[str | Path, str]) -> list[Path]:
    """Write several rendered texts, each atomically, in order.

    Callers render every text (JSON included, which is where a non-finite number fails)
    before calling, so a file set is never left half-written by a rendering error.
    """
    return [write_text(path, text) for path, text in files.items()]


def dumps_json(data: Any) -> str:
    """Canonical JSON text of ``data`` (sorted keys, indent 1): stable bytes for hashing."""
    return json.dumps(data, indent=1, sort_keys=True, allow_nan=False, default=_default) + "\n"


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as canonical JSON to ``path`` atomically."""
    return write_text(path, dumps_json(data))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path``.

    The previous folder is kept until the new one is complete, then removed.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{path}: a file is in the way of the output folder; move it or choose another name"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_UMASK)
    except OSError as exc:
        raise _explain(path, exc) from None
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _explain(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_dir(path: str | Path) -> bool:
    """Put back the previous folder that a run killed inside :func:`atomic_dir`'s swap left.

    Between its two renames ``path`` is missing and the previous version is ``.<name>.old``:
    it becomes ``path`` again (the caller holds the folder's lock).

    Returns:
        Whether a folder was put back.
    """
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if os.path.lexists(path) or not old.is_dir() or old.is_symlink():
        return False
    try:
        os.replace(old, path)
    except OSError:
        return False
    return True


def inside(
    folder: str | Path, name: object, *, what: str, error: type[BkgError] = BkgError
) -> Path:
    """``folder / name`` for a path read from a file (a MANIFEST, a provenance, a record).

    The name must be a relative path without ``..`` that, symbolic links followed, stays
    inside ``folder``: no entry of a file the tool reads makes it open, overwrite or
    delete anything elsewhere.

    Args:
        folder: the folder the entry belongs to.
        name: the entry as read.
        what: where it was read, for the message (e.g. ``"samples/MANIFEST.json: files[3]"``).
        error: the exception class to raise.

    Raises:
        ``error``: one line naming the entry and what was expected.
    """
    folder = Path(folder)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise error(f"{what}: expected a file name inside {folder}, got {name!r}")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or name.startswith("~"):
        raise error(
            f"{what}: {name!r} is not inside {folder} (expected a path relative to it, "
            "without '..'); refused"
        )
    path = folder / rel
    try:
        base = folder.resolve()
        target = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise error(f"{what}: {name!r} cannot be resolved ({exc}); refused") from None
    if target != base and base not in target.parents:
        raise error(
            f"{what}: {name!r} leads out of {folder} (to {target}, through a symbolic link); "
            "refused"
        )
    return path
