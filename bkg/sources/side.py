"""The direct estimates of the fits stage on a second core, while the tail fits run.

The fits stage has two kinds of work that do not depend on each other: the tail fits
of the samples (zfit, in this process) and the direct estimates by biased simulation
(numpy): the forced escape paths of the hermeticity source
(:func:`bkg.sim.escape.direct_estimate`) and the closure's estimates of
:data:`bkg.sim.biasing.DIRECT`. :func:`start`, called when `bkg fit` begins, computes
the latter in one side process (spawned: it imports neither zfit nor TensorFlow), in
the order they are needed; :func:`escape_direct` and :func:`biasing_direct` take a
result from it, or compute it here when there is none (one worker, a side process
that died, other arguments). Every estimate is seeded from the config and its
arguments, never from the process, so the numbers are the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from bkg.config import Config

__all__ = ["biasing_direct", "close", "escape_direct", "start"]

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
    if kind == "escape":
        from bkg.sim import escape

        return escape.direct_estimate(cfg, n=args[0])
    from bkg.sim.biasing import DIRECT

    name, n_events, seed = args
    return DIRECT[name](cfg, n_events, seed)


def _side_main(send: Any, cfg: Config, tasks: list[Task]) -> None:
    """Body of the side process: each task's (key, True, value) or (key, False, None)."""
    for key, kind, args in tasks:
        try:
            send.send((key, True, _compute(cfg, kind, args)))
        except Exception:  # computed again (and raised) in the fits' own process
            send.send((key, False, None))
    send.close()


class _Prefetch:
    """One side process computing ``tasks`` in turn; :meth:`take` waits for a result."""

    def __init__(self, cfg: Config, tasks: list[Task]) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.keys = {key for key, _k, _a in tasks}
        self.results: dict[tuple[Any, ...], tuple[bool, Any]] = {}
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_side_main, args=(send, cfg, tasks), daemon=True)
        self._proc.start()
        send.close()
        self._open = True

    def take(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        """(True, value) of the task ``key``; (False, None) if it has none (compute it here)."""
        if key not in self.keys:
            return False, None
        while key not in self.results and self._open:
            try:
                got, ok, value = self._recv.recv()
            except (EOFError, OSError):  # the side process ended without it
                self._open = False
                break
            self.results[got] = (ok, value)
        self.keys.discard(key)
        return self.results.pop(key, (False, None))

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()
        self._recv.close()
        self._open = False


_CURRENT: _Prefetch | None = None


def start(cfg: Config, names: Iterable[str], *, closure_events: int | None = None) -> None:
    """Start the direct estimates the sources ``names`` will need, on a second core.

    Nothing starts with one worker (``run.workers``) or nothing to compute. The closure's
    estimates are those of ``closure_events`` biased events each (default: the
    `bkg fit` / `bkg report` closure's :data:`bkg.sources.closure.CLOSURE_EVENTS`).
    """
    close()
    if _workers(cfg) < 2:
        return
    from bkg.sim import escape
    from bkg.sim.biasing import DIRECT
    from bkg.sources.closure import CLOSURE_EVENTS

    names = list(names)
    n_closure = CLOSURE_EVENTS if closure_events is None else int(closure_events)
    tasks: list[Task] = []
    if "hermeticity" in names:
        n = int(escape.escape_config(cfg).forced_events)
        tasks.append((_escape_key(cfg, n), "escape", (n,)))
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

    n = int(escape.escape_config(cfg).forced_events)
    found, value = _take(_escape_key(cfg, n))
    if found:
        escape.keep_direct_estimate(cfg, value, n=n)
    return escape.direct_estimate(cfg)


def biasing_direct(cfg: Config, name: str, n_events: int, seed: int) -> Any:
    """``DIRECT[name](cfg, n_events, seed)`` (from the side process if it made it)."""
    found, value = _take(_biasing_key(cfg, name, n_events, seed))
    return value if found else _compute(cfg, "biasing", (name, n_events, seed))
