"""Hardening (issue 25, part A): containment, locks, killed and concurrent runs, full disk.

Every case asserts the exit code, one line on stderr, and that no file outside the
tool's own folders changed (a snapshot of the sha256 of every file around them).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bkg.cli import main

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reports" / "reference"


# ---------------------------------------------------------------- helpers
def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def _hashes(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """sha256 of every file below ``root`` but those below ``skip`` (symbolic links: target)."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if any(p == s or s in p.parents for s in skip) or p.is_dir():
            continue
        out[str(p.relative_to(root))] = (
            "link:" + os.readlink(p)
            if p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest()
        )
    return out


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


BKG = [sys.executable, "-m", "bkg"]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) `bkg samples` production of the beam sample."""
    folder = tmp_path_factory.mktemp("prod") / "samples"
    main(["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)])
    return folder


def _copy(production: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "work" / "samples"
    shutil.copytree(production, folder)
    return folder


def _set_entry(folder: Path, name: str, *, sha256: str | None = None) -> None:
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    entry = dict(manifest["files"][0])
    entry["file"] = name
    if sha256 is not None:
        entry["sha256"] = sha256
    manifest["files"].append(entry)
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------- 1. containment
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_a_manifest_entry_outside_the_folder_is_refused_and_nothing_deleted(
    production, tmp_path, capsys, kind
):
    # before: `(out_dir / e["file"]).unlink()` deleted the file the entry named, exit 0
    folder = _copy(production, tmp_path)
    victim = tmp_path / "work" / "victim.root"
    victim.write_bytes(b"a file of the user, outside the samples folder")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    name = {"dotdot": "../victim.root", "absolute": str(victim), "symlink": "link.root"}[kind]
    if kind == "symlink":
        (folder / "link.root").symlink_to(victim)
    _set_entry(folder, name, sha256=digest)
    before = _hashes(tmp_path, skip=(folder,))
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)],
        capsys,
    )
    assert code == 2
    line = _one_line(err)
    assert "MANIFEST.json: files[1] key 'file'" in line and "refused" in line, line
    assert victim.read_bytes() == b"a file of the user, outside the samples folder"
    assert _hashes(tmp_path, skip=(folder,)) == before
    # reading follows no such entry either: `bkg fit` refuses it before opening it
    code, err = _run_cli(
        [
            "fit",
            "--samples",
            str(folder),
            "--out",
            str(tmp_path / "fits"),
            "--only",
            "momentum_mismatch",
        ],
        capsys,
    )
    assert code == 2
    assert "refused" in _one_line(err)
    assert _hashes(tmp_path, skip=(folder, tmp_path / "fits")) == before


def test_only_files_the_tool_wrote_are_deleted(production, tmp_path, capsys):
    # a MANIFEST (here a copy edited by hand) listing a user's file inside the folder: a
    # new production of that sample removes its own old files, never that one
    folder = _copy(production, tmp_path)
    mine = folder / "calibration.root"
    mine.write_bytes(b"the user's calibration")
    _set_entry(folder, "calibration.root", sha256=hashlib.sha256(mine.read_bytes()).hexdigest())
    before = _hashes(tmp_path, skip=(folder,))
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)],
        capsys,
    )
    assert code == 0, err
    assert mine.read_bytes() == b"the user's calibration"
    listed = [e["file"] for e in json.loads((folder / "MANIFEST.json").read_text())["files"]]
    assert listed == ["beam_0000.root"]
    assert _hashes(tmp_path, skip=(folder,)) == before


def test_a_file_in_the_way_of_a_chunk_is_not_overwritten(production, tmp_path, capsys):
    # a file where a chunk goes that the tool did not write (not in its .written.json)
    folder = _copy(production, tmp_path)
    (folder / "beam_0001.root").write_bytes(b"not ours")
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "1.5e6", "--workers", "1", "--out", str(folder)],
        capsys,
    )
    assert code == 2
    line = _one_line(err)
    assert "beam_0001.root: not written by `bkg samples`" in line
    assert (folder / "beam_0001.root").read_bytes() == b"not ours"
    assert (folder / "beam_0000.root").read_bytes() == (production / "beam_0000.root").read_bytes()


def test_a_changed_file_of_the_tool_is_not_deleted(production, tmp_path, capsys):
    # the record holds size and mtime: a file the user replaced is no longer the tool's
    folder = _copy(production, tmp_path)
    record = json.loads((folder / ".written.json").read_text())
    assert set(record["files"]) == {"beam_0000.root"} and record["pending"] == {}
    (folder / "beam_0000.root").write_bytes(b"the user's own file now")
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)],
        capsys,
    )
    assert code == 2
    assert "beam_0000.root: not written by `bkg samples`" in _one_line(err)
    assert (folder / "beam_0000.root").read_bytes() == b"the user's own file now"


def test_a_folder_from_before_the_record_adopts_its_own_files(production, tmp_path, capsys):
    # no .written.json (an older version wrote the folder): the MANIFEST's chunk files whose
    # sha256 matches are the tool's; a listed file whose content differs is not
    folder = _copy(production, tmp_path)
    (folder / ".written.json").unlink()
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)],
        capsys,
    )
    assert code == 0, err
    assert set(json.loads((folder / ".written.json").read_text())["files"]) == {"beam_0000.root"}
    (folder / ".written.json").unlink()
    (folder / "beam_0000.root").write_bytes(b"changed by the user")
    code, err = _run_cli(
        ["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)],
        capsys,
    )
    assert code == 2
    assert "beam_0000.root: not written by `bkg samples`" in _one_line(err)
    assert (folder / "beam_0000.root").read_bytes() == b"changed by the user"


def test_a_swap_killed_half_way_gets_the_previous_report_back(tmp_path):
    # kill -9 between the two renames of atomic_dir: reports/<name> missing, the previous
    # report in reports/.<name>.old and the new one complete in a temporary; the next run
    # puts the previous one back before it removes the temporaries
    from bkg import locks
    from bkg.atomic import recover_dir

    reports = tmp_path / "reports"
    (reports / ".ref.old").mkdir(parents=True)
    (reports / ".ref.old" / "table1.json").write_text("previous")
    (reports / ".ref.k2j4h8x_.tmp").mkdir()
    assert recover_dir(reports / "ref")
    assert (reports / "ref" / "table1.json").read_text() == "previous"
    assert not recover_dir(reports / "ref")  # nothing to do when the report is there
    assert [p.name for p in locks.clean_stale(reports, names=["ref"])] == [".ref.k2j4h8x_.tmp"]


def test_a_provenance_entry_outside_the_report_is_refused(tmp_path, capsys):
    ref = tmp_path / "reports" / "ref"
    run = tmp_path / "reports" / "run"
    shutil.copytree(REFERENCE, ref)
    shutil.copytree(REFERENCE, run)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for verify")
    prov = json.loads((run / "provenance.json").read_text())
    prov["outputs_sha256"]["../../secret.txt"] = hashlib.sha256(b"not for verify").hexdigest()
    (run / "provenance.json").write_text(json.dumps(prov))
    before = _hashes(tmp_path, skip=(tmp_path / "reports",))
    code, err = _run_cli(["verify", str(ref), "--run", str(run)], capsys)
    assert code == 2
    line = _one_line(err)
    assert "outputs_sha256 entry" in line and "../../secret.txt" in line and "refused" in line
    assert _hashes(tmp_path, skip=(tmp_path / "reports",)) == before


# ---------------------------------------------------------------- 8. verify checks every file
@pytest.mark.parametrize("name", ["table1.csv", "table1.md", "limits.csv", "figures/fig3_beam.png"])
def test_verify_names_an_edited_file(tmp_path, capsys, name):
    # before: only the JSON values were compared ("798 of 798 values agree", exit 0)
    run = tmp_path / "run"
    shutil.copytree(REFERENCE, run)
    path = run / name
    path.write_bytes(path.read_bytes() + b" ")
    code = 0
    try:
        main(["verify", str(REFERENCE), "--run", str(run)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"{run}/{name}: sha256 differs from provenance.json" in out
    n = len(json.loads((run / "provenance.json").read_text())["outputs_sha256"])
    assert f"{run}: {n - 1} of {n} files match" in out
    assert f"{REFERENCE}: {n} of {n} files match" in out


def test_verify_of_unchanged_copies_checks_every_listed_file(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(REFERENCE, run)
    with pytest.raises(SystemExit) as info:
        main(["verify", str(REFERENCE), "--run", str(run)])
    out = capsys.readouterr().out
    assert info.value.code == 0, out
    listed = json.loads((REFERENCE / "provenance.json").read_text())["outputs_sha256"]
    # every output but the two that carry the time of the run
    assert "provenance.json" not in listed and "index.html" not in listed
    assert {"table1.csv", "table1.md", "limits.csv", "hepdata.tar.gz"} <= set(listed)
    assert f"{run}: {len(listed)} of {len(listed)} files match" in out


# ---------------------------------------------------------------- 4. chunk plan
def test_the_chunk_plan_is_a_generator(default_config):
    import inspect
    import itertools

    from bkg.sim import run

    # 1e30 beam muons are 1e24 chunks: the plan must be consumed lazily (the count is
    # computed, the list never built); the maximum itself is checked by the config
    plan = run.chunk_plan(default_config, "beam", 1e30)
    assert inspect.isgenerator(plan)
    first = list(itertools.islice(plan, 3))
    size = default_config.samples.chunk_size
    assert first == [((0, 0), size, None), ((0, 1), size, None), ((0, 2), size, None)]
    assert run._n_tasks(default_config, "beam", 1e30) == -(-int(1e30) // size)
    # the same plan as before for a small count: every event once, in chunk order
    tasks = list(run.chunk_plan(default_config, "beam", 2.5 * size))
    assert [n for _, n, _ in tasks] == [size, size, size // 2]
    assert len(tasks) == run._n_tasks(default_config, "beam", 2.5 * size)
    masses = default_config.samples.signal_masses_gev
    signal = list(run.chunk_plan(default_config, "signal", 1))
    assert len(signal) == run._n_tasks(default_config, "signal", 1) >= len(masses)


# ---------------------------------------------------------------- 6. full disk
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_while_writing_samples_is_one_line(tmp_path, capsys, monkeypatch, workers):
    # before: a 64-line traceback (OSError Errno 28 inside uproot, through concurrent.futures)
    from bkg import ntuple

    def full(self, chunk):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ntuple.NtupleWriter, "extend", full)  # the forked workers inherit it
    folder = tmp_path / "samples"
    before = _hashes(tmp_path, skip=(folder,))
    code, err = _run_cli(
        [
            "samples",
            "--only",
            "beam",
            "--n-mot",
            "2000",
            "--workers",
            workers,
            "--out",
            str(folder),
        ],
        capsys,
    )
    assert code == 2
    line = _one_line(err)
    assert "beam_0000.root: cannot write (no space left on the device" in line, line
    assert not list(folder.glob("*.root")) and not list(folder.glob(".*.tmp"))
    assert json.loads((folder / "MANIFEST.json").read_text())["files"] == []
    assert _hashes(tmp_path, skip=(folder,)) == before


# ---------------------------------------------------------------- 2. locks
def test_a_locked_folder_is_refused_in_one_line_or_waited_for(production, tmp_path, capsys):
    from bkg import locks

    folder = _copy(production, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from bkg import locks\n"
            "with locks.hold([locks.Lock(Path(sys.argv[1]))]):\n"
            "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
        ), str(folder), "3"],
        env=_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = _hashes(tmp_path)
        os.environ[locks.ENV_TIMEOUT] = "0"
        try:
            code, err = _run_cli(
                ["samples", "--only", "beam", "--n-mot", "2000", "--workers", "1", "--out", str(folder)],
                capsys,
            )  # fmt: skip
        finally:
            del os.environ[locks.ENV_TIMEOUT]
        assert code == 2
        line = _one_line(err)
        assert f"{folder}: in use by another bkg run (pid {holder.pid})" in line, line
        assert _hashes(tmp_path) == before
        # with time to wait: one line saying so, then the run proceeds once the lock is free
        t0 = time.monotonic()
        code, err = _run_cli(
            [
                "samples",
                "--only",
                "beam",
                "--n-mot",
                "2000",
                "--workers",
                "1",
                "--out",
                str(folder),
            ],
            capsys,
        )
        assert code == 0, err
        assert time.monotonic() - t0 > 1.0
        assert err.startswith(f"bkg: waiting for {folder}: in use by another bkg run")
    finally:
        holder.kill()
        holder.wait()


def test_locks_are_reentrant_and_shared_locks_create_nothing(tmp_path):
    from bkg import locks

    user = tmp_path / "geant4"
    user.mkdir()
    with locks.hold([locks.Lock(user, exclusive=False)]):
        pass
    assert list(user.iterdir()) == []  # a reader leaves a user's folder as it was
    out = tmp_path / "fits"
    with locks.hold([locks.Lock(out), locks.Lock(out, exclusive=False)]):
        with locks.hold([locks.Lock(out)]), locks.hold([locks.Lock(out, exclusive=False)]):
            assert locks.holds(out)
        assert locks.holds(out)
    assert not locks.holds(out)


def test_stale_temporaries_are_the_only_hidden_files_removed(tmp_path):
    from bkg import locks

    (tmp_path / ".table1.json.k2j4h8x_.tmp").write_text("left by kill -9")
    (tmp_path / ".ref.a1b2c3d4.tmp").mkdir()
    (tmp_path / ".ref.old").mkdir()
    (tmp_path / ".other.a1b2c3d4.tmp").mkdir()
    (tmp_path / ".beam_0003.root.tmp").write_text("partial ntuple")
    for keep in (".notes.tmp", "data.a1b2c3d4.tmp", ".bkg.lock", ".stage.json", "x.json"):
        (tmp_path / keep).write_text("keep")
    removed = locks.clean_stale(tmp_path, names=["ref"])
    assert sorted(p.name for p in removed) == [".ref.a1b2c3d4.tmp", ".ref.old"]
    removed = locks.clean_stale(tmp_path)
    assert sorted(p.name for p in removed) == [
        ".beam_0003.root.tmp", ".other.a1b2c3d4.tmp", ".table1.json.k2j4h8x_.tmp"
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".notes.tmp", "data.a1b2c3d4.tmp", ".bkg.lock", ".stage.json", "x.json"]
    )


# ---------------------------------------------------------------- 5, 7: kill -9 and SIGTERM
def _children(pid: int) -> list[int]:
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat_file.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_workers_die_with_a_killed_samples_run(tmp_path):
    # before: kill -9 of `bkg samples --workers 2` left both workers running (parent: PID 1)
    cfg = tmp_path / "chunks.yaml"
    cfg.write_text("samples:\n  chunk_size: 100000\n")
    proc = subprocess.Popen(
        [*BKG, "samples", "--config", str(cfg), "--only", "beam", "--n-mot", "3e7",
         "--workers", "2", "--out", str(tmp_path / "samples")],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)  # they are generating chunks now
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)]
    finally:
        for w in workers:  # only the processes this test started
            if _alive(w):
                os.kill(w, signal.SIGKILL)
    # the next run removes what the killed one was writing, and makes the production
    code = subprocess.run(
        [*BKG, "samples", "--config", str(cfg), "--only", "beam", "--n-mot", "2e5",
         "--workers", "2", "--out", str(tmp_path / "samples")],
        env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == [".bkg.lock", ".stage.json", ".written.json", "MANIFEST.json",
                     "beam_0000.root", "beam_0001.root"]  # fmt: skip


@pytest.mark.slow
def test_sigterm_is_one_line_and_exit_143(tmp_path):
    # before: SIGTERM killed the run at once (exit -15), leaving its temporaries
    cfg = tmp_path / "chunks.yaml"
    cfg.write_text("samples:\n  chunk_size: 100000\n")
    folder = tmp_path / "samples"
    before = _hashes(tmp_path)
    proc = subprocess.Popen(
        [*BKG, "samples", "--config", str(cfg), "--only", "beam", "--n-mot", "3e7",
         "--workers", "1", "--out", str(folder)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(folder.glob(".beam_*.root.tmp")):
            time.sleep(0.05)  # until it writes its first chunk
        assert list(folder.glob(".beam_*.root.tmp")), "no chunk was being written"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert (
        _one_line(err)
        == "bkg: terminated (SIGTERM); outputs of the unfinished stage were not written"
    )
    assert not list(folder.glob("*.root")) and not list(folder.glob(".*.tmp"))
    assert json.loads((folder / "MANIFEST.json").read_text())["files"] == []
    assert _hashes(tmp_path, skip=(folder,)) == before


# ---------------------------------------------------------------- 2. concurrent reports
TINY = """\
name: {name}
n_mot: 1.0e10
samples:
  n_mot: 2.0e5
  hadron_events: 20000
  leading_hadron_events: 5000
  dimuon_events: 5000
  signal_events_per_mass: 1000
  signal_masses_gev: [0.1, 1.0]
