"""One figure style for every plot of the project (mplhep's), and PNG (+ PDF) output.

Every figure is written as PNG. A PDF is written beside it for the figures of the paper
(:data:`PAPER_FIGURES`, the ones a paper or a talk takes as vectors), for every figure
with ``--pdf all`` (:func:`set_pdf_mode`), or for none with ``--pdf none``. Drawing a
PDF costs about as much as the PNG, so the diagnostic figures (the fits, the reach
versus N_MOT) skip it by default.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bkg.atomic import atomic_path

__all__ = [
    "PAPER_FIGURES",
    "PDF_MODES",
    "figure_style",
    "pdf_mode",
    "preload",
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


@functools.cache
def preload() -> None:
    """Import the plotting stack (matplotlib on Agg, pyplot, mplhep, the PNG and PDF
    backends) without drawing anything (~1.2 s of CPU the first time, nothing after).

    `bkg report` calls it while it waits for its sample workers: the side processes it
    forks afterwards start with it (each would import it again, and the report's process
    imports it in any case: zfit imports pyplot). Once per process. Nothing is drawn,
    so no font file is open before the fork (:func:`_forget_fonts_in_child`).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.backends.backend_agg
    import matplotlib.backends.backend_pdf
    import matplotlib.pyplot
    import mplhep  # noqa: F401


#: dots per inch of the PNG files; a PDF's dpi is that of its rasterized artists only
PNG_DPI = 110
PDF_DPI = 200


def save_figure(
    fig: Any, out_dir: str | Path, stem: str, *, close: bool = True, pdf: bool | None = None
) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and, if ``pdf`` (default: :func:`wants_pdf`), as
    ``stem.pdf`` (no timestamps: reproducible bytes), each cropped to the figure's tight
    bounding box (:func:`tight_bbox`, found once for both files).

    Returns:
        The paths written.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    formats: list[tuple[str, dict[str, Any], int]] = [("png", {"Software": None}, PNG_DPI)]
    if wants_pdf(stem) if pdf is None else pdf:
        meta = {"CreationDate": None, "Producer": None, "Creator": None}
        formats.append(("pdf", meta, PDF_DPI))
    # the box savefig's bbox_inches="tight" finds for the PNG, found once and given to
    # both saves (the PNG's bytes are those of "tight"; the PDF's page is the PNG's box,
    # within 2 pt of the one the PDF renderer's text metrics give, inside the 7 pt pad)
    with shared_mathtext_cache():
        bbox = tight_bbox(fig, PNG_DPI)
        engine = fig.get_layout_engine()
        if not isinstance(bbox, str) and engine is not None:  # a finished tight_layout()
            fig.set_layout_engine(None)  # (inert): else savefig lays the figure out for it
        written = []
        try:
            for ext, meta, dpi in formats:
                path = out_dir / f"{stem}.{ext}"
                with atomic_path(path) as tmp:
                    fig.savefig(tmp, format=ext, metadata=meta, dpi=dpi, bbox_inches=bbox)
                written.append(path)
        finally:
            if engine is not None and fig.get_layout_engine() is None:
                fig.set_layout_engine(engine)
    if close:
        plt.close(fig)
    return written


