"""Bad output conditions (issue 8): a folder that cannot be written, a full disk,
Ctrl-C in the middle of a run. Each ends in one line and exit code 2 (130 for
Ctrl-C), and leaves the previous outputs intact with no partial file."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bkg.atomic import atomic_dir, write_json, write_text
from bkg.cli import main
from bkg.errors import OutputError

pytestmark = pytest.mark.bad_input


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".old")))


def test_output_folder_blocked_by_a_file(tmp_path, capsys, monkeypatch):
    # the tests run as root in CI, so chmod cannot make a folder unwritable; a file
    # where the output folder should be fails the same way for every user
    monkeypatch.chdir(tmp_path)  # not the working tree's samples/, whatever made them
    (tmp_path / "reports").write_text("not a folder")
    code, err = _run_cli(["sensitivity", "--out", str(tmp_path / "reports" / "sub")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "reports" in err and "cannot write" in err


def test_permission_denied_is_explained(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(OutputError, match=r"table1\.json: cannot write \(permission denied"):
        write_json(tmp_path / "table1.json", {"a": 1})


def test_disk_full_keeps_the_previous_file(tmp_path, monkeypatch):
    target = write_text(tmp_path / "table1.md", "previous")
    real_replace = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match="no space left on the device"):
        write_text(target, "new table")
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_text() == "previous\n"
    assert _leftovers(tmp_path) == []


def test_disk_full_in_the_middle_of_a_report_folder(tmp_path):
    report = tmp_path / "na64mu-default"
    report.mkdir()
    (report / "table1.json").write_text("previous")
    with pytest.raises(OutputError, match="no space left"), atomic_dir(report) as tmp:
        write_text(tmp / "a.txt", "first output")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (report / "table1.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["na64mu-default"]


@pytest.mark.slow
def test_ctrl_c_during_report_leaves_the_previous_report(tmp_path):
    # a previous report, then `bkg report` interrupted by SIGINT while it runs
    previous = tmp_path / "reports" / "na64mu-default"
    previous.mkdir(parents=True)
    (previous / "table1.json").write_text("previous report")
    config = tmp_path / "small.yaml"
    config.write_text("samples: {n_mot: 2.0e6, signal_events_per_mass: 2000}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bkg", "report", "--config", str(config)],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(6.0)  # inside the samples or fits stage
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    # exit code 130, or death by SIGINT: when extension code (TensorFlow loading) swallowed
    # the KeyboardInterrupt, CPython re-sends SIGINT to itself at exit (a shell shows 130 too)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "interrupted" in err.strip().splitlines()[-1]
    assert (previous / "table1.json").read_text() == "previous report"
    assert _leftovers(tmp_path) == []
    # no half-written sample: the MANIFEST (rewritten after each sample) lists only complete
    # files with their hashes (read_manifest checks them); a file finished after the last
    # MANIFEST write is complete too (renamed into place) and simply not listed yet
    if (tmp_path / "samples" / "MANIFEST.json").exists():
        from bkg.ntuple import read_manifest

        for entry in read_manifest(tmp_path / "samples")["files"]:
            assert (tmp_path / "samples" / entry["file"]).is_file()


def test_an_interrupt_swallowed_inside_a_stage_stops_the_run_at_the_next_stage(monkeypatch):
    # C++ extensions (TensorFlow while it loads) can clear the KeyboardInterrupt of a
    # Ctrl-C; the recorded request still stops `bkg report` before the next stage
    from bkg import interrupt

    def swallowing_stage() -> None:
        try:
            interrupt._on_sigint(2, None)
        except KeyboardInterrupt:
            pass  # what such an extension does

    monkeypatch.setattr(interrupt, "_requested", False)
    swallowing_stage()
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()
