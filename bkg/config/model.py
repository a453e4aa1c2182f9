"""The configuration's dataclasses, generated from schema.json: do not edit.

Regenerate with ``python -m bkg.config.generate`` after changing the schema;
attribute paths are the YAML key paths (``cfg.detector.counters.s4.offset_cm``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bkg.config import methods

__all__ = [
    "S0",
    "S1",
    "S4",
    "V1",
    "Beam",
    "Config",
    "Counters",
    "Detector",
    "Ecal",
    "Escape",
    "EscapePaths",
    "GMinus2",
    "GMinus2Reference",
    "Hcal",
    "MassGrid",
    "Ms1",
    "Ms2",
    "Run",
    "SMu",
    "Samples",
    "Selection",
    "Signal",
    "SignalBox",
    "Spectrometers",
    "Statistics",
    "Vhcal",
    "Vm",
]


@dataclass(frozen=True)
class Beam:
    """The ``beam`` section of the config."""

    energy_gev: float
    momentum_spread_rel: float
    halo_fraction: float
    halo_energy_min_gev: float
    spot_sigma_x_cm: float
    spot_sigma_y_cm: float
    divergence_x_mrad: float
    divergence_y_mrad: float
    halo_radius_cm: float
    pi_per_mu: float
    k_per_pi: float
    k_long_per_k: float
    decay_length_m: float
    absorber_lambda: float
    momentum_window_gev: tuple[float, float]


@dataclass(frozen=True)
class Ecal:
    """The ``detector.ecal`` section of the config."""

    material: str
    thickness_x0: float
    cells: tuple[int, int]
    cell_size_cm: float
    sampling_resolution: float
    constant_term: float
    mip_gev: float


@dataclass(frozen=True)
class Vhcal:
    """The ``detector.vhcal`` section of the config."""

    material: str
    thickness_lambda: float
    cells: tuple[int, int]
    hole_cm: tuple[float, float]
    size_cm: tuple[float, float]
    threshold_gev: float


@dataclass(frozen=True)
class Hcal:
    """The ``detector.hcal`` section of the config."""

    material: str
    modules: int
    module_lambda: float
    size_cm: tuple[float, float]
    cells: tuple[int, int]
    mip_gev: float
    resolution: float
    mip_window_gev: tuple[float, float]


@dataclass(frozen=True)
class Ms1:
    """The ``detector.spectrometers.ms1`` section of the config."""

    resolution_rel: float


@dataclass(frozen=True)
class Ms2:
    """The ``detector.spectrometers.ms2`` section of the config."""

    field_tm: float
    micromegas: int
    resolution_rel: float
    tracker_material_x0: float


@dataclass(frozen=True)
class Spectrometers:
    """The ``detector.spectrometers`` section of the config."""

    ms1: Ms1
    ms2: Ms2
    micromegas_inefficiency: float
    extra_trackers: int


@dataclass(frozen=True)
class S0:
    """The ``detector.counters.s0`` section of the config."""

    radius_cm: float


@dataclass(frozen=True)
class S1:
    """The ``detector.counters.s1`` section of the config."""

    radius_cm: float


@dataclass(frozen=True)
class SMu:
    """The ``detector.counters.s_mu`` section of the config."""

    size_cm: tuple[float, float]


@dataclass(frozen=True)
class S4:
    """The ``detector.counters.s4`` section of the config."""

    offset_cm: float
    size_cm: tuple[float, float]
    z_from_ms2_m: float


@dataclass(frozen=True)
class V1:
    """The ``detector.counters.v1`` section of the config."""

    size_cm: tuple[float, float]


@dataclass(frozen=True)
class Vm:
    """The ``detector.counters.vm`` section of the config."""

    threshold_gev: float


@dataclass(frozen=True)
class Counters:
    """The ``detector.counters`` section of the config."""

    s0: S0
    s1: S1
    s_mu: SMu
    s4: S4
    v1: V1
    vm: Vm


@dataclass(frozen=True)
class EscapePaths:
    """The ``detector.escape.paths`` section of the config."""

    hcal_back: bool
    hcal_side: bool
    vhcal_hole: bool
    dead_material: bool
    em_gap: bool
    shower_muon: bool


@dataclass(frozen=True)
class Escape:
    """The ``detector.escape`` section of the config."""

    paths: EscapePaths
    leading_k_long_fraction: float
    leading_neutron_fraction: float
    charged_kaon_fraction: float
    pt_mean_gev: float
    dead_material_lambda: float
    em_pair_fraction: float
    forced_events: int


@dataclass(frozen=True)
class Detector:
    """The ``detector`` section of the config."""

    ecal: Ecal
    vhcal: Vhcal
    hcal: Hcal
    spectrometers: Spectrometers
    counters: Counters
    escape: Escape


@dataclass(frozen=True)
class Selection:
    """The ``selection`` section of the config."""

    p_in_window_gev: tuple[float, float]
    p_out_max_gev: float
    vhcal_max_gev: float
    hcal_mip_window_gev: tuple[float, float]
    single_track: bool
    track_chi2_max: float


@dataclass(frozen=True)
class SignalBox:
    """The ``signal_box`` section of the config."""

    e_cal_max_gev: float
    e_mu_out_max_gev: float


@dataclass(frozen=True)
class MassGrid(methods.MassGridMethods):
    """The ``signal.masses_gev`` section of the config."""

    min: float
    max: float
    points: int


@dataclass(frozen=True)
class Signal:
    """The ``signal`` section of the config."""

    masses_gev: MassGrid
    cross_section: str
    efficiency: float
    g_prime_ref: float


@dataclass(frozen=True)
class Statistics:
    """The ``statistics`` section of the config."""

    confidence_level: float
    calculator: str
    toys_below_background: float
    n_toys: int
    toy_nuisance: str
    mot_uncertainty: float
    signal_efficiency_uncertainty: float
    bins: int
    hepdata_record: str


@dataclass(frozen=True)
class GMinus2Reference:
    """The ``g_minus_2.references.*`` section of the config."""

    delta_a_mu: float
    sigma: float
    source: str


@dataclass(frozen=True)
class GMinus2(methods.GMinus2Methods):
    """The ``g_minus_2`` section of the config."""

    reference: str
    references: Mapping[str, GMinus2Reference]
    band_sigmas: float


@dataclass(frozen=True)
class Samples:
    """The ``samples`` section of the config."""

    n_mot: float
    chunk_size: int
    folder: str
    hadron_events: int
    leading_hadron_events: int
    dimuon_events: int
    signal_events_per_mass: int
    signal_masses_gev: tuple[float, ...]
    nonfinite: str


@dataclass(frozen=True)
class Run:
    """The ``run`` section of the config."""

    workers: int
    scheduler: str | None


@dataclass(frozen=True)
class Config(methods.ConfigMethods):
    """The ```` section of the config."""

    name: str
    seed: int
    n_mot: float
    beam: Beam
    detector: Detector
    selection: Selection
    signal_box: SignalBox
    signal: Signal
    statistics: Statistics
    g_minus_2: GMinus2
    samples: Samples
    run: Run
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
