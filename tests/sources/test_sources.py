"""The five sources on seeded synthetic samples, the registry, fits/*.json and Table I."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bkg.errors import BkgError, ConfigError, SampleError
from bkg.sources import REGISTRY, Source, read_estimates, register, run_fits
from bkg.sources.table import write_table

NAMES = ["momentum_mismatch", "hermeticity", "hadron_decay", "punch_through", "dimuon"]


@pytest.fixture(scope="module")
def fitted(synthetic_samples, default_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("fits")
    return out, run_fits(default_config, samples_dir=synthetic_samples, out_dir=out)


def test_registry_has_the_five_sources():
    assert list(REGISTRY) == NAMES


def test_every_source_writes_json_and_figures(fitted):
    out, est = fitted
    assert list(est) == NAMES
    for name, e in est.items():
        assert (out / f"{name}.json").exists()
        # diagnostics, not figures of the paper: PNG only unless --pdf all (bkg.plotting)
        assert (out / f"{name}.png").exists() and not (out / f"{name}.pdf").exists()
        assert math.isfinite(e.level_per_mot) and e.level_per_mot > 0
        for u in (e.stat_up, e.stat_down, e.syst_up, e.syst_down):
            assert u >= 0 and math.isfinite(u)
        data = json.loads((out / f"{name}.json").read_text())
        assert data["fit"]["sample_sha256"]


def test_hermeticity_json_gives_the_level_by_escape_path_and_the_closure(fitted, default_config):
    # the row is the sum over the escape paths of the forced simulation (computed on the
    # default configuration, whatever the synthetic beam sample); the closure's direct
    # value is region D from the same simulation; relative tolerance 1e-12 (float sums)
    from bkg.sim import escape

    out, est = fitted
    data = json.loads((out / "hermeticity.json").read_text())
    assert set(data["by_path"]) == set(escape.PATHS)
    total = sum(v["level"] for v in data["by_path"].values())
    assert data["level_per_mot"] == pytest.approx(total, rel=1e-12)
    assert est["hermeticity"].level_per_mot == pytest.approx(total, rel=1e-12)
    direct = escape.closure_direct(default_config)
    for key in ("direct", "direct_stat", "effective_events"):
        assert data["closure"][key] == pytest.approx(direct[key], rel=1e-12)
    assert data["closure"]["direct"] > 0 and data["closure"]["effective_events"] > 10
    assert {"extrapolated", "ratio", "pull"} <= set(data["closure"])


def test_fitted_sources_record_core_tail_models_and_checks(fitted):
    out, _ = fitted
    for name in ("momentum_mismatch", "hermeticity", "punch_through"):
        data = json.loads((out / f"{name}.json").read_text())
        assert len(data["fit"]["window"]) == 2
        models = data["tail_models"]["models"]
        assert models and all(
            np.asarray(m["covariance"]).shape == (2, 2) for m in models if m["model"]
        )
        # at least 4 thresholds from the nominal's t0 to the last observed event
        checks = data["tail_checks"]
        assert len(checks) >= 4
        assert checks[-1]["threshold"] == pytest.approx(data["tail_models"]["last_observed"])
        assert {"threshold", "observed", "predicted", "p_value"} <= set(checks[0])
        assert data["deviance"]["toys"] > 0
        assert len(data["closure_split"]) >= 2
        assert all(
            0.0 <= c["p_value"] <= 1.0 and c["lr_statistic"] >= 0 for c in data["closure_split"]
        )
        # the survival-function figure draws the sample: its far values are in the record
        # (the punch-through's were missing: its figure showed the fits alone)
        values = data["fit"]["tail_values"]
        assert len(values) >= len(checks) and values == sorted(values)


def test_momentum_mismatch_fit_recovers_the_curvature_resolution(fitted):
    # the synthetic beam has a Gaussian 3% error of 1/p_out (plus a 1% Laplace tail of
    # scale 0.04): the curvature residual p_true/p_rec - 1 has that core, so both fitted
    # widths must be 0.03 and the fit good. Tolerance 3% of the width: the statistical
    # error on 2e5 muons is 0.2%, the rest allows for the Laplace tail pulling the core.
    out, _ = fitted
    fit = json.loads((out / "momentum_mismatch.json").read_text())["fit"]
    assert fit["variable"] == "p_out_true/p_out_rec - 1" and fit["side"] == "upper"
    assert fit["model"] == "gauss"
    assert fit["parameters"]["sigma"] == pytest.approx(0.03, rel=0.03)
    assert fit["cut"] == pytest.approx(160.0 / 80.0 - 1.0)


def test_punch_through_recovers_the_attenuation_length(fitted):
    # the synthetic visibility depth of conftest falls as exp(-t / PT_LAMBDA_H) beyond the
    # ECAL: the fitted slope must recover 1 / PT_LAMBDA_H, and P(t > 2 modules) must agree
    # with its closed form E_u[exp(-(15 - PT_OFFSET + u) / lambda_h)], u ~ U(0, PT_ECAL_LAMBDA).
    # Tolerance: 4 sigma of the fitted slope (about 2700 events in the window: 2% each) and
    # 3 sigma of the extrapolated level's own statistical uncertainty.
    from tests.sources.conftest import PT_ECAL_LAMBDA, PT_LAMBDA_H, PT_OFFSET

    out, est = fitted
    data = json.loads((out / "punch_through.json").read_text())
    lam = data["fit"]["parameters"]["lam"]
    sigma_lam = math.sqrt(data["fit"]["covariance"][0][0])
    assert data["fit"]["model"] == "exponential"
    assert abs(lam + 1 / PT_LAMBDA_H) < 4 * sigma_lam
    cut = 2 * 7.5
    truth = (
        math.exp(-(cut - PT_OFFSET) / PT_LAMBDA_H)
        * (PT_LAMBDA_H / PT_ECAL_LAMBDA)
        * (1 - math.exp(-PT_ECAL_LAMBDA / PT_LAMBDA_H))
    )
    pt2 = data["inputs"]["pt_probability"]["2"]
    e = est["punch_through"]
    rel = e.stat_up / e.level_per_mot
    assert pt2 == pytest.approx(truth, rel=3 * rel)
    # the attenuation is monotonic: 1 >> 2 >> 4 modules
    pt = data["inputs"]["pt_probability"]
    assert pt["1"] > 1e2 * pt["2"] > 1e4 * pt["4"]


def test_hadron_decay_counts_match_a_direct_count(fitted, synthetic_samples, default_config):
    # expected: sum over species of norm x passing/generated, counted here independently
    from bkg.ntuple import iterate
    from bkg.selection import BRANCHES, in_signal_box, passes_selection

    _, est = fitted
    norms = {-211: 1e-6, -321: 3e-8, 130: 1.5e-8}
    total = 0.0
    for ev in iterate(synthetic_samples / "hadrons.root", "hadrons", [*BRANCHES, "pdg"]):
        sel = passes_selection(ev, default_config) & in_signal_box(ev, default_config)
        for pdg, norm in norms.items():
            mine = ev["pdg"] == pdg
            total += norm * (mine & sel).sum() / mine.sum()
    assert est["hadron_decay"].level_per_mot == pytest.approx(total, rel=1e-12, abs=0.0)
    # the figure's histograms hold every passing K- decay to a muon (all decay points lie
    # in the 36 m region, all synthetic muon energies below 1.1 E0)
    hist = est["hadron_decay"].fit["k_decays"]
    k_pass = est["hadron_decay"].inputs["species"]["K-"]["passing"]
    assert sum(hist["z_pass"]) == sum(hist["e_pass"]) == k_pass
    assert sum(hist["z_all"]) >= sum(hist["z_pass"])


def test_read_estimates_round_trip(fitted):
    out, est = fitted
    back = read_estimates(out)
    assert back == est


def test_table_json_format(fitted, default_config, tmp_path):
    _, est = fitted
    data = write_table(est, default_config, out_dir=tmp_path)
    for ext in ("md", "tex", "csv", "json"):
        assert (tmp_path / f"table1.{ext}").exists()
    on_disk = json.loads((tmp_path / "table1.json").read_text())
    assert set(on_disk) == {"n_mot", "sources", "total", "background_free_n_mot"}
    keys = {
        "name",
        "label",
        "level_per_mot",
        "stat_up",
        "stat_down",
        "syst_up",
        "syst_down",
        "upper_bound",
        "method",
        "expected_events",
    }
    for row in on_disk["sources"]:
        assert keys <= set(row)
    total = sum(r["level_per_mot"] for r in data["sources"])
    assert on_disk["total"]["level_per_mot"] == pytest.approx(total, abs=0.0)
    # expected: N_MOT at which n_mot x total = 0.1 and 1 events
    assert on_disk["background_free_n_mot"]["0.1"] == pytest.approx(0.1 / total)
    assert on_disk["background_free_n_mot"]["1"] == pytest.approx(1.0 / total)
    assert "\\toprule" in (tmp_path / "table1.tex").read_text()


def test_table_marks_a_total_that_contains_a_bound(default_config, tmp_path):
    # one measured row and one 90% CL bound: the total is their sum and itself a bound,
    # which every format says; N_MOT background free is then a lower limit
    from bkg.sources.base import SourceEstimate

    est = {
        "a": SourceEstimate("a", "Measured", 3.2e-11, 2.5e-12, 1.3e-12, 0.0, 0.0, False, "count"),
        "b": SourceEstimate("b", "Bounded", 2.3e-11, 0.0, 0.0, 0.0, 0.0, True, "no event"),
    }
    data = write_table(est, default_config, out_dir=tmp_path)
    assert data["total"]["upper_bound"]
    assert data["total"]["level_per_mot"] == pytest.approx(5.5e-11, rel=1e-12, abs=0.0)
    md = (tmp_path / "table1.md").read_text()
    assert "| Total | ≤ 5.50e-11" in md
    assert "| Bounded | < 2.3e-11 | < 2.3 |" in md
    assert "at least up to N_MOT = 1.82e+09" in md
    tex = (tmp_path / "table1.tex").read_text()
    assert r"Total & $\le (5.50e-11" in tex
    assert "so the total is a bound" in data["total"]["method"]


def test_only_and_unknown_source(synthetic_samples, default_config, tmp_path):
    est = run_fits(
        default_config,
        samples_dir=synthetic_samples,
        out_dir=tmp_path,
        only=["dimuon"],
        figures=False,
    )
    assert list(est) == ["dimuon"]
    with pytest.raises(ConfigError, match="unknown source"):
        run_fits(default_config, samples_dir=synthetic_samples, out_dir=tmp_path, only=["x"])


def test_a_new_source_is_one_registration(default_config, tmp_path, synthetic_samples):
    from bkg.sources.base import SourceEstimate

    class Dummy(Source):
        name = "dummy_test"
        label = "Dummy"

        def estimate(self, cfg, samples_dir, *, manifest, unbinned=False):
            return SourceEstimate(self.name, self.label, 1e-13, 0, 0, 0, 0, False, "m")

    register(Dummy)
    try:
        est = run_fits(
            default_config,
            samples_dir=synthetic_samples,
            out_dir=tmp_path,
            only=["dummy_test"],
            figures=False,
        )
        assert est["dummy_test"].level_per_mot == 1e-13
    finally:
        REGISTRY.pop("dummy_test")


@pytest.mark.bad_input
def test_a_failing_fit_leaves_the_folder_as_it_was(default_config, tmp_path, synthetic_samples):
    # dimuon's estimate is written only when every chosen source has one: the fit that
    # fails after it leaves no new dimuon.json beside the old files
    from bkg.errors import FitError

    class Failing(Source):
        name = "failing_test"
        label = "Failing"

        def estimate(self, cfg, samples_dir, *, manifest, unbinned=False):
            raise FitError("failing_test: does not converge")

    (tmp_path / "dimuon.json").write_text("old")
    register(Failing)
    try:
        with pytest.raises(FitError):
            run_fits(
                default_config,
                samples_dir=synthetic_samples,
                out_dir=tmp_path,
                only=["dimuon", "failing_test"],
                figures=False,
            )
    finally:
        REGISTRY.pop("failing_test")
    # the folder's lock file (bkg.locks) aside, nothing new
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".bkg.lock") == ["dimuon.json"]
    assert (tmp_path / "dimuon.json").read_text() == "old"


@pytest.mark.bad_input
def test_missing_manifest_is_a_sample_error(default_config, tmp_path):
    with pytest.raises(SampleError, match="MANIFEST"):
        run_fits(default_config, samples_dir=tmp_path, out_dir=tmp_path / "f")


@pytest.mark.bad_input
def test_hashes_of_the_files_the_sources_read_are_checked(
    synthetic_samples, default_config, tmp_path
):
    # a file whose sha256 differs from the MANIFEST stops the sources that read it (one
    # line naming it); the others do not read it and run
    import shutil

    folder = tmp_path / "samples"
    shutil.copytree(synthetic_samples, folder)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    for entry in manifest["files"]:
        if entry["sample"] == "hadrons":
            entry["sha256"] = "0" * 64
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    est = run_fits(
        default_config, samples_dir=folder, out_dir=tmp_path / "f", only=["dimuon"], figures=False
    )
    assert list(est) == ["dimuon"]
    with pytest.raises(SampleError, match=r"hadrons\.root: sha256 .* does not match") as info:
        run_fits(default_config, samples_dir=folder, out_dir=tmp_path / "f", figures=False)
    assert "\n" not in str(info.value)


@pytest.mark.bad_input
def test_read_estimates_empty_folder(tmp_path):
    with pytest.raises(SampleError, match="run `bkg fit`"):
        read_estimates(tmp_path)


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e30, max_value=1e30),
    st.floats(0, 200),
)


@pytest.mark.bad_input
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(floats, min_size=0, max_size=60),
    seed=st.integers(0, 2**16),
    source=st.sampled_from(NAMES),
)
def test_estimators_on_random_arrays(values, seed, source, default_config, tmp_path_factory):
    """Random (NaN, empty, huge) ntuples: the project's own errors or finite results."""
    from bkg.ntuple import SCHEMAS, NtupleWriter, sha256_file

    kind = REGISTRY[source].samples[0]
    folder = tmp_path_factory.mktemp("rand")
    rng = np.random.default_rng(seed)
    n = len(values)
    with np.errstate(over="ignore"):
        arr = np.asarray(values, dtype=np.float64).astype(np.float32)
    ev = {}
    for name, b in SCHEMAS[kind].items():
        if b.dtype.startswith("float"):
            ev[name] = rng.permutation(arr) if n else arr
        elif b.dtype == "bool":
            ev[name] = rng.random(n) < 0.5
        else:
            ev[name] = rng.integers(0, 3, n)
    if kind == "hadrons":
        ev["pdg"] = rng.choice([-211, -321, 130], n)
    path = folder / f"{kind}.root"
    with NtupleWriter(path, kind) as out:
        out.extend(ev)
    manifest = {
        "files": [
            {
                "file": path.name,
                "sample": kind,
                "events": n,
                "seed": seed,
                "config_hash": "x",
                "sha256": sha256_file(path),
                "norm_per_mot": 1e-6,
            }
        ]
    }
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    for nonfinite in ("reject", "drop"):
        import dataclasses

        cfg = dataclasses.replace(
            default_config, samples=dataclasses.replace(default_config.samples, nonfinite=nonfinite)
        )
        try:
            est = run_fits(
                cfg, samples_dir=folder, out_dir=folder / "fits", only=[source], figures=False
            )
        except BkgError:
            continue
        e = est[source]
        assert all(
            math.isfinite(v)
            for v in (e.level_per_mot, e.stat_up, e.stat_down, e.syst_up, e.syst_down)
        )


