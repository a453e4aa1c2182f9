"""Command-line front end: one subcommand per stage, plus ``report`` (all stages).

Heavy libraries are imported inside the commands, so ``bkg --help`` is instant.
User errors (:class:`bkg.errors.BkgError`) print one line and exit with code 2;
``--debug`` shows their traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from bkg import __version__, interrupt, sizes
from bkg.errors import BkgError, SampleError, one_line
from bkg.memory import heap_policy

log = logging.getLogger("bkg")


class _PositiveNumber(click.ParamType):
    """A finite number >= ``minimum``, or > 0 when ``minimum`` is 0 (click's FloatRange
    lets nan and inf through), and at most ``maximum`` (:mod:`bkg.sizes`)."""

    name = "number"

    def __init__(self, minimum: float, maximum: float = float("inf")) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if self.minimum > 0:
            ok, expected = number >= self.minimum, f"a finite number >= {self.minimum:g}"
        else:
            ok, expected = number > 0, "a finite number > 0"
        if not (math.isfinite(number) and ok):
            self.fail(f"{value!r}: expected {expected}", param, ctx)
        if number > self.maximum:
            self.fail(
                f"{value!r}: at most {self.maximum:g} (docs/guarantees.md, Limits on sizes)",
                param,
                ctx,
            )
        return number


#: event counts (at least one) and positive quantities such as a mass
COUNT = _PositiveNumber(1.0)
POSITIVE = _PositiveNumber(0.0)
#: muons to simulate, muons of a projection, and simulated events of other samples
SIMULATED_MOT = _PositiveNumber(1.0, sizes.MAX_SIMULATED_MOT)
PROJECTION_MOT = _PositiveNumber(1.0, sizes.MAX_PROJECTION_MOT)
SAMPLE_EVENTS = _PositiveNumber(1.0, sizes.MAX_SAMPLE_EVENTS)
SIGNAL_EVENTS = _PositiveNumber(1.0, sizes.MAX_SIGNAL_EVENTS_PER_MASS)

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file with the keys to change (default: the built-in NA64mu setup).",
)


def _check_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--name`` becomes a folder under the reports: a plain name, never '.', '..' or a path."""
    if value is not None:
        from bkg.config import check_report_name

        check_report_name(value, source="--name")
    return value


NAME_OPTION = click.option(
    "--name", default=None, callback=_check_name, help="Report name (default: the config's name)."
)
REPORTS_OPTION = click.option(
    "--out",
    "out_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder that holds the reports (each in <out>/<name>/).",
)
SAMPLES_OPTION = click.option(
    "--samples",
    "samples_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Samples folder (default: the config's samples.folder).",
)
FITS_OPTION = click.option(
    "--fits",
    "fits_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("fits"),
    show_default=True,
    help="Folder of the fits/<source>.json files.",
)


