"""Every figure is drawn from a results object: no figure function computes a limit, a fit
or a sample (the solvers, fitters and generators are replaced by traps here)."""

from __future__ import annotations

import numpy as np
import pytest

from bkg.config import load_config
from bkg.stats.overlays import Curve

MASSES = np.geomspace(1e-3, 1.0, 12)


def _trap(name: str):
    def trap(*args, **kwargs):
        raise AssertionError(f"a figure function called {name}: figures only draw results")

    return trap


@pytest.fixture
def no_computation(monkeypatch):
    """Limit solvers, toys, fits, sample generation and sample reading all raise."""
    import bkg.fit.tailfit
    import bkg.ntuple
    import bkg.report.results
    import bkg.sim.beam
    import bkg.sim.run
    import bkg.sim.signal
    import bkg.sources.base
    import bkg.stats.limits
    import bkg.stats.stage
    import bkg.stats.toys

    # bkg.report.results and bkg.sources.base bind a trapped name at import (``from
    # bkg.ntuple import iterate``): imported before the traps, else the first one imported
    # under them would keep a trap after the test and fail later tests (a report did)

    for module, names in (
        (
            bkg.stats.limits,
            (
                "event_limit",
                "event_limit_toys",
                "event_limit_asymptotic",
                "event_limit_asymptotic_fast",
                "asymptotic_cls",
            ),
        ),
        (bkg.stats.toys, ("toy_cls",)),
        (bkg.stats.stage, ("compute_limits", "event_limit")),
        (bkg.fit.tailfit, ("fit_tail", "fit_tail_iminuit", "extrapolate")),
        (bkg.sim.beam, ("generate_beam_muons",)),
        (bkg.sim.signal, ("generate_signal",)),
        (bkg.sim.run, ("run_samples",)),
        (bkg.ntuple, ("iterate",)),
    ):
        for name in names:
            monkeypatch.setattr(module, name, _trap(f"{module.__name__}.{name}"))


def _limit_results(cfg, *, observed: float | None = None):
    from bkg.stats.limits import EventLimit, map_to_masses
    from bkg.stats.stage import LimitResults

    # a smooth signal yield at g'_ref falling beyond ~100 MeV, as eq. 6 does
    s_ref = 30.0 / (1.0 + (MASSES / 0.15) ** 2)
    lim = EventLimit(
        expected=np.array([1.6, 2.1, 3.0, 4.4, 6.2]),
        observed=2.3 if observed is not None else np.nan,
        calculator="toys",
        confidence_level=0.9,
    )
    return LimitResults(
        masses_gev=MASSES, n_mot=1e11, background_events=1.9, signal_events_ref=s_ref,
        g_prime_ref=cfg.signal.g_prime_ref, event_limit=lim, observed_events=observed,
        **map_to_masses(lim, s_ref, cfg.signal.g_prime_ref),
    )  # fmt: skip


def _sensitivity(cfg):
    from bkg.report.sensitivity import SensitivityResult, g2_band

    y = 3e-10 / (1.0 + (MASSES / 0.15) ** 2)
    low, central, high = g2_band(MASSES, cfg)
    return SensitivityResult(
        masses_gev=MASSES, yield_per_mot_ref=y, g_prime_90=1e-4 * np.sqrt(2.3 / (1e11 * y)),
        g2_low=low, g2_central=central, g2_high=high, efficiency=np.full(12, 0.3), n_mot=1e11,
        n_signal_90=2.303, g_prime_ref=1e-4, g2_reference=cfg.g_minus_2.reference,
    )  # fmt: skip


def _tail_estimate():
    from bkg.fit.tailfit import expected_counts
    from bkg.sources.base import SourceEstimate

    params = {"mu": 0.0, "sigmal": 0.03, "alphal": 3.2, "sigmar": 0.03, "alphar": 3.2}
    edges = np.linspace(-0.3, 0.15, 301)
    counts = np.round(expected_counts(edges, params, "gauss_exp", 7e5))
    fit = {
        "model": "gauss_exp", "parameters": params, "parameter_order": list(params),
        "covariance": (np.diag([1e-8, 1e-9, 1e-2, 1e-9, 1e-2])).tolist(), "edges": edges.tolist(),
        "counts": counts.tolist(), "cut": 1.0, "side": "upper", "variable": "x",
    }  # fmt: skip
    return SourceEstimate(
        name="momentum_mismatch", label="Momentum mismatch", level_per_mot=1e-45, stat_up=1e-45,
        stat_down=1e-45, syst_up=0.0, syst_down=0.0, upper_bound=False, method="tail fit", fit=fit,
    )  # fmt: skip


