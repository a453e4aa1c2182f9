"""zfit tail models and the extrapolation of a fitted tail into the signal region."""

from bkg.fit.tailfit import (
    Extrapolation,
    TailFit,
    extrapolate,
    fit_tail,
    fit_tail_iminuit,
    histogram,
    upper_bound_90,
)

__all__ = [
    "Extrapolation",
    "TailFit",
    "extrapolate",
    "fit_tail",
    "fit_tail_iminuit",
    "histogram",
    "upper_bound_90",
]
