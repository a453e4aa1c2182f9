"""``bkg report``: every stage, in order, into one self-describing folder.

samples -> fits -> table -> sensitivity -> workspace -> limits -> figures ->
HEPData -> claims -> provenance -> index.html. The samples and fits stages
write to their own folders and are skipped when their config slice and inputs
are unchanged (:mod:`bkg.report.cache`); the report itself is assembled in a
temporary folder that replaces ``reports/<name>/`` only when complete, so an
interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bkg import interrupt
from bkg.atomic import atomic_dir, write_json, write_text
from bkg.config import Config
from bkg.errors import FitError, SampleError
from bkg.report import cache
from bkg.report.claims import none_applicable

if TYPE_CHECKING:
    from bkg.sim.figures import Fig2Curves

log = logging.getLogger(__name__)

__all__ = ["ReportResult", "run_fits_stage", "run_report", "run_samples_stage"]

Progress = Callable[[str, str], None]

#: Config keys the samples do not depend on.
SAMPLES_INDEPENDENT = ("name", "n_mot", "statistics", "g_minus_2", "run", "signal_box", "selection")
#: Config keys the fits do not depend on.
FITS_INDEPENDENT = ("name", "n_mot", "statistics", "g_minus_2", "run", "signal")


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it contains."""

    folder: Path
    stages: dict[str, str]
    claims: list[dict[str, Any]] = field(default_factory=list)
    table1: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        n_ok = sum(c["verdict"] == "agrees" for c in self.claims)
        lines = [f"report written to {self.folder}/ (index.html)"]
        lines += [f"  {stage:<12} {state}" for stage, state in self.stages.items()]
        if self.table1:
            total = self.table1["total"]
            lines.append(
                f"total background {total['level_per_mot']:.2e} per MOT = {total['expected_events']:.3g} events "
                f"at {self.table1['n_mot']:.3g} MOT"
            )
        if none_applicable(self.claims):
            lines.append(
                "claims of the paper: not compared (they describe its 160 GeV beam; claims.md "
                "lists this run's values)"
            )
        elif self.claims:
            lines.append(f"claims of the paper reproduced: {n_ok} of {len(self.claims)}")
            lines += [
                f"  {c['verdict']}: {c['statement']} (paper {_fmt_claim_value(c['paper'])}, "
                f"here {_fmt_claim_value(c['reproduced'])}; claims.md)"
                for c in self.claims
                if c["verdict"] != "agrees"
            ]
        return "\n".join(lines)


def _noop(stage: str, state: str) -> None:
    return None


def run_samples_stage(
    cfg: Config,
    *,
    samples_dir: Path,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = _noop,
) -> tuple[str, str]:
    """Generate the samples unless the folder already holds them for this config.

    A folder whose MANIFEST.json ``bkg samples`` did not write (a GEANT4 production that
    meets samples/README.md) is used as it is and never overwritten; a folder with ROOT
    files but no MANIFEST.json is an error, not something to write over.

    Returns:
        (state, key): state is ``"ran"``, ``"reused"`` or ``"external"``.
    """
    key = samples_key(cfg)
    if cache.is_fresh(samples_dir, key):
        progress("samples", "reused")
        return "reused", key
    from bkg.sim.run import external_samples

    if external_samples(samples_dir):
        progress("samples", "external")
        log.warning(
            "%s: samples not made by `bkg samples` (MANIFEST.json generator is not bkg.sim): "
            "used as they are",
            samples_dir,
        )
        # the key of what was used: the production's own files, not the config's samples
        return "external", cache.stage_key("samples-external", {}, _manifest_hashes(samples_dir))
    from bkg.sim import run_samples

    progress("samples", "running")
    manifest = run_samples(cfg, out_dir=samples_dir, workers=workers, scheduler=scheduler)
    mark_samples_done(cfg, samples_dir, manifest)
    return "ran", key


def samples_key(cfg: Config) -> str:
    """Cache key of the samples stage: its config slice and the simulation code."""
    code = {"code": cache.code_digest("sim", "ntuple", "physics")}
    return cache.stage_key(
        "samples", cache.config_slice(cfg.to_dict(), drop=SAMPLES_INDEPENDENT), code
    )