def _counting_estimate():
    from bkg.sources.base import SourceEstimate

    return SourceEstimate(
        name="dimuon", label="Dimuon production", level_per_mot=7.9e-19, stat_up=7e-19,
        stat_down=7e-19, syst_up=0.0, syst_down=0.0, upper_bound=False,
        method="dimuon yield x P(multi-MIP HCAL and multiplicity fail) " * 2,
        inputs={"n_events": 50000, "pass_hcal_in_box": 945, "single_track_among_them": 0},
    )  # fmt: skip


def test_every_figure_is_drawn_from_results_without_computing(tmp_path, no_computation):
    from bkg.report import figures as report_figures
    from bkg.sim import figures as sim_figures
    from bkg.sources.figures import plot_source, save_figure
    from bkg.stats import figures as stats_figures
    from bkg.stats.reach import ReachVsMot

    cfg = load_config(None)
    res = _limit_results(cfg)
    na64_2022 = Curve("NA64mu 2022 observed", "PRL 132, 211803 (2024)", MASSES,
                      np.asarray(res.g_expected)[:, 2] * 2.2, computed=True)  # fmt: skip
    user = Curve("BaBar", "PRD 94, 011102 (2016)", np.array([0.2, 0.5, 1.0]), np.array([1e-3, 8e-4, 7e-4]))  # fmt: skip
    stats_figures.plot_reach(res, cfg, out_dir=tmp_path, overlays=[na64_2022, user])
    reach = ReachVsMot(
        n_mot=np.geomspace(1e9, 1e13, 5), median_events=np.array([2.3, 2.4, 3.0, 6.0, 15.0]),
        picks_gev=(0.01, 0.1, 1.0), yield_per_mot_ref=np.array([3e-10, 2e-10, 6e-12]),
        g_prime_ref=1e-4, background_per_mot=1.9e-11, calculator="toys",
    )  # fmt: skip
    stats_figures.plot_reach_vs_mot(reach, out_dir=tmp_path)
    figs = tmp_path / "figures"
    report_figures.plot_reach(_sensitivity(cfg), cfg, out_dir=figs, overlays=[user])
    spectra = report_figures.ZprimeSpectra(
        160.0, (0.01, 0.1), [np.linspace(1, 159, 50)] * 2, [np.full(50, 1 / 158)] * 2
    )
    report_figures.plot_zprime_spectra(spectra, out_dir=figs)
    e = np.linspace(0, 200, 101)
    data = sim_figures.SampleFigureData(
        fig2=sim_figures.Fig2Curves(
            masses_gev=np.array([0.01, 0.1, 1.0]),
            trigger={160.0: np.array([0.1, 0.3, 0.2]), 100.0: np.array([0.2, 0.4, 0.1])},
            box={160.0: np.array([0.2, 0.6, 0.9]), 100.0: np.array([0.3, 0.6, 0.9])},
        ),
        beam=sim_figures.BeamHistograms(
            spot=np.ones((100, 100)),
            spot_edges_cm=np.linspace(-15, 15, 101),
            energy_edges_gev=e,
            energy_all=np.full(100, 1e3),
            energy_triggered=np.full(100, 1e2),
        ),
        plane=sim_figures.HermeticityPlane(
            np.ones((120, 120)), np.linspace(0, 240, 121), np.linspace(0, 240, 121)
        ),
    )
    sim_figures.plot_all(cfg, data, out_dir=figs)
    for est in (_tail_estimate(), _counting_estimate()):
        save_figure(plot_source(est), figs, f"fit_{est.name}")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == [
        "figures/fig2_trigger_efficiency.png", "figures/fig3_beam.png",
        "figures/fig4_zprime_spectra.png", "figures/fig5_hermeticity_plane.png",
        "figures/fig6_reach_background_free.png", "figures/fit_dimuon.png",
        "figures/fit_momentum_mismatch.png", "reach_vs_mot.png", "sensitivity.png",
    ]  # fmt: skip
    # a PDF beside the figures of the paper only (Figs. 2-6; --pdf all for the rest)
    pdfs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.pdf"))
    assert pdfs == [
        "figures/fig2_trigger_efficiency.pdf", "figures/fig3_beam.pdf",
        "figures/fig4_zprime_spectra.pdf", "figures/fig5_hermeticity_plane.pdf",
        "figures/fig6_reach_background_free.pdf", "sensitivity.pdf",
    ]  # fmt: skip


