"""na64mu-bkg: backgrounds, tail extrapolation and limits for the NA64mu Z' search.

Each stage is one call on objects (see :mod:`bkg.api`)::

    cfg = bkg.load_config()                 # or load_config("my.yaml")
    samples = bkg.simulate(cfg)             # -> samples/ (ROOT + MANIFEST.json)
    table = bkg.table1(cfg, bkg.estimate_backgrounds(cfg, samples))
    reach = bkg.sensitivity(cfg, samples)
    lim = bkg.limits(cfg, table, reach)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: The public API: every name here is importable from ``bkg`` (loaded lazily, so
#: ``import bkg`` and ``bkg --help`` stay instant).
__all__ = [
    "Backgrounds",
    "Samples",
    "Table1",
    "Workspace",
    "__version__",
    "estimate_backgrounds",
    "limits",
    "load_config",
    "report",
    "sensitivity",
    "simulate",
    "table1",
    "workspace",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bkg import api

        return getattr(api, name)
    raise AttributeError(f"module 'bkg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
