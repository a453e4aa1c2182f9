"""na64mu-bkg: backgrounds, tail extrapolation and limits for the NA64mu Z' search.

Stages (each a subpackage, plain data between them)::

    config -> sim (samples/) -> sources + fit (fits/) -> stats -> report (reports/)

Heavy libraries (zfit/TensorFlow, pyhf) are imported lazily by the stages that
need them, so ``import bkg`` and ``bkg --help`` stay fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
