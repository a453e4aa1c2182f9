"""fits/<source>.json read back for Table I: every way such a folder can be bad."""

from __future__ import annotations

import json
import pathlib

import pytest

from bkg.errors import SampleError
from bkg.sources import REGISTRY, SourceEstimate, read_estimates


def _estimate(name: str) -> SourceEstimate:
    return SourceEstimate(
        name, REGISTRY[name].label, 2e-12, 1e-12, 1e-12, 0.0, 0.0, False, "count",
        inputs={"n_events": 10}, fit={},
    )  # fmt: skip


@pytest.fixture
def fits(tmp_path: pathlib.Path) -> pathlib.Path:
    """A fits folder with a valid <source>.json for every registered source."""
    for name in REGISTRY:
        (tmp_path / f"{name}.json").write_text(json.dumps(_estimate(name).to_dict()))
    return tmp_path


def _edit(fits: pathlib.Path, source: str, changes: dict[str, object]) -> pathlib.Path:
    path = fits / f"{source}.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def test_every_source_read_back(fits):
    assert read_estimates(fits) == {name: _estimate(name) for name in REGISTRY}


@pytest.mark.bad_input
def test_missing_sources_are_named(fits):
    # `bkg fit --only ...` leaves a partial folder: Table I must not silently drop rows
    (fits / "dimuon.json").unlink()
    (fits / "punch_through.json").unlink()
    with pytest.raises(SampleError) as info:
        read_estimates(fits)
    text = str(info.value)
    assert text.startswith(f"{fits}: punch_through.json, dimuon.json missing")
    assert "hermeticity" not in text and "\n" not in text


@pytest.mark.bad_input
def test_an_estimate_under_another_name(fits):
    (fits / "dimuon.json").write_text((fits / "momentum_mismatch.json").read_text())
    with pytest.raises(
        SampleError,
        match=r"dimuon\.json: holds the estimate of 'momentum_mismatch', expected 'dimuon'",
    ):
        read_estimates(fits)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("level_per_mot", -1e-3),
        ("level_per_mot", float("nan")),
        ("level_per_mot", float("inf")),
        ("level_per_mot", None),
        ("level_per_mot", "abc"),
        ("level_per_mot", True),
        ("stat_up", None),
        ("stat_down", -1e-12),
        ("syst_up", "0"),
        ("syst_down", float("nan")),
        ("upper_bound", "no"),
        ("name", ""),
        ("label", 3),
        ("method", None),
        ("inputs", [1]),
        ("fit", "x"),
    ],
)
def test_bad_values_name_file_and_key(fits, key, value):
    path = _edit(fits, "dimuon", {key: value})
    with pytest.raises(SampleError) as info:
        read_estimates(fits)
    text = str(info.value)
    assert text.startswith(f"{path}: not a source estimate: key '{key}': expected")
    assert "\n" not in text


@pytest.mark.bad_input
@pytest.mark.parametrize("key", ["level_per_mot", "stat_up", "upper_bound", "name", "method"])
def test_missing_key(fits, key):
    path = fits / "hermeticity.json"
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))
    with pytest.raises(SampleError, match=rf"hermeticity\.json: .*key '{key}' missing"):
        read_estimates(fits)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2]", r"not a source estimate: expected a JSON object, got a list"),
        ('{"name": ', r"not valid JSON \(Expecting value: line 1"),
        ("", r"not valid JSON"),
    ],
)
def test_not_an_estimate(fits, text, expected):
    (fits / "dimuon.json").write_text(text)
    with pytest.raises(SampleError, match=rf"dimuon\.json: {expected}"):
        read_estimates(fits)


@pytest.mark.bad_input
def test_binary_file(fits):
    (fits / "dimuon.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SampleError, match=r"dimuon\.json: not valid JSON"):
        read_estimates(fits)


@pytest.mark.bad_input
def test_estimate_that_is_a_folder(fits):
    (fits / "dimuon.json").unlink()
    (fits / "dimuon.json").mkdir()
    with pytest.raises(SampleError, match=r"dimuon\.json: cannot read it \(Is a directory\)"):
        read_estimates(fits)


@pytest.mark.bad_input
def test_unreadable_estimate(fits, refuse_reading):
    refuse_reading("hadron_decay.json")
    with pytest.raises(
        SampleError, match=r"hadron_decay\.json: cannot read it \(Permission denied\)"
    ):
        read_estimates(fits)


@pytest.mark.bad_input
def test_fits_folder_that_is_a_file(tmp_path):
    path = tmp_path / "fits"
    path.write_text("not a folder")
    with pytest.raises(SampleError, match=r"fits: not a folder"):
        read_estimates(path)
