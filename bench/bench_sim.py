"""Benchmark of the fast simulation: steady-state events/s/core per sample type, and peak RSS.

Each figure is one chunk through :func:`bkg.sim.run.write_chunk`, the path of a
production worker: generation, ROOT write (compression included) and the
file's sha256. After the beam, the same chunk's write and sha256 alone are timed:
the ceiling that no generator of this contract and codec can pass here. Every sample type is first run once untimed (imports, cached
tables, the signal's cross-section grid of the benchmarked mass), so the figures
are steady-state throughput; each is the best of ``--repeat`` runs (the machine
may be shared). A chunk runs on one core: events/s/core is events over the
chunk's wall time (``wall``) and over the process's CPU time (``cpu``, less
sensitive to other jobs on a shared machine). The load average (1 min) is
printed next to every figure, and the peak RSS so far after each sample (the
samples run in the order of the table, beam first). The previous run's file is
deleted before the timer starts: a production chunk writes a new file, and
renaming over a 48 MB file (freeing its blocks) cost ~30 ms of the chunk.

Usage: python bench/bench_sim.py [--scale X] [--repeat R] [--only SAMPLE ...]
"""

from __future__ import annotations

import argparse
import os
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


def _load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def _rss_mb() -> float:
    """Peak resident set size of this process so far (MB): after a sample, the peak up to it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the default event counts"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per sample (best kept)")
    parser.add_argument(
        "--only", action="append", choices=list(SIZES), help="only this sample (repeatable)"
    )
    args = parser.parse_args()
    cfg = load_config()
    print("steady state: one untimed warm-up chunk per sample first; generation + ROOT write")
    print(f"+ sha256 of one chunk (bkg.sim.run.write_chunk), best of {args.repeat} runs")
    print(
        f"{'sample':16s} {'events':>9s} {'best s':>7s} {'median s':>8s} {'cpu s':>6s}"
        f" {'events/s/core':>13s} {'(cpu)':>9s} {'load':>5s} {'RSS MB':>7s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for sample, n in SIZES.items():
            if args.only and sample not in args.only:
                continue
            n = int(n * args.scale)
            mass = SIGNAL_MASS_GEV if sample == "signal" else None
            write_chunk(cfg, sample, (99, 0), min(n, 20_000), mass, Path(tmp) / "warm.root")
            walls, cpus, loads = [], [], []
            for rep in range(args.repeat):
                out = Path(tmp) / f"{sample}.root"
                out.unlink(missing_ok=True)  # a production chunk writes a new file
                loads.append(_load())
                t0, c0 = time.perf_counter(), time.process_time()
                write_chunk(cfg, sample, (99, 1 + rep), n, mass, out)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            best, cpu = min(walls), min(cpus)
            print(
                f"{sample:16s} {n:9d} {best:7.3f} {statistics.median(walls):8.3f} {cpu:6.3f}"
                f" {n / best:13.3g} {n / cpu:9.3g} {statistics.median(loads):5.2f} {_rss_mb():7.0f}"
            )
            if sample == "beam":
                _write_floor(cfg, n, Path(tmp), args.repeat)
    print(f"peak RSS: {_rss_mb():.0f} MB; load average now {_load():.2f} on {os.cpu_count()} cores")


def _write_floor(cfg: object, n: int, tmp: Path, repeat: int) -> None:
    """The ceiling of any beam generator on this machine: the ROOT write (LZ4, the
    contract's dtypes) and the sha256 of one chunk of already generated beam events."""
    import numpy as np

    from bkg import ntuple
    from bkg.sim.run import generate_chunk

    chunk = generate_chunk(cfg, "beam", (99, 0), n, None)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)

    def draws() -> dict[str, np.ndarray]:
        """One value of each branch's own dtype per event (float32 normals, booleans,
        small integers): the floor the issue measured the generator against."""
        out: dict[str, np.ndarray] = {}
        for name, branch in ntuple.SCHEMAS["beam"].items():
            kind = np.dtype(branch.dtype)
            if kind.kind == "f":
                out[name] = rng.standard_normal(n, dtype=np.float32)
            elif kind.kind == "b":
                out[name] = rng.random(n, dtype=np.float32) < 0.5
            else:
                out[name] = rng.integers(0, 3, n, dtype=kind)
        return out

    for label, make in (("  write+sha256", lambda: chunk), ("  draw+write", draws)):
        walls, cpus = [], []
        for _ in range(repeat):
            out = tmp / "floor.root"
            out.unlink(missing_ok=True)
            t0, c0 = time.perf_counter(), time.process_time()
            with ntuple.NtupleWriter(out, "beam") as writer:
                writer.extend(make())
            ntuple.sha256_file(out)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        note = (
            "no generation: the ceiling of any generator"
            if make is not draws
            else "the contract's dtypes drawn at random, then written"
        )
        print(
            f"{label:16s} {n:9d} {min(walls):7.3f} {statistics.median(walls):8.3f}"
            f" {min(cpus):6.3f} {n / min(walls):13.3g} {n / min(cpus):9.3g} {_load():5.2f}"
            f" {_rss_mb():7.0f}   ({note}; {out.stat().st_size / 1e6:.0f} MB)"
        )


if __name__ == "__main__":
    main()
