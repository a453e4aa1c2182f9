"""Scale benchmark (issue 7): analysis pass vs raw uproot, worker scaling, peak RSS and
wall time of the stages at 1e7 (and optionally 1e8) MOT.

Usage:
    python bench/bench_scale.py                 # 1e7 MOT
    python bench/bench_scale.py --report-only --repeat 3   # `bkg report` fresh and cached
    python bench/bench_scale.py --big 1e8       # also `bkg report` at 1e8 MOT (~5 GB, minutes)

Every figure is measured here, on this machine; nothing is a target typed in.
Stages run as subprocesses of the ``bkg`` command so their peak RSS is their own
(``ru_maxrss`` of the child). The 1- and 2-worker sample runs alternate ``--repeat``
times and the best of each is kept (another load on a 2-core machine slows the
2-worker run most).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(args: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``bkg ARGS`` in ``cwd``: (wall seconds, peak RSS of that child in MB).

    The peak RSS is GNU time's %M of this one child (RUSAGE_CHILDREN would be a running
    maximum over every child so far and hide a smaller later run).
    """
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name,
                        sys.executable, "-m", "bkg", *args], cwd=cwd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        wall = time.perf_counter() - t0
        peak_kb = float(Path(rss.name).read_text().split()[-1])
    return wall, peak_kb / 1024.0


def analysis_pass(samples: Path, step: int) -> tuple[float, float, int]:
    """Selection over the beam sample: the project's streaming pass vs raw uproot + numpy."""
    import uproot

    from bkg import ntuple, selection
    from bkg.config import load_config

    cfg = load_config()
    beam = ntuple.sample_paths(samples, "beam")  # the files the MANIFEST lists, in order
    branches = list(selection.BRANCHES)
    t0 = time.perf_counter()
    n_ours = 0
    for chunk in ntuple.iterate(beam, "beam", branches, step_size=step):
        n_ours += int(selection.passes_selection(chunk, cfg).sum())
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_raw = 0
    files = [f"{path}:{ntuple.TREE}" for path in beam]
    for arrays in uproot.iterate(files, branches, step_size=step, library="np"):
        n_raw += int(selection.passes_selection(arrays, cfg).sum())
    raw = time.perf_counter() - t0
    assert n_ours == n_raw, (n_ours, n_raw)
    return ours, raw, n_ours


