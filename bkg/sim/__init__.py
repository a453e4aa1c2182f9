"""Fast simulation of the NA64mu setup: writes the samples (ROOT ntuples) of the samples stage.

Public API: :func:`run_samples`, :func:`signal_efficiency`, :func:`trigger_efficiency`,
:func:`signal_fractions`, :func:`check_samples`.
"""

from bkg.sim.run import (
    SAMPLES,
    check_samples,
    generate_chunk,
    run_samples,
    signal_efficiency,
    signal_fractions,
    trigger_efficiency,
)

__all__ = [
    "SAMPLES", "check_samples", "generate_chunk", "run_samples", "signal_efficiency",
    "signal_fractions", "trigger_efficiency",
]  # fmt: skip
