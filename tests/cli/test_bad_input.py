"""Bad input that must neither destroy data nor leave half-written output: each case ends
in one line on stderr and exit code 2, and the folder it pointed at is as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
    """Exit code 2 and one line of error: ours, or click's for a bad option value
    (its usage block, then one "Error: ..." line)."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 or (lines[0].startswith("Usage:") and lines[-1].startswith("Error:")), (
        err
    )


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
    from bkg.config import from_dict, load_config
    from bkg.report import cache
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

    from bkg.config import from_dict
    from bkg.report import cache
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
