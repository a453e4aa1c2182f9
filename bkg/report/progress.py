"""Progress display for the command line (rich), kept out of the library code."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["ProgressDisplay", "progress_display"]


class ProgressDisplay:
    """Stage lines (``stage``) and per-sample bars (``advance``) on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.bars = Progress(
            TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=False, disable=not self.console.is_terminal,
        )  # fmt: skip
        self._tasks: dict[str, TaskID] = {}
        self._t0 = time.perf_counter()

    def advance(self, sample: str, done: int, total: int) -> None:
        """A sample generation callback: ``done`` of ``total`` chunks of ``sample``."""
        if sample not in self._tasks:
            self._tasks[sample] = self.bars.add_task(sample, total=total)
        self.bars.update(self._tasks[sample], completed=done, total=total)

    def stage(self, stage: str, state: str) -> None:
        """A stage callback: print when a stage starts, is reused or finishes."""
        if state == "running" and stage in ("samples", "fits"):
            self.console.print(f"[bold]{stage}[/] running ...")
        elif state != "running":
            self.console.print(f"[bold]{stage}[/] {state}")


@contextlib.contextmanager
def progress_display() -> Iterator[ProgressDisplay]:
    """A progress display that is live only while the block runs."""
    display = ProgressDisplay()
    with display.bars:
        yield display
