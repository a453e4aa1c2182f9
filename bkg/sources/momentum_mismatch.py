"""Momentum mismatch: a beam muon reconstructed by MS2 below p_out_max (paper III.C).

Two parts: the tail of the curvature residual (:func:`residual_window`, fitted by
:mod:`bkg.fit.tailmodel`, closed by :mod:`bkg.sources.closure`) and the knock-on
electrons (:func:`_knock_on`, its systematics :func:`two_station_fraction` and
:func:`factorisation_excess`); quasi-elastic kinks: :func:`_quasi_elastic`. Entry point:
:class:`MomentumMismatch`. Method and numbers: docs/momentum-mismatch.md,
docs/tail-extrapolation.md, docs/hermeticity-and-tracking.md (section 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bkg.config import Config
from bkg.selection import (
    BRANCHES,
    TRACKERS,
    cut_flow,
    e_cal,
    good_track,
    hcal_one_mip,
    next_station_on_same_side,
    no_vhcal_deposit,
    residual_cut,
    single_track,
)
from bkg.sim.tracking import hit_sigma_m, quasi_elastic_kink_probability
from bkg.sources.base import (
    SourceEstimate,
    StreamingSource,
    count_estimate,
    register,
    sha256s,
)
from bkg.sources.tailsource import (
    TailCollector,
    core_record,
    tail_analysis,
    tail_inputs,
    tail_json,
    tail_level,
)

NBINS = 300
#: residuals beyond this many dp/p are kept for the tail fits (thresholds from 3.5 sigma)
TAIL_KEEP_SIGMAS = 2.5
#: tail shapes of the residual, the preferred first: single scattering with the copper
#: form factor (process 6 makes the tail beyond 4 sigma), the same without the form factor
#: (a point-like target: the hardest tail the process allows), and an exponential
MISMATCH_SHAPES = ("rutherford_ff", "power", "exp")
#: bins of p_out_true (GeV) for the check of the knock-on factorisation
P_BIN_GEV = 10.0
HALF_WIDTH_SIGMAS = 10.0


def residual_window(cfg: Config) -> tuple[float, float]:
    """Fit window of r = p_out_true / p_out_rec - 1: +-10 dp/p, clipped below the cut.

    The residual is that of the measured curvature, of single-track muons (one hit per
    Micromegas, the paper's assumption): MS2 measures the bend, proportional to 1/p,
    with a Gaussian error, so this residual has a Gaussian core of width dp/p and the
    physical tails (single large-angle scattering) on both sides. The residual of p
    itself, 1 / (1 + r) - 1, is skewed, and a Gaussian core (even with two widths)
    leaves chi2/ndf of about 7 on 1e7 MOT; the curvature residual fits with about 0.75.
    """
    half = HALF_WIDTH_SIGMAS * cfg.detector.spectrometers.ms2.resolution_rel
    return -half, min(half, residual_cut(cfg) - 0.05)


def _knock_on(
    n_cand: int, n_rest: int, n_ref: int, *, n_mot: int, factor: float
) -> tuple[float, float, float, bool]:
    """Knock-on part per MOT, factorised as in the paper (Sec. III.C):

    P = P(a muon that kept more than p_out_max has a knock-on electron's second hit in
    an MS2 station, and the fit that takes that hit in place of the muon's, as it must
    when the muon's hit there is lost, returns p_out_max or less, the rest of the event
    single-track; ``n_cand`` of ``n_mot``) x eps_MM (the muon's hit is lost) x P(the
    rest of the event passes the trigger, (i), (iii), (iv) and the E_CAL box | such a
    muon) x eps_MM^n for n extra trackers behind MS2 (each sees the muon and the
    electron, and the muon's hit must be lost for the fit to keep the electron's);
    ``factor`` is eps_MM^(n+1).
    Weighting every candidate with eps_MM counts 1/eps_MM = 50 times more events than
    the candidates whose hit the simulation happened to lose. The tracker knock-on
    does not change what the counters and calorimeters see, so the probabilities are
    measured on the whole beam sample and multiplied. A factor with no event enters as
    its 90% CL bound and the product is then a bound; when neither factor has an event,
    each enters at sqrt(0.9) = 94.9% CL, so that the product still covers 90%.

    Returns:
        (level, up, down, is_upper_bound).
    """
    if n_cand == 0 and n_rest == 0:
        zero = -np.log(1.0 - np.sqrt(0.9))  # Poisson mean excluded at sqrt(0.9) CL by 0 events
        return float(zero**2 / max(n_mot, 1) / max(n_ref, 1) * factor), 0.0, 0.0, True
    lv1, up1, dn1, ub1 = count_estimate(n_cand, max(n_mot, 1), 1.0)
    lv2, up2, dn2, ub2 = count_estimate(n_rest, max(n_ref, 1), 1.0)
    level = lv1 * lv2 * factor
    if ub1 or ub2:
        return level, 0.0, 0.0, True
    up = level * float(np.hypot(up1 / lv1, up2 / lv2))
    down = min(level * float(np.hypot(dn1 / lv1, dn2 / lv2)), level)
    return level, up, down, False


def two_station_fraction(by_station: Sequence[int], inefficiency: float) -> float:
    """Knock-on level if every electron also crosses the station after the one it hits.

    The simulation gives a knock-on electron a hit in the next station only. Had it also
    crossed the station after that (same side of the magnet), that station too would
    show two hits, and the event stays single-track only if the muon's hit there is lost
    as well: one more ``inefficiency``. Returns that level as a fraction of the nominal
    one, from the candidates by station (index s >= 1: 1-based station with two hits;
    index 0, the muon's hit already lost, is kept as it is). The truth lies between the
    two (it depends on the electron's angle and the stations' size and spacing), so the
    difference is the knock-on part's downward model systematic.
    """
    n = len(by_station) - 1
    total = sum(by_station)
    if total == 0:
        return 1.0
    # 1-based station s has a successor on its side unless it is the last one, or the last
    # before the magnet (the rule the simulation's electrons follow)
    after = next_station_on_same_side(np.arange(n), n)
    weight = np.concatenate([[1.0], np.where(after, inefficiency, 1.0)])
    return float(np.dot(weight, by_station)) / total


def _rest_at_candidate_momenta(sums: _Sums) -> float | None:
    """P(rest | p_out_true) per bin, averaged with the candidates' p_out_true distribution."""
    if sums.p_cand.sum() == 0:
        return None
    p_rest = np.divide(
        sums.p_rest, sums.p_kept, out=np.zeros_like(sums.p_rest), where=sums.p_kept > 0
    )
    return float((p_rest * sums.p_cand).sum() / sums.p_cand.sum())


def factorisation_excess(rest_at_candidates: float | None, n_rest: int, n_ref: int) -> float:
    """Relative excess of P(rest) at the candidates' momenta over P(rest) of all kept muons.

    Zero when it is not larger, or when either is unknown (no candidate, no passing muon).
    The knock-on part's upward model systematic: the factorisation's, P(rest) taken at the
    candidates' muon momenta (10 GeV bins) instead of over all kept muons, where that is
    larger.
    """
    if rest_at_candidates is None or n_rest == 0 or n_ref == 0:
        return 0.0
    return max(rest_at_candidates / (n_rest / n_ref) - 1.0, 0.0)


def _single_track_but_one_hit(ev: Mapping[str, np.ndarray]) -> np.ndarray:
    """One hit in every MS2 station but at most one, which has two (muon and electron)."""
    ok = np.ones(len(ev["p_out_rec"]), dtype=bool)
    doubles = np.zeros(len(ok), dtype=np.uint8)
    for name in TRACKERS:
        ok &= (ev[name] == 1) | (ev[name] == 2)
        doubles += ev[name] == 2
    return ok & (doubles <= 1)


def _tracker_rows(ev: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """The branches the track-multiplicity masks read, at the events ``idx``."""
    return {name: ev[name][idx] for name in ("p_out_rec", "s0", "s1", "s4", "v1", *TRACKERS)}


class _Sums:
    """The residual histogram and the knock-on counts, summed over the chunks."""

    def __init__(self, cfg: Config, *, unbinned: bool) -> None:
        self.cfg = cfg
        self.unbinned = unbinned
        self.lo, self.hi = residual_window(cfg)
        self.edges = np.linspace(self.lo, self.hi, NBINS + 1)
        self.counts = np.zeros(NBINS)
        self.n_mot = 0
        self.n_muon = 0
        # the tail fits' values (beyond the core) and the single-track muons whose fit took
        # a knock-on electron's hit: counted by the knock-on part, so not in the residuals
        self.tails = TailCollector(
            self.edges, TAIL_KEEP_SIGMAS * cfg.detector.spectrometers.ms2.resolution_rel
        )
        self.n_ko_excluded = 0
        self.n_cand = self.n_poor = self.n_rest = self.n_ref = 0
        self.n_cand_without_chi2 = 0  # knock-on candidates before the track chi^2 cut
        self.n_cand_s4 = self.n_cand_s4_no_v1 = 0
        # kept muons, those passing the rest and the candidates by p_out_true: a check
        # that P(rest) does not depend on the muon's momentum the way the candidates do
        self.p_lo = cfg.selection.p_out_max_gev
        self.p_bins = int(np.ceil((200.0 - self.p_lo) / P_BIN_GEV)) + 1  # the last: overflow
        self.p_kept, self.p_rest, self.p_cand = (np.zeros(self.p_bins) for _ in range(3))
        # candidates by the station that holds the two hits (0: the muon's is already lost)
        self.cand_by_station = np.zeros(len(TRACKERS) + 1, dtype=np.int64)
        self.values: list[np.ndarray] = []

    @property
    def micromegas_factor(self) -> float:
        """eps_MM^(1 + n): the muon's hit lost, and one of two hits in each extra tracker."""
        sp = self.cfg.detector.spectrometers
        return float(sp.micromegas_inefficiency ** (1 + sp.extra_trackers))

    def knock_on(self) -> tuple[float, float, float, bool]:
        """The knock-on part from the sums: :func:`_knock_on` with :attr:`micromegas_factor`."""
        return _knock_on(
            self.n_cand, self.n_rest, self.n_ref, n_mot=self.n_mot, factor=self.micromegas_factor
        )

    def _p_counts(self, p: np.ndarray) -> np.ndarray:
        """Counts of p (all above p_lo) in bins of P_BIN_GEV, the last one open-ended."""
        # clipped in float: a momentum far beyond the range must not overflow the cast
        k = np.clip((p - self.p_lo) / P_BIN_GEV, 0, self.p_bins - 1).astype(np.intp)
        return np.bincount(k, minlength=self.p_bins)

    def add(self, ev: Mapping[str, np.ndarray]) -> None:
        cfg = self.cfg
        sel = cfg.selection
        plo, phi = sel.p_in_window_gev
        self.n_mot += len(ev["p_in_rec"])
        # a muon that kept more than p_out_max: the residuals, and the knock-on reference.
        # The residuals are those of single-track muons (one hit per Micromegas, cut ii), as
        # in the paper; events with extra hits (knock-on electrons) are the second part.
        kept = ev["p_out_true"] > sel.p_out_max_gev
        ok = kept & (ev["p_out_rec"] > 0) & (ev["p_in_rec"] >= plo) & (ev["p_in_rec"] <= phi)
        if sel.single_track:
            ok &= single_track(ev)
        ok &= good_track(ev, cfg)
        # a single-track muon with an electron hit: the fit took the electron's (its own hit
        # in that station was lost). That is the knock-on part's population, counted there
        # with every candidate weighted by the inefficiency: it is left out of the residuals
        # here, so that the tail model and the knock-on part never count an event twice
        ko_taken = ok & (ev["p_out_rec_ko"] > 0)
        self.n_ko_excluded += int(np.count_nonzero(ko_taken))
        ok &= ~ko_taken
        r = ev["p_out_true"][ok].astype(float) / ev["p_out_rec"][ok] - 1.0
        self.n_muon += int(ok.sum())
        self.counts += np.histogram(r, bins=self.edges)[0]
        self.tails.add(r)
        if self.unbinned:
            self.values.append(r[(r >= self.lo) & (r <= self.hi)])
        # knock-on factors: a muon that kept more than p_out_max whose fit, taking the
        # electron's hit, is at or below it, single-track once the muon's hit beside the
        # electron's is lost ...
        ko = ev["p_out_rec_ko"]
        idx = np.flatnonzero((ko > 0) & (ko <= sel.p_out_max_gev))  # rare: work on those only
        sub = _tracker_rows(ev, idx)
        cand = kept[idx]
        if sel.single_track:
            cand &= _single_track_but_one_hit(sub)
        self.n_cand_without_chi2 += int(np.count_nonzero(cand))
        cand &= ev["track_chi2_ko"][idx] <= sel.track_chi2_max
        self.n_cand += int(np.count_nonzero(cand))
        self.p_cand += self._p_counts(ev["p_out_true"][idx[cand]])
        # beam-core candidates (S0, S1) whose S4 fired: the electron flying on from a
        # station behind the magnet, while the undeflected muon fires V1
        on_s4 = cand & sub["s0"] & sub["s1"] & sub["s4"]
        self.n_cand_s4 += int(np.count_nonzero(on_s4))
        self.n_cand_s4_no_v1 += int(np.count_nonzero(on_s4 & ~sub["v1"]))
        double = np.stack([sub[name][cand] == 2 for name in TRACKERS], axis=1)
        station = np.where(double.any(axis=1), np.argmax(double, axis=1) + 1, 0)
        self.cand_by_station += np.bincount(station, minlength=len(TRACKERS) + 1)
        # (the cross-check: the muons the sample mismeasured with an electron hit present,
        # i.e. whose hit the simulation lost, about eps_MM of the candidates)
        low = np.flatnonzero((ev["p_out_rec"] > 0) & (ev["p_out_rec"] <= sel.p_out_max_gev))
        poor = kept[low] & (ko[low] > 0)
        if sel.single_track:
            poor &= single_track(_tracker_rows(ev, low))
        self.n_poor += int(np.count_nonzero(poor))
        # ... and whose counters and calorimeters pass: everything but cut (ii)
        rest = cut_flow(ev, cfg)["i"] & no_vhcal_deposit(ev, cfg) & hcal_one_mip(ev, cfg)
        rest &= e_cal(ev) <= cfg.signal_box.e_cal_max_gev
        self.n_ref += int(kept.sum())
        self.n_rest += int(np.count_nonzero(kept & rest))
        self.p_kept += self._p_counts(ev["p_out_true"][kept])
        self.p_rest += self._p_counts(ev["p_out_true"][kept & rest])


def _quasi_elastic(cfg: Config) -> dict[str, Any]:
    """Quasi-elastic kinks on single nucleons of the MS2 stations (bkg.sim.tracking).

    Quasi-elastic scattering of the muon on single nucleons of the stations reaches the
    q ~ 0.4 GeV a mismeasurement to 80 GeV needs where the coherent (nuclear) scattering
    cannot (``quasi_elastic_kinks_without_chi2``, ~2e-9 per muon,
    :func:`bkg.sim.tracking.quasi_elastic_kink_probability`). The track fit's chi^2 cut
    (``selection.track_chi2_max``, part of cut (ii)) rejects such kinks: what survives it
    (``quasi_elastic_kinks_with_chi2``) is in the level.
    """
    sp = cfg.detector.spectrometers
    return quasi_elastic_kink_probability(
        cfg.beam.energy_gev,
        station_x0=sp.ms2.tracker_material_x0,
        field_tm=sp.ms2.field_tm,
        p_cut_gev=cfg.selection.p_out_max_gev,
        chi2_max=cfg.selection.track_chi2_max,
        sigma_m=hit_sigma_m(sp.ms2.resolution_rel, sp.ms2.field_tm, cfg.beam.energy_gev),
    )


def _knock_on_record(
    reduced: _Sums,
    cfg: Config,
    k_level: float,
    k_bound: bool,
    rest_at_cand: float | None,
    k_alt: float,
) -> dict[str, Any]:
    """The knock-on part's inputs: its level, candidates and the factorisation's checks."""
    sp = cfg.detector.spectrometers
    n_cand, n_rest, n_ref = reduced.n_cand, reduced.n_rest, reduced.n_ref
    return {
        # single-track muons whose fit took a knock-on electron's hit: knock-on part
        "knock_on_excluded_from_residuals": reduced.n_ko_excluded,
        # the knock-on part per MOT: the estimate, or its 90% CL bound (a factor had no event)
        "knock_on_per_mot": k_level,
        "knock_on_upper_bound": k_bound,
        "knock_on_candidates": n_cand,
        # by the station with the electron's and the muon's hit (index 0: muon's lost);
        # the paper's scenario is the second station behind the magnet (index 5)
        "knock_on_candidates_by_station": reduced.cand_by_station.tolist(),
        # ... of which, S0 and S1 passed, S4 fired (the electron), and of those V1 did not
        "knock_on_candidates_s4": reduced.n_cand_s4,
        "knock_on_candidates_s4_without_v1": reduced.n_cand_s4_no_v1,
        # cross-check of eps_MM x candidates: the muons whose hit the sample lost
        "knock_on_poorly_measured": reduced.n_poor,
        "knock_on_poorly_measured_expected": sp.micromegas_inefficiency * n_cand,
        "knock_on_rest_passes": n_rest,
        # P(rest) in bins of p_out_true, averaged over the candidates' momenta: equal to
        # n_rest / n_ref when the factorisation holds
        "knock_on_rest_at_candidate_momenta": rest_at_cand,
        "knock_on_reference_muons": n_ref,
        # model systematic: the level if the electron also crossed the next station
        "knock_on_two_stations_per_mot": k_alt,
        "micromegas_factor": reduced.micromegas_factor,
    }


@register
class MomentumMismatch(StreamingSource[_Sums]):
    """Curvature residuals p_out_true/p_out_rec - 1; core + tail models; plus knock-on.

    Tail: the residuals beyond the core are fitted alone above thresholds from 3.5 sigma
    out (:mod:`bkg.fit.tailmodel`, docs/tail-extrapolation.md): single scattering with the
    copper form factor (preferred), a power law and an exponential; the model systematic
    is the envelope of the fits that pass their tail checks. A single-track muon whose fit
    took a knock-on electron's hit is left out of the residuals: the knock-on part counts
    it. Far below the data (r = 1 is about 10 decades below the last residual on 1e7 MOT)
    the closure step puts the direct biased-simulation estimate in its place
    (:mod:`bkg.sources.closure`).

    The residuals and the knock-on candidates are those of tracks that pass the chi^2
    cut (the knock-on fit that takes the electron's hit has its own chi^2,
    ``track_chi2_ko``); the knock-on part without the cut is kept as
    ``knock_on_per_mot_without_chi2``.
    """

    name = "momentum_mismatch"
    label = "Momentum mismatch"
    samples = ("beam",)
    reducer_type = _Sums

    def branches(self, cfg: Config) -> list[str]:
        return [*BRANCHES, "p_out_true", "p_out_rec_ko", "track_chi2_ko"]

    def finish(
        self,
        cfg: Config,
        reduced: _Sums,
        entries: Sequence[Mapping[str, Any]],
        *,
        unbinned: bool,
    ) -> SourceEstimate:
        cut = residual_cut(cfg)
        counts, edges = reduced.counts, reduced.edges
        n_mot, n_muon = reduced.n_mot, reduced.n_muon
        n_rest, n_ref = reduced.n_rest, reduced.n_ref
        shas = sha256s(entries)
        analysis = tail_analysis(reduced.tails, counts, n_total=n_mot, cut=cut,
                                 shapes=MISMATCH_SHAPES, source=self.name, seed=cfg.seed)  # fmt: skip
        t_level, t_up, t_down, t_sup, t_sdown, supported = tail_level(analysis)
        # the fitted tail is per muon with a track; n_total = n_mot makes it per MOT already
        sp = cfg.detector.spectrometers
        k_level, k_up, k_down, k_bound = reduced.knock_on()
        qe = _quasi_elastic(cfg)
        # a factor without events makes the knock-on part, and so the row, a 90% CL bound
        level = t_level + k_level + qe["total_after_chi2"]
        k_alt = k_level * two_station_fraction(
            reduced.cand_by_station.tolist(), sp.micromegas_inefficiency
        )
        # the factorisation's systematic, upward: P(rest) at the candidates' momenta
        rest_at_cand = _rest_at_candidate_momenta(reduced)
        k_fact_up = 0.0 if k_bound else k_level * factorisation_excess(rest_at_cand, n_rest, n_ref)
        fit = core_record(analysis, counts, edges, cut=cut, variable="p_out_true/p_out_rec - 1",
                          shas=shas)  # fmt: skip
        inputs = {
            "n_mot": n_mot,
            "n_muons": n_muon,
            **tail_inputs(t_level, t_up, t_down, t_sup, t_sdown),
            # False: no tail model passed its checks (the closure's direct estimate decides)
            "tail_level_supported": supported,
            **_knock_on_record(reduced, cfg, k_level, k_bound, rest_at_cand, k_alt),
            "cut_residual": cut,
            # quasi-elastic scattering on single nucleons of the stations, per 160 GeV
            # muon, before the track chi^2 cut that rejects such kinks
            "quasi_elastic_kinks_without_chi2": qe["total"],
            # ... and what survives the track chi^2 cut (in the level)
            "quasi_elastic_kinks_with_chi2": qe["total_after_chi2"],
            "track_chi2_max": cfg.selection.track_chi2_max,
            # the knock-on part had the fit taking the electron's hit no chi^2 cut
            "knock_on_candidates_without_chi2": reduced.n_cand_without_chi2,
            "knock_on_per_mot_without_chi2": _knock_on(
                reduced.n_cand_without_chi2,
                n_rest,
                n_ref,
                n_mot=n_mot,
                factor=reduced.micromegas_factor,
            )[0],
        }
        return SourceEstimate(
            self.name,
            self.label,
            level,
            float(np.hypot(t_up, k_up)),
            float(np.hypot(t_down, k_down)),
            float(np.hypot(t_sup, k_fact_up)),
            float(np.hypot(t_sdown, k_level - k_alt)),
            k_bound,
            "tail fit (single scattering) of MS2 curvature residuals to p<=80 GeV + knock-on "
            "(factorised) x MM ineff^(n+1)",
            inputs,
            fit,
            tail_json(analysis),
        )