signal:
  masses_gev: {{min: 0.01, max: 1.0, points: 4}}
statistics:
  n_toys: 200
"""


def _levels(table1: Path) -> dict[str, float]:
    return {s["name"]: s["level_per_mot"] for s in json.loads(table1.read_text())["sources"]}


@pytest.mark.slow
def test_two_reports_on_the_same_folders_never_mix(tmp_path):
    # before: both exited 0 and the first report's Table I held the second config's
    # hadron-decay level while its provenance named the first config
    a_cfg, b_cfg = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a_cfg.write_text(TINY.format(name="conc-a"))
    # the only difference: twice the pions (and kaons) per muon. The hadron-decay level is
    # (pi_per_mu x the decay probability per pion), so it doubles exactly (the samples of
    # the same seed are the same events); every other source is the same to the last bit
    b_cfg.write_text(TINY.format(name="conc-b") + "beam:\n  pi_per_mu: 2.0e-6\n")
    samples, fits, reports = tmp_path / "samples", tmp_path / "fits", tmp_path / "reports"
    # temporaries left by a killed earlier run: removed by the next one that holds the lock
    (reports / ".conc-a.k2j4h8x_.tmp").mkdir(parents=True)
    (reports / ".conc-a.old").mkdir()
    fits.mkdir()
    (fits / ".hadron_decay.json.k2j4h8x_.tmp").write_text("{")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the tool's")
    before = _hashes(tmp_path, skip=(samples, fits, reports))

    logs = tmp_path / "logs"
    logs.mkdir()

    def report(cfg: Path, tag: str, **env: str) -> subprocess.Popen[str]:
        # the output goes to files: a full pipe would stop a run that holds the locks
        return subprocess.Popen(
            [*BKG, "report", "--config", str(cfg), "--samples", str(samples), "--fits",
             str(fits), "--out", str(reports), "--workers", "1"],
            env=_env(**env), stdout=(logs / f"{tag}.out").open("w"),
            stderr=(logs / f"{tag}.err").open("w"), text=True,
        )  # fmt: skip

    first = report(a_cfg, "a")
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (samples / ".bkg.lock").exists():
            time.sleep(0.1)
        time.sleep(3.0)
        refused = report(b_cfg, "refused", BKG_LOCK_TIMEOUT="0")  # told not to wait
        refused.wait(timeout=300)
        err = (logs / "refused.err").read_text()
        assert refused.returncode == 2, err
        assert "in use by another bkg run" in _one_line(err)
        assert first.poll() is None, "the first report ended before the second started"
        second = report(b_cfg, "b")  # waits for the first, then makes its own samples and fits
        second.wait(timeout=3600)
        first.wait(timeout=3600)
    finally:
        if first.poll() is None:
            first.kill()
    err_a, err_b = (logs / "a.err").read_text(), (logs / "b.err").read_text()
    assert first.returncode == 0, err_a
    assert second.returncode == 0, err_b
    assert "bkg: waiting for" in err_b
    a, b = _levels(reports / "conc-a" / "table1.json"), _levels(reports / "conc-b" / "table1.json")
    # the hadron-decay ratio is a ratio of two sums of the same events: equal to 2 up to
    # rounding (1e-12); every other row is the same number
    assert b["hadron_decay"] == pytest.approx(2 * a["hadron_decay"], rel=1e-12)
    assert {k: v for k, v in a.items() if k != "hadron_decay"} == {
        k: v for k, v in b.items() if k != "hadron_decay"
    }
    for name in ("conc-a", "conc-b"):
        prov = json.loads((reports / name / "provenance.json").read_text())
        assert prov["config"]["name"] == name
    assert sorted(p.name for p in reports.glob(".*")) == [".conc-a.lock", ".conc-b.lock"]
    assert not list(fits.glob(".*.tmp"))
    assert _hashes(tmp_path, skip=(samples, fits, reports, logs)) == before


# ---------------------------------------------------------------- 3. killed `bkg fit`
SLOW_WRITES = """\
import sys, time
import bkg.atomic as atomic
write_text = atomic.write_text
def slow(path, text):
    out = write_text(path, text)
    time.sleep(1.0)  # one second after every file: time to kill it between two files
    return out
