"""Figures of the samples stage: paper Figs. 2, 3 and 5 (PNG + PDF, mplhep style, Agg backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bkg.config import Config

__all__ = [
    "BeamHistograms", "Fig2Curves", "HermeticityPlane", "SampleFigureData", "beam_histograms",
    "fig2_curves", "fig2_trigger_efficiency", "fig3_beam", "fig5_hermeticity_plane",
    "hermeticity_plane", "plot_all", "render_beam_figures", "render_fig3", "render_fig5",
    "sample_figure_data",
    "trigger_efficiency_curve",
]  # fmt: skip


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    return plt


def _save(fig: Any, out_dir: Path, name: str) -> list[Path]:
    from bkg.plotting import save_figure

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out_dir, name)


def _at_energy(cfg: Config, e0: float) -> Config:
    """The setup at another beam energy, with the BMS momentum window scaled along."""
    import dataclasses

    k = e0 / cfg.beam.energy_gev
    lo, hi = cfg.beam.momentum_window_gev
    beam = dataclasses.replace(cfg.beam, energy_gev=e0, momentum_window_gev=(lo * k, hi * k))
    return cfg.replace(beam=beam)


#: the masses and beam energies of Fig. 2 (the paper's two beam energies)
FIG2_MASSES_GEV = np.geomspace(0.01, 1.0, 6)
FIG2_ENERGIES_GEV = (160.0, 100.0)


@dataclass(frozen=True)
class Fig2Curves:
    """The curves of Fig. 2, per beam energy (GeV), at ``masses_gev``.

    Attributes:
        masses_gev: Z' masses (GeV).
        trigger: beam energy -> fraction of signal events passing the trigger.
        box: beam energy -> fraction of signal events with the true E'_mu inside the
            signal box (E'_mu <= E0/2 at the config's ratio). At the nominal energy,
            where S4's window lies inside the box, no trigger efficiency can exceed
            it (drawn dashed); at a lower energy the same S4 also takes muons above
            E0/2, so there it bounds nothing and is only recorded.
    """

    masses_gev: np.ndarray
    trigger: dict[float, np.ndarray]
    box: dict[float, np.ndarray]


def _curves_at_energy(
    cfg: Config, masses_gev: np.ndarray, energy_gev: float, n_per_mass: int
) -> tuple[np.ndarray, np.ndarray]:
    """(trigger efficiency, box fraction) per mass for one beam energy."""
    from bkg import selection
    from bkg.sim import signal

    c = cfg if energy_gev == cfg.beam.energy_gev else _at_energy(cfg, energy_gev)
    box_cut = cfg.signal_box.e_mu_out_max_gev * energy_gev / cfg.beam.energy_gev
    trig, box = [], []
    for i, m in enumerate(masses_gev):
        rng = np.random.default_rng([cfg.seed, int(energy_gev), i])
        ev = signal.generate_signal(c, rng, n_per_mass, m_zprime_gev=float(m))
        trig.append(selection.passes_trigger(ev, c).mean())
        box.append(np.mean(ev["p_out_true"] <= box_cut))
    return np.asarray(trig), np.asarray(box)


def trigger_efficiency_curve(
    cfg: Config, masses_gev: np.ndarray, energy_gev: float, *, n_per_mass: int = 5000
) -> np.ndarray:
    """Fraction of signal events passing the trigger at each mass, for one beam energy."""
    return _curves_at_energy(cfg, masses_gev, energy_gev, n_per_mass)[0]


def fig2_curves(
    cfg: Config,
    *,
    masses_gev: np.ndarray | None = None,
    n_per_mass: int = 5000,
    energies_gev: tuple[float, ...] = FIG2_ENERGIES_GEV,
) -> Fig2Curves:
    """The curves of Fig. 2 (simulated here), nominal beam energy first."""
    masses = FIG2_MASSES_GEV if masses_gev is None else np.asarray(masses_gev)
    per = {e0: _curves_at_energy(cfg, masses, e0, n_per_mass) for e0 in energies_gev}
    return Fig2Curves(
        masses_gev=masses,
        trigger={e0: t for e0, (t, _) in per.items()},
        box={e0: b for e0, (_, b) in per.items()},
    )


def fig2_trigger_efficiency(cfg: Config, out_dir: Path, *, curves: Fig2Curves) -> list[Path]:
    """Trigger efficiency of the signal versus Z' mass for the beam energies of ``curves``
    (from :func:`fig2_curves`; drawn as given).

    Dashed, at the nominal beam energy: the fraction of signal events inside the signal
    box, which a trigger whose window lies inside the box (S4 here) cannot exceed.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 6))
    for e0, eff in curves.trigger.items():
        (line,) = ax.plot(curves.masses_gev, eff, "o-", label=f"{e0:.0f} GeV")
        if e0 == cfg.beam.energy_gev:
            ax.plot(
                curves.masses_gev,
                curves.box[e0],
                "--",
                color=line.get_color(),
                label=rf"$E'_\mu \leq E_0/2$ (ceiling), {e0:.0f} GeV",
            )
    ax.set_xscale("log")
    ax.set_ylim(0.0, 1.45)  # room for the legend above the curves
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_xlabel(r"$m_{Z'}$ [GeV]")
    ax.set_ylabel("trigger efficiency")
    ax.legend(loc="upper left", fontsize="small", frameon=True, framealpha=0.9)
    return _save(fig, out_dir, "fig2_trigger_efficiency")


