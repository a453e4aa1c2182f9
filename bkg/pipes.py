"""Side processes: how they start, sending on a pipe without waiting, claiming a task.

:func:`side_context`: a side process is a fork of this process while that is safe (Linux,
one thread, no TensorFlow yet: `bkg fit` and `bkg report` start theirs before importing
zfit), else a fork of a server that imported their modules once
(:func:`start_side_server`), else spawned (docs/speed.md). :class:`Sender`: a result
larger than a pipe (~64 kB) sent from a thread, so that the side process does not wait
for a reader busy elsewhere (importing zfit, fitting). :func:`claim`: which of two
processes does a queued task.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SIDE_MODULES",
    "Sender",
    "adopt_process_state",
    "claim",
    "fork_is_safe",
    "process_state",
    "side_context",
    "start_side_server",
]

#: what the side processes of `bkg fit` and `bkg report` import
SIDE_MODULES = (
    "bkg.sources.side",
    "bkg.sources.base",
    "bkg.sources.momentum_mismatch",
    "bkg.sources.hermeticity",
    "bkg.sources.hadron_decay",
    "bkg.sources.punch_through",
    "bkg.sources.dimuon",
    "bkg.sim.run",
    "bkg.sim.escape",
    "bkg.sim.biasing",
    "bkg.sim.figures",
    "bkg.report.pipeline",
    "bkg.report.results",
    "bkg.report.sensitivity",
    "bkg.report.figures",
    "matplotlib.pyplot",
    "scipy.stats",
    "mplhep",
)

_server_started = False


def start_side_server() -> None:
    """Start the fork server of the side processes now (no-op where there is none).

    The server imports :data:`SIDE_MODULES` (~2.5 s of CPU) once, overlapping with the
    caller's next stage (`bkg report`: the samples); each side process is then a fork of
    it, ready at once, instead of a spawned interpreter importing them itself. It starts
    with the server's working directory and environment; the side processes' bodies
    take the parent's (:func:`process_state`).
    """
    global _server_started
    if _server_started or fork_is_safe():  # the side processes will be forks of this one
        return
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(SIDE_MODULES))
    forkserver.ensure_running()
    _server_started = True
    atexit.register(_stop_server)


def _stop_server() -> None:
    """At exit: end the fork server and wait for it, as for any child (its CPU time and
    its children's then count in this process's, and no orphan is left behind)."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if callable(stop):  # private in CPython 3.9-3.13; without it the server ends on its own
        with contextlib.suppress(OSError, ChildProcessError):
            stop()


def fork_is_safe() -> bool:
    """Whether a fork of this process can run a side process: on Linux, with one thread
    (a fork copies no other thread, and a lock one of them held stays taken) and without
    TensorFlow imported (its runtime does not survive a fork)."""
    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and "tensorflow" not in sys.modules
        and threading.active_count() == 1
    )


def side_context() -> Any:
    """The multiprocessing context of a side process: a fork of this process while
    :func:`fork_is_safe` (it has every module and table already: nothing imported or
    built again), else the fork server's once :func:`start_side_server` ran here, else
    spawn."""
    if fork_is_safe():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if _server_started else "spawn")


def process_state() -> dict[str, Any]:
    """This process's working directory and environment, for a side process to adopt."""
    return {"cwd": os.getcwd(), "env": dict(os.environ)}


def adopt_process_state(state: Mapping[str, Any] | None) -> None:
    """Take the working directory and environment of :func:`process_state` (a fork of
    the server has the server's, from when it started)."""
    if not state:
        return
    os.chdir(state["cwd"])
    os.environ.clear()
    os.environ.update(state["env"])


class Sender:
    """Send objects on a pipe's writing end from a thread: :meth:`send` returns at once.

    Objects go out in the order given. :meth:`close` sends what is queued (waiting at
    most ``timeout`` seconds) and closes the pipe; a reader that has gone away ends the
    sending quietly (its process handles its own end).
    """

    _END = object()

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bkg-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._END:
            try:
                self._conn.send(item)
            except (OSError, ValueError):  # the reading process is gone
                break
        self._conn.close()

    def send(self, item: Any) -> None:
        """Queue ``item`` to be sent."""
        self._queue.put(item)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued, then close the pipe (wait at most ``timeout`` s for it)."""
        self._queue.put(self._END)
        self._thread.join(timeout)


def claim(claimed: Any, index: int) -> bool:
    """Take task ``index`` of a shared ``multiprocessing.Array`` of flags unless another
    process has: True if this call took it (the flag is then set)."""
    with claimed.get_lock():
        if claimed[index]:
            return False
        claimed[index] = 1
    return True
