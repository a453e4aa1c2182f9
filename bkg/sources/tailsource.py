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


# ---------------------------------------------------------------------------------------
# tails judged on the tail (bkg.fit.tailmodel): the collector of a reducer, the analysis
# ---------------------------------------------------------------------------------------

#: share of the sample fitted in the split-sample closure (the rest is predicted)
SPLIT_FRACTION = 0.1
#: events of the whole sample beyond each t1 of the split-sample closure (two t1): the
#: rest (90%) then holds about 90 and 27 events beyond t1 to compare with the prediction,
#: and the fitted 10% has about 90% of its tail inside its window
SPLIT_EVENTS_BEYOND = (100, 30)


class TailCollector:
    """The values beyond ``x_keep`` of a variable, chunk by chunk, for the tail fits.

    Every value of the population is numbered in the order the chunks arrive (the
    sample's order, the same for any number of workers); those with number % 10 == 0
    make the 10% of the split-sample closure, whose own histogram is kept for its core.
    """

    def __init__(self, edges: np.ndarray, x_keep: float) -> None:
        self.edges = np.asarray(edges, float)
        self.x_keep = float(x_keep)
        self.split_counts = np.zeros(len(self.edges) - 1)
        self.n_seen = 0
        self._values: list[np.ndarray] = []
        self._split: list[np.ndarray] = []

    def add(self, x: np.ndarray) -> None:
        """Take the values of one chunk's population (all of them, in order)."""
        x = np.asarray(x, float)
        tag = (self.n_seen + np.arange(x.size)) % round(1 / SPLIT_FRACTION) == 0
        self.n_seen += x.size
        self.split_counts += np.histogram(x[tag], bins=self.edges)[0]
        far = x > self.x_keep
        self._values.append(x[far])
        self._split.append(tag[far])

    @property
    def values(self) -> np.ndarray:
        return np.concatenate(self._values) if self._values else np.zeros(0)

    @property
    def in_split(self) -> np.ndarray:
        return np.concatenate(self._split) if self._split else np.zeros(0, bool)


