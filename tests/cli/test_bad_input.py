"""Bad input that must neither destroy data nor leave half-written output: each case ends
in one line on stderr and exit code 2, and the folder it pointed at is as it was."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bkg.cli import main
from bkg.config import load_config
from bkg.errors import SampleError

pytestmark = pytest.mark.bad_input

ROOT = Path(__file__).resolve().parents[2]


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def _run_cli_ok(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _one_line_exit_2(code: int, err: str) -> None:
    """Exit code 2 and exactly one line on stderr, ours or click's (a bad option value)."""
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def tiny_production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) `bkg samples` production of the beam sample."""
    folder = tmp_path_factory.mktemp("prod") / "samples"
    main(["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)])
    return folder


@pytest.mark.parametrize(
    "extra",
    [
        ["--n-mot", "nan"],
        ["--n-mot", "-1"],
        ["--n-mot", "0.5"],
        ["--n-mot", "inf"],
        ["--n-mot", "2000", "--scheduler", "garbage"],
    ],
)
def test_a_bad_option_leaves_the_previous_production_intact(
    tiny_production, tmp_path, capsys, extra
):
    folder = tmp_path / "samples"
    shutil.copytree(tiny_production, folder)
    before = _snapshot(folder)
    code, err = _run_cli(
        ["samples", "--only", "beam", "--workers", "1", "--out", str(folder), *extra], capsys
    )
    _one_line_exit_2(code, err)
    assert _snapshot(folder) == before


def test_samples_of_another_generator_are_never_overwritten(tmp_path, capsys):
    folder = tmp_path / "g4"
    folder.mkdir()
    (folder / "beam_0000.root").write_bytes(b"a GEANT4 ntuple")
    manifest = {"generator": "geant4", "files": [{"file": "beam_0000.root", "sample": "beam"}]}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    before = _snapshot(folder)
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "1000", "--out", str(folder)], capsys
    )
    _one_line_exit_2(code, err)
    assert "not overwritten" in err and str(folder) in err
    assert _snapshot(folder) == before
    # `bkg report` uses such a folder as it is
    from bkg.report.pipeline import run_samples_stage

    state, _ = run_samples_stage(load_config(None), samples_dir=folder)
    assert state == "external" and _snapshot(folder) == before


def test_root_files_without_a_manifest_are_not_written_over(tmp_path):
    from bkg.report.pipeline import run_samples_stage

    (tmp_path / "beam_0000.root").write_bytes(b"someone's file")
    with pytest.raises(SampleError, match=r"no MANIFEST\.json"):
        run_samples_stage(load_config(None), samples_dir=tmp_path)
    assert (tmp_path / "beam_0000.root").read_bytes() == b"someone's file"


def test_an_interrupted_production_leaves_no_unlisted_file(tmp_path, monkeypatch):
    from bkg.sim import run as sim_run

    real = sim_run.write_chunk
    calls = []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(sim_run, "write_chunk", interrupted)
    cfg = load_config(None, samples={"chunk_size": 1000})
    with pytest.raises(KeyboardInterrupt):
        sim_run.run_samples(cfg, out_dir=tmp_path, only=["beam"], n_mot=3000, workers=1)
    assert not list(tmp_path.glob("*.root"))  # chunk 0 was complete, and is gone too
    listed = json.loads((tmp_path / "MANIFEST.json").read_text())["files"]
    assert listed == []


def test_verify_names_a_folder_that_is_not_a_report(tmp_path, capsys):
    code, err = _run_cli(["verify", str(ROOT / "fits")], capsys)
    _one_line_exit_2(code, err)
    assert "not a report folder" in err
    code, err = _run_cli(
        ["verify", str(ROOT / "reports" / "reference"), "--run", str(tmp_path)], capsys
    )
    _one_line_exit_2(code, err)
    assert "not a report folder" in err and str(tmp_path) in err
    # a reference to re-run needs its provenance's configuration
    (tmp_path / "table1.json").write_text("{}")
    (tmp_path / "provenance.json").write_text("[]")
    code, err = _run_cli(["verify", str(tmp_path)], capsys)
    _one_line_exit_2(code, err)
    assert "provenance.json" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--geometry", "0,20"],
        ["--geometry", "-5,20"],
        ["--n-beam", "nan"],
        ["--n-signal", "inf"],
    ],
)
def test_trigger_scan_rejects_before_writing(tmp_path, capsys, args):
    out = tmp_path / "scan"
    code, err = _run_cli(["trigger-scan", *args, "--out", str(out)], capsys)
    _one_line_exit_2(code, err)
    assert not out.exists()


def test_a_preset_with_its_own_count_is_a_conflict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the working tree's samples/, whatever made them
    (tmp_path / "na64mu-default").mkdir()
    shutil.copy(ROOT / "reports" / "reference" / "table1.json", tmp_path / "na64mu-default")
    code, err = _run_cli(
        ["limits", "--preset", "na64mu-2022", "--observed", "3", "--out", str(tmp_path)], capsys
    )
    _one_line_exit_2(code, err)
    assert "--preset" in err and "--observed" in err


def test_workspace_mass_outside_the_patchset_and_missing_samples(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the working tree's samples/, whatever made them
    reports = tmp_path / "reports"
    shutil.copytree(ROOT / "reports" / "reference", reports / "reference")
    config = str(ROOT / "tests" / "data" / "reference.yaml")
    code, err = _run_cli(
        [
            "workspace",
            "--config",
            config,
            "--out",
            str(reports),
            "--samples",
            str(tmp_path / "nowhere"),
        ],
        capsys,
    )
    _one_line_exit_2(code, err)
    assert "nowhere" in err and "no signal sample" in err
    code, err = _run_cli(
        ["workspace", "--config", config, "--out", str(reports), "--mass", "50"], capsys
    )
    _one_line_exit_2(code, err)
    assert "--mass 50" in err and "outside" in err


@pytest.mark.parametrize("name", [".", "..", "../escape", "/tmp/victim", "a/b"])
def test_a_report_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, capsys, name):
    reports = tmp_path / "reports"
    (reports / "other").mkdir(parents=True)
    (reports / "other" / "keep.txt").write_text("keep")
    code, err = _run_cli(["report", "--name", name, "--out", str(reports)], capsys)
    _one_line_exit_2(code, err)
    assert "--name" in err
    assert (reports / "other" / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in reports.iterdir()) == ["other"]


def test_fit_only_an_unknown_source_is_one_line(tmp_path, capsys):
    code, err = _run_cli(["fit", "--only", "bogus", "--out", str(tmp_path / "fits")], capsys)
    _one_line_exit_2(code, err)
    assert "bogus" in err and "momentum_mismatch" in err


def test_a_folder_with_an_unreadable_manifest_beside_root_files_is_not_overwritten(
    tmp_path, capsys
):
    (tmp_path / "beam_0000.root").write_bytes(b"a user's ntuple")
    (tmp_path / "MANIFEST.json").write_text('{"generator": "geant4",, }')
    before = _snapshot(tmp_path)
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "1000", "--out", str(tmp_path)], capsys
    )
    _one_line_exit_2(code, err)
    assert "MANIFEST" in err and _snapshot(tmp_path) == before


def test_external_samples_are_keyed_by_their_own_files(tiny_production, tmp_path):
    # a user swaps a GEANT4 production into an old `bkg samples` folder and leaves its
    # .stage.json: the fits must be keyed by the new files, never by the old record
    from bkg.report.pipeline import fits_key, mark_samples_done, samples_hashes

    folder = tmp_path / "samples"
    shutil.copytree(tiny_production, folder)
    cfg = load_config(None)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    mark_samples_done(cfg, folder, manifest)  # the record of the fast-simulation production
    own = fits_key(cfg, folder)
    manifest["generator"] = "geant4"
    manifest["files"][0]["sha256"] = "0" * 64
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    assert (folder / ".stage.json").exists()
    assert samples_hashes(folder) == {manifest["files"][0]["file"]: "0" * 64}
    assert fits_key(cfg, folder) != own


def test_yaml_aliases_and_self_reference_are_refused(tmp_path, capsys):
    path = tmp_path / "alias.yaml"
    path.write_text("a: &a [*a]\n")
    code, err = _run_cli(["config", "validate", str(path)], capsys)
    _one_line_exit_2(code, err)
    assert "aliases" in err


def test_verify_against_itself_is_refused(capsys):
    ref = str(ROOT / "reports" / "reference")
    code, err = _run_cli(["verify", ref, "--run", ref], capsys)
    _one_line_exit_2(code, err)
    assert "reference itself" in err


def test_a_file_in_the_way_of_a_report_is_not_moved(tmp_path, capsys):
    from bkg.atomic import atomic_dir
    from bkg.errors import OutputError

    (tmp_path / "isfile").write_text("mine")
    with pytest.raises(OutputError, match="in the way"):
        with atomic_dir(tmp_path / "isfile"):
            pass
    assert (tmp_path / "isfile").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["isfile"]


@pytest.mark.parametrize("args", [["--mass", "0"], ["--mass", "nan"]])
def test_workspace_mass_must_be_positive(tmp_path, capsys, args):
    code, err = _run_cli(["workspace", "--out", str(tmp_path), *args], capsys)
    _one_line_exit_2(code, err)
    assert "> 0" in err


def test_samples_check_names_a_missing_file(tmp_path, capsys):
    code, err = _run_cli(["samples", "check", str(tmp_path / "nothere.root")], capsys)
    assert code != 0 and "Traceback" not in err
    assert "no such file" in (err + capsys.readouterr().out)


def test_an_interrupt_that_surfaces_as_another_error_is_still_an_interrupt(monkeypatch, capsys):
    # SIGINT while a C extension initialises comes out as "ImportError: initialization
    # failed" (seen in CI while zfit imported boost_histogram): exit 130, one line
    from bkg import interrupt

    def interrupted_import(*args, **kwargs):
        monkeypatch.setattr(interrupt, "_requested", True)
        raise ImportError("initialization failed")

    monkeypatch.setattr("bkg.config.load_config", interrupted_import)
    code, err = _run_cli(["config", "show"], capsys)
    assert code == 130 and err.strip().splitlines() == [
        "bkg: interrupted; outputs of the unfinished stage were not written"
    ]

    # without an interrupt, an unexpected error is a bug and keeps its traceback
    def broken_import(*args, **kwargs):
        raise ImportError("initialization failed")

    monkeypatch.setattr(interrupt, "_requested", False)
    monkeypatch.setattr("bkg.config.load_config", broken_import)
    with pytest.raises(ImportError):
        main(["config", "show"])


def test_stage_commands_refuse_samples_and_fits_of_another_config(tmp_path, capsys, monkeypatch):
    # the README's 100 GeV example writes samples/ and fits/ that the default config's
    # `bkg table`, `bkg sensitivity` and `bkg fit` must not take as their own
    from bkg import cache
    from bkg.config import from_dict, load_config
    from bkg.report.pipeline import fits_config_key, samples_config_key

    monkeypatch.chdir(tmp_path)
    other = from_dict({"beam": {"energy_gev": 100.0}})
    for folder, key in (("samples", samples_config_key(other)), ("fits", fits_config_key(other))):
        (tmp_path / folder).mkdir()
        cache.mark_done(tmp_path / folder, "k", [], config_key=key)
    for args, words in (
        (["table"], ("fits", "another beam, detector or selection", "bkg fit")),
        (["fit"], ("samples", "another beam or detector", "bkg samples")),
        (["sensitivity", "--out", str(tmp_path / "r")], ("samples", "another beam or detector")),
    ):
        code, err = _run_cli(args, capsys)
        _one_line_exit_2(code, err)
        assert all(w in err for w in words), err
    # the same setup passes the check, whatever the sizes, seed, statistics or signal
    # settings (no fits there: the next error is a different one)
    same_setup = from_dict(
        {
            "seed": 7,
            "n_mot": 5e11,
            "samples": {"n_mot": 2e5, "folder": "elsewhere"},
            "signal": {"efficiency": 0.2},
            "statistics": {"n_toys": 500},
        }
    )
    assert fits_config_key(same_setup) == fits_config_key(load_config())
    assert samples_config_key(same_setup) == samples_config_key(load_config())
    cache.mark_done(tmp_path / "fits", "k", [], config_key=fits_config_key(load_config()))
    code, err = _run_cli(["table"], capsys)
    assert "another" not in err


def test_partial_and_external_sample_folders_pass_the_setup_check(tmp_path, capsys):
    # `bkg samples --only` records the config's setup, so the stage commands take the
    # folder; a GEANT4 folder (its MANIFEST not written by bkg.sim) is never refused,
    # even when an old fast-simulation record lies beside it
    import json

    from bkg import cache
    from bkg.config import from_dict
    from bkg.report.pipeline import check_made_for, samples_config_key

    small = tmp_path / "small.yaml"
    small.write_text("samples: {signal_events_per_mass: 200, signal_masses_gev: [0.1]}\n")
    out = tmp_path / "s"
    code = _run_cli_ok(["samples", "--config", str(small), "--only", "signal", "--out", str(out)])
    assert code == 0
    cfg = from_dict({"samples": {"signal_events_per_mass": 200, "signal_masses_gev": [0.1]}})
    assert cache.recorded_config(out) == samples_config_key(cfg)
    check_made_for(cfg, out, "samples")  # no error
    other = from_dict({"beam": {"energy_gev": 100.0}})
    with pytest.raises(SampleError, match="another beam or detector"):
        check_made_for(other, out, "samples")
    manifest = json.loads((out / "MANIFEST.json").read_text())
    for entry in manifest["files"]:
        entry["generator"] = "geant4"
    manifest["generator"] = "geant4"
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    check_made_for(other, out, "samples")  # external: not checked


# ------------------------------------------------------------------------------------------
# issue 25, part B: input validation and messages. Every case: exit code 2, exactly one line
# on stderr, and no file changed anywhere under the test's folder (sha256 snapshot), which
# is the working directory of the command too.


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest).

    The tool's own empty lock files (``.bkg.lock``, docs/guarantees.md) are left out: a
    stage folder gets one when a command opens it for writing, and it holds no data.
    """
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".bkg.lock"
    }