def _load() -> str:
    """The 1, 5 and 15 minute load averages (other jobs share the cores)."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def report_times(base: Path, repeat: int) -> list[tuple[str, str]]:
    """`bkg report` on the default in a fresh folder (samples, fits and every stage),
    then again with nothing changed (every stage reused), then with the report folder
    removed (the stages after the fits), ``repeat`` times each."""
    fresh, cached, after_fits = [], [], []
    loads = [_load()]
    for i in range(max(repeat, 1)):
        where = base / f"report-{i}"
        where.mkdir(parents=True, exist_ok=True)
        fresh.append(_child(["report"], where)[0])
        loads.append(_load())
        cached.append(_child(["report"], where)[0])
        loads.append(_load())
        # the stages after the fits alone: the report folder removed, samples and fits kept
        shutil.rmtree(where / "reports")
        after_fits.append(_child(["report"], where)[0])
        loads.append(_load())

    def stats(xs: list[float]) -> str:
        return f"min {min(xs):.1f} s, median {statistics.median(xs):.1f} s ({len(xs)} runs)"

    return [
        (f"bkg report on the default, fresh folder ({os.cpu_count()} cores)", stats(fresh)),
        ("bkg report again, nothing changed (every stage reused)", stats(cached)),
        ("bkg report, samples and fits reused, report stages run", stats(after_fits)),
        ("load average 1/5/15 min, before and after each run", ", ".join(loads)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-mot", type=float, default=1e7)
    parser.add_argument("--big", type=float, default=None, help="a second, larger N_MOT")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="1- and 2-worker sample runs (best kept)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only `bkg report` fresh and cached (--repeat times each), with the load",
    )
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bkg-bench-"))
    rows: list[tuple[str, str]] = []
    if args.report_only:
        rows = report_times(base, args.repeat)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        print(json.dumps({"workdir": str(base)}))
        return

    small = base / "small"
    small.mkdir(parents=True, exist_ok=True)
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    n_mot = f"{args.n_mot:g}"
    for _ in range(max(args.repeat, 1)):
        for workers, out in ((1, "s1"), (2, "samples")):
            cmd = ["samples", "--n-mot", n_mot, "--workers", str(workers), "--out", out]
            runs[workers].append(_child(cmd, small))
    w1, w2 = (min(t for t, _ in runs[w]) for w in (1, 2))
    rss_s1, rss_s2 = (max(m for _, m in runs[w]) for w in (1, 2))
    best = f"best of {len(runs[1])}"
    rows += [
        (f"samples {args.n_mot:.0e} MOT, 1 worker", f"{w1:.1f} s ({best})"),
        (f"samples {args.n_mot:.0e} MOT, 2 workers", f"{w2:.1f} s ({best}, {w1 / w2:.2f}x)"),
        ("beam muons / s / core (2 workers, all samples)", f"{args.n_mot / w2 / 2:.3g}"),
    ]
    ours, raw, _ = analysis_pass(small / "samples", step=1_000_000)
    rows.append(("analysis pass vs raw uproot.iterate",
                 f"{ours:.2f} s vs {raw:.2f} s: {raw / ours:.2f}x of baseline speed"))  # fmt: skip
    wf, rss_f = _child(["fit"], small)
    rows.append(("bkg fit (all sources, incl. imports)", f"{wf:.1f} s"))
    wr, rss_r = _child(["report"], small)  # samples and fits reused
    rows.append(("bkg report, samples+fits reused", f"{wr:.1f} s"))
    fresh = base / "fresh"
    fresh.mkdir(exist_ok=True)
    load_before = _load()
    wfull, rss_full = _child(["report"], fresh)
    load_fresh = _load()
    wcached, _ = _child(["report"], fresh)  # nothing changed: every stage reused
    rows.append(
        (f"bkg report on the default from scratch ({os.cpu_count()} cores)", f"{wfull:.1f} s")
    )
    rows.append(("bkg report again, nothing changed (every stage reused)", f"{wcached:.1f} s"))
    rows.append(
        ("load average 1/5/15 min: before, after fresh, after cached",
         f"{load_before}, {load_fresh}, {_load()}")
    )  # fmt: skip
    rows.append(
        (
            f"peak RSS at {args.n_mot:.0e} MOT (largest stage)",
            f"{max(rss_s1, rss_s2, rss_f, rss_r, rss_full):.0f} MB",
        )
    )

    if args.big:
        # the same job at 1e8 MOT: `bkg report` from scratch on a config that only
        # changes the sample size, then the fit stage alone again
        big = base / "big"
        big.mkdir(exist_ok=True)
        overlay = big / "big.yaml"
        overlay.write_text(f"samples:\n  n_mot: {args.big:.6e}\n")
        wrb, rss_rb = _child(["report", "--config", str(overlay)], big)
        shutil.rmtree(big / "fits")
        wbf, rss_bf = _child(["fit", "--config", str(overlay)], big)
        rows += [
            (f"bkg report from scratch at {args.big:.0e} MOT", f"{wrb:.1f} s"),
            (f"bkg fit at {args.big:.0e} MOT", f"{wbf:.1f} s"),
            (f"peak RSS of bkg report from scratch, {args.n_mot:.0e} / {args.big:.0e} MOT",
             f"{rss_full:.0f} / {rss_rb:.0f} MB: {rss_rb / rss_full:.2f}x"),
            (f"peak RSS of bkg fit, {args.n_mot:.0e} / {args.big:.0e} MOT",
             f"{rss_f:.0f} / {rss_bf:.0f} MB: {rss_bf / rss_f:.2f}x"),
        ]  # fmt: skip

    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(json.dumps({"workdir": str(base)}))


if __name__ == "__main__":
    main()
