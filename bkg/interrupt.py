"""Ctrl-C that a stage cannot lose.

Python turns SIGINT into KeyboardInterrupt at the next bytecode, but code in a C++
extension that checks for signals and then clears the error can swallow it, and the
run goes on to the end (seen once in CI: a SIGINT during the fits stage, presumably
while TensorFlow loaded, left `bkg report` to finish with exit code 0). The handler
here also records the request, and :func:`check`, called between the stages of
``bkg report``, raises it again, so an interrupt is honoured at the latest when the
running stage ends (its outputs are complete: every stage writes atomically).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

__all__ = ["check", "exit_code", "install", "message", "requested"]

_requested = False
_signum = signal.SIGINT


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _requested, _signum
    _requested = True
    _signum = signal.Signals(signum)
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM through the recording handler (main thread only).

    SIGTERM (``kill``, a batch system's time limit) is handled like Ctrl-C: the running
    stage stops, its temporary outputs are removed, one line, exit code 143 (128 + 15).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigint)


def _defaults_in_child() -> None:
    """In a forked child (a sample worker, a side process): Python's own SIGINT and the
    default SIGTERM, as a spawned process has. The parent stops its children with
    SIGTERM (``Process.terminate``): the recording handler would turn that into a
    KeyboardInterrupt that a task's error handling can catch, and the child would go on."""
    global _requested
    _requested = False
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # forked from another thread than the main one
        pass


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_defaults_in_child)


def exit_code() -> int:
    """128 + the number of the signal that interrupted the run (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(_signum)


def message() -> str:
    """The one line that says the run was interrupted, and by what."""
    what = "terminated (SIGTERM)" if _signum == signal.SIGTERM else "interrupted"
    return f"bkg: {what}; outputs of the unfinished stage were not written"


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt was requested since :func:`install`."""
    if _requested:
        raise KeyboardInterrupt


def requested() -> bool:
    """Whether SIGINT arrived since :func:`install`.

    Also true when the KeyboardInterrupt surfaced as another error: raised while a C
    extension initialised, it comes out as ``ImportError: initialization failed``.
    """
    return _requested
