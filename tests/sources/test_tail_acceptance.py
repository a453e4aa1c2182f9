"""Issue 22's acceptance on the default configuration and two other seeds (slow: 3 x 1e7 MOT).

For each seed: the beam and leading-hadron samples, the fits of the three extrapolated
sources and their closure. Every tail check and split-sample closure has p >= 0.01;
the closure agrees within 2 sigma or Table I uses the direct estimate; no level rests on
an extrapolation more than 3 decades below the last observed event.
"""

from __future__ import annotations

import json
import math

import pytest

from bkg.config import from_dict

SOURCES = ("momentum_mismatch", "hermeticity", "punch_through")


@pytest.mark.slow
@pytest.mark.acceptance
@pytest.mark.parametrize("seed", [None, 1, 2])
def test_tail_checks_split_and_closure_on_three_seeds(seed, tmp_path):
    from bkg.sim.run import run_samples
    from bkg.sources import run_fits
    from bkg.sources.closure import run_closure

    cfg = from_dict({} if seed is None else {"seed": seed})
    samples, fits = tmp_path / "samples", tmp_path / "fits"
    run_samples(cfg, out_dir=samples, only=["beam", "leading_hadrons"], workers=1)
    run_fits(cfg, samples_dir=samples, out_dir=fits, only=list(SOURCES), figures=False)
    run_closure(cfg, fits)
    for name in SOURCES:
        data = json.loads((fits / f"{name}.json").read_text())
        checks = data["tail_checks"]
        assert len(checks) >= 4, name
        assert all(c["p_value"] >= 0.01 for c in checks), (name, checks)
        assert len(data["closure_split"]) >= 2, name
        assert all(c["p_value"] >= 0.01 for c in data["closure_split"]), (
            name,
            data["closure_split"],
        )
        closure, choice = data["closure"], data["level_choice"]
        pull = closure["pull"]
        assert choice["method"].startswith("direct") or (pull is not None and abs(pull) <= 2), name
        ext = closure["extrapolated"]
        last = 1.0 / data["tail_models"]["n_total"]
        if choice["method"] == "extrapolated":
            assert math.log10(last / ext) <= 3.0, name
