"""Background sources: one module per source behind one interface (:class:`Source`).

A new source is one module with a ``@register``-ed :class:`Source` subclass plus
its import line in :data:`_MODULES` below. A :class:`StreamingSource` (a reducer of
the chunks of its one sample, then an estimate from the sums) shares the reading of
its sample with the other streaming sources of that sample in :func:`run_fits`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bkg.config import Config
from bkg.errors import ConfigError
from bkg.sources.base import (
    REGISTRY,
    Source,
    SourceEstimate,
    StreamingSource,
    register,
)

log = logging.getLogger(__name__)

#: The registry lines: one module per source.
_MODULES = ("momentum_mismatch", "hermeticity", "hadron_decay", "punch_through", "dimuon")
for _m in _MODULES:
    importlib.import_module(f"bkg.sources.{_m}")

__all__ = [
    "REGISTRY",
    "Source",
    "SourceEstimate",
    "StreamingSource",
    "read_estimates",
    "register",
    "run_fits",
]


def run_fits(
    cfg: Config,
    *,
    samples_dir: Path,
    out_dir: Path,
    only: Sequence[str] | None = None,
    unbinned: bool = False,
    figures: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    closure_follows: bool = False,
) -> dict[str, SourceEstimate]:
    """Estimate every (or the named) background source and write fits/<source>.json + figures.

    Args:
        cfg: configuration.
        samples_dir: folder with the samples and MANIFEST.json.
        out_dir: output folder (created).
        only: names of the sources to run (default: all registered).
        unbinned: unbinned fits instead of binned ones.
        figures: write <source>.png/.pdf.
        progress: called as ``progress("fits", sources_done, sources_total)``.
        closure_follows: :func:`bkg.sources.closure.run_closure` runs next (as in `bkg fit`
            and `bkg report`); it rewrites and redraws the estimates it checks, whose
            figures are then not drawn here.

    Returns:
        name -> SourceEstimate.

    Raises:
        SampleError, FitError, OutputError, ConfigError (unknown source name).
    """
    from bkg.ntuple import read_manifest

    names = list(dict.fromkeys(only)) if only else list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ConfigError(
            f"unknown source(s) {', '.join(unknown)} (known: {', '.join(REGISTRY)})",
            source="--only",
        )
    # the sha256 of the files the chosen sources read (all of them would be 0.4 s per run),
    # but not of those unchanged since `bkg samples` hashed them (~1 s at 1e7 MOT)
    from bkg.cache import unchanged_outputs

    kinds = {kind for name in names for kind in REGISTRY[name].samples}
    manifest = read_manifest(samples_dir, kinds=kinds, verified=unchanged_outputs(samples_dir))
    made_with = {
        str(e.get("config_hash"))
        for e in manifest.get("files", [])
        if e.get("generator") == "bkg.sim" and e.get("sample") in kinds
    }
    if len(made_with) > 1:  # e.g. two `bkg samples --only` runs with different configs
        log.warning(
            "%s: the samples these fits read were made with %d different configurations",
            samples_dir,
            len(made_with),
        )
    out_dir = Path(out_dir)
    from bkg import locks

    # the samples are read (shared), the fits folder written (exclusive) for the whole run
    with locks.hold([locks.Lock(Path(samples_dir), exclusive=False), locks.Lock(out_dir)]):
        locks.clean_stale(out_dir)  # temporaries of a run killed while writing
        try:
            return _run_fits_locked(
                cfg, samples_dir, out_dir, names, manifest, unbinned, figures, progress,
                closure_follows,
            )  # fmt: skip
        except BaseException:
            from bkg.sources import side

            side.close()  # the direct estimates of a failed run are not wanted
            raise


def _run_fits_locked(
    cfg: Config,
    samples_dir: Path,
    out_dir: Path,
    names: list[str],
    manifest: dict[str, Any],
    unbinned: bool,
    figures: bool,
    progress: Callable[[str, int, int], None] | None = None,
    closure_follows: bool = False,
) -> dict[str, SourceEstimate]:
    """:func:`run_fits` with the folders' locks held."""
    from bkg.atomic import dumps_json, write_text
    from bkg.sources import side
    from bkg.sources.closure import checks

    def drawn_here(name: str, est: SourceEstimate) -> bool:
        return figures and not (closure_follows and checks(name, est))

    sources = {name: REGISTRY[name]() for name in names}
    # the streaming sources of a sample kind share one pass over it (the beam sample is
    # read once for momentum_mismatch and hermeticity), made when the first one is due
    groups: dict[str, list[StreamingSource[Any]]] = {}
    for s in sources.values():
        if isinstance(s, StreamingSource) and len(s.samples) == 1:
            groups.setdefault(s.samples[0], []).append(s)
    # on a second core meanwhile (bkg.sources.side): the passes over the samples, the
    # counting sources, the direct estimates by biased simulation (hermeticity's, the
    # closure's); this process imports zfit while the side process reads
    side.start(cfg, names, samples=(Path(samples_dir), dict(manifest), unbinned),
               passes=[[s.name for s in g] for g in groups.values()])  # fmt: skip
    if side.reading() and any(s.fits for s in sources.values()):
        from bkg.fit._zfit import load_zfit

        load_zfit()
    passes: dict[str, dict[str, tuple[Any, list[Mapping[str, Any]]]]] = {}
    out: dict[str, SourceEstimate] = {}
    asked: dict[str, tuple[Any, ...] | None] = {}  # figures queued in the side process
    for name in names:
        source = sources[name]
        with _naming_the_sample(Path(samples_dir), manifest, source.samples):
            if isinstance(source, StreamingSource) and len(source.samples) == 1:
                kind = source.samples[0]
                if kind not in passes:
                    passes[kind] = side.reduce_together(
                        cfg, Path(samples_dir), manifest, groups[kind], unbinned
                    )
                reduced, entries = passes[kind].pop(name)
                est = source.finish(cfg, reduced, entries, unbinned=unbinned)
            else:
                est = side.source_estimate(cfg, source, Path(samples_dir), manifest, unbinned)
        log.info("%s: %.3g per MOT", name, est.level_per_mot)
        out[name] = est
        if drawn_here(name, est):  # drawn there while this process fits the next sources
            asked[name] = side.ask_figure(name, est)
        if progress is not None:
            progress("fits", len(out), len(names))
    # written once every source has its estimate: a fit that fails leaves the folder as
    # it was, not new files of some sources beside old ones of the others
    texts = {name: dumps_json(est.to_dict()) for name, est in out.items()}  # all, then write
    for name in out:
        write_text(out_dir / f"{name}.json", texts[name])
    # drawn in the side process as the sources were done; here those it has not started
    side.write_figures([(n, e) for n, e in out.items() if drawn_here(n, e)], out_dir, asked)
    # the record of this set, written last: until it is, the folder's estimates disagree
    # with it and read_estimates refuses them (a run killed half-way never gives a mix)
    record_fits(cfg, Path(samples_dir), out_dir)
    return out