@pytest.mark.parametrize(("mode", "pdfs"), [("all", 2), ("none", 0), ("paper", 1)])
def test_pdf_mode_picks_the_figures_written_as_pdf(tmp_path, monkeypatch, mode, pdfs):
    # --pdf all: every figure; none: PNG only; paper (default): the paper's figures only
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bkg.plotting import save_figure, set_pdf_mode

    monkeypatch.setenv("BKG_PDF", "paper")  # restored (unset) after the test
    set_pdf_mode(mode)
    for stem in ("fig3_beam", "fit_dimuon"):
        save_figure(plt.figure(figsize=(2, 2)), tmp_path, stem)
    assert len(list(tmp_path.glob("*.png"))) == 2
    assert len(list(tmp_path.glob("*.pdf"))) == pdfs
    with pytest.raises(ValueError, match="--pdf: expected one of paper, all, none"):
        set_pdf_mode("some")


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_sensitivity_figure_fine_grid_band_label_and_clipped_band(no_computation):
    from bkg.stats.figures import FINE_POINTS, plot_reach

    cfg = load_config(None)
    res = _limit_results(cfg)
    na64_2022 = Curve("NA64mu 2022", "PRL", MASSES, np.asarray(res.g_expected)[:, 2] * 2.2, computed=True)  # fmt: skip
    user = Curve("BaBar", "PRD", np.array([0.2, 0.5, 1.0]), np.array([1e-3, 8e-4, 7e-4]))
    fig = plot_reach(res, cfg, g2_references=["2021", "2025"], overlays=[na64_2022, user])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    median = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
    # solved once, drawn on the fine grid (the 12 masses of the reference made it angular);
    # a limit computed here too, a user's curve as given
    assert len(median.get_xdata()) == FINE_POINTS
    assert len(lines["NA64mu 2022 (PRL)"].get_xdata()) == FINE_POINTS
    assert len(lines["BaBar (PRD)"].get_xdata()) == 3
    texts = _legend_texts(fig)
    assert any("2021, $\\pm$2$\\sigma$" in t for t in texts), texts
    # the 2025 band (Delta a_mu = 38e-11 +- 2 x 63e-11) reaches g' = 0: said on the figure
    assert any("2025" in t and "g'$ = 0" in t for t in texts), texts
    assert any("2025" in t.get_text() and "cut at the bottom" in t.get_text() for t in ax.texts)
    # the g-2 bands are hatched, not filled: the expected bands under them keep their colours
    hatched = [c for c in ax.collections if c.get_hatch()]
    assert len(hatched) == 2 and all(not np.any(c.get_facecolor()[:, 3]) for c in hatched)
    # the y range is set by what is drawn, not a fixed floor far below it
    lo, hi = ax.get_ylim()
    assert 1e-5 < lo < 1e-4 and hi < 0.1


def test_counting_figure_draws_no_bar_for_a_zero_count_and_the_method_below_the_axes():
    from bkg.sources.figures import plot_source

    fig = plot_source(_counting_estimate())
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:2] == [50000, 945] and np.isnan(heights[2])
    # the method text is a figure text under the axes, not inside the frame
    (method,) = [t for t in fig.texts if t.get_text().startswith("method:")]
    assert method.get_position()[1] < ax.get_position().y0


def test_fit_figure_shows_at_most_24_decades_below_the_data():
    from bkg.sources.figures import plot_source

    est = _tail_estimate()
    fig = plot_source(est)
    ax = fig.axes[0]
    lo, _hi = ax.get_ylim()
    counts = np.asarray(est.fit["counts"])
    # the gauss_exp tail reaches the cut at 1.0 near 1e-40 events per bin: not drawn to there
    assert lo >= counts[counts > 0].min() * 1e-24 * 0.999
    assert any("below the axis" in t.get_text() for t in ax.texts)


