"""The ntuple contract: writing, streaming, and every way a user's file can be bad."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import uproot

from bkg import memory
from bkg.errors import SampleError
from bkg.ntuple import SCHEMAS, NtupleWriter, check_file, iterate, read_manifest, sha256_file


def _chunk(sample: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, branch in SCHEMAS[sample].items():
        dt = np.dtype(branch.dtype)
        if dt.kind == "f":
            out[name] = rng.uniform(0, 160, n).astype(dt)
        elif dt.kind == "b":
            out[name] = rng.random(n) < 0.5
        else:
            out[name] = rng.integers(0, 3, n).astype(dt)
    return out


@pytest.fixture
def beam_file(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "beam.root"
    with NtupleWriter(path, "beam") as out:
        out.extend(_chunk("beam", 700, rng))
        out.extend(_chunk("beam", 300, rng))
    return path


def test_write_and_stream_in_chunks(beam_file):
    assert check_file(beam_file, "beam") == []
    sizes = [
        len(c["p_out_rec"])
        for c in iterate(beam_file, "beam", ["p_out_rec", "halo"], step_size=400)
    ]
    assert sum(sizes) == 1000 and max(sizes) <= 400
    with uproot.open(beam_file) as f:  # a TTree, not an RNTuple (uproot 5.7 pitfall)
        assert f["events"].classname.startswith("TTree")


def test_many_files_equal_one_file(tmp_path):
    rng = np.random.default_rng(2)
    data = _chunk("beam", 900, rng)
    with NtupleWriter(tmp_path / "one.root", "beam") as out:
        out.extend(data)
    parts = []
    for i in range(3):
        path = tmp_path / f"part{i}.root"
        with NtupleWriter(path, "beam") as out:
            out.extend({k: v[300 * i : 300 * (i + 1)] for k, v in data.items()})
        parts.append(path)
    one = np.concatenate([c["e_ecal"] for c in iterate(tmp_path / "one.root", "beam", ["e_ecal"])])
    many = np.concatenate([c["e_ecal"] for c in iterate(parts, "beam", ["e_ecal"])])
    np.testing.assert_array_equal(one, many)


def test_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "beam.root"
    with pytest.raises(ValueError), NtupleWriter(path, "beam") as out:
        out.extend({"p_out_rec": np.zeros(3)})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.bad_input
def test_missing_file(tmp_path):
    with pytest.raises(SampleError, match=r"nope\.root: file not found"):
        next(iterate(tmp_path / "nope.root", "beam", ["e_ecal"]))


@pytest.mark.bad_input
def test_not_a_root_file(tmp_path):
    path = tmp_path / "beam.root"
    path.write_text("x")  # shorter than a ROOT header: uproot's message spans lines
    with pytest.raises(SampleError, match="not a readable ROOT file") as info:
        next(iterate(path, "beam", ["e_ecal"]))
    assert "\n" not in str(info.value)  # one line for the CLI


@pytest.mark.bad_input
def test_truncated_file(beam_file):
    data = beam_file.read_bytes()
    beam_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        SampleError, match=r"beam\.root: (not a readable ROOT file|cannot read the baskets)"
    ) as info:
        for _ in iterate(beam_file, "beam", ["e_ecal", "p_out_rec"]):
            pass
    assert "\n" not in str(info.value)
    assert all("\n" not in problem for problem in check_file(beam_file, "beam"))
    assert check_file(beam_file, "beam")


@pytest.mark.bad_input
def test_tree_missing(tmp_path):
    path = tmp_path / "beam.root"
    with uproot.recreate(path) as f:
        f.mktree("other", {"x": np.float32})
        f["other"].extend({"x": np.zeros(3, np.float32)})
    with pytest.raises(SampleError, match="no TTree 'events' \\(keys: other\\)"):
        next(iterate(path, "beam", ["e_ecal"]))


@pytest.mark.bad_input
def test_branch_missing_and_wrong_dtype(tmp_path):
    path = tmp_path / "beam.root"
    with uproot.recreate(path) as f:
        f.mktree("events", {"e_ecal": np.float64, "p_out_rec": np.float32})
        f["events"].extend({"e_ecal": np.zeros(3), "p_out_rec": np.zeros(3, np.float32)})
    with pytest.raises(SampleError, match="branch 'e_vhcal' missing \\(expected float32 in GeV"):
        next(iterate(path, "beam", ["e_vhcal"]))
    with pytest.raises(SampleError, match="branch 'e_ecal' has dtype float64, expected float32"):
        next(iterate(path, "beam", ["e_ecal"]))
    problems = check_file(path, "beam")
    assert (
        len(problems) == len(SCHEMAS["beam"]) - 1
    )  # all missing but two, one with the wrong dtype


@pytest.mark.bad_input
def test_nan_rejected_or_dropped(tmp_path):
    rng = np.random.default_rng(3)
    data = _chunk("beam", 100, rng)
    data["e_ecal"][[3, 7]] = np.nan
    data["p_out_rec"][5] = np.inf
    path = tmp_path / "beam.root"
    with NtupleWriter(path, "beam") as out:
        out.extend(data)
    with pytest.raises(SampleError, match="branch 'e_ecal' has 2 NaN/inf values"):
        next(iterate(path, "beam", ["e_ecal", "p_out_rec"]))
    chunk = next(iterate(path, "beam", ["e_ecal", "p_out_rec"], nonfinite="drop"))
    assert len(chunk["e_ecal"]) == 97 and int(chunk["_dropped"]) == 3
    assert np.isfinite(chunk["e_ecal"]).all()


@pytest.mark.bad_input
def test_empty_sample(tmp_path):
    path = tmp_path / "beam.root"
    with NtupleWriter(path, "beam"):
        pass
    assert check_file(path, "beam") == [f"{path}: the tree 'events' is empty (0 events)"]


@pytest.mark.bad_input
def test_manifest_hash_mismatch(beam_file):
    folder = beam_file.parent
    entry = {
        "file": "beam.root",
        "sample": "beam",
        "events": 1000,
        "sha256": sha256_file(beam_file),
        "norm_per_mot": 1.0,
    }
    (folder / "MANIFEST.json").write_text(json.dumps({"files": [entry]}))
    assert read_manifest(folder)["files"][0]["events"] == 1000
    entry["sha256"] = "0" * 64
    (folder / "MANIFEST.json").write_text(json.dumps({"files": [entry]}))
    with pytest.raises(SampleError, match=r"does not match MANIFEST\.json"):
        read_manifest(folder)


def test_same_events_give_the_same_bytes(tmp_path):
    # Reproducibility (DEVELOPERS.md): uproot stamps files with the wall clock and a
    # random UUID; the writer fixes both, so equal events hash equal a moment later.
    import datetime
    import time

    digests = []
    for name in ("a", "b"):
        with NtupleWriter(tmp_path / name / "beam.root", "beam") as out:
            out.extend(_chunk("beam", 500, np.random.default_rng(3)))
        digests.append(sha256_file(tmp_path / name / "beam.root"))
        time.sleep(1.1)  # ROOT's TDatime has one-second resolution
    assert digests[0] == digests[1]
    # the clock is restored for everyone else
    assert abs((datetime.datetime.now() - datetime.datetime(2022, 3, 22)).days) > 1
    with uproot.open(tmp_path / "a" / "beam.root") as f:
        assert f["events"].num_entries == 500


def _manifest(folder, **changes):
    """MANIFEST.json of one beam file (beam.root, not hashed here) with ``changes`` to its entry."""
    entry = {"file": "beam.root", "sample": "beam", "events": 1000, "sha256": "0" * 64}
    entry.update({"norm_per_mot": 1.0, "n_mot": 1000.0, **changes})
    (folder / "MANIFEST.json").write_text(json.dumps({"files": [entry]}))


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("norm_per_mot", -1.0),
        ("norm_per_mot", 0.0),
        ("norm_per_mot", float("nan")),
        ("norm_per_mot", "x"),
        ("norm_per_mot", None),
        ("events", 0),
        ("events", -5),
        ("events", "abc"),
        ("events", 10.5),
        ("events", True),
        ("n_mot", 0),
        ("n_mot", -1e5),
        ("n_mot", float("inf")),
        ("n_mot", "many"),
        ("file", None),
        ("file", ""),
        ("sample", "muons"),
        ("sample", ["beam"]),
        ("sha256", 0),
    ],
)
def test_manifest_values_checked(tmp_path, key, value):
    _manifest(tmp_path, **{key: value})
    with pytest.raises(SampleError) as info:
        read_manifest(tmp_path, check_hashes=False)
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'MANIFEST.json'}: files[0]")
    assert f"key '{key}': expected" in text and "\n" not in text


def test_manifest_hadrons_may_have_a_zero_or_per_species_norm(tmp_path):
    # beam.pi_per_mu: 0 writes norm_per_mot 0; the hadron source takes its rates from the config
    for norm in (0.0, {"-211": 1e-6, "-321": 3e-8, "130": 0.0}):
        _manifest(tmp_path, sample="hadrons", norm_per_mot=norm)
        assert read_manifest(tmp_path, check_hashes=False)["files"][0]["norm_per_mot"] == norm
    _manifest(tmp_path, sample="hadrons", norm_per_mot_by_pdg={"-211": -1e-6})
    with pytest.raises(SampleError, match=r"key 'norm_per_mot_by_pdg': expected"):
        read_manifest(tmp_path, check_hashes=False)
    _manifest(tmp_path, sample="hadrons", species_fraction_generated={"-211": 0})
    with pytest.raises(SampleError, match=r"key 'species_fraction_generated': expected"):
        read_manifest(tmp_path, check_hashes=False)


@pytest.mark.bad_input
def test_manifest_entry_not_an_object(tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"files": ["beam.root"]}))
    with pytest.raises(
        SampleError, match=r"MANIFEST\.json: files\[0\] is a str; expected an object"
    ):
        read_manifest(tmp_path)


@pytest.mark.bad_input
def test_manifest_that_is_a_folder(tmp_path):
    (tmp_path / "MANIFEST.json").mkdir()
    with pytest.raises(SampleError, match=r"MANIFEST\.json: cannot read it \(Is a directory\)"):
        read_manifest(tmp_path)


@pytest.mark.bad_input
def test_manifest_unreadable(tmp_path, refuse_reading):
    _manifest(tmp_path)
    refuse_reading("MANIFEST.json")
    with pytest.raises(SampleError, match=r"MANIFEST\.json: cannot read it \(Permission denied\)"):
        read_manifest(tmp_path)


@pytest.mark.bad_input
def test_unreadable_sample_file(beam_file, monkeypatch):
    import bkg.ntuple

    _manifest(beam_file.parent)

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(bkg.ntuple, "open", refuse, raising=False)
    with pytest.raises(SampleError, match=r"beam\.root: cannot read it \(Permission denied\)"):
        read_manifest(beam_file.parent)
    with pytest.raises(SampleError, match=r"beam\.root: cannot read it \(Permission denied\)"):
        sha256_file(beam_file)


@pytest.mark.bad_input
def test_sample_file_that_is_a_folder(tmp_path):
    (tmp_path / "beam.root").mkdir()
    _manifest(tmp_path)
    with pytest.raises(SampleError, match=r"beam\.root: cannot read it \(Is a directory\)"):
        read_manifest(tmp_path)


@pytest.mark.bad_input
def test_rntuple_events_reported(tmp_path):
    # uproot >= 5.7 writes an RNTuple for file["events"] = {...}; the contract wants a TTree
    path = tmp_path / "beam.root"
    with uproot.recreate(path) as f:
        f["events"] = {"e_ecal": np.zeros(3, np.float32)}
    with uproot.open(path) as f:
        if "RNTuple" not in f["events"].classname:
            pytest.skip("this uproot writes a TTree for file[name] = {...}")
    expected = f"{path}: 'events' is an RNTuple; expected a TTree"
    problems = check_file(path, "beam")
    assert len(problems) == 1 and problems[0].startswith(expected)
    with pytest.raises(SampleError, match="is an RNTuple; expected a TTree"):
        next(iterate(path, "beam", ["e_ecal"]))


def test_valid_ranges_admit_what_the_simulation_writes():
    # the generator's own sentinels pass `bkg samples check`: a never-visible hadron at
    # NEVER_VISIBLE_LAMBDA behind its interaction point, the track fit's 1e4 GeV cap on a
    # straight track (both were flagged in a 1e7-MOT default production)
    import numpy as np

    from bkg.ntuple import VALID
    from bkg.sim.calorimeters import NEVER_VISIBLE_LAMBDA

    assert not VALID["depth_lambda"].outside(np.array([NEVER_VISIBLE_LAMBDA - 0.58])).any()
    assert not VALID["p_out_rec_ko"].outside(np.array([1e4])).any()
    assert VALID["p_out_rec_ko"].outside(np.array([-1.0, 2e4])).all()
    assert not VALID["process"].outside(np.arange(10)).any()  # 9: quasi-elastic (tracker)
    assert not VALID["escape"].outside(np.arange(7)).any()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_pass_returns_memory_only_while_it_reads(beam_file):
    """Every process runs with the ``keep`` allocator policy (bkg.memory); a pass over a
    sample holds ``return`` while it reads and gives the process its policy back after,
    also when the caller stops early."""
    before = memory.heap_policy("keep")
    try:
        seen = [
            memory.heap_policy(None) for _ in iterate(beam_file, "beam", ["e_ecal"], step_size=400)
        ]
        assert seen == ["return"] * 3
        assert memory.heap_policy(None) == "keep"
        stream = iterate(beam_file, "beam", ["e_ecal"], step_size=400)
        next(stream)
        assert memory.heap_policy(None) == "return"
        stream.close()  # the caller broke out of its loop
        assert memory.heap_policy(None) == "keep"
    finally:
        memory.heap_policy(before or "keep")


@pytest.mark.bad_input
def test_manifest_rereads_only_files_written_since_they_were_hashed(beam_file, monkeypatch):
    """`bkg fit` takes the samples stage's record of each file's sha256, size and mtime
    (bkg.cache) instead of hashing ~0.5 GB again; a file written since is hashed and
    a changed one still stops the read."""
    import os

    from bkg import cache, ntuple

    folder = beam_file.parent
    entry = {"file": "beam.root", "sample": "beam", "events": 1000, "norm_per_mot": 1.0}
    entry["sha256"] = sha256_file(beam_file)
    (folder / "MANIFEST.json").write_text(json.dumps({"files": [entry]}))
    old = beam_file.stat().st_mtime_ns - 5_000_000_000  # hashed 5 s after it was written
    os.utime(beam_file, ns=(old, old))
    cache.mark_done(folder, "samples-key", ["beam.root", "MANIFEST.json"])
    hashed = []
    monkeypatch.setattr(ntuple, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    verified = cache.unchanged_outputs(folder)
    assert verified == {"beam.root": entry["sha256"]}
    assert read_manifest(folder, verified=verified)["files"][0]["events"] == 1000
    assert hashed == []
    # the same size, another byte, a new mtime: no longer taken on trust
    data = bytearray(beam_file.read_bytes())
    data[-1] ^= 0xFF
    beam_file.write_bytes(bytes(data))
    assert cache.unchanged_outputs(folder) == {}
    with pytest.raises(SampleError, match=r"does not match MANIFEST\.json"):
        read_manifest(folder, verified=cache.unchanged_outputs(folder))
    assert hashed == [beam_file]
