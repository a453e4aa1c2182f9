"""Benchmark: the one-bin mass scan (solve once in signal events, map to masses) against a
naive loop of pyhf ``toms748_scan`` per mass, asymptotic calculator, +-1/2 sigma bands.

Run: ``python bench/bench_limits.py [--masses 100]``; prints both times, the ratio and the
maximum relative difference of the expected band in mu.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bkg.stats.limits import _spec_events, event_limit, event_limit_toys, map_to_masses
from bkg.stats.model import BackgroundSource, Table1, numpy_backend
from bkg.stats.workspace import build_patchset, build_workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--masses", type=int, default=100)
    args = ap.parse_args()
    levels = [1.1e-11, 1e-12, 1e-12, 1e-12, 1e-13]
    table1 = Table1(
        n_mot=1e11,
        sources=tuple(
            BackgroundSource(
                f"s{i}", f"s{i}", lv, 0.1 * lv, 0.1 * lv, 0.3 * lv, 0.2 * lv, False, ""
            )
            for i, lv in enumerate(levels)
        ),
    )
    n_mot, cl = 1e11, 0.9
    masses = np.geomspace(0.001, 1.0, args.masses)
    s_ref = 20.0 / (1.0 + (masses / 0.1) ** 2)

    t0 = time.perf_counter()
    lim = event_limit(
        table1,
        n_mot=n_mot,
        confidence_level=cl,
        mot_uncertainty=0.01,
        signal_efficiency_uncertainty=0.1,
        calculator="asymptotics",
    )
    fast = map_to_masses(lim, s_ref, 1e-4)["mu_expected"]
    t_fast = time.perf_counter() - t0

    bkg = build_workspace(
        table1, n_mot=n_mot, mot_uncertainty=0.01, signal_efficiency_uncertainty=0.1
    )
    ps_spec = build_patchset(
        bkg,
        masses_gev=masses,
        signal_events_ref=s_ref,
        g_prime_ref=1e-4,
        mot_uncertainty=0.01,
        signal_efficiency_uncertainty=0.1,
    )
    t0 = time.perf_counter()
    naive = np.empty((len(masses), 5))
    with numpy_backend() as pyhf:
        ws = pyhf.Workspace(bkg)
        ps = pyhf.PatchSet(ps_spec)
        for i, patch in enumerate(ps.patches):
            model = ps.apply(ws, patch.values).model()
            data = list(bkg["observations"][0]["data"]) + model.config.auxdata
            hi = 50.0 / s_ref[i]
            _, exp = pyhf.infer.intervals.upper_limits.toms748_scan(
                data, model, 1e-6 / s_ref[i], hi, level=1 - cl, rtol=1e-6, test_stat="qtilde"
            )
            naive[i] = np.ravel(exp)
    t_naive = time.perf_counter() - t0
    rel = np.max(np.abs(fast / naive - 1.0))
    print(f"masses: {len(masses)}")
    print(f"scan (solve once + map): {t_fast:.3f} s")
    print(f"naive pyhf toms748_scan loop: {t_naive:.3f} s")
    print(f"ratio: {t_naive / t_fast:.1f}x")
    print(f"max relative difference (expected band, mu): {rel:.2e}")

    spec = _spec_events(table1, n_mot=n_mot, mot_unc=0.01, eff_unc=0.1, poi_upper=1000.0)
    t0 = time.perf_counter()
    toy = event_limit_toys(spec, confidence_level=cl, n_toys=10000, seed=1)
    print(
        f"toy band (1e4 toys, b = {table1.total_per_mot() * n_mot:.2f}): {time.perf_counter() - t0:.2f} s "
        f"-> {np.round(toy.expected, 3).tolist()} events"
    )


if __name__ == "__main__":
    main()
