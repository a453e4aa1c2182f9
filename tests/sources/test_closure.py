"""The level Table I uses: extrapolated, direct, or the direct 90% CL bound (bkg.sources.closure)."""

from __future__ import annotations

import pytest

from bkg.sim.biasing import DirectEstimate
from bkg.sources.base import SourceEstimate
from bkg.sources.closure import choose_level, closure_table_markdown
from bkg.sources.table import table_data


def _estimate(tail: float, *, counted: float = 0.0, n_total: float = 1e7) -> SourceEstimate:
    """A source whose level is a fitted tail (per MOT) plus a counted part."""
    scan = {"level": tail, "stat_up": 0.3 * tail, "stat_down": 0.3 * tail, "syst_up": 0.5 * tail,
            "syst_down": 0.2 * tail, "n_total": n_total, "models": []}  # fmt: skip
    inputs = {"tail_level": tail, "tail_stat_up": 0.3 * tail, "tail_stat_down": 0.3 * tail,
              "tail_syst_up": 0.5 * tail, "tail_syst_down": 0.2 * tail, "tail_scale": 1.0}  # fmt: skip
    return SourceEstimate("momentum_mismatch", "Momentum mismatch", tail + counted, 0.3 * tail,
                          0.3 * tail, 0.5 * tail, 0.2 * tail, False, "tail fit", inputs, {},
                          {"tail_models": scan})  # fmt: skip


def _direct(value: float, stat: float, n_beyond: int = 100) -> DirectEstimate:
    return DirectEstimate("momentum_mismatch", 1.0, value, stat, 50.0, 10**6, n_beyond,
                          None if n_beyond else 2.3e-20, [])  # fmt: skip


def test_an_extrapolation_that_closes_and_is_near_the_data_stays():
    # 1e-8 per MOT on 1e7 MOT: 0.1 event beyond the cut, 1 decade below the last event;
    # direct 1.1e-8 +- 0.1e-8: pull -0.3
    est, closure, choice = choose_level(_estimate(1e-8), _direct(1.1e-8, 1e-9))
    assert choice["method"] == "extrapolated" and est.level_per_mot == 1e-8
    # the direct is above: the extrapolation's upward uncertainty, hypot(0.3, 0.5) 1e-8, counts
    sig = ((0.3e-8**2 + 0.5e-8**2) + 1e-9**2) ** 0.5
    assert closure["pull"] == pytest.approx((1e-8 - 1.1e-8) / sig)
    assert abs(closure["pull"]) < 1 and closure["ratio"] == pytest.approx(1 / 1.1)


def test_a_far_extrapolation_is_replaced_by_the_direct_estimate():
    # 1e-17 is 10 decades below the last observed event of 1e7: the direct one is used,
    # the counted part (6.5e-13) stays, the tail's stat and syst are replaced by the direct's
    est, _, choice = choose_level(_estimate(1e-17, counted=6.5e-13), _direct(4e-18, 1e-18))
    assert choice["method"] == "direct" and "decades below" in choice["reason"]
    assert est.level_per_mot == pytest.approx(6.5e-13 + 4e-18, rel=1e-12)
    assert est.syst_up == pytest.approx(0.0, abs=1e-30)


def test_disagreement_beyond_two_sigma_uses_the_direct_estimate():
    # extrapolated 1e-8, downward uncertainty hypot(0.3, 0.2) 1e-8 = 0.36e-8, vs a direct
    # 2e-9 +- 1e-10: (1e-8 - 2e-9) / 0.36e-8 = 2.2 sigma
    est, closure, choice = choose_level(_estimate(1e-8), _direct(2e-9, 1e-10))
    assert closure["pull"] > 2
    assert choice["method"] == "direct" and est.level_per_mot == pytest.approx(2e-9)


def test_no_direct_event_gives_its_90cl_bound_and_table_says_so(default_config):
    est, _, choice = choose_level(_estimate(1e-17), _direct(0.0, 0.0, n_beyond=0))
    assert choice["method"] == "direct (90% CL bound)" and est.upper_bound
    assert est.level_per_mot == pytest.approx(2.3e-20)
    final = SourceEstimate(**{**est.__dict__, "tails": {**est.tails, "level_choice": choice,
                                                        "closure": {"cut": 1.0, "extrapolated": 1e-17,
                                                                    "direct": 0.0, "direct_stat": 0.0,
                                                                    "effective_events": 0.0,
                                                                    "ratio": None, "pull": None}}})  # fmt: skip
    row = table_data({"momentum_mismatch": final}, default_config)["sources"][0]
    assert row["level_method"] == "direct (90% CL bound)" and row["agreement"].startswith(
        "no direct event"
    )
    assert "direct (90% CL bound)" in closure_table_markdown({"momentum_mismatch": final})
