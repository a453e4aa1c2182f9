"""Benchmark of the limits: the 1e4-toy expected band, its agreement with pyhf, and the
one-bin mass scan against a naive pyhf loop.

Run: ``python bench/bench_limits.py [--repeat 3] [--masses 100] [--pyhf-toys 300]``.
Prints, on the one-bin model of five backgrounds (1.41 events) and its 7 nuisance
parameters (+ the staterror gamma):

* the 1e4-toy band's wall and CPU seconds (min / median of ``--repeat``) and the load
  average (os.getloadavg) around them: the machine may be shared;
* the largest |q~_mu - pyhf's q~_mu| over toys with fluctuated auxiliary data (pyhf's
  own SLSQP fits; ``tests/stats/test_toys.py`` asserts it below 2e-6);
* the toy CLs band at one mu against pyhf's ToyCalculator (``--pyhf-toys`` toys in its
  Python loop) on the model of ``test_toy_cls_matches_pyhf_toycalculator``, which
  asserts it within toy statistics;
* the asymptotic mass scan (solve once in signal events, map to masses) against a
  naive loop of pyhf ``toms748_scan`` per mass (``--masses 0`` skips it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from bkg.stats.limits import _spec_events, event_limit, event_limit_toys, map_to_masses
from bkg.stats.model import BackgroundSource, Table1, numpy_backend
from bkg.stats.toys import one_bin_model, qmu_tilde, toy_cls
from bkg.stats.workspace import build_patchset, build_workspace

LEVELS = (1.1e-11, 1e-12, 1e-12, 1e-12, 1e-13)
N_MOT = 1e11
CL = 0.9


def bench_table() -> Table1:
    """Five backgrounds near the paper's Table I levels (1.41 events at 1e11 MOT)."""
    return Table1(
        n_mot=N_MOT,
        sources=tuple(
            BackgroundSource(
                f"s{i}", f"s{i}", lv, 0.1 * lv, 0.1 * lv, 0.3 * lv, 0.2 * lv, False, ""
            )
            for i, lv in enumerate(LEVELS)
        ),
    )


def bench_spec() -> dict:
    return _spec_events(bench_table(), n_mot=N_MOT, mot_unc=0.01, eff_unc=0.1, poi_upper=1000.0)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def toy_band(repeat: int) -> None:
    spec = bench_spec()
    walls, cpus = [], []
    load_before = _load()
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        toy = event_limit_toys(spec, confidence_level=CL, n_toys=10000, seed=1)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    print(
        f"toy band (1e4 toys, 7 nuisance parameters, b = {sum(LEVELS) * N_MOT:.2f}): "
        f"wall min {min(walls):.2f} s median {statistics.median(walls):.2f} s, "
        f"CPU min {min(cpus):.2f} s median {statistics.median(cpus):.2f} s "
        f"(load average 1/5/15 min before {load_before}, after {_load()}; 2 cores shared)"
    )
    print(f"  band: {np.round(toy.expected, 3).tolist()} signal events")


def qmu_agreement(n_toys: int = 40) -> float:
    """max |q~ - pyhf q~| at mu = 3 events over toys with fluctuated auxiliary data."""
    spec = bench_spec()
    m = one_bin_model(spec)
    rng = np.random.default_rng(3)
    with numpy_backend() as pyhf:
        model = pyhf.Workspace(spec).model()
        cfg = model.config
        order = cfg.auxdata_order
        # ours: signal normsys (mot_norm, signal_eff), background normsys (sample order),
        # then the staterror gamma
        ours_order = ["mot_norm", "signal_eff", *(f"syst_s{i}" for i in range(5)), "staterror_box"]
        worst = 0.0
        for _ in range(n_toys):
            aux = np.array(cfg.auxdata, float)
            aux[:-1] += rng.normal(size=aux.size - 1)
            aux[order.index("staterror_box")] = 1.0 + m.gamma_sigma * rng.normal()
            aux_pyhf = aux.copy()
            by_name = dict(zip(order, aux_pyhf, strict=True))  # pyhf's order to ours
            ours_aux = np.array([by_name[k] for k in ours_order])
            n = float(rng.poisson(2.0))
            ref = float(
                pyhf.infer.test_statistics.qmu_tilde(
                    3.0, [n, *aux_pyhf], model, cfg.suggested_init(),
                    cfg.suggested_bounds(), cfg.suggested_fixed(),
                )
            )  # fmt: skip
            ours = float(qmu_tilde(m, 3.0, np.array([n]), ours_aux[None, :])[0])
            worst = max(worst, abs(ours - ref))
    return worst