#: Config sections that decide what a sample holds (sizes, seeds and folders aside).
SAMPLES_SETUP = ("beam", "detector")
#: Config sections that decide what a fit estimates from given samples.
FITS_SETUP = ("beam", "detector", "selection", "signal_box")


def samples_config_key(cfg: Config) -> str:
    """The setup the samples simulate (recorded beside the stage key; no sizes or seeds)."""
    return cache.stage_key("samples-setup", cache.config_slice(cfg.to_dict(), keep=SAMPLES_SETUP))


def fits_config_key(cfg: Config) -> str:
    """The setup and selection the fits assume (recorded beside the stage key)."""
    return cache.stage_key("fits-setup", cache.config_slice(cfg.to_dict(), keep=FITS_SETUP))


def check_made_for(cfg: Config, folder: Path, stage: str) -> None:
    """A clear error when ``folder`` holds the samples or fits of another setup.

    The check reads the setup key that `bkg samples`, `bkg fit` and `bkg report` record
    in the folder's .stage.json: the beam and detector (and, for fits, the selection
    and the signal box), not sizes, seeds, folders or the statistics. A folder without
    a record and a production that `bkg samples` did not write (GEANT4) are not checked.

    Raises:
        SampleError (samples) or FitError (fits) naming the folder and the way out.
    """
    from bkg.sim.run import external_samples

    recorded = cache.recorded_config(folder)
    if recorded is None:
        return
    if stage == "samples" and recorded != samples_config_key(cfg):
        if external_samples(folder):  # its own MANIFEST says what it is; the record is stale
            return
        raise SampleError(
            f"{folder}: these samples simulate another beam or detector than config "
            f"{cfg.name!r} (see its MANIFEST.json); run `bkg samples` (or `bkg report`) "
            "with this config, or give --samples a folder made with it"
        )
    if stage == "fits" and recorded != fits_config_key(cfg):
        raise FitError(
            f"{folder}: these fits assume another beam, detector or selection than config "
            f"{cfg.name!r}; run `bkg fit` (or `bkg report`) with this config, or give --fits "
            "a folder made with it"
        )


def mark_samples_partial(cfg: Config, samples_dir: Path) -> None:
    """Record that ``samples_dir`` was (partly) written for ``cfg``'s setup by `bkg samples
    --only` or `--n-mot`: not the config's complete production (`bkg report` regenerates
    it), but a folder whose setup the stage commands accept."""
    cache.mark_done(samples_dir, "partial", [], config_key=samples_config_key(cfg))


def mark_samples_done(cfg: Config, samples_dir: Path, manifest: dict[str, Any]) -> None:
    """Record a complete samples folder for ``cfg`` (also after `bkg samples`).

    The sample files' sha256 are those of the MANIFEST (computed by the workers that
    wrote them); only MANIFEST.json itself is hashed here.
    """
    files = [entry["file"] for entry in manifest["files"]] + ["MANIFEST.json"]
    known = {entry["file"]: entry["sha256"] for entry in manifest["files"]}
    cache.mark_done(
        samples_dir, samples_key(cfg), files, known=known, config_key=samples_config_key(cfg)
    )


def fits_key(cfg: Config, samples_dir: Path) -> str:
    """Cache key of the fits stage: config slice, the samples' hashes and the fit code."""
    hashes = samples_hashes(samples_dir)
    inputs = {**hashes, "code": cache.code_digest("sources", "fit", "selection", "ntuple")}
    return cache.stage_key("fits", cache.config_slice(cfg.to_dict(), drop=FITS_INDEPENDENT), inputs)


def samples_hashes(samples_dir: Path) -> dict[str, str]:
    """The sample files' sha256: as ``bkg samples`` recorded them, or, for a production it
    did not write, as its MANIFEST lists them (every stage checks them when it reads).

    An external folder never uses the record: a ``.stage.json`` left from an earlier
    fast-simulation production in the same folder describes other files.
    """
    from bkg.sim.run import external_samples

    if external_samples(samples_dir):
        return _manifest_hashes(samples_dir)
    return cache.recorded_outputs(samples_dir) or _manifest_hashes(samples_dir)