@dataclass(frozen=True)
class BeamHistograms:
    """Histograms of Fig. 3: the beam spot at the ECAL and the momentum with and without trigger."""

    spot: np.ndarray  # (100, 100) muons per bin in x, y
    spot_edges_cm: np.ndarray
    energy_edges_gev: np.ndarray
    energy_all: np.ndarray
    energy_triggered: np.ndarray


def beam_histograms(samples_dir: Path, cfg: Config, *, n: int = 500_000) -> BeamHistograms:
    """Histogram the first ``n`` muons of the beam sample of ``samples_dir`` for Fig. 3.

    The sample's own muons: nothing is simulated again (the first chunk's 500k events
    read in ~0.02 s; simulating them took ~0.35 s of CPU).
    """
    from bkg import ntuple

    branches = ["x_cm", "y_cm", "p_in_true", "s0", "s1", "s_mu"]
    paths = ntuple.sample_paths(samples_dir, "beam")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in branches}
    seen = 0
    for ch in ntuple.iterate(paths, "beam", branches, step_size=min(n, cfg.samples.chunk_size)):
        take = min(n - seen, len(ch["x_cm"]))
        for k in branches:
            parts[k].append(ch[k][:take])
        seen += take
        if seen >= n:
            break
    ev = {k: np.concatenate(v) for k, v in parts.items()}  # the sample has >= 1 chunk
    trig = ev["s0"] & ev["s1"] & ev["s_mu"]
    xy = np.linspace(-15, 15, 101)
    spot = np.histogram2d(ev["x_cm"], ev["y_cm"], bins=[xy, xy])[0]
    e_edges = np.linspace(0, 200, 101)
    return BeamHistograms(
        spot=spot,
        spot_edges_cm=xy,
        energy_edges_gev=e_edges,
        energy_all=np.histogram(ev["p_in_true"], bins=e_edges)[0].astype(float),
        energy_triggered=np.histogram(ev["p_in_true"][trig], bins=e_edges)[0].astype(float),
    )


