"""``bkg verify``: compare every number of a run with a reference report.

Before the values, every file that a report's ``provenance.json`` lists is checked
against its sha256, in the reference and in the run (:func:`check_files`); then each
JSON output is flattened to (key path -> number, :func:`flatten`) and compared with the
reference under a tolerance that depends on what the number is (:data:`COMPARED`,
:func:`compare_reports`). Entry point: :func:`verify`. What it promises:
docs/guarantees.md ("bkg verify").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bkg.errors import BkgError

__all__ = ["COMPARED", "Comparison", "check_files", "compare_reports", "flatten"]

#: Files compared and their relative tolerance for numbers.
COMPARED: dict[str, float] = {
    "sensitivity.json": 1e-9,
    "signal_efficiency.json": 1e-6,
    "table1.json": 1e-6,
    "limits.json": 1e-6,
    "results.json": 1e-6,
    "claims.json": 1e-6,
    "workspace/BkgOnly.json": 1e-6,
    "workspace/patchset.json": 1e-6,
}
#: Keys that legitimately differ between runs (paths, hashes of non-deterministic files).
IGNORED_KEYS = ("config_hash",)


@dataclass(frozen=True)
class Comparison:
    """One compared value."""

    file: str
    key: str
    reference: Any
    run: Any
    tolerance: float
    agrees: bool

    @property
    def rel_diff(self) -> float | None:
        if (
            isinstance(self.reference, (int, float))
            and isinstance(self.run, (int, float))
            and not isinstance(self.run, bool)
        ):
            scale = max(abs(float(self.reference)), abs(float(self.run)), 1e-300)
            return abs(float(self.run) - float(self.reference)) / scale
        return None


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, leaf) pairs of a JSON document; list items as ``[i]``."""
    if isinstance(data, dict):
        for key in sorted(data):
            yield from flatten(data[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, data


def _close(a: Any, b: Any, rel: float) -> bool:
    if (
        isinstance(a, bool)
        or isinstance(b, bool)
        or not isinstance(a, (int, float))
        or not isinstance(b, (int, float))
    ):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BkgError(
            f"{path}: missing; is this a report folder written by `bkg report`?"
        ) from None
    except OSError as exc:
        raise BkgError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise BkgError(f"{path}: not valid JSON ({exc})") from None


def _check_report(folder: Path) -> None:
    """A one-line error unless ``folder`` holds a report's table1.json."""
    if not (folder / "table1.json").is_file():
        raise BkgError(f"{folder}: not a report folder (no table1.json; `bkg report` writes one)")


def _provenance(folder: Path) -> dict[str, Any]:
    """The provenance of a report folder, or a one-line error saying what is wrong with it."""
    _check_report(folder)
    provenance = _load(folder / "provenance.json")
    config = provenance.get("config") if isinstance(provenance, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("samples"), dict):
        raise BkgError(
            f"{folder}/provenance.json: expected an object whose 'config' holds the effective "
            "configuration (with its 'samples' section)"
        )
    return provenance


def check_files(folder: Path) -> tuple[int, list[str]] | None:
    """Check every file ``folder/provenance.json`` lists by its sha256.

    ``outputs_sha256`` lists every output but provenance.json and index.html, the two
    that hold the time of the run: an edited table1.csv, table1.md or limits.csv fails,
    and is named.

    Returns:
        (files checked, problems: one line per missing or changed file), or None when the
        folder has no provenance.json (nothing says what its files should be).

    Raises:
        BkgError: provenance.json is unreadable, its list is not an object of sha256
            digests, or it names a path outside the folder (refused, never opened).
    """
    from bkg.atomic import inside
    from bkg.ntuple import sha256_file

    path = folder / "provenance.json"
    if not path.exists():
        return None
    provenance = _load(path)
    listed = provenance.get("outputs_sha256") if isinstance(provenance, dict) else None
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise BkgError(
            f"{path}: expected 'outputs_sha256', an object of file -> sha256 (written by "
            "`bkg report`)"
        )
    problems: list[str] = []
    for name, digest in sorted(listed.items(), key=lambda kv: _natural(kv[0])):
        file = inside(folder, name, what=f"{path}: outputs_sha256 entry")
        if not file.is_file():
            problems.append(f"{folder}/{name}: missing (provenance.json lists it)")
        elif sha256_file(file) != digest:
            problems.append(f"{folder}/{name}: sha256 differs from provenance.json (changed)")
    return len(listed), problems


def compare_reports(reference: Path, run: Path, *, advance: Any = None) -> list[Comparison]:
    """Every value of the compared files of ``run`` against ``reference``
    (``advance("compare", files_done, files_total)`` after each file).

    The tolerance (:data:`COMPARED`) depends on what the number is:

    * pure physics (``sensitivity.json``: cross sections, yields, reach): relative
      1e-9 -- it is a deterministic calculation;
    * everything derived from samples, fits and toys: relative 1e-6 -- with the
      reference's config (and so its seed) the run is deterministic, and 1e-6
      leaves room only for last-digit differences of floating point between
      machines (BLAS, TensorFlow kernels);
    * strings and booleans (labels, verdicts): equal.
    """
    out: list[Comparison] = []
    for done, (name, rel) in enumerate(COMPARED.items(), 1):
        if advance is not None:
            advance("compare", done, len(COMPARED))
        ref_path = reference / name
        if not ref_path.exists():
            continue
        ref = dict(flatten(_load(ref_path)))
        new = dict(flatten(_load(run / name))) if (run / name).exists() else {}
        for key in sorted(set(ref) | set(new), key=_natural):
            if key.split(".")[-1] in IGNORED_KEYS:
                continue
            a, b = ref.get(key, "<missing>"), new.get(key, "<missing>")
            out.append(Comparison(name, key, a, b, rel, _close(a, b, rel)))
    return out


def _natural(key: str) -> list[Any]:
    """Sort key that puts efficiency[2] before efficiency[10]."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _config_difference(reference: Path, run: Path) -> list[str]:
    """Top-level config keys in which the two reports' provenance differ (samples.folder aside)."""
    try:
        a = _provenance(reference)["config"]
        b = _provenance(run)["config"]
    except (BkgError, KeyError, TypeError):
        return []
    keys = sorted(set(a) | set(b))
    return [k for k in keys if k != "samples" and a.get(k) != b.get(k)] + (
        ["samples"]
        if {**a.get("samples", {}), "folder": None} != {**b.get("samples", {}), "folder": None}
        else []
    )


def _rerun(reference: Path, workdir: Path, *, progress: Any = None, advance: Any = None) -> Path:
    """Run the reference's configuration again into ``workdir``; returns the new report."""
    from bkg.config import from_dict
    from bkg.report.pipeline import run_report

    provenance = _provenance(reference)
    raw = dict(provenance["config"])
    raw["samples"] = {**raw["samples"], "folder": str(workdir / "samples")}
    if isinstance(raw.get("run"), dict) and raw["run"].get("scheduler") is not None:
        # the re-run is local: a reference never sends work (or this machine's files) to
        # the Dask scheduler it names
        raw["run"] = {**raw["run"], "scheduler": None}
    cfg = from_dict(raw, source=f"{reference}/provenance.json")
    if progress is not None:
        progress("re-run", f"of {reference}'s configuration (same seed) in {workdir}")
    result = run_report(
        cfg, name=reference.name, out_root=workdir / "reports", fits_dir=workdir / "fits",
        progress=progress or (lambda stage, state: None), advance=advance,
    )  # fmt: skip
    return result.folder


def verify(
    reference: Path,
    *,
    run_dir: Path | None = None,
    show_all: bool = False,
    echo: Any = print,
    progress: Any = None,
    advance: Any = None,
) -> bool:
    """Compare a run with ``reference`` and print the comparison table.

    Args:
        reference: a report folder (with provenance.json and the JSON outputs).
        run_dir: an existing report to compare; None re-runs the reference's
            configuration (same seed) in a temporary folder.
        show_all: list every value, not only the mismatches.
        echo: where the lines go.
        progress: ``progress(stage, state)`` as the stages of the re-run start and end.
        advance: ``advance(task, done, total)`` along the long stages and the comparison.

    Returns:
        True when every value agrees within its tolerance.
    """
    import tempfile

    _check_inputs(reference, run_dir)
    files: list[tuple[Path, tuple[int, list[str]] | None]] = [(reference, check_files(reference))]
    with tempfile.TemporaryDirectory(prefix="bkg-verify-") as tmp:
        run = (
            run_dir
            if run_dir is not None
            else _rerun(reference, Path(tmp), progress=progress, advance=advance)
        )
        files.append((Path(run), check_files(Path(run))))
        rows = compare_reports(reference, run, advance=advance)
    echo(f"comparing {run} with the reference {reference}")
    differ = _config_difference(reference, Path(run)) if run_dir is not None else []
    if differ:
        echo(
            f"note: the two runs have different configurations ({', '.join(differ)} differ): "
            "their numbers are not expected to agree"
        )
    _echo_files_table(rows, echo)
    _echo_values(rows, show_all=show_all, echo=echo)
    n_bad = sum(not r.agrees for r in rows)
    n_files_bad = _echo_file_checks(files, echo)
    echo(
        f"{len(rows) - n_bad} of {len(rows)} values agree"
        + ("" if not n_bad else f"; {n_bad} differ")
    )
    return n_bad == 0 and n_files_bad == 0 and bool(rows)


def _check_inputs(reference: Path, run_dir: Path | None) -> None:
    """Both folders are reports (BkgError otherwise), and not the same one."""
    _check_report(reference)
    if run_dir is not None:
        _check_report(run_dir)
        if Path(run_dir).resolve() == Path(reference).resolve():
            raise BkgError(
                f"--run {run_dir}: that is the reference itself; give another run's report, "
                "or leave out --run to re-run the reference's configuration"
            )


def _echo_files_table(rows: list[Comparison], echo: Any) -> None:
    """One line per compared file: its values, how many agree and differ, its tolerance."""
    by_file: dict[str, list[Comparison]] = {}
    for row in rows:
        by_file.setdefault(row.file, []).append(row)
    echo(f"{'file':<26} {'values':>7} {'agree':>7} {'differ':>7} {'tolerance':>10}")
    for name, group in by_file.items():
        n_bad = sum(not r.agrees for r in group)
        echo(
            f"{name:<26} {len(group):>7} {len(group) - n_bad:>7} {n_bad:>7} {'rel ' + format(group[0].tolerance, '.0e'):>10}"
        )


def _echo_values(rows: list[Comparison], *, show_all: bool, echo: Any) -> None:
    """The values that differ (every value with ``show_all``), at most 200 lines of them."""
    shown = [r for r in rows if show_all or not r.agrees]
    if not shown:
        return
    echo("")
    echo(f"{'file':<24} {'key':<44} {'reference':>14} {'run':>14} {'rel diff':>9}  verdict")
    for r in shown[:200]:
        rd = r.rel_diff
        echo(
            f"{r.file:<24} {r.key[:44]:<44} {_short(r.reference):>14} {_short(r.run):>14} "
            f"{format(rd, '.1e') if rd is not None else '-':>9}  {'agrees' if r.agrees else 'DIFFERS'}"
        )
    if len(shown) > 200:
        echo(f"... and {len(shown) - 200} more")


def _echo_file_checks(files: list[tuple[Path, tuple[int, list[str]] | None]], echo: Any) -> int:
    """Each folder's files against its provenance.json's sha256; returns the problems' count."""
    n_files_bad = 0
    for folder, checked in files:
        if checked is None:
            echo(f"note: {folder} has no provenance.json: its files were not checked")
            continue
        n_files, problems = checked
        n_files_bad += len(problems)
        for line in problems[:50]:
            echo(line)
        if len(problems) > 50:
            echo(f"... and {len(problems) - 50} more")
        echo(
            f"{folder}: {n_files - len(problems)} of {n_files} files match the sha256 of its "
            "provenance.json"
        )
    return n_files_bad


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 14 else text[:13] + "…"
