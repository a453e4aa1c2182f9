"""Wall time of `bkg fit` (all sources) on a samples folder, zfit import excluded.

Usage::

    python bench/bench_fit.py [SAMPLES_DIR] [--synthetic N_BEAM] [--figures]

Without a MANIFEST.json in SAMPLES_DIR (default ``samples/``), ``--synthetic``
writes seeded synthetic samples (tests/sources/conftest.py) into a temporary
folder first. Prints two measurements (goal: both < 10 s on the default 1e7-MOT
samples):

* the time per source, each in its own ``run_fits(only=[name])`` call, one after
  the other in this process (as measured since the first version of this script;
  the zfit graphs are traced by the first source that needs them), and their sum;
* ``bkg fit`` itself: all sources in one ``run_fits`` call (one pass over the beam
  sample for the streaming sources) in a fresh Python process, with its CPU time (the
  fits' process, not the side process's) and the CPU time of the tail scans
  (``scan_tail``, with their deviance toys) and of the split closures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    os.environ.setdefault("ZFIT_DISABLE_TF_WARNINGS", "1")
    parser = argparse.ArgumentParser()
    parser.add_argument("samples", nargs="?", default="samples")
    parser.add_argument("--synthetic", type=int, default=0, help="beam events of synthetic samples")
    parser.add_argument("--figures", action="store_true")
    parser.add_argument("--together", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    samples = Path(args.samples)
    if args.synthetic or not (samples / "MANIFEST.json").exists():
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sources"))
        from conftest import write_samples

        samples = Path(tempfile.mkdtemp(prefix="bench_samples_"))
        write_samples(samples, n_beam=args.synthetic or 1_000_000)
    t0 = time.perf_counter()
    import zfit  # noqa: F401

    t_import = time.perf_counter() - t0
    from bkg.config import load_config
    from bkg.sources import REGISTRY, run_fits

    cfg = load_config()
    out = Path(tempfile.mkdtemp(prefix="bench_fits_"))
    if args.together:  # the child: `bkg fit`, one run_fits for all sources
        cpu = _time_tail_parts()
        t = time.perf_counter()
        run_fits(cfg, samples_dir=samples, out_dir=out, figures=args.figures)
        wall = time.perf_counter() - t
        own = resource.getrusage(resource.RUSAGE_SELF)  # not the side process's
        print(json.dumps({"seconds": wall, "cpu": own.ru_utime + own.ru_stime, **cpu}))
        return
    total = 0.0
    for name in REGISTRY:
        t = time.perf_counter()
        est = run_fits(cfg, samples_dir=samples, out_dir=out, only=[name], figures=args.figures)
        dt = time.perf_counter() - t
        total += dt
        print(f"{name:20s} {dt:6.2f} s  level {est[name].level_per_mot:.3g} per MOT")
    print(f"zfit import {t_import:.2f} s; fitting all sources {total:.2f} s (samples: {samples})")
    child = subprocess.run(
        [sys.executable, __file__, str(samples), "--together"]
        + (["--figures"] if args.figures else []),
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"bkg fit: all sources in one run_fits (fresh process) {res['seconds']:.2f} s")
    print(
        f"  CPU: fits' process {res['cpu']:.2f} s; "
        f"tail scans {res['scan_tail']:.2f} s, of which deviance toys "
        f"{res['deviance_test']:.2f} s; split closures {res['closure_split']:.2f} s"
    )


def _time_tail_parts() -> dict[str, float]:
    """Wrap the tail scans' parts (bkg.fit.tailmodel) to add up their CPU time.

    CPU (time.process_time: every thread of the process), not wall time: the machine
    may be shared. The deviance toys run inside the scans (their time is in both).
    """
    from bkg.fit import tailmodel as tm

    cpu = {"scan_tail": 0.0, "deviance_test": 0.0, "closure_split": 0.0}
    for name in cpu:
        real = getattr(tm, name)

        def timed(*a: object, _real: object = real, _name: str = name, **k: object) -> object:
            t = time.process_time()
            try:
                return _real(*a, **k)  # type: ignore[operator]
            finally:
                cpu[_name] += time.process_time() - t

        setattr(tm, name, timed)
    return cpu


if __name__ == "__main__":
    main()
