"""Statistics stage: pyhf model, CLs limits (asymptotic and vectorised toys), exports, figures.

Entry points: :func:`bkg.stats.stage.run_limits`, :func:`bkg.stats.stage.run_workspace`.
"""

from bkg.stats.stage import LimitResults, run_limits, run_workspace

__all__ = ["LimitResults", "run_limits", "run_workspace"]
