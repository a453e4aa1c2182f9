"""One OS file lock per stage folder, held for the whole run that reads or writes it.

Two runs that share ``samples/``, ``fits/`` or ``reports/<name>/`` never interleave: a
writer holds the folder's :func:`fcntl.flock` lock exclusively, a reader shared; the
kernel releases it when the process dies (kill -9 included). Entry points: :func:`hold`
(waits up to :func:`timeout_s`, then refuses), :class:`Lock` (where each lock file
lives), :func:`holds`, :func:`clean_stale`. What is locked, by whom: docs/guarantees.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bkg.errors import OutputError

__all__ = ["LOCK_NAME", "Lock", "clean_stale", "hold", "timeout_s"]

LOCK_NAME = ".bkg.lock"
ENV_TIMEOUT = "BKG_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
_POLL_S = 0.2


@dataclass(frozen=True)
class Lock:
    """A request: the folder, whether the run writes it, and whether it is replaced whole.

    The lock of a folder that is replaced as a whole (``reports/<name>/``, swapped in by
    :func:`bkg.atomic.atomic_dir`) lives beside it (``reports/.<name>.lock``); the others
    (``samples/.bkg.lock``, ``fits/.bkg.lock``) inside it.
    """

    folder: Path
    exclusive: bool = True
    replaced: bool = False

    def path(self) -> Path:
        folder = Path(self.folder)
        if self.replaced:
            return folder.parent / f".{folder.name}.lock"
        return folder / LOCK_NAME


#: locks this process holds: resolved lock path -> [fd, exclusive, depth]
_HELD: dict[str, list[int]] = {}


def timeout_s() -> float:
    """How long a run waits for a locked folder (``BKG_LOCK_TIMEOUT``, seconds).

    Default 600; 0: refuse at once. A run that finds a folder locked says so on stderr
    and waits this long, then refuses with one line.
    """
    raw = os.environ.get(ENV_TIMEOUT)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise OutputError(f"{ENV_TIMEOUT}={raw!r}: expected a number of seconds >= 0") from None
    if not value >= 0:
        raise OutputError(f"{ENV_TIMEOUT}={raw!r}: expected a number of seconds >= 0")
    return value


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return "another bkg run"
    return f"another bkg run (pid {pid})" if pid.isdigit() else "another bkg run"


def _open_shared(path: Path) -> int | None:
    """The lock file of a folder a run only reads, if the tool made one there.

    A reader never creates anything: a folder without a lock file (a user's production,
    a read-only disk) was never written by `bkg samples`/`bkg fit` and is not locked.
    """
    for flags in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(path, flags | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError:
            continue
    return None


def _acquire(lock: Lock, timeout: float, key: str) -> str | None:
    import fcntl

    path = lock.path()
    if lock.exclusive:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:  # "<folder>: cannot write (...)", as any output would say
            from bkg.atomic import explain_os_error

            raise explain_os_error(lock.folder, exc) from None
    else:
        shared = _open_shared(path)
        if shared is None:
            return None
        fd = shared
    mode = fcntl.LOCK_EX if lock.exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + timeout
    said = False
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise OutputError(
                    f"{lock.folder}: in use by {_holder(path)}"
                    + (f" for more than {timeout:g} s" if timeout > 0 else "")
                    + "; wait for it to finish, or use another folder "
                    f"({ENV_TIMEOUT} sets how long to wait)"
                )
            if not said:
                sys.stderr.write(
                    f"bkg: waiting for {lock.folder}: in use by {_holder(path)} "
                    f"(up to {timeout:g} s, {ENV_TIMEOUT})\n"
                )
                sys.stderr.flush()
                said = True
            time.sleep(_POLL_S)
    except BaseException:
        os.close(fd)
        raise
    if lock.exclusive:  # who holds it, for the message of the run that waits
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = [fd, int(lock.exclusive), 1]
    return key


def _forget_in_child() -> None:
    """In a forked child (a sample worker, a side process): the parent's locks stay the
    parent's. The child closes its copies of their descriptors, so that the folders are
    free as soon as the parent ends (kill -9 included) whatever its children still do,
    and takes a lock it needs as any other process would."""
    for entry in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(entry[0])
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_in_child)


def _release(key: str) -> None:
    entry = _HELD[key]
    entry[2] -= 1
    if entry[2] == 0:
        del _HELD[key]
        os.close(entry[0])  # closing the descriptor releases the flock


@contextlib.contextmanager
def hold(locks: Iterable[Lock], *, timeout: float | None = None) -> Iterator[None]:
    """Hold the locks of the given folders for the block (in one global order: no deadlock).

    A folder asked for twice (e.g. the samples and fits folders are the same) is locked
    once, exclusively if any request is. Within a process a held lock is taken again
    at no cost; a shared lock is never upgraded (the outermost caller asks for what the
    whole run needs). Locks are re-entrant within a process: ``bkg report`` holds every
    folder's lock from its start to its end, and the stage functions it calls take the
    same locks again.

    Raises:
        OutputError: a folder stayed locked by another run beyond the timeout, or its lock
            file cannot be created.
    """
    wait = timeout_s() if timeout is None else timeout
    wanted: dict[str, Lock] = {}
    for lock in locks:
        lock = Lock(Path(lock.folder), lock.exclusive, lock.replaced)
        key = str(lock.path().parent.resolve() / lock.path().name)
        if key in wanted:
            lock = Lock(lock.folder, lock.exclusive or wanted[key].exclusive, lock.replaced)
        wanted[key] = lock
    taken: list[str] = []
    try:
        for key in sorted(wanted):
            lock = wanted[key]
            if key in _HELD:
                if lock.exclusive and not _HELD[key][1]:
                    raise RuntimeError(f"{key}: held shared, asked for exclusively (a bug)")
                _HELD[key][2] += 1
                taken.append(key)
                continue
            key_taken = _acquire(lock, wait, key)
            if key_taken is not None:
                taken.append(key_taken)
        yield
    finally:
        for key in reversed(taken):
            _release(key)


def holds(folder: Path, *, replaced: bool = False) -> bool:
    """Whether this process holds the lock of ``folder`` (exclusively)."""
    path = Lock(Path(folder), True, replaced).path()
    try:
        entry = _HELD.get(str(path.parent.resolve() / path.name))
    except OSError:
        return False
    return bool(entry and entry[1])


#: hidden temporary names the tool writes: atomic_path files (mkstemp, 8 characters),
#: atomic_dir folders, the ``.old`` folder of a swap, and the samples' ``.<chunk>.root.tmp``
_OWN_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$|^\.[a-z_]+_\d{4,}\.root\.tmp$")


def clean_stale(folder: Path, *, names: Iterable[str] | None = None) -> list[Path]:
    """Remove the hidden temporaries a killed run left in ``folder``; the caller holds its lock.

    Only names of the tool's own temporaries (see :data:`_OWN_TEMPORARY`) are removed, never
    a symbolic link's target; ``names`` restricts it to temporaries of these outputs (the
    report folders beside others in ``reports/``).

    Returns:
        What was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        children = list(folder.iterdir())
    except OSError:
        return removed
    exact = (
        None
        if names is None
        else re.compile(
            "|".join(
                rf"^\.{re.escape(n)}\.[A-Za-z0-9_]{{8}}\.tmp$|^\.{re.escape(n)}\.old$"
                for n in names
            )
        )
    )
    for child in children:
        name = child.name
        if not (_OWN_TEMPORARY.match(name) if exact is None else exact.match(name)):
            continue
        try:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        except OSError:
            continue
        removed.append(child)
    return removed