def record_fits(cfg: Config, samples_dir: Path, fits_dir: Path, *, key: str | None = None) -> None:
    """Record the sha256 of every file of ``fits_dir`` in its ``.stage.json``.

    ``key`` is the stage key of a complete default run (``bkg report`` reuses such a
    folder); without it the folder is recorded as written, not as reusable.
    """
    from bkg import cache

    outputs = [p.name for p in fits_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    cache.mark_done(fits_dir, key or "written", outputs, config_key=cache.fits_config_key(cfg))


def check_recorded(fits_dir: Path, paths: Mapping[str, Path]) -> None:
    """Refuse estimates that are not the set the last `bkg fit` recorded in ``.stage.json``.

    A folder without a record (estimates written by hand, by an older version) is
    accepted as it is.

    Raises:
        SampleError: a file differs from the record, naming it.
    """
    import json

    from bkg.cache import MARKER
    from bkg.errors import SampleError
    from bkg.ntuple import sha256_file

    try:
        record = json.loads((fits_dir / MARKER).read_text())
    except (OSError, ValueError):
        return
    outputs = record.get("outputs") if isinstance(record, dict) else None
    if not isinstance(outputs, dict):
        return
    for path in paths.values():
        if outputs.get(path.name) != sha256_file(path):
            raise SampleError(
                f"{path}: not the estimate the last `bkg fit` recorded in {fits_dir / MARKER} "
                "(a run was stopped while writing, or the file was changed); rerun `bkg fit`"
            )


@contextlib.contextmanager
def _naming_the_sample(
    samples_dir: Path, manifest: Mapping[str, Any], kinds: Sequence[str]
) -> Iterator[None]:
    """Errors of a source's estimate that do not name a file name the sample files it read
    (``only 0 events in the fit window`` did not say of which files)."""
    from bkg.errors import FitError, SampleError, one_line

    try:
        yield
    except (FitError, SampleError) as exc:
        text = one_line(exc)
        if str(samples_dir) in text:
            raise
        files = [str(e["file"]) for e in manifest.get("files", []) if e.get("sample") in kinds]
        listed = ", ".join(files[:3]) + (f", ... ({len(files)} files)" if len(files) > 3 else "")
        where = f"{samples_dir}/MANIFEST.json, {'/'.join(kinds)} sample ({listed or 'no file'})"
        raise type(exc)(f"{where}: {text}") from None


def read_estimates(fits_dir: Path) -> dict[str, SourceEstimate]:
    """Read fits/<source>.json of every registered source.

    Raises:
        SampleError: no estimate found, some missing (a partial ``bkg fit --only``), or a
            file unreadable, malformed or holding another source's estimate, or a set
            that is not the one the last ``bkg fit`` recorded (:func:`check_recorded`).
    """
    from bkg import locks

    folder = Path(fits_dir)
    with locks.hold([locks.Lock(folder, exclusive=False)]):  # no `bkg fit` writes meanwhile
        return _read_estimates(folder)


def _read_estimates(folder: Path) -> dict[str, SourceEstimate]:
    import json

    from bkg.errors import SampleError, one_line

    if folder.exists() and not folder.is_dir():
        raise SampleError(f"{folder}: not a folder; give the fits folder written by `bkg fit`")
    paths = {name: folder / f"{name}.json" for name in REGISTRY}
    missing = [path.name for path in paths.values() if not path.exists()]
    if len(missing) == len(paths):
        raise SampleError(f"{folder}: no <source>.json found (run `bkg fit` first)")
    if missing:
        raise SampleError(
            f"{folder}: {', '.join(missing)} missing (Table I needs all {len(paths)} sources; "
            "run `bkg fit` without --only)"
        )
    out: dict[str, SourceEstimate] = {}
    for name, path in paths.items():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SampleError(f"{path}: cannot read it ({reason})") from None
        except ValueError as exc:  # also UnicodeDecodeError
            raise SampleError(
                f"{path}: not valid JSON ({one_line(exc)}); rerun `bkg fit`"
            ) from None
        try:
            est = SourceEstimate.from_dict(data)
        except ValueError as exc:
            raise SampleError(
                f"{path}: not a source estimate: {one_line(exc)}; rerun `bkg fit`"
            ) from None
        if est.name != name:
            raise SampleError(
                f"{path}: holds the estimate of '{est.name}', expected '{name}' (its file name); "
                "rerun `bkg fit`"
            )
        out[name] = est
    check_recorded(folder, paths)
    return out