atomic.write_text = slow
from bkg.cli import main
main(sys.argv[1:])
"""


@pytest.mark.acceptance
@pytest.mark.slow
def test_a_killed_fit_never_gives_a_mixed_table(tmp_path):
    # before: the five fits/*.json were written one by one; kill -9 in between left a mix
    # of two configs that `bkg table` (with --config of either) accepted
    x_cfg, y_cfg = tmp_path / "x.yaml", tmp_path / "y.yaml"
    x_cfg.write_text(TINY.format(name="kill-x"))
    y_cfg.write_text(TINY.format(name="kill-y") + "signal_box:\n  e_cal_max_gev: 25.0\n")
    samples = tmp_path / "samples"

    def bkg(*args: str, slow: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", SLOW_WRITES] if slow else BKG
        return subprocess.run(
            [*cmd, *args], env=_env(), capture_output=True, text=True, timeout=1800
        )

    def table(cfg: Path, fits: Path, name: str) -> tuple[int, str, dict[str, float] | None]:
        r = bkg("table", "--config", str(cfg), "--fits", str(fits), "--out",
                str(tmp_path / "reports"), "--name", name)  # fmt: skip
        path = tmp_path / "reports" / name / "table1.json"
        return r.returncode, r.stderr, (_levels(path) if r.returncode == 0 else None)

    made = bkg("samples", "--config", str(x_cfg), "--out", str(samples), "--workers", "1")
    assert made.returncode == 0, made.stderr
    clean = {}
    for cfg in (x_cfg, y_cfg):
        fits = tmp_path / f"fits-{cfg.stem}"
        r = bkg("fit", "--config", str(cfg), "--samples", str(samples), "--out", str(fits))
        assert r.returncode == 0, r.stderr
        code, err, levels = table(cfg, fits, f"clean-{cfg.stem}")
        assert code == 0, err
        clean[cfg.stem] = levels
    assert clean["x"] != clean["y"]

    work = tmp_path / "fits"
    outcomes: dict[str, dict[str, str]] = {}
    # kill -9 before the first new file, right after the first, second and fourth file
    # (momentum_mismatch, hermeticity, hadron_decay, punch_through, dimuon, then the record;
    # each write is followed by a second's sleep, so the kill lands before the next file),
    # and not at all
    for moment in ("before", "momentum_mismatch", "hermeticity", "punch_through", "never"):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(tmp_path / "fits-x", work)
        watched = work / f"{moment}.json"
        stamp = watched.stat().st_mtime_ns if watched.exists() else 0
        untouched = (work / "momentum_mismatch.json").stat().st_mtime_ns
        proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_WRITES, "fit", "--config", str(y_cfg), "--samples",
             str(samples), "--out", str(work)],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            if moment == "before":
                time.sleep(8.0)  # importing and fitting: nothing written yet
                assert (work / "momentum_mismatch.json").stat().st_mtime_ns == untouched
            elif moment == "never":
                assert proc.wait(timeout=1800) == 0
            else:
                deadline = time.monotonic() + 900
                while watched.stat().st_mtime_ns == stamp and proc.poll() is None:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
        finally:
            proc.kill()
            proc.wait()
        outcomes[moment] = {}
        for cfg in (x_cfg, y_cfg):
            code, err, levels = table(cfg, work, f"after-{moment}-{cfg.stem}")
            if code == 0:  # the whole set of one of the two clean runs, never a mix
                assert levels in (clean["x"], clean["y"]), (moment, cfg.stem, levels)
                outcomes[moment][cfg.stem] = "x" if levels == clean["x"] else "y"
            else:
                assert code == 2, err
                _one_line(err)
                outcomes[moment][cfg.stem] = "refused"
    # before any new file: the old set (config y is another setup: refused); after the
    # whole set and its record: the new one; once any file is written and the record is
    # not: refused for both configs. (The first write of each tail source precedes its
    # closure, which rewrites it before the record: even momentum_mismatch.json, the same
    # for x and y in the end, differs from x's at that moment.)
    assert outcomes["before"] == {"x": "x", "y": "refused"}, outcomes
    assert outcomes["momentum_mismatch"] == {"x": "refused", "y": "refused"}, outcomes
    assert outcomes["hermeticity"] == {"x": "refused", "y": "refused"}, outcomes
    assert outcomes["punch_through"] == {"x": "refused", "y": "refused"}, outcomes
    assert outcomes["never"] == {"x": "refused", "y": "y"}, outcomes
    # a new `bkg fit` removes the temporaries a killed one left, and makes a whole set
    (work / ".dimuon.json.k2j4h8x_.tmp").write_text("{")
    r = bkg("fit", "--config", str(y_cfg), "--samples", str(samples), "--out", str(work))
    assert r.returncode == 0, r.stderr
    assert not list(work.glob(".*.tmp"))
    assert table(y_cfg, work, "final-y")[2] == clean["y"]
