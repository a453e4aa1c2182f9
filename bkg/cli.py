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

from bkg import __version__
from bkg.errors import BkgError

log = logging.getLogger("bkg")

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file with the keys to change (default: the built-in NA64mu setup).",
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


# ---------------------------------------------------------------- sensitivity
@cli.command("sensitivity")
@CONFIG_OPTION
@click.option("--name", default=None, help="Report name (default: the config's name).")
@click.option("--n-mot", type=float, default=None, help="Muons on target (default: config n_mot).")
@click.option(
    "--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("reports")
)
def sensitivity_cmd(
    config_path: Path | None, name: str | None, n_mot: float | None, out_root: Path
) -> None:
    """Background-free 90% CL reach g'_90(m) and the g-2 band (CSV, JSON, figures)."""
    from bkg.report.sensitivity import run_sensitivity

    cfg = _load(config_path, n_mot=n_mot)
    result = run_sensitivity(cfg, out_dir=out_root / (name or cfg.name))
    click.echo(result.summary())


# ---------------------------------------------------------------- report
@cli.command("report")
@CONFIG_OPTION
@click.option("--name", default=None, help="Report name (default: the config's name).")
@click.option(
    "--out", "out_root", type=click.Path(file_okay=False, path_type=Path), default=Path("reports")
)
def report_cmd(config_path: Path | None, name: str | None, out_root: Path) -> None:
    """Run every stage and write reports/<name>/."""
    from bkg.report.sensitivity import run_sensitivity

    cfg = _load(config_path)
    result = run_sensitivity(cfg, out_dir=out_root / (name or cfg.name))
    click.echo(result.summary())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bkg`` command."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="bkg", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("bkg: interrupted; outputs of the unfinished stage were not written", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except BkgError as exc:
        if debug:
            raise
        click.echo(f"bkg: error: {exc}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        click.echo("bkg: interrupted; outputs of the unfinished stage were not written", err=True)
        raise SystemExit(130) from None


if __name__ == "__main__":  # pragma: no cover
    main()
