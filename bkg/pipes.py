"""Sending on a multiprocessing pipe without waiting for the reader; claiming a task.

A pipe holds some 64 kB. A side process that sends a larger result (a pass over the
beam sample, a figure's bytes) would block in ``send`` until the other process reads,
which it may do only much later (it is importing zfit, or running the fits): the side
process would idle meanwhile. :class:`Sender` sends from a thread instead.
:func:`claim` decides which of two processes does a queued task.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

__all__ = ["Sender", "claim"]


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
