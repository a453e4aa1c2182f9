"""Shared step of the fitted sources: histogram a variable, fit its tail, extrapolate."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bkg.errors import FitError
from bkg.fit import extrapolate, fit_tail
from bkg.fit.tailfit import Extrapolation, TailFit

log = logging.getLogger(__name__)


def fit_and_extrapolate(
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    n_total: int,
    cut: float,
    side: str,
    source: str,
    values: np.ndarray | None = None,
    model: str = "gauss_exp",
    alt_model: str | None = "double_cb",
    alt_from: float | None = None,
) -> tuple[TailFit, TailFit | None, Extrapolation]:
    """Nominal and alternative fits and the extrapolation beyond ``cut``.

    The alternative (another shape, and/or the same shape fitted only from
    ``alt_from`` on, the far part of the window) is the model systematic: the
    envelope of the two levels. If the alternative shape cannot be fitted (for
    instance a double-CB whose power-law n runs to its limit: the tail is
    steeper than any power law), or if ``alt_model`` is None, the systematic is
    the nominal shape refitted with the tail side of the window cut to half its
    reach from the nominal mean (a fit-range variation). If that fails too there
    is no systematic and ``fit.alternative`` is null in the JSON.
    """
    nominal = fit_tail(counts, edges, n_total=n_total, model=model, source=source, values=values)
    alt: TailFit | None = None
    if alt_model is not None:
        a_counts, a_edges, a_values = counts, edges, values
        if alt_from is not None:
            first = int(np.searchsorted(edges, alt_from))
            a_counts, a_edges = counts[first:], edges[first:]
            if values is not None:
                a_values = values[values >= a_edges[0]]
        try:
            alt = fit_tail(
                a_counts, a_edges, n_total=n_total, model=alt_model, source=source, values=a_values
            )
        except FitError:
            alt = None
    ext = None
    if alt is not None:
        ext = extrapolate(nominal, cut=cut, side=side, alternative=alt)
        if ext.alternative is not None and not math.isfinite(ext.alternative):
            # e.g. an exponential fitted to a few events in the far half of the window comes
            # out flat or rising: its tail does not fall off, so it cannot bound the nominal
            log.warning(
                "%s: the alternative %s fit%s does not fall off beyond the window; the model "
                "systematic is the fit-range variation instead",
                source,
                alt_model,
                f" (from {alt_from:g} on)" if alt_from is not None else "",
            )
            alt = ext = None
    if alt is None:
        alt = _range_variation(counts, edges, nominal, n_total=n_total, side=side, source=source,
                               values=values)  # fmt: skip
    if ext is None:
        ext = extrapolate(nominal, cut=cut, side=side, alternative=alt)
    if not all(math.isfinite(v) for v in (ext.level, ext.stat_up, ext.syst_up, ext.syst_down)):
        raise FitError(
            f"{source}: the fitted tail does not fall off beyond the window (level "
            f"{ext.level:.3g}, systematic +{ext.syst_up:.3g}); the sample has too few events "
            "in the tail for an extrapolation: generate more"
        )
    return nominal, alt, ext


def power_law_level(
    counts: np.ndarray, edges: np.ndarray, *, n_total: int, cut: float, side: str, source: str
) -> float | None:
    """Level beyond ``cut`` of a power-law tail (double-CB) fitted to the same window, or None.

    Not an uncertainty: a record of how far the result leans on the exponential tail
    model, for the sources whose systematic is a fit-range variation.
    """
    try:
        fit = fit_tail(counts, edges, n_total=n_total, model="double_cb", source=source)
    except FitError:
        return None
    return extrapolate(fit, cut=cut, side=side, n_samples=0).level


def _range_variation(
    counts: np.ndarray,
    edges: np.ndarray,
    nominal: TailFit,
    *,
    n_total: int,
    side: str,
    source: str,
    values: np.ndarray | None,
) -> TailFit | None:
    """The nominal shape fitted with the tail side of the window halved (None if it fails)."""
    # the fitted mean; a shape without one (exponential) halves from the window's centre
    mu = float(nominal.params.get("mu", 0.5 * (edges[0] + edges[-1])))
    if side == "lower":  # bins from half-way between the lower edge and mu
        a, b = int(np.searchsorted(edges, mu - 0.5 * (mu - edges[0]))), len(counts)
    else:  # bins up to half-way between mu and the upper edge
        a, b = 0, int(np.searchsorted(edges, mu + 0.5 * (edges[-1] - mu)))
    c, e = counts[a:b], edges[a : b + 1]
    v = None if values is None else values[(values >= e[0]) & (values < e[-1])]
    try:
        return fit_tail(c, e, n_total=n_total, model=nominal.model, source=source, values=v)
    except FitError:
        return None


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
