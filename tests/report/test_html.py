"""index.html: every figure of the report folder on the page with a caption, a summary on top."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from bkg.report.html import render_index

REFERENCE = Path(__file__).resolve().parents[2] / "reports" / "reference"


class Page(HTMLParser):
    """The images, figure captions and element ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.captions: list[str] = []
        self.ids: set[str] = set()
        self.links: list[str] = []
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "img" and a.get("src"):
            self.images.append(str(a["src"]))
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag == "figcaption":
            self._in_caption = True
            self.captions.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.captions[-1] += data


def shown_pngs(folder: Path) -> tuple[set[str], Page]:
    page = Page()
    page.feed((folder / "index.html").read_text(encoding="utf-8"))
    return set(page.images), page


def assert_every_png_shown(folder: Path) -> Page:
    """Every PNG under ``folder`` is an <img> of its index.html, with a caption that is
    more than the file name, and every in-page link has its target."""
    images, page = shown_pngs(folder)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*.png")}
    assert on_disk, folder
    assert on_disk - images == set(), "PNG files of the report missing from index.html"
    assert images - on_disk == set(), "index.html shows images that are not in the folder"
    assert len(page.captions) == len(on_disk)
    assert all(len(c.split()) > 8 for c in page.captions), page.captions
    anchors = {link[1:] for link in page.links if link.startswith("#")}
    assert anchors <= page.ids, anchors - page.ids
    return page


def _render(folder: Path) -> None:
    """index.html of a folder holding the reference's JSON and a PNG for every figure."""
    ref = {n: json.loads((REFERENCE / n).read_text()) for n in
           ("table1.json", "limits.json", "claims.json", "provenance.json", "sensitivity.json")}  # fmt: skip
    stems = ["figures/fig2_trigger_efficiency", "figures/fig3_beam", "figures/fig4_zprime_spectra",
             "figures/fig5_hermeticity_plane", "figures/fig6_reach_background_free",
             "figures/fit_dimuon", "figures/fit_momentum_mismatch", "sensitivity", "reach_vs_mot"]  # fmt: skip
    for stem in stems:
        for ext in (".png", ".pdf"):
            (folder / (stem + ext)).parent.mkdir(parents=True, exist_ok=True)
            (folder / (stem + ext)).write_bytes(b"")
    text = render_index(
        title="t", table1=ref["table1.json"], limits=ref["limits.json"],
        fits={"dimuon": {"label": "Dimuon production"}}, claims=ref["claims.json"]["claims"],
        figures=sorted(folder.rglob("*.png")), provenance=ref["provenance.json"], root=folder,
        sensitivity=ref["sensitivity.json"],
    )  # fmt: skip
    (folder / "index.html").write_text(text, encoding="utf-8")


def test_page_shows_every_png_of_the_folder_with_a_caption(tmp_path):
    _render(tmp_path)
    page = assert_every_png_shown(tmp_path)
    # the limits figures beside the JSON (left out before) are there
    assert {"sensitivity.png", "reach_vs_mot.png"} <= set(page.images)
    # the paper's figures first, in their order, then the limits, then the fits
    assert page.images[:2] == ["figures/fig2_trigger_efficiency.png", "figures/fig3_beam.png"]
    assert page.images.index("sensitivity.png") < page.images.index("figures/fit_dimuon.png")


def test_page_opens_with_a_summary_and_a_table_of_contents(tmp_path):
    _render(tmp_path)
    text = (tmp_path / "index.html").read_text()
    summary = text[text.index("<dl class='summary'") : text.index("</dl>")]
    limits = json.loads((REFERENCE / "limits.json").read_text())
    table1 = json.loads((REFERENCE / "table1.json").read_text())
    assert f"{table1['total']['expected_events']:.3g} events" in summary
    assert "at 10 MeV" in summary and "at 100 MeV" in summary
    # g'_90 at 10 MeV: the limits' own value interpolated log-log between its grid points
    m, g = limits["masses_gev"], limits["g_prime_expected"]
    i = next(k for k, v in enumerate(m) if v > 0.01)
    import math

    t = (math.log(0.01) - math.log(m[i - 1])) / (math.log(m[i]) - math.log(m[i - 1]))
    g10 = math.exp(math.log(g[i - 1]) + t * (math.log(g[i]) - math.log(g[i - 1])))
    assert f"{g10:.2e}" in summary
    assert "band" in summary and ("covered" in summary)
    claims = json.loads((REFERENCE / "claims.json").read_text())["claims"]
    n_ok = sum(c["verdict"] == "agrees" for c in claims)
    assert f"{n_ok} of {len(claims)}</b> reproduced" in summary
    assert text.index("class='summary'") < text.index("class='toc'") < text.index("id='table1'")


def test_page_shows_the_closure_table_of_the_extrapolated_sources(tmp_path):
    # every fits entry with a `closure` gets a row: extrapolated, direct +- stat, the pull
    # and which one the level rests on (issue 22: the report has the closure table)
    fits = {
        "punch_through": {
            "label": "Hadron punch-through",
            "closure": {"extrapolated": 2.77e-6, "direct": 2.96e-6, "direct_stat": 2e-8,
                        "effective_events": 37332.0, "pull": -0.3},
            "level_choice": {"method": "extrapolated", "reason": "extrapolation supported and closes"},
        },
        "momentum_mismatch": {
            "label": "Momentum mismatch",
            # no biased event beyond the cut: the bound, not the Gaussian core's 1e-244
            "closure": {"extrapolated": 2.1e-74, "direct": 4.7e-244, "direct_stat": 0.0,
                        "effective_events": 0.0, "pull": None, "n_beyond": 0,
                        "bound_90": 8.3e-19},
            "level_choice": {"method": "direct (90% CL bound)", "reason": "66.7 decades below"},
        },
        "dimuon": {"label": "Dimuon production"},
    }  # fmt: skip
    provenance = json.loads((REFERENCE / "provenance.json").read_text())
    text = render_index(
        title="t", table1={}, limits={}, fits=fits, claims=[], figures=[], provenance=provenance,
        root=tmp_path,
    )  # fmt: skip
    page = Page()
    page.feed(text)
    assert "closure" in page.ids and "#closure" in page.links
    section = text[text.index("<h2 id='closure'>") :]
    assert "Hadron punch-through" in section and "Dimuon production" not in section
    assert "2.77e-06" in section and "2.96e-06 ± 2e-08" in section
    assert "&lt; 8.3e-19 (90% CL, no event)" in section and "4.7e-244" not in section
    assert "-0.3" in section and "extrapolated" in section
