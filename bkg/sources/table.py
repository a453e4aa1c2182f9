"""Table I: the background sources per MOT, expected events at N_MOT, and the total."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bkg.atomic import dumps_json, write_texts
from bkg.config import Config
from bkg.sources.base import SourceEstimate

__all__ = ["background_free_n_mot", "table_data", "write_table"]


def background_free_n_mot(total_per_mot: float, events: float) -> float:
    """N_MOT at which the expected background reaches ``events``.

    Example:
        >>> background_free_n_mot(1e-12, 0.1)
        100000000000.0
    """
    return math.inf if total_per_mot <= 0 else events / total_per_mot


def _level_columns(est: SourceEstimate) -> dict[str, Any]:
    """How the level was obtained: counted, extrapolated or direct (biased simulation),
    the extrapolated and direct levels of the tail part (per MOT) and their agreement."""
    choice = est.tails.get("level_choice")
    if not choice:
        how = "extrapolated (no closure)" if "tail_models" in est.tails else "counted"
        return {"level_method": how, "extrapolated": None, "direct": None, "agreement": None}
    pull = choice.get("agreement")
    agree = "no direct event" if pull is None else f"{pull:+.1f} sigma"
    if choice["method"].startswith("direct"):
        agree += f"; direct used: {choice.get('reason', '')}"
    return {"level_method": choice["method"], "extrapolated": choice.get("extrapolated"),
            "direct": choice.get("direct"), "agreement": agree}  # fmt: skip


def table_data(estimates: Mapping[str, SourceEstimate], cfg: Config) -> dict[str, Any]:
    """The JSON content of Table I (see :func:`write_table`)."""
    n_mot = float(cfg.n_mot)
    rows: list[dict[str, Any]] = []
    for est in estimates.values():
        rows.append({
            "name": est.name, "label": est.label, "level_per_mot": est.level_per_mot,
            "stat_up": est.stat_up, "stat_down": est.stat_down, "syst_up": est.syst_up,
            "syst_down": est.syst_down, "upper_bound": est.upper_bound, "method": est.method,
            "expected_events": est.level_per_mot * n_mot,
            **_level_columns(est),
        })  # fmt: skip
    level = sum(r["level_per_mot"] for r in rows)
    bound = any(r["upper_bound"] for r in rows)
    method = "sum of the sources (uncertainties in quadrature)"
    if bound:
        method += "; rows that are 90% CL bounds enter at the bound, so the total is a bound"
    total = {
        "name": "total", "label": "Total", "level_per_mot": level,
        "stat_up": math.sqrt(sum(r["stat_up"] ** 2 for r in rows)),
        "stat_down": math.sqrt(sum(r["stat_down"] ** 2 for r in rows)),
        "syst_up": math.sqrt(sum(r["syst_up"] ** 2 for r in rows)),
        "syst_down": math.sqrt(sum(r["syst_down"] ** 2 for r in rows)),
        "upper_bound": bound,
        "method": method,
        "expected_events": level * n_mot,
    }  # fmt: skip
    bf = {"0.1": background_free_n_mot(level, 0.1), "1": background_free_n_mot(level, 1.0)}
    return {"n_mot": n_mot, "sources": rows, "total": total, "background_free_n_mot": bf}


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("^", r"\^{}"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
        ("<=", r"$\le$"),
        (">=", r"$\ge$"),
    ):
        text = text.replace(a, b)
    return text


def _unc(r: Mapping[str, Any]) -> tuple[float, float]:
    """Total (up, down) for display; down stops at the level (a level is not negative)."""
    down = min(math.hypot(r["stat_down"], r["syst_down"]), r["level_per_mot"])
    return math.hypot(r["stat_up"], r["syst_up"]), down


def _bound_sign(r: Mapping[str, Any], *, latex: bool) -> str:
    """ "<" for a source that is a 90% CL bound, "<=" for a total that contains one, else ""."""
    if not r["upper_bound"]:
        return ""
    if r["name"] == "total":
        return r"\le " if latex else "≤ "
    return "< "


def _fmt(r: Mapping[str, Any], *, latex: bool) -> str:
    sign = _bound_sign(r, latex=latex)
    v = r["level_per_mot"]
    if r["upper_bound"] and r["name"] != "total":
        return f"${sign}{v:.2g}$" if latex else f"{sign}{v:.2g}"
    up, dn = _unc(r)
    if latex:
        return f"${sign}({v:.2e} ^{{+{up:.1e}}}_{{-{dn:.1e}}})$"
    return f"{sign}{v:.2e} +{up:.1e} -{dn:.1e}"


def _events(r: Mapping[str, Any], *, latex: bool) -> str:
    sign = _bound_sign(r, latex=latex)
    return (
        f"${sign}{r['expected_events']:.3g}$"
        if latex and sign
        else f"{sign}{r['expected_events']:.3g}"
    )


def write_table(
    estimates: Mapping[str, SourceEstimate], cfg: Config, *, out_dir: Path
) -> dict[str, Any]:
    """Write table1.md, table1.tex (booktabs), table1.csv and table1.json into ``out_dir``.

    Returns:
        The JSON content: ``{"n_mot", "sources": [...], "total": {...},
        "background_free_n_mot": {"0.1": N, "1": N}}`` (absolute per-MOT uncertainties).
    """
    data = table_data(estimates, cfg)
    out_dir = Path(out_dir)
    bf = data["background_free_n_mot"]
    json_data = {
        **data,
        "background_free_n_mot": {k: (v if math.isfinite(v) else 1e300) for k, v in bf.items()},
    }
    # every file rendered before any is written: no half-written set
    write_texts(
        {
            out_dir / "table1.md": _markdown(data),
            out_dir / "table1.tex": _latex(data),
            out_dir / "table1.csv": _csv(data),
            out_dir / "table1.json": dumps_json(json_data),
        }
    )
    return json_data


def _optional(v: Any) -> str:
    return "" if v is None else f"{v:.2g}"


def _markdown(data: Mapping[str, Any]) -> str:
    """table1.md: every source and the total, then the background-free N_MOT."""
    n_mot = data["n_mot"]
    md = [
        f"| Source | Level per MOT | Expected events at {n_mot:.1e} MOT | Method | Upper bound "
        "| Level from | Extrapolated tail | Direct tail | Agreement |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*data["sources"], data["total"]]:
        md.append(
            f"| {r['label']} | {_fmt(r, latex=False)} | {_events(r, latex=False)} | "
            f"{r['method']} | {'yes' if r['upper_bound'] else 'no'} | {r.get('level_method', '')} | "
            f"{_optional(r.get('extrapolated'))} | {_optional(r.get('direct'))} | {r.get('agreement') or ''} |"
        )
    bf = data["background_free_n_mot"]
    md.append("")
    least = "at least " if data["total"]["upper_bound"] else ""
    md.append(
        f"Background free (< 0.1 event) {least}up to N_MOT = {bf['0.1']:.2e}; "
        f"(< 1 event) {least}up to {bf['1']:.2e}."
    )
    return "\n".join(md)


def _latex(data: Mapping[str, Any]) -> str:
    """table1.tex: a booktabs tabular of the sources and the total."""
    tex = [
        r"\begin{tabular}{llll}",
        r"\toprule",
        rf"Source & Level per MOT & Events at ${data['n_mot']:.1e}$ MOT & Method \\",
        r"\midrule",
    ]
    for r in data["sources"]:
        method = _tex_escape(r["method"])
        tex.append(
            rf"{r['label']} & {_fmt(r, latex=True)} & {_events(r, latex=True)} & "
            rf"{method} \\"
        )
    t = data["total"]
    tex += [
        r"\midrule",
        rf"Total & {_fmt(t, latex=True)} & {_events(t, latex=True)} & \\",
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(tex)


#: Columns of table1.csv
_CSV_COLUMNS = (
    "name",
    "label",
    "level_per_mot",
    "stat_up",
    "stat_down",
    "syst_up",
    "syst_down",
    "upper_bound",
    "expected_events",
    "method",
    "level_method",
    "extrapolated",
    "direct",
    "agreement",
)


def _csv(data: Mapping[str, Any]) -> str:
    """table1.csv: one row per source and the total (absolute per-MOT uncertainties)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in [*data["sources"], data["total"]]:
        w.writerow(r)
    return buf.getvalue()
