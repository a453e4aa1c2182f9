"""Import zfit without risking the process's stdout and stderr.

While it imports TensorFlow, zfit points file descriptors 1 and 2 at /dev/null and
puts them back afterwards, but not in a ``finally``: a Ctrl-C during that import (a
few seconds on a loaded machine) left them on /dev/null, and `bkg report` then
exited with 130 but without its "interrupted" line, or any other output. Here the
two descriptors are saved before and restored after the import, however it ends.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

__all__ = ["import_keeping_fds", "load_zfit"]


def import_keeping_fds(name: str) -> ModuleType:
    """Import module ``name`` with file descriptors 1 and 2 restored however the import ends."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    saved: list[tuple[int, int]] = []
    for fd in (1, 2):
        try:
            saved.append((fd, os.dup(fd)))
        except OSError:  # closed descriptor: nothing to restore
            pass
    try:
        return importlib.import_module(name)
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def load_zfit() -> ModuleType:
    """The zfit module (and TensorFlow), imported with stdout and stderr kept."""
    return import_keeping_fds("zfit")