def _refused(args: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``bkg args``; assert exit 2, one line on stderr, and nothing under ``root`` changed."""
    before = _hashes(root)
    code, err = _run_cli(args, capsys)
    _one_line_exit_2(code, err)
    assert _hashes(root) == before
    return err


@pytest.fixture
def production(tiny_production: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the tiny beam production in tmp_path (also the working directory)."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "samples"
    shutil.copytree(tiny_production, folder)
    return folder


def _edit_manifest(folder: Path, edit: Any) -> None:
    path = folder / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    edit(manifest["files"])
    path.write_text(json.dumps(manifest))


def _fit(folder: Path) -> list[str]:
    return ["fit", "--samples", str(folder), "--out", str(folder.parent / "fits"),
            "--only", "momentum_mismatch"]  # fmt: skip


def test_a_file_listed_twice_in_the_manifest_is_refused(production, capsys):
    # before: the duplicate doubled the denominator and the level halved (4.74e-10 ->
    # 2.10e-10 per MOT on a 2e4-MOT production), exit 0
    _edit_manifest(production, lambda files: files.append(dict(files[0])))
    err = _refused(_fit(production), production.parent, capsys)
    assert "MANIFEST.json: files[0] and files[1] both list 'beam_0000.root'" in err


def test_the_same_file_under_two_names_is_refused(production, capsys):
    shutil.copy(production / "beam_0000.root", production / "beam_copy.root")
    _edit_manifest(production, lambda files: files.append({**files[0], "file": "beam_copy.root"}))
    err = _refused(_fit(production), production.parent, capsys)
    assert "files[0] (beam_0000.root) and files[1] (beam_copy.root) have the same sha256" in err


def test_a_file_listed_as_a_path_and_as_a_name_is_listed_twice(production, capsys):
    _edit_manifest(production, lambda files: files.append({**files[0], "file": "./beam_0000.root"}))
    err = _refused(_fit(production), production.parent, capsys)
    assert "both list './beam_0000.root'" in err


@pytest.mark.parametrize("events", [1999, 2001, 4000])
def test_events_that_disagree_with_the_file_are_refused(production, capsys, events):
    _edit_manifest(production, lambda files: files[0].update(events=events))
    err = _refused(_fit(production), production.parent, capsys)
    assert f"beam_0000.root: the tree 'events' has 2000 events, MANIFEST.json says {events}" in err


def _hadrons_entry(files: list[dict[str, Any]], **changes: Any) -> None:
    """A hadrons entry (for a file that is never opened: the values fail first)."""
    files.append(
        {
            "file": "hadrons_0000.root", "sample": "hadrons", "events": 10, "sha256": "1" * 64,
            "norm_per_mot": 1.045e-6,
            "norm_per_mot_by_pdg": {"-211": 1e-6, "-321": 3e-8, "130": 1.5e-8},
            "species_fraction_generated": {"-211": 0.5, "-321": 0.25, "130": 0.25},
            **changes,
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # before: norm_per_mot 1e300 gave a dimuon level of 5.6e287 per MOT, exit 0
        (lambda f: f[0].update(norm_per_mot=1e300), "key 'norm_per_mot': expected a probability"),
        (lambda f: f[0].update(norm_per_mot=1.5), "key 'norm_per_mot': expected a probability"),
        (lambda f: _hadrons_entry(f, norm_per_mot=2.0), "key 'norm_per_mot'"),
        (lambda f: _hadrons_entry(f, norm_per_mot={"-211": 3.0}), "key 'norm_per_mot'"),
        (lambda f: _hadrons_entry(f, norm_per_mot_by_pdg={"-211": 7.0}), "'norm_per_mot_by_pdg'"),
        (
            lambda f: _hadrons_entry(f, species_fraction_generated={"-211": 0.5, "130": 0.2}),
            "key 'species_fraction_generated': expected fractions of the generated events "
            "that sum to 1",
        ),
        (lambda f: _hadrons_entry(f, yields_per_mot={"total": 1e9}), "key 'yields_per_mot'"),
        # what only the JSON Schema says
        (lambda f: f[0].update(sha256="not a digest"), "key 'sha256': 'not a digest' does not"),
        (lambda f: f[0].update(masses_gev=[-1.0]), "key 'masses_gev.0'"),
        (lambda f: f[0].update(events=1e11), "key 'events'"),
    ],
    ids=lambda v: None if callable(v) else v.split("'")[1].replace(" ", "_"),
)
def test_impossible_normalisations_are_refused(production, capsys, edit, expected):
    _edit_manifest(production, edit)
    err = _refused(_fit(production), production.parent, capsys)
    assert "MANIFEST.json: files[" in err and expected in err


def test_the_manifest_schema_and_the_reader_agree_on_a_production(tiny_production):
    # the schema describes what `bkg samples` writes (else every production would fail)
    from bkg.ntuple import manifest_validator

    manifest = json.loads((tiny_production / "MANIFEST.json").read_text())
    assert list(manifest_validator().iter_errors(manifest)) == []


def _rewritten(source: Path, target: Path, **values: Any) -> Path:
    """``source`` (a beam ntuple) with some branches set to ``values`` in its first event."""
    import uproot

    from bkg.ntuple import NtupleWriter

    arrays = uproot.open(source)["events"].arrays(library="np")
    for name, value in values.items():
        arrays[name][0] = value
    with NtupleWriter(target, "beam") as out:
        out.extend(arrays)
    return target


@pytest.mark.parametrize(
    ("branch", "value", "expected"),
    [
        ("p_in_rec", -1e30, "branch 'p_in_rec' has 1 values outside [0, 1000] GeV (e.g. -1e+30"),
        ("p_out_rec", 5e4, "branch 'p_out_rec' has 1 values outside [0, 10000] GeV"),
        (
            "process",
            99,
            "branch 'process' has 1 values outside one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
        ),
        ("x_cm", -1e9, "branch 'x_cm' has 1 values outside [-1000, 1000] cm"),
    ],
)
def test_samples_check_refuses_values_outside_the_contract(
    tiny_production, tmp_path, capsys, monkeypatch, branch, value, expected
):
    # before: p_in_rec = -1e30 and process = 99 passed `bkg samples check`
    monkeypatch.chdir(tmp_path)
    path = _rewritten(tiny_production / "beam_0000.root", tmp_path / "beam_0000.root",
                      **{branch: value})  # fmt: skip
    err = _refused(["samples", "check", str(path)], tmp_path, capsys)
    assert err.startswith(f"{path}: {expected}")


def test_the_contract_states_every_range_it_checks():
    from bkg.ntuple import SCHEMAS, VALID

    readme = (ROOT / "samples" / "README.md").read_text()
    units = {name: b.unit for schema in SCHEMAS.values() for name, b in schema.items()}
    for name, valid in VALID.items():
        assert name in units, f"VALID names {name}, a branch of no sample"
        assert f"| `{name}` | {valid.describe(units[name])} |" in readme


def test_every_interval_of_the_config_is_marked_and_checked():
    # an interval is a [low, high] pair: every "window" of the schema, found by its name
    from bkg.config import interval_keys, load_schema

    def pairs(schema: dict[str, Any], parts: tuple[str, ...] = ()) -> list[str]:
        found = []
        for key, sub in schema.get("properties", {}).items():
            if sub.get("type") == "array" and sub.get("minItems") == sub.get("maxItems") == 2:
                found.append(".".join((*parts, key)))
            found += pairs(sub, (*parts, key))
        return found

    windows = [k for k in pairs(load_schema()) if "window" in k]
    assert sorted(interval_keys()) == sorted(windows)
    assert "beam.momentum_window_gev" in windows and "detector.hcal.mip_window_gev" in windows


@pytest.mark.parametrize(
    "yaml_text",
    [
        "beam:\n  momentum_window_gev: [180, 140]\n",  # before: valid, and changed results
        "beam:\n  momentum_window_gev: [150, 150]\n",
        "detector:\n  hcal:\n    mip_window_gev: [5.0, 0.5]\n",
        "selection:\n  hcal_mip_window_gev: [5.0, 0.5]\n",
        "selection:\n  p_in_window_gev: [180, 140]\n",
        "signal:\n  masses_gev: {min: 1.0, max: 0.5, points: 1}\n",
        "beam:\n  halo_energy_min_gev: 200.0\n",
        "detector:\n  vhcal:\n    hole_cm: [60.0, 6.0]\n",
    ],
    ids=lambda text: "-".join(text.replace(":", "").split()[:3]),
)
def test_an_inverted_interval_is_refused(tmp_path, capsys, monkeypatch, yaml_text):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    err = _refused(["config", "validate", str(path)], tmp_path, capsys)
    key = yaml_text.split(":")[0]
    assert err.startswith(f"{path}: {key}.") and ("low < high" in err or "must be" in err or
                                                  "min < max" in err)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # before: built the chunk list in memory (2 GB, no end)
        (["samples", "--n-mot", "1e99"], "'1e99': at most 1e+10"),
        (["samples", "--n-mot", "1e11"], "'1e11': at most 1e+10"),
        (["sensitivity", "--n-mot", "1e30"], "'1e30': at most 1e+15"),
        # before: 2.25 PiB asked for after 85 s
        (["limits", "--observed", str(10**24)], "not in the range 0<=x<=1000000"),
        (["trigger-scan", "--n-beam", "1e30"], "'1e30': at most 1e+10"),
        (["trigger-scan", "--n-signal", "1e12"], "'1e12': at most 1e+08"),
        (["trigger-scan", "--n-hadrons", "1e12"], "'1e12': at most 1e+10"),
    ],
    ids=lambda v: "_".join(v[:2]).replace("-", "") if isinstance(v, list) else "",
)
def test_absurd_counts_on_the_command_line_are_refused(tmp_path, capsys, monkeypatch, args,
                                                       expected):  # fmt: skip
    import time

    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    err = _refused(args, tmp_path, capsys)
    assert expected in err and time.monotonic() - start < 30  # before any work
    assert err.startswith(f"bkg: error: bkg {args[0]}: Invalid value for '{args[1]}'")


@pytest.mark.parametrize(
    ("yaml_text", "command", "expected"),
    [
        ("samples:\n  n_mot: 1.0e30\n", "samples", "samples.n_mot: 1e+30 is more than"),
        # before: a pyhf traceback (FailedMinimization) from `bkg limits`
        ("n_mot: 1.0e30\n", "limits", "n_mot: 1e+30 is more than the maximum 1e+15"),
        ("n_mot: 1.0e16\n", "sensitivity", "n_mot: 1e+16 is more than the maximum 1e+15"),
        ("samples:\n  chunk_size: 1000000000\n", "samples", "samples.chunk_size: 1e+09 is more"),
        ("samples:\n  hadron_events: 100000000000\n", "samples", "samples.hadron_events"),
        ("samples:\n  signal_events_per_mass: 1000000000\n", "samples", "signal_events_per_mass"),
        ("seed: 100000000000000000000\n", "samples", "seed: 1e+20 is more than"),
        ("seed: -1\n", "samples", "seed: -1 is less than the minimum of 0"),
        ("n_mot: .nan\n", "limits", "n_mot: nan is not a finite number"),
        ("n_mot: many\n", "limits", "n_mot: 'many' is not of type 'number'"),
        ("statistics:\n  n_toys: 1.0e9\n", "limits", "statistics.n_toys: 1e+09 is more than"),
    ],
    ids=lambda v: v.split(":")[0].strip() if isinstance(v, str) and "\n" in v else None,
)
def test_absurd_counts_in_a_config_are_refused_before_any_work(
    tmp_path, capsys, monkeypatch, yaml_text, command, expected
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "big.yaml"
    path.write_text(yaml_text)
    err = _refused([command, "--config", str(path)], tmp_path, capsys)
    assert err.startswith(f"bkg: error: {path}: ") and expected in err


def test_the_config_schema_states_the_documented_maxima():
    from bkg import sizes
    from bkg.config import load_schema

    props = load_schema()["properties"]
    smp = props["samples"]["properties"]
    assert props["n_mot"]["maximum"] == sizes.MAX_PROJECTION_MOT
    assert props["seed"]["maximum"] == sizes.MAX_SEED
    assert smp["n_mot"]["maximum"] == sizes.MAX_SIMULATED_MOT
    assert smp["chunk_size"]["maximum"] == sizes.MAX_CHUNK_SIZE
    assert smp["hadron_events"]["maximum"] == sizes.MAX_SAMPLE_EVENTS
    assert smp["dimuon_events"]["maximum"] == sizes.MAX_SAMPLE_EVENTS
    assert smp["leading_hadron_events"]["maximum"] == sizes.MAX_LEADING_HADRON_EVENTS
    assert smp["signal_events_per_mass"]["maximum"] == sizes.MAX_SIGNAL_EVENTS_PER_MASS
    assert smp["signal_masses_gev"]["maxItems"] == sizes.MAX_SIGNAL_MASSES
    guarantees = (ROOT / "docs" / "guarantees.md").read_text()
    assert "## Limits on sizes" in guarantees
    for value in ("1e10", "1e15", "1e6", "1e7", "1 MB", "32 levels"):
        assert value in guarantees, value


@pytest.mark.parametrize("key", ["n_mot", "samples.n_mot"])
def test_verify_refuses_a_reference_with_an_absurd_n_mot(tmp_path, capsys, monkeypatch, key):
    # before: `bkg verify` built the chunk list of 1e30 MOT in memory and hung at 2 GB
    from bkg.config import default_dict

    monkeypatch.chdir(tmp_path)
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "table1.json").write_text("{}")
    config = default_dict()
    section = config["samples"] if key == "samples.n_mot" else config
    section["n_mot"] = 1e30
    (ref / "provenance.json").write_text(json.dumps({"config": config, "outputs_sha256": {}}))
    err = _refused(["verify", str(ref)], tmp_path, capsys)
    assert f"provenance.json: {key}: 1e+30 is more than the maximum" in err


def test_workers_are_capped_at_the_chunks_and_the_cores(tmp_path, monkeypatch):
    # before: --workers 1000 forked 975 processes for one chunk
    import os

    from bkg.sim import run as sim_run

    made: list[int] = []

    class Pool(sim_run.ProcessPoolExecutor):  # type: ignore[misc]
        def __init__(self, max_workers: int, **kwargs: object) -> None:
            made.append(max_workers)
            super().__init__(max_workers=min(max_workers, 2), **kwargs)  # never fork hundreds

    monkeypatch.setattr(sim_run, "ProcessPoolExecutor", Pool)
    cfg = load_config(None).replace(
        samples=dataclasses.replace(load_config(None).samples, chunk_size=1000)
    )
    sim_run.run_samples(cfg, out_dir=tmp_path / "one", only=["beam"], n_mot=1000, workers=1000)
    assert made == []  # one chunk: no pool at all
    sim_run.run_samples(cfg, out_dir=tmp_path / "three", only=["beam"], n_mot=3000, workers=1000)
    assert made == [min(3, os.cpu_count() or 1)] or made == []


def test_a_config_nested_too_deep_is_one_line(tmp_path, capsys, monkeypatch):
    # before: a 3000-line RecursionError traceback at 330 levels
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 330 + "]" * 330 + "\n")
    err = _refused(["config", "validate", str(path)], tmp_path, capsys)
    assert "nested more than 32 levels deep" in err


def test_a_config_larger_than_a_megabyte_is_not_read(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 110_000)  # 1.1 MB of comments: valid YAML
    err = _refused(["config", "validate", str(path)], tmp_path, capsys)
    assert "larger than 1024 kB" in err


def _bkg_process(args: list[str], cwd: Path) -> Any:
    """``python -m bkg args`` with 1 GB of address space at most and a 60 s timeout (the old
    code read /dev/zero until memory ran out, and waited on a FIFO for ever)."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bkg", *args], cwd=cwd, capture_output=True, text=True,
        timeout=60, preexec_fn=limit, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder"])
