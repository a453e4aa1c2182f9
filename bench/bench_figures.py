"""CPU time of drawing and saving every figure of ``bkg report``, from a finished report.

Usage::

    cd SCRATCH && bkg report                # once: samples/, fits/, reports/<name>/
    python bench/bench_figures.py SCRATCH [--trees TREE ...] [--reps N] [--keep DIR]

The figures' inputs (the fits' JSON, the sensitivity, the limits and the reach versus
N_MOT, the curves of Fig. 2, the histograms of Figs. 3 and 5) are computed once with
the package of the first tree and kept in ``SCRATCH/bench_figures_inputs.pkl``; only
the drawing is timed. Each repetition draws every figure once, in the order of the
report (the five fit diagnostics of the fits stage, then Figs. 4 and 6, the
sensitivity, the reach versus N_MOT, Figs. 3, 5 and 2), in a fresh Python process per
tree (``PYTHONPATH=TREE``), so that each pays what a report's process pays: matplotlib's
caches start empty. The trees are interleaved (A B A B ...) so that a change of the
machine's load falls on both; the load (``uptime``) is printed before and after.
Printed: CPU seconds (``time.process_time``, this process only) per figure, the median
over the repetitions per tree, and the totals (the fit diagnostics, the report's
figures, all). The import of matplotlib and mplhep is timed apart.

Compare the code before a change with the code after it::

    git archive BASE bkg | tar -x -C /tmp/base
    python bench/bench_figures.py SCRATCH --trees /tmp/base . --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

INPUTS = "bench_figures_inputs.pkl"
#: the figures as the report draws them, in its order (stem: what draws it)
FITS = ("dimuon", "hadron_decay", "hermeticity", "momentum_mismatch", "punch_through")
REPORT_FIGURES = (
    "fig4_zprime_spectra",
    "fig6_reach_background_free",
    "sensitivity",
    "reach_vs_mot",
    "fig3_beam",
    "fig5_hermeticity_plane",
    "fig2_trigger_efficiency",
)


def use_tree(tree: str | None) -> None:
    """Import ``bkg`` from ``tree`` (the PYTHONPATH this process was given) even when the
    package is also installed in editable mode: setuptools' editable finder sits on
    ``sys.meta_path`` ahead of PYTHONPATH and would give every tree the installed code."""
    if not tree:
        return
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
    sys.path.insert(0, tree)
    import bkg

    if not Path(bkg.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"bkg imported from {bkg.__file__}, not from the tree {tree}")


def _report_dir(scratch: Path) -> Path:
    found = sorted(p.parent for p in (scratch / "reports").glob("*/limits.json"))
    if not found:
        raise SystemExit(f"{scratch}/reports: no finished report (run `bkg report` there first)")
    return found[0]


def prepare(scratch: Path) -> dict[str, Any]:
    """Every figure's input, computed as the report computes it (limits, Fig. 2's curves,
    Figs. 3 and 5's histograms: ~40 s of CPU, once)."""
    import numpy as np

    from bkg.config import load_config
    from bkg.report.figures import zprime_spectra
    from bkg.report.sensitivity import compute_sensitivity
    from bkg.sim import figures as simfig
    from bkg.sources.base import SourceEstimate
    from bkg.stats.model import read_table1
    from bkg.stats.reach import preset_curve, reach_vs_mot
    from bkg.stats.stage import compute_limits

    cfg = load_config(None)
    report = _report_dir(scratch)
    record = json.loads((report / "signal_efficiency.json").read_text())
    log_m = np.log(np.asarray(record["masses_gev"], float))
    per_mot = np.asarray(record["efficiency_per_mot"], float)
    sens = compute_sensitivity(
        cfg, efficiency=lambda m: np.interp(np.log(np.asarray(m, float)), log_m, per_mot)
    )
    table1 = read_table1(report / "table1.json")
    grid = {"masses_gev": sens.masses_gev, "signal_per_mot_ref": sens.yield_per_mot_ref}
    limits = compute_limits(cfg, table1, **grid)
    computed = [preset_curve(cfg, table1, **grid, preset="na64mu-2022")]
    known = {limits.n_mot: float(limits.event_limit.expected[2])}
    fits = {
        name: SourceEstimate.from_dict(json.loads((scratch / "fits" / f"{name}.json").read_text()))
        for name in FITS
    }
    return {
        "fits": fits,
        "spectra": zprime_spectra(cfg),
        "sensitivity": sens,
        "limits": limits,
        "computed": computed,
        "reach": reach_vs_mot(cfg, table1, **grid, known_medians=known),
        "fig2": simfig.fig2_curves(cfg),
        "beam": simfig.beam_histograms(scratch / "samples", cfg),
        "plane": simfig.hermeticity_plane(scratch / "samples", cfg),
    }


