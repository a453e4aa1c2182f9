"""``index.html``: one self-contained page (opens offline) that shows a whole report."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bkg.report.claims import none_applicable
from bkg.sources.closure import direct_text

__all__ = ["render_index"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l,td:last-child,th:last-child{text-align:left}.ok{color:#17702b;font-weight:600}.bad{color:#b00020;font-weight:600}.na{color:#888}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1.2em}
figure{margin:0;border:1px solid #e4e4e4;padding:.5em;background:#fff}figure img{width:100%;height:auto}
figcaption{font-size:.88em;color:#444;margin-top:.3em}figcaption b{color:#222}
.summary{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1.2em;background:#f6f8fa;border:1px solid #dde;padding:.8em 1.2em;margin:.8em 0}
.summary dt{font-weight:600}.summary dd{margin:0}
nav.toc{font-size:.92em;margin:.5em 0 1em}nav.toc a{margin-right:1.1em;white-space:nowrap}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}.muted{color:#666;font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _num(value: Any) -> str:
    """A limit value, or a dash where there is none (a skipped mass)."""
    return "-" if value is None else f"{value:.2e}"


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    left: int = 1,
    classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; ``head`` is trusted markup (the report's own labels), cells are markup."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(head))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes else ""
        tds = "".join(
            f'<td class="{"l" if i < left else ""}">{cell}</td>' for i, cell in enumerate(row)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _at_mass(masses: Sequence[Any], values: Sequence[Any] | None, mass: float) -> float | None:
    """``values`` at ``mass`` (log-log interpolation over the finite points; None outside)."""
    import itertools
    import math

    if not values:
        return None
    pts = [
        (math.log(m), math.log(v))
        for m, v in zip(masses, values, strict=False)
        if m and v and m > 0 and v > 0 and math.isfinite(v)
    ]
    if len(pts) < 2 or not pts[0][0] <= math.log(mass) <= pts[-1][0]:
        return None
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x0 <= math.log(mass) <= x1:
            t = 0.0 if x1 == x0 else (math.log(mass) - x0) / (x1 - x0)
            return math.exp(y0 + t * (y1 - y0))
    return None


def _covered_up_to(masses: Sequence[Any], limit: Sequence[Any], low: Sequence[Any]) -> float:
    """Largest mass below which ``limit`` stays under the band's lower edge (0: nowhere)."""
    covered = 0.0
    for m, g, lo in zip(masses, limit, low, strict=False):
        if g is None or lo is None or not (0 < g < lo):
            break
        covered = m
    return covered


def _summary(
    table1: Mapping[str, Any] | None,
    limits: Mapping[str, Any] | None,
    sensitivity: Mapping[str, Any] | None,
    claims: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str]]:
    """(term, text) rows of the summary box at the top of the page."""
    rows: list[tuple[str, str]] = []
    if table1:
        t = table1["total"]
        rows.append(
            (
                "Total background",
                f"<b>{t['expected_events']:.3g} events</b> at N<sub>MOT</sub> = {table1['n_mot']:.3g} "
                f"({t['level_per_mot']:.2e} per MOT, Table I)",
            )
        )
    if limits:
        rows += _summary_limits(limits, sensitivity)
    if sensitivity:
        rows.append(("g&minus;2 band", _summary_g2(limits, sensitivity)))
    if claims:
        n_ok = sum(c["verdict"] == "agrees" for c in claims)
        rows.append(
            (
                "Claims of the paper",
                "not applicable (they describe its 160 GeV beam)"
                if none_applicable(claims)
                else f"<b>{n_ok} of {len(claims)}</b> reproduced "
                f"(<a href='#claims'>table</a>, claims.md)",
            )
        )
    return rows


