"""Curves drawn beside the projection: user constraints (a CSV) and limits the project computes.

The CSV format (docs/overlays.md): a header ``m_gev,g_prime,label,citation`` and one
row per point; rows with the same label make one curve (in the order given), and
each curve has one citation. Lines starting with ``#`` and blank lines are skipped.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bkg.errors import BkgError

__all__ = ["COLUMNS", "Curve", "OverlayError", "read_overlays"]

#: The CSV's columns, in this order.
COLUMNS = ("m_gev", "g_prime", "label", "citation")


class OverlayError(BkgError):
    """An overlay CSV that does not meet docs/overlays.md."""


@dataclass(frozen=True)
class Curve:
    """One curve of g' versus m_Z' to draw beside the projection.

    Attributes:
        label: legend text.
        citation: where the curve comes from (shown in the legend and the caption).
        masses_gev: Z' masses (GeV), increasing.
        g_prime: the coupling at each mass.
        computed: True for a limit the project computed itself (drawn solid, in black).
    """

    label: str
    citation: str
    masses_gev: np.ndarray
    g_prime: np.ndarray
    computed: bool = False

    @property
    def legend(self) -> str:
        """Legend text: the label and its citation (on a second line when long)."""
        if not self.citation:
            return self.label
        sep = "\n" if len(self.label) + len(self.citation) > 48 else " "
        return f"{self.label}{sep}({self.citation})"


def _content_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are neither blank nor comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OverlayError(f"{path}: no such overlay file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OverlayError(f"{path}: cannot read the overlay CSV ({exc})") from None
    lines = [
        (i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")
    ]  # fmt: skip
    if not lines:
        raise OverlayError(f"{path}: empty; expected a header {','.join(COLUMNS)} and rows")
    return lines


def _row_point(where: str, row: list[str]) -> tuple[float, float, str, str]:
    """(m, g', label, citation) of one CSV row, or an :class:`OverlayError` naming ``where``."""
    if len(row) != len(COLUMNS):
        raise OverlayError(f"{where}: {len(row)} fields; expected 4 ({','.join(COLUMNS)})")
    try:
        m, g = float(row[0]), float(row[1])
    except ValueError:
        raise OverlayError(
            f"{where}: m_gev {row[0].strip()!r} and g_prime {row[1].strip()!r} must be numbers"
        ) from None
    if not (math.isfinite(m) and m > 0 and math.isfinite(g) and g > 0):
        raise OverlayError(f"{where}: m_gev and g_prime must be finite and > 0 (log axes)")
    label, citation = row[2].strip(), row[3].strip()
    if not label:
        raise OverlayError(f"{where}: empty label; every row names its curve")
    return m, g, label, citation


def read_overlays(path: str | Path) -> list[Curve]:
    """The curves of an overlay CSV (docs/overlays.md).

    Raises:
        OverlayError: one line naming the file (and line) and what was expected.
    """
    path = Path(path)
    lines = _content_lines(path)
    rows = list(csv.reader([line for _, line in lines]))
    head = [h.strip() for h in rows[0]]
    if tuple(head) != COLUMNS:
        raise OverlayError(
            f"{path}:{lines[0][0]}: header {','.join(head)!r}; expected {','.join(COLUMNS)}"
        )
    points: dict[str, list[tuple[float, float]]] = {}
    citations: dict[str, str] = {}
    for (lineno, _), row in zip(lines[1:], rows[1:], strict=True):
        m, g, label, citation = _row_point(f"{path}:{lineno}", row)
        if citations.setdefault(label, citation) != citation:
            raise OverlayError(
                f"{path}:{lineno}: curve {label!r} cited as {citation!r} here and "
                f"{citations[label]!r} before; one citation per curve"
            )
        points.setdefault(label, []).append((m, g))
    if not points:
        raise OverlayError(f"{path}: a header but no rows")
    curves = []
    for label, pts in points.items():
        arr = np.asarray(sorted(pts), dtype=float)
        curves.append(Curve(label, citations[label], arr[:, 0], arr[:, 1]))
    return curves
