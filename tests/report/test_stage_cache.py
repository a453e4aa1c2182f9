"""Reuse of the report's stages (issue 27): a rerun with nothing changed runs no stage
again, says so, and writes the very bytes of a fresh run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bkg import cache


def _stage(folder: Path, calls: list[int], text: str = "a") -> dict[str, int]:
    calls.append(1)
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "x.txt").write_text(text)
    (folder / "y.json").write_text('{"y": 1}')
    return {"n": len(calls)}


def _run(prev: Path | None, new: Path, key: str, calls: list[int], text: str = "a"):
    new.mkdir()
    (new / "before.txt").write_text("written by an earlier stage")
    sc = cache.StageCache(prev, new)
    value, reused = sc.run("s", key, lambda: _stage(new, calls, text))
    sc.save()
    return value, reused


def test_a_stage_with_the_same_key_is_copied_not_run(tmp_path):
    calls: list[int] = []
    a, b, c, d = (tmp_path / x for x in "abcd")
    value, reused = _run(None, a, "k1", calls)
    assert (value, reused, len(calls)) == ({"n": 1}, False, 1)
    # only the stage's own files are recorded, not those of earlier stages
    record = json.loads((a / cache.STAGES_RECORD).read_text())
    assert sorted(record["s"]["outputs"]) == ["sub/x.txt", "y.json"]
    value, reused = _run(a, b, "k1", calls)
    assert (value, reused, len(calls)) == ({"n": 1}, True, 1)
    for rel in ("sub/x.txt", "y.json"):
        assert (b / rel).read_bytes() == (a / rel).read_bytes()
    # another key runs the stage again
    _, reused = _run(b, c, "k2", calls)
    assert not reused and len(calls) == 2
    # an output of the previous report changed since it was recorded: run again
    (c / "sub" / "x.txt").write_text("b")
    _, reused = _run(c, d, "k2", calls)
    assert not reused and len(calls) == 3


def test_an_unreadable_record_is_a_miss(tmp_path):
    calls: list[int] = []
    _run(None, tmp_path / "a", "k", calls)
    (tmp_path / "a" / ".stage-s.pkl").write_bytes(b"not a pickle")
    _, reused = _run(tmp_path / "a", tmp_path / "b", "k", calls)
    assert not reused and len(calls) == 2


@pytest.mark.slow
def test_report_rerun_reuses_every_stage_with_identical_bytes(tmp_path, monkeypatch):
    # the reference config (1e6 MOT): the second run reuses every stage (the old code ran
    # everything after the fits again) and writes the same bytes as the first, except the
    # provenance's creation time (and index.html, which shows it)
    from bkg.config import load_config
    from bkg.report.pipeline import run_report
    from bkg.report.provenance import TIMESTAMP_KEY, file_hashes

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    cfg = load_config(root / "tests" / "data" / "reference.yaml")
    first = run_report(cfg, out_root="reports")
    keep = tmp_path / "first"
    shutil.copytree(first.folder, keep)
    states: list[tuple[str, str]] = []
    second = run_report(cfg, out_root="reports", progress=lambda s, st: states.append((s, st)))
    assert set(second.stages.values()) == {"reused"}, second.stages
    assert ("limits", "reused") in states
    skip = ("provenance.json", "index.html")
    assert file_hashes(second.folder, exclude=skip) == file_hashes(keep, exclude=skip)
    pa, pb = (json.loads((d / "provenance.json").read_text()) for d in (keep, second.folder))
    pa.pop(TIMESTAMP_KEY)
    pb.pop(TIMESTAMP_KEY)
    assert pa == pb


def test_side_process_returns_the_result_or_raises_the_error():
    # Fig. 2's curves run in a spawned process while the other stages run: the result
    # comes back whole (a 4 x 4 matrix's inverse, computed there) and an error is raised
    # here as it was raised there
    import numpy as np

    from bkg.report.pipeline import _SideProcess

    m = np.arange(16.0).reshape(4, 4) + 10 * np.eye(4)
    with _SideProcess(True) as side:
        inv = side.start("numpy.linalg", "inv", m)
        bad = side.start("numpy.linalg", "inv", np.zeros((2, 3)))
        assert len(side.procs) == 2
        np.testing.assert_array_equal(inv(), np.linalg.inv(m))
        with pytest.raises(np.linalg.LinAlgError):
            bad()
    with _SideProcess(False) as side:  # disabled: called here
        np.testing.assert_array_equal(side.start("numpy.linalg", "inv", m)(), np.linalg.inv(m))
        assert side.procs == []


def test_side_processes_fork_from_the_server_in_the_parents_folder_and_environment(
    tmp_path, monkeypatch
):
    # where this process cannot be forked safely (threads, TensorFlow), `bkg report`
    # starts the fork server before its samples and side processes are forks of it
    # (their parent is the server, not this process) with the server's imports; they
    # still run in this process's folder and environment as they are now
    from bkg import pipes
    from bkg.report.pipeline import _SideProcess

    monkeypatch.setattr(pipes, "fork_is_safe", lambda: False)
    pipes.start_side_server()
    assert pipes.side_context().get_start_method() == "forkserver"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BKG_PDF", "all")
    with _SideProcess(True) as side:
        parent = side.start("os", "getppid")
        cwd = side.start("os", "getcwd")
        pdf = side.start("bkg.plotting", "pdf_mode")
        chain = side.start_chain([("os", "getcwd", (), True), ("os", "getppid", (), True)])
        assert parent() != os.getpid() and chain[1]() != os.getpid()
        assert cwd() == chain[0]() == str(tmp_path)
        assert pdf() == "all"


def test_side_processes_are_forks_of_this_process_while_that_is_safe(tmp_path):
    # `bkg report` and `bkg fit` start their side processes before importing zfit, with
    # one thread: those are forks of the report's process (nothing imported again), which
    # do not hold its folder locks (a parent killed with -9 frees its folders at once)
    import subprocess
    import sys

    code = f"""