def cls_agreement(pyhf_toys: int) -> None:
    """Toy CLs against pyhf's ToyCalculator on the model and toys of
    ``test_toy_cls_matches_pyhf_toycalculator`` (one background of 2 events, 30 % syst,
    10 % stat; mu = 3 events), which asserts -1..+1 sigma within 0.06 absolute."""
    from bkg.stats.model import model_spec

    src = BackgroundSource("bkg", "bkg", 2.0, 0.2, 0.2, 0.6, 0.6, False, "")
    spec = model_spec(
        Table1(n_mot=1.0, sources=(src,)), n_mot=1.0, signal_events=[1.0],
        mot_uncertainty=0.01, signal_efficiency_uncertainty=0.1, poi_upper=50.0,
    )  # fmt: skip
    mu = 3.0
    with numpy_backend() as pyhf:
        model = pyhf.Workspace(spec).model()
        data = spec["observations"][0]["data"] + model.config.auxdata
        np.random.seed(3)  # noqa: NPY002 (pyhf's ToyCalculator uses the global RNG)
        t0 = time.perf_counter()
        _, exp = pyhf.infer.hypotest(
            mu, data, model, test_stat="qtilde", calctype="toybased", ntoys=pyhf_toys,
            return_expected_set=True, track_progress=False,
        )  # fmt: skip
        t_pyhf = time.perf_counter() - t0
    ref = np.ravel(exp)
    t0 = time.perf_counter()
    ours = toy_cls(one_bin_model(spec), mu, n_toys=20000, seed=5).cls_exp
    t_ours = time.perf_counter() - t0
    print(f"toy CLs at mu = {mu} events (b = 2, one background), expected -2..+2 sigma:")
    print(f"  pyhf ToyCalculator ({pyhf_toys} toys, {t_pyhf:.1f} s): {np.round(ref, 4).tolist()}")
    print(f"  ours (20000 toys, {t_ours:.2f} s): {np.round(ours, 4).tolist()}")
    print(
        f"  |difference| at -1..+1 sigma: {np.round(np.abs(ours - ref)[1:4], 4).tolist()} "
        "(test: < 0.06, the spread of pyhf's 300-toy quantiles)"
    )


def mass_scan(n_masses: int) -> None:
    table1 = bench_table()
    masses = np.geomspace(0.001, 1.0, n_masses)
    s_ref = 20.0 / (1.0 + (masses / 0.1) ** 2)
    t0 = time.perf_counter()
    lim = event_limit(
        table1, n_mot=N_MOT, confidence_level=CL, mot_uncertainty=0.01,
        signal_efficiency_uncertainty=0.1, calculator="asymptotics",
    )  # fmt: skip
    fast = map_to_masses(lim, s_ref, 1e-4)["mu_expected"]
    t_fast = time.perf_counter() - t0
    bkg = build_workspace(
        table1, n_mot=N_MOT, mot_uncertainty=0.01, signal_efficiency_uncertainty=0.1
    )
    ps_spec = build_patchset(
        bkg, masses_gev=masses, signal_events_ref=s_ref, g_prime_ref=1e-4,
        mot_uncertainty=0.01, signal_efficiency_uncertainty=0.1,
    )  # fmt: skip
    t0 = time.perf_counter()
    naive = np.empty((len(masses), 5))
    with numpy_backend() as pyhf:
        ws = pyhf.Workspace(bkg)
        ps = pyhf.PatchSet(ps_spec)
        for i, patch in enumerate(ps.patches):
            model = ps.apply(ws, patch.values).model()
            data = list(bkg["observations"][0]["data"]) + model.config.auxdata
            _, exp = pyhf.infer.intervals.upper_limits.toms748_scan(
                data, model, 1e-6 / s_ref[i], 50.0 / s_ref[i], level=1 - CL, rtol=1e-6,
                test_stat="qtilde",
            )  # fmt: skip
            naive[i] = np.ravel(exp)
    t_naive = time.perf_counter() - t0
    rel = np.max(np.abs(fast / naive - 1.0))
    print(f"mass scan, {len(masses)} masses, asymptotic:")
    print(f"  solve once + map: {t_fast:.3f} s; naive pyhf toms748_scan loop: {t_naive:.3f} s")
    print(f"  ratio: {t_naive / t_fast:.1f}x; max relative difference of the band: {rel:.2e}")


def asymptotic_agreement() -> None:
    """The vectorised asymptotic limit (the reach figure's medians) against pyhf's
    hypotest on the bench model scaled to 10x and 100x the background."""
    from bkg.stats.limits import event_limit_asymptotic, event_limit_asymptotic_fast

    for scale in (10.0, 100.0):
        spec = _spec_events(
            bench_table(), n_mot=N_MOT * scale, mot_unc=0.01, eff_unc=0.1, poi_upper=5000.0
        )
        t0 = time.perf_counter()
        ref = event_limit_asymptotic(spec, confidence_level=CL)
        t_pyhf = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = event_limit_asymptotic_fast(spec, confidence_level=CL)
        t_fast = time.perf_counter() - t0
        dev = float(np.max(np.abs(fast.expected / ref.expected - 1.0)))
        print(
            f"asymptotic band at b = {sum(LEVELS) * N_MOT * scale:.1f}: pyhf {t_pyhf:.2f} s, "
            f"vectorised fits {t_fast:.3f} s, max relative difference {dev:.1e} "
            "(test: < 1e-4)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--masses", type=int, default=100)
    ap.add_argument("--pyhf-toys", type=int, default=300)
    args = ap.parse_args()
    toy_band(args.repeat)
    print(f"max |q~_mu - pyhf q~_mu| over 40 toys (mu = 3 events): {qmu_agreement():.2e}")
    asymptotic_agreement()
    if args.pyhf_toys > 0:
        cls_agreement(args.pyhf_toys)
    if args.masses > 0:
        mass_scan(args.masses)


if __name__ == "__main__":
    main()
