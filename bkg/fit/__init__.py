"""zfit tail models and the extrapolation of a fitted tail into the signal region."""

import os

# TensorFlow's C++ start-up notices (oneDNN, CUDA drivers, CPU features) are not for the
# user of `bkg fit`; its warnings and errors still show. A value the user set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