import os, threading
from pathlib import Path
from bkg import locks, pipes
from bkg.report.pipeline import _SideProcess
assert pipes.fork_is_safe(), "one thread, no TensorFlow: a fork is safe"
folder = Path({str(tmp_path)!r}) / "samples"
with locks.hold([locks.Lock(folder)]), _SideProcess(True) as side:
    assert pipes.side_context().get_start_method() == "fork"
    parent = side.start("os", "getppid")
    held = side.start("bkg.locks", "holds", folder)
    assert parent() == os.getpid(), "a fork of this process"
    assert held() is False, "the child does not hold the parent's lock"
t = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
t.start()
assert not pipes.fork_is_safe(), "a second thread: no fork"
print("OK")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"


def test_side_chain_runs_its_tasks_in_one_process_in_turn():
    # Figs. 2, 3, 5 and the decay option run one after the other in ONE side process; a
    # task it has not started when asked for is computed here instead (and skipped
    # there), and so are the last queued ones while this process waits for a result.
    # Results come back whole, errors are raised here as they were raised there, a task
    # not wanted runs here.
    import time

    import numpy as np

    from bkg.report.pipeline import _SideProcess

    m = np.arange(16.0).reshape(4, 4) + 10 * np.eye(4)
    tasks = [
        ("os", "getpid", (), True),
        ("numpy.linalg", "inv", (np.zeros((2, 3)),), True),
        ("time", "sleep", (3.0,), True),
        ("os", "getpid", (), True),
        ("os", "getpid", (), True),
        ("numpy.linalg", "det", (m,), False),
    ]
    with _SideProcess(True) as side:
        first, bad, slow, fourth, fifth, det = side.start_chain(tasks)
        assert len(side.procs) == 1
        claimed = side.claimed[0]
        deadline = time.monotonic() + 120
        while not claimed[2] and time.monotonic() < deadline:  # sleeping in the third
            time.sleep(0.05)
        assert first() == side.procs[0].pid  # done there
        with pytest.raises(np.linalg.LinAlgError):
            bad()  # raised there, re-raised here
        assert fourth() == os.getpid()  # not started there: taken back, done here
        assert slow() is None  # while waiting for it, this process did the fifth
        assert fifth() == os.getpid()
        assert det() == np.linalg.det(m)
    with _SideProcess(False) as side:  # disabled: every task called here
        calls = side.start_chain(tasks)
        assert side.procs == []
        assert calls[0]() == os.getpid()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="os.getpriority is POSIX")