def _manifest_hashes(samples_dir: Path) -> dict[str, str]:
    try:
        files = json.loads((samples_dir / "MANIFEST.json").read_text()).get("files", [])
        return {str(e["file"]): str(e["sha256"]) for e in files}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}


def mark_fits_done(cfg: Config, samples_dir: Path, fits_dir: Path) -> None:
    """Record a complete fits folder for ``cfg`` and these samples (also after `bkg fit`)."""
    outputs = [p.name for p in fits_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    cache.mark_done(fits_dir, fits_key(cfg, samples_dir), outputs, config_key=fits_config_key(cfg))


def run_fits_stage(
    cfg: Config, *, samples_dir: Path, fits_dir: Path, progress: Progress = _noop
) -> tuple[str, str]:
    """Fit every source unless the fits folder holds the fits of these samples and config."""
    key = fits_key(cfg, samples_dir)
    if cache.is_fresh(fits_dir, key):
        progress("fits", "reused")
        return "reused", key
    from bkg.sources import run_fits

    progress("fits", "running")
    estimates = run_fits(cfg, samples_dir=samples_dir, out_dir=fits_dir)
    from bkg.sources import read_estimates
    from bkg.sources.closure import run_closure

    progress("closure", "running")  # direct estimates by biased simulation (bkg closure)
    if run_closure(cfg, fits_dir):
        estimates = read_estimates(fits_dir)
    progress("closure", "done")
    mark_fits_done(cfg, samples_dir, fits_dir)
    log.info("fitted %d sources", len(estimates))
    return "ran", key


def _efficiency_function(
    samples_dir: Path, cfg: Config
) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """Signal efficiency per MOT versus mass, from the signal sample (log-mass interpolation).

    The signal sample is made of beam-core muons; a MOT is any muon of the M2 beam,
    and the backgrounds are per such muon (the leading-hadron and dimuon yields carry
    the core fraction too). So the factor that multiplies the eq. (6) yield per MOT is
    (1 - halo fraction) x the conditional efficiency of the sample: the halo makes no
    signal that the trigger keeps. Outside the simulated masses the nearest measured
    value is used (``np.interp``).
    """
    from bkg.sim import signal_fractions

    masses, frac = signal_fractions(samples_dir, cfg)
    eff, err = frac["selection"]
    trig, trig_err = frac["trigger"]
    box, box_err = frac["box"]
    core = 1.0 - cfg.beam.halo_fraction
    per_mot = core * eff

    def efficiency(m: np.ndarray) -> np.ndarray:
        return np.interp(np.log(np.asarray(m, dtype=float)), np.log(masses), per_mot)

    return efficiency, {
        "masses_gev": masses.tolist(),
        "efficiency": eff.tolist(),
        "error": err.tolist(),
        "definition": "selected / (true E'_mu in the signal box), beam-core muons",
        "beam_core_fraction": core,
        "efficiency_per_mot": per_mot.tolist(),
        "definition_per_mot": "beam_core_fraction x efficiency: multiplies the x >= 1/2 yield per MOT",
        "trigger_efficiency": trig.tolist(),
        "trigger_efficiency_error": trig_err.tolist(),
        "box_fraction": box.tolist(),
        "box_fraction_error": box_err.tolist(),
        "definition_box_fraction": (
            "events with true E'_mu in the signal box / all events: the largest trigger "
            "efficiency a trigger that keeps only the box can have"
        ),
    }


def run_report(
    cfg: Config,
    *,
    name: str | None = None,
    out_root: str | Path = "reports",
    samples_dir: str | Path | None = None,
    fits_dir: str | Path = "fits",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = _noop,
) -> ReportResult:
    """Run every stage and write ``out_root/<name>/``.

    Args:
        cfg: the effective configuration.
        name: report folder name (default: ``cfg.name``).
        out_root: folder that holds the reports.
        samples_dir: samples folder (default: ``cfg.samples.folder``).
        fits_dir: fits folder.
        workers: local worker processes for sample generation (default: all cores).
        scheduler: a Dask scheduler address, used instead of local processes.
        progress: called with (stage, state) as stages start and finish.
    """
    from bkg.report.claims import evaluate_claims
    from bkg.report.html import render_index
    from bkg.report.provenance import collect_provenance, file_hashes
    from bkg.report.results import collect_results
    from bkg.report.sensitivity import run_sensitivity

    name = name or cfg.name
    from bkg.config import check_report_name

    check_report_name(name, source="--name")  # a folder under out_root, never '..' or a path
    samples_dir = Path(samples_dir or cfg.samples.folder)
    fits_dir = Path(fits_dir)
    scheduler = scheduler or cfg.run.scheduler
    stages: dict[str, str] = {}
    keys: dict[str, str] = {}
    timings: dict[str, float] = {}

    def step(stage: str, func: Callable[[], Any]) -> Any:
        interrupt.check()
        t0 = time.perf_counter()
        progress(stage, "running")
        out = func()
        timings[stage] = time.perf_counter() - t0
        stages.setdefault(stage, "ran")
        progress(stage, f"done ({timings[stage]:.1f} s)")
        return out

    t0 = time.perf_counter()
    stages["samples"], keys["samples"] = run_samples_stage(
        cfg, samples_dir=samples_dir, workers=workers, scheduler=scheduler, progress=progress
    )
    timings["samples"] = time.perf_counter() - t0
    interrupt.check()
    t0 = time.perf_counter()
    stages["fits"], keys["fits"] = run_fits_stage(
        cfg, samples_dir=samples_dir, fits_dir=fits_dir, progress=progress
    )
    timings["fits"] = time.perf_counter() - t0
    interrupt.check()

    with atomic_dir(Path(out_root) / name) as tmp:
        from bkg.sources import read_estimates
        from bkg.sources.table import write_table

        estimates = read_estimates(fits_dir)
        table1 = step("table", lambda: write_table(estimates, cfg, out_dir=tmp))
        efficiency, eff_record = step("efficiency", lambda: _efficiency_function(samples_dir, cfg))
        write_json(tmp / "signal_efficiency.json", eff_record)
        sens = step("sensitivity", lambda: run_sensitivity(cfg, out_dir=tmp, efficiency=efficiency))
        masses, signal_ref = sens.masses_gev, sens.yield_per_mot_ref

        from bkg.stats import run_limits, run_workspace

        ws_files = step(
            "workspace",
            lambda: run_workspace(
                cfg,
                table1_path=tmp / "table1.json",
                masses_gev=masses,
                signal_per_mot_ref=signal_ref,
                out_dir=tmp / "workspace",
            ),
        )
        limits = step(
            "limits",
            lambda: run_limits(
                cfg,
                table1_path=tmp / "table1.json",
                masses_gev=masses,
                signal_per_mot_ref=signal_ref,
                out_dir=tmp,
            ),
        )
        from bkg.sim.figures import fig2_curves

        fig2 = fig2_curves(cfg)  # plotted as Fig. 2 and judged in the claims
        step(
            "figures",
            lambda: _figures(
                cfg, samples_dir=samples_dir, fits_dir=fits_dir, out_dir=tmp / "figures", fig2=fig2
            ),
        )
        limits_json = json.loads((tmp / "limits.json").read_text())
        step(
            "hepdata",
            lambda: _hepdata(
                tmp, table1=table1, limits=limits_json, sens=sens, cfg=cfg, ws_files=ws_files
            ),
        )
        results = collect_results(
            cfg,
            samples_dir=samples_dir,
            fits_dir=fits_dir,
            table1=table1,
            sensitivity=sens,
            limits=limits,
            efficiency=eff_record,
            fig2=fig2,
        )
        write_json(tmp / "results.json", results)
        claims = [
            c.as_dict() for c in evaluate_claims(results, beam_energy_gev=cfg.beam.energy_gev)
        ]
        write_json(tmp / "claims.json", {"claims": claims})
        write_text(tmp / "claims.md", _claims_markdown(claims))

        inputs = {f"samples/{k}": v for k, v in samples_hashes(samples_dir).items()}
        inputs.update({f"fits/{k}": v for k, v in cache.recorded_outputs(fits_dir).items()})
        seeds = {"root": cfg.seed, "samples": _manifest_seeds(samples_dir), "toys": cfg.seed}
        outputs = file_hashes(tmp, exclude=("provenance.json", "index.html"))
        provenance = collect_provenance(
            cfg, inputs=inputs, outputs=outputs, seeds=seeds, stages={k: v for k, v in keys.items()}
        )
        write_json(tmp / "provenance.json", provenance)
        figures = sorted((tmp / "figures").glob("*.png"))
        fits = {
            p.stem: json.loads(p.read_text())
            for p in sorted(fits_dir.glob("*.json"))
            if not p.name.startswith(".")
        }
        write_text(
            tmp / "index.html",
            render_index(
                title=f"na64mu-bkg report: {name}", table1=table1, limits=limits_json, fits=fits,
                claims=claims, figures=figures, provenance=provenance, root=tmp,
            ),
        )  # fmt: skip
        del limits
    return ReportResult(folder=Path(out_root) / name, stages=stages, claims=claims, table1=table1)


def _manifest_seeds(samples_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((samples_dir / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return {}
    return {entry["file"]: entry.get("seed") for entry in manifest.get("files", [])}


def _figures(
    cfg: Config,
    *,
    samples_dir: Path,
    fits_dir: Path,
    out_dir: Path,
    fig2: Fig2Curves,
) -> list[Path]:
    """Sample figures (Figs. 2, 3, 5) and a copy of each fit's diagnostic figure."""
    from bkg.sim import figures as simfig

    written = list(simfig.plot_all(cfg, samples_dir=samples_dir, out_dir=out_dir, fig2=fig2))
    for src in sorted(fits_dir.glob("*.png")) + sorted(fits_dir.glob("*.pdf")):
        dst = out_dir / f"fit_{src.name}"
        shutil.copyfile(src, dst)
        written.append(dst)
    return written


def _hepdata(
    tmp: Path,
    *,
    table1: dict[str, Any],
    limits: dict[str, Any],
    sens: Any,
    cfg: Config,
    ws_files: Any,
) -> Path:
    from bkg.report.hepdata import write_hepdata

    ref = cfg.g_minus_2.reference
    band = {
        "delta_a_mu": ref.delta_a_mu, "sigma": ref.sigma, "reference": ref.name,
        "band_sigmas": cfg.g_minus_2.band_sigmas, "masses_gev": sens.masses_gev.tolist(),
        "low": sens.g2_low.tolist(), "central": sens.g2_central.tolist(), "high": sens.g2_high.tolist(),
    }  # fmt: skip
    files = [tmp / "workspace" / "BkgOnly.json", tmp / "workspace" / "patchset.json"]
    return write_hepdata(
        tmp / "hepdata",
        table1=table1,
        limits=limits,
        g2_band=band,
        beam_energy_gev=cfg.beam.energy_gev,
        workspace_files=[f for f in files if f.exists()],
    )


def _fmt_claim_value(v: Any) -> str:
    """A claim's paper or reproduced value, floats to 3 significant digits."""
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_claim_value(x) for x in v) + "]"
    return str(v)


def _claims_markdown(claims: list[dict[str, Any]]) -> str:
    fmt = _fmt_claim_value
    n_ok = sum(c["verdict"] == "agrees" for c in claims)
    head = (
        "# Claims of PRD 105, 052006: not applicable (they describe its 160 GeV beam)"
        if none_applicable(claims)
        else f"# Claims of PRD 105, 052006 reproduced: {n_ok} of {len(claims)}"
    )
    lines = [
        head,
        "",
        "| statement | section | paper | reproduced | criterion | verdict |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c['statement']} | {c['section']} | {fmt(c['paper'])} | {fmt(c['reproduced'])} | {c['criterion']} | {c['verdict']} |"
        for c in claims
    ]
    return "\n".join(lines)
