"""zfit's import must not take stdout/stderr with it when it is interrupted."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A module that does what zfit does while TensorFlow loads: fds 1 and 2 on /dev/null,
# restored only if the import finishes; here it is interrupted (Ctrl-C) in between.
_FAKE = """
import os
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
os.dup2(null, 2)
raise KeyboardInterrupt
"""


def _run(tmp_path, importer: str) -> subprocess.CompletedProcess:
    (tmp_path / "silencer.py").write_text(_FAKE)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from bkg.fit._zfit import import_keeping_fds
        try:
            {importer}
        except KeyboardInterrupt:
            print("interrupted-out", flush=True)
            print("interrupted-err", file=sys.stderr, flush=True)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_interrupted_import_keeps_stdout_and_stderr(tmp_path):
    r = _run(tmp_path, 'import_keeping_fds("silencer")')
    assert r.stdout.strip() == "interrupted-out"
    assert r.stderr.strip() == "interrupted-err"


def test_plain_import_loses_them(tmp_path):
    # the control: without the guard both lines go to /dev/null (what `bkg report` did)
    r = _run(tmp_path, "import silencer")
    assert r.stdout == ""
    assert r.stderr == ""
