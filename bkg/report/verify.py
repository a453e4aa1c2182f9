"""``bkg verify``: compare every number of a run with a reference report.

Each JSON output is flattened to (key path -> number) and compared with the
reference under a tolerance that depends on what the number is:

* pure physics (``sensitivity.json``: cross sections, yields, reach): relative
  1e-9 -- it is a deterministic calculation;
* everything derived from samples, fits and toys: relative 1e-6 -- with the
  reference's config (and so its seed) the run is deterministic, and 1e-6
  leaves room only for last-digit differences of floating point between
  machines (BLAS, TensorFlow kernels);
* strings and booleans (labels, verdicts): equal.
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

__all__ = ["COMPARED", "Comparison", "compare_reports", "flatten"]

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


def compare_reports(reference: Path, run: Path, *, advance: Any = None) -> list[Comparison]:
    """Every value of the compared files of ``run`` against ``reference``
    (``advance("compare", files_done, files_total)`` after each file)."""
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

    _check_report(reference)
    if run_dir is not None:
        _check_report(run_dir)
        if Path(run_dir).resolve() == Path(reference).resolve():
            raise BkgError(
                f"--run {run_dir}: that is the reference itself; give another run's report, "
                "or leave out --run to re-run the reference's configuration"
            )
    with tempfile.TemporaryDirectory(prefix="bkg-verify-") as tmp:
        run = (
            run_dir
            if run_dir is not None
            else _rerun(reference, Path(tmp), progress=progress, advance=advance)
        )
        rows = compare_reports(reference, run, advance=advance)
    by_file: dict[str, list[Comparison]] = {}
    for row in rows:
        by_file.setdefault(row.file, []).append(row)
    echo(f"comparing {run} with the reference {reference}")
    differ = _config_difference(reference, Path(run)) if run_dir is not None else []
    if differ:
        echo(
            f"note: the two runs have different configurations ({', '.join(differ)} differ): "
            "their numbers are not expected to agree"
        )
    echo(f"{'file':<26} {'values':>7} {'agree':>7} {'differ':>7} {'tolerance':>10}")
    for name, group in by_file.items():
        n_bad = sum(not r.agrees for r in group)
        echo(
            f"{name:<26} {len(group):>7} {len(group) - n_bad:>7} {n_bad:>7} {'rel ' + format(group[0].tolerance, '.0e'):>10}"
        )
    shown = [r for r in rows if show_all or not r.agrees]
    if shown:
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
    n_bad = sum(not r.agrees for r in rows)
    echo(
        f"{len(rows) - n_bad} of {len(rows)} values agree"
        + ("" if not n_bad else f"; {n_bad} differ")
    )
    return n_bad == 0 and bool(rows)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 14 else text[:13] + "…"
