"""The direct estimates of the fits stage on a second core, while the tail fits run.

:func:`start`, called when `bkg fit` begins, computes in one spawned side process
(no zfit, no TensorFlow) the work that does not depend on the tail fits: the shared
beam-sample pass, the forced escape paths (:func:`bkg.sim.escape.direct_estimate`),
the counting sources, the closure's biased estimates (:data:`bkg.sim.biasing.DIRECT`)
and half of the source figures, in the order they are needed. :func:`escape_direct`
and :func:`biasing_direct` take a result from it, or compute it here (one worker, a
side process that died, other arguments). Every estimate is seeded from the config,
never from the process: the numbers are the same either way (docs/fits-stage-speed.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bkg.config import Config
from bkg.pipes import Sender, claim

__all__ = [
    "ask_figure",
    "biasing_direct",
    "close",
    "escape_direct",
    "render_figure",
    "start",
    "write_figures",
]

#: a task: (key, kind, arguments); the key names the result (config hash and arguments)
Task = tuple[tuple[Any, ...], str, tuple[Any, ...]]


def _workers(cfg: Config) -> int:
    return int(cfg.run.workers or os.cpu_count() or 1)


def _config_key(cfg: Config) -> str:
    from bkg.config import config_hash

    return str(config_hash(cfg.raw))


def _escape_key(cfg: Config, n: int) -> tuple[Any, ...]:
    return ("escape", _config_key(cfg), int(n), True)


def _biasing_key(cfg: Config, name: str, n_events: int, seed: int) -> tuple[Any, ...]:
    return ("biasing", name, _config_key(cfg), int(n_events), int(seed))


def _compute(cfg: Config, kind: str, args: tuple[Any, ...]) -> Any:
    if kind == "reduce":
        from bkg.sources.base import REGISTRY, reduce_together

        group, samples_dir, manifest, unbinned = args
        sources: list[Any] = [REGISTRY[name]() for name in group]
        return reduce_together(cfg, Path(samples_dir), manifest, sources, unbinned=unbinned)
    if kind == "source":
        from bkg.sources.base import REGISTRY

        name, samples_dir, manifest, unbinned = args
        est = REGISTRY[name]().estimate(
            cfg, Path(samples_dir), manifest=manifest, unbinned=unbinned
        )
        return est
    if kind == "escape":
        from bkg.sim import escape

        return escape.direct_estimate(cfg, n=args[0])
    from bkg.sim.biasing import DIRECT

    name, n_events, seed = args
    return DIRECT[name](cfg, n_events, seed)


def _side_main(
    send: Any,
    requests: Any,
    cfg: Config,
    tasks: list[Task],
    claimed: Any,
    tables: dict[Any, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Body of the side process: each task's (key, True, value) or (key, False, None),
    and the figures asked for on ``requests`` (between tasks, then until None or the pipe
    closes), each unless the fits' process took it back (``claimed``). ``tables``: the
    ECAL's rate tables the fits' process has made (:func:`bkg.sim.ecal.rate_tables`);
    ``state``: its working directory and environment (:func:`bkg.pipes.process_state`).

    Results are sent from a thread: a result the fits' process has not read yet (it may
    be importing zfit) does not hold up the next task. Ctrl-C is the fits' process's to
    handle (one line, exit 130): here it is ignored, and that process ends this one
    (:func:`close`) however it stops.
    """
    import signal

    from bkg.memory import heap_policy
    from bkg.pipes import adopt_process_state
    from bkg.sim.ecal import adopt_rate_tables

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    adopt_process_state(state)
    heap_policy("keep")
    adopt_rate_tables(tables)
    sender = Sender(send)
    try:
        for slot, (key, kind, args) in enumerate(tasks):
            if not _draw_asked(requests, sender, claimed, block=False):
                return
            if not claim(claimed, slot):  # taken back: the fits' process does it
                continue
            try:
                sender.send((key, True, _compute(cfg, kind, args)))
            except Exception:  # computed again (and raised) in the fits' own process
                sender.send((key, False, None))
        _draw_asked(requests, sender, claimed, block=True)
    finally:
        sender.close()


def _draw_asked(requests: Any, sender: Sender, claimed: Any, *, block: bool) -> bool:
    """Draw the figures asked for so far (with ``block``, until the end of the requests);
    False once the requests have ended (None, or the fits' process closed its end)."""
    while block or requests.poll():
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return False
        if request is None:
            return False
        key, est, name, slot = request
        if not claim(claimed, slot):  # taken back: the fits' process draws it
            continue
        try:
            sender.send((key, True, render_figure(est, name)))
        except Exception:  # drawn again (and raised) in the fits' own process
            sender.send((key, False, None))
    return True


def render_figure(est: Any, name: str) -> dict[str, bytes]:
    """The bytes of <name>.png (and <name>.pdf when the PDF mode asks for one) of a
    source's figure, as `bkg fit` writes them: {extension: bytes}."""
    import tempfile

    from bkg.sources.figures import plot_source, save_figure

    with tempfile.TemporaryDirectory(prefix="bkg-figure-") as tmp:
        written = save_figure(plot_source(est), Path(tmp), name)
        return {path.suffix[1:]: path.read_bytes() for path in written}


