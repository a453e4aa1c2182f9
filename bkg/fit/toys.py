"""Binned toys drawn from a tail model with a known tail probability (closure tests)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bkg.fit import shapes

__all__ = ["binned_toy", "tail_probability"]


def tail_probability(
    cut: float, params: Mapping[str, float], *, model: str, side: str = "lower"
) -> float:
    """Normalised probability beyond ``cut`` of the full (untruncated) model."""
    total = shapes.lower_tail(params["mu"], params, model=model) + shapes.upper_tail(
        params["mu"], params, model=model
    )
    f = shapes.lower_tail if side == "lower" else shapes.upper_tail
    return f(cut, params, model=model) / total


def binned_toy(
    edges: np.ndarray,
    params: Mapping[str, float],
    *,
    n: int,
    model: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Multinomial counts of n events of the model in ``edges`` (and the events outside).

    Returns:
        (counts in the bins (float array), number of events outside the window).
    """
    total = shapes.lower_tail(params["mu"], params, model=model) + shapes.upper_tail(
        params["mu"], params, model=model
    )
    cum = np.array([shapes.lower_tail(float(e), params, model=model) for e in edges]) / total
    probs = np.diff(cum)
    outside = max(1.0 - probs.sum(), 0.0)
    draw = rng.multinomial(n, [*probs, outside])
    return draw[:-1].astype(float), int(draw[-1])