@pytest.mark.parametrize("fits_fresh", [False, True])
def test_side_chain_starts_before_the_fits_at_low_priority_when_they_will_run(
    monkeypatch, tmp_path, fits_fresh
):
    # When the fits stage will run, no report stage after it can be reused (their key
    # holds the fits' files): Figs. 2, 3, 5 and the decay option start before the fits,
    # niced, so they take only the CPU the fits leave idle. With reusable fits nothing
    # starts early (the stage cache decides later what runs).
    from bkg.config import load_config
    from bkg.report import pipeline

    started: list[int] = []

    def fake_chain(self, tasks, *, nice=0):
        started.append(nice)
        assert all(when for *_rest, when in tasks)  # every task: no stage can be reused
        return [lambda: None] * len(tasks)

    monkeypatch.setattr(pipeline._SideProcess, "start_chain", fake_chain)
    monkeypatch.setattr(pipeline, "run_samples_stage", lambda cfg, **kw: ("ran", "k"))
    monkeypatch.setattr(pipeline, "run_fits_stage", lambda cfg, **kw: ("ran", "k"))
    monkeypatch.setattr(pipeline, "fits_key", lambda cfg, samples_dir: "key")
    monkeypatch.setattr(pipeline.cache, "is_fresh", lambda folder, key: fits_fresh)
    monkeypatch.setattr(pipeline, "samples_hashes", lambda _d: {})
    run = pipeline._StageRunner(load_config(None), lambda *a: None)
    with pipeline._SideProcess(True) as side:
        early = pipeline._input_stages(
            run, samples_dir=tmp_path / "s", fits_dir=tmp_path / "f", workers=2,
            scheduler=None, advance=None, side=side,
        )  # fmt: skip
    assert (early is None) == fits_fresh
    assert started == ([] if fits_fresh else [19])


def test_a_niced_side_chain_runs_at_that_priority():
    import time

    from bkg.report.pipeline import _SideProcess

    with _SideProcess(True) as side:
        tasks = [("os", "getpid", (), True), ("os", "getpriority", (os.PRIO_PROCESS, 0), True)]
        pid, prio = side.start_chain(tasks, nice=19)
        deadline = time.monotonic() + 120
        while not side.claimed[0][1] and time.monotonic() < deadline:  # both taken there
            time.sleep(0.05)
        assert pid() != os.getpid()
        assert prio() == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 19)


def test_an_early_chain_gets_its_priority_back_or_is_not_waited_for(monkeypatch):
    # After the fits the niced chain gets the report's priority back. Where raising a
    # priority is not permitted, the report's process does a task the chain has started
    # itself instead of waiting for a process that other jobs may starve.
    import time

    from bkg.report import pipeline

    def started(side, index):
        deadline = time.monotonic() + 120
        while not side.claimed[0][index] and time.monotonic() < deadline:
            time.sleep(0.05)

    with pipeline._SideProcess(True) as side:
        (slow,) = side.start_chain([("time", "sleep", (30.0,), True)], nice=19)
        started(side, 0)
        pid = side.procs[0].pid
        if os.geteuid() == 0:  # root may raise a priority: the chain is waited for
            side.full_priority()
            assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0)
            assert not side.chains[0].not_waited

        def refuse(*args):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(pipeline.os, "setpriority", refuse)
        side.full_priority()
        assert side.chains[0].not_waited
        t0 = time.monotonic()
        monkeypatch.setattr(time, "sleep", lambda s: None)  # done here: at once
        assert slow() is None
        assert time.monotonic() - t0 < 10  # not the 30 s of the side process


def test_a_chain_not_waited_for_that_died_leaves_its_task_here(monkeypatch):
    # the niced chain could not get its priority back and was then killed mid-task: the
    # report's process does the task itself (the pipe's end is an EOF, not a result)
    import time

    from bkg.report import pipeline

    with pipeline._SideProcess(True) as side:
        (slow,) = side.start_chain([("time", "sleep", (30.0,), True)], nice=19)
        deadline = time.monotonic() + 120
        while not side.claimed[0][0] and time.monotonic() < deadline:
            time.sleep(0.05)

        def refuse(*args):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(pipeline.os, "setpriority", refuse)
        side.full_priority()
        side.procs[0].terminate()
        side.procs[0].join()
        monkeypatch.setattr(time, "sleep", lambda s: None)  # done here: at once
        assert slow() is None