#: figures one side process can be asked for (a `bkg fit` asks for one per source, twice)
_FIGURE_SLOTS = 64


class _Prefetch:
    """One side process computing ``tasks`` in turn; :meth:`take` waits for a result, or
    takes back a task the side process has not started (a shared claim per task and per
    figure), so that the fits' process never waits while work it could do is queued."""

    def __init__(self, cfg: Config, tasks: list[Task]) -> None:
        from bkg.pipes import process_state, side_context

        ctx = side_context()
        self.keys = {key for key, _k, _a in tasks}
        self.waiting = set(self.keys)  # tasks whose result has not come back
        self.results: dict[tuple[Any, ...], tuple[bool, Any]] = {}
        self._slots = {key: slot for slot, (key, _k, _a) in enumerate(tasks)}
        self._recv, send = ctx.Pipe(duplex=False)
        requests, requests_send = ctx.Pipe(duplex=False)
        # 1: the task or figure is taken, by one process or the other
        self._claimed = ctx.Array("b", len(tasks) + _FIGURE_SLOTS)
        from bkg.sim.ecal import rate_tables

        self._proc = ctx.Process(
            target=_side_main,
            args=(send, requests, cfg, tasks, self._claimed, rate_tables(), process_state()),
            daemon=True,
        )
        self._proc.start()
        send.close()
        requests.close()
        self._requests = Sender(requests_send)
        self._open = True
        self._figures = 0  # figures asked for
        self.drawn_there = 0  # figures the side process drew

    def _receive(self) -> bool:
        """Store one result (waiting for it); False if the side process has ended."""
        if not self._open:
            return False
        try:
            got, ok, value = self._recv.recv()
        except (EOFError, OSError):  # the side process ended
            self._open = False
            self.waiting.clear()
            return False
        self.results[got] = (ok, value)
        self.waiting.discard(got)
        return True

    def take(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        """(True, value) of the task ``key``; (False, None) if it has none or has not
        started it (compute it here)."""
        if key not in self.keys:
            return False, None
        while self._open and self._recv.poll() and self._receive():  # what has come already
            pass
        if key not in self.results and self.take_back(key):
            return False, None
        while key not in self.results and self._receive():
            pass
        self.keys.discard(key)
        found, value = self.results.pop(key, (False, None))
        if found and key[0] == "figure":
            self.drawn_there += 1
        return found, value

    def ask_figure(self, est: Any, name: str) -> tuple[Any, ...] | None:
        """Queue the figure of ``est`` there; its key for :meth:`take` or
        :meth:`take_back`, or None (draw it here)."""
        if not self._open or self._figures >= _FIGURE_SLOTS:
            return None
        key = ("figure", name, self._figures)
        self._slots[key] = len(self._claimed) - _FIGURE_SLOTS + self._figures
        self._figures += 1
        self._requests.send((key, est, name, self._slots[key]))
        self.keys.add(key)
        self.waiting.add(key)
        return key

    def take_back(self, key: tuple[Any, ...]) -> bool:
        """Take a queued task or figure back to do it here: False if the side process has
        started it (then :meth:`take` its result)."""
        if not (self._open and claim(self._claimed, self._slots[key])):
            return False
        self.keys.discard(key)
        self.waiting.discard(key)
        return True

    def close(self) -> None:
        self._requests.send(None)
        self._requests.close(timeout=0.5)
        self._proc.join(timeout=0.5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        self._recv.close()
        self._open = False


_CURRENT: _Prefetch | None = None


def _source_key(cfg: Config, name: str, samples_dir: Path, unbinned: bool) -> tuple[Any, ...]:
    return ("source", name, _config_key(cfg), str(samples_dir), bool(unbinned))


def _reduce_key(
    cfg: Config, group: Sequence[str], samples_dir: Path, unbinned: bool
) -> tuple[Any, ...]:
    return ("reduce", tuple(group), _config_key(cfg), str(samples_dir), bool(unbinned))


def start(
    cfg: Config,
    names: Iterable[str],
    *,
    closure_events: int | None = None,
    samples: tuple[Path, dict[str, Any], bool] | None = None,
    passes: Sequence[Sequence[str]] = (),
) -> None:
    """Start the direct estimates the sources ``names`` will need, on a second core.

    Nothing starts with one worker (``run.workers``) or nothing to compute. The closure's
    estimates are those of ``closure_events`` biased events each (default: the
    `bkg fit` / `bkg report` closure's :data:`bkg.sources.closure.CLOSURE_EVENTS`). With
    ``samples`` (the samples folder, its manifest, unbinned), the counting sources among
    ``names`` (``fits = False``) are estimated there too, and first the shared passes over
    a sample of the streaming sources of each group of ``passes``
    (:func:`bkg.sources.base.reduce_together`), while this process imports zfit.
    """
    close()
    if _workers(cfg) < 2:
        return
    from bkg.sim.biasing import DIRECT
    from bkg.sources.closure import CLOSURE_EVENTS

    names = list(names)
    n_closure = CLOSURE_EVENTS if closure_events is None else int(closure_events)
    tasks: list[Task] = []
    if samples is not None:
        folder, manifest, unbinned = samples
        for group in passes:
            key = _reduce_key(cfg, group, folder, unbinned)
            tasks.append((key, "reduce", (list(group), str(folder), manifest, unbinned)))
    if "hermeticity" in names:
        n = int(cfg.detector.escape.forced_events)
        tasks.append((_escape_key(cfg, n), "escape", (n,)))
    if samples is not None:
        from bkg.sources.base import REGISTRY

        folder, manifest, unbinned = samples
        for name in names:
            if not REGISTRY[name].fits:
                key = _source_key(cfg, name, folder, unbinned)
                tasks.append((key, "source", (name, str(folder), manifest, unbinned)))
    for name in DIRECT:
        if name in names:
            args = (name, n_closure, int(cfg.seed))
            tasks.append((_biasing_key(cfg, *args), "biasing", args))
    if tasks:
        global _CURRENT
        _CURRENT = _Prefetch(cfg, tasks)


def close() -> None:
    """Stop the side process (a result nobody took is dropped)."""
    global _CURRENT
    if _CURRENT is not None:
        _CURRENT.close()
        _CURRENT = None


def _take(key: tuple[Any, ...]) -> tuple[bool, Any]:
    return (False, None) if _CURRENT is None else _CURRENT.take(key)


def escape_direct(cfg: Config) -> dict[str, Any]:
    """:func:`bkg.sim.escape.direct_estimate` of the config (from the side process if it made it)."""
    from bkg.sim import escape

    n = int(cfg.detector.escape.forced_events)
    found, value = _take(_escape_key(cfg, n))
    if found:
        escape.keep_direct_estimate(cfg, value, n=n)
    return escape.direct_estimate(cfg)


def biasing_direct(cfg: Config, name: str, n_events: int, seed: int) -> Any:
    """``DIRECT[name](cfg, n_events, seed)`` (from the side process if it made it)."""
    found, value = _take(_biasing_key(cfg, name, n_events, seed))
    return value if found else _compute(cfg, "biasing", (name, n_events, seed))


def ask_figure(name: str, est: Any) -> tuple[Any, ...] | None:
    """Queue the figure of a finished source in the side process, to be drawn there while
    this process goes on; the key for :func:`write_figures` (None: no side process)."""
    return None if _CURRENT is None else _CURRENT.ask_figure(est, name)


def write_figures(
    items: Sequence[tuple[str, Any]],
    out_dir: Path,
    asked: dict[str, tuple[Any, ...] | None] | None = None,
) -> None:
    """Draw and write <name>.png/.pdf of each (name, estimate), shared with the side process.

    Every figure not yet asked for (``asked``: :func:`ask_figure`'s keys) is queued there;
    this process then draws from the back of the list each one the side process has not
    started, and writes the bytes of the others as they come. The bytes are those of
    :func:`bkg.sources.figures.save_figure` either way.
    """
    from bkg.atomic import atomic_path
    from bkg.sources.figures import plot_source, save_figure

    keys = dict(asked or {})
    for name, est in items:
        if keys.get(name) is None:
            keys[name] = ask_figure(name, est)
    there: list[tuple[str, Any, tuple[Any, ...]]] = []
    for name, est in reversed(items):
        key = keys[name]
        if key is not None and _CURRENT is not None and not _CURRENT.take_back(key):
            there.append((name, est, key))
            continue
        save_figure(plot_source(est), out_dir, name)
    for name, est, key in reversed(there):
        found, files = _take(key)
        if not found:  # the side process failed it: here, with its error if any
            save_figure(plot_source(est), out_dir, name)
            continue
        for ext, data in files.items():
            with atomic_path(Path(out_dir) / f"{name}.{ext}") as tmp:
                tmp.write_bytes(data)


def source_estimate(
    cfg: Config, source: Any, samples_dir: Path, manifest: dict[str, Any], unbinned: bool
) -> Any:
    """``source.estimate(...)`` (from the side process if it made it)."""
    found, value = _take(_source_key(cfg, source.name, samples_dir, unbinned))
    if found:
        return value
    return source.estimate(cfg, samples_dir, manifest=manifest, unbinned=unbinned)


def reduce_together(
    cfg: Config, samples_dir: Path, manifest: Any, sources: Sequence[Any], unbinned: bool
) -> dict[str, tuple[Any, list[Any]]]:
    """:func:`bkg.sources.base.reduce_together` (from the side process if it made it)."""
    from bkg.sources import base

    found, value = _take(_reduce_key(cfg, [s.name for s in sources], samples_dir, unbinned))
    if found:
        return dict(value)
    return base.reduce_together(cfg, samples_dir, manifest, sources, unbinned=unbinned)


def reading() -> bool:
    """Whether the side process reads a sample for this process (which may meanwhile
    import what its fits need)."""
    return _CURRENT is not None and any(k[0] == "reduce" for k in _CURRENT.waiting)
