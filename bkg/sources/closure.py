"""Closure of the tail extrapolations against direct biased simulation, and the level Table I uses.

For every source with a direct estimator (:data:`bkg.sim.biasing.DIRECT`) and a tail
analysis in fits/<source>.json, :func:`run_closure` measures P(x >= cut) by biased
simulation, writes ``closure`` {direct, direct_stat, effective_events, extrapolated,
ratio, pull, ...} and ``level_choice`` into the JSON, and sets the level (honest levels)
by the rule of :func:`choose_level`. For the report: :func:`closure_table_markdown`,
:func:`closure_figures`. Method: docs/tail-extrapolation.md (sections 4 and 5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bkg.config import Config
from bkg.sources.base import SourceEstimate

__all__ = [
    "CLOSURE_EVENTS",
    "checks",
    "choose_level",
    "closure_rows",
    "closure_table_markdown",
    "run_closure",
]

#: biased events per source of the `bkg report` stage (bench/bench_closure.py: the time
#: to a 30% error at the Table I level)
CLOSURE_EVENTS = 2_000_000
#: how far below the last observed event (decades) a level may rest on an extrapolation
MAX_DECADES = 3.0


def _pull_and_ratio(
    ext: float | None, band: tuple[float, float], direct: Any
) -> tuple[float | None, float | None]:
    """(extrapolated - direct) / sigma with the side of the band toward the direct, and the ratio."""
    d, d_stat = float(direct.direct), float(direct.direct_stat)
    if ext is None or direct.n_beyond <= 0:
        return None, None
    sig = math.hypot(band[0] if d > ext else band[1], d_stat)
    pull = (ext - d) / sig if sig > 0 else math.inf
    return pull, (ext / d if d > 0 else math.inf)


def _reasons_for_direct(ext: float | None, pull: float | None, n_total: float) -> list[str]:
    """Why the level cannot rest on the extrapolation (empty: it can)."""
    last = 1.0 / float(n_total)  # the last observed event, per event of the sample
    decades_below = math.log10(last / ext) if ext and ext > 0 else math.inf
    reasons = []
    if ext is None:
        reasons.append("no tail model passes its checks")
    if pull is not None and abs(pull) > 2:
        reasons.append(f"extrapolation and direct disagree ({pull:+.1f} sigma)")
    if decades_below > MAX_DECADES:
        reasons.append(f"extrapolation {decades_below:.1f} decades below the last observed event")
    return reasons


def _with_direct_tail(est: SourceEstimate, direct: Any, scale: float) -> SourceEstimate:
    """``est`` with its tail part replaced by the direct estimate (or its 90% CL bound)."""
    inputs = est.inputs
    t_level = float(inputs.get("tail_level", est.tails["tail_models"].get("level") or 0.0))
    t_stat = (float(inputs.get("tail_stat_up", 0.0)), float(inputs.get("tail_stat_down", 0.0)))
    t_syst = (float(inputs.get("tail_syst_up", 0.0)), float(inputs.get("tail_syst_down", 0.0)))
    bound = direct.n_beyond == 0
    d_stat = 0.0 if bound else float(direct.direct_stat)
    value = float(direct.bound_90 or 0.0) if bound else float(direct.direct)
    level = max(est.level_per_mot - scale * t_level + scale * value, 0.0)

    def swap(total: float, old: float, new: float) -> float:
        return math.sqrt(max(total * total - (scale * old) ** 2, 0.0) + (scale * new) ** 2)

    return SourceEstimate(
        est.name, est.label, level,
        swap(est.stat_up, t_stat[0], d_stat), min(swap(est.stat_down, t_stat[1], d_stat), level),
        swap(est.syst_up, t_syst[0], 0.0), swap(est.syst_down, t_syst[1], 0.0),
        est.upper_bound or bound,
        est.method + ("; tail part: 90% CL bound of the direct biased simulation" if bound
                      else "; tail part: direct biased simulation (Table I: direct)"),
        est.inputs, est.fit, est.tails,
    )  # fmt: skip


def choose_level(
    est: SourceEstimate, direct: Any
) -> tuple[SourceEstimate, dict[str, Any], dict[str, Any]]:
    """The estimate with the level the closure allows, the ``closure`` and ``level_choice`` dicts.

    * the extrapolation is used when a passing tail model supports it, it agrees with the
      direct estimate within 2 sigma combined (its stat and model systematic, the
      direct's stat), and it is not more than :data:`MAX_DECADES` decades below the last
      observed event (the fitted sample's one event);
    * otherwise the direct estimate replaces the tail part of the level (Table I says
      so); with no event beyond the cut, the 90% CL bound of its effective statistics.
    """
    scale = float(est.inputs.get("tail_scale", 1.0))
    scan = est.tails["tail_models"]
    ext = scan.get("level")
    ext_up = math.hypot(scan.get("stat_up", 0.0), scan.get("syst_up", 0.0))
    ext_down = math.hypot(scan.get("stat_down", 0.0), scan.get("syst_down", 0.0))
    d = float(direct.direct)
    pull, ratio = _pull_and_ratio(ext, (ext_up, ext_down), direct)
    reasons = _reasons_for_direct(ext, pull, scan["n_total"])
    # no wall time in here: fits/*.json must be byte-reproducible
    closure = {
        "direct": d, "direct_stat": float(direct.direct_stat),
        "effective_events": direct.effective_events,
        "extrapolated": ext, "extrapolated_up": ext_up, "extrapolated_down": ext_down,
        "ratio": ratio, "pull": pull, "n_generated": direct.n_generated, "n_beyond": direct.n_beyond,
        "bound_90": direct.bound_90, "points": direct.points, "method": direct.method,
        "cut": direct.cut,
    }  # fmt: skip
    if not reasons:
        choice = {"method": "extrapolated", "reason": "extrapolation supported and closes",
                  "extrapolated": scale * (ext or 0.0), "direct": scale * d, "agreement": pull}  # fmt: skip
        return est, closure, choice
    bound = direct.n_beyond == 0
    value = float(direct.bound_90 or 0.0) if bound else d
    choice = {"method": "direct" + (" (90% CL bound)" if bound else ""), "reason": "; ".join(reasons),
              "extrapolated": None if ext is None else scale * ext, "direct": scale * value,
              "agreement": pull}  # fmt: skip
    return _with_direct_tail(est, direct, scale), closure, choice


def checks(name: str, est: SourceEstimate) -> bool:
    """Whether :func:`run_closure` checks this estimate against a direct estimate (and so
    rewrites it and redraws its figure): a source with a biased simulation and tail fits."""
    from bkg.sim.biasing import DIRECT

    return name in DIRECT and "tail_models" in est.tails


def run_closure(
    cfg: Config, fits_dir: Path, *, n_events: int = CLOSURE_EVENTS, only: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Direct estimates for the extrapolated sources in ``fits_dir``; rewrites their JSON.

    Returns:
        name -> the ``closure`` dict written.
    """
    import json

    from bkg.atomic import write_json
    from bkg.sim.biasing import DIRECT
    from bkg.sources import side

    estimates = {}
    for name in DIRECT:
        path = Path(fits_dir) / f"{name}.json"
        if path.is_file():
            estimates[name] = SourceEstimate.from_dict(json.loads(path.read_text()))
    out: dict[str, dict[str, Any]] = {}
    finals: list[tuple[str, SourceEstimate]] = []
    for name, est in estimates.items():
        if not checks(name, est) or (only and name not in only):
            continue
        direct = side.biasing_direct(cfg, name, n_events, cfg.seed)  # maybe made already
        # the choice is made from the fit's own level, not from one a previous closure set
        base = SourceEstimate(**{**est.__dict__, **est.inputs.get("before_closure", {})})
        new, closure, choice = choose_level(base, direct)
        inputs = dict(new.inputs)
        inputs["before_closure"] = {k: getattr(base, k) for k in
                                    ("level_per_mot", "stat_up", "stat_down", "syst_up", "syst_down",
                                     "upper_bound", "method")}  # fmt: skip
        tails = {**new.tails, "closure": closure, "level_choice": choice}
        final = SourceEstimate(new.name, new.label, new.level_per_mot, new.stat_up, new.stat_down,
                               new.syst_up, new.syst_down, new.upper_bound, new.method, inputs,
                               new.fit, tails)  # fmt: skip
        write_json(Path(fits_dir) / f"{name}.json", final.to_dict())
        finals.append((name, final))
        out[name] = closure
    side.write_figures(finals, Path(fits_dir))  # here and in the side process at once
    side.close()  # the side process of `bkg fit` has nothing more to give
    return out


def direct_text(closure: Mapping[str, Any], scale: float = 1.0) -> str:
    """The direct estimate (times ``scale``) as tables and figures show it: value ± stat, or
    its 90% CL bound when no biased event passed beyond the cut (the value is then only the
    Gaussian core's residue)."""
    bound = closure.get("bound_90")
    if not closure.get("n_beyond") and bound:
        return f"< {bound * scale:.2g} (90% CL, no event)"
    return f"{closure['direct'] * scale:.3g} ± {closure['direct_stat'] * scale:.2g}"


def closure_rows(estimates: dict[str, SourceEstimate]) -> list[dict[str, Any]]:
    """One row per extrapolated source: extrapolated, direct, pull, effective events, choice."""
    rows = []
    for name, est in estimates.items():
        c = est.tails.get("closure")
        if not c:
            continue
        choice = est.tails.get("level_choice", {})
        rows.append({"name": name, "label": est.label, "cut": c["cut"], "extrapolated": c["extrapolated"],
                     "direct": c["direct"], "direct_stat": c["direct_stat"], "direct_text": direct_text(c),
                     "effective_events": c["effective_events"], "ratio": c["ratio"], "pull": c["pull"],
                     "used": choice.get("method"), "reason": choice.get("reason")})  # fmt: skip
    return rows


def closure_table_markdown(estimates: dict[str, SourceEstimate]) -> str:
    """The closure table (Markdown) for the report and the docs."""
    lines = ["| Source | cut | extrapolated | direct (biased sim.) | effective events | pull | Table I uses |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip

    def f(v: Any) -> str:
        return "none" if v is None else f"{v:.2g}"

    for r in closure_rows(estimates):
        lines.append(f"| {r['label']} | {r['cut']:.3g} | {f(r['extrapolated'])} | {r['direct_text']} | "
                     f"{r['effective_events']:.0f} | {f(r['pull'])} | {r['used']} |")  # fmt: skip
    return "\n".join(lines)


def closure_figures(fits_dir: Path) -> list[Path]:
    """The survival-function figures of the extrapolated sources (for the report)."""
    names = ("momentum_mismatch", "hermeticity", "punch_through")
    return [Path(fits_dir) / f"{n}.png" for n in names if (Path(fits_dir) / f"{n}.png").exists()]
