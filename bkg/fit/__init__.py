"""zfit tail models and the extrapolation of a fitted tail into the signal region."""

import os

# zfit imports TensorFlow with its C++ start-up lines (oneDNN, CUDA, CPU features) sent to
# /dev/null, and says so in a warning unless this is set; a user's own setting wins. For it
# to work, every module here imports zfit before TensorFlow.
os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
# TensorFlow's import loads the optimizers of Keras 3 (~0.4-0.8 s of CPU) unless told to
# use the legacy Keras (tf_keras), which TensorFlow Probability, under zfit, imports in any
# case; nothing here uses Keras. A user's own setting wins (docs/speed.md).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

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
