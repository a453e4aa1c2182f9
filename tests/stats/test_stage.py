"""The stage functions: limits tables, figures, presets, Table I reader."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bkg.errors import LimitError
from bkg.stats.model import read_table1
from bkg.stats.stage import run_limits


def test_read_table1(table1_path, table1_dict):
    t = read_table1(table1_path)
    assert len(t.sources) == 5
    assert t.total_per_mot() == pytest.approx(1.41e-11, abs=0.0)
    del table1_dict["sources"][0]["syst_up"]
    with pytest.raises(LimitError, match="syst_up"):
        read_table1(table1_dict)


def test_run_limits_writes_tables_and_figures(default_config, table1_path, signal_grid, tmp_path):
    masses, y = signal_grid
    cfg = default_config
    res = run_limits(
        cfg,
        table1_path=table1_path,
        masses_gev=masses,
        signal_per_mot_ref=y,
        out_dir=tmp_path,
        calculator="asymptotics",
    )
    for name in (
        "limits.csv",
        "limits.json",
        "sensitivity.png",
        "sensitivity.pdf",
        "reach_vs_mot.png",
    ):
        assert (tmp_path / name).exists(), name
    # not a figure of the paper: PNG only unless --pdf all
    assert not (tmp_path / "reach_vs_mot.pdf").exists()
    data = json.loads((tmp_path / "limits.json").read_text())
    assert len(data["masses_gev"]) == len(masses)
    # mu_up scales as 1/s and g' = g'_ref sqrt(mu)
    np.testing.assert_allclose(
        res.mu_expected[:, 2] * res.signal_events_ref, res.event_limit.expected[2]
    )
    np.testing.assert_allclose(res.g_expected, cfg.signal.g_prime_ref * np.sqrt(res.mu_expected))
    assert np.all(np.diff(res.g_expected, axis=1) > 0)


@pytest.mark.slow
def test_preset_na64mu_2022(default_config, table1_path, signal_grid, tmp_path):
    # PRL 132, 211803 (2024): 1.98e10 MOT, 0 observed events
    masses, y = signal_grid
    cfg = dataclasses.replace(
        default_config, statistics=dataclasses.replace(default_config.statistics, n_toys=4000)
    )
    res = run_limits(
        cfg,
        table1_path=table1_path,
        masses_gev=masses,
        signal_per_mot_ref=y,
        out_dir=tmp_path,
        preset="na64mu-2022",
        figures=False,
    )
    assert res.n_mot == 1.98e10
    assert res.observed_events == 0.0
    assert res.event_limit.calculator == "toys"  # b = 0.28 < toys_below_background
    # near the exact Poisson 2.303 events; the 10 % signal-efficiency normsys and toy noise move it (10 %)
    assert res.event_limit.observed == pytest.approx(2.303, rel=0.10)
    with pytest.raises(LimitError):
        run_limits(
            default_config,
            table1_path=table1_path,
            masses_gev=masses,
            signal_per_mot_ref=y,
            out_dir=tmp_path,
            preset="nope",
        )