_ = Path


def test_beam_sample_read_once_for_the_streaming_sources(
    fitted, synthetic_samples, default_config, tmp_path, monkeypatch
):
    # expected: `bkg fit` reads each sample kind once (momentum_mismatch and hermeticity
    # share the beam pass) and gives exactly the estimates of the sources run alone; here
    # with one worker, so that every read is in this process (with more, the side process
    # of bkg.sources.side reads some): the same estimates as `fitted`'s, made with all cores
    import bkg.sources.base as base
    from bkg.config import load_config

    default_config = load_config(run={"workers": 1})
    _, together = fitted
    reads: list[str] = []
    real = base.iterate

    def counting(paths, sample, branches, **kwargs):
        reads.append(sample)
        return real(paths, sample, branches, **kwargs)

    monkeypatch.setattr(base, "iterate", counting)
    again = run_fits(default_config, samples_dir=synthetic_samples, out_dir=tmp_path)
    assert sorted(reads) == ["beam", "dimuons", "hadrons", "leading_hadrons"]
    assert again == together
    for name in ("momentum_mismatch", "hermeticity"):
        reads.clear()
        alone = run_fits(
            default_config,
            samples_dir=synthetic_samples,
            out_dir=tmp_path / name,
            only=[name, name],
            figures=False,
        )
        assert reads == ["beam"]
        assert alone[name].to_dict() == together[name].to_dict()


