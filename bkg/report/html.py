"""``index.html``: one self-contained page (opens offline) that shows a whole report."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bkg.report.claims import none_applicable

__all__ = ["render_index"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.ok{color:#17702b;font-weight:600}.bad{color:#b00020;font-weight:600}.na{color:#888}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1em}
figure{margin:0;border:1px solid #eee;padding:.4em}figure img{width:100%}figcaption{font-size:.85em;color:#555}
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
) -> str:
    """The HTML text of the report page; figure paths are made relative to ``root``."""
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style></head><body>"
    ]
    parts.append(f"<h1>{_e(title)}</h1>")
    parts.append(
        f"<p class='muted'>na64mu-bkg {_e(provenance['package']['version'])} &middot; config sha256 "
        f"{_e(provenance['config_hash'][:16])} &middot; seed {_e(provenance['config']['seed'])} &middot; "
        f"git {_e(provenance.get('git_commit') or 'n/a')}</p>"
    )
    if table1:
        parts.append("<h2>Table I: background levels per MOT</h2>")
        rows = []

        def unc(s: dict[str, Any]) -> str:
            return (
                f"+{s['stat_up']:.1e}/&minus;{s['stat_down']:.1e} (stat) "
                f"+{s['syst_up']:.1e}/&minus;{s['syst_down']:.1e} (syst)"
            )

        for s in table1["sources"]:
            level = ("&le; " if s.get("upper_bound") else "") + f"{s['level_per_mot']:.2e}"
            rows.append(
                [_e(s["label"]), level, unc(s), f"{s['expected_events']:.3g}", _e(s["method"])]
            )
        t = table1["total"]
        rows.append(
            [
                "<b>Total</b>",
                f"<b>{t['level_per_mot']:.2e}</b>",
                unc(t) if "stat_up" in t else "",
                f"<b>{t['expected_events']:.3g}</b>",
                _e(t.get("method", "")),
            ]
        )
        parts.append(
            _table(
                [
                    "Source",
                    "Level per MOT",
                    "Uncertainty",
                    f"Events at {table1['n_mot']:.0e} MOT",
                    "Method",
                ],
                rows,
                classes=None,
            )
        )
        bf = table1.get("background_free_n_mot", {})
        if bf:
            parts.append(
                "<p>Background free (expected background below 0.1 / 1 event) up to N<sub>MOT</sub> = "
                f"{bf.get('0.1', float('nan')):.2e} / {bf.get('1', float('nan')):.2e}.</p>"
            )
    if limits:
        parts.append(f"<h2>Expected {100 * limits['confidence_level']:.0f}% CL limits on g'</h2>")
        parts.append(f"<p class='muted'>{_e(limits.get('description', ''))}</p>")
        rows = []
        for i, m in enumerate(limits["masses_gev"]):
            if len(limits["masses_gev"]) > 16 and i % max(1, len(limits["masses_gev"]) // 12):
                continue
            obs = limits.get("g_prime_observed")
            g = [
                limits[f"g_prime_{b}"][i]
                for b in ("minus2", "minus1", "expected", "plus1", "plus2")
            ]
            cells = [_num(v) for v in g]
            cells[2] = f"<b>{cells[2]}</b>"
            rows.append([f"{1e3 * m:.3g}", *cells, _num(obs[i]) if obs else "-"])
        parts.append(
            _table(
                [
                    "m<sub>Z'</sub> [MeV]",
                    "&minus;2&sigma;",
                    "&minus;1&sigma;",
                    "median",
                    "+1&sigma;",
                    "+2&sigma;",
                    "observed",
                ],
                rows,
            )
        )
        parts.append(
            "<p class='muted'>Full grid in limits.csv / limits.json; likelihood in workspace/.</p>"
        )
    if claims:
        n_ok = sum(c["verdict"] == "agrees" for c in claims)
        if none_applicable(claims):
            parts.append("<h2>Claims of the paper: not applicable (its 160 GeV beam)</h2>")
        else:
            parts.append(f"<h2>Claims of the paper: {n_ok} of {len(claims)} reproduced</h2>")
        rows, classes = [], []
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
            classes.append("")
        parts.append(
            _table(
                ["Statement", "Section", "Paper", "Reproduced", "Criterion", "Verdict"],
                rows,
                left=2,
            )
        )
    if fits:
        parts.append("<h2>Fit summaries</h2>")
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
        parts.append(
            _table(["Source", "Model", "Level per MOT", "Quality", "Method"], rows, left=2)
        )
    if figures:
        parts.append("<h2>Figures</h2><div class='figs'>")
        for fig in figures:
            rel = fig.relative_to(root).as_posix()
            pdf = rel[:-4] + ".pdf"
            parts.append(
                f"<figure><a href='{_e(pdf)}'><img src='{_e(rel)}' alt='{_e(fig.stem)}'></a><figcaption>{_e(fig.stem)} (<a href='{_e(pdf)}'>PDF</a>)</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append("<h2>Provenance</h2>")
    deps = ", ".join(f"{k} {v}" for k, v in provenance["dependencies"].items() if v)
    parts.append(
        f"<p class='muted'>Python {_e(provenance['python'])} on {_e(provenance['platform']['system'])} {_e(provenance['platform']['machine'])}; {_e(deps)}</p>"
    )
    parts.append(
        "<p class='muted'>Every input and output with its sha256, the seeds and the full effective configuration: <a href='provenance.json'>provenance.json</a>.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
