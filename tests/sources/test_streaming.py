"""Reading samples in worker threads (ntuple.iterate(workers=...)) changes nothing but the time."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from bkg.errors import SampleError
from bkg.ntuple import SCHEMAS, NtupleWriter, iterate

BRANCHES = ["p_in_rec", "p_out_rec", "e_ecal", "process", "s0"]


def _write(path: Path, n: int, seed: int, *, nan_at: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    ev = {k: rng.random(n).astype(b.dtype) for k, b in SCHEMAS["beam"].items()}
    if nan_at is not None:
        ev["e_ecal"][nan_at] = np.nan
    with NtupleWriter(path, "beam") as out:
        out.extend({k: v[: n // 2] for k, v in ev.items()})  # two baskets per branch
        out.extend({k: v[n // 2 :] for k, v in ev.items()})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("stream")
    return [_write(folder / f"beam_{i}.root", n, i) for i, n in enumerate((2500, 0, 1700, 999))]


def _read(paths: list[Path], workers: int, **kwargs: object) -> list[dict[str, np.ndarray]]:
    return list(iterate(paths, "beam", BRANCHES, step_size=600, workers=workers, **kwargs))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_threads_give_the_same_chunks_in_the_same_order(files, workers):
    # expected: the chunks of the serial reading (step_size events, per file, across the
    # basket boundary, none for the empty file), bit for bit
    serial = _read(files, 0)
    expected = [600, 600, 600, 600, 100, 600, 600, 500, 600, 399]
    assert [len(c["p_in_rec"]) for c in serial] == expected
    threaded = _read(files, workers)
    assert len(threaded) == len(serial)
    for a, b in zip(serial, threaded, strict=True):
        assert list(a) == list(b)
        for name in a:
            assert a[name].dtype == b[name].dtype
            np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.bad_input
def test_a_missing_file_is_reported_after_the_chunks_before_it(files, tmp_path):
    # expected: the same one-line error as without threads, raised only once the chunks
    # of the files before it have been handed out
    paths = [files[0], tmp_path / "nope.root", files[2]]
    seen = 0
    with pytest.raises(SampleError, match=r"nope\.root: file not found") as info:
        for chunk in iterate(paths, "beam", BRANCHES, step_size=600, workers=2):
            seen += len(chunk["p_in_rec"])
    assert seen == 2500
    assert "\n" not in str(info.value)


@pytest.mark.bad_input
@pytest.mark.parametrize("workers", [0, 2])
def test_nonfinite_values_give_the_same_error_with_threads(tmp_path, workers):
    bad = _write(tmp_path / "bad.root", 1000, 5, nan_at=700)
    with pytest.raises(SampleError, match=r"bad\.root: branch 'e_ecal' has 1 NaN/inf values"):
        _read([bad], workers)
    dropped = _read([bad], workers, nonfinite="drop")
    assert [int(c["_dropped"]) for c in dropped] == [0, 1]
    assert sum(len(c["e_ecal"]) for c in dropped) == 999


def test_stopping_early_leaves_no_reading_thread(files):
    # expected: a caller that stops after the first chunk (an error in its analysis)
    # does not wait for the whole sample and leaves no worker thread behind
    chunks = iterate(files, "beam", BRANCHES, step_size=100, workers=2)
    first = next(chunks)
    assert len(first["p_in_rec"]) == 100
    chunks.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("bkg-read")]