def _set_pdf(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--pdf``: which figures are written as PDF besides the PNG (:mod:`bkg.plotting`)."""
    if value is not None:
        from bkg.plotting import set_pdf_mode

        set_pdf_mode(value)
    return value


PDF_OPTION = click.option(
    "--pdf",
    type=click.Choice(["paper", "all", "none"]),
    default=None,
    expose_value=False,
    callback=_set_pdf,
    help="Figures also written as PDF: paper (default: the paper's Figs. 2-6), all, none.",
)


def _out_dir_option(help_text: str, default: Path | None = None) -> Any:
    """The ``--out`` folder option of a stage that writes into one folder."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def _load(config_path: Path | None, **overrides: Any) -> Any:
    from bkg.config import load_config

    return load_config(config_path, **{k: v for k, v in overrides.items() if v is not None})


def _set_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("bkg")
    root.handlers[:] = [handler]
    root.setLevel(level)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bkg")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
@click.option("--debug", is_flag=True, help="Show the traceback of user errors too.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """na64mu-bkg: backgrounds, tail fits, pyhf limits and reports for NA64mu.

    \b
    Stages (each reads the previous stage's folder):
      bkg samples      fast simulation -> samples/*.root + MANIFEST.json
      bkg fit          five background sources, zfit tail fits -> fits/*.json
      bkg table        Table I (md, tex, csv, json)
      bkg workspace    pyhf BkgOnly.json + patchset.json
      bkg limits       CLs limits on g' versus m_Z'
      bkg sensitivity  background-free reach and the g-2 band
      bkg report       all of the above into reports/<name>/
      bkg verify REF   compare a run with a reference report

    \b
    Tools:
      bkg config       show or validate a configuration
      bkg samples check   does a GEANT4 ntuple meet the samples contract?
      bkg trigger-scan    trigger rate, efficiency and backgrounds per S4 geometry
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _set_logging(verbose)


# ---------------------------------------------------------------- config
@cli.group("config")
def config_group() -> None:
    """Show or validate a configuration."""


@config_group.command("show")
@CONFIG_OPTION
def config_show(config_path: Path | None) -> None:
    """Print the effective configuration (the default merged with FILE) as YAML."""
    import yaml

    cfg = _load(config_path)
    click.echo(f"# effective configuration, sha256 {cfg.hash}")
    click.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False), nl=False)


@config_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def config_validate(file: Path) -> None:
    """Check FILE and list every problem with its key path."""
    from bkg.config import load_config
    from bkg.errors import ConfigError

    try:
        cfg = load_config(file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        raise SystemExit(2) from None
    click.echo(f"{file}: valid (sha256 {cfg.hash[:16]})")


OVERLAY_OPTION = click.option(
    "--overlay",
    "overlay_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV of curves to draw beside the projection (m_gev,g_prime,label,citation; "
    "docs/overlays.md). Repeatable.",
)


def _overlays(files: tuple[Path, ...]) -> list[Any]:
    from bkg.stats.overlays import read_overlays

    return [curve for f in files for curve in read_overlays(f)]


# ---------------------------------------------------------------- sensitivity
@cli.command("sensitivity")
@CONFIG_OPTION
@NAME_OPTION
@click.option(
    "--n-mot", type=PROJECTION_MOT, default=None, help="Muons on target (default: config n_mot)."
)
@REPORTS_OPTION
@SAMPLES_OPTION
@OVERLAY_OPTION
@PDF_OPTION
def sensitivity_cmd(
    config_path: Path | None,
    name: str | None,
    n_mot: float | None,
    out_root: Path,
    samples_dir: Path | None,
    overlay_files: tuple[Path, ...],
) -> None:
    """Background-free 90% CL reach g'_90(m) and the g-2 band (CSV, JSON, figures).

    The signal efficiency is the one measured on the signal sample when it exists (as in
    ``bkg report``), else the config's ``signal.efficiency``.
    """
    from bkg.report.sensitivity import run_sensitivity

    overlays = _overlays(overlay_files)  # a bad CSV fails before anything is computed
    cfg = _load(config_path, n_mot=n_mot)
    with _report_lock(out_root / (name or cfg.name)):
        result = run_sensitivity(
            cfg,
            out_dir=out_root / (name or cfg.name),
            efficiency=_measured_efficiency(cfg, samples_dir),
            overlays=overlays,
        )
    click.echo(result.summary())
    _written(", ".join(str(f) for f in result.files))


def _report_lock(folder: Path) -> Any:
    """The lock of a report folder, held while a stage command writes into it."""
    from bkg import locks

    return locks.hold([locks.Lock(folder, replaced=True)])


def _written(what: str) -> None:
    """Say on stderr what a single stage wrote, and that the report's summary is older."""
    click.echo(
        f"written: {what} (index.html, hepdata/ and provenance.json change only with `bkg report`)",
        err=True,
    )


# ---------------------------------------------------------------- samples
WORKERS_OPTION = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes (default: all cores).",
)
SCHEDULER_OPTION = click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address tcp://host:port (default: local processes).",
)


@cli.group("samples", invoke_without_command=True)
@CONFIG_OPTION
@click.option(
    "--n-mot",
    type=SIMULATED_MOT,
    default=None,
    help="Beam muons to simulate (default: config samples.n_mot).",
)
@click.option(
    "--only",
    multiple=True,
    help="Only this sample (repeatable): beam, hadrons, leading_hadrons, dimuons, signal.",
)
@_out_dir_option("Where the ROOT files go (default: the config's samples.folder).")
@WORKERS_OPTION
@SCHEDULER_OPTION
@click.pass_context
def samples_group(
    ctx: click.Context, config_path: Path | None, n_mot: float | None, only: tuple[str, ...],
    out_dir: Path | None, workers: int | None, scheduler: str | None,
) -> None:  # fmt: skip
    """Generate the samples with the fast simulation (ROOT ntuples + MANIFEST.json)."""
    if ctx.invoked_subcommand is not None:
        return
    from bkg.report.progress import progress_display
    from bkg.sim import run_samples

    cfg = _load(config_path)
    out = out_dir or Path(cfg.samples.folder)
    with progress_display() as progress:
        manifest = run_samples(
            cfg, out_dir=out, only=only or None, n_mot=n_mot, workers=workers,
            scheduler=scheduler or cfg.run.scheduler, progress=progress.advance,
            locked=_mark_samples(cfg, out, only, n_mot),
        )  # fmt: skip
    for entry in manifest["files"]:
        click.echo(
            f"{out / entry['file']}: {entry['events']} events, {entry['norm_per_mot']:.3g} per MOT"
        )


def _mark_samples(cfg: Any, out: Path, only: tuple[str, ...], n_mot: float | None) -> Any:
    """What `bkg samples` records in the folder before its lock is released."""

    def mark(manifest: dict[str, Any]) -> None:
        from bkg.report.pipeline import mark_samples_done, mark_samples_partial

        if not only and n_mot in (None, cfg.samples.n_mot):
            mark_samples_done(cfg, out, manifest)  # `bkg report` reuses a complete default set
        else:  # not the config's production, but made for its setup
            mark_samples_partial(cfg, out)

    return mark


@samples_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--sample", default=None, help="Sample kind (default: from the file name).")
def samples_check(files: tuple[Path, ...], sample: str | None) -> None:
    """Check ROOT ntuples against the branch contract of samples/README.md."""
    from bkg.sim import check_samples

    problems = check_samples(list(files), sample=sample)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(2)
    click.echo(f"{len(files)} file(s) meet the contract")


# ---------------------------------------------------------------- fit / table
@cli.command("fit")
@CONFIG_OPTION
@SAMPLES_OPTION
@_out_dir_option("Where fits/<source>.json and the fit figures go.", Path("fits"))
@click.option("--only", multiple=True, help="Only this source (repeatable).")
@click.option("--unbinned", is_flag=True, help="Unbinned fits instead of the default binned ones.")
@PDF_OPTION
def fit_cmd(
    config_path: Path | None,
    samples_dir: Path | None,
    out_dir: Path,
    only: tuple[str, ...],
    unbinned: bool,
) -> None:
    """Estimate every background source with zfit tail fits -> fits/<source>.json."""
    from bkg import locks
    from bkg.report.pipeline import check_made_for
    from bkg.sources import run_fits

    cfg = _load(config_path)
    samples = samples_dir or Path(cfg.samples.folder)
    check_made_for(cfg, samples, "samples")
    # held until the folder is marked: no other run writes between the fits and the mark
    with locks.hold([locks.Lock(samples, exclusive=False), locks.Lock(out_dir)]):
        estimates = run_fits(
            cfg, samples_dir=samples, out_dir=out_dir, only=only or None, unbinned=unbinned,
            closure_follows=True,
        )  # fmt: skip
        import json

        from bkg.sources import record_fits
        from bkg.sources.base import SourceEstimate
        from bkg.sources.closure import run_closure

        # direct estimates by biased simulation, and the levels they allow
        for done in run_closure(cfg, out_dir, only=list(only) or None):
            estimates[done] = SourceEstimate.from_dict(
                json.loads((out_dir / f"{done}.json").read_text())
            )
        record_fits(cfg, samples, out_dir)  # the closure rewrote estimates: record the set
        # a Ctrl-C that a library swallowed (e.g. in a weakref callback) still stops here,
        # before the folder is marked complete
        interrupt.check()
        if not only and not unbinned:
            from bkg.report.pipeline import mark_fits_done

            mark_fits_done(cfg, samples, out_dir)  # `bkg report` reuses these fits
    for est in estimates.values():
        bound = "<= " if est.upper_bound else ""
        click.echo(f"{est.label:<32} {bound}{est.level_per_mot:.2e} per MOT  ({est.method})")


@cli.command("closure")
@CONFIG_OPTION
@FITS_OPTION
@click.option("--only", multiple=True, help="Only this source (repeatable).")
@click.option("--n-events", type=click.IntRange(1000, 10**9), default=None,
              help="Biased events per source (default: bkg.sources.closure.CLOSURE_EVENTS).")  # fmt: skip
def closure_cmd(
    config_path: Path | None, fits_dir: Path, only: tuple[str, ...], n_events: int | None
) -> None:
    """Direct estimates by biased simulation -> `closure` in fits/<source>.json, Table I's level."""
    import json

    from bkg import locks
    from bkg.sources import record_fits
    from bkg.sources.base import SourceEstimate
    from bkg.sources.closure import CLOSURE_EVENTS, closure_table_markdown, run_closure

    cfg = _load(config_path)
    with locks.hold([locks.Lock(fits_dir)]):
        done = run_closure(
            cfg, fits_dir, n_events=n_events or CLOSURE_EVENTS, only=list(only) or None
        )
        record_fits(cfg, Path(cfg.samples.folder), fits_dir)  # the rewritten set, recorded
    ests = {n: SourceEstimate.from_dict(json.loads((fits_dir / f"{n}.json").read_text()))
            for n in done}  # fmt: skip
    click.echo(closure_table_markdown(ests))


@cli.command("table")
@CONFIG_OPTION
@FITS_OPTION
@NAME_OPTION
@REPORTS_OPTION
def table_cmd(config_path: Path | None, fits_dir: Path, name: str | None, out_root: Path) -> None:
    """Write Table I (md, tex, csv, json) from the fits folder."""
    from bkg import locks
    from bkg.report.pipeline import check_made_for
    from bkg.sources import read_estimates
    from bkg.sources.table import write_table

    cfg = _load(config_path)
    out = out_root / (name or cfg.name)
    with locks.hold([locks.Lock(fits_dir, exclusive=False), locks.Lock(out, replaced=True)]):
        check_made_for(cfg, fits_dir, "fits")
        write_table(read_estimates(fits_dir), cfg, out_dir=out)
    click.echo((out / "table1.md").read_text(), nl=False)
    _written(f"{out}/table1.{{md,tex,csv,json}}")


# ---------------------------------------------------------------- workspace / limits
def _has_sample(folder: Path, sample: str) -> bool:
    from bkg.ntuple import sample_paths

    try:
        return all(p.exists() for p in sample_paths(folder, sample))
    except BkgError:
        return False


def _measured_efficiency(cfg: Any, samples_dir: Path | None) -> Any:
    """The signal efficiency versus mass measured on the signal sample, or None without one
    (then ``signal.efficiency`` of the config applies), as ``bkg report`` uses it."""
    from bkg.report.pipeline import check_made_for, efficiency_function

    folder = samples_dir or Path(cfg.samples.folder)
    check_made_for(cfg, folder, "samples")
    if not _has_sample(folder, "signal"):
        if samples_dir is not None:  # asked for explicitly: do not fall back silently
            raise SampleError(
                f"--samples {samples_dir}: no signal sample there (MANIFEST.json listing "
                "signal files); leave out --samples to use signal.efficiency of the config"
            )
        return None
    return efficiency_function(folder, cfg)[0]


def _signal_inputs(cfg: Any, samples_dir: Path | None) -> tuple[Any, Any]:
    """Masses and signal yield per MOT at g'_ref, with the measured efficiency if samples exist."""
    from bkg.report.sensitivity import compute_sensitivity

    sens = compute_sensitivity(cfg, efficiency=_measured_efficiency(cfg, samples_dir))
    return sens.masses_gev, sens.yield_per_mot_ref


@cli.command("workspace")
@CONFIG_OPTION
@NAME_OPTION
@REPORTS_OPTION
@SAMPLES_OPTION
@click.option(
    "--mass",
    type=POSITIVE,
    default=None,
    help="Also write the full workspace of this m_Zprime (GeV).",
)
def workspace_cmd(
    config_path: Path | None,
    name: str | None,
    out_root: Path,
    samples_dir: Path | None,
    mass: float | None,
) -> None:
    """Write the pyhf BkgOnly.json + patchset.json (one patch per mass) from Table I."""
    from bkg.stats import run_workspace

    cfg = _load(config_path)
    out = out_root / (name or cfg.name)
    masses, signal = _signal_inputs(cfg, samples_dir)
    with _report_lock(out):
        files = run_workspace(
            cfg,
            table1_path=out / "table1.json",
            masses_gev=masses,
            signal_per_mot_ref=signal,
            out_dir=out / "workspace",
            mass=mass,
        )
    for f in files.values():
        click.echo(str(f))


@cli.command("limits")
@CONFIG_OPTION
@NAME_OPTION
@REPORTS_OPTION
@SAMPLES_OPTION
@click.option(
    "--observed",
    type=click.IntRange(min=0, max=sizes.MAX_OBSERVED),
    default=None,
    help=f"Observed events in the signal box (at most {sizes.MAX_OBSERVED:g}).",
)
@click.option(
    "--preset",
    type=click.Choice(["na64mu-2022"]),
    default=None,
    help="A published run: na64mu-2022 = 1.98e10 MOT, 0 events observed (PRL 132, 211803 (2024)).",
)
@click.option(
    "--calculator",
    type=click.Choice(["auto", "toys", "asymptotic"]),
    default=None,
    help="CLs from toys or pyhf's asymptotic formulae (default: statistics.calculator; "
    "auto: toys below statistics.toys_below_background events).",
)
@OVERLAY_OPTION
@PDF_OPTION
def limits_cmd(
    config_path: Path | None, name: str | None, out_root: Path, samples_dir: Path | None,
    observed: int | None, preset: str | None, calculator: str | None,
    overlay_files: tuple[Path, ...],
) -> None:  # fmt: skip
    """Expected (and observed) CLs limits on g' versus m_Zprime with bands.

    Table I is read from, and the limits written into, reports/<name>/ (default: the
    config's name). A variant (--preset, --observed or --calculator) reads Table I from
    the config's report, reports/<config name>/, and writes into its own folder,
    reports/<config name>-<variant>/ or the one --name gives, with a copy of the Table I
    it used: never over the default report unless --name names it.
    """
    from bkg.stats import run_limits

    overlays = _overlays(overlay_files)  # a bad CSV fails before anything is computed
    cfg = _load(config_path)
    variant = _limits_variant(preset=preset, observed=observed, calculator=calculator)
    source = out_root / (cfg.name if variant else (name or cfg.name))
    out = out_root / (name or (f"{cfg.name}-{variant}" if variant else cfg.name))
    table1 = source / "table1.json"
    masses, signal = _signal_inputs(cfg, samples_dir)
    with _report_lock(out):
        result = run_limits(
            cfg, table1_path=table1, masses_gev=masses, signal_per_mot_ref=signal,
            out_dir=out, observed=observed, preset=preset, calculator=calculator,
            overlays=overlays,
            compare_presets=("na64mu-2022",) if cfg.beam.energy_gev == 160.0 else (),
        )  # fmt: skip
        if out != source:
            from bkg.atomic import write_text

            # the variant folder says which Table I its limits used
            write_text(out / "table1.json", table1.read_text(encoding="utf-8"))
    click.echo(result.summary())
    _written(f"{out}/limits.{{json,csv}}, sensitivity.{{png,pdf}}, reach_vs_mot.{{png,pdf}}")


def _limits_variant(*, preset: str | None, observed: int | None, calculator: str | None) -> str:
    """The folder suffix of a `bkg limits` variant ('' for the default run)."""
    parts = [preset] if preset else []
    if observed is not None:
        parts.append(f"observed-{observed}")
    if calculator is not None:
        parts.append(calculator)
    return "-".join(parts)


# ---------------------------------------------------------------- report / verify
@cli.command("report")
@CONFIG_OPTION
@NAME_OPTION
@REPORTS_OPTION
@SAMPLES_OPTION
@FITS_OPTION
@WORKERS_OPTION
@SCHEDULER_OPTION
@PDF_OPTION
def report_cmd(
    config_path: Path | None, name: str | None, out_root: Path, samples_dir: Path | None,
    fits_dir: Path, workers: int | None, scheduler: str | None,
) -> None:  # fmt: skip
    """Run every stage (reusing unchanged ones) and write reports/<name>/."""
    from bkg.report.pipeline import run_report
    from bkg.report.progress import progress_display

    cfg = _load(config_path)
    with progress_display() as progress:
        result = run_report(
            cfg, name=name, out_root=out_root, samples_dir=samples_dir, fits_dir=fits_dir,
            workers=workers, scheduler=scheduler, progress=progress.stage,
            advance=progress.advance,
        )  # fmt: skip
    click.echo(result.summary())


@cli.command("verify")
@click.argument("reference", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Compare this existing report instead of re-running the reference's config.")  # fmt: skip
@click.option(
    "--all", "show_all", is_flag=True, help="List every compared value, not only the mismatches."
)
def verify_cmd(reference: Path, run_dir: Path | None, show_all: bool) -> None:
    """Re-run REFERENCE's config (or read --run) and compare every number with it."""
    from bkg.report.progress import progress_display
    from bkg.report.verify import verify

    with progress_display() as progress:
        ok = verify(
            reference, run_dir=run_dir, show_all=show_all, echo=click.echo,
            progress=progress.stage, advance=progress.advance,
        )  # fmt: skip
    raise SystemExit(0 if ok else 1)


@cli.command("trigger-scan")
@CONFIG_OPTION
@click.option(
    "--geometry",
    "geometries",
    multiple=True,
    help="S4 as OFFSET,WIDTH[,HEIGHT[,Z]] (cm, cm, cm, m); repeatable "
    "(default: the rows behind the default geometry).",
)
@click.option(
    "--n-beam",
    type=SIMULATED_MOT,
    default="1e7",
    show_default=True,
    help="Beam muons per geometry.",
)
@click.option(
    "--n-signal",
    type=SIGNAL_EVENTS,
    default="3e4",
    show_default=True,
    help="Signal events per mass.",
)
@click.option(
    "--n-hadrons",
    type=SAMPLE_EVENTS,
    default="4.5e6",
    show_default=True,
    help="Hadrons per geometry.",
)
@_out_dir_option("Folder of s4_scan.{md,csv,json} (default: reports/<name>-s4-scan).")
def trigger_scan_cmd(
    config_path: Path | None, geometries: tuple[str, ...], n_beam: float, n_signal: float,
    n_hadrons: float, out_dir: Path | None,
) -> None:  # fmt: skip
    """Trigger rate, signal trigger efficiency and hadron-decay level per S4 geometry."""
    from bkg import trigger_scan as ts

    if len(geometries) > sizes.MAX_GEOMETRIES:
        raise click.BadParameter(
            f"{len(geometries)} geometries; at most {sizes.MAX_GEOMETRIES} per scan "
            "(each simulates --n-beam muons)",
            param_hint="'--geometry'",
        )
    cfg = _load(config_path)
    geos = [ts.parse_geometry(g) for g in geometries] or list(ts.DEFAULT_GEOMETRIES)
    rows = ts.scan_s4(
        cfg, geos, n_beam=int(n_beam), n_signal=int(n_signal), n_hadrons=int(n_hadrons),
        progress=lambda label: click.echo(f"S4 {label} ...", err=True),
    )  # fmt: skip
    folder = out_dir or Path("reports") / f"{cfg.name}-s4-scan"
    md = ts.write_scan(rows, cfg, folder)[0]
    click.echo(md.read_text(), nl=False)
    click.echo(f"written: {folder}/s4_scan.{{md,csv,json}}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bkg`` command."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    interrupt.install()
    heap_policy("keep")  # the freed heap reused, not faulted in again (bkg.memory)
    try:
        cli.main(args=args, prog_name="bkg", standalone_mode=False)
        if argv is None and sys.getprofile() is None and sys.gettrace() is None:
            _exit_now(0)  # not under a profiler or coverage, which write at exit
    except click.exceptions.Abort:
        click.echo(interrupt.message(), err=True)
        raise SystemExit(interrupt.exit_code()) from None
    except click.UsageError as exc:
        # click prints Usage / Try / blank / Error: one line instead, like every user error
        where = exc.ctx.command_path if exc.ctx is not None else "bkg"
        hint = f" (see `{where} --help`)" if exc.ctx is not None else ""
        click.echo(f"bkg: error: {where}: {one_line(exc.format_message())}{hint}", err=True)
        raise SystemExit(2) from None
    except click.ClickException as exc:
        click.echo(f"bkg: error: {one_line(exc.format_message())}", err=True)
        raise SystemExit(2) from None
    except BkgError as exc:
        if debug:
            raise
        click.echo(f"bkg: error: {one_line(exc)}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        click.echo(interrupt.message(), err=True)
        raise SystemExit(interrupt.exit_code()) from None
    except Exception:
        # a Ctrl-C that reached a C extension mid-import surfaces as another error
        # (ImportError: initialization failed): it is still the user's interrupt
        if interrupt.requested() and not debug:
            click.echo(interrupt.message(), err=True)
            raise SystemExit(interrupt.exit_code()) from None
        raise


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown.

    After a command that imported TensorFlow and held large arrays, the final garbage
    collection and module teardown take 1-3 s of one core and free nothing the operating
    system would not. The exit handlers (the fork server, multiprocessing's children and
    temporary folders) run first and the standard streams are flushed; every output file
    is already closed and renamed into place.
    """
    import atexit
    import os

    logging.shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