def draw_all(inputs: dict[str, Any], out: Path) -> dict[str, float]:
    """Draw and save every figure into ``out``: CPU seconds per figure."""
    from bkg.config import load_config
    from bkg.report import figures as report_figures
    from bkg.sim import figures as simfig
    from bkg.sources.figures import plot_source, save_figure
    from bkg.stats import figures as stats_figures

    cfg = load_config(None)
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    draws: list[tuple[str, Any]] = [
        (f"fit_{name}", lambda est=est, name=name: save_figure(plot_source(est), out, name))
        for name, est in inputs["fits"].items()
    ]
    draws += [
        ("fig4_zprime_spectra",
         lambda: report_figures.plot_zprime_spectra(inputs["spectra"], out_dir=figs)),
        ("fig6_reach_background_free",
         lambda: report_figures.plot_reach(inputs["sensitivity"], cfg, out_dir=figs)),
        ("sensitivity",
         lambda: stats_figures.plot_reach(inputs["limits"], cfg, out_dir=out,
                                          overlays=inputs["computed"])),
        ("reach_vs_mot", lambda: stats_figures.plot_reach_vs_mot(inputs["reach"], out_dir=out)),
        ("fig3_beam", lambda: simfig.fig3_beam(inputs["beam"], figs)),
        ("fig5_hermeticity_plane",
         lambda: simfig.fig5_hermeticity_plane(inputs["plane"], cfg, figs)),
        ("fig2_trigger_efficiency",
         lambda: simfig.fig2_trigger_efficiency(cfg, figs, curves=inputs["fig2"])),
    ]  # fmt: skip
    seconds = {}
    for stem, draw in draws:
        t0 = time.process_time()
        draw()
        seconds[stem] = time.process_time() - t0
    return seconds


def child(scratch: Path, keep: str | None) -> None:
    use_tree(os.environ.get("PYTHONPATH"))
    t0 = time.process_time()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import mplhep  # noqa: F401
    import scipy.stats  # noqa: F401  (imported by the fits stage before its figures)

    import bkg.fit.tailfit
    import bkg.fit.tailmodel
    import bkg.sources.closure
    import bkg.sources.figures  # noqa: F401

    t_import = time.process_time() - t0
    inputs = pickle.loads((scratch / INPUTS).read_bytes())
    with tempfile.TemporaryDirectory(prefix="bench_figures_") as tmp:
        out = Path(keep) if keep else Path(tmp)
        seconds = draw_all(inputs, out)
    print(json.dumps({"import": t_import, "figures": seconds}))


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scratch", type=Path, help="folder where `bkg report` ran")
    parser.add_argument("--trees", nargs="+", default=["."], help="package trees to compare")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", help="write the figures of the last tree here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scratch = args.scratch.resolve()
    if args.child:
        child(scratch, args.keep)
        return
    trees = [str(Path(t).resolve()) for t in args.trees]
    env0 = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if not (scratch / INPUTS).exists():
        print(f"computing the figures' inputs once ({scratch / INPUTS}) ...", flush=True)
        code = (
            "import os, pickle, sys; sys.path.insert(0, sys.argv[1]); from bench_figures import "
            "prepare, use_tree; use_tree(os.environ['PYTHONPATH']); from pathlib import Path; "
            "s = Path(sys.argv[2]); "
            f"(s / {INPUTS!r}).write_bytes(pickle.dumps(prepare(s)))"
        )
        here = str(Path(__file__).resolve().parent)
        env = {**env0, "PYTHONPATH": trees[0]}
        subprocess.run([sys.executable, "-c", code, here, str(scratch)], check=True, env=env)
    print(f"load before: {_uptime()}")
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
    for rep in range(args.reps):
        for i, tree in enumerate(trees):
            cmd = [sys.executable, __file__, str(scratch), "--child"]
            if args.keep and i == len(trees) - 1 and rep == args.reps - 1:
                cmd += ["--keep", str(Path(args.keep).resolve())]
            env = {**env0, "PYTHONPATH": tree, "MPLBACKEND": "Agg"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            runs[tree].append(json.loads(done.stdout.strip().splitlines()[-1]))
            total = sum(runs[tree][-1]["figures"].values())
            print(f"rep {rep + 1} {tree}: {total:.2f} s", flush=True)
    print(f"load after:  {_uptime()}")
    _table(trees, runs)


def _table(trees: list[str], runs: dict[str, list[dict[str, Any]]]) -> None:
    def med(tree: str, key: str) -> float:
        return statistics.median(r["figures"][key] for r in runs[tree])

    def med_sum(tree: str, keys: list[str]) -> float:
        return statistics.median(sum(r["figures"][k] for k in keys) for r in runs[tree])

    stems = list(runs[trees[0]][0]["figures"])
    fits = [s for s in stems if s.startswith("fit_")]
    report = [s for s in stems if not s.startswith("fit_")]
    names = [f"T{i}" for i in range(len(trees))]
    for name, tree in zip(names, trees, strict=True):
        print(f"{name} = {tree}")
    print(f"CPU seconds, median of {len(runs[trees[0]])} runs")
    print(f"{'figure':<30}" + "".join(f"{n:>9}" for n in names))
    for stem in stems:
        print(f"{stem:<30}" + "".join(f"{med(t, stem):9.3f}" for t in trees))
    for label, keys in (("fit diagnostics", fits), ("report figures", report), ("all", stems)):
        print(f"{'total ' + label:<30}" + "".join(f"{med_sum(t, keys):9.3f}" for t in trees))
    imports = [statistics.median(r["import"] for r in runs[t]) for t in trees]
    print(f"{'(import matplotlib, mplhep)':<30}" + "".join(f"{v:9.3f}" for v in imports))


if __name__ == "__main__":
    main()
