"""One figure style for every plot of the project (mplhep's), and PNG (+ PDF) output.

Every figure is written as PNG. A PDF is written beside it for the figures of the paper
(:data:`PAPER_FIGURES`, the ones a paper or a talk takes as vectors), for every figure
with ``--pdf all`` (:func:`set_pdf_mode`), or for none with ``--pdf none``. Drawing a
PDF costs about as much as the PNG, so the diagnostic figures (the fits, the reach
versus N_MOT) skip it by default.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bkg.atomic import atomic_path

__all__ = [
    "PAPER_FIGURES",
    "PDF_MODES",
    "figure_style",
    "pdf_mode",
    "save_figure",
    "set_pdf_mode",
    "wants_pdf",
]

#: stems of the figures that reproduce a figure of PRD 105, 052006 (written as PDF too)
PAPER_FIGURES = frozenset(
    {
        "fig2_trigger_efficiency",
        "fig3_beam",
        "fig4_zprime_spectra",
        "fig5_hermeticity_plane",
        "fig6_reach_background_free",
        "sensitivity",  # Fig. 6 with the expected band
    }
)
#: "paper": PDF for :data:`PAPER_FIGURES` only; "all": every figure; "none": PNG only
PDF_MODES = ("paper", "all", "none")
#: the mode travels in the environment, so worker processes (spawned) write the same files
_ENV = "BKG_PDF"


def set_pdf_mode(mode: str) -> None:
    """Which figures get a PDF beside the PNG (:data:`PDF_MODES`), for this process and
    the processes it starts."""
    if mode not in PDF_MODES:
        raise ValueError(f"--pdf: expected one of {', '.join(PDF_MODES)}, got {mode!r}")
    os.environ[_ENV] = mode


def pdf_mode() -> str:
    """The current PDF mode ("paper" unless :func:`set_pdf_mode` said otherwise)."""
    mode = os.environ.get(_ENV, "paper")
    return mode if mode in PDF_MODES else "paper"


def wants_pdf(stem: str) -> bool:
    """Whether the figure ``stem`` is written as PDF too in the current mode."""
    mode = pdf_mode()
    return mode == "all" or (mode == "paper" and stem in PAPER_FIGURES)


@contextlib.contextmanager
def figure_style() -> Iterator[Any]:
    """Agg backend and the mplhep style, restored on exit (no global state leaks)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import mplhep

    with plt.style.context(mplhep.style.ROOT), plt.rc_context({"figure.figsize": (8, 6)}):
        yield plt


def save_figure(
    fig: Any, out_dir: str | Path, stem: str, *, close: bool = True, pdf: bool | None = None
) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and, if ``pdf`` (default: :func:`wants_pdf`), as
    ``stem.pdf`` (no timestamps: reproducible bytes).

    Returns:
        The paths written.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    formats: list[tuple[str, dict[str, Any]]] = [("png", {"Software": None})]
    if wants_pdf(stem) if pdf is None else pdf:
        formats.append(("pdf", {"CreationDate": None, "Producer": None, "Creator": None}))
    written = []
    for ext, meta in formats:
        path = out_dir / f"{stem}.{ext}"
        with atomic_path(path) as tmp:  # PDF: dpi of the rasterized artists only
            fig.savefig(
                tmp, format=ext, metadata=meta, dpi=110 if ext == "png" else 200,
                bbox_inches="tight",
            )  # fmt: skip
        written.append(path)
    if close:
        plt.close(fig)
    return written