def _summary_limits(
    limits: Mapping[str, Any], sensitivity: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """Summary rows: the expected g' limit (and the background-free reach) at 10 and 100 MeV."""
    rows = []
    cl = 100 * limits["confidence_level"]
    for m in (0.01, 0.1):
        g = _at_mass(limits["masses_gev"], limits.get("g_prime_expected"), m)
        free = _at_mass(
            (sensitivity or {}).get("masses_gev", []), (sensitivity or {}).get("g_prime_90"), m
        )
        text = f"<b>{_num(g)}</b> expected median, CLs ({_e(limits['calculator'])})"
        if free is not None:
            text += f"; {free:.2e} background free"
        rows.append((f"g'<sub>{cl:.0f}</sub> at {1e3 * m:.0f} MeV", text))
    return rows


def _summary_g2(limits: Mapping[str, Any] | None, sensitivity: Mapping[str, Any]) -> str:
    """Summary text: how far the expected limit and the background-free reach cover g-2."""
    low = sensitivity.get("g2_band_low") or []
    name = f"(g&minus;2)<sub>&mu;</sub> {_e(sensitivity['g2_reference'])} &plusmn;{sensitivity['g2_band_sigmas']:g}&sigma;"
    if any(v is not None and v <= 0 for v in low):
        return f"{name} band reaches g' = 0: no limit covers it"
    parts = []
    if limits:
        cov = _covered_up_to(limits["masses_gev"], limits["g_prime_expected"], low)
        whole = cov and cov >= max(limits["masses_gev"])
        parts.append(
            "not covered by the expected CLs median"
            if not cov
            else f"covered over the whole mass grid (to {1e3 * cov:.0f} MeV) by the expected CLs median"
            if whole
            else f"covered up to m<sub>Z'</sub> = {1e3 * cov:.0f} MeV by the expected CLs median"
        )
    free = float(sensitivity.get("covered_up_to_gev") or 0.0)
    parts.append(
        f"up to {1e3 * free:.0f} MeV by the background-free reach"
        if free
        else "not covered by the background-free reach"
    )
    verdict = "covered" if parts and "not" not in parts[0] else "not covered"
    return f"<b>{verdict}</b>: {name} band " + "; ".join(parts)


def _caption(stem: str, ctx: Mapping[str, Any]) -> str:
    """What a figure shows and from which inputs (markup)."""
    n_mot = ctx.get("n_mot")
    at = f" at N<sub>MOT</sub> = {n_mot:.3g}" if n_mot else ""
    captions = {
        "fig2_trigger_efficiency": (
            "Paper Fig. 2: trigger efficiency of the Z' signal versus m<sub>Z'</sub> at 160 and "
            "100 GeV, simulated here with the signal generator and the trigger of the config; "
            "dashed: the fraction with E'<sub>&mu;</sub> in the signal box (its ceiling)."
        ),
        "fig3_beam": (
            "Paper Fig. 3: beam spot at the ECAL and beam momentum with no trigger and with "
            "S<sub>0</sub>+S<sub>1</sub>+S<sub>&mu;</sub>; 5&times;10<sup>5</sup> beam muons "
            "simulated from the config's beam (its seed)."
        ),
        "fig4_zprime_spectra": (
            "Paper Fig. 4: normalised Z' energy spectra (Weizs&auml;cker-Williams cross "
            "section on lead) at the beam energy, for five masses."
        ),
        "fig5_hermeticity_plane": (
            "Paper Fig. 5: the beam sample after the trigger in the (E'<sub>&mu;</sub>, "
            "E<sub>CAL</sub>) plane, regions A-D (D: the signal box); from samples/beam_*.root."
        ),
        "fig6_reach_background_free": (
            f"Paper Fig. 6, first panel: background-free 90% CL reach g'<sub>90</sub>{at} "
            "(2.30 signal events; eq. 6 yields with the measured signal efficiency) against the "
            "(g&minus;2)<sub>&mu;</sub> band (hatched); sensitivity.json."
        ),
        "sensitivity": (
            f"CLs limits on g'{at}: expected median with &plusmn;1&sigma;/&plusmn;2&sigma; bands "
            f"(limits.json, {_e(ctx.get('calculator', ''))}; background from Table I, "
            f"{ctx.get('background', float('nan')):.3g} events), the (g&minus;2)<sub>&mu;</sub> "
            "band hatched, and, for the 160 GeV beam, the NA64&mu; 2022 observed limit "
            "(1.98&times;10<sup>10</sup> MOT, 0 events; PRL 132, 211803) computed here with "
            "this setup's signal yields. Curves on a fine mass grid (the limit is solved once "
            "in signal events)."
        ),
        "reach_vs_mot": (
            "Median expected g'<sub>90</sub> versus N<sub>MOT</sub> at 10, 100 and 1000 MeV "
            "(CLs with the Table I background at each N<sub>MOT</sub>); vertical lines where "
            "the expected background reaches 0.1 and 1 events."
        ),
    }
    if stem in captions:
        return captions[stem]
    if stem.startswith("fit_"):
        name = stem[4:]
        label = _e(ctx.get("fit_labels", {}).get(name, name))
        kind = ctx.get("fit_kinds", {}).get(name, "")
        shows = {
            "tail": "the sample's N(&gt;x) with its Poisson 68% band, the nominal tail fit "
            "and the envelope of the passing fits carried to the cut (red dashed line), and "
            "the direct estimates of the biased simulation",
            "decays": "the fraction of K<sup>&minus;</sup> decays to a muon that pass the "
            "trigger, cuts and box versus the decay point, and the decay muons' energy",
            "counting": "the event counts the level is computed from (log scale; a zero count "
            "is written, not drawn) and the method",
        }.get(kind, "the fit or the counts behind the level")
        return f"Diagnostic of <b>{label}</b> (fits/{_e(name)}.json): {shows}."
    return _e(stem)


#: Figures in page order (the paper's first, then the limits); others (fits) after them
FIGURE_ORDER = ("fig2_trigger_efficiency", "fig3_beam", "fig4_zprime_spectra",
                "fig5_hermeticity_plane", "fig6_reach_background_free", "sensitivity",
                "reach_vs_mot")  # fmt: skip


def _figure_order(path: Path) -> tuple[int, str]:
    stem = path.stem
    return (FIGURE_ORDER.index(stem) if stem in FIGURE_ORDER else len(FIGURE_ORDER), stem)


def _fit_kind(estimate: Mapping[str, Any]) -> str:
    """What a source's figure shows (as bkg.sources.figures.plot_source decides)."""
    fit = estimate.get("fit", {})
    if "counts" in fit and "edges" in fit:
        return "tail"
    return "decays" if "k_decays" in fit else "counting"


def _anchor(stem: str) -> str:
    return "fig-" + "".join(ch if ch.isalnum() else "-" for ch in stem)


def _closure_section(fits: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The closure table: each extrapolated tail against its direct (biased-simulation) estimate."""
    rows = []
    for name, f in fits.items():
        c = f.get("closure")
        if not c:
            continue
        choice = f.get("level_choice", {})
        pull = c.get("pull")
        rows.append(
            [
                _e(f.get("label", name)),
                _num(c.get("extrapolated")),
                _e(direct_text(c)),
                _num(c.get("effective_events")),
                "-" if pull is None else f"{pull:+.1f}",
                _e(choice.get("method", "-")),
                _e(choice.get("reason", "")),
            ]
        )
    if not rows:
        return []
    return [
        "<h2 id='closure'>Closure: extrapolated tails against direct estimates</h2>",
        "<p>Each tail fit's prediction at the cut against the same probability measured by "
        "biased simulation (weights p_true/p_biased; docs/tail-extrapolation.md). Per event "
        "of the fitted sample; the level Table I uses says which one it rests on.</p>",
        _table(
            [
                "Source",
                "Extrapolated",
                "Direct",
                "Effective events",
                "Pull (sigma)",
                "Level from",
                "Why",
            ],
            rows,
        ),
    ]


def render_index(
    *,
    title: str,
    table1: Mapping[str, Any] | None,
    limits: Mapping[str, Any] | None,
    fits: Mapping[str, Mapping[str, Any]],
    claims: Sequence[Mapping[str, Any]],
    figures: Sequence[Path],
    provenance: Mapping[str, Any],
    root: Path,
    sensitivity: Mapping[str, Any] | None = None,
) -> str:
    """The HTML text of the report page; figure paths are made relative to ``root``.

    The page opens with a summary (total background, g'_90 at 10 and 100 MeV, the g-2
    band, the claims) and a table of contents; every figure in ``figures`` is shown with
    a caption saying what it shows and from which inputs.
    """
    figures = sorted(figures, key=_figure_order)
    parts = _head_section(title, provenance)
    parts += _summary_section(_summary(table1, limits, sensitivity, claims))
    parts += _contents_section(table1, limits, fits, claims, figures)
    parts += _table1_section(table1) if table1 else []
    parts += _limits_section(limits) if limits else []
    parts += _claims_section(claims) if claims else []
    parts += _fits_section(fits) if fits else []
    parts += _closure_section(fits)
    parts += _figures_section(figures, table1, limits, fits, root) if figures else []
    parts += _provenance_section(provenance)
    parts.append("</body></html>")
    return "\n".join(parts)


def _head_section(title: str, provenance: Mapping[str, Any]) -> list[str]:
    """The document head, the title and the line of versions, hash, seed and commit."""
    return [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>na64mu-bkg {_e(provenance['package']['version'])} &middot; config sha256 "
        f"{_e(provenance['config_hash'][:16])} &middot; seed {_e(provenance['config']['seed'])} &middot; "
        f"git {_e(provenance.get('git_commit') or 'n/a')}</p>",
    ]


def _summary_section(summary: Sequence[tuple[str, str]]) -> list[str]:
    """The summary box (nothing when there is no row)."""
    if not summary:
        return []
    return [
        "<dl class='summary' id='summary'>",
        *(f"<dt>{term}</dt><dd>{text}</dd>" for term, text in summary),
        "</dl>",
    ]


def _contents_section(
    table1: Mapping[str, Any] | None,
    limits: Mapping[str, Any] | None,
    fits: Mapping[str, Mapping[str, Any]],
    claims: Sequence[Mapping[str, Any]],
    figures: Sequence[Path],
) -> list[str]:
    """The tables of contents: the sections shown, then the figures."""
    toc = [("table1", "Table I", bool(table1)), ("limits", "Limits", bool(limits)),
           ("claims", "Claims", bool(claims)), ("fits", "Fit summaries", bool(fits)),
           ("closure", "Closure", any("closure" in f for f in fits.values())),
           ("figures", "Figures", bool(figures)), ("provenance", "Provenance", True)]  # fmt: skip
    parts = [
        "<nav class='toc'>Contents: "
        + " ".join(f"<a href='#{a}'>{t}</a>" for a, t, shown in toc if shown)
        + "</nav>"
    ]
    if figures:
        parts.append(
            "<nav class='toc'>Figures: "
            + " ".join(f"<a href='#{_anchor(f.stem)}'>{_e(f.stem)}</a>" for f in figures)
            + "</nav>"
        )
    return parts


def _uncertainty(s: Mapping[str, Any]) -> str:
    """A Table I level's stat and syst uncertainties (markup)."""
    return (
        f"+{s['stat_up']:.1e}/&minus;{s['stat_down']:.1e} (stat) "
        f"+{s['syst_up']:.1e}/&minus;{s['syst_down']:.1e} (syst)"
    )


def _table1_section(table1: Mapping[str, Any]) -> list[str]:
    """Table I: each source's level, its uncertainties and events, then the total."""
    rows = []
    for s in table1["sources"]:
        level = ("&le; " if s.get("upper_bound") else "") + f"{s['level_per_mot']:.2e}"
        rows.append(
            [_e(s["label"]), level, _uncertainty(s), f"{s['expected_events']:.3g}", _e(s["method"])]
        )
    t = table1["total"]
    rows.append(
        [
            "<b>Total</b>",
            f"<b>{t['level_per_mot']:.2e}</b>",
            _uncertainty(t) if "stat_up" in t else "",
            f"<b>{t['expected_events']:.3g}</b>",
            _e(t.get("method", "")),
        ]
    )
    head = [
        "Source",
        "Level per MOT",
        "Uncertainty",
        f"Events at {table1['n_mot']:.0e} MOT",
        "Method",
    ]
    parts = [
        "<h2 id='table1'>Table I: background levels per MOT</h2>",
        _table(head, rows, classes=None),
    ]
    bf = table1.get("background_free_n_mot", {})
    if bf:
        parts.append(
            "<p>Background free (expected background below 0.1 / 1 event) up to N<sub>MOT</sub> = "
            f"{bf.get('0.1', float('nan')):.2e} / {bf.get('1', float('nan')):.2e}.</p>"
        )
    return parts


def _limits_section(limits: Mapping[str, Any]) -> list[str]:
    """The expected limits with their bands (about a dozen masses of a long grid)."""
    rows = []
    for i, m in enumerate(limits["masses_gev"]):
        if len(limits["masses_gev"]) > 16 and i % max(1, len(limits["masses_gev"]) // 12):
            continue
        obs = limits.get("g_prime_observed")
        g = [limits[f"g_prime_{b}"][i] for b in ("minus2", "minus1", "expected", "plus1", "plus2")]
        cells = [_num(v) for v in g]
        cells[2] = f"<b>{cells[2]}</b>"
        rows.append([f"{1e3 * m:.3g}", *cells, _num(obs[i]) if obs else "-"])
    head = [
        "m<sub>Z'</sub> [MeV]",
        "&minus;2&sigma;",
        "&minus;1&sigma;",
        "median",
        "+1&sigma;",
        "+2&sigma;",
        "observed",
    ]
    return [
        f"<h2 id='limits'>Expected {100 * limits['confidence_level']:.0f}% CL limits on g'</h2>",
        f"<p class='muted'>{_e(limits.get('description', ''))}</p>",
        _table(head, rows),
        "<p class='muted'>Full grid in limits.csv / limits.json; likelihood in workspace/.</p>",
    ]


def _claims_section(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    """The paper's claims, each with its reproduced value and verdict."""
    n_ok = sum(c["verdict"] == "agrees" for c in claims)
    if none_applicable(claims):
        heading = "<h2 id='claims'>Claims of the paper: not applicable (its 160 GeV beam)</h2>"
    else:
        heading = f"<h2 id='claims'>Claims of the paper: {n_ok} of {len(claims)} reproduced</h2>"
    rows = []
    for c in claims:
        cls = {"agrees": "ok", "disagrees": "bad"}.get(c["verdict"], "na")
        rows.append(
            [
                _e(c["statement"]),
                _e(c["section"]),
                _e(_fmt(c["paper"])),
                _e(_fmt(c["reproduced"])),
                _e(c["criterion"]),
                f"<span class='{cls}'>{_e(c['verdict'])}</span>",
            ]
        )
    head = ["Statement", "Section", "Paper", "Reproduced", "Criterion", "Verdict"]
    return [heading, _table(head, rows, left=2)]


def _fits_section(fits: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One row per source: its fit model, level, fit quality and method."""
    rows = []
    for name, f in fits.items():
        quality = f.get("fit", {}).get("quality", {})
        rows.append(
            [
                _e(f.get("label", name)),
                _e(f.get("fit", {}).get("model", "-")),
                f"{f.get('level_per_mot', float('nan')):.2e}",
                _e(", ".join(f"{k}={_fmt(v)}" for k, v in quality.items())) or "-",
                _e(f.get("method", "")),
            ]
        )
    return [
        "<h2 id='fits'>Fit summaries</h2>",
        _table(["Source", "Model", "Level per MOT", "Quality", "Method"], rows, left=2),
    ]


def _figures_section(
    figures: Sequence[Path],
    table1: Mapping[str, Any] | None,
    limits: Mapping[str, Any] | None,
    fits: Mapping[str, Mapping[str, Any]],
    root: Path,
) -> list[str]:
    """Every figure with its caption and, where there is one, a link to its PDF."""
    ctx: dict[str, Any] = {
        "n_mot": (limits or table1 or {}).get("n_mot"),
        "calculator": (limits or {}).get("calculator", ""),
        "background": (limits or {}).get("background_events", float("nan")),
        "fit_labels": {k: f.get("label", k) for k, f in fits.items()},
        "fit_kinds": {k: _fit_kind(f) for k, f in fits.items()},
    }
    parts = ["<h2 id='figures'>Figures</h2><div class='figs'>"]
    for fig in figures:
        rel = fig.relative_to(root).as_posix()
        pdf = rel[:-4] + ".pdf"
        pdf_link = f" (<a href='{_e(pdf)}'>PDF</a>)" if (root / pdf).exists() else ""
        parts.append(
            f"<figure id='{_anchor(fig.stem)}'><a href='{_e(rel)}'><img src='{_e(rel)}' "
            f"alt='{_e(fig.stem)}'></a><figcaption><b>{_e(fig.stem)}</b>: "
            f"{_caption(fig.stem, ctx)}{pdf_link}</figcaption></figure>"
        )
    parts.append("</div>")
    return parts


def _provenance_section(provenance: Mapping[str, Any]) -> list[str]:
    """Python, platform and dependency versions, and the pointer to provenance.json."""
    deps = ", ".join(f"{k} {v}" for k, v in provenance["dependencies"].items() if v)
    return [
        "<h2 id='provenance'>Provenance</h2>",
        f"<p class='muted'>Python {_e(provenance['python'])} on {_e(provenance['platform']['system'])} {_e(provenance['platform']['machine'])}; {_e(deps)}</p>",
        "<p class='muted'>Every input and output with its sha256, the seeds and the full effective configuration: <a href='provenance.json'>provenance.json</a>.</p>",
    ]