def test_a_forked_chain_is_ended_by_the_report_that_handles_sigterm(tmp_path):
    # `bkg report` routes SIGTERM to its recording handler (bkg.interrupt); a side chain
    # forked from it must not inherit that handler: the report ends an unfinished chain
    # with SIGTERM on an error or a Ctrl-C, and a chain that turned it into a
    # KeyboardInterrupt, caught by its task, went on to the next task (a run interrupted
    # during the fits then hung at its end)
    import subprocess
    import sys

    code = """
import time
from bkg import interrupt, pipes
from bkg.report.pipeline import _SideProcess
interrupt.install()
t0 = time.monotonic()
with _SideProcess(True) as side:
    assert pipes.side_context().get_start_method() == "fork"
    side.start_chain([("time", "sleep", (60.0,), True), ("time", "sleep", (60.0,), True)])
    deadline = time.monotonic() + 60
    while not side.claimed[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    proc = side.procs[0]
print("ENDED", proc.exitcode, round(time.monotonic() - t0))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr
    word, exitcode, seconds = out.stdout.split()
    assert word == "ENDED"
    assert int(exitcode) == -15  # killed by SIGTERM at once, not after its two tasks
    assert int(seconds) < 30


def test_the_fits_key_changes_with_the_simulation_code_the_closure_runs(monkeypatch, tmp_path):
    # the fits stage also runs the closure's biased simulation (bkg.sim.biasing, the beam
    # generator, bkg.physics): a change there must not reuse fits made by the old code
    from bkg.config import load_config
    from bkg.report import pipeline

    real = cache.code_digest
    monkeypatch.setattr(pipeline, "samples_hashes", lambda _d: {"beam_0000.root": "0" * 64})
    cfg = load_config(None)
    before = pipeline.fits_key(cfg, tmp_path)
    for changed in ("sim", "physics"):

        def digest(*modules: str, changed: str = changed, **kw: Any) -> str:
            return real(*modules, **kw) + ("x" if changed in modules else "")

        monkeypatch.setattr(cache, "code_digest", digest)
        assert pipeline.fits_key(cfg, tmp_path) != before, changed
    monkeypatch.setattr(cache, "code_digest", real)
    assert pipeline.fits_key(cfg, tmp_path) == before


def test_figure_code_is_not_hashed_into_the_samples_and_fits_keys(monkeypatch, tmp_path):
    # bkg/sim/figures.py draws the report's Figs. 2, 3 and 5: neither the samples nor the
    # fits stage runs it, so a figure change does not re-simulate them. The exclusion is
    # real (a path typo would exclude nothing) and only that file is dropped.
    from bkg.config import load_config
    from bkg.report import pipeline

    real = cache.code_digest
    assert real("sim", exclude=("sim/figures.py",)) != real("sim")
    assert real("sim", exclude=("sim/nothing.py",)) == real("sim")
    seen: list[tuple[str, ...]] = []

    def digest(*modules: str, exclude: tuple[str, ...] = ()) -> str:
        seen.append(exclude)
        return real(*modules, exclude=exclude)

    monkeypatch.setattr(cache, "code_digest", digest)
    monkeypatch.setattr(pipeline, "samples_hashes", lambda _d: {"beam_0000.root": "0" * 64})
    cfg = load_config(None)
    pipeline.samples_key(cfg)
    pipeline.fits_key(cfg, tmp_path)
    assert seen == [("sim/figures.py",), ("sim/figures.py",)]


def test_forced_escape_events_are_the_fits_stage_s_not_the_samples():
    # detector.escape.forced_events sizes the direct estimate of the fits stage: changing
    # it must neither refuse nor re-simulate the samples, and must re-run the fits
    from bkg.config import from_dict

    a = from_dict(None)
    b = from_dict({"detector": {"escape": {"forced_events": 12345}}})
    c = from_dict({"detector": {"escape": {"leading_k_long_fraction": 0.2}}})
    assert cache.samples_config_key(a) == cache.samples_config_key(b)
    assert cache.fits_config_key(a) != cache.fits_config_key(b)
    assert cache.samples_config_key(a) != cache.samples_config_key(c)  # a sample's physics
    assert "forced_events" in a.to_dict()["detector"]["escape"]  # the slice copied, not cut
