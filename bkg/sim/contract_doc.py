"""Render ``samples/README.md`` (the branch contract) from :data:`bkg.ntuple.SCHEMAS`."""

from __future__ import annotations

from bkg.ntuple import SCHEMAS, TREE, VALID

__all__ = ["MANIFEST_FIELDS", "render_samples_readme"]

MANIFEST_FIELDS = {
    "file": "file name of the ntuple, relative to the samples folder",
    "sample": "sample kind: beam, hadrons, leading_hadrons, dimuons, signal",
    "events": "number of events (entries of the TTree)",
    "seed": "numpy SeedSequence: {entropy, spawn_keys} of every chunk (GEANT4: any dict or null)",
    "config_hash": "sha256 of the effective configuration that produced the file",
    "sha256": "sha256 of the file (checked by every later stage)",
    "norm_per_mot": "per-MOT probability that the generated process happens (1 for beam; sum over species for hadrons)",
    "norm_per_mot_by_pdg": "hadrons only: per-MOT rate of each species at the end of the BMS (after the absorber)",
    "species_fraction_generated": "hadrons only: fraction of the generated events of each species",
    "yields_per_mot": "dimuons only: yield per MOT of Bethe-Heitler pairs of every energy, of those above E0 - E'_max, of tridents above E0 - E'_max, and the total the sample holds (Bethe-Heitler + trident)",
    "n_mot": "beam only: number of simulated muons on target",
    "masses_gev": "signal only: Z' masses of the sample points",
    "beam_energy_gev": "signal only: beam energy of the signal sample",
    "generator, chunk_size": "provenance of the fast simulation (optional for GEANT4)",
}


def render_samples_readme() -> str:
    """The full text of samples/README.md."""
    lines = [
        "# samples/",
        "",
        "Stage 1 output (`bkg samples`): ROOT files `<sample>_<chunk>.root` (one per chunk",
        f"of 1e6 events, written in parallel by the workers), each with one TTree named `{TREE}`",
        "(written with `mktree`/`extend`, LZ4 compression), and `MANIFEST.json`. A sample",
        "may come in any number of files (a GEANT4 production as hundreds of them): every",
        "stage reads the files the MANIFEST lists for it, in order.",
        "The files are generated (git-ignored). This README is the contract a GEANT4",
        "ntuple must meet to replace the fast simulation (`bkg samples check FILE...`",
        "lists every deviation). It is generated from `bkg.ntuple.SCHEMAS` by",
        "`bkg.sim.contract_doc.render_samples_readme()`; a test keeps them in sync.",
        "",
        "## MANIFEST.json",
        "",
        '`{"generator", "config_hash", "seed", "files": [entry, ...]}`, one entry per file:',
        "",
        "| field | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {v} |" for k, v in MANIFEST_FIELDS.items()]
    lines += [
        "",
        "Weight of one event of a sample per MOT: `norm_per_mot / N`, N the events of all",
        "the sample's files (hadrons: `norm_per_mot_by_pdg[pdg] / (N * species_fraction_generated[pdg])`).",
        "",
        "Every stage checks the MANIFEST against `bkg/config/manifest.schema.json` (JSON",
        "Schema) and refuses it, naming the entry, unless:",
        "",
        "- each file is listed once (by name, and by sha256: the same events under two",
        "  names would be counted twice);",
        "- `events` is an integer in [1, 1e10] and equals the entries of the file's TTree;",
        "- `norm_per_mot` is a probability per MOT in (0, 1] (hadrons: [0, 1], or one per",
        "  species); `norm_per_mot_by_pdg` and `yields_per_mot` values lie in [0, 1];",
        "- `species_fraction_generated` values lie in (0, 1] and sum to 1 (within 1e-6);",
        "- `sha256` is 64 hex digits and matches the file.",
        "",
        "## Valid values",
        "",
        "`bkg samples check` refuses NaN/inf in every float branch and a value outside",
        "these ranges or codes (branches not listed: any finite value of their dtype):",
        "",
        "| branch | valid values |",
        "|---|---|",
    ]
    units = {name: b.unit for schema in SCHEMAS.values() for name, b in schema.items()}
    lines += [
        f"| `{name}` | {valid.describe(units[name])} |"
        for name, valid in VALID.items()
        if name in units
    ]
    lines.append("")
    for sample, schema in SCHEMAS.items():
        lines += [
            f"## {sample} (`{sample}_*.root`)",
            "",
            "| branch | dtype | unit | meaning |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{name}` | {b.dtype} | {b.unit} | {b.meaning} |" for name, b in schema.items()
        ]
        lines.append("")
    return "\n".join(lines)
