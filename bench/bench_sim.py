"""Benchmark of the fast simulation: steady-state events/s/core per sample type, and peak RSS.

Each figure is one chunk through :func:`bkg.sim.run.write_chunk`, the path of a
production worker: generation, ROOT write (compression included) and the
file's sha256. Every sample type is first run once untimed (imports, cached
tables, the signal's cross-section grid of the benchmarked mass), so the figures
are steady-state throughput; each is the best of ``--repeat`` runs (the machine
may be shared).

Usage: python bench/bench_sim.py [--scale X] [--repeat R]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bkg.config import load_config
from bkg.sim.run import write_chunk

SIZES = {
    "beam": 1_000_000,
    "hadrons": 500_000,
    "leading_hadrons": 100_000,
    "dimuons": 100_000,
    "signal": 50_000,
}
SIGNAL_MASS_GEV = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the default event counts"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per sample (best kept)")
    args = parser.parse_args()
    cfg = load_config()
    print("steady state: one untimed warm-up chunk per sample first; generation + ROOT write")
    print(f"+ sha256 of one chunk (bkg.sim.run.write_chunk), best of {args.repeat} runs")
    print(f"{'sample':18s} {'events':>10s} {'best s':>8s} {'median s':>9s} {'events/s/core':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        for sample, n in SIZES.items():
            n = int(n * args.scale)
            mass = SIGNAL_MASS_GEV if sample == "signal" else None
            write_chunk(cfg, sample, (99, 0), min(n, 20_000), mass, Path(tmp) / "warm.root")
            times = []
            for rep in range(args.repeat):
                t0 = time.perf_counter()
                write_chunk(cfg, sample, (99, 1 + rep), n, mass, Path(tmp) / f"{sample}.root")
                times.append(time.perf_counter() - t0)
            best = min(times)
            print(
                f"{sample:18s} {n:10d} {best:8.3f} {statistics.median(times):9.3f} {n / best:14.3g}"
            )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