def test_a_config_that_is_not_a_regular_file_is_refused_without_reading(tmp_path, kind):
    import os

    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "fifo.yaml"
        os.mkfifo(path)
    else:
        path = tmp_path / "folder.yaml"
        path.mkdir()
    before = _hashes(tmp_path)
    done = _bkg_process(["fit", "--config", str(path)], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bkg: error: ")
    if kind == "folder":  # click says it first
        assert str(path) in lines[0] and "is a directory" in lines[0]
    else:
        assert lines == [f"bkg: error: {path}: not a regular file; give a YAML file"]
    assert _hashes(tmp_path) == before


def test_a_manifest_nested_too_deep_or_not_a_file_is_one_line(production, capsys):
    import os

    (production / "MANIFEST.json").write_text('{"files": ' + "[" * 100_000 + "]" * 100_000 + "}")
    err = _refused(_fit(production), production.parent, capsys)
    assert "MANIFEST.json: not a MANIFEST (nested too deep to read)" in err
    (production / "MANIFEST.json").unlink()
    os.mkfifo(production / "MANIFEST.json")
    err = _refused(_fit(production), production.parent, capsys)
    assert "MANIFEST.json: not a regular file" in err


@pytest.mark.parametrize(
    "args",
    [
        ["samples", "--n-mot", "abc"],
        ["fit", "--bogus"],
        ["nosuch"],
        ["verify"],
        ["limits", "--calculator", "magic"],
        ["report", "--workers", "0"],
    ],
)
def test_usage_errors_are_one_line(tmp_path, capsys, monkeypatch, args):
    # before: click's Usage / Try / blank / Error block of four lines
    monkeypatch.chdir(tmp_path)
    err = _refused(args, tmp_path, capsys)
    assert err.startswith("bkg: error: bkg") and "--help" in err


def test_a_fit_error_names_the_files_of_the_sample(tiny_production, tmp_path, capsys, monkeypatch):
    # before: "momentum_mismatch: gauss_exp: only 0 events in the fit window (need >= 20)",
    # not saying of which files
    import uproot

    from bkg.ntuple import NtupleWriter, sha256_file

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "g4"
    folder.mkdir()
    manifest = json.loads((tiny_production / "MANIFEST.json").read_text())
    manifest["generator"] = "geant4"
    for entry in manifest["files"]:
        arrays = uproot.open(tiny_production / entry["file"])["events"].arrays(library="np")
        arrays["p_in_rec"][:] = 0.0  # no event in the momentum window
        with NtupleWriter(folder / entry["file"], "beam") as out:
            out.extend(arrays)
        entry["sha256"] = sha256_file(folder / entry["file"])
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    err = _refused(_fit(folder), tmp_path, capsys)
    assert err.startswith(
        f"bkg: error: {folder}/MANIFEST.json, beam sample (beam_0000.root): momentum_mismatch: "
    )
    assert "0 events in the window" in err


def test_nonfinite_drop_says_how_many_events_it_dropped_per_file(tiny_production, tmp_path,
                                                                 caplog):  # fmt: skip
    import logging

    from bkg.ntuple import iterate

    nan = float("nan")
    one = _rewritten(tiny_production / "beam_0000.root", tmp_path / "a.root", e_ecal=nan)
    two = _rewritten(tiny_production / "beam_0000.root", tmp_path / "b.root", x_cm=float("inf"))
    with caplog.at_level(logging.WARNING, logger="bkg"):
        chunks = iterate([one, two], "beam", ["e_ecal", "x_cm"], step_size=700, nonfinite="drop")
        events = sum(len(chunk["e_ecal"]) for chunk in chunks)
    assert events == 2 * 1999
    lines = [r.getMessage() for r in caplog.records]
    assert f"{one}: dropped 1 of 2000 events with NaN/inf values (samples.nonfinite: drop)" in lines
    assert f"{two}: dropped 1 of 2000 events with NaN/inf values (samples.nonfinite: drop)" in lines


@pytest.mark.parametrize("model", ["gauss_exp", "double_cb"])
def test_a_steep_tail_gives_no_overflow_warning(model):
    # before: "RuntimeWarning: overflow encountered in exp" on stderr (the exponential tail
    # exp(alpha^2/2 - alpha s) was computed in the core too, where it overflows for alpha = 40)
    import math
    import warnings

    import numpy as np

    from bkg.fit.shapes import pdf_unnorm, upper_tail

    if model == "gauss_exp":
        params = {"mu": 0.0, "sigmal": 1.0, "alphal": 40.0, "sigmar": 1.0, "alphar": 40.0}
    else:
        params = {"mu": 0.0, "sigma": 1.0, "alphal": 40.0, "nl": 400.0, "alphar": 0.05,
                  "nr": 400.0}  # fmt: skip
    x = np.array([-45.0, -1.0, 0.0, 1.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = pdf_unnorm(x, params, model=model)
        tail = upper_tail(3.0, params, model=model)
    # inside the core the density is the Gaussian exp(-x^2/2) (exact to rounding); beyond
    # alpha the closed forms of the module docstring
    assert values[1:3] == pytest.approx(np.exp(-0.5 * x[1:3] ** 2), rel=1e-14)
    if model == "gauss_exp":
        assert values[0] == pytest.approx(math.exp(40.0**2 / 2 - 40.0 * 45.0), rel=1e-12)
    else:
        n, a = 400.0, 0.05
        for s in (1.0, 3.0):  # A (B + s)^-n, A = (n/a)^n exp(-a^2/2), B = n/a - a, in logs
            closed = math.exp(n * math.log(n / a) - a * a / 2 - n * math.log(n / a - a + s))
            assert values[x == s][0] == pytest.approx(closed, rel=1e-10)
    assert math.isfinite(tail) and tail > 0


def test_samples_check_never_opens_a_fifo(tmp_path):
    # before: `bkg samples check fifo.root --sample beam` waited for ever for a writer
    import os

    path = tmp_path / "beam_0000.root"
    os.mkfifo(path)
    done = _bkg_process(["samples", "check", str(path)], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"{path}: not a regular file (a FIFO or a device); give a ROOT file"
    ]