def tight_bbox(fig: Any, dpi: float) -> Any:
    """The box (inches) that ``savefig(dpi=dpi, bbox_inches="tight")`` crops an Agg
    figure to: its artists' tight bounding box measured at ``dpi``, padded by
    ``savefig.pad_inches``; "tight" itself for a figure on another canvas or with a
    layout engine that acts at each draw (constrained layout)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    if type(fig.canvas) is not FigureCanvasAgg or not (
        engine is None or isinstance(engine, PlaceHolderLayoutEngine)
    ):
        return "tight"
    # no draw first (savefig's "tight" draws the whole figure, its lines and meshes, to
    # a renderer that discards them): the box comes from the layout alone (the ticks,
    # the texts, the legends, the colorbars), which get_tightbbox updates itself; the
    # same box as "tight" for every figure of the report (bench/bench_figures.py, tests)
    dpi0 = fig.dpi
    try:
        fig.dpi = dpi
        box = fig.get_tightbbox(fig.canvas.get_renderer())
    finally:
        fig.dpi = dpi0
    pad = matplotlib.rcParams["savefig.pad_inches"]
    return box.padded(pad, pad)


#: parses kept across renderers and figures (the report's figures: ~110 distinct ones)
MATHTEXT_CACHE = 1024
#: "raw": matplotlib's uncached parse; "vector"/"raster": a parser of that output type
_MATHTEXT: dict[str, Any] = {}


@functools.lru_cache(maxsize=MATHTEXT_CACHE)
def _parse_mathtext(output: str, args: tuple[Any, ...], rc: tuple[tuple[str, str], ...]) -> Any:
    # args: those of matplotlib's _parse_cached (the string, dpi, font properties,
    # antialiasing and, in recent versions, glyph loading); rc: the mathtext.* settings (its
    # fonts), which a parse reads and the key must hold
    return _MATHTEXT["raw"](_MATHTEXT[output], *args)


def _forget_fonts_in_child() -> None:
    """After a fork, in the child: drop the math-text parses cached here and by matplotlib.

    Their glyphs hold FreeType fonts whose open font file the child shares with its
    parent, read position included: the two reading at once load wrong bytes ("failed
    to load glyph", seen in a report forked from a process that had drawn figures).
    matplotlib empties its own font cache at a fork; without these parses too, the
    child holds none of the parent's fonts and opens its own.
    """
    _parse_mathtext.cache_clear()  # (_MATHTEXT holds parsers and a function: no font)
    mathtext = sys.modules.get("matplotlib.mathtext")
    if mathtext is not None:  # matplotlib's cache, also when forked inside the context below
        cached = mathtext.MathTextParser.__dict__.get("_parse_cached")
        for func in (cached, getattr(cached, "_bkg_method", None)):
            clear = getattr(func, "cache_clear", None)
            if clear is not None:
                clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_fonts_in_child)


@contextlib.contextmanager
def shared_mathtext_cache() -> Iterator[None]:
    """Parse each mathtext string (a log axis' $\\mathdefault{10^{-12}}$, a label) once per
    dpi and font for every renderer while the context is open.

    matplotlib caches the parses per parser, 50 of them, and every Agg renderer has its
    own parser: the saves of a figure (its layout, its PNG, its PDF) parsed each tick
    label again, 353 pyparsing runs (a quarter of the CPU of the report's figures) for
    105 distinct keys. The cache is keyed as matplotlib's is (the string, dpi, font
    properties, antialiasing, glyph loading) plus the output type and the mathtext.*
    settings, so a parse is the one matplotlib would return. Restored on exit; nothing
    changes where matplotlib's parser is not the one this was written for.
    """
    import matplotlib
    from matplotlib.mathtext import MathTextParser

    method: Any = MathTextParser.__dict__.get("_parse_cached")
    raw = getattr(method, "__wrapped__", None)
    if raw is None or getattr(method, "_bkg_shared", False):
        yield
        return
    if _MATHTEXT.get("raw", raw) is not raw:  # matplotlib reloaded: no stale parses
        _MATHTEXT.clear()
        _parse_mathtext.cache_clear()
    _MATHTEXT["raw"] = raw
    rc = matplotlib.rcParams
    names = [k for k in sorted(rc) if k.startswith("mathtext.")]

    def shared(self: Any, *args: Any, **kwargs: Any) -> Any:
        output = getattr(self, "_output_type", None)
        if kwargs or output is None:
            return method(self, *args, **kwargs)
        _MATHTEXT.setdefault(output, self)  # a parse depends on the output type only
        return _parse_mathtext(output, args, tuple((k, str(rc[k])) for k in names))

    shared._bkg_shared = True  # type: ignore[attr-defined]
    shared._bkg_method = method  # type: ignore[attr-defined]
    setattr(MathTextParser, "_parse_cached", shared)  # noqa: B010
    try:
        yield
    finally:
        setattr(MathTextParser, "_parse_cached", method)  # noqa: B010