def test_failed_alternative_shape_falls_back_to_a_range_variation(monkeypatch):
    # A double-CB whose power law runs to its limit cannot be the systematic; then the
    # nominal shape refitted on half the tail reach is. Gaussian core + exp tail, 1e6 events.
    from bkg.sources import tailsource

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.0, 0.03, 990_000), -0.09 - rng.exponential(0.03, 10_000)])
    edges = np.linspace(-0.3, 0.3, 301)
    counts = np.histogram(x, edges)[0].astype(float)
    real_fit = tailsource.fit_tail

    def no_double_cb(*args, **kwargs):
        if kwargs.get("model") == "double_cb":
            raise tailsource.FitError("double_cb: parameters at limit")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(tailsource, "fit_tail", no_double_cb)
    nominal, alt, ext = tailsource.fit_and_extrapolate(
        counts, edges, n_total=x.size, cut=-0.5, side="lower", source="toy"
    )
    assert alt is not None and alt.model == nominal.model
    # the tail side of the window is cut to half its reach from the fitted mean (~0)
    assert alt.window[0] == pytest.approx(-0.15, abs=0.01)
    assert alt.window[1] == nominal.window[1]
    assert ext.alternative is not None and ext.alternative > 0


def test_knock_on_candidates_and_their_weight(default_config):
    # hand-made events: which knock-on events are candidates (the fit that takes the
    # electron's hit gives <= 80 GeV, single-track once the muon's hit beside it is lost)
    from bkg.ntuple import SCHEMAS
    from bkg.selection import TRACKERS
    from bkg.sources.momentum_mismatch import _knock_on, _Sums

    ev = {k: np.zeros(7, dtype=b.dtype) for k, b in SCHEMAS["beam"].items()}
    for name in TRACKERS:
        ev[name][:] = 1
    ev["p_in_rec"][:] = ev["p_out_rec"][:] = 160.0
    ev["p_out_true"][:] = 150.0
    ev["hits_mm5"][0], ev["p_out_rec_ko"][0] = 2, 60.0  # candidate, electron beside MM5's muon hit
    ev["p_out_rec_ko"][1] = ev["p_out_rec"][1] = 70.0  # candidate, the muon's hit already lost
    ev["hits_mm2"][2], ev["p_out_rec_ko"][2] = 2, 90.0  # above p_out_max
    ev["hits_mm2"][3] = ev["hits_mm6"][3] = 2  # two stations with two hits
    ev["p_out_rec_ko"][3] = 50.0
    ev["hits_mm3"][4], ev["hits_mm1"][4], ev["p_out_rec_ko"][4] = 2, 0, 50.0  # a hit lost elsewhere
    ev["p_out_true"][5], ev["hits_mm3"][5], ev["p_out_rec_ko"][5] = 70.0, 2, 40.0  # not kept
    ev["s0"][:] = ev["s1"][:] = True
    ev["s4"][0] = ev["v1"][0] = True  # the electron fired S4, the undeflected muon V1
    ev["s4"][3] = True  # not a candidate
    ev["s4"][1], ev["s0"][1] = True, False  # a halo muon: outside the beam counters
    sums = _Sums(default_config, unbinned=False)
    sums.add(ev)
    assert sums.n_cand == 2
    assert (sums.n_cand_s4, sums.n_cand_s4_no_v1) == (1, 0)
    # P(rest) at the candidates' momenta: bins of 10 GeV from 80 GeV, hand-filled
    from bkg.sources.momentum_mismatch import _rest_at_candidate_momenta

    assert sums.p_cand.sum() == 2  # both candidates at p_out_true = 150 GeV
    sums.p_kept[:], sums.p_rest[:], sums.p_cand[:] = 10.0, 0.0, 0.0
    sums.p_rest[0], sums.p_rest[7], sums.p_cand[0], sums.p_cand[7] = 1.0, 4.0, 3.0, 1.0
    assert _rest_at_candidate_momenta(sums) == pytest.approx((0.1 * 3 + 0.4 * 1) / 4)
    # its excess over the overall P(rest) is the upward systematic of the factorisation
    from bkg.sources.momentum_mismatch import factorisation_excess

    assert factorisation_excess(0.175, 1, 10) == pytest.approx(0.75)
    assert factorisation_excess(0.05, 1, 10) == 0.0  # smaller: no systematic
    assert factorisation_excess(None, 1, 10) == factorisation_excess(0.2, 0, 10) == 0.0
    assert sums.cand_by_station.tolist() == [1, 0, 0, 0, 0, 1, 0]
    assert sums.n_poor == 1  # the cross-check: mismeasured with an electron hit present
    # level = candidates / MOT x eps x P(rest): 2/10 x 3/4 x 0.02, Poisson errors of the counts
    level, up, down, bound = _knock_on(2, 3, 4, n_mot=10, factor=0.02)
    assert level == pytest.approx(0.2 * 0.75 * 0.02, rel=1e-12)
    assert not bound and up > 0 and 0 < down <= level
    # no candidate: a 90% CL bound, 2.30 / n_mot x ...
    level0, _, _, bound0 = _knock_on(0, 3, 4, n_mot=10, factor=0.02)
    assert bound0 and level0 == pytest.approx(2.3026 / 10 * 0.75 * 0.02, rel=1e-3)
    # neither factor has an event: each at sqrt(0.9) CL, so that the product covers 90%.
    # By hand: 1 - sqrt(0.9) = 0.05132, -ln of it = 2.9698 per factor
    level00, _, _, bound00 = _knock_on(0, 0, 4, n_mot=10, factor=0.02)
    assert bound00 and level00 == pytest.approx(2.9698**2 / 10 / 4 * 0.02, rel=1e-4)


