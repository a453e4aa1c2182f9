"""Fixtures shared by the physics tests: one cross-section table per session."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ww_table():
    """WW table on lead covering the NA64mu beam (70-200 GeV) and 1 MeV - 3 GeV (~0.5 s)."""
    from bkg.physics.crosssection import CrossSectionTable

    return CrossSectionTable.build(
        energies_gev=np.geomspace(70.0, 200.0, 16),
        masses_gev=np.geomspace(1e-3, 3.0, 60),
        method="ww",
    )
