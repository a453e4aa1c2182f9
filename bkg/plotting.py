"""One figure style for every plot of the project (mplhep's), and PNG + PDF output."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bkg.atomic import atomic_path

__all__ = ["figure_style", "save_figure"]


@contextlib.contextmanager
def figure_style() -> Iterator[Any]:
    """Agg backend and the mplhep style, restored on exit (no global state leaks)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import mplhep

    with plt.style.context(mplhep.style.ROOT), plt.rc_context({"figure.figsize": (8, 6)}):
        yield plt


def save_figure(fig: Any, out_dir: str | Path, stem: str, *, close: bool = True) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.pdf`` (no timestamps: reproducible bytes).

    Returns:
        The two paths written.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written = []
    for ext, meta in (
        ("png", {"Software": None}),
        ("pdf", {"CreationDate": None, "Producer": None, "Creator": None}),
    ):
        path = out_dir / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(
                tmp, format=ext, metadata=meta, dpi=110 if ext == "png" else None,
                bbox_inches="tight",
            )  # fmt: skip
        written.append(path)
    if close:
        plt.close(fig)
    return written
