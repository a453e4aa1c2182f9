"""The side process of `bkg fit` (bkg.sources.side) changes the time, not the numbers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bkg.config import from_dict
from bkg.sim import escape
from bkg.sim.biasing import DIRECT
from bkg.sources import side


@pytest.fixture
def small_cfg():
    # a small forced simulation and two workers: the side process starts
    return from_dict({"detector": {"escape": {"forced_events": 20_000}}, "run": {"workers": 2}})


def test_side_estimates_equal_the_ones_made_in_process(small_cfg):
    """The escape paths and the closure's biased simulations made in the side process are
    the floats of the same calls in this process (seeds from the config, not the process)."""
    escape._DIRECT_CACHE.clear()
    here_escape = escape.direct_estimate(small_cfg)
    here_pt = DIRECT["punch_through"](small_cfg, 20_000, small_cfg.seed)
    escape._DIRECT_CACHE.clear()
    side.start(small_cfg, ["hermeticity", "punch_through"], closure_events=20_000)
    try:
        assert side._CURRENT is not None  # it did start (two workers)
        _wait_until_started(side._CURRENT, 1)  # both tasks started there, not taken back
        assert side.escape_direct(small_cfg) == here_escape
        assert not any(k[0] == "escape" for k in side._CURRENT.keys)  # taken from the side
        got = side.biasing_direct(small_cfg, "punch_through", 20_000, small_cfg.seed)
        assert got == here_pt
    finally:
        side.close()
    assert side._CURRENT is None


def _wait_until_started(prefetch, slot: int) -> None:
    import time

    deadline = time.monotonic() + 120
    while not prefetch._claimed[slot] and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_task_not_started_there_is_taken_back(small_cfg):
    """The fits' process does not wait for a task queued behind others in the side
    process: it takes it back and computes it (the same floats), and the side process
    skips it."""
    here_pt = DIRECT["punch_through"](small_cfg, 20_000, small_cfg.seed)
    escape._DIRECT_CACHE.clear()
    big = from_dict({"detector": {"escape": {"forced_events": 4_000_000}}, "run": {"workers": 2}})
    side.start(big, ["hermeticity", "punch_through"], closure_events=20_000)
    try:
        assert side._CURRENT is not None
        _wait_until_started(side._CURRENT, 0)  # the escape paths: busy for a while
        key = side._biasing_key(big, "punch_through", 20_000, big.seed)
        assert side._CURRENT.take(key) == (False, None)  # not started: taken back
        assert side._CURRENT._claimed[1] == 1  # so the side process skips it
        got = side.biasing_direct(big, "punch_through", 20_000, big.seed)
    finally:
        side.close()
    assert got == here_pt


def test_one_worker_starts_no_side_process():
    cfg = from_dict({"detector": {"escape": {"forced_events": 20_000}}, "run": {"workers": 1}})
    side.start(cfg, ["hermeticity", "punch_through"])
    assert side._CURRENT is None


def test_other_arguments_are_computed_here(small_cfg):
    """A closure run with other events than the side process made is computed in process."""
    side.start(small_cfg, ["punch_through"], closure_events=20_000)
    try:
        got = side.biasing_direct(small_cfg, "punch_through", 30_000, small_cfg.seed)
    finally:
        side.close()
    assert got == DIRECT["punch_through"](small_cfg, 30_000, small_cfg.seed)
    assert got.n_generated != 20_000


def _estimates(n: int) -> list[tuple[str, Any]]:
    """``n`` (name, counted estimate) pairs of different levels, for the source figures."""
    from bkg.sources.base import SourceEstimate

    def est(name: str, level: float) -> SourceEstimate:
        return SourceEstimate(name, name.title(), level, level / 3, level / 4, level / 5,
                              level / 6, False, "counted", {}, {}, {})  # fmt: skip

    return [(f"src{i}", est(f"src{i}", 10.0 ** -(10 + i))) for i in range(n)]


def _drawn_here(items: list[tuple[str, Any]], tmp_path: Path) -> Path:
    """The figures of ``items`` as this process's save_figure writes them (a new folder)."""
    from bkg.sources.figures import plot_source, save_figure

    here = tmp_path / "here"
    here.mkdir()
    for name, e in items:
        save_figure(plot_source(e), here, name)
    return here


def test_figures_drawn_in_the_side_process_have_the_same_bytes(small_cfg, tmp_path):
    """write_figures shares the figures with the side process: the files are those that
    save_figure writes in this process."""
    items = _estimates(2)
    here, shared = _drawn_here(items, tmp_path), tmp_path / "shared"
    shared.mkdir()
    side.start(small_cfg, ["punch_through"], closure_events=1000)
    try:
        assert side._CURRENT is not None
        _wait_until_started(side._CURRENT, 0)
        side.biasing_direct(small_cfg, "punch_through", 1000, small_cfg.seed)  # now idle
        side.write_figures(items, shared)
        # the idle side process started the first one at once: its bytes were written (a
        # fit diagnostic has no PDF; asking for one made every side drawing fail before)
        assert side._CURRENT is not None and side._CURRENT.drawn_there >= 1
    finally:
        side.close()
    files = sorted(p.name for p in here.iterdir())
    # one PNG per figure (a fit diagnostic gets no PDF unless asked: --pdf all)
    assert files == sorted(p.name for p in shared.iterdir()) and len(files) == len(items)
    for name in files:
        assert (here / name).read_bytes() == (shared / name).read_bytes(), name
    assert not list(Path(shared).glob("*.tmp*"))


def test_a_figure_asked_early_is_drawn_there_or_taken_back(small_cfg, tmp_path):
    """Figures queued while the side process is busy are taken back by this process (it
    does not wait for them); those it has started are its bytes."""
    items = _estimates(3)
    here, shared = _drawn_here(items, tmp_path), tmp_path / "shared"
    shared.mkdir()
    side.start(small_cfg, ["punch_through"], closure_events=2_000_000)  # busy for ~20 s
    try:
        # once it has begun that simulation (a fork of the server begins at once)
        assert side._CURRENT is not None
        deadline = time.monotonic() + 60
        while not side._CURRENT._claimed[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        asked = {name: side.ask_figure(name, e) for name, e in items}
        assert all(key is not None for key in asked.values())
        side.write_figures(items, shared, asked)
        assert side._CURRENT is not None
        assert side._CURRENT.drawn_there == 0  # still simulating: all taken back here
    finally:
        side.close()
    for name in sorted(p.name for p in here.iterdir()):
        assert (here / name).read_bytes() == (shared / name).read_bytes(), name