def tail_analysis(
    collector: TailCollector,
    counts: np.ndarray,
    *,
    n_total: float,
    cut: float,
    shapes: tuple[str, ...],
    source: str,
    core: bool = True,
    thresholds_sigma: tuple[float, ...] = (3.5, 4.0, 4.5, 5.0),
    thresholds: tuple[float, ...] | None = None,
    x_ref: float = 0.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Tail fits above every threshold, their checks, the envelope and the split closure.

    With ``core``, a Gaussian core is fitted to the histogram ``counts`` (the collector's
    edges) and the thresholds are mu + k sigma for k in ``thresholds_sigma``; the shapes'
    origin is the core's mean. Without it, ``thresholds`` and ``x_ref`` are given.

    Returns:
        ``{"scan": TailScan, "tail_checks", "tail_models", "closure_split", "deviance"}``
        (the JSON parts as plain data).
    """
    from bkg.fit import tailmodel as tm

    edges = collector.edges
    values = collector.values
    c = tm.fit_core(counts, edges, source=source) if core else None
    if c is not None:
        ths = tuple(c.edge(k) for k in thresholds_sigma)
        x_ref = c.mu
    else:
        ths = tuple(thresholds or ())
    if not ths or min(ths) < collector.x_keep:
        raise FitError(
            f"{source}: tail thresholds {ths} start below the kept values ({collector.x_keep:g})"
        )
    scan = tm.scan_tail(values, n_total=n_total, cut=cut, shapes=shapes, thresholds=ths,
                        x_ref=x_ref, core=c, source=source, seed=seed)  # fmt: skip
    split: list[dict[str, Any]] = []
    ref_fit = scan.nominal
    if ref_fit is None:  # the split still tests the preferred shape at the lowest threshold
        ref_fit = next((f for f in scan.fits if f.model), None)
    if ref_fit is not None:
        sel = collector.in_split
        below = np.sort(values[(values >= ref_fit.t0) & (values < cut)])[::-1]
        # a smaller sample: t1 where a third and a tenth of its tail events lie beyond
        ranks = [min(k, below.size // d) for k, d in zip(SPLIT_EVENTS_BEYOND, (3, 10), strict=True)]
        t1s = sorted({float(below[k - 1]) for k in ranks if k >= 3})
        t1s = [t for t in t1s if t > ref_fit.t0]
        try:
            c_split = tm.fit_core(collector.split_counts, edges, source=source) if core else None
            split = tm.closure_split(values, sel, fraction=SPLIT_FRACTION, t0=ref_fit.t0,
                                     t1_list=t1s, cut=cut, shape=ref_fit.shape, x_ref=x_ref,
                                     core_fit=c_split, source=source)  # fmt: skip
        except FitError as exc:
            log.warning("%s: split-sample closure failed: %s", source, exc)
    nominal = scan.nominal
    return {
        "scan": scan,
        "tail_checks": [] if nominal is None else nominal.tail_checks,
        "deviance": {} if nominal is None else nominal.deviance,
        "tail_models": scan.to_dict(),
        "closure_split": split,
        "values": values[values >= min(ths)],
    }


def tail_level(analysis: Mapping[str, Any]) -> tuple[float, float, float, float, float, bool]:
    """(level, stat_up, stat_down, syst_up, syst_down, supported) per event of the sample.

    ``supported`` is False when no tail model passes its checks; the level is then the
    largest of the fitted ones (a placeholder the closure step replaces by the direct
    estimate, and Table I does not report as an extrapolation).
    """
    scan = analysis["scan"]
    if scan.level is not None:
        return scan.level, scan.stat_up, scan.stat_down, scan.syst_up, scan.syst_down, True
    levels = [f.level for f in scan.fits if f.model and math.isfinite(f.level)]
    if not levels:
        raise FitError(f"no tail model of the sample could be fitted ({len(scan.fits)} tried)")
    return max(levels), 0.0, 0.0, 0.0, 0.0, False


def tail_json(analysis: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of fits/<source>.json the tail analysis writes (top level)."""
    return {k: analysis[k] for k in ("tail_checks", "deviance", "tail_models", "closure_split")}


def core_record(
    analysis: Mapping[str, Any],
    counts: np.ndarray,
    edges: np.ndarray,
    *,
    cut: float,
    variable: str,
    shas: Mapping[str, str],
) -> dict[str, Any]:
    """The ``fit`` dict of a tail-analysed source: the core, the nominal tail model, the data."""
    scan = analysis["scan"]
    core = scan.core
    nominal = scan.nominal
    return {
        "model": "gauss" if core is not None else "none",
        "parameters": {} if core is None else {"mu": core.mu, "sigma": core.sigma},
        "n_core": None if core is None else core.n,
        "tail_model": None if nominal is None else nominal.model,
        "tail_shape": None if nominal is None else nominal.shape,
        "variable": variable,
        "cut": cut,
        "side": "upper",
        "window": [float(edges[0]), float(edges[-1])],
        "last_observed": scan.x_last,
        "n_total": scan.n_total,
        "sample_sha256": dict(shas),
        "counts": np.asarray(counts).tolist(),
        "edges": np.asarray(edges).tolist(),
        # the far values (beyond the first threshold): the survival-function figure's data
        "tail_values": sorted(float(v) for v in analysis["values"]),
    }


def tail_inputs(level: float, up: float, down: float, s_up: float, s_down: float, *,
                scale: float = 1.0) -> dict[str, float]:  # fmt: skip
    """The tail part of a source's level (per event of its sample) and its scale to per MOT:
    what the closure replaces when Table I takes the direct estimate."""
    return {"tail_level": level, "tail_stat_up": up, "tail_stat_down": down,
            "tail_syst_up": s_up, "tail_syst_down": s_down, "tail_scale": scale}  # fmt: skip
