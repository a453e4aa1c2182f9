"""Progress display for the command line (rich), kept out of the library code.

Every stage prints a line when it starts a long job ("samples running ...") and one
when it ends ("samples done (12.3 s)", "fits reused"). The steps of the long stages
(sample chunks, fitted sources, compared files) show as bars with their rate and the
time left on a terminal; elsewhere (a log file, CI) each such task ends with one line
saying how many steps it took and at what rate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["LONG_STAGES", "ProgressDisplay", "progress_display"]

#: Stages that announce their start (the others take well under a second or so and only
#: print their end).
LONG_STAGES = ("samples", "fits", "limits", "figures", "re-run", "compare")


class ProgressDisplay:
    """Stage lines (``stage``) and per-task bars (``advance``) on stderr."""

    def __init__(self, *, force_terminal: bool | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
        )

        self.console = Console(
            stderr=True, force_terminal=force_terminal, highlight=False, soft_wrap=True
        )
        self.bars = Progress(
            TextColumn("  {task.description:<16}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9}"), TextColumn("{task.fields[elapsed]:>7}"),
            TextColumn("ETA {task.fields[eta]:<7}"), console=self.console, transient=False,
            disable=not self.console.is_terminal,
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._stage_t0 = time.perf_counter()  # a task's clock starts with its stage

    def advance(self, task: str, done: int, total: int) -> None:
        """A step callback: ``done`` of ``total`` steps of ``task`` (a sample, "fits", ...)."""
        now = time.perf_counter()
        t0 = self._started.setdefault(task, self._stage_t0)
        took = now - t0
        rate = f"{done / took:.2g}/s" if took > 0 and done else ""
        # the time left at the rate so far (steps of one task take about the same time)
        eta = _clock(took / done * (total - done)) if done else "?"
        elapsed = _clock(took)
        if task not in self._tasks:
            self._tasks[task] = self.bars.add_task(
                task, total=total, rate=rate, elapsed=elapsed, eta=eta
            )
        self.bars.update(
            self._tasks[task], completed=done, total=total, rate=rate, elapsed=elapsed, eta=eta
        )
        if done >= total and not self.console.is_terminal:
            self.console.print(f"  {task:<16} {done}/{total} in {now - t0:.1f} s ({rate or '-'})")

    def stage(self, stage: str, state: str) -> None:
        """A stage callback: print when a long stage starts, and when any stage ends or is reused."""
        if state == "running":
            self._stage_t0 = time.perf_counter()
            if stage in LONG_STAGES:
                self.console.print(f"[bold]{stage}[/] running ...")
        else:
            self.console.print(f"[bold]{stage}[/] {state}")


def _clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour)."""
    m, sec = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@contextlib.contextmanager
def progress_display(*, force_terminal: bool | None = None) -> Iterator[ProgressDisplay]:
    """A progress display that is live only while the block runs."""
    display = ProgressDisplay(force_terminal=force_terminal)
    with display.bars:
        yield display
