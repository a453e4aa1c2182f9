"""The command line: help without heavy imports, config commands, user errors -> exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from bkg.cli import cli, main


def test_help_does_not_import_heavy_libraries():
    # `bkg --help` must answer instantly: zfit/TensorFlow and pyhf are imported lazily.
    code = (
        "import sys; from bkg.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('zfit', 'tensorflow', 'pyhf', 'uproot', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out


def test_the_command_ends_without_teardown_and_keeps_its_output(tmp_path):
    # main() without argv (the `bkg` entry point) ends with os._exit after the exit
    # handlers: stdout piped and buffered must still arrive whole, exit code 0, and a
    # handler registered with atexit must still run.
    mark = tmp_path / "atexit-ran"
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(lambda: pathlib.Path({str(mark)!r}).write_text('yes'))\n"
        "sys.argv = ['bkg', 'config', 'show']\n"
        "from bkg.cli import main\n"
        "main()\n"
        "print('NOT REACHED')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "effective configuration, sha256" in out.stdout
    assert "NOT REACHED" not in out.stdout  # the process ended inside main()
    assert mark.read_text() == "yes"


def test_config_show_prints_effective_yaml():
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "energy_gev: 160.0" in result.output
    assert "effective configuration, sha256" in result.output


def test_config_validate_ok(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("n_mot: 2e11\n")
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0
    assert "valid" in result.output


@pytest.mark.bad_input
def test_config_validate_lists_every_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("n_mot: -5\nbeam:\n  enrgy_gev: 160\nstatistics:\n  confidence_level: 0\n")
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 3
    assert any("beam.enrgy_gev: unknown key" in line for line in lines)
    assert any(line.startswith(f"{path}: n_mot") for line in lines)


@pytest.mark.bad_input
def test_user_error_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: -1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["config", "show", "--config", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed" in err and "Traceback" not in err


@pytest.mark.bad_input
def test_debug_shows_the_traceback(tmp_path):
    from bkg.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text("seed: -1\n")
    with pytest.raises(ConfigError):
        main(["--debug", "config", "show", "--config", str(path)])
