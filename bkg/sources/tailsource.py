"""Shared step of the fitted sources: histogram a variable, fit its tail, extrapolate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bkg.errors import FitError
from bkg.fit import extrapolate, fit_tail
from bkg.fit.tailfit import Extrapolation, TailFit


def fit_and_extrapolate(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    n_total: int,
    cut: float,
    side: str,
    source: str,
    values: np.ndarray | None = None,
) -> tuple[TailFit, TailFit | None, Extrapolation]:
    """Nominal (gauss_exp) and alternative (double_cb) fits and the extrapolation beyond ``cut``.

    The alternative fit is the model systematic; if it fails, the systematic is
    taken as the nominal statistical half-width times two and noted.
    """
    nominal = fit_tail(
        counts, edges, n_total=n_total, model="gauss_exp", source=source, values=values
    )
    try:
        alt: TailFit | None = fit_tail(
            counts, edges, n_total=n_total, model="double_cb", source=source, values=values
        )
    except FitError:
        alt = None
    ext = extrapolate(nominal, cut=cut, side=side, alternative=alt)
    return nominal, alt, ext


def fit_record(
    nominal: TailFit,
    alt: TailFit | None,
    ext: Extrapolation,
    *,
    cut: float,
    side: str,
    variable: str,
    shas: Mapping[str, str],
) -> dict[str, Any]:
    """The ``fit`` dict of a SourceEstimate."""
    return {
        **nominal.to_dict(),
        "variable": variable,
        "cut": cut,
        "side": side,
        "alternative": alt.to_dict() if alt is not None else None,
        "level_alternative": ext.alternative,
        "stat_linear": ext.stat_linear,
        "sample_sha256": dict(shas),
        "counts": nominal.counts.tolist(),
        "edges": nominal.edges.tolist(),
    }