def test_knock_on_two_station_alternative():
    # the alternative electron path: stations 2 and 5 (1-based) have a successor on their
    # side of the magnet (3 and 6), so their candidates need one more eps; 3 and 6 do not
    # (magnet, end), nor do events whose muon hit was already lost (index 0).
    from bkg.sources.momentum_mismatch import two_station_fraction

    by_station = [3, 0, 24, 22, 0, 21, 15]  # the default sample's counts
    expected = (3 + 22 + 15 + 0.02 * (24 + 21)) / 85
    assert two_station_fraction(by_station, 0.02) == pytest.approx(expected, rel=1e-12)
    assert two_station_fraction(by_station, 1.0) == pytest.approx(1.0)
    assert two_station_fraction([0] * 7, 0.02) == 1.0
    # with four stations the magnet sits between 2 and 3: only 1 and 3 have a successor
    assert two_station_fraction([0, 1, 1, 1, 1], 0.5) == pytest.approx((0.5 + 1 + 0.5 + 1) / 4)


def test_an_alternative_tail_that_does_not_fall_off_is_replaced(caplog):
    # A punch-through-like depth spectrum whose far half (few events) rises: the
    # exponential fitted there alone has no finite tail, which once wrote inf into the
    # systematic (and a JSON writer error). The fit-range variation takes its place.
    from bkg.sources import tailsource

    edges = np.linspace(2.0, 13.0, 301)
    centres = 0.5 * (edges[1:] + edges[:-1])
    rng = np.random.default_rng(1)
    counts = rng.poisson(2000 * np.exp(-(centres - 2) / 1.2) * np.diff(edges) / 1.2).astype(float)
    far = centres >= 6.0
    counts[far] = rng.poisson(np.linspace(0.02, 0.6, far.sum()))
    with caplog.at_level("WARNING"):
        _nominal, alt, ext = tailsource.fit_and_extrapolate(
            counts, edges, n_total=counts.sum(), cut=15.0, side="upper", source="toy",
            model="exponential", alt_model="exponential", alt_from=6.0,
        )  # fmt: skip
    assert "does not fall off" in caplog.text
    assert alt is not None and alt.window[0] == edges[0]  # the range variation, not the far half
    assert all(np.isfinite([ext.level, ext.stat_up, ext.syst_up, ext.syst_down]))