def fig3_beam(hists: BeamHistograms, out_dir: Path) -> list[Path]:
    """Beam spot and momentum spectrum with no trigger and with S0 + S1 + S_mu."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"wspace": 0.55})
    xy = hists.spot_edges_cm
    # rasterized: 1e4 cells drawn as one image in the PDF (vector cells: 1 s more, 5x larger)
    image = a1.pcolormesh(xy, xy, hists.spot.T, cmap="viridis", rasterized=True)
    bar = fig.colorbar(image, ax=a1, pad=0.02)
    bar.set_label("muons / bin", loc="center")
    a1.set_xlabel("x [cm]")
    a1.set_ylabel("y [cm]")
    a1.set_title("beam spot at the ECAL, no trigger", fontsize=16)
    width = hists.energy_edges_gev[1] - hists.energy_edges_gev[0]
    a2.stairs(hists.energy_all, hists.energy_edges_gev, label="no trigger")
    a2.stairs(hists.energy_triggered, hists.energy_edges_gev, label=r"$S_0+S_1+S_\mu$")
    a2.set_yscale("log")
    a2.set_ylim(bottom=0.5)
    a2.set_xlabel(r"$E_\mu$ [GeV]")
    a2.set_ylabel(f"muons / {width:g} GeV", loc="center")
    a2.set_title("beam momentum", fontsize=16)
    a2.legend(loc="upper left", fontsize="small")
    return _save(fig, out_dir, "fig3_beam")


@dataclass(frozen=True)
class HermeticityPlane:
    """Fig. 5: beam events after the trigger in the (E'_mu, E_CAL) plane."""

    counts: np.ndarray  # (120, 120)
    e_mu_edges_gev: np.ndarray
    e_cal_edges_gev: np.ndarray


def hermeticity_plane(
    samples_dir: Path, cfg: Config, *, max_events: int = 10_000_000
) -> HermeticityPlane:
    """Histogram the beam sample of ``samples_dir`` in (E'_mu, E_CAL) (up to ``max_events``).

    120 x 120 bins of 2 GeV from 0 to 240 GeV, each [lo, hi) (boost-histogram's regular
    axes fill 1e7 events in 0.09 s, np.histogram2d in 0.59 s; the same counts).
    """
    import boost_histogram as bh

    from bkg import ntuple, selection

    plane = bh.Histogram(bh.axis.Regular(120, 0.0, 240.0), bh.axis.Regular(120, 0.0, 240.0))
    seen = 0
    branches = ["p_out_rec", *selection.E_CAL_BRANCHES]  # 5 of the 18 selection branches
    for ch in ntuple.iterate(ntuple.sample_paths(samples_dir, "beam"), "beam", branches):
        plane.fill(ch["p_out_rec"], selection.e_cal(ch))
        seen += len(ch["p_out_rec"])
        if seen >= max_events:
            break
    edges = np.linspace(0.0, 240.0, 121)
    return HermeticityPlane(np.ascontiguousarray(plane.values(), dtype=float), edges, edges.copy())


def fig5_hermeticity_plane(plane: HermeticityPlane, cfg: Config, out_dir: Path) -> list[Path]:
    """(E'_mu, E_CAL) plane of the beam sample after the trigger, regions A-D marked (D: the signal box)."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    h, xe, ye = plane.counts, plane.e_mu_edges_gev, plane.e_cal_edges_gev
    fig, ax = plt.subplots(figsize=(8, 7))
    mesh = ax.pcolormesh(xe, ye, np.where(h > 0, h, np.nan).T, norm=LogNorm(), rasterized=True)
    bar = fig.colorbar(mesh, ax=ax)
    bar.set_label("events / bin", loc="center")
    e_cut, p_cut = cfg.signal_box.e_cal_max_gev, cfg.signal_box.e_mu_out_max_gev
    ax.axvline(p_cut, color="r")
    ax.axhline(e_cut, color="r")
    # the paper's regions (Sec. III.B): A large calorimeter deposits (the upper diagonal,
    # hadronic showers reaching the HCAL), B the diagonal E'_mu + E_CAL = E0 of energy
    # given to the ECAL, C the MIP bulk, D the signal box
    e0 = cfg.beam.energy_gev
    for label, (x, y) in {
        "A": (0.15 * e0, 0.95 * e0),
        "B": (0.70 * e0, 0.42 * e0),
        "C": (e0 + 15.0, e_cut / 3),
        "D": (p_cut / 3, e_cut / 3),
    }.items():
        ax.text(x, y, label, color="r", fontsize=20)
    ax.set_xlabel(r"$E'_\mu$ [GeV]")
    ax.set_ylabel(r"$E_{CAL}$ [GeV]")
    return _save(fig, out_dir, "fig5_hermeticity_plane")


@dataclass(frozen=True)
class SampleFigureData:
    """What Figs. 2, 3 and 5 draw (computed by :func:`sample_figure_data`)."""

    fig2: Fig2Curves
    beam: BeamHistograms
    plane: HermeticityPlane


def sample_figure_data(
    cfg: Config,
    *,
    samples_dir: Path,
    fig2: Fig2Curves | None = None,
    beam: BeamHistograms | None = None,
    plane: HermeticityPlane | None = None,
) -> SampleFigureData:
    """Simulate and histogram what Figs. 2, 3 and 5 show (Figs. 3 and 5 read the beam sample);
    the parts given (computed by the caller, e.g. in side processes) are used as they are."""
    return SampleFigureData(
        fig2=fig2 if fig2 is not None else fig2_curves(cfg),
        beam=beam if beam is not None else beam_histograms(samples_dir, cfg),
        plane=plane if plane is not None else hermeticity_plane(samples_dir, cfg),
    )


def render_fig3(samples_dir: Path, cfg: Config) -> dict[str, bytes]:
    """Fig. 3 from scratch (its data, then the drawing), as the bytes of its files by
    name (``fig3_beam.png``, ...): what a side process of the report computes and sends
    back, the report's process writing the files (its stage cache attributes to each
    stage the files that appear while it runs)."""
    return _rendered(lambda out: fig3_beam(beam_histograms(samples_dir, cfg), out))


def render_fig5(samples_dir: Path, cfg: Config) -> dict[str, bytes]:
    """Fig. 5 from scratch as the bytes of its files by name (:func:`render_fig3`)."""
    return _rendered(
        lambda out: fig5_hermeticity_plane(hermeticity_plane(samples_dir, cfg), cfg, out)
    )


def _rendered(draw: Any) -> dict[str, bytes]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bkg-figures-") as tmp:
        return {p.name: p.read_bytes() for p in draw(Path(tmp))}


def render_beam_figures(cfg: Config, samples_dir: Path) -> dict[str, bytes]:
    """Figs. 3 and 5 (:func:`render_fig3`, :func:`render_fig5`)."""
    return {**render_fig3(samples_dir, cfg), **render_fig5(samples_dir, cfg)}


def plot_all(cfg: Config, data: SampleFigureData, *, out_dir: Path) -> list[Path]:
    """Figs. 2, 3 and 5 from their data."""
    written = fig2_trigger_efficiency(cfg, out_dir, curves=data.fig2)
    written += fig3_beam(data.beam, out_dir)
    written += fig5_hermeticity_plane(data.plane, cfg, out_dir)
    return written
