"""Hadron in-flight decay: pi-, K-, K_L decaying to a muon between the BMS and the target."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bkg.config import Config
from bkg.selection import BRANCHES, in_signal_box, passes_selection
from bkg.sim.hadrons import muon_region_gev, region_acceptance
from bkg.sources.base import (
    Source,
    SourceEstimate,
    count_estimate,
    register,
    sample_entries,
    sha256s,
    stream,
)

SPECIES = {-211: "pi-", -321: "K-", 130: "K_L"}


def species_norm(cfg: Config, pdg: int) -> float:
    """Hadrons of species ``pdg`` per MOT at the end of the BMS, after the absorber (e^-L).

    From the config's admixture, not the samples' manifest: the samples give each
    species' probability to pass, and the admixture is a measured input the user may
    change without regenerating them.
    """
    b = cfg.beam
    return (
        math.exp(-b.absorber_lambda)
        * {
            -211: b.pi_per_mu,
            -321: b.pi_per_mu * b.k_per_pi,
            130: b.pi_per_mu * b.k_per_pi * b.k_long_per_k,
        }[pdg]
    )


def tally_species(
    ev: Mapping[str, np.ndarray], cfg: Config, seen: dict[int, int], passed: dict[int, int]
) -> np.ndarray:
    """Add one chunk's hadrons and those passing trigger, cuts and box to the per-species counts.

    Returns the passing mask. Shared by the estimate and the 4 m decay-length option, so that
    both count the same events the same way.
    """
    sel = passes_selection(ev, cfg) & in_signal_box(ev, cfg)
    for pdg in seen:
        mine = ev["pdg"] == pdg
        seen[pdg] += int(mine.sum())
        passed[pdg] += int((mine & sel).sum())
    return sel


#: Decays simulated per species the sample cannot populate (no passing event): every one
#: decays before the target into a mu- soft enough to reach the box (forced, weighted)
REGION_EVENTS = 200_000
#: seed key of those decays (the samples use (i_sample, k), the 4 m option 100)
_REGION_KEY = 101


def region_pass_fraction(cfg: Config, pdg: int, n: int) -> tuple[float, float, int]:
    """Weighted fraction of region decays that pass trigger, cuts and box, its error, and
    the number that pass.

    The decays of :func:`bkg.sim.hadrons.generate_hadrons` with ``region=pdg`` (forced
    decay into a mu- below :func:`bkg.sim.hadrons.muon_region_gev`), seeded from the
    config's seed with their own key, in blocks of the chunk size; the weight of each is
    its decay probability (the law the forcing removed).
    """
    from bkg import ntuple
    from bkg.sim.hadrons import SPECIES as SIM_SPECIES
    from bkg.sim.hadrons import generate_hadrons

    seq = np.random.SeedSequence(cfg.seed, spawn_key=(_REGION_KEY, SIM_SPECIES.index(pdg)))
    rng = np.random.default_rng(seq)
    schema = ntuple.SCHEMAS["hadrons"]
    w_all = w_pass = w2_pass = 0.0
    k = 0
    step = max(1, min(int(cfg.samples.chunk_size), 100_000))
    for start in range(0, n, step):
        raw = generate_hadrons(cfg, rng, min(step, n - start), region=pdg)
        ev = {b: np.asarray(raw[b], dtype=schema[b].dtype) for b in BRANCHES}
        sel = passes_selection(ev, cfg) & in_signal_box(ev, cfg)
        w = raw["decay_weight"]
        w_all += float(w.sum())
        w_pass += float(w[sel].sum())
        w2_pass += float((w[sel] ** 2).sum())
        k += int(sel.sum())
    return w_pass / w_all, math.sqrt(w2_pass) / w_all, k


#: bins of the decay-point (1 m at 36 m) and muon-energy histograms of the figure
Z_BINS, E_BINS = 36, 44

#: A decay muon below this fraction of E0 (100 GeV at 160 GeV, paper Sec. III.C) can fake
#: the missing energy of the signal; the rest keep most of the beam energy.
SOFT_MUON_FRACTION = 100.0 / 160.0


class _DecayCounts(NamedTuple):
    """The hadron sample per species (events, passing, decays to a muon) and the K- decay
    histograms of the figure."""

    n: dict[int, int]
    k: dict[int, int]
    k_decay_mu: dict[int, int]
    #: K- -> mu- nu with a soft muon: the paper's "before cuts"
    k_soft_leptonic: int
    z_edges: np.ndarray
    e_edges: np.ndarray
    hists: dict[str, np.ndarray]


def _count_decays(
    cfg: Config, samples_dir: Path, entries: list[Mapping[str, Any]], soft: float
) -> _DecayCounts:
    """One pass over the hadron sample: the counts per species and the K- histograms."""
    n = {p: 0 for p in SPECIES}
    k = {p: 0 for p in SPECIES}
    k_decay_mu = {p: 0 for p in SPECIES}
    k_soft_leptonic = 0
    # K- decays to a muon versus the decay point and the muon energy, all and passing
    # (the figure: where along the beam line the background comes from)
    z_edges = np.linspace(0.0, cfg.beam.decay_length_m, Z_BINS + 1)
    e_edges = np.linspace(0.0, cfg.beam.energy_gev * (1 + 0.1), E_BINS + 1)
    hists = {k: np.zeros(Z_BINS) for k in ("z_all", "z_pass")}
    hists.update({k: np.zeros(E_BINS) for k in ("e_all", "e_pass")})
    for ev in stream(
        cfg,
        samples_dir,
        entries,
        "hadrons",
        [*BRANCHES, "pdg", "decayed", "e_mu_decay", "decay_channel", "z_decay_m"],
    ):
        sel = tally_species(ev, cfg, n, k)
        for pdg in SPECIES:
            decay_mu = (ev["pdg"] == pdg) & ev["decayed"] & (ev["e_mu_decay"] > 0)
            k_decay_mu[pdg] += int(decay_mu.sum())
            if pdg == -321:
                leptonic = decay_mu & (ev["decay_channel"] == 1)
                k_soft_leptonic += int((leptonic & (ev["e_mu_decay"] < soft)).sum())
                for mask, tag in ((decay_mu, "all"), (decay_mu & sel, "pass")):
                    hists[f"z_{tag}"] += np.histogram(ev["z_decay_m"][mask], z_edges)[0]
                    hists[f"e_{tag}"] += np.histogram(ev["e_mu_decay"][mask], e_edges)[0]
    return _DecayCounts(n, k, k_decay_mu, k_soft_leptonic, z_edges, e_edges, hists)


class _SpeciesLevel(NamedTuple):
    """One species' record and level; ``bound`` says what its 90% CL bound is made of
    when it is only a bound (no passing event at all: it goes to the upward systematic)."""

    record: dict[str, Any]
    level: float
    up: float
    down: float
    bound: str | None


def _species_level(
    cfg: Config, pdg: int, label: str, counts: _DecayCounts, e_region: float
) -> _SpeciesLevel:
    """The level of one species from its passing events (or, with none, its decay region)."""
    n, k = counts.n[pdg], counts.k[pdg]
    norm = species_norm(cfg, pdg)
    lv, up, dn, ub = count_estimate(k, n, norm)
    if ub:
        return _region_level(cfg, pdg, label, n, norm, lv, e_region)
    record = {
        "events": n,
        "passing": k,
        "norm_per_mot": norm,
        "p_decay_to_mu": counts.k_decay_mu[pdg] / n,
        "level": lv,
    }
    return _SpeciesLevel(record, lv, up, dn, None)


def _region_level(
    cfg: Config, pdg: int, label: str, n: int, norm: float, sample_bound: float, e_region: float
) -> _SpeciesLevel:
    """The level of a species with no passing event in the sample.

    The sample cannot populate the decays that can pass (a pi- muon is at least
    (m_mu/m_pi)^2 of the pion's energy). Its acceptance is the closed-form probability of
    a decay into a mu- below E'_max + E_CAL,max times the pass fraction of such decays,
    simulated with the decay forced.
    """
    region = region_acceptance(cfg, pdg)
    n_reg = min(REGION_EVENTS, n)
    frac, frac_err, k_reg = region_pass_fraction(cfg, pdg, n_reg) if region > 0 else (0.0, 0.0, 0)
    record: dict[str, Any] = {
        "events": n,
        "passing": 0,
        "norm_per_mot": norm,
        "sample_bound_90cl": sample_bound,
        "region_e_mu_max_gev": e_region,
        "region_acceptance": region,
        "region_events": n_reg,
        "region_passing": k_reg,
    }
    if k_reg == 0:
        # a bound that must not dominate the sum; it is the upward systematic
        lv = count_estimate(0, n_reg, norm * region)[0]
        record["upper_bound"] = lv
        bound = (
            f"{label} {lv:.2g} (90% CL: 0 of {n_reg} decays to a mu- below "
            f"{e_region:.0f} GeV pass, x their probability {region:.2g})"
        )
        return _SpeciesLevel(record, lv, 0.0, 0.0, bound)
    lv = norm * region * frac
    up = dn = norm * region * max(frac_err, frac / math.sqrt(k_reg))
    record["level"] = lv
    return _SpeciesLevel(record, lv, up, dn, None)


@register
class HadronDecay(Source):
    """N = sum_h P_h * P(h -> mu X, passes all cuts and the signal box) * e^-L (absorber)."""

    name = "hadron_decay"
    fits = False  # counting only: may run in the side process
    label = "Hadron in-flight decay"
    samples = ("hadrons",)

    def estimate(
        self, cfg: Config, samples_dir: Path, *, manifest: Mapping[str, Any], unbinned: bool = False
    ) -> SourceEstimate:
        entries = sample_entries(manifest, "hadrons")
        soft = SOFT_MUON_FRACTION * cfg.beam.energy_gev
        counts = _count_decays(cfg, samples_dir, entries, soft)
        n = counts.n
        level = up2 = down2 = 0.0
        # a species with no passing event adds its 90% CL bound as a one-sided systematic:
        # the samples cannot exclude it, but it is not a counting fluctuation of the others
        bound2 = 0.0
        bound_only = True
        per: dict[str, Any] = {}
        # the paper's "overall probability ... given the kaon contamination" (Sec. III.C):
        # P_K x P(K- -> mu- nu, E_mu < 100 GeV), before any cut
        before = species_norm(cfg, -321) * counts.k_soft_leptonic / n[-321] if n[-321] else 0.0
        made_of: list[str] = []  # what the upward systematic is made of, species by species
        bounded: list[str] = []
        e_region = muon_region_gev(cfg)
        for pdg, label in SPECIES.items():
            if n[pdg] == 0:
                continue
            species = _species_level(cfg, pdg, label, counts, e_region)
            per[label] = species.record
            if species.bound is not None:
                bound2 += species.level**2
                bounded.append(label)
                made_of.append(species.bound)
                continue
            bound_only = False
            level += species.level
            up2 += species.up**2
            down2 += species.down**2
        if bound_only:
            level = math.sqrt(bound2)
            bound2 = 0.0
        return SourceEstimate(
            self.name,
            self.label,
            level,
            math.sqrt(up2),
            math.sqrt(down2),
            math.sqrt(bound2),
            0.0,
            bound_only,
            "P_h x P(h->mu X) x selection efficiency per species x e^-L"
            + (
                f"; syst up: 90% CL bounds of {', '.join(bounded)} from their decays that can "
                "reach the box (none passes)"
                if bounded and not bound_only
                else ""
            ),
            {
                "species": per,
                "syst_up_made_of": "; ".join(made_of) if made_of else "none",
                "absorber_factor": math.exp(-cfg.beam.absorber_lambda),
                "before_cuts_per_mot": before,
                "soft_muon_below_gev": soft,
            },
            {
                "model": "counting",
                "sample_sha256": sha256s(entries),
                "k_decays": {
                    "z_edges": counts.z_edges.tolist(),
                    "e_edges": counts.e_edges.tolist(),
                    **{k: v.tolist() for k, v in counts.hists.items()},
                },
            },
        )