def test_overlay_csv_reads_curves_and_rejects_a_bad_row(tmp_path):
    from bkg.stats.overlays import OverlayError, read_overlays

    f = tmp_path / "curves.csv"
    f.write_text(
        "# two curves\nm_gev,g_prime,label,citation\n"
        '0.5,8e-4,BaBar,"PRD 94, 011102 (2016)"\n0.2,1e-3,BaBar,"PRD 94, 011102 (2016)"\n'
        "0.01,5e-4,CCFR,PRL 66 3117 (1991)\n0.1,6e-4,CCFR,PRL 66 3117 (1991)\n"
    )
    babar, ccfr = read_overlays(f)
    assert babar.label == "BaBar" and babar.citation == "PRD 94, 011102 (2016)"
    assert babar.masses_gev.tolist() == [0.2, 0.5]  # sorted by mass
    assert ccfr.g_prime.tolist() == [5e-4, 6e-4]
    f.write_text("m_gev,g_prime,label,citation\n0.1,-1e-3,X,Y\n")
    with pytest.raises(
        OverlayError, match=r"curves.csv:2: m_gev and g_prime must be finite and > 0"
    ):
        read_overlays(f)
    f.write_text("mass,g,label\n")
    with pytest.raises(OverlayError, match="expected m_gev,g_prime,label,citation"):
        read_overlays(f)


def test_report_figures_are_known_to_the_page(tmp_path):
    """index.html shows every PNG of a report folder, each with a caption."""
    from bkg.report.html import FIGURE_ORDER, _caption

    ctx = {"n_mot": 1e11, "calculator": "toys", "background": 1.9, "fit_labels": {}}
    for stem in FIGURE_ORDER:
        assert _caption(stem, ctx) != stem  # a written caption, not the file name
    assert "fits/dimuon.json" in _caption("fit_dimuon", ctx)
    ctx["fit_kinds"] = {"dimuon": "counting", "hermeticity": "tail"}
    assert "counts" in _caption("fit_dimuon", ctx)
    # the tail figures are survival functions: the fits carried to the cut and the direct points
    assert "carried to the cut" in _caption("fit_hermeticity", ctx)
    assert "direct estimates" in _caption("fit_hermeticity", ctx)


def test_fine_grid_interpolation_is_exact_for_a_power_law():
    from bkg.stats.figures import log_interp

    # g' ~ m^p is a straight line in log-log: the interpolation returns it to rounding
    m = np.geomspace(1e-3, 1.0, 12)
    fine = np.geomspace(1e-3, 1.0, 400)
    assert np.allclose(log_interp(fine, m, 2e-4 * m**0.7), 2e-4 * fine**0.7, rtol=1e-12)
    # a mass without a limit (NaN) stays without one outside the finite points
    g = 2e-4 * m**0.7
    g[-2:] = np.nan
    out = log_interp(fine, m, g)
    assert np.isnan(out[fine > m[-3]]).all() and np.isfinite(out[fine <= m[-3]]).all()


def _png_of_savefig_tight(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _colorbar_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5))
    mesh = a1.pcolormesh(np.arange(11), np.arange(11), np.arange(100.0).reshape(10, 10) + 1)
    fig.colorbar(mesh, ax=a1).set_label("events / bin")
    a2.plot(MASSES, 1e-4 * MASSES**0.5, label="$g'$")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15))
    fig.text(0.02, -0.05, "a note under the axes")
    return fig


def test_save_figure_writes_the_png_of_a_tight_savefig_with_one_draw_per_file(
    tmp_path, monkeypatch, no_computation
):
    # save_figure finds the tight box itself, once for the PNG and the PDF, without
    # drawing the figure first: the PNG must still be byte for byte savefig's
    # bbox_inches="tight" one (a box off by a pixel shifts every pixel), and each file
    # costs one draw (savefig's "tight" drew every file twice: 4 draws for PNG + PDF)
    from matplotlib.figure import Figure

    from bkg.plotting import save_figure
    from bkg.sources.figures import plot_source
    from bkg.stats.figures import plot_reach

    cfg = load_config(None)
    draws = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, r: (draws.append(1), draw(self, r))[1])
    figures = {
        "tail": plot_source(_tail_estimate()),  # tight_layout, log axis
        "counting": plot_source(_counting_estimate()),  # a text below the figure
        "sensitivity": plot_reach(_limit_results(cfg), cfg),  # the legend below the axes
        "colorbar": _colorbar_figure(),
    }
    for stem, fig in figures.items():
        draws.clear()
        (png, pdf) = save_figure(fig, tmp_path, stem, close=False, pdf=True)
        assert len(draws) == 2, stem
        assert png.read_bytes() == _png_of_savefig_tight(fig), stem
        assert pdf.read_bytes().startswith(b"%PDF")


