"""How glibc's allocator treats the large arrays of a chunk (a no-op outside glibc).

Every stage allocates, uses and frees arrays of ~1e6 events once per chunk; the policy
(:func:`heap_policy`) is set per process. Every process of the package starts with
``keep`` (the `bkg` command, its side processes and sample workers); the analysis pass
over a sample holds ``return`` while it reads (:func:`bkg.ntuple.iterate`).
"""

from __future__ import annotations

import ctypes
import sys
from typing import Literal

__all__ = ["heap_policy"]

Policy = Literal["keep", "return"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_POLICIES = {"keep": (64 << 20, 256 << 20), "return": (8 << 20, 64 << 20)}
_current: Policy | None = None


def heap_policy(policy: Policy | None) -> Policy | None:
    """Set this process's allocator policy (None: leave it); cheap to repeat.

    ``keep`` (event generation): blocks up to 64 MB come from the heap and up to 256 MB
    of free heap is kept, so each chunk reuses the previous one's pages instead of
    faulting them in again (~2 s of kernel time saved in a 1e7-MOT samples run; the
    peak RSS does not change). ``return`` (the analysis pass): blocks above 8 MB are
    mapped and unmapped on their own, so freed chunks go back to the kernel instead of
    fragmenting the heap (`bkg fit` on 1e8 MOT peaks at 0.96 GB with it, 1.09 without);
    up to 64 MB of free heap top is kept, so the next chunk's arrays (4-8 MB each) reuse
    its pages (with glibc's 128 kB, the side process of `bkg fit` at 1e7 MOT faulted
    404k pages in, 1.9 s of kernel time; with 64 MB 168k and 0.9 s, the same peak RSS).

    glibc's own default (a 128 kB trim threshold) gives the freed top of the heap back
    after nearly every large temporary, so the next one faults its pages in again: on a
    virtual machine that zeroing was ~10 s of the default report's kernel time, hence
    ``keep`` everywhere but in the analysis pass.

    Returns:
        the policy before this call (None: glibc's default), for restoring it.
    """
    global _current
    previous = _current
    if policy is None or policy == _current or not sys.platform.startswith("linux"):
        return previous
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return previous
    mmap_threshold, trim_threshold = _POLICIES[policy]
    mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    _current = policy
    return previous
