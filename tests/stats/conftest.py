"""Fixtures of the statistics tests: a small Table I around the paper's levels."""

from __future__ import annotations

import json

import numpy as np
import pytest

# Levels near the paper's Table I (PRD 105, 052006): test data only, never used by the library.
TABLE1 = {
    "n_mot": 1.0e11,
    "sources": [
        {
            "name": "hadron_decay",
            "label": "Hadron in-flight decay",
            "level_per_mot": 1.1e-11,
            "stat_up": 1e-12,
            "stat_down": 1e-12,
            "syst_up": 3e-12,
            "syst_down": 2e-12,
            "upper_bound": False,
            "method": "fit",
        },
        {
            "name": "momentum_mismatch",
            "label": "Momentum mismatch",
            "level_per_mot": 1e-12,
            "stat_up": 2e-13,
            "stat_down": 2e-13,
            "syst_up": 5e-13,
            "syst_down": 5e-13,
            "upper_bound": True,
            "method": "fit",
        },
        {
            "name": "non_hermeticity",
            "label": "Detector non-hermeticity",
            "level_per_mot": 1e-12,
            "stat_up": 3e-13,
            "stat_down": 3e-13,
            "syst_up": 5e-13,
            "syst_down": 4e-13,
            "upper_bound": True,
            "method": "fit",
        },
        {
            "name": "punch_through",
            "label": "Hadron punch-through",
            "level_per_mot": 1e-12,
            "stat_up": 2e-13,
            "stat_down": 2e-13,
            "syst_up": 6e-13,
            "syst_down": 5e-13,
            "upper_bound": True,
            "method": "fit",
        },
        {
            "name": "dimuon",
            "label": "Dimuon production",
            "level_per_mot": 1e-13,
            "stat_up": 5e-14,
            "stat_down": 5e-14,
            "syst_up": 5e-14,
            "syst_down": 5e-14,
            "upper_bound": True,
            "method": "fit",
        },
    ],
}


@pytest.fixture
def table1_dict():
    return json.loads(json.dumps(TABLE1))


@pytest.fixture
def table1_path(tmp_path):
    p = tmp_path / "table1.json"
    p.write_text(json.dumps(TABLE1))
    return p


@pytest.fixture
def signal_grid():
    """Masses (GeV) and a smooth made-up yield per MOT at g'_ref (falls with mass)."""
    masses = np.geomspace(0.001, 1.0, 12)
    return masses, 1e-10 / (1.0 + (masses / 0.1) ** 2)


def one_source(b: float, *, syst: float = 0.0, stat: float = 0.0):
    """A Table1 with one background of b events at N_MOT = 1."""
    from bkg.stats.model import BackgroundSource, Table1

    return Table1(
        n_mot=1.0,
        sources=(
            BackgroundSource("bkg", "bkg", b, stat * b, stat * b, syst * b, syst * b, False, ""),
        ),
    )
