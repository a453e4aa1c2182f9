"""Scale (issue 7): the same numbers for 1 worker, 2 workers and a Dask cluster, and
for a sample split over many files.

Chunk seeds come from one SeedSequence and the sample files are byte-reproducible,
so "the same numbers" is checked in the strongest form: identical sample bytes,
and identical Table I values.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bkg import ntuple
from bkg.config import load_config
from bkg.sim import run_samples
from bkg.sources import run_fits

pytestmark = pytest.mark.slow

OVERRIDES = {
    "samples": {
        "n_mot": 4.0e5, "chunk_size": 100_000, "hadron_events": 100_000,
        "leading_hadron_events": 40_000, "dimuon_events": 40_000,
        "signal_events_per_mass": 2_000, "signal_masses_gev": [0.01, 0.1, 1.0],
    }
}  # fmt: skip


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(json.dumps(OVERRIDES))  # JSON is YAML
    return load_config(path)


def _hashes(manifest: dict) -> dict[str, str]:
    return {e["file"]: e["sha256"] for e in manifest["files"]}


def _levels(fits_dir: Path) -> dict[str, float]:
    return {
        p.stem: json.loads(p.read_text())["level_per_mot"]
        for p in sorted(fits_dir.glob("*.json"))
        if not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def one_worker(cfg, tmp_path_factory):
    folder = tmp_path_factory.mktemp("w1")
    return folder, run_samples(cfg, out_dir=folder / "samples", workers=1)


def test_two_workers_and_a_dask_cluster_write_the_same_bytes(cfg, one_worker, tmp_path):
    from dask.distributed import LocalCluster

    reference = _hashes(one_worker[1])
    two = run_samples(cfg, out_dir=tmp_path / "w2", workers=2)
    assert _hashes(two) == reference
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster:  # fmt: skip
        dask = run_samples(cfg, out_dir=tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert _hashes(dask) == reference


def test_table_is_the_same_for_one_file_and_many(cfg, one_worker, tmp_path):
    folder, manifest = one_worker
    whole = run_fits(cfg, samples_dir=folder / "samples", out_dir=tmp_path / "fits1", figures=False)

    # split beam.root into three files with their own MANIFEST entries, as a GEANT4
    # production would come (the per-MOT normalisation follows the events)
    split = tmp_path / "split"
    split.mkdir()
    entries = []
    for entry in manifest["files"]:
        src = folder / "samples" / entry["file"]
        if entry["sample"] != "beam":
            (split / entry["file"]).write_bytes(src.read_bytes())
            entries.append(entry)
            continue
        chunks = list(ntuple.iterate(src, "beam", list(ntuple.SCHEMAS["beam"]), step_size=10**9))
        data = chunks[0]
        n = entry["events"]
        edges = [0, n // 3, (2 * n) // 3, n]
        for i in range(3):
            name = f"{Path(entry['file']).stem}_part{i}.root"
            with ntuple.NtupleWriter(split / name, "beam") as out:
                out.extend(
                    {k: v[edges[i] : edges[i + 1]] for k, v in data.items() if k != "_dropped"}
                )
            part = dict(entry, file=name, events=edges[i + 1] - edges[i],
                        sha256=ntuple.sha256_file(split / name))  # fmt: skip
            if "n_mot" in part:
                part["n_mot"] = entry["n_mot"] * part["events"] / n
            entries.append(part)
    (split / "MANIFEST.json").write_text(json.dumps({**manifest, "files": entries}))
    parts = run_fits(cfg, samples_dir=split, out_dir=tmp_path / "fits3", figures=False)

    assert set(parts) == set(whole)
    for name in whole:
        a, b = whole[name].level_per_mot, parts[name].level_per_mot
        # the same events in another chunking: sums agree to rounding
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0), (name, a, b)