def test_each_mathtext_string_is_parsed_once_per_dpi_for_all_files(tmp_path, monkeypatch):
    # the log axes' tick labels ($\mathdefault{10^{-3}}$) and the labels are parsed once
    # per dpi and size, not again by each renderer of the PNG and the PDF
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import _mathtext

    from bkg.plotting import save_figure

    parsed = []
    parse = _mathtext.Parser.parse
    monkeypatch.setattr(
        _mathtext.Parser, "parse",
        lambda self, s, fonts, size, dpi: (parsed.append((s, size, dpi)), parse(self, s, fonts, size, dpi))[1],
    )  # fmt: skip
    fig, ax = plt.subplots()
    ax.plot(MASSES, MASSES**2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{Z'}$ [GeV]")
    save_figure(fig, tmp_path, "loglog", pdf=True)
    assert parsed and len(parsed) == len(set(parsed)), sorted(parsed)


def test_shared_mathtext_cache_keeps_parses_of_other_math_fonts_apart():
    # a parse read the mathtext.* fonts: the same string in another font is parsed again
    import matplotlib
    from matplotlib.mathtext import MathTextParser

    from bkg.plotting import shared_mathtext_cache

    widths = []
    with shared_mathtext_cache():
        for rm in ("DejaVu Sans", "DejaVu Serif"):
            with matplotlib.rc_context({"mathtext.fontset": "custom", "mathtext.rm": rm}):
                widths.append(MathTextParser("path").parse(r"$\mathrm{Wide}$", 100).width)
    with matplotlib.rc_context({"mathtext.fontset": "custom", "mathtext.rm": "DejaVu Serif"}):
        alone = MathTextParser("path").parse(r"$\mathrm{Wide}$", 100).width
    assert widths[0] != widths[1] and widths[1] == alone


def test_preload_imports_the_plotting_stack_without_opening_a_font():
    """What side processes inherit from the report's process (bkg.pipes.side_context):
    pyplot and mplhep imported, but no font loaded (a fork would share its file offset)
    and no thread started (a fork copies none)."""
    import subprocess
    import sys

    code = (
        "import os, sys, threading\n"
        "from bkg.plotting import preload\n"
        "preload(); preload()\n"
        "import matplotlib.font_manager as fm\n"
        "fds = [os.readlink(f'/proc/self/fd/{f}') for f in os.listdir('/proc/self/fd')\n"
        "       if os.path.exists(f'/proc/self/fd/{f}')]\n"
        "fonts = [f for f in fds if f.lower().endswith(('.ttf', '.otf', '.afm', '.pfb'))]\n"
        "print(sorted(m for m in ('matplotlib.pyplot', 'mplhep') if m in sys.modules),\n"
        "      fm._get_font.cache_info().currsize, fonts, threading.active_count(),\n"
        "      __import__('matplotlib').get_backend().lower())\n"
    )
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/fd")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "['matplotlib.pyplot', 'mplhep'] 0 [] 1 agg"


def _open_font_files() -> list[str]:
    import os

    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.lower().endswith((".ttf", ".otf", ".afm", ".pfb")):
            out.append(target)
    return sorted(out)


def _fonts_in_child(queue) -> None:
    import gc

    gc.collect()  # what only a cycle kept: unreachable, never read again
    queue.put(_open_font_files())


def test_a_fork_keeps_none_of_the_parents_fonts(tmp_path):
    """A side process forked after this process drew figures (math text included) holds
    none of its fonts: the two would share each font file's read position, and reading
    at once failed ("failed to load glyph" in a report forked from the test process)."""
    import multiprocessing
    import sys

    from bkg.plotting import figure_style, save_figure

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/fd")
    with figure_style() as plt:
        fig, ax = plt.subplots()
        ax.set_yscale("log")
        ax.plot([1.0, 2.0], [1e-3, 1e3])
        ax.set_xlabel(r"$E_\mu$ [GeV]")
        ax.set_title("a title")
        save_figure(fig, tmp_path, "drawn", pdf=True)
    assert _open_font_files(), "the parent's fonts are open (else this tests nothing)"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fonts_in_child, args=(queue,))
    child.start()
    held = queue.get(timeout=60)
    child.join()
    assert held == []
