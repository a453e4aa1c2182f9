"""zfit tail models and the extrapolation of a fitted tail into the signal region."""

import os

# zfit imports TensorFlow with its C++ start-up lines (oneDNN, CUDA, CPU features) sent to
# /dev/null, and says so in a warning unless this is set; a user's own setting wins. For it
# to work, every module here imports zfit before TensorFlow.
os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")

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
