"""Benchmark of the fast simulation: events/s/core per sample type, ROOT write included, and peak RSS.

Usage: python bench/bench_sim.py [--events N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bkg import ntuple
from bkg.config import load_config
from bkg.sim.run import generate_chunk

SIZES = {
    "beam": 1_000_000,
    "hadrons": 500_000,
    "leading_hadrons": 100_000,
    "dimuons": 100_000,
    "signal": 50_000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the default event counts"
    )
    args = parser.parse_args()
    cfg = load_config()
    print(f"{'sample':18s} {'events':>10s} {'s':>8s} {'events/s/core':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        for sample, n in SIZES.items():
            n = int(n * args.scale)
            t0 = time.perf_counter()
            with ntuple.NtupleWriter(Path(tmp) / f"{sample}.root", sample) as out:
                chunk = generate_chunk(cfg, sample, (99, 0), n, 0.1 if sample == "signal" else None)
                out.extend(chunk)
            dt = time.perf_counter() - t0
            print(f"{sample:18s} {n:10d} {dt:8.2f} {n / dt:14.3g}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
